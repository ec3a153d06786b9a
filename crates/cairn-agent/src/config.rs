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
//! (ACL enforcement, HTTPS, ...) are refused by [`Config::check_supported`] before the agent
//! starts. The result is a fully typed [`Config`].

pub use cairn_types::duration;
mod flags;
mod source;
mod tls;
mod unbuilt;

pub use duration::{format_duration, parse_duration, DurationError};
pub use tls::{TlsConfig, TlsFiles, TlsInterface, TlsVersion, TLS12_CIPHER_SUITES};

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

/// Typed access to the merged configuration, with errors naming the key.
struct Reader<'a> {
    root: &'a Map<String, Value>,
}

fn bad(key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::InvalidValue {
        key: key.to_string(),
        reason: reason.into(),
    }
}

impl Reader<'_> {
    fn get(&self, key: &str) -> Option<&Value> {
        let mut parts = key.split('.');
        let mut cur = self.root.get(parts.next()?)?;
        for p in parts {
            cur = cur.as_object()?.get(p)?;
        }
        (!cur.is_null()).then_some(cur)
    }

    fn bool(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        match self.get(key) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(Value::String(s)) => match s.as_str() {
                "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
                "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
                _ => Err(bad(key, format!("expected a boolean, got {s:?}"))),
            },
            Some(v) => Err(bad(key, format!("expected a boolean, got {v}"))),
        }
    }

    fn int(&self, key: &str) -> Result<Option<i64>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => Ok(Some(i)),
                (None, Some(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(Some(f as i64)),
                _ => Err(bad(key, format!("expected an integer, got {n}"))),
            },
            Some(Value::String(s)) => s
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| bad(key, format!("expected an integer, got {s:?}"))),
            Some(v) => Err(bad(key, format!("expected an integer, got {v}"))),
        }
    }

    fn uint<T: TryFrom<i64>>(&self, key: &str, default: T) -> Result<T, ConfigError> {
        match self.int(key)? {
            None => Ok(default),
            Some(n) => {
                T::try_from(n).map_err(|_| bad(key, format!("{n} is negative or too large")))
            }
        }
    }

    fn string(&self, key: &str) -> Result<Option<String>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v @ (Value::Number(_) | Value::Bool(_))) => Ok(Some(v.to_string())),
            Some(v) => Err(bad(key, format!("expected a string, got {v}"))),
        }
    }

    fn strings(&self, key: &str) -> Result<Vec<String>, ConfigError> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::String(s)) => Ok(vec![s.clone()]),
            Some(Value::Array(list)) => list
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(bad(key, format!("expected a list of strings, got {other}"))),
                })
                .collect(),
            Some(v) => Err(bad(key, format!("expected a list of strings, got {v}"))),
        }
    }

    fn duration(&self, key: &str, default: Duration) -> Result<Duration, ConfigError> {
        match self.get(key) {
            None => Ok(default),
            Some(Value::String(s)) => parse_duration(s).map_err(|e| bad(key, e.to_string())),
            Some(v) => Err(bad(
                key,
                format!("expected a duration string such as \"10s\", got {v}"),
            )),
        }
    }

    fn port(&self, key: &str, default: Port) -> Result<Port, ConfigError> {
        match self.int(key)? {
            None => Ok(default),
            Some(n) => Port::from_i64(n).ok_or_else(|| {
                bad(
                    key,
                    format!("port {n} out of range (-1 disables, 0 picks a free port, max 65535)"),
                )
            }),
        }
    }

    fn ip(&self, key: &str) -> Result<Option<IpAddr>, ConfigError> {
        match self.string(key)? {
            None => Ok(None),
            Some(s) => parse_ip(key, &s).map(Some),
        }
    }

    /// A space-separated list of IP addresses (`client_addr`, `addresses.http`).
    fn ips(&self, key: &str) -> Result<Vec<IpAddr>, ConfigError> {
        let mut out = Vec::new();
        for s in self.strings(key)? {
            for part in s.split_whitespace() {
                out.push(parse_ip(key, part)?);
            }
        }
        Ok(out)
    }
}

fn parse_ip(key: &str, s: &str) -> Result<IpAddr, ConfigError> {
    let trimmed = s.trim();
    if trimmed.contains("{{") {
        return Err(bad(key, "go-sockaddr templates are not supported"));
    }
    trimmed
        .parse()
        .map_err(|_| bad(key, format!("{s:?} is not an IP address")))
}

fn parse_recursor(s: &str) -> Result<SocketAddr, ConfigError> {
    let s = s.trim();
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Ok(sa);
    }
    let bare = s.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| {
            bad(
                "recursors",
                format!("{s:?} is not an IP address or IP:port"),
            )
        })
}

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
fn sanitize_node_name(raw: &str) -> String {
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

fn is_dns_label(s: &str) -> bool {
    !s.is_empty() && s.len() <= 63 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Decoded length of standard base64 text, or `None` if it is not base64.
fn base64_len(s: &str) -> Option<usize> {
    let body = s.trim_end_matches('=');
    let pad = s.len() - body.len();
    let ok = s.len() / 4 * 4 == s.len()
        && pad <= 2
        && body
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/');
    ok.then(|| s.len() / 4 * 3 - pad)
}

fn normalise_domain(key: &str, s: &str) -> Result<String, ConfigError> {
    let d = s.trim().trim_end_matches('.').to_ascii_lowercase();
    if d.is_empty() || d.split('.').any(|l| !is_dns_label(l)) {
        return Err(bad(key, format!("{s:?} is not a valid DNS domain")));
    }
    Ok(format!("{d}."))
}

fn build(
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

/// A duration setting that must be greater than zero (a zero timeout would close every
/// connection at once).
fn positive(r: &Reader, key: &str, default: Duration) -> Result<Duration, ConfigError> {
    let d = r.duration(key, default)?;
    if d.is_zero() {
        return Err(bad(key, "must be greater than 0"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests;
