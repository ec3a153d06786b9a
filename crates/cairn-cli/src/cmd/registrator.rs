//! `cairn registrator`: registrator's command line (`[options] consul://HOST:PORT`) over the
//! `cairn-registrator` crate, watching the Docker (or Podman) engine named by `DOCKER_HOST`.

use crate::error::CliError;
use crate::flags::{spec, Flags, Kind, Spec};
use cairn_api::Client;
use cairn_registrator::backoff::Backoff;
use cairn_registrator::docker::DockerSource;
use cairn_registrator::metadata::split_tags;
use cairn_registrator::{log, AgentRegistry, DeregisterMode, Options, Runtime};
use std::time::Duration;

const HELP: &str = "\
Usage: cairn registrator [options] consul://HOST:PORT

  Registers the published ports of the containers on this host with the agent
  at HOST:PORT, from their SERVICE_* environment variables and labels, and
  removes them when the containers stop. The engine is DOCKER_HOST (default
  unix:///var/run/docker.sock; a Podman API socket works too). Registrations
  are owned by the agent's node name, reconciled both ways on start, on every
  engine event and every -resync. See docs/registrator.md.

  URI schemes: consul:// (HTTP) and consul-tls:// (HTTPS, trusting CONSUL_CACERT
  or CONSUL_CAPATH and presenting CONSUL_CLIENT_CERT/CONSUL_CLIENT_KEY). The ACL
  token is read from CAIRN_HTTP_TOKEN or CONSUL_HTTP_TOKEN, or from the file
  CONSUL_HTTP_TOKEN_FILE, which wins.";

const SPECS: &[Spec] = &[
    spec("ip", Kind::Value, "IP address to register every service with (unless -useIpFromLabel names one)."),
    spec("internal", Kind::Bool, "Use container IPs and exposed ports instead of host ports."),
    spec("explicit", Kind::Bool, "Only register containers that set SERVICE_NAME or SERVICE_<port>_NAME."),
    spec("useIpFromLabel", Kind::Value, "Container label holding the IP to register (a /prefix is stripped)."),
    spec("tags", Kind::Value, "Comma-separated tags added to every service."),
    spec("resync", Kind::Value, "Seconds between full reconciles (0: on start and on events only). Default 0."),
    spec("cleanup", Kind::Bool, "Also remove registrator-shaped services of this node that have no owner (left by gliderlabs/registrator)."),
    spec("deregister", Kind::Value, "When to deregister a stopped container: always (default) or on-success."),
    spec("retry-attempts", Kind::Value, "Attempts to reach the agent at start; -1 (default) retries forever."),
    spec("retry-interval", Kind::Value, "Base delay between retries, in milliseconds (default 250, doubling up to 10 s)."),
    spec("ttl", Kind::Value, "Accepted for compatibility; has no effect with the Consul API (as in registrator)."),
    spec("ttl-refresh", Kind::Value, "Accepted for compatibility; has no effect with the Consul API."),
];

/// Turns `consul://host:port` into an agent base address.
pub fn agent_addr(uri: &str) -> Result<String, String> {
    let (scheme, rest) = uri
        .split_once("://")
        .ok_or_else(|| format!("registry URI {uri:?} must look like consul://HOST:PORT"))?;
    let host = rest.trim_end_matches('/');
    let host = if host.is_empty() {
        "127.0.0.1:8500"
    } else {
        host
    };
    if host.contains('/') {
        return Err(format!("registry URI {uri:?}: paths are not supported"));
    }
    match scheme {
        "consul" => Ok(format!("http://{host}")),
        "consul-tls" => Ok(format!("https://{host}")),
        "consul-unix" | "consulkv" | "consulkv-unix" | "etcd" | "skydns2" | "zookeeper" => Err(
            format!("registry backend {scheme}:// is not supported; use consul://HOST:PORT"),
        ),
        other => Err(format!(
            "unknown registry scheme {other:?}; use consul://HOST:PORT"
        )),
    }
}

/// Builds the runtime options from the flags.
pub fn options(flags: &Flags) -> Result<Options, String> {
    let mut o = Options {
        ip: flags
            .str("ip")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        ip_label: flags
            .str("useIpFromLabel")
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        internal: flags.bool("internal"),
        explicit: flags.bool("explicit"),
        tags: flags.str("tags").map(split_tags).unwrap_or_default(),
        cleanup: flags.bool("cleanup"),
        ..Default::default()
    };
    if let Some(ip) = &o.ip {
        ip.parse::<std::net::IpAddr>()
            .map_err(|_| format!("-ip {ip:?} is not an IP address"))?;
    }
    if let Some(d) = flags.str("deregister") {
        o.deregister = DeregisterMode::parse(d)
            .ok_or_else(|| format!("-deregister must be always or on-success, not {d:?}"))?;
    }
    match flags.str("resync").map(str::trim) {
        None | Some("0") => {}
        Some(s) => {
            let secs: u64 = s
                .parse()
                .map_err(|_| format!("-resync {s:?} is not a number of seconds"))?;
            o.resync = Some(Duration::from_secs(secs));
        }
    }
    if let Some(ms) = flags.str("retry-interval") {
        let ms: u64 = ms.trim().parse().ok().filter(|m| *m > 0).ok_or_else(|| {
            format!("-retry-interval {ms:?} must be a positive number of milliseconds")
        })?;
        o.backoff = Backoff {
            base: Duration::from_millis(ms),
            max: Duration::from_secs(10).max(Duration::from_millis(ms)),
        };
    }
    Ok(o)
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut i), Ok(mut t)) => {
            tokio::select! {
                _ = i.recv() => {}
                _ = t.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// An agent client for `addr` (from the registry URI, whose scheme alone decides HTTP or
/// HTTPS), with the token and the TLS files from the environment as the other commands
/// read them.
pub fn agent_client(addr: &str) -> Result<Client, CliError> {
    Client::from_lookup(|k| match k {
        "CAIRN_HTTP_ADDR" => Some(addr.to_string()),
        "CONSUL_HTTP_ADDR" | "CONSUL_HTTP_SSL" => None,
        _ => std::env::var(k).ok(),
    })
    .map_err(CliError::ctx("Error connecting to agent"))
}

/// Runs `cairn registrator ...` until SIGINT/SIGTERM.
pub async fn run(args: Vec<String>) -> Result<(), CliError> {
    let flags = super::parse_flags(HELP, SPECS, false, &args)?;
    let help = crate::flags::usage(HELP, SPECS);
    let uri = match flags.args.as_slice() {
        [uri] => uri.clone(),
        [] => return Err(CliError::usage("error: missing registry URI (consul://HOST:PORT)", &help)),
        more => {
            return Err(CliError::usage(
                format!("error: exactly one registry URI expected, got {} arguments (options go before the URI)", more.len()),
                &help,
            ))
        }
    };
    let addr = agent_addr(&uri).map_err(|e| CliError::usage(format!("error: {e}"), &help))?;
    let opts = options(&flags).map_err(|e| CliError::usage(format!("error: {e}"), &help))?;
    for f in ["ttl", "ttl-refresh"] {
        if flags.is_set(f) {
            log::warn(format!("-{f} has no effect with the Consul API; ignored"));
        }
    }
    let attempts: i64 = match flags.str("retry-attempts") {
        None => -1,
        Some(s) => s.trim().parse().map_err(|_| {
            CliError::usage(
                format!("error: -retry-attempts {s:?} is not a number"),
                &help,
            )
        })?,
    };
    let source = DockerSource::from_env().map_err(|e| CliError::failed(format!("error: {e}")))?;
    let registry = AgentRegistry::new(agent_client(&addr)?);
    let mut rt = Runtime::new(source, registry, opts);
    if attempts >= 0 {
        let give_up = u32::try_from(attempts + 1).unwrap_or(u32::MAX);
        rt.connect(Some(give_up)).await.map_err(|e| {
            CliError::failed(format!("error: cannot reach the agent at {addr}: {e}"))
        })?;
    }
    let rt = rt.run(shutdown_signal()).await;
    let s = rt.stats();
    log::info(format!(
        "stopping: {} rounds, {} writes, {} failed writes; registrations stay until the containers stop",
        s.rounds, s.writes, s.failed_writes
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris() {
        assert_eq!(
            agent_addr("consul://10.0.1.5:8500").unwrap(),
            "http://10.0.1.5:8500"
        );
        assert_eq!(
            agent_addr("consul-tls://h:8501/").unwrap(),
            "https://h:8501"
        );
        assert_eq!(agent_addr("consul://").unwrap(), "http://127.0.0.1:8500");
        assert!(agent_addr("etcd://h:2379")
            .unwrap_err()
            .contains("not supported"));
        assert!(agent_addr("h:8500").is_err());
        assert!(agent_addr("consul://h:1/path").is_err());
    }

    #[test]
    fn flags_to_options() {
        let args: Vec<String> = [
            "-ip",
            "10.0.0.9",
            "-resync",
            "30",
            "-deregister",
            "on-success",
            "-tags",
            "a,b",
            "-internal",
            "consul://h:1",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let f = super::super::parse_flags(HELP, SPECS, false, &args).unwrap();
        let o = options(&f).unwrap();
        assert_eq!(o.ip.as_deref(), Some("10.0.0.9"));
        assert_eq!(o.resync, Some(Duration::from_secs(30)));
        assert_eq!(o.deregister, DeregisterMode::OnSuccess);
        assert_eq!(o.tags, ["a", "b"]);
        assert!(o.internal);
        assert_eq!(f.args, ["consul://h:1"]);
        for bad in [
            &["-ip", "nope"][..],
            &["-deregister", "never"],
            &["-resync", "x"],
            &["-retry-interval", "0"],
        ] {
            let args: Vec<String> = bad.iter().map(|s| s.to_string()).collect();
            let f = super::super::parse_flags(HELP, SPECS, false, &args).unwrap();
            assert!(options(&f).is_err(), "{bad:?}");
        }
    }
}
