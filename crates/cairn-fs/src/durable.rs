//! Files that must survive a crash whole: the one way every Cairn crate that keeps state
//! on disk (snapshots, the node ID, the gossip keyring, saved ACL tokens, local services)
//! writes a small file atomically, and makes directory changes durable.
//!
//! The recipe: write `<name>.tmp`, fsync it, rename it over `<name>`, fsync the directory.
//! A crash leaves the old file or the new one, never a torn one. Secrets are created
//! owner-only from their first byte.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Durably and atomically writes `bytes` to `dir/name`: a temporary file, fsync, rename
/// over the old one, fsync of the directory. A crash leaves the old file or the new one,
/// never a torn one. Returns the final path.
pub fn write_file_durably(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<PathBuf> {
    write_durably_with(dir, name, bytes, false)
}

/// [`write_file_durably`] for secrets: the file is created readable and writable by its
/// owner only (mode 0600 on Unix), from its first byte, not changed afterwards.
pub fn write_private_file_durably(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<PathBuf> {
    write_durably_with(dir, name, bytes, true)
}

fn write_durably_with(dir: &Path, name: &str, bytes: &[u8], private: bool) -> io::Result<PathBuf> {
    if name.is_empty() || name.contains('/') || name.contains('\\') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("invalid file name {name:?}"),
        ));
    }
    fs::create_dir_all(dir)?;
    let final_path = dir.join(name);
    let tmp_path = dir.join(format!("{name}.tmp"));
    {
        // A temporary file left by a crash (or put there: a link) is not reused: it would
        // keep its mode, or send the write elsewhere. `create_new` then refuses anything
        // that appears in between.
        match fs::remove_file(&tmp_path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        if private {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        #[cfg(not(unix))]
        let _ = private;
        let mut f = options.open(&tmp_path)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp_path, &final_path)?;
    sync_dir(dir)?;
    Ok(final_path)
}

/// Makes directory-entry changes (create, rename, unlink) in `dir` durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()?;
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    fn mode(p: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    #[cfg(unix)]
    fn a_private_file_is_owner_only_and_replaces_a_readable_one() {
        let dir = tempfile::tempdir().unwrap();
        let p = write_file_durably(dir.path(), "f", b"one").unwrap();
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        }
        let p = write_private_file_durably(dir.path(), "f", b"two").unwrap();
        assert_eq!(mode(&p), 0o600);
        assert_eq!(fs::read(&p).unwrap(), b"two");
        // A temporary file left readable by a crash does not pass its mode on.
        fs::write(dir.path().join("g.tmp"), b"stale").unwrap();
        let p = write_private_file_durably(dir.path(), "g", b"three").unwrap();
        assert_eq!(
            (mode(&p), fs::read(&p).unwrap()),
            (0o600, b"three".to_vec())
        );
        assert!(write_private_file_durably(dir.path(), "a/b", b"x").is_err());
    }

    /// A leftover temporary file that is a link does not redirect the write.
    #[test]
    #[cfg(unix)]
    fn a_temporary_file_left_as_a_link_is_replaced_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = dir.path().join("elsewhere");
        fs::write(&elsewhere, b"keep").unwrap();
        std::os::unix::fs::symlink(&elsewhere, dir.path().join("f.tmp")).unwrap();
        let p = write_file_durably(dir.path(), "f", b"new").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"new");
        assert_eq!(fs::read(&elsewhere).unwrap(), b"keep");
    }
}
