//! Process metrics for `/v1/agent/metrics`, in Consul's JSON shape and in the
//! Prometheus text format. A handful of atomics: no registry crate needed.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::{json, Value};

/// Request counters and latency sums, by method and status class.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), (u64, f64)>>,
    pub raft_writes: AtomicU64,
}

static GLOBAL: OnceLock<Metrics> = OnceLock::new();

/// The process-wide metrics.
pub fn global() -> &'static Metrics {
    GLOBAL.get_or_init(Metrics::default)
}

impl Metrics {
    pub fn observe_request(&self, method: &str, status: u16, took: Duration) {
        let mut m = self.requests.lock();
        let e = m.entry((method.to_string(), status)).or_insert((0, 0.0));
        e.0 += 1;
        e.1 += took.as_secs_f64() * 1000.0;
    }

    /// Consul's `/v1/agent/metrics` JSON layout.
    pub fn json(&self, gauges: &[(&str, f64)]) -> Value {
        let counters: Vec<Value> = self
            .requests
            .lock()
            .iter()
            .map(|((m, s), (n, sum))| {
                json!({"Name": "cairn.http.requests", "Count": n, "Sum": sum, "Mean": sum / (*n as f64).max(1.0),
                       "Labels": {"method": m, "code": s.to_string()}})
            })
            .chain(std::iter::once(json!({
                "Name": "cairn.raft.writes", "Count": self.raft_writes.load(Ordering::Relaxed), "Labels": {}
            })))
            .collect();
        let gauges: Vec<Value> = gauges
            .iter()
            .map(|(n, v)| json!({"Name": n, "Value": v, "Labels": {}}))
            .collect();
        json!({
            "Timestamp": chrono_like_now(),
            "Gauges": gauges,
            "Points": [],
            "Counters": counters,
            "Samples": [],
        })
    }

    /// Prometheus text exposition format.
    pub fn prometheus(&self, gauges: &[(&str, f64)]) -> String {
        let mut out = String::new();
        for (n, v) in gauges {
            let n = n.replace('.', "_");
            out.push_str(&format!("# TYPE {n} gauge\n{n} {v}\n"));
        }
        out.push_str("# TYPE cairn_http_requests_total counter\n");
        for ((m, s), (n, _)) in self.requests.lock().iter() {
            out.push_str(&format!(
                "cairn_http_requests_total{{method=\"{m}\",code=\"{s}\"}} {n}\n"
            ));
        }
        out.push_str("# TYPE cairn_raft_writes_total counter\n");
        out.push_str(&format!(
            "cairn_raft_writes_total {}\n",
            self.raft_writes.load(Ordering::Relaxed)
        ));
        out
    }
}

fn chrono_like_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    // Consul prints "2006-01-02 15:04:05 +0000 UTC"; compute the civil date by hand.
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} +0000 UTC",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    #[test]
    fn civil_dates() {
        assert_eq!(super::civil_from_days(0), (1970, 1, 1));
        assert_eq!(super::civil_from_days(20_000), (2024, 10, 4));
    }
}
