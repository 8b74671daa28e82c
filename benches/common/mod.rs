//! What both benchmarks need: an echo target on 127.0.0.1 and a catalogue to run against it.

use std::time::Duration;

use assay::proto::v1 as pb;
use axum::Json;
use axum::routing::post;
use serde_json::{Value, json};
use tonic::transport::Channel;

/// The metric every test set uses; every echo answer passes it.
pub const METRIC: &str = "has-answer";
/// Tests per `AddTests` call (well below the gRPC message limit), and per `ImportTests` message.
const ADD_CHUNK: usize = 10_000;
const IMPORT_PIECE: usize = 1_000;

/// A minimal echo target: answers `{"output": "answer to <prompt>"}` after `delay_ms` (a string
/// field of the request body, as a body template renders it). Returns its URL.
pub async fn start_target() -> String {
    async fn answer(Json(body): Json<Value>) -> Json<Value> {
        let delay = body["delay_ms"]
            .as_str()
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        Json(
            json!({ "output": format!("answer to {}", body["prompt"].as_str().unwrap_or_default()) }),
        )
    }
    let app = axum::Router::new().route("/answer", post(answer));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/answer", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

/// The `contains` metric [`METRIC`] (once per server), an endpoint on the echo `target` that asks
/// for `delay_ms`, and a test set of `tests` tests scored by the metric; both named `name`.
pub async fn setup(channel: &Channel, target: &str, name: &str, tests: usize, delay_ms: u64) {
    let mut metrics = pb::metric_service_client::MetricServiceClient::new(channel.clone());
    let exists = metrics
        .get_metric(pb::GetMetricRequest {
            metric: METRIC.into(),
        })
        .await
        .is_ok();
    if !exists {
        metrics
            .create_metric(pb::CreateMetricRequest {
                metric: Some(pb::Metric {
                    name: METRIC.into(),
                    kind: Some(pb::metric::Kind::Contains(pb::Contains {
                        values: vec!["answer".into()],
                        ..Default::default()
                    })),
                    ..Default::default()
                }),
            })
            .await
            .unwrap();
    }
    pb::endpoint_service_client::EndpointServiceClient::new(channel.clone())
        .create_endpoint(pb::CreateEndpointRequest {
            endpoint: Some(pb::Endpoint {
                name: name.into(),
                target: Some(pb::endpoint::Target::Http(pb::HttpTarget {
                    url: target.into(),
                    body_template: format!(
                        r#"{{"prompt": "{{{{ prompt }}}}", "delay_ms": "{delay_ms}"}}"#
                    ),
                    ..Default::default()
                })),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    let mut sets = pb::test_set_service_client::TestSetServiceClient::new(channel.clone());
    let test_set = pb::TestSet {
        name: name.into(),
        metrics: vec![METRIC.into()],
        ..Default::default()
    };
    let tests = (0..tests).map(|i| pb::Test {
        prompt: format!("question {i}"),
        ..Default::default()
    });
    if add_tests_calls() {
        sets.create_test_set(pb::CreateTestSetRequest {
            test_set: Some(test_set),
        })
        .await
        .unwrap();
        let tests: Vec<pb::Test> = tests.collect();
        for chunk in tests.chunks(ADD_CHUNK) {
            sets.add_tests(pb::AddTestsRequest {
                test_set: name.into(),
                tests: chunk.to_vec(),
            })
            .await
            .unwrap();
        }
        return;
    }
    // One import: the test set and its tests, in pieces, as the CLI sends them.
    let first = pb::ImportTestsRequest {
        new_test_set: Some(test_set),
        ..Default::default()
    };
    let pieces = tests
        .collect::<Vec<_>>()
        .chunks(IMPORT_PIECE)
        .map(|piece| pb::ImportTestsRequest {
            tests: piece.to_vec(),
            ..Default::default()
        })
        .collect::<Vec<_>>();
    sets.import_tests(futures::stream::iter(std::iter::once(first).chain(pieces)))
        .await
        .unwrap();
}

/// Whether tests go in with `AddTests` calls of [`ADD_CHUNK`] (`ASSAY_BENCH_IMPORT=add-tests`,
/// for builds older than `ImportTests`) rather than one `ImportTests` stream.
pub fn add_tests_calls() -> bool {
    std::env::var("ASSAY_BENCH_IMPORT").is_ok_and(|v| v == "add-tests")
}
