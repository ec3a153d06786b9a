//! `cairn snapshot save|restore|inspect`, as `consul snapshot` does them.
//!
//! `save` fetches `/v1/snapshot`, verifies the archive it got (checksums, decoding) and
//! only then writes the file, atomically. `restore` sends a file to `PUT /v1/snapshot`;
//! the servers verify it again before anything changes. `inspect` reads a file offline
//! and prints its metadata and a count of its records per type.

use std::path::Path;

use cairn_http::snapshot_archive::{self as archive, ArchiveLimits, Meta, TypeCount};

use crate::error::CliError;
use crate::flags::{self, Kind, Spec};
use crate::output::{align, row, say, write_stdout};

const HELP: &str = "\
Usage: cairn snapshot <subcommand> [options] [args]

  Saves, restores and inspects atomic, point-in-time snapshots of the state
  of the Cairn servers: the catalog, health checks, key/value entries and
  sessions.

Subcommands:
    inspect    Displays information about a snapshot file
    restore    Restores a snapshot of the servers' state
    save       Saves a snapshot of the servers' state";

const SAVE_HELP: &str = "\
Usage: cairn snapshot save [options] FILE

  Retrieves an atomic, point-in-time snapshot of the state of the servers,
  verifies it, and writes it to FILE. By default the snapshot is taken
  through the leader; -stale lets any server answer.";

const RESTORE_HELP: &str = "\
Usage: cairn snapshot restore [options] FILE

  Restores an atomic, point-in-time snapshot of the state of the servers
  from FILE. Everything the snapshot does not hold is replaced; session
  TTL timers start afresh on the leader.";

const INSPECT_HELP: &str = "\
Usage: cairn snapshot inspect FILE

  Displays the ID, size, index, term and version of the snapshot in FILE,
  and how many records of each type it holds. Works offline.";

const SAVE_FLAGS: &[Spec] = &[flags::spec(
    "stale",
    Kind::Bool,
    "Let any server answer, even one that is not the leader (may be behind).",
)];

/// Runs `cairn snapshot ...`.
pub async fn run(args: Vec<String>) -> Result<(), CliError> {
    let (sub, rest) = super::subcommand(&args, HELP)?;
    match sub {
        "save" => save(rest).await,
        "restore" => restore(rest).await,
        "inspect" => inspect(rest),
        other => Err(CliError::usage(
            format!("error: unknown subcommand {other:?}"),
            HELP,
        )),
    }
}

/// The one FILE argument.
fn one_file(flags: &flags::Flags, help: &str) -> Result<String, CliError> {
    match flags.args.as_slice() {
        [f] => Ok(f.clone()),
        other => Err(CliError::usage(
            format!(
                "error: this command takes one argument: <file> (got {})",
                other.len()
            ),
            help,
        )),
    }
}

async fn save(args: Vec<String>) -> Result<(), CliError> {
    let flags = super::parse_flags(SAVE_HELP, SAVE_FLAGS, true, &args)?;
    let file = one_file(&flags, SAVE_HELP)?;
    let client = super::client(&flags)?;
    let (bytes, _) = client
        .snapshot_save(flags.bool("stale"))
        .await
        .map_err(CliError::ctx("Error saving snapshot"))?;
    let meta = verify(&bytes).map_err(CliError::ctx("Error verifying snapshot file"))?;
    write_atomically(Path::new(&file), &bytes)
        .map_err(|e| CliError::failed(format!("Error writing snapshot file {file}: {e}")))?;
    say(&format!(
        "Saved and verified snapshot to index {}",
        meta.index
    ))
}

async fn restore(args: Vec<String>) -> Result<(), CliError> {
    let flags = super::parse_flags(RESTORE_HELP, &[], true, &args)?;
    let file = one_file(&flags, RESTORE_HELP)?;
    let bytes = read_file(&file)?;
    let client = super::client(&flags)?;
    client
        .snapshot_restore(bytes)
        .await
        .map_err(CliError::ctx("Error restoring snapshot"))?;
    say("Restored snapshot")
}

fn inspect(args: Vec<String>) -> Result<(), CliError> {
    let flags = super::parse_flags(INSPECT_HELP, &[], false, &args)?;
    let file = one_file(&flags, INSPECT_HELP)?;
    let bytes = read_file(&file)?;
    let v = archive::read_archive(&bytes, ArchiveLimits::default())
        .map_err(CliError::ctx("Error inspecting snapshot"))?;
    let state =
        archive::decode_state(&v.state_bin).map_err(CliError::ctx("Error inspecting snapshot"))?;
    write_stdout(render(&v.meta, &archive::type_counts(&state)).as_bytes())
}

/// Reads a snapshot file, refusing one over the archive size limit before reading it.
fn read_file(file: &str) -> Result<Vec<u8>, CliError> {
    let limit = ArchiveLimits::default().max_compressed as u64;
    let len = std::fs::metadata(file)
        .map_err(|e| CliError::failed(format!("Error opening snapshot file {file}: {e}")))?
        .len();
    if len > limit {
        return Err(CliError::failed(format!(
            "Error reading snapshot file {file}: {len} bytes is over the {limit}-byte limit"
        )));
    }
    std::fs::read(file)
        .map_err(|e| CliError::failed(format!("Error reading snapshot file {file}: {e}")))
}

/// Checks an archive end to end (checksums and decoding), returning its metadata.
fn verify(bytes: &[u8]) -> Result<Meta, archive::ArchiveError> {
    let v = archive::read_archive(bytes, ArchiveLimits::default())?;
    archive::decode_state(&v.state_bin)?;
    Ok(v.meta)
}

/// Writes `bytes` to `path` atomically and durably (a crash leaves the old file or the
/// new one).
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other("not a file name"))?
        .to_str()
        .ok_or_else(|| std::io::Error::other("the file name is not UTF-8"))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    cairn_fs::write_file_durably(dir, name, bytes).map(drop)
}

/// Bytes as Consul prints them (`344B`, `1.7KB`, `2.3MB`).
fn human(bytes: usize) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if bytes < 1024 {
        return format!("{bytes}B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    let s = format!("{v:.1}");
    let s = s.strip_suffix(".0").unwrap_or(&s);
    format!("{s}{}", UNITS[unit])
}

/// `inspect`'s output: the metadata, then the per-type table.
pub fn render(meta: &Meta, rows: &[TypeCount]) -> String {
    let head = vec![
        row(["ID", &meta.id]),
        row(["Size", &meta.size.to_string()]),
        row(["Index", &meta.index.to_string()]),
        row(["Term", &meta.term.to_string()]),
        row(["Version", &meta.version.to_string()]),
    ];
    let mut table = vec![
        row(["Type", "Count", "Size"]),
        row(["----", "----", "----"]),
    ];
    for r in rows {
        table.push(vec![
            r.kind.to_string(),
            r.count.to_string(),
            human(r.bytes),
        ]);
    }
    table.push(row(["----", "----", "----"]));
    let total: usize = rows.iter().map(|r| r.bytes).sum();
    table.push(vec!["Total".into(), String::new(), human(total)]);
    format!("{}\n{}", align(&head, 2), align(&table, 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_consul_prints_them() {
        assert_eq!(human(344), "344B");
        assert_eq!(human(1740), "1.7KB");
        assert_eq!(human(5 * 1024), "5KB");
        assert_eq!(human(3 * 1024 * 1024 + 300 * 1024), "3.3MB");
    }

    #[test]
    fn inspect_table() {
        let meta = Meta {
            version: 1,
            id: "2-5-1477944140022".into(),
            index: 5,
            term: 2,
            size: 667,
            encoding: archive::ENCODING.into(),
        };
        let rows = [
            TypeCount {
                kind: "KVS",
                count: 3,
                bytes: 1740,
            },
            TypeCount {
                kind: "Session",
                count: 1,
                bytes: 99,
            },
        ];
        let out = render(&meta, &rows);
        assert!(
            out.starts_with("ID       2-5-1477944140022\nSize     667\n"),
            "{out}"
        );
        assert!(out.contains("Version  1\n"), "{out}");
        assert!(out.contains("KVS      3      1.7KB\n"), "{out}");
        assert!(out.contains("Total           1.8KB\n"), "{out}");
    }
}
