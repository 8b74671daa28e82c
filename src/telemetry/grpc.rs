//! The gRPC side of observability: one span per RPC (parented by the caller's `traceparent`),
//! and `assay_grpc_requests_total` / `assay_grpc_request_duration_seconds`, measured until the
//! response's last frame (a streaming `Execute` lasts as long as it streams).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use http::{HeaderMap, Request, Response};
use http_body::{Body, Frame};
use prost_reflect::DescriptorPool;

use super::metrics::Shared;
use super::{Telemetry, propagation};

/// Canonical names of the gRPC status codes, by number: the values of the `code` label.
const CODES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

/// The `code` of a `grpc-status` header, if `headers` hold one.
fn code_in(headers: &HeaderMap) -> Option<&'static str> {
    let status = headers
        .get("grpc-status")?
        .to_str()
        .ok()?
        .parse::<usize>()
        .ok();
    Some(
        status
            .and_then(|s| CODES.get(s).copied())
            .unwrap_or("UNKNOWN"),
    )
}

/// The span of one RPC, for `TraceLayer::make_span_with`: named after the method (OpenTelemetry
/// RPC conventions), and a child of the caller's trace when its metadata has a `traceparent`.
pub fn rpc_span<B>(request: &Request<B>) -> tracing::Span {
    let path = request.uri().path();
    let (service, method) = path
        .trim_start_matches('/')
        .split_once('/')
        .unwrap_or((path, ""));
    let span = tracing::info_span!(
        "grpc",
        otel.name = path.trim_start_matches('/'),
        otel.kind = "server",
        rpc.system = "grpc",
        rpc.service = service,
        rpc.method = method,
    );
    propagation::adopt_parent(&span, request.headers());
    span
}

/// Measures every gRPC request into a [`Telemetry`]. Methods are labelled by their full path
/// when they are served (known from the descriptors), else `other`: a client cannot add labels.
#[derive(Clone)]
pub struct GrpcMetricsLayer {
    telemetry: Telemetry,
    methods: Arc<HashMap<String, Shared>>,
    other: Shared,
}

impl GrpcMetricsLayer {
    /// A layer recording into `telemetry` the methods of the services in the encoded file
    /// descriptor sets `descriptors`; one that records nothing when `telemetry` is off.
    pub fn new(telemetry: Telemetry, descriptors: &[&[u8]]) -> Self {
        let mut methods = HashMap::new();
        for bytes in descriptors.iter().filter(|_| telemetry.is_on()) {
            let Ok(pool) = DescriptorPool::decode(*bytes) else {
                continue;
            };
            for service in pool.services() {
                for method in service.methods() {
                    let path = format!("/{}/{}", service.full_name(), method.name());
                    methods.insert(path.clone(), Shared(Arc::from(path.as_str())));
                }
            }
        }
        GrpcMetricsLayer {
            telemetry,
            methods: Arc::new(methods),
            other: Shared(Arc::from("other")),
        }
    }
}

impl<S> tower::Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcMetrics {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`GrpcMetricsLayer`] makes.
#[derive(Clone)]
pub struct GrpcMetrics<S> {
    inner: S,
    layer: GrpcMetricsLayer,
}

impl<S, B, RB> tower::Service<Request<B>> for GrpcMetrics<S>
where
    S: tower::Service<Request<B>, Response = Response<RB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<Measured<RB>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let mut pending = self.layer.telemetry.is_on().then(|| Pending {
            telemetry: self.layer.telemetry.clone(),
            method: self
                .layer
                .methods
                .get(request.uri().path())
                .unwrap_or(&self.layer.other)
                .clone(),
            started: Instant::now(),
        });
        // The clone that was made ready is the one called (tower's usual swap).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let response = match inner.call(request).await {
                Ok(response) => response,
                Err(e) => {
                    if let Some(p) = pending.take() {
                        p.record("UNKNOWN");
                    }
                    return Err(e);
                }
            };
            // A trailers-only response (an error before any message) has its status here.
            if let Some(code) = code_in(response.headers())
                && let Some(p) = pending.take()
            {
                p.record(code);
            }
            Ok(response.map(|inner| Measured { inner, pending }))
        })
    }
}

/// A request being measured, recorded once.
struct Pending {
    telemetry: Telemetry,
    method: Shared,
    started: Instant,
}

impl Pending {
    fn record(self, code: &'static str) {
        self.telemetry
            .grpc(&self.method, code, self.started.elapsed());
    }
}

/// A response body that records its request when its trailers (holding `grpc-status`) pass, or
/// as `CANCELLED` when it is dropped unfinished (the client went away).
pub struct Measured<B> {
    inner: B,
    pending: Option<Pending>,
}

impl<B> Drop for Measured<B> {
    fn drop(&mut self) {
        if let Some(p) = self.pending.take() {
            p.record("CANCELLED");
        }
    }
}

impl<B: Body + Unpin> Body for Measured<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(code) = frame.trailers_ref().and_then(code_in)
                    && let Some(p) = self.pending.take()
                {
                    p.record(code);
                }
            }
            Poll::Ready(Some(Err(_))) => {
                if let Some(p) = self.pending.take() {
                    p.record("UNKNOWN");
                }
            }
            Poll::Ready(None) => {
                // Ended without trailers: not a gRPC answer.
                if let Some(p) = self.pending.take() {
                    p.record("UNKNOWN");
                }
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
