//! Several gossip runtimes over real UDP sockets on 127.0.0.1 (ephemeral
//! ports): join, failure, leave, restart, tags, force-leave, name conflict,
//! encryption key mismatch and `hint_suspect`.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cairn_gossip::{
    keygen, Gossip, GossipConfig, GossipError, MemberEvent, MemberStatus, Tags, Timing,
};

/// Fast but tolerant of a busy machine.
fn timing() -> Timing {
    Timing {
        probe_interval: Duration::from_millis(200),
        probe_timeout: Duration::from_millis(100),
        gossip_interval: Duration::from_millis(50),
        suspicion_timeout: Duration::from_millis(600),
        push_pull_interval: Duration::from_secs(2),
        reconnect_interval: Duration::from_secs(1),
        ..Timing::lan()
    }
}

fn config(name: &str, bind: SocketAddr) -> GossipConfig {
    let mut c = GossipConfig::new(name, bind);
    c.timing = timing();
    c.join_timeout = Duration::from_secs(2);
    c
}

fn any() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

async fn start(name: &str) -> Gossip {
    Gossip::start_udp(config(name, any())).await.unwrap()
}

/// Polls `f` every 20 ms until it holds or `secs` pass.
async fn eventually(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while tokio::time::Instant::now() < deadline {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    f()
}

fn status_of(g: &Gossip, name: &str) -> Option<MemberStatus> {
    g.member(name).map(|m| m.status)
}

fn alive(g: &Gossip) -> usize {
    g.members()
        .iter()
        .filter(|m| m.status == MemberStatus::Alive)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_fail_force_leave_restart_and_tags() {
    let a = start("a").await;
    let b = start("b").await;
    let c = start("c").await;
    let mut events = a.subscribe();
    assert_eq!(b.join(&[a.local_addr()]).await.unwrap(), 1);
    assert_eq!(c.join(&[a.local_addr(), b.local_addr()]).await.unwrap(), 2);
    assert!(eventually(10, || [&a, &b, &c].iter().all(|g| alive(g) == 3)).await);
    assert_eq!(a.local_member().status, MemberStatus::Alive);

    // Tags spread as an update.
    let mut tags = Tags::new();
    tags.insert("role".into(), "consul".into());
    tags.insert("port".into(), "8300".into());
    b.set_tags(tags.clone()).await.unwrap();
    assert!(eventually(10, || a.member("b").map(|m| m.tags) == Some(tags.clone())).await);
    assert!(eventually(10, || c.member("b").map(|m| m.tags) == Some(tags.clone())).await);

    // A node with a live member's name at another address is refused.
    let impostor = start("b").await;
    match impostor.join(&[a.local_addr()]).await {
        Err(GossipError::NameConflict { existing, .. }) => assert_eq!(existing, b.local_addr()),
        other => panic!("expected a name conflict, got {other:?}"),
    }
    impostor.shutdown().await;

    // A crash (no leave) is seen as Failed.
    let c_addr = c.local_addr();
    c.shutdown().await;
    assert!(
        eventually(15, || status_of(&a, "c") == Some(MemberStatus::Failed)
            && status_of(&b, "c") == Some(MemberStatus::Failed))
        .await,
        "a: {:?} b: {:?}",
        a.member("c"),
        b.member("c")
    );

    // force-leave turns it into Left everywhere.
    assert!(matches!(
        a.force_leave("b", false).await,
        Err(GossipError::MemberAlive(_))
    ));
    a.force_leave("c", false).await.unwrap();
    assert_eq!(status_of(&a, "c"), Some(MemberStatus::Left));
    assert!(eventually(10, || status_of(&b, "c") == Some(MemberStatus::Left)).await);

    // A restart with the same name (and address) is alive again.
    let c2 = Gossip::start_udp(config("c", c_addr)).await.unwrap();
    assert!(c2.join(&[a.local_addr()]).await.unwrap() >= 1);
    assert!(
        eventually(10, || [&a, &b, &c2].iter().all(|g| alive(g) == 3)).await,
        "a: {:?}",
        a.members()
    );

    let mut seen = Vec::new();
    while let Ok(e) = events.try_recv() {
        seen.push(e);
    }
    let about_c: Vec<&MemberEvent> = seen.iter().filter(|e| e.member().name == "c").collect();
    assert!(
        matches!(about_c.first(), Some(MemberEvent::Join(_))),
        "{about_c:?}"
    );
    assert!(about_c.iter().any(|e| matches!(e, MemberEvent::Failed(_))));
    assert!(about_c.iter().any(|e| matches!(e, MemberEvent::Left(_))));
    assert!(
        matches!(about_c.last(), Some(MemberEvent::Join(_))),
        "{about_c:?}"
    );
    assert!(seen
        .iter()
        .any(|e| matches!(e, MemberEvent::Update(m) if m.name == "b" && m.tags == tags)));

    for g in [a, b, c2] {
        g.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_leave_is_left_not_failed() {
    let a = start("a").await;
    let b = start("b").await;
    let c = start("c").await;
    b.join(&[a.local_addr()]).await.unwrap();
    c.join(&[a.local_addr()]).await.unwrap();
    assert!(eventually(10, || [&a, &b, &c].iter().all(|g| alive(g) == 3)).await);
    let mut events = a.subscribe();
    c.leave().await.unwrap();
    assert_eq!(c.local_member().status, MemberStatus::Left);
    assert!(
        eventually(10, || status_of(&a, "c") == Some(MemberStatus::Left)
            && status_of(&b, "c") == Some(MemberStatus::Left))
        .await
    );
    c.shutdown().await;
    // Stays Left (never Failed) after the process is gone.
    tokio::time::sleep(timing().probe_interval * 5).await;
    assert_eq!(status_of(&a, "c"), Some(MemberStatus::Left));
    while let Ok(e) = events.try_recv() {
        let failed_c = matches!(&e, MemberEvent::Failed(m) if m.name == "c");
        assert!(!failed_c, "a leave was seen as a failure: {e:?}");
    }
    a.shutdown().await;
    b.shutdown().await;
}

/// Collects log output of the current thread's subscriber.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);
impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn wrong_or_missing_key_cannot_join_and_says_why() {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let key = keygen();
    let mut ca = config("a", any());
    ca.keys = vec![key.clone()];
    let a = Gossip::start_udp(ca).await.unwrap();
    let mut cb = config("b", any());
    cb.keys = vec![key];
    let b = Gossip::start_udp(cb).await.unwrap();
    assert_eq!(b.join(&[a.local_addr()]).await.unwrap(), 1);

    let mut cx = config("x", any());
    cx.keys = vec![keygen()];
    cx.join_timeout = Duration::from_millis(600);
    let x = Gossip::start_udp(cx).await.unwrap();
    assert!(matches!(
        x.join(&[a.local_addr()]).await,
        Err(GossipError::JoinFailed(_))
    ));
    let stats = a.stats();
    assert!(stats.decrypt_failures >= 1, "{stats:?}");
    let expected = format!(
        "gossip packet from {} failed to decrypt: wrong or missing encryption key",
        x.local_addr()
    );
    assert_eq!(stats.last_drop.as_deref(), Some(expected.as_str()));
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains(&expected), "log: {text}");

    let mut cy = config("y", any());
    cy.join_timeout = Duration::from_millis(600);
    let y = Gossip::start_udp(cy).await.unwrap();
    assert!(y.join(&[a.local_addr()]).await.is_err());
    assert!(a.stats().decrypt_failures >= 2);
    assert_eq!(alive(&a), 2);
    for g in [a, b, x, y] {
        g.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hint_suspect_detects_a_crash_before_any_probe_could() {
    // With a 5 s probe interval, foca evaluates a failed probe only at the
    // next tick: a crash cannot be detected before 5 s + suspicion.
    let slow = Timing {
        probe_interval: Duration::from_secs(5),
        probe_timeout: Duration::from_millis(200),
        suspicion_timeout: Duration::from_millis(500),
        ..timing()
    };
    let mut nodes = Vec::new();
    for name in ["a", "b", "c"] {
        let mut c = config(name, any());
        c.timing = slow.clone();
        nodes.push(Gossip::start_udp(c).await.unwrap());
    }
    nodes[1].join(&[nodes[0].local_addr()]).await.unwrap();
    nodes[2].join(&[nodes[0].local_addr()]).await.unwrap();
    assert!(eventually(10, || nodes.iter().all(|g| alive(g) == 3)).await);
    let c = nodes.pop().unwrap();
    c.shutdown().await;
    let start = std::time::Instant::now();
    nodes[0].hint_suspect("c").await.unwrap();
    assert!(
        eventually(4, || status_of(&nodes[0], "c")
            == Some(MemberStatus::Failed))
        .await
    );
    let took = start.elapsed();
    assert!(took < Duration::from_secs(4), "took {took:?}");
    // A hint about a live member does not fail it.
    nodes[0].hint_suspect("b").await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(status_of(&nodes[0], "b"), Some(MemberStatus::Alive));
    assert!(matches!(
        nodes[0].hint_suspect("nobody").await,
        Err(GossipError::UnknownMember(_))
    ));
    for g in nodes {
        g.shutdown().await;
    }
}
