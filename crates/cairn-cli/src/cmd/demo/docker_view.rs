//! A per-client view of the one local Docker engine: a Unix socket that forwards every
//! request to the engine but narrows container lists and the event stream to the
//! containers labelled for that client (`cairn.demo.node=...`). With one engine standing in
//! for two ECS instances, each instance's registrator then sees only its own containers,
//! as it would on a real instance. One request per connection (`Connection: close`), so
//! only request heads are parsed; bodies and responses are copied through untouched.

use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

/// Largest request head accepted.
const MAX_HEAD: usize = 64 * 1024;

/// The label every container of client `node` carries.
pub const NODE_LABEL: &str = "cairn.demo.node";

/// Adds `label` (`key=value`) to the `filters` of a container-list or events request
/// target; other targets are returned unchanged.
pub fn rewrite_target(target: &str, label: &str) -> Result<String, String> {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let filtered = path.ends_with("/containers/json") || path.ends_with("/events");
    if !filtered {
        return Ok(target.to_string());
    }
    let mut pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let mut filters = match pairs.iter().position(|(k, _)| k == "filters") {
        Some(i) => {
            let (_, v) = pairs.remove(i);
            if v.trim().is_empty() {
                Map::new()
            } else {
                match serde_json::from_str::<Value>(&v) {
                    Ok(Value::Object(m)) => m,
                    _ => return Err(format!("filters {v:?} is not a JSON object")),
                }
            }
        }
        None => Map::new(),
    };
    match filters.get_mut("label") {
        Some(Value::Array(a)) => a.push(json!(label)),
        Some(Value::Object(m)) => {
            m.insert(label.to_string(), json!(true));
        }
        _ => {
            filters.insert("label".into(), json!([label]));
        }
    }
    pairs.push(("filters".into(), Value::Object(filters).to_string()));
    let q = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    Ok(format!("{path}?{q}"))
}

/// Rewrites a request head: the target through [`rewrite_target`], any `Connection`
/// header replaced by `Connection: close`.
pub fn rewrite_head(head: &str, label: &str) -> Result<String, String> {
    let mut lines = head.split("\r\n");
    let first = lines.next().unwrap_or_default();
    let mut parts = first.splitn(3, ' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(format!("bad request line {first:?}"));
    };
    let mut out = format!("{method} {} {version}\r\n", rewrite_target(target, label)?);
    for l in lines.filter(|l| !l.is_empty()) {
        if l.split(':')
            .next()
            .is_some_and(|k| k.trim().eq_ignore_ascii_case("connection"))
        {
            continue;
        }
        out.push_str(l);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    Ok(out)
}

/// The engine's Unix socket: `DOCKER_HOST` when it is `unix://...`, else the default.
pub fn engine_socket() -> Result<PathBuf, String> {
    match std::env::var("DOCKER_HOST") {
        Ok(h) if !h.is_empty() => h
            .strip_prefix("unix://")
            .map(PathBuf::from)
            .ok_or_else(|| format!("DOCKER_HOST={h}: the demo needs a unix:// engine socket")),
        _ => Ok(PathBuf::from("/var/run/docker.sock")),
    }
}

/// Serves the filtered view of `engine` for `label` on `socket` until the task is dropped.
pub fn start(
    socket: &Path,
    engine: PathBuf,
    label: String,
) -> Result<tokio::task::JoinHandle<()>, String> {
    let _ = std::fs::remove_file(socket);
    let l = UnixListener::bind(socket).map_err(|e| format!("binding {}: {e}", socket.display()))?;
    Ok(tokio::spawn(async move {
        while let Ok((conn, _)) = l.accept().await {
            let engine = engine.clone();
            let label = label.clone();
            tokio::spawn(async move {
                let _ = proxy(conn, &engine, &label).await;
            });
        }
    }))
}

async fn proxy(mut client: UnixStream, engine: &Path, label: &str) -> Result<(), String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > MAX_HEAD {
            return Err("request head too large".into());
        }
        let n = client.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let head = match rewrite_head(&head, label) {
        Ok(h) => h,
        Err(e) => {
            let body = format!("{{\"message\":\"{}\"}}", e.replace('"', "'"));
            let resp = format!(
                "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = client.write_all(resp.as_bytes()).await;
            return Err(e);
        }
    };
    let mut up = UnixStream::connect(engine)
        .await
        .map_err(|e| e.to_string())?;
    up.write_all(head.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    up.write_all(&buf[end..]).await.map_err(|e| e.to_string())?;
    let (mut cr, mut cw) = client.into_split();
    let (mut ur, mut uw) = up.into_split();
    let send = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut cr, &mut uw).await;
    });
    let _ = tokio::io::copy(&mut ur, &mut cw).await;
    let _ = cw.shutdown().await;
    send.abort();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filters_of(target: &str) -> Value {
        let q = target.split_once('?').unwrap().1;
        let f = form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "filters")
            .unwrap()
            .1;
        serde_json::from_str(&f).unwrap()
    }

    #[test]
    fn lists_and_events_are_narrowed() {
        let t = rewrite_target("/v1.41/containers/json?all=true", "cairn.demo.node=x-c2").unwrap();
        assert!(
            t.starts_with("/v1.41/containers/json?all=true&filters="),
            "{t}"
        );
        assert_eq!(filters_of(&t), json!({"label": ["cairn.demo.node=x-c2"]}));

        let f = form_urlencoded::byte_serialize(br#"{"type":["container"]}"#).collect::<String>();
        let t = rewrite_target(&format!("/events?filters={f}"), "l=v").unwrap();
        assert_eq!(
            filters_of(&t),
            json!({"type": ["container"], "label": ["l=v"]})
        );

        let f = form_urlencoded::byte_serialize(br#"{"label":{"a=b":true}}"#).collect::<String>();
        let t = rewrite_target(&format!("/containers/json?filters={f}"), "l=v").unwrap();
        assert_eq!(filters_of(&t), json!({"label": {"a=b": true, "l=v": true}}));

        assert_eq!(
            rewrite_target("/v1.41/containers/abc/json", "l=v").unwrap(),
            "/v1.41/containers/abc/json"
        );
        assert!(rewrite_target("/events?filters=nope", "l=v").is_err());
    }

    #[tokio::test]
    async fn the_view_forwards_narrowed_requests_and_relays_answers() {
        let dir = tempfile::tempdir().unwrap();
        let engine = dir.path().join("engine.sock");
        let fake = UnixListener::bind(&engine).unwrap();
        // A fake engine: records each request head and answers with a fixed body.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        tokio::spawn(async move {
            while let Ok((mut c, _)) = fake.accept().await {
                let mut buf = vec![0u8; 8192];
                let n = c.read(&mut buf).await.unwrap();
                let _ = tx.send(String::from_utf8_lossy(&buf[..n]).into_owned());
                let _ = c
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n[]",
                    )
                    .await;
            }
        });
        let view = dir.path().join("view.sock");
        let task = start(&view, engine.clone(), "cairn.demo.node=r-c2".into()).unwrap();
        let mut c = UnixStream::connect(&view).await.unwrap();
        c.write_all(b"GET /v1.41/containers/json?all=1 HTTP/1.1\r\nHost: docker\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        c.read_to_string(&mut answer).await.unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 200 OK") && answer.ends_with("[]"),
            "{answer}"
        );
        let head = rx.recv().await.unwrap();
        let target = head.split(' ').nth(1).unwrap();
        assert_eq!(
            filters_of(target),
            json!({"label": ["cairn.demo.node=r-c2"]})
        );
        assert!(head.contains("Connection: close\r\n"), "{head}");

        // A request the view cannot parse gets a 400 and never reaches the engine.
        let mut c = UnixStream::connect(&view).await.unwrap();
        c.write_all(b"GET /events?filters=nope HTTP/1.1\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        c.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
        assert!(rx.try_recv().is_err());
        task.abort();
    }

    #[test]
    fn heads_close_after_one_request() {
        let h = rewrite_head(
            "GET /_ping HTTP/1.1\r\nHost: docker\r\nconnection: keep-alive\r\n\r\n",
            "l=v",
        )
        .unwrap();
        assert_eq!(
            h,
            "GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n"
        );
        assert!(rewrite_head("garbage\r\n\r\n", "l=v").is_err());
    }
}
