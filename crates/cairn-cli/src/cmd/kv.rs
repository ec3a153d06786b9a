//! `cairn kv get|put|delete`: the key-value store, with `consul kv`'s flags, output and
//! messages.

use crate::error::CliError;
use crate::flags::{spec, Flags, Kind, Spec};
use crate::output::{align, row, say, write_stdout};
use base64::Engine as _;
use cairn_api::KvPair;
use std::io::Read;

const HELP: &str = "\
Usage: cairn kv <subcommand> [options] [args]

  Interacts with the key-value store.

Subcommands:
    delete    Removes data from the KV store
    get       Retrieves or lists data from the KV store
    put       Sets or updates data in the KV store";

const GET_HELP: &str = "\
Usage: cairn kv get [options] [KEY_OR_PREFIX]

  Retrieves the value at KEY and prints it raw. With -recurse, prints every
  \"key:value\" under the prefix; with -keys, lists the keys under the prefix.";

const GET_SPECS: &[Spec] = &[
    spec(
        "recurse",
        Kind::Bool,
        "Recursively look at all keys under the prefix.",
    ),
    spec(
        "keys",
        Kind::Bool,
        "List keys which start with the given prefix, but not the data.",
    ),
    spec(
        "separator",
        Kind::Value,
        "String at which to roll up keys with -keys. Default \"/\".",
    ),
    spec(
        "detailed",
        Kind::Bool,
        "Provide additional metadata about the key(s).",
    ),
    spec("base64", Kind::Bool, "Base64-encode the value."),
];

const PUT_HELP: &str = "\
Usage: cairn kv put [options] KEY [DATA]

  Writes DATA to KEY. DATA may be a literal, \"-\" to read stdin, or @FILE to
  read a file. Without DATA an empty value is written.";

const PUT_SPECS: &[Spec] = &[
    spec(
        "flags",
        Kind::Value,
        "Unsigned integer value to assign to this KV pair.",
    ),
    spec(
        "cas",
        Kind::Bool,
        "Perform a check-and-set using -modify-index (0 = create only).",
    ),
    spec(
        "modify-index",
        Kind::Value,
        "Index the key must have for a -cas write.",
    ),
    spec("base64", Kind::Bool, "Treat DATA as base64-encoded."),
];

const DELETE_HELP: &str = "\
Usage: cairn kv delete [options] KEY_OR_PREFIX

  Removes KEY, or with -recurse every key under the prefix.";

const DELETE_SPECS: &[Spec] = &[
    spec(
        "recurse",
        Kind::Bool,
        "Recursively delete all keys with the path.",
    ),
    spec(
        "cas",
        Kind::Bool,
        "Perform a check-and-set delete using -modify-index.",
    ),
    spec(
        "modify-index",
        Kind::Value,
        "Index the key must have for a -cas delete.",
    ),
];

/// Runs `cairn kv ...`.
pub async fn run(args: Vec<String>) -> Result<(), CliError> {
    let (sub, rest) = super::subcommand(&args, HELP)?;
    match sub {
        "get" => get(rest).await,
        "put" => put(rest).await,
        "delete" => delete(rest).await,
        other => Err(CliError::usage(
            format!("error: unknown subcommand {other:?}"),
            HELP,
        )),
    }
}

/// The optional single KEY argument; a leading `/` is refused as Consul does.
fn key_arg(flags: &Flags, help: &str) -> Result<Option<String>, CliError> {
    match flags.args.as_slice() {
        [] => Ok(None),
        [k] if k.starts_with('/') => Err(CliError::failed("Error! Key must not begin with a '/'")),
        [k] => Ok(Some(k.clone())),
        more => Err(CliError::usage(
            format!("error: too many arguments (expected 1, got {})", more.len()),
            help,
        )),
    }
}

async fn get(args: Vec<String>) -> Result<(), CliError> {
    let flags = super::parse_flags(GET_HELP, GET_SPECS, true, &args)?;
    let key = key_arg(&flags, GET_HELP)?;
    let recurse = flags.bool("recurse");
    let keys = flags.bool("keys");
    let b64 = flags.bool("base64");
    let detailed = flags.bool("detailed");
    let client = super::client(&flags)?;

    if keys {
        let prefix = key.unwrap_or_default();
        let sep = flags.str("separator").unwrap_or("/");
        let list = client
            .kv_keys(&prefix, Some(sep))
            .await
            .map_err(CliError::ctx("Error querying Cairn agent"))?;
        let text: String = list.iter().map(|k| format!("{k}\n")).collect();
        return write_stdout(text.as_bytes());
    }
    if recurse {
        let prefix = key.unwrap_or_default();
        let pairs = client
            .kv_list(&prefix)
            .await
            .map_err(CliError::ctx("Error querying Cairn agent"))?;
        return write_stdout(&recurse_output(&pairs, detailed, b64));
    }
    let Some(key) = key.filter(|k| !k.is_empty()) else {
        return Err(CliError::usage("Error! Missing KEY argument", GET_HELP));
    };
    let pair = client
        .kv_get(&key)
        .await
        .map_err(CliError::ctx("Error querying Cairn agent"))?;
    let Some(pair) = pair else {
        return Err(CliError::failed(format!("Error! No key exists at: {key}")));
    };
    if detailed {
        write_stdout(detailed_pair(&pair, b64).as_bytes())
    } else {
        let mut out = value_bytes(&pair.value, b64);
        out.push(b'\n');
        write_stdout(&out)
    }
}

fn value_bytes(value: &[u8], b64: bool) -> Vec<u8> {
    if b64 {
        base64::engine::general_purpose::STANDARD
            .encode(value)
            .into_bytes()
    } else {
        value.to_vec()
    }
}

/// `kv get -recurse` output: `key:value` lines, or detailed blocks separated by blank lines.
pub fn recurse_output(pairs: &[KvPair], detailed: bool, b64: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, p) in pairs.iter().enumerate() {
        if detailed {
            if i > 0 {
                out.push(b'\n');
            }
            out.extend_from_slice(detailed_pair(p, b64).as_bytes());
        } else {
            out.extend_from_slice(p.key.as_bytes());
            out.push(b':');
            out.extend_from_slice(&value_bytes(&p.value, b64));
            out.push(b'\n');
        }
    }
    out
}

/// `kv get -detailed` output for one pair (the value is shown lossily as UTF-8).
pub fn detailed_pair(p: &KvPair, b64: bool) -> String {
    let session = match p.session.as_deref() {
        None | Some("") => "-".to_string(),
        Some(s) => s.to_string(),
    };
    let value = String::from_utf8_lossy(&value_bytes(&p.value, b64)).into_owned();
    let rows = vec![
        row(["CreateIndex", &p.create_index.to_string()]),
        row(["Flags", &p.flags.to_string()]),
        row(["Key", &p.key]),
        row(["LockIndex", &p.lock_index.to_string()]),
        row(["ModifyIndex", &p.modify_index.to_string()]),
        row(["Session", &session]),
        row(["Value", &value]),
    ];
    align(&rows, 6)
}

/// The DATA of `kv put`: literal, `-` (stdin) or `@file`, optionally base64-decoded.
fn read_data(arg: Option<&str>, b64: bool) -> Result<Vec<u8>, CliError> {
    let raw = match arg {
        None => Vec::new(),
        Some("-") => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .map_err(CliError::ctx("Error! Failed to read stdin"))?;
            buf
        }
        Some(a) if a.starts_with('@') => std::fs::read(&a[1..]).map_err(|e| {
            CliError::failed(format!("Error! Failed to read file {}: {e}", &a[1..]))
        })?,
        Some(a) => a.as_bytes().to_vec(),
    };
    if b64 {
        let text = String::from_utf8_lossy(&raw);
        base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(CliError::ctx("Error! Cannot base 64 decode data"))
    } else {
        Ok(raw)
    }
}

async fn put(args: Vec<String>) -> Result<(), CliError> {
    let flags = super::parse_flags(PUT_HELP, PUT_SPECS, true, &args)?;
    let (key, data) = match flags.args.as_slice() {
        [] => return Err(CliError::usage("Error! Missing KEY argument", PUT_HELP)),
        [k] => (k.clone(), None),
        [k, d] => (k.clone(), Some(d.clone())),
        more => {
            return Err(CliError::usage(
                format!(
                    "error: too many arguments (expected 1 or 2, got {})",
                    more.len()
                ),
                PUT_HELP,
            ))
        }
    };
    if key.starts_with('/') {
        return Err(CliError::failed("Error! Key must not begin with a '/'"));
    }
    let kv_flags = super::flag_value(flags.u64("flags"), PUT_HELP)?;
    let modify_index = super::flag_value(flags.u64("modify-index"), PUT_HELP)?;
    let cas = flags.bool("cas").then(|| modify_index.unwrap_or(0));
    let value = read_data(data.as_deref(), flags.bool("base64"))?;
    let client = super::client(&flags)?;
    let ok = client
        .kv_put(&key, &value, kv_flags, cas)
        .await
        .map_err(CliError::ctx("Error! Failed writing data"))?;
    if !ok {
        return Err(CliError::failed(if cas.is_some() {
            format!("Error! Did not write to {key}: CAS failed")
        } else {
            format!("Error! Failed writing data to: {key}")
        }));
    }
    say(&format!("Success! Data written to: {key}"))
}

async fn delete(args: Vec<String>) -> Result<(), CliError> {
    let flags = super::parse_flags(DELETE_HELP, DELETE_SPECS, true, &args)?;
    let key = key_arg(&flags, DELETE_HELP)?.unwrap_or_default();
    let recurse = flags.bool("recurse");
    let cas = flags.bool("cas");
    if cas && recurse {
        return Err(CliError::usage(
            "Cannot specify both -cas and -recurse!",
            DELETE_HELP,
        ));
    }
    if key.is_empty() && !recurse {
        return Err(CliError::usage("Error! Missing KEY argument", DELETE_HELP));
    }
    let modify_index = super::flag_value(flags.u64("modify-index"), DELETE_HELP)?;
    let client = super::client(&flags)?;
    if cas {
        let Some(index) = modify_index else {
            return Err(CliError::usage(
                "Must specify -modify-index with -cas!",
                DELETE_HELP,
            ));
        };
        let ok = client
            .kv_delete_cas(&key, index)
            .await
            .map_err(CliError::ctx(&format!("Error! Did not delete key {key}")))?;
        if !ok {
            return Err(CliError::failed(format!(
                "Error! Did not delete key {key}: CAS failed"
            )));
        }
        return say(&format!("Success! Deleted key: {key}"));
    }
    client
        .kv_delete(&key, recurse)
        .await
        .map_err(CliError::ctx(&format!("Error! Did not delete key {key}")))?;
    if recurse {
        say(&format!("Success! Deleted keys with prefix: {key}"))
    } else {
        say(&format!("Success! Deleted key: {key}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(key: &str, value: &str) -> KvPair {
        KvPair {
            key: key.into(),
            value: value.as_bytes().to_vec(),
            create_index: 5,
            modify_index: 7,
            ..Default::default()
        }
    }

    #[test]
    fn detailed_matches_consul_layout() {
        assert_eq!(
            detailed_pair(&pair("foo", "bar"), false),
            "CreateIndex      5\nFlags            0\nKey              foo\nLockIndex        0\n\
             ModifyIndex      7\nSession          -\nValue            bar\n"
        );
        assert!(detailed_pair(&pair("foo", "bar"), true).ends_with("Value            YmFy\n"));
    }

    #[test]
    fn recurse_lines() {
        let out = recurse_output(&[pair("a/b", "1"), pair("a/c", "x:y")], false, false);
        assert_eq!(out, b"a/b:1\na/c:x:y\n");
        let out = recurse_output(&[pair("a", "1"), pair("b", "2")], true, false);
        let s = String::from_utf8(out).unwrap();
        assert!(s.contains("Value            1\n\nCreateIndex"));
    }

    #[test]
    fn data_sources() {
        assert_eq!(read_data(None, false).unwrap(), b"");
        assert_eq!(read_data(Some("hi"), false).unwrap(), b"hi");
        assert_eq!(read_data(Some("aGk="), true).unwrap(), b"hi");
        assert!(read_data(Some("!!"), true).is_err());
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("v");
        std::fs::write(&p, b"from file").unwrap();
        let arg = format!("@{}", p.display());
        assert_eq!(read_data(Some(&arg), false).unwrap(), b"from file");
        assert!(read_data(Some("@/nonexistent/x"), false).is_err());
    }
}
