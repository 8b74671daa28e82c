//! Routing a metric to the check that scores it, and nothing else: pass/fail checks
//! ([`super::deterministic`]) are evaluated in place, similarity ([`super::similarity`]) on the
//! blocking pool, semantic similarity ([`super::semantic`]) and LLM judges ([`super::judge`]) by
//! their model, external scorers ([`super::external`]) by the user's scorer.

use super::deterministic::{
    AffixMatch, Contains, Cost, ExactMatch, IsJson, JsonSchema, Latency, Length, NotContains,
    PassFail, RegexMatch, TokenUsage,
};
use super::external::ExternalCheck;
use super::judge::JudgeCheck;
use super::semantic::SemanticCheck;
use super::similarity::SimilarityCheck;
use super::{JudgeHandle, ScoreInput, Verdict};
use crate::domain::{Metric, MetricKind};

/// A metric kind made ready to run: regexes and schemas compiled, case folding decided, judge
/// prepared. One variant per check; each variant's type says what it checks.
#[derive(Debug)]
pub(super) enum Check {
    /// `exact_match`.
    ExactMatch(ExactMatch),
    /// `contains`.
    Contains(Contains),
    /// `not_contains`.
    NotContains(NotContains),
    /// `starts_with` and `ends_with`.
    Affix(AffixMatch),
    /// `regex`.
    Regex(RegexMatch),
    /// `is_json`.
    IsJson(IsJson),
    /// `json_schema`.
    JsonSchema(JsonSchema),
    /// `length`.
    Length(Length),
    /// `latency`.
    Latency(Latency),
    /// `cost`.
    Cost(Cost),
    /// `token_usage`.
    TokenUsage(TokenUsage),
    /// The similarity measures.
    Similarity(SimilarityCheck),
    /// `semantic_similarity`.
    Semantic(SemanticCheck),
    /// `llm_judge`.
    Judge(JudgeCheck),
    /// `external`.
    External(ExternalCheck),
}

impl Check {
    /// Prepares a metric kind; `judge` is the model endpoint of a kind that calls one (an LLM
    /// judge's judge, a semantic similarity's embedding endpoint).
    pub(super) fn new(kind: &MetricKind, judge: Option<JudgeHandle>) -> Result<Self, String> {
        Ok(match kind {
            MetricKind::ExactMatch {
                value,
                ignore_case,
                trim,
            } => Check::ExactMatch(ExactMatch::new(value, *ignore_case, *trim)),
            MetricKind::Contains {
                values,
                match_all,
                case_sensitive,
            } => Check::Contains(Contains::new(values, *match_all, *case_sensitive)),
            MetricKind::NotContains {
                values,
                case_sensitive,
            } => Check::NotContains(NotContains::new(values, *case_sensitive)),
            MetricKind::StartsWith(affix) => Check::Affix(AffixMatch::new(affix, false)),
            MetricKind::EndsWith(affix) => Check::Affix(AffixMatch::new(affix, true)),
            MetricKind::Regex { pattern, no_match } => {
                Check::Regex(RegexMatch::new(pattern, *no_match)?)
            }
            MetricKind::IsJson => Check::IsJson(IsJson),
            MetricKind::JsonSchema { schema } => Check::JsonSchema(JsonSchema::new(schema)?),
            MetricKind::Length { min, max, unit } => Check::Length(Length::new(*min, *max, *unit)),
            MetricKind::Latency { max_ms } => Check::Latency(Latency::new(*max_ms)),
            MetricKind::Cost { max_usd } => Check::Cost(Cost::new(*max_usd)),
            MetricKind::TokenUsage { max_tokens } => {
                Check::TokenUsage(TokenUsage::new(*max_tokens))
            }
            MetricKind::Similarity {
                measure,
                value,
                options,
            } => Check::Similarity(SimilarityCheck::new(*measure, *options, value)),
            MetricKind::SemanticSimilarity { value, .. } => {
                Check::Semantic(SemanticCheck::new(value, judge))
            }
            MetricKind::LlmJudge(settings) => Check::Judge(JudgeCheck::new(settings, judge)),
            MetricKind::External(_) => Check::External(ExternalCheck::new(judge)),
        })
    }

    /// Score, category and reason of `metric` on one answer, or why it cannot be evaluated.
    /// Pass/fail checks score 1 or 0.
    pub(super) async fn verdict(
        &self,
        metric: &Metric,
        input: &ScoreInput<'_>,
    ) -> Result<Verdict, String> {
        let (passed, reason) = match self {
            Check::ExactMatch(check) => check.evaluate(input),
            Check::Contains(check) => check.evaluate(input),
            Check::NotContains(check) => check.evaluate(input),
            Check::Affix(check) => check.evaluate(input),
            Check::Regex(check) => check.evaluate(input),
            Check::IsJson(check) => check.evaluate(input),
            Check::JsonSchema(check) => check.evaluate(input),
            Check::Length(check) => check.evaluate(input),
            Check::Latency(check) => check.evaluate(input),
            Check::Cost(check) => check.evaluate(input),
            Check::TokenUsage(check) => check.evaluate(input),
            Check::Similarity(check) => {
                let (score, reason) = check.evaluate(input).await?;
                return Ok(Verdict {
                    score: Some(score),
                    category: None,
                    reason,
                    spent: None,
                    passed: None,
                });
            }
            Check::Semantic(check) => {
                let (score, reason, spent) = check.evaluate(input).await?;
                return Ok(Verdict {
                    score: Some(score),
                    category: None,
                    reason,
                    spent,
                    passed: None,
                });
            }
            Check::External(check) => return check.evaluate(metric, input).await,
            Check::Judge(check) => {
                let (judgement, spent) = check.judge(metric, input).await?;
                return Ok(Verdict {
                    score: judgement.score,
                    category: judgement.category,
                    reason: judgement.reason,
                    spent,
                    passed: None,
                });
            }
        };
        Ok(Verdict {
            score: Some(if passed { 1.0 } else { 0.0 }),
            category: None,
            reason,
            spent: None,
            passed: None,
        })
    }
}
