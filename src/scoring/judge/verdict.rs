//! Reading the judge's reply into a [`Judgement`]: leniently (code fences and chatter around the
//! JSON object are ignored) but strictly checked (a score outside `[min_score, max_score]`, an
//! unknown category or no JSON object is an error that keeps the raw reply).

use serde_json::{Map, Value};

use crate::domain::{LlmJudge, Metric, ScoreType};
use crate::scoring::truncate;

/// How much of a raw reply an error keeps.
const RAW_REPLY_CHARS: usize = 500;

/// The judge's verdict.
#[derive(Clone, Debug, PartialEq)]
pub struct Judgement {
    /// The score normalised to `[0, 1]` (binary: 0 or 1); `None` for categorical metrics.
    pub score: Option<f64>,
    /// The category, one of the metric's, for categorical metrics.
    pub category: Option<String>,
    /// The judge's explanation.
    pub reason: String,
}

/// Reads the judge's reply; every error keeps the raw reply.
pub(super) fn parse_verdict(
    content: &str,
    judge: &LlmJudge,
    metric: &Metric,
) -> Result<Judgement, String> {
    let fail = |why: String| format!("{why}; raw reply: {}", raw(content));
    let reply =
        first_object(content).ok_or_else(|| fail("judge reply is not a JSON object".into()))?;
    let reason = ["reason", "explanation", "rationale"]
        .iter()
        .find_map(|key| reply.get(*key))
        .map(|v| match v {
            Value::String(s) => s.trim().to_string(),
            other => other.to_string(),
        })
        .unwrap_or_default();
    match metric.score_type {
        ScoreType::Categorical => {
            let answered = match reply.get("category") {
                Some(Value::String(s)) => s.trim().to_string(),
                Some(Value::Null) | None => {
                    return Err(fail("judge reply has no category".into()));
                }
                Some(other) => other.to_string(),
            };
            let category = metric.category_named(&answered).ok_or_else(|| {
                fail(format!(
                    "judge answered category {answered:?}, which is not one of {:?}",
                    metric.categories
                ))
            })?;
            Ok(Judgement {
                score: None,
                category: Some(category.clone()),
                reason,
            })
        }
        ScoreType::Binary => {
            let value = reply
                .get("score")
                .or_else(|| reply.get("verdict"))
                .or_else(|| reply.get("passed"))
                .or_else(|| reply.get("pass"))
                .filter(|v| !v.is_null())
                .ok_or_else(|| fail("judge reply has no score".into()))?;
            let passed = match verdict_word(value) {
                Some(pass) => pass,
                None => match number(value) {
                    Some(n) if n == 0.0 || n == 1.0 => n == 1.0,
                    Some(n) => normalise(n, judge).map_err(fail)? >= 0.5,
                    None => return Err(fail(format!("judge score {value} is not a verdict"))),
                },
            };
            Ok(Judgement {
                score: Some(if passed { 1.0 } else { 0.0 }),
                category: None,
                reason,
            })
        }
        ScoreType::Numeric => {
            let value = reply
                .get("score")
                .filter(|v| !v.is_null())
                .ok_or_else(|| fail("judge reply has no score".into()))?;
            let raw_score = number(value)
                .or_else(|| {
                    verdict_word(value).map(|pass| {
                        if pass {
                            judge.max_score
                        } else {
                            judge.min_score
                        }
                    })
                })
                .ok_or_else(|| fail(format!("judge score {value} is not a number")))?;
            Ok(Judgement {
                score: Some(normalise(raw_score, judge).map_err(fail)?),
                category: None,
                reason,
            })
        }
    }
}

/// `(score - min) / (max - min)`; a score outside `[min, max]` is an error.
fn normalise(score: f64, judge: &LlmJudge) -> Result<f64, String> {
    if !(judge.min_score..=judge.max_score).contains(&score) {
        return Err(format!(
            "judge score {score} is outside [{}, {}]",
            judge.min_score, judge.max_score
        ));
    }
    Ok((score - judge.min_score) / (judge.max_score - judge.min_score))
}

/// Pass/fail words: booleans, true/false, pass/fail, passed/failed, yes/no.
fn verdict_word(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "pass" | "passed" | "yes" => Some(true),
            "false" | "fail" | "failed" | "no" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// A finite number, given as a JSON number or a string holding one.
fn number(value: &Value) -> Option<f64> {
    let n = match value {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    n.is_finite().then_some(n)
}

/// The first JSON object in a reply, ignoring code fences and text around it.
fn first_object(content: &str) -> Option<Map<String, Value>> {
    let mut offset = 0;
    while let Some(start) = content[offset..].find('{') {
        let from = offset + start;
        let mut values = serde_json::Deserializer::from_str(&content[from..]).into_iter::<Value>();
        if let Some(Ok(Value::Object(map))) = values.next() {
            return Some(map);
        }
        offset = from + 1;
    }
    None
}

/// A raw reply for an error message.
pub(super) fn raw(text: &str) -> String {
    truncate(text, RAW_REPLY_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scoring::judge::tests::{llm_judge, metric};

    #[test]
    fn scores_are_normalised_and_out_of_range_is_an_error() {
        let settings = llm_judge("http://x", None);
        let m = metric(&settings, ScoreType::Numeric);
        let score = |content: &str| parse_verdict(content, &settings, &m).map(|j| j.score);
        assert_eq!(score(r#"{"score": 1}"#), Ok(Some(0.0)));
        assert_eq!(score(r#"{"score": "3"}"#), Ok(Some(0.5)));
        assert_eq!(score(r#"{"score": 5}"#), Ok(Some(1.0)));
        assert_eq!(
            score("text {not json} then {\"score\": 5, \"reason\": \"x\"}"),
            Ok(Some(1.0))
        );
        assert_eq!(
            score(r#"{"score": 9, "reason": "great"}"#),
            Err(
                r#"judge score 9 is outside [1, 5]; raw reply: {"score": 9, "reason": "great"}"#
                    .to_string()
            )
        );
        assert!(score(r#"{"score": -2}"#).unwrap_err().contains("outside"));
        let long = format!(
            "{{\"score\": \"excellent\", \"reason\": \"{}\"}}",
            "x".repeat(2000)
        );
        let err = score(&long).unwrap_err();
        assert!(
            err.starts_with("judge score \"excellent\" is not a number; raw reply: {\"score\""),
            "{err}"
        );
        assert!(
            err.chars().count() < 700,
            "the raw reply is truncated: {err}"
        );
    }

    #[test]
    fn binary_verdicts() {
        let settings = llm_judge("http://x", None);
        let m = metric(&settings, ScoreType::Binary);
        let score = |content: &str| parse_verdict(content, &settings, &m).map(|j| j.score);
        for (reply, want) in [
            (r#"{"score": true}"#, 1.0),
            (r#"{"score": "PASS"}"#, 1.0),
            (r#"{"verdict": "fail"}"#, 0.0),
            (r#"{"score": 0}"#, 0.0),
            (r#"{"score": 1}"#, 1.0),
            // On the judge's 1..5 scale: 4 is a pass, 2 a fail.
            (r#"{"score": 4}"#, 1.0),
            (r#"{"score": 2}"#, 0.0),
        ] {
            assert_eq!(score(reply), Ok(Some(want)), "{reply}");
        }
        assert!(
            score(r#"{"score": "maybe"}"#)
                .unwrap_err()
                .contains("raw reply")
        );
        assert!(
            score(r#"{"score": 7}"#)
                .unwrap_err()
                .contains("outside [1, 5]")
        );
    }
}
