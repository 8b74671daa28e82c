//! Printing for people or for scripts (`--json`): resources, lists and aligned tables.

use std::fmt::Display;
use std::io::{self, Write};

use serde::Serialize;
use serde_json::Value;

use super::json::ProtoJson;

/// Prints a line on standard output; an error (a closed pipe) ends the command instead of
/// panicking as `println!` would.
pub fn line(text: impl Display) -> io::Result<()> {
    writeln!(io::stdout().lock(), "{text}")
}

/// How results are printed.
#[derive(Clone, Copy, Debug)]
pub struct Output {
    /// One JSON object per line instead of text for people.
    pub json: bool,
}

impl Output {
    /// Output in the mode chosen by `--json`.
    pub fn new(json: bool) -> Self {
        Output { json }
    }

    /// One resource: a JSON line for scripts, indented JSON (as grpcurl shows it) for people.
    pub fn value(&self, value: &impl Serialize) -> io::Result<()> {
        let text = if self.json {
            serde_json::to_string(value)
        } else {
            serde_json::to_string_pretty(value)
        };
        line(text.map_err(io::Error::other)?)
    }

    /// A message for people; nothing for scripts.
    pub fn note(&self, text: impl Display) -> io::Result<()> {
        if self.json { Ok(()) } else { line(text) }
    }

    /// Many resources: a JSON line each for scripts, a table of `columns` (proto JSON field
    /// names) for people.
    pub fn list(&self, items: &[ProtoJson], columns: &[&str]) -> io::Result<()> {
        if self.json {
            return items.iter().try_for_each(|item| self.value(item));
        }
        let rows: Vec<Vec<String>> = items
            .iter()
            .map(|item| {
                let value = item.value();
                columns.iter().map(|c| cell(&value[*c])).collect()
            })
            .collect();
        write!(io::stdout().lock(), "{}", table(columns, &rows))
    }
}

/// A JSON value as a table cell: text unquoted, lists joined, nothing for null.
fn cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(cell).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

/// Left-aligned columns separated by two spaces, header first.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut text = line(headers.to_vec());
    for row in rows {
        text.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    text
}

/// The extension of a file name, lowercase (`report.XML` -> `xml`).
pub fn extension(path: &std::path::Path) -> Option<String> {
    path.extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
}

/// The first line of `text`, cut to `max` characters with an ellipsis.
pub fn shorten(text: &str, max: usize) -> String {
    let first = text.lines().next().unwrap_or("");
    if first.chars().count() <= max && first.len() == text.trim_end().len() {
        return first.to_string();
    }
    let cut: String = first.chars().take(max.saturating_sub(1)).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns() {
        let text = table(
            &["NAME", "N"],
            &[
                vec!["a".into(), "10".into()],
                vec!["long".into(), "2".into()],
            ],
        );
        assert_eq!(text, "NAME  N\na     10\nlong  2\n");
    }

    #[test]
    fn shorten_keeps_short_text_and_cuts_long_or_multiline_text() {
        assert_eq!(shorten("short", 10), "short");
        assert_eq!(shorten("a long prompt", 6), "a lon…");
        assert_eq!(shorten("line one\nline two", 40), "line one…");
    }
}
