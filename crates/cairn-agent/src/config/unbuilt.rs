//! Consul settings Cairn recognises but has not built yet, and why each refuses to start.
//!
//! Two kinds: keys whose mere presence asks for something missing (an `auto_encrypt` block
//! asks for certificate distribution), refused while the sources are read ([`reason_for_key`]);
//! and keys that parse and are harmless at their default but not at other values
//! (`ports.grpc = 8502`), refused once the configuration is built
//! ([`Config::check_supported`]). Security settings are always of one kind or the other:
//! a process that was asked for access control or encryption and runs without it is the
//! worst failure a configuration can have, so it never starts.

use super::{Config, ConfigError, Port};

/// Top-level (or dotted) keys of Consul's that ask for something Cairn lacks, with the
/// reason printed when one is present.
const UNBUILT_KEYS: &[(&str, &str)] = &[
    (
        "auto_encrypt",
        "automatic TLS certificate distribution is not built yet",
    ),
    (
        "auto_config",
        "auto-config (JWT-authorised client configuration) is not built yet",
    ),
    ("connect", "Connect (service mesh) is not built"),
    (
        "acl.tokens.replication",
        "ACL replication across datacenters is not built",
    ),
    (
        "acl.tokens.config_file_service_registration",
        "registering config-file services with their own ACL token is not built yet",
    ),
];

/// Why `key` (dotted path) is refused, when it is a Consul setting Cairn has not built.
pub(super) fn reason_for_key(key: &str) -> Option<&'static str> {
    UNBUILT_KEYS
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, why)| *why)
}

impl Config {
    /// Refuses settings that parsed but ask for a feature Cairn has not built, naming the
    /// key and saying why. Called before anything starts.
    pub fn check_supported(&self) -> Result<(), ConfigError> {
        let refuse = |key: &str, reason: &str| {
            Err(ConfigError::Unsupported {
                source_name: "configuration".to_string(),
                key: key.to_string(),
                reason: reason.to_string(),
            })
        };
        for (key, port) in [
            ("ports.grpc", self.ports.grpc),
            ("ports.grpc_tls", self.ports.grpc_tls),
        ] {
            if port != Port::Disabled {
                return refuse(
                    key,
                    "the gRPC (xDS) interface is not built; set it to -1 or remove it",
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::load;

    fn refused(args: &[&str]) -> String {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        match load(&args) {
            Ok(c) => match c.check_supported() {
                Ok(()) => panic!("{args:?} was accepted"),
                Err(e) => e.to_string(),
            },
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn security_settings_never_run_open() {
        for (args, key) in [
            (
                vec!["-dev", "-hcl", "auto_encrypt {\n tls = true\n}"],
                "auto_encrypt",
            ),
            (vec!["-dev", "-grpc-port", "8502"], "ports.grpc"),
            (
                vec![
                    "-dev",
                    "-hcl",
                    "acl {\n tokens {\n replication = \"x\"\n }\n}",
                ],
                "acl.tokens.replication",
            ),
        ] {
            let e = refused(&args);
            assert!(e.contains(&format!("{key:?}")), "{args:?}: {e}");
            assert!(e.contains("not"), "{args:?}: {e}");
        }
    }

    #[test]
    fn unknown_keys_are_errors_naming_key_and_source() {
        let e = refused(&["-dev", "-hcl", "telemetry {\n statsd_address = \"x\"\n}"]);
        assert!(
            e.contains("\"telemetry\"") && e.contains("-hcl fragment 1"),
            "{e}"
        );
        let e = refused(&["-dev", "-hcl", "ports {\n bogus = 1\n}"]);
        assert!(e.contains("\"ports.bogus\""), "{e}");
    }

    #[test]
    fn defaults_and_disabled_values_are_accepted() {
        for args in [
            vec!["-dev"],
            vec!["-dev", "-https-port", "-1", "-grpc-port", "-1"],
            vec![
                "-dev",
                "-encrypt",
                "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=",
            ],
            vec!["-dev", "-retry-join", "127.0.0.2", "-join", "127.0.0.3"],
            vec!["-node", "c1", "-retry-join", "127.0.0.1"],
            vec![
                "-dev",
                "-hcl",
                "acl {\n enabled = false\n default_policy = \"deny\"\n}",
            ],
            vec![
                "-dev",
                "-hcl",
                "acl {\n enabled = true\n default_policy = \"deny\"\n tokens {\n initial_management = \"x\"\n }\n}",
            ],
            vec!["-dev", "-hcl", "acl_datacenter = \"dc1\""],
        ] {
            let a: Vec<String> = args.iter().map(|s| s.to_string()).collect();
            load(&a).unwrap().check_supported().unwrap();
        }
    }
}
