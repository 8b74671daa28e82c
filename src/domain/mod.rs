//! Domain types: what Assay stores and reasons about, free of transport and storage.

mod behavior;
mod comparison;
mod draft;
mod endpoint;
mod labels;
mod metric;
mod page;
mod patch;
mod reference;
mod repeats;
mod run;
mod selection;
mod stored;
mod tally;
mod test_set;
mod usage;

pub use behavior::Behavior;
pub use comparison::{
    ChangeCounts, Comparison, MatchBy, MetricChange, TestChange, TestComparison, TestOutcome,
    compare, mcnemar_exact,
};
pub use draft::{EndpointDraft, GroupDraft, METRIC_KINDS, MetricDraft, TestDraft};
pub use endpoint::{
    CallPolicy, DEFAULT_BODY_TEMPLATE, DEFAULT_CHAT_TIMEOUT_MS, DEFAULT_HTTP_TIMEOUT_MS,
    DEFAULT_OUTPUT_PATH, Endpoint, HttpTarget, MIN_RATE_PER_SECOND, MIN_TIMEOUT_MS,
    OpenAiChatTarget, ResponseMapping, Retries, SECRET_MASK, Target, TemplateSyntax,
    is_secret_header,
};
pub use labels::{Labels, validate_labels};
pub use metric::{
    Affix, BleuTokenizer, ExternalScorer, LengthUnit, LlmJudge, Metric, MetricKind, ScoreType,
    ScorerProtocol, SimilarityMeasure, SimilarityOptions, ThresholdOperator, compile_schema,
};
pub use page::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Page, PageRequest};
pub use patch::{Patch, apply as apply_patch};
pub use reference::Ref;
pub use repeats::{MAX_REPEATS, RepetitionCount, validate_repeats, wilson_interval};
pub use run::{
    ExecutionMode, MetricResult, MetricStats, ResultStatus, RunFilter, RunKind, RunPlan, RunStatus,
    RunSummary, TestResult, TestRun,
};
pub use selection::{Shard, TestFacts, TestFilter};
pub use stored::{
    DEFAULT_MAX_STORED_OUTPUT_BYTES, MAX_REASON_CHARS, MAX_STORED_OUTPUT_BYTES, answer_over_limit,
    check_stored_text,
};
pub use tally::Tally;
pub use test_set::{Test, TestSet};
pub use usage::{Pricing, Spending, Usage};

/// Timestamps of every resource.
pub type Timestamp = chrono::DateTime<chrono::Utc>;

/// `text` cut to at most `max_chars` characters, saying how many were cut: error messages quote
/// inputs, and an input may be megabytes long.
pub fn truncated(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        None => text.to_string(),
        Some((cut, _)) => {
            let rest = text[cut..].chars().count();
            format!("{}… ({rest} more characters)", &text[..cut])
        }
    }
}
