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
    /// The output matches `pattern` somewhere (or, with `no_match`, nowhere).
    Regex {
        /// Rust regex syntax.
        pattern: String,
        /// Pass when the pattern matches nowhere.
        #[serde(default)]
        no_match: bool,
    },
    /// An OpenAI-compatible chat model judges the output.
    LlmJudge(LlmJudge),
    /// The output contains none of `values`.
    NotContains {
        /// Strings that must not occur.
        values: Vec<String>,
        /// Respect letter case.
        case_sensitive: bool,
    },
    /// The output starts with a value or the expected response.
    StartsWith(Affix),
    /// The output ends with a value or the expected response.
    EndsWith(Affix),
    /// The output parses as JSON.
    IsJson,
    /// The output parses as JSON and is valid against `schema`.
    JsonSchema {
        /// The schema, as JSON text.
        schema: String,
    },
    /// The output's length is within bounds (inclusive).
    Length {
        /// Shortest length that passes.
        min: Option<u32>,
        /// Longest length that passes.
        max: Option<u32>,
        /// What is counted.
        unit: LengthUnit,
    },
    /// The endpoint's measured latency is at most `max_ms`.
    Latency {
        /// Longest latency that passes, in milliseconds.
        max_ms: u32,
    },
    /// A similarity score in `[0, 1]` to a value or the expected response.
    Similarity {
        /// How similarity is measured.
        measure: SimilarityMeasure,
        /// The reference text; `None` uses the expected response.
        value: Option<String>,
        /// The measure's options (metrics stored before they existed have the defaults).
        #[serde(default)]
        options: SimilarityOptions,
    },
    /// The endpoint call cost at most `max_usd`.
    Cost {
        /// Most USD that passes.
        max_usd: f64,
    },
    /// The endpoint call used at most `max_tokens` tokens, input and output together.
    TokenUsage {
        /// Most tokens that pass.
        max_tokens: u64,
    },
    /// Cosine similarity of the embeddings of the output and a value or the expected response.
    SemanticSimilarity {
        /// The reference text; `None` uses the expected response.
        value: Option<String>,
        /// The endpoint of the OpenAI chat kind whose API embeds; set once the catalogue has
        /// resolved the reference (a metric without one is invalid).
        embedding_endpoint: Option<Uuid>,
    },
    /// A scorer the user runs (HTTP or gRPC) scores the output.
    External(ExternalScorer),
}

/// Settings of an `external` metric: where its scorer listens and whose call policy its calls
/// take.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExternalScorer {
    /// How the scorer is called.
    pub protocol: ScorerProtocol,
    /// The URL posted to (HTTP), or the gRPC server's `scheme://host:port`.
    pub url: String,
    /// The endpoint whose timeout, retries and limits the calls take; set once the catalogue has
    /// resolved the reference. `None`: an endpoint's defaults.
    #[serde(default)]
    pub endpoint: Option<Uuid>,
}

/// How an external scorer is called.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScorerProtocol {
    /// A JSON POST.
    Http,
    /// `assay.v1.ScorerService/Score`.
    Grpc,
}

impl ExternalScorer {
    /// The URL must be an absolute http(s) URL; a gRPC scorer's names only a server (no path,
    /// query or fragment), because the RPC's path is fixed.
    fn validate(&self, field: impl Fn(&str) -> String) -> Result<()> {
        let field = field("external.url");
        let url = url::Url::parse(self.url.trim())
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
            .ok_or_else(|| {
                Error::invalid(
                    &field,
                    format!("{:?} is not an absolute http(s) URL", self.url),
                )
            })?;
        if self.protocol == ScorerProtocol::Grpc
            && (url.path() != "/" || url.query().is_some() || url.fragment().is_some())
        {
            return Err(Error::invalid(
                &field,
                format!(
                    "{:?}: a gRPC scorer's URL names only its server (scheme://host:port)",
                    self.url
                ),
            ));
        }
        Ok(())
    }
}

/// Settings of prefix and suffix checks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Affix {
    /// The prefix or suffix; `None` uses the expected response.
    pub value: Option<String>,
    /// Ignore letter case.
    pub ignore_case: bool,
    /// Trim surrounding whitespace first.
    pub trim: bool,
}

/// What a length bound counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LengthUnit {
    /// Unicode scalar values.
    Characters,
    /// Whitespace-separated words.
    Words,
}

/// Text similarity measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SimilarityMeasure {
    /// `1 - edit distance / longer length`, over characters (rapidfuzz's
    /// `Levenshtein.normalized_similarity`).
    Levenshtein,
    /// F1 of the longest common subsequence of words (rouge-score's `rougeL` F-measure).
    RougeL,
    /// sacreBLEU's `sentence_bleu`, on a 0-1 scale.
    Bleu,
}

impl SimilarityMeasure {
    /// The measure's name as the API spells its kind.
    pub fn name(self) -> &'static str {
        match self {
            SimilarityMeasure::Levenshtein => "levenshtein",
            SimilarityMeasure::RougeL => "rouge_l",
            SimilarityMeasure::Bleu => "bleu",
        }
    }
}

/// Options of the similarity measures; each belongs to one measure (checked at create).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SimilarityOptions {
    /// Levenshtein: both texts lower-cased first.
    pub ignore_case: bool,
    /// Levenshtein: both texts in Unicode NFC form, so composed and decomposed accents are equal.
    pub nfc: bool,
    /// BLEU: both texts lower-cased first (sacreBLEU's `lowercase`).
    pub lowercase: bool,
    /// BLEU: sacreBLEU's tokenizer.
    pub tokenize: BleuTokenizer,
}

/// sacreBLEU's tokenizers that BLEU offers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum BleuTokenizer {
    /// `13a`, mteval-v13a's tokenization (sacreBLEU's default).
    #[default]
    #[serde(rename = "13a")]
    Tok13a,
    /// `intl`, mteval-v14's international tokenization (Unicode punctuation and symbols).
    #[serde(rename = "intl")]
    Intl,
    /// `char`: every character is a token.
    #[serde(rename = "char")]
    Char,
    /// `none`: tokens are separated by whitespace only.
    #[serde(rename = "none")]
    None,
}

impl BleuTokenizer {
    /// Every tokenizer, by name.
    pub const ALL: [BleuTokenizer; 4] = [Self::Tok13a, Self::Intl, Self::Char, Self::None];

    /// The tokenizer's name, as sacreBLEU spells it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Tok13a => "13a",
            Self::Intl => "intl",
            Self::Char => "char",
            Self::None => "none",
        }
    }

    /// The tokenizer named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }
}

impl SimilarityOptions {
    /// Options set for a measure they do not belong to are an error naming the option below
    /// the measure's field (e.g. `metric.rouge_l.nfc`).
    fn validate(&self, measure: SimilarityMeasure, field: impl Fn(&str) -> String) -> Result<()> {
        use SimilarityMeasure::{Bleu, Levenshtein};
        let set = [
            (Levenshtein, "ignore_case", self.ignore_case),
            (Levenshtein, "nfc", self.nfc),
            (Bleu, "lowercase", self.lowercase),
            (Bleu, "tokenize", self.tokenize != BleuTokenizer::default()),
        ];
        match set
            .into_iter()
            .find(|(owner, _, on)| *on && *owner != measure)
        {
            Some((owner, option, _)) => Err(Error::invalid(
                field(&format!("{}.{option}", measure.name())),
                format!(
                    "is an option of {}, not of {}",
                    owner.name(),
                    measure.name()
                ),
            )),
            None => Ok(()),
        }
    }
}

/// Settings of an LLM-as-judge metric. The judge is `judge_endpoint` when set, else the inline
/// `base_url` and `model` when set, else the server's default judge.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LlmJudge {
    /// Inline judge: base URL of the OpenAI-compatible API; empty when not inline.
    pub base_url: String,
    /// Inline judge: model name.
    pub model: String,
    /// Inline judge: environment variable with the API key.
    pub api_key_env: Option<String>,
    /// Evaluation instructions (minijinja template).
    pub evaluation_prompt: String,
    /// Lowest score.
    pub min_score: f64,
    /// Highest score.
    pub max_score: f64,
    /// Inline judge: request timeout.
    pub timeout_ms: u32,
    /// An endpoint of the OpenAI chat kind that judges.
    #[serde(default)]
    pub judge_endpoint: Option<Uuid>,
    /// Evaluation steps, shown as a numbered list.
    #[serde(default)]
    pub evaluation_steps: Vec<String>,
}

impl LlmJudge {
    /// Whether the metric names its model inline (`base_url` and `model`).
    pub fn is_inline(&self) -> bool {
        !self.base_url.trim().is_empty()
    }

    /// The settings with an unset scale (both ends 0) as the usual 0..1.
    pub fn with_defaults(mut self) -> Self {
        if self.max_score == 0.0 && self.min_score == 0.0 {
            self.max_score = 1.0;
        }
        self
    }
}

impl MetricKind {
    /// The kind with its unset settings at their defaults.
    pub fn with_defaults(self) -> Self {
        match self {
            MetricKind::LlmJudge(judge) => MetricKind::LlmJudge(judge.with_defaults()),
            kind => kind,
        }
    }

    /// The kind's name as the API spells it (a similarity metric: its measure's).
    pub fn name(&self) -> &'static str {
        match self {
            MetricKind::ExactMatch { .. } => "exact_match",
            MetricKind::Contains { .. } => "contains",
            MetricKind::Regex { .. } => "regex",
            MetricKind::LlmJudge(_) => "llm_judge",
            MetricKind::NotContains { .. } => "not_contains",
            MetricKind::StartsWith(_) => "starts_with",
            MetricKind::EndsWith(_) => "ends_with",
            MetricKind::IsJson => "is_json",
            MetricKind::JsonSchema { .. } => "json_schema",
            MetricKind::Length { .. } => "length",
            MetricKind::Latency { .. } => "latency",
            MetricKind::Similarity { measure, .. } => measure.name(),
            MetricKind::SemanticSimilarity { .. } => "semantic_similarity",
            MetricKind::Cost { .. } => "cost",
            MetricKind::TokenUsage { .. } => "token_usage",
            MetricKind::External(_) => "external",
        }
    }

    /// The score type a metric of this kind has when none is given.
    pub fn natural_score_type(&self) -> ScoreType {
        match self {
            MetricKind::LlmJudge(_)
            | MetricKind::Similarity { .. }
            | MetricKind::SemanticSimilarity { .. }
            | MetricKind::External(_) => ScoreType::Numeric,
            _ => ScoreType::Binary,
        }
    }

    /// The fixed text a kind compares with, when it compares with one: `None` inside means the
    /// test's expected response. `None` outside: the kind compares with no text.
    pub fn reference_value(&self) -> Option<Option<&str>> {
        match self {
            MetricKind::ExactMatch { value, .. }
            | MetricKind::StartsWith(Affix { value, .. })
            | MetricKind::EndsWith(Affix { value, .. })
            | MetricKind::Similarity { value, .. }
            | MetricKind::SemanticSimilarity { value, .. } => Some(value.as_deref()),
            _ => None,
        }
    }

    /// Whether this kind reads the endpoint call's token usage, so an answer without one cannot
    /// be scored.
    pub fn needs_usage(&self) -> bool {
        matches!(
            self,
            MetricKind::Cost { .. } | MetricKind::TokenUsage { .. }
        )
    }

    /// Whether this kind can only give a score (no category).
    fn is_deterministic(&self) -> bool {
        !matches!(self, MetricKind::LlmJudge(_) | MetricKind::External(_))
    }

    /// The endpoint a kind calls through, when it names one: an LLM judge's `judge_endpoint`, a
    /// semantic similarity's `embedding_endpoint`, an external scorer's `endpoint` (whose call
    /// policy its calls take).
    pub fn model_endpoint(&self) -> Option<Uuid> {
        match self {
            MetricKind::LlmJudge(judge) => judge.judge_endpoint,
            MetricKind::SemanticSimilarity {
                embedding_endpoint, ..
            } => *embedding_endpoint,
            MetricKind::External(scorer) => scorer.endpoint,
            _ => None,
        }
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
    /// The category of this metric that an answer names: the same text, else the same letters
    /// in any case with surrounding spaces aside (as judges and external scorers answer).
    pub fn category_named(&self, answered: &str) -> Option<&String> {
        self.categories
            .iter()
            .find(|c| c.as_str() == answered)
            .or_else(|| {
                self.categories
                    .iter()
                    .find(|c| c.trim().eq_ignore_ascii_case(answered))
            })
    }

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
        self.validate_threshold(field)?;
        if self.score_type == ScoreType::Categorical {
            self.validate_categories(field)?;
        }
        self.kind.validate(field)
    }

    /// Binary and categorical scores are a verdict, so only `==` and `!=` apply to them; a
    /// threshold, when given, is a finite number.
    fn validate_threshold(&self, field: impl Fn(&str) -> String) -> Result<()> {
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
        Ok(())
    }

    /// A categorical metric: its categories, the passing ones among them, and a kind that can
    /// answer with a category.
    fn validate_categories(&self, field: impl Fn(&str) -> String) -> Result<()> {
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
        Ok(())
    }
}

impl MetricKind {
    /// Checks the settings of this kind; `field` turns a name into a path in the request.
    fn validate(&self, field: impl Fn(&str) -> String) -> Result<()> {
        match self {
            MetricKind::ExactMatch { .. }
            | MetricKind::StartsWith(_)
            | MetricKind::EndsWith(_)
            | MetricKind::IsJson => Ok(()),
            MetricKind::Similarity {
                measure, options, ..
            } => options.validate(*measure, field),
            MetricKind::Contains { values, .. } => {
                validate_values(values, &field("contains.values"))
            }
            MetricKind::NotContains { values, .. } => {
                validate_values(values, &field("not_contains.values"))
            }
            MetricKind::Regex { pattern, .. } => {
                regex::Regex::new(pattern).map(|_| ()).map_err(|e| {
                    Error::invalid(
                        field("regex.pattern"),
                        format!("{pattern:?} is not a valid regex: {e}"),
                    )
                })
            }
            MetricKind::JsonSchema { schema } => compile_schema(schema)
                .map(|_| ())
                .map_err(|e| Error::invalid(field("json_schema.schema"), e)),
            MetricKind::Length { min, max, .. } => validate_length(*min, *max, field),
            MetricKind::SemanticSimilarity {
                embedding_endpoint, ..
            } => match embedding_endpoint {
                Some(_) => Ok(()),
                None => Err(Error::invalid(
                    field("semantic_similarity.embedding_endpoint"),
                    "is required: name an endpoint of the openai_chat kind that embeds",
                )),
            },
            MetricKind::Cost { max_usd } => {
                if !(max_usd.is_finite() && *max_usd >= 0.0) {
                    return Err(Error::invalid(
                        field("cost.max_usd"),
                        format!("must be a finite number >= 0, got {max_usd}"),
                    ));
                }
                Ok(())
            }
            MetricKind::TokenUsage { max_tokens } => {
                if *max_tokens == 0 {
                    return Err(Error::invalid(
                        field("token_usage.max_tokens"),
                        "must be greater than 0",
                    ));
                }
                Ok(())
            }
            MetricKind::Latency { max_ms } => {
                if *max_ms == 0 {
                    return Err(Error::invalid(
                        field("latency.max_ms"),
                        "must be greater than 0",
                    ));
                }
                Ok(())
            }
            MetricKind::External(scorer) => scorer.validate(field),
            MetricKind::LlmJudge(judge) => {
                judge.validate_judge(&field)?;
                judge.validate_steps(&field)?;
                judge.validate_score_range(&field)
            }
        }
    }
}

/// A length check needs a bound, and bounds that leave some length to pass.
fn validate_length(
    min: Option<u32>,
    max: Option<u32>,
    field: impl Fn(&str) -> String,
) -> Result<()> {
    match (min, max) {
        (None, None) => Err(Error::invalid(
            field("length"),
            "needs at least one of min and max",
        )),
        (Some(min), Some(max)) if min > max => Err(Error::invalid(
            field("length.min"),
            format!("min {min} is greater than max {max}"),
        )),
        _ => Ok(()),
    }
}

impl LlmJudge {
    /// Which judge: an endpoint, or an inline base URL and model, or neither (the server's
    /// default), never a mix.
    fn validate_judge(&self, field: impl Fn(&str) -> String) -> Result<()> {
        if self.judge_endpoint.is_some() && (self.is_inline() || !self.model.trim().is_empty()) {
            return Err(Error::invalid(
                field("llm_judge.judge_endpoint"),
                "give either judge_endpoint or base_url and model, not both",
            ));
        }
        if self.is_inline()
            && !(self.base_url.starts_with("http://") || self.base_url.starts_with("https://"))
        {
            return Err(Error::invalid(
                field("llm_judge.base_url"),
                format!("{:?} is not an http(s) URL", self.base_url),
            ));
        }
        if self.is_inline() && self.model.trim().is_empty() {
            return Err(Error::invalid(field("llm_judge.model"), "is required"));
        }
        if !self.is_inline() && !self.model.trim().is_empty() {
            return Err(Error::invalid(
                field("llm_judge.base_url"),
                "is required when model is given",
            ));
        }
        Ok(())
    }

    /// Evaluation steps are numbered in the prompt, so an empty one would show as a blank step.
    fn validate_steps(&self, field: impl Fn(&str) -> String) -> Result<()> {
        if let Some(i) = self
            .evaluation_steps
            .iter()
            .position(|s| s.trim().is_empty())
        {
            return Err(Error::invalid(
                field(&format!("llm_judge.evaluation_steps[{i}]")),
                "is empty",
            ));
        }
        Ok(())
    }

    /// The judge's scale is normalised to `[0, 1]`, which needs finite, increasing bounds.
    fn validate_score_range(&self, field: impl Fn(&str) -> String) -> Result<()> {
        if !(self.min_score.is_finite() && self.max_score.is_finite()) {
            return Err(Error::invalid(
                field("llm_judge.min_score"),
                "min_score and max_score must be finite numbers",
            ));
        }
        if self.min_score >= self.max_score {
            return Err(Error::invalid(
                field("llm_judge.max_score"),
                format!(
                    "must be greater than min_score ({} >= {})",
                    self.min_score, self.max_score
                ),
            ));
        }
        Ok(())
    }
}

/// Contains-like kinds need at least one value, and no empty one (it would match everything).
fn validate_values(values: &[String], field: &str) -> Result<()> {
    if values.is_empty() || values.iter().any(String::is_empty) {
        return Err(Error::invalid(
            field,
            "needs at least one value, and no empty value",
        ));
    }
    Ok(())
}

/// Compiles a JSON Schema given as JSON text; the error says why it is none. Remote references
/// are never fetched (the crate is built without its HTTP and file resolvers).
pub fn compile_schema(schema: &str) -> std::result::Result<jsonschema::Validator, String> {
    let value: serde_json::Value =
        serde_json::from_str(schema).map_err(|e| format!("is not JSON: {e}"))?;
    jsonschema::validator_for(&value).map_err(|e| format!("is not a valid JSON Schema: {e}"))
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
                no_match: false,
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
    fn numeric_scores_take_all_six_operators() {
        use ThresholdOperator::*;
        let cases = [
            (Ge, [false, true, true]),
            (Gt, [false, false, true]),
            (Le, [true, true, false]),
            (Lt, [true, false, false]),
            (Eq, [false, true, false]),
            (Ne, [true, false, true]),
        ];
        for (op, wanted) in cases {
            let m = metric(ScoreType::Numeric, op, Some(0.5));
            m.validate("metric").unwrap();
            let got = [0.4, 0.5, 0.6].map(|score| m.passes(Some(score), None));
            assert_eq!(got, wanted, "{}", op.symbol());
        }
    }

    #[test]
    fn categorical_metrics_reject_ordering_operators() {
        for op in [
            ThresholdOperator::Ge,
            ThresholdOperator::Gt,
            ThresholdOperator::Le,
            ThresholdOperator::Lt,
        ] {
            let mut m = metric(ScoreType::Categorical, op, None);
            m.kind = MetricKind::LlmJudge(LlmJudge {
                base_url: "http://127.0.0.1:9/v1".into(),
                model: "m".into(),
                api_key_env: None,
                evaluation_prompt: String::new(),
                min_score: 0.0,
                max_score: 1.0,
                timeout_ms: 0,
                judge_endpoint: None,
                evaluation_steps: Vec::new(),
            });
            let err = m.validate("metric").unwrap_err().to_string();
            assert!(
                err.contains("metric.threshold_operator") && err.contains(op.symbol()),
                "{err}"
            );
        }
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
            no_match: false,
        };
        let err = m.validate("metric").unwrap_err().to_string();
        assert!(err.contains("metric.regex.pattern"), "{err}");
    }
}
