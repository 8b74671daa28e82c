//! What one endpoint's calls tell: an `assay.endpoint_call` span per attempt, with the HTTP
//! semantic-convention attributes, and the endpoint's call metrics.

use std::sync::Arc;
use std::time::Duration;

use tracing::field::Empty;

use super::CallError;
use super::http::Request;
use crate::telemetry::{CallOutcome, EndpointMetrics, Telemetry};

/// An endpoint's name and metrics, resolved once per run.
#[derive(Debug)]
pub(crate) struct Observed {
    name: Arc<str>,
    metrics: Option<EndpointMetrics>,
}

impl Observed {
    /// The spans and metrics of the endpoint named `name`.
    pub(crate) fn new(name: &str, telemetry: &Telemetry) -> Self {
        Observed {
            name: Arc::from(name),
            metrics: telemetry.endpoint(name),
        }
    }

    /// The endpoint's name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The span of attempt number `attempt` (1-based) to send `request`.
    pub(crate) fn span(&self, request: &Request, attempt: u32) -> tracing::Span {
        let url = &request.url;
        let span = tracing::info_span!(
            "assay.endpoint_call",
            otel.kind = "client",
            otel.status_code = Empty,
            endpoint = &*self.name,
            http.request.method = request.method.as_str(),
            url.full = %WithoutQuery(url),
            server.address = url.host_str().unwrap_or_default(),
            server.port = url.port_or_known_default().unwrap_or_default(),
            http.request.resend_count = Empty,
            http.response.status_code = Empty,
            error.type = Empty,
        );
        if attempt > 1 {
            span.record("http.request.resend_count", attempt - 1);
        }
        span
    }

    /// Records how an attempt ended: its HTTP status, or why it has none.
    pub(crate) fn attempted(
        &self,
        span: &tracing::Span,
        result: Result<u16, &CallError>,
        took: Duration,
    ) {
        let status = match result {
            Ok(status) => Some(status),
            Err(error) => error.http_status(),
        };
        let outcome = match result {
            Ok(_) | Err(CallError::Status { .. } | CallError::Grpc { .. }) => {
                CallOutcome::of_status(status.unwrap_or_default())
            }
            Err(CallError::Timeout { .. }) => CallOutcome::Timeout,
            Err(CallError::Connect { .. }) => CallOutcome::ConnectError,
            Err(CallError::Transport { .. }) => CallOutcome::TransportError,
            Err(CallError::Blocked { .. }) => CallOutcome::Blocked,
            Err(CallError::TooLarge { .. }) => CallOutcome::TooLarge,
        };
        if let Some(status) = status {
            span.record("http.response.status_code", status);
        }
        if outcome != CallOutcome::Ok {
            span.record("otel.status_code", "ERROR");
            // Semantic conventions: the status code for HTTP errors, else the error's class.
            match status {
                Some(status) => span.record("error.type", status),
                None => span.record("error.type", outcome.as_str()),
            };
        }
        if let Some(metrics) = &self.metrics {
            metrics.attempt(outcome, took);
        }
    }

    /// Records a retry about to be made.
    pub(crate) fn retrying(&self) {
        if let Some(metrics) = &self.metrics {
            metrics.retry();
        }
    }
}

/// A URL without its query and fragment, which may hold keys: what spans show.
struct WithoutQuery<'a>(&'a url::Url);

impl std::fmt::Display for WithoutQuery<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = self.0;
        write!(
            f,
            "{}://{}",
            url.scheme(),
            url.host_str().unwrap_or_default()
        )?;
        if let Some(port) = url.port() {
            write!(f, ":{port}")?;
        }
        f.write_str(url.path())
    }
}
