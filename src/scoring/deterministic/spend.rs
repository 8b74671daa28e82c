//! Spend checks: the endpoint call's cost and tokens are within bounds. Answers without token
//! usage never reach them (the scorer makes those an error of the metric).

use super::PassFail;
use crate::scoring::ScoreInput;

/// The endpoint call cost at most a bound (see `MetricKind::Cost`).
#[derive(Debug)]
pub(crate) struct Cost {
    max_usd: f64,
}

impl Cost {
    /// Passes calls that cost at most `max_usd`.
    pub(crate) fn new(max_usd: f64) -> Self {
        Cost { max_usd }
    }
}

impl PassFail for Cost {
    fn evaluate(&self, input: &ScoreInput<'_>) -> (bool, String) {
        let passed = input.cost_usd <= self.max_usd;
        let verdict = if passed { "within" } else { "over" };
        (
            passed,
            format!(
                "cost {} USD, {verdict} {} USD",
                input.cost_usd, self.max_usd
            ),
        )
    }
}

/// The endpoint call used at most a number of tokens (see `MetricKind::TokenUsage`).
#[derive(Debug)]
pub(crate) struct TokenUsage {
    max_tokens: u64,
}

impl TokenUsage {
    /// Passes calls that used at most `max_tokens` tokens, input and output together.
    pub(crate) fn new(max_tokens: u64) -> Self {
        TokenUsage { max_tokens }
    }
}

impl PassFail for TokenUsage {
    fn evaluate(&self, input: &ScoreInput<'_>) -> (bool, String) {
        let usage = input.usage.unwrap_or_default();
        let passed = usage.total() <= self.max_tokens;
        let verdict = if passed { "within" } else { "over" };
        (
            passed,
            format!(
                "{} tokens ({} in, {} out), {verdict} {}",
                usage.total(),
                usage.input_tokens,
                usage.output_tokens,
                self.max_tokens
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Usage;
    use crate::scoring::fixtures::input;

    #[test]
    fn bounds_are_inclusive() {
        let answer = ScoreInput {
            usage: Some(Usage {
                input_tokens: 7,
                output_tokens: 3,
            }),
            cost_usd: 0.25,
            ..input("", None)
        };
        assert!(Cost::new(0.25).evaluate(&answer).0);
        assert!(!Cost::new(0.24).evaluate(&answer).0);
        assert!(TokenUsage::new(10).evaluate(&answer).0);
        let (passed, reason) = TokenUsage::new(9).evaluate(&answer);
        assert!(!passed);
        assert_eq!(reason, "10 tokens (7 in, 3 out), over 9");
    }
}
