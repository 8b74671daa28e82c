//! sacreBLEU's `sentence_bleu` with one reference, on a 0-1 scale: clipped n-gram counts of
//! orders 1 to 4, `exp` smoothing, effective order and the brevity penalty, computed in the
//! order of `BLEU.compute_bleu` (`sacrebleu/metrics/bleu.py`) so the floats agree.

use std::borrow::Cow;
use std::collections::HashMap;

use super::tokenize::tokens;
use crate::domain::SimilarityOptions;

/// Longest n-grams counted (sacreBLEU's `MAX_NGRAM_ORDER`).
const MAX_ORDER: usize = 4;

/// `sentence_bleu(output, [reference], lowercase=.., tokenize=..).score / 100`.
pub(super) fn sentence_bleu(output: &str, reference: &str, options: &SimilarityOptions) -> f64 {
    let prepare = |text: &str| {
        let text = if options.lowercase {
            Cow::Owned(text.to_lowercase())
        } else {
            Cow::Borrowed(text)
        };
        tokens(&text, options.tokenize)
    };
    let (output, reference) = (prepare(output), prepare(reference));
    let (correct, total) = ngram_matches(&output, &reference);
    compute(&correct, &total, output.len(), reference.len()) / 100.0
}

/// Per order, the output's n-grams found in the reference (each at most as often as it occurs
/// there), and the output's n-grams.
fn ngram_matches(
    output: &[String],
    reference: &[String],
) -> ([usize; MAX_ORDER], [usize; MAX_ORDER]) {
    let mut correct = [0; MAX_ORDER];
    let mut total = [0; MAX_ORDER];
    for n in 1..=MAX_ORDER {
        let available = ngram_counts(reference, n);
        for (gram, count) in ngram_counts(output, n) {
            total[n - 1] += count;
            correct[n - 1] += count.min(available.get(gram).copied().unwrap_or(0));
        }
    }
    (correct, total)
}

fn ngram_counts(words: &[String], n: usize) -> HashMap<&[String], usize> {
    let mut counts: HashMap<&[String], usize> = HashMap::new();
    for gram in words.windows(n) {
        *counts.entry(gram).or_default() += 1;
    }
    counts
}

/// `BLEU.compute_bleu` with `smooth_method="exp"` and `effective_order=True`, on sacreBLEU's
/// 0-100 scale.
fn compute(correct: &[usize], total: &[usize], output_len: usize, reference_len: usize) -> f64 {
    let brevity = if output_len >= reference_len {
        1.0
    } else if output_len > 0 {
        (1.0 - reference_len as f64 / output_len as f64).exp()
    } else {
        0.0
    };
    if correct.iter().all(|&c| c == 0) {
        return 0.0;
    }
    let mut precisions = [0.0; MAX_ORDER];
    let mut smooth = 1.0;
    let mut order = MAX_ORDER;
    for n in 0..MAX_ORDER {
        if total[n] == 0 {
            break;
        }
        order = n + 1;
        precisions[n] = if correct[n] == 0 {
            // Each order without a match halves the smoothed count (NIST's smoothing).
            smooth *= 2.0;
            100.0 / (smooth * total[n] as f64)
        } else {
            100.0 * correct[n] as f64 / total[n] as f64
        };
    }
    let log_sum: f64 = precisions[..order].iter().map(|p| p.ln()).sum();
    brevity * (log_sum / order as f64).exp()
}
