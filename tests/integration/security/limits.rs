//! Bounded work: no template, response body, input or setting can hang the server or grow its
//! memory without bound; every limit names its flag when hit.

use std::collections::HashMap;

use assay::proto::v1 as pb;
use tonic::Code;

use super::recorder::Recorder;
use crate::fixtures::{
    contains, create_endpoint, create_metric, create_test_set, execute, execute_request, test,
};
use crate::harness::Server;

/// Two nested loops over the prompt's characters repeated 100,000 times: billions of steps
/// without a limit (a body template may use only its variables, so no `range`).
const ENDLESS: &str =
    "{% for i in prompt * 100000 %}{% for j in prompt * 100000 %}x{% endfor %}{% endfor %}";

/// An HTTP endpoint `bot` calling `url` with a body template.
fn endpoint(url: &str, body_template: &str) -> pb::Endpoint {
    pb::Endpoint {
        name: "bot".into(),
        target: Some(pb::endpoint::Target::Http(pb::HttpTarget {
            url: url.into(),
            body_template: body_template.into(),
            headers: HashMap::new(),
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// Runs one test against endpoint `bot`; its result.
async fn run_once(server: &Server) -> pb::TestResult {
    create_metric(server, contains("says-paris", &["Paris"])).await;
    create_test_set(
        server,
        "set",
        &["says-paris"],
        vec![test("capital of France?", "", &[])],
    )
    .await;
    let (_, results, _) = execute(server, execute_request("set", "bot")).await;
    results.into_iter().next().expect("one result")
}

async fn health(server: &Server) -> i32 {
    tonic_health::pb::health_client::HealthClient::new(server.channel())
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("health")
        .into_inner()
        .status
}

#[tokio::test]
async fn a_body_template_that_would_loop_for_ever_fails_its_call_naming_the_limit() {
    let server = Server::start().await;
    let target = Recorder::start().await;
    let body = format!(r#"{{"prompt": "{ENDLESS}"}}"#);
    create_endpoint(&server, endpoint(&format!("{}/answer", target.url), &body)).await;
    let result = run_once(&server).await;
    assert_eq!(result.status, pb::ResultStatus::Error as i32, "{result:?}");
    assert!(
        result.error.contains("ASSAY_TEMPLATE_FUEL"),
        "{}",
        result.error
    );
    assert!(target.headers().is_empty(), "nothing was sent");
    assert_eq!(health(&server).await, 1, "still SERVING");
}

#[tokio::test]
async fn a_template_output_of_100_mb_is_refused() {
    let server = Server::start().await;
    let target = Recorder::start().await;
    let body = r#"{"prompt": "{{ 'x' * 100000000 }}"}"#;
    create_endpoint(&server, endpoint(&format!("{}/answer", target.url), body)).await;
    let result = run_once(&server).await;
    assert_eq!(result.status, pb::ResultStatus::Error as i32, "{result:?}");
    assert!(
        result.error.contains("ASSAY_TEMPLATE_FUEL")
            || result.error.contains("ASSAY_MAX_TEMPLATE_OUTPUT_BYTES"),
        "{}",
        result.error
    );
}

#[tokio::test]
async fn an_endless_response_body_is_an_endpoint_error_naming_the_limit() {
    let server = Server::start_with(|config| config.max_response_bytes = 1024 * 1024).await;
    let target = Recorder::start().await;
    create_endpoint(&server, endpoint(&format!("{}/huge", target.url), "")).await;
    let result = run_once(&server).await;
    assert_eq!(result.status, pb::ResultStatus::Error as i32, "{result:?}");
    assert!(
        result.error.contains("1048576") && result.error.contains("ASSAY_MAX_RESPONSE_BYTES"),
        "{}",
        result.error
    );
}

#[tokio::test]
async fn a_judge_prompt_that_does_not_compile_is_refused_at_create() {
    let server = Server::start().await;
    let judge = pb::Metric {
        name: "judge".into(),
        kind: Some(pb::metric::Kind::LlmJudge(pb::LlmJudge {
            base_url: "http://127.0.0.1:9/v1".into(),
            model: "m".into(),
            evaluation_prompt: "{% for %}".into(),
            ..Default::default()
        })),
        ..Default::default()
    };
    let refused = server
        .metrics()
        .create_metric(pb::CreateMetricRequest {
            metric: Some(judge),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused
            .message()
            .contains("metric.llm_judge.evaluation_prompt"),
        "{refused:?}"
    );
}

#[tokio::test]
async fn rates_and_timeouts_below_their_minimums_are_refused() {
    let server = Server::start().await;
    let mut slow = endpoint("http://127.0.0.1:9/", "");
    slow.rate_limit_per_second = 1e-9;
    let refused = server
        .endpoints()
        .create_endpoint(pb::CreateEndpointRequest {
            endpoint: Some(slow),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused.message().contains("rate_limit_per_second"),
        "{refused:?}"
    );

    let mut hasty = endpoint("http://127.0.0.1:9/", "");
    if let Some(pb::endpoint::Target::Http(http)) = &mut hasty.target {
        http.timeout_ms = 1;
    }
    let refused = server
        .endpoints()
        .create_endpoint(pb::CreateEndpointRequest {
            endpoint: Some(hasty),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(refused.message().contains("http.timeout_ms"), "{refused:?}");
}

#[tokio::test]
async fn an_error_quotes_a_huge_input_only_in_part() {
    let server = Server::start().await;
    let huge = "x".repeat(1_000_000);
    let refused = server
        .endpoints()
        .create_endpoint(pb::CreateEndpointRequest {
            endpoint: Some(endpoint(&huge, "")),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused.message().len() < 2000,
        "{} bytes",
        refused.message().len()
    );
    assert!(
        refused.message().contains("more characters"),
        "{}",
        refused.message()
    );
}

#[tokio::test]
async fn a_request_above_the_size_limit_is_refused() {
    let server = Server::start().await;
    let set = create_test_set(&server, "big", &[], vec![]).await;
    let tests = (0..5)
        .map(|i| test(&"x".repeat(1024 * 1024), "", &[("i", &i.to_string())]))
        .collect();
    let refused = server
        .test_sets()
        .add_tests(pb::AddTestsRequest {
            test_set: set.id,
            tests,
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    // The message names the limit, so the operator knows what to raise or the client to split.
    for part in ["--max-request-bytes", "ASSAY_MAX_REQUEST_BYTES", "bytes"] {
        assert!(refused.message().contains(part), "{}", refused.message());
    }
    // Nothing was added.
    let listed = server
        .test_sets()
        .list_tests(pb::ListTestsRequest {
            test_set: "big".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(listed.tests.is_empty());
}

#[tokio::test]
async fn a_judge_prompt_that_would_loop_for_ever_fails_its_score_not_the_server() {
    let server = Server::start().await;
    let target = Recorder::start().await;
    create_endpoint(&server, endpoint(&format!("{}/answer", target.url), "")).await;
    let judge = pb::Metric {
        name: "judge".into(),
        kind: Some(pb::metric::Kind::LlmJudge(pb::LlmJudge {
            base_url: format!("{}/v1", target.url),
            model: "m".into(),
            evaluation_prompt:
                "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}"
                    .into(),
            ..Default::default()
        })),
        ..Default::default()
    };
    create_metric(&server, judge).await;
    create_test_set(
        &server,
        "set",
        &["judge"],
        vec![test("capital of France?", "", &[])],
    )
    .await;
    let (_, results, _) = execute(&server, execute_request("set", "bot")).await;
    let text = format!("{:?}", results[0]);
    assert!(text.contains("ASSAY_TEMPLATE_FUEL"), "{text}");
    assert_eq!(health(&server).await, 1, "still SERVING");
}
