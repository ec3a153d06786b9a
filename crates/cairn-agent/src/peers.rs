//! Remembered peers: an agent with a data directory keeps the addresses of the pool's
//! live members in `data_dir/serf/peers` (Consul keeps a serf snapshot for the same
//! reason), and after a restart it re-joins through them. Without this, a restarted
//! server whose `-retry-join` names only itself would stay outside the pool until the
//! others' slow reconnect round found it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cairn_gossip::{Gossip, MemberStatus};

/// Most addresses kept (the file is read at start, so it stays small).
const MAX_PEERS: usize = 256;
/// How often the file is refreshed when nothing happens.
const REFRESH: Duration = Duration::from_secs(30);

fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("serf")
}

/// The remembered peer addresses (`ip:port`), empty if there are none.
pub(crate) fn load(data_dir: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(dir(data_dir).join("peers")) else {
        return Vec::new();
    };
    text.lines()
        .map(str::trim)
        .filter(|l| l.parse::<std::net::SocketAddr>().is_ok())
        .take(MAX_PEERS)
        .map(str::to_string)
        .collect()
}

/// The live members' addresses other than this agent, as the file holds them.
fn snapshot(gossip: &Gossip) -> String {
    let me = gossip.local_member().name;
    let mut addrs: Vec<String> = gossip
        .members()
        .into_iter()
        .filter(|m| m.status == MemberStatus::Alive && m.name != me)
        .map(|m| m.addr.to_string())
        .take(MAX_PEERS)
        .collect();
    addrs.sort();
    addrs.join("\n")
}

/// Keeps `data_dir/serf/peers` up to date for the life of the agent.
pub(crate) async fn keep(gossip: Arc<Gossip>, data_dir: PathBuf) {
    let mut events = gossip.subscribe();
    let mut written = String::new();
    loop {
        let now = snapshot(&gossip);
        if now != written && !now.is_empty() {
            let d = dir(&data_dir);
            let saved = std::fs::create_dir_all(&d).and_then(|_| {
                cairn_fs::write_file_durably(&d, "peers", now.as_bytes()).map(|_| ())
            });
            match saved {
                Ok(()) => written = now,
                Err(e) => tracing::warn!(
                    "could not remember the pool's members in {}: {e}",
                    d.display()
                ),
            }
        }
        let _ = tokio::time::timeout(REFRESH, events.recv()).await;
        // Coalesce a burst of events.
        tokio::time::sleep(Duration::from_millis(200)).await;
        while events.try_recv().is_ok() {}
    }
}

/// After a restart: joins through the remembered peers until one answers (at most
/// `attempts` tries, `every` apart).
pub(crate) async fn rejoin(
    gossip: Arc<Gossip>,
    peers: Vec<String>,
    every: Duration,
    attempts: u32,
) {
    for attempt in 1..=attempts {
        match crate::lan::join(&gossip, &peers).await {
            Ok(n) if n > 0 => {
                tracing::info!(joined = n, "re-joined the pool through remembered members");
                return;
            }
            Ok(_) => return,
            Err(e) => {
                tracing::debug!("re-join attempt {attempt} through remembered members failed: {e}")
            }
        }
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_is_read_leniently_and_bounded() {
        let d = tempfile::tempdir().unwrap();
        assert!(load(d.path()).is_empty());
        std::fs::create_dir_all(dir(d.path())).unwrap();
        let mut text = String::from("127.0.0.2:8301\nnot an address\n\n");
        for i in 0..300 {
            text.push_str(&format!("10.0.{}.{}:8301\n", i / 250, i % 250));
        }
        std::fs::write(dir(d.path()).join("peers"), text).unwrap();
        let got = load(d.path());
        assert_eq!(got[0], "127.0.0.2:8301");
        assert_eq!(got.len(), MAX_PEERS);
    }
}
