//! The transport contract: one suite, run against the TCP transport (plain, and over mutual
//! TLS) and the in-process network. Each `async fn` below is a behaviour all must show; the
//! `contract!` macro instantiates every one of them for each harness.

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use cairn_rpc::{
    CallOptions, Client, ClientConfig, Code, ConnectionEventKind, Delivery, Direction, Network,
    Protocol, RpcError, ServerConfig, TcpClient,
};
use futures::StreamExt;
use support::*;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Starts and stops servers of the test service; makes clients.
trait Harness: Sized + Send {
    fn new() -> Self;
    /// Starts a server with `config` at a fresh address.
    async fn start(&mut self, config: ServerConfig) -> SocketAddr;
    /// Stops the server at `addr`, cancelling its calls in flight.
    async fn stop(&mut self, addr: SocketAddr);
    /// Starts the server again at the same address.
    async fn restart(&mut self, addr: SocketAddr, config: ServerConfig);
    fn client_of<P: Protocol>(&self, config: ClientConfig) -> Client<P>;
    fn client(&self, config: ClientConfig) -> Client<TestProto> {
        self.client_of::<TestProto>(config)
    }
    fn probe(&self) -> Arc<Probe>;
    /// An address where nothing listens.
    async fn dead_address(&mut self) -> SocketAddr;
}

fn server_config() -> ServerConfig {
    ServerConfig {
        shutdown_grace: Duration::from_millis(50),
        ..ServerConfig::default()
    }
}

fn client_config() -> ClientConfig {
    ClientConfig {
        backoff_initial: Duration::from_millis(10),
        backoff_max: Duration::from_millis(100),
        connect_timeout: Duration::from_secs(2),
        ..ClientConfig::default()
    }
}

struct TcpHarness {
    probe: Arc<Probe>,
    running: HashMap<SocketAddr, (oneshot::Sender<()>, JoinHandle<std::io::Result<()>>)>,
    /// Mutual TLS on every connection when set.
    tls: Option<TlsPki>,
}

impl TcpHarness {
    fn launch(&mut self, listener: TcpListener, config: ServerConfig) -> SocketAddr {
        use cairn_rpc::tcp::tls::{shared, Incoming, TlsAcceptor};
        let addr = listener.local_addr().unwrap();
        let routes = test_routes(&self.probe);
        let server = match &self.tls {
            None => serve_tcp(listener, routes, config),
            Some(pki) => {
                let acceptor = TlsAcceptor::new(shared(pki.server.clone()), Incoming::TlsOnly);
                serve_tls(listener, routes, config, acceptor)
            }
        };
        self.running.insert(addr, server);
        addr
    }
}

impl Harness for TcpHarness {
    fn new() -> Self {
        TcpHarness {
            probe: Arc::default(),
            running: HashMap::new(),
            tls: None,
        }
    }
    async fn start(&mut self, config: ServerConfig) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        self.launch(listener, config)
    }
    async fn stop(&mut self, addr: SocketAddr) {
        let (stop, task) = self.running.remove(&addr).expect("running");
        let _ = stop.send(());
        task.await.unwrap().unwrap();
    }
    async fn restart(&mut self, addr: SocketAddr, config: ServerConfig) {
        let listener =
            eventually_ok("rebinding the same port", WAIT, || TcpListener::bind(addr)).await;
        self.launch(listener, config);
    }
    fn client_of<P: Protocol>(&self, config: ClientConfig) -> Client<P> {
        use cairn_rpc::tcp::tls::{shared, TlsConnector};
        match &self.tls {
            None => Client::new(TcpClient::<P>::new(config)),
            Some(pki) => {
                let name = rustls::pki_types::ServerName::try_from("server.dc1.consul").unwrap();
                let connector = TlsConnector::new(shared(pki.client.clone()), name);
                Client::new(TcpClient::<P>::with_connector(config, connector))
            }
        }
    }
    fn probe(&self) -> Arc<Probe> {
        self.probe.clone()
    }
    async fn dead_address(&mut self) -> SocketAddr {
        // Bind then release: nothing listens there afterwards.
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    }
}

/// The TCP transport over mutual TLS (a fresh CA per harness).
struct TlsHarness(TcpHarness);

impl Harness for TlsHarness {
    fn new() -> Self {
        let mut h = TcpHarness::new();
        h.tls = Some(tls_pki());
        TlsHarness(h)
    }
    async fn start(&mut self, config: ServerConfig) -> SocketAddr {
        self.0.start(config).await
    }
    async fn stop(&mut self, addr: SocketAddr) {
        self.0.stop(addr).await
    }
    async fn restart(&mut self, addr: SocketAddr, config: ServerConfig) {
        self.0.restart(addr, config).await
    }
    fn client_of<P: Protocol>(&self, config: ClientConfig) -> Client<P> {
        self.0.client_of(config)
    }
    fn probe(&self) -> Arc<Probe> {
        self.0.probe()
    }
    async fn dead_address(&mut self) -> SocketAddr {
        self.0.dead_address().await
    }
}

struct LocalHarness {
    net: Network,
    probe: Arc<Probe>,
    next: u8,
    running: HashMap<SocketAddr, cairn_rpc::LocalServer>,
}

impl LocalHarness {
    fn fresh(&mut self) -> SocketAddr {
        self.next += 1;
        SocketAddr::from(([127, 0, 0, self.next], 8300))
    }
    fn register(&mut self, addr: SocketAddr, config: ServerConfig) {
        let server = self
            .net
            .serve(addr, test_routes(&self.probe), config)
            .unwrap();
        self.running.insert(addr, server);
    }
}

impl Harness for LocalHarness {
    fn new() -> Self {
        let seed = 42;
        println!("in-process network seed {seed}");
        LocalHarness {
            net: Network::new(seed),
            probe: Arc::default(),
            next: 1,
            running: HashMap::new(),
        }
    }
    async fn start(&mut self, config: ServerConfig) -> SocketAddr {
        let addr = self.fresh();
        self.register(addr, config);
        addr
    }
    async fn stop(&mut self, addr: SocketAddr) {
        self.running.remove(&addr).expect("running").shutdown();
    }
    async fn restart(&mut self, addr: SocketAddr, config: ServerConfig) {
        self.register(addr, config);
    }
    fn client_of<P: Protocol>(&self, config: ClientConfig) -> Client<P> {
        Client::new(
            self.net
                .client::<P>(SocketAddr::from(([127, 0, 0, 250], 40000)), config),
        )
    }
    fn probe(&self) -> Arc<Probe> {
        self.probe.clone()
    }
    async fn dead_address(&mut self) -> SocketAddr {
        self.fresh()
    }
}

async fn unary_round_trip<H: Harness>() {
    let mut h = H::new();
    let addr = h.start(server_config()).await;
    let client = h.client(client_config());
    let resp = echo(&client, addr, "hello").await;
    assert_eq!(resp, Resp::Echo("hello".into()));
    let resp = client.call(addr, Req::Blob(100_000)).await.unwrap();
    assert_eq!(resp, Resp::Blob(vec![7; 100_000]));

    let err = client
        .call(addr, Req::NotLeader("10.0.0.9:8300".into()))
        .await
        .unwrap_err();
    assert_eq!(
        err.status().map(|s| &s.code),
        Some(&Code::NotLeader {
            leader: Some("10.0.0.9:8300".into())
        }),
        "{err}"
    );
    assert_eq!(err.delivery(), Delivery::Processed);
    assert_eq!(h.probe().active.load(Ordering::SeqCst), 0);

    // Megabytes each way (Raft snapshot chunks) within the default limits.
    let resp = client.call(addr, Req::Blob(4 << 20)).await.unwrap();
    assert_eq!(resp, Resp::Blob(vec![7; 4 << 20]));
    let resp = client
        .call(addr, Req::Upload(vec![1; 2 << 20]))
        .await
        .unwrap();
    assert_eq!(resp, Resp::Len(2 << 20));
}

async fn a_panicking_handler_answers_internal<H: Harness>() {
    let mut h = H::new();
    let addr = h.start(server_config()).await;
    let client = h.client(client_config());
    let err = client.call(addr, Req::Panic).await.unwrap_err();
    assert_eq!(
        err.status().map(|s| &s.code),
        Some(&Code::Internal),
        "{err}"
    );
    let mut s = client.subscribe(addr, Req::Panic).await.unwrap();
    assert_eq!(s.next().await.unwrap().unwrap().n, 0);
    assert_eq!(s.next().await.unwrap().unwrap().n, 1);
    let err = s.next().await.unwrap().unwrap_err();
    assert_eq!(
        err.status().map(|s| &s.code),
        Some(&Code::Internal),
        "{err}"
    );
    assert_echoes(&client, addr, "still up").await;
}

async fn several_protocols_share_one_server<H: Harness>() {
    let mut h = H::new();
    let addr = h.start(server_config()).await;
    let test = h.client(client_config());
    let len = h.client_of::<LenProto>(client_config());
    assert_echoes(&test, addr, "a").await;
    assert_eq!(len.call(addr, "four".to_string()).await.unwrap(), 4);
    let unserved = h.client_of::<UnservedProto>(client_config());
    let err = unserved.call(addr, "x".to_string()).await.unwrap_err();
    assert_eq!(
        err.status().map(|s| &s.code),
        Some(&Code::Unimplemented),
        "{err}"
    );
    assert!(
        err.to_string().contains("cairn.test.len.v1"),
        "lists what is served: {err}"
    );
}

async fn concurrent_calls_share_one_connection<H: Harness>() {
    let mut h = H::new();
    let addr = h.start(server_config()).await;
    let client = h.client(client_config());
    let started = tokio::time::Instant::now();
    let calls = (0..200).map(|i| {
        let client = client.clone();
        async move {
            client
                .call(addr, Req::SleepThenEcho(50, format!("call {i}")))
                .await
        }
    });
    let results = futures::future::join_all(calls).await;
    let elapsed = started.elapsed();
    for (i, r) in results.into_iter().enumerate() {
        assert_eq!(r.unwrap(), Resp::Echo(format!("call {i}")));
    }
    // 200 calls of 50 ms each, one after the other, would take 10 s.
    assert!(
        elapsed < Duration::from_secs(3),
        "calls were not concurrent: {elapsed:?}"
    );
    assert_eq!(
        h.probe().peers.lock().len(),
        1,
        "all calls on one connection"
    );
}

async fn server_stream_with_backpressure<H: Harness>() {
    let mut h = H::new();
    let addr = h.start(server_config()).await;
    let client = h.client(ClientConfig {
        stream_window: 64 << 10,
        connection_window: 256 << 10,
        ..client_config()
    });
    let probe = h.probe();

    // A finite stream ends cleanly.
    let items: Vec<_> = client
        .subscribe(
            addr,
            Req::Count {
                limit: Some(10),
                pad: 0,
                fail_after: None,
            },
        )
        .await
        .unwrap()
        .collect()
        .await;
    let ns: Vec<u64> = items.into_iter().map(|i| i.unwrap().n).collect();
    assert_eq!(ns, (0..10).collect::<Vec<_>>());

    // A failing stream ends with the handler's status.
    let mut s = client
        .subscribe(
            addr,
            Req::Count {
                limit: None,
                pad: 0,
                fail_after: Some(3),
            },
        )
        .await
        .unwrap();
    for n in 0..3 {
        assert_eq!(s.next().await.unwrap().unwrap().n, n);
    }
    let err = s.next().await.unwrap().unwrap_err();
    assert_eq!(
        err.status().map(|s| &s.code),
        Some(&Code::Unavailable),
        "{err}"
    );
    assert!(s.next().await.is_none());
    drop(s);

    // Refused at open: the error comes from subscribe itself.
    let err = client.subscribe(addr, Req::RefuseStream).await.unwrap_err();
    assert_eq!(
        err.status().map(|s| &s.code),
        Some(&Code::InvalidArgument),
        "{err}"
    );

    // An endless producer of 1 KiB items is held back by a slow consumer.
    eventually("earlier streams released", WAIT, || {
        probe.active.load(Ordering::SeqCst) == 0
    })
    .await;
    let base = probe.produced.load(Ordering::SeqCst);
    let mut s = client
        .subscribe(
            addr,
            Req::Count {
                limit: None,
                pad: 1024,
                fail_after: None,
            },
        )
        .await
        .unwrap();
    for n in 0..5 {
        assert_eq!(s.next().await.unwrap().unwrap().n, n);
    }
    // Give the producer ample time to run ahead; it must stay within the window.
    let bound = 5 + 150;
    let watch_until = tokio::time::Instant::now() + Duration::from_millis(300);
    while tokio::time::Instant::now() < watch_until {
        let ahead = probe.produced.load(Ordering::SeqCst) - base;
        assert!(
            ahead <= bound,
            "producer ran {ahead} items ahead of a consumer at 5"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for n in 5..1000 {
        assert_eq!(s.next().await.unwrap().unwrap().n, n);
    }
    assert!(probe.produced.load(Ordering::SeqCst) - base >= 1000);
    drop(s);
    eventually("stream handler dropped", WAIT, || {
        probe.active.load(Ordering::SeqCst) == 0
    })
    .await;
}

async fn deadline_gives_timeout_and_cancels_the_handler<H: Harness>() {
    let mut h = H::new();
    let addr = h.start(server_config()).await;
    let client = h.client(client_config());
    echo(&client, addr, "warm").await;
    let started = tokio::time::Instant::now();
    let err = client
        .call_with(
            addr,
            Req::Block,
            CallOptions::timeout(Duration::from_millis(200)),
        )
        .await
        .unwrap_err();
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(err, RpcError::Timeout { request_sent: true });
    assert_eq!(err.delivery(), Delivery::Unknown);
    let probe = h.probe();
    eventually("handler cancelled after the deadline", WAIT, || {
        probe.active.load(Ordering::SeqCst) == 0 && probe.cancelled.load(Ordering::SeqCst) == 1
    })
    .await;
    // The default deadline applies when the call sets none.
    let client = h.client(ClientConfig {
        default_timeout: Some(Duration::from_millis(100)),
        ..client_config()
    });
    let err = client.call(addr, Req::Block).await.unwrap_err();
    assert!(matches!(err, RpcError::Timeout { .. }), "{err}");
}

async fn dropping_the_call_cancels_the_handler<H: Harness>() {
    let mut h = H::new();
    let addr = h.start(server_config()).await;
    let client = h.client(client_config());
    let probe = h.probe();
    let call = spawn_blocked(&client, addr);
    handler_running(&probe).await;
    call.abort();
    eventually("handler dropped after the caller went away", WAIT, || {
        probe.active.load(Ordering::SeqCst) == 0 && probe.cancelled.load(Ordering::SeqCst) == 1
    })
    .await;
    // The connection is still good.
    assert_echoes(&client, addr, "after").await;
}

async fn server_shutdown_then_restart_on_the_same_address<H: Harness>() {
    let mut h = H::new();
    let addr = h.start(server_config()).await;
    let client = h.client(client_config());
    let mut events = client.events();
    let probe = h.probe();
    let blocked = spawn_blocked(&client, addr);
    handler_running(&probe).await;
    assert_eq!(
        events.recv().await.unwrap().kind,
        ConnectionEventKind::Connected
    );

    h.stop(addr).await;
    let err = blocked.await.unwrap().unwrap_err();
    assert!(
        matches!(err, RpcError::ConnectionLost { .. }),
        "in-flight call: {err}"
    );
    assert_eq!(err.delivery(), Delivery::Unknown);
    eventually("handler dropped by shutdown", WAIT, || {
        probe.active.load(Ordering::SeqCst) == 0
    })
    .await;

    let err = client.call(addr, Req::Echo("x".into())).await.unwrap_err();
    assert!(
        matches!(err, RpcError::Unreachable { .. }),
        "new call: {err}"
    );
    assert!(err.is_not_delivered());
    let ended = events.recv().await.unwrap();
    assert_eq!(ended.peer, addr);
    assert!(
        matches!(
            ended.kind,
            ConnectionEventKind::Lost { .. } | ConnectionEventKind::Closed
        ),
        "{ended:?}"
    );

    h.restart(addr, server_config()).await;
    let resp = eventually_ok("a call after the restart", WAIT, || {
        client.call(addr, Req::Echo("back".into()))
    })
    .await;
    assert_eq!(resp, Resp::Echo("back".into()));
}

async fn a_server_shutdown_fails_open_streams_rather_than_ending_them<H: Harness>() {
    let mut h = H::new();
    let addr = h.start(server_config()).await;
    let client = h.client(client_config());
    let mut s = client
        .subscribe(
            addr,
            Req::Count {
                limit: None,
                pad: 0,
                fail_after: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(s.next().await.unwrap().unwrap().n, 0);
    let probe = h.probe();
    // Let the producer fill whatever buffer sits between it and this reader.
    eventually("producer ran ahead", WAIT, || {
        probe.produced.load(Ordering::SeqCst) >= 17
    })
    .await;
    h.stop(addr).await;
    // Items already in flight may still arrive; then the stream must fail, not just end.
    let mut last = None;
    while let Some(item) = tokio::time::timeout(WAIT, s.next()).await.unwrap() {
        last = Some(item);
    }
    assert!(
        matches!(last, Some(Err(RpcError::ConnectionLost { .. }))),
        "{last:?}"
    );
    eventually("stream handler dropped", WAIT, || {
        probe.active.load(Ordering::SeqCst) == 0
    })
    .await;
}

async fn nothing_listening_is_unreachable<H: Harness>() {
    let mut h = H::new();
    let addr = h.dead_address().await;
    let client = h.client(client_config());
    for _ in 0..3 {
        let err = client.call(addr, Req::Echo("x".into())).await.unwrap_err();
        assert!(
            matches!(err, RpcError::Unreachable { addr: a, .. } if a == addr),
            "{err}"
        );
        assert!(err.is_not_delivered());
    }
}

async fn oversized_messages_are_refused<H: Harness>() {
    let mut h = H::new();
    let addr = h
        .start(ServerConfig {
            max_request_bytes: 10_000,
            max_response_bytes: 50_000,
            ..server_config()
        })
        .await;
    let client = h.client(ClientConfig {
        max_request_bytes: 20_000,
        max_response_bytes: 30_000,
        ..client_config()
    });
    // Over the client's own request limit: refused locally, never sent.
    let err = client
        .call(addr, Req::Upload(vec![0; 25_000]))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            RpcError::TooLarge {
                direction: Direction::Request,
                limit: 20_000,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.is_not_delivered());
    // Over the server's request limit: refused by the server before the handler.
    let err = client
        .call(addr, Req::Upload(vec![0; 15_000]))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            RpcError::TooLarge {
                direction: Direction::Request,
                limit: 10_000,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.is_not_delivered());
    // Response over the client's limit.
    let err = client.call(addr, Req::Blob(40_000)).await.unwrap_err();
    assert!(
        matches!(
            err,
            RpcError::TooLarge {
                direction: Direction::Response,
                limit: 30_000,
                ..
            }
        ),
        "{err}"
    );
    // Response over the server's limit.
    let err = client.call(addr, Req::Blob(60_000)).await.unwrap_err();
    assert!(
        matches!(
            err,
            RpcError::TooLarge {
                direction: Direction::Response,
                limit: 50_000,
                ..
            }
        ),
        "{err}"
    );
    // A stream item over the limit ends the stream with TooLarge.
    let mut s = client
        .subscribe(
            addr,
            Req::Count {
                limit: None,
                pad: 40_000,
                fail_after: None,
            },
        )
        .await
        .unwrap();
    let err = s.next().await.unwrap().unwrap_err();
    assert!(
        matches!(
            err,
            RpcError::TooLarge {
                direction: Direction::Response,
                ..
            }
        ),
        "{err}"
    );
    // Everything within limits still works.
    assert_eq!(
        client
            .call(addr, Req::Upload(vec![0; 9_000]))
            .await
            .unwrap(),
        Resp::Len(9_000)
    );
}

macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod tcp {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name::<super::TcpHarness>().await
                }
            )*
        }
        mod tls {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name::<super::TlsHarness>().await
                }
            )*
        }
        mod in_process {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name::<super::LocalHarness>().await
                }
            )*
        }
    };
}

contract!(
    unary_round_trip,
    several_protocols_share_one_server,
    a_panicking_handler_answers_internal,
    concurrent_calls_share_one_connection,
    server_stream_with_backpressure,
    deadline_gives_timeout_and_cancels_the_handler,
    dropping_the_call_cancels_the_handler,
    server_shutdown_then_restart_on_the_same_address,
    a_server_shutdown_fails_open_streams_rather_than_ending_them,
    nothing_listening_is_unreachable,
    oversized_messages_are_refused,
);
