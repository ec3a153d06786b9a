//! The stub resolver's transport rules against a fake server: truncated UDP
//! answers are retried over TCP, a silent server is a timeout (bounded, no
//! hang), an error code such as SERVFAIL ends the lookup at once, and a
//! garbage datagram (or a duplicate of an earlier answer) does not poison the
//! answer.

mod support;

use std::net::Ipv4Addr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use portal::discovery::DiscoveryError;
use portal::dns_wire::DnsError;
use portal::{Discovery, DnsDiscovery};
use support::{Behaviour, Entry, FakeDns};

fn one_instance() -> Vec<(String, Vec<Entry>)> {
    vec![(
        "web.service.consul.".into(),
        vec![Entry {
            target: "n1.node.dc1.consul.".into(),
            port: 8080,
            ip: Ipv4Addr::new(127, 0, 0, 9),
            in_additional: true,
        }],
    )]
}

#[tokio::test]
async fn truncated_udp_answer_is_retried_over_tcp() {
    let fake = FakeDns::start(Behaviour {
        services: one_instance(),
        truncate_udp: true,
        ..Behaviour::default()
    })
    .await;
    let d = DnsDiscovery::new(fake.addr, Duration::from_millis(500));
    let cands = d.candidates("web.service.consul").await.unwrap();
    assert_eq!(cands.len(), 1);
    assert_eq!(cands[0].port, 8080);
    assert_eq!(cands[0].known, Some(Ipv4Addr::new(127, 0, 0, 9).into()));
    assert_eq!(fake.udp_queries.load(Ordering::SeqCst), 1);
    assert_eq!(fake.tcp_queries.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn silent_server_times_out_after_two_tries() {
    let fake = FakeDns::start(Behaviour {
        services: one_instance(),
        silent: true,
        ..Behaviour::default()
    })
    .await;
    let d = DnsDiscovery::new(fake.addr, Duration::from_millis(150));
    let started = Instant::now();
    let err = d.candidates("web.service.consul").await.unwrap_err();
    let took = started.elapsed();
    assert!(
        matches!(err, DiscoveryError::Dns(DnsError::Timeout(_))),
        "{err:?}"
    );
    assert!(
        took >= Duration::from_millis(290) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert_eq!(fake.udp_queries.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn garbage_datagram_before_the_answer_is_ignored() {
    // A "server" that first sends junk, then forwards to the real fake.
    let fake = FakeDns::start(Behaviour {
        services: one_instance(),
        ..Behaviour::default()
    })
    .await;
    let front = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let front_addr = front.local_addr().unwrap();
    let upstream = fake.addr;
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while let Ok((n, peer)) = front.recv_from(&mut buf).await {
            let _ = front.send_to(b"\x12\x34garbage", peer).await;
            let relay = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
            relay.send_to(&buf[..n], upstream).await.unwrap();
            let mut rb = vec![0u8; 4096];
            let m = relay.recv(&mut rb).await.unwrap();
            let _ = front.send_to(&rb[..m], peer).await;
        }
    });
    let d = DnsDiscovery::new(front_addr, Duration::from_millis(1000));
    assert_eq!(d.candidates("web.service.consul").await.unwrap().len(), 1);
}

#[tokio::test]
async fn sequential_lookups_reuse_one_socket_and_a_timeout_drops_it() {
    let fake = FakeDns::start(Behaviour {
        services: one_instance(),
        ..Behaviour::default()
    })
    .await;
    let d = DnsDiscovery::new(fake.addr, Duration::from_millis(150));
    for _ in 0..5 {
        assert_eq!(d.candidates("web.service.consul").await.unwrap().len(), 1);
    }
    assert_eq!(fake.udp_queries.load(Ordering::SeqCst), 5);
    assert_eq!(fake.udp_peers.lock().unwrap().len(), 1, "one pooled socket");
    // A timed-out socket is not reused: the next lookup comes from a new port.
    fake.behaviour.lock().unwrap().silent = true;
    assert!(d.candidates("web.service.consul").await.is_err());
    fake.behaviour.lock().unwrap().silent = false;
    assert_eq!(d.candidates("web.service.consul").await.unwrap().len(), 1);
    assert_eq!(fake.udp_peers.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn duplicate_answers_left_on_a_pooled_socket_are_skipped() {
    // Every answer arrives twice: the copy is still queued on the pooled
    // socket when the next lookup starts, and must be read and ignored (its
    // id is the previous query's), not answer it or stall it.
    let fake = FakeDns::start(Behaviour {
        services: one_instance(),
        duplicate: true,
        ..Behaviour::default()
    })
    .await;
    let d = DnsDiscovery::new(fake.addr, Duration::from_millis(500));
    let started = Instant::now();
    for _ in 0..20 {
        let cands = d.candidates("web.service.consul").await.unwrap();
        assert_eq!(cands.len(), 1);
    }
    assert_eq!(
        fake.udp_queries.load(Ordering::SeqCst),
        20,
        "no retry was needed"
    );
    assert_eq!(fake.udp_peers.lock().unwrap().len(), 1, "one pooled socket");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn an_error_code_ends_the_lookup_without_a_retry() {
    // SERVFAIL to this very query is the server's answer, not a stray datagram
    // to ignore until the timeout.
    let fake = FakeDns::start(Behaviour {
        services: one_instance(),
        rcode: Some(hickory_proto::op::ResponseCode::ServFail),
        ..Behaviour::default()
    })
    .await;
    let d = DnsDiscovery::new(fake.addr, Duration::from_secs(5));
    let started = Instant::now();
    let err = d.candidates("web.service.consul").await.unwrap_err();
    assert_eq!(err, DiscoveryError::Dns(DnsError::Rcode("SERVFAIL".into())));
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "no timeout wait"
    );
    assert_eq!(fake.udp_queries.load(Ordering::SeqCst), 1);
    // The socket goes back to the pool: the next lookup uses it.
    assert!(d.candidates("web.service.consul").await.is_err());
    assert_eq!(fake.udp_peers.lock().unwrap().len(), 1);
}
