//! Sending a request through the endpoint's gate with timeout and retries, and the generic HTTP
//! target.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, LOCATION, RETRY_AFTER};
use reqwest::{Method, StatusCode, Url};
use serde_json_path::JsonPath;
use tracing::Instrument;

use super::env::EnvTemplate;
use super::gate::Gate;
use super::outbound::{OutboundPolicy, refused_by_policy};
use super::template::{BodyTemplate, TemplateVars};
use super::{CallError, Observed, TargetError};
use crate::domain::{
    CallPolicy, DEFAULT_OUTPUT_PATH, HttpTarget, Retries, Test, Usage, is_secret_header,
};
use crate::telemetry::propagation;

/// How much of an error body goes into a message.
const BODY_SNIPPET_CHARS: usize = 500;

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

/// What every call must respect, whichever endpoint: the body limit and the outbound policy.
#[derive(Clone, Debug)]
pub(crate) struct Guard {
    /// Largest response body read, in bytes.
    pub max_body: u64,
    /// The addresses calls may reach.
    pub outbound: Arc<OutboundPolicy>,
}

/// How often and how long to try.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetryPolicy {
    /// Which failures are retried, and how often.
    pub retries: Retries,
    /// Time allowed to one attempt, reading the body included.
    pub timeout: Duration,
    /// Backoff cap before the first retry; doubles per retry.
    pub backoff_base: Duration,
    /// Largest backoff cap.
    pub backoff_max: Duration,
    /// Longest wait a `Retry-After` header may ask for.
    pub max_retry_wait: Duration,
    /// No retry starts later than this after the first attempt started.
    pub budget: Duration,
}

impl RetryPolicy {
    /// The policy of an endpoint with `retries` and a `timeout` per attempt.
    pub fn new(retries: Retries, timeout: Duration, policy: CallPolicy) -> Self {
        let policy = policy.with_defaults();
        let ms = |v: u32| Duration::from_millis(u64::from(v));
        RetryPolicy {
            retries,
            timeout,
            backoff_base: ms(policy.backoff_base_ms),
            backoff_max: ms(policy.backoff_max_ms.max(policy.backoff_base_ms)),
            max_retry_wait: ms(policy.max_retry_wait_ms),
            budget: ms(policy.retry_budget_ms),
        }
    }

    /// Whether `error` after `attempts` attempts is tried again (the retry budget aside).
    fn retries_after(&self, error: &CallError, attempts: u32) -> bool {
        let (retryable, max) = match self.retries {
            Retries::Unbilled(max) => (error.is_unbilled(), max),
            Retries::Retryable(max) => (error.is_retryable(), max),
        };
        retryable && attempts <= max
    }

    /// The most the backoff before retry number `retry` (1-based) may be:
    /// `min(backoff_max, backoff_base * 2^(retry-1))`.
    fn backoff_cap(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.saturating_sub(1));
        self.backoff_base
            .saturating_mul(factor)
            .min(self.backoff_max)
    }

    /// The wait before retry number `retry`: `Retry-After` when the endpoint sent one (capped),
    /// else a uniformly random time up to the backoff cap ("full jitter", so that many tests
    /// failing together do not retry together).
    fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        match retry_after {
            Some(wait) => wait.min(self.max_retry_wait),
            None => {
                let cap = u64::try_from(self.backoff_cap(retry).as_millis()).unwrap_or(u64::MAX);
                Duration::from_millis(fastrand::u64(0..=cap))
            }
        }
    }
}

/// A successful (2xx) response: its body, or what a gRPC call answered.
#[derive(Debug)]
pub(crate) struct Reply<T = Vec<u8>> {
    /// The response body.
    pub body: T,
    /// Duration of the successful attempt.
    pub latency: Duration,
    /// Attempts made, the successful one included.
    pub attempts: u32,
    /// Why the last failed attempt failed, when one did.
    pub last_error: Option<CallError>,
}

/// Why sending failed, after all attempts.
#[derive(Debug)]
pub(crate) struct SendFailure {
    /// The last attempt's failure.
    pub error: CallError,
    /// Attempts made.
    pub attempts: u32,
}

/// Sends `request` until it succeeds, fails for good, the retries are used up, or the next retry
/// would start after the retry budget (see [`retrying`]). A body larger than the guard's limit,
/// or an address its policy refuses, fails the call for good.
pub(crate) async fn send(
    client: &reqwest::Client,
    gate: &Gate,
    request: &Request,
    policy: RetryPolicy,
    guard: &Guard,
    observed: &Observed,
) -> Result<Reply, SendFailure> {
    retrying(gate, request, policy, observed, |headers| async move {
        let (status, retry_after, body) = attempt(client, request, headers, guard)
            .await
            .map_err(|error| (error, None))?;
        if status.is_success() {
            return Ok((status.as_u16(), body));
        }
        let error = CallError::Status {
            status: status.as_u16(),
            body: snippet(&body),
        };
        Err((error, retry_after))
    })
    .await
}

/// What one attempt gave: its status and answer, or why it failed and the wait the server asked
/// for before the next one.
pub(crate) type Attempted<T> = Result<(u16, T), (CallError, Option<Duration>)>;

/// Makes attempts (`attempt`, given the request's headers with the trace context) until one
/// succeeds, fails for good, the retries are used up, or the next retry would start after the
/// retry budget: the one retry loop of every call, HTTP or gRPC. Failures the policy's
/// [`Retries`] name are retried after a backoff with full jitter, or after the `Retry-After` the
/// server asked for (capped). Every attempt passes the endpoint's gate and its timeout, and tells
/// the gate about throttling and successes; a backoff holds no place in the gate. `request`
/// names the call in spans and logs.
pub(crate) async fn retrying<T, F, Fut>(
    gate: &Gate,
    request: &Request,
    policy: RetryPolicy,
    observed: &Observed,
    mut attempt: F,
) -> Result<Reply<T>, SendFailure>
where
    F: FnMut(HeaderMap) -> Fut,
    Fut: Future<Output = Attempted<T>>,
{
    let mut attempts = 0;
    let mut last_error = None;
    let mut first_started = None;
    loop {
        let pass = gate.enter().await;
        attempts += 1;
        let span = observed.span(request, attempts);
        let mut headers = request.headers.clone();
        propagation::inject(&span, &mut headers);
        let started = tokio::time::Instant::now();
        let first_started = *first_started.get_or_insert(started);
        let outcome = tokio::time::timeout(policy.timeout, attempt(headers))
            .instrument(span.clone())
            .await;
        let latency = started.elapsed();
        let (error, retry_after) = match outcome {
            Err(_) => (
                CallError::Timeout {
                    timeout_ms: u64::try_from(policy.timeout.as_millis()).unwrap_or(u64::MAX),
                },
                None,
            ),
            Ok(Err(failed)) => failed,
            Ok(Ok((status, body))) => {
                observed.attempted(&span, Ok(status), latency);
                pass.succeeded();
                return Ok(Reply {
                    body,
                    latency,
                    attempts,
                    last_error,
                });
            }
        };
        observed.attempted(&span, Err(&error), latency);
        if error.is_throttled() {
            pass.throttled();
        } else {
            drop(pass);
        }
        if !policy.retries_after(&error, attempts) {
            return Err(SendFailure { error, attempts });
        }
        let delay = policy.delay(attempts, retry_after);
        if first_started.elapsed() + delay > policy.budget {
            tracing::debug!(url = %request.url, attempts, %error, "retry budget spent");
            return Err(SendFailure { error, attempts });
        }
        tracing::debug!(url = %request.url, attempts, ?delay, %error, "retrying endpoint call");
        observed.retrying();
        tokio::time::sleep(delay).await;
        last_error = Some(error);
    }
}

/// The wait a `Retry-After` value asks for: delay-seconds, or an HTTP date (a date in the past
/// asks for no wait). `None` when it is neither.
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Most redirects followed in one attempt.
const MAX_REDIRECTS: usize = 10;

/// One attempt with `headers` (the request's, and its trace context): status, `Retry-After` and
/// the whole body (at most the guard's limit).
///
/// Redirects are followed here rather than by reqwest, so that a redirect to another origin
/// (scheme, host, port) drops every configured header, not only `Authorization` (an endpoint
/// must not be able to forward its caller's secrets elsewhere), and so that every hop to an
/// address is checked against the outbound policy (names are checked when resolved).
async fn attempt(
    client: &reqwest::Client,
    request: &Request,
    mut headers: HeaderMap,
    guard: &Guard,
) -> Result<(StatusCode, Option<Duration>, Vec<u8>), CallError> {
    let (mut method, mut url) = (request.method.clone(), request.url.clone());
    let mut body = request.body.clone();
    for _ in 0..=MAX_REDIRECTS {
        guard
            .outbound
            .check_url(&url)
            .map_err(|message| CallError::Blocked { message })?;
        let response = client
            .request(method.clone(), url.clone())
            .headers(headers.clone())
            .body(body.clone())
            .send()
            .await
            .map_err(|e| classify(&e))?;
        let status = response.status();
        let location = response
            .headers()
            .get(LOCATION)
            .filter(|_| status.is_redirection());
        let Some(location) = location else {
            let retry_after = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, SystemTime::now()));
            let body = read_capped(response, guard.max_body).await?;
            return Ok((status, retry_after, body));
        };
        let next = location
            .to_str()
            .ok()
            .and_then(|location| url.join(location).ok())
            .filter(|next| matches!(next.scheme(), "http" | "https"))
            .ok_or_else(|| CallError::Transport {
                message: format!("HTTP {status} redirects to an invalid location"),
            })?;
        if next.origin() != url.origin() {
            let content_type = headers.remove(CONTENT_TYPE);
            headers.clear();
            headers.extend(content_type.map(|value| (CONTENT_TYPE, value)));
        }
        // As browsers and reqwest do: 303, and 301/302 of a POST, go on as a GET without body.
        if status == StatusCode::SEE_OTHER
            || (matches!(status.as_u16(), 301 | 302) && method == Method::POST)
        {
            method = Method::GET;
            body = Vec::new();
            headers.remove(CONTENT_TYPE);
        }
        url = next;
    }
    Err(CallError::Transport {
        message: format!("more than {MAX_REDIRECTS} redirects"),
    })
}

/// The response body, read chunk by chunk so that memory stays bounded whatever the endpoint
/// sends; larger than `max_body` bytes is an error.
async fn read_capped(mut response: reqwest::Response, max_body: u64) -> Result<Vec<u8>, CallError> {
    let too_large = CallError::TooLarge { limit: max_body };
    if response.content_length().is_some_and(|len| len > max_body) {
        return Err(too_large);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| classify(&e))? {
        if (body.len() + chunk.len()) as u64 > max_body {
            return Err(too_large);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn classify(error: &reqwest::Error) -> CallError {
    let message = error_chain(error);
    if refused_by_policy(error) {
        CallError::Blocked { message }
    } else if error.is_connect() {
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
    input_tokens: Option<MappingPath>,
    output_tokens: Option<MappingPath>,
}

/// What the response mapping took from a response.
pub(crate) struct Mapped {
    /// The answer.
    pub output: String,
    /// Context passages; empty when none.
    pub context: Vec<String>,
    /// Extra data.
    pub metadata: Option<serde_json::Value>,
    /// Tokens of the call, when the response says.
    pub usage: Option<Usage>,
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
            input_tokens: optional("input_tokens", &mapping.input_tokens)?,
            output_tokens: optional("output_tokens", &mapping.output_tokens)?,
        })
    }

    /// Builds the request for one test: renders the body, resolves the headers' variables.
    pub fn request(
        &self,
        test: &Test,
        parameters: &minijinja::Value,
    ) -> Result<Request, TargetError> {
        let vars = TemplateVars {
            prompt: &test.prompt,
            expected_response: test.expected_response.as_deref().unwrap_or(""),
            category: &test.category,
            topic: &test.topic,
            metadata: &test.metadata,
            parameters,
        };
        let body = self
            .body
            .render_on_runtime(&vars)
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
                    body: snippet(body),
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
        let tokens = |mapping: &Option<MappingPath>| {
            let node = mapping.as_ref()?.path.query(&json).first()?;
            match node {
                serde_json::Value::String(text) => text.trim().parse().ok(),
                number => number.as_u64(),
            }
        };
        let (input_tokens, output_tokens) =
            (tokens(&self.input_tokens), tokens(&self.output_tokens));
        let usage = (input_tokens.is_some() || output_tokens.is_some()).then(|| Usage {
            input_tokens: input_tokens.unwrap_or(0),
            output_tokens: output_tokens.unwrap_or(0),
        });
        Ok(Mapped {
            output,
            context,
            metadata,
            usage,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy::new(
            Retries::Retryable(5),
            Duration::from_secs(1),
            CallPolicy {
                backoff_base_ms: 100,
                backoff_max_ms: 1000,
                max_retry_wait_ms: 2000,
                ..CallPolicy::default()
            },
        )
    }

    #[test]
    fn the_backoff_cap_doubles_per_retry_up_to_the_maximum() {
        let p = policy();
        let caps: Vec<u128> = (1..=6).map(|r| p.backoff_cap(r).as_millis()).collect();
        assert_eq!(caps, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(p.backoff_cap(u32::MAX), Duration::from_secs(1));
    }

    #[test]
    fn full_jitter_stays_between_zero_and_the_cap_and_varies() {
        let p = policy();
        let delays: Vec<Duration> = (0..500).map(|_| p.delay(3, None)).collect();
        assert!(delays.iter().all(|d| *d <= Duration::from_millis(400)));
        // Spread over the whole range, not clustered at the cap.
        assert!(delays.iter().any(|d| *d < Duration::from_millis(100)));
        assert!(delays.iter().any(|d| *d > Duration::from_millis(300)));
    }

    #[test]
    fn retry_after_replaces_the_backoff_and_is_capped() {
        let p = policy();
        assert_eq!(
            p.delay(1, Some(Duration::from_millis(1500))),
            Duration::from_millis(1500)
        );
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(60))),
            Duration::from_secs(2)
        );
    }

    #[test]
    fn retry_after_is_read_as_seconds_or_http_date() {
        let now = httpdate::parse_http_date("Thu, 26 Nov 2026 12:00:00 GMT").unwrap();
        assert_eq!(parse_retry_after(" 3 ", now), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Thu, 26 Nov 2026 12:00:07 GMT", now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            parse_retry_after("Thu, 26 Nov 2026 11:59:00 GMT", now),
            Some(Duration::ZERO),
            "a date in the past asks for no wait"
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
    }

    /// Any JSON document, a few levels deep.
    fn json_value() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>().prop_map(serde_json::Value::from),
            ".{0,12}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(4, 64, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
                prop::collection::btree_map("[a-c]{1,2}", inner, 0..6)
                    .prop_map(|map| serde_json::Value::Object(map.into_iter().collect())),
            ]
        })
    }

    /// A JSONPath, well formed or not: `$` and segments, or any text.
    fn json_path() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        const SEGMENTS: &[&str] = &[
            ".a",
            ".b",
            "..a",
            "[0]",
            "[-1]",
            "[*]",
            ".*",
            "[1:3]",
            "[::2]",
            "['a','b']",
            "[?@.a]",
            "[?@.a > 1]",
            "[?length(@) > 2]",
            "[?@.b == 'x']",
            "[",
            "]",
            "?",
            "..",
        ];
        prop_oneof![
            3 => prop::collection::vec(prop::sample::select(SEGMENTS), 0..6)
                .prop_map(|segments| format!("${}", segments.concat())),
            1 => ".{0,20}",
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// A response mapping of any paths, applied to any response body: refused when a path
        /// is not JSONPath, else an answer or an error naming what is missing; never a panic.
        #[test]
        fn any_mapping_on_any_body_maps_or_fails(
            output in json_path(),
            context in json_path(),
            tokens in json_path(),
            body in json_value(),
            garbage in proptest::prelude::any::<bool>(),
        ) {
            let target = HttpTarget {
                url: "http://127.0.0.1:9/".into(),
                method: String::new(),
                headers: Default::default(),
                body_template: String::new(),
                response_mapping: crate::domain::ResponseMapping {
                    output,
                    context: Some(context),
                    metadata: Some("$".into()),
                    input_tokens: Some(tokens.clone()),
                    output_tokens: Some(tokens),
                },
                timeout_ms: 0,
            };
            if let Ok(prepared) = PreparedHttp::prepare(&target) {
                let mut bytes = serde_json::to_vec(&body).expect("a JSON value serializes");
                if garbage {
                    bytes.truncate(bytes.len() / 2);
                }
                let _ = prepared.map(&bytes);
            }
        }
    }
}
