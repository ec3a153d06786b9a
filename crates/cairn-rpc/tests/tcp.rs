//! TCP-only behaviour: hostile bytes on the port, connection limits, keepalive against a peer
//! that silently vanished, idle close, and protocol/codec mismatches.

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cairn_rpc::{
    Client, ClientConfig, Code, ConnectionEventKind, JsonCodec, Routes, RpcError, RpcServer,
    ServerConfig, TcpClient,
};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

struct Running {
    addr: SocketAddr,
    probe: Arc<Probe>,
    _stop: oneshot::Sender<()>,
}

async fn start(config: ServerConfig) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let probe: Arc<Probe> = Arc::default();
    let service = Arc::new(TestService {
        probe: probe.clone(),
    });
    let routes = Routes::new().route::<TestProto, _>(service);
    let (stop, _server) = serve_tcp(listener, routes, config);
    Running {
        addr,
        probe,
        _stop: stop,
    }
}

fn client(config: ClientConfig) -> Client<TestProto> {
    Client::new(TcpClient::<TestProto>::new(config))
}

/// Waits until the server closes `raw` (EOF or error); panics if it stays open.
async fn closed_by_server(raw: &mut TcpStream) {
    let mut buf = [0u8; 4096];
    tokio::time::timeout(WAIT, async {
        loop {
            match raw.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    })
    .await
    .expect("server should close the connection");
}

/// A seeded byte generator for garbage.
fn garbage(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_the_port_closes_that_connection_only() {
    let server = start(ServerConfig {
        handshake_timeout: Duration::from_millis(500),
        ..ServerConfig::default()
    })
    .await;
    let good = client(ClientConfig::default());
    assert_echoes(&good, server.addr, "before").await;

    // HTTP/1.1 on an HTTP/2 port.
    let mut raw = TcpStream::connect(server.addr).await.unwrap();
    raw.write_all(b"GET /v1/agent/self HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    closed_by_server(&mut raw).await;

    // Silence: closed at the handshake deadline.
    let mut raw = TcpStream::connect(server.addr).await.unwrap();
    closed_by_server(&mut raw).await;

    // A valid preface followed by random frames, and plain random bytes.
    let seed = 0xC0FFEE;
    println!("garbage seed {seed}");
    for i in 0..20u64 {
        let mut raw = TcpStream::connect(server.addr).await.unwrap();
        let mut bytes = Vec::new();
        if i % 2 == 0 {
            bytes.extend_from_slice(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
        }
        bytes.extend_from_slice(&garbage(seed + i, 4096));
        let _ = raw.write_all(&bytes).await;
        closed_by_server(&mut raw).await;
    }

    // The established client and new clients are still served.
    assert_echoes(&good, server.addr, "after").await;
    let fresh = client(ClientConfig::default());
    assert_echoes(&fresh, server.addr, "fresh").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_limit_are_closed() {
    let server = start(ServerConfig {
        max_connections: 1,
        ..ServerConfig::default()
    })
    .await;
    let first = client(ClientConfig::default());
    echo(&first, server.addr, "1").await;
    let second = client(ClientConfig {
        backoff_initial: Duration::from_millis(10),
        backoff_max: Duration::from_millis(50),
        ..ClientConfig::default()
    });
    let err = second
        .call(server.addr, Req::Echo("2".into()))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            RpcError::ConnectionLost { .. } | RpcError::Unreachable { .. }
        ),
        "{err}"
    );
    // The first connection is unaffected; once it goes away the second gets in.
    echo(&first, server.addr, "1 again").await;
    drop(first);
    eventually_ok("second client admitted", WAIT, || {
        second.call(server.addr, Req::Echo("2".into()))
    })
    .await;
}

/// A TCP relay that can start swallowing everything, like a peer whose host vanished.
struct BlackHole {
    addr: SocketAddr,
    frozen: Arc<AtomicBool>,
}

async fn black_hole(target: SocketAddr) -> BlackHole {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let frozen = Arc::new(AtomicBool::new(false));
    let flag = frozen.clone();
    tokio::spawn(async move {
        while let Ok((inbound, _)) = listener.accept().await {
            let Ok(outbound) = TcpStream::connect(target).await else {
                continue;
            };
            let (ri, wi) = inbound.into_split();
            let (ro, wo) = outbound.into_split();
            tokio::spawn(relay(ri, wo, flag.clone()));
            tokio::spawn(relay(ro, wi, flag.clone()));
        }
    });
    BlackHole { addr, frozen }
}

async fn relay(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    frozen: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 16 << 10];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if !frozen.load(Ordering::SeqCst) && to.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalive_notices_a_vanished_peer_on_both_ends() {
    let server = start(ServerConfig {
        keepalive_interval: Duration::from_millis(100),
        keepalive_timeout: Duration::from_millis(300),
        ..ServerConfig::default()
    })
    .await;
    let hole = black_hole(server.addr).await;
    let client = client(ClientConfig {
        keepalive_interval: Duration::from_millis(100),
        keepalive_timeout: Duration::from_millis(300),
        ..ClientConfig::default()
    });
    let mut events = client.events();
    echo(&client, hole.addr, "hi").await;
    assert_eq!(
        events.recv().await.unwrap().kind,
        ConnectionEventKind::Connected
    );
    let blocked = spawn_blocked(&client, hole.addr);
    let probe = server.probe.clone();
    handler_running(&probe).await;

    hole.frozen.store(true, Ordering::SeqCst);
    // The client: a Lost event and the blocked call fails.
    let event = tokio::time::timeout(WAIT, events.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(event.peer, hole.addr);
    assert!(
        matches!(event.kind, ConnectionEventKind::Lost { .. }),
        "{event:?}"
    );
    let err = blocked.await.unwrap().unwrap_err();
    assert!(matches!(err, RpcError::ConnectionLost { .. }), "{err}");
    // The server: drops the connection and with it the handler.
    eventually(
        "server dropped the handler of the vanished peer",
        WAIT,
        || probe.active.load(Ordering::SeqCst) == 0 && probe.cancelled.load(Ordering::SeqCst) == 1,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed_and_reopened_on_demand() {
    let server = start(ServerConfig {
        idle_timeout: Duration::from_millis(200),
        ..ServerConfig::default()
    })
    .await;
    let client = client(ClientConfig::default());
    let mut events = client.events();
    echo(&client, server.addr, "1").await;
    assert_eq!(
        events.recv().await.unwrap().kind,
        ConnectionEventKind::Connected
    );
    let closed = tokio::time::timeout(WAIT, events.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        closed.kind,
        ConnectionEventKind::Closed,
        "an idle close is orderly"
    );
    assert_echoes(&client, server.addr, "2").await;
    assert_eq!(
        events.recv().await.unwrap().kind,
        ConnectionEventKind::Connected
    );
}

protocol!(
    /// Same messages as the test protocol under another name.
    OtherName = "cairn.other.v1", cairn_rpc::PostcardCodec, Req => Resp, Tick
);
protocol!(
    /// The test protocol's name with another codec.
    OtherCodec = "cairn.test.v1", JsonCodec, Req => Resp, Tick
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mismatched_protocol_or_codec_is_refused_not_misread() {
    let server = start(ServerConfig::default()).await;
    let other = Client::new(TcpClient::<OtherName>::new(ClientConfig::default()));
    let err = other
        .call(server.addr, Req::Echo("x".into()))
        .await
        .unwrap_err();
    assert_eq!(
        err.status().map(|s| &s.code),
        Some(&Code::Unimplemented),
        "{err}"
    );
    let json = Client::new(TcpClient::<OtherCodec>::new(ClientConfig::default()));
    let err = json
        .call(server.addr, Req::Echo("x".into()))
        .await
        .unwrap_err();
    assert_eq!(
        err.status().map(|s| &s.code),
        Some(&Code::InvalidArgument),
        "{err}"
    );
    assert!(err.to_string().contains("content-type"), "{err}");
    assert_eq!(server.probe.active.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_beyond_the_stream_limit_wait_their_turn() {
    let server = start(ServerConfig {
        max_streams_per_connection: 4,
        ..ServerConfig::default()
    })
    .await;
    let client = client(ClientConfig::default());
    // The limit holds once the server's settings have reached the client (the first round
    // trip); a burst on a brand-new connection may briefly exceed it.
    echo(&client, server.addr, "warm").await;
    let calls = (0..40).map(|i| {
        let client = client.clone();
        async move {
            client
                .call(server.addr, Req::SleepThenEcho(20, i.to_string()))
                .await
        }
    });
    for (i, r) in futures::future::join_all(calls)
        .await
        .into_iter()
        .enumerate()
    {
        assert_eq!(r.unwrap(), Resp::Echo(i.to_string()));
    }
    let peak = server.probe.peak.load(Ordering::SeqCst);
    assert!(
        peak <= 4,
        "{peak} handlers ran at once on a 4-stream connection"
    );
    assert_eq!(server.probe.peers.lock().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_spreads_calls_over_several_connections() {
    let server = start(ServerConfig::default()).await;
    let client = client(ClientConfig {
        connections_per_peer: 3,
        ..ClientConfig::default()
    });
    let calls = (0..30).map(|i| {
        let client = client.clone();
        async move { client.call(server.addr, Req::Echo(i.to_string())).await }
    });
    for r in futures::future::join_all(calls).await {
        r.unwrap();
    }
    assert_eq!(server.probe.peers.lock().len(), 3);
}

/// Counts the streams it wraps: stands in for a TLS acceptor/connector.
#[derive(Clone, Default)]
struct Counting(Arc<std::sync::atomic::AtomicUsize>);

impl cairn_rpc::tcp::io::Acceptor for Counting {
    fn accept(
        &self,
        _peer: SocketAddr,
        stream: TcpStream,
    ) -> futures::future::BoxFuture<'static, std::io::Result<cairn_rpc::tcp::io::BoxIo>> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move { Ok(Box::new(stream) as cairn_rpc::tcp::io::BoxIo) })
    }
}

impl cairn_rpc::tcp::io::Connector for Counting {
    fn connect(
        &self,
        _peer: SocketAddr,
        stream: TcpStream,
    ) -> futures::future::BoxFuture<'static, std::io::Result<cairn_rpc::tcp::io::BoxIo>> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move { Ok(Box::new(stream) as cairn_rpc::tcp::io::BoxIo) })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tls_seam_wraps_every_connection_on_both_ends() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Counting::default();
    let server = RpcServer::new(ServerConfig::default()).with_acceptor(accepted.clone());
    let service = Arc::new(TestService {
        probe: Arc::default(),
    });
    tokio::spawn(async move {
        server
            .serve(
                listener,
                Routes::new().route::<TestProto, _>(service),
                std::future::pending(),
            )
            .await
    });
    let connected = Counting::default();
    let client = Client::new(TcpClient::<TestProto>::with_connector(
        ClientConfig::default(),
        connected.clone(),
    ));
    for _ in 0..3 {
        echo(&client, addr, "x").await;
    }
    assert_eq!(connected.0.load(Ordering::SeqCst), 1);
    assert_eq!(accepted.0.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_body_that_never_comes_is_answered_at_the_read_deadline() {
    let server = start(ServerConfig {
        request_read_timeout: Duration::from_millis(200),
        ..ServerConfig::default()
    })
    .await;
    // A raw HTTP/2 client that sends the headers of a call and then nothing.
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let (send, conn) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(conn);
    let mut send = send.ready().await.unwrap();
    let request = http::Request::builder()
        .method("POST")
        .uri(format!("http://{}/cairn.test.v1/unary", server.addr))
        .header("content-type", "application/cairn-rpc+postcard")
        .body(())
        .unwrap();
    let (response, _body_never_sent) = send.send_request(request, false).unwrap();
    let response = tokio::time::timeout(WAIT, response).await.unwrap().unwrap();
    let mut body = response.into_body();
    let mut bytes = Vec::new();
    while let Some(chunk) = tokio::time::timeout(WAIT, body.data()).await.unwrap() {
        bytes.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(bytes.first(), Some(&1), "a status frame");
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains("did not arrive in time"), "{text}");
    assert_eq!(
        server.probe.active.load(Ordering::SeqCst),
        0,
        "no handler ran"
    );
}

/// Sends one call with a raw body over a raw HTTP/2 connection; returns the response body.
async fn raw_call(addr: SocketAddr, body: Vec<u8>) -> Vec<u8> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (send, conn) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(conn);
    let mut send = send.ready().await.unwrap();
    let request = http::Request::builder()
        .method("POST")
        .uri(format!("http://{addr}/cairn.test.v1/unary"))
        .header("content-type", "application/cairn-rpc+postcard")
        .body(())
        .unwrap();
    let (response, mut stream) = send.send_request(request, false).unwrap();
    // The server may answer (and stop reading) before the whole body is sent.
    let _ = stream.send_data(bytes::Bytes::from(body), true);
    let response = tokio::time::timeout(WAIT, response).await.unwrap().unwrap();
    let mut body = response.into_body();
    let mut bytes = Vec::new();
    while let Some(chunk) = tokio::time::timeout(WAIT, body.data()).await.unwrap() {
        match chunk {
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(_) => break,
        }
    }
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_request_bodies_get_a_status_never_a_crash() {
    let server = start(ServerConfig {
        max_request_bytes: 1 << 10,
        ..ServerConfig::default()
    })
    .await;
    let seed = 0xBAD_B0D1;
    println!("malformed bodies seed {seed}");
    let mut cases: Vec<Vec<u8>> = vec![
        vec![],                                // no frame at all
        vec![0, 0, 0],                         // truncated header
        vec![0, 0, 0, 0, 9, 1, 2],             // truncated payload
        vec![7, 0, 0, 0, 0],                   // unknown frame kind
        vec![1, 0, 0, 0, 1, 0],                // a status frame as a request
        vec![0, 0xff, 0xff, 0xff, 0xff],       // a 4 GiB length
        vec![0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0], // two frames
        vec![0, 0, 0, 0, 2, 0xff, 0xff],       // a payload postcard cannot read as a request
    ];
    for i in 0..30u64 {
        let mut body = garbage(seed + i, (i as usize * 37) % 2000);
        if i % 3 == 0 {
            // A valid header in front of random payload.
            let len = body.len() as u32;
            let mut framed = vec![0];
            framed.extend_from_slice(&len.to_be_bytes());
            framed.append(&mut body);
            body = framed;
        }
        cases.push(body);
    }
    for (i, body) in cases.into_iter().enumerate() {
        let answer = raw_call(server.addr, body).await;
        assert_eq!(
            answer.first(),
            Some(&1),
            "case {i}: a status frame, got {answer:?}"
        );
    }
    assert_eq!(server.probe.active.load(Ordering::SeqCst), 0);
    let client = client(ClientConfig::default());
    assert_echoes(&client, server.addr, "ok").await;
}
