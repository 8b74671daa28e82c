//! Checks that need no model: exact match, contains, regex.

use regex::Regex;

use super::ScoreInput;
use crate::domain::{LlmJudge, MetricKind};

/// A metric kind made ready to run: regexes compiled, case folding decided.
#[derive(Debug)]
pub(super) enum Check {
    /// See [`MetricKind::ExactMatch`].
    Exact {
        value: Option<String>,
        ignore_case: bool,
        trim: bool,
    },
    /// See [`MetricKind::Contains`]; `values` are already lower case when case-insensitive.
    Contains {
        values: Vec<String>,
        match_all: bool,
        case_sensitive: bool,
    },
    /// See [`MetricKind::Regex`].
    Regex(Regex),
    /// Scored by a model, not here.
    Judge(LlmJudge),
}

impl Check {
    /// Prepares a metric kind.
    pub(super) fn new(kind: &MetricKind) -> Result<Self, String> {
        Ok(match kind {
            MetricKind::ExactMatch {
                value,
                ignore_case,
                trim,
            } => Check::Exact {
                value: value.clone(),
                ignore_case: *ignore_case,
                trim: *trim,
            },
            MetricKind::Contains {
                values,
                match_all,
                case_sensitive,
            } => Check::Contains {
                values: if *case_sensitive {
                    values.clone()
                } else {
                    values.iter().map(|v| v.to_lowercase()).collect()
                },
                match_all: *match_all,
                case_sensitive: *case_sensitive,
            },
            MetricKind::Regex { pattern } => Check::Regex(
                Regex::new(pattern).map_err(|e| format!("invalid regex {pattern:?}: {e}"))?,
            ),
            MetricKind::LlmJudge(judge) => Check::Judge(judge.clone()),
        })
    }

    /// Score (1 or 0) and reason of a deterministic check. Judges are not evaluated here.
    pub(super) fn evaluate(&self, input: &ScoreInput<'_>) -> (f64, String) {
        let (passed, reason) = match self {
            Check::Exact {
                value,
                ignore_case,
                trim,
            } => {
                let wanted = value
                    .as_deref()
                    .or(input.expected_response)
                    .unwrap_or_default();
                let (mut a, mut b) = (input.output, wanted);
                if *trim {
                    (a, b) = (a.trim(), b.trim());
                }
                let equal = if *ignore_case {
                    a.to_lowercase() == b.to_lowercase()
                } else {
                    a == b
                };
                let reason = if equal {
                    "the output equals the expected text".to_string()
                } else {
                    format!(
                        "the output differs from the expected text {:?}",
                        truncate(b)
                    )
                };
                (equal, reason)
            }
            Check::Contains {
                values,
                match_all,
                case_sensitive,
            } => {
                let folded;
                let haystack = if *case_sensitive {
                    input.output
                } else {
                    folded = input.output.to_lowercase();
                    &folded
                };
                let (found, missing): (Vec<&String>, Vec<&String>) =
                    values.iter().partition(|v| haystack.contains(v.as_str()));
                let passed = if *match_all {
                    missing.is_empty()
                } else {
                    !found.is_empty()
                };
                let reason = if passed {
                    format!("the output contains {found:?}")
                } else if *match_all {
                    format!("the output lacks {missing:?}")
                } else {
                    format!("the output contains none of {values:?}")
                };
                (passed, reason)
            }
            Check::Regex(re) => match re.find(input.output) {
                Some(m) => (
                    true,
                    format!("/{}/ matched {:?}", re.as_str(), truncate(m.as_str())),
                ),
                None => (false, format!("/{}/ did not match", re.as_str())),
            },
            Check::Judge(_) => (false, "judges are scored by a model".to_string()),
        };
        (if passed { 1.0 } else { 0.0 }, reason)
    }
}

/// At most 80 characters of a text, for reasons.
fn truncate(text: &str) -> String {
    match text.char_indices().nth(80) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input<'a>(output: &'a str, expected: Option<&'a str>) -> ScoreInput<'a> {
        ScoreInput {
            prompt: "p",
            expected_response: expected,
            output,
            context: &[],
        }
    }

    #[test]
    fn exact_match_compares_with_value_or_expected() {
        let with_value = Check::new(&MetricKind::ExactMatch {
            value: Some("Paris".into()),
            ignore_case: false,
            trim: false,
        })
        .unwrap();
        assert_eq!(with_value.evaluate(&input("Paris", None)).0, 1.0);
        assert_eq!(with_value.evaluate(&input("paris", None)).0, 0.0);
        let with_expected = Check::new(&MetricKind::ExactMatch {
            value: None,
            ignore_case: true,
            trim: true,
        })
        .unwrap();
        assert_eq!(
            with_expected.evaluate(&input(" PARIS\n", Some("Paris"))).0,
            1.0
        );
    }

    #[test]
    fn contains_any_all_and_case() {
        let any = Check::new(&MetricKind::Contains {
            values: vec!["Paris".into(), "Lyon".into()],
            match_all: false,
            case_sensitive: false,
        })
        .unwrap();
        assert_eq!(any.evaluate(&input("it is paris", None)).0, 1.0);
        let all = Check::new(&MetricKind::Contains {
            values: vec!["Paris".into(), "Lyon".into()],
            match_all: true,
            case_sensitive: false,
        })
        .unwrap();
        assert_eq!(all.evaluate(&input("it is paris", None)).0, 0.0);
        let sensitive = Check::new(&MetricKind::Contains {
            values: vec!["Paris".into()],
            match_all: false,
            case_sensitive: true,
        })
        .unwrap();
        assert_eq!(sensitive.evaluate(&input("it is paris", None)).0, 0.0);
    }

    #[test]
    fn regex_searches_anywhere() {
        let re = Check::new(&MetricKind::Regex {
            pattern: r"\d{4}".into(),
        })
        .unwrap();
        assert_eq!(re.evaluate(&input("born in 1889.", None)).0, 1.0);
        assert_eq!(re.evaluate(&input("no year", None)).0, 0.0);
    }
}
