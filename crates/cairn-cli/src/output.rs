//! Output helpers: column alignment in the style of Go's `columnize`/`tabwriter` (which the
//! `consul` CLI uses, so tables line up the same way) and stdout writing that never panics.

use crate::error::CliError;
use std::io::Write;

/// Aligns `rows` into columns separated by at least `gap` spaces. Every column but the last
/// is padded to its widest cell; trailing spaces are trimmed. `gap = 2` matches `columnize`,
/// `gap = 6` the `tabwriter` settings Consul uses for key/value listings.
pub fn align(rows: &[Vec<String>], gap: usize) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; cols];
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i + 1 < row.len() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if i + 1 < row.len() {
                let pad = widths[i] - cell.chars().count() + gap;
                line.push_str(&" ".repeat(pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Converts string slices into an owned row.
pub fn row<const N: usize>(cells: [&str; N]) -> Vec<String> {
    cells.iter().map(|c| c.to_string()).collect()
}

/// Writes bytes to stdout. A closed pipe (`cairn kv get -recurse | head`) ends quietly.
pub fn write_stdout(bytes: &[u8]) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(CliError::failed(format!("Error writing output: {e}"))),
    }
}

/// Writes a line of text to stdout.
pub fn say(line: &str) -> Result<(), CliError> {
    let mut s = String::with_capacity(line.len() + 1);
    s.push_str(line);
    s.push('\n');
    write_stdout(s.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_like_columnize() {
        let rows = vec![
            row(["Node", "Address", "Status"]),
            row(["a-long-name", "1.2.3.4:8301", "alive"]),
        ];
        assert_eq!(
            align(&rows, 2),
            "Node         Address       Status\na-long-name  1.2.3.4:8301  alive\n"
        );
    }

    #[test]
    fn last_column_not_padded_and_empty_cells_ok() {
        let rows = vec![row(["CreateIndex", "5"]), row(["Session", ""])];
        assert_eq!(align(&rows, 6), "CreateIndex      5\nSession\n");
        assert_eq!(align(&[], 2), "");
    }

    #[test]
    fn counts_chars_not_bytes() {
        let rows = vec![row(["ü", "x"]), row(["ab", "y"])];
        assert_eq!(align(&rows, 1), "ü  x\nab y\n");
    }
}
