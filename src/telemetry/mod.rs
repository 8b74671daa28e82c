//! Observability: Prometheus metrics ([`Telemetry`], served by [`exposition`]), the gRPC layer
//! that measures requests and opens their spans ([`grpc`]), trace-context propagation
//! ([`propagation`]) and the process's log and trace subscriber ([`logging`]).
//!
//! The engine and the endpoint client record into a [`Telemetry`] handle and know nothing of
//! HTTP or OpenTelemetry; a handle that is off costs one branch per record.

pub mod exposition;
pub mod grpc;
pub mod logging;
mod metrics;
pub mod propagation;

use std::sync::Arc;
use std::time::Duration;

use crate::domain::{RunKind, RunStatus, TestResult};
pub use metrics::{CallOutcome, EndpointMetrics};
use metrics::{Metrics, Shared};

/// Where the process records its metrics: off (records nothing) or on (a Prometheus registry).
/// Cheap to clone.
#[derive(Clone, Default)]
pub struct Telemetry {
    metrics: Option<Arc<Metrics>>,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry")
            .field("on", &self.metrics.is_some())
            .finish()
    }
}

impl Telemetry {
    /// Records nothing.
    pub fn off() -> Self {
        Telemetry::default()
    }

    /// Records into a fresh registry.
    pub fn on() -> Self {
        Telemetry {
            metrics: Some(Arc::new(Metrics::new())),
        }
    }

    /// Whether it records.
    pub fn is_on(&self) -> bool {
        self.metrics.is_some()
    }

    /// The metrics in the text exposition format; `None` when off.
    pub fn encode(&self) -> Option<String> {
        self.metrics.as_ref().map(|m| m.encode())
    }

    /// A run was created here.
    pub fn run_started(&self, kind: RunKind) {
        if let Some(m) = &self.metrics {
            m.run_started(kind);
        }
    }

    /// A run's end was stored here.
    pub fn run_finished(&self, status: RunStatus) {
        if let Some(m) = &self.metrics {
            m.run_finished(status);
        }
    }

    /// This replica works on a run until the guard is dropped.
    pub fn run_active(&self) -> ActiveRun {
        if let Some(m) = &self.metrics {
            m.runs_active().inc();
        }
        ActiveRun(self.clone())
    }

    /// Results were stored.
    pub fn results_stored(&self, results: &[TestResult]) {
        if let Some(m) = &self.metrics {
            m.results(results);
        }
    }

    /// The call metrics of the endpoint named `name`; `None` when off.
    pub fn endpoint(&self, name: &str) -> Option<EndpointMetrics> {
        self.metrics.as_ref().map(|m| m.endpoint(name))
    }

    /// A metric of kind `kind` took `took` to evaluate.
    pub fn metric_evaluated(&self, kind: &'static str, took: Duration) {
        if let Some(m) = &self.metrics {
            m.metric_duration(kind, took);
        }
    }

    /// Results were sent on a live run stream: the time since each was scored.
    pub fn results_sent(&self, results: &[TestResult]) {
        if let Some(m) = &self.metrics {
            let now = chrono::Utc::now();
            for result in results {
                let delay = (now - result.created_at).to_std().unwrap_or_default();
                m.stream_delay().observe(delay.as_secs_f64());
            }
        }
    }

    fn grpc(&self, method: &Shared, code: &'static str, took: Duration) {
        if let Some(m) = &self.metrics {
            m.grpc(method, code, took);
        }
    }
}

/// Counts a run as active while it lives.
#[must_use]
pub struct ActiveRun(Telemetry);

impl Drop for ActiveRun {
    fn drop(&mut self) {
        if let Some(m) = &self.0.metrics {
            m.runs_active().dec();
        }
    }
}
