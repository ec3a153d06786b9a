//! Test support: a fake DNS server (UDP and TCP on one port) answering SRV
//! queries from a fixed table (optionally held until the test lets each UDP
//! answer go, and different for each query), and helpers to run HTTP servers
//! on ephemeral ports.

#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

/// One SRV answer: target name, port, and the address (None: not in the
/// additional section, only answerable by a follow-up A query).
#[derive(Debug, Clone)]
pub struct Entry {
    pub target: String,
    pub port: u16,
    pub ip: Ipv4Addr,
    pub in_additional: bool,
}

/// How the fake behaves.
#[derive(Debug, Default)]
pub struct Behaviour {
    /// Service name (fully qualified, lower-case) -> instances.
    pub services: Vec<(String, Vec<Entry>)>,
    /// Set TC on every UDP answer (and answer nothing over UDP).
    pub truncate_udp: bool,
    /// Ignore UDP queries altogether.
    pub silent: bool,
    /// Send every UDP answer twice.
    pub duplicate: bool,
    /// Hold each UDP answer until the test adds a permit to `FakeDns::release`.
    pub hold: bool,
    /// Add the query's number (1 for the first UDP query, ...) to every SRV
    /// port, so each answer tells which query it answered.
    pub port_plus_query_number: bool,
    /// Answer every query with this response code and no records.
    pub rcode: Option<ResponseCode>,
}

pub struct FakeDns {
    pub addr: SocketAddr,
    pub behaviour: Arc<Mutex<Behaviour>>,
    pub udp_queries: Arc<AtomicUsize>,
    pub tcp_queries: Arc<AtomicUsize>,
    pub a_queries: Arc<AtomicUsize>,
    /// Source addresses of the UDP queries seen.
    pub udp_peers: Arc<Mutex<std::collections::HashSet<SocketAddr>>>,
    /// One permit lets one held UDP answer go (see `Behaviour::hold`).
    pub release: Arc<tokio::sync::Semaphore>,
}

fn answer(b: &Behaviour, req: &Message, a_queries: &AtomicUsize, number: u16) -> Message {
    let mut m = Message::new(req.metadata.id, MessageType::Response, req.metadata.op_code);
    m.metadata.recursion_desired = req.metadata.recursion_desired;
    m.metadata.authoritative = true;
    m.queries = req.queries.clone();
    let Some(q) = req.queries.first() else {
        m.metadata.response_code = ResponseCode::FormErr;
        return m;
    };
    let qname = q.name().to_lowercase().to_ascii();
    if let Some(rcode) = b.rcode {
        m.metadata.response_code = rcode;
        return m;
    }
    let plus = if b.port_plus_query_number { number } else { 0 };
    match q.query_type() {
        RecordType::SRV => match b.services.iter().find(|(n, _)| *n == qname) {
            None => m.metadata.response_code = ResponseCode::NXDomain,
            Some((_, entries)) => {
                for e in entries {
                    let target = Name::from_ascii(&e.target).unwrap();
                    m.add_answer(Record::from_rdata(
                        q.name().clone(),
                        0,
                        RData::SRV(SRV::new(1, 1, e.port + plus, target.clone())),
                    ));
                    if e.in_additional {
                        m.add_additional(Record::from_rdata(target, 0, RData::A(A(e.ip))));
                    }
                }
            }
        },
        RecordType::A => {
            a_queries.fetch_add(1, Ordering::SeqCst);
            let hit = b
                .services
                .iter()
                .flat_map(|(_, es)| es)
                .find(|e| e.target.to_lowercase() == qname);
            match hit {
                Some(e) => {
                    m.add_answer(Record::from_rdata(q.name().clone(), 0, RData::A(A(e.ip))));
                }
                None => m.metadata.response_code = ResponseCode::NXDomain,
            }
        }
        _ => {}
    }
    m
}

impl FakeDns {
    pub async fn start(behaviour: Behaviour) -> FakeDns {
        // UDP and TCP on the same port: the ephemeral UDP port may be taken for TCP by
        // another process (tests run in parallel), so try fresh ports until both bind.
        let mut attempt = 0;
        let (udp, addr, tcp) = loop {
            let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let addr = udp.local_addr().unwrap();
            match TcpListener::bind(addr).await {
                Ok(tcp) => break (udp, addr, tcp),
                Err(e) if attempt < 50 => {
                    attempt += 1;
                    eprintln!("fake DNS: TCP port {addr} is taken ({e}); trying another");
                }
                Err(e) => panic!("no port free for both UDP and TCP after 50 tries: {e}"),
            }
        };
        let behaviour = Arc::new(Mutex::new(behaviour));
        let (uq, tq, aq) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
        );
        let udp_peers: Arc<Mutex<std::collections::HashSet<SocketAddr>>> = Arc::default();
        let release = Arc::new(tokio::sync::Semaphore::new(0));
        {
            let (b, uq, aq, peers) = (behaviour.clone(), uq.clone(), aq.clone(), udp_peers.clone());
            let release = release.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                loop {
                    let Ok((n, peer)) = udp.recv_from(&mut buf).await else {
                        return;
                    };
                    let number = uq.fetch_add(1, Ordering::SeqCst) + 1;
                    peers.lock().unwrap().insert(peer);
                    let Ok(req) = Message::from_vec(&buf[..n]) else {
                        continue;
                    };
                    let hold = b.lock().unwrap().hold;
                    if hold {
                        let Ok(permit) = release.acquire().await else {
                            return;
                        };
                        permit.forget();
                    }
                    let reply = {
                        let b = b.lock().unwrap();
                        if b.silent {
                            continue;
                        }
                        let mut m = answer(&b, &req, &aq, number as u16);
                        if b.truncate_udp {
                            m.answers.clear();
                            m.additionals.clear();
                            m.metadata.truncation = true;
                        }
                        let bytes = m.to_vec().unwrap();
                        (bytes, b.duplicate)
                    };
                    let (reply, twice) = reply;
                    let _ = udp.send_to(&reply, peer).await;
                    if twice {
                        let _ = udp.send_to(&reply, peer).await;
                    }
                }
            });
        }
        {
            let (b, tq, aq) = (behaviour.clone(), tq.clone(), aq.clone());
            tokio::spawn(async move {
                loop {
                    let Ok((mut s, _)) = tcp.accept().await else {
                        return;
                    };
                    let (b, tq, aq) = (b.clone(), tq.clone(), aq.clone());
                    tokio::spawn(async move {
                        let mut len = [0u8; 2];
                        if s.read_exact(&mut len).await.is_err() {
                            return;
                        }
                        let mut body = vec![0u8; u16::from_be_bytes(len) as usize];
                        if s.read_exact(&mut body).await.is_err() {
                            return;
                        }
                        tq.fetch_add(1, Ordering::SeqCst);
                        let Ok(req) = Message::from_vec(&body) else {
                            return;
                        };
                        let reply = answer(&b.lock().unwrap(), &req, &aq, 0).to_vec().unwrap();
                        let mut framed = (reply.len() as u16).to_be_bytes().to_vec();
                        framed.extend_from_slice(&reply);
                        let _ = s.write_all(&framed).await;
                    });
                }
            });
        }
        FakeDns {
            addr,
            behaviour,
            udp_queries: uq,
            tcp_queries: tq,
            a_queries: aq,
            udp_peers,
            release,
        }
    }
}

pub use sample_common::test_support::serve;

/// A stock-price instance (in-process, built-in data, no request log).
pub async fn stock_instance() -> SocketAddr {
    let config =
        stock_price::Config::from_env(|k| (k == "LOG_REQUESTS").then(|| "0".into())).unwrap();
    serve(stock_price::router(
        stock_price::state_from(&config).unwrap(),
    ))
    .await
}

/// A weather instance (in-process, built-in data, no request log).
pub async fn weather_instance() -> SocketAddr {
    let config = weather::Config::from_env(|k| (k == "LOG_REQUESTS").then(|| "0".into())).unwrap();
    serve(weather::router(weather::state_from(&config).unwrap())).await
}

/// A port with nothing listening (bound then released).
pub fn dead_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

pub fn localhost() -> IpAddr {
    IpAddr::V4(Ipv4Addr::LOCALHOST)
}
