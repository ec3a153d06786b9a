//! Wire-level tests of the client against a tiny scripted HTTP server: they pin down what
//! actually goes over the socket (paths, encoding, headers) and how answers are decoded.

use cairn_api::{ApiError, Client, ServiceDefinition};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

type Log = Arc<Mutex<Vec<String>>>;

/// Serves `responses` (status, headers, body) in order, one per connection, and records each
/// raw request head plus body.
async fn serve(responses: Vec<(u16, &'static str, &'static str)>) -> (String, Log) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let log: Log = Arc::default();
    let log2 = log.clone();
    tokio::spawn(async move {
        for (status, headers, body) in responses {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                let n = sock.read(&mut chunk).await.unwrap_or(0);
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let len = text
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + len {
                        break;
                    }
                }
            }
            log2.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&buf).to_string());
            let resp = format!(
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n{headers}\r\n{body}",
                body.len()
            );
            let _ = sock.write_all(resp.as_bytes()).await;
        }
    });
    (addr, log)
}

fn first_line(log: &Log, i: usize) -> String {
    log.lock().unwrap()[i]
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

#[tokio::test]
async fn kv_roundtrip_paths_headers_and_index() {
    let (addr, log) = serve(vec![
        (200, "", "true"),
        (
            200,
            "X-Consul-Index: 42\r\n",
            r#"[{"Key":"a b/c","Value":"aGk=","Flags":3,"ModifyIndex":42}]"#,
        ),
        (404, "X-Consul-Index: 43\r\n", ""),
        (200, "", r#"["a/","b"]"#),
        (200, "", "false"),
    ])
    .await;
    let c = Client::new(&addr)
        .unwrap()
        .with_token(Some("secret".into()));
    assert!(c.kv_put("a b/c", b"hi", Some(3), None).await.unwrap());
    let (p, idx) = c.kv_get_with_index("a b/c").await.unwrap();
    let p = p.unwrap();
    assert_eq!((p.value.as_slice(), p.flags, idx), (&b"hi"[..], 3, 42));
    assert_eq!(c.kv_get_with_index("missing").await.unwrap(), (None, 43));
    assert_eq!(c.kv_keys("", Some("/")).await.unwrap(), ["a/", "b"]);
    assert!(!c.kv_delete("x", true).await.unwrap());

    assert_eq!(first_line(&log, 0), "PUT /v1/kv/a%20b/c?flags=3 HTTP/1.1");
    let put = log.lock().unwrap()[0].clone();
    assert!(put.to_ascii_lowercase().contains("x-consul-token: secret"));
    assert!(put.ends_with("\r\n\r\nhi"));
    assert_eq!(first_line(&log, 1), "GET /v1/kv/a%20b/c HTTP/1.1");
    assert_eq!(
        first_line(&log, 3),
        "GET /v1/kv/?keys&separator=%2F HTTP/1.1"
    );
    assert_eq!(first_line(&log, 4), "DELETE /v1/kv/x?recurse HTTP/1.1");
}

#[tokio::test]
async fn errors_carry_status_and_body() {
    let (addr, _log) = serve(vec![
        (403, "", "Permission denied\n"),
        (200, "", "{not json"),
    ])
    .await;
    let c = Client::new(&format!("http://{addr}/")).unwrap();
    match c.agent_services().await {
        Err(ApiError::Status { status, message }) => {
            assert_eq!((status, message.as_str()), (403, "Permission denied"))
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(matches!(
        c.catalog_nodes().await,
        Err(ApiError::Decode { .. })
    ));
}

#[tokio::test]
async fn register_and_blocking_health() {
    let (addr, log) = serve(vec![
        (200, "", ""),
        (
            200,
            "X-Consul-Index: 9\r\n",
            r#"[{"Node":{"Node":"n1","Address":"10.0.0.1"},"Service":{"ID":"web","Service":"web","Port":80},"Checks":null}]"#,
        ),
    ])
    .await;
    let c = Client::new(&addr).unwrap();
    let def = ServiceDefinition {
        name: "web".into(),
        port: Some(80),
        ..Default::default()
    };
    c.agent_service_register(&def).await.unwrap();
    let (entries, idx) = c
        .health_service_blocking("web", 5, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!((entries.len(), idx), (1, 9));
    assert_eq!(entries[0].address(), "10.0.0.1");
    let reg = log.lock().unwrap()[0].clone();
    assert!(reg.starts_with("PUT /v1/agent/service/register HTTP/1.1"));
    assert!(reg.ends_with(r#"{"Name":"web","Port":80}"#));
    assert_eq!(
        first_line(&log, 1),
        "GET /v1/health/service/web?index=5&wait=30s HTTP/1.1"
    );
}

#[tokio::test]
async fn connection_refused_is_an_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    drop(listener);
    let c = Client::new(&addr).unwrap();
    assert!(matches!(
        c.status_leader().await,
        Err(ApiError::Transport { .. })
    ));
}
