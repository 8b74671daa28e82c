//! Similarity of an output to a reference text, in `[0, 1]`: the similarity check (its score and
//! reason) and its measures, each agreeing with the library users know to 1e-9 on the fixture
//! corpus (`tests/data/similarity-fixtures.json`, written by `scripts/metric-fixtures/`):
//! Levenshtein with rapidfuzz, ROUGE-L with rouge-score ([`rouge`]), BLEU with sacreBLEU
//! ([`bleu`], [`tokenize`]).

mod bleu;
#[cfg(test)]
mod fixtures;
mod rouge;
mod tokenize;

use std::borrow::Cow;

use unicode_normalization::UnicodeNormalization;

use super::ScoreInput;
use crate::domain::{SimilarityMeasure, SimilarityOptions};

/// A score in `[0, 1]` for the similarity to a value or the expected response (see
/// `MetricKind::Similarity`).
#[derive(Debug)]
pub(super) struct SimilarityCheck {
    measure: SimilarityMeasure,
    options: SimilarityOptions,
    value: Option<String>,
}

impl SimilarityCheck {
    /// Measures by `measure` with `options` against `value`, else the expected response.
    pub(super) fn new(
        measure: SimilarityMeasure,
        options: SimilarityOptions,
        value: &Option<String>,
    ) -> Self {
        SimilarityCheck {
            measure,
            options,
            value: value.clone(),
        }
    }

    /// Score and reason. Computed on the blocking pool, because the cost grows with the product
    /// of the texts' lengths (seconds for two texts of 100k characters): it never holds an async
    /// worker.
    pub(super) async fn evaluate(&self, input: &ScoreInput<'_>) -> Result<(f64, String), String> {
        let (measure, options, given) = (self.measure, self.options, self.value.is_some());
        let output = input.output.to_string();
        let reference = input.reference(&self.value).to_string();
        tokio::task::spawn_blocking(move || verdict(measure, &options, &output, &reference, given))
            .await
            .map_err(|e| format!("the metric failed: {e}"))
    }
}

/// Score and reason of a similarity check; `given`: the reference is the metric's own value.
fn verdict(
    measure: SimilarityMeasure,
    options: &SimilarityOptions,
    output: &str,
    reference: &str,
    given: bool,
) -> (f64, String) {
    let score = similarity(measure, options, output, reference);
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

/// The similarity of `output` to `reference` by `measure`, in `[0, 1]`.
fn similarity(
    measure: SimilarityMeasure,
    options: &SimilarityOptions,
    output: &str,
    reference: &str,
) -> f64 {
    match measure {
        SimilarityMeasure::Levenshtein => levenshtein(output, reference, options),
        SimilarityMeasure::RougeL => rouge::rouge_l(output, reference),
        SimilarityMeasure::Bleu => bleu::sentence_bleu(output, reference, options),
    }
}

/// `1 - edit distance / longer length` over characters (rapidfuzz's
/// `Levenshtein.normalized_similarity`), of the texts lower-cased and/or in NFC as asked.
fn levenshtein(output: &str, reference: &str, options: &SimilarityOptions) -> f64 {
    let prepare = |text: &str| -> String {
        let text = if options.ignore_case {
            Cow::Owned(text.to_lowercase())
        } else {
            Cow::Borrowed(text)
        };
        if options.nfc {
            text.nfc().collect()
        } else {
            text.into_owned()
        }
    };
    strsim::normalized_levenshtein(&prepare(output), &prepare(reference))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scoring::fixtures::{input, long_text};

    /// No option set: every measure as its reference library's default.
    const PLAIN: SimilarityOptions = SimilarityOptions {
        ignore_case: false,
        nfc: false,
        lowercase: false,
        tokenize: crate::domain::BleuTokenizer::Tok13a,
    };

    fn check(measure: SimilarityMeasure, value: &Option<String>) -> SimilarityCheck {
        SimilarityCheck::new(measure, PLAIN, value)
    }

    #[test]
    fn levenshtein_is_one_minus_distance_over_the_longer_length() {
        let cases = [
            ("kitten", "sitting", 1.0 - 3.0 / 7.0),
            ("same", "same", 1.0),
            ("", "", 1.0),
            ("abc", "", 0.0),
            // Characters, not bytes: one substitution in four characters.
            ("Bär!", "Bar!", 0.75),
        ];
        for (output, reference, expected) in cases {
            let got = similarity(SimilarityMeasure::Levenshtein, &PLAIN, output, reference);
            assert!(
                (got - expected).abs() < 1e-12,
                "{output:?} {reference:?}: {got}"
            );
        }
    }

    #[test]
    fn texts_without_words_are_similar_only_when_equal() {
        let rouge = |a, b| similarity(SimilarityMeasure::RougeL, &PLAIN, a, b);
        assert_eq!(rouge("", ""), 1.0);
        assert_eq!(rouge("🇯🇵", "🇯🇵"), 1.0);
        assert_eq!(rouge("🇯🇵", "🇯🇵🇯🇵"), 0.0);
        assert_eq!(rouge("❤️", "❤"), 0.0);
        assert_eq!(rouge("?!", "..."), 0.0);
        assert_eq!(rouge("", "some words"), 0.0);
        // sacreBLEU scores an empty output 0, even against an empty reference.
        assert_eq!(similarity(SimilarityMeasure::Bleu, &PLAIN, "", ""), 0.0);
    }

    #[test]
    fn options_fold_the_texts() {
        let composed = "Café";
        let decomposed = "Cafe\u{301}";
        let levenshtein = |options: SimilarityOptions, a, b| {
            similarity(SimilarityMeasure::Levenshtein, &options, a, b)
        };
        assert_eq!(levenshtein(PLAIN, composed, decomposed), 0.6);
        let nfc = SimilarityOptions { nfc: true, ..PLAIN };
        assert_eq!(levenshtein(nfc, composed, decomposed), 1.0);
        let ignore_case = SimilarityOptions {
            ignore_case: true,
            ..PLAIN
        };
        assert_eq!(levenshtein(ignore_case, "PARIS", "paris"), 1.0);
        assert_eq!(
            similarity(SimilarityMeasure::RougeL, &PLAIN, composed, decomposed),
            1.0
        );
        let bleu = |options: SimilarityOptions| {
            similarity(
                SimilarityMeasure::Bleu,
                &options,
                "THE CAT SAT ON THE MAT",
                "the cat sat on the mat",
            )
        };
        assert_eq!(bleu(PLAIN), 0.0);
        let lowercase = SimilarityOptions {
            lowercase: true,
            ..PLAIN
        };
        assert!((bleu(lowercase) - 1.0).abs() < 1e-12);
    }

    /// Every case, `(output, expected response, wanted score)`, scores as wanted.
    async fn assert_scores(check: &SimilarityCheck, cases: &[(&str, Option<&str>, f64)]) {
        for &(output, expected, want) in cases {
            let (got, reason) = check.evaluate(&input(output, expected)).await.unwrap();
            let shown: String = output.chars().take(40).collect();
            assert!(
                (got - want).abs() < 1e-9,
                "{check:?} on {shown:?} (expected {expected:?}): {got}, not {want} ({reason})"
            );
        }
    }

    #[tokio::test]
    async fn the_check_compares_with_value_or_expected() {
        let long = long_text();
        let levenshtein = check(SimilarityMeasure::Levenshtein, &None);
        assert_scores(
            &levenshtein,
            &[
                ("kitten", Some("kitten"), 1.0),
                ("abc", Some("xyz"), 0.0),
                ("", Some("abcd"), 0.0),
                ("café", Some("cafe"), 0.75),
                (&long, Some("the end."), 8.0 / long.chars().count() as f64),
            ],
        )
        .await;
        let rouge = check(SimilarityMeasure::RougeL, &Some("the cat sat".into()));
        assert_scores(
            &rouge,
            &[
                ("The cat sat.", Some("unrelated"), 1.0),
                ("dogs run", None, 0.0),
                ("", None, 0.0),
            ],
        )
        .await;
        let bleu = check(SimilarityMeasure::Bleu, &None);
        assert_scores(
            &bleu,
            &[
                ("a b c d e", Some("a b c d e"), 1.0),
                ("x y", Some("a b c d e"), 0.0),
                ("", Some("a b"), 0.0),
                (&long, Some("zzz"), 0.0),
            ],
        )
        .await;
        // Both reference words found: recall 1, precision 2 / (5 * 3800 + 2).
        let precision = 2.0 / 19_002.0;
        assert_scores(
            &check(SimilarityMeasure::RougeL, &None),
            &[(&long, Some("the end"), 2.0 * precision / (precision + 1.0))],
        )
        .await;
    }

    #[tokio::test]
    async fn the_reason_names_the_measure_and_the_reference() {
        let given = check(SimilarityMeasure::RougeL, &Some("the cat sat".into()));
        let (_, reason) = given.evaluate(&input("the cat", None)).await.unwrap();
        assert_eq!(reason, "ROUGE-L F1 0.8000 against the metric's value");
        let expected = check(SimilarityMeasure::Bleu, &None);
        let (_, reason) = expected
            .evaluate(&input("a b c d", Some("a b c d")))
            .await
            .unwrap();
        assert_eq!(reason, "sentence BLEU 1.0000 against the expected response");
    }
}
