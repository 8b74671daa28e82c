//! Execution commands: `execute`, `rescore`, `watch`, `retry-errors` (live progress, report, gate),
//! `last-run`, `cancel`, `runs list`, `report RUN` and `test-set metrics`.

use std::io::Write;

use futures::StreamExt;
use serde_json::Value;
use tonic::Streaming;

use super::args::{
    ExecuteArgs, FilterArgs, Global, LastRunArgs, Mode, OutcomeArgs, ReportCommandArgs,
    RescoreArgs, RunArgs, TestSetMetricsCommand, WatchArgs,
};
use super::client::Clients;
use super::json::{key_value, to_json};
use super::output::{Output, line, table};
use super::progress::{Progress, summary_text};
use super::report::{Destination, Flaky, Report, flaky_tests};
use super::{CliError, compare};
use crate::proto::v1 as pb;

/// Page size when reading a run's results: the largest the server serves.
const PAGE_SIZE: i32 = 1000;

/// The gate and report of a streamed run, checked before any call.
struct Outcome {
    fail_under: f64,
    destination: Option<Destination>,
}

impl Outcome {
    fn of(args: &OutcomeArgs) -> Result<Outcome, CliError> {
        Ok(Outcome {
            // Default: every test must pass.
            fail_under: args.fail_under.unwrap_or(1.0),
            destination: Destination::of(&args.report, false)?,
        })
    }

    /// Follows the stream to its end with live progress and writes the report; the gate is
    /// the caller's to apply, with [`Ended::judge`].
    async fn follow(
        self,
        clients: &Clients,
        out: &Output,
        mut stream: Streaming<pb::ExecutionEvent>,
    ) -> Result<Ended, CliError> {
        use pb::execution_event::Event;
        let mut progress = Progress::new(out.json);
        let (mut run, mut results, mut summary) = (None, Vec::new(), None);
        let interrupted = tokio::signal::ctrl_c();
        tokio::pin!(interrupted);
        loop {
            let event = tokio::select! {
                event = stream.next() => event,
                _ = &mut interrupted => {
                    progress.abandon();
                    let id = run.as_ref().map_or("", |r: &pb::TestRun| r.id.as_str());
                    return Err(CliError::Interrupted(id.to_string()));
                }
            };
            let Some(event) = event else { break };
            let event = event?;
            progress.event(&event)?;
            match event.event {
                Some(Event::RunStarted(r)) => run = Some(r),
                Some(Event::Result(r)) => results.push(r),
                Some(Event::RunFinished(s)) => summary = Some(s),
                None => {}
            }
        }
        let (Some(mut run), Some(summary)) = (run, summary) else {
            return Err(
                tonic::Status::unavailable("the stream ended before the run finished").into(),
            );
        };
        // The run as it ended, not as it started, goes into the report.
        run.status = summary.status;
        run.finished_at = summary.finished_at;
        run.summary = Some(summary.clone());
        let flaky = flaky_tests(&results, run.repeats);
        if let Some(destination) = &self.destination {
            let suite = suite_name(clients, &run.test_set_id).await;
            destination.write(&Report {
                suite,
                run,
                summary: summary.clone(),
                results,
            })?;
        }
        Ok(Ended {
            run_id: summary.run_id.clone(),
            summary,
            fail_under: self.fail_under,
            flaky,
        })
    }
}

/// A run that was followed to its end.
struct Ended {
    run_id: String,
    summary: pb::TestRunSummary,
    fail_under: f64,
    /// Its repeated tests whose repetitions disagreed.
    flaky: Vec<Flaky>,
}

impl Ended {
    /// Fails when the run has no verdicts to judge it by (exit code 4).
    fn judged(&self) -> Result<(), CliError> {
        match unjudged(&self.summary) {
            Some(why) => Err(CliError::Unjudged(format!(
                "the run could not be judged: {why}"
            ))),
            None => Ok(()),
        }
    }

    /// The gate: judged, and a pass rate of at least `--fail-under`.
    fn judge(&self) -> Result<(), CliError> {
        self.judged()?;
        let summary = &self.summary;
        // A run of no tests (an empty shard) has nothing to gate on.
        if summary.total > 0 && summary.pass_rate < self.fail_under {
            return Err(CliError::Gate(format!(
                "gate failed: pass rate {:.1}% is under {:.1}% ({} failed, {} errored of {})",
                summary.pass_rate * 100.0,
                self.fail_under * 100.0,
                summary.failed,
                summary.errored,
                summary.total
            )));
        }
        Ok(())
    }
}

/// Why a finished run gives no verdicts to gate on, if it does not: it failed, was cancelled or
/// stopped at its budget, or every result is an error (the endpoint was down: an outage, not a regression).
fn unjudged(summary: &pb::TestRunSummary) -> Option<String> {
    match pb::RunStatus::try_from(summary.status) {
        Ok(pb::RunStatus::Failed) => Some("the run FAILED".to_string()),
        Ok(pb::RunStatus::Cancelled) => Some("the run was CANCELLED".to_string()),
        // Not every test ran: the pass rate says nothing of the rest.
        Ok(pb::RunStatus::BudgetExceeded) => Some(format!(
            "the run stopped at its budget ({})",
            summary.reason
        )),
        _ if summary.total > 0 && summary.errored == summary.total => Some(format!(
            "every result is an error ({} of {})",
            summary.errored, summary.total
        )),
        _ => None,
    }
}

/// `execute`.
pub async fn execute(global: &Global, out: &Output, args: ExecuteArgs) -> Result<(), CliError> {
    // Checked before connecting: a bad report path is told even with no server.
    Outcome::of(&args.outcome)?;
    let clients = Clients::connect(global).await?;
    execute_on(&clients, out, args).await
}

/// Runs a test set against an endpoint through `clients` and follows the run (see `execute`).
pub(super) async fn execute_on(
    clients: &Clients,
    out: &Output,
    args: ExecuteArgs,
) -> Result<(), CliError> {
    let regression = &args.regression;
    if args.compare_to.is_none() && regression.fail_on_regression {
        return Err(CliError::usage("--fail-on-regression needs --compare-to"));
    }
    // Checked before the run starts: a typo must not cost a whole run.
    let comparison = args
        .compare_to
        .as_deref()
        .map(|to| compare::request_for(to, String::new()))
        .transpose()?;
    let mut outcome = Outcome::of(&args.outcome)?;
    if regression.fail_on_regression && args.outcome.fail_under.is_none() {
        // Regressions are the gate; the pass rate is only when asked for.
        outcome.fail_under = 0.0;
    }
    let mut parameters = serde_json::Map::new();
    for param in &args.params {
        let (key, value) = key_value(param, "--param")?;
        parameters.insert(key, value);
    }
    let request = pb::ExecuteRequest {
        test_set: args.pair.test_set,
        endpoint: args.pair.endpoint,
        mode: proto_mode(args.dispatch.mode) as i32,
        metrics: args.metrics,
        max_concurrency: args.dispatch.max_concurrency.unwrap_or(0),
        parameters: (!parameters.is_empty()).then(|| struct_of(parameters)),
        budget_usd: args.budget_usd,
        labels: compare::pairs(&args.labels, "--label")?,
        filter: test_filter(args.filter)?,
        shard: args.shard.map(|(index, count)| pb::Shard { index, count }),
        repeats: args.repeats,
    };
    let stream = clients.execution().execute(request).await?.into_inner();
    let ended = outcome.follow(clients, out, stream).await?;
    let alone = compare::run_markdown(&ended.summary, &ended.flaky);
    match comparison {
        Some(mut request) => {
            ended.judged()?;
            request.head_run = ended.run_id.clone();
            compare::show(clients, out, request, regression, Some(&alone)).await?;
        }
        None => {
            if let Some(path) = &regression.summary_md {
                std::fs::write(path, alone)?;
            }
        }
    }
    ended.judge()
}

/// The filter of `--filter-*` flags; `None` when none is given.
fn test_filter(args: FilterArgs) -> Result<Option<pb::TestFilter>, CliError> {
    let metadata = compare::pairs(&args.metadata, "--filter-metadata")?;
    let filter = pb::TestFilter {
        categories: args.categories,
        topics: args.topics,
        behaviors: args.behaviors,
        test_ids: args.test_ids,
        metadata,
    };
    Ok((filter != pb::TestFilter::default()).then_some(filter))
}

/// `rescore`.
pub async fn rescore(global: &Global, out: &Output, args: RescoreArgs) -> Result<(), CliError> {
    let outcome = Outcome::of(&args.outcome)?;
    let clients = Clients::connect(global).await?;
    let request = pb::RescoreRequest {
        test_set: args.pair.test_set,
        endpoint: args.pair.endpoint,
        run: args.run.unwrap_or_default(),
        metrics: args.metrics,
        mode: proto_mode(args.dispatch.mode) as i32,
        max_concurrency: args.dispatch.max_concurrency.unwrap_or(0),
        filter: test_filter(args.filter)?,
    };
    let stream = clients.execution().rescore(request).await?.into_inner();
    outcome.follow(&clients, out, stream).await?.judge()
}

/// The mode as the API spells it.
fn proto_mode(mode: Mode) -> pb::ExecutionMode {
    match mode {
        Mode::Parallel => pb::ExecutionMode::Parallel,
        Mode::Sequential => pb::ExecutionMode::Sequential,
    }
}

/// `watch`.
pub async fn watch(global: &Global, out: &Output, args: WatchArgs) -> Result<(), CliError> {
    let outcome = Outcome::of(&args.outcome)?;
    let clients = Clients::connect(global).await?;
    let stream = clients
        .execution()
        .watch_test_run(pb::WatchTestRunRequest { run: args.run })
        .await?
        .into_inner();
    outcome.follow(&clients, out, stream).await?.judge()
}

/// `retry-errors`.
pub async fn retry_errors(global: &Global, out: &Output, args: WatchArgs) -> Result<(), CliError> {
    let outcome = Outcome::of(&args.outcome)?;
    let clients = Clients::connect(global).await?;
    let stream = clients
        .execution()
        .retry_errors(pb::RetryErrorsRequest { run: args.run })
        .await?
        .into_inner();
    outcome.follow(&clients, out, stream).await?.judge()
}

/// `last-run`.
pub async fn last_run(global: &Global, out: &Output, args: LastRunArgs) -> Result<(), CliError> {
    let labels = compare::pairs(&args.labels, "--label")?;
    let args = args.pair;
    let clients = Clients::connect(global).await?;
    let response = clients
        .execution()
        .last_run(pb::LastRunRequest {
            test_set: args.test_set.clone(),
            endpoint: args.endpoint.clone(),
            labels,
        })
        .await?
        .into_inner();
    match response.run {
        Some(summary) if out.json => out.value(&to_json(&summary, "TestRunSummary"))?,
        Some(summary) => line(summary_text(&summary))?,
        None if out.json => out.value(&Value::Object(Default::default()))?,
        None => line(format_args!(
            "no completed run of test set {} on endpoint {}",
            args.test_set, args.endpoint
        ))?,
    }
    Ok(())
}

/// `cancel`.
pub async fn cancel(global: &Global, out: &Output, args: RunArgs) -> Result<(), CliError> {
    let clients = Clients::connect(global).await?;
    let run = clients
        .execution()
        .cancel_test_run(pb::CancelTestRunRequest { run: args.run })
        .await?
        .into_inner();
    match &run.summary {
        Some(summary) if !out.json => line(summary_text(summary))?,
        _ => out.value(&to_json(&run, "TestRun"))?,
    }
    Ok(())
}

/// `runs list [SET] [ENDPOINT]`: a table for people, a JSON line per run for scripts.
pub async fn list_runs(
    global: &Global,
    out: &Output,
    test_set: Option<String>,
    endpoint: Option<String>,
    labels: Vec<String>,
) -> Result<(), CliError> {
    let labels = compare::pairs(&labels, "--label")?;
    let clients = Clients::connect(global).await?;
    let mut execution = clients.execution();
    let mut runs = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = execution
            .list_test_runs(pb::ListTestRunsRequest {
                test_set: test_set.clone().unwrap_or_default(),
                endpoint: endpoint.clone().unwrap_or_default(),
                page_size: PAGE_SIZE,
                page_token,
                labels: labels.clone(),
            })
            .await?
            .into_inner();
        runs.extend(page.runs);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    if out.json {
        return runs
            .iter()
            .try_for_each(|run| out.value(&to_json(run, "TestRun")))
            .map_err(Into::into);
    }
    let rows: Vec<Vec<String>> = runs.iter().map(run_row).collect();
    let headers = [
        "ID", "KIND", "STATUS", "TOTAL", "PASSED", "FAILED", "ERRORED", "CREATED",
    ];
    write!(std::io::stdout().lock(), "{}", table(&headers, &rows))?;
    Ok(())
}

/// A run as a row of `runs list`.
fn run_row(run: &pb::TestRun) -> Vec<String> {
    let name = |text: &str, prefix: &str| text.trim_start_matches(prefix).to_string();
    let kind = pb::RunKind::try_from(run.kind).map_or_else(
        |_| run.kind.to_string(),
        |k| name(k.as_str_name(), "RUN_KIND_"),
    );
    let status = pb::RunStatus::try_from(run.status).map_or_else(
        |_| run.status.to_string(),
        |s| name(s.as_str_name(), "RUN_STATUS_"),
    );
    let counts = run
        .summary
        .as_ref()
        .map_or([0; 3], |s| [s.passed, s.failed, s.errored]);
    let created = run
        .created_at
        .as_ref()
        .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32))
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default();
    let mut row = vec![run.id.clone(), kind, status, run.total.to_string()];
    row.extend(counts.iter().map(u32::to_string));
    row.push(created);
    row
}

/// `report RUN`: the same report as `execute --report`, for a stored run.
pub async fn report(global: &Global, args: ReportCommandArgs) -> Result<(), CliError> {
    let destination = Destination::of(&args.report, true)?.expect("stdout is the default");
    let clients = Clients::connect(global).await?;
    let mut execution = clients.execution();
    let run = execution
        .get_test_run(pb::GetTestRunRequest {
            run: args.run.clone(),
        })
        .await?
        .into_inner();
    let mut results = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = execution
            .list_test_results(pb::ListTestResultsRequest {
                run: run.id.clone(),
                page_size: PAGE_SIZE,
                page_token,
            })
            .await?
            .into_inner();
        results.extend(page.results);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    let summary = run.summary.clone().unwrap_or_default();
    let suite = suite_name(&clients, &run.test_set_id).await;
    destination.write(&Report {
        suite,
        run,
        summary,
        results,
    })
}

/// `test-set metrics list|add|remove`: prints the test set's metrics afterwards.
pub async fn test_set_metrics(
    global: &Global,
    out: &Output,
    command: TestSetMetricsCommand,
) -> Result<(), CliError> {
    let clients = Clients::connect(global).await?;
    let mut execution = clients.execution();
    let metrics = match command {
        TestSetMetricsCommand::List { test_set } => {
            execution
                .list_test_set_metrics(pb::ListTestSetMetricsRequest { test_set })
                .await?
                .into_inner()
                .metrics
        }
        TestSetMetricsCommand::Add(args) => {
            execution
                .add_test_set_metrics(pb::AddTestSetMetricsRequest {
                    test_set: args.test_set,
                    metrics: args.metrics,
                })
                .await?
                .into_inner()
                .metrics
        }
        TestSetMetricsCommand::Remove(args) => {
            execution
                .remove_test_set_metrics(pb::RemoveTestSetMetricsRequest {
                    test_set: args.test_set,
                    metrics: args.metrics,
                })
                .await?
                .into_inner()
                .metrics
        }
    };
    let items: Vec<_> = metrics.iter().map(|m| to_json(m, "Metric")).collect();
    out.list(&items, &["id", "name", "scoreType"])?;
    Ok(())
}

/// The name of a run's test set for the report, or its id when it was deleted since.
async fn suite_name(clients: &Clients, test_set_id: &str) -> String {
    clients
        .test_sets()
        .get_test_set(pb::GetTestSetRequest {
            test_set: test_set_id.to_string(),
        })
        .await
        .map(|t| t.into_inner().name)
        .unwrap_or_else(|_| test_set_id.to_string())
}

/// A JSON object as a `google.protobuf.Struct`.
fn struct_of(object: serde_json::Map<String, Value>) -> prost_types::Struct {
    super::json::from_json(Value::Object(object), "google.protobuf.Struct", "--param")
        .expect("any JSON object is a Struct")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(status: pb::RunStatus, total: u32, errored: u32) -> pb::TestRunSummary {
        pb::TestRunSummary {
            status: status as i32,
            total,
            errored,
            ..Default::default()
        }
    }

    #[test]
    fn a_run_without_verdicts_is_unjudged_and_one_with_some_is_judged() {
        assert!(unjudged(&summary(pb::RunStatus::Failed, 3, 3)).is_some());
        assert!(unjudged(&summary(pb::RunStatus::Cancelled, 3, 0)).is_some());
        assert!(unjudged(&summary(pb::RunStatus::BudgetExceeded, 3, 0)).is_some());
        assert!(unjudged(&summary(pb::RunStatus::Partial, 3, 3)).is_some());
        assert!(unjudged(&summary(pb::RunStatus::Partial, 3, 2)).is_none());
        assert!(unjudged(&summary(pb::RunStatus::Completed, 3, 0)).is_none());
    }
}
