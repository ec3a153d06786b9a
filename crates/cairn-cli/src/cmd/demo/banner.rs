//! Reads an agent's bound addresses back from its start-up banner ("HTTP address:", "DNS
//! address:", "Serf LAN address:") in its log file, so the demo can run every agent on
//! ephemeral ports and still tell the clients where the server is.

use super::procs::Proc;
use std::path::Path;
use std::time::{Duration, Instant};

/// Most bytes of a log read while waiting for the banner.
const MAX_BANNER_BYTES: usize = 256 * 1024;

/// The addresses an agent printed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Banner {
    pub http: Option<String>,
    pub dns: Option<String>,
    pub serf: Option<String>,
}

impl Banner {
    fn complete(&self) -> bool {
        self.http.is_some() && self.dns.is_some() && self.serf.is_some()
    }
}

/// The banner's addresses in `text` (the first occurrence of each; suffixes such as
/// "(udp)" dropped).
pub fn parse(text: &str) -> Banner {
    let mut b = Banner::default();
    for line in text.lines() {
        let Some((key, val)) = line.split_once(':') else {
            continue;
        };
        let addr = val.split_whitespace().next().map(str::to_string);
        let slot = match key.trim() {
            "HTTP address" => &mut b.http,
            "DNS address" => &mut b.dns,
            "Serf LAN address" => &mut b.serf,
            _ => continue,
        };
        if slot.is_none() {
            *slot = addr;
        }
    }
    b
}

/// Why no banner was read.
#[derive(Debug, thiserror::Error)]
pub enum BannerError {
    #[error("{name} exited before it was ready; see {log}")]
    Exited { name: String, log: String },
    #[error("{name} printed no HTTP, DNS and serf address within {secs} s; see {log}")]
    Timeout {
        name: String,
        log: String,
        secs: u64,
    },
}

/// Polls `p`'s log until its banner is complete, the process exits, or `within` passes.
pub async fn wait(p: &mut Proc, within: Duration) -> Result<Banner, BannerError> {
    let end = Instant::now() + within;
    loop {
        let b = parse(&read_head(&p.log));
        if b.complete() {
            return Ok(b);
        }
        if p.exited() {
            return Err(BannerError::Exited {
                name: p.name.clone(),
                log: p.log.display().to_string(),
            });
        }
        if Instant::now() >= end {
            return Err(BannerError::Timeout {
                name: p.name.clone(),
                log: p.log.display().to_string(),
                secs: within.as_secs(),
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The first [`MAX_BANNER_BYTES`] of a file, lossily decoded (empty if unreadable).
fn read_head(path: &Path) -> String {
    use std::io::Read;
    let mut buf = Vec::new();
    if let Ok(f) = std::fs::File::open(path) {
        let _ = f.take(MAX_BANNER_BYTES as u64).read_to_end(&mut buf);
    }
    String::from_utf8_lossy(&buf).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn banner_lines() {
        let text = "==> Cairn agent running!\n         Node name: 'c2'\n      HTTP address: 127.0.0.2:41000\n   Serf LAN address: 127.0.0.2:41001 (udp)\n        RPC address: 127.0.0.2:8300\n       DNS address: 127.0.0.2:41002 (udp+tcp)\nlater HTTP address: nope\n";
        let b = parse(text);
        assert_eq!(b.http.as_deref(), Some("127.0.0.2:41000"));
        assert_eq!(b.serf.as_deref(), Some("127.0.0.2:41001"));
        assert_eq!(b.dns.as_deref(), Some("127.0.0.2:41002"));
        assert!(b.complete());
        assert!(!parse("HTTP address: 1.2.3.4:5\n").complete());
        assert_eq!(parse("\u{0}\u{ff}:::\n"), Banner::default());
    }
}
