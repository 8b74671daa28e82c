//! Printing for people or for scripts (`--json`): resources, lists and aligned tables.

use serde_json::Value;

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
    pub fn value(&self, value: &Value) {
        if self.json {
            println!("{value}");
        } else {
            println!(
                "{}",
                serde_json::to_string_pretty(value).expect("JSON values serialize")
            );
        }
    }

    /// Many resources: a JSON line each for scripts, a table of `columns` (proto JSON field
    /// names) for people.
    pub fn list(&self, values: &[Value], columns: &[&str]) {
        if self.json {
            values.iter().for_each(|v| println!("{v}"));
            return;
        }
        let rows: Vec<Vec<String>> = values
            .iter()
            .map(|v| columns.iter().map(|c| cell(&v[*c])).collect())
            .collect();
        print!("{}", table(columns, &rows));
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
