//! Calling endpoints: HTTP targets and OpenAI-compatible chat targets.
//!
//! [`TargetClient`] holds the one HTTP client of the process and one [`Gate`] per endpoint,
//! shared by every run. Once per run it [prepares](TargetClient::prepare) an endpoint (templates
//! compiled, JSONPaths parsed, gate settings refreshed) into a [`PreparedTarget`] that the run's
//! tasks share to [call](PreparedTarget::call) it for each test.

mod env;
mod gate;
mod grpc;
pub(crate) mod http;
mod observed;
pub(crate) mod openai;
mod outbound;
mod scorer;
mod scrub;
mod template;
#[cfg(test)]
pub(crate) mod test_server;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use reqwest::Url;
use serde_json::{Map, Value};
use uuid::Uuid;

pub use env::{
    DEFAULT_SECRET_ENV, EnvTemplate, MissingEnv, SecretEnv, check_key_env, check_target_env,
};
pub use gate::{Gate, SharedPace};
pub use outbound::{DEFAULT_DENY_CIDRS, OutboundPolicy};
pub use scorer::{ScorerAnswer, ScorerInput};
pub use template::{
    BodyTemplate, BodyTemplateSyntax, DEFAULT_MAX_TEMPLATE_OUTPUT_BYTES, DEFAULT_TEMPLATE_FUEL,
    TemplateLimits, TemplateVars, check_template_syntax, set_template_limits, template_limits,
};

pub(crate) use template::{
    check_output as check_template_output, describe as describe_template_error, rendering,
    template_environment,
};

use crate::domain::{
    DEFAULT_CHAT_TIMEOUT_MS, DEFAULT_HTTP_TIMEOUT_MS, Endpoint, ExternalScorer, Pricing, Retries,
    ScorerProtocol, Target, Test, Usage,
};
use crate::telemetry::Telemetry;
use gate::GateSettings;
use http::{Guard, PreparedHttp, Reply, Request, RetryPolicy, SendFailure};
use observed::Observed;
use openai::PreparedOpenAi;
use scorer::PreparedScorer;

/// One shared HTTP client (connection pooling, rustls) for all endpoint and judge calls, and the
/// gate of every endpoint called so far.
#[derive(Clone, Debug)]
pub struct TargetClient {
    http: reqwest::Client,
    /// By endpoint id; a gate lives as long as the process (a few bytes per endpoint).
    gates: Arc<Mutex<HashMap<Uuid, Arc<Gate>>>>,
    /// Keeps endpoints' rates with other processes, when they call them too.
    shared: Option<Arc<dyn SharedPace>>,
    /// The environment variables endpoints may read; checked again at every prepare, so that an
    /// endpoint stored before the allowlist changed reads nothing else.
    secret_env: Arc<SecretEnv>,
    /// Largest response body read from an endpoint or judge.
    max_body: u64,
    /// The addresses calls may reach.
    outbound: Arc<OutboundPolicy>,
    /// Where calls are counted.
    telemetry: Telemetry,
}

/// Default of `--max-response-bytes`: 10 MiB.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 10 * 1024 * 1024;

impl Default for TargetClient {
    fn default() -> Self {
        Self::new()
    }
}

/// The HTTP client of every endpoint and judge call: pooled keep-alive connections, rustls, and
/// a resolver that keeps only the addresses `outbound` allows.
fn http_client(outbound: &Arc<OutboundPolicy>) -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(concat!("assay/", env!("CARGO_PKG_VERSION")))
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(64)
        .connect_timeout(Duration::from_secs(10))
        .tcp_nodelay(true)
        // Followed by `http::send`, which drops the headers on a move to another origin and
        // checks the policy of every hop.
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(outbound::PolicyResolver {
            policy: Arc::clone(outbound),
        })
        .build()
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "could not configure the HTTP client, using defaults");
            reqwest::Client::new()
        })
}

impl TargetClient {
    /// A client with pooled keep-alive connections.
    pub fn new() -> Self {
        let outbound = Arc::new(OutboundPolicy::default());
        TargetClient {
            http: http_client(&outbound),
            gates: Arc::default(),
            shared: None,
            secret_env: Arc::default(),
            max_body: DEFAULT_MAX_RESPONSE_BYTES,
            outbound,
            telemetry: Telemetry::off(),
        }
    }

    /// This client, letting endpoints read only the variables `secret_env` allows (default:
    /// [`DEFAULT_SECRET_ENV`]).
    pub fn with_secret_env(mut self, secret_env: SecretEnv) -> Self {
        self.secret_env = Arc::new(secret_env);
        self
    }

    /// This client, reading at most `max_body` bytes of a response body.
    pub fn with_max_response_bytes(mut self, max_body: u64) -> Self {
        self.max_body = max_body;
        self
    }

    /// This client, reaching only the addresses `outbound` allows (default: every address but
    /// [`DEFAULT_DENY_CIDRS`]).
    pub fn with_outbound(mut self, outbound: OutboundPolicy) -> Self {
        self.outbound = Arc::new(outbound);
        self.http = http_client(&self.outbound);
        self
    }

    /// This client, counting every call of its endpoints into `telemetry`.
    pub fn with_telemetry(mut self, telemetry: Telemetry) -> Self {
        self.telemetry = telemetry;
        self
    }

    /// Where this client's calls are counted.
    pub fn telemetry(&self) -> &Telemetry {
        &self.telemetry
    }

    /// This client, keeping each endpoint's rate together with other processes through `pace`.
    pub fn with_shared_pace(mut self, pace: Arc<dyn SharedPace>) -> Self {
        self.shared = Some(pace);
        self
    }

    /// The gate of `endpoint`, made on first use and brought up to date with its settings.
    fn gate(&self, endpoint: &Endpoint) -> Arc<Gate> {
        let settings = GateSettings::of(endpoint);
        let mut gates = self.gates.lock().unwrap_or_else(PoisonError::into_inner);
        let gate = gates.entry(endpoint.id).or_insert_with(|| {
            let shared = self.shared.clone().map(|pace| (pace, endpoint.id));
            Arc::new(Gate::new(settings, shared))
        });
        gate.configure(settings);
        Arc::clone(gate)
    }

    /// Parses templates and JSONPaths once per run and refreshes the endpoint's gate with its
    /// current settings; bad settings give an error naming the field (e.g.
    /// `http.body_template: ...`). Environment variables are not read here but at call time.
    pub fn prepare(
        &self,
        endpoint: &Endpoint,
        parameters: &Map<String, Value>,
    ) -> Result<PreparedTarget, String> {
        check_target_env(&endpoint.target, &self.secret_env)
            .map_err(|(field, reason)| format!("{field}: {reason}"))?;
        let kind = match &endpoint.target {
            Target::Http(http) => Kind::Http(Box::new(PreparedHttp::prepare(http)?)),
            Target::OpenAiChat(chat) => {
                Kind::OpenAi(Box::new(PreparedOpenAi::prepare(chat, parameters)?))
            }
        };
        Ok(self.prepared(endpoint, kind, parameters))
    }

    /// Prepares an external scorer for one run. Its calls take `policy`'s call policy (its
    /// timeout, retries, backoff, and its gate: concurrency and rate limits shared with every
    /// other call of that endpoint) and go through the same guard as every call.
    pub fn prepare_scorer(
        &self,
        scorer: &ExternalScorer,
        policy: &Endpoint,
    ) -> Result<PreparedTarget, String> {
        let url = Url::parse(scorer.url.trim())
            .map_err(|e| format!("external.url: {:?} is not a URL: {e}", scorer.url))?;
        let prepared = match scorer.protocol {
            ScorerProtocol::Http => PreparedScorer::Http(url),
            ScorerProtocol::Grpc => PreparedScorer::Grpc {
                client: grpc::scorer_client(&url, &self.outbound, self.max_body)?,
                url: url
                    .join(scorer::SCORE_PATH)
                    .map_err(|e| format!("external.url: {e}"))?,
            },
        };
        Ok(self.prepared(policy, Kind::Scorer(Box::new(prepared)), &Map::new()))
    }

    /// A prepared `kind` with `endpoint`'s gate, call policy and prices.
    fn prepared(
        &self,
        endpoint: &Endpoint,
        kind: Kind,
        parameters: &Map<String, Value>,
    ) -> PreparedTarget {
        let timeout_ms = match &endpoint.target {
            Target::Http(http) => nonzero_or(http.timeout_ms, DEFAULT_HTTP_TIMEOUT_MS),
            Target::OpenAiChat(chat) => nonzero_or(chat.timeout_ms, DEFAULT_CHAT_TIMEOUT_MS),
        };
        PreparedTarget {
            client: self.http.clone(),
            kind,
            parameters: template::json_to_value(&Value::Object(parameters.clone())),
            gate: self.gate(endpoint),
            observed: Observed::new(&endpoint.name, &self.telemetry),
            policy: RetryPolicy::new(
                Retries::of(endpoint.max_retries),
                Duration::from_millis(u64::from(timeout_ms)),
                endpoint.call_policy,
            ),
            guard: Guard {
                max_body: self.max_body,
                outbound: Arc::clone(&self.outbound),
            },
            pricing: endpoint.pricing,
        }
    }
}

/// A scorer is called by its metric, never for a test.
fn not_for_tests() -> TargetError {
    TargetError::BadResponse {
        reason: "a scorer answers metrics, not tests".into(),
    }
}

fn nonzero_or(value: u32, default: u32) -> u32 {
    if value == 0 { default } else { value }
}

enum Kind {
    Http(Box<PreparedHttp>),
    OpenAi(Box<PreparedOpenAi>),
    /// An external scorer, called only by its metric.
    Scorer(Box<PreparedScorer>),
}

/// An endpoint ready to be called for the tests of one run; share it between tasks with `Arc`.
pub struct PreparedTarget {
    client: reqwest::Client,
    kind: Kind,
    /// The run's parameters as template value, converted once.
    parameters: minijinja::Value,
    gate: Arc<Gate>,
    observed: Observed,
    policy: RetryPolicy,
    /// The body limit and the outbound policy.
    guard: Guard,
    pricing: Pricing,
}

impl std::fmt::Debug for PreparedTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedTarget")
            .field("policy", &self.policy)
            .field("gate", &self.gate)
            .finish_non_exhaustive()
    }
}

/// What an endpoint answered for one test.
#[derive(Clone, Debug, PartialEq)]
pub struct TargetOutput {
    /// The answer.
    pub output: String,
    /// Context the endpoint used (e.g. retrieved passages); empty when none.
    pub context: Vec<String>,
    /// Extra data taken from the response.
    pub metadata: Option<Value>,
    /// Duration of the successful attempt, in milliseconds.
    pub latency_ms: u64,
    /// Attempts made, the successful one included.
    pub attempts: u32,
    /// Why the last failed attempt failed, when one did before the success.
    pub last_error: Option<String>,
    /// Tokens of the call, when the endpoint reported them.
    pub usage: Option<Usage>,
    /// Cost of the call in USD: its tokens at the endpoint's prices.
    pub cost_usd: f64,
}

/// Why calling an endpoint for one test failed, and after how many attempts.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{error}")]
pub struct TargetFailure {
    /// What went wrong (the last attempt's error, for transport and HTTP failures).
    pub error: TargetError,
    /// Attempts made (0 when the request could not even be built).
    pub attempts: u32,
}

impl PreparedTarget {
    /// Calls the endpoint for one test through [`send`](Self::send): the endpoint's gate,
    /// timeout and retries.
    pub async fn call(&self, test: &Test) -> Result<TargetOutput, TargetFailure> {
        let request = match &self.kind {
            Kind::Http(http) => http.request(test, &self.parameters),
            Kind::OpenAi(chat) => chat.request(test),
            Kind::Scorer(_) => Err(not_for_tests()),
        }
        .map_err(|error| TargetFailure { error, attempts: 0 })?;
        let secrets = scrub::Secrets::of(&request.headers);
        let failed = |mut error: TargetError, attempts: u32| {
            secrets.scrub_error(&mut error);
            TargetFailure { error, attempts }
        };
        let reply = self.send(&request).await.map_err(|failure| {
            let attempts = failure.attempts;
            failed(TargetError::from(failure), attempts)
        })?;
        let mapped = match &self.kind {
            Kind::Http(http) => http.map(&reply.body),
            Kind::OpenAi(chat) => chat.map(&reply.body),
            Kind::Scorer(_) => Err(not_for_tests()),
        }
        .map_err(|error| failed(error, reply.attempts))?;
        let (mut output, mut context) = (mapped.output, mapped.context);
        secrets.scrub(&mut output);
        context.iter_mut().for_each(|c| secrets.scrub(c));
        let mut last_error = reply.last_error.map(|e| format!("endpoint {e}"));
        if let Some(e) = last_error.as_mut() {
            secrets.scrub(e);
        }
        Ok(TargetOutput {
            output,
            context,
            metadata: mapped.metadata,
            latency_ms: u64::try_from(reply.latency.as_millis()).unwrap_or(u64::MAX),
            attempts: reply.attempts,
            last_error,
            usage: mapped.usage,
            cost_usd: mapped.usage.map_or(0.0, |usage| self.cost(usage)),
        })
    }

    /// The cost of `usage` in USD at this endpoint's prices.
    pub fn cost(&self, usage: Usage) -> f64 {
        self.pricing.cost(usage)
    }

    /// Sends a chat-completions `body` (its `model` set to the endpoint's) to an OpenAI chat
    /// endpoint and returns the JSON response: how LLM judges call their judge endpoint, with
    /// the same timeout, retries and rate limit as [`call`](Self::call).
    pub async fn chat(&self, body: Map<String, Value>) -> Result<Value, TargetError> {
        let Kind::OpenAi(chat) = &self.kind else {
            return Err(TargetError::BadResponse {
                reason: "a judge endpoint must be of the openai_chat kind".into(),
            });
        };
        let reply = self
            .send(&chat.post(body)?)
            .await
            .map_err(TargetError::from)?;
        http::parse_json(&reply.body)
    }

    /// Embeds `texts` in one call to the embeddings API of an OpenAI chat endpoint (its model
    /// embeds): how semantic similarity calls its embedding endpoint, with the same timeout,
    /// retries and rate limit as [`call`](Self::call). One vector per text, in their order, and
    /// the tokens the call reported.
    pub async fn embed(
        &self,
        texts: &[&str],
    ) -> Result<(Vec<Vec<f64>>, Option<Usage>), TargetError> {
        let Kind::OpenAi(chat) = &self.kind else {
            return Err(TargetError::BadResponse {
                reason: "an embedding endpoint must be of the openai_chat kind".into(),
            });
        };
        let reply = self
            .send(&chat.embed(texts)?)
            .await
            .map_err(TargetError::from)?;
        let json = http::parse_json(&reply.body)?;
        let vectors =
            openai::embeddings(&json).map_err(|reason| TargetError::BadResponse { reason })?;
        if vectors.len() != texts.len() {
            return Err(TargetError::BadResponse {
                reason: format!("{} embeddings for {} texts", vectors.len(), texts.len()),
            });
        }
        Ok((vectors, openai::usage(&json)))
    }

    /// What an external scorer answers for one answer of a test: one JSON POST (HTTP) or one
    /// `Score` call (gRPC), with the same gate, timeout, retries and guard as
    /// [`call`](Self::call). A body that is not a `ScoreResponse` is `BadResponse`.
    pub async fn score(&self, input: &ScorerInput<'_>) -> Result<ScorerAnswer, TargetError> {
        let Kind::Scorer(scorer) = &self.kind else {
            return Err(TargetError::BadResponse {
                reason: "only an external scorer scores".into(),
            });
        };
        match &**scorer {
            PreparedScorer::Http(url) => {
                let body = serde_json::to_vec(input).map_err(|e| TargetError::BadResponse {
                    reason: e.to_string(),
                })?;
                let request = Request {
                    method: reqwest::Method::POST,
                    url: url.clone(),
                    headers: scorer::json_headers(),
                    body,
                };
                let reply = self.send(&request).await.map_err(TargetError::from)?;
                let json = http::parse_json(&reply.body)?;
                serde_json::from_value(json).map_err(|e| TargetError::BadResponse {
                    reason: format!("the answer is not a ScoreResponse: {e}"),
                })
            }
            PreparedScorer::Grpc { url, client } => {
                // Named in spans as the HTTP/2 POST it is.
                let request = Request {
                    method: reqwest::Method::POST,
                    url: url.clone(),
                    headers: reqwest::header::HeaderMap::new(),
                    body: Vec::new(),
                };
                let message = input.to_proto();
                let reply = http::retrying(
                    &self.gate,
                    &request,
                    self.policy,
                    &self.observed,
                    |headers| {
                        grpc::score(client.clone(), url, message.clone(), headers, &self.guard)
                    },
                )
                .await
                .map_err(TargetError::from)?;
                Ok(ScorerAnswer::from(reply.body))
            }
        }
    }

    /// The one way a request reaches this endpoint: through its gate (shared by every run and
    /// judge of the process), with the endpoint's timeout, retries, backoff and retry budget.
    async fn send(&self, request: &Request) -> Result<Reply, SendFailure> {
        http::send(
            &self.client,
            &self.gate,
            request,
            self.policy,
            &self.guard,
            &self.observed,
        )
        .await
    }

    /// The endpoint's name.
    pub fn name(&self) -> &str {
        self.observed.name()
    }
}

/// Why one attempt failed at the transport or HTTP level.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum CallError {
    /// A non-2xx status.
    #[error("returned HTTP {status}: {body}")]
    Status { status: u16, body: String },
    /// No complete answer within the timeout.
    #[error("timed out after {timeout_ms} ms")]
    Timeout { timeout_ms: u64 },
    /// No connection.
    #[error("could not connect: {message}")]
    Connect { message: String },
    /// The connection failed in another way.
    #[error("request failed: {message}")]
    Transport { message: String },
    /// The response body is larger than the limit.
    #[error("response body larger than {limit} bytes")]
    TooLarge { limit: u64 },
    /// The outbound policy refuses the address.
    #[error("{message}")]
    Blocked { message: String },
    /// A gRPC call ended with an error status (a connection failure included: gRPC reports it as
    /// `UNAVAILABLE`).
    #[error("returned gRPC status {code:?}: {message}")]
    Grpc { code: tonic::Code, message: String },
}

impl CallError {
    /// The HTTP status a response stands for: its own, or a gRPC status's equivalent (the
    /// mapping of `google.rpc.Code`), so that both protocols are retried, billed and counted by
    /// the same rules.
    pub(crate) fn http_status(&self) -> Option<u16> {
        match self {
            CallError::Status { status, .. } => Some(*status),
            CallError::Grpc { code, .. } => Some(grpc::http_equivalent(*code)),
            _ => None,
        }
    }

    /// Whether another attempt may succeed.
    pub(crate) fn is_retryable(&self) -> bool {
        match self {
            CallError::Status { .. } | CallError::Grpc { .. } => self
                .http_status()
                .is_some_and(|status| matches!(status, 408 | 429) || status >= 500),
            CallError::Timeout { .. } | CallError::Connect { .. } | CallError::Transport { .. } => {
                true
            }
            CallError::TooLarge { .. } | CallError::Blocked { .. } => false,
        }
    }

    /// Whether providers do not bill the failed call: no connection was made, or the provider
    /// turned it away (429) or failed before answering (500, 502, 503, 504). A timeout or a
    /// broken connection may have been billed.
    pub(crate) fn is_unbilled(&self) -> bool {
        match self {
            CallError::Status { .. } | CallError::Grpc { .. } => self
                .http_status()
                .is_some_and(|status| matches!(status, 429 | 500 | 502 | 503 | 504)),
            CallError::Connect { .. } => true,
            CallError::Timeout { .. }
            | CallError::Transport { .. }
            | CallError::TooLarge { .. }
            | CallError::Blocked { .. } => false,
        }
    }

    /// Whether the server asked to slow down (HTTP 429, gRPC `RESOURCE_EXHAUSTED`).
    pub(crate) fn is_throttled(&self) -> bool {
        self.http_status() == Some(429)
    }
}

/// Why calling an endpoint failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TargetError {
    /// The endpoint answered with a non-2xx status (`body`: its first 500 characters).
    #[error("endpoint returned HTTP {status}: {body}{}", after(*.attempts))]
    Status {
        /// HTTP status code.
        status: u16,
        /// Start of the response body.
        body: String,
        /// Attempts made.
        attempts: u32,
    },
    /// No complete answer within the timeout.
    #[error("endpoint timed out after {timeout_ms} ms{}", after(*.attempts))]
    Timeout {
        /// The timeout of one attempt.
        timeout_ms: u64,
        /// Attempts made.
        attempts: u32,
    },
    /// No connection could be made.
    #[error("could not connect to endpoint: {message}{}", after(*.attempts))]
    Connect {
        /// The cause.
        message: String,
        /// Attempts made.
        attempts: u32,
    },
    /// The connection failed after it was made (reset, broken body, ...).
    #[error("request to endpoint failed: {message}{}", after(*.attempts))]
    Transport {
        /// The cause.
        message: String,
        /// Attempts made.
        attempts: u32,
    },
    /// The response body is larger than `--max-response-bytes`.
    #[error(
        "endpoint response body is larger than {limit} bytes, the limit (--max-response-bytes, \
         ASSAY_MAX_RESPONSE_BYTES)"
    )]
    TooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
    /// The outbound policy refuses the address the call would reach.
    #[error("endpoint call blocked: {message}")]
    Blocked {
        /// The address and the rule.
        message: String,
    },
    /// A gRPC call ended with an error status.
    #[error("gRPC call returned status {code:?}: {message}{}", after(*.attempts))]
    Grpc {
        /// The status code.
        code: tonic::Code,
        /// The status message.
        message: String,
        /// Attempts made.
        attempts: u32,
    },
    /// The response body is not JSON.
    #[error("endpoint response is not JSON: {reason}")]
    NotJson {
        /// Parser message and the start of the body.
        reason: String,
    },
    /// A required JSONPath of the response mapping matched nothing.
    #[error("response mapping {field} {path:?} matched nothing; the body was: {body}")]
    NoMatch {
        /// The mapping field (`output`).
        field: &'static str,
        /// The JSONPath.
        path: String,
        /// The start of the response body, to see what the path should have been.
        body: String,
    },
    /// The response is JSON but lacks what the target reads.
    #[error("unexpected endpoint response: {reason}")]
    BadResponse {
        /// What is missing.
        reason: String,
    },
    /// A header refers to an environment variable that is not set.
    #[error(
        "header {header:?}: environment variable {variable:?} is not set in the server's environment, where it is read"
    )]
    MissingEnv {
        /// The header.
        header: String,
        /// The variable.
        variable: String,
    },
    /// A header's resolved value is not a valid header value.
    #[error("header {header:?}: the resolved value is not a valid header value")]
    InvalidHeader {
        /// The header.
        header: String,
    },
    /// The body template failed to render for this test.
    #[error("body template: {reason}")]
    Template {
        /// Where and why.
        reason: String,
    },
}

fn after(attempts: u32) -> String {
    if attempts > 1 {
        format!(" (after {attempts} attempts)")
    } else {
        String::new()
    }
}

impl From<SendFailure> for TargetError {
    fn from(failure: SendFailure) -> Self {
        let attempts = failure.attempts;
        match failure.error {
            CallError::Status { status, body } => TargetError::Status {
                status,
                body,
                attempts,
            },
            CallError::Timeout { timeout_ms } => TargetError::Timeout {
                timeout_ms,
                attempts,
            },
            CallError::Connect { message } => TargetError::Connect { message, attempts },
            CallError::Transport { message } => TargetError::Transport { message, attempts },
            CallError::TooLarge { limit } => TargetError::TooLarge { limit },
            CallError::Blocked { message } => TargetError::Blocked { message },
            CallError::Grpc { code, message } => TargetError::Grpc {
                code,
                message,
                attempts,
            },
        }
    }
}

#[cfg(test)]
mod tests;
