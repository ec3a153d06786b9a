//! The runtime against the in-memory registry and a scripted source: convergence, zero
//! writes when nothing changed, outages of the agent and of the source, ownership between
//! two registrators sharing one catalog, `-deregister on-success`, and the event loop.

use cairn_registrator::{
    Container, DeregisterMode, MemoryRegistry, Options, PortBinding, Proto, RunState, Runtime,
    Source, SourceError,
};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

#[derive(Clone, Default)]
struct Scripted {
    containers: Arc<Mutex<Vec<Container>>>,
    down: Arc<Mutex<bool>>,
    notify: Arc<Notify>,
}

impl Scripted {
    fn set(&self, c: Vec<Container>) {
        *self.containers.lock().unwrap() = c;
        self.notify.notify_one();
    }
    fn set_down(&self, d: bool) {
        *self.down.lock().unwrap() = d;
    }
}

impl Source for Scripted {
    async fn list(&mut self) -> Result<Vec<Container>, SourceError> {
        if *self.down.lock().unwrap() {
            return Err(SourceError::Engine {
                endpoint: "scripted".into(),
                message: "engine down".into(),
            });
        }
        Ok(self.containers.lock().unwrap().clone())
    }
    async fn changed(&mut self) {
        self.notify.notified().await
    }
    fn describe(&self) -> String {
        "scripted".into()
    }
}

fn web(name: &str, host_port: u16) -> Container {
    Container {
        id: format!("id-{name}"),
        name: name.into(),
        image: "repo/stock-price".into(),
        env: vec![
            "SERVICE_4567_NAME=stock-price".into(),
            "SERVICE_4567_CHECK_HTTP=/health".into(),
            "SERVICE_TAGS=http".into(),
        ],
        labels: BTreeMap::new(),
        ports: vec![PortBinding {
            exposed: 4567,
            proto: Proto::Tcp,
            host_ip: Some("0.0.0.0".into()),
            host_port: Some(host_port),
        }],
        ip: None,
        state: RunState::Running,
        health: None,
    }
}

async fn runtime(
    src: &Scripted,
    reg: &MemoryRegistry,
    opts: Options,
) -> Runtime<Scripted, MemoryRegistry> {
    let mut rt = Runtime::new(src.clone(), reg.clone(), opts);
    rt.connect(Some(1)).await.unwrap();
    rt
}

#[tokio::test]
async fn converges_and_then_writes_nothing() {
    let src = Scripted::default();
    let reg = MemoryRegistry::new("node-a", "10.0.0.1");
    src.set(vec![web("a", 32768), web("b", 32769)]);
    let mut rt = runtime(&src, &reg, Options::default()).await;
    let r = rt.reconcile_once().await.unwrap();
    assert_eq!((r.wanted, r.writes, r.failed), (2, 2, 0));
    let s = reg.snapshot();
    assert_eq!(s["node-a:a:4567"].port, 32768);
    assert_eq!(s["node-a:a:4567"].address, "10.0.0.1");
    for _ in 0..5 {
        assert_eq!(rt.reconcile_once().await.unwrap().writes, 0);
    }
    assert_eq!(reg.writes(), 2);
    // A container goes away; a port changes.
    src.set(vec![web("b", 40000)]);
    let r = rt.reconcile_once().await.unwrap();
    assert_eq!(r.writes, 2);
    let s = reg.snapshot();
    assert!(!s.contains_key("node-a:a:4567"));
    assert_eq!(s["node-a:b:4567"].port, 40000);
}

#[tokio::test]
async fn leftovers_of_a_previous_run_are_removed() {
    // A registrator registered two containers, then crashed; one container stopped meanwhile.
    let src = Scripted::default();
    let reg = MemoryRegistry::new("node-a", "10.0.0.1");
    src.set(vec![web("a", 1), web("b", 2)]);
    runtime(&src, &reg, Options::default())
        .await
        .reconcile_once()
        .await
        .unwrap();
    src.set(vec![web("b", 2)]);
    let mut fresh = runtime(&src, &reg, Options::default()).await;
    let r = fresh.reconcile_once().await.unwrap();
    assert_eq!(r.writes, 1, "only the leftover is removed");
    assert_eq!(reg.snapshot().keys().collect::<Vec<_>>(), ["node-a:b:4567"]);
}

#[tokio::test]
async fn agent_down_writes_nothing_then_registers_once() {
    let src = Scripted::default();
    let reg = MemoryRegistry::new("node-a", "10.0.0.1");
    let mut rt = runtime(&src, &reg, Options::default()).await;
    src.set(vec![web("a", 1)]);
    reg.set_down(true);
    assert!(rt.reconcile_once().await.is_err());
    assert_eq!(reg.writes(), 0);
    reg.set_down(false);
    assert_eq!(rt.reconcile_once().await.unwrap().writes, 1);
    assert_eq!(rt.reconcile_once().await.unwrap().writes, 0);
    assert_eq!(reg.snapshot().len(), 1);
}

#[tokio::test]
async fn engine_down_deregisters_nothing() {
    let src = Scripted::default();
    let reg = MemoryRegistry::new("node-a", "10.0.0.1");
    src.set(vec![web("a", 1)]);
    let mut rt = runtime(&src, &reg, Options::default()).await;
    rt.reconcile_once().await.unwrap();
    src.set_down(true);
    let e = rt.reconcile_once().await.unwrap_err();
    assert!(e.to_string().contains("engine down"), "{e}");
    assert_eq!(reg.snapshot().len(), 1);
    assert_eq!(reg.writes(), 1);
}

#[tokio::test]
async fn two_registrators_on_one_catalog_never_fight() {
    let src_a = Scripted::default();
    let src_b = Scripted::default();
    let reg = MemoryRegistry::new("node-a", "10.0.0.1");
    let reg_b = reg.as_node("node-b", "10.0.0.2");
    src_a.set(vec![web("web", 1)]);
    src_b.set(vec![web("web", 1)]);
    let mut a = runtime(&src_a, &reg, Options::default()).await;
    let mut b = runtime(&src_b, &reg_b, Options::default()).await;
    for _ in 0..3 {
        a.reconcile_once().await.unwrap();
        b.reconcile_once().await.unwrap();
    }
    let s = reg.snapshot();
    assert_eq!(
        s.len(),
        2,
        "same container name, distinct IDs: {:?}",
        s.keys()
    );
    assert_eq!(s["node-b:web:4567"].address, "10.0.0.2");
    assert_eq!(reg.writes(), 2);
    // B's container stops: only B's service goes, and A never touches it.
    src_b.set(vec![]);
    assert_eq!(a.reconcile_once().await.unwrap().writes, 0);
    assert_eq!(b.reconcile_once().await.unwrap().writes, 1);
    assert_eq!(
        reg.snapshot().keys().collect::<Vec<_>>(),
        ["node-a:web:4567"]
    );
}

#[tokio::test]
async fn on_success_keeps_failed_containers() {
    let src = Scripted::default();
    let reg = MemoryRegistry::new("node-a", "10.0.0.1");
    src.set(vec![web("ok", 1), web("bad", 2), web("killed", 3)]);
    let opts = Options {
        deregister: DeregisterMode::OnSuccess,
        ..Default::default()
    };
    let mut rt = runtime(&src, &reg, opts).await;
    rt.reconcile_once().await.unwrap();
    let exited = |name: &str, port, code| {
        let mut c = web(name, port);
        c.state = RunState::Exited(Some(code));
        c
    };
    src.set(vec![
        exited("ok", 1, 0),
        exited("bad", 2, 3),
        exited("killed", 3, 137),
    ]);
    rt.reconcile_once().await.unwrap();
    assert_eq!(
        reg.snapshot().keys().collect::<Vec<_>>(),
        ["node-a:bad:4567"]
    );
    // Removed for good: deregistered.
    src.set(vec![]);
    rt.reconcile_once().await.unwrap();
    assert!(reg.snapshot().is_empty());
}

async fn wait_for(what: &str, deadline: Duration, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + deadline;
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn the_loop_follows_hints_and_retries_after_outages() {
    let src = Scripted::default();
    let reg = MemoryRegistry::new("node-a", "10.0.0.1");
    let mut opts = Options::default();
    opts.backoff.base = Duration::from_millis(20);
    opts.backoff.max = Duration::from_millis(100);
    let rt = Runtime::new(src.clone(), reg.clone(), opts);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(rt.run(async {
        let _ = stop_rx.await;
    }));
    src.set(vec![web("a", 1)]);
    wait_for("registration", Duration::from_secs(10), || {
        reg.snapshot().len() == 1
    })
    .await;
    // The agent goes away while a container stops: the retry timer catches up.
    reg.set_down(true);
    src.set(vec![]);
    wait_for(
        "a refused round and its retry",
        Duration::from_secs(10),
        || reg.refused() >= 2,
    )
    .await;
    reg.set_down(false);
    wait_for(
        "deregistration after the outage",
        Duration::from_secs(10),
        || reg.snapshot().is_empty(),
    )
    .await;
    stop_tx.send(()).unwrap();
    let rt = tokio::time::timeout(Duration::from_secs(5), handle)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rt.stats().writes, 2, "registered once, deregistered once");
}
