//! Tests of [`super::load`]: defaults, files, directories, merge order and validation.

use super::*;
use std::fs;
use std::path::Path;

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| (*s).to_string()).collect()
}

fn load_ok(a: &[&str]) -> Config {
    match load(&args(a)) {
        Ok(c) => c,
        Err(e) => panic!("load({a:?}) failed: {e}"),
    }
}

fn load_err(a: &[&str]) -> String {
    match load(&args(a)) {
        Ok(c) => panic!("load({a:?}) should fail, got {c:?}"),
        Err(e) => e.to_string(),
    }
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

const PY_CONSUL_JSON: &str = r#"{
  "ports": {"https": -1, "dns": -1, "grpc_tls": -1},
  "performance": {"raft_multiplier": 1},
  "enable_script_checks": true,
  "acl": {"enabled": true, "default_policy": "deny", "down_policy": "extend-cache",
          "enable_token_persistence": true,
          "tokens": {"initial_management": "root-token", "agent": "agent-token"}}
}"#;

const PY_CONSUL_HCL: &str = r#"
ports {
  https    = -1
  dns      = -1
  grpc_tls = -1
}
performance {
  raft_multiplier = 1
}
enable_script_checks = true
acl {
  enabled        = true
  default_policy = "deny"
  tokens {
    initial_management = "root-token"
    agent              = "agent-token"
  }
}
"#;

#[test]
fn defaults() {
    let c = load_ok(&["-node", "n1"]);
    assert!(!c.dev && !c.server && !c.bootstrap);
    assert_eq!(c.bootstrap_expect, 0);
    assert_eq!(c.datacenter, "dc1");
    assert_eq!(c.node_name, "n1");
    assert_eq!(c.domain, "consul.");
    assert_eq!(c.alt_domain, None);
    assert_eq!(c.client_addrs, vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]);
    assert_eq!(c.bind_addr, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    assert_eq!(
        c.ports,
        Ports {
            http: Port::Fixed(8500),
            https: Port::Disabled,
            dns: Port::Fixed(8600),
            server: Port::Fixed(8300),
            serf_lan: Port::Fixed(8301),
            serf_wan: Port::Fixed(8302),
            grpc: Port::Disabled,
            grpc_tls: Port::Disabled,
        }
    );
    assert_eq!(c.http_addr(), Some("127.0.0.1:8500".parse().unwrap()));
    assert_eq!(c.dns_addr(), Some("127.0.0.1:8600".parse().unwrap()));
    assert_eq!(c.default_query_time, Duration::from_secs(300));
    assert_eq!(c.max_query_time, Duration::from_secs(600));
    assert_eq!(c.limits.kv_max_value_size, 524_288);
    assert_eq!(c.limits.txn_max_req_len, 524_288);
    assert_eq!(c.limits.http_max_conns_per_client, 200);
    assert_eq!(c.session_ttl_min, Duration::from_secs(10));
    assert_eq!(c.discovery_max_stale, None);
    assert!(!c.debug_unsafe_local_reads);
    assert_eq!(c.check_update_interval, Duration::from_secs(300));
    assert_eq!(c.kv_tombstone_ttl, Duration::from_secs(900));
    assert_eq!(c.kv_tombstone_granularity, Duration::from_secs(30));
    assert_eq!(c.raft_multiplier, 5);
    assert_eq!(c.log_level, "info");
    assert_eq!(
        c.dns,
        DnsConfig {
            node_ttl: Duration::ZERO,
            service_ttl: BTreeMap::new(),
            only_passing: false,
            allow_stale: true,
            max_stale: Duration::from_secs(87_600 * 3_600),
            udp_answer_limit: 3,
            enable_truncate: false,
            a_record_limit: 0,
            enable_additional_node_meta_txt: true,
        }
    );
    assert!(!c.acl.enabled);
    assert_eq!(c.acl.default_policy, AclPolicy::Allow);
    assert!(!c.ui);
    assert!(c.services.is_empty() && c.checks.is_empty() && c.warnings.is_empty());
    assert_eq!(c.server_rpc_addr(), None);
}

#[test]
fn default_node_name_is_dns_safe() {
    let c = load_ok(&[]);
    assert!(is_dns_label(&c.node_name), "{}", c.node_name);
    assert_eq!(c.node_name, c.node_name.to_ascii_lowercase());
    assert_eq!(
        sanitize_node_name("My_Host.example.COM"),
        "my-host-example-com"
    );
    assert_eq!(sanitize_node_name(""), "");
}

#[test]
fn dev_mode() {
    let c = load_ok(&["-dev", "-node", "dev1"]);
    assert!(c.dev && c.server);
    assert_eq!(c.bootstrap_expect, 1);
    assert!(c.bootstraps_alone());
    assert_eq!(c.data_dir, None);
    assert_eq!(c.bind_addr, IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert_eq!(c.log_level, "debug");
    assert_eq!(c.ports.grpc, Port::Disabled);
    assert_eq!(c.raft_multiplier, 1);
    assert!(c.ui);
    assert_eq!(c.server_rpc_addr(), Some("127.0.0.1:8300".parse().unwrap()));
    // Flags still override the dev defaults; -bootstrap replaces the implied expect=1.
    let c = load_ok(&[
        "-dev",
        "-bootstrap",
        "-log-level=INFO",
        "-grpc-port=-1",
        "-node=a",
    ]);
    assert!(c.bootstrap && c.bootstraps_alone());
    assert_eq!(c.bootstrap_expect, 0);
    assert_eq!(c.log_level, "info");
    assert_eq!(c.ports.grpc, Port::Disabled);
}

#[test]
fn ports_and_addresses() {
    let c = load_ok(&[
        "-node=n",
        "-http-port=0",
        "-dns-port",
        "-1",
        "--client",
        "127.0.0.1 ::1",
        "-hcl",
        "addresses { dns = \"0.0.0.0\" }",
    ]);
    assert_eq!(c.ports.http, Port::Ephemeral);
    assert_eq!(c.ports.dns, Port::Disabled);
    assert_eq!(c.http_addr(), Some("127.0.0.1:0".parse().unwrap()));
    assert_eq!(
        c.http_addrs(),
        vec!["127.0.0.1:0".parse().unwrap(), "[::1]:0".parse().unwrap()]
    );
    assert_eq!(c.dns_addr(), None);
    assert_eq!(c.addresses.dns, vec![IpAddr::V4(Ipv4Addr::UNSPECIFIED)]);
    assert!(load_err(&["-http-port=65536"]).contains("ports.http"));
    assert!(load_err(&["-http-port=-2"]).contains("out of range"));
    assert!(load_err(&["-client", "{{ GetPrivateIP }}"]).contains("template"));
    assert!(load_err(&["-bind", "nope"]).contains("bind_addr"));
    assert_eq!(Port::Fixed(8500).to_string(), "8500");
    assert_eq!(Port::Disabled.to_string(), "-1");
    assert_eq!(Port::Ephemeral.bind_port(), Some(0));
}

#[test]
fn py_consul_json_and_hcl_load() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [("a.json", PY_CONSUL_JSON), ("a.hcl", PY_CONSUL_HCL)] {
        let f = write(dir.path(), name, text);
        let c = load_ok(&["-dev", "-node=n", "-config-file", &f]);
        assert_eq!(c.ports.https, Port::Disabled, "{name}");
        assert_eq!(c.ports.dns, Port::Disabled);
        assert_eq!(c.ports.grpc_tls, Port::Disabled);
        assert_eq!(c.ports.http, Port::Fixed(8500));
        assert_eq!(c.raft_multiplier, 1);
        assert!(c.enable_script_checks);
        assert!(c.acl.enabled);
        assert_eq!(c.acl.default_policy, AclPolicy::Deny);
        assert_eq!(
            c.acl.tokens.initial_management.as_deref(),
            Some("root-token")
        );
        assert_eq!(c.acl.tokens.agent.as_deref(), Some("agent-token"));
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        assert_eq!(c.config_files, vec![PathBuf::from(&f)]);
        // The same file with a key Cairn does not know is refused, naming key and file.
        let f = write(
            dir.path(),
            &format!("bogus-{name}"),
            &if name.ends_with(".json") {
                text.replacen('{', "{\"bogus_key\": {\"x\": 1},", 1)
            } else {
                format!("{text}\nbogus_key = 1\n")
            },
        );
        let e = load_err(&["-dev", "-node=n", "-config-file", &f]);
        assert!(e.contains("\"bogus_key\"") && e.contains("bogus-"), "{e}");
    }
}

#[test]
fn legacy_acl_keys() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "acl.json",
        r#"{"acl_datacenter": "dc1", "acl_master_token": "m", "acl_default_policy": "deny",
            "acl_agent_token": "a", "acl_token": "d"}"#,
    );
    let c = load_ok(&["-dev", "-node=n", "-config-file", &f]);
    assert!(c.acl.enabled);
    assert_eq!(c.primary_datacenter.as_deref(), Some("dc1"));
    assert_eq!(c.acl.tokens.initial_management.as_deref(), Some("m"));
    assert_eq!(c.acl.tokens.agent.as_deref(), Some("a"));
    assert_eq!(c.acl.tokens.default.as_deref(), Some("d"));
    assert_eq!(c.acl.default_policy, AclPolicy::Deny);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn all_mapped_keys_from_json() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "all.json",
        r#"{
          "datacenter": "DC2", "node_name": "web-1",
          "node_id": "ADF4238A-882B-9DDC-4A9D-5B6758E4159E",
          "node_meta": {"rack": "r1", "n": 5}, "data_dir": "/var/cairn", "server": true,
          "bootstrap_expect": 3, "client_addr": "0.0.0.0", "bind_addr": "10.0.0.1",
          "advertise_addr": "10.0.0.2", "domain": "Example", "alt_domain": "alt.",
          "ports": {"http": 18500, "dns": 18600, "server": 18300, "serf_lan": 18301,
                    "grpc": 18502, "https": 18501, "grpc_tls": 18503},
          "addresses": {"http": "127.0.0.2"},
          "tls": {"defaults": {"cert_file": "/c.pem", "key_file": "/k.pem"}},
          "recursors": ["8.8.8.8", "1.1.1.1:5353", "::1", "[::2]:54"],
          "retry_join": ["10.0.0.3"], "log_level": "WARN", "log_json": true,
          "enable_local_script_checks": true, "default_query_time": "1m",
          "max_query_time": "2m", "performance": {"raft_multiplier": 2},
          "limits": {"kv_max_value_size": 1024, "txn_max_req_len": 2048,
                     "http_max_conns_per_client": 50},
          "dns_config": {"node_ttl": "10s", "service_ttl": {"*": "5s", "web": "30s", "db*": "1m"},
                         "only_passing": true, "allow_stale": false, "max_stale": "5s",
                         "udp_answer_limit": 5, "enable_truncate": true, "a_record_limit": 4,
                         "enable_additional_node_meta_txt": false},
          "check_update_interval": "1m", "session_ttl_min": "1s", "ui": true,
          "kv_tombstone_ttl": "2m", "kv_tombstone_granularity": "1ms",
          "pid_file": "/run/cairn.pid", "encrypt": "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=",
          "primary_datacenter": "dc2",
          "service": {"name": "web", "port": 80},
          "checks": [{"name": "c1", "ttl": "10s"}, {"name": "c2", "ttl": "10s"}]
        }"#,
    );
    let c = load_ok(&["-config-file", &f]);
    assert_eq!(c.datacenter, "dc2");
    assert_eq!(c.node_name, "web-1");
    assert_eq!(
        c.node_id.as_deref(),
        Some("adf4238a-882b-9ddc-4a9d-5b6758e4159e")
    );
    assert_eq!(c.node_meta.get("rack").map(String::as_str), Some("r1"));
    assert_eq!(c.node_meta.get("n").map(String::as_str), Some("5"));
    assert_eq!(c.data_dir, Some(PathBuf::from("/var/cairn")));
    assert!(c.server && !c.dev);
    assert_eq!(c.bootstrap_expect, 3);
    assert!(!c.bootstraps_alone());
    assert_eq!(c.client_addrs, vec![IpAddr::V4(Ipv4Addr::UNSPECIFIED)]);
    assert_eq!(c.bind_addr, "10.0.0.1".parse::<IpAddr>().unwrap());
    assert_eq!(c.advertise_addr, Some("10.0.0.2".parse().unwrap()));
    assert_eq!(c.domain, "example.");
    assert_eq!(c.alt_domain.as_deref(), Some("alt."));
    assert_eq!(c.ports.https, Port::Fixed(18501));
    assert_eq!(c.ports.grpc_tls, Port::Fixed(18503));
    assert_eq!(c.http_addr(), Some("127.0.0.2:18500".parse().unwrap()));
    assert_eq!(c.dns_addr(), Some("0.0.0.0:18600".parse().unwrap()));
    assert_eq!(c.serf_lan_addr(), Some("10.0.0.1:18301".parse().unwrap()));
    assert_eq!(
        c.recursors,
        vec![
            "8.8.8.8:53".parse().unwrap(),
            "1.1.1.1:5353".parse().unwrap(),
            "[::1]:53".parse().unwrap(),
            "[::2]:54".parse().unwrap(),
        ]
    );
    assert_eq!(c.retry_join, vec!["10.0.0.3".to_string()]);
    assert_eq!(c.log_level, "warn");
    assert!(c.log_json && c.enable_local_script_checks && !c.enable_script_checks);
    assert_eq!(c.default_query_time, Duration::from_secs(60));
    assert_eq!(c.max_query_time, Duration::from_secs(120));
    assert_eq!(c.raft_multiplier, 2);
    assert_eq!(
        c.limits,
        Limits {
            kv_max_value_size: 1024,
            txn_max_req_len: 2048,
            http_max_conns_per_client: 50,
            http_header_read_timeout: Duration::from_secs(10),
            http_idle_timeout: Duration::from_secs(60),
            dns_tcp_idle_timeout: Duration::from_secs(10),
        }
    );
    assert_eq!(c.dns.node_ttl, Duration::from_secs(10));
    assert_eq!(c.dns.ttl_for_service("web"), Some(Duration::from_secs(30)));
    assert_eq!(c.dns.ttl_for_service("db-1"), Some(Duration::from_secs(60)));
    assert_eq!(c.dns.ttl_for_service("other"), Some(Duration::from_secs(5)));
    assert!(c.dns.only_passing && !c.dns.allow_stale && c.dns.enable_truncate);
    assert!(!c.dns.enable_additional_node_meta_txt);
    assert_eq!(c.dns.max_stale, Duration::from_secs(5));
    assert_eq!((c.dns.udp_answer_limit, c.dns.a_record_limit), (5, 4));
    assert_eq!(c.check_update_interval, Duration::from_secs(60));
    assert_eq!(c.session_ttl_min, Duration::from_secs(1));
    assert_eq!(c.kv_tombstone_ttl, Duration::from_secs(120));
    // Clamped: a reap check every millisecond would only burn CPU.
    assert_eq!(c.kv_tombstone_granularity, Duration::from_millis(100));
    assert!(c.ui);
    assert_eq!(c.pid_file, Some(PathBuf::from("/run/cairn.pid")));
    assert!(c.encrypt.is_some());
    assert_eq!(c.primary_datacenter.as_deref(), Some("dc2"));
    assert_eq!(
        c.services,
        vec![serde_json::json!({"name": "web", "port": 80})]
    );
    assert_eq!(c.checks.len(), 2);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn service_ttl_lookup_prefers_exact_then_longest_prefix() {
    let mut dns = load_ok(&["-node=n"]).dns;
    dns.service_ttl = [("d*", 1), ("db*", 2), ("db-master", 3)]
        .into_iter()
        .map(|(k, s)| (k.to_string(), Duration::from_secs(s)))
        .collect();
    assert_eq!(
        dns.ttl_for_service("db-master"),
        Some(Duration::from_secs(3))
    );
    assert_eq!(
        dns.ttl_for_service("db-replica"),
        Some(Duration::from_secs(2))
    );
    assert_eq!(dns.ttl_for_service("dx"), Some(Duration::from_secs(1)));
    assert_eq!(dns.ttl_for_service("web"), None);
}

#[test]
fn config_dir_alphabetical_merge_and_list_append() {
    let dir = tempfile::tempdir().unwrap();
    // Written out of order on purpose; loaded as 01, 02, 03.
    write(
        dir.path(),
        "03-last.json",
        r#"{"datacenter": "third", "recursors": ["3.3.3.3"], "node_meta": {"c": "3"},
            "service": {"name": "s3"}}"#,
    );
    write(
        dir.path(),
        "01-first.hcl",
        "datacenter = \"first\"\nrecursors = [\"1.1.1.1\"]\nnode_meta {\n a = \"1\"\n}\nservice {\n name = \"s1\"\n}\n",
    );
    write(
        dir.path(),
        "02-second.json",
        r#"{"datacenter": "second", "recursors": ["2.2.2.2"], "node_meta": {"a": "2", "b": "2"},
            "services": [{"name": "s2a"}, {"name": "s2b"}], "log_level": "warn"}"#,
    );
    write(dir.path(), "README.md", "not config");
    fs::create_dir(dir.path().join("00-sub")).unwrap();
    write(
        &dir.path().join("00-sub"),
        "x.json",
        r#"{"datacenter": "sub"}"#,
    );
    let d = dir.path().to_string_lossy().into_owned();

    let c = load_ok(&["-node=n", "-config-dir", &d, "-recursor", "4.4.4.4"]);
    assert_eq!(c.datacenter, "third");
    assert_eq!(c.log_level, "warn");
    let rec: Vec<String> = c.recursors.iter().map(|r| r.ip().to_string()).collect();
    assert_eq!(rec, vec!["1.1.1.1", "2.2.2.2", "3.3.3.3", "4.4.4.4"]);
    assert_eq!(
        c.node_meta,
        [("a", "2"), ("b", "2"), ("c", "3")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>()
    );
    let names: Vec<&str> = c
        .services
        .iter()
        .filter_map(|s| s.get("name").and_then(Value::as_str))
        .collect();
    assert_eq!(names, vec!["s1", "s2a", "s2b", "s3"]);
    let files: Vec<String> = c
        .config_files
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    assert_eq!(
        files,
        vec!["01-first.hcl", "02-second.json", "03-last.json"]
    );
    assert!(
        c.warnings.iter().any(|w| w.contains("README.md")),
        "{:?}",
        c.warnings
    );
}

#[test]
fn file_order_and_flags_override_files() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(
        dir.path(),
        "b.json",
        r#"{"datacenter": "from-b", "log_level": "warn"}"#,
    );
    let b = write(
        dir.path(),
        "a.json",
        r#"{"datacenter": "from-a", "server": true, "ports": {"http": 1}}"#,
    );
    // Files in the order given (b then a), not alphabetically.
    let c = load_ok(&["-node=n", "-dev", "-config-file", &a, "-config-file", &b]);
    assert_eq!(c.datacenter, "from-a");
    // Flags beat files, whatever their position; -hcl beats flags.
    let c = load_ok(&[
        "-datacenter=flag",
        "-dev",
        "-node=n",
        "-config-file",
        &a,
        "-config-file",
        &b,
        "-server=false",
        "-http-port",
        "2",
        "-hcl",
        "log_level = \"error\"",
    ]);
    assert_eq!(c.datacenter, "flag");
    assert!(!c.server);
    assert_eq!(c.ports.http, Port::Fixed(2));
    assert_eq!(c.log_level, "error");
}

#[test]
fn config_format_forces_parser() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "agent.conf", "datacenter = \"hcl-dc\"\n");
    let c = load_ok(&["-node=n", "-config-format=hcl", "-config-file", &f]);
    assert_eq!(c.datacenter, "hcl-dc");
    // Without the format the file is skipped with a warning.
    let c = load_ok(&["-node=n", "-config-file", &f]);
    assert_eq!(c.datacenter, "dc1");
    assert_eq!(c.warnings.len(), 1);
}

#[test]
fn file_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir
        .path()
        .join("missing.json")
        .to_string_lossy()
        .into_owned();
    assert!(load_err(&["-config-file", &missing]).contains("missing.json"));
    let broken = write(dir.path(), "broken.json", "{\"datacenter\": ");
    assert!(load_err(&["-config-file", &broken]).contains("broken.json"));
    let bad_type = write(
        dir.path(),
        "t.json",
        r#"{"node_name": "n", "ports": {"http": "x"}}"#,
    );
    assert!(load_err(&["-config-file", &bad_type]).contains("ports.http"));
    let bad_dur = write(
        dir.path(),
        "d.json",
        r#"{"node_name": "n", "session_ttl_min": 10}"#,
    );
    assert!(load_err(&["-config-file", &bad_dur]).contains("session_ttl_min"));
    assert!(load_err(&["-config-dir", &broken]).contains("not a directory"));
    assert!(load_err(&["-node=n", "-hcl", "x = = 1"]).contains("-hcl"));
}

#[test]
fn validations() {
    assert!(load_err(&["-server", "-node=n"]).contains("-data-dir"));
    assert!(load_ok(&["-server", "-node=n", "-data-dir=/tmp/x"]).server);
    assert!(load_err(&["-node=n", "-bootstrap-expect=3"]).contains("requires -server"));
    assert!(load_err(&["-node=n", "-bootstrap"]).contains("requires -server"));
    assert!(
        load_err(&["-node=n", "-dev", "-bootstrap", "-bootstrap-expect=3"])
            .contains("mutually exclusive")
    );
    assert!(load_err(&["-node=n", "-dev", "-bootstrap-expect=-1"]).contains("bootstrap_expect"));
    assert!(load_err(&["-node=bad_name"]).contains("DNS-safe"));
    assert!(load_err(&["-node=a.b"]).contains("DNS-safe"));
    assert!(load_err(&["-node="]).contains("DNS-safe"));
    assert!(load_err(&["-node=n", "-node-id=xyz"]).contains("UUID"));
    assert!(load_err(&["-node=n", "-datacenter=a.b"]).contains("datacenter"));
    assert!(load_err(&["-node=n", "-log-level=loud"]).contains("log_level"));
    assert!(load_err(&["-node=n", "-encrypt=abc"]).contains("encrypt"));
    assert!(load_err(&["-node=n", "-domain=bad_domain"]).contains("domain"));
    assert!(load_err(&["-node=n", "-recursor=dns.google"]).contains("recursors"));
    assert!(
        load_err(&["-node=n", "-hcl", "performance { raft_multiplier = 11 }"])
            .contains("raft_multiplier")
    );
    assert!(
        load_err(&["-node=n", "-hcl", "dns_config { udp_answer_limit = 0 }"])
            .contains("udp_answer_limit")
    );
    assert!(
        load_err(&["-node=n", "-hcl", "acl { default_policy = \"maybe\" }"])
            .contains("default_policy")
    );
    let e = load_err(&["-dev", "-what"]);
    assert!(e.contains("-what"), "{e}");
    assert!(matches!(load(&args(&["-help"])), Err(ConfigError::Help(u)) if u.contains("-dev")));
}

#[test]
fn domains_are_normalised() {
    let c = load_ok(&["-node=n", "-domain", "cairn", "-alt-domain=Alt.Example."]);
    assert_eq!(c.domain, "cairn.");
    assert_eq!(c.alt_domain.as_deref(), Some("alt.example."));
    assert!(load_err(&["-node=n", "-alt-domain=consul"]).contains("alt_domain"));
}

#[test]
fn base64_length() {
    assert_eq!(
        base64_len("pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s="),
        Some(32)
    );
    assert_eq!(base64_len("AAAAAAAAAAAAAAAAAAAAAA=="), Some(16));
    assert_eq!(base64_len("abc"), None);
    assert_eq!(base64_len("ab!="), None);
}

#[test]
fn hcl_fragments_maps_and_blocks() {
    let c = load_ok(&[
        "-node=n",
        "-hcl",
        "dns_config {\n  service_ttl = { \"*\" = \"5s\", \"web\" = \"1m\" }\n  node_ttl = \"3s\"\n}",
        "-hcl",
        "service {\n  name = \"a\"\n  port = 1\n}\ncheck {\n  name = \"c\"\n  ttl = \"10s\"\n}",
        "-hcl",
        "service {\n  name = \"b\"\n}",
    ]);
    assert_eq!(c.dns.ttl_for_service("web"), Some(Duration::from_secs(60)));
    assert_eq!(c.dns.ttl_for_service("x"), Some(Duration::from_secs(5)));
    assert_eq!(c.dns.node_ttl, Duration::from_secs(3));
    assert_eq!(
        c.services,
        vec![
            serde_json::json!({"name": "a", "port": 1}),
            serde_json::json!({"name": "b"})
        ]
    );
    assert_eq!(
        c.checks,
        vec![serde_json::json!({"name": "c", "ttl": "10s"})]
    );
}

#[test]
fn wrong_shapes_are_errors_not_panics() {
    for frag in [
        r#"{"ports": 5}"#,
        r#"{"acl": {"tokens": []}}"#,
        r#"{"node_meta": [1]}"#,
        r#"{"recursors": {"a": 1}}"#,
        r#"{"dns_config": {"service_ttl": {"*": 5}}}"#,
        r#"{"limits": {"kv_max_value_size": -1}}"#,
        r#"{"limits": {"kv_max_value_size": 1.5}}"#,
        r#"{"server": "maybe"}"#,
        r#"{"bootstrap_expect": 99999999999}"#,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let f = write(dir.path(), "x.json", frag);
        let e = load(&args(&["-node=n", "-config-file", &f]));
        assert!(e.is_err(), "{frag} should be rejected");
    }
}

#[test]
fn read_consistency_settings() {
    let c = load_ok(&[
        "-dev",
        "-hcl",
        "discovery_max_stale = \"5s\"",
        "-hcl",
        "debug_unsafe_local_reads = true",
    ]);
    assert_eq!(c.discovery_max_stale, Some(Duration::from_secs(5)));
    assert!(c.debug_unsafe_local_reads);
    let e = load_err(&["-dev", "-hcl", "discovery_max_stale = \"soon\""]);
    assert!(e.contains("discovery_max_stale"), "{e}");
}

#[test]
fn raft_snapshot_settings_default_as_consul_and_are_read() {
    let c = load_ok(&["-node=n"]);
    assert_eq!(c.raft_snapshots.threshold, 16384);
    assert_eq!(c.raft_snapshots.interval, Some(Duration::from_secs(30)));
    assert_eq!(c.raft_snapshots.trailing_logs, 10240);
    let c = load_ok(&[
        "-node=n",
        "-hcl",
        "raft_snapshot_threshold = 20\nraft_snapshot_interval = \"250ms\"\nraft_trailing_logs = 5",
    ]);
    assert_eq!(c.raft_snapshots.threshold, 20);
    assert_eq!(c.raft_snapshots.interval, Some(Duration::from_millis(250)));
    assert_eq!(c.raft_snapshots.trailing_logs, 5);
    assert!(
        load_err(&["-node=n", "-hcl", "raft_snapshot_interval = \"0s\""])
            .contains("raft_snapshot_interval")
    );
    assert!(
        load_err(&["-node=n", "-hcl", "raft_trailing_logs = -1"]).contains("raft_trailing_logs")
    );
}

#[test]
fn acl_dns_token_is_read() {
    let c = load_ok(&[
        "-dev",
        "-node=n",
        "-hcl",
        "acl {\n enabled = true\n tokens {\n default = \"d\"\n dns = \"q\"\n }\n}",
    ]);
    assert_eq!(c.acl.tokens.default.as_deref(), Some("d"));
    assert_eq!(c.acl.tokens.dns.as_deref(), Some("q"));
}

#[test]
fn acl_down_policy_and_token_ttls() {
    let c = load_ok(&["-dev"]);
    assert_eq!(c.acl.down_policy, cairn_http::DownPolicy::ExtendCache);
    assert_eq!(c.acl.token_ttl, Duration::from_secs(30));
    assert_eq!(c.acl.token_min_expiration_ttl, Duration::from_secs(60));
    assert_eq!(
        c.acl.token_max_expiration_ttl,
        Duration::from_secs(24 * 3600)
    );
    let c = load_ok(&[
        "-dev",
        "-hcl",
        "acl {\n down_policy = \"deny\"\n token_ttl = \"3s\"\n token_min_expiration_ttl = \"1s\"\n}",
    ]);
    assert_eq!(c.acl.down_policy, cairn_http::DownPolicy::Deny);
    assert_eq!(c.acl.token_ttl, Duration::from_secs(3));
    assert_eq!(c.acl.token_min_expiration_ttl, Duration::from_secs(1));
    for p in ["async-cache", "allow", "extend-cache"] {
        let hcl = format!("acl {{\n down_policy = \"{p}\"\n}}");
        assert_eq!(
            load_ok(&["-dev", "-hcl", &hcl]).acl.down_policy,
            cairn_http::DownPolicy::parse(p).unwrap()
        );
    }
    let e = load_err(&["-dev", "-hcl", "acl {\n down_policy = \"sometimes\"\n}"]);
    assert!(
        e.contains("acl.down_policy") && e.contains("sometimes"),
        "{e}"
    );
    let e = load_err(&["-dev", "-hcl", "acl {\n token_ttl = \"soon\"\n}"]);
    assert!(e.contains("acl.token_ttl"), "{e}");
}
