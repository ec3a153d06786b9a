//! The weather service over real HTTP on ephemeral ports: the in-process
//! router for pinned-clock cases, the real binary for the process contract.

use std::io::BufRead;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use sample_common::test_support::{get_json, serve, start_binary};
use weather::cities::Cities;
use weather::upstream::Upstream;
use weather::{router, AppState, TempScale};

/// 2025-07-15 12:00 UTC.
const T0: i64 = 1_752_580_800;

fn state(scale: TempScale, upstream: Option<Upstream>) -> AppState {
    AppState {
        cities: Arc::new(Cities::builtin()),
        clock: Arc::new(|| T0),
        scale,
        upstream,
        log_requests: false,
    }
}

#[tokio::test]
async fn known_city_answers_the_original_shape() {
    let addr = serve(router(state(TempScale::Celsius, None))).await;
    let (s, v) = get_json(&format!("http://{addr}/weather/London")).await;
    assert_eq!(s, 200);
    assert_eq!(v["city"], "London");
    assert_eq!(v["country"], "GB");
    assert_eq!(v["format"], "Celsius");
    let t = v["temp"].as_f64().expect("temp is a number");
    assert!((5.0..35.0).contains(&t), "London in July at noon: {t}");
    let (s, v) = get_json(&format!("http://{addr}/weather/S%C3%A3o%20Paulo")).await;
    assert_eq!((s, v["country"].as_str()), (200, Some("BR")));
    let (s, v) = get_json(&format!("http://{addr}/weather/london,ca")).await;
    assert_eq!((s, v["country"].as_str()), (200, Some("CA")));
}

#[tokio::test]
async fn temp_scale_f_converts_and_names_the_format() {
    let c = serve(router(state(TempScale::Celsius, None))).await;
    let f = serve(router(state(TempScale::Fahrenheit, None))).await;
    for city in ["Paris", "Tokyo", "Sydney", "Moscow"] {
        let (_, vc) = get_json(&format!("http://{c}/weather/{city}")).await;
        let (_, vf) = get_json(&format!("http://{f}/weather/{city}")).await;
        assert_eq!(vf["format"], "Farenheit");
        let tc = vc["temp"].as_f64().unwrap();
        let tf = vf["temp"].as_f64().unwrap();
        assert!(
            (tf - (tc * 1.8 + 32.0)).abs() < 0.2,
            "{city}: {tc}C vs {tf}F"
        );
    }
}

#[tokio::test]
async fn same_time_same_temperature_on_every_instance() {
    let a = serve(router(state(TempScale::Celsius, None))).await;
    let b = serve(router(state(TempScale::Celsius, None))).await;
    let (_, va) = get_json(&format!("http://{a}/weather/Berlin")).await;
    let (_, vb) = get_json(&format!("http://{b}/weather/Berlin")).await;
    assert_eq!(va, vb);
}

#[tokio::test]
async fn unknown_city_404_junk_400_and_health() {
    let addr = serve(router(state(TempScale::Celsius, None))).await;
    let (s, v) = get_json(&format!("http://{addr}/weather/Atlantis")).await;
    assert_eq!(
        (s, v["error"].as_str(), v["city"].as_str()),
        (404, Some("unknown city"), Some("Atlantis"))
    );
    let long = "x".repeat(300);
    let (s, v) = get_json(&format!("http://{addr}/weather/{long}")).await;
    assert_eq!(s, 400);
    assert!(v["error"].is_string());
    let r = reqwest::get(format!("http://{addr}/health")).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.text().await.unwrap(), "OK");
}

#[tokio::test]
async fn fake_upstream_via_url_template() {
    let fake = Router::new().route(
        "/now",
        get(
            |axum::extract::Query(q): axum::extract::Query<
                std::collections::HashMap<String, String>,
            >| async move {
                let (code, body) = match q.get("q").map(String::as_str) {
                    Some("São Paulo") => (
                        200,
                        r#"{"temp": 25.0, "city": "Sao Paulo City", "country": "BR"}"#,
                    ),
                    Some("Nowhere") => (200, r#"{"temp": -3.3}"#),
                    Some("Broken") => (200, r#"{"temp": "warm"}"#),
                    _ => (404, ""),
                };
                (StatusCode::from_u16(code).unwrap(), body)
            },
        ),
    );
    let up = serve(fake).await;
    let upstream = Upstream::new(&format!("http://{up}/now?q={{city}}")).unwrap();
    let addr = serve(router(state(TempScale::Fahrenheit, Some(upstream)))).await;
    let (s, v) = get_json(&format!("http://{addr}/weather/S%C3%A3o%20Paulo")).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["city"], "Sao Paulo City");
    assert_eq!(v["temp"], 77.0);
    assert_eq!(v["format"], "Farenheit");
    let (s, v) = get_json(&format!("http://{addr}/weather/Nowhere")).await;
    assert_eq!(
        (s, v["city"].as_str(), v["country"].as_str()),
        (200, Some("Nowhere"), Some(""))
    );
    let (s, _) = get_json(&format!("http://{addr}/weather/Broken")).await;
    assert_eq!(s, 502);
    let (s, _) = get_json(&format!("http://{addr}/weather/Paris")).await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn binary_reads_temp_scale_and_logs_requests() {
    let (_p, addr, mut err) = start_binary(
        env!("CARGO_BIN_EXE_weather"),
        "weather",
        &[("TEMP_SCALE", "F")],
    );
    let (s, v) = get_json(&format!("http://{addr}/weather/Tokyo")).await;
    assert_eq!(
        (s, v["format"].as_str(), v["country"].as_str()),
        (200, Some("Farenheit"), Some("JP"))
    );
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert!(line.starts_with("GET /weather/Tokyo 200 "), "{line:?}");
}

#[test]
fn over_1000_cities_are_built_in() {
    assert!(Cities::builtin().len() >= 1000);
}
