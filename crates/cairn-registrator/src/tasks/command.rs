//! What to execute for a container definition: its `entryPoint` + `command` when given,
//! otherwise the program mapped to its image (`-image NAME=COMMAND`, the environment variable
//! `CAIRN_TASKS_IMAGE_<NAME>`, or a binary named like the image basename next to the `cairn`
//! executable or on `PATH`), with `$PORT` / `${PORT}` substituted in the arguments.

use crate::build::image_basename;
use crate::checks::split_words;
use crate::tasks::taskdef::ContainerDefinition;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// How images map to local programs.
#[derive(Debug, Clone, Default)]
pub struct ImageMap {
    /// Image basename → command line (from `-image NAME=COMMAND`).
    pub explicit: BTreeMap<String, String>,
    /// Directories searched first for a binary named like the image (the `cairn` executable's).
    pub dirs: Vec<PathBuf>,
    /// Reads environment variables (injected for tests).
    pub env: BTreeMap<String, String>,
}

/// The environment variable that maps image `name`: `CAIRN_TASKS_IMAGE_STOCK_PRICE`.
pub fn env_key(name: &str) -> String {
    let mut k = String::from("CAIRN_TASKS_IMAGE_");
    for c in name.chars() {
        k.push(if c.is_ascii_alphanumeric() {
            c.to_ascii_uppercase()
        } else {
            '_'
        });
    }
    k
}

impl ImageMap {
    /// From the process environment and the directory of the running executable.
    pub fn from_env(explicit: BTreeMap<String, String>) -> Self {
        let dirs = std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .into_iter()
            .collect();
        ImageMap {
            explicit,
            dirs,
            env: std::env::vars()
                .filter(|(k, _)| k.starts_with("CAIRN_TASKS_IMAGE_"))
                .collect(),
        }
    }

    fn lookup(&self, image: &str) -> Result<Vec<String>, String> {
        let name = image_basename(image);
        let line = self
            .explicit
            .get(&name)
            .or_else(|| self.explicit.get(image))
            .or_else(|| self.env.get(&env_key(&name)));
        if let Some(line) = line {
            let argv = split_words(line).map_err(|e| format!("command for image {name}: {e}"))?;
            if argv.is_empty() {
                return Err(format!("command for image {name} is empty"));
            }
            return Ok(argv);
        }
        if name.is_empty() || name.contains(['/', '.']) {
            return Err(format!("image {image:?} has no usable basename"));
        }
        for d in &self.dirs {
            let p = d.join(&name);
            if is_executable(&p) {
                return Ok(vec![p.display().to_string()]);
            }
        }
        if let Some(p) = find_on_path(&name) {
            return Ok(vec![p.display().to_string()]);
        }
        Err(format!(
            "no program for image {image:?}: put a binary named {name} next to cairn or on PATH, \
             or pass -image {name}=COMMAND (or set {})",
            env_key(&name)
        ))
    }

    /// The argv for `def`, with `port` substituted for `$PORT`.
    pub fn argv(
        &self,
        def: &ContainerDefinition,
        port: Option<u16>,
    ) -> Result<Vec<String>, String> {
        let argv: Vec<String> = if !def.entry_point.is_empty() {
            def.entry_point
                .iter()
                .chain(&def.command)
                .cloned()
                .collect()
        } else if !def.image.is_empty() {
            let mut a = self.lookup(&def.image)?;
            a.extend(def.command.iter().cloned());
            a
        } else {
            def.command.clone()
        };
        if argv.is_empty() || argv[0].is_empty() {
            return Err(format!("container {:?}: empty command", def.name));
        }
        let port = port.map(|p| p.to_string()).unwrap_or_default();
        Ok(argv
            .into_iter()
            .map(|a| a.replace("${PORT}", &port).replace("$PORT", &port))
            .collect())
    }
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(image: &str, entry: &[&str], cmd: &[&str]) -> ContainerDefinition {
        ContainerDefinition {
            name: "c".into(),
            image: image.into(),
            environment: vec![],
            port_mappings: vec![],
            command: cmd.iter().map(|s| s.to_string()).collect(),
            entry_point: entry.iter().map(|s| s.to_string()).collect(),
            essential: None,
            cpu: None,
            memory: None,
            docker_labels: Default::default(),
        }
    }

    #[test]
    fn resolution_order() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("weather");
        std::fs::write(&bin, "#!/bin/sh\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut m = ImageMap {
            dirs: vec![dir.path().to_path_buf()],
            ..Default::default()
        };
        m.explicit
            .insert("stock-price".into(), "srv --port $PORT".into());
        m.env.insert(env_key("portal"), "p ${PORT}".into());
        assert_eq!(
            m.argv(&def("repo/stock-price", &[], &[]), Some(5)).unwrap(),
            ["srv", "--port", "5"]
        );
        assert_eq!(
            m.argv(&def("repo/portal:1", &[], &["-v"]), Some(6))
                .unwrap(),
            ["p", "6", "-v"]
        );
        assert_eq!(
            m.argv(&def("my_docker_hub_repo/weather", &[], &[]), None)
                .unwrap(),
            [bin.display().to_string()]
        );
        assert_eq!(
            m.argv(&def("x", &["/bin/e", "a"], &["b"]), None).unwrap(),
            ["/bin/e", "a", "b"]
        );
        let e = m
            .argv(&def("nothing-like-this-exists", &[], &[]), None)
            .unwrap_err();
        assert!(e.contains("-image nothing-like-this-exists=COMMAND"), "{e}");
        assert_eq!(env_key("stock-price"), "CAIRN_TASKS_IMAGE_STOCK_PRICE");
    }
}
