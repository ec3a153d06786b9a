//! The `tls { }` block, as Consul's (1.12+): `defaults` applies to every interface unless
//! `https` or `internal_rpc` overrides a key. This module reads and checks it into a
//! [`TlsConfig`] with the defaults already folded in; loading the files into rustls
//! configurations is the agent's `tls` module.
//!
//! Combinations that would run with less security than written are errors naming the key:
//! verifying without a CA, a certificate without its key, HTTPS without a certificate.

use std::path::PathBuf;

use super::source::Schema;
use super::{bad, ConfigError, Reader};

use Schema::{Leaf, Obj};

/// The keys of one `tls` interface block (`defaults`, `https`, `internal_rpc`).
const FILE_AND_VERIFY_KEYS: &[(&str, Schema)] = &[
    ("ca_file", Leaf),
    ("cert_file", Leaf),
    ("key_file", Leaf),
    ("verify_incoming", Leaf),
    ("verify_outgoing", Leaf),
];

/// The shape of `tls { }` for the configuration schema.
pub(crate) const SCHEMA: Schema = Obj(&[
    ("defaults", Obj(FILE_AND_VERIFY_KEYS)),
    (
        "https",
        Obj(&[
            ("ca_file", Leaf),
            ("cert_file", Leaf),
            ("key_file", Leaf),
            ("verify_incoming", Leaf),
        ]),
    ),
    (
        "internal_rpc",
        Obj(&[
            ("ca_file", Leaf),
            ("cert_file", Leaf),
            ("key_file", Leaf),
            ("verify_incoming", Leaf),
            ("verify_outgoing", Leaf),
            ("verify_server_hostname", Leaf),
        ]),
    ),
]);

/// Consul's pre-1.12 top-level TLS keys, and where they live now.
pub(crate) const LEGACY_KEYS: &[(&[&str], &[&str])] = &[
    (&["ca_file"], &["tls", "defaults", "ca_file"]),
    (&["cert_file"], &["tls", "defaults", "cert_file"]),
    (&["key_file"], &["tls", "defaults", "key_file"]),
    (
        &["verify_incoming"],
        &["tls", "defaults", "verify_incoming"],
    ),
    (
        &["verify_outgoing"],
        &["tls", "defaults", "verify_outgoing"],
    ),
    (
        &["verify_incoming_rpc"],
        &["tls", "internal_rpc", "verify_incoming"],
    ),
    (
        &["verify_incoming_https"],
        &["tls", "https", "verify_incoming"],
    ),
    (
        &["verify_server_hostname"],
        &["tls", "internal_rpc", "verify_server_hostname"],
    ),
];

/// The files of one interface.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsFiles {
    /// PEM CA certificate(s) that peers' certificates must chain to.
    pub ca_file: Option<PathBuf>,
    /// PEM certificate (chain) this agent presents.
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`.
    pub key_file: Option<PathBuf>,
}

impl TlsFiles {
    /// Whether a certificate and its key are configured.
    pub fn has_cert(&self) -> bool {
        self.cert_file.is_some() && self.key_file.is_some()
    }
}

/// One interface's settings, with `tls.defaults` folded in.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsInterface {
    /// Files.
    pub files: TlsFiles,
    /// Incoming connections must use TLS and present a certificate signed by the CA.
    pub verify_incoming: bool,
    /// Outgoing connections use TLS and check the peer's certificate against the CA.
    pub verify_outgoing: bool,
}

/// `tls { }`, resolved.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsConfig {
    /// The HTTPS listener (`ports.https`).
    pub https: TlsInterface,
    /// The server RPC port, for both its ends.
    pub internal_rpc: TlsInterface,
    /// Outgoing RPC requires the server's certificate to name `server.<dc>.<domain>`
    /// (implies `verify_outgoing`).
    pub verify_server_hostname: bool,
}

impl TlsConfig {
    /// Whether anything TLS is configured at all.
    pub fn is_configured(&self) -> bool {
        *self != TlsConfig::default()
    }
}

impl super::Config {
    /// The HTTPS listener address (`addresses.https` or `client_addr`, with `ports.https`);
    /// `None` when HTTPS is disabled.
    pub fn https_addr(&self) -> Option<std::net::SocketAddr> {
        super::listen(&self.addresses.https, &self.client_addrs, self.ports.https)
            .into_iter()
            .next()
    }
}

/// Reads `tls { }` from the merged configuration. `https_enabled` and `server` decide
/// which certificates are required.
pub(crate) fn read(
    r: &Reader,
    https_enabled: bool,
    server: bool,
) -> Result<TlsConfig, ConfigError> {
    for key in ["tls", "tls.defaults", "tls.https", "tls.internal_rpc"] {
        if let Some(v) = r.get(key) {
            if !v.is_object() {
                return Err(bad(key, format!("expected an object, got {v}")));
            }
        }
    }
    let https = interface(r, "https")?;
    let mut internal_rpc = interface(r, "internal_rpc")?;
    let verify_server_hostname = r.bool("tls.internal_rpc.verify_server_hostname", false)?;
    // As Consul: checking the server's name means checking its certificate.
    internal_rpc.verify_outgoing |= verify_server_hostname;

    for (name, i) in [("https", &https), ("internal_rpc", &internal_rpc)] {
        let f = &i.files;
        if f.cert_file.is_some() != f.key_file.is_some() {
            return Err(bad(
                &format!("tls.{name}.cert_file"),
                "cert_file and key_file go together: set both (here or in tls.defaults) or neither",
            ));
        }
        for (what, on) in [
            ("verify_incoming", i.verify_incoming),
            ("verify_outgoing", i.verify_outgoing),
        ] {
            if on && f.ca_file.is_none() {
                return Err(bad(
                    &format!("tls.{name}.{what}"),
                    format!(
                        "needs a CA to verify against: set tls.{name}.ca_file or tls.defaults.ca_file"
                    ),
                ));
            }
        }
    }
    if https_enabled && !https.files.has_cert() {
        return Err(bad(
            "ports.https",
            "HTTPS needs a certificate: set tls.https (or tls.defaults) cert_file and key_file",
        ));
    }
    if server && internal_rpc.verify_incoming && !internal_rpc.files.has_cert() {
        return Err(bad(
            "tls.internal_rpc.verify_incoming",
            "a server that verifies incoming RPC must present a certificate: set cert_file and key_file",
        ));
    }
    Ok(TlsConfig {
        https,
        internal_rpc,
        verify_server_hostname,
    })
}

/// One interface block with `tls.defaults` under it.
fn interface(r: &Reader, name: &str) -> Result<TlsInterface, ConfigError> {
    let path = |key: &str| -> Result<Option<PathBuf>, ConfigError> {
        let own = format!("tls.{name}.{key}");
        let value = match r.string(&own)? {
            Some(v) => Some(v),
            None => r.string(&format!("tls.defaults.{key}"))?,
        };
        Ok(value.filter(|v| !v.is_empty()).map(PathBuf::from))
    };
    let flag = |key: &str| -> Result<bool, ConfigError> {
        let own = format!("tls.{name}.{key}");
        match r.get(&own) {
            Some(_) => r.bool(&own, false),
            None => r.bool(&format!("tls.defaults.{key}"), false),
        }
    };
    Ok(TlsInterface {
        files: TlsFiles {
            ca_file: path("ca_file")?,
            cert_file: path("cert_file")?,
            key_file: path("key_file")?,
        },
        verify_incoming: flag("verify_incoming")?,
        // HTTPS has no outgoing side.
        verify_outgoing: name != "https" && flag("verify_outgoing")?,
    })
}

#[cfg(test)]
mod tests {
    use super::super::load;
    use super::*;

    fn cfg(hcl: &str, extra: &[&str]) -> Result<super::super::Config, ConfigError> {
        let mut args: Vec<String> = vec!["-dev".into(), "-hcl".into(), hcl.into()];
        args.extend(extra.iter().map(|s| s.to_string()));
        load(&args)
    }

    #[test]
    fn defaults_fold_into_each_interface() {
        let c = cfg(
            r#"tls {
                defaults {
                    ca_file = "/ca.pem"
                    cert_file = "/c.pem"
                    key_file = "/k.pem"
                    verify_incoming = true
                }
                https {
                    verify_incoming = false
                }
                internal_rpc {
                    verify_server_hostname = true
                }
            }"#,
            &["-https-port", "8501"],
        )
        .unwrap();
        c.check_supported().unwrap();
        assert!(!c.tls.https.verify_incoming);
        assert_eq!(c.tls.https.files.cert_file, Some(PathBuf::from("/c.pem")));
        assert!(c.tls.internal_rpc.verify_incoming);
        assert!(
            c.tls.internal_rpc.verify_outgoing,
            "implied by verify_server_hostname"
        );
        assert!(c.tls.verify_server_hostname);
        assert_eq!(c.ports.https, super::super::Port::Fixed(8501));
    }

    #[test]
    fn legacy_top_level_keys_still_work() {
        let c = cfg(
            r#"ca_file = "/ca.pem"
               verify_outgoing = true
               verify_server_hostname = true"#,
            &[],
        )
        .unwrap();
        assert!(c.tls.internal_rpc.verify_outgoing && c.tls.verify_server_hostname);
        assert_eq!(
            c.tls.internal_rpc.files.ca_file,
            Some(PathBuf::from("/ca.pem"))
        );
    }

    #[test]
    fn weaker_than_written_is_an_error_naming_the_key() {
        for (hcl, extra, key) in [
            (
                "tls {\n defaults {\n verify_incoming = true\n }\n}",
                &[][..],
                "tls.https.verify_incoming",
            ),
            (
                "tls {\n internal_rpc {\n verify_outgoing = true\n }\n}",
                &[][..],
                "tls.internal_rpc.verify_outgoing",
            ),
            (
                "tls {\n defaults {\n cert_file = \"/c.pem\"\n }\n}",
                &[][..],
                "cert_file",
            ),
            (
                "tls {\n defaults {\n ca_file = \"/ca.pem\"\n }\n}",
                &["-https-port", "8501"][..],
                "ports.https",
            ),
            (
                "tls {\n internal_rpc {\n ca_file = \"/ca.pem\"\n verify_incoming = true\n }\n}",
                &[][..],
                "tls.internal_rpc.verify_incoming",
            ),
            ("tls = 3", &[][..], "tls"),
        ] {
            let e = cfg(hcl, extra).unwrap_err().to_string();
            assert!(e.contains(key), "{hcl}: {e}");
        }
        let e = cfg("tls {\n grpc {\n verify_incoming = true\n }\n}", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("tls.grpc"), "{e}");
    }
}
