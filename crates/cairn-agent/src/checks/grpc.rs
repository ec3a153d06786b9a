//! gRPC and H2PING checks, over HTTP/2 by hand with `h2` (no codegen: the health
//! protocol's messages are one field each).
//!
//! gRPC: `GRPC` is `host:port[/service]`; one unary `grpc.health.v1.Health/Check` call
//! with `HealthCheckRequest{service}`, over TLS (ALPN `h2`) when `GRPCUseTLS`, else h2c
//! with prior knowledge. `SERVING` = passing; any other status, a non-zero `grpc-status`
//! or a transport error = critical.
//!
//! H2PING: an HTTP/2 connection to `H2PING` (`host:port`) and one PING, acknowledged in
//! time = passing. Over TLS (ALPN `h2`) unless `H2PingUseTLS` is false (Consul's default is
//! TLS), then plaintext HTTP/2 with prior knowledge; `TLSSkipVerify` / `TLSServerName`
//! apply as for gRPC.

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::{error_chain, Outcome};

/// A byte stream h2 can run over (TCP or TLS over TCP).
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// TLS settings of a connection.
#[derive(Debug, Clone)]
pub(crate) struct Tls {
    pub(crate) skip_verify: bool,
    pub(crate) server_name: String,
}

/// Opens an HTTP/2 client connection; its driver runs in a task that ends with it.
async fn connect(addr: &str, tls: Option<&Tls>) -> Result<h2::client::SendRequest<Bytes>, String> {
    let (send, _ping) = connect_with_ping(addr, tls).await?;
    Ok(send)
}

async fn connect_with_ping(
    addr: &str,
    tls: Option<&Tls>,
) -> Result<(h2::client::SendRequest<Bytes>, h2::PingPong), String> {
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("dial tcp {addr}: {}", error_chain(&e)))?;
    let _ = tcp.set_nodelay(true);
    let io: Box<dyn Io> = match tls {
        None => Box::new(tcp),
        Some(t) => {
            let host = host_of(addr);
            let sni = if t.server_name.is_empty() {
                host
            } else {
                t.server_name.as_str()
            };
            let cfg = super::tls::client_config(t.skip_verify, &t.server_name, &[b"h2"])?;
            let name = rustls::pki_types::ServerName::try_from(sni.to_string())
                .map_err(|e| format!("invalid TLS server name {sni:?}: {e}"))?;
            let stream = tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg))
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS handshake with {addr}: {}", error_chain(&e)))?;
            Box::new(stream)
        }
    };
    let (send, mut conn) = h2::client::handshake(io)
        .await
        .map_err(|e| format!("HTTP/2 handshake with {addr}: {}", error_chain(&e)))?;
    let ping = conn.ping_pong().ok_or("HTTP/2 ping already taken")?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok((send, ping))
}

/// `host` of `host:port` (brackets of an IPv6 literal removed).
fn host_of(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map(|(h, _)| h).unwrap_or(addr);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// A configured gRPC check.
#[derive(Debug)]
pub(crate) struct GrpcProbe {
    pub(crate) target: String,
    addr: String,
    service: String,
    tls: Option<Tls>,
    timeout: Duration,
}

impl GrpcProbe {
    pub(crate) fn new(target: &str, tls: Option<Tls>, timeout: Duration) -> GrpcProbe {
        let (addr, service) = target.split_once('/').unwrap_or((target, ""));
        GrpcProbe {
            target: target.to_string(),
            addr: addr.to_string(),
            service: service.to_string(),
            tls,
            timeout,
        }
    }

    pub(crate) async fn run(&self) -> Outcome {
        match tokio::time::timeout(self.timeout, self.call()).await {
            Ok(Ok(1)) => Outcome::passing(format!("gRPC check {}: success", self.target)),
            Ok(Ok(s)) => Outcome::critical(format!(
                "gRPC {} serving status: {}",
                self.target,
                serving_status_name(s)
            )),
            Ok(Err(e)) => Outcome::critical(format!("gRPC {}: {e}", self.target)),
            Err(_) => Outcome::critical(format!(
                "gRPC {}: timeout after {}",
                self.target,
                cairn_types::duration::format_duration(self.timeout)
            )),
        }
    }

    /// The `status` of the health response.
    async fn call(&self) -> Result<u64, String> {
        let send = connect(&self.addr, self.tls.as_ref()).await?;
        let mut send = send.ready().await.map_err(|e| error_chain(&e))?;
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let req = http::Request::builder()
            .method("POST")
            .uri(format!(
                "{scheme}://{}/grpc.health.v1.Health/Check",
                self.addr
            ))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .header("user-agent", "cairn-health-check")
            .body(())
            .map_err(|e| e.to_string())?;
        let (resp, mut stream) = send.send_request(req, false).map_err(|e| error_chain(&e))?;
        stream
            .send_data(grpc_frame(&health_request(&self.service)), true)
            .map_err(|e| error_chain(&e))?;
        let resp = resp.await.map_err(|e| error_chain(&e))?;
        let (parts, mut body) = resp.into_parts();
        if parts.status != http::StatusCode::OK {
            return Err(format!("HTTP status {}", parts.status));
        }
        // A trailers-only response carries grpc-status in the headers.
        grpc_status(&parts.headers)?;
        let mut data = BytesMut::new();
        while let Some(chunk) = body.data().await {
            let chunk = chunk.map_err(|e| error_chain(&e))?;
            let _ = body.flow_control().release_capacity(chunk.len());
            data.extend_from_slice(&chunk);
            if data.len() > 64 * 1024 {
                return Err("health response too large".into());
            }
        }
        if let Some(trailers) = body.trailers().await.map_err(|e| error_chain(&e))? {
            grpc_status(&trailers)?;
        }
        let msg = unframe(&data).ok_or("malformed gRPC response frame")?;
        parse_health_response(msg).ok_or_else(|| "malformed HealthCheckResponse".to_string())
    }
}

/// Fails on a non-zero `grpc-status` (`rpc error: code = N desc = message`).
fn grpc_status(h: &http::HeaderMap) -> Result<(), String> {
    match h.get("grpc-status").and_then(|v| v.to_str().ok()) {
        None | Some("0") => Ok(()),
        Some(code) => {
            let msg = h
                .get("grpc-message")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            Err(format!(
                "rpc error: code = {} desc = {msg}",
                grpc_code_name(code)
            ))
        }
    }
}

fn grpc_code_name(code: &str) -> String {
    let names = [
        "OK",
        "Canceled",
        "Unknown",
        "InvalidArgument",
        "DeadlineExceeded",
        "NotFound",
        "AlreadyExists",
        "PermissionDenied",
        "ResourceExhausted",
        "FailedPrecondition",
        "Aborted",
        "OutOfRange",
        "Unimplemented",
        "Internal",
        "Unavailable",
        "DataLoss",
        "Unauthenticated",
    ];
    code.parse::<usize>()
        .ok()
        .and_then(|i| names.get(i))
        .map(|s| s.to_string())
        .unwrap_or_else(|| format!("Code({code})"))
}

fn serving_status_name(s: u64) -> String {
    match s {
        0 => "UNKNOWN".into(),
        1 => "SERVING".into(),
        2 => "NOT_SERVING".into(),
        3 => "SERVICE_UNKNOWN".into(),
        n => n.to_string(),
    }
}

fn put_varint(out: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        out.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    out.put_u8(v as u8);
}

fn get_varint(b: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        if !b.has_remaining() {
            return None;
        }
        let byte = b.get_u8();
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// `HealthCheckRequest { string service = 1; }`.
pub(crate) fn health_request(service: &str) -> Bytes {
    let mut b = BytesMut::new();
    if !service.is_empty() {
        b.put_u8(0x0a);
        put_varint(&mut b, service.len() as u64);
        b.put_slice(service.as_bytes());
    }
    b.freeze()
}

/// The `status` (field 1, enum) of a `HealthCheckResponse`; unknown fields skipped,
/// absent = 0 (`UNKNOWN`), as proto3.
pub(crate) fn parse_health_response(mut b: &[u8]) -> Option<u64> {
    let mut status = 0;
    while b.has_remaining() {
        let key = get_varint(&mut b)?;
        match key & 7 {
            0 => {
                let v = get_varint(&mut b)?;
                if key >> 3 == 1 {
                    status = v;
                }
            }
            1 => {
                if b.remaining() < 8 {
                    return None;
                }
                b.advance(8);
            }
            2 => {
                let n = usize::try_from(get_varint(&mut b)?).ok()?;
                if n > b.remaining() {
                    return None;
                }
                b.advance(n);
            }
            5 => {
                if b.remaining() < 4 {
                    return None;
                }
                b.advance(4);
            }
            _ => return None,
        }
    }
    Some(status)
}

/// A gRPC length-prefixed message (uncompressed).
pub(crate) fn grpc_frame(msg: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(5 + msg.len());
    b.put_u8(0);
    b.put_u32(msg.len() as u32);
    b.put_slice(msg);
    b.freeze()
}

/// The first message of a gRPC body.
pub(crate) fn unframe(data: &[u8]) -> Option<&[u8]> {
    if data.len() < 5 || data[0] != 0 {
        return None;
    }
    let n = u32::from_be_bytes([data[1], data[2], data[3], data[4]]) as usize;
    data.get(5..5 + n)
}

/// A configured H2PING check.
#[derive(Debug)]
pub(crate) struct H2PingProbe {
    pub(crate) addr: String,
    pub(crate) tls: Option<Tls>,
    pub(crate) timeout: Duration,
}

impl H2PingProbe {
    pub(crate) async fn run(&self) -> Outcome {
        let attempt = async {
            let (_send, mut ping) = connect_with_ping(&self.addr, self.tls.as_ref()).await?;
            ping.ping(h2::Ping::opaque())
                .await
                .map_err(|e| format!("Failed to ping {}: {}", self.addr, error_chain(&e)))
        };
        match tokio::time::timeout(self.timeout, attempt).await {
            Ok(Ok(_pong)) => Outcome::passing("HTTP2 ping was successful".into()),
            Ok(Err(e)) => Outcome::critical(e),
            Err(_) => Outcome::critical(format!(
                "Failed to ping {}: timeout after {}",
                self.addr,
                cairn_types::duration::format_duration(self.timeout)
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_encoding() {
        assert_eq!(&health_request("")[..], b"");
        assert_eq!(&health_request("web")[..], b"\x0a\x03web");
        assert_eq!(
            &grpc_frame(b"\x0a\x03web")[..],
            b"\x00\x00\x00\x00\x05\x0a\x03web"
        );
    }

    #[test]
    fn response_decoding() {
        assert_eq!(parse_health_response(b""), Some(0));
        assert_eq!(parse_health_response(b"\x08\x01"), Some(1));
        assert_eq!(parse_health_response(b"\x08\x02"), Some(2));
        // Unknown length-delimited field 2 before the status.
        assert_eq!(parse_health_response(b"\x12\x02hi\x08\x01"), Some(1));
        assert_eq!(parse_health_response(b"\x12\x09hi"), None);
        assert_eq!(
            unframe(b"\x00\x00\x00\x00\x02\x08\x01"),
            Some(&b"\x08\x01"[..])
        );
        assert_eq!(unframe(b"\x00\x00\x00\x00\x09\x08\x01"), None);
    }

    #[test]
    fn targets() {
        let p = GrpcProbe::new("127.0.0.1:9000/my.Service", None, Duration::from_secs(1));
        assert_eq!(
            (p.addr.as_str(), p.service.as_str()),
            ("127.0.0.1:9000", "my.Service")
        );
        let p = GrpcProbe::new("localhost:9000", None, Duration::from_secs(1));
        assert_eq!(
            (p.addr.as_str(), p.service.as_str()),
            ("localhost:9000", "")
        );
        assert_eq!(host_of("[::1]:80"), "::1");
        assert_eq!(host_of("example.com:443"), "example.com");
        assert_eq!(grpc_code_name("12"), "Unimplemented");
    }

    /// A gRPC health server on the real `h2` server, answering `status`.
    async fn health_server(status: u8) -> (String, tokio::task::JoinHandle<()>) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let task = tokio::spawn(async move {
            loop {
                let Ok((s, _)) = l.accept().await else { return };
                tokio::spawn(async move {
                    let mut conn = h2::server::handshake(s).await.unwrap();
                    while let Some(Ok((req, mut respond))) = conn.accept().await {
                        assert_eq!(req.uri().path(), "/grpc.health.v1.Health/Check");
                        let mut body = req.into_body();
                        let mut got = Vec::new();
                        while let Some(Ok(c)) = body.data().await {
                            got.extend_from_slice(&c);
                        }
                        assert_eq!(unframe(&got), Some(&b"\x0a\x03web"[..]));
                        let resp = http::Response::builder()
                            .header("content-type", "application/grpc")
                            .body(())
                            .unwrap();
                        let mut tx = respond.send_response(resp, false).unwrap();
                        tx.send_data(grpc_frame(&[0x08, status]), false).unwrap();
                        let mut t = http::HeaderMap::new();
                        t.insert("grpc-status", "0".parse().unwrap());
                        tx.send_trailers(t).unwrap();
                    }
                });
            }
        });
        (addr, task)
    }

    #[tokio::test]
    async fn grpc_against_h2_server() {
        let (addr, task) = health_server(1).await;
        let p = GrpcProbe::new(&format!("{addr}/web"), None, Duration::from_secs(5));
        assert_eq!(
            p.run().await,
            Outcome::passing(format!("gRPC check {addr}/web: success"))
        );
        task.abort();
        let (addr, task) = health_server(2).await;
        let p = GrpcProbe::new(&format!("{addr}/web"), None, Duration::from_secs(5));
        assert_eq!(
            p.run().await,
            Outcome::critical(format!("gRPC {addr}/web serving status: NOT_SERVING"))
        );
        let h = H2PingProbe {
            addr: addr.clone(),
            tls: None,
            timeout: Duration::from_secs(5),
        };
        assert_eq!(
            h.run().await,
            Outcome::passing("HTTP2 ping was successful".into())
        );
        task.abort();
    }

    #[tokio::test]
    async fn refused_is_critical() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        drop(l);
        let p = GrpcProbe::new(&addr, None, Duration::from_secs(2));
        assert_eq!(p.run().await.status, "critical");
        let h = H2PingProbe {
            addr,
            tls: None,
            timeout: Duration::from_secs(2),
        };
        assert_eq!(h.run().await.status, "critical");
    }
}
