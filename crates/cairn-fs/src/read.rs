//! Bounded reads of user-named files and directories.

use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Why a file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file could not be opened or read (missing, no permission, ...).
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: io::Error,
    },
    /// A directory, device, FIFO or socket where a file was expected.
    #[error("{}: not a regular file", path.display())]
    NotRegular {
        /// The path.
        path: PathBuf,
    },
    /// Larger than the limit.
    #[error("{}: larger than {limit} bytes", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit.
        limit: u64,
    },
    /// A directory with more entries, or deeper, than allowed.
    #[error("{}: {reason}", path.display())]
    TooMany {
        /// The directory.
        path: PathBuf,
        /// Which bound was passed.
        reason: String,
    },
}

/// The bytes of the regular file (links followed) at `path`, if it holds at most `limit`
/// bytes. The read stops past the limit whatever the file's size said.
pub fn read_regular(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let io_err = |source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io_err)?;
    if !meta.is_file() {
        return Err(ReadError::NotRegular {
            path: path.to_path_buf(),
        });
    }
    let too_large = || ReadError::TooLarge {
        path: path.to_path_buf(),
        limit,
    };
    if meta.len() > limit {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(limit.saturating_add(1)).read_to_end(&mut bytes))
        .map_err(io_err)?;
    if bytes.len() as u64 > limit {
        return Err(too_large());
    }
    Ok(bytes)
}

/// Every entry under `dir` that is not a directory, subdirectories included, in name
/// order. Links to files are listed, links to directories are not followed. At most
/// `max_entries` entries (files and directories, counted as they are listed) and
/// `max_depth` levels.
pub fn files_under(
    dir: &Path,
    max_entries: usize,
    max_depth: usize,
) -> Result<Vec<PathBuf>, ReadError> {
    let mut out = Vec::new();
    let mut seen = 0;
    walk(dir, 1, max_entries, max_depth, &mut seen, &mut out)?;
    Ok(out)
}

fn walk(
    dir: &Path,
    depth: usize,
    max_entries: usize,
    max_depth: usize,
    seen: &mut usize,
    out: &mut Vec<PathBuf>,
) -> Result<(), ReadError> {
    let io_err = |path: &Path, source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let too_many = |reason: String| ReadError::TooMany {
        path: dir.to_path_buf(),
        reason,
    };
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| io_err(dir, e))? {
        *seen += 1;
        if *seen > max_entries {
            return Err(too_many(format!("more than {max_entries} entries")));
        }
        entries.push(entry.map_err(|e| io_err(dir, e))?.path());
    }
    entries.sort();
    for path in entries {
        let meta = std::fs::symlink_metadata(&path).map_err(|e| io_err(&path, e))?;
        if !meta.is_dir() {
            out.push(path);
        } else if depth >= max_depth {
            return Err(too_many(format!("nested deeper than {max_depth} levels")));
        } else {
            walk(&path, depth + 1, max_entries, max_depth, seen, out)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(unix)]
    fn only_regular_files_within_the_limit_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, b"12345").unwrap();
        assert_eq!(read_regular(&f, 5).unwrap(), b"12345");
        assert!(matches!(
            read_regular(&f, 4),
            Err(ReadError::TooLarge { limit: 4, .. })
        ));
        let zero = dir.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        let e = read_regular(&zero, 4).unwrap_err();
        assert!(matches!(e, ReadError::NotRegular { .. }), "{e}");
        assert!(e.to_string().contains("zero"), "{e}");
        assert!(matches!(
            read_regular(dir.path(), 4),
            Err(ReadError::NotRegular { .. })
        ));
        assert!(matches!(
            read_regular(&dir.path().join("missing"), 4),
            Err(ReadError::Io { .. })
        ));
    }

    #[test]
    fn directories_are_walked_in_order_within_bounds() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("b/c")).unwrap();
        for f in ["z", "b/y", "b/c/x"] {
            std::fs::write(d.join(f), "").unwrap();
        }
        let names: Vec<_> = files_under(d, 10, 3)
            .unwrap()
            .iter()
            .map(|p| p.strip_prefix(d).unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["b/c/x", "b/y", "z"]);
        assert!(matches!(
            files_under(d, 10, 2),
            Err(ReadError::TooMany { .. })
        ));
        assert!(matches!(
            files_under(d, 4, 3),
            Err(ReadError::TooMany { .. })
        ));
    }
}
