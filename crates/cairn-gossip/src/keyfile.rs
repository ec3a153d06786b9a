//! The keyring kept on disk, so that a restarted agent keeps keys rotated
//! while it ran: Consul's `<data_dir>/serf/local.keyring`, a JSON array of
//! base64 keys with the primary first. It is written after every change
//! (temporary file, fsync, rename, fsync of the directory) and, when it
//! exists, wins over the configured `encrypt` key at start.

use std::path::{Path, PathBuf};

use crate::crypto::{decode_key, MAX_KEYS};

/// The file's path under a data directory.
pub fn keyring_path(data_dir: &Path) -> PathBuf {
    data_dir.join("serf").join("local.keyring")
}

/// Largest keyring file read.
const MAX_FILE: u64 = 64 * 1024;

/// The keyring file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("keyring file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("keyring file {path} is not a JSON array of base64 keys: {why}")]
    Format { path: String, why: String },
}

/// Reads the keyring file: `Ok(None)` when it does not exist. An empty
/// array, a bad key or more than 16 keys is an error (starting with no
/// key, or the wrong one, would cut the node off the pool silently).
pub fn load(path: &Path) -> Result<Option<Vec<String>>, KeyFileError> {
    let io = |source| KeyFileError::Io {
        path: path.display().to_string(),
        source,
    };
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    let bad = |why: String| KeyFileError::Format {
        path: path.display().to_string(),
        why,
    };
    if meta.len() > MAX_FILE {
        return Err(bad(format!("{} bytes, over {MAX_FILE}", meta.len())));
    }
    let text = std::fs::read_to_string(path).map_err(io)?;
    let keys = parse(&text).map_err(bad)?;
    Ok(Some(keys))
}

/// Parses a JSON array of strings holding base64 keys (base64 needs no
/// escapes, so escapes are refused).
fn parse(text: &str) -> Result<Vec<String>, String> {
    let inner = text
        .trim()
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .ok_or("expected [ ... ]")?
        .trim();
    let mut keys = Vec::new();
    if inner.is_empty() {
        return Err("no keys".into());
    }
    for item in inner.split(',') {
        let item = item.trim();
        let key = item
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .filter(|k| !k.contains(['"', '\\']))
            .ok_or_else(|| format!("expected a quoted key, got {:.40}", item))?;
        decode_key(key).map_err(|e| format!("{e}"))?;
        if !keys.iter().any(|k| k == key) {
            keys.push(key.to_owned());
        }
    }
    if keys.len() > MAX_KEYS {
        return Err(format!("{} keys, over the limit of {MAX_KEYS}", keys.len()));
    }
    Ok(keys)
}

/// Writes the keyring file durably and readable by its owner only (the keys are
/// secrets), creating the directory if needed.
pub fn save(path: &Path, keys: &[String]) -> Result<(), KeyFileError> {
    let io = |source| KeyFileError::Io {
        path: path.display().to_string(),
        source,
    };
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| io(std::io::Error::other("the keyring file name is not UTF-8")))?;
    let quoted: Vec<String> = keys.iter().map(|k| format!("\"{k}\"")).collect();
    let body = format!("[{}]\n", quoted.join(","));
    cairn_fs::write_private_file_durably(dir, name, body.as_bytes()).map_err(io)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::keygen;

    #[test]
    fn save_then_load_keeps_order_and_rejects_bad_files() {
        let dir = std::env::temp_dir().join(format!("cairn-keyfile-{}", std::process::id()));
        let path = keyring_path(&dir);
        assert!(load(&path).unwrap().is_none());
        let keys = vec![keygen(), keygen()];
        save(&path, &keys).unwrap();
        assert_eq!(load(&path).unwrap().unwrap(), keys);
        // Consul's own layout (spaces, newlines) reads too.
        std::fs::write(&path, format!("[\n  \"{}\"\n]\n", keys[1])).unwrap();
        assert_eq!(load(&path).unwrap().unwrap(), vec![keys[1].clone()]);
        for bad in ["", "[]", "{}", "[\"abc\"]", "[\"a\\\"b\"]", "[1]"] {
            std::fs::write(&path, bad).unwrap();
            assert!(
                matches!(load(&path), Err(KeyFileError::Format { .. })),
                "{bad:?}"
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
