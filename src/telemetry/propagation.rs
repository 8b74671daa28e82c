//! W3C trace context: the `traceparent` of an incoming request becomes the parent of its span;
//! every outgoing endpoint or judge call carries the `traceparent` of its own span, so the
//! application's spans join Assay's trace. Without an OTLP exporter this does nothing.

use std::sync::atomic::{AtomicBool, Ordering};

use http::HeaderMap;
use http::header::{HeaderName, HeaderValue};
use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::TraceContextExt;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Set once the OpenTelemetry layer is installed; until then nothing is propagated.
static ON: AtomicBool = AtomicBool::new(false);

/// Turns propagation on: called once the process exports traces.
pub(crate) fn enable() {
    ON.store(true, Ordering::Relaxed);
}

fn on() -> bool {
    ON.load(Ordering::Relaxed)
}

struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

struct HeadersMut<'a>(&'a mut HeaderMap);

impl Injector for HeadersMut<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// Makes the trace context in `headers` (`traceparent`, `tracestate`), if any, the parent of
/// `span`.
pub fn adopt_parent(span: &tracing::Span, headers: &HeaderMap) {
    if !on() {
        return;
    }
    let parent = opentelemetry::global::get_text_map_propagator(|p| p.extract(&Headers(headers)));
    if parent.span().span_context().is_valid() {
        // Fails only when the span is disabled, and then there is nothing to parent.
        let _ = span.set_parent(parent);
    }
}

/// Adds the trace context of `span` to `headers`.
pub fn inject(span: &tracing::Span, headers: &mut HeaderMap) {
    if !on() {
        return;
    }
    let context = span.context();
    opentelemetry::global::get_text_map_propagator(|p| {
        p.inject_context(&context, &mut HeadersMut(headers))
    });
}

/// The trace id of `span` as 32 hexadecimal digits; empty when traces are off.
pub fn trace_id(span: &tracing::Span) -> String {
    if !on() {
        return String::new();
    }
    let context = span.context();
    let id = context.span().span_context().trace_id();
    if id == opentelemetry::trace::TraceId::INVALID {
        String::new()
    } else {
        id.to_string()
    }
}
