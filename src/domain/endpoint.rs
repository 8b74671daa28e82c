use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::metric::validate_name;
use super::{Pricing, Timestamp};
use crate::error::{Error, Result};

/// What read RPCs show instead of a secret header value.
pub const SECRET_MASK: &str = "********";

/// The syntax of HTTP body templates, checked by [`Endpoint::validate`]. A trait so that the
/// domain does not depend on the template engine, which lives with the code that renders bodies.
pub trait TemplateSyntax {
    /// `Err` says why `template` is not a valid body template.
    fn check_body_template(&self, template: &str) -> Result<(), String>;
}

/// An endpoint under test and how to call it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    /// UUID.
    pub id: Uuid,
    /// Unique name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// How it is called.
    pub target: Target,
    /// Most calls in flight for one run (0: server default) and to this endpoint from every run
    /// of the process together (0: no shared limit).
    pub max_concurrency: u32,
    /// Retries after a retryable failure; `None` (not set): [`Retries::DEFAULT`]. Endpoints
    /// stored before it was optional read their 0 as set: they keep not retrying.
    #[serde(default)]
    pub max_retries: Option<u32>,
    /// Most calls per second from every run of the process; 0: unlimited. The same limit as
    /// `call_policy.requests_per_minute / 60`: at most one of them is set.
    pub rate_limit_per_second: f64,
    /// Backoff, retry budget, requests per minute and adaptive concurrency. Endpoints stored
    /// before it existed read with the defaults.
    #[serde(default)]
    pub call_policy: CallPolicy,
    /// Prices of its tokens (free by default).
    #[serde(default)]
    pub pricing: Pricing,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}

/// How an endpoint is called beyond one attempt; see `CallPolicy` in `endpoint.proto`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallPolicy {
    /// Backoff before the first retry; doubles per retry, with full jitter.
    pub backoff_base_ms: u32,
    /// Longest backoff.
    pub backoff_max_ms: u32,
    /// Longest wait a `Retry-After` header may ask for.
    pub max_retry_wait_ms: u32,
    /// Wall time per test from its first attempt after which no retry starts.
    pub retry_budget_ms: u32,
    /// Most calls per minute from every run of the process; 0: unlimited.
    pub requests_per_minute: u32,
    /// Halve the calls in flight on HTTP 429, grow by one per success.
    pub adaptive_concurrency: bool,
}

impl Default for CallPolicy {
    fn default() -> Self {
        CallPolicy {
            backoff_base_ms: 250,
            backoff_max_ms: 10_000,
            max_retry_wait_ms: 30_000,
            retry_budget_ms: 120_000,
            requests_per_minute: 0,
            adaptive_concurrency: false,
        }
    }
}

impl CallPolicy {
    /// The policy with every duration that is 0 (unset in proto3) replaced by its default.
    pub fn with_defaults(self) -> Self {
        let default = CallPolicy::default();
        let or = |value: u32, default: u32| if value == 0 { default } else { value };
        CallPolicy {
            backoff_base_ms: or(self.backoff_base_ms, default.backoff_base_ms),
            backoff_max_ms: or(self.backoff_max_ms, default.backoff_max_ms),
            max_retry_wait_ms: or(self.max_retry_wait_ms, default.max_retry_wait_ms),
            retry_budget_ms: or(self.retry_budget_ms, default.retry_budget_ms),
            ..self
        }
    }
}

/// Which failed attempts of an endpoint are tried again, and how often.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retries {
    /// Only failures that providers do not bill (connection errors, HTTP 429, 500, 502, 503,
    /// 504): the default of an endpoint that sets no `max_retries`.
    Unbilled(u32),
    /// Every retryable failure (also timeouts, HTTP 408 and other 5xx): `max_retries` set.
    Retryable(u32),
}

impl Retries {
    /// The retries of an endpoint that sets none, as the OpenAI SDK retries.
    pub const DEFAULT: Retries = Retries::Unbilled(2);

    /// The retries `max_retries` asks for.
    pub fn of(max_retries: Option<u32>) -> Retries {
        max_retries.map_or(Retries::DEFAULT, Retries::Retryable)
    }
}

/// The kinds of target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Target {
    /// A generic HTTP API.
    Http(HttpTarget),
    /// An OpenAI-compatible chat-completions API.
    OpenAiChat(OpenAiChatTarget),
}

/// A generic HTTP target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HttpTarget {
    /// Absolute URL.
    pub url: String,
    /// HTTP method, upper case.
    pub method: String,
    /// Headers; values may be `${env:NAME}`, resolved at call time.
    pub headers: BTreeMap<String, String>,
    /// JSON document whose strings are minijinja templates.
    pub body_template: String,
    /// Where the answer is in the response.
    pub response_mapping: ResponseMapping,
    /// Timeout of one call.
    pub timeout_ms: u32,
}

/// JSONPath expressions into the response.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ResponseMapping {
    /// Path of the answer.
    pub output: String,
    /// Path of the context.
    pub context: Option<String>,
    /// Path of extra data.
    pub metadata: Option<String>,
    /// Path of the input tokens of the call.
    #[serde(default)]
    pub input_tokens: Option<String>,
    /// Path of the output tokens of the call.
    #[serde(default)]
    pub output_tokens: Option<String>,
}

/// An OpenAI-compatible chat target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpenAiChatTarget {
    /// Base URL including the version path.
    pub base_url: String,
    /// Model name.
    pub model: String,
    /// System message.
    pub system_prompt: Option<String>,
    /// Environment variable with the API key.
    pub api_key_env: Option<String>,
    /// Timeout of one call.
    pub timeout_ms: u32,
}

impl Target {
    /// The target with its unset settings at their defaults.
    pub fn with_defaults(self) -> Self {
        match self {
            Target::Http(http) => Target::Http(http.with_defaults()),
            Target::OpenAiChat(chat) => Target::OpenAiChat(chat.with_defaults()),
        }
    }
}

impl HttpTarget {
    /// The target with blank settings at their defaults: method `POST` (and upper case),
    /// [`DEFAULT_BODY_TEMPLATE`], [`DEFAULT_OUTPUT_PATH`], [`DEFAULT_HTTP_TIMEOUT_MS`].
    pub fn with_defaults(self) -> Self {
        HttpTarget {
            method: or_default(self.method.to_ascii_uppercase(), "POST"),
            body_template: or_default(self.body_template, DEFAULT_BODY_TEMPLATE),
            response_mapping: ResponseMapping {
                output: or_default(self.response_mapping.output, DEFAULT_OUTPUT_PATH),
                ..self.response_mapping
            },
            timeout_ms: nonzero_or(self.timeout_ms, DEFAULT_HTTP_TIMEOUT_MS),
            ..self
        }
    }
}

impl OpenAiChatTarget {
    /// The target with an unset timeout at [`DEFAULT_CHAT_TIMEOUT_MS`].
    pub fn with_defaults(self) -> Self {
        OpenAiChatTarget {
            timeout_ms: nonzero_or(self.timeout_ms, DEFAULT_CHAT_TIMEOUT_MS),
            ..self
        }
    }
}

/// A text setting, or `default` when it is blank.
fn or_default(value: String, default: &str) -> String {
    if value.trim().is_empty() {
        default.to_string()
    } else {
        value
    }
}

/// A number setting, or `default` when it is 0 (unset).
fn nonzero_or(value: u32, default: u32) -> u32 {
    if value == 0 { default } else { value }
}

/// Lowest rate limit of an endpoint: one call a minute, as `requests_per_minute: 1`. A lower one
/// would hold a run for hours per test.
pub const MIN_RATE_PER_SECOND: f64 = 1.0 / 60.0;
/// Shortest timeout of one call: below, no endpoint could answer.
pub const MIN_TIMEOUT_MS: u32 = 10;

/// Timeout of one call to an HTTP target that sets none.
pub const DEFAULT_HTTP_TIMEOUT_MS: u32 = 30_000;
/// Timeout of one call to an OpenAI-compatible chat target that sets none.
pub const DEFAULT_CHAT_TIMEOUT_MS: u32 = 60_000;
/// Default body of an HTTP target without a template.
pub const DEFAULT_BODY_TEMPLATE: &str = r#"{"prompt": "{{ prompt }}"}"#;
/// Default output path of an HTTP target.
pub const DEFAULT_OUTPUT_PATH: &str = "$.output";

/// Whether a header's value is a secret: Authorization-like names, or names that speak of a key,
/// token, secret, password or cookie.
pub fn is_secret_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name == "authorization"
        || name == "proxy-authorization"
        || ["key", "token", "secret", "password", "cookie"]
            .iter()
            .any(|word| name.contains(word))
}

/// Whether a header value hides its secret in the environment: `${env:NAME}`, possibly after an
/// auth scheme word (`Bearer ${env:NAME}`). Such a value is no secret itself.
fn is_env_reference(value: &str) -> bool {
    let mut rest = String::new();
    let mut found = false;
    let mut tail = value;
    while let Some(start) = tail.find("${env:") {
        let Some(len) = tail[start..].find('}') else {
            break;
        };
        rest.push_str(&tail[..start]);
        tail = &tail[start + len + 1..];
        found = true;
    }
    rest.push_str(tail);
    let scheme = rest.trim().to_ascii_lowercase();
    found && ["", "bearer", "basic", "token"].contains(&scheme.as_str())
}

impl Endpoint {
    /// The endpoint as read RPCs show it: secret header values masked.
    pub fn masked(mut self) -> Self {
        if let Target::Http(http) = &mut self.target {
            for (name, value) in http.headers.iter_mut() {
                if is_secret_header(name) && !is_env_reference(value) {
                    *value = SECRET_MASK.to_string();
                }
            }
        }
        self
    }

    /// Keeps the stored secret for every header whose new value is the mask sent back unchanged
    /// (header names compare without case, as in HTTP). A mask with no stored value behind it is
    /// an error: it would otherwise become the secret. So is a mask when the URL moves to another
    /// origin (scheme, host, port): a stored secret is only ever sent where it was stored, so
    /// whoever moves the endpoint must know the secret.
    pub fn keep_masked_secrets(&mut self, stored: &Endpoint) -> Result<()> {
        let Target::Http(new) = &mut self.target else {
            return Ok(());
        };
        let old = match &stored.target {
            Target::Http(old) => Some(old),
            Target::OpenAiChat(_) => None,
        };
        for (name, value) in new.headers.iter_mut() {
            if value != SECRET_MASK {
                continue;
            }
            let previous = old.and_then(|old| {
                old.headers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v)
            });
            let (Some(old), Some(previous)) = (old, previous) else {
                return Err(Error::invalid(
                    "endpoint.http.headers",
                    format!(
                        "{name:?} is the mask {SECRET_MASK:?} but no value is stored for it; send the real value"
                    ),
                ));
            };
            let (from, to) = (origin(&old.url), origin(&new.url));
            if from != to {
                return Err(Error::invalid(
                    "endpoint.http.headers",
                    format!(
                        "{name:?} is the mask {SECRET_MASK:?} but http.url moves from {from} to {to}: \
                         a stored secret is only sent to the origin it was stored with, so send the \
                         real value again"
                    ),
                ));
            }
            value.clone_from(previous);
        }
        Ok(())
    }

    /// Checks the endpoint's settings; field names are paths below `prefix`. `templates` checks
    /// an HTTP target's body template.
    pub fn validate(&self, prefix: &str, templates: &impl TemplateSyntax) -> Result<()> {
        let field = |name: &str| format!("{prefix}.{name}");
        validate_name(&self.name, &field("name"))?;
        if !(self.rate_limit_per_second >= 0.0 && self.rate_limit_per_second.is_finite()) {
            return Err(Error::invalid(
                field("rate_limit_per_second"),
                format!(
                    "must be a finite number >= 0, got {}",
                    self.rate_limit_per_second
                ),
            ));
        }
        if self.rate_limit_per_second > 0.0 && self.rate_limit_per_second < MIN_RATE_PER_SECOND {
            return Err(Error::invalid(
                field("rate_limit_per_second"),
                format!(
                    "{} is below the minimum of {MIN_RATE_PER_SECOND:.4} (one call a minute); 0 \
                     means no limit",
                    self.rate_limit_per_second
                ),
            ));
        }
        if self.rate_limit_per_second > 0.0 && self.call_policy.requests_per_minute > 0 {
            return Err(Error::invalid(
                field("call_policy.requests_per_minute"),
                format!(
                    "{} conflicts with rate_limit_per_second {}: they are one limit, set only one",
                    self.call_policy.requests_per_minute, self.rate_limit_per_second
                ),
            ));
        }
        self.pricing.validate(&field("pricing"))?;
        let policy = &self.call_policy;
        if policy.backoff_max_ms < policy.backoff_base_ms {
            return Err(Error::invalid(
                field("call_policy.backoff_max_ms"),
                format!(
                    "{} is below backoff_base_ms {}",
                    policy.backoff_max_ms, policy.backoff_base_ms
                ),
            ));
        }
        let (timeout_ms, timeout_field) = match &self.target {
            Target::Http(http) => (http.timeout_ms, "http.timeout_ms"),
            Target::OpenAiChat(chat) => (chat.timeout_ms, "openai_chat.timeout_ms"),
        };
        if timeout_ms != 0 && timeout_ms < MIN_TIMEOUT_MS {
            return Err(Error::invalid(
                field(timeout_field),
                format!(
                    "{timeout_ms} ms is below the minimum of {MIN_TIMEOUT_MS} ms; 0 takes the default"
                ),
            ));
        }
        match &self.target {
            Target::Http(http) => {
                validate_url(&http.url, &field("http.url"))?;
                if http::Method::from_bytes(http.method.as_bytes()).is_err() {
                    return Err(Error::invalid(
                        field("http.method"),
                        format!("{:?} is not an HTTP method", http.method),
                    ));
                }
                for (name, value) in &http.headers {
                    if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                        return Err(Error::invalid(
                            field("http.headers"),
                            format!("{name:?} is not a valid header name"),
                        ));
                    }
                    // Checked now rather than failing every call of a run later.
                    if http::HeaderValue::from_str(value).is_err() {
                        return Err(Error::invalid(
                            field("http.headers"),
                            format!(
                                "the value of {name:?} is not a valid header value (control characters?)"
                            ),
                        ));
                    }
                }
                templates
                    .check_body_template(&http.body_template)
                    .map_err(|reason| Error::invalid(field("http.body_template"), reason))?;
                let mapping = &http.response_mapping;
                for (name, path) in [
                    ("output", Some(&mapping.output)),
                    ("context", mapping.context.as_ref()),
                    ("metadata", mapping.metadata.as_ref()),
                    ("input_tokens", mapping.input_tokens.as_ref()),
                    ("output_tokens", mapping.output_tokens.as_ref()),
                ] {
                    if let Some(path) = path
                        && let Err(e) = serde_json_path::JsonPath::parse(path)
                    {
                        return Err(Error::invalid(
                            field(&format!("http.response_mapping.{name}")),
                            format!("{path:?} is not a JSONPath: {e}"),
                        ));
                    }
                }
                Ok(())
            }
            Target::OpenAiChat(chat) => {
                validate_url(&chat.base_url, &field("openai_chat.base_url"))?;
                if chat.model.trim().is_empty() {
                    return Err(Error::invalid(field("openai_chat.model"), "is required"));
                }
                Ok(())
            }
        }
    }
}

/// The origin (scheme, host, port) of a URL, as text; an unparsable URL is its own origin.
fn origin(url: &str) -> String {
    url::Url::parse(url).map_or_else(|_| url.to_string(), |u| u.origin().ascii_serialization())
}

fn validate_url(url: &str, field: &str) -> Result<()> {
    match url::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(()),
        _ => Err(Error::invalid(
            field,
            format!("{url:?} is not an absolute http(s) URL"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_headers_are_recognised_by_name() {
        for name in [
            "Authorization",
            "x-api-key",
            "X-Auth-Token",
            "client_secret",
            "Cookie",
        ] {
            assert!(is_secret_header(name), "{name}");
        }
        for name in ["Content-Type", "Accept", "X-Request-Id"] {
            assert!(!is_secret_header(name), "{name}");
        }
    }

    #[test]
    fn env_references_are_not_secrets() {
        assert!(is_env_reference("${env:OPENAI_KEY}"));
        assert!(is_env_reference("Bearer ${env:OPENAI_KEY}"));
        assert!(!is_env_reference("sk-live-123 ${env:OPENAI_KEY}"));
        assert!(!is_env_reference("sk-live-123"));
    }

    fn http_endpoint(headers: &[(&str, &str)]) -> Endpoint {
        Endpoint {
            id: Uuid::now_v7(),
            name: "e".into(),
            description: String::new(),
            target: Target::Http(HttpTarget {
                url: "http://127.0.0.1:1/".into(),
                method: "POST".into(),
                headers: headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                body_template: DEFAULT_BODY_TEMPLATE.into(),
                response_mapping: ResponseMapping {
                    output: DEFAULT_OUTPUT_PATH.into(),
                    context: None,
                    metadata: None,
                    input_tokens: None,
                    output_tokens: None,
                },
                timeout_ms: 1000,
            }),
            max_concurrency: 0,
            max_retries: None,
            rate_limit_per_second: 0.0,
            call_policy: CallPolicy::default(),
            pricing: Pricing::default(),
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn a_mask_sent_back_keeps_the_secret_whatever_the_header_case() {
        let stored = http_endpoint(&[("Authorization", "Bearer sk-1")]);
        let mut update = http_endpoint(&[("authorization", SECRET_MASK)]);
        update.keep_masked_secrets(&stored).unwrap();
        let Target::Http(http) = &update.target else {
            unreachable!()
        };
        assert_eq!(http.headers["authorization"], "Bearer sk-1");
    }

    #[test]
    fn a_mask_without_a_stored_value_is_rejected() {
        let stored = http_endpoint(&[]);
        let mut update = http_endpoint(&[("X-Api-Key", SECRET_MASK)]);
        let err = update.keep_masked_secrets(&stored).unwrap_err().to_string();
        assert!(err.contains("X-Api-Key"), "{err}");
    }

    #[test]
    fn a_mask_is_refused_when_the_url_moves_to_another_origin() {
        let stored = http_endpoint(&[("X-Api-Key", "sk-1")]);
        let mut update = http_endpoint(&[("X-Api-Key", SECRET_MASK)]);
        let Target::Http(http) = &mut update.target else {
            unreachable!()
        };
        http.url = "https://attacker.example/collect".into();
        let err = update.keep_masked_secrets(&stored).unwrap_err().to_string();
        assert!(
            err.contains("attacker.example") && err.contains("X-Api-Key"),
            "{err}"
        );
        assert!(!err.contains("sk-1"), "{err}");
    }

    /// Accepts every template: these tests are about other settings.
    struct AnyTemplate;

    impl TemplateSyntax for AnyTemplate {
        fn check_body_template(&self, _template: &str) -> Result<(), String> {
            Ok(())
        }
    }

    #[test]
    fn header_values_with_control_characters_are_rejected() {
        let endpoint = http_endpoint(&[("Authorization", "Bearer s3cr3t\n")]);
        let err = endpoint
            .validate("endpoint", &AnyTemplate)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("endpoint.http.headers") && err.contains("Authorization"),
            "{err}"
        );
    }
}
