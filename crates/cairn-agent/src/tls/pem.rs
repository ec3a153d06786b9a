//! Reading the PEM files of a TLS setup (CA, certificate chain, private key) within a size
//! limit, with errors that name the file and say what was wrong with it.

use std::path::{Path, PathBuf};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::RootCertStore;

/// A PEM file larger than this is not a certificate or a key: refused unread.
pub const MAX_PEM_BYTES: u64 = 1 << 20;

/// `ca_path` is read down to this many entries, files and directories (and this many
/// levels): a directory beyond that is not a set of CAs.
const MAX_CA_PATH_FILES: usize = 1024;
const MAX_CA_PATH_DEPTH: usize = 8;

/// Why the TLS files could not be turned into a configuration.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("TLS: cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("TLS: {} is larger than {limit} bytes; not a PEM file", path.display())]
    TooLarge { path: PathBuf, limit: u64 },
    #[error("TLS: {} holds no PEM certificate", path.display())]
    NoCertificate { path: PathBuf },
    #[error("TLS: {} is not valid PEM: {reason}", path.display())]
    BadPem { path: PathBuf, reason: String },
    #[error("TLS: {} holds no PEM private key", path.display())]
    NoKey { path: PathBuf },
    #[error("TLS: CA {}: {reason}", path.display())]
    BadCa { path: PathBuf, reason: String },
    #[error("TLS: the key {} cannot be used with the certificate {}: {reason}", key.display(), cert.display())]
    Pair {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
    #[error("TLS: {0}")]
    Config(String),
}

/// Reads a regular file (links followed) of at most [`MAX_PEM_BYTES`].
fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    cairn_fs::read_regular(path, MAX_PEM_BYTES).map_err(read_error)
}

fn read_error(e: cairn_fs::ReadError) -> TlsError {
    use cairn_fs::ReadError;
    match e {
        ReadError::Io { path, source } => TlsError::Read { path, source },
        ReadError::NotRegular { path } => TlsError::Read {
            path,
            source: std::io::Error::other("not a regular file"),
        },
        ReadError::TooLarge { path, limit } => TlsError::TooLarge { path, limit },
        ReadError::TooMany { path, reason } => {
            TlsError::Config(format!("ca_path {}: {reason}", path.display()))
        }
    }
}

/// Every certificate in `path`, in order (a chain: the leaf first).
pub fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::BadPem {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

/// The private key in `path` (PKCS#8, PKCS#1 or SEC1).
pub fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read(path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => TlsError::NoKey {
            path: path.to_path_buf(),
        },
        e => TlsError::BadPem {
            path: path.to_path_buf(),
            reason: e.to_string(),
        },
    })
}

/// The CA certificates in `path` as trust roots.
pub fn roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    add_roots(&mut store, path)?;
    Ok(store)
}

fn add_roots(store: &mut RootCertStore, path: &Path) -> Result<(), TlsError> {
    for cert in certificates(path)? {
        store.add(cert).map_err(|e| TlsError::BadCa {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    }
    Ok(())
}

/// The CA certificates of every file under the directory `dir` (as Consul's `ca_path`:
/// subdirectories included, each file must hold a PEM certificate), in name order.
/// Symbolic links to files are followed, to directories not.
pub fn roots_in(dir: &Path) -> Result<RootCertStore, TlsError> {
    let files =
        cairn_fs::files_under(dir, MAX_CA_PATH_FILES, MAX_CA_PATH_DEPTH).map_err(read_error)?;
    if files.is_empty() {
        return Err(TlsError::NoCertificate {
            path: dir.to_path_buf(),
        });
    }
    let mut store = RootCertStore::empty();
    for file in files {
        add_roots(&mut store, &file)?;
    }
    Ok(store)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let e = certificates(&missing).unwrap_err().to_string();
        assert!(e.contains("missing.pem"), "{e}");

        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "hello").unwrap();
        assert!(matches!(
            certificates(&junk),
            Err(TlsError::NoCertificate { .. })
        ));
        assert!(matches!(private_key(&junk), Err(TlsError::NoKey { .. })));

        let big = dir.path().join("big.pem");
        std::fs::write(&big, vec![b'a'; (MAX_PEM_BYTES + 1) as usize]).unwrap();
        let e = roots(&big).unwrap_err();
        assert!(matches!(e, TlsError::TooLarge { .. }), "{e}");
        assert!(e.to_string().contains("big.pem"));
    }

    /// A link to a device (size 0, endless) or a directory is not read.
    #[test]
    #[cfg(unix)]
    fn only_regular_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let zero = dir.path().join("zero.pem");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        let e = certificates(&zero).unwrap_err().to_string();
        assert!(e.contains("zero.pem") && e.contains("regular file"), "{e}");
        let e = roots_in(dir.path()).unwrap_err().to_string();
        assert!(e.contains("zero.pem"), "{e}");
        let e = certificates(dir.path()).unwrap_err().to_string();
        assert!(e.contains("regular file"), "{e}");
    }

    #[test]
    fn a_huge_ca_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..=MAX_CA_PATH_FILES {
            std::fs::create_dir(dir.path().join(i.to_string())).unwrap();
        }
        let e = roots_in(dir.path()).unwrap_err().to_string();
        assert!(e.contains("more than"), "{e}");
    }
}
