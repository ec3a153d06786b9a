//! Builds the demo's container images locally, `FROM scratch`, from the app binaries next
//! to `cairn`: no registry and no base image. A static binary goes in alone; a dynamically
//! linked one (a default glibc build) goes in with the shared libraries `ldd` lists, at
//! the same paths, so the image still holds nothing but the program and what it loads.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The image of app `app` for demo run `tag`: one tag per run, so concurrent runs never
/// share an image, and the run removes its own when it stops.
pub fn image_name(app: &str, tag: &str) -> String {
    format!("cairn-demo/{app}:{tag}")
}

/// The shared objects an `ldd` report lists (resolved paths and the loader), in order.
/// Empty for a static binary.
pub fn parse_ldd(out: &str) -> Vec<PathBuf> {
    let mut libs = Vec::new();
    for line in out.lines() {
        let line = line.trim();
        let path = match line.split_once("=>") {
            Some((_, rhs)) => rhs.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        if let Some(p) = path.filter(|p| p.starts_with('/')) {
            libs.push(PathBuf::from(p));
        }
    }
    libs
}

/// The Dockerfile of an image running `/app/<app>`.
pub fn dockerfile(app: &str) -> String {
    format!(
        "FROM scratch\nCOPY rootfs/ /\nENV BIND=0.0.0.0 PORT=4567\nEXPOSE 4567\nENTRYPOINT [\"/app/{app}\"]\n"
    )
}

/// Builds image [`image_name`]`(app, tag)` from `binary`, with its build context under `ctx`.
pub fn build(app: &str, tag: &str, binary: &Path, ctx: &Path) -> Result<String, String> {
    let rootfs = ctx.join("rootfs");
    let _ = std::fs::remove_dir_all(&rootfs);
    let copy = |src: &Path, dst: &Path| -> Result<(), String> {
        let to = rootfs.join(dst.strip_prefix("/").unwrap_or(dst));
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("creating {}: {e}", parent.display()))?;
        }
        std::fs::copy(src, &to)
            .map(|_| ())
            .map_err(|e| format!("copying {} into the image: {e}", src.display()))
    };
    copy(binary, &Path::new("/app").join(app))?;
    let ldd = Command::new("ldd").arg(binary).output();
    if let Ok(o) = ldd {
        for lib in parse_ldd(&String::from_utf8_lossy(&o.stdout)) {
            let real = std::fs::canonicalize(&lib).unwrap_or_else(|_| lib.clone());
            copy(&real, &lib)?;
        }
    }
    std::fs::write(ctx.join("Dockerfile"), dockerfile(app))
        .map_err(|e| format!("writing the Dockerfile: {e}"))?;
    let image = image_name(app, tag);
    let out = Command::new("docker")
        .args(["build", "-q", "-t", &image])
        .arg(ctx)
        .env("DOCKER_BUILDKIT", "0")
        .process_group(0)
        .output()
        .map_err(|e| format!("running docker build: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "docker build of {image} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(image)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_reports() {
        let out = "\tlinux-vdso.so.1 (0x00007ffd)\n\tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x1)\n\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x2)\n\t/lib64/ld-linux-x86-64.so.2 (0x3)\n";
        assert_eq!(
            parse_ldd(out),
            [
                PathBuf::from("/lib/x86_64-linux-gnu/libgcc_s.so.1"),
                PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2"),
            ]
        );
        assert!(parse_ldd("\tnot a dynamic executable\n").is_empty());
        assert!(parse_ldd("\tstatically linked\n").is_empty());
        assert!(dockerfile("portal").contains("ENTRYPOINT [\"/app/portal\"]"));
    }
}
