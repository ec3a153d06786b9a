//! Finds the programs the demo runs: `cairn` itself and the three sample apps, which must
//! sit next to it (the same cargo target directory). A missing app gets an error naming
//! the exact build command, because `cargo build -p cairn-cli` alone does not build them.

use std::path::{Path, PathBuf};

/// The sample apps' binary names.
pub const APPS: [&str; 3] = ["stock-price", "weather", "portal"];

/// The running `cairn` and the directory it is in.
#[derive(Debug, Clone)]
pub struct Bins {
    pub cairn: PathBuf,
    pub dir: PathBuf,
}

/// The build command for the profile `dir` belongs to (`target/debug` or `target/release`).
pub fn build_command(dir: &Path) -> String {
    let release = dir.file_name().is_some_and(|n| n == "release");
    if release {
        "cargo build --release --workspace && target/release/cairn demo".into()
    } else {
        "cargo build --workspace && target/debug/cairn demo".into()
    }
}

/// Checks that every app is an executable file in `dir`; the error lists what is missing.
pub fn check(dir: &Path) -> Result<(), String> {
    let missing: Vec<&str> = APPS
        .iter()
        .copied()
        .filter(|a| !is_executable(&dir.join(a)))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(format!(
        "error: the demo runs the sample apps from the directory of the cairn binary, {}, \
         and {} missing there. Build the whole workspace, then run the demo:\n\n    {}\n",
        dir.display(),
        match missing.as_slice() {
            [one] => format!("{one} is"),
            more => format!("{} are", more.join(", ")),
        },
        build_command(dir)
    ))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Locates the running binary.
pub fn locate() -> Result<Bins, String> {
    let cairn = std::env::current_exe()
        .map_err(|e| format!("error: cannot find the cairn binary's path: {e}"))?;
    let dir = cairn
        .parent()
        .ok_or("error: the cairn binary has no parent directory")?
        .to_path_buf();
    Ok(Bins { cairn, dir })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_apps_name_the_build_command() {
        let d = tempfile::tempdir().unwrap();
        let release = d.path().join("release");
        std::fs::create_dir(&release).unwrap();
        let e = check(&release).unwrap_err();
        assert!(
            e.contains("stock-price, weather, portal are missing"),
            "{e}"
        );
        assert!(e.contains("cargo build --release --workspace && target/release/cairn demo"));
        for a in ["stock-price", "weather"] {
            std::fs::write(release.join(a), "").unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(release.join(a), std::fs::Permissions::from_mode(0o755))
                .unwrap();
        }
        std::fs::write(release.join("portal"), "").unwrap(); // not executable
        let e = check(&release).unwrap_err();
        assert!(e.contains("portal is missing"), "{e}");
        assert!(build_command(Path::new("target/debug")).starts_with("cargo build --workspace"));
    }
}
