use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Timestamp;

/// How the tests of a run are dispatched.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionMode {
    /// Concurrently, bounded by the concurrency limits.
    #[default]
    Parallel,
    /// One at a time in test-set order.
    Sequential,
}

/// What a run did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunKind {
    /// Called the endpoint.
    Execution,
    /// Scored stored outputs again.
    Rescore,
}

impl RunKind {
    /// Stable text, as metrics and spans label runs.
    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::Execution => "execution",
            RunKind::Rescore => "rescore",
        }
    }
}

/// State of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// In progress.
    Running,
    /// No result is an error.
    Completed,
    /// Some results are errors, or some tests have no result (removed from the test set while
    /// the run ran).
    Partial,
    /// All results are errors, or the run could not proceed.
    Failed,
    /// Cancelled.
    Cancelled,
    /// Its spend reached its budget before every test was started.
    BudgetExceeded,
}

impl RunStatus {
    /// Stable text used in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Completed => "completed",
            RunStatus::Partial => "partial",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
            RunStatus::BudgetExceeded => "budget_exceeded",
        }
    }
}

/// Outcome of one test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResultStatus {
    /// Every metric passed.
    Passed,
    /// Some metric did not pass.
    Failed,
    /// The endpoint failed or no metric could be evaluated.
    Error,
}

impl ResultStatus {
    /// Stable text used in storage (as the JSON body spells it).
    pub fn as_str(self) -> &'static str {
        match self {
            ResultStatus::Passed => "passed",
            ResultStatus::Failed => "failed",
            ResultStatus::Error => "error",
        }
    }
}

/// One execution or rescore of a test set against an endpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TestRun {
    /// UUID.
    pub id: Uuid,
    /// Test set run.
    pub test_set_id: Uuid,
    /// Endpoint run against.
    pub endpoint_id: Uuid,
    /// Execution or rescore.
    pub kind: RunKind,
    /// Dispatch mode.
    pub mode: ExecutionMode,
    /// Current state.
    pub status: RunStatus,
    /// The run a rescore read, or whose errors a retry-errors run executes again.
    pub source_run_id: Option<Uuid>,
    /// Number of tests.
    pub total: u32,
    /// Metrics used.
    pub metric_ids: Vec<Uuid>,
    /// Concurrency allowed.
    pub max_concurrency: u32,
    /// Template parameters.
    pub parameters: serde_json::Map<String, serde_json::Value>,
    /// Why the run could not proceed.
    pub error: Option<String>,
    /// Present once ended.
    pub summary: Option<RunSummary>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Start time.
    pub started_at: Option<Timestamp>,
    /// End time.
    pub finished_at: Option<Timestamp>,
    /// What resuming the run after a stop or crash needs; `None` for runs stored before it
    /// existed.
    #[serde(default)]
    pub plan: Option<RunPlan>,
    /// Labels (`branch`, `commit`, ...) that find the run again.
    #[serde(default, skip_serializing_if = "super::Labels::is_empty")]
    pub labels: super::Labels,
}

impl TestRun {
    /// Ends the run now as `status`, with the summary of the results tallied in its plan.
    pub fn end(&mut self, status: RunStatus) {
        let tally = self
            .plan
            .as_ref()
            .map(|p| p.tally.clone())
            .unwrap_or_default();
        self.status = status;
        tally.finish(self);
    }

    /// How many times each test runs (1 for runs stored before repeats existed); rescores and
    /// retries keep their source's.
    pub fn repeats(&self) -> u32 {
        self.plan.as_ref().map_or(1, RunPlan::repeats)
    }
}

/// What a run needs to be resumed after a stop or a crash, stored with it when it starts: which
/// tests it runs and the metric plan as resolved then, so a resumed run scores every test as it
/// would have. Metric definitions, the endpoint and the tests themselves are read again on resume.
/// Its size does not grow with the run: the tests are named by a position, not one by one.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunPlan {
    /// Execution runs: the position of the test set's last test when the run started; the run's
    /// tests are the set's tests up to it, in test-set order (tests added later are not part of
    /// it). Rescore and retry-errors runs take theirs from the source run's results.
    #[serde(default)]
    pub tests_through: Option<i64>,
    /// Metric ids scoring every test (the execution or test-set tier), when that tier applied.
    pub shared_metrics: Option<Vec<Uuid>>,
    /// Metric ids by behaviour, when the behaviour tier applied.
    pub behavior_metrics: BTreeMap<Uuid, Vec<Uuid>>,
    /// A retry-errors run: results of the source that are not errors are copied as they are,
    /// errors are executed again.
    pub retry_errors: bool,
    /// The most tests of the run in flight at once across every replica, when the request or the
    /// endpoint set one; `None`: each replica runs it with its own default concurrency.
    #[serde(default)]
    pub cluster_concurrency: Option<u32>,
    /// The totals of the results stored so far.
    #[serde(default)]
    pub tally: super::Tally,
    /// Most USD the run may spend; no test starts once its spend reaches it.
    #[serde(default)]
    pub budget_usd: Option<f64>,
    /// How many times each test runs; 0 (plans stored before repeats existed) is once. An
    /// execution's items are its tests' repetitions, at position `seq * repeats + repetition`
    /// of the test's `seq`, so with one repetition an item's position is its test's.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub repeats: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl RunPlan {
    /// How many times each test runs (at least once).
    pub fn repeats(&self) -> u32 {
        self.repeats.max(1)
    }

    /// Whether the run has spent its budget.
    pub fn budget_spent(&self, spent_usd: f64) -> bool {
        self.budget_usd.is_some_and(|budget| spent_usd >= budget)
    }

    /// The final status of a run of `total` tests that was not cancelled, and why when the
    /// status alone does not say: a run that spent its budget with tests left unstarted ended
    /// for that; a run some of whose tests were removed from the test set while it ran is at
    /// best `Partial` (never `Completed` with tests missing), saying how many; else the results
    /// decide.
    pub fn outcome(&self, total: u32) -> (RunStatus, Option<String>) {
        let spent = self.tally.spending().total_usd();
        let repeats = self.repeats();
        let items = total.saturating_mul(repeats);
        let unit = if repeats == 1 { "tests" } else { "repetitions" };
        let missing = items.saturating_sub(self.tally.stored());
        match self.budget_usd {
            Some(budget) if self.budget_spent(spent) && missing > 0 => (
                RunStatus::BudgetExceeded,
                Some(format!(
                    "budget of {budget} USD reached: spent {spent:.6} USD, {missing} of {items} \
                     {unit} not run"
                )),
            ),
            // Items are only dropped unrun for a spent budget or a removed test.
            _ if missing > 0 => {
                let status = match self.tally.status() {
                    RunStatus::Completed => RunStatus::Partial,
                    status => status,
                };
                let reason = format!(
                    "{missing} of {items} {unit} were removed from the test set while the run \
                     ran: they have no result"
                );
                (status, Some(reason))
            }
            _ => (self.tally.status(), None),
        }
    }
}

/// Counts and statistics of an ended run. With repeats, `passed`, `failed`, `errored` and the
/// rates count tests, each by the majority of its repetitions (see
/// [`RunSummary::count_tests`]); with one repetition a test is its result.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// Tests in the run.
    pub total: u32,
    /// Passed tests.
    pub passed: u32,
    /// Failed tests.
    pub failed: u32,
    /// Errored tests.
    pub errored: u32,
    /// passed / total.
    pub pass_rate: f64,
    /// How many times each test ran (summaries stored before repeats existed read 0: once).
    #[serde(default)]
    pub repeats: u32,
    /// Tests with at least one passing and at least one non-passing repetition.
    #[serde(default)]
    pub flaky: u32,
    /// Passing repetitions / every repetition of the run (total × repeats).
    #[serde(default)]
    pub mean_pass_rate: f64,
    /// Lower end of the 95% Wilson score interval of `mean_pass_rate`.
    #[serde(default)]
    pub pass_rate_low: f64,
    /// Upper end of that interval.
    #[serde(default)]
    pub pass_rate_high: f64,
    /// Share of the tests with at least one passing repetition (pass@k, k = repeats).
    #[serde(default)]
    pub pass_at_k: f64,
    /// Share of the tests whose every repetition passed (pass^k, k = repeats).
    #[serde(default)]
    pub pass_hat_k: f64,
    /// Run duration.
    pub duration_ms: u64,
    /// Per metric, in order of first use.
    pub metrics: Vec<MetricStats>,
    /// Tokens and cost of the endpoint calls and of the judge calls (summaries stored before
    /// they were counted read none).
    #[serde(default)]
    pub spending: super::Spending,
}

/// Statistics of one metric over a run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricStats {
    /// Metric id.
    pub metric_id: Uuid,
    /// Metric name.
    pub metric_name: String,
    /// Evaluated without error.
    pub evaluated: u32,
    /// Passed.
    pub passed: u32,
    /// Could not evaluate.
    pub errored: u32,
    /// Mean score over evaluated results with a score.
    pub mean_score: f64,
}

/// The result of one test in a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TestResult {
    /// UUID.
    pub id: Uuid,
    /// Run.
    pub run_id: Uuid,
    /// Test.
    pub test_id: Uuid,
    /// Outcome.
    pub status: ResultStatus,
    /// The endpoint's answer; `None` when the endpoint failed.
    pub output: Option<String>,
    /// Context from the endpoint.
    pub context: Vec<String>,
    /// Extra data from the endpoint.
    pub metadata: Option<serde_json::Value>,
    /// Endpoint latency.
    pub latency_ms: u64,
    /// Which repetition of its test this is, 0-based (0 when the run repeats nothing).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub repetition: u32,
    /// Endpoint error, or why nothing was scored.
    pub error: Option<String>,
    /// Attempts made to call the endpoint (a rescore keeps the source's; 0: never called).
    #[serde(default)]
    pub attempts: u32,
    /// Error of the last failed attempt, also when a later attempt succeeded.
    #[serde(default)]
    pub last_error: Option<String>,
    /// One per metric.
    pub metric_results: Vec<MetricResult>,
    /// Prompt sent (snapshot of the test).
    pub prompt: String,
    /// Expected response (snapshot of the test).
    pub expected_response: Option<String>,
    /// Behaviour of the test at run time (snapshot), for rescoring by the hierarchy.
    pub behavior_id: Option<Uuid>,
    /// When stored.
    pub created_at: Timestamp,
    /// Tokens of the endpoint call, when it reported them.
    #[serde(default)]
    pub usage: Option<super::Usage>,
    /// Cost of the endpoint call in USD.
    #[serde(default)]
    pub cost_usd: f64,
    /// Tokens of the calls that scored the answer (judges, embeddings), summed.
    #[serde(default)]
    pub judge_usage: super::Usage,
    /// Cost of those calls in USD.
    #[serde(default)]
    pub judge_cost_usd: f64,
    /// OpenTelemetry trace id of the test's span (32 hexadecimal digits), whose endpoint and
    /// judge calls carried it in `traceparent`; empty when the server exported no traces.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub trace_id: String,
}

impl TestResult {
    /// What the result cost: its endpoint call and the calls that scored it.
    pub fn spent_usd(&self) -> f64 {
        self.cost_usd + self.judge_cost_usd
    }

    /// Sets the judge tokens and cost to the sums of its metric results'.
    pub fn count_judge_spend(&mut self) {
        let mut usage = super::Usage::default();
        for m in &self.metric_results {
            usage.add(m.usage.unwrap_or_default());
        }
        self.judge_usage = usage;
        self.judge_cost_usd = self.metric_results.iter().map(|m| m.cost_usd).sum();
    }
}

/// The verdict of one metric on one answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricResult {
    /// Metric id.
    pub metric_id: Uuid,
    /// Metric name at scoring time.
    pub metric_name: String,
    /// Score, when given.
    pub score: Option<f64>,
    /// Category, for categorical metrics.
    pub category: Option<String>,
    /// Passed.
    pub passed: bool,
    /// Why.
    pub reason: String,
    /// Why it could not be evaluated.
    pub error: Option<String>,
    /// How long the metric took, in milliseconds (results stored before it was kept read 0).
    #[serde(default)]
    pub duration_ms: u64,
    /// Tokens of the model calls the metric made (a judge, an embedding), when reported.
    #[serde(default)]
    pub usage: Option<super::Usage>,
    /// Cost of those calls in USD.
    #[serde(default)]
    pub cost_usd: f64,
}

/// Which runs a list returns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunFilter {
    /// Only runs of this test set.
    pub test_set_id: Option<Uuid>,
    /// Only runs against this endpoint.
    pub endpoint_id: Option<Uuid>,
    /// Only runs that carry every one of these labels.
    pub labels: super::Labels,
}
