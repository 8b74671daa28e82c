//! `test-set import FILE`: reads JSONL, CSV or YAML tests, checks every row (reporting all bad
//! rows with their line numbers), then imports them all or none with one `ImportTests` stream
//! (in pieces, so a large file is never one message).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;

use prost::Message;
use serde_json::{Map, Value};

use super::CliError;
use super::args::{Global, ImportArgs, ImportFormat};
use super::client::Clients;
use super::json::read_text;
use super::output::{Output, extension};
use crate::proto::v1 as pb;

/// The columns a test file may have (besides `metadata.<key>` in CSV).
const COLUMNS: [&str; 7] = [
    "key",
    "prompt",
    "expected_response",
    "behavior",
    "category",
    "topic",
    "metadata",
];

/// Where a row is in its file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Location {
    /// A line number (1-based).
    Line(usize),
    /// An item of a YAML list (1-based) whose line could not be told.
    Item(usize),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Line(n) => write!(f, "line {n}"),
            Location::Item(n) => write!(f, "item {n}"),
        }
    }
}

/// A row as read, before it is checked: an object, or why it could not be read.
type RawRow = (Location, Result<Value, String>);

/// A bad row and what is wrong with it.
type BadRow = (Location, String);

/// Runs the import.
pub async fn run(global: &Global, out: &Output, args: ImportArgs) -> Result<(), CliError> {
    let format = match args.format {
        Some(format) => format,
        None => format_of(&args.file)?,
    };
    let text = read_text(&args.file)?;
    let rows = parse(&text, format)
        .map_err(|e| CliError::input(format!("{}: {e}", args.file.display())))?;
    let (locations, tests) = check(rows).map_err(|bad| bad_rows(&args.file, &bad))?;
    if tests.is_empty() {
        return Err(CliError::input(format!(
            "{}: no tests in the file",
            args.file.display()
        )));
    }
    let clients = Clients::connect(global).await?;
    let unknown = unknown_behaviors(&clients, &tests, &locations).await?;
    if !unknown.is_empty() {
        return Err(bad_rows(&args.file, &unknown));
    }
    let stored = if args.create || args.replace {
        Vec::new()
    } else {
        stored_keys(&clients, &args.test_set).await?
    };
    for warning in duplicates(&tests, &locations, &stored) {
        eprintln!("warning: {}:{warning}", args.file.display());
    }
    // One import on the server: the test set (when created) and every test, or nothing.
    let first = if args.create {
        pb::ImportTestsRequest {
            new_test_set: Some(pb::TestSet {
                name: args.test_set.clone(),
                metrics: args.metrics.clone(),
                ..Default::default()
            }),
            ..Default::default()
        }
    } else {
        pb::ImportTestsRequest {
            test_set: args.test_set.clone(),
            replace: args.replace,
            ..Default::default()
        }
    };
    let messages = std::iter::once(first).chain(pieces(tests));
    let imported = clients
        .test_sets()
        .import_tests(futures::stream::iter(messages))
        .await?
        .into_inner();
    let added = imported.imported_count;
    let test_set_id = imported.test_set.map(|t| t.id).unwrap_or_default();
    if out.json {
        out.value(&serde_json::json!({"testSet": test_set_id, "imported": added}))?;
    } else {
        out.note(format_args!(
            "imported {added} tests into test set {}",
            args.test_set
        ))?;
    }
    Ok(())
}

/// What matches a test with another: its key, else its prompt (as `apply` matches them).
fn match_key(test: &pb::Test) -> &str {
    if test.key.is_empty() {
        &test.prompt
    } else {
        &test.key
    }
}

/// The keys (else prompts) of the tests a test set holds already.
async fn stored_keys(clients: &Clients, test_set: &str) -> Result<Vec<String>, CliError> {
    let mut keys = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = clients
            .test_sets()
            .list_tests(pb::ListTestsRequest {
                test_set: test_set.to_string(),
                page_size: 1000,
                page_token,
            })
            .await?
            .into_inner();
        keys.extend(page.tests.iter().map(|t| match_key(t).to_string()));
        if page.next_page_token.is_empty() {
            return Ok(keys);
        }
        page_token = page.next_page_token;
    }
}

/// Warnings for tests that repeat another of the file, or one the test set holds (`stored`):
/// an import appends them all the same, so running it twice doubles a test set.
fn duplicates(tests: &[pb::Test], locations: &[Location], stored: &[String]) -> Vec<String> {
    let stored: BTreeSet<&str> = stored.iter().map(String::as_str).collect();
    let mut seen: BTreeMap<&str, Location> = BTreeMap::new();
    let mut warnings = Vec::new();
    for (test, location) in tests.iter().zip(locations) {
        let key = match_key(test);
        let what = if test.key.is_empty() { "prompt" } else { "key" };
        if let Some(first) = seen.get(key) {
            warnings.push(format!("{location}: repeats the {what} of {first}"));
        } else if stored.contains(key) {
            warnings.push(format!(
                "{location}: the test set has a test with this {what} already (--replace \
                 replaces its tests)"
            ));
        }
        seen.entry(key).or_insert(*location);
    }
    warnings
}

/// Tests per message of an import, and bytes: a message is sent when either is reached, so
/// neither side holds more than one piece of a large file at a time.
const PIECE_TESTS: usize = 1000;
// Well below the server's default request limit of 4 MiB (`--max-request-bytes`).
const PIECE_BYTES: usize = 1024 * 1024;

/// The tests as import messages of at most [`PIECE_TESTS`] tests and about [`PIECE_BYTES`].
fn pieces(tests: Vec<pb::Test>) -> impl Iterator<Item = pb::ImportTestsRequest> {
    let mut tests = tests.into_iter().peekable();
    std::iter::from_fn(move || {
        tests.peek()?;
        let mut piece = Vec::new();
        let mut bytes = 0;
        while let Some(test) = tests.next_if(|_| piece.len() < PIECE_TESTS && bytes < PIECE_BYTES) {
            bytes += test.encoded_len();
            piece.push(test);
        }
        Some(pb::ImportTestsRequest {
            tests: piece,
            ..Default::default()
        })
    })
}

/// The format named by a file's extension.
fn format_of(path: &Path) -> Result<ImportFormat, CliError> {
    match extension(path).as_deref() {
        Some("jsonl" | "ndjson") => Ok(ImportFormat::Jsonl),
        Some("csv") => Ok(ImportFormat::Csv),
        Some("yaml" | "yml") => Ok(ImportFormat::Yaml),
        _ => Err(CliError::usage(format!(
            "{}: cannot tell the format from the extension (.jsonl, .csv, .yaml); give --format",
            path.display()
        ))),
    }
}

/// Every row of the file, each an object or the reason it could not be read; `Err` when the
/// file as a whole cannot be read (a CSV header or YAML syntax error).
pub fn parse(text: &str, format: ImportFormat) -> Result<Vec<RawRow>, String> {
    // Spreadsheets save CSV with a byte-order mark, which would otherwise join the first column.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    match format {
        ImportFormat::Jsonl => Ok(text
            .lines()
            .enumerate()
            .filter(|(_, line)| !line.trim().is_empty())
            .map(|(i, line)| {
                let row = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"));
                (Location::Line(i + 1), row)
            })
            .collect()),
        ImportFormat::Csv => parse_csv(text),
        ImportFormat::Yaml => parse_yaml(text),
    }
}

fn parse_csv(text: &str) -> Result<Vec<RawRow>, String> {
    let mut reader = csv::ReaderBuilder::new().from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| format!("line 1: {e}"))?
        .clone();
    for header in &headers {
        if !COLUMNS.contains(&header) && !header.starts_with("metadata.") {
            return Err(format!(
                "line 1: unknown column {header:?} (expected {}, or metadata.<key>)",
                COLUMNS.join(", ")
            ));
        }
    }
    let records: Vec<_> = reader.records().collect();
    // Where each record starts, to find its raw text (which tells `""` from an empty cell).
    let starts: Vec<usize> = records
        .iter()
        .map(|r| match r {
            Ok(record) => record.position().map(|p| p.byte() as usize),
            Err(e) => e.position().map(|p| p.byte() as usize),
        })
        .map(|start| start.unwrap_or(text.len()))
        .chain([text.len()])
        .collect();
    Ok(records
        .into_iter()
        .enumerate()
        .map(|(i, record)| match record {
            Ok(record) => {
                let line = record.position().map_or(0, |p| p.line() as usize);
                let raw = text.get(starts[i]..starts[i + 1]).unwrap_or_default();
                let quoted_empty = quoted_empty_cells(raw);
                (
                    Location::Line(line),
                    csv_row(&headers, &record, &quoted_empty),
                )
            }
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line() as usize);
                (Location::Line(line), Err(e.to_string()))
            }
        })
        .collect())
}

/// For each cell of one record's raw text, whether it is written `""`. As in PostgreSQL's CSV
/// format, that is the empty text, while an empty cell is no value: it tells an expected
/// response of "" (the answer must be empty) from none.
fn quoted_empty_cells(raw: &str) -> Vec<bool> {
    let bytes = raw.as_bytes();
    let mut cells = Vec::new();
    let mut i = 0;
    loop {
        let start = i;
        if bytes.get(i) == Some(&b'"') {
            i += 1;
            while i < bytes.len() {
                match (bytes[i], bytes.get(i + 1)) {
                    (b'"', Some(b'"')) => i += 2,
                    (b'"', _) => break,
                    _ => i += 1,
                }
            }
            // Past the closing quote.
            i += 1;
        }
        let quoted_end = i;
        while i < bytes.len() && !matches!(bytes[i], b',' | b'\r' | b'\n') {
            i += 1;
        }
        cells.push(quoted_end == start + 2 && i == quoted_end);
        if bytes.get(i) != Some(&b',') {
            return cells;
        }
        i += 1;
    }
}

/// A CSV record as an object: empty cells are unset, cells written `""` (`quoted_empty`) are the
/// empty text; `metadata` is a JSON object and `metadata.<key>` columns add keys to it.
fn csv_row(
    headers: &csv::StringRecord,
    record: &csv::StringRecord,
    quoted_empty: &[bool],
) -> Result<Value, String> {
    let mut row = Map::new();
    let mut metadata = Map::new();
    for (i, (header, cell)) in headers.iter().zip(record).enumerate() {
        if cell.is_empty() {
            let plain = header != "metadata" && !header.starts_with("metadata.");
            if plain && quoted_empty.get(i) == Some(&true) {
                row.insert(header.to_string(), Value::from(""));
            }
            continue;
        }
        if header == "metadata" {
            match serde_json::from_str(cell) {
                Ok(Value::Object(object)) => metadata.extend(object),
                _ => return Err(format!("metadata {cell:?} is not a JSON object")),
            }
        } else if let Some(key) = header.strip_prefix("metadata.") {
            metadata.insert(key.to_string(), Value::from(cell));
        } else {
            row.insert(header.to_string(), Value::from(cell));
        }
    }
    if !metadata.is_empty() {
        row.insert("metadata".into(), Value::Object(metadata));
    }
    Ok(Value::Object(row))
}

fn parse_yaml(text: &str) -> Result<Vec<RawRow>, String> {
    let document: Value = serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?;
    let items = match document {
        Value::Array(items) => items,
        Value::Object(mut object) => match object.remove("tests") {
            Some(Value::Array(items)) if object.is_empty() => items,
            _ => return Err("expected a list of tests or {tests: [...]}".into()),
        },
        _ => return Err("expected a list of tests or {tests: [...]}".into()),
    };
    let lines = yaml_item_lines(text, items.len());
    Ok(items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let location = lines
                .as_ref()
                .map_or(Location::Item(i + 1), |l| Location::Line(l[i]));
            (location, Ok(item))
        })
        .collect())
}

/// The line where each item of the tests list starts, in block style (`- prompt: ...`): the
/// lines that open a list item at the indentation of the first one. `None` when that does not
/// match the number of items (flow style, nested lists), and items are then named by index.
fn yaml_item_lines(text: &str, count: usize) -> Option<Vec<usize>> {
    let opens = |line: &str| {
        let rest = line.trim_start();
        (rest.starts_with("- ") || rest == "-").then(|| line.len() - rest.len())
    };
    let indent = text.lines().find_map(opens)?;
    let lines: Vec<usize> = text
        .lines()
        .enumerate()
        .filter(|(_, line)| opens(line) == Some(indent))
        .map(|(i, _)| i + 1)
        .collect();
    (lines.len() == count).then_some(lines)
}

/// Checks every row; the tests with their locations, or every bad row with its reason.
pub fn check(rows: Vec<RawRow>) -> Result<(Vec<Location>, Vec<pb::Test>), Vec<BadRow>> {
    let mut good = (Vec::new(), Vec::new());
    let mut bad = Vec::new();
    for (location, row) in rows {
        match row.and_then(test_of) {
            Ok(test) => {
                good.0.push(location);
                good.1.push(test);
            }
            Err(reason) => bad.push((location, reason)),
        }
    }
    if bad.is_empty() { Ok(good) } else { Err(bad) }
}

/// One row as a test, or what is wrong with it.
fn test_of(row: Value) -> Result<pb::Test, String> {
    let Value::Object(mut row) = row else {
        return Err("a test must be an object".into());
    };
    // The JSON name of the proto field is accepted too, as grpcurl writes it.
    if let Some(expected) = row.remove("expectedResponse") {
        row.entry("expected_response").or_insert(expected);
    }
    if let Some(unknown) = row.keys().find(|k| !COLUMNS.contains(&k.as_str())) {
        return Err(format!(
            "unknown field {unknown:?} (expected {})",
            COLUMNS.join(", ")
        ));
    }
    // Absent or null: unset; "" is a value (for the expected response: the answer must be empty).
    let optional = |row: &mut Map<String, Value>, field: &str| match row.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(format!("{field} must be text, not {other}")),
    };
    let text = |row: &mut Map<String, Value>, field: &str| {
        optional(row, field).map(Option::unwrap_or_default)
    };
    let test = pb::Test {
        prompt: text(&mut row, "prompt")?,
        expected_response: optional(&mut row, "expected_response")?,
        behavior: text(&mut row, "behavior")?,
        category: text(&mut row, "category")?,
        topic: text(&mut row, "topic")?,
        metadata: metadata(row.remove("metadata"))?,
        key: text(&mut row, "key")?,
        ..Default::default()
    };
    if test.prompt.trim().is_empty() {
        return Err("prompt is required".into());
    }
    Ok(test)
}

/// Metadata: an object of text, numbers or booleans (stored as text).
fn metadata(value: Option<Value>) -> Result<std::collections::HashMap<String, String>, String> {
    let object = match value {
        None | Some(Value::Null) => return Ok(Default::default()),
        Some(Value::Object(object)) => object,
        Some(other) => return Err(format!("metadata must be an object, not {other}")),
    };
    object
        .into_iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(key, value)| match value {
            Value::String(s) => Ok((key, s)),
            Value::Number(_) | Value::Bool(_) => Ok((key, value.to_string())),
            other => Err(format!(
                "metadata.{key} must be text, a number or a boolean, not {other}"
            )),
        })
        .collect()
}

/// The rows whose behaviour the server does not know (one lookup per distinct behaviour).
async fn unknown_behaviors(
    clients: &Clients,
    tests: &[pb::Test],
    locations: &[Location],
) -> Result<Vec<BadRow>, CliError> {
    let names: BTreeSet<&str> = tests
        .iter()
        .map(|t| t.behavior.as_str())
        .filter(|b| !b.is_empty())
        .collect();
    let mut unknown = BTreeMap::new();
    for name in names {
        let found = clients
            .behaviors()
            .get_behavior(pb::GetBehaviorRequest {
                behavior: name.to_string(),
            })
            .await;
        match found {
            Ok(_) => {}
            Err(status) if status.code() == tonic::Code::NotFound => {
                unknown.insert(name, status.message().to_string());
            }
            Err(status) => return Err(status.into()),
        }
    }
    Ok(tests
        .iter()
        .zip(locations)
        .filter_map(|(test, location)| {
            let message = unknown.get(test.behavior.as_str())?;
            Some((*location, message.clone()))
        })
        .collect())
}

/// The error listing every bad row; nothing was imported.
fn bad_rows(file: &Path, bad: &[BadRow]) -> CliError {
    let lines: Vec<String> = bad
        .iter()
        .map(|(location, reason)| format!("  {}:{location}: {reason}", file.display()))
        .collect();
    CliError::input(format!(
        "{} bad rows, nothing imported:\n{}",
        bad.len(),
        lines.join("\n")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad_locations(text: &str, format: ImportFormat) -> Vec<BadRow> {
        check(parse(text, format).unwrap()).unwrap_err()
    }

    #[test]
    fn jsonl_reports_every_bad_line() {
        let text = "{\"prompt\": \"a\"}\n\nnot json\n{\"prompt\": \"\"}\n{\"promt\": \"x\"}\n";
        let bad = bad_locations(text, ImportFormat::Jsonl);
        let lines: Vec<Location> = bad.iter().map(|(l, _)| *l).collect();
        assert_eq!(
            lines,
            [Location::Line(3), Location::Line(4), Location::Line(5)]
        );
        assert!(bad[1].1.contains("prompt is required"));
        assert!(bad[2].1.contains("unknown field \"promt\""));
    }

    #[test]
    fn csv_reads_metadata_columns_and_json_metadata() {
        let text = "prompt,expected_response,metadata,metadata.level\n\
                    hi,hello,\"{\"\"lang\"\": \"\"en\"\", \"\"n\"\": 2}\",easy\n";
        let (_, tests) = check(parse(text, ImportFormat::Csv).unwrap()).unwrap();
        assert_eq!(tests[0].expected_response.as_deref(), Some("hello"));
        assert_eq!(tests[0].metadata["lang"], "en");
        assert_eq!(tests[0].metadata["n"], "2");
        assert_eq!(tests[0].metadata["level"], "easy");
    }

    #[test]
    fn csv_tells_an_empty_expected_response_from_none() {
        let text = "prompt,expected_response\n\
                    a,\n\
                    b,\"\"\n\
                    \"c, \"\"quoted\"\"\",\"\"\r\n\
                    d,\"\"\"\"\n\
                    e,\"\"";
        let (_, tests) = check(parse(text, ImportFormat::Csv).unwrap()).unwrap();
        let expected: Vec<Option<&str>> = tests
            .iter()
            .map(|t| t.expected_response.as_deref())
            .collect();
        assert_eq!(
            expected,
            [None, Some(""), Some(""), Some("\""), Some("")],
            "an empty cell is none, a cell written \"\" is the empty text"
        );
        assert_eq!(tests[2].prompt, "c, \"quoted\"");
    }

    #[test]
    fn json_and_yaml_tell_an_empty_expected_response_from_none() {
        let jsonl = "{\"prompt\": \"a\"}\n{\"prompt\": \"b\", \"expected_response\": null}\n\
                     {\"prompt\": \"c\", \"expectedResponse\": \"\"}\n";
        let yaml = "- prompt: a\n- prompt: b\n  expected_response: ~\n- prompt: c\n  expected_response: ''\n";
        for (text, format) in [(jsonl, ImportFormat::Jsonl), (yaml, ImportFormat::Yaml)] {
            let (_, tests) = check(parse(text, format).unwrap()).unwrap();
            let expected: Vec<Option<&str>> = tests
                .iter()
                .map(|t| t.expected_response.as_deref())
                .collect();
            assert_eq!(expected, [None, None, Some("")], "{format:?}");
        }
    }

    #[test]
    fn csv_rejects_unknown_columns_and_reports_bad_lines() {
        assert!(parse("prompt,answer\nx,y\n", ImportFormat::Csv).is_err());
        assert!(parse("\u{feff}prompt\nx\n", ImportFormat::Csv).is_ok());
        let bad = bad_locations("prompt,topic\nok,t\n,t\nok,t,extra\n", ImportFormat::Csv);
        let lines: Vec<Location> = bad.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, [Location::Line(3), Location::Line(4)]);
    }

    #[test]
    fn yaml_items_are_located_by_line() {
        let text =
            "tests:\n  - prompt: a\n  - prompt: b\n    metadata:\n      x: [1]\n  - topic: t\n";
        let bad = bad_locations(text, ImportFormat::Yaml);
        let lines: Vec<Location> = bad.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, [Location::Line(3), Location::Line(6)]);
        let flow = bad_locations("[{prompt: a}, {topic: t}]", ImportFormat::Yaml);
        assert_eq!(flow[0].0, Location::Item(2));
    }
}
