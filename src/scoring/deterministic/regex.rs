//! The regex check: the output matches a pattern somewhere, or nowhere.

use ::regex::Regex;

use super::{PassFail, short};
use crate::scoring::ScoreInput;

/// The output matches a pattern somewhere, or with `no_match` nowhere (see `MetricKind::Regex`).
#[derive(Debug)]
pub(crate) struct RegexMatch {
    re: Regex,
    no_match: bool,
}

impl RegexMatch {
    /// Compiles `pattern`; fails when it is not a valid regex.
    pub(crate) fn new(pattern: &str, no_match: bool) -> Result<Self, String> {
        Ok(RegexMatch {
            re: Regex::new(pattern).map_err(|e| format!("invalid regex {pattern:?}: {e}"))?,
            no_match,
        })
    }
}

impl PassFail for RegexMatch {
    fn evaluate(&self, input: &ScoreInput<'_>) -> (bool, String) {
        let re = &self.re;
        match (re.find(input.output), self.no_match) {
            (Some(m), false) => (
                true,
                format!("/{}/ matched {:?}", re.as_str(), short(m.as_str())),
            ),
            (Some(m), true) => (
                false,
                format!(
                    "/{}/ matched {:?} but must not match",
                    re.as_str(),
                    short(m.as_str())
                ),
            ),
            (None, false) => (false, format!("/{}/ did not match", re.as_str())),
            (None, true) => (true, format!("/{}/ matched nowhere", re.as_str())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scoring::deterministic::tests::assert_cases;
    use crate::scoring::fixtures::long_text;

    #[test]
    fn regex_searches_anywhere_or_nowhere() {
        let long = long_text();
        assert_cases(
            &RegexMatch::new(r"\d{4}", false).unwrap(),
            &[
                ("born in 1889.", None, true),
                ("no year", None, false),
                ("", None, false),
                ("١٨٨٩", None, true),
                (&format!("{long} 2024"), None, true),
            ],
        );
        assert_cases(
            &RegexMatch::new(r"[\w.]+@[\w.]+", true).unwrap(),
            &[
                ("write to a@b.c", None, false),
                ("no address", None, true),
                ("", None, true),
                (&long, None, true),
            ],
        );
    }
}
