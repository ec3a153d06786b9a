//! `cairn tls ca create` and `cairn tls cert create`: the files of a TLS setup, under the
//! names Consul's `consul tls` gives them, in the current directory. What goes into each
//! certificate is `pki.rs`; this module reads the CA, picks free file names and writes
//! (private keys readable by their owner only).

use std::io::Write;
use std::net::IpAddr;
use std::path::Path;

use crate::error::CliError;
use crate::flags::{spec, Kind, Spec};
use crate::output::write_stdout;
use crate::pki::{self, CaSpec, CertSpec, Pem, Role};

/// A CA file larger than this is not one we wrote: refuse it instead of reading it all.
const MAX_PEM: u64 = 1 << 20;

const HELP: &str = "\
Usage: cairn tls <subcommand> <subcommand> [options]

  Helpers to set up TLS: a certificate authority and agent certificates.

Subcommands:
    ca create     Creates a certificate authority
    cert create   Creates a server, client or CLI certificate signed by the CA";

const CA_HELP: &str = "\
Usage: cairn tls ca create [options]

  Creates a self-signed certificate authority in the current directory:
  <domain>-agent-ca.pem and <domain>-agent-ca-key.pem.";

const CERT_HELP: &str = "\
Usage: cairn tls cert create [options]

  Creates a certificate signed by the CA, in the current directory, named as
  Consul's: <dc>-server-<domain>-<n>.pem and <dc>-server-<domain>-<n>-key.pem
  (client and cli likewise), n being the first number not taken.";

const CA_SPECS: &[Spec] = &[
    spec(
        "days",
        Kind::Value,
        "Number of days the CA is valid for. Defaults to 1825 (5 years).",
    ),
    spec(
        "domain",
        Kind::Value,
        "The cluster's domain; names the files. Defaults to consul.",
    ),
];

const CERT_SPECS: &[Spec] = &[
    spec("server", Kind::Bool, "Generate a server certificate."),
    spec("client", Kind::Bool, "Generate a client certificate."),
    spec("cli", Kind::Bool, "Generate a CLI certificate."),
    spec("dc", Kind::Value, "The datacenter. Defaults to dc1."),
    spec(
        "node",
        Kind::Value,
        "With -server: also name <node>.server.<dc>.<domain> in the certificate.",
    ),
    spec("domain", Kind::Value, "The domain. Defaults to consul."),
    spec(
        "days",
        Kind::Value,
        "Number of days the certificate is valid for. Defaults to 365.",
    ),
    spec(
        "ca",
        Kind::Value,
        "Path to the CA certificate. Defaults to <domain>-agent-ca.pem.",
    ),
    spec(
        "key",
        Kind::Value,
        "Path to the CA key. Defaults to <domain>-agent-ca-key.pem.",
    ),
    spec(
        "additional-dnsname",
        Kind::Multi,
        "An additional DNS name for the Subject Alternative Names (localhost is \
         always included). May be given several times.",
    ),
    spec(
        "additional-ipaddress",
        Kind::Multi,
        "An additional IP address for the Subject Alternative Names (127.0.0.1 is \
         always included). May be given several times.",
    ),
];

const SERVER_WARNING: &str = "\
==> WARNING: Server Certificates grants authority to become a
    server and access all state in the cluster including root keys
    and all ACL tokens. Do not distribute them to production hosts
    that are not server nodes. Store them as securely as CA keys.
";

/// Runs `cairn tls ...`.
pub async fn run(args: Vec<String>) -> Result<(), CliError> {
    let (group, rest) = super::subcommand(&args, HELP)?;
    let (verb, rest) = super::subcommand(&rest, HELP)?;
    let dir = Path::new(".");
    let out = match (group, verb) {
        ("ca", "create") => ca_create(dir, &rest, now_unix(), rand::random())?,
        ("cert", "create") => cert_create(dir, &rest, now_unix(), rand::random())?,
        _ => {
            return Err(CliError::usage(
                format!("error: unknown subcommand \"{group} {verb}\""),
                HELP,
            ))
        }
    };
    write_stdout(out.as_bytes())
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `cairn tls ca create` in `dir`; returns what to print.
pub fn ca_create(dir: &Path, args: &[String], now: u64, serial: u64) -> Result<String, CliError> {
    let flags = super::parse_flags(CA_HELP, CA_SPECS, false, args)?;
    super::no_args(&flags, CA_HELP)?;
    let days = days(&flags, 1825, CA_HELP)?;
    let domain = flags.str("domain").unwrap_or("consul");
    let (cert_name, key_name) = pki::ca_files(domain);
    for name in [&cert_name, &key_name] {
        if dir.join(name).exists() {
            return Err(CliError::failed(format!(
                "==> CA file {name} already exists"
            )));
        }
    }
    let ca = pki::create_ca(&CaSpec {
        now_unix: now,
        days,
        serial,
    })
    .map_err(CliError::ctx("==> Error generating the CA"))?;
    write_new(&dir.join(&cert_name), &ca.cert, 0o644)?;
    write_new(&dir.join(&key_name), &ca.key, 0o600)?;
    Ok(format!("==> Saved {cert_name}\n==> Saved {key_name}\n"))
}

/// `cairn tls cert create` in `dir`; returns what to print.
pub fn cert_create(dir: &Path, args: &[String], now: u64, serial: u64) -> Result<String, CliError> {
    let flags = super::parse_flags(CERT_HELP, CERT_SPECS, false, args)?;
    super::no_args(&flags, CERT_HELP)?;
    let roles: Vec<Role> = [
        ("server", Role::Server),
        ("client", Role::Client),
        ("cli", Role::Cli),
    ]
    .into_iter()
    .filter(|(f, _)| flags.bool(f))
    .map(|(_, r)| r)
    .collect();
    let [role] = roles[..] else {
        return Err(CliError::usage(
            "error: give exactly one of -server, -client or -cli",
            CERT_HELP,
        ));
    };
    let days = days(&flags, 365, CERT_HELP)?;
    let dc = flags.str("dc").unwrap_or("dc1");
    let domain = flags.str("domain").unwrap_or("consul");
    for (what, v) in [("-dc", dc), ("-domain", domain)] {
        if v.is_empty()
            || !v
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            return Err(CliError::usage(
                format!("error: invalid {what} {v:?}: letters, digits, '-' and '.' only"),
                CERT_HELP,
            ));
        }
    }
    let mut ips = Vec::new();
    for s in flags.all("additional-ipaddress") {
        let ip: IpAddr = s
            .parse()
            .map_err(|_| CliError::usage(format!("error: invalid IP address {s:?}"), CERT_HELP))?;
        ips.push(ip);
    }
    let mut dns_names = Vec::new();
    if let Some(node) = flags.str("node") {
        if role != Role::Server {
            return Err(CliError::usage(
                "error: -node goes with -server only",
                CERT_HELP,
            ));
        }
        dns_names.push(format!("{node}.server.{dc}.{domain}"));
    }
    dns_names.extend(flags.all("additional-dnsname").iter().cloned());
    let (default_ca, default_key) = pki::ca_files(domain);
    let ca_path = dir.join(flags.str("ca").unwrap_or(&default_ca));
    let key_path = dir.join(flags.str("key").unwrap_or(&default_key));
    let ca = Pem {
        cert: read_pem(&ca_path)?,
        key: read_pem(&key_path)?,
    };
    let spec = CertSpec {
        role,
        dc: dc.to_string(),
        domain: domain.to_string(),
        dns_names,
        ips,
        now_unix: now,
        days,
        serial,
    };
    let cert = pki::create_cert(&spec, &ca)
        .map_err(CliError::ctx("==> Error generating the certificate"))?;
    let prefix = pki::cert_prefix(role, dc, domain);
    let (cert_name, key_name) =
        pki::next_free(&prefix, |f| dir.join(f).exists()).ok_or_else(|| {
            CliError::failed("==> Could not find a file name that does not exist already")
        })?;
    write_new(&dir.join(&cert_name), &cert.cert, 0o644)?;
    write_new(&dir.join(&key_name), &cert.key, 0o600)?;
    let mut out = String::new();
    if role == Role::Server {
        out.push_str(SERVER_WARNING);
    }
    out.push_str(&format!(
        "==> Using {} and {}\n==> Saved {cert_name}\n==> Saved {key_name}\n",
        ca_path.display(),
        key_path.display()
    ));
    Ok(out)
}

fn days(flags: &crate::flags::Flags, default: u32, help: &str) -> Result<u32, CliError> {
    let d = super::flag_value(flags.u64("days"), help)?.unwrap_or(u64::from(default));
    if d == 0 || d > 100 * 365 {
        return Err(CliError::usage(
            format!("error: -days must be between 1 and {}", 100 * 365),
            help,
        ));
    }
    Ok(d as u32)
}

/// Reads a PEM file of at most [`MAX_PEM`] bytes.
fn read_pem(path: &Path) -> Result<String, CliError> {
    let fail = |e: &dyn std::fmt::Display| {
        CliError::failed(format!("==> Error reading {}: {e}", path.display()))
    };
    let meta = std::fs::metadata(path).map_err(|e| fail(&e))?;
    if meta.len() > MAX_PEM {
        return Err(fail(&format!("larger than {MAX_PEM} bytes")));
    }
    std::fs::read_to_string(path).map_err(|e| fail(&e))
}

/// Creates `path` (which must not exist) with `mode` and writes `text` to it.
fn write_new(path: &Path, text: &str, mode: u32) -> Result<(), CliError> {
    use std::os::unix::fs::OpenOptionsExt;
    let fail =
        |e: std::io::Error| CliError::failed(format!("==> Error writing {}: {e}", path.display()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(fail)?;
    f.write_all(text.as_bytes()).map_err(fail)?;
    f.sync_all().map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut n: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        n.sort();
        n
    }

    #[test]
    fn ca_then_numbered_certs() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let out = ca_create(d, &[], 1_790_000_000, 1).unwrap();
        assert!(out.contains("Saved consul-agent-ca.pem"), "{out}");
        assert!(
            matches!(ca_create(d, &[], 1, 2), Err(CliError::Failed(m)) if m.contains("already exists"))
        );
        let out = cert_create(d, &v(&["-server"]), 1_790_000_000, 3).unwrap();
        assert!(
            out.contains("WARNING") && out.contains("dc1-server-consul-0.pem"),
            "{out}"
        );
        cert_create(d, &v(&["-server"]), 1_790_000_000, 4).unwrap();
        cert_create(d, &v(&["-client", "-dc", "east"]), 1_790_000_000, 5).unwrap();
        cert_create(d, &v(&["-cli"]), 1_790_000_000, 6).unwrap();
        assert_eq!(
            names(d),
            [
                "consul-agent-ca-key.pem",
                "consul-agent-ca.pem",
                "dc1-cli-consul-0-key.pem",
                "dc1-cli-consul-0.pem",
                "dc1-server-consul-0-key.pem",
                "dc1-server-consul-0.pem",
                "dc1-server-consul-1-key.pem",
                "dc1-server-consul-1.pem",
                "east-client-consul-0-key.pem",
                "east-client-consul-0.pem",
            ]
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(d.join("dc1-server-consul-0-key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn node_adds_its_server_name() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        ca_create(d, &[], 1_790_000_000, 1).unwrap();
        cert_create(d, &v(&["-server", "-node", "n1"]), 1_790_000_000, 2).unwrap();
        let pem = std::fs::read(d.join("dc1-server-consul-0.pem")).unwrap();
        let (_, p) = x509_parser::pem::parse_x509_pem(&pem).unwrap();
        let cert = p.parse_x509().unwrap();
        let san = cert.subject_alternative_name().unwrap().unwrap();
        let names: Vec<String> = san
            .value
            .general_names
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert!(
            names.iter().any(|n| n.contains("n1.server.dc1.consul")),
            "{names:?}"
        );
    }

    #[test]
    fn cert_flag_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        for args in [
            &[][..],
            &["-server", "-client"][..],
            &["-server", "-additional-ipaddress", "nope"][..],
            &["-server", "-dc", "a b"][..],
            &["-server", "-days", "0"][..],
            &["-client", "-node", "n1"][..],
        ] {
            assert!(
                matches!(cert_create(d, &v(args), 1, 1), Err(CliError::Usage { .. })),
                "{args:?}"
            );
        }
        // No CA yet: the error names the missing file.
        assert!(matches!(
            cert_create(d, &v(&["-server"]), 1, 1),
            Err(CliError::Failed(m)) if m.contains("consul-agent-ca.pem")
        ));
    }
}
