//! A tiny Markdown table: a header, each column left- or right-aligned, rows of cells.

use std::fmt::Write as _;

/// A Markdown table under construction.
#[derive(Debug, Clone)]
pub struct Table {
    header: Vec<String>,
    /// One `l` (text) or `r` (number) per column.
    align: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headings, aligned as `align` says: one `l` (left, text) or
    /// `r` (right, numbers) per column, e.g. `"lrrl"`.
    pub fn new<I, S>(header: I, align: &str) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let header: Vec<String> = header.into_iter().map(Into::into).collect();
        assert_eq!(header.len(), align.len(), "one alignment per column");
        Self {
            header,
            align: align.chars().map(|c| c == 'r').collect(),
            rows: Vec::new(),
        }
    }

    pub fn row<I, S>(&mut self, cells: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.rows.push(cells.into_iter().map(Into::into).collect());
    }

    /// The table as Markdown, followed by a blank line.
    pub fn render(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "| {} |", self.header.join(" | "));
        let rule: Vec<&str> = self
            .align
            .iter()
            .map(|&right| if right { "---:" } else { "---" })
            .collect();
        let _ = writeln!(md, "|{}|", rule.join("|"));
        for row in &self.rows {
            let _ = writeln!(md, "| {} |", row.join(" | "));
        }
        md.push('\n');
        md
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_aligned_markdown() {
        let mut t = Table::new(["stack", "c", "req/s", "verdict"], "lrrl");
        t.row(["axum", "1", "12,345", "passed"]);
        assert_eq!(
            t.render(),
            "| stack | c | req/s | verdict |\n|---|---:|---:|---|\n| axum | 1 | 12,345 | passed |\n\n"
        );
    }
}
