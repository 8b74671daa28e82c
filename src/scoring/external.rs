//! External scorers: a scorer the user runs (HTTP or gRPC) scores the answer; its answer is
//! read against the metric's score type here.

use std::collections::BTreeMap;

use super::{JudgeHandle, ScoreInput, Verdict};
use crate::domain::{
    CallPolicy, Endpoint, ExternalScorer, HttpTarget, Metric, Pricing, ResponseMapping, ScoreType,
    Target,
};
use crate::endpoint_client::{ScorerAnswer, ScorerInput};

/// The call policy of an external scorer that names no endpoint: an in-memory endpoint with an
/// endpoint's defaults (timeout, retries, no limits) and a gate of its own (the metric's id).
pub fn default_policy_endpoint(metric: &Metric, scorer: &ExternalScorer) -> Endpoint {
    let now = chrono::Utc::now();
    Endpoint {
        id: metric.id,
        name: format!("scorer of metric {}", metric.name),
        description: String::new(),
        target: Target::Http(HttpTarget {
            url: scorer.url.clone(),
            method: String::new(),
            headers: BTreeMap::new(),
            body_template: String::new(),
            response_mapping: ResponseMapping::default(),
            timeout_ms: 0,
        }),
        max_concurrency: 0,
        max_retries: None,
        rate_limit_per_second: 0.0,
        call_policy: CallPolicy::default(),
        pricing: Pricing::default(),
        created_at: now,
        updated_at: now,
    }
}

/// An `external` metric made ready for a run: its scorer, or why it has none (then every score
/// is an error).
#[derive(Debug)]
pub(super) struct ExternalCheck {
    client: JudgeHandle,
}

impl ExternalCheck {
    /// The check calling the scorer prepared as `client`.
    pub(super) fn new(client: Option<JudgeHandle>) -> Self {
        ExternalCheck {
            client: client.unwrap_or_else(|| Err("no scorer was prepared".into())),
        }
    }

    /// The scorer's verdict on one answer of `metric`.
    pub(super) async fn evaluate(
        &self,
        metric: &Metric,
        input: &ScoreInput<'_>,
    ) -> Result<Verdict, String> {
        let client = self.client.as_ref().map_err(Clone::clone)?;
        let answer = client
            .score(&ScorerInput {
                test_id: input.test_id,
                metric: &metric.name,
                prompt: input.prompt,
                output: input.output,
                expected_response: input.expected_response,
                context: input.context,
                metadata: input.metadata,
            })
            .await?;
        read_answer(metric, answer).map_err(|e| format!("scorer {:?}: {e}", client.name()))
    }
}

/// A scorer's answer as a verdict. `passed`, when given, is the verdict; else a numeric metric
/// compares the score with its threshold and a binary one reads `passed` or the score as 1 or 0.
/// A categorical metric needs a category, one of its own (letter case aside). An answer with
/// none of score, passed and category, or a score that is not a finite number, is an error.
fn read_answer(metric: &Metric, answer: ScorerAnswer) -> Result<Verdict, String> {
    let ScorerAnswer {
        score,
        passed,
        category,
        reason,
    } = answer;
    if score.is_none() && passed.is_none() && category.is_none() {
        return Err("the answer has none of score, passed and category".into());
    }
    if let Some(score) = score
        && !score.is_finite()
    {
        return Err(format!("the score {score} is not a finite number"));
    }
    let category = match (metric.score_type, category) {
        (ScoreType::Categorical, None) => {
            return Err(format!(
                "the answer has no category (one of {:?})",
                metric.categories
            ));
        }
        (ScoreType::Categorical, Some(answered)) => {
            let answered = answered.trim();
            Some(metric.category_named(answered).cloned().ok_or_else(|| {
                format!(
                    "category {answered:?} is not one of {:?}",
                    metric.categories
                )
            })?)
        }
        (_, category) => category,
    };
    let score = match metric.score_type {
        ScoreType::Binary => passed.map(|p| if p { 1.0 } else { 0.0 }).or(score),
        ScoreType::Numeric | ScoreType::Categorical => {
            score.or_else(|| passed.map(|p| if p { 1.0 } else { 0.0 }))
        }
    };
    if metric.score_type == ScoreType::Numeric && score.is_none() {
        return Err("the answer has no score or passed for a numeric metric".into());
    }
    Ok(Verdict {
        score,
        category,
        reason: reason.unwrap_or_default(),
        spent: None,
        passed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ExternalScorer, MetricKind, ScorerProtocol, ThresholdOperator};

    fn metric(score_type: ScoreType) -> Metric {
        Metric {
            id: uuid::Uuid::now_v7(),
            name: "m".into(),
            description: String::new(),
            score_type,
            threshold: None,
            threshold_operator: ThresholdOperator::default_for(score_type),
            categories: vec!["good".into(), "bad".into()],
            passing_categories: vec!["good".into()],
            requires_expected: false,
            requires_context: false,
            kind: MetricKind::External(ExternalScorer {
                protocol: ScorerProtocol::Http,
                url: "http://127.0.0.1:9".into(),
                endpoint: None,
            }),
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
        }
    }

    fn answer(score: Option<f64>, passed: Option<bool>, category: Option<&str>) -> ScorerAnswer {
        ScorerAnswer {
            score,
            passed,
            category: category.map(str::to_string),
            reason: Some("because".into()),
        }
    }

    #[test]
    fn an_answer_without_a_verdict_is_an_error() {
        for score_type in [
            ScoreType::Numeric,
            ScoreType::Binary,
            ScoreType::Categorical,
        ] {
            let error = read_answer(&metric(score_type), answer(None, None, None)).unwrap_err();
            assert!(
                error.contains("none of score, passed and category"),
                "{error}"
            );
        }
        let error = read_answer(
            &metric(ScoreType::Numeric),
            answer(Some(f64::NAN), None, None),
        )
        .unwrap_err();
        assert!(error.contains("finite"), "{error}");
    }

    #[test]
    fn passed_reads_as_a_score_of_one_or_zero_and_stays_the_verdict() {
        let numeric = read_answer(&metric(ScoreType::Numeric), answer(None, Some(true), None));
        let numeric = numeric.unwrap();
        assert_eq!((numeric.score, numeric.passed), (Some(1.0), Some(true)));
        let binary = read_answer(
            &metric(ScoreType::Binary),
            answer(Some(0.9), Some(false), None),
        );
        assert_eq!(binary.unwrap().score, Some(0.0));
    }

    #[test]
    fn categorical_answers_name_one_of_the_metrics_categories() {
        let m = metric(ScoreType::Categorical);
        let found = read_answer(&m, answer(None, None, Some(" Good "))).unwrap();
        assert_eq!(found.category.as_deref(), Some("good"));
        let stray = read_answer(&m, answer(None, None, Some("odd"))).unwrap_err();
        assert!(stray.contains("\"odd\""), "{stray}");
        let none = read_answer(&m, answer(Some(1.0), None, None)).unwrap_err();
        assert!(none.contains("no category"), "{none}");
    }
}
