//! Finds the programs the demo runs: `cairn` itself and the three sample apps, which must
//! sit next to it (the same cargo target directory). A missing app gets an error naming
//! the exact build command, because `cargo build -p cairn-cli` alone does not build them.
//! Started by `cargo run -p cairn-cli`, the demo builds them itself first.

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

/// When `cairn` was started by `cargo run` of this package (cargo sets `CARGO` and
/// `CARGO_PKG_NAME` for the program it runs) into a `debug` or `release` directory: the
/// cargo program and the arguments that build the apps into that same directory.
pub fn cargo_autobuild(
    dir: &Path,
    env: impl Fn(&str) -> Option<String>,
) -> Option<(String, Vec<String>)> {
    let cargo = env("CARGO").filter(|c| !c.is_empty())?;
    if env("CARGO_PKG_NAME").as_deref() != Some("cairn-cli") {
        return None;
    }
    let mut args = vec!["build".to_string()];
    match dir.file_name().and_then(|n| n.to_str()) {
        Some("release") => args.push("--release".into()),
        Some("debug") => {}
        _ => return None,
    }
    if let Some(m) = env("CARGO_MANIFEST_DIR") {
        // The workspace root is two levels above crates/cairn-cli.
        let root = Path::new(&m).join("../../Cargo.toml");
        args.push("--manifest-path".into());
        args.push(root.display().to_string());
    }
    for a in APPS {
        args.push("-p".into());
        args.push(a.into());
    }
    Some((cargo, args))
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

    #[test]
    fn autobuild_only_under_cargo_run_of_this_package() {
        let env = |pkg: &'static str| {
            move |k: &str| match k {
                "CARGO" => Some("/c/cargo".to_string()),
                "CARGO_PKG_NAME" => Some(pkg.to_string()),
                "CARGO_MANIFEST_DIR" => Some("/w/crates/cairn-cli".to_string()),
                _ => None,
            }
        };
        let (cargo, args) =
            cargo_autobuild(Path::new("/w/target/release"), env("cairn-cli")).unwrap();
        assert_eq!(cargo, "/c/cargo");
        assert_eq!(
            args.join(" "),
            "build --release --manifest-path /w/crates/cairn-cli/../../Cargo.toml -p stock-price -p weather -p portal"
        );
        let (_, args) = cargo_autobuild(Path::new("/w/target/debug"), env("cairn-cli")).unwrap();
        assert_eq!(args[1], "--manifest-path");
        assert!(cargo_autobuild(Path::new("/w/target/debug"), env("portal")).is_none());
        assert!(cargo_autobuild(Path::new("/tmp/x"), env("cairn-cli")).is_none());
        assert!(cargo_autobuild(Path::new("/w/target/debug"), |_| None).is_none());
    }
}
