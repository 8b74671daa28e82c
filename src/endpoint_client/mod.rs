//! Calling endpoints: HTTP targets and OpenAI-compatible chat targets.
//!
//! [`TargetClient`] holds the one HTTP client of the process and one [`Gate`] per endpoint,
//! shared by every run. Once per run it [prepares](TargetClient::prepare) an endpoint (templates
//! compiled, JSONPaths parsed, gate settings refreshed) into a [`PreparedTarget`] that the run's
//! tasks share to [call](PreparedTarget::call) it for each test.

mod env;
mod gate;
pub(crate) mod http;
mod observed;
pub(crate) mod openai;
mod template;
#[cfg(test)]
pub(crate) mod test_server;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::{Map, Value};
use uuid::Uuid;

pub use env::{EnvTemplate, MissingEnv};
pub use gate::{Gate, SharedPace};
pub use template::{BodyTemplate, BodyTemplateSyntax, TemplateVars};

pub(crate) use template::{describe as describe_template_error, template_environment};

use crate::domain::{DEFAULT_CHAT_TIMEOUT_MS, DEFAULT_HTTP_TIMEOUT_MS, Endpoint, Target, Test};
use crate::telemetry::Telemetry;
use gate::GateSettings;
use http::{PreparedHttp, Reply, Request, RetryPolicy, SendFailure};
use observed::Observed;
use openai::PreparedOpenAi;

/// One shared HTTP client (connection pooling, rustls) for all endpoint and judge calls, and the
/// gate of every endpoint called so far.
#[derive(Clone, Debug)]
pub struct TargetClient {
    http: reqwest::Client,
    /// By endpoint id; a gate lives as long as the process (a few bytes per endpoint).
    gates: Arc<Mutex<HashMap<Uuid, Arc<Gate>>>>,
    /// Keeps endpoints' rates with other processes, when they call them too.
    shared: Option<Arc<dyn SharedPace>>,
    /// Where calls are counted.
    telemetry: Telemetry,
}

impl Default for TargetClient {
    fn default() -> Self {
        Self::new()
    }
}

impl TargetClient {
    /// A client with pooled keep-alive connections.
    pub fn new() -> Self {
        let http = reqwest::Client::builder()
            .user_agent(concat!("assay/", env!("CARGO_PKG_VERSION")))
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(64)
            .connect_timeout(Duration::from_secs(10))
            .tcp_nodelay(true)
            .build()
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "could not configure the HTTP client, using defaults");
                reqwest::Client::new()
            });
        TargetClient {
            http,
            gates: Arc::default(),
            shared: None,
            telemetry: Telemetry::off(),
        }
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
        let (kind, timeout_ms) = match &endpoint.target {
            Target::Http(http) => (
                Kind::Http(Box::new(PreparedHttp::prepare(http)?)),
                nonzero_or(http.timeout_ms, DEFAULT_HTTP_TIMEOUT_MS),
            ),
            Target::OpenAiChat(chat) => (
                Kind::OpenAi(PreparedOpenAi::prepare(chat, parameters)?),
                nonzero_or(chat.timeout_ms, DEFAULT_CHAT_TIMEOUT_MS),
            ),
        };
        Ok(PreparedTarget {
            client: self.http.clone(),
            kind,
            parameters: template::json_to_value(&Value::Object(parameters.clone())),
            gate: self.gate(endpoint),
            observed: Observed::new(&endpoint.name, &self.telemetry),
            policy: RetryPolicy::new(
                endpoint.max_retries,
                Duration::from_millis(u64::from(timeout_ms)),
                endpoint.call_policy,
            ),
        })
    }
}

fn nonzero_or(value: u32, default: u32) -> u32 {
    if value == 0 { default } else { value }
}

enum Kind {
    Http(Box<PreparedHttp>),
    OpenAi(PreparedOpenAi),
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
        }
        .map_err(|error| TargetFailure { error, attempts: 0 })?;
        let reply = self.send(&request).await.map_err(|failure| TargetFailure {
            attempts: failure.attempts,
            error: TargetError::from(failure),
        })?;
        let mapped = match &self.kind {
            Kind::Http(http) => http.map(&reply.body),
            Kind::OpenAi(chat) => chat.map(&reply.body),
        }
        .map_err(|error| TargetFailure {
            error,
            attempts: reply.attempts,
        })?;
        Ok(TargetOutput {
            output: mapped.output,
            context: mapped.context,
            metadata: mapped.metadata,
            latency_ms: u64::try_from(reply.latency.as_millis()).unwrap_or(u64::MAX),
            attempts: reply.attempts,
            last_error: reply.last_error.map(|e| format!("endpoint {e}")),
        })
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

    /// The one way a request reaches this endpoint: through its gate (shared by every run and
    /// judge of the process), with the endpoint's timeout, retries, backoff and retry budget.
    async fn send(&self, request: &Request) -> Result<Reply, SendFailure> {
        http::send(
            &self.client,
            &self.gate,
            request,
            self.policy,
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
}

impl CallError {
    /// Whether another attempt may succeed.
    pub(crate) fn is_retryable(&self) -> bool {
        match self {
            CallError::Status { status, .. } => matches!(status, 408 | 429) || *status >= 500,
            CallError::Timeout { .. } | CallError::Connect { .. } | CallError::Transport { .. } => {
                true
            }
        }
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
        }
    }
}

#[cfg(test)]
mod tests;
