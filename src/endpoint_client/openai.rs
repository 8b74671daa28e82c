//! OpenAI-compatible chat-completions targets.

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue};
use reqwest::{Method, Url};
use serde_json::{Map, Value, json};

use super::TargetError;
use super::env::EnvTemplate;
use super::http::{Mapped, Request, parse_json, resolve_header};
use crate::domain::{OpenAiChatTarget, Test, Usage};

/// The chat-completions URL below an API base URL.
pub(crate) fn completions_url(base_url: &str) -> Result<Url, String> {
    api_url(base_url, "chat/completions")
}

/// The URL of `path` below an API base URL.
fn api_url(base_url: &str, path: &str) -> Result<Url, String> {
    let url = format!("{}/{path}", base_url.trim().trim_end_matches('/'));
    Url::parse(&url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or_else(|| format!("{base_url:?} is not an absolute http(s) URL"))
}

/// The `Authorization` header for an API key held in `api_key_env`, if one is named.
pub(crate) fn bearer(api_key_env: Option<&str>) -> Result<Option<EnvTemplate>, String> {
    match api_key_env.map(str::trim).filter(|name| !name.is_empty()) {
        None => Ok(None),
        Some(name) => EnvTemplate::parse(&format!("Bearer ${{env:{name}}}")).map(Some),
    }
}

/// The content of the first choice of a chat-completions response.
pub(crate) fn first_content(response: &Value) -> Option<&str> {
    response
        .get("choices")?
        .get(0)?
        .get("message")?
        .get("content")?
        .as_str()
}

/// The tokens an OpenAI-compatible response reports in `usage` (`prompt_tokens`,
/// `completion_tokens`; embeddings report only the first); `None` when it reports none.
pub(crate) fn usage(response: &Value) -> Option<Usage> {
    let usage = response.get("usage")?;
    let count = |key: &str| usage.get(key).and_then(Value::as_u64);
    let (input, output) = (count("prompt_tokens"), count("completion_tokens"));
    (input.is_some() || output.is_some()).then(|| Usage {
        input_tokens: input.unwrap_or(0),
        output_tokens: output.unwrap_or(0),
    })
}

/// The vectors of an embeddings response (`data[].embedding`), in the order of `data[].index`.
pub(crate) fn embeddings(response: &Value) -> Result<Vec<Vec<f64>>, String> {
    let data = response
        .get("data")
        .and_then(Value::as_array)
        .ok_or("the embeddings response has no data list")?;
    let mut vectors = Vec::with_capacity(data.len());
    for (position, item) in data.iter().enumerate() {
        let index = item
            .get("index")
            .and_then(Value::as_u64)
            .unwrap_or(position as u64);
        let vector = item
            .get("embedding")
            .and_then(Value::as_array)
            .and_then(|numbers| {
                numbers
                    .iter()
                    .map(Value::as_f64)
                    .collect::<Option<Vec<_>>>()
            })
            .ok_or_else(|| format!("data[{position}].embedding is not a list of numbers"))?;
        vectors.push((index, vector));
    }
    vectors.sort_by_key(|(index, _)| *index);
    Ok(vectors.into_iter().map(|(_, vector)| vector).collect())
}

/// An OpenAI chat target, parsed once per run.
pub(crate) struct PreparedOpenAi {
    url: Url,
    /// The embeddings URL below the same base URL.
    embeddings_url: Url,
    model: String,
    system_prompt: Option<String>,
    authorization: Option<EnvTemplate>,
    parameters: Map<String, Value>,
}

impl PreparedOpenAi {
    /// Parses the target's settings; errors name the field.
    pub fn prepare(
        chat: &OpenAiChatTarget,
        parameters: &Map<String, Value>,
    ) -> Result<Self, String> {
        let url =
            completions_url(&chat.base_url).map_err(|e| format!("openai_chat.base_url: {e}"))?;
        if chat.model.trim().is_empty() {
            return Err("openai_chat.model: is required".into());
        }
        let authorization = bearer(chat.api_key_env.as_deref())
            .map_err(|e| format!("openai_chat.api_key_env: {e}"))?;
        let embeddings_url = api_url(&chat.base_url, "embeddings")
            .map_err(|e| format!("openai_chat.base_url: {e}"))?;
        Ok(PreparedOpenAi {
            url,
            embeddings_url,
            model: chat.model.trim().to_string(),
            system_prompt: chat.system_prompt.clone().filter(|s| !s.is_empty()),
            authorization,
            parameters: parameters.clone(),
        })
    }

    /// Builds the request for one test: the run's parameters at top level, then model and
    /// messages (which the parameters cannot override).
    pub fn request(&self, test: &Test) -> Result<Request, TargetError> {
        let mut messages = Vec::with_capacity(2);
        if let Some(system) = &self.system_prompt {
            messages.push(json!({"role": "system", "content": system}));
        }
        messages.push(json!({"role": "user", "content": test.prompt}));
        let mut body = self.parameters.clone();
        body.insert("messages".into(), Value::Array(messages));
        self.post(body)
    }

    /// The request carrying `body` to the chat completions of this target's API, with its
    /// model (which `body` cannot override) and authorization.
    pub fn post(&self, body: Map<String, Value>) -> Result<Request, TargetError> {
        self.post_to(&self.url, body)
    }

    /// The request that embeds `texts` with this target's model, in one call.
    pub fn embed(&self, texts: &[&str]) -> Result<Request, TargetError> {
        let mut body = Map::new();
        body.insert("input".into(), json!(texts));
        self.post_to(&self.embeddings_url, body)
    }

    /// The request carrying `body` to `url` of this target's API, with its model and
    /// authorization.
    fn post_to(&self, url: &Url, mut body: Map<String, Value>) -> Result<Request, TargetError> {
        body.insert("model".into(), Value::String(self.model.clone()));
        let body = serde_json::to_vec(&body).map_err(|e| TargetError::Template {
            reason: e.to_string(),
        })?;
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(authorization) = &self.authorization {
            headers.insert(
                AUTHORIZATION,
                resolve_header("Authorization", authorization)?,
            );
        }
        Ok(Request {
            method: Method::POST,
            url: url.clone(),
            headers,
            body,
        })
    }

    /// Reads `choices[0].message.content`; metadata carries the model, finish reason and usage
    /// when the response has them.
    pub fn map(&self, body: &[u8]) -> Result<Mapped, TargetError> {
        let json = parse_json(body)?;
        let output = first_content(&json)
            .ok_or_else(|| TargetError::BadResponse {
                reason: "the chat completion has no choices[0].message.content".into(),
            })?
            .to_string();
        let mut metadata = Map::new();
        if let Some(model) = json.get("model") {
            metadata.insert("model".into(), model.clone());
        }
        if let Some(reason) = json.pointer("/choices/0/finish_reason") {
            metadata.insert("finish_reason".into(), reason.clone());
        }
        if let Some(usage) = json.get("usage") {
            metadata.insert("usage".into(), usage.clone());
        }
        Ok(Mapped {
            output,
            context: Vec::new(),
            metadata: (!metadata.is_empty()).then_some(Value::Object(metadata)),
            usage: usage(&json),
        })
    }
}
