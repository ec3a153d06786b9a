//! Which TLS versions and cipher suites an interface offers, and in what order.
//!
//! Consul's agent is a Go TLS stack, and Cairn makes the same choices with rustls:
//! - TLS 1.3 suites are not configurable; the server picks AES-128-GCM, then AES-256-GCM,
//!   then ChaCha20-Poly1305 (Go's order on processors with AES instructions).
//! - TLS 1.2 suites are the ECDHE AEAD suites, AES-128-GCM first, or those of them
//!   `tls_cipher_suites` names, in that same order: as in Go (and so Consul since 1.11),
//!   the order a list is written in does not matter.
//! - The server's order decides, not the client's (rustls's `ignore_client_order`, set
//!   where the server configuration is built). Unlike Go, a client that lists
//!   ChaCha20-Poly1305 first (one without AES instructions) still gets AES-GCM.
//! - `tls_min_version = "TLSv1_3"` turns TLS 1.2 off, both ways.
//! - A TLS 1.2 suite names the key it signs with (ECDSA or RSA). A list that offers TLS 1.2
//!   only with the other kind of key than the certificate's is accepted, as Go accepts it,
//!   but named in a warning: TLS 1.2 clients could agree on nothing.

use std::sync::Arc;

use rustls::crypto::ring::{cipher_suite, default_provider, ALL_CIPHER_SUITES};
use rustls::crypto::CryptoProvider;
use rustls::{SignatureAlgorithm, SupportedCipherSuite, SupportedProtocolVersion};

use crate::config::{TlsInterface, TlsVersion, TLS12_CIPHER_SUITES};

/// TLS 1.3 suites, in the order a server prefers them.
const TLS13_ORDER: [SupportedCipherSuite; 3] = [
    cipher_suite::TLS13_AES_128_GCM_SHA256,
    cipher_suite::TLS13_AES_256_GCM_SHA384,
    cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
];

/// The ring provider with `i`'s suites, in preference order.
pub(super) fn provider(i: &TlsInterface) -> Arc<CryptoProvider> {
    let mut suites = TLS13_ORDER.to_vec();
    if i.min_version == TlsVersion::Tls12 {
        let chosen =
            |name: &str| i.cipher_suites.is_empty() || i.cipher_suites.iter().any(|c| c == name);
        suites.extend(
            TLS12_CIPHER_SUITES
                .iter()
                .filter(|(name, offered)| *offered && chosen(name))
                .filter_map(|(name, _)| by_name(name)),
        );
    }
    Arc::new(CryptoProvider {
        cipher_suites: suites,
        ..default_provider()
    })
}

static TLS13_ONLY: [&SupportedProtocolVersion; 1] = [&rustls::version::TLS13];

/// The protocol versions `i` allows.
pub(super) fn versions(i: &TlsInterface) -> &'static [&'static SupportedProtocolVersion] {
    match i.min_version {
        TlsVersion::Tls12 => rustls::ALL_VERSIONS,
        TlsVersion::Tls13 => &TLS13_ONLY,
    }
}

/// Why `provider`'s TLS 1.2 suites cannot serve a certificate whose key signs with
/// `key`, when that is so: every TLS 1.2 suite offered needs the other kind of key, so
/// a TLS 1.2 client finds no suite in common (TLS 1.3 suites work with any key).
pub(super) fn unusable_with_key(
    provider: &CryptoProvider,
    key: SignatureAlgorithm,
) -> Option<String> {
    let tls12: Vec<&SupportedCipherSuite> = provider
        .cipher_suites
        .iter()
        .filter(|s| matches!(s, SupportedCipherSuite::Tls12(_)))
        .collect();
    if tls12.is_empty() || tls12.iter().any(|s| s.usable_for_signature_algorithm(key)) {
        return None;
    }
    let names: Vec<&str> = tls12.iter().filter_map(|s| s.suite().as_str()).collect();
    Some(format!(
        "tls_cipher_suites offers TLS 1.2 only with {} but the certificate's key is {key:?}: TLS 1.2 clients will find no cipher suite in common (TLS 1.3 clients are not affected)",
        names.join(", ")
    ))
}

/// The ring suite with this IANA name.
fn by_name(name: &str) -> Option<SupportedCipherSuite> {
    ALL_CIPHER_SUITES
        .iter()
        .find(|s| s.suite().as_str() == Some(name))
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_suite_the_configuration_offers_exists_in_ring() {
        for (name, offered) in TLS12_CIPHER_SUITES {
            assert_eq!(by_name(name).is_some(), *offered, "{name}");
        }
    }

    #[test]
    fn the_default_prefers_aes_128_and_keeps_tls_1_2() {
        let p = provider(&TlsInterface::default());
        let names: Vec<_> = p
            .cipher_suites
            .iter()
            .map(|s| s.suite().as_str().unwrap())
            .collect();
        assert_eq!(names[0], "TLS13_AES_128_GCM_SHA256");
        assert_eq!(names[3], "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256");
        assert_eq!(names.len(), 9);
        assert_eq!(versions(&TlsInterface::default()).len(), 2);
    }

    #[test]
    fn configured_suites_replace_the_tls_1_2_list_in_the_servers_order() {
        let i = TlsInterface {
            cipher_suites: vec![
                "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256".into(),
                "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384".into(),
            ],
            ..TlsInterface::default()
        };
        let names: Vec<_> = provider(&i)
            .cipher_suites
            .iter()
            .skip(3)
            .map(|s| s.suite().as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
                "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"
            ]
        );
    }

    #[test]
    fn tls_1_3_minimum_drops_tls_1_2() {
        let i = TlsInterface {
            min_version: TlsVersion::Tls13,
            ..TlsInterface::default()
        };
        assert_eq!(provider(&i).cipher_suites.len(), 3);
        assert_eq!(versions(&i).len(), 1);
    }

    #[test]
    fn suites_for_the_other_kind_of_key_are_named() {
        let only = |names: &[&str]| {
            provider(&TlsInterface {
                cipher_suites: names.iter().map(|n| n.to_string()).collect(),
                ..TlsInterface::default()
            })
        };
        let ecdsa = only(&["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"]);
        let warning = unusable_with_key(&ecdsa, SignatureAlgorithm::RSA).expect("a warning");
        assert!(
            warning.contains("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256") && warning.contains("RSA"),
            "{warning}"
        );
        assert_eq!(unusable_with_key(&ecdsa, SignatureAlgorithm::ECDSA), None);
        // ECDSA suites sign with Ed25519 keys too.
        assert_eq!(unusable_with_key(&ecdsa, SignatureAlgorithm::ED25519), None);
        let rsa = only(&["TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"]);
        assert!(unusable_with_key(&rsa, SignatureAlgorithm::ECDSA).is_some());
        let both = only(&[
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        ]);
        assert_eq!(unusable_with_key(&both, SignatureAlgorithm::RSA), None);
        let default = provider(&TlsInterface::default());
        assert_eq!(unusable_with_key(&default, SignatureAlgorithm::RSA), None);
        let tls13 = provider(&TlsInterface {
            min_version: TlsVersion::Tls13,
            cipher_suites: vec![],
            ..TlsInterface::default()
        });
        assert_eq!(unusable_with_key(&tls13, SignatureAlgorithm::ED25519), None);
    }
}
