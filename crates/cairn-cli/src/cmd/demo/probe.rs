//! A minimal HTTP/1.0 GET over a TCP socket, used to tell when the portal answers and to
//! check a port before taking it. Bounded in time and in bytes read.

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Most bytes of a response read.
const MAX_RESPONSE: u64 = 64 * 1024;

/// `GET path` on `addr` (`host:port`): the status code and the body, within `timeout`.
pub async fn get(addr: &str, path: &str, timeout: Duration) -> Result<(u16, String), String> {
    let work = async {
        let mut s = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect {addr}: {e}"))?;
        let req = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes())
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut buf = Vec::new();
        s.take(MAX_RESPONSE)
            .read_to_end(&mut buf)
            .await
            .map_err(|e| format!("read: {e}"))?;
        parse(&buf)
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| format!("GET http://{addr}{path}: no answer within {timeout:?}"))?
}

/// Status code and body of a raw HTTP/1.x response.
fn parse(buf: &[u8]) -> Result<(u16, String), String> {
    let text = String::from_utf8_lossy(buf);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| "not an HTTP response".to_string())?;
    Ok((status, body.to_string()))
}

/// Whether the TCP port `ip:port` can be bound now (and UDP too when `udp`).
pub fn free(ip: &str, port: u16, udp: bool) -> bool {
    std::net::TcpListener::bind((ip, port)).is_ok()
        && (!udp || std::net::UdpSocket::bind((ip, port)).is_ok())
}

/// A port the kernel reports free on every interface right now.
pub fn ephemeral_port() -> Result<u16, String> {
    std::net::TcpListener::bind("0.0.0.0:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("cannot pick a free port: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses() {
        assert_eq!(
            parse(b"HTTP/1.1 200 OK\r\nA: b\r\n\r\nOK").unwrap(),
            (200, "OK".to_string())
        );
        assert_eq!(parse(b"HTTP/1.0 503 x\r\n\r\n").unwrap().0, 503);
        assert!(parse(b"garbage").is_err());
    }

    #[tokio::test]
    async fn get_against_a_socket() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut b = [0u8; 512];
            let _ = s.read(&mut b).await;
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\n\r\nhello").await;
        });
        let (st, body) = get(&addr, "/", Duration::from_secs(5)).await.unwrap();
        assert_eq!((st, body.as_str()), (200, "hello"));
        // Nothing listening: an error, not a hang.
        let port = ephemeral_port().unwrap();
        assert!(
            get(&format!("127.0.0.1:{port}"), "/", Duration::from_secs(5))
                .await
                .is_err()
        );
    }
}
