use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Timestamp;
use crate::error::{Error, Result};

/// A metric: what it checks ([`MetricKind`]) and how its score is read.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    /// UUID.
    pub id: Uuid,
    /// Unique name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// How the score is read.
    pub score_type: ScoreType,
    /// Pass threshold; `None` takes [`Metric::effective_threshold`]'s default.
    pub threshold: Option<f64>,
    /// Comparison of the score with the threshold.
    pub threshold_operator: ThresholdOperator,
    /// Categorical metrics: every category.
    pub categories: Vec<String>,
    /// Categorical metrics: the passing categories.
    pub passing_categories: Vec<String>,
    /// Needs the test's expected response.
    pub requires_expected: bool,
    /// Needs context from the endpoint.
    pub requires_context: bool,
    /// What the metric checks.
    pub kind: MetricKind,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}

/// What a metric checks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MetricKind {
    /// The output equals `value`, or the expected response when `value` is `None`.
    ExactMatch {
        /// Fixed value to compare with.
        value: Option<String>,
        /// Ignore letter case.
        ignore_case: bool,
        /// Trim surrounding whitespace first.
        trim: bool,
    },
    /// The output contains any (or all) of `values`.
    Contains {
        /// Strings looked for.
        values: Vec<String>,
        /// All must occur.
        match_all: bool,
        /// Respect letter case.
        case_sensitive: bool,
    },
    /// The output matches `pattern` somewhere.
    Regex {
        /// Rust regex syntax.
        pattern: String,
    },
    /// An OpenAI-compatible chat model judges the output.
    LlmJudge(LlmJudge),
}

/// Settings of an LLM-as-judge metric.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LlmJudge {
    /// Base URL of the OpenAI-compatible API.
    pub base_url: String,
    /// Model name.
    pub model: String,
    /// Environment variable with the API key.
    pub api_key_env: Option<String>,
    /// Evaluation instructions (minijinja template).
    pub evaluation_prompt: String,
    /// Lowest score.
    pub min_score: f64,
    /// Highest score.
    pub max_score: f64,
    /// Request timeout.
    pub timeout_ms: u32,
}

impl MetricKind {
    /// The score type a metric of this kind has when none is given.
    pub fn natural_score_type(&self) -> ScoreType {
        match self {
            MetricKind::LlmJudge(_) => ScoreType::Numeric,
            _ => ScoreType::Binary,
        }
    }

    /// Whether this kind can only give a pass/fail score (no category).
    fn is_deterministic(&self) -> bool {
        !matches!(self, MetricKind::LlmJudge(_))
    }
}

/// How a metric's score is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScoreType {
    /// 1 or 0.
    Binary,
    /// A number compared with the threshold.
    Numeric,
    /// One of the metric's categories.
    Categorical,
}

/// Comparison of a score with a threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ThresholdOperator {
    /// `>=`
    #[serde(rename = ">=")]
    Ge,
    /// `>`
    #[serde(rename = ">")]
    Gt,
    /// `<=`
    #[serde(rename = "<=")]
    Le,
    /// `<`
    #[serde(rename = "<")]
    Lt,
    /// `==`
    #[serde(rename = "==")]
    Eq,
    /// `!=`
    #[serde(rename = "!=")]
    Ne,
}

impl ThresholdOperator {
    /// Reads an operator symbol; `None` when the text is no operator.
    pub fn parse(symbol: &str) -> Option<Self> {
        Some(match symbol.trim() {
            ">=" => Self::Ge,
            ">" => Self::Gt,
            "<=" => Self::Le,
            "<" => Self::Lt,
            "==" => Self::Eq,
            "!=" => Self::Ne,
            _ => return None,
        })
    }

    /// The operator's symbol.
    pub fn symbol(self) -> &'static str {
        match self {
            Self::Ge => ">=",
            Self::Gt => ">",
            Self::Le => "<=",
            Self::Lt => "<",
            Self::Eq => "==",
            Self::Ne => "!=",
        }
    }

    /// The default operator of a score type.
    pub fn default_for(score_type: ScoreType) -> Self {
        match score_type {
            ScoreType::Numeric => Self::Ge,
            ScoreType::Binary | ScoreType::Categorical => Self::Eq,
        }
    }

    /// `lhs <op> rhs`.
    pub fn compare(self, lhs: f64, rhs: f64) -> bool {
        match self {
            Self::Ge => lhs >= rhs,
            Self::Gt => lhs > rhs,
            Self::Le => lhs <= rhs,
            Self::Lt => lhs < rhs,
            Self::Eq => lhs == rhs,
            Self::Ne => lhs != rhs,
        }
    }
}

impl Metric {
    /// The threshold in force: the given one, else 1 (true) for binary and 0.5 for numeric.
    pub fn effective_threshold(&self) -> f64 {
        self.threshold.unwrap_or(match self.score_type {
            ScoreType::Numeric => 0.5,
            ScoreType::Binary | ScoreType::Categorical => 1.0,
        })
    }

    /// Whether a score (or category) passes this metric.
    pub fn passes(&self, score: Option<f64>, category: Option<&str>) -> bool {
        let op = self.threshold_operator;
        match self.score_type {
            ScoreType::Categorical => {
                let inside =
                    category.is_some_and(|c| self.passing_categories.iter().any(|p| p == c));
                if op == ThresholdOperator::Ne {
                    !inside
                } else {
                    inside
                }
            }
            ScoreType::Binary => {
                let Some(score) = score else { return false };
                let verdict = score >= 0.5;
                let wanted = self.effective_threshold() >= 0.5;
                (verdict == wanted) == (op == ThresholdOperator::Eq)
            }
            ScoreType::Numeric => score.is_some_and(|s| op.compare(s, self.effective_threshold())),
        }
    }

    /// Checks the metric's settings; field names are paths below `prefix` (e.g. `metric`).
    pub fn validate(&self, prefix: &str) -> Result<()> {
        let field = |name: &str| format!("{prefix}.{name}");
        validate_name(&self.name, &field("name"))?;
        if matches!(self.score_type, ScoreType::Binary | ScoreType::Categorical)
            && !matches!(
                self.threshold_operator,
                ThresholdOperator::Eq | ThresholdOperator::Ne
            )
        {
            return Err(Error::invalid(
                field("threshold_operator"),
                format!(
                    "{:?} is not allowed for {} metrics: use \"==\" or \"!=\"",
                    self.threshold_operator.symbol(),
                    if self.score_type == ScoreType::Binary {
                        "binary"
                    } else {
                        "categorical"
                    }
                ),
            ));
        }
        if let Some(t) = self.threshold
            && !t.is_finite()
        {
            return Err(Error::invalid(
                field("threshold"),
                format!("must be a finite number, got {t}"),
            ));
        }
        if self.score_type == ScoreType::Categorical {
            if self.categories.is_empty() {
                return Err(Error::invalid(
                    field("categories"),
                    "a categorical metric needs at least one category",
                ));
            }
            if self.passing_categories.is_empty() {
                return Err(Error::invalid(
                    field("passing_categories"),
                    "a categorical metric needs at least one passing category",
                ));
            }
            if let Some(stray) = self
                .passing_categories
                .iter()
                .find(|p| !self.categories.contains(p))
            {
                return Err(Error::invalid(
                    field("passing_categories"),
                    format!("{stray:?} is not one of categories"),
                ));
            }
            if self.kind.is_deterministic() {
                return Err(Error::invalid(
                    field("score_type"),
                    "deterministic metrics score binary or numeric, not categorical",
                ));
            }
        }
        match &self.kind {
            MetricKind::ExactMatch { .. } => Ok(()),
            MetricKind::Contains { values, .. } => {
                if values.is_empty() || values.iter().any(String::is_empty) {
                    return Err(Error::invalid(
                        field("contains.values"),
                        "needs at least one value, and no empty value",
                    ));
                }
                Ok(())
            }
            MetricKind::Regex { pattern } => regex::Regex::new(pattern).map(|_| ()).map_err(|e| {
                Error::invalid(
                    field("regex.pattern"),
                    format!("{pattern:?} is not a valid regex: {e}"),
                )
            }),
            MetricKind::LlmJudge(judge) => {
                if !(judge.base_url.starts_with("http://")
                    || judge.base_url.starts_with("https://"))
                {
                    return Err(Error::invalid(
                        field("llm_judge.base_url"),
                        format!("{:?} is not an http(s) URL", judge.base_url),
                    ));
                }
                if judge.model.is_empty() {
                    return Err(Error::invalid(field("llm_judge.model"), "is required"));
                }
                if judge.min_score >= judge.max_score {
                    return Err(Error::invalid(
                        field("llm_judge.max_score"),
                        format!(
                            "must be greater than min_score ({} >= {})",
                            judge.min_score, judge.max_score
                        ),
                    ));
                }
                Ok(())
            }
        }
    }
}

/// Checks a resource name: not empty, not a UUID (that would read as an id), at most 200
/// characters, no control characters.
pub(crate) fn validate_name(name: &str, field: &str) -> Result<()> {
    if name.trim().is_empty() {
        return Err(Error::invalid(field, "is required"));
    }
    if Uuid::parse_str(name).is_ok() {
        return Err(Error::invalid(
            field,
            format!(
                "{name:?} looks like a UUID; names must not, so that references stay unambiguous"
            ),
        ));
    }
    if name.chars().count() > 200 {
        return Err(Error::invalid(field, "is longer than 200 characters"));
    }
    if name.chars().any(char::is_control) {
        return Err(Error::invalid(
            field,
            format!("{name:?} contains control characters"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric(score_type: ScoreType, op: ThresholdOperator, threshold: Option<f64>) -> Metric {
        Metric {
            id: Uuid::new_v4(),
            name: "m".into(),
            description: String::new(),
            score_type,
            threshold,
            threshold_operator: op,
            categories: vec!["good".into(), "bad".into()],
            passing_categories: vec!["good".into()],
            requires_expected: false,
            requires_context: false,
            kind: MetricKind::Regex {
                pattern: "x".into(),
            },
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn numeric_scores_compare_with_the_threshold() {
        let m = metric(ScoreType::Numeric, ThresholdOperator::Ge, Some(0.7));
        assert!(m.passes(Some(0.7), None));
        assert!(!m.passes(Some(0.69), None));
        assert!(!m.passes(None, None));
        let lt = metric(ScoreType::Numeric, ThresholdOperator::Lt, Some(0.2));
        assert!(lt.passes(Some(0.1), None));
    }

    #[test]
    fn binary_scores_pass_on_the_wanted_verdict() {
        let m = metric(ScoreType::Binary, ThresholdOperator::Eq, None);
        assert!(m.passes(Some(1.0), None));
        assert!(!m.passes(Some(0.0), None));
        let inverted = metric(ScoreType::Binary, ThresholdOperator::Ne, None);
        assert!(inverted.passes(Some(0.0), None));
        assert!(!inverted.passes(Some(1.0), None));
    }

    #[test]
    fn categorical_scores_pass_on_passing_categories() {
        let mut m = metric(ScoreType::Categorical, ThresholdOperator::Eq, None);
        assert!(m.passes(None, Some("good")));
        assert!(!m.passes(None, Some("bad")));
        m.threshold_operator = ThresholdOperator::Ne;
        assert!(m.passes(None, Some("bad")));
    }

    #[test]
    fn binary_metrics_reject_ordering_operators() {
        let m = metric(ScoreType::Binary, ThresholdOperator::Ge, None);
        let err = m.validate("metric").unwrap_err().to_string();
        assert!(err.contains("metric.threshold_operator"), "{err}");
    }

    #[test]
    fn a_bad_regex_names_its_field() {
        let mut m = metric(ScoreType::Binary, ThresholdOperator::Eq, None);
        m.kind = MetricKind::Regex {
            pattern: "(".into(),
        };
        let err = m.validate("metric").unwrap_err().to_string();
        assert!(err.contains("metric.regex.pattern"), "{err}");
    }
}
