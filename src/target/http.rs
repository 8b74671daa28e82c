//! Sending a request with timeout, retries and rate limit, and the generic HTTP target.

use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use reqwest::{Method, StatusCode, Url};
use serde_json_path::JsonPath;

use super::env::EnvTemplate;
use super::limiter::RateLimiter;
use super::template::{BodyTemplate, TemplateVars};
use super::{CallError, TargetError};
use crate::domain::{DEFAULT_OUTPUT_PATH, HttpTarget, Test, is_secret_header};

/// First delay between two attempts; it doubles after each retry.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Longest delay between two attempts, `Retry-After` included.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How much of an error body goes into a message.
const BODY_SNIPPET_CHARS: usize = 200;

/// One request, built once per call and sent once per attempt.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    /// HTTP method.
    pub method: Method,
    /// Where to.
    pub url: Url,
    /// Every header, secrets resolved.
    pub headers: HeaderMap,
    /// The serialized body.
    pub body: Vec<u8>,
}

/// How often and how long to try.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetryPolicy {
    /// Retries after a retryable failure.
    pub max_retries: u32,
    /// Time allowed to one attempt, reading the body included.
    pub timeout: Duration,
}

/// A successful (2xx) response.
#[derive(Debug)]
pub(crate) struct Reply {
    /// The response body.
    pub body: Vec<u8>,
    /// Duration of the successful attempt.
    pub latency: Duration,
    /// Attempts made, the successful one included.
    pub attempts: u32,
}

/// Why sending failed, after all attempts.
#[derive(Debug)]
pub(crate) struct SendFailure {
    /// The last attempt's failure.
    pub error: CallError,
    /// Attempts made.
    pub attempts: u32,
}

/// Sends `request` until it succeeds, fails for good, or the retries are used up. Connect
/// errors, other transport errors, timeouts, 429 and 5xx are retried with exponential backoff
/// (honouring `Retry-After` seconds, capped); every attempt waits for the rate limiter.
pub(crate) async fn send(
    client: &reqwest::Client,
    limiter: Option<&RateLimiter>,
    request: &Request,
    policy: RetryPolicy,
) -> Result<Reply, SendFailure> {
    let mut attempts = 0;
    let mut backoff = FIRST_BACKOFF;
    loop {
        if let Some(limiter) = limiter {
            limiter.acquire().await;
        }
        attempts += 1;
        let started = tokio::time::Instant::now();
        let outcome = tokio::time::timeout(policy.timeout, attempt(client, request)).await;
        let latency = started.elapsed();
        let (error, retry_after) = match outcome {
            Err(_) => (
                CallError::Timeout {
                    timeout_ms: u64::try_from(policy.timeout.as_millis()).unwrap_or(u64::MAX),
                },
                None,
            ),
            Ok(Err(error)) => (classify(&error), None),
            Ok(Ok((status, _, body))) if status.is_success() => {
                return Ok(Reply {
                    body,
                    latency,
                    attempts,
                });
            }
            Ok(Ok((status, retry_after, body))) => (
                CallError::Status {
                    status: status.as_u16(),
                    body: snippet(&body),
                },
                retry_after,
            ),
        };
        if !error.is_retryable() || attempts > policy.max_retries {
            return Err(SendFailure { error, attempts });
        }
        let delay = retry_after.unwrap_or(backoff).min(MAX_BACKOFF);
        tracing::debug!(url = %request.url, attempts, ?delay, %error, "retrying endpoint call");
        tokio::time::sleep(delay).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One attempt: status, `Retry-After` and the whole body.
async fn attempt(
    client: &reqwest::Client,
    request: &Request,
) -> Result<(StatusCode, Option<Duration>, Vec<u8>), reqwest::Error> {
    let response = client
        .request(request.method.clone(), request.url.clone())
        .headers(request.headers.clone())
        .body(request.body.clone())
        .send()
        .await?;
    let status = response.status();
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let body = response.bytes().await?;
    Ok((status, retry_after, body.to_vec()))
}

fn classify(error: &reqwest::Error) -> CallError {
    let message = error_chain(error);
    if error.is_connect() {
        CallError::Connect { message }
    } else {
        CallError::Transport { message }
    }
}

/// An error and its sources, joined, without repeating a source already in the text.
pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The first characters of a body, for error messages.
pub(crate) fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let mut out: String = text.chars().take(BODY_SNIPPET_CHARS).collect();
    if text.chars().nth(BODY_SNIPPET_CHARS).is_some() {
        out.push('…');
    }
    out
}

/// Parses a response body as JSON.
pub(crate) fn parse_json(body: &[u8]) -> Result<serde_json::Value, TargetError> {
    serde_json::from_slice(body).map_err(|e| {
        let start = snippet(body);
        TargetError::NotJson {
            reason: if start.is_empty() {
                format!("{e} (empty body)")
            } else {
                format!("{e}; body starts with: {start}")
            },
        }
    })
}

/// A header whose value may refer to environment variables.
struct HeaderSpec {
    name: HeaderName,
    /// The name as configured, for messages.
    display_name: String,
    value: EnvTemplate,
    /// The value itself when it refers to no variable.
    fixed: Option<HeaderValue>,
}

/// A JSONPath of the response mapping.
struct MappingPath {
    source: String,
    path: JsonPath,
}

impl MappingPath {
    fn parse(field: &str, source: &str) -> Result<Self, String> {
        let path = JsonPath::parse(source).map_err(|e| {
            format!("http.response_mapping.{field}: {source:?} is not a JSONPath: {e}")
        })?;
        Ok(MappingPath {
            source: source.to_string(),
            path,
        })
    }
}

/// A generic HTTP target, parsed once per run.
pub(crate) struct PreparedHttp {
    method: Method,
    url: Url,
    headers: Vec<HeaderSpec>,
    body: BodyTemplate,
    output: MappingPath,
    context: Option<MappingPath>,
    metadata: Option<MappingPath>,
}

/// What the response mapping took from a response.
pub(crate) struct Mapped {
    /// The answer.
    pub output: String,
    /// Context passages; empty when none.
    pub context: Vec<String>,
    /// Extra data.
    pub metadata: Option<serde_json::Value>,
}

impl PreparedHttp {
    /// Parses the target's settings; errors name the field.
    pub fn prepare(http: &HttpTarget) -> Result<Self, String> {
        let method = if http.method.trim().is_empty() {
            Method::POST
        } else {
            Method::from_bytes(http.method.trim().to_ascii_uppercase().as_bytes())
                .map_err(|_| format!("http.method: {:?} is not an HTTP method", http.method))?
        };
        let url = Url::parse(&http.url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| format!("http.url: {:?} is not an absolute http(s) URL", http.url))?;
        let mut headers = Vec::new();
        let mut has_content_type = false;
        for (name, value) in &http.headers {
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("http.headers: {name:?} is not a valid header name"))?;
            has_content_type |= header == CONTENT_TYPE;
            let template =
                EnvTemplate::parse(value).map_err(|e| format!("http.headers.{name}: {e}"))?;
            let fixed = if template.is_literal() {
                let mut fixed = HeaderValue::from_str(value).map_err(|_| {
                    format!("http.headers.{name}: the value is not a valid header value")
                })?;
                fixed.set_sensitive(is_secret_header(name));
                Some(fixed)
            } else {
                None
            };
            headers.push(HeaderSpec {
                name: header,
                display_name: name.clone(),
                value: template,
                fixed,
            });
        }
        if !has_content_type {
            headers.push(HeaderSpec {
                name: CONTENT_TYPE,
                display_name: "Content-Type".into(),
                value: EnvTemplate::parse("application/json")?,
                fixed: Some(HeaderValue::from_static("application/json")),
            });
        }
        let body = BodyTemplate::parse(&http.body_template)
            .map_err(|e| format!("http.body_template: {e}"))?;
        let mapping = &http.response_mapping;
        let output_path = if mapping.output.trim().is_empty() {
            DEFAULT_OUTPUT_PATH
        } else {
            mapping.output.trim()
        };
        let optional = |field: &str, path: &Option<String>| {
            path.as_deref()
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(|p| MappingPath::parse(field, p))
                .transpose()
        };
        Ok(PreparedHttp {
            method,
            url,
            headers,
            body,
            output: MappingPath::parse("output", output_path)?,
            context: optional("context", &mapping.context)?,
            metadata: optional("metadata", &mapping.metadata)?,
        })
    }

    /// Builds the request for one test: renders the body, resolves the headers' variables.
    pub fn request(
        &self,
        test: &Test,
        parameters: &minijinja::Value,
    ) -> Result<Request, TargetError> {
        let body = self
            .body
            .render(&TemplateVars {
                prompt: &test.prompt,
                expected_response: test.expected_response.as_deref().unwrap_or(""),
                category: &test.category,
                topic: &test.topic,
                metadata: &test.metadata,
                parameters,
            })
            .map_err(|reason| TargetError::Template { reason })?;
        let body = serde_json::to_vec(&body).map_err(|e| TargetError::Template {
            reason: e.to_string(),
        })?;
        let mut headers = HeaderMap::with_capacity(self.headers.len());
        for spec in &self.headers {
            let value = match &spec.fixed {
                Some(fixed) => fixed.clone(),
                None => resolve_header(&spec.display_name, &spec.value)?,
            };
            headers.append(spec.name.clone(), value);
        }
        Ok(Request {
            method: self.method.clone(),
            url: self.url.clone(),
            headers,
            body,
        })
    }

    /// Takes output, context and metadata from a response body.
    pub fn map(&self, body: &[u8]) -> Result<Mapped, TargetError> {
        let json = parse_json(body)?;
        let output = match self.output.path.query(&json).first() {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => {
                return Err(TargetError::NoMatch {
                    field: "output",
                    path: self.output.source.clone(),
                });
            }
        };
        let context = match &self.context {
            None => Vec::new(),
            Some(mapping) => {
                let nodes = mapping.path.query(&json).all();
                match nodes.as_slice() {
                    [] | [serde_json::Value::Null] => Vec::new(),
                    [serde_json::Value::Array(items)] => items.iter().map(to_text).collect(),
                    many => many.iter().map(|v| to_text(v)).collect(),
                }
            }
        };
        let metadata = self
            .metadata
            .as_ref()
            .and_then(|mapping| mapping.path.query(&json).first().cloned());
        Ok(Mapped {
            output,
            context,
            metadata,
        })
    }
}

/// A header value with its environment variables resolved; marked sensitive when secret.
pub(crate) fn resolve_header(
    name: &str,
    template: &EnvTemplate,
) -> Result<HeaderValue, TargetError> {
    let text = template
        .resolve()
        .map_err(|missing| TargetError::MissingEnv {
            header: name.to_string(),
            variable: missing.0,
        })?;
    let mut value = HeaderValue::from_str(&text).map_err(|_| TargetError::InvalidHeader {
        header: name.to_string(),
    })?;
    if is_secret_header(name) || !template.is_literal() {
        value.set_sensitive(true);
    }
    Ok(value)
}

fn to_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
