//! Coalesced SRV lookups over real UDP against the fake DNS server: a request
//! that finds nothing in flight sends its query at once; requests that arrive
//! while a query is out share the next one, never that one's answer; failures
//! reach every request that joined; a request dropped while it waits (or
//! while it makes the lookup others wait behind) does not hurt the others; and
//! nothing is left running afterwards.
//!
//! The fake numbers its answers (SRV port = 8000 + query number) and holds
//! each one until the test lets it go, so "which query answered" is visible
//! and "arrived while a query was out" is arranged without timing.

mod support;

use std::future::Future;
use std::net::Ipv4Addr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use portal::discovery::DiscoveryError;
use portal::dns_wire::DnsError;
use portal::{Candidate, Discovery, DnsDiscovery};
use support::{Behaviour, Entry, FakeDns};
use tokio::task::JoinHandle;

const NAME: &str = "web.service.consul";
const BASE_PORT: u16 = 8000;

type Pending = Pin<Box<dyn Future<Output = Result<Vec<Candidate>, DiscoveryError>> + Send>>;

async fn fake(behaviour: Behaviour) -> (FakeDns, DnsDiscovery) {
    let fake = FakeDns::start(Behaviour {
        services: vec![(
            format!("{NAME}."),
            vec![Entry {
                target: "n1.node.dc1.consul.".into(),
                port: BASE_PORT,
                ip: Ipv4Addr::new(127, 0, 0, 9),
                in_additional: true,
            }],
        )],
        port_plus_query_number: true,
        ..behaviour
    })
    .await;
    let d = DnsDiscovery::new(fake.addr, Duration::from_millis(2000));
    (fake, d)
}

/// A request for `NAME`, polled once: it has joined a lookup when this returns.
async fn arrive(d: &DnsDiscovery) -> Pending {
    let d = d.clone();
    let mut f: Pending = Box::pin(async move { d.candidates(NAME).await });
    std::future::poll_fn(|cx| {
        assert!(
            f.as_mut().poll(cx).is_pending(),
            "answered before any answer was let go"
        );
        Poll::Ready(())
    })
    .await;
    f
}

/// A request as a task of its own, as a server runs it: one that finds
/// nothing in flight sends the query itself, so it must be polled to go on.
fn request_task(d: &DnsDiscovery) -> JoinHandle<Result<Vec<Candidate>, DiscoveryError>> {
    let d = d.clone();
    tokio::spawn(async move { d.candidates(NAME).await })
}

/// Which query answered: the port minus the base.
fn query_number(answer: Result<Vec<Candidate>, DiscoveryError>) -> u16 {
    let cands = answer.expect("an answer");
    assert_eq!(cands.len(), 1, "{cands:?}");
    cands[0].port - BASE_PORT
}

async fn until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

async fn queries_out(fake: &FakeDns, n: usize) {
    until(&format!("{n} UDP queries"), || {
        fake.udp_queries.load(Ordering::SeqCst) == n
    })
    .await;
}

async fn nothing_left(d: &DnsDiscovery) {
    until("the lookup task to end", || d.lookups_in_flight() == 0).await;
}

#[tokio::test]
async fn concurrent_requests_share_one_query() {
    let (fake, d) = fake(Behaviour::default()).await;
    // The first sends query 1 as it arrives; the other 15 arrive while it is
    // out and share query 2.
    let first = arrive(&d).await;
    let mut waiting = Vec::new();
    for _ in 0..15 {
        waiting.push(arrive(&d).await);
    }
    assert_eq!(query_number(first.await), 1);
    for w in waiting {
        assert_eq!(query_number(w.await), 2);
    }
    assert_eq!(fake.udp_queries.load(Ordering::SeqCst), 2);
    nothing_left(&d).await;
    // Sequential requests each get a query of their own.
    assert_eq!(query_number(d.candidates(NAME).await), 3);
    assert_eq!(query_number(d.candidates(NAME).await), 4);
}

#[tokio::test]
async fn a_request_arriving_while_a_query_is_out_gets_the_next_answer() {
    let (fake, d) = fake(Behaviour {
        hold: true,
        ..Behaviour::default()
    })
    .await;
    let first = request_task(&d);
    queries_out(&fake, 1).await;
    // Query 1 is out and held: these two must not get its answer.
    let second = arrive(&d).await;
    let third = arrive(&d).await;
    fake.release.add_permits(1);
    assert_eq!(query_number(first.await.unwrap()), 1);
    queries_out(&fake, 2).await;
    fake.release.add_permits(1);
    assert_eq!(query_number(second.await), 2);
    assert_eq!(query_number(third.await), 2, "the two share query 2");
    assert_eq!(fake.udp_queries.load(Ordering::SeqCst), 2);
    nothing_left(&d).await;
}

#[tokio::test]
async fn a_server_error_reaches_every_request() {
    let (fake, d) = fake(Behaviour {
        rcode: Some(ResponseCode::ServFail),
        hold: true,
        ..Behaviour::default()
    })
    .await;
    let first = request_task(&d);
    queries_out(&fake, 1).await;
    let mut waiting: Vec<Pending> = vec![Box::pin(async move { first.await.unwrap() })];
    for _ in 0..4 {
        waiting.push(arrive(&d).await);
    }
    fake.release.add_permits(2);
    for w in waiting {
        let err = w.await.unwrap_err();
        assert_eq!(
            err,
            DiscoveryError::Dns(DnsError::Rcode("SERVFAIL".into())),
            "{err}"
        );
    }
    assert_eq!(fake.udp_queries.load(Ordering::SeqCst), 2);
    nothing_left(&d).await;
}

#[tokio::test]
async fn nxdomain_reaches_every_request_as_no_instances() {
    let (fake, d) = fake(Behaviour {
        rcode: Some(ResponseCode::NXDomain),
        ..Behaviour::default()
    })
    .await;
    let mut waiting = Vec::new();
    for _ in 0..5 {
        waiting.push(arrive(&d).await);
    }
    for w in waiting {
        assert_eq!(w.await, Ok(vec![]));
    }
    assert_eq!(
        fake.udp_queries.load(Ordering::SeqCst),
        2,
        "the first's query, and one shared by the other four"
    );
    nothing_left(&d).await;
}

#[tokio::test]
async fn a_timeout_reaches_every_request() {
    let fake = FakeDns::start(Behaviour {
        silent: true,
        ..Behaviour::default()
    })
    .await;
    let d = DnsDiscovery::new(fake.addr, Duration::from_millis(100));
    let mut waiting = Vec::new();
    for _ in 0..5 {
        waiting.push(arrive(&d).await);
    }
    for w in waiting {
        let err = w.await.unwrap_err();
        assert!(
            matches!(err, DiscoveryError::Dns(DnsError::Timeout(_))),
            "{err:?}"
        );
    }
    assert_eq!(
        fake.udp_queries.load(Ordering::SeqCst),
        4,
        "two lookups of two tries: the first's, and one shared by the other four"
    );
    nothing_left(&d).await;
}

#[tokio::test]
async fn a_dropped_request_does_not_hurt_the_others() {
    let (fake, d) = fake(Behaviour {
        hold: true,
        ..Behaviour::default()
    })
    .await;
    // The first request sends query 1 itself and goes away while it is out;
    // the one waiting behind it gets a query of its own, sent by a task.
    let starter = request_task(&d);
    queries_out(&fake, 1).await;
    let other = arrive(&d).await;
    starter.abort();
    assert!(starter.await.unwrap_err().is_cancelled());
    fake.release.add_permits(1); // query 1's answer finds its socket gone
    queries_out(&fake, 2).await;
    // Two arrive while query 2 is out and wait for query 3; one goes away.
    let leaving = arrive(&d).await;
    let staying = arrive(&d).await;
    drop(leaving);
    fake.release.add_permits(1);
    assert_eq!(query_number(other.await), 2);
    queries_out(&fake, 3).await;
    fake.release.add_permits(1);
    assert_eq!(query_number(staying.await), 3);
    nothing_left(&d).await;
}

#[tokio::test]
async fn a_next_query_everyone_left_is_not_sent() {
    let (fake, d) = fake(Behaviour {
        hold: true,
        ..Behaviour::default()
    })
    .await;
    let first = request_task(&d);
    queries_out(&fake, 1).await;
    drop(arrive(&d).await);
    fake.release.add_permits(10);
    assert_eq!(query_number(first.await.unwrap()), 1);
    nothing_left(&d).await;
    assert_eq!(fake.udp_queries.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_concurrent_requests_each_get_an_answer_sent_after_they_arrived() {
    // Free-running: 200 tasks on 4 threads, the fake answering at once. Each
    // task notes how many queries the fake had received when it arrived: none
    // of those may be the one that answers it.
    let (fake, d) = fake(Behaviour::default()).await;
    let fake = std::sync::Arc::new(fake);
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let (d, fake) = (d.clone(), fake.clone());
        tasks.push(tokio::spawn(async move {
            let seen = fake.udp_queries.load(Ordering::SeqCst) as u16;
            let got = query_number(d.candidates(NAME).await);
            assert!(
                got > seen,
                "answered by query {got}, {seen} were out on arrival"
            );
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let queries = fake.udp_queries.load(Ordering::SeqCst);
    assert!((1..=200).contains(&queries), "{queries} queries");
    println!("200 requests, {queries} queries");
    nothing_left(&d).await;
}
