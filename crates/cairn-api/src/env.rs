//! The Consul CLI's environment turned into a [`Client`], with Consul's precedence:
//! `CONSUL_HTTP_ADDR` (after Cairn's own `CAIRN_HTTP_ADDR`), `CONSUL_HTTP_SSL`, the token
//! (`CAIRN_HTTP_TOKEN`, `CONSUL_HTTP_TOKEN`, and `CONSUL_HTTP_TOKEN_FILE`, which wins when
//! set, as in Consul's Go client), the CA (`CONSUL_CACERT`, else every file under
//! `CONSUL_CAPATH`), the client certificate (`CONSUL_CLIENT_CERT` with
//! `CONSUL_CLIENT_KEY`) and `CONSUL_HTTP_SSL_VERIFY`. Files are read within size limits,
//! and only regular files: a device or a FIFO named by mistake is an error, not a hang.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::client::{Client, TlsOptions, DEFAULT_HTTP_ADDR};
use crate::error::ApiError;

/// A CA, certificate or token file larger than this is refused.
const MAX_FILE_BYTES: u64 = 1 << 20;
/// `CONSUL_CAPATH` is read down to this many entries (files and directories) and levels.
const MAX_CA_PATH_ENTRIES: usize = 1024;
const MAX_CA_PATH_DEPTH: usize = 8;

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
            let bytes = read_file("CONSUL_HTTP_TOKEN_FILE", Path::new(&path))?;
            let text = String::from_utf8(bytes).map_err(|_| {
                ApiError::Tls(format!("CONSUL_HTTP_TOKEN_FILE={path}: not UTF-8 text"))
            })?;
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

/// Reads the regular file (links followed) named by the variable `var`, within
/// [`MAX_FILE_BYTES`].
fn read_file(var: &str, path: &Path) -> Result<Vec<u8>, ApiError> {
    let fail = |e: &dyn std::fmt::Display| ApiError::Tls(format!("{var}={}: {e}", path.display()));
    let meta = std::fs::metadata(path).map_err(|e| fail(&e))?;
    if !meta.is_file() {
        return Err(fail(&"not a regular file"));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| fail(&e))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(fail(&format!("larger than {MAX_FILE_BYTES} bytes")));
    }
    Ok(bytes)
}

/// The PEM files under `dir` (subdirectories included, in name order), concatenated.
fn read_ca_dir(dir: &Path) -> Result<Vec<u8>, ApiError> {
    let mut files = Vec::new();
    let mut seen = 0;
    walk(dir, 0, &mut files, &mut seen)?;
    if files.is_empty() {
        return Err(ApiError::Tls(format!(
            "CONSUL_CAPATH={}: no CA files found",
            dir.display()
        )));
    }
    let mut pem = Vec::new();
    for f in files {
        pem.extend(read_file("CONSUL_CAPATH", &f)?);
        pem.push(b'\n');
    }
    Ok(pem)
}

fn walk(
    dir: &Path,
    depth: usize,
    out: &mut Vec<PathBuf>,
    seen: &mut usize,
) -> Result<(), ApiError> {
    let fail =
        |e: &dyn std::fmt::Display| ApiError::Tls(format!("CONSUL_CAPATH: {}: {e}", dir.display()));
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| fail(&e))? {
        *seen += 1;
        if *seen > MAX_CA_PATH_ENTRIES {
            return Err(fail(&format!("more than {MAX_CA_PATH_ENTRIES} entries")));
        }
        entries.push(entry.map_err(|e| fail(&e))?.path());
    }
    entries.sort();
    for path in entries {
        let is_dir = std::fs::symlink_metadata(&path)
            .map_err(|e| fail(&e))?
            .is_dir();
        if !is_dir {
            out.push(path);
        } else if depth + 1 >= MAX_CA_PATH_DEPTH {
            return Err(fail(&format!(
                "nested deeper than {MAX_CA_PATH_DEPTH} levels"
            )));
        } else {
            walk(&path, depth + 1, out, seen)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_precedence() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
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
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
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
        let token = dir.path().join("token");
        std::fs::write(&token, "  from-file\n").unwrap();
        let token = token.display().to_string();
        let lookup = |pairs: Vec<(&'static str, String)>| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
        };
        let c = Client::from_lookup(lookup(vec![
            ("CONSUL_HTTP_TOKEN", "from-env".into()),
            ("CONSUL_HTTP_TOKEN_FILE", token.clone()),
        ]))
        .unwrap();
        assert_eq!(c.token(), Some("from-file"));
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        let c = Client::from_lookup(lookup(vec![
            ("CONSUL_HTTP_TOKEN", "from-env".into()),
            ("CONSUL_HTTP_TOKEN_FILE", empty.display().to_string()),
        ]))
        .unwrap();
        assert_eq!(
            c.token(),
            Some("from-env"),
            "an empty file leaves the token"
        );

        // CONSUL_CAPATH: a directory with no certificate in it is refused by name; a
        // directory, a device or a missing file as a file variable likewise.
        let cas = dir.path().join("cas");
        std::fs::create_dir_all(cas.join("sub")).unwrap();
        std::fs::write(cas.join("sub/junk.pem"), "no certificate here").unwrap();
        let e = Client::from_lookup(lookup(vec![
            ("CONSUL_HTTP_ADDR", "https://h:1".into()),
            ("CONSUL_CAPATH", cas.display().to_string()),
        ]))
        .unwrap_err()
        .to_string();
        assert!(e.contains("CA"), "{e}");
        for path in [dir.path().display().to_string(), "/dev/zero".to_string()] {
            let e = Client::from_lookup(lookup(vec![("CONSUL_CACERT", path.clone())]))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("CONSUL_CACERT") && e.contains("regular file"),
                "{path}: {e}"
            );
        }
    }
}
