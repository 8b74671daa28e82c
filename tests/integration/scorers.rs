//! The `external` metric through the real server: scorers the user runs, over HTTP (a JSON POST)
//! and gRPC (`assay.v1.ScorerService/Score`), on 127.0.0.1. In-test scorers (axum, tonic) are
//! scripted by the test's metadata; the Python examples of `examples/scorers/` run as processes
//! with the test virtualenv's interpreter (`ASSAY_TEST_VENV`).

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use assay::proto::v1 as pb;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use pb::metric::Kind;
use pb::scorer_service_server::{ScorerService, ScorerServiceServer};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::Code;

use crate::app_server::Target;
use crate::fixtures::*;
use crate::harness::Server;
use crate::suite::{assay, code, stderr};

/// Both protocols, for the tests that hold for each.
const PROTOCOLS: [pb::ExternalProtocol; 2] =
    [pb::ExternalProtocol::Http, pb::ExternalProtocol::Grpc];

/// What a scripted scorer saw.
#[derive(Default)]
struct Seen {
    /// Every request, in arrival order.
    requests: Vec<pb::ScoreRequest>,
    /// HTTP only: every JSON body as received.
    bodies: Vec<Value>,
    /// Calls per metric and test, to fail a first call only.
    calls: HashMap<(String, String), usize>,
    in_flight: usize,
    max_in_flight: usize,
}

/// How a scripted scorer answers one request, read from the test's metadata `reply`:
/// `score=X`, `passed=true|false`, `category=NAME` (each with the reason "because NAME=X"),
/// `none` (an answer with no verdict), `fail` (HTTP 500, gRPC `INTERNAL`), `garbage` (HTTP only:
/// a body that is not JSON), `flaky` (the first call of each metric and test fails with HTTP 503,
/// gRPC `UNAVAILABLE`, then `score=1`), `slow` (answers after 5 s); without `reply`, `score=1`.
/// Metadata `delay_ms` delays every answer.
enum Reply {
    Answer(pb::ScoreResponse),
    Fail,
    Unavailable,
    Garbage,
}

/// A scorer on 127.0.0.1, HTTP or gRPC, scripted by the test's metadata.
#[derive(Clone, Default)]
struct Scripted {
    seen: Arc<Mutex<Seen>>,
}

impl Scripted {
    /// Starts a scorer speaking `protocol`; returns it and its URL.
    async fn start(protocol: pb::ExternalProtocol) -> (Scripted, String) {
        let scorer = Scripted::default();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        match protocol {
            pb::ExternalProtocol::Grpc => {
                let service = ScorerServiceServer::new(scorer.clone());
                tokio::spawn(
                    tonic::transport::Server::builder()
                        .add_service(service)
                        .serve_with_incoming(TcpListenerStream::new(listener)),
                );
                (scorer, format!("http://{addr}"))
            }
            _ => {
                let app = axum::Router::new()
                    .route("/score", axum::routing::post(http_score))
                    .with_state(scorer.clone());
                tokio::spawn(async move { axum::serve(listener, app).await });
                (scorer, format!("http://{addr}/score"))
            }
        }
    }

    /// The scripted reply to `request`, after its delay; counts calls in flight meanwhile.
    async fn reply(&self, request: pb::ScoreRequest) -> Reply {
        let script = request
            .metadata
            .get("reply")
            .cloned()
            .unwrap_or_else(|| "score=1".into());
        let delay_ms: u64 = request
            .metadata
            .get("delay_ms")
            .and_then(|d| d.parse().ok())
            .unwrap_or(0);
        let first = {
            let mut seen = self.seen.lock().unwrap();
            seen.in_flight += 1;
            seen.max_in_flight = seen.max_in_flight.max(seen.in_flight);
            let key = (request.metric.clone(), request.test_id.clone());
            let calls = seen.calls.entry(key).or_default();
            *calls += 1;
            let first = *calls == 1;
            seen.requests.push(request);
            first
        };
        let delay = if script == "slow" { 5_000 } else { delay_ms };
        tokio::time::sleep(Duration::from_millis(delay)).await;
        self.seen.lock().unwrap().in_flight -= 1;
        let (key, value) = script.split_once('=').unwrap_or((&script, ""));
        let mut answer = pb::ScoreResponse {
            reason: format!("because {script}"),
            ..Default::default()
        };
        match key {
            "score" => answer.score = Some(value.parse().expect("a score")),
            "passed" => answer.passed = Some(value == "true"),
            "category" => answer.category = value.into(),
            "none" | "slow" => {}
            "fail" => return Reply::Fail,
            "garbage" => return Reply::Garbage,
            "flaky" if first => return Reply::Unavailable,
            "flaky" => answer.score = Some(1.0),
            other => panic!("unknown script {other:?}"),
        }
        Reply::Answer(answer)
    }

    fn requests(&self) -> Vec<pb::ScoreRequest> {
        self.seen.lock().unwrap().requests.clone()
    }

    fn bodies(&self) -> Vec<Value> {
        self.seen.lock().unwrap().bodies.clone()
    }

    fn max_in_flight(&self) -> usize {
        self.seen.lock().unwrap().max_in_flight
    }

    /// Calls made for each test of metric `metric`, by prompt.
    fn calls_by_prompt(&self, metric: &str) -> HashMap<String, usize> {
        let mut calls = HashMap::new();
        for r in self.requests().iter().filter(|r| r.metric == metric) {
            *calls.entry(r.prompt.clone()).or_default() += 1;
        }
        calls
    }
}

#[tonic::async_trait]
impl ScorerService for Scripted {
    async fn score(
        &self,
        request: tonic::Request<pb::ScoreRequest>,
    ) -> Result<tonic::Response<pb::ScoreResponse>, tonic::Status> {
        match self.reply(request.into_inner()).await {
            Reply::Answer(answer) => Ok(tonic::Response::new(answer)),
            Reply::Fail => Err(tonic::Status::internal("the scorer broke")),
            Reply::Unavailable => Err(tonic::Status::unavailable("try again")),
            Reply::Garbage => panic!("gRPC answers cannot be garbage"),
        }
    }
}

/// The HTTP scorer: the JSON body as a `ScoreRequest`, the answer as JSON with only the fields
/// that are set.
async fn http_score(State(scorer): State<Scripted>, Json(body): Json<Value>) -> Response {
    scorer.seen.lock().unwrap().bodies.push(body.clone());
    let text = |key: &str| body[key].as_str().unwrap_or_default().to_string();
    let request = pb::ScoreRequest {
        test_id: text("test_id"),
        metric: text("metric"),
        prompt: text("prompt"),
        output: text("output"),
        expected_response: body["expected_response"].as_str().map(str::to_string),
        context: serde_json::from_value(body["context"].clone()).unwrap_or_default(),
        metadata: serde_json::from_value(body["metadata"].clone()).unwrap_or_default(),
    };
    match scorer.reply(request).await {
        Reply::Answer(a) => {
            let mut answer = json!({"reason": a.reason});
            if let Some(score) = a.score {
                answer["score"] = json!(score);
            }
            if let Some(passed) = a.passed {
                answer["passed"] = json!(passed);
            }
            if !a.category.is_empty() {
                answer["category"] = json!(a.category);
            }
            Json(answer).into_response()
        }
        Reply::Fail => (StatusCode::INTERNAL_SERVER_ERROR, "the scorer broke").into_response(),
        Reply::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "try again").into_response(),
        Reply::Garbage => "this is not JSON".into_response(),
    }
}

/// An `external` metric calling the scorer at `url`, with the call policy of `endpoint` ("":
/// the defaults).
fn external(name: &str, protocol: pb::ExternalProtocol, url: &str, endpoint: &str) -> pb::Metric {
    pb::Metric {
        name: name.into(),
        kind: Some(Kind::External(pb::External {
            protocol: protocol as i32,
            url: url.into(),
            endpoint: endpoint.into(),
        })),
        ..Default::default()
    }
}

/// A test the test target answers with `answer`, scripted for the scorer by `reply`.
fn scripted(prompt: &str, answer: &str, reply: &str) -> pb::Test {
    test(prompt, "expected", &[("answer", answer), ("reply", reply)])
}

/// An endpoint that is never called for tests, only lending its call policy to scorers.
fn policy(name: &str, timeout_ms: u32, max_retries: u32, max_concurrency: u32) -> pb::Endpoint {
    pb::Endpoint {
        name: name.into(),
        target: Some(pb::endpoint::Target::Http(pb::HttpTarget {
            url: "http://127.0.0.1:9/unused".into(),
            timeout_ms,
            ..Default::default()
        })),
        max_retries: Some(max_retries),
        max_concurrency,
        ..Default::default()
    }
}

/// The result of metric `metric` for the test with `prompt`.
fn metric_result<'a>(
    results: &'a [pb::TestResult],
    prompt: &str,
    metric: &str,
) -> &'a pb::MetricResult {
    let result = results
        .iter()
        .find(|r| r.prompt == prompt)
        .unwrap_or_else(|| panic!("no result for {prompt:?}"));
    result
        .metric_results
        .iter()
        .find(|m| m.metric_name == metric)
        .unwrap_or_else(|| panic!("no {metric} result for {prompt:?}"))
}

/// Results in a comparable form: prompt, status and each metric's score, category, verdict,
/// reason and error.
fn verdicts(results: &[pb::TestResult]) -> Vec<String> {
    let mut lines: Vec<String> = results
        .iter()
        .map(|r| {
            let metrics: Vec<String> = r
                .metric_results
                .iter()
                .map(|m| {
                    format!(
                        "{} {:?} {:?} {} {:?} {:?}",
                        m.metric_name, m.score, m.category, m.passed, m.reason, m.error
                    )
                })
                .collect();
            format!("{} {} {metrics:?}", r.prompt, r.status)
        })
        .collect();
    lines.sort();
    lines
}

#[tokio::test]
async fn a_scorers_score_passed_and_reason_make_the_result_over_either_protocol() {
    for protocol in PROTOCOLS {
        let server = Server::start().await;
        let target = Target::start().await;
        let (scorer, url) = Scripted::start(protocol).await;
        create_endpoint(&server, http_endpoint("app", &target.url)).await;
        let mut metric = external("judged", protocol, &url, "");
        metric.threshold = Some(0.7);
        let created = create_metric(&server, metric).await;
        assert_eq!(created.score_type, pb::ScoreType::Numeric as i32);
        let tests = vec![
            scripted("high", "a", "score=0.8"),
            scripted("low", "b", "score=0.6"),
            // `passed` is the verdict, whatever the score.
            scripted("vetoed", "c", "passed=false"),
            scripted("approved", "d", "passed=true"),
        ];
        create_test_set(&server, "set", &["judged"], tests).await;

        let (run, streamed, summary) = execute(&server, execute_request("set", "app")).await;
        let high = metric_result(&streamed, "high", "judged");
        assert_eq!((high.score, high.passed), (Some(0.8), true), "{protocol:?}");
        assert_eq!(high.reason, "because score=0.8");
        let low = metric_result(&streamed, "low", "judged");
        assert_eq!((low.score, low.passed), (Some(0.6), false), "{protocol:?}");
        let vetoed = metric_result(&streamed, "vetoed", "judged");
        assert_eq!((vetoed.score, vetoed.passed), (Some(0.0), false));
        assert_eq!(vetoed.reason, "because passed=false");
        let approved = metric_result(&streamed, "approved", "judged");
        assert_eq!((approved.score, approved.passed), (Some(1.0), true));
        assert_eq!((summary.passed, summary.failed), (2, 2), "{protocol:?}");
        // What was streamed was stored.
        let stored = stored_results(&server, &run.id).await;
        assert_eq!(verdicts(&stored), verdicts(&streamed), "{protocol:?}");

        // The scorer was given the test, the answer and the metric.
        let requests = scorer.requests();
        assert_eq!(requests.len(), 4, "{protocol:?}");
        let high_request = requests.iter().find(|r| r.prompt == "high").unwrap();
        let high_result = streamed.iter().find(|r| r.prompt == "high").unwrap();
        assert_eq!(high_request.test_id, high_result.test_id);
        assert_eq!(high_request.metric, "judged");
        assert_eq!(high_request.output, "a");
        assert_eq!(high_request.expected_response.as_deref(), Some("expected"));
        assert_eq!(high_request.metadata["reply"], "score=0.8");
    }
}

#[tokio::test]
async fn an_http_scorer_gets_the_fields_as_snake_case_json() {
    let server = Server::start().await;
    let target = Target::start().await;
    let (scorer, url) = Scripted::start(pb::ExternalProtocol::Http).await;
    create_endpoint(&server, http_endpoint("app", &target.url)).await;
    create_metric(
        &server,
        external("judged", pb::ExternalProtocol::Http, &url, ""),
    )
    .await;
    let tests = vec![
        test(
            "with",
            "expected",
            &[
                ("answer", "out"),
                ("reply", "score=1"),
                ("context", "passage"),
            ],
        ),
        test("without", "", &[("answer", "out"), ("reply", "score=1")]),
    ];
    create_test_set(&server, "set", &["judged"], tests).await;
    let (_, results, _) = execute(&server, execute_request("set", "app")).await;

    let bodies = scorer.bodies();
    let with = bodies.iter().find(|b| b["prompt"] == "with").unwrap();
    let test_id = &results.iter().find(|r| r.prompt == "with").unwrap().test_id;
    assert_eq!(
        *with,
        json!({
            "test_id": test_id,
            "metric": "judged",
            "prompt": "with",
            "output": "out",
            "expected_response": "expected",
            "context": ["passage"],
            "metadata": {"answer": "out", "reply": "score=1", "context": "passage"},
        })
    );
    // A test without an expected response: null, and the scorer is still called.
    let without = bodies.iter().find(|b| b["prompt"] == "without").unwrap();
    assert_eq!(without["expected_response"], Value::Null, "{without}");
}

#[tokio::test]
async fn a_categorical_scorer_passes_on_the_passing_categories() {
    for protocol in PROTOCOLS {
        let server = Server::start().await;
        let target = Target::start().await;
        let (_scorer, url) = Scripted::start(protocol).await;
        create_endpoint(&server, http_endpoint("app", &target.url)).await;
        let mut metric = external("tone", protocol, &url, "");
        metric.score_type = pb::ScoreType::Categorical as i32;
        metric.categories = vec!["polite".into(), "rude".into()];
        metric.passing_categories = vec!["polite".into()];
        create_metric(&server, metric).await;
        let tests = vec![
            scripted("kind", "a", "category=Polite"),
            scripted("harsh", "b", "category=rude"),
            scripted("odd", "c", "category=sarcastic"),
            scripted("silent", "d", "score=1"),
        ];
        create_test_set(&server, "set", &["tone"], tests).await;
        let (_, results, _) = execute(&server, execute_request("set", "app")).await;

        let kind = metric_result(&results, "kind", "tone");
        assert_eq!((kind.category.as_str(), kind.passed), ("polite", true));
        assert_eq!(kind.reason, "because category=Polite");
        let harsh = metric_result(&results, "harsh", "tone");
        assert_eq!((harsh.category.as_str(), harsh.passed), ("rude", false));
        let odd = metric_result(&results, "odd", "tone");
        assert!(
            odd.error.contains("\"sarcastic\" is not one of"),
            "{}",
            odd.error
        );
        let silent = metric_result(&results, "silent", "tone");
        assert!(silent.error.contains("no category"), "{}", silent.error);
    }
}

#[tokio::test]
async fn a_failing_scorer_is_an_error_of_its_metric_and_the_run_goes_on() {
    for protocol in PROTOCOLS {
        let server = Server::start().await;
        let target = Target::start().await;
        let (_scorer, url) = Scripted::start(protocol).await;
        create_endpoint(&server, http_endpoint("app", &target.url)).await;
        // No retries, and a timeout well under the slow answer's 5 s.
        create_endpoint(&server, policy("strict", 300, 0, 0)).await;
        create_metric(&server, external("judged", protocol, &url, "strict")).await;
        create_metric(&server, regex("anything", ".")).await;
        let mut tests = vec![
            scripted("fine", "a", "score=0.9"),
            scripted("empty", "b", "none"),
            scripted("broken", "c", "fail"),
            scripted("slow", "d", "slow"),
        ];
        if protocol == pb::ExternalProtocol::Http {
            tests.push(scripted("garbage", "e", "garbage"));
        }
        create_test_set(&server, "set", &["judged", "anything"], tests).await;
        let (_, results, summary) = execute(&server, execute_request("set", "app")).await;

        let fine = metric_result(&results, "fine", "judged");
        assert_eq!(
            (fine.score, fine.passed, fine.error.as_str()),
            (Some(0.9), true, "")
        );
        let error = |prompt: &str| {
            let m = metric_result(&results, prompt, "judged");
            assert!(!m.passed && m.score.is_none(), "{prompt}: {m:?}");
            // The other metric of the test was still evaluated.
            assert_eq!(metric_result(&results, prompt, "anything").error, "");
            m.error.clone()
        };
        let empty = error("empty");
        assert!(
            empty.contains("none of score, passed and category"),
            "{empty}"
        );
        let broken = error("broken");
        let wanted = match protocol {
            pb::ExternalProtocol::Grpc => "Internal: the scorer broke",
            _ => "HTTP 500: the scorer broke",
        };
        assert!(broken.contains(wanted) && broken.contains(&url), "{broken}");
        let slow = error("slow");
        assert!(slow.contains("timed out after 300 ms"), "{slow}");
        if protocol == pb::ExternalProtocol::Http {
            let garbage = error("garbage");
            assert!(garbage.contains("not JSON"), "{garbage}");
        }
        // Failed, not errored: the other metric scored every test.
        assert_eq!(summary.errored, 0, "{protocol:?}");
        assert_eq!(summary.passed, 1, "{protocol:?}");
    }
}

#[tokio::test]
async fn scorer_calls_are_retried_as_the_endpoints_call_policy_allows() {
    for protocol in PROTOCOLS {
        let server = Server::start().await;
        let target = Target::start().await;
        let (scorer, url) = Scripted::start(protocol).await;
        create_endpoint(&server, http_endpoint("app", &target.url)).await;
        create_endpoint(&server, policy("retrying", 0, 1, 0)).await;
        create_endpoint(&server, policy("once", 0, 0, 0)).await;
        create_metric(&server, external("retried", protocol, &url, "retrying")).await;
        create_metric(&server, external("not-retried", protocol, &url, "once")).await;
        let tests = vec![scripted("q1", "a", "flaky"), scripted("q2", "b", "flaky")];
        create_test_set(&server, "set", &["retried", "not-retried"], tests).await;
        let (_, results, _) = execute(&server, execute_request("set", "app")).await;

        for prompt in ["q1", "q2"] {
            let retried = metric_result(&results, prompt, "retried");
            assert_eq!(
                (retried.score, retried.passed),
                (Some(1.0), true),
                "{retried:?}"
            );
            let once = metric_result(&results, prompt, "not-retried");
            assert!(!once.passed, "{once:?}");
            let wanted = match protocol {
                pb::ExternalProtocol::Grpc => "Unavailable",
                _ => "HTTP 503",
            };
            assert!(once.error.contains(wanted), "{}", once.error);
        }
        let each = HashMap::from([("q1".to_string(), 2), ("q2".to_string(), 2)]);
        assert_eq!(scorer.calls_by_prompt("retried"), each, "{protocol:?}");
        let once = HashMap::from([("q1".to_string(), 1), ("q2".to_string(), 1)]);
        assert_eq!(scorer.calls_by_prompt("not-retried"), once, "{protocol:?}");
    }
}

#[tokio::test]
async fn scorer_calls_keep_the_endpoints_concurrency_limit() {
    for protocol in PROTOCOLS {
        let server = Server::start().await;
        let target = Target::start().await;
        let (scorer, url) = Scripted::start(protocol).await;
        create_endpoint(&server, http_endpoint("app", &target.url)).await;
        create_endpoint(&server, policy("narrow", 0, 0, 2)).await;
        create_metric(&server, external("judged", protocol, &url, "narrow")).await;
        let tests = (0..8)
            .map(|i| {
                let prompt = format!("q{i}");
                test(&prompt, "x", &[("reply", "score=1"), ("delay_ms", "100")])
            })
            .collect();
        create_test_set(&server, "set", &["judged"], tests).await;
        let mut request = execute_request("set", "app");
        request.max_concurrency = 8;
        let (_, results, summary) = execute(&server, request).await;
        assert_eq!(summary.passed, 8, "{results:?}");
        let most = scorer.max_in_flight();
        assert!(
            (1..=2).contains(&most),
            "{protocol:?}: {most} calls at once"
        );
    }
}

#[tokio::test]
async fn a_rescore_calls_the_scorer_again_with_the_stored_answer() {
    let server = Server::start().await;
    let target = Target::start().await;
    let (scorer, url) = Scripted::start(pb::ExternalProtocol::Http).await;
    create_endpoint(&server, http_endpoint("app", &target.url)).await;
    create_metric(&server, regex("anything", ".")).await;
    create_metric(
        &server,
        external("judged", pb::ExternalProtocol::Http, &url, ""),
    )
    .await;
    create_test_set(
        &server,
        "set",
        &["anything"],
        vec![scripted("q", "stored", "score=0.9")],
    )
    .await;
    let (source, _, _) = execute(&server, execute_request("set", "app")).await;
    assert!(
        scorer.requests().is_empty(),
        "the scorer was called too soon"
    );
    let calls = target.calls();

    let request = pb::RescoreRequest {
        test_set: "set".into(),
        endpoint: "app".into(),
        run: source.id.clone(),
        metrics: vec!["judged".into()],
        ..Default::default()
    };
    let (_, results, _) = rescore(&server, request).await;
    let judged = metric_result(&results, "q", "judged");
    // Stored results keep no test metadata, so the scorer answers its default.
    assert_eq!(
        (judged.score, judged.reason.as_str()),
        (Some(1.0), "because score=1")
    );
    assert_eq!(target.calls(), calls, "a rescore calls no endpoint");
    let requests = scorer.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        (requests[0].output.as_str(), requests[0].prompt.as_str()),
        ("stored", "q")
    );
    assert!(
        requests[0].metadata.is_empty(),
        "{:?}",
        requests[0].metadata
    );
}

#[tokio::test]
async fn external_settings_are_checked_when_the_metric_is_created() {
    let server = Server::start().await;
    let target = Target::start().await;
    let app = create_endpoint(&server, http_endpoint("app", &target.url)).await;
    let create = |metric: pb::Metric| {
        let mut client = server.metrics();
        async move {
            client
                .create_metric(pb::CreateMetricRequest {
                    metric: Some(metric),
                })
                .await
        }
    };
    let refused = |metric: pb::Metric, code: Code, needles: &[&str]| {
        let create = &create;
        let needles: Vec<String> = needles.iter().map(|n| n.to_string()).collect();
        async move {
            let status = create(metric).await.expect_err("the metric was created");
            assert_eq!(status.code(), code, "{}", status.message());
            for needle in needles {
                assert!(status.message().contains(&needle), "{}", status.message());
            }
        }
    };
    let http = pb::ExternalProtocol::Http;
    let grpc = pb::ExternalProtocol::Grpc;
    let field = "metric.external.url";
    refused(external("m", http, "", ""), Code::InvalidArgument, &[field]).await;
    refused(
        external("m", http, "ftp://127.0.0.1/score", ""),
        Code::InvalidArgument,
        &[field, "ftp://127.0.0.1/score"],
    )
    .await;
    refused(
        external("m", grpc, "http://127.0.0.1:1/score", ""),
        Code::InvalidArgument,
        &[field, "http://127.0.0.1:1/score"],
    )
    .await;
    // The outbound policy refuses link-local addresses by default.
    refused(
        external("m", http, "http://169.254.169.254/score", ""),
        Code::InvalidArgument,
        &[field, "169.254"],
    )
    .await;
    let mut protocol = external("m", http, "http://127.0.0.1:1/score", "");
    if let Some(Kind::External(settings)) = protocol.kind.as_mut() {
        settings.protocol = 7;
    }
    refused(
        protocol,
        Code::InvalidArgument,
        &["metric.external.protocol", "7"],
    )
    .await;
    refused(
        external("m", http, "http://127.0.0.1:1/score", "nowhere"),
        Code::NotFound,
        &["nowhere"],
    )
    .await;
    let mut categorical = external("m", http, "http://127.0.0.1:1/score", "");
    categorical.score_type = pb::ScoreType::Categorical as i32;
    refused(categorical, Code::InvalidArgument, &["metric.categories"]).await;

    // Any endpoint lends its call policy; it is stored and returned as its id, and the protocol
    // as given (unspecified reads as HTTP).
    let created = create(external("m", grpc, "http://127.0.0.1:1", "app"))
        .await
        .expect("create")
        .into_inner();
    let Some(Kind::External(settings)) = created.kind else {
        panic!("{created:?}")
    };
    assert_eq!(settings.endpoint, app.id);
    assert_eq!(settings.protocol, grpc as i32);
    let plain = external(
        "plain",
        pb::ExternalProtocol::Unspecified,
        "http://127.0.0.1:1",
        "",
    );
    let created = create(plain).await.expect("create").into_inner();
    let Some(Kind::External(settings)) = created.kind else {
        panic!("{created:?}")
    };
    assert_eq!(settings.protocol, http as i32);
}

#[tokio::test]
async fn a_suite_names_the_scorers_policy_endpoint_in_the_same_file() {
    let target = Target::start().await;
    let (scorer, url) = Scripted::start(pb::ExternalProtocol::Http).await;
    let dir = tempfile::tempdir().unwrap();
    let suite = format!(
        r#"metrics:
  - name: judged
    threshold: 0.7
    external: {{url: "{url}", endpoint: scorer-policy}}
endpoints:
  - name: scorer-policy
    http: {{url: "{url}"}}
    maxConcurrency: 1
  - name: app
    http: {{url: "{app}/answer", bodyTemplate: '{body}', responseMapping: {{output: $.output}}}}
testSets:
  - name: set
    metrics: [judged]
    tests:
      - {{prompt: good, metadata: {{reply: "score=0.8"}}}}
      - {{prompt: bad, metadata: {{reply: "score=0.2"}}}}
"#,
        app = target.url,
        body = TARGET_BODY,
    );
    std::fs::write(dir.path().join("suite.yaml"), suite).unwrap();
    let output = assay(
        None,
        dir.path(),
        &["eval", "-f", "suite.yaml", "--endpoint", "app"],
    )
    .await;
    // The gate fails on the one answer the scorer scored under the threshold.
    assert_eq!(code(&output), 3, "{}", stderr(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("1 passed, 1 failed"), "{stdout}");
    assert!(stdout.contains("because score=0.2"), "{stdout}");
    assert_eq!(scorer.requests().len(), 2);
}

/// A Python example scorer running as a process; killed when dropped.
struct Example {
    child: Child,
    /// The address it printed.
    url: String,
}

impl Example {
    /// Starts `examples/scorers/<script>` on a free port with the test virtualenv's Python, and
    /// waits for its "listening on URL" line.
    fn start(script: &str) -> Example {
        let venv = std::env::var_os("ASSAY_TEST_VENV")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .expect("ASSAY_TEST_VENV is not set: run the tests through scripts/test");
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut child = Command::new(venv.join("bin").join("python"))
            .arg(root.join("examples/scorers").join(script))
            .arg("0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{script}: {e}"));
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the first line");
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("{script} printed {line:?}"))
            .to_string();
        Example { child, url }
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn the_python_example_scorers_score_word_recall() {
    let http = Example::start("http_scorer.py");
    let grpc = Example::start("grpc_scorer.py");
    let server = Server::start().await;
    let target = Target::start().await;
    create_endpoint(&server, http_endpoint("app", &target.url)).await;
    let with_threshold = |mut metric: pb::Metric| {
        metric.threshold = Some(0.75);
        metric
    };
    let http_url = format!("{}/score", http.url);
    let metrics = [
        external("recall-http", pb::ExternalProtocol::Http, &http_url, ""),
        external("recall-grpc", pb::ExternalProtocol::Grpc, &grpc.url, ""),
    ];
    for metric in metrics {
        create_metric(&server, with_threshold(metric)).await;
    }
    let tests = vec![
        test(
            "capital",
            "Paris is the capital",
            &[("answer", "The capital is Paris.")],
        ),
        test(
            "partly",
            "Paris is the capital",
            &[("answer", "It is Lyon, the capital")],
        ),
        test("unknown", "", &[("answer", "No idea")]),
    ];
    create_test_set(&server, "set", &["recall-http", "recall-grpc"], tests).await;
    let (run, streamed, _) = execute(&server, execute_request("set", "app")).await;
    let stored = stored_results(&server, &run.id).await;
    assert_eq!(verdicts(&stored), verdicts(&streamed));

    for metric in ["recall-http", "recall-grpc"] {
        for results in [&streamed, &stored] {
            let capital = metric_result(results, "capital", metric);
            assert_eq!(
                (capital.score, capital.passed),
                (Some(1.0), true),
                "{metric}"
            );
            assert_eq!(capital.reason, "4 of 4 expected words found");
            let partly = metric_result(results, "partly", metric);
            assert_eq!(
                (partly.score, partly.passed),
                (Some(0.75), true),
                "{metric}"
            );
            assert_eq!(partly.reason, "3 of 4 expected words found");
            let unknown = metric_result(results, "unknown", metric);
            assert_eq!(
                (unknown.score, unknown.passed),
                (Some(0.0), false),
                "{metric}"
            );
            assert_eq!(unknown.reason, "the test has no expected response");
        }
    }
}
