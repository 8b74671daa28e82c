//! Pass/fail checks that need no model, one file per family: [`text`] (exact_match, contains,
//! not_contains, starts_with, ends_with), [`regex`], [`json`] (is_json, json_schema), [`length`]
//! [`latency`] and [`spend`] (cost, token_usage). Each check is prepared once per run and then passes or fails every answer
//! ([`PassFail`]).

mod json;
mod latency;
mod length;
mod regex;
mod spend;
mod text;

pub(super) use self::regex::RegexMatch;
pub(super) use json::{IsJson, JsonSchema};
pub(super) use latency::Latency;
pub(super) use length::Length;
pub(super) use spend::{Cost, TokenUsage};
pub(super) use text::{AffixMatch, Contains, ExactMatch, NotContains};

use super::ScoreInput;

/// A check made ready for a run that passes or fails one answer.
pub(crate) trait PassFail {
    /// Whether the answer passes, and why.
    fn evaluate(&self, input: &ScoreInput<'_>) -> (bool, String);
}

/// At most 80 characters of a text, for reasons.
fn short(text: &str) -> String {
    super::truncate(text, 80)
}

#[cfg(test)]
mod tests {
    use std::fmt::Debug;

    use super::PassFail;
    use crate::scoring::fixtures::input;

    /// Every case, `(output, expected response, whether it passes)`, is judged as wanted.
    pub(super) fn assert_cases(
        check: &(impl PassFail + Debug),
        cases: &[(&str, Option<&str>, bool)],
    ) {
        for &(output, expected, want) in cases {
            let (got, reason) = check.evaluate(&input(output, expected));
            let shown: String = output.chars().take(40).collect();
            assert_eq!(
                got, want,
                "{check:?} on {shown:?} (expected {expected:?}): {reason}"
            );
        }
    }
}
