//! One contract for every `Transport`: the UDP socket and the in-memory
//! network must both pass it (same calls, same expectations).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use cairn_gossip::{LinkRules, MemoryNetwork, Transport, UdpTransport};

type BindFut<T> = Pin<Box<dyn Future<Output = io::Result<T>>>>;

/// Binds a transport: `None` = any free port on 127.0.0.1.
trait Factory {
    type T: Transport;
    fn bind(&self, addr: Option<SocketAddr>) -> BindFut<Self::T>;
}

struct Udp;
impl Factory for Udp {
    type T = UdpTransport;
    fn bind(&self, addr: Option<SocketAddr>) -> BindFut<UdpTransport> {
        let addr = addr.unwrap_or_else(|| "127.0.0.1:0".parse().unwrap());
        Box::pin(UdpTransport::bind(addr))
    }
}

struct Memory(MemoryNetwork);
impl Factory for Memory {
    type T = cairn_gossip::MemoryTransport;
    fn bind(&self, addr: Option<SocketAddr>) -> BindFut<cairn_gossip::MemoryTransport> {
        let r = match addr {
            Some(a) => self.0.bind(a),
            None => self.0.bind_any(),
        };
        Box::pin(async move { r })
    }
}

async fn recv<T: Transport>(t: &T) -> (Vec<u8>, SocketAddr) {
    let mut buf = vec![0u8; 65_536];
    let (n, from) = tokio::time::timeout(Duration::from_secs(5), t.recv_from(&mut buf))
        .await
        .expect("no datagram within 5 s")
        .expect("recv failed");
    buf.truncate(n);
    (buf, from)
}

async fn delivers_with_sender_address<F: Factory>(f: &F) {
    let a = f.bind(None).await.unwrap();
    let b = f.bind(None).await.unwrap();
    assert_ne!(a.local_addr().port(), 0);
    a.send_to(b.local_addr(), b"hello").await.unwrap();
    let (data, from) = recv(&b).await;
    assert_eq!(data, b"hello");
    assert_eq!(from, a.local_addr());
}

async fn keeps_datagram_boundaries_and_size<F: Factory>(f: &F) {
    let a = f.bind(None).await.unwrap();
    let b = f.bind(None).await.unwrap();
    let big: Vec<u8> = (0..1400u32).map(|i| (i % 251) as u8).collect();
    a.send_to(b.local_addr(), b"one").await.unwrap();
    a.send_to(b.local_addr(), &big).await.unwrap();
    a.send_to(b.local_addr(), b"three").await.unwrap();
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(recv(&b).await.0);
    }
    got.sort_by_key(|d| d.len());
    assert_eq!(got, vec![b"one".to_vec(), b"three".to_vec(), big]);
}

async fn recv_is_cancel_safe<F: Factory>(f: &F) {
    let a = f.bind(None).await.unwrap();
    let b = f.bind(None).await.unwrap();
    let mut buf = [0u8; 64];
    let waited = tokio::time::timeout(Duration::from_millis(20), b.recv_from(&mut buf)).await;
    assert!(waited.is_err(), "nothing was sent yet");
    a.send_to(b.local_addr(), b"after cancel").await.unwrap();
    assert_eq!(recv(&b).await.0, b"after cancel");
}

async fn sending_to_nobody_is_not_an_error<F: Factory>(f: &F) {
    let a = f.bind(None).await.unwrap();
    let gone = {
        let b = f.bind(None).await.unwrap();
        b.local_addr()
    };
    a.send_to(gone, b"lost").await.unwrap();
    // The transport still works afterwards.
    let c = f.bind(None).await.unwrap();
    a.send_to(c.local_addr(), b"ok").await.unwrap();
    assert_eq!(recv(&c).await.0, b"ok");
}

async fn address_in_use_is_refused<F: Factory>(f: &F) {
    let a = f.bind(None).await.unwrap();
    let err = f
        .bind(Some(a.local_addr()))
        .await
        .err()
        .expect("second bind must fail");
    assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
}

async fn contract<F: Factory>(f: F) {
    delivers_with_sender_address(&f).await;
    keeps_datagram_boundaries_and_size(&f).await;
    recv_is_cancel_safe(&f).await;
    sending_to_nobody_is_not_an_error(&f).await;
    address_in_use_is_refused(&f).await;
}

#[tokio::test]
async fn udp_transport_meets_the_contract() {
    contract(Udp).await;
}

#[tokio::test]
async fn memory_transport_meets_the_contract() {
    contract(Memory(MemoryNetwork::new(7, LinkRules::default()))).await;
}

#[tokio::test]
async fn memory_transport_with_delay_meets_the_contract() {
    let rules = LinkRules {
        drop: 0.0,
        delay: Duration::from_millis(2),
        jitter: Duration::from_millis(3),
    };
    contract(Memory(MemoryNetwork::new(7, rules))).await;
}

#[tokio::test]
async fn memory_network_drops_and_partitions_as_configured() {
    let net = MemoryNetwork::new(11, LinkRules::default());
    let a = net.bind_any().unwrap();
    let b = net.bind_any().unwrap();
    net.with_model(|m| m.partition(&[&[a.local_addr()], &[b.local_addr()]]));
    a.send_to(b.local_addr(), b"blocked").await.unwrap();
    net.with_model(|m| m.heal());
    a.send_to(b.local_addr(), b"through").await.unwrap();
    assert_eq!(recv(&b).await.0, b"through");
    net.with_model(|m| {
        m.set_default(LinkRules {
            drop: 1.0,
            ..LinkRules::default()
        })
    });
    a.send_to(b.local_addr(), b"dropped").await.unwrap();
    let mut buf = [0u8; 16];
    let r = tokio::time::timeout(Duration::from_millis(50), b.recv_from(&mut buf)).await;
    assert!(r.is_err(), "a fully lossy link delivered a datagram");
}
