//! Micro-benchmark: unary round trips per second and latency percentiles over TCP loopback
//! (and, for comparison, the in-process network), at concurrency 1, 16 and 64, small request.
//!
//! Ignored by default; run with
//! `cargo test -p cairn-rpc --release --test bench -- --ignored --nocapture`.
//! Bounded: each level runs for a fixed time against a server on 127.0.0.1. Besides rates and
//! latencies it prints the process's CPU time per call (client and server together), which
//! stays meaningful on a machine shared with other work.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_rpc::{Client, ClientConfig, Network, Routes, RpcServer, ServerConfig, TcpClient};
use support::*;
use tokio::net::TcpListener;

const WARMUP: Duration = Duration::from_millis(500);
const RUN: Duration = Duration::from_secs(3);

async fn measure(client: &Client<TestProto>, addr: SocketAddr, concurrency: usize) -> String {
    let run = |dur: Duration| {
        let tasks: Vec<_> = (0..concurrency)
            .map(|_| {
                let client = client.clone();
                tokio::spawn(async move {
                    let mut lat = Vec::new();
                    let end = Instant::now() + dur;
                    while Instant::now() < end {
                        let t = Instant::now();
                        echo(&client, addr, "ping").await;
                        lat.push(t.elapsed());
                    }
                    lat
                })
            })
            .collect();
        async move {
            let mut all = Vec::new();
            for t in tasks {
                all.extend(t.await.unwrap());
            }
            all
        }
    };
    run(WARMUP).await;
    let started = Instant::now();
    let cpu_before = process_cpu();
    let mut lat = run(RUN).await;
    let cpu = process_cpu() - cpu_before;
    let secs = started.elapsed().as_secs_f64();
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    format!(
        "c={concurrency:<3} {:>9.0} calls/s   p50 {:>8.1?}   p99 {:>8.1?}   CPU {:>5.1} µs/call   ({} calls)",
        lat.len() as f64 / secs,
        pct(0.50),
        pct(0.99),
        cpu.as_secs_f64() * 1e6 / lat.len() as f64,
        lat.len()
    )
}

/// User + system CPU time of this process (client and server together): unlike wall-clock
/// rates, CPU per call does not depend on how busy the rest of the machine is.
fn process_cpu() -> Duration {
    // SAFETY: getrusage only writes the struct we pass, which is zero-initialised plain data.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with --release --ignored --nocapture"]
async fn unary_round_trips() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = Arc::new(TestService {
        probe: Arc::default(),
    });
    tokio::spawn(async move {
        RpcServer::new(ServerConfig::default())
            .serve(
                listener,
                Routes::new().route::<TestProto, _>(service),
                std::future::pending(),
            )
            .await
    });
    let tcp = Client::new(TcpClient::<TestProto>::new(ClientConfig::default()));
    println!("TCP loopback (one HTTP/2 connection, postcard, client and server in one process):");
    for c in [1, 16, 64] {
        println!("  {}", measure(&tcp, addr, c).await);
    }

    let pooled = Client::new(TcpClient::<TestProto>::new(ClientConfig {
        connections_per_peer: 2,
        ..ClientConfig::default()
    }));
    println!("TCP loopback, 2 connections to the peer:");
    for c in [16, 64] {
        println!("  {}", measure(&pooled, addr, c).await);
    }

    let net = Network::new(1);
    let local = SocketAddr::from(([127, 0, 0, 1], 8300));
    let _server = net
        .serve(
            local,
            Routes::new().route::<TestProto, _>(Arc::new(TestService {
                probe: Arc::default(),
            })),
            ServerConfig::default(),
        )
        .unwrap();
    let inproc = Client::new(net.client::<TestProto>(
        SocketAddr::from(([127, 0, 0, 2], 1)),
        ClientConfig::default(),
    ));
    println!("In-process network (codec on both sides, no sockets):");
    for c in [1, 16, 64] {
        println!("  {}", measure(&inproc, local, c).await);
    }
}
