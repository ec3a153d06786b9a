//! The snapshot archive of `/v1/snapshot` and `cairn snapshot`: Consul's shape, our state.
//!
//! An archive is a gzip-compressed tar holding three files, as Consul's does:
//!
//! - `meta.json`: `{"Version":1,"ID":..,"Index":..,"Term":..,"Size":..,"Encoding":..}`;
//! - `state.bin`: the replicated state. Consul writes its own msgpack records here; Cairn
//!   writes its [`State`] as JSON (`Encoding` says so), so archives do not cross between
//!   the two systems;
//! - `SHA256SUMS`: `<hex>  <name>` lines for the two files above.
//!
//! Reading is strict and bounded, because an archive comes from outside: the compressed
//! size, the decompressed size (a gzip bomb stops at the limit) and each member's size are
//! capped; unknown or duplicate members, a missing or wrong checksum, an unknown version
//! or encoding, and a size that disagrees with `meta.json` are errors naming what is wrong.
//! Everything is checked before anything changes: the caller gets a decoded [`State`] or
//! an error, never half of one.

use std::collections::BTreeMap;
use std::io::Read;

use cairn_state::State;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The archive format version this build writes and reads (`meta.json` `Version`).
pub const VERSION: u32 = 1;
/// How `state.bin` is encoded (`meta.json` `Encoding`).
pub const ENCODING: &str = "cairn-state-json-1";

/// Size limits applied when reading an archive.
#[derive(Debug, Clone, Copy)]
pub struct ArchiveLimits {
    /// Most compressed bytes accepted.
    pub max_compressed: usize,
    /// Most bytes the gzip stream may inflate to (the tar as a whole).
    pub max_decompressed: u64,
    /// Most bytes of `state.bin`.
    pub max_state: u64,
}

impl Default for ArchiveLimits {
    fn default() -> Self {
        ArchiveLimits {
            max_compressed: 64 << 20,
            max_decompressed: 256 << 20,
            max_state: 200 << 20,
        }
    }
}

/// `meta.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Meta {
    pub version: u32,
    #[serde(rename = "ID")]
    pub id: String,
    pub index: u64,
    pub term: u64,
    /// Bytes of `state.bin`.
    pub size: u64,
    /// How `state.bin` is encoded ([`ENCODING`]).
    #[serde(default)]
    pub encoding: String,
}

/// Why an archive was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArchiveError {
    #[error("snapshot archive is larger than {0} bytes")]
    TooLarge(usize),
    #[error("snapshot archive inflates to more than {0} bytes")]
    Bomb(u64),
    #[error("snapshot archive is not a gzip-compressed tar: {0}")]
    NotArchive(String),
    #[error("snapshot archive member {name} is larger than {limit} bytes")]
    MemberTooLarge { name: String, limit: u64 },
    #[error("snapshot archive has an unexpected member {0:?}")]
    UnexpectedMember(String),
    #[error("snapshot archive has {0} twice")]
    Duplicate(String),
    #[error("snapshot archive lacks {0}")]
    Missing(&'static str),
    #[error("snapshot archive checksum mismatch for {0}")]
    Checksum(String),
    #[error("snapshot archive meta.json is invalid: {0}")]
    BadMeta(String),
    #[error("snapshot archive version {0} is not supported (this build reads version {VERSION})")]
    Version(u32),
    #[error("snapshot state.bin is encoded as {0:?}, not {ENCODING:?} (Consul's own snapshots cannot be restored into Cairn)")]
    Encoding(String),
    #[error("snapshot state.bin has {actual} bytes but meta.json says {expected}")]
    SizeMismatch { expected: u64, actual: u64 },
    #[error("snapshot state.bin cannot be decoded: {0}")]
    BadState(String),
}

/// Hex SHA-256 of `bytes`.
fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Encodes `state` as `state.bin`.
pub fn encode_state(state: &State) -> Result<Vec<u8>, ArchiveError> {
    serde_json::to_vec(state).map_err(|e| ArchiveError::BadState(e.to_string()))
}

/// Decodes `state.bin`.
pub fn decode_state(bytes: &[u8]) -> Result<State, ArchiveError> {
    serde_json::from_slice(bytes).map_err(|e| ArchiveError::BadState(e.to_string()))
}

/// Writes an archive of `state_bin` (from [`encode_state`]) taken at `index`/`term`;
/// `now_ms` goes into the ID (`term-index-ms`, as Consul's).
pub fn write_archive(
    state_bin: &[u8],
    index: u64,
    term: u64,
    now_ms: u64,
) -> std::io::Result<Vec<u8>> {
    let meta = Meta {
        version: VERSION,
        id: format!("{term}-{index}-{now_ms}"),
        index,
        term,
        size: state_bin.len() as u64,
        encoding: ENCODING.to_string(),
    };
    let meta_json = serde_json::to_vec_pretty(&meta)?;
    let sums = format!(
        "{}  meta.json\n{}  state.bin\n",
        sha256_hex(&meta_json),
        sha256_hex(state_bin)
    );
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    for (name, bytes) in [
        ("meta.json", meta_json.as_slice()),
        ("state.bin", state_bin),
        ("SHA256SUMS", sums.as_bytes()),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o600);
        h.set_mtime(now_ms / 1000);
        h.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut h, name, bytes)?;
    }
    tar.into_inner()?.finish()
}

/// A verified archive: its metadata and `state.bin`.
#[derive(Debug, Clone)]
pub struct Verified {
    pub meta: Meta,
    pub state_bin: Vec<u8>,
}

/// Reads and verifies an archive within `limits` (see the module docs).
pub fn read_archive(bytes: &[u8], limits: ArchiveLimits) -> Result<Verified, ArchiveError> {
    if bytes.len() > limits.max_compressed {
        return Err(ArchiveError::TooLarge(limits.max_compressed));
    }
    // Inflate into memory first, bounded: one byte over the limit proves a bomb.
    let mut tar_bytes = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .take(limits.max_decompressed + 1)
        .read_to_end(&mut tar_bytes)
        .map_err(|e| ArchiveError::NotArchive(format!("gzip: {e}")))?;
    if tar_bytes.len() as u64 > limits.max_decompressed {
        return Err(ArchiveError::Bomb(limits.max_decompressed));
    }
    let mut members: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut archive = tar::Archive::new(tar_bytes.as_slice());
    let entries = archive
        .entries()
        .map_err(|e| ArchiveError::NotArchive(format!("tar: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| ArchiveError::NotArchive(format!("tar: {e}")))?;
        let name = entry
            .path()
            .map_err(|e| ArchiveError::NotArchive(format!("tar member name: {e}")))?
            .to_string_lossy()
            .into_owned();
        let limit = match name.as_str() {
            "state.bin" => limits.max_state,
            "meta.json" | "SHA256SUMS" => 64 * 1024,
            _ => return Err(ArchiveError::UnexpectedMember(name)),
        };
        if !entry.header().entry_type().is_file() {
            return Err(ArchiveError::UnexpectedMember(name));
        }
        if entry.size() > limit {
            return Err(ArchiveError::MemberTooLarge { name, limit });
        }
        let mut data = Vec::with_capacity(entry.size() as usize);
        (&mut entry)
            .take(limit + 1)
            .read_to_end(&mut data)
            .map_err(|e| ArchiveError::NotArchive(format!("tar member {name}: {e}")))?;
        if data.len() as u64 > limit {
            return Err(ArchiveError::MemberTooLarge { name, limit });
        }
        if members.insert(name.clone(), data).is_some() {
            return Err(ArchiveError::Duplicate(name));
        }
    }
    let meta_json = members
        .remove("meta.json")
        .ok_or(ArchiveError::Missing("meta.json"))?;
    let state_bin = members
        .remove("state.bin")
        .ok_or(ArchiveError::Missing("state.bin"))?;
    let sums = members
        .remove("SHA256SUMS")
        .ok_or(ArchiveError::Missing("SHA256SUMS"))?;
    let sums = parse_sums(&sums)?;
    for (name, data) in [("meta.json", &meta_json), ("state.bin", &state_bin)] {
        match sums.get(name) {
            Some(want) if *want == sha256_hex(data) => {}
            _ => return Err(ArchiveError::Checksum(name.to_string())),
        }
    }
    let meta: Meta =
        serde_json::from_slice(&meta_json).map_err(|e| ArchiveError::BadMeta(e.to_string()))?;
    if meta.version != VERSION {
        return Err(ArchiveError::Version(meta.version));
    }
    if meta.encoding != ENCODING {
        return Err(ArchiveError::Encoding(meta.encoding));
    }
    if meta.size != state_bin.len() as u64 {
        return Err(ArchiveError::SizeMismatch {
            expected: meta.size,
            actual: state_bin.len() as u64,
        });
    }
    Ok(Verified { meta, state_bin })
}

/// `SHA256SUMS` as name -> lower-case hex.
fn parse_sums(bytes: &[u8]) -> Result<BTreeMap<String, String>, ArchiveError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| ArchiveError::Checksum("SHA256SUMS (not text)".into()))?;
    let mut out = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (hex, name) = line
            .split_once("  ")
            .ok_or_else(|| ArchiveError::Checksum(format!("SHA256SUMS line {line:?}")))?;
        out.insert(name.trim().to_string(), hex.trim().to_ascii_lowercase());
    }
    Ok(out)
}

/// One row of `cairn snapshot inspect`'s table: a record type, how many, their bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeCount {
    pub kind: &'static str,
    pub count: usize,
    pub bytes: usize,
}

/// Counts the records of `state` per type (sizes are their JSON encodings), largest
/// first, as Consul's inspect lists them.
pub fn type_counts(state: &State) -> Vec<TypeCount> {
    fn size<T: Serialize>(v: &T) -> usize {
        serde_json::to_vec(v).map(|b| b.len()).unwrap_or(0)
    }
    let mut rows = vec![
        TypeCount {
            kind: "Node",
            count: 0,
            bytes: 0,
        },
        TypeCount {
            kind: "Service",
            count: 0,
            bytes: 0,
        },
        TypeCount {
            kind: "Check",
            count: 0,
            bytes: 0,
        },
        TypeCount {
            kind: "KVS",
            count: 0,
            bytes: 0,
        },
        TypeCount {
            kind: "Session",
            count: 0,
            bytes: 0,
        },
    ];
    for rec in state.node_records() {
        rows[0].count += 1;
        rows[0].bytes += size(&rec.node);
        rows[1].count += rec.services.len();
        rows[1].bytes += rec.services.values().map(size).sum::<usize>();
        rows[2].count += rec.checks.len();
        rows[2].bytes += rec.checks.values().map(size).sum::<usize>();
    }
    let (kv, _) = state.kv_list("");
    rows[3].count = kv.len();
    rows[3].bytes = kv.iter().map(size).sum();
    let (sessions, _) = state.sessions();
    rows[4].count = sessions.len();
    rows[4].bytes = sessions.iter().map(size).sum();
    // Consul's record type names for the ACL tables; present only when there are some.
    let (tokens, _) = state.acl_tokens();
    let (policies, _) = state.acl_policies();
    let (roles, _) = state.acl_roles();
    for (kind, count, bytes) in [
        ("ACLToken", tokens.len(), tokens.iter().map(size).sum()),
        ("ACLPolicy", policies.len(), policies.iter().map(size).sum()),
        ("ACLRole", roles.len(), roles.iter().map(size).sum()),
    ] {
        if count > 0 {
            rows.push(TypeCount { kind, count, bytes });
        }
    }
    rows.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.kind.cmp(b.kind)));
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_state::{Command, KvOp, KvVerb};
    use std::io::Write;

    fn sample() -> State {
        let mut st = State::new();
        let mut op = KvOp::new(KvVerb::Set, "a/b");
        op.value = b"hello".to_vec();
        st.apply(5, &Command::Kv(op));
        let token = cairn_state::AclToken {
            accessor_id: "acc".into(),
            secret_id: "sec".into(),
            ..Default::default()
        };
        st.apply(
            6,
            &Command::AclBootstrap(cairn_state::AclBootstrap {
                token,
                initial: true,
            }),
        );
        st
    }

    fn archive_of(members: &[(&str, &[u8])]) -> Vec<u8> {
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut tar = tar::Builder::new(gz);
        for (name, bytes) in members {
            let mut h = tar::Header::new_gnu();
            h.set_size(bytes.len() as u64);
            h.set_mode(0o600);
            tar.append_data(&mut h, name, *bytes).unwrap();
        }
        tar.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn round_trip() {
        let bin = encode_state(&sample()).unwrap();
        let a = write_archive(&bin, 5, 2, 1_700_000_000_000).unwrap();
        let v = read_archive(&a, ArchiveLimits::default()).unwrap();
        assert_eq!(v.meta.index, 5);
        assert_eq!(v.meta.term, 2);
        assert_eq!(v.meta.id, "2-5-1700000000000");
        assert_eq!(v.meta.size, bin.len() as u64);
        assert_eq!(decode_state(&v.state_bin).unwrap(), sample());
        let rows = type_counts(&sample());
        let kvs = rows.iter().find(|r| r.kind == "KVS").unwrap();
        assert_eq!(kvs.count, 1);
        let count = |kind: &str| rows.iter().find(|r| r.kind == kind).map(|r| r.count);
        assert_eq!(count("ACLToken"), Some(2), "management + anonymous");
        assert_eq!(count("ACLPolicy"), Some(1), "global-management");
        assert_eq!(count("ACLRole"), None, "no roles, no row");
        let back = decode_state(&v.state_bin).unwrap();
        assert!(
            back.acl_token_by_secret("sec").is_some(),
            "tokens travel in archives"
        );
    }

    #[test]
    fn every_flaw_is_refused_with_its_reason() {
        let bin = encode_state(&sample()).unwrap();
        let good = write_archive(&bin, 5, 2, 0).unwrap();
        let lim = ArchiveLimits::default();

        // A flipped byte in the compressed stream: gzip's CRC or the tar catches it.
        let mut flipped = good.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0xff;
        assert!(read_archive(&flipped, lim).is_err());
        // Truncated.
        assert!(matches!(
            read_archive(&good[..good.len() / 2], lim),
            Err(ArchiveError::NotArchive(_))
        ));
        assert!(matches!(
            read_archive(b"not gzip at all", lim),
            Err(ArchiveError::NotArchive(_))
        ));
        // Too large, before and after inflating.
        let small = ArchiveLimits {
            max_compressed: 10,
            ..lim
        };
        assert_eq!(
            read_archive(&good, small).unwrap_err(),
            ArchiveError::TooLarge(10)
        );
        let zeros = vec![0u8; 4 << 20];
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&zeros).unwrap();
        let bomb = enc.finish().unwrap();
        let tight = ArchiveLimits {
            max_decompressed: 1 << 20,
            ..lim
        };
        assert_eq!(
            read_archive(&bomb, tight).unwrap_err(),
            ArchiveError::Bomb(1 << 20)
        );
        // A state.bin whose checksum does not match.
        let v = read_archive(&good, lim).unwrap();
        let meta_json = serde_json::to_vec_pretty(&v.meta).unwrap();
        let sums = format!(
            "{}  meta.json\n{}  state.bin\n",
            sha256_hex(&meta_json),
            sha256_hex(b"other")
        );
        let bad = archive_of(&[
            ("meta.json", &meta_json),
            ("state.bin", &bin),
            ("SHA256SUMS", sums.as_bytes()),
        ]);
        assert_eq!(
            read_archive(&bad, lim).unwrap_err(),
            ArchiveError::Checksum("state.bin".into())
        );
        // Missing member, unexpected member.
        let no_sums = archive_of(&[("meta.json", &meta_json), ("state.bin", &bin)]);
        assert_eq!(
            read_archive(&no_sums, lim).unwrap_err(),
            ArchiveError::Missing("SHA256SUMS")
        );
        let extra = archive_of(&[("etc/passwd", b"x")]);
        assert!(matches!(
            read_archive(&extra, lim),
            Err(ArchiveError::UnexpectedMember(_))
        ));
        // Another version.
        let mut m2 = v.meta.clone();
        m2.version = 2;
        let meta2 = serde_json::to_vec(&m2).unwrap();
        let sums2 = format!(
            "{}  meta.json\n{}  state.bin\n",
            sha256_hex(&meta2),
            sha256_hex(&bin)
        );
        let v2 = archive_of(&[
            ("meta.json", &meta2),
            ("state.bin", &bin),
            ("SHA256SUMS", sums2.as_bytes()),
        ]);
        assert_eq!(
            read_archive(&v2, lim).unwrap_err(),
            ArchiveError::Version(2)
        );
    }
}
