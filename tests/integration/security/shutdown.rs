//! SIGTERM stops the built binary within its grace period, whatever it is doing: here, rendering
//! body templates that would run for hours (allowed by a huge `--template-fuel`).

use std::collections::HashMap;

use assay::proto::v1 as pb;
use tonic::transport::Channel;

use super::recorder::Recorder;
use crate::e2e::Assay;
use crate::fixtures::{regex, test};

/// Ten billion loop steps per render, writing nothing (so no output limit ends it early); a
/// body template may use only its variables, so the loops run over the prompt's characters.
const HOURS: &str = r#"{"prompt": "{% for i in prompt * 100000 %}{% for j in prompt * 100000 %}{% endfor %}{% endfor %}"}"#;

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_stops_the_server_within_its_grace_period_while_templates_render() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("assay.db");
    let server = tokio::task::block_in_place(|| {
        Assay::start_with(
            &format!("sqlite://{}", db.display()),
            &db,
            &[
                "--template-fuel",
                "100000000000000",
                "--shutdown-grace-ms",
                "1000",
            ],
        )
    });
    let channel = Channel::from_shared(format!("http://{}", server.addr()))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let target = Recorder::start().await;
    pb::metric_service_client::MetricServiceClient::new(channel.clone())
        .create_metric(pb::CreateMetricRequest {
            metric: Some(regex("anything", ".")),
        })
        .await
        .expect("metric");
    pb::endpoint_service_client::EndpointServiceClient::new(channel.clone())
        .create_endpoint(pb::CreateEndpointRequest {
            endpoint: Some(pb::Endpoint {
                name: "slow-template".into(),
                target: Some(pb::endpoint::Target::Http(pb::HttpTarget {
                    url: format!("{}/answer", target.url),
                    body_template: HOURS.into(),
                    headers: HashMap::new(),
                    ..Default::default()
                })),
                ..Default::default()
            }),
        })
        .await
        .expect("endpoint");
    let mut sets = pb::test_set_service_client::TestSetServiceClient::new(channel.clone());
    sets.create_test_set(pb::CreateTestSetRequest {
        test_set: Some(pb::TestSet {
            name: "set".into(),
            metrics: vec!["anything".into()],
            ..Default::default()
        }),
    })
    .await
    .expect("test set");
    // More renders than the machine has cores: each would hold a worker of the runtime.
    let tests = (0..8).map(|i| test(&format!("q{i}"), "", &[])).collect();
    sets.add_tests(pb::AddTestsRequest {
        test_set: "set".into(),
        tests,
    })
    .await
    .expect("tests");
    let mut stream = pb::test_execution_service_client::TestExecutionServiceClient::new(channel)
        .execute(pb::ExecuteRequest {
            test_set: "set".into(),
            endpoint: "slow-template".into(),
            max_concurrency: 8,
            ..Default::default()
        })
        .await
        .expect("execute")
        .into_inner();
    let started = stream.message().await.expect("the run starts");
    assert!(started.is_some());
    // The run dispatches its tests as soon as it starts; give the renders a moment to begin (a
    // stop that came first would find none, and pass without showing anything).
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;

    // `terminate` fails the test unless the process exits within 15 s, far below the hours
    // the renders would take.
    let status = tokio::task::block_in_place(|| server.terminate());
    assert!(status.success(), "{status}");
    assert!(target.headers().is_empty(), "no render finished");
}
