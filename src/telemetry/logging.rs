//! The process's tracing subscriber: logs on stderr as text or as one JSON object per line, and,
//! when an OTLP endpoint is configured, spans exported over OTLP/gRPC.

use std::io::IsTerminal;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::{BatchConfig, BatchConfigBuilder, Sampler, SdkTracerProvider};
use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// How logs are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines (coloured on a terminal).
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, `message`, the event's fields
    /// and those of the spans it happened in (`run_id`, `test_id`, `endpoint`, ...).
    Json,
}

/// Where spans go, when anywhere.
#[derive(Clone, Debug)]
pub struct OtlpSettings {
    /// The collector's OTLP/gRPC URL, e.g. `http://127.0.0.1:4317`.
    pub endpoint: String,
    /// Share of traces kept, in `[0, 1]`, unless the caller's `traceparent` decided.
    pub sample_ratio: f64,
}

/// Keeps the span exporter alive; [`Tracing::shutdown`] sends what it still holds.
pub struct Tracing {
    provider: Option<SdkTracerProvider>,
}

impl Tracing {
    /// Exports the spans not yet sent and stops the exporter.
    pub async fn shutdown(self) {
        if let Some(provider) = self.provider {
            // Blocks until the export task, on this runtime, has flushed: off the async threads.
            let done = tokio::task::spawn_blocking(move || provider.shutdown()).await;
            if let Ok(Err(e)) = done {
                eprintln!("traces could not all be exported: {e}");
            }
        }
    }
}

/// Why tracing could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("--otlp-endpoint: {0}")]
pub struct TracingError(String);

/// The filter of `ASSAY_LOG`, else `RUST_LOG`, else `default` (the usual `info,assay=debug`
/// syntax).
fn filter(default: &str) -> EnvFilter {
    std::env::var("ASSAY_LOG")
        .ok()
        .and_then(|s| EnvFilter::try_new(s).ok())
        .or_else(|| EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| EnvFilter::new(default))
}

/// Installs the process's subscriber: logs in `format` on stderr and, with `otlp`, spans exported
/// over OTLP/gRPC; `default` is the level when neither `ASSAY_LOG` nor `RUST_LOG` is set. Call
/// once, inside the Tokio runtime.
pub fn init(
    format: LogFormat,
    otlp: Option<&OtlpSettings>,
    default: &str,
) -> Result<Tracing, TracingError> {
    let logs = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            // Colours only on a terminal: logs piped to a file or `docker logs` stay plain.
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .fmt_fields(JsonFields::new())
            .event_format(FlatJson)
            .with_writer(std::io::stderr)
            .boxed(),
    };
    // Each layer has a filter of its own: the log level (`ASSAY_LOG=warn`, say) must not turn
    // off the spans that are exported, nor the trace context that calls carry and results keep.
    let (spans, provider) = match otlp {
        Some(settings) => {
            let provider = provider(settings)?;
            // Spans carry what their fields say, not where in the code or on which thread they
            // began, nor busy and idle times, and entering a span does not switch the
            // OpenTelemetry context (calls read theirs from the span): each of these costs
            // every test a few microseconds, which the overhead bench counts.
            let layer = tracing_opentelemetry::layer()
                .with_tracer(provider.tracer("assay"))
                .with_location(false)
                .with_threads(false)
                .with_target(false)
                .with_tracked_inactivity(false)
                .with_context_activation(false)
                .with_filter(Targets::new().with_target("assay", Level::INFO));
            (Some(layer), Some(provider))
        }
        None => (None, None),
    };
    tracing_subscriber::registry()
        .with(logs.with_filter(filter(default)))
        .with(spans)
        .init();
    if provider.is_some() {
        opentelemetry::global::set_text_map_propagator(
            opentelemetry_sdk::propagation::TraceContextPropagator::new(),
        );
        super::propagation::enable();
    }
    Ok(Tracing { provider })
}

/// The span queue and batches: a fast run ends three spans per test, tens of thousands a
/// second, which the SDK's default queue (2,048 spans) drops; a queue of 32,768 holds about a
/// second of them (a few megabytes) while batches of 2,048 are exported, two at a time. The
/// `OTEL_BSP_*` variables still set the rest.
fn batch_config() -> BatchConfig {
    BatchConfigBuilder::default()
        .with_max_queue_size(32_768)
        .with_max_export_batch_size(2_048)
        .with_max_concurrent_exports(2)
        .build()
}

/// A tracer provider exporting in batches over OTLP/gRPC from a task of this runtime; a trace
/// whose caller sent a `traceparent` is kept or not as the caller decided.
fn provider(settings: &OtlpSettings) -> Result<SdkTracerProvider, TracingError> {
    if !(0.0..=1.0).contains(&settings.sample_ratio) {
        return Err(TracingError(format!(
            "--otlp-sample-ratio {} is not between 0 and 1",
            settings.sample_ratio
        )));
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(settings.endpoint.clone())
        .build()
        .map_err(|e| TracingError(format!("{:?}: {e}", settings.endpoint)))?;
    // The tonic exporter needs a Tokio reactor, which the SDK's default batch thread lacks.
    let processor =
        opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor::builder(
            exporter,
            opentelemetry_sdk::runtime::Tokio,
        )
        .with_batch_config(batch_config())
        .build();
    let sampler = Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(settings.sample_ratio)));
    Ok(SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_sampler(sampler)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name("assay")
                .build(),
        )
        .build())
}

/// One JSON object per event, with the fields of its spans at the top level (outer spans first,
/// so an inner span's field wins), so that `run_id`, `test_id` and `endpoint` can be filtered on
/// directly.
struct FlatJson;

impl<S, N> FormatEvent<S, N> for FlatJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let meta = event.metadata();
        let mut line = Map::new();
        line.insert(
            "timestamp".into(),
            chrono::Utc::now()
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
                .into(),
        );
        line.insert("level".into(), meta.level().as_str().into());
        line.insert("target".into(), meta.target().into());
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                line.insert("span".into(), span.name().into());
                let extensions = span.extensions();
                let Some(fields) = extensions.get::<FormattedFields<N>>() else {
                    continue;
                };
                if let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(fields) {
                    // OpenTelemetry's own settings (otel.name, otel.kind) are not log fields.
                    line.extend(fields.into_iter().filter(|(k, _)| !k.starts_with("otel.")));
                }
            }
        }
        event.record(&mut Fields(&mut line));
        writeln!(writer, "{}", Value::Object(line))
    }
}

/// Collects an event's fields into a JSON object.
struct Fields<'a>(&'a mut Map<String, Value>);

impl Visit for Fields<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().into(), format!("{value:?}").into());
    }
}
