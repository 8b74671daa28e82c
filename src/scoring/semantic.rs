//! Semantic similarity: the cosine similarity of the embeddings of the output and a reference
//! text, both embedded in one call to the metric's embedding endpoint.

use super::{JudgeHandle, ScoreInput, Spent, truncate};

/// A `semantic_similarity` metric made ready for a run: its reference and its embedding
/// endpoint, or why it has none (then every score is an error).
#[derive(Debug)]
pub(super) struct SemanticCheck {
    value: Option<String>,
    client: JudgeHandle,
}

impl SemanticCheck {
    /// The check comparing with `value` (else the expected response) through `client`.
    pub(super) fn new(value: &Option<String>, client: Option<JudgeHandle>) -> Self {
        SemanticCheck {
            value: value.clone(),
            client: client.unwrap_or_else(|| Err("no embedding endpoint was prepared".into())),
        }
    }

    /// The cosine similarity of the output and the reference, a reason quoting the reference,
    /// and what the embedding call spent.
    pub(super) async fn evaluate(
        &self,
        input: &ScoreInput<'_>,
    ) -> Result<(f64, String, Spent), String> {
        let client = self.client.as_ref().map_err(Clone::clone)?;
        let reference = input.reference(&self.value);
        let (vectors, spent) = client.embed(&[input.output, reference]).await?;
        let score = cosine(&vectors[0], &vectors[1])?;
        Ok((
            score,
            format!(
                "cosine similarity {score:.4} of the embeddings of the output and {:?}",
                truncate(reference, 80)
            ),
            spent,
        ))
    }
}

/// `a · b / (|a| |b|)`; vectors of different lengths, or a zero vector, have none.
fn cosine(a: &[f64], b: &[f64]) -> Result<f64, String> {
    if a.len() != b.len() {
        return Err(format!(
            "the embeddings have different dimensions ({} and {})",
            a.len(),
            b.len()
        ));
    }
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norms =
        a.iter().map(|x| x * x).sum::<f64>().sqrt() * b.iter().map(|x| x * x).sum::<f64>().sqrt();
    if norms == 0.0 {
        return Err("an embedding is the zero vector, which has no direction".into());
    }
    // Rounding may carry a cosine just past ±1.
    Ok((dot / norms).clamp(-1.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::cosine;

    #[test]
    fn cosine_is_the_angle_between_vectors_whatever_their_length() {
        for (a, b, want) in [
            (vec![1.0, 0.0], vec![3.0, 0.0], 1.0),
            (vec![1.0, 0.0], vec![0.0, 2.0], 0.0),
            (vec![1.0, 1.0], vec![-1.0, -1.0], -1.0),
            (vec![1.0, 0.0], vec![1.0, 3f64.sqrt()], 0.5),
        ] {
            let got = cosine(&a, &b).unwrap();
            assert!((got - want).abs() < 1e-12, "{a:?} {b:?}: {got}");
        }
    }

    #[test]
    fn mismatched_or_zero_vectors_have_no_cosine() {
        assert!(
            cosine(&[1.0], &[1.0, 0.0])
                .unwrap_err()
                .contains("dimensions")
        );
        assert!(
            cosine(&[0.0, 0.0], &[1.0, 0.0])
                .unwrap_err()
                .contains("zero")
        );
    }
}
