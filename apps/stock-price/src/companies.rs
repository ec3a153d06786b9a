//! The built-in company table: the committed `data/companies.tsv` (symbol,
//! name) embedded in the binary, parsed once, looked up by symbol.

use std::collections::HashMap;

const COMPANIES_TSV: &str = include_str!("../data/companies.tsv");

/// Symbol -> company name, symbols upper-case.
#[derive(Debug, Clone)]
pub struct Companies {
    by_symbol: HashMap<String, String>,
}

impl Companies {
    /// The embedded table.
    pub fn builtin() -> Self {
        Self::parse(COMPANIES_TSV)
    }

    /// Parses `symbol<TAB>name` lines; `#` comments, the header line and
    /// malformed lines are skipped.
    pub fn parse(text: &str) -> Self {
        let by_symbol = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.starts_with("symbol\t"))
            .filter_map(|l| l.split_once('\t'))
            .filter(|(s, n)| !s.is_empty() && !n.is_empty())
            .map(|(s, n)| (s.to_ascii_uppercase(), n.to_string()))
            .collect();
        Self { by_symbol }
    }

    /// The company name of `symbol` (already normalised by [`normalise`]).
    pub fn name(&self, symbol: &str) -> Option<&str> {
        self.by_symbol.get(symbol).map(String::as_str)
    }

    /// How many companies the table holds.
    pub fn len(&self) -> usize {
        self.by_symbol.len()
    }

    /// True when the table is empty.
    pub fn is_empty(&self) -> bool {
        self.by_symbol.is_empty()
    }
}

/// The longest symbol accepted.
pub const MAX_SYMBOL_LEN: usize = 16;

/// Upper-cases a symbol typed by a user; `None` when it is empty, too long or
/// holds anything but letters, digits, `.` and `-`.
pub fn normalise(symbol: &str) -> Option<String> {
    let s = symbol.trim();
    let ok = !s.is_empty()
        && s.len() <= MAX_SYMBOL_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    ok.then(|| s.to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_table_has_over_500_real_companies() {
        let c = Companies::builtin();
        assert!(c.len() >= 500, "only {} companies", c.len());
        assert_eq!(c.name("AMZN"), Some("Amazon"));
        assert_eq!(c.name("AAPL"), Some("Apple Inc."));
        assert_eq!(c.name("MSFT"), Some("Microsoft"));
    }

    #[test]
    fn normalise_accepts_symbols_and_rejects_junk() {
        assert_eq!(normalise("amzn").as_deref(), Some("AMZN"));
        assert_eq!(normalise("BRK.B").as_deref(), Some("BRK.B"));
        assert_eq!(normalise(""), None);
        assert_eq!(normalise("A B"), None);
        assert_eq!(normalise("<script>"), None);
        assert_eq!(normalise(&"A".repeat(17)), None);
    }

    #[test]
    fn parse_skips_comments_header_and_bad_lines() {
        let c = Companies::parse("# c\nsymbol\tname\nabc\tAbc Corp\nbroken\n\tNo symbol\n");
        assert_eq!(c.len(), 1);
        assert_eq!(c.name("ABC"), Some("Abc Corp"));
    }
}
