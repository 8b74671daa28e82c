//! The Prometheus metrics of the process: one registry, its families, and the handles the engine,
//! the endpoint client and the gRPC layer record into.
//!
//! Label values are bounded: run kinds and statuses, outcome classes, metric kinds, gRPC methods
//! of the served descriptors and endpoint names; never ids or prompts.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::domain::{ResultStatus, RunKind, RunStatus, TestResult};

/// A label value shared rather than copied: an endpoint's name or a gRPC method, cloned per
/// record without allocating.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub(crate) struct Shared(pub(crate) Arc<str>);

impl EncodeLabelValue for Shared {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> std::fmt::Result {
        encoder.write_str(&self.0)
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabel {
    endpoint: Shared,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    endpoint: Shared,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabel {
    method: Shared,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GrpcLabels {
    method: Shared,
    code: &'static str,
}

/// How one attempt to call an endpoint ended, as `assay_endpoint_calls_total` counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallOutcome {
    /// A 2xx answer.
    Ok,
    /// A 4xx answer.
    Http4xx,
    /// A 5xx answer.
    Http5xx,
    /// Another non-2xx status (1xx, 3xx).
    HttpOther,
    /// No complete answer within the timeout.
    Timeout,
    /// No connection could be made.
    ConnectError,
    /// The connection failed after it was made.
    TransportError,
    /// The outbound policy refused the address.
    Blocked,
    /// The answer was larger than `--max-response-bytes`.
    TooLarge,
}

impl CallOutcome {
    /// Every outcome, in the order of [`CallOutcome::index`].
    const ALL: [CallOutcome; 9] = [
        CallOutcome::Ok,
        CallOutcome::Http4xx,
        CallOutcome::Http5xx,
        CallOutcome::HttpOther,
        CallOutcome::Timeout,
        CallOutcome::ConnectError,
        CallOutcome::TransportError,
        CallOutcome::Blocked,
        CallOutcome::TooLarge,
    ];

    /// The outcome of an HTTP status.
    pub fn of_status(status: u16) -> Self {
        match status {
            200..=299 => CallOutcome::Ok,
            400..=499 => CallOutcome::Http4xx,
            500..=599 => CallOutcome::Http5xx,
            _ => CallOutcome::HttpOther,
        }
    }

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            CallOutcome::Ok => "ok",
            CallOutcome::Http4xx => "http_4xx",
            CallOutcome::Http5xx => "http_5xx",
            CallOutcome::HttpOther => "http_other",
            CallOutcome::Timeout => "timeout",
            CallOutcome::ConnectError => "connect_error",
            CallOutcome::TransportError => "transport_error",
            CallOutcome::Blocked => "blocked",
            CallOutcome::TooLarge => "too_large",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// A histogram family whose histograms share one set of buckets.
type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// The registry and every family in it.
pub(crate) struct Metrics {
    registry: Registry,
    runs_started: Family<KindLabel, Counter>,
    runs_finished: Family<StatusLabel, Counter>,
    runs_active: Gauge,
    results: Family<StatusLabel, Counter>,
    endpoint_calls: Family<CallLabels, Counter>,
    endpoint_call_duration: Histograms<EndpointLabel>,
    endpoint_retries: Family<EndpointLabel, Counter>,
    metric_duration: Histograms<KindLabel>,
    stream_delay: Histogram,
    grpc_requests: Family<GrpcLabels, Counter>,
    grpc_duration: Histograms<MethodLabel>,
}

/// Endpoint calls: 5 ms to about 80 s.
fn call_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 15))
}

/// Metric evaluations: 0.1 ms (deterministic checks) to about 100 s (a slow judge).
fn metric_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 3.0, 15))
}

/// gRPC requests: 1 ms to about 9 hours (a streaming `Execute` lasts as long as its run).
fn grpc_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 4.0, 16))
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let mut registry = Registry::default();
        let runs_started = Family::default();
        registry.register(
            "assay_runs_started",
            "Runs started on this replica, by kind (execution, rescore)",
            runs_started.clone(),
        );
        let runs_finished = Family::default();
        registry.register(
            "assay_runs_finished",
            "Runs ended by this replica, by final status",
            runs_finished.clone(),
        );
        let runs_active = Gauge::default();
        registry.register(
            "assay_runs_active",
            "Runs this replica is working on",
            runs_active.clone(),
        );
        let results = Family::default();
        registry.register(
            "assay_results",
            "Test results stored by this replica, by status (passed, failed, error)",
            results.clone(),
        );
        let endpoint_calls = Family::default();
        registry.register(
            "assay_endpoint_calls",
            "Attempts to call an endpoint or judge, by endpoint name and outcome",
            endpoint_calls.clone(),
        );
        let endpoint_call_duration = Family::new_with_constructor(call_buckets as fn() -> _);
        registry.register(
            "assay_endpoint_call_duration_seconds",
            "Duration of one attempt to call an endpoint or judge, by endpoint name",
            endpoint_call_duration.clone(),
        );
        let endpoint_retries = Family::default();
        registry.register(
            "assay_endpoint_retries",
            "Retries of endpoint and judge calls, by endpoint name",
            endpoint_retries.clone(),
        );
        let metric_duration = Family::new_with_constructor(metric_buckets as fn() -> _);
        registry.register(
            "assay_metric_duration_seconds",
            "Duration of one metric evaluation, by metric kind",
            metric_duration.clone(),
        );
        // 0.5 ms to about 8 s.
        let stream_delay = Histogram::new(exponential_buckets(0.0005, 2.0, 15));
        registry.register(
            "assay_result_stream_delay_seconds",
            "Time from a result being scored to its being sent on a live run stream",
            stream_delay.clone(),
        );
        let grpc_requests = Family::default();
        registry.register(
            "assay_grpc_requests",
            "gRPC requests answered, by method and status code",
            grpc_requests.clone(),
        );
        let grpc_duration = Family::new_with_constructor(grpc_buckets as fn() -> _);
        registry.register(
            "assay_grpc_request_duration_seconds",
            "Duration of gRPC requests until their last message, by method",
            grpc_duration.clone(),
        );
        Metrics {
            registry,
            runs_started,
            runs_finished,
            runs_active,
            results,
            endpoint_calls,
            endpoint_call_duration,
            endpoint_retries,
            metric_duration,
            stream_delay,
            grpc_requests,
            grpc_duration,
        }
    }

    /// The metrics in the text exposition format.
    pub(crate) fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }

    pub(crate) fn run_started(&self, kind: RunKind) {
        let kind = kind.as_str();
        self.runs_started.get_or_create(&KindLabel { kind }).inc();
    }

    pub(crate) fn run_finished(&self, status: RunStatus) {
        let status = status.as_str();
        self.runs_finished
            .get_or_create(&StatusLabel { status })
            .inc();
    }

    pub(crate) fn runs_active(&self) -> &Gauge {
        &self.runs_active
    }

    pub(crate) fn results(&self, results: &[TestResult]) {
        for result in results {
            let status = match result.status {
                ResultStatus::Passed => "passed",
                ResultStatus::Failed => "failed",
                ResultStatus::Error => "error",
            };
            self.results.get_or_create(&StatusLabel { status }).inc();
        }
    }

    pub(crate) fn endpoint(&self, name: &str) -> EndpointMetrics {
        let endpoint = Shared(Arc::from(name));
        let calls = CallOutcome::ALL.map(|outcome| {
            self.endpoint_calls.get_or_create_owned(&CallLabels {
                endpoint: endpoint.clone(),
                outcome: outcome.as_str(),
            })
        });
        let label = EndpointLabel { endpoint };
        EndpointMetrics {
            calls,
            duration: self.endpoint_call_duration.get_or_create_owned(&label),
            retries: self.endpoint_retries.get_or_create_owned(&label),
        }
    }

    pub(crate) fn metric_duration(&self, kind: &'static str, took: Duration) {
        self.metric_duration
            .get_or_create(&KindLabel { kind })
            .observe(took.as_secs_f64());
    }

    pub(crate) fn stream_delay(&self) -> &Histogram {
        &self.stream_delay
    }

    pub(crate) fn grpc(&self, method: &Shared, code: &'static str, took: Duration) {
        self.grpc_requests
            .get_or_create(&GrpcLabels {
                method: method.clone(),
                code,
            })
            .inc();
        self.grpc_duration
            .get_or_create(&MethodLabel {
                method: method.clone(),
            })
            .observe(took.as_secs_f64());
    }
}

/// One endpoint's call metrics, looked up once per run so that a call records into them without
/// a lookup or an allocation.
#[derive(Clone, Debug)]
pub struct EndpointMetrics {
    calls: [Counter; CallOutcome::ALL.len()],
    duration: Histogram,
    retries: Counter,
}

impl EndpointMetrics {
    /// Records one attempt.
    pub fn attempt(&self, outcome: CallOutcome, took: Duration) {
        self.calls[outcome.index()].inc();
        self.duration.observe(took.as_secs_f64());
    }

    /// Records a retry about to be made.
    pub fn retry(&self) {
        self.retries.inc();
    }
}
