//! Agent configuration: Consul-compatible command-line flags and JSON/HCL config files.
//!
//! Cairn must start with the same invocations as `consul agent` (`-dev`, `-server
//! -bootstrap-expect=3 -data-dir=...`, `-config-dir=/etc/consul.d`) and read the same config
//! files, including the ones test harnesses such as py-consul write. [`load`] does that in
//! Consul's order:
//!
//! 1. built-in defaults (and the `-dev` defaults),
//! 2. `-config-file` / `-config-dir` sources, in the order given (a directory's `.json` and
//!    `.hcl` files alphabetically),
//! 3. the command-line flags,
//! 4. `-hcl` fragments.
//!
//! Sources merge as in Consul: later scalars replace earlier ones, lists append, maps merge.
//! Keys Cairn does not implement, bad values and invalid combinations are a
//! [`ConfigError`] naming the key; settings that parse but whose feature is not built yet
//! (`ports.grpc`, ...) are refused by [`Config::check_supported`] before the agent
//! starts. The result is a fully typed [`Config`].

pub use cairn_types::duration;
mod build;
mod flags;
mod reader;
mod source;
mod tls;
mod unbuilt;

pub use duration::{format_duration, parse_duration, DurationError};
pub use tls::{TlsConfig, TlsFiles, TlsInterface, TlsVersion, TLS12_CIPHER_SUITES};

use build::build;
#[cfg(test)]
use build::sanitize_node_name;
use reader::{bad, Reader};
#[cfg(test)]
use reader::{base64_len, is_dns_label};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// A configuration error; its `Display` is meant to be printed before exiting with code 1.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `-h` / `-help`: the payload is the usage text (print it, exit 0).
    #[error("{0}")]
    Help(String),
    /// A flag that `cairn agent` does not know.
    #[error("flag provided but not defined: -{0}")]
    UnknownFlag(String),
    /// A non-boolean flag at the end of the arguments.
    #[error("flag needs an argument: -{0}")]
    MissingValue(String),
    /// A flag value of the wrong type.
    #[error("invalid value {value:?} for flag -{flag}: {reason}")]
    InvalidFlagValue {
        /// The flag, without dashes.
        flag: String,
        /// The value given.
        value: String,
        /// Why it was rejected.
        reason: String,
    },
    /// Something like `---x` or `-=x`.
    #[error("bad flag syntax: {0}")]
    BadFlagSyntax(String),
    /// A positional argument (`cairn agent` takes none).
    #[error("unexpected argument {0:?}: cairn agent takes only flags")]
    UnexpectedArgument(String),
    /// A config file or directory could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A config file or `-hcl` fragment is not valid JSON/HCL.
    #[error("cannot parse {source_name}: {message}")]
    Parse {
        /// File name or `-hcl` fragment name.
        source_name: String,
        /// The parser's message.
        message: String,
    },
    /// A configuration key has a value of the wrong type or out of range.
    #[error("invalid value for {key}: {reason}")]
    InvalidValue {
        /// Dotted config key, e.g. `ports.http`.
        key: String,
        /// Why it was rejected.
        reason: String,
    },
    /// An invalid combination of settings (e.g. `-server` without `-data-dir`).
    #[error("{0}")]
    Invalid(String),
    /// A key (or a value of it) that Cairn does not implement: refused, never ignored.
    #[error("{source_name}: configuration key {key:?} is not supported: {reason}")]
    Unsupported {
        /// File name, `-hcl` fragment or "command-line flags".
        source_name: String,
        /// Dotted config key.
        key: String,
        /// Why, and what to do instead.
        reason: String,
    },
}

/// Format of a config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JSON.
    Json,
    /// HCL.
    Hcl,
}

/// A listener port: Consul's `-1` (disabled), `0` (ephemeral) or a fixed port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    /// `-1`: the listener is not started.
    Disabled,
    /// `0`: bind an ephemeral port chosen by the OS.
    Ephemeral,
    /// A fixed port.
    Fixed(u16),
}

impl Port {
    /// Converts Consul's integer form; `None` outside `-1..=65535`.
    pub fn from_i64(n: i64) -> Option<Port> {
        match n {
            -1 => Some(Port::Disabled),
            0 => Some(Port::Ephemeral),
            n => u16::try_from(n).ok().map(Port::Fixed),
        }
    }

    /// The port to bind (`0` for ephemeral), or `None` when disabled.
    pub fn bind_port(self) -> Option<u16> {
        match self {
            Port::Disabled => None,
            Port::Ephemeral => Some(0),
            Port::Fixed(p) => Some(p),
        }
    }

    /// Whether the listener is enabled.
    pub fn is_enabled(self) -> bool {
        self != Port::Disabled
    }
}

impl fmt::Display for Port {
    /// Consul's integer form: `-1`, `0` or the port.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Port::Disabled => f.write_str("-1"),
            Port::Ephemeral => f.write_str("0"),
            Port::Fixed(p) => write!(f, "{p}"),
        }
    }
}

/// `ports { ... }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ports {
    /// HTTP API, default 8500.
    pub http: Port,
    /// HTTPS API, default disabled.
    pub https: Port,
    /// DNS (UDP and TCP), default 8600.
    pub dns: Port,
    /// Server RPC, default 8300.
    pub server: Port,
    /// Serf LAN gossip, default 8301.
    pub serf_lan: Port,
    /// Serf WAN gossip, default 8302.
    pub serf_wan: Port,
    /// gRPC, default disabled (8502 with `-dev`).
    pub grpc: Port,
    /// gRPC with TLS, default disabled.
    pub grpc_tls: Port,
}

/// `addresses { ... }`: per-listener overrides of `client_addr` (empty = use `client_addr`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Addresses {
    /// Addresses of the HTTP listener.
    pub http: Vec<IpAddr>,
    /// Addresses of the DNS listener.
    pub dns: Vec<IpAddr>,
    /// Addresses of the HTTPS listener.
    pub https: Vec<IpAddr>,
}

/// `limits { ... }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest KV value in bytes (default 512 KiB).
    pub kv_max_value_size: u64,
    /// Largest transaction request body in bytes (default 512 KiB).
    pub txn_max_req_len: u64,
    /// Concurrent HTTP connections per client IP (default 200; 0 = unlimited). DNS over
    /// TCP uses the same limit.
    pub http_max_conns_per_client: u32,
    /// A request head must arrive within this (Cairn's `limits.http_header_read_timeout`,
    /// default 10 s); ends slow-header clients.
    pub http_header_read_timeout: Duration,
    /// An HTTP connection with no request in flight and no traffic for this long is
    /// closed (Cairn's `limits.http_idle_timeout`, default 60 s).
    pub http_idle_timeout: Duration,
    /// A DNS-over-TCP connection with no complete query for this long is closed, and a
    /// query (or a reply) must cross within it (Cairn's `limits.dns_tcp_idle_timeout`,
    /// default 10 s).
    pub dns_tcp_idle_timeout: Duration,
}

/// `dns_config { ... }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsConfig {
    /// TTL of node lookups (default 0).
    pub node_ttl: Duration,
    /// Per-service TTLs; keys are names or prefixes ending in `*` (`"*"` matches all).
    /// Use [`DnsConfig::ttl_for_service`] to look one up.
    pub service_ttl: BTreeMap<String, Duration>,
    /// Drop instances in warning state too (default false: only critical are dropped).
    pub only_passing: bool,
    /// Answer from any server (default true).
    pub allow_stale: bool,
    /// Maximum staleness when `allow_stale` (default 87600h).
    pub max_stale: Duration,
    /// Records in a non-EDNS UDP answer (default 3, > 0).
    pub udp_answer_limit: u32,
    /// Set TC on trimmed UDP answers (default false).
    pub enable_truncate: bool,
    /// Limit of A/AAAA records (default 0 = unlimited).
    pub a_record_limit: u32,
    /// Add node-meta TXT records to the additional section (default true).
    pub enable_additional_node_meta_txt: bool,
}

impl DnsConfig {
    /// The TTL for `service`: an exact key wins, then the longest `prefix*` key; `None` if
    /// nothing matches (use 0).
    pub fn ttl_for_service(&self, service: &str) -> Option<Duration> {
        if let Some(d) = self.service_ttl.get(service) {
            return Some(*d);
        }
        self.service_ttl
            .iter()
            .filter_map(|(k, d)| {
                let prefix = k.strip_suffix('*')?;
                service.starts_with(prefix).then_some((prefix.len(), *d))
            })
            .max_by_key(|(len, _)| *len)
            .map(|(_, d)| d)
    }
}

/// `gossip_lan { ... }`: the LAN pool's timing (Consul's keys). Defaults: see
/// `docs/gossip.md` (Consul's values except a 500 ms probe interval and a 1 s suspicion
/// timeout, for detection within about 3 s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GossipLan {
    /// How often one member is probed (default 500ms).
    pub probe_interval: Duration,
    /// How long a probe waits for an ack before indirect probes (default 250ms).
    pub probe_timeout: Duration,
    /// How often queued updates are gossiped (default 200ms).
    pub gossip_interval: Duration,
    /// Members each gossip round goes to (default 3).
    pub gossip_nodes: u32,
    /// Retransmission multiplier of each update (default 4).
    pub retransmit_mult: u32,
    /// How long a suspect has to refute (default 1s).
    pub suspicion_timeout: Duration,
}

/// ACL default policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AclPolicy {
    /// Allow what no rule denies.
    Allow,
    /// Deny what no rule allows.
    Deny,
}

/// `acl.tokens { ... }`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AclTokens {
    /// Bootstrap management token (`initial_management`, legacy `master`).
    pub initial_management: Option<String>,
    /// The agent's own token.
    pub agent: Option<String>,
    /// Agent recovery token (`agent_recovery`, legacy `agent_master`).
    pub agent_recovery: Option<String>,
    /// Token for requests without one (also used for DNS when `dns` is not set).
    pub default: Option<String>,
    /// Token whose rules filter DNS answers (Consul's `acl.tokens.dns`).
    pub dns: Option<String>,
}

/// `acl { ... }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclConfig {
    /// ACLs enforced (default false; legacy `acl_datacenter` also enables them).
    pub enabled: bool,
    /// Default policy (default allow).
    pub default_policy: AclPolicy,
    /// `down_policy` (default `extend-cache`): what to do with tokens once no server was
    /// heard from for longer than `token_ttl`.
    pub down_policy: cairn_http::DownPolicy,
    /// `token_ttl` (default 30s): how long the replica's tokens are trusted without
    /// contact with a server.
    pub token_ttl: Duration,
    /// `token_min_expiration_ttl` and `token_max_expiration_ttl` (default 1m and 24h):
    /// the bounds of a new token's `ExpirationTTL`.
    pub token_min_expiration_ttl: Duration,
    pub token_max_expiration_ttl: Duration,
    /// Persist tokens set through the API (default false).
    pub enable_token_persistence: bool,
    /// Configured tokens.
    pub tokens: AclTokens,
}

/// The complete, validated agent configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// `-dev` was given: in-memory single server.
    pub dev: bool,
    /// Lowercased datacenter (default `dc1`).
    pub datacenter: String,
    /// `primary_datacenter` (legacy `acl_datacenter`), if set.
    pub primary_datacenter: Option<String>,
    /// Node name (default: the host name made DNS-safe).
    pub node_name: String,
    /// Lowercased node UUID, if given.
    pub node_id: Option<String>,
    /// Node metadata.
    pub node_meta: BTreeMap<String, String>,
    /// Data directory; `None` means in memory (only allowed with `-dev` or in client mode).
    pub data_dir: Option<PathBuf>,
    /// Server mode (`-dev` implies it).
    pub server: bool,
    /// Legacy single-server bootstrap.
    pub bootstrap: bool,
    /// Servers to wait for before bootstrapping (0 = not set). `-dev` sets 1 unless
    /// `bootstrap` is set; 1 is equivalent to `bootstrap`. See [`Config::bootstraps_alone`].
    pub bootstrap_expect: u32,
    /// Addresses of the client interfaces (HTTP, DNS); default `[127.0.0.1]`.
    pub client_addrs: Vec<IpAddr>,
    /// Cluster bind address (default 0.0.0.0, 127.0.0.1 with `-dev`).
    pub bind_addr: IpAddr,
    /// Advertised address, if set.
    pub advertise_addr: Option<IpAddr>,
    /// Per-listener address overrides.
    pub addresses: Addresses,
    /// Listener ports.
    pub ports: Ports,
    /// DNS domain, lowercased with a trailing dot (default `consul.`).
    pub domain: String,
    /// Alternate DNS domain, lowercased with a trailing dot.
    pub alt_domain: Option<String>,
    /// Upstream DNS servers (port 53 when not given).
    pub recursors: Vec<SocketAddr>,
    /// `-retry-join` addresses, as written.
    pub retry_join: Vec<String>,
    /// `-join` (`start_join`) addresses, as written.
    pub start_join: Vec<String>,
    /// Time between `-retry-join` attempts (default 30s).
    pub retry_interval: Duration,
    /// `-retry-join` attempts before the agent gives up and exits (0 = forever).
    pub retry_max: u32,
    /// How long a failed node stays in the pool and the catalog before it is reaped
    /// (default 72h; at least 8h, as in Consul).
    pub reconnect_timeout: Duration,
    /// `gossip_lan { ... }`: LAN gossip timing.
    pub gossip_lan: GossipLan,
    /// Leave the pool gracefully on SIGTERM (default: clients yes, servers no).
    pub leave_on_terminate: bool,
    /// Skip the graceful leave on SIGINT (default: servers skip it, clients leave).
    pub skip_leave_on_interrupt: bool,
    /// `trace`, `debug`, `info`, `warn` or `error` (default `info`; `debug` with `-dev`).
    pub log_level: String,
    /// Log as JSON.
    pub log_json: bool,
    /// Script checks allowed from anywhere.
    pub enable_script_checks: bool,
    /// Script checks allowed from config files only.
    pub enable_local_script_checks: bool,
    /// Default blocking wait (default 300s).
    pub default_query_time: Duration,
    /// Maximum blocking wait (default 600s).
    pub max_query_time: Duration,
    /// `performance.raft_multiplier`, 1..=10 (default 5; 1 with `-dev`).
    pub raft_multiplier: u32,
    /// `raft_snapshot_threshold`, `raft_snapshot_interval`, `raft_trailing_logs`
    /// (Consul's defaults: 16384 entries, 30s, 10240 entries).
    pub raft_snapshots: cairn_raft::SnapshotSettings,
    /// `limits { ... }`.
    pub limits: Limits,
    /// `dns_config { ... }`.
    pub dns: DnsConfig,
    /// Minimum interval between check output updates (default 5m).
    pub check_update_interval: Duration,
    /// Minimum session TTL (default 10s).
    pub session_ttl_min: Duration,
    /// `discovery_max_stale`: service-discovery reads without a mode are served from the
    /// local replica while it heard from the leader within this long (default off).
    pub discovery_max_stale: Option<Duration>,
    /// `debug_unsafe_local_reads`: a deliberate fault for tests. Default-mode reads skip
    /// the leader's confirmation and read the local state as it is, so a deposed leader
    /// or a lagging replica can serve stale data. Never set it in production.
    pub debug_unsafe_local_reads: bool,
    /// How long a deleted KV key's tombstone is kept before the leader reaps it
    /// (`kv_tombstone_ttl`, a Cairn key; default 15m, Consul's built-in value).
    pub kv_tombstone_ttl: Duration,
    /// How often the leader looks for tombstones to reap (`kv_tombstone_granularity`;
    /// default 30s, Consul's built-in value).
    pub kv_tombstone_granularity: Duration,
    /// `acl { ... }`.
    pub acl: AclConfig,
    /// `tls { ... }` (and the legacy top-level TLS keys).
    pub tls: TlsConfig,
    /// Web UI enabled (`ui` or `ui_config.enabled`; default with `-dev`).
    pub ui: bool,
    /// PID file, if set.
    pub pid_file: Option<PathBuf>,
    /// Base64 gossip key (validated: 32 bytes, AES-256-GCM).
    pub encrypt: Option<String>,
    /// `service`/`services` definitions from all sources, raw (snake_case JSON).
    pub services: Vec<Value>,
    /// `check`/`checks` definitions from all sources, raw (snake_case JSON).
    pub checks: Vec<Value>,
    /// Files that were loaded, in order.
    pub config_files: Vec<PathBuf>,
    /// Non-fatal problems (unknown keys, skipped files, adjustments) to log at start-up.
    pub warnings: Vec<String>,
}

impl Config {
    /// The first HTTP listener address (`addresses.http` or `client_addr`, with the HTTP
    /// port; port 0 = ephemeral); `None` when the HTTP port is disabled.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addrs().into_iter().next()
    }

    /// Every HTTP listener address.
    pub fn http_addrs(&self) -> Vec<SocketAddr> {
        listen(&self.addresses.http, &self.client_addrs, self.ports.http)
    }

    /// The first DNS listener address (UDP and TCP); `None` when DNS is disabled.
    pub fn dns_addr(&self) -> Option<SocketAddr> {
        self.dns_addrs().into_iter().next()
    }

    /// Every DNS listener address.
    pub fn dns_addrs(&self) -> Vec<SocketAddr> {
        listen(&self.addresses.dns, &self.client_addrs, self.ports.dns)
    }

    /// Server RPC address (`bind_addr` + server port); `None` if disabled or not a server.
    pub fn server_rpc_addr(&self) -> Option<SocketAddr> {
        if !self.server {
            return None;
        }
        let port = self.ports.server.bind_port()?;
        Some(SocketAddr::new(self.bind_addr, port))
    }

    /// Serf LAN gossip address (`bind_addr` + serf_lan port).
    pub fn serf_lan_addr(&self) -> Option<SocketAddr> {
        let port = self.ports.serf_lan.bind_port()?;
        Some(SocketAddr::new(self.bind_addr, port))
    }

    /// Whether this server elects itself alone (`bootstrap` or `bootstrap_expect == 1`).
    pub fn bootstraps_alone(&self) -> bool {
        self.server && (self.bootstrap || self.bootstrap_expect == 1)
    }
}

fn listen(over: &[IpAddr], client: &[IpAddr], port: Port) -> Vec<SocketAddr> {
    let Some(port) = port.bind_port() else {
        return Vec::new();
    };
    let ips = if over.is_empty() { client } else { over };
    ips.iter().map(|ip| SocketAddr::new(*ip, port)).collect()
}

/// Loads the configuration from the arguments after `cairn agent`.
pub fn load(args: &[String]) -> Result<Config, ConfigError> {
    let flags = flags::parse(args)?;
    let mut warnings = Vec::new();
    let mut sources = Vec::new();
    if flags.dev {
        sources.push(source::Source {
            name: "dev defaults".to_string(),
            value: dev_defaults(),
        });
    }
    for p in &flags.config_paths {
        // Like Consul, -config-file may also name a directory; both load the same way.
        source::load_path(
            &p.path,
            p.is_dir,
            flags.config_format,
            &mut sources,
            &mut warnings,
        )?;
    }
    let config_files: Vec<PathBuf> = sources
        .iter()
        .filter(|s| s.name != "dev defaults")
        .map(|s| PathBuf::from(&s.name))
        .collect();
    sources.push(source::Source {
        name: "command-line flags".to_string(),
        value: flags.fragment.clone(),
    });
    for (i, text) in flags.hcl.iter().enumerate() {
        sources.push(source::parse_text(
            &format!("-hcl fragment {}", i + 1),
            text,
            Format::Hcl,
        )?);
    }
    let mut merged = Map::new();
    for mut src in sources {
        source::normalise(&mut src)?;
        let value = Value::Object(std::mem::take(&mut src.value));
        if let Some(path) = cairn_types::input::find_nul(&value) {
            return Err(bad(
                &path,
                format!("{}: contains a NUL byte, which is not allowed", src.name),
            ));
        }
        if let Value::Object(m) = value {
            src.value = m;
        }
        source::merge_into(&mut merged, src.value);
    }
    build(&merged, flags.dev, config_files, warnings)
}

fn dev_defaults() -> Map<String, Value> {
    match serde_json::json!({
        "server": true,
        "bind_addr": "127.0.0.1",
        "log_level": "debug",
        "ui_config": {"enabled": true},
        "performance": {"raft_multiplier": 1},
        "check_update_interval": "0s",
    }) {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests;
