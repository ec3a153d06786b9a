//! `cairn catalog services|nodes`: read-only views of the catalog, formatted like
//! `consul catalog`.

use crate::error::CliError;
use crate::flags::{spec, Kind, Spec};
use crate::output::{align, row, write_stdout};
use cairn_api::Node;
use std::collections::BTreeMap;

const HELP: &str = "\
Usage: cairn catalog <subcommand> [options] [args]

  Queries the catalog.

Subcommands:
    nodes       List all nodes in the catalog
    services    List all registered services";

const SERVICES_HELP: &str = "\
Usage: cairn catalog services [options]

  Lists the registered services, one per line, sorted by name.";

const SERVICES_SPECS: &[Spec] = &[spec(
    "tags",
    Kind::Bool,
    "Display each service's tags as a comma-separated list.",
)];

const NODES_HELP: &str = "\
Usage: cairn catalog nodes [options]

  Lists the nodes in the catalog.";

const NODES_SPECS: &[Spec] = &[
    spec(
        "service",
        Kind::Value,
        "Only list nodes providing this service.",
    ),
    spec(
        "detailed",
        Kind::Bool,
        "Show full node IDs, tagged addresses and metadata.",
    ),
];

/// Runs `cairn catalog ...`.
pub async fn run(args: Vec<String>) -> Result<(), CliError> {
    let (sub, rest) = super::subcommand(&args, HELP)?;
    match sub {
        "services" => services(rest).await,
        "nodes" => nodes(rest).await,
        other => Err(CliError::usage(
            format!("error: unknown subcommand {other:?}"),
            HELP,
        )),
    }
}

async fn services(args: Vec<String>) -> Result<(), CliError> {
    let flags = super::parse_flags(SERVICES_HELP, SERVICES_SPECS, true, &args)?;
    super::no_args(&flags, SERVICES_HELP)?;
    let client = super::client(&flags)?;
    let services = client
        .catalog_services()
        .await
        .map_err(CliError::ctx("Error listing services"))?;
    if services.is_empty() {
        // Consul reports this on stderr but still exits 0.
        eprintln!("No services match the given query - try expanding your search.");
        return Ok(());
    }
    write_stdout(services_text(&services, flags.bool("tags")).as_bytes())
}

/// Service names, optionally with their sorted, comma-joined tags.
pub fn services_text(services: &BTreeMap<String, Vec<String>>, tags: bool) -> String {
    if tags {
        let rows: Vec<Vec<String>> = services
            .iter()
            .map(|(name, t)| {
                let mut t = t.clone();
                t.sort();
                vec![name.clone(), t.join(",")]
            })
            .collect();
        align(&rows, 6)
    } else {
        services.keys().map(|k| format!("{k}\n")).collect()
    }
}

async fn nodes(args: Vec<String>) -> Result<(), CliError> {
    let flags = super::parse_flags(NODES_HELP, NODES_SPECS, true, &args)?;
    super::no_args(&flags, NODES_HELP)?;
    let client = super::client(&flags)?;
    let mut nodes = match flags.str("service") {
        Some(service) => {
            let mut by_name = BTreeMap::new();
            for s in client
                .catalog_service(service)
                .await
                .map_err(CliError::ctx("Error listing nodes for service"))?
            {
                by_name.entry(s.node.clone()).or_insert_with(|| Node {
                    id: s.id,
                    node: s.node,
                    address: s.address,
                    datacenter: s.datacenter,
                    tagged_addresses: s.tagged_addresses,
                    meta: s.node_meta,
                    ..Default::default()
                });
            }
            by_name.into_values().collect()
        }
        None => client
            .catalog_nodes()
            .await
            .map_err(CliError::ctx("Error listing nodes"))?,
    };
    if nodes.is_empty() {
        eprintln!("No nodes match the given query - try expanding your search.");
        return Ok(());
    }
    nodes.sort_by(|a, b| a.node.cmp(&b.node));
    write_stdout(nodes_text(&nodes, flags.bool("detailed")).as_bytes())
}

fn join_map(m: &BTreeMap<String, String>) -> String {
    m.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `consul catalog nodes` table (IDs shortened to 8 characters unless detailed).
pub fn nodes_text(nodes: &[Node], detailed: bool) -> String {
    let mut rows = if detailed {
        vec![row([
            "Node",
            "ID",
            "Address",
            "DC",
            "TaggedAddresses",
            "Meta",
        ])]
    } else {
        vec![row(["Node", "ID", "Address", "DC"])]
    };
    for n in nodes {
        let id = if detailed {
            n.id.clone()
        } else {
            n.id.chars().take(8).collect()
        };
        let mut r = vec![n.node.clone(), id, n.address.clone(), n.datacenter.clone()];
        if detailed {
            r.push(join_map(&n.tagged_addresses));
            r.push(join_map(&n.meta));
        }
        rows.push(r);
    }
    align(&rows, 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_listing() {
        let mut s = BTreeMap::new();
        s.insert("web".to_string(), vec!["v2".to_string(), "v1".to_string()]);
        s.insert("consul".to_string(), vec![]);
        assert_eq!(services_text(&s, false), "consul\nweb\n");
        assert_eq!(services_text(&s, true), "consul\nweb         v1,v2\n");
    }

    #[test]
    fn nodes_listing() {
        let n = Node {
            id: "1b662d97-aaaa-bbbb".into(),
            node: "worker-01".into(),
            address: "10.4.5.31".into(),
            datacenter: "dc1".into(),
            tagged_addresses: [("lan".to_string(), "10.4.5.31".to_string())].into(),
            ..Default::default()
        };
        assert_eq!(
            nodes_text(std::slice::from_ref(&n), false),
            "Node       ID        Address    DC\nworker-01  1b662d97  10.4.5.31  dc1\n"
        );
        assert!(nodes_text(&[n], true).contains("lan=10.4.5.31"));
    }
}
