//! LLM-as-judge: an OpenAI-compatible chat model scores one answer.
//!
//! The metric's evaluation prompt (a minijinja template over `prompt`, `expected_response`,
//! `context` and `output`) becomes the user message; the system message tells the model the
//! reply format: `{"score": ..., "reason": ...}`, or `{"category": ..., "reason": ...}` for
//! categorical metrics. The reply is read leniently (code fences and chatter around the JSON
//! object are ignored).

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue};
use reqwest::{Method, Url};
use serde_json::{Map, Value, json};

use crate::domain::{CallPolicy, LlmJudge, Metric, ScoreType};
use crate::target::http::{self, Request, RetryPolicy, error_chain};
use crate::target::openai::{bearer, completions_url, first_content};
use crate::target::{DEFAULT_CHAT_TIMEOUT_MS, Gate, describe_template_error, template_environment};

/// Retries of a judge call after a retryable failure (429, 5xx, connection errors, timeouts).
const JUDGE_RETRIES: u32 = 2;
/// How much of a reply goes into an error message.
const REPLY_SNIPPET_CHARS: usize = 200;

/// The data shown to the judge, appended to evaluation prompts that do not show the output.
const DATA_TEMPLATE: &str = "\
Question:
{{ prompt }}
{% if expected_response %}
Expected answer:
{{ expected_response }}
{% endif %}{% if context %}
Context:
{% for passage in context %}- {{ passage }}
{% endfor %}{% endif %}
Answer to evaluate:
{{ output }}
";

/// The evaluation instructions when the metric gives none.
const DEFAULT_INSTRUCTIONS: &str = "\
Evaluate the answer to the question below. Judge whether it is correct, complete and relevant\
{% if expected_response %}, comparing it with the expected answer{% endif %}\
{% if context %}, and whether it is supported by the context{% endif %}.
";

/// What the judge is shown for one test.
#[derive(Clone, Copy, Debug)]
pub struct JudgeInput<'a> {
    /// The test's prompt.
    pub prompt: &'a str,
    /// The test's expected response.
    pub expected_response: Option<&'a str>,
    /// Context the endpoint returned.
    pub context: &'a [String],
    /// The endpoint's answer.
    pub output: &'a str,
}

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

/// Asks an OpenAI-compatible chat model to judge one answer.
pub async fn judge(
    client: &reqwest::Client,
    judge: &LlmJudge,
    metric: &Metric,
    input: &JudgeInput<'_>,
) -> Result<Judgement, String> {
    let url: Url = completions_url(&judge.base_url).map_err(|e| format!("judge base_url: {e}"))?;
    let user = render_prompt(&judge.evaluation_prompt, input)?;
    let system = instructions(judge, metric);
    let body = json!({
        "model": judge.model,
        "messages": [
            {"role": "system", "content": system},
            {"role": "user", "content": user},
        ],
        "temperature": 0,
        "response_format": {"type": "json_object"},
    });
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(authorization) =
        bearer(judge.api_key_env.as_deref()).map_err(|e| format!("judge api_key_env: {e}"))?
    {
        let value = authorization
            .resolve()
            .map_err(|missing| format!("judge API key: {missing}"))?;
        let mut value = HeaderValue::from_str(&value)
            .map_err(|_| "judge API key: not a valid header value".to_string())?;
        value.set_sensitive(true);
        headers.insert(AUTHORIZATION, value);
    }
    let request = Request {
        method: Method::POST,
        url,
        headers,
        body: serde_json::to_vec(&body).map_err(|e| error_chain(&e))?,
    };
    let timeout_ms = if judge.timeout_ms == 0 {
        DEFAULT_CHAT_TIMEOUT_MS
    } else {
        judge.timeout_ms
    };
    let policy = RetryPolicy::new(
        JUDGE_RETRIES,
        Duration::from_millis(u64::from(timeout_ms)),
        CallPolicy::default(),
    );
    // A judge given by URL is no endpoint, so it has no shared gate.
    let reply = http::send(client, &Gate::unlimited(), &request, policy)
        .await
        .map_err(|failure| {
            let after = if failure.attempts > 1 {
                format!(" (after {} attempts)", failure.attempts)
            } else {
                String::new()
            };
            format!("judge {}{after}", failure.error)
        })?;
    let response: Value = serde_json::from_slice(&reply.body).map_err(|e| {
        format!(
            "judge response is not JSON: {e}; body starts with: {}",
            http::snippet(&reply.body)
        )
    })?;
    let content =
        first_content(&response).ok_or("judge response has no choices[0].message.content")?;
    parse_verdict(content, judge, metric)
}

/// The user message: the evaluation prompt rendered, followed by the test's data when the
/// prompt does not show the output itself.
fn render_prompt(evaluation_prompt: &str, input: &JudgeInput<'_>) -> Result<String, String> {
    let env = template_environment();
    let ctx = minijinja::context! {
        prompt => input.prompt,
        expected_response => input.expected_response.unwrap_or(""),
        context => input.context.to_vec(),
        output => input.output,
    };
    let render = |source: &str| -> Result<(String, bool), String> {
        let template = env
            .template_from_str(source)
            .map_err(|e| format!("evaluation prompt: {}", describe_template_error(&e)))?;
        let shows_output = template.undeclared_variables(false).contains("output");
        let text = template
            .render(&ctx)
            .map_err(|e| format!("evaluation prompt: {}", describe_template_error(&e)))?;
        Ok((text, shows_output))
    };
    let (instructions, shows_output) = if evaluation_prompt.trim().is_empty() {
        (render(DEFAULT_INSTRUCTIONS)?.0, false)
    } else {
        render(evaluation_prompt)?
    };
    if shows_output {
        return Ok(instructions);
    }
    let (data, _) = render(DATA_TEMPLATE)?;
    Ok(format!("{}\n\n{data}", instructions.trim_end()))
}

/// The system message: role and reply format.
fn instructions(judge: &LlmJudge, metric: &Metric) -> String {
    let mut text = String::from(
        "You are a strict and impartial evaluator of answers given by an AI system. \
         Evaluate the answer as the user's instructions say.",
    );
    if !metric.description.trim().is_empty() {
        text.push_str(&format!(
            " The metric is {:?}: {}",
            metric.name,
            metric.description.trim()
        ));
    }
    text.push_str("\n\nReply with one JSON object and nothing else: ");
    match metric.score_type {
        ScoreType::Numeric => text.push_str(&format!(
            "{{\"score\": <a number from {min} (worst) to {max} (best)>, \
             \"reason\": \"<one or two sentences explaining the score>\"}}",
            min = judge.min_score,
            max = judge.max_score
        )),
        ScoreType::Binary => text.push_str(
            "{\"score\": <true if the answer passes, false if it fails>, \
             \"reason\": \"<one or two sentences explaining the verdict>\"}",
        ),
        ScoreType::Categorical => {
            let categories = metric
                .categories
                .iter()
                .map(|c| format!("{c:?}"))
                .collect::<Vec<_>>()
                .join(", ");
            text.push_str(&format!(
                "{{\"category\": \"<exactly one of: {categories}>\", \
                 \"reason\": \"<one or two sentences explaining the choice>\"}}"
            ));
        }
    }
    text
}

/// Reads the judge's reply.
fn parse_verdict(content: &str, judge: &LlmJudge, metric: &Metric) -> Result<Judgement, String> {
    let reply = first_object(content).ok_or_else(|| {
        format!(
            "judge reply is not a JSON object: {}",
            http::snippet(content.as_bytes())
        )
    })?;
    let reason = ["reason", "explanation", "rationale"]
        .iter()
        .find_map(|key| reply.get(*key))
        .map(|v| match v {
            Value::String(s) => s.trim().to_string(),
            other => other.to_string(),
        })
        .unwrap_or_default();
    let shown = || {
        let text = Value::Object(reply.clone()).to_string();
        text.chars().take(REPLY_SNIPPET_CHARS).collect::<String>()
    };
    match metric.score_type {
        ScoreType::Categorical => {
            let answered = match reply.get("category") {
                Some(Value::String(s)) => s.trim().to_string(),
                Some(Value::Null) | None => {
                    return Err(format!("judge reply has no category: {}", shown()));
                }
                Some(other) => other.to_string(),
            };
            let category = metric
                .categories
                .iter()
                .find(|c| **c == answered)
                .or_else(|| {
                    metric
                        .categories
                        .iter()
                        .find(|c| c.trim().eq_ignore_ascii_case(&answered))
                })
                .ok_or_else(|| {
                    format!(
                        "judge answered category {answered:?}, which is not one of {:?}",
                        metric.categories
                    )
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
                .ok_or_else(|| format!("judge reply has no score: {}", shown()))?;
            let passed = binary_verdict(value, judge)
                .ok_or_else(|| format!("judge score {value} is not a pass/fail verdict"))?;
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
                .ok_or_else(|| format!("judge reply has no score: {}", shown()))?;
            let raw = number(value)
                .or_else(|| {
                    verdict_word(value).map(|pass| {
                        if pass {
                            judge.max_score
                        } else {
                            judge.min_score
                        }
                    })
                })
                .ok_or_else(|| format!("judge score {value} is not a number"))?;
            Ok(Judgement {
                score: Some(normalise(raw, judge)),
                category: None,
                reason,
            })
        }
    }
}

/// `(score - min) / (max - min)`, clamped to `[0, 1]`.
fn normalise(score: f64, judge: &LlmJudge) -> f64 {
    let span = judge.max_score - judge.min_score;
    if !(span.is_finite() && span > 0.0) {
        return score.clamp(0.0, 1.0);
    }
    ((score - judge.min_score) / span).clamp(0.0, 1.0)
}

/// A pass/fail verdict: booleans, pass/fail words, 0/1, or a score over the judge's range.
fn binary_verdict(value: &Value, judge: &LlmJudge) -> Option<bool> {
    if let Some(pass) = verdict_word(value) {
        return Some(pass);
    }
    let n = number(value)?;
    if n == 0.0 || n == 1.0 {
        return Some(n == 1.0);
    }
    Some(normalise(n, judge) >= 0.5)
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{MetricKind, ThresholdOperator};
    use crate::target::test_server::{Answer, TestServer};
    use uuid::Uuid;

    fn llm_judge(base_url: &str, api_key_env: Option<String>) -> LlmJudge {
        LlmJudge {
            base_url: base_url.to_string(),
            model: "judge-model".into(),
            api_key_env,
            evaluation_prompt: String::new(),
            min_score: 1.0,
            max_score: 5.0,
            timeout_ms: 0,
        }
    }

    fn metric(judge: &LlmJudge, score_type: ScoreType) -> Metric {
        Metric {
            id: Uuid::new_v4(),
            name: "helpfulness".into(),
            description: "Is the answer helpful?".into(),
            score_type,
            threshold: None,
            threshold_operator: ThresholdOperator::default_for(score_type),
            categories: vec!["polite".into(), "rude".into()],
            passing_categories: vec!["polite".into()],
            requires_expected: false,
            requires_context: false,
            kind: MetricKind::LlmJudge(judge.clone()),
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
        }
    }

    fn completion(content: &str) -> Answer {
        Answer::json(json!({
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]
        }))
    }

    const CONTEXT: [String; 0] = [];

    fn input<'a>(context: &'a [String]) -> JudgeInput<'a> {
        JudgeInput {
            prompt: "What is the capital of France?",
            expected_response: Some("Paris"),
            context,
            output: "The capital is \"Paris\".",
        }
    }

    #[tokio::test]
    async fn numeric_judgement_over_http() {
        let server = TestServer::start(|_, _| {
            completion("```json\n{\"score\": 4, \"reason\": \"Mostly right.\"}\n```")
        })
        .await;
        let var = format!("ASSAY_JUDGE_KEY_{}", Uuid::new_v4().simple());
        // SAFETY: the variable's name is unique to this test.
        unsafe { std::env::set_var(&var, "judge-secret") };
        let settings = llm_judge(&format!("{}/v1", server.url), Some(var.clone()));
        let m = metric(&settings, ScoreType::Numeric);
        let context = vec!["Paris is the capital of France.".to_string()];
        fn assert_send<T: Send>(_: &T) {}
        let client = reqwest::Client::new();
        let judge_input = input(&context);
        let call = judge(&client, &settings, &m, &judge_input);
        assert_send(&call);
        let verdict = call.await.unwrap();
        unsafe { std::env::remove_var(&var) };
        assert_eq!(
            verdict,
            Judgement {
                score: Some(0.75),
                category: None,
                reason: "Mostly right.".into()
            }
        );
        let requests = server.requests();
        assert_eq!(requests.len(), 1);
        let request = &requests[0];
        assert_eq!(request.path, "/v1/chat/completions");
        assert_eq!(
            request.header("authorization").as_deref(),
            Some("Bearer judge-secret")
        );
        let body = request.json();
        assert_eq!(body["model"], "judge-model");
        assert_eq!(body["temperature"], 0);
        assert_eq!(body["response_format"], json!({"type": "json_object"}));
        let system = body["messages"][0]["content"].as_str().unwrap();
        assert!(system.contains("from 1 (worst) to 5 (best)"), "{system}");
        let user = body["messages"][1]["content"].as_str().unwrap();
        for part in [
            "The capital is \"Paris\".",
            "What is the capital of France?",
            "Expected answer:\nParis",
            "- Paris is the capital of France.",
        ] {
            assert!(user.contains(part), "{part:?} missing in {user}");
        }
    }

    #[tokio::test]
    async fn categorical_and_binary_judgements() {
        let server = TestServer::start(|n, _| match n {
            0 => completion("Sure! {\"category\": \"Polite\", \"reason\": \"Kind words.\"}"),
            1 => completion("{\"category\": \"sarcastic\", \"reason\": \"?\"}"),
            2 => completion("{\"score\": \"fail\", \"reason\": \"Wrong city.\"}"),
            _ => completion("{\"score\": true}"),
        })
        .await;
        let settings = llm_judge(&server.url, None);
        let client = reqwest::Client::new();
        let categorical = metric(&settings, ScoreType::Categorical);
        let verdict = judge(&client, &settings, &categorical, &input(&CONTEXT))
            .await
            .unwrap();
        assert_eq!(verdict.category.as_deref(), Some("polite"));
        assert_eq!(verdict.score, None);
        let system = server.requests()[0].json()["messages"][0]["content"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            system.contains(r#"exactly one of: "polite", "rude""#),
            "{system}"
        );
        let err = judge(&client, &settings, &categorical, &input(&CONTEXT))
            .await
            .unwrap_err();
        assert!(err.contains("\"sarcastic\", which is not one of"), "{err}");

        let binary = metric(&settings, ScoreType::Binary);
        let verdict = judge(&client, &settings, &binary, &input(&CONTEXT))
            .await
            .unwrap();
        assert_eq!(
            (verdict.score, verdict.reason.as_str()),
            (Some(0.0), "Wrong city.")
        );
        let verdict = judge(&client, &settings, &binary, &input(&CONTEXT))
            .await
            .unwrap();
        assert_eq!((verdict.score, verdict.reason.as_str()), (Some(1.0), ""));
        assert!(server.requests()[0].header("authorization").is_none());
    }

    #[tokio::test]
    async fn bad_replies_are_errors() {
        let server = TestServer::start(|n, _| match n {
            0 => Answer::status(400, "model not found"),
            1 => completion("I think it is fine."),
            2 => completion("{\"reason\": \"no score given\"}"),
            _ => Answer::json(json!({"error": "x"})),
        })
        .await;
        let settings = llm_judge(&server.url, None);
        let m = metric(&settings, ScoreType::Numeric);
        let client = reqwest::Client::new();
        let err = judge(&client, &settings, &m, &input(&CONTEXT))
            .await
            .unwrap_err();
        assert_eq!(err, "judge returned HTTP 400: model not found");
        let err = judge(&client, &settings, &m, &input(&CONTEXT))
            .await
            .unwrap_err();
        assert!(err.starts_with("judge reply is not a JSON object"), "{err}");
        let err = judge(&client, &settings, &m, &input(&CONTEXT))
            .await
            .unwrap_err();
        assert!(err.starts_with("judge reply has no score"), "{err}");
        let err = judge(&client, &settings, &m, &input(&CONTEXT))
            .await
            .unwrap_err();
        assert!(err.contains("choices[0].message.content"), "{err}");

        let var = format!("ASSAY_JUDGE_MISSING_{}", Uuid::new_v4().simple());
        let missing = llm_judge(&server.url, Some(var.clone()));
        let err = judge(&client, &missing, &m, &input(&CONTEXT))
            .await
            .unwrap_err();
        assert!(
            err.contains(&format!("environment variable {var:?} is not set")),
            "{err}"
        );
    }

    #[test]
    fn evaluation_prompts_render_and_show_the_output() {
        let context = vec!["c1".to_string()];
        let custom = render_prompt(
            "Rate {{ output }} against {{ expected_response }} given {{ context | join(', ') }}.",
            &input(&context),
        )
        .unwrap();
        assert_eq!(
            custom,
            "Rate The capital is \"Paris\". against Paris given c1."
        );
        let criteria = render_prompt("Is the answer polite?", &input(&context)).unwrap();
        assert!(
            criteria.starts_with("Is the answer polite?\n\nQuestion:\n"),
            "{criteria}"
        );
        assert!(
            criteria.contains("Answer to evaluate:\nThe capital is \"Paris\"."),
            "{criteria}"
        );
        let err = render_prompt("{% if %}", &input(&context)).unwrap_err();
        assert!(err.starts_with("evaluation prompt: "), "{err}");
    }

    #[test]
    fn scores_are_normalised_and_clamped() {
        let settings = llm_judge("http://x", None);
        let m = metric(&settings, ScoreType::Numeric);
        let score = |content: &str| parse_verdict(content, &settings, &m).unwrap().score;
        assert_eq!(score(r#"{"score": 1}"#), Some(0.0));
        assert_eq!(score(r#"{"score": "3"}"#), Some(0.5));
        assert_eq!(score(r#"{"score": 9}"#), Some(1.0));
        assert_eq!(score(r#"{"score": -2}"#), Some(0.0));
        assert_eq!(
            score("text {not json} then {\"score\": 5, \"reason\": \"x\"}"),
            Some(1.0)
        );
    }
}
