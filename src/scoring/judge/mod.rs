//! LLM-as-judge: an OpenAI-compatible chat model scores one answer. This file holds the judge
//! made ready for a run ([`JudgeClient`]) and the scoring call ([`judge()`]); the parts of that
//! call have their own files: `endpoint.rs` builds the in-memory judge endpoints, `prompt.rs`
//! renders the messages, `verdict.rs` reads the reply.
//!
//! The judge is an endpoint of the `openai_chat` kind, called through the target module like any
//! endpoint (its timeout, retries, rate limit and concurrency limit apply). A metric names it
//! (`judge_endpoint`), or names a model inline (`base_url`, `model`: an in-memory endpoint), or
//! falls back to the server's default judge (an in-memory endpoint with id [`DEFAULT_JUDGE_ID`]).
//!
//! The metric's evaluation prompt and steps become the user message, the system message tells
//! the model the reply format (`{"score": ..., "reason": ...}`, or `{"category": ..., "reason":
//! ...}` for categorical metrics), and the reply is read leniently but strictly checked.

mod endpoint;
mod prompt;
mod verdict;

use serde_json::{Map, Value, json};

use super::{JudgeHandle, ScoreInput, Spent};
use crate::domain::{Endpoint, ExternalScorer, LlmJudge, Metric, Target, Usage};
use crate::endpoint_client::openai::{first_content, usage};
use crate::endpoint_client::{PreparedTarget, ScorerAnswer, ScorerInput, TargetClient, rendering};
pub use endpoint::{DEFAULT_JUDGE_ID, default_endpoint, inline_endpoint};
use prompt::{instructions, render_prompt};
pub use verdict::Judgement;
use verdict::{parse_verdict, raw};

/// An endpoint made ready for one run to be called by metrics, shared by the run's metrics that
/// use it: a judge, an embedding endpoint, or an external scorer (with its call policy).
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

    /// Prepares an external scorer, its calls with `policy`'s call policy.
    pub fn prepare_scorer(
        targets: &TargetClient,
        scorer: &ExternalScorer,
        policy: &Endpoint,
    ) -> Result<Self, String> {
        let target = targets
            .prepare_scorer(scorer, policy)
            .map_err(|e| format!("scorer {:?} cannot be called: {e}", scorer.url))?;
        Ok(JudgeClient {
            name: scorer.url.clone(),
            target,
        })
    }

    /// The name shown in errors (an external scorer's: its URL).
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// What an external scorer answers for one answer.
    pub(crate) async fn score(&self, input: &ScorerInput<'_>) -> Result<ScorerAnswer, String> {
        self.target
            .score(input)
            .await
            .map_err(|e| format!("scorer {:?}: {e}", self.name))
    }

    /// One vector per text, from the endpoint's embeddings API, and what the call spent.
    pub(crate) async fn embed(&self, texts: &[&str]) -> Result<(Vec<Vec<f64>>, Spent), String> {
        let (vectors, usage) = self
            .target
            .embed(texts)
            .await
            .map_err(|e| format!("embedding endpoint {:?}: {e}", self.name))?;
        Ok((vectors, self.spent(usage)))
    }

    /// The chat completion of `body`, and what the call spent.
    async fn complete(&self, body: Map<String, Value>) -> Result<(Value, Spent), String> {
        let response = self
            .target
            .chat(body)
            .await
            .map_err(|e| format!("judge {:?}: {e}", self.name))?;
        let spent = self.spent(usage(&response));
        Ok((response, spent))
    }

    /// The tokens a call reported, at this endpoint's prices.
    fn spent(&self, usage: Option<Usage>) -> Spent {
        usage.map(|usage| (usage, self.target.cost(usage)))
    }
}

/// An LLM-judge metric made ready for a run: its settings and its judge, or why it has none.
#[derive(Debug)]
pub(super) struct JudgeCheck {
    settings: LlmJudge,
    client: JudgeHandle,
}

impl JudgeCheck {
    /// The check of a metric judged as `settings` say by `client` (`None`: no judge was
    /// prepared, and every score is an error).
    pub(super) fn new(settings: &LlmJudge, client: Option<JudgeHandle>) -> Self {
        JudgeCheck {
            settings: settings.clone(),
            client: client.unwrap_or_else(|| Err("no judge was prepared".into())),
        }
    }

    /// The judge's verdict on one answer of `metric`, and what the call spent.
    pub(super) async fn judge(
        &self,
        metric: &Metric,
        input: &ScoreInput<'_>,
    ) -> Result<(Judgement, Spent), String> {
        let client = self.client.as_ref().map_err(Clone::clone)?;
        let shown = JudgeInput {
            prompt: input.prompt,
            expected_response: input.expected_response,
            context: input.context,
            output: input.output,
        };
        judge(client, &self.settings, metric, &shown).await
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

/// Asks the judge to score one answer; also gives what the call spent.
pub async fn judge(
    client: &JudgeClient,
    judge: &LlmJudge,
    metric: &Metric,
    input: &JudgeInput<'_>,
) -> Result<(Judgement, Spent), String> {
    let user =
        rendering(|| render_prompt(&judge.evaluation_prompt, &judge.evaluation_steps, input))?;
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
    let (response, spent) = client.complete(body).await?;
    let content = first_content(&response).ok_or_else(|| {
        format!(
            "judge response has no choices[0].message.content; raw response: {}",
            raw(&response.to_string())
        )
    })?;
    Ok((parse_verdict(content, judge, metric)?, spent))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{MetricKind, ScoreType, ThresholdOperator};
    use crate::endpoint_client::test_server::{Answer, TestServer};
    use uuid::Uuid;

    /// An inline judge on `base_url` scoring from 1 to 5.
    pub(super) fn llm_judge(base_url: &str, api_key_env: Option<String>) -> LlmJudge {
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

    /// A metric judged by `judge`, with two categories of which "polite" passes.
    pub(super) fn metric(judge: &LlmJudge, score_type: ScoreType) -> Metric {
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

    /// A question about France, its expected answer and an answer to judge.
    pub(super) fn input<'a>(context: &'a [String]) -> JudgeInput<'a> {
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
        let var = format!("ASSAY_SECRET_JUDGE_KEY_{}", Uuid::new_v4().simple());
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
        let (verdict, _) = call.await.unwrap();
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
        let (verdict, _) = judge(&client, &settings, &categorical, &input(&CONTEXT))
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
        let (verdict, _) = judge(&client, &settings, &binary, &input(&CONTEXT))
            .await
            .unwrap();
        assert_eq!(
            (verdict.score, verdict.reason.as_str()),
            (Some(0.0), "Wrong city.")
        );
        let (verdict, _) = judge(&client, &settings, &binary, &input(&CONTEXT))
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

        let var = format!("ASSAY_SECRET_JUDGE_MISSING_{}", Uuid::new_v4().simple());
        let missing = llm_judge(&server.url, Some(var.clone()));
        let err = judge(&judge_client(&missing, &m), &missing, &m, &input(&CONTEXT))
            .await
            .unwrap_err();
        assert!(
            err.contains(&format!("environment variable {var:?} is not set")),
            "{err}"
        );
    }
}
