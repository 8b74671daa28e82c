//! Every similarity measure, with every option, against the scores of its reference library
//! on the fixture corpus (`tests/data/similarity-fixtures.json`, written by
//! `scripts/metric-fixtures/generate.py` with sacreBLEU, rouge-score and rapidfuzz): Python is
//! needed only to write the corpus again, not to check it.

use std::collections::BTreeSet;

use serde::Deserialize;

use super::similarity;
use crate::domain::{SimilarityMeasure, SimilarityOptions};

#[derive(Deserialize)]
struct Corpus {
    pairs: Vec<Pair>,
}

#[derive(Deserialize)]
struct Pair {
    output: String,
    reference: String,
    scores: Vec<Reference>,
}

/// The reference library's score of one measure with some options.
#[derive(Deserialize)]
struct Reference {
    measure: SimilarityMeasure,
    options: SimilarityOptions,
    score: f64,
}

#[test]
fn every_measure_and_option_agrees_with_its_reference_library_to_1e_9() {
    let corpus: Corpus =
        serde_json::from_str(include_str!("../../../tests/data/similarity-fixtures.json"))
            .expect("the fixture corpus parses");
    assert!(corpus.pairs.len() >= 200, "{} pairs", corpus.pairs.len());
    let mut checked = BTreeSet::new();
    let mut differ = Vec::new();
    let mut count = 0;
    for pair in &corpus.pairs {
        for want in &pair.scores {
            let got = similarity(want.measure, &want.options, &pair.output, &pair.reference);
            count += 1;
            checked.insert(format!("{:?} {:?}", want.measure, want.options));
            if got.is_nan() || (got - want.score).abs() > 1e-9 {
                differ.push(format!(
                    "{:?} {:?} on {:?} against {:?}: {got}, reference {}",
                    want.measure, want.options, pair.output, pair.reference, want.score
                ));
            }
        }
    }
    assert!(
        differ.is_empty(),
        "{} of {count} scores differ:\n{}",
        differ.len(),
        differ.join("\n")
    );
    // Levenshtein with 4 option sets, ROUGE-L, BLEU with 4 tokenizers, lower-cased or not.
    assert_eq!(checked.len(), 13, "{checked:?}");
}
