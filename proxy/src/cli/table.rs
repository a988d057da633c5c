//! Output of the data-printing commands: aligned text tables for people, `--json` for
//! scripts. What goes into the rows is each command's business.

use std::fmt::Write as _;

use anyhow::{Context, Result};
use serde::Serialize;

/// `--json`, for every command that prints data.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct JsonArg {
    /// Print JSON (for scripts) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// A table with a header row; columns are as wide as their widest cell.
#[derive(Debug, Clone)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers.
    pub fn new<const N: usize>(headers: [&str; N]) -> Self {
        Self {
            headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; missing cells are blank, extra ones are kept.
    pub fn row<I, S>(&mut self, cells: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.rows.push(cells.into_iter().map(Into::into).collect());
    }

    /// The table as lines of text, each ending in `\n`, columns separated by two spaces and
    /// no trailing blanks.
    pub fn render(&self) -> String {
        let columns = self
            .rows
            .iter()
            .map(Vec::len)
            .chain([self.headers.len()])
            .max()
            .unwrap_or(0);
        let mut widths = vec![0; columns];
        for line in std::iter::once(&self.headers).chain(&self.rows) {
            for (width, cell) in widths.iter_mut().zip(line) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for line in std::iter::once(&self.headers).chain(&self.rows) {
            let mut text = String::new();
            for (i, cell) in line.iter().enumerate() {
                if i > 0 {
                    text.push_str("  ");
                }
                let width = widths[i];
                let _ = write!(text, "{cell:<width$}");
            }
            out.push_str(text.trim_end());
            out.push('\n');
        }
        out
    }
}

/// `key:  value` lines with the values aligned, for `show` commands.
pub fn key_values(pairs: &[(&str, String)]) -> String {
    let width = pairs
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0)
        + 1;
    let mut out = String::new();
    for (key, value) in pairs {
        let label = format!("{key}:");
        let _ = writeln!(out, "{}", format!("{label:<width$}  {value}").trim_end());
    }
    out
}

/// Prints `value` as pretty JSON followed by a newline.
///
/// # Errors
/// Serialization failures (not expected for our plain data types).
pub fn print_json<T: Serialize>(value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value).context("serializing the output")?;
    println!("{text}");
    Ok(())
}

/// `yes` / `no`, for boolean columns.
pub fn yes_no(value: bool) -> &'static str {
    if value {
        "yes"
    } else {
        "no"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_on_the_widest_cell() {
        let mut table = Table::new(["NAME", "ENABLED", "FILE"]);
        table.row(["a-long-name", "yes", "policies/a.json"]);
        table.row(["b", "no", "policies/b.json"]);
        assert_eq!(
            table.render(),
            "NAME         ENABLED  FILE\n\
             a-long-name  yes      policies/a.json\n\
             b            no       policies/b.json\n"
        );
    }

    #[test]
    fn key_values_align() {
        let text = key_values(&[("name", "a".to_owned()), ("tls support", String::new())]);
        assert_eq!(text, "name:         a\ntls support:\n");
    }

    #[test]
    fn short_rows_and_unicode_widths() {
        let mut table = Table::new(["A", "B"]);
        table.row(["é", ""]);
        table.row(["xyz"]);
        assert_eq!(table.render(), "A    B\né\nxyz\n");
    }
}
