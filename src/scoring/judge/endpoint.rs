//! Building judge endpoints: the server's default judge and a metric's inline judge as in-memory
//! endpoints of the `openai_chat` kind, called like any endpoint.

use uuid::Uuid;

use crate::domain::{CallPolicy, Endpoint, LlmJudge, Metric, OpenAiChatTarget, Pricing, Target};

/// Id of the server's default judge endpoint (it lives in memory, never in the store).
pub const DEFAULT_JUDGE_ID: Uuid = Uuid::from_u128(0x00000000_0000_4000_8000_00000000a55a);
/// Retries of a call to an inline or default judge after a retryable failure (429, 5xx,
/// connection errors, timeouts). A judge endpoint uses its own `max_retries`.
const JUDGE_RETRIES: u32 = 2;

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

/// An in-memory `openai_chat` endpoint with the judges' retries and no rate limit.
fn judge_endpoint(id: Uuid, name: &str, chat: OpenAiChatTarget, max_concurrency: u32) -> Endpoint {
    let now = chrono::Utc::now();
    Endpoint {
        id,
        name: name.to_string(),
        description: String::new(),
        target: Target::OpenAiChat(chat),
        max_concurrency,
        max_retries: Some(JUDGE_RETRIES),
        rate_limit_per_second: 0.0,
        call_policy: CallPolicy::default(),
        pricing: Pricing::default(),
        created_at: now,
        updated_at: now,
    }
}
