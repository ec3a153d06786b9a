//! The portal over real HTTP with real stock-price and weather instances on
//! ephemeral ports: the JSON answer gains the instance, a dead instance is
//! skipped, no instance is a clear 503/502, the page is served.

mod support;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use portal::proxy::Caller;
use portal::{AnyDiscovery, AppState, DnsDiscovery, Route, StaticDiscovery};
use serde_json::Value;
use support::{dead_port, serve, stock_instance, weather_instance, Behaviour, Entry, FakeDns};

fn fixed(list: Vec<SocketAddr>, service: &str) -> Route {
    Route {
        discovery: Arc::new(AnyDiscovery::Static(StaticDiscovery::new(list))),
        service: service.into(),
    }
}

async fn portal(stock: Route, weather: Route) -> SocketAddr {
    serve(portal::router(AppState {
        stock,
        weather,
        caller: Caller::new(Duration::from_secs(2)),
        log_requests: false,
    }))
    .await
}

async fn get(url: &str) -> (u16, Option<String>, Value) {
    let r = reqwest::get(url).await.unwrap();
    let s = r.status().as_u16();
    let inst = r
        .headers()
        .get("x-instance")
        .map(|v| v.to_str().unwrap().to_string());
    (s, inst, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn answers_carry_the_instance_that_served_them() {
    let s = stock_instance().await;
    let w = weather_instance().await;
    let p = portal(fixed(vec![s], "stock-price"), fixed(vec![w], "weather")).await;
    let (status, header, v) = get(&format!("http://{p}/stock/AMZN")).await;
    assert_eq!(status, 200);
    assert_eq!(v["name"], "Amazon");
    assert_eq!(v["instance"]["port"], s.port());
    assert_eq!(v["instance"]["address"], "127.0.0.1");
    assert_eq!(header.unwrap(), format!("127.0.0.1 127.0.0.1:{}", s.port()));
    let (status, _, v) = get(&format!("http://{p}/weather/S%C3%A3o%20Paulo")).await;
    assert_eq!(status, 200);
    assert_eq!(v["country"], "BR");
    assert_eq!(v["instance"]["port"], w.port());
    // The back end's 404 is relayed, with the instance.
    let (status, _, v) = get(&format!("http://{p}/stock/NOSUCH")).await;
    assert_eq!((status, v["error"].as_str()), (404, Some("unknown symbol")));
    assert_eq!(v["instance"]["port"], s.port());
}

#[tokio::test]
async fn a_dead_instance_is_skipped() {
    let s = stock_instance().await;
    let dead: SocketAddr = ([127, 0, 0, 1], dead_port()).into();
    let p = portal(
        fixed(vec![dead, s], "stock-price"),
        fixed(vec![], "weather"),
    )
    .await;
    for _ in 0..10 {
        let (status, _, v) = get(&format!("http://{p}/stock/MSFT")).await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["instance"]["port"], s.port());
    }
}

#[tokio::test]
async fn no_instance_is_503_and_all_dead_is_502() {
    let dead: SocketAddr = ([127, 0, 0, 1], dead_port()).into();
    let p = portal(fixed(vec![dead], "stock-price"), fixed(vec![], "weather")).await;
    let (status, _, v) = get(&format!("http://{p}/weather/Paris")).await;
    assert_eq!(status, 503);
    assert!(
        v["error"].as_str().unwrap().contains("no healthy instance"),
        "{v}"
    );
    let (status, _, v) = get(&format!("http://{p}/stock/AMZN")).await;
    assert_eq!(status, 502);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("no instance of stock-price answered"),
        "{v}"
    );
    let long = "A".repeat(200);
    let (status, _, _) = get(&format!("http://{p}/stock/{long}")).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn srv_lookup_happens_on_every_request_and_names_the_node() {
    let s = stock_instance().await;
    let fake = FakeDns::start(Behaviour {
        services: vec![(
            "stock-price.service.consul.".into(),
            vec![Entry {
                target: "ip-10-0-1-93.node.dc1.consul.".into(),
                port: s.port(),
                ip: std::net::Ipv4Addr::LOCALHOST,
                in_additional: true,
            }],
        )],
        ..Behaviour::default()
    })
    .await;
    let route = Route {
        discovery: Arc::new(AnyDiscovery::Dns(DnsDiscovery::new(
            fake.addr,
            Duration::from_millis(500),
        ))),
        service: "stock-price.service.consul".into(),
    };
    let p = portal(route, fixed(vec![], "weather")).await;
    for i in 1..=3 {
        let (status, _, v) = get(&format!("http://{p}/stock/AAPL")).await;
        assert_eq!(status, 200);
        assert_eq!(v["instance"]["node"], "ip-10-0-1-93");
        assert_eq!(fake.udp_queries.load(Ordering::SeqCst), i);
    }
    // NXDOMAIN for weather's name: 503.
    fake.behaviour.lock().unwrap().services.clear();
    let (status, _, _) = get(&format!("http://{p}/stock/AAPL")).await;
    assert_eq!(status, 503);
}

#[tokio::test]
async fn page_and_health() {
    let p = portal(fixed(vec![], "stock-price"), fixed(vec![], "weather")).await;
    let r = reqwest::get(format!("http://{p}/")).await.unwrap();
    assert_eq!(r.status().as_u16(), 200, "redirect followed to the page");
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = r.text().await.unwrap();
    for needle in [
        "Consul client lookup demo",
        "Add stock:",
        "Add city:",
        "Sort by price",
        "Jump to first page",
    ] {
        assert!(html.contains(needle), "page lacks {needle:?}");
    }
    assert!(
        !html.contains("<script src") && !html.contains("<link "),
        "no external scripts or styles"
    );
    let r = reqwest::get(format!("http://{p}/health")).await.unwrap();
    assert_eq!(r.text().await.unwrap(), "OK");
}

#[tokio::test]
async fn an_instance_answering_5xx_is_skipped_and_counted() {
    let s = stock_instance().await;
    let sick = serve(axum::Router::new().route(
        "/stock/{s}",
        axum::routing::get(|| async { (axum::http::StatusCode::SERVICE_UNAVAILABLE, "sick") }),
    ))
    .await;
    let p = portal(
        fixed(vec![sick, s], "stock-price"),
        fixed(vec![], "weather"),
    )
    .await;
    let mut attempts = std::collections::HashSet::new();
    for _ in 0..30 {
        let r = reqwest::get(format!("http://{p}/stock/AMZN"))
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        attempts.insert(r.headers()["x-attempts"].to_str().unwrap().to_string());
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["instance"]["port"], s.port());
    }
    // Picked first about half the time, the sick instance costs a second attempt.
    assert_eq!(
        attempts,
        ["1", "2"].map(String::from).into(),
        "{attempts:?}"
    );
}
