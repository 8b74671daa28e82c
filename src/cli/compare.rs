//! `compare [BASE] HEAD` and `execute --compare-to`: what changed between two runs, as a table
//! (regressions and fixes first), a Markdown summary for CI pages and merge requests, and the
//! regression gate.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write;

use super::CliError;
use super::args::{CompareArgs, Global, RegressionArgs};
use super::client::Clients;
use super::json::to_json;
use super::output::{Output, line, shorten, table};
use super::progress::summary_text;
use super::report::Flaky;
use crate::proto::v1 as pb;

/// Longest prompt shown in a table row.
const PROMPT_WIDTH: usize = 60;

/// `KEY=VALUE` arguments of `flag` as text pairs (a label's value is text, never JSON).
pub fn pairs(args: &[String], flag: &str) -> Result<HashMap<String, String>, CliError> {
    args.iter()
        .map(|arg| {
            arg.split_once('=')
                .filter(|(key, _)| !key.is_empty())
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| CliError::usage(format!("{flag} {arg:?}: expected KEY=VALUE")))
        })
        .collect()
}

/// The request comparing `head` with what `--compare-to` names: `latest`, a run id, or
/// `key=value[,key=value...]` labels of the base.
pub fn request_for(compare_to: &str, head: String) -> Result<pb::CompareRunsRequest, CliError> {
    let mut request = pb::CompareRunsRequest {
        head_run: head,
        ..Default::default()
    };
    match compare_to.trim() {
        "latest" => {}
        text if text.contains('=') => {
            let args: Vec<String> = text.split(',').map(str::to_string).collect();
            request.base_labels = pairs(&args, "--compare-to")?;
        }
        run => request.base_run = run.to_string(),
    }
    Ok(request)
}

/// `compare [BASE] HEAD`.
pub async fn compare(global: &Global, out: &Output, args: CompareArgs) -> Result<(), CliError> {
    let base_labels = pairs(&args.base_labels, "--base-label")?;
    let (base_run, head_run) = match args.runs.as_slice() {
        [head] => (String::new(), head.clone()),
        [base, head] if base_labels.is_empty() => (base.clone(), head.clone()),
        [_, _] => {
            return Err(CliError::usage(
                "--base-label chooses the base when only HEAD is given; drop BASE or the labels",
            ));
        }
        _ => return Err(CliError::usage("give HEAD, or BASE HEAD")),
    };
    let clients = Clients::connect(global).await?;
    let request = pb::CompareRunsRequest {
        head_run,
        base_run,
        base_labels,
    };
    show(&clients, out, request, &args.regression, None).await
}

/// Asks for the comparison, prints it, writes the Markdown summary when asked, and applies the
/// regression gate. `alone` is the head's own summary for when the base is to be found (not
/// named) and there is none yet, as on the first run of a branch: that is told, and nothing is
/// compared, rather than failing a run that could not have regressed.
pub async fn show(
    clients: &Clients,
    out: &Output,
    request: pb::CompareRunsRequest,
    regression: &RegressionArgs,
    alone: Option<&str>,
) -> Result<(), CliError> {
    // No base run named: one is looked for, and there may be none yet.
    let looked_for = request.base_run.is_empty();
    let response = match clients.execution().compare_runs(request).await {
        Ok(response) => response.into_inner(),
        Err(status) if status.code() == tonic::Code::FailedPrecondition && looked_for => {
            let Some(alone) = alone else {
                return Err(status.into());
            };
            eprintln!("nothing compared: {}", status.message());
            if let Some(path) = &regression.summary_md {
                std::fs::write(path, alone)?;
            }
            return Ok(());
        }
        Err(status) => return Err(status.into()),
    };
    let summary = response.summary.clone().unwrap_or_default();
    if out.json {
        out.value(&to_json(&response, "CompareRunsResponse"))?;
    } else {
        print(&response, &summary)?;
    }
    if let Some(path) = &regression.summary_md {
        std::fs::write(path, markdown(&response, &summary))?;
    }
    if regression.fail_on_regression && summary.regressed > 0 {
        return Err(CliError::Regression(format!(
            "{} test(s) regressed since run {}",
            summary.regressed, summary.base_run_id
        )));
    }
    Ok(())
}

/// The change's name without its prefix, lowercase with spaces: `still passing`.
fn change_name(change: i32) -> String {
    pb::TestChange::try_from(change)
        .map(|c| {
            c.as_str_name()
                .trim_start_matches("TEST_CHANGE_")
                .to_string()
        })
        .unwrap_or_else(|_| change.to_string())
        .to_lowercase()
        .replace('_', " ")
}

fn status_name(status: i32) -> String {
    match pb::ResultStatus::try_from(status) {
        Ok(pb::ResultStatus::Unspecified) | Err(_) => "-".to_string(),
        Ok(s) => s
            .as_str_name()
            .trim_start_matches("RESULT_STATUS_")
            .to_string(),
    }
}

/// Whether a test is worth a line: anything but a test that passed before and passes still.
fn changed(test: &pb::TestComparison) -> bool {
    test.change != pb::TestChange::StillPassing as i32
}

/// The counts of a comparison, named.
fn counts(s: &pb::ComparisonSummary) -> [(&'static str, u32); 7] {
    [
        ("regressed", s.regressed),
        ("fixed", s.fixed),
        ("still failing", s.still_failing),
        ("still passing", s.still_passing),
        ("added", s.added),
        ("removed", s.removed),
        ("errored", s.errored),
    ]
}

/// `66.7% -> 83.3%`, with `arrow` between.
fn pass_rates(s: &pb::ComparisonSummary, arrow: &str) -> String {
    format!(
        "{:.1}% {arrow} {:.1}%",
        s.base_pass_rate * 100.0,
        s.head_pass_rate * 100.0
    )
}

/// The totals in one line.
fn totals(s: &pb::ComparisonSummary) -> String {
    let counts: Vec<String> = counts(s)
        .iter()
        .map(|(name, n)| format!("{n} {name}"))
        .collect();
    format!(
        "{}; pass rate {} (McNemar p = {:.3} over {} paired tests)",
        counts.join(", "),
        pass_rates(s, "->"),
        s.mcnemar_p_value,
        s.paired
    )
}

fn print(response: &pb::CompareRunsResponse, s: &pb::ComparisonSummary) -> Result<(), CliError> {
    line(format_args!(
        "run {} compared with run {}",
        s.head_run_id, s.base_run_id
    ))?;
    let rows: Vec<Vec<String>> = response
        .tests
        .iter()
        .filter(|t| changed(t))
        .map(|t| {
            vec![
                change_name(t.change).to_uppercase(),
                status_name(t.base_status),
                status_name(t.head_status),
                shorten(&t.prompt, PROMPT_WIDTH),
            ]
        })
        .collect();
    if !rows.is_empty() {
        let text = table(&["CHANGE", "BASE", "HEAD", "TEST"], &rows);
        write!(std::io::stdout().lock(), "{text}")?;
    }
    line(totals(s))?;
    Ok(())
}

/// Markdown for `$GITHUB_STEP_SUMMARY` or a merge-request comment: the totals, then the
/// regressions and the fixes with their metrics' scores, then the head's flaky tests (repeated
/// tests whose repetitions disagreed: some passed, some did not).
fn markdown(response: &pb::CompareRunsResponse, s: &pb::ComparisonSummary) -> String {
    let mut md = String::new();
    let verdict = if s.regressed > 0 {
        "regressions found"
    } else {
        "no regression"
    };
    let _ = writeln!(md, "## Assay: {verdict}\n");
    let _ = writeln!(
        md,
        "Run `{}` compared with run `{}`.\n",
        s.head_run_id, s.base_run_id
    );
    let counts = counts(s);
    let header: Vec<String> = counts.iter().map(|(name, _)| capitalized(name)).collect();
    let values: Vec<String> = counts.iter().map(|(_, n)| n.to_string()).collect();
    let _ = writeln!(md, "| {} | Pass rate | McNemar p |", header.join(" | "));
    let _ = writeln!(md, "|{}", "---|".repeat(counts.len() + 2));
    let _ = writeln!(
        md,
        "| {} | {} | {:.3} |",
        values.join(" | "),
        pass_rates(s, "→"),
        s.mcnemar_p_value
    );
    for (title, change) in [
        ("Regressions", pb::TestChange::Regressed),
        ("Fixes", pb::TestChange::Fixed),
    ] {
        let tests: Vec<&pb::TestComparison> = response
            .tests
            .iter()
            .filter(|t| t.change == change as i32)
            .collect();
        if tests.is_empty() {
            continue;
        }
        let _ = writeln!(md, "\n### {title} ({})\n", tests.len());
        let _ = writeln!(md, "| Test | Metrics (base → head) |");
        let _ = writeln!(md, "|---|---|");
        for t in tests {
            let _ = writeln!(
                md,
                "| {} | {} |",
                md_cell(&shorten(&t.prompt, PROMPT_WIDTH)),
                md_cell(&metric_scores(t))
            );
        }
    }
    let flaky: Vec<&pb::TestComparison> = response
        .tests
        .iter()
        .filter(|t| t.head_pass_rate > 0.0 && t.head_pass_rate < 1.0)
        .collect();
    if !flaky.is_empty() {
        let _ = writeln!(md, "\n### Flaky tests ({})\n", flaky.len());
        let _ = writeln!(md, "| Test | Passing repetitions (base → head) | Change |");
        let _ = writeln!(md, "|---|---|---|");
        for t in flaky {
            let _ = writeln!(
                md,
                "| {} | {:.0}% → {:.0}% | {} |",
                md_cell(&shorten(&t.prompt, PROMPT_WIDTH)),
                t.base_pass_rate * 100.0,
                t.head_pass_rate * 100.0,
                change_name(t.change)
            );
        }
    }
    md
}

/// Markdown of a run on its own (no base to compare with): its totals, then its flaky tests.
pub fn run_markdown(summary: &pb::TestRunSummary, flaky: &[Flaky]) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "## Assay: run `{}`\n", summary.run_id);
    let _ = writeln!(md, "```\n{}\n```", summary_text(summary).trim());
    if !flaky.is_empty() {
        let _ = writeln!(md, "\n### Flaky tests ({})\n", flaky.len());
        let _ = writeln!(md, "| Test | Passing repetitions |");
        let _ = writeln!(md, "|---|---|");
        for f in flaky {
            let _ = writeln!(
                md,
                "| {} | {} of {} |",
                md_cell(&shorten(&f.prompt, PROMPT_WIDTH)),
                f.passed,
                f.repetitions
            );
        }
    }
    md
}

/// `name 1.00 → 0.25, ...` for a test's metrics.
fn metric_scores(t: &pb::TestComparison) -> String {
    let score = |s: Option<f64>| s.map_or("-".to_string(), |s| format!("{s:.2}"));
    t.metrics
        .iter()
        .map(|m| {
            format!(
                "{} {} → {}",
                m.metric_name,
                score(m.base_score),
                score(m.head_score)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `still failing` -> `Still failing`.
fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// Text safe in a Markdown table cell.
fn md_cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_to_names_latest_a_run_or_labels() {
        let latest = request_for("latest", "h".into()).unwrap();
        assert!(latest.base_run.is_empty() && latest.base_labels.is_empty());
        let run = request_for("0190c2b4-0000-7000-8000-000000000000", "h".into()).unwrap();
        assert_eq!(run.base_run, "0190c2b4-0000-7000-8000-000000000000");
        let labels = request_for("branch=main,pr=7", "h".into()).unwrap();
        assert_eq!(labels.base_labels["branch"], "main");
        assert_eq!(labels.base_labels["pr"], "7");
        assert!(request_for("=main", "h".into()).is_err());
    }

    #[test]
    fn the_markdown_lists_regressions_and_fixes() {
        let test = |prompt: &str, change: pb::TestChange| pb::TestComparison {
            prompt: prompt.into(),
            change: change as i32,
            metrics: vec![pb::MetricChange {
                metric_name: "exact".into(),
                base_score: Some(1.0),
                head_score: Some(0.0),
                ..Default::default()
            }],
            ..Default::default()
        };
        let response = pb::CompareRunsResponse {
            summary: None,
            tests: vec![
                test("a | b", pb::TestChange::Regressed),
                test("fixed one", pb::TestChange::Fixed),
                test("same", pb::TestChange::StillPassing),
            ],
        };
        let summary = pb::ComparisonSummary {
            regressed: 1,
            fixed: 1,
            mcnemar_p_value: 1.0,
            ..Default::default()
        };
        let md = markdown(&response, &summary);
        assert!(md.contains("## Assay: regressions found"), "{md}");
        assert!(
            md.contains("### Regressions (1)") && md.contains("### Fixes (1)"),
            "{md}"
        );
        assert!(md.contains("| a \\| b | exact 1.00 → 0.00 |"), "{md}");
        assert!(!md.contains("same"), "{md}");
    }
}
