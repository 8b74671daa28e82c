//! ROUGE-L F1 as rouge-score's `rougeL` F-measure (no stemmer). Words are maximal runs of
//! Unicode letters, marks and numbers of the lower-cased, NFC-normalised text: on ASCII text
//! exactly rouge-score's default tokens (it keeps runs of `[a-z0-9]`), on other text whole
//! words where rouge-score would drop every non-ASCII letter.

use std::sync::LazyLock;

use regex::Regex;
use unicode_normalization::UnicodeNormalization;

/// A word: letters (L*), marks (M*, so accents and vowel signs stay in their word) and numbers.
static WORD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[\p{L}\p{M}\p{N}]+").expect("valid pattern"));

/// ROUGE-L F1 of `output` against `reference`. Two texts without any word score 1 when their
/// NFC forms are equal, else 0.
pub(super) fn rouge_l(output: &str, reference: &str) -> f64 {
    let (output_text, reference_text) = (folded(output), folded(reference));
    let output_words: Vec<&str> = WORD.find_iter(&output_text).map(|m| m.as_str()).collect();
    let reference_words: Vec<&str> = WORD
        .find_iter(&reference_text)
        .map(|m| m.as_str())
        .collect();
    if output_words.is_empty() && reference_words.is_empty() {
        let equal = output.nfc().eq(reference.nfc());
        return if equal { 1.0 } else { 0.0 };
    }
    let lcs = lcs_len(&output_words, &reference_words);
    if lcs == 0 {
        return 0.0;
    }
    let precision = lcs as f64 / output_words.len() as f64;
    let recall = lcs as f64 / reference_words.len() as f64;
    2.0 * precision * recall / (precision + recall)
}

/// The text lower-cased, then NFC-normalised.
fn folded(text: &str) -> String {
    text.to_lowercase().nfc().collect()
}

/// Length of the longest common subsequence, in O(len(a) * len(b)) time and O(len(b)) memory.
fn lcs_len(a: &[&str], b: &[&str]) -> usize {
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
