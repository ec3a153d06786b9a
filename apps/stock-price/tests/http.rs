//! The stock-price service over real HTTP on ephemeral ports: the in-process
//! router for pinned-clock cases, the real binary for the process contract.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use sample_common::test_support::{self, get_json, serve, Proc};
use stock_price::companies::Companies;
use stock_price::upstream::Upstream;
use stock_price::{router, AppState};

fn state(now: Arc<AtomicI64>, upstream: Option<Upstream>) -> AppState {
    AppState {
        companies: Arc::new(Companies::builtin()),
        clock: Arc::new(move || now.load(Ordering::SeqCst)),
        upstream,
        log_requests: false,
    }
}

const DAY: i64 = 86_400;
const T0: i64 = 20_000 * DAY + 3_600;

#[tokio::test]
async fn known_symbol_answers_name_and_two_decimal_price() {
    let addr = serve(router(state(Arc::new(AtomicI64::new(T0)), None))).await;
    let (status, v) = get_json(&format!("http://{addr}/stock/amzn")).await;
    assert_eq!(status, 200);
    assert_eq!(v["symbol"], "AMZN");
    assert_eq!(v["name"], "Amazon");
    let price = v["price"].as_str().expect("price is a string");
    let (units, cents) = price.split_once('.').expect("a decimal point");
    assert!(units.parse::<u64>().is_ok() && !units.is_empty(), "{price}");
    assert!(cents.len() == 2 && cents.parse::<u8>().is_ok(), "{price}");
}

#[tokio::test]
async fn unknown_symbol_is_a_json_404_and_junk_a_json_400() {
    let addr = serve(router(state(Arc::new(AtomicI64::new(T0)), None))).await;
    let (status, v) = get_json(&format!("http://{addr}/stock/NOSUCHSYM")).await;
    assert_eq!(status, 404);
    assert_eq!(v["error"], "unknown symbol");
    assert_eq!(v["symbol"], "NOSUCHSYM");
    let (status, v) = get_json(&format!("http://{addr}/stock/a%20b")).await;
    assert_eq!(status, 400);
    assert!(v["error"].is_string());
    let (status, v) = get_json(&format!("http://{addr}/nope")).await;
    assert_eq!(status, 404);
    assert!(v["error"].is_string());
}

#[tokio::test]
async fn price_is_fixed_within_a_day_and_moves_across_days() {
    let now = Arc::new(AtomicI64::new(T0));
    let addr = serve(router(state(now.clone(), None))).await;
    let url = format!("http://{addr}/stock/AAPL");
    let first = get_json(&url).await.1["price"].clone();
    now.store(T0 + 20 * 3_600, Ordering::SeqCst); // same UTC day, later
    assert_eq!(get_json(&url).await.1["price"], first);
    // A second instance with the same clock agrees (every replica answers alike).
    let other = serve(router(state(now.clone(), None))).await;
    assert_eq!(
        get_json(&format!("http://{other}/stock/AAPL")).await.1["price"],
        first
    );
    let mut changed = 0;
    for d in 1..=10 {
        now.store(T0 + d * DAY, Ordering::SeqCst);
        if get_json(&url).await.1["price"] != first {
            changed += 1;
        }
    }
    assert!(changed >= 8, "price changed on only {changed} of 10 days");
}

#[tokio::test]
async fn health_is_plain_ok() {
    let addr = serve(router(state(Arc::new(AtomicI64::new(T0)), None))).await;
    let r = reqwest::get(format!("http://{addr}/health")).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.text().await.unwrap(), "OK");
}

#[tokio::test]
async fn fake_upstream_via_url_template() {
    let fake = Router::new().route(
        "/q/{sym}",
        get(
            |axum::extract::Path(sym): axum::extract::Path<String>| async move {
                let (code, body) = match sym.as_str() {
                    "AMZN" => (200, r#"{"price": 187.5, "name": "Amazon.com, Inc."}"#),
                    "ZZZZ" => (200, r#"{"price": "3.14159"}"#),
                    "BAD" => (200, "garbage"),
                    "DOWN" => (503, ""),
                    _ => (404, ""),
                };
                (StatusCode::from_u16(code).unwrap(), body)
            },
        ),
    );
    let up_addr = serve(fake).await;
    let upstream = Upstream::new(&format!("http://{up_addr}/q/{{symbol}}")).unwrap();
    let addr = serve(router(state(Arc::new(AtomicI64::new(T0)), Some(upstream)))).await;

    let (s, v) = get_json(&format!("http://{addr}/stock/amzn")).await;
    assert_eq!(s, 200);
    assert_eq!(v["price"], "187.50");
    assert_eq!(v["name"], "Amazon.com, Inc.");
    // No name upstream and none built in: the symbol stands in.
    let (s, v) = get_json(&format!("http://{addr}/stock/ZZZZ")).await;
    assert_eq!(
        (s, v["price"].as_str(), v["name"].as_str()),
        (200, Some("3.14"), Some("ZZZZ"))
    );
    let (s, v) = get_json(&format!("http://{addr}/stock/AAPL")).await;
    assert_eq!((s, v["error"].as_str()), (404, Some("unknown symbol")));
    let (s, v) = get_json(&format!("http://{addr}/stock/BAD")).await;
    assert_eq!(s, 502, "{v}");
    let (s, _) = get_json(&format!("http://{addr}/stock/DOWN")).await;
    assert_eq!(s, 502);
}

/// Starts the real binary on an ephemeral port and reads its address from
/// the "listening on" line (polling with a deadline).
fn start_binary(envs: &[(&str, &str)]) -> (Proc, SocketAddr, BufReader<std::process::ChildStderr>) {
    test_support::start_binary(env!("CARGO_BIN_EXE_stock-price"), "stock-price", envs)
}

#[tokio::test]
async fn binary_serves_on_port_from_env_and_logs_each_request() {
    let (_p, addr, mut err) = start_binary(&[]);
    let (s, v) = get_json(&format!("http://{addr}/stock/MSFT")).await;
    assert_eq!((s, v["name"].as_str()), (200, Some("Microsoft")));
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert!(line.starts_with("GET /stock/MSFT 200 "), "{line:?}");
}

#[test]
fn binary_rejects_a_bad_port_and_a_bad_upstream() {
    for (k, v) in [("PORT", "http"), ("STOCK_UPSTREAM_URL", "nope")] {
        let out = Command::new(env!("CARGO_BIN_EXE_stock-price"))
            .env(k, v)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{k}={v}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("PORT") || err.contains("upstream URL"),
            "{err}"
        );
    }
}

#[test]
fn over_500_companies_are_built_in() {
    assert!(Companies::builtin().len() >= 500);
}
