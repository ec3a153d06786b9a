//! The agent's TLS: the `tls { }` configuration turned into rustls configurations for the
//! HTTPS listener and both ends of the server RPC port, and swapped for new ones on
//! `cairn reload` (the listeners keep running; new connections use the new certificates).
//!
//! What each setting means here, as in Consul:
//! - HTTPS presents `tls.https` cert_file/key_file; with `verify_incoming` a client must
//!   present a certificate signed by the CA.
//! - A server's RPC port takes TLS when it has a certificate; with `verify_incoming` it
//!   takes only TLS with a client certificate signed by the CA, otherwise plain text too.
//! - Outgoing RPC uses TLS with `verify_outgoing`, checking the server's certificate against
//!   the CA, and with `verify_server_hostname` that it names `server.<dc>.<domain>`; the
//!   agent's own certificate, if it has one, is presented.
//!
//! - `tls_min_version`, `tls_cipher_suites` and the server's suite order: `suites`.
//! - `ca_path` (a directory of CAs) is read when `ca_file` is not set, as in Consul.
//!
//! Only ring is used as the crypto provider.

mod pem;
mod suites;
mod verify;

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use cairn_rpc::tcp::tls::{shared, Incoming, Shared, TlsAcceptor, TlsConnector};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::ServerName;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, ServerConfig};
use tokio::net::TcpStream;

use crate::config::{Config, TlsFiles, TlsInterface};
pub use pem::{TlsError, MAX_PEM_BYTES};

/// The rustls configurations one configuration asks for (`None`: that side runs without
/// TLS).
struct Built {
    https: Option<Arc<ServerConfig>>,
    rpc_server: Option<Arc<ServerConfig>>,
    rpc_client: Option<Arc<ClientConfig>>,
}

impl Built {
    fn shape(&self) -> [bool; 3] {
        [
            self.https.is_some(),
            self.rpc_server.is_some(),
            self.rpc_client.is_some(),
        ]
    }
}

/// The agent's TLS state: the current configurations, replaceable by [`Tls::reload`].
pub struct Tls {
    https: Option<Shared<ServerConfig>>,
    rpc_server: Option<Shared<ServerConfig>>,
    rpc_client: Option<Shared<ClientConfig>>,
    rpc_incoming: Incoming,
    server_name: ServerName<'static>,
    shape: [bool; 3],
}

impl Tls {
    /// Loads every file `cfg` names. Errors name the file and the problem.
    pub fn load(cfg: &Config) -> Result<Tls, TlsError> {
        let built = build(cfg)?;
        let shape = built.shape();
        Ok(Tls {
            https: built.https.map(shared),
            rpc_server: built.rpc_server.map(shared),
            rpc_client: built.rpc_client.map(shared),
            rpc_incoming: if cfg.tls.internal_rpc.verify_incoming {
                Incoming::TlsOnly
            } else {
                Incoming::TlsOrPlain
            },
            server_name: server_name(cfg)?,
            shape,
        })
    }

    /// Reads the files again and swaps in the new configurations, all or nothing: on any
    /// error the current ones stay. Turning TLS on or off for a listener or for outgoing
    /// RPC needs a restart (the listeners were started without it) and is an error here.
    pub fn reload(&self, cfg: &Config) -> Result<(), TlsError> {
        let built = build(cfg)?;
        if built.shape() != self.shape {
            return Err(TlsError::Config(
                "turning TLS on or off for HTTPS or server RPC needs a restart; certificates were not reloaded".into(),
            ));
        }
        for (slot, new) in [
            (&self.https, built.https),
            (&self.rpc_server, built.rpc_server),
        ] {
            if let (Some(slot), Some(new)) = (slot, new) {
                *slot.write() = new;
            }
        }
        if let (Some(slot), Some(new)) = (&self.rpc_client, built.rpc_client) {
            *slot.write() = new;
        }
        Ok(())
    }

    /// The HTTPS listener's handshake, when HTTPS is configured.
    pub fn https_handshake(&self) -> Option<Arc<dyn cairn_http::Handshake>> {
        let config = self.https.clone()?;
        Some(Arc::new(HttpsHandshake { config }))
    }

    /// The server RPC port's acceptor, when the server has a certificate.
    pub fn rpc_acceptor(&self) -> Option<TlsAcceptor> {
        let config = self.rpc_server.clone()?;
        Some(TlsAcceptor::new(config, self.rpc_incoming))
    }

    /// The outgoing RPC connector, with `verify_outgoing`.
    pub fn rpc_connector(&self) -> Option<TlsConnector> {
        let config = self.rpc_client.clone()?;
        Some(TlsConnector::new(config, self.server_name.clone()))
    }
}

/// `server.<dc>.<domain>`: the name a server's certificate carries.
fn server_name(cfg: &Config) -> Result<ServerName<'static>, TlsError> {
    let name = format!(
        "server.{}.{}",
        cfg.datacenter,
        cfg.domain.trim_end_matches('.')
    );
    ServerName::try_from(name.clone())
        .map_err(|e| TlsError::Config(format!("{name:?} is not a valid server name: {e}")))
}

fn build(cfg: &Config) -> Result<Built, TlsError> {
    let tls = &cfg.tls;
    let https = if cfg.ports.https.is_enabled() {
        Some(server_config("https", &tls.https)?)
    } else {
        None
    };
    let rpc_server = if cfg.server && tls.internal_rpc.files.has_cert() {
        Some(server_config("internal_rpc", &tls.internal_rpc)?)
    } else {
        None
    };
    let rpc_client = if tls.internal_rpc.verify_outgoing {
        Some(client_config(
            &tls.internal_rpc,
            tls.verify_server_hostname,
        )?)
    } else {
        None
    };
    Ok(Built {
        https,
        rpc_server,
        rpc_client,
    })
}

/// The certificate chain and key of `files` (both set).
fn identity(
    files: &TlsFiles,
) -> Result<
    (
        Vec<rustls::pki_types::CertificateDer<'static>>,
        rustls::pki_types::PrivateKeyDer<'static>,
    ),
    TlsError,
> {
    let (Some(cert), Some(key)) = (&files.cert_file, &files.key_file) else {
        return Err(TlsError::Config(
            "cert_file and key_file must both be set".into(),
        ));
    };
    Ok((pem::certificates(cert)?, pem::private_key(key)?))
}

fn pair_error(files: &TlsFiles, e: rustls::Error) -> TlsError {
    TlsError::Pair {
        cert: files.cert_file.clone().unwrap_or_default(),
        key: files.key_file.clone().unwrap_or_default(),
        reason: e.to_string(),
    }
}

/// The CA of `files` as trust roots (`ca_file`, else every file under `ca_path`) and the
/// path to name in errors; `None` when neither is set.
fn ca_roots(
    files: &TlsFiles,
) -> Result<Option<(Arc<rustls::RootCertStore>, std::path::PathBuf)>, TlsError> {
    Ok(match (&files.ca_file, &files.ca_path) {
        (Some(file), _) => Some((Arc::new(pem::roots(file)?), file.clone())),
        (None, Some(dir)) => Some((Arc::new(pem::roots_in(dir)?), dir.clone())),
        (None, None) => None,
    })
}

/// The server side of interface `name` (`https`, `internal_rpc`).
fn server_config(name: &str, i: &TlsInterface) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = suites::provider(i);
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(suites::versions(i))
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = match ca_roots(&i.files)? {
        Some((roots, path)) if i.verify_incoming => {
            let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider.clone())
                .build()
                .map_err(|e| TlsError::BadCa {
                    path,
                    reason: e.to_string(),
                })?;
            builder.with_client_cert_verifier(verifier)
        }
        _ => builder.with_no_client_auth(),
    };
    let (chain, key) = identity(&i.files)?;
    // Loaded once: the key's type for the check below, and the pair rustls serves (the
    // same checks as `with_single_cert`, a key that does not match the certificate too).
    let certified = rustls::sign::CertifiedKey::from_der(chain, key, &provider)
        .map_err(|e| pair_error(&i.files, e))?;
    if let Some(why) = suites::unusable_with_key(&provider, certified.key.algorithm()) {
        tracing::warn!(interface = name, "{why}");
    }
    let mut config =
        builder.with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(certified)));
    // The server's suite order decides, as a Go server's does.
    config.ignore_client_order = true;
    Ok(Arc::new(config))
}

fn client_config(i: &TlsInterface, check_name: bool) -> Result<Arc<ClientConfig>, TlsError> {
    let Some((roots, path)) = ca_roots(&i.files)? else {
        return Err(TlsError::Config(
            "verify_outgoing needs ca_file or ca_path".into(),
        ));
    };
    let provider = suites::provider(i);
    let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
        .build()
        .map_err(|e| TlsError::BadCa {
            path,
            reason: e.to_string(),
        })?;
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(suites::versions(i))
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = if check_name {
        builder.with_webpki_verifier(webpki)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verify::ChainOnly { inner: webpki }))
    };
    let config = if i.files.has_cert() {
        let (chain, key) = identity(&i.files)?;
        builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| pair_error(&i.files, e))?
    } else {
        builder.with_no_client_auth()
    };
    Ok(Arc::new(config))
}

/// The HTTPS side of the HTTP listener.
struct HttpsHandshake {
    config: Shared<ServerConfig>,
}

impl cairn_http::Handshake for HttpsHandshake {
    fn handshake(
        &self,
        peer: SocketAddr,
        stream: TcpStream,
    ) -> Pin<Box<dyn std::future::Future<Output = io::Result<cairn_http::BoxStream>> + Send>> {
        let config = self.config.read().clone();
        Box::pin(async move {
            let tls = tokio_rustls::TlsAcceptor::from(config)
                .accept(stream)
                .await
                .map_err(|e| io::Error::new(e.kind(), format!("TLS handshake with {peer}: {e}")))?;
            Ok(Box::new(tls) as cairn_http::BoxStream)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Writes a CA (`ca.pem`), and a certificate for `server.dc1.consul` signed by it
    /// (`a.pem`/`a-key.pem`) and one signed by another CA (`b.pem`/`b-key.pem`), to `dir`.
    fn files(dir: &Path) {
        let ca_params = || {
            let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
            p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            p
        };
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let ca_cert = ca_params().self_signed(&ca_key).unwrap();
        std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
        let ca = rcgen::Issuer::new(ca_params(), ca_key);
        let other_key = rcgen::KeyPair::generate().unwrap();
        let other_cert = ca_params().self_signed(&other_key).unwrap();
        std::fs::write(dir.join("other-ca.pem"), other_cert.pem()).unwrap();
        let other = rcgen::Issuer::new(ca_params(), other_key);
        for (name, issuer) in [("a", &ca), ("b", &other)] {
            let key = rcgen::KeyPair::generate().unwrap();
            let cert = rcgen::CertificateParams::new(vec!["server.dc1.consul".to_string()])
                .unwrap()
                .signed_by(&key, issuer)
                .unwrap();
            std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
            std::fs::write(dir.join(format!("{name}-key.pem")), key.serialize_pem()).unwrap();
        }
    }

    fn config(dir: &Path, cert: &str, key: &str, https: bool) -> Config {
        let p = |n: &str| dir.join(n).display().to_string();
        let hcl = format!(
            "tls {{\n defaults {{\n ca_file = \"{}\"\n cert_file = \"{}\"\n key_file = \"{}\"\n verify_incoming = true\n verify_outgoing = true\n }}\n}}",
            p("ca.pem"),
            p(cert),
            p(key)
        );
        let port = if https { "0" } else { "-1" };
        let args: Vec<String> = ["-dev", "-https-port", port, "-hcl", &hcl]
            .iter()
            .map(|s| s.to_string())
            .collect();
        crate::config::load(&args).unwrap()
    }

    #[test]
    fn loads_every_side_and_reloads_all_or_nothing() {
        let dir = tempfile::tempdir().unwrap();
        files(dir.path());
        let tls = Tls::load(&config(dir.path(), "a.pem", "a-key.pem", true)).unwrap();
        assert!(tls.https_handshake().is_some());
        assert!(tls.rpc_acceptor().is_some());
        assert!(tls.rpc_connector().is_some());
        tls.reload(&config(dir.path(), "b.pem", "b-key.pem", true))
            .unwrap();

        // A key that is not the certificate's: both files are named, nothing changes.
        let e = tls
            .reload(&config(dir.path(), "a.pem", "b-key.pem", true))
            .unwrap_err()
            .to_string();
        assert!(e.contains("a.pem") && e.contains("b-key.pem"), "{e}");

        // HTTPS cannot be turned off by a reload.
        let e = tls
            .reload(&config(dir.path(), "a.pem", "a-key.pem", false))
            .unwrap_err()
            .to_string();
        assert!(e.contains("restart"), "{e}");
    }

    /// The server's side of `tls.https` from `hcl`, presenting `a.pem` (files of [`files`]
    /// in `dir`).
    fn https_server(dir: &Path, hcl: &str) -> Arc<ServerConfig> {
        https_server_as(dir, "a", hcl)
    }

    /// [`https_server`] presenting `<cert>.pem`.
    fn https_server_as(dir: &Path, cert: &str, hcl: &str) -> Arc<ServerConfig> {
        let p = |n: &str| dir.join(n).display().to_string();
        let hcl = format!(
            "tls {{\n https {{\n cert_file = \"{}\"\n key_file = \"{}\"\n {hcl}\n }}\n}}",
            p(&format!("{cert}.pem")),
            p(&format!("{cert}-key.pem")),
        );
        let args: Vec<String> = ["-dev", "-https-port", "0", "-hcl", &hcl]
            .iter()
            .map(|s| s.to_string())
            .collect();
        build(&crate::config::load(&args).unwrap())
            .unwrap()
            .https
            .unwrap()
    }

    /// A client trusting `ca.pem` that offers `suites` in that order over `versions`.
    fn client(
        dir: &Path,
        suites: &[rustls::SupportedCipherSuite],
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> ClientConfig {
        let provider = rustls::crypto::CryptoProvider {
            cipher_suites: suites.to_vec(),
            ..rustls::crypto::ring::default_provider()
        };
        ClientConfig::builder_with_provider(Arc::new(provider))
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(pem::roots(&dir.join("ca.pem")).unwrap())
            .with_no_client_auth()
    }

    /// Runs a handshake in memory: the version and suite agreed, or the first error.
    fn handshake(
        server: Arc<ServerConfig>,
        client: ClientConfig,
    ) -> Result<(rustls::ProtocolVersion, rustls::CipherSuite), rustls::Error> {
        let name = ServerName::try_from("server.dc1.consul").unwrap();
        let mut c = rustls::ClientConnection::new(Arc::new(client), name).unwrap();
        let mut s = rustls::ServerConnection::new(server).unwrap();
        for _ in 0..20 {
            let mut wire = Vec::new();
            while c.wants_write() {
                c.write_tls(&mut wire).unwrap();
            }
            s.read_tls(&mut wire.as_slice()).unwrap();
            s.process_new_packets()?;
            let mut wire = Vec::new();
            while s.wants_write() {
                s.write_tls(&mut wire).unwrap();
            }
            c.read_tls(&mut wire.as_slice()).unwrap();
            c.process_new_packets()?;
            if !c.is_handshaking() && !s.is_handshaking() {
                let suite = s.negotiated_cipher_suite().unwrap().suite();
                return Ok((s.protocol_version().unwrap(), suite));
            }
        }
        panic!("the handshake did not finish");
    }

    #[test]
    fn versions_and_suites_follow_the_configuration_and_the_server_order() {
        use rustls::crypto::ring::cipher_suite::*;
        use rustls::version::{TLS12, TLS13};
        use rustls::{CipherSuite, ProtocolVersion};
        let dir = tempfile::tempdir().unwrap();
        files(dir.path());
        let d = dir.path();

        // A client preferring AES-256 gets AES-128: the server's order, as Go's.
        let both = [TLS13_AES_256_GCM_SHA384, TLS13_AES_128_GCM_SHA256];
        assert_eq!(
            handshake(https_server(d, ""), client(d, &both, &[&TLS13])).unwrap(),
            (
                ProtocolVersion::TLSv1_3,
                CipherSuite::TLS13_AES_128_GCM_SHA256
            )
        );
        // TLS 1.2 by default; not with a TLS 1.3 minimum.
        let ecdsa12 = [
            TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        ];
        assert_eq!(
            handshake(https_server(d, ""), client(d, &ecdsa12, &[&TLS12]))
                .unwrap()
                .0,
            ProtocolVersion::TLSv1_2
        );
        let only13 = https_server(d, "tls_min_version = \"TLSv1_3\"");
        assert!(handshake(only13, client(d, &ecdsa12, &[&TLS12])).is_err());

        // A configured TLS 1.2 list is all that is offered.
        let aes256 = https_server(
            d,
            "tls_cipher_suites = \"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384\"",
        );
        assert_eq!(
            handshake(aes256.clone(), client(d, &ecdsa12, &[&TLS12]))
                .unwrap()
                .1,
            CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
        );
        let aes128 = [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256];
        assert!(handshake(aes256, client(d, &aes128, &[&TLS12])).is_err());
    }

    /// The RPC client honours `tls_min_version` too: a TLS 1.2-only server is refused.
    #[test]
    fn the_rpc_client_keeps_to_its_minimum_version() {
        use crate::config::TlsVersion;
        let dir = tempfile::tempdir().unwrap();
        files(dir.path());
        let d = dir.path();
        let (chain, key) = identity(&TlsFiles {
            cert_file: Some(d.join("a.pem")),
            key_file: Some(d.join("a-key.pem")),
            ..TlsFiles::default()
        })
        .unwrap();
        let tls12_only = Arc::new(
            ServerConfig::builder_with_protocol_versions(&[&rustls::version::TLS12])
                .with_no_client_auth()
                .with_single_cert(chain, key)
                .unwrap(),
        );
        let interface = |min_version| TlsInterface {
            files: TlsFiles {
                ca_file: Some(d.join("ca.pem")),
                ..TlsFiles::default()
            },
            verify_outgoing: true,
            min_version,
            ..TlsInterface::default()
        };
        let rpc_client = |min| Arc::unwrap_or_clone(client_config(&interface(min), true).unwrap());
        assert!(handshake(tls12_only.clone(), rpc_client(TlsVersion::Tls12)).is_ok());
        assert!(handshake(tls12_only, rpc_client(TlsVersion::Tls13)).is_err());
    }

    #[test]
    fn ca_path_trusts_every_ca_in_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        files(dir.path());
        let d = dir.path();
        let cas = d.join("cas");
        std::fs::create_dir_all(cas.join("nested")).unwrap();
        std::fs::copy(d.join("other-ca.pem"), cas.join("1-other.pem")).unwrap();

        // The server's certificate is signed by ca.pem, which the directory lacks.
        let interface = |ca_path: &Path| TlsInterface {
            files: TlsFiles {
                ca_path: Some(ca_path.to_path_buf()),
                ..TlsFiles::default()
            },
            verify_outgoing: true,
            ..TlsInterface::default()
        };
        let rpc_client = |ca_path: &Path| {
            Arc::unwrap_or_clone(client_config(&interface(ca_path), true).unwrap())
        };
        let server = https_server(d, "");
        assert!(handshake(server.clone(), rpc_client(&cas)).is_err());
        // b.pem is signed by the CA the directory holds.
        assert!(handshake(https_server_as(d, "b", ""), rpc_client(&cas)).is_ok());
        std::fs::copy(d.join("ca.pem"), cas.join("nested/2-ca.pem")).unwrap();
        assert!(handshake(server, rpc_client(&cas)).is_ok());

        // A file that is not a certificate, or an empty directory, is named.
        std::fs::write(cas.join("README"), "not a certificate").unwrap();
        let e = client_config(&interface(&cas), true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("README"), "{e}");
        let empty = d.join("empty");
        std::fs::create_dir(&empty).unwrap();
        let e = client_config(&interface(&empty), true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("empty"), "{e}");
    }

    #[test]
    fn no_tls_configured_means_plain_everywhere() {
        let cfg = crate::config::load(&["-dev".to_string()]).unwrap();
        let tls = Tls::load(&cfg).unwrap();
        assert!(tls.https_handshake().is_none());
        assert!(tls.rpc_acceptor().is_none());
        assert!(tls.rpc_connector().is_none());
        tls.reload(&cfg).unwrap();
    }
}
