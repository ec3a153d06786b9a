//! Turning the merged configuration into a typed [`Config`]: defaults, checks across keys
//! (ports, addresses, ACL and DNS settings) and the node's identity. Reading single values
//! is [`super::reader`]; the `tls` block is [`super::tls`].

use super::reader::*;
use super::*;

/// The host name as a DNS-safe node name.
fn default_node_name(warnings: &mut Vec<String>) -> String {
    let raw = hostname::get()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_default();
    let name = sanitize_node_name(&raw);
    if name.is_empty() {
        warnings.push("cannot determine the host name; using node name \"cairn\"".to_string());
        return "cairn".to_string();
    }
    name
}

/// Lowercases, replaces non-DNS characters with `-` and cuts to 63 characters.
pub(super) fn sanitize_node_name(raw: &str) -> String {
    let s: String = raw
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(63)
        .collect();
    s.trim_matches('-').to_string()
}

pub(super) fn build(
    root: &Map<String, Value>,
    dev: bool,
    config_files: Vec<PathBuf>,
    mut warnings: Vec<String>,
) -> Result<Config, ConfigError> {
    let r = Reader { root };
    for key in [
        "ports",
        "addresses",
        "performance",
        "limits",
        "dns_config",
        "acl",
        "acl.tokens",
        "ui_config",
    ] {
        if let Some(v) = r.get(key) {
            if !v.is_object() {
                return Err(bad(key, format!("expected an object, got {v}")));
            }
        }
    }

    let datacenter = r
        .string("datacenter")?
        .unwrap_or_else(|| "dc1".to_string())
        .to_ascii_lowercase();
    if datacenter.is_empty()
        || !datacenter
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(bad(
            "datacenter",
            format!("{datacenter:?} may contain only letters, digits, '-' and '_'"),
        ));
    }
    let primary_datacenter = r
        .string("primary_datacenter")?
        .map(|s| s.to_ascii_lowercase());

    let node_name = match r.string("node_name")? {
        Some(n) => n,
        None => default_node_name(&mut warnings),
    };
    if !is_dns_label(&node_name) {
        return Err(bad(
            "node_name",
            format!(
                "{node_name:?} is not DNS-safe: use 1-63 letters, digits and '-' (set it with -node)"
            ),
        ));
    }
    let node_id = match r.string("node_id")? {
        Some(id) if is_uuid(id.trim()) => Some(id.trim().to_ascii_lowercase()),
        Some(id) => return Err(bad("node_id", format!("{id:?} is not a UUID"))),
        None => None,
    };
    let mut node_meta = BTreeMap::new();
    match r.get("node_meta") {
        None => {}
        Some(Value::Object(m)) => {
            for (k, v) in m {
                let v = match v {
                    Value::String(s) => s.clone(),
                    Value::Number(_) | Value::Bool(_) => v.to_string(),
                    other => {
                        return Err(bad(
                            &format!("node_meta.{k}"),
                            format!("expected a string, got {other}"),
                        ))
                    }
                };
                node_meta.insert(k.clone(), v);
            }
        }
        Some(v) => return Err(bad("node_meta", format!("expected an object, got {v}"))),
    }

    let data_dir = r
        .string("data_dir")?
        .filter(|s| !s.is_empty())
        .map(PathBuf::from);
    let server = r.bool("server", false)?;
    let bootstrap = r.bool("bootstrap", false)?;
    let mut bootstrap_expect: u32 = r.uint("bootstrap_expect", 0)?;

    // Validation of the server settings, in Consul's spirit.
    if bootstrap_expect > 0 && !server {
        return Err(ConfigError::Invalid(
            "-bootstrap-expect (bootstrap_expect) requires -server (server = true)".to_string(),
        ));
    }
    if bootstrap && !server {
        return Err(ConfigError::Invalid(
            "-bootstrap (bootstrap = true) requires -server (server = true)".to_string(),
        ));
    }
    if bootstrap && bootstrap_expect > 0 {
        return Err(ConfigError::Invalid(
            "-bootstrap and -bootstrap-expect are mutually exclusive".to_string(),
        ));
    }
    if server && !dev && data_dir.is_none() {
        return Err(ConfigError::Invalid(
            "-server requires -data-dir (data_dir) to persist its state; use -dev for an in-memory server"
                .to_string(),
        ));
    }
    if dev && server && !bootstrap && bootstrap_expect == 0 {
        bootstrap_expect = 1;
    }

    let client_addrs = {
        let ips = r.ips("client_addr")?;
        if ips.is_empty() {
            vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]
        } else {
            ips
        }
    };
    let bind_addr = r
        .ip("bind_addr")?
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let advertise_addr = r.ip("advertise_addr")?;
    let addresses = Addresses {
        http: r.ips("addresses.http")?,
        dns: r.ips("addresses.dns")?,
        https: r.ips("addresses.https")?,
    };
    let ports = Ports {
        http: r.port("ports.http", Port::Fixed(8500))?,
        https: r.port("ports.https", Port::Disabled)?,
        dns: r.port("ports.dns", Port::Fixed(8600))?,
        server: r.port("ports.server", Port::Fixed(8300))?,
        serf_lan: r.port("ports.serf_lan", Port::Fixed(8301))?,
        serf_wan: r.port("ports.serf_wan", Port::Fixed(8302))?,
        grpc: r.port("ports.grpc", Port::Disabled)?,
        grpc_tls: r.port("ports.grpc_tls", Port::Disabled)?,
    };

    let domain = normalise_domain(
        "domain",
        &r.string("domain")?.unwrap_or_else(|| "consul".to_string()),
    )?;
    let alt_domain = match r.string("alt_domain")?.filter(|s| !s.is_empty()) {
        Some(s) => Some(normalise_domain("alt_domain", &s)?),
        None => None,
    };
    if alt_domain.as_deref() == Some(domain.as_str()) {
        return Err(bad("alt_domain", "must differ from domain"));
    }
    let recursors = r
        .strings("recursors")?
        .iter()
        .map(|s| parse_recursor(s))
        .collect::<Result<Vec<_>, _>>()?;

    let log_level = match r
        .string("log_level")?
        .unwrap_or_else(|| "info".to_string())
        .to_ascii_lowercase()
        .as_str()
    {
        "trace" => "trace",
        "debug" => "debug",
        "info" => "info",
        "warn" | "warning" => "warn",
        "err" | "error" => "error",
        other => {
            return Err(bad(
                "log_level",
                format!("{other:?}: use trace, debug, info, warn or error"),
            ))
        }
    }
    .to_string();

    let raft_multiplier: u32 = r.uint("performance.raft_multiplier", 5)?;
    if !(1..=10).contains(&raft_multiplier) {
        return Err(bad(
            "performance.raft_multiplier",
            format!("{raft_multiplier}: must be between 1 and 10"),
        ));
    }

    let mut service_ttl = BTreeMap::new();
    match r.get("dns_config.service_ttl") {
        None => {}
        Some(Value::Object(m)) => {
            for (k, v) in m {
                let key = format!("dns_config.service_ttl.{k}");
                let d = match v {
                    Value::String(s) => parse_duration(s).map_err(|e| bad(&key, e.to_string()))?,
                    other => return Err(bad(&key, format!("expected a duration, got {other}"))),
                };
                service_ttl.insert(k.clone(), d);
            }
        }
        Some(v) => {
            return Err(bad(
                "dns_config.service_ttl",
                format!("expected an object, got {v}"),
            ))
        }
    }
    let dns = DnsConfig {
        node_ttl: r.duration("dns_config.node_ttl", Duration::ZERO)?,
        service_ttl,
        only_passing: r.bool("dns_config.only_passing", false)?,
        allow_stale: r.bool("dns_config.allow_stale", true)?,
        max_stale: r.duration("dns_config.max_stale", Duration::from_secs(87_600 * 3_600))?,
        udp_answer_limit: r.uint("dns_config.udp_answer_limit", 3)?,
        enable_truncate: r.bool("dns_config.enable_truncate", false)?,
        a_record_limit: r.uint("dns_config.a_record_limit", 0)?,
        enable_additional_node_meta_txt: r
            .bool("dns_config.enable_additional_node_meta_txt", true)?,
    };
    if dns.udp_answer_limit == 0 {
        return Err(bad("dns_config.udp_answer_limit", "must be greater than 0"));
    }

    let default_policy = match r
        .string("acl.default_policy")?
        .unwrap_or_else(|| "allow".to_string())
        .as_str()
    {
        "allow" => AclPolicy::Allow,
        "deny" => AclPolicy::Deny,
        other => {
            return Err(bad(
                "acl.default_policy",
                format!("{other:?}: use allow or deny"),
            ))
        }
    };
    let acl = AclConfig {
        enabled: r.bool("acl.enabled", false)?,
        default_policy,
        down_policy: match r.string("acl.down_policy")? {
            None => cairn_http::DownPolicy::ExtendCache,
            Some(p) => cairn_http::DownPolicy::parse(&p).ok_or_else(|| {
                bad(
                    "acl.down_policy",
                    format!("{p:?}: use extend-cache, async-cache, allow or deny"),
                )
            })?,
        },
        token_ttl: positive(&r, "acl.token_ttl", cairn_http::acl::DEFAULT_TOKEN_TTL)?,
        token_min_expiration_ttl: positive(
            &r,
            "acl.token_min_expiration_ttl",
            Duration::from_secs(60),
        )?,
        token_max_expiration_ttl: positive(
            &r,
            "acl.token_max_expiration_ttl",
            Duration::from_secs(24 * 3600),
        )?,
        enable_token_persistence: r.bool("acl.enable_token_persistence", false)?,
        tokens: AclTokens {
            initial_management: r.string("acl.tokens.initial_management")?,
            agent: r.string("acl.tokens.agent")?,
            agent_recovery: r.string("acl.tokens.agent_recovery")?,
            default: r.string("acl.tokens.default")?,
            dns: r.string("acl.tokens.dns")?,
        },
    };

    let gossip_lan = GossipLan {
        probe_interval: positive(&r, "gossip_lan.probe_interval", Duration::from_millis(500))?,
        probe_timeout: positive(&r, "gossip_lan.probe_timeout", Duration::from_millis(250))?,
        gossip_interval: positive(&r, "gossip_lan.gossip_interval", Duration::from_millis(200))?,
        gossip_nodes: r.uint("gossip_lan.gossip_nodes", 3)?,
        retransmit_mult: r.uint("gossip_lan.retransmit_mult", 4)?,
        suspicion_timeout: positive(&r, "gossip_lan.suspicion_timeout", Duration::from_secs(1))?,
    };
    if gossip_lan.probe_timeout >= gossip_lan.probe_interval {
        return Err(bad(
            "gossip_lan.probe_timeout",
            "must be shorter than gossip_lan.probe_interval",
        ));
    }
    if gossip_lan.gossip_nodes == 0 || gossip_lan.retransmit_mult == 0 {
        return Err(bad(
            "gossip_lan",
            "gossip_nodes and retransmit_mult must be at least 1",
        ));
    }
    let reconnect_timeout = r.duration("reconnect_timeout", Duration::from_secs(72 * 3600))?;
    if reconnect_timeout < Duration::from_secs(8 * 3600) && !dev {
        return Err(bad("reconnect_timeout", "must be at least 8h"));
    }

    let encrypt = r.string("encrypt")?.filter(|s| !s.is_empty());
    if let Some(key) = &encrypt {
        if base64_len(key) != Some(32) {
            return Err(bad(
                "encrypt",
                "must be 32 bytes encoded as standard base64 (AES-256; `cairn keygen` makes one)",
            ));
        }
    }

    let services = match r.get("services") {
        Some(Value::Array(list)) => list.clone(),
        _ => Vec::new(),
    };
    let checks = match r.get("checks") {
        Some(Value::Array(list)) => list.clone(),
        _ => Vec::new(),
    };

    let tls_config = tls::read(&r, ports.https.is_enabled(), server, &mut warnings)?;

    Ok(Config {
        dev,
        datacenter,
        primary_datacenter,
        node_name,
        node_id,
        node_meta,
        data_dir,
        server,
        bootstrap,
        bootstrap_expect,
        client_addrs,
        bind_addr,
        advertise_addr,
        addresses,
        ports,
        domain,
        alt_domain,
        recursors,
        retry_join: r.strings("retry_join")?,
        start_join: r.strings("start_join")?,
        retry_interval: positive(&r, "retry_interval", Duration::from_secs(30))?,
        retry_max: r.uint("retry_max", 0)?,
        reconnect_timeout,
        gossip_lan,
        leave_on_terminate: r.bool("leave_on_terminate", !server)?,
        skip_leave_on_interrupt: r.bool("skip_leave_on_interrupt", server)?,
        log_level,
        log_json: r.bool("log_json", false)?,
        enable_script_checks: r.bool("enable_script_checks", false)?,
        enable_local_script_checks: r.bool("enable_local_script_checks", false)?,
        default_query_time: r.duration("default_query_time", Duration::from_secs(300))?,
        max_query_time: r.duration("max_query_time", Duration::from_secs(600))?,
        raft_multiplier,
        limits: Limits {
            kv_max_value_size: r.uint("limits.kv_max_value_size", 512 * 1024)?,
            txn_max_req_len: r.uint("limits.txn_max_req_len", 512 * 1024)?,
            http_max_conns_per_client: r.uint("limits.http_max_conns_per_client", 200)?,
            http_header_read_timeout: positive(
                &r,
                "limits.http_header_read_timeout",
                Duration::from_secs(10),
            )?,
            http_idle_timeout: positive(&r, "limits.http_idle_timeout", Duration::from_secs(60))?,
            dns_tcp_idle_timeout: positive(
                &r,
                "limits.dns_tcp_idle_timeout",
                Duration::from_secs(10),
            )?,
        },
        dns,
        check_update_interval: r.duration("check_update_interval", Duration::from_secs(300))?,
        session_ttl_min: r.duration("session_ttl_min", Duration::from_secs(10))?,
        discovery_max_stale: Some(r.duration("discovery_max_stale", Duration::ZERO)?)
            .filter(|d| !d.is_zero()),
        debug_unsafe_local_reads: r.bool("debug_unsafe_local_reads", false)?,
        kv_tombstone_ttl: r.duration("kv_tombstone_ttl", Duration::from_secs(15 * 60))?,
        raft_snapshots: cairn_raft::SnapshotSettings {
            threshold: r
                .uint::<u64>(
                    "raft_snapshot_threshold",
                    cairn_raft::snapshot_policy::DEFAULT_THRESHOLD,
                )?
                .max(1),
            interval: Some(positive(
                &r,
                "raft_snapshot_interval",
                cairn_raft::snapshot_policy::DEFAULT_INTERVAL,
            )?),
            trailing_logs: r.uint::<u64>(
                "raft_trailing_logs",
                cairn_raft::snapshot_policy::DEFAULT_TRAILING_LOGS,
            )?,
        },
        kv_tombstone_granularity: r
            .duration("kv_tombstone_granularity", Duration::from_secs(30))?
            .max(Duration::from_millis(100)),
        acl,
        tls: tls_config,
        ui: r.bool("ui", false)? || r.bool("ui_config.enabled", false)?,
        pid_file: r
            .string("pid_file")?
            .filter(|s| !s.is_empty())
            .map(PathBuf::from),
        encrypt,
        services,
        checks,
        config_files,
        warnings,
    })
}
