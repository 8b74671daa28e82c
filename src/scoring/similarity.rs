//! Similarity of an output to a reference text, in `[0, 1]`: the similarity check (its score and
//! reason) and its measures, normalized Levenshtein (the `strsim` crate), ROUGE-L F1 and sentence
//! BLEU.
//!
//! ROUGE-L and BLEU read words: the text is lower-cased and split into maximal runs of Unicode
//! alphanumeric characters (punctuation and whitespace separate words and are dropped). On ASCII
//! text this is the default tokenizer of Google's `rouge-score` (without stemming). The scores
//! follow `rouge-score`'s `rougeL` F-measure and NLTK's `sentence_bleu` (uniform weights over 1-
//! to 4-grams, brevity penalty, `SmoothingFunction().method1`: a zero n-gram count becomes 0.1);
//! the fixtures in the tests were computed with them. One deliberate difference: two texts with
//! no word at all are identical and score 1 (the references give 0).

use std::collections::HashMap;

use super::ScoreInput;
use crate::domain::SimilarityMeasure;

/// Chen & Cherry's smoothing method 1: the numerator given to an n-gram order without matches.
const BLEU_EPSILON: f64 = 0.1;
/// Longest n-grams counted by BLEU.
const BLEU_MAX_N: usize = 4;

/// A score in `[0, 1]` for the similarity to a value or the expected response (see
/// `MetricKind::Similarity`).
#[derive(Debug)]
pub(super) struct SimilarityCheck {
    measure: SimilarityMeasure,
    value: Option<String>,
}

impl SimilarityCheck {
    /// Measures by `measure` against `value`, else the expected response.
    pub(super) fn new(measure: SimilarityMeasure, value: &Option<String>) -> Self {
        SimilarityCheck {
            measure,
            value: value.clone(),
        }
    }

    /// Score and reason. Computed on the blocking pool, because the cost grows with the product
    /// of the texts' lengths (seconds for two texts of 100k characters): it never holds an async
    /// worker.
    pub(super) async fn evaluate(&self, input: &ScoreInput<'_>) -> Result<(f64, String), String> {
        let (measure, given) = (self.measure, self.value.is_some());
        let output = input.output.to_string();
        let reference = input.reference(&self.value).to_string();
        tokio::task::spawn_blocking(move || verdict(measure, &output, &reference, given))
            .await
            .map_err(|e| format!("the metric failed: {e}"))
    }
}

/// Score and reason of a similarity check; `given`: the reference is the metric's own value.
fn verdict(
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

/// The similarity of `output` to `reference` by `measure`, in `[0, 1]`.
fn similarity(measure: SimilarityMeasure, output: &str, reference: &str) -> f64 {
    match measure {
        SimilarityMeasure::Levenshtein => strsim::normalized_levenshtein(output, reference),
        SimilarityMeasure::RougeL => rouge_l(&words(output), &words(reference)),
        SimilarityMeasure::Bleu => bleu(&words(output), &words(reference)),
    }
}

/// Lower-cased runs of alphanumeric characters.
fn words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// F1 of the longest common subsequence: precision over the output's words, recall over the
/// reference's.
fn rouge_l(output: &[String], reference: &[String]) -> f64 {
    if output.is_empty() && reference.is_empty() {
        return 1.0;
    }
    let lcs = lcs_len(output, reference);
    if lcs == 0 {
        return 0.0;
    }
    let precision = lcs as f64 / output.len() as f64;
    let recall = lcs as f64 / reference.len() as f64;
    2.0 * precision * recall / (precision + recall)
}

/// Length of the longest common subsequence, in O(len(a) * len(b)) time and O(len(b)) memory.
fn lcs_len(a: &[String], b: &[String]) -> usize {
    let mut previous = vec![0usize; b.len() + 1];
    let mut current = vec![0usize; b.len() + 1];
    for x in a {
        for (j, y) in b.iter().enumerate() {
            current[j + 1] = if x == y {
                previous[j] + 1
            } else {
                current[j].max(previous[j + 1])
            };
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

/// Sentence BLEU with one reference: geometric mean of the clipped n-gram precisions (n = 1..4,
/// smoothed) times the brevity penalty; 0 when no word matches.
fn bleu(output: &[String], reference: &[String]) -> f64 {
    if output.is_empty() && reference.is_empty() {
        return 1.0;
    }
    let mut log_sum = 0.0;
    for n in 1..=BLEU_MAX_N {
        let (matches, total) = clipped_matches(output, reference, n);
        if matches == 0 && n == 1 {
            return 0.0;
        }
        let denominator = total.max(1) as f64;
        let precision = if matches == 0 {
            BLEU_EPSILON / denominator
        } else {
            matches as f64 / denominator
        };
        log_sum += precision.ln() / BLEU_MAX_N as f64;
    }
    // Unigrams matched, so the output has words.
    let brevity = if output.len() > reference.len() {
        1.0
    } else {
        (1.0 - reference.len() as f64 / output.len() as f64).exp()
    };
    brevity * log_sum.exp()
}

/// The output's n-grams found in the reference (each counted at most as often as it occurs
/// there), and the output's n-gram count.
fn clipped_matches(output: &[String], reference: &[String], n: usize) -> (usize, usize) {
    let available = ngram_counts(reference, n);
    let matches = ngram_counts(output, n)
        .into_iter()
        .map(|(gram, count)| count.min(available.get(gram).copied().unwrap_or(0)))
        .sum();
    (matches, output.len().saturating_sub(n - 1))
}

fn ngram_counts(words: &[String], n: usize) -> HashMap<&[String], usize> {
    let mut counts: HashMap<&[String], usize> = HashMap::new();
    for gram in words.windows(n) {
        *counts.entry(gram).or_default() += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scoring::fixtures::{input, long_text};

    /// (output, reference, ROUGE-L F1, sentence BLEU), computed with Python: rouge-score 0.1.2
    /// (`RougeScorer(["rougeL"], tokenizer=T)` where `T.tokenize(text)` is
    /// `"".join(c if c.isalnum() else " " for c in text.lower()).split()`, i.e. [`words`]) and
    /// nltk 3.10.4 (`sentence_bleu([T(ref)], T(out), smoothing_function=SmoothingFunction().method1)`).
    const REFERENCE: &[(&str, &str, f64, f64)] = &[
        ("the cat sat on the mat", "the cat sat on the mat", 1.0, 1.0),
        ("hello world", "foo bar baz", 0.0, 0.0),
        (
            "the cat is on the mat",
            "there is a cat on the mat",
            0.6153846153846153,
            0.19433094436376075,
        ),
        (
            "Paris",
            "Paris is the capital of France",
            0.2857142857142857,
            0.0011981952414407235,
        ),
        (
            "the the the the the the the",
            "the cat is on the mat",
            0.30769230769230765,
            0.039281465090051315,
        ),
        (
            "Der Bär läuft schnell über die Straße",
            "Der Bär rennt über die Straße",
            0.7692307692307692,
            0.20556680845025987,
        ),
        (
            "Hello, world! How are you?",
            "hello world how are you",
            1.0,
            1.0,
        ),
        (
            "It is a guide to action which ensures that the military always obeys the commands of the party",
            "It is a guide to action that ensures that the military will forever heed Party commands",
            0.6470588235294118,
            0.4208598069524091,
        ),
        (
            "the quick brown fox jumps over the lazy dog today",
            "the quick brown fox",
            0.5714285714285715,
            0.2626909894424158,
        ),
        (
            "The answer is 42.",
            "42 is the answer",
            0.5,
            0.20205155046766235,
        ),
        (
            "crème brûlée, café au lait",
            "café crème",
            0.28571428571428575,
            0.06389431042462725,
        ),
    ];

    #[test]
    fn rouge_l_and_bleu_agree_with_the_reference_implementations() {
        for &(output, reference, rouge, bleu) in REFERENCE {
            let got = similarity(SimilarityMeasure::RougeL, output, reference);
            assert!(
                (got - rouge).abs() < 1e-9,
                "ROUGE-L({output:?}, {reference:?}) = {got}, reference {rouge}"
            );
            let got = similarity(SimilarityMeasure::Bleu, output, reference);
            assert!(
                (got - bleu).abs() < 1e-9,
                "BLEU({output:?}, {reference:?}) = {got}, reference {bleu}"
            );
        }
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
            let got = similarity(SimilarityMeasure::Levenshtein, output, reference);
            assert!(
                (got - expected).abs() < 1e-12,
                "{output:?} {reference:?}: {got}"
            );
        }
    }

    #[test]
    fn texts_without_words() {
        for measure in [SimilarityMeasure::RougeL, SimilarityMeasure::Bleu] {
            assert_eq!(similarity(measure, "", ""), 1.0);
            assert_eq!(similarity(measure, "?!", "..."), 1.0);
            assert_eq!(similarity(measure, "", "some words"), 0.0);
            assert_eq!(similarity(measure, "some words", ""), 0.0);
        }
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
        let levenshtein = SimilarityCheck::new(SimilarityMeasure::Levenshtein, &None);
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
        let rouge = SimilarityCheck::new(SimilarityMeasure::RougeL, &Some("the cat sat".into()));
        assert_scores(
            &rouge,
            &[
                ("The cat sat.", Some("unrelated"), 1.0),
                ("dogs run", None, 0.0),
                ("", None, 0.0),
            ],
        )
        .await;
        let bleu = SimilarityCheck::new(SimilarityMeasure::Bleu, &None);
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
            &SimilarityCheck::new(SimilarityMeasure::RougeL, &None),
            &[(&long, Some("the end"), 2.0 * precision / (precision + 1.0))],
        )
        .await;
    }

    #[tokio::test]
    async fn the_reason_names_the_measure_and_the_reference() {
        let given = SimilarityCheck::new(SimilarityMeasure::RougeL, &Some("the cat sat".into()));
        let (_, reason) = given.evaluate(&input("the cat", None)).await.unwrap();
        assert_eq!(reason, "ROUGE-L F1 0.8000 against the metric's value");
        let expected = SimilarityCheck::new(SimilarityMeasure::Bleu, &None);
        let (_, reason) = expected
            .evaluate(&input("a b c d", Some("a b c d")))
            .await
            .unwrap();
        assert_eq!(reason, "sentence BLEU 1.0000 against the expected response");
    }
}
