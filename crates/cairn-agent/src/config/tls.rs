//! The `tls { }` block, as Consul's (1.12+): `defaults` applies to every interface unless
//! `https` or `internal_rpc` overrides a key. This module reads and checks it into a
//! [`TlsConfig`] with the defaults already folded in; loading the files into rustls
//! configurations is the agent's `tls` module.
//!
//! Combinations that would run with less security than written are errors naming the key:
//! verifying without a CA, a certificate without its key, HTTPS without a certificate.
//!
//! `tls_min_version` and `tls_cipher_suites` are checked here against Consul's names;
//! which rustls suites they select, and in what order, is the agent's `tls::suites`.

use std::path::PathBuf;

use super::source::Schema;
use super::{bad, ConfigError, Reader};

use Schema::{Leaf, Obj};

/// The keys of one `tls` interface block (`defaults`, `internal_rpc`).
const INTERFACE_KEYS: &[(&str, Schema)] = &[
    ("ca_file", Leaf),
    ("ca_path", Leaf),
    ("cert_file", Leaf),
    ("key_file", Leaf),
    ("tls_min_version", Leaf),
    ("tls_cipher_suites", Leaf),
    ("verify_incoming", Leaf),
    ("verify_outgoing", Leaf),
];

/// The shape of `tls { }` for the configuration schema.
pub(crate) const SCHEMA: Schema = Obj(&[
    ("defaults", Obj(INTERFACE_KEYS)),
    // HTTPS has no outgoing side here (Consul's `verify_outgoing` there is for watches).
    (
        "https",
        Obj(&[
            ("ca_file", Leaf),
            ("ca_path", Leaf),
            ("cert_file", Leaf),
            ("key_file", Leaf),
            ("tls_min_version", Leaf),
            ("tls_cipher_suites", Leaf),
            ("verify_incoming", Leaf),
        ]),
    ),
    (
        "internal_rpc",
        Obj(&[
            ("ca_file", Leaf),
            ("ca_path", Leaf),
            ("cert_file", Leaf),
            ("key_file", Leaf),
            ("tls_min_version", Leaf),
            ("tls_cipher_suites", Leaf),
            ("verify_incoming", Leaf),
            ("verify_outgoing", Leaf),
            ("verify_server_hostname", Leaf),
        ]),
    ),
]);

/// Consul's pre-1.12 top-level TLS keys, and where they live now.
pub(crate) const LEGACY_KEYS: &[(&[&str], &[&str])] = &[
    (&["ca_file"], &["tls", "defaults", "ca_file"]),
    (&["ca_path"], &["tls", "defaults", "ca_path"]),
    (
        &["tls_min_version"],
        &["tls", "defaults", "tls_min_version"],
    ),
    (
        &["tls_cipher_suites"],
        &["tls", "defaults", "tls_cipher_suites"],
    ),
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

/// The lowest TLS version an interface accepts (`tls_min_version`). rustls speaks TLS 1.2
/// and 1.3 only, so Consul's `TLSv1_0` and `TLSv1_1` floors are met by TLS 1.2 (with a
/// warning at start-up).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord)]
pub enum TlsVersion {
    /// TLS 1.2 and 1.3 (Consul's default, `TLSv1_2`).
    #[default]
    Tls12,
    /// TLS 1.3 only.
    Tls13,
}

/// Consul's agent TLS 1.2 cipher suites (IANA names), and whether Cairn offers each. The
/// CBC suites are Consul's but not rustls's: a list naming them is accepted (with a
/// warning) as long as one suite it names is offered.
pub const TLS12_CIPHER_SUITES: &[(&str, bool)] = &[
    ("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", true),
    ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", true),
    ("TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", true),
    ("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", true),
    ("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", true),
    ("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", true),
    ("TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", false),
    ("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", false),
    ("TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", false),
    ("TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", false),
];

/// The files of one interface.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsFiles {
    /// PEM CA certificate(s) that peers' certificates must chain to.
    pub ca_file: Option<PathBuf>,
    /// A directory of PEM CA files, used when `ca_file` is not set (as Consul).
    pub ca_path: Option<PathBuf>,
    /// PEM certificate (chain) this agent presents.
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`.
    pub key_file: Option<PathBuf>,
}

impl TlsFiles {
    /// Whether a CA is configured (`ca_file` or `ca_path`).
    pub fn has_ca(&self) -> bool {
        self.ca_file.is_some() || self.ca_path.is_some()
    }

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
    /// The lowest version accepted, both ways.
    pub min_version: TlsVersion,
    /// TLS 1.2 suites by IANA name, only those offered (see [`TLS12_CIPHER_SUITES`],
    /// whose order the server keeps); empty: all of them. TLS 1.3 suites are not
    /// configurable, as in Consul.
    pub cipher_suites: Vec<String>,
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
    warnings: &mut Vec<String>,
) -> Result<TlsConfig, ConfigError> {
    for key in ["tls", "tls.defaults", "tls.https", "tls.internal_rpc"] {
        if let Some(v) = r.get(key) {
            if !v.is_object() {
                return Err(bad(key, format!("expected an object, got {v}")));
            }
        }
    }
    let https = interface(r, "https", warnings)?;
    let mut internal_rpc = interface(r, "internal_rpc", warnings)?;
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
            if on && !f.has_ca() {
                return Err(bad(
                    &format!("tls.{name}.{what}"),
                    format!(
                        "needs a CA to verify against: set ca_file or ca_path in tls.{name} or tls.defaults"
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
fn interface(
    r: &Reader,
    name: &str,
    warnings: &mut Vec<String>,
) -> Result<TlsInterface, ConfigError> {
    // The key that applies: the interface's own, else the default's.
    let key = |key: &str| {
        let own = format!("tls.{name}.{key}");
        if r.get(&own).is_some() {
            own
        } else {
            format!("tls.defaults.{key}")
        }
    };
    let path = |k: &str| -> Result<Option<PathBuf>, ConfigError> {
        Ok(r.string(&key(k))?
            .filter(|v| !v.is_empty())
            .map(PathBuf::from))
    };
    let min_key = key("tls_min_version");
    let min_version = match r.string(&min_key)? {
        None => TlsVersion::default(),
        Some(v) => min_version(&min_key, &v, warnings)?,
    };
    let suites_key = key("tls_cipher_suites");
    // Empty, as unset: the default suites (as Consul).
    let cipher_suites = match r.string(&suites_key)? {
        Some(list) if !list.trim().is_empty() => cipher_suites(&suites_key, &list, warnings)?,
        _ => Vec::new(),
    };
    if min_version == TlsVersion::Tls13 && !cipher_suites.is_empty() {
        return Err(bad(
            &suites_key,
            format!(
                "cipher suites apply to TLS 1.2 only, and {min_key} is TLSv1_3: remove one of them"
            ),
        ));
    }
    Ok(TlsInterface {
        files: TlsFiles {
            ca_file: path("ca_file")?,
            ca_path: path("ca_path")?,
            cert_file: path("cert_file")?,
            key_file: path("key_file")?,
        },
        verify_incoming: r.bool(&key("verify_incoming"), false)?,
        // HTTPS has no outgoing side.
        verify_outgoing: name != "https" && r.bool(&key("verify_outgoing"), false)?,
        min_version,
        cipher_suites,
    })
}

/// `tls_min_version`: Consul's `TLSv1_x` names, `TLS_AUTO`, and the deprecated `tls1x`.
fn min_version(
    key: &str,
    value: &str,
    warnings: &mut Vec<String>,
) -> Result<TlsVersion, ConfigError> {
    match value {
        "TLSv1_2" | "tls12" | "TLS_AUTO" | "" => Ok(TlsVersion::Tls12),
        "TLSv1_3" | "tls13" => Ok(TlsVersion::Tls13),
        "TLSv1_0" | "TLSv1_1" | "tls10" | "tls11" => {
            warnings.push(format!(
                "{key} = {value:?}: TLS 1.0 and 1.1 are not offered; connections use TLS 1.2 or 1.3"
            ));
            Ok(TlsVersion::Tls12)
        }
        _ => Err(bad(
            key,
            format!("{value:?} is not a TLS version: use TLSv1_2 or TLSv1_3 (or TLSv1_0, TLSv1_1)"),
        )),
    }
}

/// `tls_cipher_suites`: a comma-separated list of Consul's names. Unknown names are errors;
/// known ones Cairn does not offer (CBC) are dropped with a warning, and a list left empty
/// is an error rather than a silent fall back to the defaults.
fn cipher_suites(
    key: &str,
    list: &str,
    warnings: &mut Vec<String>,
) -> Result<Vec<String>, ConfigError> {
    let mut chosen: Vec<String> = Vec::new();
    let mut dropped = Vec::new();
    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match TLS12_CIPHER_SUITES.iter().find(|(n, _)| *n == name) {
            Some((_, true)) if !chosen.iter().any(|c| c == name) => chosen.push(name.to_string()),
            Some((_, true)) => {}
            Some((_, false)) => dropped.push(name),
            None => {
                let known: Vec<&str> = TLS12_CIPHER_SUITES.iter().map(|(n, _)| *n).collect();
                return Err(bad(
                    key,
                    format!("unknown cipher suite {name:?}; known: {}", known.join(", ")),
                ));
            }
        }
    }
    if chosen.is_empty() {
        return Err(bad(
            key,
            "names no cipher suite Cairn offers (AES-GCM or ChaCha20-Poly1305 with ECDHE)",
        ));
    }
    if !dropped.is_empty() {
        warnings.push(format!(
            "{key}: {} not offered (CBC suites are not built); using {}",
            dropped.join(", "),
            chosen.join(", ")
        ));
    }
    Ok(chosen)
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
    fn versions_suites_and_ca_path_fold_like_the_files() {
        let c = cfg(
            r#"tls {
                defaults {
                    ca_path = "/cas"
                    tls_min_version = "TLSv1_3"
                    verify_outgoing = true
                }
                https {
                    tls_min_version = "TLSv1_2"
                    tls_cipher_suites = "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"
                }
            }"#,
            &[],
        )
        .unwrap();
        assert_eq!(c.tls.internal_rpc.min_version, TlsVersion::Tls13);
        assert!(c.tls.internal_rpc.cipher_suites.is_empty());
        assert_eq!(
            c.tls.internal_rpc.files.ca_path,
            Some(PathBuf::from("/cas"))
        );
        assert_eq!(c.tls.https.min_version, TlsVersion::Tls12);
        assert_eq!(
            c.tls.https.cipher_suites,
            [
                "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
                "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"
            ]
        );
        // The CBC suite is Consul's but not offered: dropped, and said so.
        assert!(
            c.warnings
                .iter()
                .any(|w| w.contains("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA")),
            "{:?}",
            c.warnings
        );

        // The pre-1.12 spellings at the top level.
        let c = cfg(
            r#"tls_min_version = "tls13"
               tls_prefer_server_cipher_suites = true
               ca_path = "/cas""#,
            &[],
        )
        .unwrap();
        assert_eq!(c.tls.https.min_version, TlsVersion::Tls13);
        assert_eq!(c.tls.internal_rpc.min_version, TlsVersion::Tls13);
        assert_eq!(c.tls.https.files.ca_path, Some(PathBuf::from("/cas")));
        let c = cfg(
            r#"tls_cipher_suites = "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256""#,
            &[],
        )
        .unwrap();
        assert_eq!(c.tls.internal_rpc.cipher_suites.len(), 1);
        // TLS 1.0 is taken as TLS 1.2, with a warning; an empty list as the defaults.
        let c = cfg(
            r#"tls {
                defaults {
                    tls_min_version = "TLSv1_0"
                    tls_cipher_suites = ""
                }
            }"#,
            &[],
        )
        .unwrap();
        assert_eq!(c.tls.https.min_version, TlsVersion::Tls12);
        assert!(c.tls.https.cipher_suites.is_empty());
        assert!(
            c.warnings.iter().any(|w| w.contains("TLS 1.0")),
            "{:?}",
            c.warnings
        );
    }

    #[test]
    fn bad_versions_and_suites_are_errors_naming_the_key() {
        for (hcl, key, needle) in [
            (
                "tls {\n defaults {\n tls_min_version = \"TLSv9\"\n }\n}",
                "tls.defaults.tls_min_version",
                "TLSv1_3",
            ),
            (
                "tls {\n https {\n tls_cipher_suites = \"TLS_RSA_WITH_RC4_128_SHA\"\n }\n}",
                "tls.https.tls_cipher_suites",
                "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
            ),
            (
                "tls {\n https {\n tls_cipher_suites = \"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA\"\n }\n}",
                "tls.https.tls_cipher_suites",
                "no cipher suite",
            ),
            (
                "tls {\n defaults {\n tls_min_version = \"TLSv1_3\"\n tls_cipher_suites = \"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\"\n }\n}",
                "tls.defaults.tls_cipher_suites",
                "TLS 1.2 only",
            ),
        ] {
            let e = cfg(hcl, &[]).unwrap_err().to_string();
            assert!(e.contains(key) && e.contains(needle), "{hcl}: {e}");
        }
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
