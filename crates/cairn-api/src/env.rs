//! The Consul CLI's environment turned into a [`Client`], with Consul's precedence:
//! `CONSUL_HTTP_ADDR` (after Cairn's own `CAIRN_HTTP_ADDR`), `CONSUL_HTTP_SSL`, the token
//! (`CAIRN_HTTP_TOKEN`, `CONSUL_HTTP_TOKEN`, and `CONSUL_HTTP_TOKEN_FILE`, which wins when
//! set, as in Consul's Go client), the CA (`CONSUL_CACERT`, else every file under
//! `CONSUL_CAPATH`), the client certificate (`CONSUL_CLIENT_CERT` with
//! `CONSUL_CLIENT_KEY`), `CONSUL_TLS_SERVER_NAME` and `CONSUL_HTTP_SSL_VERIFY`. Files are read within size limits,
//! and only regular files: a device or a FIFO named by mistake is an error, not a hang.

use std::path::Path;

use crate::client::{Client, TlsOptions, DEFAULT_HTTP_ADDR};
use crate::error::ApiError;

/// A CA, certificate or token file larger than this is refused.
const MAX_FILE_BYTES: u64 = 1 << 20;
/// `CONSUL_CAPATH` is read down to this many entries (files and directories) and levels,
/// and this many bytes in all.
const MAX_CA_PATH_ENTRIES: usize = 1024;
const MAX_CA_PATH_DEPTH: usize = 8;
const MAX_CA_PATH_BYTES: usize = 16 << 20;

impl Client {
    /// A client configured from the environment (see the module docs): address from
    /// `CAIRN_HTTP_ADDR`, then `CONSUL_HTTP_ADDR`, then [`DEFAULT_HTTP_ADDR`]. Empty
    /// variables count as unset.
    pub fn from_env() -> Result<Self, ApiError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Like [`Client::from_env`], reading variables through `lookup` (for tests and for
    /// callers layering flags over the environment).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ApiError> {
        let get = |k: &str| lookup(k).filter(|v| !v.trim().is_empty());
        let mut addr = get("CAIRN_HTTP_ADDR")
            .or_else(|| get("CONSUL_HTTP_ADDR"))
            .unwrap_or_else(|| DEFAULT_HTTP_ADDR.to_string());
        let mut token = get("CAIRN_HTTP_TOKEN").or_else(|| get("CONSUL_HTTP_TOKEN"));
        if let Some(path) = get("CONSUL_HTTP_TOKEN_FILE") {
            let bytes = cairn_fs::read_regular(Path::new(&path), MAX_FILE_BYTES)
                .map_err(|e| ApiError::TokenFile(e.to_string()))?;
            let text = String::from_utf8(bytes)
                .map_err(|_| ApiError::TokenFile(format!("{path}: not UTF-8 text")))?;
            if !text.trim().is_empty() {
                token = Some(text.trim().to_string());
            }
        }
        let flag = |k: &str| -> Result<Option<bool>, ApiError> {
            match get(k) {
                None => Ok(None),
                Some(v) => parse_bool(v.trim())
                    .map(Some)
                    .ok_or_else(|| ApiError::Tls(format!("{k}={v:?} is not a boolean"))),
            }
        };
        if flag("CONSUL_HTTP_SSL")? == Some(true) {
            let bare = addr.trim();
            let bare = bare
                .strip_prefix("http://")
                .or_else(|| bare.strip_prefix("https://"))
                .unwrap_or(bare);
            addr = format!("https://{bare}");
        }
        let read = |k: &str| -> Result<Option<Vec<u8>>, ApiError> {
            get(k)
                .map(|path| read_file(k, Path::new(&path)))
                .transpose()
        };
        let identity_pem = match (read("CONSUL_CLIENT_CERT")?, read("CONSUL_CLIENT_KEY")?) {
            (Some(mut cert), Some(key)) => {
                cert.push(b'\n');
                cert.extend(key);
                Some(cert)
            }
            (None, None) => None,
            _ => {
                return Err(ApiError::Tls(
                    "CONSUL_CLIENT_CERT and CONSUL_CLIENT_KEY go together: set both or neither"
                        .into(),
                ))
            }
        };
        let ca_pem = match read("CONSUL_CACERT")? {
            Some(pem) => Some(pem),
            None => get("CONSUL_CAPATH")
                .map(|dir| read_ca_dir(Path::new(&dir)))
                .transpose()?,
        };
        let tls = TlsOptions {
            ca_pem,
            identity_pem,
            skip_verify: flag("CONSUL_HTTP_SSL_VERIFY")? == Some(false),
            server_name: get("CONSUL_TLS_SERVER_NAME"),
        };
        Ok(Self::with_tls(&addr, &tls)?.with_token(token))
    }
}

/// Go's `strconv.ParseBool`, as Consul reads its boolean variables.
fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// The file named by the variable `var`: a regular file within [`MAX_FILE_BYTES`].
fn read_file(var: &str, path: &Path) -> Result<Vec<u8>, ApiError> {
    cairn_fs::read_regular(path, MAX_FILE_BYTES).map_err(|e| ApiError::Tls(format!("{var}: {e}")))
}

/// The CA files under `dir` (subdirectories included, in name order), each of which
/// must hold a certificate, concatenated.
fn read_ca_dir(dir: &Path) -> Result<Vec<u8>, ApiError> {
    let fail = |e: &dyn std::fmt::Display| ApiError::Tls(format!("CONSUL_CAPATH: {e}"));
    let files =
        cairn_fs::files_under(dir, MAX_CA_PATH_ENTRIES, MAX_CA_PATH_DEPTH).map_err(|e| fail(&e))?;
    if files.is_empty() {
        return Err(fail(&format!("{}: no CA files found", dir.display())));
    }
    let mut pem = Vec::new();
    for f in files {
        let bytes = read_file("CONSUL_CAPATH", &f)?;
        if reqwest::Certificate::from_pem_bundle(&bytes).map_or(true, |c| c.is_empty()) {
            return Err(fail(&format!("{}: holds no PEM certificate", f.display())));
        }
        pem.extend(bytes);
        pem.push(b'\n');
        if pem.len() > MAX_CA_PATH_BYTES {
            return Err(fail(&format!(
                "{}: more than {MAX_CA_PATH_BYTES} bytes of CA files",
                dir.display()
            )));
        }
    }
    Ok(pem)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A CA certificate made once by `cairn tls ca create` (its key was not kept).
    const TEST_CA: &str = "\
-----BEGIN CERTIFICATE-----\n\
MIIBszCCAVigAwIBAgIIbCqqznEWm7QwCgYIKoZIzj0EAwIwPTErMCkGA1UEAwwi\n\
Q2Fpcm4gQWdlbnQgQ0EgNzc5NDIyOTkwODc1NTM1NjU5NjEOMAwGA1UECgwFQ2Fp\n\
cm4wHhcNMjYxMjAxMDQzNzMyWhcNMzExMTMwMDQzODMyWjA9MSswKQYDVQQDDCJD\n\
YWlybiBBZ2VudCBDQSA3Nzk0MjI5OTA4NzU1MzU2NTk2MQ4wDAYDVQQKDAVDYWly\n\
bjBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABDFvwStg14eL9PfPvpsPzPY3DZAk\n\
2UmBPA380JroKj31Sh6a9H8DMCMV7h8k8lukyQpQ3+CkuZvMfvov5TzuB6OjQjBA\n\
MA4GA1UdDwEB/wQEAwIBhjAdBgNVHQ4EFgQU57WSWmO2DcR0XR3tzsgVuWOHKiAw\n\
DwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNJADBGAiEAx8lRNjFIvhtO1t7O\n\
Q74qfekOyXjFrtXp+hymFY9/udECIQCycLnFkq18SvcAFyToCPTCNtGIFqQuLqS2\n\
m+SQ+KxFBQ==\n\
-----END CERTIFICATE-----\n";

    /// A lookup answering from `pairs`.
    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    #[test]
    fn env_precedence() {
        let c = Client::from_lookup(env(&[])).unwrap();
        assert_eq!(c.base(), "http://127.0.0.1:8500");
        assert_eq!(c.token(), None);
        let c = Client::from_lookup(env(&[
            ("CONSUL_HTTP_ADDR", "consul:1"),
            ("CAIRN_HTTP_ADDR", "cairn:2"),
            ("CONSUL_HTTP_TOKEN", "t1"),
        ]))
        .unwrap();
        assert_eq!(c.base(), "http://cairn:2");
        assert_eq!(c.token(), Some("t1"));
        let c = Client::from_lookup(env(&[
            ("CAIRN_HTTP_ADDR", ""),
            ("CONSUL_HTTP_ADDR", "https://consul:1"),
            ("CAIRN_HTTP_TOKEN", "t2"),
            ("CONSUL_HTTP_TOKEN", "t1"),
        ]))
        .unwrap();
        assert_eq!(c.base(), "https://consul:1");
        assert_eq!(c.token(), Some("t2"));
        let c = Client::from_lookup(env(&[
            ("CONSUL_HTTP_ADDR", "127.0.0.1:8501"),
            ("CONSUL_HTTP_SSL", "true"),
        ]))
        .unwrap();
        assert_eq!(c.base(), "https://127.0.0.1:8501");
        let c = Client::from_lookup(env(&[("CONSUL_HTTP_SSL", "false")])).unwrap();
        assert_eq!(c.base(), "http://127.0.0.1:8500");
    }

    #[test]
    fn tls_environment_errors_name_the_variable() {
        for (pairs, needle) in [
            (&[("CONSUL_HTTP_SSL", "maybe")][..], "CONSUL_HTTP_SSL"),
            (
                &[("CONSUL_CACERT", "/nonexistent/ca.pem")][..],
                "CONSUL_CACERT",
            ),
            (
                &[("CONSUL_CLIENT_CERT", "/nonexistent/c.pem")][..],
                "CONSUL_CLIENT_CERT",
            ),
        ] {
            let e = Client::from_lookup(env(pairs)).unwrap_err().to_string();
            assert!(e.contains(needle), "{e}");
        }
        let tls = TlsOptions {
            ca_pem: Some(b"not pem".to_vec()),
            ..TlsOptions::default()
        };
        assert!(matches!(
            Client::with_tls("https://h:1", &tls),
            Err(ApiError::Tls(_))
        ));
    }

    #[test]
    fn a_token_file_wins_and_capath_is_read_when_cacert_is_not_set() {
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name).display().to_string();
        let (token, empty, cas, ca) = (path("token"), path("empty"), path("cas"), path("ca.pem"));
        std::fs::write(&token, "  from-file\n").unwrap();
        std::fs::write(&empty, "\n").unwrap();
        let c = Client::from_lookup(env(&[
            ("CONSUL_HTTP_TOKEN", "from-env"),
            ("CONSUL_HTTP_TOKEN_FILE", &token),
        ]))
        .unwrap();
        assert_eq!(c.token(), Some("from-file"));
        let c = Client::from_lookup(env(&[
            ("CONSUL_HTTP_TOKEN", "from-env"),
            ("CONSUL_HTTP_TOKEN_FILE", &empty),
        ]))
        .unwrap();
        assert_eq!(
            c.token(),
            Some("from-env"),
            "an empty file leaves the token"
        );
        // A missing token file is named as such.
        let e = Client::from_lookup(env(&[("CONSUL_HTTP_TOKEN_FILE", "/nonexistent/token")]))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("Error loading token file"), "{e}");

        // CONSUL_CAPATH: a file with no certificate in it is refused by name.
        std::fs::create_dir_all(dir.path().join("cas/sub")).unwrap();
        std::fs::write(dir.path().join("cas/sub/junk.pem"), "no certificate here").unwrap();
        let e = Client::from_lookup(env(&[
            ("CONSUL_HTTP_ADDR", "https://h:1"),
            ("CONSUL_CAPATH", &cas),
        ]))
        .unwrap_err()
        .to_string();
        assert!(e.contains("CONSUL_CAPATH") && e.contains("junk.pem"), "{e}");
        // CONSUL_CACERT, when set, is used and CONSUL_CAPATH is not read.
        std::fs::write(&ca, TEST_CA).unwrap();
        Client::from_lookup(env(&[
            ("CONSUL_HTTP_ADDR", "https://h:1"),
            ("CONSUL_CACERT", &ca),
            ("CONSUL_CAPATH", &cas),
        ]))
        .unwrap();
        // A directory or a device named as a file is refused unread.
        for bad in [path(""), "/dev/zero".to_string()] {
            let e = Client::from_lookup(env(&[("CONSUL_CACERT", &bad)]))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("CONSUL_CACERT") && e.contains("regular file"),
                "{bad}: {e}"
            );
        }
    }
}
