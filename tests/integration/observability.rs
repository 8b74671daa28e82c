//! Observability: Prometheus metrics scraped over HTTP and parsed with a Prometheus text parser,
//! spans exported over OTLP/gRPC to a receiver run by the test, and JSON logs.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use assay::cli::Clients;
use assay::endpoint_client::OutboundPolicy;
use assay::proto::v1 as pb;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::trace::v1::Span;
use prometheus_parse::{Scrape, Value};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;

use crate::app_server::Target;
use crate::e2e::Assay;
use crate::fixtures::{
    create_endpoint, create_metric, create_test_set, exact, execute, execute_request,
    http_endpoint, next_result, start, test,
};
use crate::harness::Server;

/// The metrics the server serves now, parsed.
async fn scrape(addr: SocketAddr) -> Scrape {
    let response = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .expect("GET /metrics");
    assert!(response.status().is_success(), "{}", response.status());
    let text = response.text().await.expect("metrics body");
    Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("Prometheus text")
}

/// The value of the counter or gauge sample `name` with (at least) `labels`; 0 when absent.
fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
            _ => panic!("{name} is not a counter or gauge"),
        })
        .sum()
}

/// `assay_results_total` is `n` for each `(status, n)`.
fn assert_results(scrape: &Scrape, expected: [(&str, f64); 3]) {
    for (status, n) in expected {
        assert_eq!(
            value(scrape, "assay_results_total", &[("status", status)]),
            n,
            "{status}"
        );
    }
}

/// An endpoint on `target` that retries twice, at once.
fn retrying_endpoint(name: &str, target: &Target) -> pb::Endpoint {
    pb::Endpoint {
        max_retries: Some(2),
        call_policy: Some(pb::CallPolicy {
            backoff_base_ms: 1,
            backoff_max_ms: 1,
            ..Default::default()
        }),
        ..http_endpoint(name, &target.url)
    }
}

#[tokio::test]
async fn metrics_count_a_runs_calls_results_and_retries_during_and_after_it() {
    let (server, metrics) = Server::start_with_metrics(|_| {}).await;
    let target = Target::start().await;
    create_metric(&server, exact("exact")).await;
    let endpoint = create_endpoint(&server, retrying_endpoint("shop", &target)).await;
    // In order: passed, failed, an error after one 404 (not retried), an error after three
    // 500s (two retries), and a slow pass that keeps the run going while it is scraped.
    let set = create_test_set(
        &server,
        "obs",
        &["exact"],
        vec![
            test("Paris", "Paris", &[]),
            test("Rome", "Paris", &[]),
            test("gone", "gone", &[("fail_status", "404")]),
            test("down", "down", &[("fail_status", "500")]),
            test("slow", "slow", &[("delay_ms", "3000")]),
        ],
    )
    .await;
    let mut request = execute_request(&set.id, &endpoint.id);
    request.mode = pb::ExecutionMode::Sequential as i32;
    let (run, mut stream) = start(&server, request).await;
    for _ in 0..4 {
        next_result(&mut stream).await;
    }

    // During the run: the first four results are stored (before they are sent), the last test
    // is in flight.
    let during = scrape(metrics).await;
    assert_eq!(value(&during, "assay_runs_active", &[]), 1.0);
    assert_eq!(
        value(
            &during,
            "assay_runs_started_total",
            &[("kind", "execution")]
        ),
        1.0
    );
    assert_results(&during, [("passed", 1.0), ("failed", 1.0), ("error", 2.0)]);

    while let Some(event) = futures::StreamExt::next(&mut stream).await {
        event.expect("event");
    }
    let after = scrape(metrics).await;
    let calls = |outcome| {
        value(
            &after,
            "assay_endpoint_calls_total",
            &[("endpoint", "shop"), ("outcome", outcome)],
        )
    };
    assert_eq!(calls("ok"), 3.0);
    assert_eq!(calls("http_4xx"), 1.0);
    assert_eq!(calls("http_5xx"), 3.0);
    assert_eq!(calls("timeout"), 0.0);
    assert_eq!(
        target.calls(),
        7,
        "every attempt counted reached the target"
    );
    assert_eq!(
        value(
            &after,
            "assay_endpoint_retries_total",
            &[("endpoint", "shop")]
        ),
        2.0
    );
    assert_eq!(
        value(
            &after,
            "assay_endpoint_call_duration_seconds_count",
            &[("endpoint", "shop")]
        ),
        7.0
    );
    assert_results(&after, [("passed", 2.0), ("failed", 1.0), ("error", 2.0)]);
    assert_eq!(value(&after, "assay_runs_active", &[]), 0.0);
    assert_eq!(
        value(
            &after,
            "assay_runs_finished_total",
            &[("status", "partial")]
        ),
        1.0
    );
    // Only answers are scored: three of them.
    assert_eq!(
        value(
            &after,
            "assay_metric_duration_seconds_count",
            &[("kind", "exact_match")]
        ),
        3.0
    );
    // Each result is sent once at most on the live stream.
    let sent = value(&after, "assay_result_stream_delay_seconds_count", &[]);
    assert!(sent <= 5.0, "{sent}");
    let execute = "/assay.v1.TestExecutionService/Execute";
    assert_eq!(
        value(
            &after,
            "assay_grpc_requests_total",
            &[("method", execute), ("code", "OK")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &after,
            "assay_grpc_request_duration_seconds_count",
            &[("method", execute)]
        ),
        1.0
    );
    let stored = crate::fixtures::get_run(&server, &run.id).await;
    assert_eq!(stored.status, pb::RunStatus::Partial as i32);
}

#[tokio::test]
async fn a_call_refused_by_the_outbound_policy_is_counted_as_blocked() {
    // `localhost` passes the check at create (it is no address) and resolves to a denied one
    // when the call connects.
    let (server, metrics) = Server::start_with_metrics(|config| {
        config.deny_cidr = ["127.0.0.0/8", "::1/128"]
            .map(|range| OutboundPolicy::parse_cidr(range).expect("a range"))
            .to_vec();
    })
    .await;
    let target = Target::start().await;
    let port = target.url.rsplit(':').next().expect("a port");
    create_metric(&server, exact("exact")).await;
    create_endpoint(
        &server,
        http_endpoint("walled", &format!("http://localhost:{port}")),
    )
    .await;
    create_test_set(
        &server,
        "obs",
        &["exact"],
        vec![test("Paris", "Paris", &[])],
    )
    .await;
    let (_, results, _) = execute(&server, execute_request("obs", "walled")).await;
    assert_eq!(results[0].status, pb::ResultStatus::Error as i32);

    let scraped = scrape(metrics).await;
    let calls = |outcome| {
        value(
            &scraped,
            "assay_endpoint_calls_total",
            &[("endpoint", "walled"), ("outcome", outcome)],
        )
    };
    assert_eq!(calls("blocked"), 1.0);
    assert_eq!(calls("connect_error"), 0.0);
    assert_eq!(target.calls(), 0);
}

#[tokio::test]
async fn grpc_metrics_label_refusals_by_code_and_unknown_methods_as_other() {
    let (server, metrics) = Server::start_with_metrics(|_| {}).await;
    let refused = server
        .metrics()
        .get_metric(pb::GetMetricRequest {
            metric: "missing".into(),
        })
        .await
        .expect_err("no such metric");
    assert_eq!(refused.code(), tonic::Code::NotFound);
    // A method no service has: its path is not a label value.
    let mut grpc = tonic::client::Grpc::new(server.channel());
    grpc.ready().await.expect("ready");
    let path = http::uri::PathAndQuery::from_static("/assay.v1.MetricService/Nope123");
    let codec = tonic_prost::ProstCodec::<pb::GetMetricRequest, pb::Metric>::default();
    let unknown = grpc
        .unary(
            tonic::Request::new(pb::GetMetricRequest::default()),
            path,
            codec,
        )
        .await
        .expect_err("no such method");
    assert_eq!(unknown.code(), tonic::Code::Unimplemented);

    let scraped = scrape(metrics).await;
    assert_eq!(
        value(
            &scraped,
            "assay_grpc_requests_total",
            &[
                ("method", "/assay.v1.MetricService/GetMetric"),
                ("code", "NOT_FOUND")
            ]
        ),
        1.0
    );
    assert_eq!(
        value(
            &scraped,
            "assay_grpc_requests_total",
            &[("method", "other"), ("code", "UNIMPLEMENTED")]
        ),
        1.0
    );
    assert!(
        scraped
            .samples
            .iter()
            .all(|s| s.labels.get("method") != Some("/assay.v1.MetricService/Nope123")),
        "an unknown method became a label value"
    );
}

/// An OTLP trace receiver: keeps every span exported to it.
#[derive(Clone, Default)]
struct Receiver {
    spans: Arc<Mutex<Vec<Span>>>,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let spans = request
            .into_inner()
            .resource_spans
            .into_iter()
            .flat_map(|r| r.scope_spans)
            .flat_map(|s| s.spans);
        self.spans.lock().unwrap().extend(spans);
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

impl Receiver {
    /// Serves on a loopback port; returns its URL.
    async fn start(&self) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let service = TraceServiceServer::new(self.clone());
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(TcpListenerStream::new(listener)),
        );
        format!("http://{addr}")
    }

    fn spans(&self) -> Vec<Span> {
        self.spans.lock().unwrap().clone()
    }
}

/// A span attribute as text (strings and integers).
fn attribute(span: &Span, key: &str) -> Option<String> {
    let value = span
        .attributes
        .iter()
        .find(|a| a.key == key)?
        .value
        .clone()?;
    match value.value? {
        any_value::Value::StringValue(s) => Some(s),
        any_value::Value::IntValue(i) => Some(i.to_string()),
        other => Some(format!("{other:?}")),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Creates a metric, an endpoint on `target` and a test set of `tests` on the server behind
/// `clients`; returns the test set and endpoint ids.
async fn catalogue(clients: &Clients, target: &Target, tests: Vec<pb::Test>) -> (String, String) {
    create_metric(clients, exact("exact")).await;
    let endpoint = create_endpoint(clients, retrying_endpoint("shop", target)).await;
    let set = create_test_set(clients, "traced", &["exact"], tests).await;
    (set.id, endpoint.id)
}

/// The built binary exporting every span to `receiver`, logging at `warn` only (the log level
/// must not turn the exported spans off), with clients on it; and its folder.
async fn traced_server(receiver: &Receiver) -> (Assay, Clients, tempfile::TempDir) {
    let collector = receiver.start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("assay.db");
    let assay = Assay::start_logging(
        &format!("sqlite://{}", db.display()),
        &db,
        &["--otlp-endpoint", &collector, "--otlp-sample-ratio", "1"],
        "warn",
    );
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", assay.addr()))
        .expect("an address")
        .connect()
        .await
        .expect("connect");
    (assay, Clients::on(channel), dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_an_otlp_receiver_parented_from_traceparent_to_the_endpoint_call() {
    let receiver = Receiver::default();
    let target = Target::start().await;
    let (assay, clients, _dir) = traced_server(&receiver).await;
    let (set, endpoint) = catalogue(
        &clients,
        &target,
        vec![test("Paris", "Paris", &[]), test("Rome", "Paris", &[])],
    )
    .await;

    // The caller's trace: Assay's spans must join it.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let mut request = tonic::Request::new(execute_request(&set, &endpoint));
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{trace_id}-{caller_span}-01").parse().unwrap(),
    );
    let stream = clients
        .execution()
        .execute(request)
        .await
        .expect("execute")
        .into_inner();
    let (_, results, _) = crate::fixtures::split(crate::fixtures::collect(stream).await);
    assert_eq!(results.len(), 2);
    for result in &results {
        assert_eq!(
            result.trace_id, trace_id,
            "the result stores its test's trace"
        );
    }

    // What the application saw: a traceparent of the same trace, per call.
    let headers = target.headers();
    assert_eq!(headers.len(), 2);
    let sent: Vec<String> = headers
        .iter()
        .map(|h| {
            h.get("traceparent")
                .expect("a traceparent header")
                .to_str()
                .unwrap()
                .to_string()
        })
        .collect();
    for traceparent in &sent {
        let parts: Vec<&str> = traceparent.split('-').collect();
        assert_eq!(parts.len(), 4, "{traceparent}");
        assert_eq!(parts[1], trace_id, "{traceparent}");
    }

    // SIGTERM: the server sends the spans it still holds before it exits.
    let status = tokio::task::spawn_blocking(move || assay.terminate())
        .await
        .unwrap();
    assert!(status.success(), "{status}");
    // The catalogue's RPCs made traces of their own; Execute joined the caller's.
    let spans: Vec<Span> = receiver
        .spans()
        .into_iter()
        .filter(|s| hex(&s.trace_id) == trace_id)
        .collect();
    let named = |name: &str| -> Vec<&Span> { spans.iter().filter(|s| s.name == name).collect() };
    for name in [
        "assay.run",
        "assay.test",
        "assay.endpoint_call",
        "assay.metric",
    ] {
        assert!(
            receiver
                .spans()
                .iter()
                .filter(|s| s.name == name)
                .all(|s| hex(&s.trace_id) == trace_id),
            "a {name} span left the caller's trace"
        );
    }
    let rpc = named("assay.v1.TestExecutionService/Execute");
    assert_eq!(rpc.len(), 1, "one span per RPC");
    assert_eq!(hex(&rpc[0].parent_span_id), caller_span);
    assert_eq!(
        attribute(rpc[0], "rpc.system").as_deref(),
        Some("grpc"),
        "{:?}",
        rpc[0].attributes
    );
    let run = named("assay.run");
    assert_eq!(run.len(), 1);
    assert_eq!(
        run[0].parent_span_id, rpc[0].span_id,
        "the run is the RPC's child"
    );
    let tests = named("assay.test");
    assert_eq!(tests.len(), 2);
    for t in &tests {
        assert_eq!(
            t.parent_span_id, run[0].span_id,
            "a test is the run's child"
        );
        assert!(attribute(t, "test_id").is_some());
    }
    let calls = named("assay.endpoint_call");
    assert_eq!(calls.len(), 2, "one span per attempt");
    for call in &calls {
        assert!(
            tests.iter().any(|t| t.span_id == call.parent_span_id),
            "a call is a test's child"
        );
        assert_eq!(
            attribute(call, "http.request.method").as_deref(),
            Some("POST")
        );
        assert_eq!(
            attribute(call, "http.response.status_code").as_deref(),
            Some("200")
        );
        assert_eq!(
            attribute(call, "server.address").as_deref(),
            Some("127.0.0.1")
        );
        assert_eq!(
            attribute(call, "url.full"),
            Some(format!("{}/answer", target.url))
        );
        // The application's parent is this very attempt.
        let parent = format!("00-{trace_id}-{}-01", hex(&call.span_id));
        assert!(sent.contains(&parent), "{parent} not in {sent:?}");
    }
    let metrics = named("assay.metric");
    assert_eq!(metrics.len(), 2, "one span per metric evaluation");
    for m in &metrics {
        assert!(tests.iter().any(|t| t.span_id == m.parent_span_id));
        assert_eq!(attribute(m, "metric.kind").as_deref(), Some("exact_match"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_one_object_per_line_with_run_test_and_endpoint_fields() {
    let target = Target::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("assay.db");
    let assay = Assay::start_logging(
        &format!("sqlite://{}", db.display()),
        &db,
        &["--log-format", "json"],
        "info,assay=debug",
    );
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", assay.addr()))
        .expect("an address")
        .connect()
        .await
        .expect("connect");
    let clients = Clients::on(channel);
    // A 500 is retried: the retry is logged inside the test's and the call's spans.
    let (set, endpoint) = catalogue(
        &clients,
        &target,
        vec![test("down", "down", &[("fail_status", "500")])],
    )
    .await;
    let stream = clients
        .execution()
        .execute(execute_request(&set, &endpoint))
        .await
        .expect("execute")
        .into_inner();
    let (run, results, _) = crate::fixtures::split(crate::fixtures::collect(stream).await);
    let log = assay.log_text();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: not JSON: {l}")))
        .collect();
    assert!(
        lines
            .iter()
            .all(|l| l["level"].is_string() && l["message"].is_string())
    );
    let retry = lines
        .iter()
        .find(|l| l["message"] == "retrying endpoint call")
        .unwrap_or_else(|| panic!("no retry logged:\n{log}"));
    assert_eq!(retry["run_id"], run.id.as_str());
    assert_eq!(retry["test_id"], results[0].test_id.as_str());
    assert_eq!(retry["endpoint"], "shop");
    let finished = lines
        .iter()
        .find(|l| l["message"] == "run finished")
        .expect("the run's end logged");
    assert_eq!(finished["run_id"], run.id.as_str());
}

#[tokio::test]
async fn without_a_metrics_listener_the_run_is_the_same_and_results_carry_no_trace() {
    let server = Server::start().await;
    let target = Target::start().await;
    let (set, endpoint) = catalogue(&server, &target, vec![test("Paris", "Paris", &[])]).await;
    let (_, results, _) = execute(&server, execute_request(&set, &endpoint)).await;
    assert_eq!(results[0].status, pb::ResultStatus::Passed as i32);
    assert_eq!(results[0].trace_id, "");
    assert!(target.headers()[0].get("traceparent").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_judge_call_carries_the_traceparent_of_its_tests_trace() {
    let receiver = Receiver::default();
    let target = Target::start().await;
    let (assay, clients, _dir) = traced_server(&receiver).await;
    create_metric(
        &clients,
        crate::fixtures::inline_judge("judge", &target.url),
    )
    .await;
    let endpoint = create_endpoint(&clients, http_endpoint("app", &target.url)).await;
    let tests = vec![test("capital of France?", "Paris", &[("answer", "Paris")])];
    let set = create_test_set(&clients, "judged", &["judge"], tests).await;

    let stream = clients
        .execution()
        .execute(execute_request(&set.id, &endpoint.id))
        .await
        .expect("execute")
        .into_inner();
    let (_, results, _) = crate::fixtures::split(crate::fixtures::collect(stream).await);
    let trace_id = results[0].trace_id.clone();
    assert_eq!(trace_id.len(), 32, "{:?}", results[0]);
    // Two calls reached the target: the application's and the judge's; both in the test's trace.
    let headers = target.headers();
    assert_eq!(headers.len(), 2);
    for h in &headers {
        let traceparent = h
            .get("traceparent")
            .expect("a traceparent header")
            .to_str()
            .unwrap();
        assert_eq!(
            traceparent.split('-').nth(1),
            Some(trace_id.as_str()),
            "{traceparent}"
        );
    }
    assert_ne!(
        headers[0]["traceparent"], headers[1]["traceparent"],
        "each call is a span of its own"
    );
    let status = tokio::task::spawn_blocking(move || assay.terminate())
        .await
        .unwrap();
    assert!(status.success(), "{status}");
}
