//! A stand-alone DNS server over the benchmark catalog of
//! `bench/dns_vs_nsd.sh` (100 services x 3 instances `svcNNN`, nodes
//! `svcNNN-nK`, addresses 127.1.x.y), for measuring the server without the
//! agent: `dnsperf -s 127.0.0.1 -p PORT -d queries-srv.txt ...`.
//!
//! Run: `cargo run --release -p cairn-dns --example serve_bench [PORT] [SOCKETS] [CACHE]`
//! (defaults 18654, the available parallelism, 1). `SOCKETS=0` serves the
//! single-socket `serve` path; `CACHE=0` turns the answer cache off.

use std::net::SocketAddr;
use std::sync::Arc;

use cairn_dns::{
    bind_udp_reuseport, serve, serve_sockets, udp_socket_count, DnsConfig, FixedGeneration,
    MemoryCatalog, Resolver, ServerLimits,
};

fn catalog() -> MemoryCatalog {
    MemoryCatalog::synthetic(100, 3)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let port: u16 = args.next().and_then(|a| a.parse().ok()).unwrap_or(18654);
    let sockets: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(udp_socket_count);
    let cache: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let resolver = Arc::new(Resolver::new(
        FixedGeneration(catalog(), cache),
        DnsConfig::default(),
    ));
    let tcp = tokio::net::TcpListener::bind(addr).await?;
    println!("serving {addr} ({sockets} udp sockets, cache {cache})");
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    if sockets == 0 {
        let udp = tokio::net::UdpSocket::bind(addr).await?;
        serve(udp, tcp, resolver, stop).await;
        Ok(())
    } else {
        let udp = bind_udp_reuseport(addr, sockets)?;
        serve_sockets(udp, tcp, resolver, ServerLimits::default(), stop).await
    }
}
