//! URL building helpers: Consul keys and names go into paths, so they must be percent-encoded
//! per segment (keeping `/`), and query strings need the same care.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use std::time::Duration;

/// Characters left as-is in a path segment or query component: RFC 3986 unreserved.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes one path segment or query component (encodes `/` too).
pub fn encode_component(s: &str) -> String {
    utf8_percent_encode(s, COMPONENT).to_string()
}

/// Percent-encodes a KV key or other slash-separated path, segment by segment, keeping `/`.
///
/// A leading `/` is dropped, as the Consul Go client does (`/a/b` and `a/b` are the same key).
pub fn encode_key_path(key: &str) -> String {
    key.strip_prefix('/')
        .unwrap_or(key)
        .split('/')
        .map(encode_component)
        .collect::<Vec<_>>()
        .join("/")
}

/// Formats a duration the way Consul's `wait` parameter expects (`"10s"`, `"1500ms"`).
pub fn format_wait(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// A small query-string builder supporting bare flags (`?recurse`) and `k=v` pairs.
#[derive(Debug, Default)]
pub(crate) struct Query {
    parts: Vec<String>,
}

impl Query {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Adds a bare flag such as `recurse`.
    pub(crate) fn flag(mut self, name: &str) -> Self {
        self.parts.push(encode_component(name));
        self
    }

    /// Adds a bare flag when `on` is true.
    pub(crate) fn flag_if(self, name: &str, on: bool) -> Self {
        if on {
            self.flag(name)
        } else {
            self
        }
    }

    /// Adds `name=value`.
    pub(crate) fn pair(mut self, name: &str, value: impl AsRef<str>) -> Self {
        self.parts.push(format!(
            "{}={}",
            encode_component(name),
            encode_component(value.as_ref())
        ));
        self
    }

    /// Adds `name=value` when a value is present.
    pub(crate) fn opt<V: ToString>(self, name: &str, value: Option<V>) -> Self {
        match value {
            Some(v) => self.pair(name, v.to_string()),
            None => self,
        }
    }

    /// Appends the query (with its `?`) to `path`.
    pub(crate) fn to_path(&self, path: &str) -> String {
        if self.parts.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{}", self.parts.join("&"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_path_keeps_slashes_and_encodes_segments() {
        assert_eq!(encode_key_path("a/b c/d?e"), "a/b%20c/d%3Fe");
        assert_eq!(encode_key_path("/leading"), "leading");
        assert_eq!(encode_key_path("dir/"), "dir/");
        assert_eq!(encode_key_path(""), "");
        assert_eq!(encode_key_path("ünï#%"), "%C3%BCn%C3%AF%23%25");
    }

    #[test]
    fn query_builder() {
        let q = Query::new()
            .flag("recurse")
            .pair("separator", "/")
            .opt("flags", Some(3u64))
            .opt::<u64>("cas", None)
            .flag_if("keys", false);
        assert_eq!(
            q.to_path("/v1/kv/x"),
            "/v1/kv/x?recurse&separator=%2F&flags=3"
        );
        assert_eq!(Query::new().to_path("/p"), "/p");
    }

    #[test]
    fn wait_format() {
        assert_eq!(format_wait(Duration::from_secs(30)), "30s");
        assert_eq!(format_wait(Duration::from_millis(1500)), "1500ms");
    }
}
