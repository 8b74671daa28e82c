//! Text matching: exact_match, contains, not_contains, starts_with and ends_with. Texts are folded
//! as the metric asks (trimmed, lower-cased) before they are compared.

use std::borrow::Cow;

use super::{PassFail, short};
use crate::domain::Affix;
use crate::scoring::ScoreInput;

/// The output equals a value or the expected response (see `MetricKind::ExactMatch`).
#[derive(Debug)]
pub(crate) struct ExactMatch {
    value: Option<String>,
    ignore_case: bool,
    trim: bool,
}

impl ExactMatch {
    /// Compares with `value`, else the expected response; folded as asked.
    pub(crate) fn new(value: &Option<String>, ignore_case: bool, trim: bool) -> Self {
        ExactMatch {
            value: value.clone(),
            ignore_case,
            trim,
        }
    }
}

impl PassFail for ExactMatch {
    fn evaluate(&self, input: &ScoreInput<'_>) -> (bool, String) {
        let expected = input.reference(&self.value);
        let equal = fold(input.output, self.ignore_case, self.trim)
            == fold(expected, self.ignore_case, self.trim);
        let reason = if equal {
            "the output equals the expected text".to_string()
        } else {
            // As the user wrote it, not lower-cased as compared.
            let shown = if self.trim { expected.trim() } else { expected };
            format!(
                "the output differs from the expected text {:?}",
                short(shown)
            )
        };
        (equal, reason)
    }
}

/// The output contains any (or all) of some values (see `MetricKind::Contains`).
#[derive(Debug)]
pub(crate) struct Contains {
    /// Already lower case when case-insensitive.
    values: Vec<String>,
    match_all: bool,
    case_sensitive: bool,
}

impl Contains {
    /// Looks for `values`, all of them when `match_all`.
    pub(crate) fn new(values: &[String], match_all: bool, case_sensitive: bool) -> Self {
        Contains {
            values: fold_values(values, case_sensitive),
            match_all,
            case_sensitive,
        }
    }
}

impl PassFail for Contains {
    fn evaluate(&self, input: &ScoreInput<'_>) -> (bool, String) {
        let (found, missing) = occurrences(&self.values, input.output, self.case_sensitive);
        let passed = if self.match_all {
            missing.is_empty()
        } else {
            !found.is_empty()
        };
        let reason = if passed {
            format!("the output contains {found:?}")
        } else if self.match_all {
            format!("the output lacks {missing:?}")
        } else {
            format!("the output contains none of {:?}", self.values)
        };
        (passed, reason)
    }
}

/// The output contains none of some values (see `MetricKind::NotContains`).
#[derive(Debug)]
pub(crate) struct NotContains {
    /// Folded like [`Contains`]'s.
    values: Vec<String>,
    case_sensitive: bool,
}

impl NotContains {
    /// Looks for `values`.
    pub(crate) fn new(values: &[String], case_sensitive: bool) -> Self {
        NotContains {
            values: fold_values(values, case_sensitive),
            case_sensitive,
        }
    }
}

impl PassFail for NotContains {
    fn evaluate(&self, input: &ScoreInput<'_>) -> (bool, String) {
        let (found, _) = occurrences(&self.values, input.output, self.case_sensitive);
        if found.is_empty() {
            (
                true,
                format!("the output contains none of {:?}", self.values),
            )
        } else {
            (false, format!("the output contains {found:?}"))
        }
    }
}

/// The output starts or ends with a value or the expected response (see `MetricKind::StartsWith`
/// and `MetricKind::EndsWith`).
#[derive(Debug)]
pub(crate) struct AffixMatch {
    affix: Affix,
    at_end: bool,
}

impl AffixMatch {
    /// A prefix check, or a suffix check when `at_end`.
    pub(crate) fn new(affix: &Affix, at_end: bool) -> Self {
        AffixMatch {
            affix: affix.clone(),
            at_end,
        }
    }
}

impl PassFail for AffixMatch {
    fn evaluate(&self, input: &ScoreInput<'_>) -> (bool, String) {
        let affix = &self.affix;
        let wanted = fold(input.reference(&affix.value), affix.ignore_case, affix.trim);
        let output = fold(input.output, affix.ignore_case, affix.trim);
        let (passed, side) = if self.at_end {
            (output.ends_with(wanted.as_ref()), "ends")
        } else {
            (output.starts_with(wanted.as_ref()), "starts")
        };
        let not = if passed { "" } else { " not" };
        (
            passed,
            format!("the output does{not} {side} with {:?}", short(&wanted)),
        )
    }
}

/// Values of contains-like checks, lower-cased when the check ignores case.
fn fold_values(values: &[String], case_sensitive: bool) -> Vec<String> {
    if case_sensitive {
        values.to_vec()
    } else {
        values.iter().map(|v| v.to_lowercase()).collect()
    }
}

/// A text as compared: trimmed and lower-cased when asked.
fn fold(text: &str, ignore_case: bool, trim: bool) -> Cow<'_, str> {
    let text = if trim { text.trim() } else { text };
    if ignore_case {
        Cow::Owned(text.to_lowercase())
    } else {
        Cow::Borrowed(text)
    }
}

/// The (already folded) values that occur in `output`, and those that do not.
fn occurrences<'v>(
    values: &'v [String],
    output: &str,
    case_sensitive: bool,
) -> (Vec<&'v String>, Vec<&'v String>) {
    let haystack = fold(output, !case_sensitive, false);
    values.iter().partition(|v| haystack.contains(v.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scoring::deterministic::tests::assert_cases;
    use crate::scoring::fixtures::{input, long_text};

    /// Exact match against the expected response, ignoring case and surrounding whitespace.
    fn folded() -> ExactMatch {
        ExactMatch::new(&None, true, true)
    }

    #[test]
    fn exact_match_compares_with_value_or_expected() {
        let long = long_text();
        let fixed = ExactMatch::new(&Some("Paris".into()), false, false);
        assert_cases(
            &fixed,
            &[
                ("Paris", None, true),
                ("paris", None, false),
                (" Paris", None, false),
                ("", None, false),
                // The metric's value wins over the expected response.
                ("Paris", Some("Lyon"), true),
            ],
        );
        assert_cases(
            &folded(),
            &[
                (" PARIS\n", Some("Paris"), true),
                ("ÉLAN", Some("élan"), true),
                ("", Some(""), true),
                ("", Some("x"), false),
                (&long, Some(&long), true),
                (&long, Some("the end."), false),
            ],
        );
        assert_eq!(
            folded().evaluate(&input("Milan", Some(" Rome "))).1,
            "the output differs from the expected text \"Rome\"",
            "the reason shows the expected text as written"
        );
    }

    #[test]
    fn contains_any_all_and_case() {
        let long = long_text();
        let values = ["Paris".to_string(), "Lyon".to_string()];
        assert_cases(
            &Contains::new(&values, false, false),
            &[
                ("it is paris", None, true),
                ("Marseille", None, false),
                ("", None, false),
                (&format!("{long} LYON"), None, true),
                (&long, None, false),
            ],
        );
        assert_cases(
            &Contains::new(&values, true, false),
            &[("it is paris", None, false), ("lyon, paris", None, true)],
        );
        assert_cases(
            &Contains::new(&["Straße".into()], false, true),
            &[("die Straße", None, true), ("die STRASSE", None, false)],
        );
    }

    #[test]
    fn not_contains_passes_when_no_value_occurs() {
        let long = long_text();
        let insensitive = NotContains::new(&["sorry".into(), "as an AI".into()], false);
        assert_cases(
            &insensitive,
            &[
                ("Paris.", None, true),
                ("Sorry, no.", None, false),
                ("AS AN AI model", None, false),
                ("", None, true),
                ("désolé", None, true),
                (&long, None, true),
                (&format!("{long} sorry"), None, false),
            ],
        );
        assert_cases(
            &NotContains::new(&["Sorry".into()], true),
            &[("sorry", None, true), ("Sorry", None, false)],
        );
    }

    #[test]
    fn starts_with_and_ends_with() {
        let long = long_text();
        let starts = Affix {
            value: Some("Answer:".into()),
            ignore_case: true,
            trim: true,
        };
        assert_cases(
            &AffixMatch::new(&starts, false),
            &[
                ("  answer: 42", None, true),
                ("The answer: 42", None, false),
                ("", None, false),
                (&format!("Answer: {long}"), None, true),
            ],
        );
        let ends = Affix {
            value: None,
            ignore_case: false,
            trim: false,
        };
        assert_cases(
            &AffixMatch::new(&ends, true),
            &[
                ("C'est à Zürich", Some("Zürich"), true),
                ("C'est à Zürich ", Some("Zürich"), false),
                ("c'est à zürich", Some("Zürich"), false),
                ("", Some(""), true),
                (&long, Some("the end."), true),
            ],
        );
    }
}
