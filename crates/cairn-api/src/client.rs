//! The [`Client`]: address, TLS and token handling, the plumbing every call goes through
//! (bounded response reads, Consul's error bodies, `X-Consul-Index`), and a generic JSON
//! escape hatch. The typed endpoint methods live by family beside it (`agent.rs`,
//! `catalog.rs`, `kv.rs`, `status.rs`, `acl.rs`, `keyring.rs`).

use crate::error::ApiError;
use reqwest::{Method, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::time::Duration;

/// The agent address used when neither the caller nor the environment names one.
pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:8500";

/// HTTPS settings: Consul's `CONSUL_CACERT`, `CONSUL_CLIENT_CERT`/`CONSUL_CLIENT_KEY` and
/// `CONSUL_HTTP_SSL_VERIFY`, as PEM bytes rather than paths.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// CA certificate(s) to trust, besides the public roots.
    pub ca_pem: Option<Vec<u8>>,
    /// The client certificate (chain) and its private key, concatenated.
    pub identity_pem: Option<Vec<u8>>,
    /// Accept any server certificate (`CONSUL_HTTP_SSL_VERIFY=false`).
    pub skip_verify: bool,
    /// The name the server's certificate must carry, when not the address's host
    /// (`CONSUL_TLS_SERVER_NAME`; a `:port` is ignored).
    pub server_name: Option<String>,
}

/// Response header carrying the blocking-query index.
const INDEX_HEADER: &str = "X-Consul-Index";
/// Request header carrying the ACL token.
const TOKEN_HEADER: &str = "X-Consul-Token";

/// A body to send with a request.
pub(crate) enum Body {
    None,
    Json(Vec<u8>),
    Raw(Vec<u8>),
}

/// An HTTP client for one agent. Cheap to clone (the connection pool is shared).
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Client {
    /// A client for the agent at `addr`: `host:port`, `http://host:port` or `https://...`.
    ///
    /// A trailing `/` is ignored. No request is made.
    pub fn new(addr: &str) -> Result<Self, ApiError> {
        Self::with_tls(addr, &TlsOptions::default())
    }

    /// [`Client::new`] with HTTPS settings (they apply to `https://` addresses).
    pub fn with_tls(addr: &str, tls: &TlsOptions) -> Result<Self, ApiError> {
        let mut base = normalize_addr(addr)?;
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .connect_timeout(Duration::from_secs(10));
        if let (Some(name), Some(host)) = (&tls.server_name, base.strip_prefix("https://")) {
            // The certificate is checked against the URL's host: ask for `name` and pin it
            // to where the address points.
            let name = server_name_host(name);
            let addrs = resolve(host).map_err(|e| ApiError::InvalidAddress {
                addr: addr.to_string(),
                reason: e,
            })?;
            let port = addrs[0].port();
            builder = builder.resolve_to_addrs(name, &addrs);
            base = format!(
                "https://{}",
                cairn_types::net::with_default_port(name, port)
            );
        }
        if let Some(pem) = &tls.ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| ApiError::Tls(format!("the CA certificate: {e}")))?;
            if certs.is_empty() {
                return Err(ApiError::Tls("the CA file holds no certificate".into()));
            }
            for c in certs {
                builder = builder.add_root_certificate(c);
            }
        }
        if let Some(pem) = &tls.identity_pem {
            let id = reqwest::Identity::from_pem(pem)
                .map_err(|e| ApiError::Tls(format!("the client certificate and key: {e}")))?;
            builder = builder.identity(id);
        }
        if tls.skip_verify {
            builder = builder.danger_accept_invalid_certs(true);
        }
        let http = builder.build().map_err(|e| ApiError::InvalidAddress {
            addr: addr.to_string(),
            reason: format!("cannot build HTTP client: {e}"),
        })?;
        Ok(Client {
            base,
            token: None,
            http,
        })
    }

    /// Sets (or clears) the ACL token sent as `X-Consul-Token`.
    pub fn with_token(mut self, token: Option<String>) -> Self {
        self.token = token.filter(|t| !t.is_empty());
        self
    }

    /// The base URL, e.g. `http://127.0.0.1:8500`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The ACL token, if one is set.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    // ---- plumbing -------------------------------------------------------------------------

    pub(crate) fn url(&self, path_and_query: &str) -> String {
        let p = path_and_query.trim_start_matches('/');
        if p.starts_with("v1/") || p == "v1" {
            format!("{}/{p}", self.base)
        } else {
            format!("{}/v1/{p}", self.base)
        }
    }

    /// Sends a request and returns the response whatever its status.
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        body: Body,
    ) -> Result<Response, ApiError> {
        let url = self.url(path);
        let mut req = self.http.request(method, &url);
        if let Some(t) = &self.token {
            req = req.header(TOKEN_HEADER, t);
        }
        req = match body {
            Body::None => req,
            Body::Json(b) => req.header("Content-Type", "application/json").body(b),
            Body::Raw(b) => req.body(b),
        };
        req.send()
            .await
            .map_err(|source| ApiError::Transport { url, source })
    }

    /// Sends a request; non-2xx statuses become [`ApiError::Status`].
    pub(crate) async fn send_ok(
        &self,
        method: Method,
        path: &str,
        body: Body,
    ) -> Result<Response, ApiError> {
        check_status(self.send(method, path, body).await?).await
    }

    /// Like [`Client::send`], but a 404 becomes `Ok(None)`.
    pub(crate) async fn send_optional(&self, path: &str) -> Result<Option<Response>, ApiError> {
        let resp = self.send(Method::GET, path, Body::None).await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        check_status(resp).await.map(Some)
    }

    pub(crate) fn json_body<B: Serialize + ?Sized>(body: &B) -> Result<Body, ApiError> {
        serde_json::to_vec(body)
            .map(Body::Json)
            .map_err(ApiError::Encode)
    }

    // ---- generic escape hatch -------------------------------------------------------------

    /// `GET` any endpoint and decode its JSON. `path_and_query` is e.g. `/v1/agent/checks` or
    /// `agent/checks?filter=...` (`/v1/` is added when missing); the caller encodes it.
    pub async fn get_json<T: DeserializeOwned>(&self, path_and_query: &str) -> Result<T, ApiError> {
        Ok(self.get_json_with_index(path_and_query).await?.0)
    }

    /// Like [`Client::get_json`], also returning `X-Consul-Index` (0 when absent).
    pub async fn get_json_with_index<T: DeserializeOwned>(
        &self,
        path_and_query: &str,
    ) -> Result<(T, u64), ApiError> {
        let resp = self
            .send_ok(Method::GET, path_and_query, Body::None)
            .await?;
        let index = index_of(&resp);
        Ok((decode(resp).await?, index))
    }

    /// `PUT` a JSON body to any endpoint and decode the JSON answer (an empty answer decodes
    /// as `null`, so `T = ()` or `Option<_>` work for endpoints that return nothing).
    pub async fn put_json<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path_and_query: &str,
        body: &B,
    ) -> Result<T, ApiError> {
        let resp = self
            .send_ok(Method::PUT, path_and_query, Self::json_body(body)?)
            .await?;
        decode(resp).await
    }

    /// `POST` a JSON body to any endpoint and decode the JSON answer (as
    /// [`Client::put_json`]).
    pub async fn post_json<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path_and_query: &str,
        body: &B,
    ) -> Result<T, ApiError> {
        let resp = self
            .send_ok(Method::POST, path_and_query, Self::json_body(body)?)
            .await?;
        decode(resp).await
    }

    /// `DELETE` with a JSON body and decode the JSON answer (as [`Client::put_json`]).
    pub async fn delete_with_json<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path_and_query: &str,
        body: &B,
    ) -> Result<T, ApiError> {
        let resp = self
            .send_ok(Method::DELETE, path_and_query, Self::json_body(body)?)
            .await?;
        decode(resp).await
    }

    /// `PUT` with no body and decode the JSON answer (as [`Client::put_json`]).
    pub async fn put_empty<T: DeserializeOwned>(
        &self,
        path_and_query: &str,
    ) -> Result<T, ApiError> {
        let resp = self
            .send_ok(Method::PUT, path_and_query, Body::None)
            .await?;
        decode(resp).await
    }

    /// `POST` with no body and decode the JSON answer (as [`Client::put_json`]).
    pub async fn post_empty<T: DeserializeOwned>(
        &self,
        path_and_query: &str,
    ) -> Result<T, ApiError> {
        let resp = self
            .send_ok(Method::POST, path_and_query, Body::None)
            .await?;
        decode(resp).await
    }

    /// `DELETE` any endpoint and decode the JSON answer (as [`Client::put_json`]).
    pub async fn delete_json<T: DeserializeOwned>(
        &self,
        path_and_query: &str,
    ) -> Result<T, ApiError> {
        let resp = self
            .send_ok(Method::DELETE, path_and_query, Body::None)
            .await?;
        decode(resp).await
    }
}

/// The host part of a `CONSUL_TLS_SERVER_NAME` (which may carry a port).
fn server_name_host(name: &str) -> &str {
    let name = name.trim();
    match name.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.parse::<u16>().is_ok() => host,
        _ => name,
    }
}

/// The socket addresses of `host[:port]` (port 443 when none), looked up now.
fn resolve(host: &str) -> Result<Vec<std::net::SocketAddr>, String> {
    use std::net::ToSocketAddrs;
    let with_port = cairn_types::net::with_default_port(host, 443);
    let addrs: Vec<_> = with_port
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .collect();
    if addrs.is_empty() {
        return Err(format!("{host} resolves to no address"));
    }
    Ok(addrs)
}

/// Turns a user-supplied address into a base URL without a trailing slash.
fn normalize_addr(addr: &str) -> Result<String, ApiError> {
    let invalid = |reason: &str| ApiError::InvalidAddress {
        addr: addr.to_string(),
        reason: reason.to_string(),
    };
    let a = addr.trim();
    if a.is_empty() {
        return Err(invalid("empty address"));
    }
    if a.starts_with("unix://") {
        return Err(invalid("unix sockets are not supported"));
    }
    let with_scheme = if a.starts_with("http://") || a.starts_with("https://") {
        a.to_string()
    } else if a.contains("://") {
        return Err(invalid("scheme must be http or https"));
    } else {
        format!("http://{a}")
    };
    let base = with_scheme.trim_end_matches('/').to_string();
    let host = base.split_once("://").map(|(_, h)| h).unwrap_or("");
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(invalid("missing or malformed host"));
    }
    if host.contains('/') || host.contains('?') || host.contains('#') {
        return Err(invalid("must be host[:port] without a path"));
    }
    Ok(base)
}

/// Parses `X-Consul-Index`, 0 when absent or malformed.
pub(crate) fn index_of(resp: &Response) -> u64 {
    resp.headers()
        .get(INDEX_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// Turns a non-2xx response into [`ApiError::Status`] carrying the server's message.
pub(crate) async fn check_status(resp: Response) -> Result<Response, ApiError> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    // An error message is short; a long body is cut, never read without bound.
    let message = match read_limited(resp, MAX_ERROR_BYTES).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_string(),
        Err(_) => String::new(),
    };
    let message = if message.is_empty() {
        status.canonical_reason().unwrap_or("").to_string()
    } else {
        message
    };
    Err(ApiError::Status {
        status: status.as_u16(),
        message,
    })
}

/// Largest response body read (a whole-catalog listing of a large cluster fits).
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;
/// Largest error message read from a non-2xx response.
const MAX_ERROR_BYTES: usize = 64 * 1024;

/// Reads a response body, refusing one larger than `limit` bytes.
pub(crate) async fn read_limited(mut resp: Response, limit: usize) -> Result<Vec<u8>, ApiError> {
    let url = resp.url().to_string();
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(ApiError::TooLarge { url, limit });
    }
    let mut body = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > limit {
                    return Err(ApiError::TooLarge { url, limit });
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(source) => return Err(ApiError::Transport { url, source }),
        }
    }
}

/// Decodes a JSON body; an empty body decodes as `null`.
pub(crate) async fn decode<T: DeserializeOwned>(resp: Response) -> Result<T, ApiError> {
    let url = resp.url().to_string();
    let bytes = read_limited(resp, MAX_RESPONSE_BYTES).await?;
    let body: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"null"
    } else {
        &bytes
    };
    serde_json::from_slice(body).map_err(|e| ApiError::Decode {
        url,
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Serves one HTTP response with a `len`-byte body (chunked when `chunked`).
    async fn one_response(len: usize, chunked: bool) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            let body = vec![b'x'; len];
            let head = if chunked {
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_string()
            } else {
                format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n")
            };
            let _ = s.write_all(head.as_bytes()).await;
            if chunked {
                for part in body.chunks(64 * 1024) {
                    let _ = s
                        .write_all(format!("{:x}\r\n", part.len()).as_bytes())
                        .await;
                    let _ = s.write_all(part).await;
                    let _ = s.write_all(b"\r\n").await;
                }
                let _ = s.write_all(b"0\r\n\r\n").await;
            } else {
                let _ = s.write_all(&body).await;
            }
        });
        format!("http://{addr}/")
    }

    #[tokio::test]
    async fn bodies_over_the_limit_are_refused() {
        for chunked in [false, true] {
            let url = one_response(300_000, chunked).await;
            let resp = reqwest::get(&url).await.unwrap();
            match read_limited(resp, 100_000).await {
                Err(ApiError::TooLarge { limit, .. }) => assert_eq!(limit, 100_000),
                other => panic!("chunked={chunked}: {other:?}"),
            }
            let url = one_response(50_000, chunked).await;
            let resp = reqwest::get(&url).await.unwrap();
            assert_eq!(read_limited(resp, 100_000).await.unwrap().len(), 50_000);
        }
    }

    #[test]
    fn addresses_normalise() {
        assert_eq!(
            normalize_addr("127.0.0.1:8500").unwrap(),
            "http://127.0.0.1:8500"
        );
        assert_eq!(normalize_addr("http://h:1/").unwrap(), "http://h:1");
        assert_eq!(normalize_addr("https://h:8501").unwrap(), "https://h:8501");
        assert_eq!(normalize_addr("[::1]:8500").unwrap(), "http://[::1]:8500");
        assert!(normalize_addr("").is_err());
        assert!(normalize_addr("ftp://x").is_err());
        assert!(normalize_addr("unix:///tmp/s").is_err());
        assert!(normalize_addr("http://").is_err());
        assert!(normalize_addr("h:1/path").is_err());
    }

    #[test]
    fn a_server_name_replaces_the_host_and_keeps_the_port() {
        assert_eq!(
            server_name_host("server.dc1.consul:8501"),
            "server.dc1.consul"
        );
        assert_eq!(server_name_host(" server.dc1.consul "), "server.dc1.consul");
        assert_eq!(server_name_host("::1"), "::1");
        let tls = TlsOptions {
            server_name: Some("server.dc1.consul:9".into()),
            ..TlsOptions::default()
        };
        let c = Client::with_tls("https://127.0.0.1:8501", &tls).unwrap();
        assert_eq!(c.base(), "https://server.dc1.consul:8501");
        // Plain HTTP has no certificate to check: the address stays.
        let c = Client::with_tls("http://127.0.0.1:8500", &tls).unwrap();
        assert_eq!(c.base(), "http://127.0.0.1:8500");
    }

    #[test]
    fn urls() {
        let c = Client::new("h:1").unwrap();
        assert_eq!(c.url("/v1/agent/self"), "http://h:1/v1/agent/self");
        assert_eq!(c.url("agent/self"), "http://h:1/v1/agent/self");
        assert_eq!(c.url("/agent/self?x"), "http://h:1/v1/agent/self?x");
    }
}
