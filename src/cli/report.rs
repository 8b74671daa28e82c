//! Reports of a run for CI: JUnit XML (one testcase per result, failures with the metric
//! reasons, errors for errored results), proto JSON, or CSV with columns per metric.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};

use super::CliError;
use super::args::{ReportArgs, ReportFormat};
use super::json::{ProtoJson, to_json};
use super::output::{extension, shorten};
use crate::proto::v1 as pb;

/// Longest testcase name: the prompt's first line, cut.
const NAME_CHARS: usize = 120;

/// A finished (or stopped) run with every result it stored.
#[derive(Debug)]
pub struct Report {
    /// Name of the test set (its id when it is gone).
    pub suite: String,
    /// The run.
    pub run: pb::TestRun,
    /// Its summary.
    pub summary: pb::TestRunSummary,
    /// Its results.
    pub results: Vec<pb::TestResult>,
}

/// Where a report goes and in which format.
#[derive(Debug)]
pub struct Destination {
    /// The format.
    pub format: ReportFormat,
    /// The file; `None` is standard output.
    pub path: Option<PathBuf>,
}

impl Destination {
    /// The destination asked for, checked before any call: `--format`, else the extension of
    /// `--report`. `None` when no report was asked for and `stdout_default` is false.
    pub fn of(args: &ReportArgs, stdout_default: bool) -> Result<Option<Destination>, CliError> {
        let Some(path) = &args.report else {
            return Ok(
                (stdout_default || args.format.is_some()).then(|| Destination {
                    format: args.format.unwrap_or(ReportFormat::Junit),
                    path: None,
                }),
            );
        };
        let format = match args.format {
            Some(format) => format,
            None => format_of(path)?,
        };
        check_writable(path)?;
        Ok(Some(Destination {
            format,
            path: Some(path.clone()),
        }))
    }

    /// Writes `report` here.
    pub fn write(&self, report: &Report) -> Result<(), CliError> {
        let mut bytes = Vec::new();
        write(report, self.format, &mut bytes)?;
        match &self.path {
            Some(path) => std::fs::write(path, bytes).map_err(|e| {
                CliError::Io(io::Error::new(
                    e.kind(),
                    format!("cannot write {}: {e}", path.display()),
                ))
            }),
            None => Ok(io::stdout().write_all(&bytes)?),
        }
    }
}

/// Checks, before any call, that a report can be written at `path`: a run is not made for a
/// report that cannot be kept. A file created to check is removed again.
fn check_writable(path: &Path) -> Result<(), CliError> {
    let existed = path.exists();
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(|e| {
            CliError::input(format!(
                "--report {}: cannot be written: {e}",
                path.display()
            ))
        })?;
    if !existed {
        // Best effort: an empty file left behind would be overwritten by the report anyway.
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

fn format_of(path: &Path) -> Result<ReportFormat, CliError> {
    match extension(path).as_deref() {
        Some("xml") => Ok(ReportFormat::Junit),
        Some("json") => Ok(ReportFormat::Json),
        Some("csv") => Ok(ReportFormat::Csv),
        _ => Err(CliError::usage(format!(
            "--report {}: cannot tell the format from the extension (.xml, .json, .csv); give --format",
            path.display()
        ))),
    }
}

/// The JSON report: the run, its summary and every result, in proto JSON.
#[derive(serde::Serialize)]
struct JsonReport {
    run: ProtoJson,
    summary: ProtoJson,
    results: Vec<ProtoJson>,
}

/// Writes `report` in `format`.
pub fn write(report: &Report, format: ReportFormat, out: &mut impl Write) -> io::Result<()> {
    match format {
        ReportFormat::Junit => junit(report, out),
        ReportFormat::Json => {
            let value = JsonReport {
                run: to_json(&report.run, "TestRun"),
                summary: to_json(&report.summary, "TestRunSummary"),
                results: report
                    .results
                    .iter()
                    .map(|r| to_json(r, "TestResult"))
                    .collect(),
            };
            serde_json::to_writer_pretty(&mut *out, &value)?;
            writeln!(out)
        }
        ReportFormat::Csv => csv(report, out),
    }
}

fn status(result: &pb::TestResult) -> pb::ResultStatus {
    pb::ResultStatus::try_from(result.status).unwrap_or(pb::ResultStatus::Unspecified)
}

/// `metric: reason` of every metric that did not pass.
fn failed_metrics(result: &pb::TestResult) -> Vec<String> {
    result
        .metric_results
        .iter()
        .filter(|m| !m.passed)
        .map(|m| {
            let why = if m.error.is_empty() {
                &m.reason
            } else {
                &m.error
            };
            match m.score {
                Some(score) => format!("{} (score {score}): {why}", m.metric_name),
                None => format!("{}: {why}", m.metric_name),
            }
        })
        .collect()
}

/// Why a result is an error: the endpoint's error, else the metrics'.
fn error_text(result: &pb::TestResult) -> String {
    if result.error.is_empty() {
        failed_metrics(result).join("; ")
    } else {
        result.error.clone()
    }
}

/// Why a result did not pass, as one line: its endpoint error or the failed metrics' reasons.
pub fn brief_reason(result: &pb::TestResult) -> String {
    match status(result) {
        pb::ResultStatus::Error => error_text(result),
        _ => failed_metrics(result).join("; "),
    }
}

/// Text safe in XML 1.0: control characters other than tab and newlines are dropped.
fn xml_text(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r'))
        .collect()
}

fn seconds(ms: u64) -> String {
    format!("{:.3}", ms as f64 / 1000.0)
}

/// One testcase of the JUnit report: the results of one test, one per repetition (one unless
/// the run repeated its tests), in the order they were stored.
struct Case<'a> {
    results: Vec<&'a pb::TestResult>,
}

impl Case<'_> {
    /// The results of a run that repeated its tests (`repeats` above 1) grouped by test, in
    /// order of each test's first result; else one case per result.
    fn of(results: &[pb::TestResult], repeats: u32) -> Vec<Case<'_>> {
        if repeats <= 1 {
            return results.iter().map(|r| Case { results: vec![r] }).collect();
        }
        let mut cases: Vec<Case<'_>> = Vec::new();
        let mut index: std::collections::HashMap<&str, usize> = Default::default();
        for r in results {
            match index.get(r.test_id.as_str()) {
                Some(&i) => cases[i].results.push(r),
                None => {
                    index.insert(&r.test_id, cases.len());
                    cases.push(Case { results: vec![r] });
                }
            }
        }
        cases
    }

    fn passed(&self) -> usize {
        self.results
            .iter()
            .filter(|r| status(r) == pb::ResultStatus::Passed)
            .count()
    }

    /// The test's verdict, by majority of its repetitions as the server counts them: passed
    /// when more than half passed, an error when more than half are errors, else failed.
    fn status(&self) -> pb::ResultStatus {
        let n = self.results.len();
        let errors = self
            .results
            .iter()
            .filter(|r| status(r) == pb::ResultStatus::Error)
            .count();
        match self.results.as_slice() {
            [one] => status(one),
            _ if self.passed() * 2 > n => pb::ResultStatus::Passed,
            _ if errors * 2 > n => pb::ResultStatus::Error,
            _ => pb::ResultStatus::Failed,
        }
    }

    /// Some repetitions passed and some did not.
    fn is_flaky(&self) -> bool {
        let passed = self.passed();
        passed > 0 && passed < self.results.len()
    }
}

/// A repeated test whose repetitions disagreed: its prompt, how many passed, of how many.
pub(super) struct Flaky {
    pub prompt: String,
    pub passed: usize,
    pub repetitions: usize,
}

/// The flaky tests of a run's results (none unless it repeated its tests), in test order.
pub(super) fn flaky_tests(results: &[pb::TestResult], repeats: u32) -> Vec<Flaky> {
    Case::of(results, repeats)
        .iter()
        .filter(|c| c.is_flaky())
        .map(|c| Flaky {
            prompt: c.results[0].prompt.clone(),
            passed: c.passed(),
            repetitions: c.results.len(),
        })
        .collect()
}

fn junit(report: &Report, out: &mut impl Write) -> io::Result<()> {
    let cases = Case::of(&report.results, report.run.repeats);
    let count = |s: pb::ResultStatus| cases.iter().filter(|c| c.status() == s).count();
    let tests = cases.len().to_string();
    let failures = count(pb::ResultStatus::Failed).to_string();
    let errors = count(pb::ResultStatus::Error).to_string();
    let time = seconds(report.summary.duration_ms);
    let suite = xml_text(&report.suite);
    let counts = [
        ("tests", tests.as_str()),
        ("failures", failures.as_str()),
        ("errors", errors.as_str()),
        ("time", time.as_str()),
    ];
    let timestamp = report
        .run
        .started_at
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default();
    let run_status = pb::RunStatus::try_from(report.summary.status)
        .map(|s| s.as_str_name())
        .unwrap_or("RUN_STATUS_UNSPECIFIED");

    let mut writer = Writer::new_with_indent(out, b' ', 2);
    writer.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    writer
        .create_element("testsuites")
        .with_attribute(("name", "assay"))
        .with_attributes(counts)
        .write_inner_content(|w| {
            w.create_element("testsuite")
                .with_attribute(("name", suite.as_str()))
                .with_attributes(counts)
                .with_attributes([
                    ("skipped", "0"),
                    ("timestamp", timestamp.as_str()),
                    ("id", report.run.id.as_str()),
                ])
                .write_inner_content(|w| {
                    w.create_element("properties").write_inner_content(|w| {
                        for (name, value) in [
                            ("run_id", report.run.id.as_str()),
                            ("test_set_id", report.run.test_set_id.as_str()),
                            ("endpoint_id", report.run.endpoint_id.as_str()),
                            ("run_status", run_status),
                        ] {
                            w.create_element("property")
                                .with_attributes([("name", name), ("value", value)])
                                .write_empty()?;
                        }
                        Ok(())
                    })?;
                    for case in &cases {
                        testcase(w, &suite, case)?;
                    }
                    Ok(())
                })?;
            Ok(())
        })?;
    writeln!(writer.get_mut())
}

/// A test's testcase: its verdict, with the reasons of the repetitions that gave it, and the
/// details of every repetition. A flaky test carries the property `flaky` = `true` (and
/// `repetitions_passed`, e.g. `3/5`), which CI test views show beside the testcase.
fn testcase<W: Write>(w: &mut Writer<W>, suite: &str, case: &Case<'_>) -> io::Result<()> {
    let first = case.results[0];
    let name = xml_text(&shorten(&first.prompt, NAME_CHARS));
    let time = seconds(case.results.iter().map(|r| r.latency_ms).sum());
    let repeated = case.results.len() > 1;
    let details = case
        .results
        .iter()
        .map(|r| {
            let text = result_details(r);
            if repeated {
                let verdict = status(r).as_str_name().trim_start_matches("RESULT_STATUS_");
                format!("repetition {}: {verdict}\n{text}", r.repetition)
            } else {
                text
            }
        })
        .collect::<Vec<_>>()
        .join("\n\n");
    // The reasons of the repetitions that share the test's verdict, each once.
    let verdict = case.status();
    let mut reasons: Vec<String> = Vec::new();
    for r in case.results.iter().filter(|r| status(r) == verdict) {
        let reason = match verdict {
            pb::ResultStatus::Error => error_text(r),
            _ => failed_metrics(r).join("; "),
        };
        if !reasons.contains(&reason) {
            reasons.push(reason);
        }
    }
    let mut message = reasons.join("; ");
    if repeated {
        message = format!(
            "{} of {} repetitions passed: {message}",
            case.passed(),
            case.results.len()
        );
    }
    let message = xml_text(&message);
    let verdict = match verdict {
        pb::ResultStatus::Passed => None,
        pb::ResultStatus::Error => Some(("error", "error")),
        _ => Some(("failure", "metric")),
    };
    let passed_of = format!("{}/{}", case.passed(), case.results.len());
    let element = w.create_element("testcase").with_attributes([
        ("classname", suite),
        ("name", name.as_str()),
        ("time", time.as_str()),
    ]);
    element.write_inner_content(|w| {
        if case.is_flaky() {
            w.create_element("properties").write_inner_content(|w| {
                for (name, value) in [("flaky", "true"), ("repetitions_passed", &passed_of)] {
                    w.create_element("property")
                        .with_attributes([("name", name), ("value", value)])
                        .write_empty()?;
                }
                Ok(())
            })?;
        }
        if let Some((tag, kind)) = verdict {
            w.create_element(tag)
                .with_attributes([("message", message.as_str()), ("type", kind)])
                .write_text_content(BytesText::new(&details))?;
        }
        w.create_element("system-out")
            .write_text_content(BytesText::new(&details))?;
        Ok(())
    })?;
    Ok(())
}

/// What a testcase tells of one result: the test, its trace, the prompt, the expected and the
/// actual answer, and every metric's verdict.
fn result_details(result: &pb::TestResult) -> String {
    // The trace id leads from a failing test to its trace in the tracing backend.
    let trace = if result.trace_id.is_empty() {
        String::new()
    } else {
        format!("\ntrace: {}", result.trace_id)
    };
    xml_text(&format!(
        "test: {}{trace}\nprompt: {}\nexpected: {}\noutput: {}\n{}",
        result.test_id,
        result.prompt,
        expected_shown(result.expected_response.as_deref()),
        result.output,
        result
            .metric_results
            .iter()
            .map(|m| format!(
                "{} {}: score {} {}{}",
                if m.passed { "PASS" } else { "FAIL" },
                m.metric_name,
                m.score.map_or("-".to_string(), |s| s.to_string()),
                m.reason,
                if m.error.is_empty() {
                    String::new()
                } else {
                    format!(" (error: {})", m.error)
                }
            ))
            .collect::<Vec<_>>()
            .join("\n")
    ))
}

/// The expected response as the JUnit details show it: "(none)" when the test had none, `""`
/// when the answer had to be empty.
fn expected_shown(expected: Option<&str>) -> &str {
    match expected {
        None => "(none)",
        Some("") => "\"\"",
        Some(text) => text,
    }
}

/// A CSV cell as written: quoted when it holds a comma, a quote or a line break, or when `quote`
/// asks for it. An expected response of "" is written `""` and none as an empty cell, which
/// `test-set import` reads back as they were.
fn csv_cell(text: &str, quote: bool) -> String {
    if quote || text.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// The position of `expected_response` among the CSV report's columns.
const EXPECTED_COLUMN: usize = 3;

fn csv(report: &Report, out: &mut impl Write) -> io::Result<()> {
    // One score/passed/reason triple per metric, in order of first appearance.
    let mut metrics: Vec<&str> = Vec::new();
    for m in report.results.iter().flat_map(|r| &r.metric_results) {
        if !metrics.contains(&m.metric_name.as_str()) {
            metrics.push(&m.metric_name);
        }
    }
    // Cells are quoted by `csv_cell`, which the writer cannot be told to do for one cell.
    let mut writer = csv::WriterBuilder::new()
        .quote_style(csv::QuoteStyle::Never)
        .from_writer(out);
    let mut header: Vec<String> = [
        "test_id",
        "status",
        "prompt",
        "expected_response",
        "output",
        "error",
        "latency_ms",
        "trace_id",
    ]
    .map(String::from)
    .to_vec();
    for m in &metrics {
        header.extend(["score", "passed", "reason"].map(|c| format!("{m}.{c}")));
    }
    writer.write_record(header.iter().map(|h| csv_cell(h, false)))?;
    for r in &report.results {
        let expected = r.expected_response.as_deref();
        let mut row = vec![
            r.test_id.clone(),
            status(r)
                .as_str_name()
                .trim_start_matches("RESULT_STATUS_")
                .to_string(),
            r.prompt.clone(),
            expected.unwrap_or_default().to_string(),
            r.output.clone(),
            r.error.clone(),
            r.latency_ms.to_string(),
            r.trace_id.clone(),
        ];
        for name in &metrics {
            match r.metric_results.iter().find(|m| m.metric_name == *name) {
                Some(m) => row.extend([
                    m.score.map_or(String::new(), |s| s.to_string()),
                    m.passed.to_string(),
                    if m.error.is_empty() {
                        m.reason.clone()
                    } else {
                        m.error.clone()
                    },
                ]),
                None => row.extend([String::new(), String::new(), String::new()]),
            }
        }
        writer.write_record(
            row.iter()
                .enumerate()
                .map(|(i, cell)| csv_cell(cell, i == EXPECTED_COLUMN && expected == Some(""))),
        )?;
    }
    writer.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(status: pb::ResultStatus, passed: bool, error: &str) -> pb::TestResult {
        pb::TestResult {
            test_id: "t".into(),
            status: status as i32,
            prompt: "What is <b> & \"c\"?".into(),
            error: error.into(),
            latency_ms: 1500,
            trace_id: "abc".into(),
            metric_results: vec![pb::MetricResult {
                metric_name: "exact".into(),
                score: Some(if passed { 1.0 } else { 0.0 }),
                passed,
                reason: "differs".into(),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn report() -> Report {
        Report {
            suite: "geo".into(),
            run: pb::TestRun {
                id: "r".into(),
                ..Default::default()
            },
            summary: pb::TestRunSummary {
                duration_ms: 2000,
                ..Default::default()
            },
            results: vec![
                result(pb::ResultStatus::Passed, true, ""),
                result(pb::ResultStatus::Failed, false, ""),
                result(pb::ResultStatus::Error, false, "connection refused"),
            ],
        }
    }

    #[test]
    fn junit_has_counts_failures_and_errors() {
        let mut bytes = Vec::new();
        write(&report(), ReportFormat::Junit, &mut bytes).unwrap();
        let xml = String::from_utf8(bytes).unwrap();
        assert!(
            xml.contains(
                r#"<testsuites name="assay" tests="3" failures="1" errors="1" time="2.000">"#
            ),
            "{xml}"
        );
        assert!(
            xml.contains(r#"<failure message="exact (score 0): differs" type="metric">"#),
            "{xml}"
        );
        assert!(
            xml.contains(r#"<error message="connection refused" type="error">"#),
            "{xml}"
        );
        assert!(
            xml.contains(r#"name="What is &lt;b&gt; &amp; &quot;c&quot;?" time="1.500""#),
            "{xml}"
        );
    }

    #[test]
    fn junit_of_a_repeated_run_has_a_testcase_per_test_and_marks_the_flaky_ones() {
        let mut report = report();
        report.run.repeats = 3;
        let repeated = |test: &str, repetition, status, passed| pb::TestResult {
            test_id: test.into(),
            prompt: test.into(),
            repetition,
            ..result(status, passed, "")
        };
        use pb::ResultStatus::{Failed, Passed};
        report.results = vec![
            repeated("steady", 0, Passed, true),
            repeated("flaky", 0, Passed, true),
            repeated("steady", 1, Passed, true),
            repeated("flaky", 1, Failed, false),
            repeated("steady", 2, Passed, true),
            repeated("flaky", 2, Failed, false),
        ];
        let mut bytes = Vec::new();
        write(&report, ReportFormat::Junit, &mut bytes).unwrap();
        let xml = String::from_utf8(bytes).unwrap();
        assert!(
            xml.contains(r#"<testsuites name="assay" tests="2" failures="1" errors="0""#),
            "{xml}"
        );
        // Only the flaky test carries the property, and it failed by majority.
        assert_eq!(
            xml.matches(r#"<property name="flaky" value="true"/>"#)
                .count(),
            1
        );
        assert!(
            xml.contains(r#"<property name="repetitions_passed" value="1/3"/>"#),
            "{xml}"
        );
        assert!(
            xml.contains(r#"<failure message="1 of 3 repetitions passed: exact (score 0): differs" type="metric">"#),
            "{xml}"
        );
        assert!(xml.contains("repetition 2: FAILED"), "{xml}");
    }

    #[test]
    fn csv_has_a_column_triple_per_metric() {
        let mut bytes = Vec::new();
        write(&report(), ReportFormat::Csv, &mut bytes).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        let mut lines = text.lines();
        assert_eq!(
            lines.next().unwrap(),
            "test_id,status,prompt,expected_response,output,error,latency_ms,trace_id,exact.score,exact.passed,exact.reason"
        );
        assert_eq!(
            lines.nth(1).unwrap(),
            "t,FAILED,\"What is <b> & \"\"c\"\"?\",,,,1500,abc,0,false,differs"
        );
    }

    #[test]
    fn reports_tell_an_empty_expected_response_from_none() {
        let mut report = report();
        report.results[0].expected_response = Some(String::new());
        report.results[1].expected_response = None;
        report.results[2].expected_response = Some("a, b".into());
        let mut bytes = Vec::new();
        write(&report, ReportFormat::Csv, &mut bytes).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        let expected: Vec<&str> = text
            .lines()
            .skip(1)
            .map(|line| line.split(",\"What is <b> & \"\"c\"\"?\",").nth(1).unwrap())
            .collect();
        assert!(expected[0].starts_with("\"\","), "{text}");
        assert!(expected[1].starts_with(",,"), "{text}");
        assert!(expected[2].starts_with("\"a, b\","), "{text}");
        let mut bytes = Vec::new();
        write(&report, ReportFormat::Junit, &mut bytes).unwrap();
        let xml = String::from_utf8(bytes).unwrap();
        assert!(xml.contains("expected: &quot;&quot;\n"), "{xml}");
        assert!(xml.contains("expected: (none)\n"), "{xml}");
    }
}
