//! Shared test fixtures: a small protocol exercising every call shape, a service that records
//! what its handlers do (drop guards count cancellations), polling helpers, and the calls and
//! servers the test files all make.
#![allow(dead_code)]

use std::collections::HashSet;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cairn_rpc::{
    CallContext, Client, ItemStream, PostcardCodec, Routes, RpcError, RpcServer, ServerConfig,
    Service, Status,
};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Declares a protocol: a unit struct implementing [`cairn_rpc::Protocol`] from its wire name, codec and
/// message types, as in `protocol!(pub Name = "wire.name.v1", Codec, Request => Response, Item);`.
macro_rules! protocol {
    ($(#[$attr:meta])* $vis:vis $name:ident = $wire:literal, $codec:ty, $req:ty => $resp:ty, $item:ty) => {
        $(#[$attr])*
        $vis struct $name;
        impl cairn_rpc::Protocol for $name {
            const NAME: &'static str = $wire;
            type Codec = $codec;
            type Request = $req;
            type Response = $resp;
            type Item = $item;
        }
    };
}
#[allow(unused_imports)] // not every test file declares a protocol of its own
pub(crate) use protocol;

/// How long a test waits for what should happen soon.
pub const WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Req {
    /// Answers `Resp::Echo` with the same text.
    Echo(String),
    /// Answers after sleeping this many milliseconds.
    SleepThenEcho(u64, String),
    /// Never answers (until cancelled).
    Block,
    /// Answers with a NotLeader status carrying this hint.
    NotLeader(String),
    /// Answers with this many bytes.
    Blob(usize),
    /// A request carrying a payload; answers its length.
    Upload(Vec<u8>),
    /// Stream: items `0..limit` (or for ever), each padded to `pad` bytes; fails with a status
    /// after `fail_after` items if set.
    Count {
        limit: Option<u64>,
        pad: usize,
        fail_after: Option<u64>,
    },
    /// Stream: refused at open with InvalidArgument.
    RefuseStream,
    /// Unary: panics. Stream: yields two items, then panics.
    Panic,
    /// Stream: one item, then nothing more, for ever (an idle subscription).
    Quiet,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Resp {
    Echo(String),
    Blob(Vec<u8>),
    Len(usize),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tick {
    pub n: u64,
    pub pad: Vec<u8>,
}

protocol!(pub TestProto = "cairn.test.v1", PostcardCodec, Req => Resp, Tick);

/// What the service's handlers have done.
#[derive(Default)]
pub struct Probe {
    /// Handlers (unary or stream) currently alive.
    pub active: AtomicUsize,
    /// The most handlers alive at once.
    pub peak: AtomicUsize,
    /// Handlers dropped before finishing.
    pub cancelled: AtomicUsize,
    /// Stream items produced so far (all streams).
    pub produced: AtomicU64,
    /// Peer addresses calls came from.
    pub peers: parking_lot::Mutex<HashSet<SocketAddr>>,
}

/// Counts a handler alive; if dropped without `finish`, counts a cancellation.
pub struct Guard {
    probe: Arc<Probe>,
    finished: bool,
}

impl Guard {
    pub fn new(probe: &Arc<Probe>) -> Self {
        let now = probe.active.fetch_add(1, Ordering::SeqCst) + 1;
        probe.peak.fetch_max(now, Ordering::SeqCst);
        Guard {
            probe: probe.clone(),
            finished: false,
        }
    }
    pub fn finish(mut self) {
        self.finished = true;
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.probe.active.fetch_sub(1, Ordering::SeqCst);
        if !self.finished {
            self.probe.cancelled.fetch_add(1, Ordering::SeqCst);
        }
    }
}

pub struct TestService {
    pub probe: Arc<Probe>,
}

impl Service<TestProto> for TestService {
    async fn unary(&self, ctx: CallContext, req: Req) -> Result<Resp, Status> {
        self.probe.peers.lock().insert(ctx.peer);
        let guard = Guard::new(&self.probe);
        let out = match req {
            Req::Echo(s) => Ok(Resp::Echo(s)),
            Req::SleepThenEcho(ms, s) => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Ok(Resp::Echo(s))
            }
            Req::Block => std::future::pending().await,
            Req::NotLeader(hint) => Err(Status::not_leader(Some(hint))),
            Req::Blob(n) => Ok(Resp::Blob(vec![7; n])),
            Req::Upload(bytes) => Ok(Resp::Len(bytes.len())),
            Req::Panic => panic!("handler panics on purpose"),
            Req::Count { .. } | Req::RefuseStream | Req::Quiet => {
                Err(Status::invalid_argument("stream request on a unary call"))
            }
        };
        guard.finish();
        out
    }

    async fn stream(&self, ctx: CallContext, req: Req) -> Result<ItemStream<Tick>, Status> {
        self.probe.peers.lock().insert(ctx.peer);
        let (limit, pad, fail_after) = match req {
            Req::Count {
                limit,
                pad,
                fail_after,
            } => (limit, pad, fail_after),
            Req::RefuseStream => return Err(Status::invalid_argument("refused")),
            Req::Panic => (None, 0, Some(u64::MAX)),
            Req::Quiet => {
                let guard = Guard::new(&self.probe);
                let first = futures::stream::iter([Ok(Tick { n: 0, pad: vec![] })]);
                let rest = futures::stream::pending().map(move |()| {
                    let _hold = &guard;
                    Ok(Tick { n: 1, pad: vec![] })
                });
                return Ok(Box::pin(first.chain(rest)));
            }
            _ => return Err(Status::invalid_argument("not a stream request")),
        };
        let guard = Guard::new(&self.probe);
        let probe = self.probe.clone();
        let items = futures::stream::iter(0u64..)
            .take_while(move |n| std::future::ready(limit.is_none_or(|l| *n < l)))
            .map(move |n| {
                let _hold = &guard;
                if fail_after == Some(u64::MAX) && n == 2 {
                    panic!("stream panics on purpose");
                }
                if fail_after == Some(n) {
                    return Err(Status::unavailable("stream failed on purpose"));
                }
                probe.produced.fetch_add(1, Ordering::SeqCst);
                Ok(Tick {
                    n,
                    pad: vec![1; pad],
                })
            })
            .then(|item| async move {
                // Yield so an unbounded producer cannot starve the runtime.
                tokio::task::yield_now().await;
                item
            });
        Ok(Box::pin(items))
    }
}

/// Polls `cond` until it holds or `within` passes; panics with `what` on timeout.
pub async fn eventually(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + within;
    while !cond() {
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {within:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Retries `call` until it returns `Ok` or `within` passes.
pub async fn eventually_ok<T, E: std::fmt::Debug, F: Future<Output = Result<T, E>>>(
    what: &str,
    within: Duration,
    mut call: impl FnMut() -> F,
) -> T {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match call().await {
            Ok(v) => return v,
            Err(e) if tokio::time::Instant::now() > deadline => {
                panic!("timed out after {within:?} waiting for {what}; last error: {e:?}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// Calls `Req::Echo(text)`, which must succeed; the answer.
pub async fn echo(client: &Client<TestProto>, addr: SocketAddr, text: &str) -> Resp {
    client.call(addr, Req::Echo(text.into())).await.unwrap()
}

/// Calls `Req::Echo(text)` and asserts that the same text comes back.
pub async fn assert_echoes(client: &Client<TestProto>, addr: SocketAddr, text: &str) {
    assert_eq!(echo(client, addr, text).await, Resp::Echo(text.into()));
}

/// A `Req::Block` call in a task of its own, left to be cancelled or broken.
pub fn spawn_blocked(
    client: &Client<TestProto>,
    addr: SocketAddr,
) -> JoinHandle<Result<Resp, RpcError>> {
    let client = client.clone();
    tokio::spawn(async move { client.call(addr, Req::Block).await })
}

/// Waits until exactly one handler is running.
pub async fn handler_running(probe: &Probe) {
    eventually("handler running", WAIT, || {
        probe.active.load(Ordering::SeqCst) == 1
    })
    .await;
}

/// Serves `routes` over TCP on `listener` until the returned sender is used or dropped.
pub fn serve_tcp(
    listener: TcpListener,
    routes: Routes,
    config: ServerConfig,
) -> (oneshot::Sender<()>, JoinHandle<std::io::Result<()>>) {
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        RpcServer::new(config)
            .serve(listener, routes, async {
                let _ = stopped.await;
            })
            .await
    });
    (stop, task)
}

protocol!(
    /// A second protocol, served next to [`TestProto`] on the same server.
    pub LenProto = "cairn.test.len.v1", cairn_rpc::JsonCodec, String => usize, ()
);

/// Answers the length of the request.
pub struct LenService;

impl Service<LenProto> for LenService {
    async fn unary(&self, _ctx: CallContext, req: String) -> Result<usize, Status> {
        Ok(req.len())
    }
}

protocol!(
    /// A protocol no test server serves.
    pub UnservedProto = "cairn.test.unserved.v1", PostcardCodec, String => String, ()
);

/// The routes of every test server: the test protocol and the second one.
pub fn test_routes(probe: &Arc<Probe>) -> Routes {
    Routes::new()
        .route::<TestProto, _>(Arc::new(TestService {
            probe: probe.clone(),
        }))
        .route::<LenProto, _>(Arc::new(LenService))
}

/// rustls configurations for mutual TLS: a fresh CA, a server certificate for
/// `server.dc1.consul` (and 127.0.0.1) and a client certificate, both signed by it.
pub struct TlsPki {
    pub server: Arc<rustls::ServerConfig>,
    pub client: Arc<rustls::ClientConfig>,
}

/// Makes a [`TlsPki`] (server requires a client certificate; client checks the name).
pub fn tls_pki() -> TlsPki {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    let provider = || Arc::new(rustls::crypto::ring::default_provider());
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf = |name: &str| {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec![name.to_string(), "127.0.0.1".to_string()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        (
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
    };
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca_cert.der().clone()).unwrap();
    let roots = Arc::new(roots);
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(roots.clone(), provider())
            .build()
            .unwrap();
    let (chain, key) = leaf("server.dc1.consul");
    let server = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .unwrap();
    let (chain, key) = leaf("client.dc1.consul");
    let client = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .unwrap();
    TlsPki {
        server: Arc::new(server),
        client: Arc::new(client),
    }
}

/// [`serve_tcp`] with a TLS acceptor.
pub fn serve_tls(
    listener: TcpListener,
    routes: Routes,
    config: ServerConfig,
    acceptor: cairn_rpc::tcp::tls::TlsAcceptor,
) -> (oneshot::Sender<()>, JoinHandle<std::io::Result<()>>) {
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        RpcServer::new(config)
            .with_acceptor(acceptor)
            .serve(listener, routes, async {
                let _ = stopped.await;
            })
            .await
    });
    (stop, task)
}
