//! Integration tests of `serve`: real UDP and TCP sockets on 127.0.0.1,
//! queries built with hickory-proto, a test recursor, and `dig` when it is
//! installed.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use cairn_dns::{
    bind_udp_reuseport, serve, serve_sockets, serve_with, udp_socket_count, DnsConfig, Health,
    Instance, MemoryCatalog, NodeInfo, Resolver, ServerLimits,
};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(5);

fn catalog(n: usize) -> MemoryCatalog {
    let mut c = MemoryCatalog {
        datacenter: "dc1".into(),
        ..Default::default()
    };
    for i in 0..n {
        let name = format!("node-{i}");
        let addr = format!("10.0.{}.{}", i / 200, i % 200 + 1);
        let mut meta = BTreeMap::new();
        meta.insert("az".to_string(), format!("az{}", i % 3));
        c.nodes.push(NodeInfo {
            name: name.clone(),
            address: addr.clone(),
            datacenter: "dc1".into(),
            tagged_addresses: BTreeMap::new(),
            meta: meta.clone(),
            health: Health::Passing,
        });
        c.instances.push(Instance {
            node: name,
            node_address: addr,
            datacenter: "dc1".into(),
            service_id: format!("web-{i}"),
            service: "web".into(),
            service_address: String::new(),
            port: 8000 + i as u16,
            tags: vec!["v1".into()],
            health: if i % 10 == 9 {
                Health::Critical
            } else {
                Health::Passing
            },
            weight_passing: 1,
            weight_warning: 1,
            node_meta: meta,
        });
    }
    c
}

struct Server {
    udp: SocketAddr,
    tcp: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Server {
    async fn start(catalog: MemoryCatalog, config: DnsConfig) -> Self {
        Self::start_with(catalog, config, ServerLimits::default()).await
    }

    async fn start_with(catalog: MemoryCatalog, config: DnsConfig, limits: ServerLimits) -> Self {
        // UDP and TCP on the same port, as a DNS server is usually reached.
        let (udp, tcp) = loop {
            let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            if let Ok(tcp) = TcpListener::bind(udp.local_addr().unwrap()).await {
                break (udp, tcp);
            }
        };
        let (udp_addr, tcp_addr) = (udp.local_addr().unwrap(), tcp.local_addr().unwrap());
        let resolver = Arc::new(Resolver::new(catalog, config));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve_with(udp, tcp, resolver, limits, async move {
            let _ = stopped.await;
        }));
        Self {
            udp: udp_addr,
            tcp: tcp_addr,
            stop: Some(stop),
            task,
        }
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        timeout(WAIT, &mut self.task).await.unwrap().unwrap();
    }
}

fn query(name: &str, qtype: RecordType, edns: Option<u16>) -> Message {
    let mut m = Message::new(rand_id(), MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    if let Some(size) = edns {
        let mut e = Edns::new();
        e.set_max_payload(size);
        m.set_edns(e);
    }
    m
}

fn rand_id() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0x1000);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

async fn udp_raw(server: SocketAddr, packet: &[u8]) -> Vec<u8> {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.send_to(packet, server).await.unwrap();
    let mut buf = vec![0u8; 65535];
    let (n, _) = timeout(WAIT, sock.recv_from(&mut buf))
        .await
        .expect("udp reply")
        .unwrap();
    buf.truncate(n);
    buf
}

async fn udp_query(server: SocketAddr, q: &Message) -> (Message, usize) {
    let bytes = udp_raw(server, &q.to_vec().unwrap()).await;
    let m = Message::from_vec(&bytes).unwrap();
    assert_eq!(m.metadata.id, q.metadata.id);
    (m, bytes.len())
}

async fn tcp_send(stream: &mut TcpStream, packet: &[u8]) {
    let mut framed = (packet.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(packet);
    stream.write_all(&framed).await.unwrap();
}

async fn tcp_recv(stream: &mut TcpStream) -> Vec<u8> {
    let mut len = [0u8; 2];
    timeout(WAIT, stream.read_exact(&mut len))
        .await
        .expect("tcp reply")
        .unwrap();
    let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
    stream.read_exact(&mut buf).await.unwrap();
    buf
}

async fn tcp_raw(server: SocketAddr, packet: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(server).await.unwrap();
    tcp_send(&mut stream, packet).await;
    tcp_recv(&mut stream).await
}

async fn tcp_query(server: SocketAddr, q: &Message) -> Message {
    let m = Message::from_vec(&tcp_raw(server, &q.to_vec().unwrap()).await).unwrap();
    assert_eq!(m.metadata.id, q.metadata.id);
    m
}

fn srv_count(m: &Message) -> usize {
    m.answers
        .iter()
        .filter(|r| r.record_type() == RecordType::SRV)
        .count()
}

#[tokio::test]
async fn srv_over_udp_fits_limits_and_tcp_returns_all() {
    let server = Server::start(catalog(55), DnsConfig::default()).await;
    // 55 instances, 5 critical: 50 healthy.
    let (m, size) = udp_query(
        server.udp,
        &query("web.service.consul.", RecordType::SRV, None),
    )
    .await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(srv_count(&m), 3);
    assert!(size <= 512);
    assert!(!m.metadata.truncation, "Consul's default: no TC");
    let a_in_additional = m
        .additionals
        .iter()
        .filter(|r| r.record_type() == RecordType::A)
        .count();
    assert_eq!(a_in_additional, 3);

    let (m, size) = udp_query(
        server.udp,
        &query("web.service.consul.", RecordType::SRV, Some(4096)),
    )
    .await;
    assert!(size <= 4096);
    assert!(srv_count(&m) > 3 && srv_count(&m) <= 50);
    assert!(m.edns.is_some());

    let m = tcp_query(
        server.tcp,
        &query("web.service.consul.", RecordType::SRV, None),
    )
    .await;
    assert_eq!(srv_count(&m), 50);
    assert!(!m.metadata.truncation);

    let m = tcp_query(
        server.tcp,
        &query("web.service.consul.", RecordType::A, None),
    )
    .await;
    assert_eq!(m.answers.len(), 50);
    server.stop().await;
}

#[tokio::test]
async fn a_node_ptr_and_errors_over_udp() {
    let server = Server::start(catalog(3), DnsConfig::default()).await;
    let (m, _) = udp_query(
        server.udp,
        &query("web.service.consul.", RecordType::A, None),
    )
    .await;
    assert_eq!(m.answers.len(), 3);
    let (m, _) = udp_query(
        server.udp,
        &query("node-1.node.consul.", RecordType::A, None),
    )
    .await;
    let RData::A(a) = &m.answers[0].data else {
        panic!("{m}")
    };
    assert_eq!(a.0.to_string(), "10.0.0.2");
    let (m, _) = udp_query(
        server.udp,
        &query("2.0.0.10.in-addr.arpa.", RecordType::PTR, None),
    )
    .await;
    let RData::PTR(ptr) = &m.answers[0].data else {
        panic!("{m}")
    };
    assert_eq!(ptr.0.to_ascii(), "node-1.node.dc1.consul.");
    let (m, _) = udp_query(
        server.udp,
        &query("nope.service.consul.", RecordType::A, None),
    )
    .await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(m.authorities[0].record_type(), RecordType::SOA);
    let (m, _) = udp_query(server.udp, &query("example.com.", RecordType::A, None)).await;
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    // Garbage with a header: FORMERR with the ID.
    let reply = udp_raw(
        server.udp,
        &[0x42, 0x43, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xff],
    )
    .await;
    let m = Message::from_vec(&reply).unwrap();
    assert_eq!(
        (m.metadata.id, m.metadata.response_code),
        (0x4243, ResponseCode::FormErr)
    );
    server.stop().await;
}

#[tokio::test]
async fn tcp_carries_several_queries_per_connection() {
    let server = Server::start(catalog(3), DnsConfig::default()).await;
    let mut stream = TcpStream::connect(server.tcp).await.unwrap();
    let queries: Vec<Message> = [
        "node-0.node.consul.",
        "node-1.node.consul.",
        "web.service.consul.",
    ]
    .iter()
    .map(|n| query(n, RecordType::A, None))
    .collect();
    // Pipelined: all three written before reading.
    for q in &queries {
        tcp_send(&mut stream, &q.to_vec().unwrap()).await;
    }
    for q in &queries {
        let m = Message::from_vec(&tcp_recv(&mut stream).await).unwrap();
        assert_eq!(m.metadata.id, q.metadata.id);
        assert!(!m.answers.is_empty());
    }
    server.stop().await;
}

#[tokio::test]
async fn tcp_idle_timeout_and_connection_limit() {
    let limits = ServerLimits {
        max_tcp_connections: 1,
        tcp_idle_timeout: Duration::from_millis(300),
        ..ServerLimits::default()
    };
    let server = Server::start_with(catalog(1), DnsConfig::default(), limits).await;
    let mut first = TcpStream::connect(server.tcp).await.unwrap();
    tcp_send(
        &mut first,
        &query("web.service.consul.", RecordType::A, None)
            .to_vec()
            .unwrap(),
    )
    .await;
    tcp_recv(&mut first).await;
    // A second connection over the limit is closed at once.
    let mut second = TcpStream::connect(server.tcp).await.unwrap();
    let mut buf = [0u8; 1];
    let n = timeout(WAIT, second.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0);
    // The first one is closed after being idle.
    let n = timeout(WAIT, first.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0);
    // Its slot is free again.
    let m = tcp_query(
        server.tcp,
        &query("web.service.consul.", RecordType::A, None),
    )
    .await;
    assert_eq!(m.answers.len(), 1);
    server.stop().await;
}

/// A tiny recursor: answers every query on UDP (and TCP on the same port)
/// with a fixed record; with `truncate_udp`, UDP replies carry TC and no
/// answer, TCP replies the full answer.
async fn recursor(truncate_udp: bool) -> (SocketAddr, JoinHandle<()>) {
    let (udp, tcp) = loop {
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        if let Ok(tcp) = TcpListener::bind(udp.local_addr().unwrap()).await {
            break (udp, tcp);
        }
    };
    let addr = udp.local_addr().unwrap();
    fn reply(query: &[u8], truncated: bool) -> Vec<u8> {
        let q = Message::from_vec(query).unwrap();
        let mut m = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
        m.metadata.recursion_available = true;
        m.metadata.recursion_desired = q.metadata.recursion_desired;
        m.queries = q.queries.clone();
        if truncated {
            m.metadata.truncation = true;
        } else {
            m.add_answer(Record::from_rdata(
                q.queries[0].name().clone(),
                1234,
                RData::A(A("203.0.113.7".parse().unwrap())),
            ));
        }
        m.to_vec().unwrap()
    }
    let task = tokio::spawn(async move {
        let udp_side = async {
            let mut buf = vec![0u8; 4096];
            loop {
                let (n, peer) = udp.recv_from(&mut buf).await.unwrap();
                let r = reply(&buf[..n], truncate_udp);
                udp.send_to(&r, peer).await.unwrap();
            }
        };
        let tcp_side = async {
            loop {
                let (mut s, _) = tcp.accept().await.unwrap();
                let q = tcp_recv(&mut s).await;
                tcp_send(&mut s, &reply(&q, false)).await;
            }
        };
        tokio::join!(udp_side, tcp_side);
    });
    (addr, task)
}

/// An address where nothing listens (bound, then released).
async fn dead_address() -> SocketAddr {
    let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    s.local_addr().unwrap()
}

#[tokio::test]
async fn forwarded_reply_is_byte_for_byte_unchanged() {
    let (rec, rec_task) = recursor(false).await;
    let config = DnsConfig {
        recursors: vec![rec],
        ..DnsConfig::default()
    };
    let server = Server::start(catalog(1), config).await;
    let q = query("www.example.org.", RecordType::A, None)
        .to_vec()
        .unwrap();
    // What the recursor says when asked directly...
    let direct = udp_raw(rec, &q).await;
    // ...is exactly what the client gets through us, over UDP and TCP.
    assert_eq!(udp_raw(server.udp, &q).await, direct);
    assert_eq!(tcp_raw(server.tcp, &q).await, direct);
    let m = Message::from_vec(&direct).unwrap();
    assert_eq!(m.answers[0].ttl, 1234);
    // Our own names are still answered locally, with RA set.
    let (m, _) = udp_query(
        server.udp,
        &query("web.service.consul.", RecordType::A, None),
    )
    .await;
    assert!(m.metadata.recursion_available);
    assert_eq!(m.answers.len(), 1);
    server.stop().await;
    rec_task.abort();
}

#[tokio::test]
async fn forwarding_fails_over_and_retries_truncated_over_tcp() {
    let dead = dead_address().await;
    let (rec, rec_task) = recursor(true).await;
    let config = DnsConfig {
        recursors: vec![dead, rec],
        recursor_timeout: Duration::from_millis(300),
        ..DnsConfig::default()
    };
    let server = Server::start(catalog(1), config).await;
    let q = query("www.example.org.", RecordType::A, None)
        .to_vec()
        .unwrap();
    // Over TCP the client gets the recursor's full TCP answer.
    let m = Message::from_vec(&tcp_raw(server.tcp, &q).await).unwrap();
    assert_eq!(m.answers.len(), 1);
    assert!(!m.metadata.truncation);
    server.stop().await;
    rec_task.abort();
}

#[tokio::test]
async fn recursor_down_gives_servfail() {
    let config = DnsConfig {
        recursors: vec![dead_address().await, dead_address().await],
        recursor_timeout: Duration::from_millis(200),
        ..DnsConfig::default()
    };
    let server = Server::start(catalog(1), config).await;
    let q = query("www.example.org.", RecordType::A, None);
    let (m, _) = udp_query(server.udp, &q).await;
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    assert_eq!(m.queries.len(), 1);
    let m = tcp_query(server.tcp, &q).await;
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    server.stop().await;
}

#[tokio::test]
async fn serve_with_default_limits_stops_on_shutdown() {
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = udp.local_addr().unwrap();
    let resolver = Arc::new(Resolver::new(catalog(1), DnsConfig::default()));
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(udp, tcp, resolver, stopped));
    let (m, _) = udp_query(addr, &query("web.service.consul.", RecordType::A, None)).await;
    assert_eq!(m.answers.len(), 1);
    stop.send(()).unwrap();
    timeout(WAIT, task).await.unwrap().unwrap();
}

fn dig_available() -> bool {
    std::process::Command::new("dig").arg("-v").output().is_ok()
}

fn dig(port: u16, args: &[&str]) -> String {
    let out = std::process::Command::new("dig")
        .args(["@127.0.0.1", "-p", &port.to_string(), "+time=2", "+tries=1"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dig_srv_and_reverse() {
    if !dig_available() {
        println!("SKIPPED dig_srv_and_reverse: `dig` is not installed (Debian: dnsutils)");
        return;
    }
    let server = Server::start(catalog(3), DnsConfig::default()).await;
    let port = server.udp.port();
    let out =
        tokio::task::spawn_blocking(move || dig(port, &["SRV", "web.service.consul", "+short"]))
            .await
            .unwrap();
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        vec![
            "1 1 8000 node-0.node.dc1.consul.",
            "1 1 8001 node-1.node.dc1.consul.",
            "1 1 8002 node-2.node.dc1.consul.",
        ],
        "{out}"
    );
    // The full answer shows the A records in the additional section.
    let out = tokio::task::spawn_blocking(move || dig(port, &["SRV", "web.service.consul"]))
        .await
        .unwrap();
    assert!(out.contains("status: NOERROR"), "{out}");
    assert!(out.contains("ADDITIONAL SECTION"), "{out}");
    assert!(
        out.lines().any(|l| l.split_whitespace().collect::<Vec<_>>()
            == ["node-1.node.dc1.consul.", "0", "IN", "A", "10.0.0.2"]),
        "{out}"
    );
    let out = tokio::task::spawn_blocking(move || dig(port, &["-x", "10.0.0.2", "+short"]))
        .await
        .unwrap();
    assert_eq!(out.trim(), "node-1.node.dc1.consul.");
    let out = tokio::task::spawn_blocking(move || {
        dig(port, &["+tcp", "A", "web.service.consul", "+short"])
    })
    .await
    .unwrap();
    let mut ips: Vec<IpAddr> = out.lines().map(|l| l.parse().unwrap()).collect();
    ips.sort();
    assert_eq!(ips.len(), 3);
    let out = tokio::task::spawn_blocking(move || dig(port, &["A", "nope.service.consul"]))
        .await
        .unwrap();
    assert!(out.contains("status: NXDOMAIN"), "{out}");
    server.stop().await;
}

/// N `SO_REUSEPORT` sockets on one ephemeral port, each served by its own
/// task: many clients (spread over the sockets by the kernel) all get
/// answers, shuffled, and shutdown stops every socket task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reuseport_sockets_all_answer() {
    let n = udp_socket_count();
    assert!(n >= 2);
    let (sockets, tcp) = loop {
        let sockets = bind_udp_reuseport("127.0.0.1:0".parse().unwrap(), n).unwrap();
        let addr = sockets[0].local_addr().unwrap();
        if let Ok(tcp) = TcpListener::bind(addr).await {
            break (sockets, tcp);
        }
    };
    assert_eq!(sockets.len(), n);
    let addr = sockets[0].local_addr().unwrap();
    assert_ne!(addr.port(), 0);
    for s in &sockets {
        assert_eq!(s.local_addr().unwrap(), addr);
    }
    let resolver = Arc::new(Resolver::new(catalog(5), DnsConfig::default()));
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve_sockets(
        sockets,
        tcp,
        resolver,
        ServerLimits::default(),
        async move {
            let _ = stopped.await;
        },
    ));
    let mut first = std::collections::HashSet::new();
    let mut clients = Vec::new();
    for _ in 0..32 {
        clients.push(tokio::spawn(async move {
            let mut firsts = Vec::new();
            for _ in 0..8 {
                let (m, _) =
                    udp_query(addr, &query("web.service.consul.", RecordType::A, None)).await;
                assert_eq!(m.answers.len(), 3);
                firsts.push(m.answers[0].to_string());
            }
            firsts
        }));
    }
    for c in clients {
        first.extend(timeout(WAIT, c).await.unwrap().unwrap());
    }
    assert!(first.len() >= 2, "no shuffling: {first:?}");
    let m = tcp_query(addr, &query("web.service.consul.", RecordType::SRV, None)).await;
    assert_eq!(srv_count(&m), 5);
    let _ = stop.send(());
    timeout(WAIT, task).await.unwrap().unwrap().unwrap();
    // Every socket is closed with its (aborted) task: the port can be bound
    // again without SO_REUSEPORT.
    let mut rebound = false;
    for _ in 0..100 {
        if std::net::UdpSocket::bind(addr).is_ok() {
            rebound = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(rebound, "a socket task outlived shutdown");
}
