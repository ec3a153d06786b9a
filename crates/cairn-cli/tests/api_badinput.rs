//! Proves a real agent refuses bad input cleanly: malformed or mistyped JSON bodies are
//! 400s with a message, wrong verbs 405, oversize bodies 413, unparsable query parameters
//! 400, line feeds and invalid UTF-8 in keys 400, an unknown session in `acquire` is an
//! error rather than `true` — and after all of it the agent is alive and still serving.

mod common;

use common::Agent;
use reqwest::Method;
use serde_json::json;

#[track_caller]
fn assert_400_with_message(r: &common::Resp, what: &str) {
    assert_eq!(
        r.status,
        400,
        "{what}: expected 400, got {} body {:?}",
        r.status,
        r.text()
    );
    assert!(
        !r.text().trim().is_empty(),
        "{what}: a 400 carries a message"
    );
}

async fn assert_healthy(a: &mut Agent) {
    assert!(
        a.is_running(),
        "the agent process died; stderr:\n{}",
        a.stderr()
    );
    let r = a.get("/v1/status/leader").await.expect(200);
    assert!(!r.json().as_str().unwrap_or("").is_empty());
    a.kv_put("still/alive", "yes").await;
    assert_eq!(
        a.get("/v1/kv/still/alive?raw").await.expect(200).body,
        b"yes"
    );
}

const WRITE_ENDPOINTS: &[&str] = &[
    "/v1/catalog/register",
    "/v1/catalog/deregister",
    "/v1/agent/service/register",
    "/v1/agent/check/register",
    "/v1/session/create",
    "/v1/txn",
];

#[tokio::test]
async fn malformed_json_is_400() {
    let mut a = Agent::dev().await;
    let bodies: &[&[u8]] = &[
        b"{",
        b"{\"Node\": }",
        b"not json at all",
        b"[1,2",
        b"\xff\xfe\x00",
        b"{\"a\":1}}",
    ];
    for path in WRITE_ENDPOINTS {
        for body in bodies {
            let r = a.put(path, body.to_vec()).await;
            assert_400_with_message(
                &r,
                &format!("PUT {path} with {:?}", String::from_utf8_lossy(body)),
            );
        }
    }
    assert_healthy(&mut a).await;
}

#[tokio::test]
async fn wrong_json_types_are_400() {
    let mut a = Agent::dev().await;
    let cases = [
        (
            "/v1/agent/service/register",
            json!({"Name": "w", "Port": "abc"}),
        ),
        (
            "/v1/agent/service/register",
            json!({"Name": "w", "Tags": "not-a-list"}),
        ),
        ("/v1/agent/service/register", json!({"Name": 42})),
        ("/v1/agent/service/register", json!(["Name", "w"])),
        (
            "/v1/catalog/register",
            json!({"Node": "n", "Address": "1.2.3.4", "Service": {"Service": "s", "Port": "abc"}}),
        ),
        (
            "/v1/catalog/register",
            json!({"Node": "n", "Address": "1.2.3.4", "NodeMeta": ["x"]}),
        ),
        (
            "/v1/catalog/register",
            json!({"Node": ["n"], "Address": "1.2.3.4"}),
        ),
        ("/v1/session/create", json!({"TTL": 10})),
        ("/v1/session/create", json!({"NodeChecks": "serfHealth"})),
        ("/v1/session/create", json!({"LockDelay": "forever"})),
        ("/v1/txn", json!({"KV": {"Verb": "set", "Key": "k"}})),
        (
            "/v1/txn",
            json!([{"KV": {"Verb": "set", "Key": "k", "Value": "!!!not base64"}}]),
        ),
        ("/v1/txn", json!([{"KV": {"Verb": "explode", "Key": "k"}}])),
        (
            "/v1/txn",
            json!([{"KV": {"Verb": "set", "Key": "k", "Flags": "abc"}}]),
        ),
    ];
    for (path, body) in cases {
        let r = a.put_json(path, &body).await;
        assert_400_with_message(&r, &format!("PUT {path} {body}"));
    }
    // Missing required fields.
    let r = a
        .put_json("/v1/agent/service/register", &json!({"Port": 80}))
        .await;
    assert_400_with_message(&r, "service without a Name");
    let r = a
        .put_json("/v1/catalog/register", &json!({"Address": "1.2.3.4"}))
        .await;
    assert_400_with_message(&r, "catalog register without Node");
    let r = a
        .put_json("/v1/agent/check/update/nosuch", &json!({"Status": "bogus"}))
        .await;
    assert_400_with_message(&r, "check update with a bad status");
    // Nothing of the above was registered.
    let svcs = a.get("/v1/agent/services").await.expect(200).json();
    assert!(svcs.get("w").is_none(), "{svcs}");
    assert_healthy(&mut a).await;
}

#[tokio::test]
async fn wrong_verbs_are_405() {
    let mut a = Agent::dev().await;
    let cases = [
        (Method::POST, "/v1/kv/x"),
        (Method::PATCH, "/v1/kv/x"),
        (Method::DELETE, "/v1/catalog/services"),
        (Method::GET, "/v1/catalog/register"),
        (Method::PUT, "/v1/catalog/nodes"),
        (Method::GET, "/v1/session/create"),
        (Method::POST, "/v1/txn"),
        (Method::DELETE, "/v1/agent/self"),
    ];
    for (m, p) in cases {
        let r = a.request(m.clone(), p, Some(b"{}".to_vec())).await;
        assert_eq!(r.status, 405, "{m} {p}: body {:?}", r.text());
    }
    assert!(
        a.kv_entry("x").await.is_none(),
        "POST must not have written"
    );
    assert_healthy(&mut a).await;
}

#[tokio::test]
async fn oversize_bodies_are_413() {
    let mut a = Agent::dev().await;
    // Just over each endpoint's limit (JSON bodies 1 MiB, txn 512 KiB, KV values 512 KiB).
    let cases: &[(&str, usize)] = &[
        ("/v1/catalog/register", 1024 * 1024 + 1024),
        ("/v1/catalog/deregister", 1024 * 1024 + 1024),
        ("/v1/agent/service/register", 1024 * 1024 + 1024),
        ("/v1/agent/check/register", 1024 * 1024 + 1024),
        ("/v1/session/create", 1024 * 1024 + 1024),
        ("/v1/txn", 512 * 1024 + 1024),
        ("/v1/kv/huge", 512 * 1024 + 1),
    ];
    for (path, len) in cases {
        let r = a.put(path, vec![b' '; *len]).await;
        assert_eq!(
            r.status,
            413,
            "PUT {path} with {len} bytes: body {:?}",
            r.text()
        );
        assert!(!r.text().trim().is_empty(), "413 carries a message");
    }
    // A txn whose values are small enough but whose request is over 512 KiB.
    let v = "A".repeat(400 * 1024);
    let txn = json!([
        {"KV": {"Verb": "set", "Key": "t1", "Value": v}},
        {"KV": {"Verb": "set", "Key": "t2", "Value": v}},
    ]);
    let r = a.put_json("/v1/txn", &txn).await;
    assert_eq!(r.status, 413, "txn over 512 KiB: body {:?}", r.text());
    assert!(a.kv_entry("t1").await.is_none());
    assert!(a.kv_entry("huge").await.is_none());

    // Far over the limit: the agent may answer 413 and close before reading it all,
    // so the client may see either the 413 or a reset. Either way it must survive.
    for path in ["/v1/catalog/register", "/v1/kv/huge2"] {
        match a
            .try_request(Method::PUT, path, Some(vec![b' '; 16 * 1024 * 1024]))
            .await
        {
            Ok(r) => assert_eq!(r.status, 413, "PUT {path} with 16 MiB: {:?}", r.text()),
            Err(e) => eprintln!("PUT {path} with 16 MiB: transport error after early 413 ({e})"),
        }
    }
    assert!(a.kv_entry("huge2").await.is_none());
    assert_healthy(&mut a).await;
}

#[tokio::test]
async fn unparsable_query_parameters_are_400() {
    let mut a = Agent::dev().await;
    a.kv_put("x", "v").await;
    let gets = [
        "/v1/kv/x?index=abc",
        "/v1/kv/x?index=-1",
        "/v1/kv/x?index=1&wait=10parsecs",
        "/v1/kv/x?index=1&wait=abc",
        "/v1/kv/?recurse&index=abc",
        "/v1/health/service/web?index=abc",
        "/v1/health/service/web?index=1&wait=10parsecs",
        "/v1/catalog/services?index=1.5",
        "/v1/catalog/nodes?node-meta=nocolon",
        "/v1/catalog/service/web?filter=ServicePort%20%3D%3D",
        "/v1/session/list?index=abc",
        "/v1/kv/x?stale&consistent",
    ];
    for p in gets {
        let r = a.get(p).await;
        assert_400_with_message(&r, &format!("GET {p}"));
    }
    let puts = [
        "/v1/kv/x?cas=-1",
        "/v1/kv/x?cas=abc",
        "/v1/kv/x?flags=-1",
        "/v1/kv/x?flags=1e3",
    ];
    for p in puts {
        let r = a.put(p, "changed").await;
        assert_400_with_message(&r, &format!("PUT {p}"));
    }
    let r = a.delete("/v1/kv/x?cas=-1").await;
    assert_400_with_message(&r, "DELETE ?cas=-1");
    assert_eq!(
        a.get("/v1/kv/x?raw").await.expect(200).body,
        b"v",
        "nothing was written"
    );
    assert_healthy(&mut a).await;
}

#[tokio::test]
async fn unknown_session_in_acquire_is_an_error() {
    let mut a = Agent::dev().await;
    let bogus = "00000000-1111-2222-3333-444444444444";
    let r = a.put(&format!("/v1/kv/l?acquire={bogus}"), "v").await;
    assert!(
        !(r.status == 200 && r.text().trim() == "true"),
        "acquire with an unknown session must not succeed: {} {:?}",
        r.status,
        r.text()
    );
    assert!(
        r.status >= 400 || r.text().trim() == "false",
        "{} {:?}",
        r.status,
        r.text()
    );
    assert!(a.kv_entry("l").await.is_none(), "nothing written");
    let r = a.put(&format!("/v1/kv/l?release={bogus}"), "v").await;
    assert!(
        !(r.status == 200 && r.text().trim() == "true"),
        "{} {:?}",
        r.status,
        r.text()
    );
    let r = a.put("/v1/kv/l?acquire=", "v").await;
    assert!(
        r.status >= 400,
        "empty session: {} {:?}",
        r.status,
        r.text()
    );
    // A session for a node that does not exist cannot be created.
    let r = a
        .put_json("/v1/session/create", &json!({"Node": "no-such-node"}))
        .await;
    assert!(r.status >= 400, "{} {:?}", r.status, r.text());
    // Renewing/destroying garbage IDs does not hurt.
    a.put_empty("/v1/session/destroy/garbage").await.expect(200);
    assert_eq!(a.put_empty("/v1/session/renew/garbage").await.status, 404);
    assert_healthy(&mut a).await;
}

#[tokio::test]
async fn bad_bytes_in_keys_and_names_are_400() {
    let mut a = Agent::dev().await;
    for p in [
        "/v1/kv/a%0ab",
        "/v1/kv/a%0Ab",
        "/v1/kv/%0a",
        "/v1/kv/a%ffb",
        "/v1/kv/a%c3%28",
        "/v1/kv/a%00b",
    ] {
        let r = a.put(p, "v").await;
        assert_400_with_message(&r, &format!("PUT {p}"));
        let r = a.get(p).await;
        assert_400_with_message(&r, &format!("GET {p}"));
        let r = a.delete(p).await;
        assert_400_with_message(&r, &format!("DELETE {p}"));
    }
    for p in [
        "/v1/catalog/service/a%0ab",
        "/v1/health/service/a%0ab",
        "/v1/catalog/node/a%0ab",
        "/v1/session/info/a%0ab",
    ] {
        let r = a.get(p).await;
        assert_400_with_message(&r, &format!("GET {p}"));
    }
    for p in ["/v1/catalog/service/a%ffb", "/v1/health/service/a%ffb"] {
        let r = a.get(p).await;
        assert_400_with_message(&r, &format!("GET {p}"));
    }
    // A key longer than the limit.
    let long = "k".repeat(10_000);
    let r = a.put(&format!("/v1/kv/{long}"), "v").await;
    assert_400_with_message(&r, "10 000-byte key");
    // Properly encoded unusual characters are fine.
    a.kv_put("sp%20ace/%C3%A9t%C3%A9", "ok").await;
    let keys = a.get("/v1/kv/sp?keys").await.expect(200).json();
    assert_eq!(keys, json!(["sp ace/été"]));
    assert_healthy(&mut a).await;
}

#[tokio::test]
async fn everything_at_once_leaves_the_agent_healthy() {
    let mut a = Agent::dev().await;
    // Interleave garbage with valid traffic, concurrently.
    let futs = (0..40).map(|i| {
        let a = &a;
        async move {
            match i % 5 {
                0 => a.put("/v1/catalog/register", "{{{{").await.status,
                1 => a.put("/v1/kv/ok?cas=nope", "x").await.status,
                2 => a.get("/v1/kv/a%ffb").await.status,
                3 => {
                    a.request(Method::POST, "/v1/kv/x", Some(b"y".to_vec()))
                        .await
                        .status
                }
                _ => a.put(&format!("/v1/kv/valid/{i}"), "v").await.status,
            }
        }
    });
    let statuses = futures::future::join_all(futs).await;
    for (i, s) in statuses.iter().enumerate() {
        let want = match i % 5 {
            0..=2 => 400,
            3 => 405,
            _ => 200,
        };
        assert_eq!(*s, want, "request {i}");
    }
    assert_eq!(
        a.get("/v1/kv/valid/?keys")
            .await
            .expect(200)
            .json()
            .as_array()
            .unwrap()
            .len(),
        8
    );
    // Unknown endpoints are 404, not a crash.
    assert_eq!(a.get("/v1/nope").await.status, 404);
    assert_eq!(a.get("/v2/kv/x").await.status, 404);
    assert_healthy(&mut a).await;
}

#[tokio::test]
async fn invalid_check_definitions_are_400() {
    let mut a = Agent::dev().await;
    let cases = [
        ("/v1/agent/check/register", json!({"Name": "nothing"})),
        (
            "/v1/agent/check/register",
            json!({"Name": "bad", "TTL": "10m", "Interval": "xx"}),
        ),
        (
            "/v1/agent/check/register",
            json!({"Name": "bad2", "TTL": "-5s"}),
        ),
        (
            "/v1/agent/service/register",
            json!({"Name": "s", "Check": {"TTL": "abc"}}),
        ),
        (
            "/v1/catalog/register",
            json!({"Node": "n", "Address": "1.1.1.1", "Check": {"CheckID": "c", "Status": "bogus"}}),
        ),
        (
            "/v1/catalog/register",
            json!({"Node": "n", "Address": "1.1.1.1", "Check": {"CheckID": "c", "ServiceID": "nosuch"}}),
        ),
    ];
    for (path, body) in cases {
        let r = a.put_json(path, &body).await;
        assert_400_with_message(&r, &format!("PUT {path} {body}"));
    }
    assert_eq!(
        a.get("/v1/agent/checks").await.expect(200).json(),
        json!({})
    );
    assert!(
        !a.get("/v1/catalog/nodes").await.text().contains("\"n\""),
        "node n was not registered"
    );
    assert_healthy(&mut a).await;
}
