//! Checks that need no model: text comparisons, JSON, length, latency and similarity.

use std::borrow::Cow;

use regex::Regex;

use super::similarity::similarity;
use super::{JudgeHandle, ScoreInput};
use crate::domain::{Affix, LengthUnit, LlmJudge, MetricKind, SimilarityMeasure, compile_schema};

/// A metric kind made ready to run: regexes and schemas compiled, case folding decided.
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
    /// See [`MetricKind::NotContains`]; `values` folded like `Contains`.
    NotContains {
        values: Vec<String>,
        case_sensitive: bool,
    },
    /// See [`MetricKind::Regex`].
    Regex { re: Regex, no_match: bool },
    /// See [`MetricKind::StartsWith`] (`at_end` false) and [`MetricKind::EndsWith`].
    Affix { affix: Affix, at_end: bool },
    /// See [`MetricKind::IsJson`].
    IsJson,
    /// See [`MetricKind::JsonSchema`].
    JsonSchema(Box<jsonschema::Validator>),
    /// See [`MetricKind::Length`].
    Length {
        min: Option<u32>,
        max: Option<u32>,
        unit: LengthUnit,
    },
    /// See [`MetricKind::Latency`].
    Latency { max_ms: u32 },
    /// See [`MetricKind::Similarity`].
    Similarity {
        measure: SimilarityMeasure,
        value: Option<String>,
    },
    /// Scored by a model (see [`super::judge`]), not here.
    Judge {
        settings: LlmJudge,
        client: JudgeHandle,
    },
}

impl Check {
    /// Prepares a metric kind; `judge` is the judge of an LLM-judge kind.
    pub(super) fn new(kind: &MetricKind, judge: Option<JudgeHandle>) -> Result<Self, String> {
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
                values: fold_values(values, *case_sensitive),
                match_all: *match_all,
                case_sensitive: *case_sensitive,
            },
            MetricKind::NotContains {
                values,
                case_sensitive,
            } => Check::NotContains {
                values: fold_values(values, *case_sensitive),
                case_sensitive: *case_sensitive,
            },
            MetricKind::Regex { pattern, no_match } => Check::Regex {
                re: Regex::new(pattern).map_err(|e| format!("invalid regex {pattern:?}: {e}"))?,
                no_match: *no_match,
            },
            MetricKind::StartsWith(affix) => Check::Affix {
                affix: affix.clone(),
                at_end: false,
            },
            MetricKind::EndsWith(affix) => Check::Affix {
                affix: affix.clone(),
                at_end: true,
            },
            MetricKind::IsJson => Check::IsJson,
            MetricKind::JsonSchema { schema } => Check::JsonSchema(Box::new(
                compile_schema(schema).map_err(|e| format!("json_schema.schema {e}"))?,
            )),
            MetricKind::Length { min, max, unit } => Check::Length {
                min: *min,
                max: *max,
                unit: *unit,
            },
            MetricKind::Latency { max_ms } => Check::Latency { max_ms: *max_ms },
            MetricKind::Similarity { measure, value } => Check::Similarity {
                measure: *measure,
                value: value.clone(),
            },
            MetricKind::LlmJudge(settings) => Check::Judge {
                settings: settings.clone(),
                client: judge.unwrap_or_else(|| Err("no judge was prepared".into())),
            },
        })
    }

    /// Score and reason of a deterministic check: 1 or 0 for pass/fail checks, a value in
    /// `[0, 1]` for similarity. Judges are not evaluated here.
    pub(super) fn evaluate(&self, input: &ScoreInput<'_>) -> (f64, String) {
        let (passed, reason) = match self {
            Check::Exact {
                value,
                ignore_case,
                trim,
            } => {
                let expected = reference(value, input);
                let equal =
                    fold(input.output, *ignore_case, *trim) == fold(expected, *ignore_case, *trim);
                let reason = if equal {
                    "the output equals the expected text".to_string()
                } else {
                    // As the user wrote it, not lower-cased as compared.
                    let shown = if *trim { expected.trim() } else { expected };
                    format!(
                        "the output differs from the expected text {:?}",
                        short(shown)
                    )
                };
                (equal, reason)
            }
            Check::Contains {
                values,
                match_all,
                case_sensitive,
            } => {
                let (found, missing) = occurrences(values, input.output, *case_sensitive);
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
            Check::NotContains {
                values,
                case_sensitive,
            } => {
                let (found, _) = occurrences(values, input.output, *case_sensitive);
                if found.is_empty() {
                    (true, format!("the output contains none of {values:?}"))
                } else {
                    (false, format!("the output contains {found:?}"))
                }
            }
            Check::Regex { re, no_match } => match (re.find(input.output), no_match) {
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
            },
            Check::Affix { affix, at_end } => {
                let wanted = fold(
                    reference(&affix.value, input),
                    affix.ignore_case,
                    affix.trim,
                );
                let output = fold(input.output, affix.ignore_case, affix.trim);
                let (passed, side) = if *at_end {
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
            Check::IsJson => match serde_json::from_str::<serde::de::IgnoredAny>(input.output) {
                Ok(_) => (true, "the output is JSON".to_string()),
                Err(e) => (false, format!("the output is not JSON: {e}")),
            },
            Check::JsonSchema(validator) => {
                match serde_json::from_str::<serde_json::Value>(input.output) {
                    Err(e) => (false, format!("the output is not JSON: {e}")),
                    Ok(json) => {
                        let errors: Vec<String> = validator
                            .iter_errors(&json)
                            .take(3)
                            .map(|e| format!("{}: {e}", e.instance_path()))
                            .collect();
                        if errors.is_empty() {
                            (true, "the output is valid against the schema".to_string())
                        } else {
                            (
                                false,
                                format!(
                                    "the output is not valid against the schema: {}",
                                    super::truncate(&errors.join("; "), 300)
                                ),
                            )
                        }
                    }
                }
            }
            Check::Length { min, max, unit } => {
                let (length, unit_name) = match unit {
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
            Check::Latency { max_ms } => {
                let passed = input.latency_ms <= u64::from(*max_ms);
                let verdict = if passed { "within" } else { "over" };
                (
                    passed,
                    format!("latency {} ms, {verdict} {max_ms} ms", input.latency_ms),
                )
            }
            Check::Similarity { measure, value } => {
                return similarity_verdict(
                    *measure,
                    input.output,
                    reference(value, input),
                    value.is_some(),
                );
            }
            Check::Judge { .. } => (false, "judges are scored by a model".to_string()),
        };
        (if passed { 1.0 } else { 0.0 }, reason)
    }

    /// The evaluation as a job for the blocking pool, for checks whose cost grows with the
    /// product of the texts' lengths (similarity: seconds for two texts of 100k characters),
    /// so that they never hold an async worker. `None`: evaluate in place.
    pub(super) fn costly_job(
        &self,
        input: &ScoreInput<'_>,
    ) -> Option<impl FnOnce() -> (f64, String) + Send + 'static> {
        let Check::Similarity { measure, value } = self else {
            return None;
        };
        let (measure, given) = (*measure, value.is_some());
        let output = input.output.to_string();
        let reference = reference(value, input).to_string();
        Some(move || similarity_verdict(measure, &output, &reference, given))
    }
}

/// Score and reason of a similarity check; `given`: the reference is the metric's own value.
fn similarity_verdict(
    measure: SimilarityMeasure,
    output: &str,
    reference: &str,
    given: bool,
) -> (f64, String) {
    let score = similarity(measure, output, reference);
    let name = match measure {
        SimilarityMeasure::Levenshtein => "normalized Levenshtein similarity",
        SimilarityMeasure::RougeL => "ROUGE-L F1",
        SimilarityMeasure::Bleu => "sentence BLEU",
    };
    let against = if given {
        "the metric's value"
    } else {
        "the expected response"
    };
    (score, format!("{name} {score:.4} against {against}"))
}

/// The text a check compares with: its value, else the test's expected response.
fn reference<'a>(value: &'a Option<String>, input: &ScoreInput<'a>) -> &'a str {
    value
        .as_deref()
        .or(input.expected_response)
        .unwrap_or_default()
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

/// At most 80 characters of a text, for reasons.
fn short(text: &str) -> String {
    super::truncate(text, 80)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// About 100k characters of text ending with "the end.".
    fn long_text() -> String {
        format!("{}the end.", "lorem ipsum dolor sit amet ".repeat(3_800))
    }

    /// The score of `kind` on `output`, with `expected` as the test's expected response and
    /// `latency_ms` as the endpoint's latency.
    fn score(kind: &MetricKind, output: &str, expected: Option<&str>, latency_ms: u64) -> f64 {
        let check = Check::new(kind, None).unwrap();
        let input = ScoreInput {
            prompt: "p",
            expected_response: expected,
            output,
            context: &[],
            latency_ms,
        };
        check.evaluate(&input).0
    }

    /// Every case: (output, expected response, wanted score).
    fn assert_cases(kind: MetricKind, cases: &[(&str, Option<&str>, f64)]) {
        for &(output, expected, want) in cases {
            let got = score(&kind, output, expected, 0);
            let shown: String = output.chars().take(40).collect();
            assert!(
                (got - want).abs() < 1e-9,
                "{kind:?} on {shown:?} (expected {expected:?}): {got}, not {want}"
            );
        }
    }

    /// Exact match against the expected response, ignoring case and surrounding whitespace.
    fn folded_kind() -> MetricKind {
        MetricKind::ExactMatch {
            value: None,
            ignore_case: true,
            trim: true,
        }
    }

    #[test]
    fn exact_match_compares_with_value_or_expected() {
        let long = long_text();
        let fixed = MetricKind::ExactMatch {
            value: Some("Paris".into()),
            ignore_case: false,
            trim: false,
        };
        assert_cases(
            fixed,
            &[
                ("Paris", None, 1.0),
                ("paris", None, 0.0),
                (" Paris", None, 0.0),
                ("", None, 0.0),
                // The metric's value wins over the expected response.
                ("Paris", Some("Lyon"), 1.0),
            ],
        );
        assert_cases(
            folded_kind(),
            &[
                (" PARIS\n", Some("Paris"), 1.0),
                ("ÉLAN", Some("élan"), 1.0),
                ("", Some(""), 1.0),
                ("", Some("x"), 0.0),
                (&long, Some(&long), 1.0),
                (&long, Some("the end."), 0.0),
            ],
        );
        let check = Check::new(&folded_kind(), None).unwrap();
        let input = ScoreInput {
            prompt: "p",
            expected_response: Some(" Rome "),
            output: "Milan",
            context: &[],
            latency_ms: 0,
        };
        assert_eq!(
            check.evaluate(&input).1,
            "the output differs from the expected text \"Rome\"",
            "the reason shows the expected text as written"
        );
    }

    #[test]
    fn contains_any_all_and_case() {
        let long = long_text();
        let values = vec!["Paris".to_string(), "Lyon".to_string()];
        let any = MetricKind::Contains {
            values: values.clone(),
            match_all: false,
            case_sensitive: false,
        };
        assert_cases(
            any,
            &[
                ("it is paris", None, 1.0),
                ("Marseille", None, 0.0),
                ("", None, 0.0),
                (&format!("{long} LYON"), None, 1.0),
                (&long, None, 0.0),
            ],
        );
        let all = MetricKind::Contains {
            values,
            match_all: true,
            case_sensitive: false,
        };
        assert_cases(
            all,
            &[("it is paris", None, 0.0), ("lyon, paris", None, 1.0)],
        );
        let sensitive = MetricKind::Contains {
            values: vec!["Straße".into()],
            match_all: false,
            case_sensitive: true,
        };
        assert_cases(
            sensitive,
            &[("die Straße", None, 1.0), ("die STRASSE", None, 0.0)],
        );
    }

    #[test]
    fn not_contains_passes_when_no_value_occurs() {
        let long = long_text();
        let insensitive = MetricKind::NotContains {
            values: vec!["sorry".into(), "as an AI".into()],
            case_sensitive: false,
        };
        assert_cases(
            insensitive,
            &[
                ("Paris.", None, 1.0),
                ("Sorry, no.", None, 0.0),
                ("AS AN AI model", None, 0.0),
                ("", None, 1.0),
                ("désolé", None, 1.0),
                (&long, None, 1.0),
                (&format!("{long} sorry"), None, 0.0),
            ],
        );
        let sensitive = MetricKind::NotContains {
            values: vec!["Sorry".into()],
            case_sensitive: true,
        };
        assert_cases(sensitive, &[("sorry", None, 1.0), ("Sorry", None, 0.0)]);
    }

    #[test]
    fn regex_searches_anywhere_or_nowhere() {
        let long = long_text();
        let year = MetricKind::Regex {
            pattern: r"\d{4}".into(),
            no_match: false,
        };
        assert_cases(
            year,
            &[
                ("born in 1889.", None, 1.0),
                ("no year", None, 0.0),
                ("", None, 0.0),
                ("١٨٨٩", None, 1.0),
                (&format!("{long} 2024"), None, 1.0),
            ],
        );
        let no_email = MetricKind::Regex {
            pattern: r"[\w.]+@[\w.]+".into(),
            no_match: true,
        };
        assert_cases(
            no_email,
            &[
                ("write to a@b.c", None, 0.0),
                ("no address", None, 1.0),
                ("", None, 1.0),
                (&long, None, 1.0),
            ],
        );
    }

    #[test]
    fn starts_with_and_ends_with() {
        let long = long_text();
        let starts = MetricKind::StartsWith(Affix {
            value: Some("Answer:".into()),
            ignore_case: true,
            trim: true,
        });
        assert_cases(
            starts,
            &[
                ("  answer: 42", None, 1.0),
                ("The answer: 42", None, 0.0),
                ("", None, 0.0),
                (&format!("Answer: {long}"), None, 1.0),
            ],
        );
        let ends = MetricKind::EndsWith(Affix {
            value: None,
            ignore_case: false,
            trim: false,
        });
        assert_cases(
            ends,
            &[
                ("C'est à Zürich", Some("Zürich"), 1.0),
                ("C'est à Zürich ", Some("Zürich"), 0.0),
                ("c'est à zürich", Some("Zürich"), 0.0),
                ("", Some(""), 1.0),
                (&long, Some("the end."), 1.0),
            ],
        );
    }

    #[test]
    fn is_json_accepts_whole_documents_only() {
        let long = format!("[{}1]", "1, ".repeat(33_000));
        assert_cases(
            MetricKind::IsJson,
            &[
                (r#"{"a": [1, 2]}"#, None, 1.0),
                (" \n42\n", None, 1.0),
                (r#""ünïcödé""#, None, 1.0),
                (r#"{"a": 1"#, None, 0.0),
                (r#"Here: {"a": 1}"#, None, 0.0),
                ("", None, 0.0),
                (&long, None, 1.0),
            ],
        );
    }

    #[test]
    fn json_schema_validates_the_output() {
        let schema = MetricKind::JsonSchema {
            schema: r#"{"type": "object", "required": ["city"],
                        "properties": {"city": {"type": "string", "minLength": 1}}}"#
                .into(),
        };
        let long = format!(r#"{{"city": "{}"}}"#, "x".repeat(100_000));
        assert_cases(
            schema,
            &[
                (r#"{"city": "Paris"}"#, None, 1.0),
                (r#"{"city": "Zürich", "extra": true}"#, None, 1.0),
                (r#"{"city": ""}"#, None, 0.0),
                (r#"{"town": "Paris"}"#, None, 0.0),
                (r#"["Paris"]"#, None, 0.0),
                ("Paris", None, 0.0),
                ("", None, 0.0),
                (&long, None, 1.0),
            ],
        );
    }

    #[test]
    fn a_schema_failure_says_where() {
        let check = Check::new(
            &MetricKind::JsonSchema {
                schema: r#"{"properties": {"age": {"type": "integer"}}}"#.into(),
            },
            None,
        )
        .unwrap();
        let input = ScoreInput {
            prompt: "p",
            expected_response: None,
            output: r#"{"age": "old"}"#,
            context: &[],
            latency_ms: 0,
        };
        let (score, reason) = check.evaluate(&input);
        assert_eq!(score, 0.0);
        assert!(reason.contains("/age"), "{reason}");
    }

    #[test]
    fn length_counts_characters_or_words() {
        let long = long_text();
        let chars = MetricKind::Length {
            min: Some(2),
            max: Some(5),
            unit: LengthUnit::Characters,
        };
        assert_cases(
            chars,
            &[
                ("ab", None, 1.0),
                ("abcde", None, 1.0),
                ("a", None, 0.0),
                ("abcdef", None, 0.0),
                ("", None, 0.0),
                // Characters, not bytes: five characters, eleven bytes.
                ("ääääé", None, 1.0),
                (&long, None, 0.0),
            ],
        );
        let words = MetricKind::Length {
            min: None,
            max: Some(3),
            unit: LengthUnit::Words,
        };
        assert_cases(
            words,
            &[
                ("one two  three\n", None, 1.0),
                ("one two three four", None, 0.0),
                ("", None, 1.0),
                ("日本語 です", None, 1.0),
                (&long, None, 0.0),
            ],
        );
        let at_least = MetricKind::Length {
            min: Some(100_000),
            max: None,
            unit: LengthUnit::Characters,
        };
        assert_cases(at_least, &[(&long, None, 1.0), ("short", None, 0.0)]);
    }

    #[test]
    fn latency_uses_the_measured_latency() {
        let kind = MetricKind::Latency { max_ms: 200 };
        for (latency, want) in [(0, 1.0), (200, 1.0), (201, 0.0), (u64::MAX, 0.0)] {
            assert_eq!(score(&kind, "", None, latency), want, "{latency} ms");
        }
    }

    #[test]
    fn similarity_compares_with_value_or_expected() {
        let long = long_text();
        let levenshtein = MetricKind::Similarity {
            measure: SimilarityMeasure::Levenshtein,
            value: None,
        };
        assert_cases(
            levenshtein,
            &[
                ("kitten", Some("kitten"), 1.0),
                ("abc", Some("xyz"), 0.0),
                ("", Some("abcd"), 0.0),
                ("café", Some("cafe"), 0.75),
                (&long, Some("the end."), 8.0 / long.chars().count() as f64),
            ],
        );
        let rouge = MetricKind::Similarity {
            measure: SimilarityMeasure::RougeL,
            value: Some("the cat sat".into()),
        };
        assert_cases(
            rouge,
            &[
                ("The cat sat.", Some("unrelated"), 1.0),
                ("dogs run", None, 0.0),
                ("", None, 0.0),
            ],
        );
        let bleu = MetricKind::Similarity {
            measure: SimilarityMeasure::Bleu,
            value: None,
        };
        assert_cases(
            bleu,
            &[
                ("a b c d e", Some("a b c d e"), 1.0),
                ("x y", Some("a b c d e"), 0.0),
                ("", Some("a b"), 0.0),
                (&long, Some("zzz"), 0.0),
            ],
        );
        let long_rouge = score(
            &MetricKind::Similarity {
                measure: SimilarityMeasure::RougeL,
                value: None,
            },
            &long,
            Some("the end"),
            0,
        );
        // Both reference words found: recall 1, precision 2 / (5 * 3800 + 2).
        let precision = 2.0 / 19_002.0;
        assert!((long_rouge - 2.0 * precision / (precision + 1.0)).abs() < 1e-12);
    }
}
