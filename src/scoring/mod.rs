//! Scoring answers with metrics: one [`Scorer`] for every kind. A metric is prepared once per
//! run ([`PreparedMetric`]: regexes and schemas compiled, texts folded, judge endpoint prepared)
//! and then scores every answer of the run.
//!
//! This file holds the scorer and what every metric shares (its input, the checks made before
//! any metric runs); `check.rs` routes each kind to the place that scores it: pass/fail checks
//! that need no model (`deterministic/`), similarity measures (`similarity.rs`) and LLM judges
//! ([`judge`]).

mod check;
mod deterministic;
mod external;
pub mod judge;
mod semantic;
mod similarity;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use tracing::Instrument;
use uuid::Uuid;

use crate::domain::{Endpoint, ExternalScorer, Metric, MetricResult, Usage};
use crate::endpoint_client::TargetClient;
use check::Check;
pub use external::default_policy_endpoint;
pub use judge::JudgeClient;

/// The endpoint a metric calls for one run (an LLM judge's judge, a semantic similarity's
/// embedding endpoint, an external scorer), or why it has none (then every score of the metric
/// is an error, and the run goes on).
pub type JudgeHandle = Result<Arc<JudgeClient>, String>;

/// What a metric looks at for one test.
#[derive(Clone, Copy, Debug)]
pub struct ScoreInput<'a> {
    /// The test's id.
    pub test_id: Uuid,
    /// The test's metadata.
    pub metadata: &'a BTreeMap<String, String>,
    /// The prompt sent.
    pub prompt: &'a str,
    /// The test's expected response.
    pub expected_response: Option<&'a str>,
    /// The endpoint's answer.
    pub output: &'a str,
    /// Context from the endpoint.
    pub context: &'a [String],
    /// The endpoint's measured latency for this answer, in milliseconds.
    pub latency_ms: u64,
    /// Tokens of the endpoint call, when it reported them.
    pub usage: Option<Usage>,
    /// Cost of the endpoint call in USD.
    pub cost_usd: f64,
}

/// A metric ready to score many answers.
#[derive(Debug)]
pub struct PreparedMetric {
    /// The metric.
    pub metric: Metric,
    check: Check,
}

impl PreparedMetric {
    /// Prepares `metric` (with its `judge` when it is an LLM judge); fails when its settings
    /// cannot be used (e.g. a regex that no longer compiles).
    pub fn new(metric: Metric, judge: Option<JudgeHandle>) -> Result<Self, String> {
        let check = Check::new(&metric.kind, judge)?;
        Ok(PreparedMetric { metric, check })
    }
}

/// Scores answers; prepares judge endpoints with the process's target client.
#[derive(Clone)]
pub struct Scorer {
    targets: TargetClient,
    default_judge: Option<Endpoint>,
}

impl Scorer {
    /// A scorer whose judges are called through `targets`; `default_judge` judges the metrics
    /// that name no judge.
    pub fn new(targets: TargetClient, default_judge: Option<Endpoint>) -> Self {
        Scorer {
            targets,
            default_judge,
        }
    }

    /// The server's default judge, if configured.
    pub fn default_judge(&self) -> Option<&Endpoint> {
        self.default_judge.as_ref()
    }

    /// Prepares a judge endpoint for one run.
    pub fn prepare_judge(&self, endpoint: &Endpoint) -> JudgeHandle {
        JudgeClient::prepare(&self.targets, endpoint).map(Arc::new)
    }

    /// Prepares an external scorer for one run, its calls with `policy`'s call policy.
    pub fn prepare_scorer(&self, scorer: &ExternalScorer, policy: &Endpoint) -> JudgeHandle {
        JudgeClient::prepare_scorer(&self.targets, scorer, policy).map(Arc::new)
    }

    /// The verdict of one metric on one answer. Never fails: a metric that cannot be evaluated
    /// gives a result with `error` set and `passed == false`.
    pub async fn score(
        &self,
        prepared: &Arc<PreparedMetric>,
        input: &ScoreInput<'_>,
    ) -> MetricResult {
        let started = Instant::now();
        let metric = &prepared.metric;
        let mut result = MetricResult {
            metric_id: metric.id,
            metric_name: metric.name.clone(),
            score: None,
            category: None,
            passed: false,
            reason: String::new(),
            error: None,
            duration_ms: 0,
            usage: None,
            cost_usd: 0.0,
        };
        let kind = metric.kind.name();
        let span = tracing::info_span!(
            "assay.metric",
            metric = %metric.name,
            metric.kind = kind,
        );
        match self.verdict(prepared, input).instrument(span).await {
            Ok(verdict) => {
                result.passed = verdict
                    .passed
                    .unwrap_or_else(|| metric.passes(verdict.score, verdict.category.as_deref()));
                result.score = verdict.score;
                result.category = verdict.category;
                result.reason = verdict.reason;
                if let Some((usage, cost_usd)) = verdict.spent {
                    result.usage = Some(usage);
                    result.cost_usd = cost_usd;
                }
            }
            Err(error) => result.error = Some(error),
        }
        let took = started.elapsed();
        self.targets.telemetry().metric_evaluated(kind, took);
        result.duration_ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
        result
    }

    /// Score, category and reason; or why the metric cannot be evaluated.
    async fn verdict(
        &self,
        prepared: &PreparedMetric,
        input: &ScoreInput<'_>,
    ) -> Result<Verdict, String> {
        let metric = &prepared.metric;
        let compares_with_expected = metric.kind.reference_value() == Some(None);
        if (metric.requires_expected || compares_with_expected) && input.expected_response.is_none()
        {
            return Err("the metric needs an expected response and the test has none".into());
        }
        if metric.requires_context && input.context.is_empty() {
            return Err("the metric needs context and the endpoint returned none".into());
        }
        if metric.kind.needs_usage() && input.usage.is_none() {
            return Err(
                "the metric needs the call's token usage and the endpoint reported none \
                 (map it with response_mapping.input_tokens and output_tokens)"
                    .into(),
            );
        }
        prepared.check.verdict(metric, input).await
    }
}

/// Tokens a model call of a metric reported, and their cost in USD; `None` when it reported none.
pub(crate) type Spent = Option<(Usage, f64)>;

/// What one metric says of one answer.
#[derive(Debug)]
struct Verdict {
    score: Option<f64>,
    category: Option<String>,
    reason: String,
    /// What the metric's model calls spent.
    spent: Spent,
    /// The verdict itself, when the metric gives one (an external scorer's `passed`); else the
    /// score or category is compared with the metric's threshold or passing categories.
    passed: Option<bool>,
}

impl<'a> ScoreInput<'a> {
    /// The text a check compares with: its `value`, else the test's expected response.
    fn reference(&self, value: &'a Option<String>) -> &'a str {
        value
            .as_deref()
            .or(self.expected_response)
            .unwrap_or_default()
    }
}

/// At most `max_chars` characters of a text, for reasons and errors.
fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

/// Answers for the tests of the checks.
#[cfg(test)]
mod fixtures {
    use std::collections::BTreeMap;

    use super::ScoreInput;

    static NO_METADATA: BTreeMap<String, String> = BTreeMap::new();

    /// About 100k characters of text ending with "the end.".
    pub(super) fn long_text() -> String {
        format!("{}the end.", "lorem ipsum dolor sit amet ".repeat(3_800))
    }

    /// The answer `output` to a test that expects `expected`, given at once.
    pub(super) fn input<'a>(output: &'a str, expected: Option<&'a str>) -> ScoreInput<'a> {
        ScoreInput {
            test_id: uuid::Uuid::nil(),
            metadata: &NO_METADATA,
            prompt: "p",
            expected_response: expected,
            output,
            context: &[],
            latency_ms: 0,
            usage: None,
            cost_usd: 0.0,
        }
    }
}
