//! HTTP and HTTPS checks: one request per interval (`Method`, default GET; `Header`;
//! `Body`), 2xx = passing, 429 = warning, anything else or no answer = critical. The
//! output is Consul's `HTTP GET <url>: 200 OK Output: <first 4 KiB of the body>`.
//! Requests carry Consul's `User-Agent: Consul Health Check` and `Accept` unless `Header`
//! sets them (a `Host` header is sent as given); redirects are followed (10 at most).
//!
//! HTTPS uses rustls on `ring` (see [`super::tls`]): `TLSSkipVerify` and
//! `TLSServerName` are honoured for certificate verification, but the SNI sent is still
//! the URL's host (reqwest offers no per-request SNI override).

use std::time::Duration;

use cairn_types::definition::CheckDefinition;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, USER_AGENT};
use reqwest::{Method, StatusCode};

use super::{error_chain, Outcome};
use crate::local::MAX_CHECK_OUTPUT;

/// HTTP clients shared by all checks with the same TLS settings. One client per check
/// cost ~57 KB and a socket each (measured with 10,000 checks); sharing keeps a bounded
/// pool of keep-alive connections per target instead.
fn shared_client(skip_verify: bool, server_name: &str) -> Result<reqwest::Client, String> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static CLIENTS: OnceLock<Mutex<HashMap<(bool, String), reqwest::Client>>> = OnceLock::new();
    let map = CLIENTS.get_or_init(Default::default);
    let key = (skip_verify, server_name.to_string());
    if let Some(c) = map
        .lock()
        .map_err(|_| "HTTP client cache poisoned")?
        .get(&key)
    {
        return Ok(c.clone());
    }
    let tls = super::tls::client_config(skip_verify, server_name, &[b"http/1.1"])?;
    let client = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .pool_max_idle_per_host(32)
        .pool_idle_timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| format!("HTTP client: {}", error_chain(&e)))?;
    map.lock()
        .map_err(|_| "HTTP client cache poisoned")?
        .entry(key)
        .or_insert(client.clone());
    Ok(client)
}

/// A configured HTTP check.
#[derive(Debug)]
pub(crate) struct HttpProbe {
    client: reqwest::Client,
    timeout: Duration,
    method: Method,
    url: String,
    /// `url` parsed once, so a run does not re-parse it.
    parsed: reqwest::Url,
    headers: HeaderMap,
    body: String,
}

impl HttpProbe {
    pub(crate) fn new(def: &CheckDefinition, timeout: Duration) -> Result<HttpProbe, String> {
        let method = if def.method.is_empty() {
            "GET".to_string()
        } else {
            def.method.to_uppercase()
        };
        let method = Method::from_bytes(method.as_bytes())
            .map_err(|_| format!("invalid Method {:?}", def.method))?;
        let mut headers = HeaderMap::new();
        headers.insert(USER_AGENT, HeaderValue::from_static("Consul Health Check"));
        headers.insert(ACCEPT, HeaderValue::from_static("text/plain, text/*, */*"));
        let mut replaced = std::collections::HashSet::new();
        for (k, vs) in &def.header {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| format!("invalid Header name {k:?}"))?;
            if replaced.insert(name.clone()) {
                headers.remove(&name);
            }
            for v in vs {
                let value = HeaderValue::from_str(v)
                    .map_err(|_| format!("invalid value of Header {k:?}"))?;
                headers.append(name.clone(), value);
            }
        }
        let client = shared_client(def.tls_skip_verify, &def.tls_server_name)?;
        Ok(HttpProbe {
            client,
            timeout,
            method,
            parsed: reqwest::Url::parse(&def.http)
                .map_err(|e| format!("invalid HTTP URL {:?}: {e}", def.http))?,
            url: def.http.clone(),
            headers,
            body: def.body.clone(),
        })
    }

    pub(crate) async fn run(&self) -> Outcome {
        let mut req = self
            .client
            .request(self.method.clone(), self.parsed.clone())
            .timeout(self.timeout)
            .headers(self.headers.clone());
        if !self.body.is_empty() {
            req = req.body(self.body.clone());
        }
        let mut resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return Outcome::critical(self.error(&e)),
        };
        let code = resp.status();
        let mut body = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    let room = MAX_CHECK_OUTPUT - body.len();
                    body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                    if body.len() >= MAX_CHECK_OUTPUT {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => return Outcome::critical(self.error(&e)),
            }
        }
        let output = format_output(&self.method, &self.url, code, &body);
        Outcome::new(status_for(code), output)
    }

    /// Go's `url.Error` text: `Get "http://...": <cause>`.
    fn error(&self, e: &reqwest::Error) -> String {
        let m = self.method.as_str();
        let op = format!("{}{}", &m[..1], m[1..].to_lowercase());
        let cause = if e.is_timeout() {
            "context deadline exceeded (Client.Timeout exceeded while awaiting headers)".to_string()
        } else {
            error_chain(e)
        };
        format!("{op} \"{}\": {cause}", self.url)
    }
}

/// Consul's rule: 2xx passing, 429 (Too Many Requests) warning, anything else critical.
pub(crate) fn status_for(code: StatusCode) -> &'static str {
    if code.is_success() {
        cairn_types::PASSING
    } else if code == StatusCode::TOO_MANY_REQUESTS {
        cairn_types::WARNING
    } else {
        cairn_types::CRITICAL
    }
}

/// `HTTP GET http://x/: 200 OK Output: body`.
pub(crate) fn format_output(method: &Method, url: &str, code: StatusCode, body: &[u8]) -> String {
    let status = match code.canonical_reason() {
        Some(r) => format!("{} {r}", code.as_u16()),
        None => code.as_u16().to_string(),
    };
    format!(
        "HTTP {method} {url}: {status} Output: {}",
        String::from_utf8_lossy(body)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_rule() {
        assert_eq!(status_for(StatusCode::OK), "passing");
        assert_eq!(status_for(StatusCode::NO_CONTENT), "passing");
        assert_eq!(status_for(StatusCode::TOO_MANY_REQUESTS), "warning");
        assert_eq!(status_for(StatusCode::INTERNAL_SERVER_ERROR), "critical");
        assert_eq!(status_for(StatusCode::MOVED_PERMANENTLY), "critical");
        assert_eq!(status_for(StatusCode::NOT_FOUND), "critical");
    }

    #[test]
    fn output_format() {
        assert_eq!(
            format_output(
                &Method::GET,
                "http://127.0.0.1:80/health",
                StatusCode::OK,
                b"ok"
            ),
            "HTTP GET http://127.0.0.1:80/health: 200 OK Output: ok"
        );
        assert_eq!(
            format_output(
                &Method::POST,
                "http://h/",
                StatusCode::TOO_MANY_REQUESTS,
                b""
            ),
            "HTTP POST http://h/: 429 Too Many Requests Output: "
        );
        assert_eq!(
            format_output(
                &Method::GET,
                "http://h/",
                StatusCode::from_u16(599).unwrap(),
                b"x"
            ),
            "HTTP GET http://h/: 599 Output: x"
        );
    }

    #[test]
    fn headers_and_method_are_validated() {
        let def = CheckDefinition {
            http: "http://127.0.0.1:1/".into(),
            method: "bad method".into(),
            ..Default::default()
        };
        assert!(HttpProbe::new(&def, Duration::from_secs(1)).is_err());
        let mut def = CheckDefinition {
            http: "http://127.0.0.1:1/".into(),
            method: "put".into(),
            ..Default::default()
        };
        def.header.insert("User-Agent".into(), vec!["mine".into()]);
        def.header
            .insert("X-A".into(), vec!["1".into(), "2".into()]);
        let p = HttpProbe::new(&def, Duration::from_secs(1)).unwrap();
        assert_eq!(p.method, Method::PUT);
        assert_eq!(
            p.headers.get_all(USER_AGENT).iter().collect::<Vec<_>>(),
            vec!["mine"]
        );
        assert_eq!(p.headers.get_all("x-a").iter().count(), 2);
    }

    #[tokio::test]
    async fn connection_refused_is_critical() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        let def = CheckDefinition {
            http: format!("http://{addr}/"),
            ..Default::default()
        };
        let p = HttpProbe::new(&def, Duration::from_secs(2)).unwrap();
        let o = p.run().await;
        assert_eq!(o.status, "critical");
        assert!(
            o.output.starts_with(&format!("Get \"http://{addr}/\": ")),
            "{}",
            o.output
        );
    }
}
