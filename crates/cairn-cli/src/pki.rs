//! The certificate authority and agent certificates behind `cairn tls`: what goes into
//! each certificate (names, key usages, validity) and the file names they are saved under,
//! as Consul's `consul tls` makes them, so the files can be swapped between the two.
//!
//! Everything here is computed from its inputs (the time, the serial number, the names);
//! only the key pairs come from the operating system's randomness (through ring). Reading
//! and writing files is the command's job (`cmd/tls.rs`).

use std::net::IpAddr;
use std::time::Duration;

use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};

/// Certificates are valid from one minute before they are made, so a peer whose clock
/// is slightly behind still accepts them (as Consul does).
const BACKDATE: Duration = Duration::from_secs(60);

/// Why a certificate could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("invalid DNS name {0:?}")]
    DnsName(String),
    #[error("the CA certificate could not be parsed: {0}")]
    CaCert(rcgen::Error),
    #[error("the CA key could not be parsed: {0}")]
    CaKey(rcgen::Error),
    #[error("the CA key does not belong to the CA certificate")]
    KeyMismatch,
    #[error("{0}")]
    Rcgen(#[from] rcgen::Error),
}

/// A certificate and its private key, both PEM.
#[derive(Debug, Clone)]
pub struct Pem {
    pub cert: String,
    pub key: String,
}

/// The role a certificate is for, which decides its name and extended key usages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A server: `server.<dc>.<domain>`, TLS server and client.
    Server,
    /// A client agent: `client.<dc>.<domain>`, TLS server and client.
    Client,
    /// The command line: `cli.<dc>.<domain>`, TLS client only.
    Cli,
}

impl Role {
    /// The word in the certificate's name and file name.
    pub fn word(self) -> &'static str {
        match self {
            Role::Server => "server",
            Role::Client => "client",
            Role::Cli => "cli",
        }
    }
}

/// What a certificate authority is made from.
#[derive(Debug, Clone)]
pub struct CaSpec {
    /// Seconds since the Unix epoch.
    pub now_unix: u64,
    pub days: u32,
    pub serial: u64,
}

/// What an agent certificate is made from.
#[derive(Debug, Clone)]
pub struct CertSpec {
    pub role: Role,
    pub dc: String,
    pub domain: String,
    /// Names added to the role's own name and `localhost`.
    pub dns_names: Vec<String>,
    /// Addresses added to `127.0.0.1`.
    pub ips: Vec<IpAddr>,
    pub now_unix: u64,
    pub days: u32,
    pub serial: u64,
}

impl CertSpec {
    /// `server.dc1.consul`: the name a server's certificate must carry for
    /// `verify_server_hostname`.
    pub fn common_name(&self) -> String {
        format!("{}.{}.{}", self.role.word(), self.dc, self.domain)
    }

    /// Every DNS name in the certificate, the common name first, without duplicates.
    pub fn all_dns_names(&self) -> Vec<String> {
        let mut out = vec![self.common_name(), "localhost".to_string()];
        for n in &self.dns_names {
            if !out.contains(n) {
                out.push(n.clone());
            }
        }
        out
    }

    /// Every IP address in the certificate, `127.0.0.1` first.
    pub fn all_ips(&self) -> Vec<IpAddr> {
        let mut out = vec![IpAddr::from([127, 0, 0, 1])];
        for ip in &self.ips {
            if !out.contains(ip) {
                out.push(*ip);
            }
        }
        out
    }
}

/// A new self-signed certificate authority (ECDSA P-256, as Consul's).
pub fn create_ca(spec: &CaSpec) -> Result<Pem, PkiError> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        format!("Cairn Agent CA {}", spec.serial),
    );
    dn.push(DnType::OrganizationName, "Cairn");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.serial_number = Some(serial(spec.serial));
    set_validity(&mut params, spec.now_unix, spec.days);
    let cert = params.self_signed(&key)?;
    Ok(Pem {
        cert: cert.pem(),
        key: key.serialize_pem(),
    })
}

/// A certificate for `spec`, signed by the CA in `ca` (PEM certificate and key).
pub fn create_cert(spec: &CertSpec, ca: &Pem) -> Result<Pem, PkiError> {
    let ca_key = KeyPair::from_pem(&ca.key).map_err(PkiError::CaKey)?;
    check_pair(&ca.cert, &ca_key)?;
    let issuer = Issuer::from_ca_cert_pem(&ca.cert, ca_key).map_err(PkiError::CaCert)?;
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, spec.common_name());
    params.distinguished_name = dn;
    let mut sans = Vec::new();
    for name in spec.all_dns_names() {
        let ia5 = name
            .clone()
            .try_into()
            .map_err(|_| PkiError::DnsName(name.clone()))?;
        sans.push(SanType::DnsName(ia5));
    }
    sans.extend(spec.all_ips().into_iter().map(SanType::IpAddress));
    params.subject_alt_names = sans;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
        KeyUsagePurpose::KeyAgreement,
    ];
    params.extended_key_usages = match spec.role {
        Role::Server | Role::Client => vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ],
        Role::Cli => vec![ExtendedKeyUsagePurpose::ClientAuth],
    };
    params.use_authority_key_identifier_extension = true;
    params.serial_number = Some(serial(spec.serial));
    set_validity(&mut params, spec.now_unix, spec.days);
    let cert = params.signed_by(&key, &issuer)?;
    Ok(Pem {
        cert: cert.pem(),
        key: key.serialize_pem(),
    })
}

/// Refuses a CA key that is not the CA certificate's: certificates signed with it would
/// not chain to that CA.
fn check_pair(ca_cert: &str, key: &KeyPair) -> Result<(), PkiError> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(ca_cert.as_bytes())
        .map_err(|_| PkiError::CaCert(rcgen::Error::CouldNotParseCertificate))?;
    let cert = pem
        .parse_x509()
        .map_err(|_| PkiError::CaCert(rcgen::Error::CouldNotParseCertificate))?;
    if cert.public_key().subject_public_key.data.as_ref() == key.public_key_raw() {
        Ok(())
    } else {
        Err(PkiError::KeyMismatch)
    }
}

fn serial(n: u64) -> SerialNumber {
    // A leading zero byte keeps the DER integer positive whatever the top bit.
    let mut bytes = vec![0u8];
    bytes.extend_from_slice(&n.to_be_bytes());
    SerialNumber::from_slice(&bytes)
}

/// Sets the validity window: from [`BACKDATE`] before `now_unix` for `days` days.
fn set_validity(params: &mut CertificateParams, now_unix: u64, days: u32) {
    let epoch = date_time_ymd(1970, 1, 1);
    let now = Duration::from_secs(now_unix);
    params.not_before = epoch + now.saturating_sub(BACKDATE);
    params.not_after = epoch + now + Duration::from_secs(u64::from(days) * 86_400);
}

/// The first free pair of file names `<prefix>-<n>.pem` / `<prefix>-<n>-key.pem`, counting
/// from 0 as Consul does; `exists` says whether a file name is taken.
pub fn next_free(prefix: &str, exists: impl Fn(&str) -> bool) -> Option<(String, String)> {
    (0..=10_000u32).find_map(|i| {
        let cert = format!("{prefix}-{i}.pem");
        let key = format!("{prefix}-{i}-key.pem");
        (!exists(&cert) && !exists(&key)).then_some((cert, key))
    })
}

/// `dc1-server-consul`: the file-name prefix of a certificate.
pub fn cert_prefix(role: Role, dc: &str, domain: &str) -> String {
    format!("{dc}-{}-{domain}", role.word())
}

/// `consul-agent-ca.pem` and `consul-agent-ca-key.pem` for domain `consul`.
pub fn ca_files(domain: &str) -> (String, String) {
    (
        format!("{domain}-agent-ca.pem"),
        format!("{domain}-agent-ca-key.pem"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::extensions::GeneralName;

    const NOW: u64 = 1_790_000_000;

    fn ca() -> Pem {
        create_ca(&CaSpec {
            now_unix: NOW,
            days: 1825,
            serial: 7,
        })
        .unwrap()
    }

    fn spec(role: Role) -> CertSpec {
        CertSpec {
            role,
            dc: "dc1".into(),
            domain: "consul".into(),
            dns_names: vec!["extra.example".into(), "localhost".into()],
            ips: vec!["10.0.0.9".parse().unwrap()],
            now_unix: NOW,
            days: 365,
            serial: 9,
        }
    }

    /// (DNS names, IPs, is CA, not_before, not_after) of a PEM certificate; checks its
    /// signature against `issuer` (its own key when None).
    fn inspect(pem: &str, issuer: Option<&str>) -> (Vec<String>, Vec<String>, bool, i64, i64) {
        let (_, p) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
        let cert = p.parse_x509().unwrap();
        let issuer_pem = issuer.map(|i| x509_parser::pem::parse_x509_pem(i.as_bytes()).unwrap().1);
        let issuer_cert = issuer_pem.as_ref().map(|p| p.parse_x509().unwrap());
        cert.verify_signature(issuer_cert.as_ref().map(|c| c.public_key()))
            .expect("signature verifies");
        let (mut dns, mut ips) = (Vec::new(), Vec::new());
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for n in &san.value.general_names {
                match n {
                    GeneralName::DNSName(d) => dns.push(d.to_string()),
                    GeneralName::IPAddress(b) if b.len() == 4 => {
                        ips.push(IpAddr::from(<[u8; 4]>::try_from(*b).unwrap()).to_string())
                    }
                    _ => {}
                }
            }
        }
        let v = cert.validity();
        (
            dns,
            ips,
            cert.is_ca(),
            v.not_before.timestamp(),
            v.not_after.timestamp(),
        )
    }

    #[test]
    fn ca_is_self_signed_and_valid_for_its_days() {
        let ca = ca();
        let (_, _, is_ca, nb, na) = inspect(&ca.cert, None);
        assert!(is_ca);
        assert_eq!(nb, NOW as i64 - 60);
        assert_eq!(na, NOW as i64 + 1825 * 86_400);
        assert!(ca.key.contains("PRIVATE KEY"));
    }

    #[test]
    fn server_cert_names_and_chain() {
        let ca = ca();
        let c = create_cert(&spec(Role::Server), &ca).unwrap();
        let (dns, ips, is_ca, _, na) = inspect(&c.cert, Some(&ca.cert));
        assert_eq!(dns, ["server.dc1.consul", "localhost", "extra.example"]);
        assert_eq!(ips, ["127.0.0.1", "10.0.0.9"]);
        assert!(!is_ca);
        assert_eq!(na, NOW as i64 + 365 * 86_400);
    }

    #[test]
    fn client_and_cli_names() {
        let ca = ca();
        let c = create_cert(&spec(Role::Client), &ca).unwrap();
        assert_eq!(inspect(&c.cert, Some(&ca.cert)).0[0], "client.dc1.consul");
        let c = create_cert(&spec(Role::Cli), &ca).unwrap();
        assert_eq!(inspect(&c.cert, Some(&ca.cert)).0[0], "cli.dc1.consul");
    }

    #[test]
    fn refuses_a_key_of_another_ca_and_garbage() {
        let (a, b) = (ca(), ca());
        let mixed = Pem {
            cert: a.cert.clone(),
            key: b.key.clone(),
        };
        assert!(matches!(
            create_cert(&spec(Role::Server), &mixed),
            Err(PkiError::KeyMismatch)
        ));
        let garbage = Pem {
            cert: "not a certificate".into(),
            key: a.key.clone(),
        };
        assert!(matches!(
            create_cert(&spec(Role::Server), &garbage),
            Err(PkiError::CaCert(_))
        ));
        let garbage = Pem {
            cert: a.cert.clone(),
            key: "nope".into(),
        };
        assert!(matches!(
            create_cert(&spec(Role::Server), &garbage),
            Err(PkiError::CaKey(_))
        ));
    }

    #[test]
    fn bad_dns_name_is_an_error() {
        let mut s = spec(Role::Server);
        s.dns_names = vec!["bad name é".into()];
        assert!(matches!(create_cert(&s, &ca()), Err(PkiError::DnsName(_))));
    }

    #[test]
    fn file_names_as_consul() {
        assert_eq!(
            ca_files("consul"),
            (
                "consul-agent-ca.pem".into(),
                "consul-agent-ca-key.pem".into()
            )
        );
        let prefix = cert_prefix(Role::Server, "dc1", "consul");
        assert_eq!(prefix, "dc1-server-consul");
        let taken = ["dc1-server-consul-0.pem", "dc1-server-consul-1-key.pem"];
        assert_eq!(
            next_free(&prefix, |f| taken.contains(&f)),
            Some((
                "dc1-server-consul-2.pem".into(),
                "dc1-server-consul-2-key.pem".into()
            ))
        );
        assert_eq!(next_free(&prefix, |_| true), None);
    }
}
