//! Scoring answers with metrics: one [`Scorer`] for every kind. Deterministic kinds are checked
//! in process ([`deterministic`]); LLM-as-judge kinds call a chat model ([`judge`]).
//!
//! A metric is prepared once per run ([`PreparedMetric`]: regexes compiled, texts folded) and
//! then scores every answer of the run.

mod deterministic;

use std::sync::Arc;

use crate::domain::{Metric, MetricKind, MetricResult};
use deterministic::Check;

/// What a metric looks at for one test.
#[derive(Clone, Copy, Debug)]
pub struct ScoreInput<'a> {
    /// The prompt sent.
    pub prompt: &'a str,
    /// The test's expected response.
    pub expected_response: Option<&'a str>,
    /// The endpoint's answer.
    pub output: &'a str,
    /// Context from the endpoint.
    pub context: &'a [String],
}

/// A metric ready to score many answers.
#[derive(Debug)]
pub struct PreparedMetric {
    /// The metric.
    pub metric: Metric,
    check: Check,
}

impl PreparedMetric {
    /// Prepares `metric`; fails when its settings cannot be used (e.g. a regex that no longer
    /// compiles).
    pub fn new(metric: Metric) -> Result<Self, String> {
        let check = Check::new(&metric.kind)?;
        Ok(PreparedMetric { metric, check })
    }
}

/// Scores answers; holds the HTTP client that judges use.
#[derive(Clone)]
pub struct Scorer {
    http: reqwest::Client,
}

impl Scorer {
    /// A scorer whose judges call models through `http`.
    pub fn new(http: reqwest::Client) -> Self {
        Scorer { http }
    }

    /// The verdict of one metric on one answer. Never fails: a metric that cannot be evaluated
    /// gives a result with `error` set and `passed == false`.
    pub async fn score(
        &self,
        prepared: &Arc<PreparedMetric>,
        input: &ScoreInput<'_>,
    ) -> MetricResult {
        let metric = &prepared.metric;
        let mut result = MetricResult {
            metric_id: metric.id,
            metric_name: metric.name.clone(),
            score: None,
            category: None,
            passed: false,
            reason: String::new(),
            error: None,
        };
        if (metric.requires_expected || needs_expected(&metric.kind))
            && input.expected_response.is_none()
        {
            result.error =
                Some("the metric needs an expected response and the test has none".into());
            return result;
        }
        if metric.requires_context && input.context.is_empty() {
            result.error = Some("the metric needs context and the endpoint returned none".into());
            return result;
        }
        let verdict = match &prepared.check {
            Check::Judge(judge) => {
                let judge_input = judge::JudgeInput {
                    prompt: input.prompt,
                    expected_response: input.expected_response,
                    context: input.context,
                    output: input.output,
                };
                judge::judge(&self.http, judge, metric, &judge_input)
                    .await
                    .map(|j| (j.score, j.category, j.reason))
            }
            check => Ok(check.evaluate(input)).map(|(score, reason)| (Some(score), None, reason)),
        };
        match verdict {
            Ok((score, category, reason)) => {
                result.passed = metric.passes(score, category.as_deref());
                result.score = score;
                result.category = category;
                result.reason = reason;
            }
            Err(error) => result.error = Some(error),
        }
        result
    }
}

/// Exact match without a fixed value compares with the expected response.
fn needs_expected(kind: &MetricKind) -> bool {
    matches!(kind, MetricKind::ExactMatch { value: None, .. })
}

pub mod judge;
