//! Small builders for requests, shared by the test modules.

use std::collections::HashMap;

use assay::cli::Clients;
use assay::proto::v1 as pb;
use futures::StreamExt;
use tonic::Streaming;
use tonic::transport::Channel;

use crate::harness::Server;

/// A `contains` metric (any value, case-insensitive).
pub fn contains(name: &str, values: &[&str]) -> pb::Metric {
    pb::Metric {
        name: name.into(),
        kind: Some(pb::metric::Kind::Contains(pb::Contains {
            values: values.iter().map(|v| v.to_string()).collect(),
            match_all: false,
            case_sensitive: false,
        })),
        ..Default::default()
    }
}

/// An `exact_match` metric against the expected response.
pub fn exact(name: &str) -> pb::Metric {
    pb::Metric {
        name: name.into(),
        kind: Some(pb::metric::Kind::ExactMatch(pb::ExactMatch::default())),
        ..Default::default()
    }
}

/// A `regex` metric.
pub fn regex(name: &str, pattern: &str) -> pb::Metric {
    pb::Metric {
        name: name.into(),
        kind: Some(pb::metric::Kind::Regex(pb::Regex {
            pattern: pattern.into(),
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// Body template of the test target: each behaviour knob comes from the test's metadata.
pub const TARGET_BODY: &str = r#"{"prompt": "{{ prompt }}", "answer": "{{ metadata.answer }}", "delay_ms": "{{ metadata.delay_ms }}", "fail_status": "{{ metadata.fail_status }}", "context": "{{ metadata.context }}"}"#;

/// An LLM judge metric on the test target's judge (`/judge/v1`, which scores answers naming
/// Paris 0.9 and others 0.2), given inline; passes at 0.5.
pub fn inline_judge(name: &str, target_url: &str) -> pb::Metric {
    pb::Metric {
        name: name.into(),
        threshold: Some(0.5),
        kind: Some(pb::metric::Kind::LlmJudge(pb::LlmJudge {
            base_url: format!("{target_url}/judge/v1"),
            model: "judge-model".into(),
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// An HTTP endpoint pointing at the test target's `/answer`.
pub fn http_endpoint(name: &str, target_url: &str) -> pb::Endpoint {
    pb::Endpoint {
        name: name.into(),
        target: Some(pb::endpoint::Target::Http(pb::HttpTarget {
            url: format!("{target_url}/answer"),
            body_template: TARGET_BODY.into(),
            response_mapping: Some(pb::ResponseMapping {
                output: "$.output".into(),
                context: "$.context".into(),
                metadata: "$.meta".into(),
                ..Default::default()
            }),
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// A test with a prompt, an expected response (`""`: none) and metadata.
pub fn test(prompt: &str, expected: &str, metadata: &[(&str, &str)]) -> pb::Test {
    pb::Test {
        prompt: prompt.into(),
        expected_response: (!expected.is_empty()).then(|| expected.into()),
        metadata: metadata
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<HashMap<_, _>>(),
        ..Default::default()
    }
}

/// Creates a metric and returns it.
pub async fn create_metric(server: &Clients, metric: pb::Metric) -> pb::Metric {
    server
        .metrics()
        .create_metric(pb::CreateMetricRequest {
            metric: Some(metric),
        })
        .await
        .expect("create metric")
        .into_inner()
}

/// Creates an endpoint and returns it.
pub async fn create_endpoint(server: &Clients, endpoint: pb::Endpoint) -> pb::Endpoint {
    server
        .endpoints()
        .create_endpoint(pb::CreateEndpointRequest {
            endpoint: Some(endpoint),
        })
        .await
        .expect("create endpoint")
        .into_inner()
}

/// Creates a test set with `tests` and the given test-set metrics.
pub async fn create_test_set(
    server: &Clients,
    name: &str,
    metrics: &[&str],
    tests: Vec<pb::Test>,
) -> pb::TestSet {
    let mut client = server.test_sets();
    let set = client
        .create_test_set(pb::CreateTestSetRequest {
            test_set: Some(pb::TestSet {
                name: name.into(),
                metrics: metrics.iter().map(|m| m.to_string()).collect(),
                ..Default::default()
            }),
        })
        .await
        .expect("create test set")
        .into_inner();
    if !tests.is_empty() {
        client
            .add_tests(pb::AddTestsRequest {
                test_set: set.id.clone(),
                tests,
            })
            .await
            .expect("add tests");
    }
    set
}

/// Every event of a stream, until it ends.
pub async fn collect(mut stream: Streaming<pb::ExecutionEvent>) -> Vec<pb::execution_event::Event> {
    let mut events = Vec::new();
    while let Some(event) = stream.next().await {
        events.push(event.expect("stream event").event.expect("event set"));
    }
    events
}

/// The run, results and summary of a complete event list, checking their order.
pub fn split(
    events: Vec<pb::execution_event::Event>,
) -> (pb::TestRun, Vec<pb::TestResult>, pb::TestRunSummary) {
    use pb::execution_event::Event;
    let mut iter = events.into_iter();
    let Some(Event::RunStarted(run)) = iter.next() else {
        panic!("the first event is not the run")
    };
    let mut results = Vec::new();
    let mut summary = None;
    for event in iter {
        assert!(summary.is_none(), "an event came after the summary");
        match event {
            Event::Result(r) => results.push(r),
            Event::RunFinished(s) => summary = Some(s),
            Event::RunStarted(_) => panic!("a second run_started event"),
        }
    }
    (run, results, summary.expect("no summary at the end"))
}

/// Executes and collects the whole stream.
pub async fn execute(
    server: &Server,
    request: pb::ExecuteRequest,
) -> (pb::TestRun, Vec<pb::TestResult>, pb::TestRunSummary) {
    let stream = server
        .execution()
        .execute(request)
        .await
        .expect("execute")
        .into_inner();
    split(collect(stream).await)
}

/// Rescores and collects the whole stream.
pub async fn rescore(
    server: &Server,
    request: pb::RescoreRequest,
) -> (pb::TestRun, Vec<pb::TestResult>, pb::TestRunSummary) {
    let stream = server
        .execution()
        .rescore(request)
        .await
        .expect("rescore")
        .into_inner();
    split(collect(stream).await)
}

/// An execute request for a test set and endpoint with everything else default.
pub fn execute_request(test_set: &str, endpoint: &str) -> pb::ExecuteRequest {
    pb::ExecuteRequest {
        test_set: test_set.into(),
        endpoint: endpoint.into(),
        ..Default::default()
    }
}

/// Starts an execution and returns its run (the first event) and the rest of the stream.
pub async fn start(
    server: &Server,
    request: pb::ExecuteRequest,
) -> (pb::TestRun, Streaming<pb::ExecutionEvent>) {
    let mut stream = server
        .execution()
        .execute(request)
        .await
        .expect("execute")
        .into_inner();
    match stream.next().await {
        Some(Ok(pb::ExecutionEvent {
            event: Some(pb::execution_event::Event::RunStarted(run)),
        })) => (run, stream),
        other => panic!("expected the run first, got {other:?}"),
    }
}

/// Follows run `run` through `WatchTestRun`: its events from the first.
pub async fn watch(server: &Server, run: &str) -> Streaming<pb::ExecutionEvent> {
    server
        .execution()
        .watch_test_run(pb::WatchTestRunRequest { run: run.into() })
        .await
        .expect("watch the run")
        .into_inner()
}

/// The next event of a stream, which must be a result.
pub async fn next_result(stream: &mut Streaming<pb::ExecutionEvent>) -> pb::TestResult {
    match stream.next().await {
        Some(Ok(pb::ExecutionEvent {
            event: Some(pb::execution_event::Event::Result(result)),
        })) => result,
        other => panic!("expected a result, got {other:?}"),
    }
}

/// The results stored for a run (first page of up to 1000).
pub async fn stored_results(server: &Server, run: &str) -> Vec<pb::TestResult> {
    stored_results_on(&server.channel(), run).await
}

/// The results stored for a run, as the server behind `channel` lists them (up to 1000).
pub async fn stored_results_on(channel: &Channel, run: &str) -> Vec<pb::TestResult> {
    pb::test_execution_service_client::TestExecutionServiceClient::new(channel.clone())
        .list_test_results(pb::ListTestResultsRequest {
            run: run.into(),
            page_size: 1000,
            ..Default::default()
        })
        .await
        .expect("list results")
        .into_inner()
        .results
}

/// A run as stored now.
pub async fn get_run(server: &Server, run: &str) -> pb::TestRun {
    server
        .execution()
        .get_test_run(pb::GetTestRunRequest { run: run.into() })
        .await
        .expect("get run")
        .into_inner()
}

/// Every service the server registers (besides reflection): what reflection must list.
pub const SERVICES: &[&str] = &[
    "assay.v1.MetricService",
    "assay.v1.BehaviorService",
    "assay.v1.EndpointService",
    "assay.v1.TestSetService",
    "assay.v1.TestExecutionService",
    "grpc.health.v1.Health",
];

/// Every test of a test set, through the generated client (all pages).
pub async fn stored_tests(server: &Server, test_set: &str) -> Vec<pb::Test> {
    let mut tests = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = server
            .test_sets()
            .list_tests(pb::ListTestsRequest {
                test_set: test_set.into(),
                page_size: 1000,
                page_token,
            })
            .await
            .expect("list tests")
            .into_inner();
        tests.extend(page.tests);
        if page.next_page_token.is_empty() {
            return tests;
        }
        page_token = page.next_page_token;
    }
}

/// The summary `LastRun` answers for a test set and endpoint (`None`: no completed run).
pub async fn last_run(
    server: &Server,
    test_set: &str,
    endpoint: &str,
) -> Option<pb::TestRunSummary> {
    server
        .execution()
        .last_run(pb::LastRunRequest {
            test_set: test_set.into(),
            endpoint: endpoint.into(),
            ..Default::default()
        })
        .await
        .expect("last run")
        .into_inner()
        .run
}
