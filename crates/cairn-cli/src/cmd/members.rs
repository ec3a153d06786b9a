//! `cairn members`: the gossip member table, formatted like `consul members`.

use crate::error::CliError;
use crate::flags::{spec, Kind, Spec};
use crate::output::{align, row, write_stdout};
use cairn_api::Member;

const HELP: &str = "\
Usage: cairn members [options]

  Outputs the members of a running Cairn agent's gossip pool.";

const SPECS: &[Spec] = &[
    spec(
        "detailed",
        Kind::Bool,
        "Show all member tags instead of the summary columns.",
    ),
    spec(
        "wan",
        Kind::Bool,
        "List the WAN members instead of the LAN members.",
    ),
    spec(
        "status",
        Kind::Value,
        "Only show members with this status (alive, left, failed, ...).",
    ),
];

/// Runs `cairn members`.
pub async fn run(args: Vec<String>) -> Result<(), CliError> {
    let flags = super::parse_flags(HELP, SPECS, true, &args)?;
    super::no_args(&flags, HELP)?;
    let client = super::client(&flags)?;
    let mut members = client
        .agent_members_opts(flags.bool("wan"))
        .await
        .map_err(CliError::ctx("Error retrieving members"))?;
    if let Some(status) = flags.str("status") {
        members.retain(|m| m.status_text() == status);
    }
    members.sort_by(|a, b| a.name.cmp(&b.name));
    if members.is_empty() {
        return Ok(());
    }
    let text = if flags.bool("detailed") {
        detailed_table(&members)
    } else {
        table(&members)
    };
    write_stdout(text.as_bytes())
}

/// `Addr:Port`, bracketing IPv6 addresses.
fn address(m: &Member) -> String {
    if m.addr.contains(':') {
        format!("[{}]:{}", m.addr, m.port)
    } else {
        format!("{}:{}", m.addr, m.port)
    }
}

/// The standard `consul members` columns.
pub fn table(members: &[Member]) -> String {
    let mut rows = vec![row([
        "Node", "Address", "Status", "Type", "Build", "Protocol", "DC",
    ])];
    for m in members {
        let tag = |k: &str| m.tags.get(k).map(String::as_str).unwrap_or("");
        let kind = if tag("role") == "consul" {
            "server"
        } else {
            "client"
        };
        let build = tag("build");
        let build = build.split(':').next().unwrap_or(build);
        let protocol = m
            .tags
            .get("vsn")
            .cloned()
            .unwrap_or_else(|| m.protocol_cur.to_string());
        rows.push(vec![
            m.name.clone(),
            address(m),
            m.status_text().to_string(),
            kind.to_string(),
            build.to_string(),
            protocol,
            tag("dc").to_string(),
        ]);
    }
    align(&rows, 2)
}

/// `consul members -detailed`: every tag as `k=v`.
pub fn detailed_table(members: &[Member]) -> String {
    let mut rows = vec![row(["Node", "Address", "Status", "Tags"])];
    for m in members {
        let tags: Vec<String> = m.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        rows.push(vec![
            m.name.clone(),
            address(m),
            m.status_text().to_string(),
            tags.join(","),
        ]);
    }
    align(&rows, 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str, role: &str, status: i64) -> Member {
        Member {
            name: name.into(),
            addr: "10.0.0.1".into(),
            port: 8301,
            status,
            tags: [
                ("role", role),
                ("dc", "dc1"),
                ("build", "0.1.0:abc"),
                ("vsn", "2"),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn standard_table() {
        let t = table(&[member("server-1", "consul", 1), member("c", "node", 4)]);
        assert_eq!(
            t,
            "Node      Address        Status  Type    Build  Protocol  DC\n\
             server-1  10.0.0.1:8301  alive   server  0.1.0  2         dc1\n\
             c         10.0.0.1:8301  failed  client  0.1.0  2         dc1\n"
        );
    }

    #[test]
    fn detailed_and_ipv6() {
        let mut m = member("n", "consul", 1);
        m.addr = "::1".into();
        let t = detailed_table(&[m]);
        assert!(t.contains("[::1]:8301"));
        assert!(t.contains("build=0.1.0:abc,dc=dc1,role=consul,vsn=2"));
    }
}
