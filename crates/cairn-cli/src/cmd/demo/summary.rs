//! What the user sees once the demo is up: the summary of addresses, tasks and commands
//! to try, and the readiness probe (the portal answering both routes through DNS).

use super::banner::Banner;
use super::plan::{Instance, NodePlan, Plan, Role};
use super::probe;
use std::time::{Duration, Instant};

/// What the user needs to know once everything started.
pub struct Started {
    pub agents: Vec<(NodePlan, Banner)>,
    /// The portal's `host:port`.
    pub portal: String,
}

pub fn print_summary(plan: &Plan, s: &Started) {
    println!("    Agents (HTTP API, DNS):");
    for (n, b) in &s.agents {
        let role = if n.role == Role::Server {
            "server"
        } else {
            "client"
        };
        println!(
            "      {:<3} {role}  HTTP API http://{}  DNS {}",
            n.name,
            b.http.as_deref().unwrap_or("?"),
            b.dns.as_deref().unwrap_or("?")
        );
    }
    println!("    Tasks:");
    for (ci, (node, _)) in s.agents.iter().skip(1).enumerate() {
        let names: Vec<String> = plan
            .instances
            .iter()
            .filter(|i| i.client == ci)
            .map(Instance::name)
            .collect();
        println!("      {:<3} {}", node.name, names.join(", "));
    }
    println!("    Portal: http://{}/", s.portal);
    if let Some((_, b)) = s.agents.get(1) {
        if let Some((host, port)) = b.dns.as_deref().and_then(|d| d.rsplit_once(':')) {
            println!("    Try:    dig @{host} -p {port} stock-price.service.consul SRV");
        }
        if let Some(h) = &b.http {
            println!("            curl http://{h}/v1/health/service/stock-price?passing");
        }
    }
    println!("            curl http://{}/stock/AMZN", s.portal);
}

/// Polls the portal until `/stock/AMZN` and `/weather/Paris` both answer 200.
pub async fn wait_ready(portal: &str, within: Duration) -> Result<Duration, String> {
    let t0 = Instant::now();
    let mut last = String::new();
    while t0.elapsed() < within {
        let mut ok = true;
        for path in ["/stock/AMZN", "/weather/Paris"] {
            match probe::get(portal, path, Duration::from_secs(5)).await {
                Ok((200, _)) => {}
                Ok((st, body)) => {
                    ok = false;
                    last = format!("{path}: {st} {}", body.trim());
                }
                Err(e) => {
                    ok = false;
                    last = e;
                }
            }
        }
        if ok {
            return Ok(t0.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Err(format!(
        "the portal did not answer within {} s (last: {last})",
        within.as_secs()
    ))
}
