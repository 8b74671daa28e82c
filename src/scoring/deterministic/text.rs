//! Text matching: exact_match, contains, not_contains, starts_with and ends_with. Texts are folded
//! as the metric asks (trimmed, lower-cased) before they are compared; reasons quote the
//! metric's texts as written, so that they read like the test the user wrote.

use std::borrow::Cow;
use std::fmt;

use super::{PassFail, short};
use crate::domain::Affix;
use crate::scoring::ScoreInput;

/// The output equals a value or the expected response (see `MetricKind::ExactMatch`).
#[derive(Debug)]
pub(crate) struct ExactMatch {
    expected: Expected,
}

impl ExactMatch {
    /// Compares with `value`, else the expected response; folded as asked.
    pub(crate) fn new(value: &Option<String>, ignore_case: bool, trim: bool) -> Self {
        ExactMatch {
            expected: Expected::new(value, Folding { ignore_case, trim }),
        }
    }
}

impl PassFail for ExactMatch {
    fn evaluate(&self, input: &ScoreInput<'_>) -> (bool, String) {
        let (written, compared) = self.expected.resolve(input);
        let folding = self.expected.folding;
        let equal = folding.apply(input.output) == compared;
        let reason = if equal {
            "the output equals the expected text".to_string()
        } else {
            format!(
                "the output differs from the expected text {:?}",
                short(folding.shown(written))
            )
        };
        (equal, reason)
    }
}

/// The output contains any (or all) of some values (see `MetricKind::Contains`).
#[derive(Debug)]
pub(crate) struct Contains {
    needles: Needles,
    match_all: bool,
}

impl Contains {
    /// Looks for `values`, all of them when `match_all`.
    pub(crate) fn new(values: &[String], match_all: bool, case_sensitive: bool) -> Self {
        Contains {
            needles: Needles::new(values, case_sensitive),
            match_all,
        }
    }
}

impl PassFail for Contains {
    fn evaluate(&self, input: &ScoreInput<'_>) -> (bool, String) {
        let (found, missing) = self.needles.occurrences(input.output);
        let passed = if self.match_all {
            missing.is_empty()
        } else {
            !found.is_empty()
        };
        let reason = if passed {
            format!("the output contains {:?}", Listed(found.iter().copied()))
        } else if self.match_all {
            format!("the output lacks {:?}", Listed(missing.iter().copied()))
        } else {
            format!(
                "the output contains none of {:?}",
                Listed(self.needles.values.iter())
            )
        };
        (passed, reason)
    }
}

/// The output contains none of some values (see `MetricKind::NotContains`).
#[derive(Debug)]
pub(crate) struct NotContains {
    needles: Needles,
}

impl NotContains {
    /// Looks for `values`.
    pub(crate) fn new(values: &[String], case_sensitive: bool) -> Self {
        NotContains {
            needles: Needles::new(values, case_sensitive),
        }
    }
}

impl PassFail for NotContains {
    fn evaluate(&self, input: &ScoreInput<'_>) -> (bool, String) {
        let (found, _) = self.needles.occurrences(input.output);
        if found.is_empty() {
            let values = Listed(self.needles.values.iter());
            (true, format!("the output contains none of {values:?}"))
        } else {
            (
                false,
                format!("the output contains {:?}", Listed(found.iter().copied())),
            )
        }
    }
}

/// The output starts or ends with a value or the expected response (see `MetricKind::StartsWith`
/// and `MetricKind::EndsWith`).
#[derive(Debug)]
pub(crate) struct AffixMatch {
    expected: Expected,
    at_end: bool,
}

impl AffixMatch {
    /// A prefix check, or a suffix check when `at_end`.
    pub(crate) fn new(affix: &Affix, at_end: bool) -> Self {
        let folding = Folding {
            ignore_case: affix.ignore_case,
            trim: affix.trim,
        };
        AffixMatch {
            expected: Expected::new(&affix.value, folding),
            at_end,
        }
    }
}

impl PassFail for AffixMatch {
    fn evaluate(&self, input: &ScoreInput<'_>) -> (bool, String) {
        let (written, wanted) = self.expected.resolve(input);
        let folding = self.expected.folding;
        let output = folding.apply(input.output);
        let (passed, side) = if self.at_end {
            (output.ends_with(wanted.as_ref()), "ends")
        } else {
            (output.starts_with(wanted.as_ref()), "starts")
        };
        let not = if passed { "" } else { " not" };
        (
            passed,
            format!(
                "the output does{not} {side} with {:?}",
                short(folding.shown(written))
            ),
        )
    }
}

/// How a check folds texts before it compares them.
#[derive(Clone, Copy, Debug)]
struct Folding {
    ignore_case: bool,
    trim: bool,
}

impl Folding {
    /// A text as compared: trimmed and lower-cased when asked.
    fn apply(self, text: &str) -> Cow<'_, str> {
        let text = if self.trim { text.trim() } else { text };
        if self.ignore_case {
            Cow::Owned(text.to_lowercase())
        } else {
            Cow::Borrowed(text)
        }
    }

    /// A text as a reason quotes it: in its own case, but trimmed when the check trims, since
    /// whitespace the comparison ignores would only mislead.
    fn shown(self, text: &str) -> &str {
        if self.trim { text.trim() } else { text }
    }
}

/// A text of the metric as written, and as compared when folding changes it (folded once, when
/// the check is prepared, not for every answer).
#[derive(Debug)]
struct Folded {
    written: String,
    folded: Option<String>,
}

impl Folded {
    /// `text` and its folded form.
    fn new(text: &str, folding: Folding) -> Self {
        let compared = folding.apply(text);
        let folded = (compared != text).then(|| compared.into_owned());
        Folded {
            written: text.to_string(),
            folded,
        }
    }

    /// The text as compared.
    fn compared(&self) -> &str {
        self.folded.as_deref().unwrap_or(&self.written)
    }
}

/// The text that exact_match, starts_with and ends_with compare with: the metric's value, else
/// the test's expected response.
#[derive(Debug)]
struct Expected {
    folding: Folding,
    value: Option<Folded>,
}

impl Expected {
    /// `value`, folded now, else the expected response.
    fn new(value: &Option<String>, folding: Folding) -> Self {
        Expected {
            folding,
            value: value.as_deref().map(|v| Folded::new(v, folding)),
        }
    }

    /// The text as written and as compared.
    fn resolve<'a>(&'a self, input: &ScoreInput<'a>) -> (&'a str, Cow<'a, str>) {
        match &self.value {
            Some(value) => (&value.written, Cow::Borrowed(value.compared())),
            None => {
                let expected = input.expected_response.unwrap_or_default();
                (expected, self.folding.apply(expected))
            }
        }
    }
}

/// The values of contains and not_contains.
#[derive(Debug)]
struct Needles {
    values: Vec<Folded>,
    /// Case folding only: the values are looked for anywhere, whitespace included.
    folding: Folding,
}

impl Needles {
    /// `values`, lower-cased now when the check ignores case.
    fn new(values: &[String], case_sensitive: bool) -> Self {
        let folding = Folding {
            ignore_case: !case_sensitive,
            trim: false,
        };
        Needles {
            values: values.iter().map(|v| Folded::new(v, folding)).collect(),
            folding,
        }
    }

    /// The values that occur in `output`, and those that do not.
    fn occurrences(&self, output: &str) -> (Vec<&Folded>, Vec<&Folded>) {
        let haystack = self.folding.apply(output);
        self.values
            .iter()
            .partition(|v| haystack.contains(v.compared()))
    }
}

/// Values listed in a reason like a `Vec` (`["a", "b"]`), as written, without collecting them.
struct Listed<I>(I);

impl<'a, I: Iterator<Item = &'a Folded> + Clone> fmt::Debug for Listed<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.clone().map(|v| v.written.as_str()))
            .finish()
    }
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

    /// The reason of `check` on the answer `output` to a test that expects `expected`.
    fn reason(check: &impl PassFail, output: &str, expected: Option<&str>) -> String {
        check.evaluate(&input(output, expected)).1
    }

    #[test]
    fn failures_quote_the_values_as_written() {
        let values = ["Paris".to_string(), "Lyon".to_string()];
        let any = Contains::new(&values, false, false);
        assert_eq!(
            reason(&any, "Marseille", None),
            r#"the output contains none of ["Paris", "Lyon"]"#
        );
        let all = Contains::new(&values, true, false);
        assert_eq!(
            reason(&all, "it is paris", None),
            r#"the output lacks ["Lyon"]"#
        );
        let banned = NotContains::new(&["Sorry".into(), "as an AI".into()], false);
        assert_eq!(
            reason(&banned, "SORRY, as an ai", None),
            r#"the output contains ["Sorry", "as an AI"]"#
        );
        let prefix = Affix {
            value: Some(" Answer: ".into()),
            ignore_case: true,
            trim: true,
        };
        assert_eq!(
            reason(&AffixMatch::new(&prefix, false), "The answer: 42", None),
            r#"the output does not starts with "Answer:""#,
            "trimmed as compared, in its own case"
        );
        let suffix = Affix {
            value: None,
            ignore_case: true,
            trim: false,
        };
        assert_eq!(
            reason(&AffixMatch::new(&suffix, true), "in Bern", Some("Zürich")),
            r#"the output does not ends with "Zürich""#
        );
    }

    #[test]
    fn passes_quote_the_values_as_written_too() {
        let values = ["Paris".to_string(), "Lyon".to_string()];
        assert_eq!(
            reason(&Contains::new(&values, false, false), "PARIS", None),
            r#"the output contains ["Paris"]"#
        );
        let banned = NotContains::new(&["Sorry".into()], false);
        assert_eq!(
            reason(&banned, "fine", None),
            r#"the output contains none of ["Sorry"]"#
        );
        let prefix = Affix {
            value: Some("Answer:".into()),
            ignore_case: true,
            trim: false,
        };
        assert_eq!(
            reason(&AffixMatch::new(&prefix, false), "ANSWER: 42", None),
            r#"the output does starts with "Answer:""#
        );
    }
}
