//! In-process-only behaviour: partitions, seeded message loss and delay, and the connection
//! events a cluster harness relies on.

mod support;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use cairn_rpc::{
    CallOptions, Client, ClientConfig, ConnectionEventKind, Delivery, Network, Routes, RpcError,
    ServerConfig,
};
use futures::StreamExt;
use support::*;

fn addr(n: u8) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, n], 8300))
}

fn setup(seed: u64) -> (Network, Arc<Probe>, cairn_rpc::LocalServer) {
    println!("in-process network seed {seed}");
    let net = Network::new(seed);
    let probe: Arc<Probe> = Arc::default();
    let server = net
        .serve(
            addr(1),
            Routes::new().route::<TestProto, _>(Arc::new(TestService {
                probe: probe.clone(),
            })),
            ServerConfig::default(),
        )
        .unwrap();
    (net, probe, server)
}

#[tokio::test]
async fn a_partition_makes_the_peer_unreachable_until_healed() {
    let (net, probe, _server) = setup(7);
    let a = Client::new(net.client::<TestProto>(addr(2), ClientConfig::default()));
    let b = Client::new(net.client::<TestProto>(addr(3), ClientConfig::default()));
    let mut a_events = a.events();
    echo(&a, addr(1), "x").await;
    assert_eq!(
        a_events.recv().await.unwrap().kind,
        ConnectionEventKind::Connected
    );

    // A call in flight when the partition starts loses its connection.
    let blocked = tokio::spawn({
        let a = a.clone();
        async move {
            a.subscribe(
                addr(1),
                Req::Count {
                    limit: None,
                    pad: 0,
                    fail_after: None,
                },
            )
            .await
        }
    });
    let mut stream = blocked.await.unwrap().unwrap();
    assert_eq!(stream.next().await.unwrap().unwrap().n, 0);

    net.partition(addr(2), addr(1));
    let err = a.call(addr(1), Req::Echo("x".into())).await.unwrap_err();
    assert!(matches!(err, RpcError::Unreachable { .. }), "{err}");
    assert_eq!(err.delivery(), Delivery::NotDelivered);
    let lost = a_events.recv().await.unwrap();
    assert!(
        matches!(lost.kind, ConnectionEventKind::Lost { .. }),
        "{lost:?}"
    );
    // Drain what was already in flight; the stream then fails.
    let mut ended = None;
    while let Some(item) = stream.next().await {
        if let Err(e) = item {
            ended = Some(e);
        }
    }
    assert!(
        matches!(ended, Some(RpcError::ConnectionLost { .. })),
        "{ended:?}"
    );
    drop(stream);
    eventually("stream handler dropped", WAIT, || {
        probe.active.load(Ordering::SeqCst) == 0
    })
    .await;
    // Other links are unaffected.
    echo(&b, addr(1), "b").await;

    net.heal(addr(1), addr(2));
    assert_echoes(&a, addr(1), "y").await;
    assert_eq!(
        a_events.recv().await.unwrap().kind,
        ConnectionEventKind::Connected
    );
}

#[tokio::test]
async fn a_second_server_on_a_taken_address_is_refused() {
    let (net, probe, _server) = setup(1);
    let err = net
        .serve(
            addr(1),
            Routes::new().route::<TestProto, _>(Arc::new(TestService { probe })),
            ServerConfig::default(),
        )
        .err()
        .unwrap();
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
}

/// Runs `n` calls one after another; returns which failed.
async fn fates(seed: u64, n: usize) -> Vec<bool> {
    let (net, _probe, _server) = setup(seed);
    net.set_drop_probability(0.25);
    let client = Client::new(net.client::<TestProto>(addr(2), ClientConfig::default()));
    let mut out = Vec::new();
    for i in 0..n {
        match client.call(addr(1), Req::Echo(i.to_string())).await {
            Ok(_) => out.push(true),
            Err(e) => {
                assert!(matches!(e, RpcError::ConnectionLost { .. }), "{e}");
                assert_eq!(e.delivery(), Delivery::Unknown);
                out.push(false);
            }
        }
    }
    out
}

#[tokio::test]
async fn message_loss_is_seeded_and_replays_exactly() {
    let seed = 20261130;
    let first = fates(seed, 200).await;
    let again = fates(seed, 200).await;
    assert_eq!(first, again, "same seed, same losses (seed {seed})");
    let lost = first.iter().filter(|ok| !**ok).count();
    assert!(
        (20..80).contains(&lost),
        "lost {lost} of 200 at p=0.25 (seed {seed})"
    );
    assert_ne!(
        first,
        fates(seed + 1, 200).await,
        "another seed, other losses"
    );
}

#[tokio::test]
async fn added_delay_applies_each_way_and_counts_against_the_deadline() {
    let (net, _probe, _server) = setup(3);
    net.set_delay(Duration::from_millis(50), Duration::ZERO);
    let client = Client::new(net.client::<TestProto>(addr(2), ClientConfig::default()));
    let started = tokio::time::Instant::now();
    echo(&client, addr(1), "slow").await;
    assert!(
        started.elapsed() >= Duration::from_millis(100),
        "{:?}",
        started.elapsed()
    );
    let err = client
        .call_with(
            addr(1),
            Req::Echo("late".into()),
            CallOptions::timeout(Duration::from_millis(60)),
        )
        .await
        .unwrap_err();
    assert_eq!(err, RpcError::Timeout { request_sent: true });
}

/// Streamed items arrive the base delay after the server sent them, in order and
/// pipelined (not one delay per item in turn), and a delay set while a stream is open
/// applies to its later items: a stream's follower lags by the delay.
#[tokio::test]
async fn stream_items_arrive_the_delay_after_they_were_sent() {
    let (net, _probe, _server) = setup(5);
    let client = Client::new(net.client::<TestProto>(addr(2), ClientConfig::default()));
    let count = |limit| Req::Count {
        limit: Some(limit),
        pad: 0,
        fail_after: None,
    };
    let items = |s: cairn_rpc::RpcStream<Tick>| async move {
        s.map(|t| t.unwrap().n).collect::<Vec<_>>().await
    };

    net.set_delay(Duration::from_millis(100), Duration::from_millis(30));
    let started = tokio::time::Instant::now();
    let s = client.subscribe(addr(1), count(20)).await.unwrap();
    let opened = started.elapsed();
    assert!(opened >= Duration::from_millis(100), "{opened:?}");
    assert_eq!(items(s).await, (0..20).collect::<Vec<_>>());
    let items_took = started.elapsed() - opened;
    // Pipelined: the 16-item window lets 20 items through in two delays; 20 delays one
    // after the other would take 2 s.
    assert!(
        items_took >= Duration::from_millis(90) && items_took < Duration::from_millis(1500),
        "20 items took {items_took:?} after the open"
    );

    // Set while the stream is open: the next item, already sent, arrives late.
    net.set_delay(Duration::ZERO, Duration::ZERO);
    let mut s = client.subscribe(addr(1), count(3)).await.unwrap();
    assert_eq!(s.next().await.unwrap().unwrap().n, 0);
    net.set_delay(Duration::from_millis(500), Duration::ZERO);
    let before = tokio::time::Instant::now();
    assert_eq!(s.next().await.unwrap().unwrap().n, 1);
    assert!(
        before.elapsed() >= Duration::from_millis(300),
        "{:?}",
        before.elapsed()
    );

    // A partition while an item is on its way breaks the stream at once.
    net.set_stream_delay(Some(Duration::from_secs(30)));
    let waiting = tokio::spawn(async move { s.next().await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    net.partition(addr(1), addr(2));
    let err = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("the stream broke before the item's delay ran out")
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, RpcError::ConnectionLost { .. }), "{err}");
}

#[tokio::test]
async fn a_partition_breaks_waiting_calls_and_idle_streams_at_once() {
    let (net, probe, _server) = setup(11);
    let client = Client::new(net.client::<TestProto>(addr(2), ClientConfig::default()));
    let blocked = spawn_blocked(&client, addr(1));
    let mut quiet = client.subscribe(addr(1), Req::Quiet).await.unwrap();
    assert_eq!(quiet.next().await.unwrap().unwrap().n, 0);
    eventually("both handlers running", WAIT, || {
        probe.active.load(Ordering::SeqCst) == 2
    })
    .await;

    net.partition(addr(1), addr(2));
    let err = tokio::time::timeout(WAIT, blocked)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, RpcError::ConnectionLost { .. }), "{err}");
    let err = tokio::time::timeout(WAIT, quiet.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, RpcError::ConnectionLost { .. }), "{err}");
    drop(quiet);
    eventually("both handlers dropped", WAIT, || {
        probe.active.load(Ordering::SeqCst) == 0 && probe.cancelled.load(Ordering::SeqCst) == 2
    })
    .await;
}
