//! The length check: the output's length, in characters or words, is within bounds.

use super::PassFail;
use crate::domain::LengthUnit;
use crate::scoring::ScoreInput;

/// The output's length is within inclusive bounds (see `MetricKind::Length`).
#[derive(Debug)]
pub(crate) struct Length {
    min: Option<u32>,
    max: Option<u32>,
    unit: LengthUnit,
}

impl Length {
    /// Counts `unit`s; a missing bound does not limit.
    pub(crate) fn new(min: Option<u32>, max: Option<u32>, unit: LengthUnit) -> Self {
        Length { min, max, unit }
    }
}

impl PassFail for Length {
    fn evaluate(&self, input: &ScoreInput<'_>) -> (bool, String) {
        let (min, max) = (self.min, self.max);
        let (length, unit_name) = match self.unit {
            LengthUnit::Characters => (input.output.chars().count(), "characters"),
            LengthUnit::Words => (input.output.split_whitespace().count(), "words"),
        };
        let length = u32::try_from(length).unwrap_or(u32::MAX);
        let passed = min.is_none_or(|m| length >= m) && max.is_none_or(|m| length <= m);
        let bounds = match (min, max) {
            (Some(min), Some(max)) => format!("{min}..={max}"),
            (Some(min), None) => format!(">= {min}"),
            (None, Some(max)) => format!("<= {max}"),
            (None, None) => "any".to_string(),
        };
        let verdict = if passed { "within" } else { "outside" };
        (passed, format!("{length} {unit_name}, {verdict} {bounds}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scoring::deterministic::tests::assert_cases;
    use crate::scoring::fixtures::long_text;

    #[test]
    fn length_counts_characters_or_words() {
        let long = long_text();
        assert_cases(
            &Length::new(Some(2), Some(5), LengthUnit::Characters),
            &[
                ("ab", None, true),
                ("abcde", None, true),
                ("a", None, false),
                ("abcdef", None, false),
                ("", None, false),
                // Characters, not bytes: five characters, eleven bytes.
                ("ääääé", None, true),
                (&long, None, false),
            ],
        );
        assert_cases(
            &Length::new(None, Some(3), LengthUnit::Words),
            &[
                ("one two  three\n", None, true),
                ("one two three four", None, false),
                ("", None, true),
                ("日本語 です", None, true),
                (&long, None, false),
            ],
        );
        assert_cases(
            &Length::new(Some(100_000), None, LengthUnit::Characters),
            &[(&long, None, true), ("short", None, false)],
        );
    }
}
