//! The latency check: the endpoint answered within a time limit.

use super::PassFail;
use crate::scoring::ScoreInput;

/// The endpoint's measured latency is at most a limit (see `MetricKind::Latency`).
#[derive(Debug)]
pub(crate) struct Latency {
    max_ms: u32,
}

impl Latency {
    /// Passes answers given within `max_ms` milliseconds.
    pub(crate) fn new(max_ms: u32) -> Self {
        Latency { max_ms }
    }
}

impl PassFail for Latency {
    fn evaluate(&self, input: &ScoreInput<'_>) -> (bool, String) {
        let passed = input.latency_ms <= u64::from(self.max_ms);
        let verdict = if passed { "within" } else { "over" };
        (
            passed,
            format!(
                "latency {} ms, {verdict} {} ms",
                input.latency_ms, self.max_ms
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scoring::fixtures::input;

    #[test]
    fn latency_uses_the_measured_latency() {
        let check = Latency::new(200);
        for (latency_ms, want) in [(0, true), (200, true), (201, false), (u64::MAX, false)] {
            let answer = ScoreInput {
                latency_ms,
                ..input("", None)
            };
            assert_eq!(check.evaluate(&answer).0, want, "{latency_ms} ms");
        }
    }
}
