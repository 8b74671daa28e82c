//! LLM-as-judge: an OpenAI-compatible chat model scores one answer.
//!
//! The judge is an endpoint of the `openai_chat` kind, called through the target module like any
//! endpoint (its timeout, retries, rate limit and concurrency limit apply). A metric names it
//! (`judge_endpoint`), or names a model inline (`base_url`, `model`: an in-memory endpoint), or
//! falls back to the server's default judge (an in-memory endpoint with id [`DEFAULT_JUDGE_ID`]).
//!
//! The metric's evaluation prompt (a minijinja template over `prompt`, `expected_response`,
//! `context` and `output`) and its evaluation steps become the user message; the system message
//! tells the model the reply format: `{"score": ..., "reason": ...}`, or
//! `{"category": ..., "reason": ...}` for categorical metrics. The reply is read leniently (code
//! fences and chatter around the JSON object are ignored) but strictly checked: a score outside
//! `[min_score, max_score]`, an unknown category or no JSON object is an error that keeps the raw
//! reply.

use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::truncate;
use crate::domain::{CallPolicy, Endpoint, LlmJudge, Metric, OpenAiChatTarget, ScoreType, Target};
use crate::endpoint_client::openai::first_content;
use crate::endpoint_client::{
    PreparedTarget, TargetClient, describe_template_error, template_environment,
};

/// Id of the server's default judge endpoint (it lives in memory, never in the store).
pub const DEFAULT_JUDGE_ID: Uuid = Uuid::from_u128(0x00000000_0000_4000_8000_00000000a55a);
/// Retries of a call to an inline or default judge after a retryable failure (429, 5xx,
/// connection errors, timeouts). A judge endpoint uses its own `max_retries`.
const JUDGE_RETRIES: u32 = 2;
/// How much of a raw reply an error keeps.
const RAW_REPLY_CHARS: usize = 500;

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

/// The server's default judge as an in-memory endpoint of the `openai_chat` kind.
pub fn default_endpoint(
    base_url: &str,
    model: &str,
    api_key_env: Option<String>,
    timeout_ms: u32,
    max_concurrency: u32,
) -> Endpoint {
    judge_endpoint(
        DEFAULT_JUDGE_ID,
        "default judge",
        OpenAiChatTarget {
            base_url: base_url.to_string(),
            model: model.to_string(),
            system_prompt: None,
            api_key_env,
            timeout_ms,
        },
        max_concurrency,
    )
}

/// The inline judge of a metric (`base_url`, `model`) as an in-memory endpoint.
pub fn inline_endpoint(metric: &Metric, judge: &LlmJudge) -> Endpoint {
    judge_endpoint(
        metric.id,
        &format!("inline judge of metric {}", metric.name),
        OpenAiChatTarget {
            base_url: judge.base_url.clone(),
            model: judge.model.clone(),
            system_prompt: None,
            api_key_env: judge.api_key_env.clone(),
            timeout_ms: judge.timeout_ms,
        },
        0,
    )
}

fn judge_endpoint(id: Uuid, name: &str, chat: OpenAiChatTarget, max_concurrency: u32) -> Endpoint {
    let now = chrono::Utc::now();
    Endpoint {
        id,
        name: name.to_string(),
        description: String::new(),
        target: Target::OpenAiChat(chat),
        max_concurrency,
        max_retries: JUDGE_RETRIES,
        rate_limit_per_second: 0.0,
        call_policy: CallPolicy::default(),
        created_at: now,
        updated_at: now,
    }
}

/// A judge endpoint made ready for one run, shared by the run's metrics that use it.
#[derive(Debug)]
pub struct JudgeClient {
    name: String,
    /// Calls go through the endpoint's gate, so its `max_concurrency` and rate limit hold across
    /// every run and metric that uses this judge.
    target: PreparedTarget,
}

impl JudgeClient {
    /// Prepares `endpoint` as a judge; it must be of the `openai_chat` kind.
    pub fn prepare(targets: &TargetClient, endpoint: &Endpoint) -> Result<Self, String> {
        if !matches!(endpoint.target, Target::OpenAiChat(_)) {
            return Err(format!(
                "judge endpoint {:?} is not of the openai_chat kind",
                endpoint.name
            ));
        }
        let target = targets
            .prepare(endpoint, &Map::new())
            .map_err(|e| format!("judge endpoint {:?} cannot be called: {e}", endpoint.name))?;
        Ok(JudgeClient {
            name: endpoint.name.clone(),
            target,
        })
    }

    async fn complete(&self, body: Map<String, Value>) -> Result<Value, String> {
        self.target
            .chat(body)
            .await
            .map_err(|e| format!("judge {:?}: {e}", self.name))
    }
}

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

/// Asks the judge to score one answer.
pub async fn judge(
    client: &JudgeClient,
    judge: &LlmJudge,
    metric: &Metric,
    input: &JudgeInput<'_>,
) -> Result<Judgement, String> {
    let user = render_prompt(&judge.evaluation_prompt, &judge.evaluation_steps, input)?;
    let system = instructions(judge, metric);
    let mut body = Map::new();
    body.insert(
        "messages".into(),
        json!([
            {"role": "system", "content": system},
            {"role": "user", "content": user},
        ]),
    );
    body.insert("temperature".into(), json!(0));
    body.insert("response_format".into(), json!({"type": "json_object"}));
    let response = client.complete(body).await?;
    let content = first_content(&response).ok_or_else(|| {
        format!(
            "judge response has no choices[0].message.content; raw response: {}",
            raw(&response.to_string())
        )
    })?;
    parse_verdict(content, judge, metric)
}

/// The user message: the evaluation prompt rendered and the evaluation steps, followed by the
/// test's data when the prompt does not show the output itself.
fn render_prompt(
    evaluation_prompt: &str,
    steps: &[String],
    input: &JudgeInput<'_>,
) -> Result<String, String> {
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
    let (mut instructions, shows_output) = if evaluation_prompt.trim().is_empty() {
        (render(DEFAULT_INSTRUCTIONS)?.0, false)
    } else {
        render(evaluation_prompt)?
    };
    if !steps.is_empty() {
        instructions = format!("{}\n\nEvaluation steps:", instructions.trim_end());
        for (i, step) in steps.iter().enumerate() {
            instructions.push_str(&format!("\n{}. {}", i + 1, step.trim()));
        }
    }
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

/// Reads the judge's reply; every error keeps the raw reply.
fn parse_verdict(content: &str, judge: &LlmJudge, metric: &Metric) -> Result<Judgement, String> {
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
fn raw(text: &str) -> String {
    truncate(text, RAW_REPLY_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{MetricKind, ThresholdOperator};
    use crate::endpoint_client::test_server::{Answer, TestServer};
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
            judge_endpoint: None,
            evaluation_steps: Vec::new(),
        }
    }

    /// The metric's inline judge, prepared.
    fn judge_client(settings: &LlmJudge, metric: &Metric) -> JudgeClient {
        JudgeClient::prepare(&TargetClient::new(), &inline_endpoint(metric, settings)).unwrap()
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
        let client = judge_client(&settings, &m);
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
        let categorical = metric(&settings, ScoreType::Categorical);
        let client = judge_client(&settings, &categorical);
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
        let client = judge_client(&settings, &m);
        let err = judge(&client, &settings, &m, &input(&CONTEXT))
            .await
            .unwrap_err();
        assert_eq!(
            err,
            "judge \"inline judge of metric helpfulness\": endpoint returned HTTP 400: model not found"
        );
        let err = judge(&client, &settings, &m, &input(&CONTEXT))
            .await
            .unwrap_err();
        assert_eq!(
            err,
            "judge reply is not a JSON object; raw reply: I think it is fine."
        );
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
        let err = judge(&judge_client(&missing, &m), &missing, &m, &input(&CONTEXT))
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
            &[],
            &input(&context),
        )
        .unwrap();
        assert_eq!(
            custom,
            "Rate The capital is \"Paris\". against Paris given c1."
        );
        let criteria = render_prompt("Is the answer polite?", &[], &input(&context)).unwrap();
        assert!(
            criteria.starts_with("Is the answer polite?\n\nQuestion:\n"),
            "{criteria}"
        );
        assert!(
            criteria.contains("Answer to evaluate:\nThe capital is \"Paris\"."),
            "{criteria}"
        );
        let err = render_prompt("{% if %}", &[], &input(&context)).unwrap_err();
        assert!(err.starts_with("evaluation prompt: "), "{err}");
    }

    #[test]
    fn evaluation_steps_are_a_numbered_list_before_the_data() {
        let steps = [
            "Check the city.".to_string(),
            " Check the tone. ".to_string(),
        ];
        let text = render_prompt("Is it right?", &steps, &input(&[])).unwrap();
        assert!(
            text.starts_with(
                "Is it right?\n\nEvaluation steps:\n1. Check the city.\n2. Check the tone.\n\nQuestion:\n"
            ),
            "{text}"
        );
    }

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
