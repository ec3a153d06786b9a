//! Query-string parsing with Consul's conventions: flags by presence (`?recurse`),
//! repeated parameters (`?tag=a&tag=b`), Go durations (`?wait=30s`), and clear 400s for
//! values that do not parse.

use std::time::Duration;

use axum::http::Uri;

use crate::reply::{Consistency, HttpError};

/// Parsed query parameters of one request, in order.
#[derive(Debug, Default, Clone)]
pub struct Query {
    pairs: Vec<(String, String)>,
    /// A service-discovery read (catalog and health of one service): the agent's
    /// `discovery_max_stale` applies to it.
    discovery: bool,
}

impl Query {
    /// Parses the query of `uri`.
    pub fn from_uri(uri: &Uri) -> Query {
        let pairs = uri
            .query()
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        Query {
            pairs,
            discovery: false,
        }
    }

    /// Marks this as a service-discovery read (`discovery_max_stale` applies).
    pub fn for_discovery(mut self) -> Query {
        self.discovery = true;
        self
    }

    /// Whether this is a service-discovery read.
    pub fn is_discovery(&self) -> bool {
        self.discovery
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a repeated parameter.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// A flag: present (with no value, or any value but false/0) means true.
    pub fn flag(&self, name: &str) -> bool {
        match self.get(name) {
            None => false,
            Some(v) => !matches!(v.to_ascii_lowercase().as_str(), "false" | "0"),
        }
    }

    /// An unsigned integer parameter; a malformed value is a 400.
    pub fn u64(&self, name: &str) -> Result<Option<u64>, HttpError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => v.parse::<u64>().map(Some).map_err(|_| {
                HttpError::bad_request(format!(
                    "Invalid {name} value {v:?}: must be an unsigned integer"
                ))
            }),
        }
    }

    /// A Go-duration parameter; malformed is a 400.
    pub fn duration(&self, name: &str) -> Result<Option<Duration>, HttpError> {
        match self.get(name) {
            None | Some("") => Ok(None),
            Some(v) => cairn_types::duration::parse_duration(v)
                .map(Some)
                .map_err(|e| HttpError::bad_request(format!("Invalid {name}: {e}"))),
        }
    }

    pub fn pretty(&self) -> bool {
        self.get("pretty").is_some()
    }

    /// Requested consistency mode (`?stale` / `?consistent`; both is a 400). A positive
    /// `?max_stale=` asks for a stale read too, as in Consul.
    pub fn consistency(&self) -> Result<Consistency, HttpError> {
        let max_stale = self.duration("max_stale")?.is_some_and(|d| !d.is_zero());
        let stale = self.get("stale").is_some() || max_stale;
        let consistent = self.get("consistent").is_some();
        match (stale, consistent) {
            (true, true) => Err(HttpError::bad_request(
                "Cannot specify ?stale with ?consistent, conflicting semantics.",
            )),
            (true, false) => Ok(Consistency::Stale),
            (false, true) => Ok(Consistency::Consistent),
            _ => Ok(Consistency::Leader),
        }
    }

    /// `?dc=`: only the local datacenter exists; another one is a clear error.
    pub fn check_dc(&self, local: &str) -> Result<(), HttpError> {
        match self.get("dc") {
            None | Some("") => Ok(()),
            Some(dc) if dc == local => Ok(()),
            Some(dc) => Err(HttpError::internal(format!("No path to datacenter {dc:?}"))),
        }
    }

    /// `?node-meta=k:v` pairs (repeatable, all must match).
    pub fn node_meta(&self) -> Result<Vec<(String, String)>, HttpError> {
        self.all("node-meta")
            .into_iter()
            .map(|kv| match kv.split_once(':') {
                Some((k, v)) => Ok((k.to_string(), v.to_string())),
                None => Err(HttpError::bad_request(format!(
                    "Invalid node-meta {kv:?}: expected key:value"
                ))),
            })
            .collect()
    }

    /// The compiled `?filter=` expression, if any.
    pub fn filter(&self) -> Result<Option<crate::filter::Filter>, HttpError> {
        match self.get("filter") {
            None | Some("") => Ok(None),
            Some(f) => crate::filter::Filter::parse(f).map(Some).map_err(|e| {
                HttpError::bad_request(format!(
                    "Failed to create boolean expression evaluator: {e}"
                ))
            }),
        }
    }
}

/// Decodes a path segment captured after `prefix`: percent-decoding, UTF-8 and the
/// linefeed rule (`%0a` is rejected even when encoded).
pub fn decode_path(raw_path: &str, prefix: &str) -> Result<String, HttpError> {
    let rest = raw_path.strip_prefix(prefix).unwrap_or("");
    let bytes: Vec<u8> = percent_encoding::percent_decode_str(rest).collect();
    let s = String::from_utf8(bytes)
        .map_err(|_| HttpError::bad_request("Invalid UTF-8 in the request path"))?;
    if s.contains('\n') || s.contains('\r') || s.contains('\0') {
        return Err(HttpError::bad_request(
            "Invalid request path: line feeds and NUL are not allowed",
        ));
    }
    Ok(s)
}

/// Validates a name taken from an axum path segment (already decoded).
pub fn check_name(s: &str, what: &str) -> Result<(), HttpError> {
    if s.is_empty() {
        return Err(HttpError::bad_request(format!("Missing {what}")));
    }
    if s.contains('\n') || s.contains('\r') || s.contains('\0') {
        return Err(HttpError::bad_request(format!(
            "Invalid {what}: line feeds and NUL are not allowed"
        )));
    }
    Ok(())
}

/// Refuses a JSON body with a NUL byte in any string (as a NUL in a URL is refused).
pub fn reject_nul(v: &serde_json::Value) -> Result<(), HttpError> {
    match cairn_types::input::find_nul(v) {
        None => Ok(()),
        Some(path) => Err(HttpError::bad_request(format!(
            "Request decode failed: {path} contains a NUL byte, which is not allowed"
        ))),
    }
}
