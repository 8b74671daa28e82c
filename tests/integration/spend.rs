//! Tokens and cost through gRPC: results carry the tokens and cost of the endpoint call and of
//! the judge calls, run summaries sum them, `cost` and `token_usage` metrics bound them, and a
//! budget stops starting tests once spent. The target (`/answer`) reports its words as tokens.

use assay::proto::v1 as pb;
use pb::metric::Kind;
use tonic::Code;

use crate::app_server::Target;
use crate::fixtures::*;
use crate::harness::Server;

/// The target's `/answer` with its tokens mapped, at 1 USD per input token and 2 per output.
pub(crate) fn priced(name: &str, target: &Target) -> pb::Endpoint {
    let mut endpoint = http_endpoint(name, &target.url);
    if let Some(pb::endpoint::Target::Http(http)) = endpoint.target.as_mut() {
        let mapping = http.response_mapping.as_mut().unwrap();
        mapping.input_tokens = "$.usage.in".into();
        mapping.output_tokens = "$.usage.out".into();
    }
    endpoint.pricing = Some(pb::Pricing {
        input_usd_per_million_tokens: 1_000_000.0,
        output_usd_per_million_tokens: 2_000_000.0,
    });
    endpoint
}

fn usage(input_tokens: u64, output_tokens: u64) -> Option<pb::TokenUsage> {
    Some(pb::TokenUsage {
        input_tokens,
        output_tokens,
    })
}

fn metric(name: &str, kind: Kind) -> pb::Metric {
    pb::Metric {
        name: name.into(),
        kind: Some(kind),
        ..Default::default()
    }
}

#[tokio::test]
async fn results_and_summaries_carry_tokens_and_cost_of_the_endpoint_and_of_the_judges() {
    let server = Server::start().await;
    let target = Target::start().await;
    create_endpoint(&server, priced("app", &target)).await;
    // Every judge call reports 100 tokens in and 10 out: 1 + 1 = 2 USD at these prices.
    create_endpoint(
        &server,
        pb::Endpoint {
            name: "judge".into(),
            target: Some(pb::endpoint::Target::OpenaiChat(pb::OpenAiChatTarget {
                base_url: format!("{}/judge/v1", target.url),
                model: "judge-model".into(),
                ..Default::default()
            })),
            pricing: Some(pb::Pricing {
                input_usd_per_million_tokens: 10_000.0,
                output_usd_per_million_tokens: 100_000.0,
            }),
            ..Default::default()
        },
    )
    .await;
    create_metric(
        &server,
        metric(
            "paris",
            Kind::LlmJudge(pb::LlmJudge {
                judge_endpoint: "judge".into(),
                evaluation_prompt: "Does it name Paris?".into(),
                ..Default::default()
            }),
        ),
    )
    .await;
    create_test_set(
        &server,
        "set",
        &["paris"],
        vec![
            test(
                "what is the capital",
                "",
                &[("answer", "Paris is the capital")],
            ),
            test("and of Italy", "", &[("answer", "Rome")]),
        ],
    )
    .await;

    let (run, results, summary) = execute(&server, execute_request("set", "app")).await;
    let paris = results
        .iter()
        .find(|r| r.output.starts_with("Paris"))
        .unwrap();
    assert_eq!(paris.usage, usage(4, 4));
    assert_eq!(paris.cost_usd, 4.0 + 8.0);
    assert_eq!(paris.judge_usage, usage(100, 10));
    assert_eq!(paris.judge_cost_usd, 2.0);
    let rome = results.iter().find(|r| r.output == "Rome").unwrap();
    assert_eq!(rome.usage, usage(3, 1));
    assert_eq!(rome.cost_usd, 3.0 + 2.0);

    assert_eq!(summary.usage, usage(7, 5));
    assert_eq!(summary.cost_usd, 17.0);
    assert_eq!(summary.judge_usage, usage(200, 20));
    assert_eq!(summary.judge_cost_usd, 4.0);
    // Stored as streamed.
    let stored = stored_results(&server, &run.id).await;
    assert!(stored.iter().any(|r| r == paris), "{stored:?}");
    assert_eq!(get_run(&server, &run.id).await.summary.unwrap(), summary);
}

#[tokio::test]
async fn openai_chat_endpoints_report_their_usage_and_unmapped_http_endpoints_none() {
    let server = Server::start().await;
    let target = Target::start().await;
    create_endpoint(
        &server,
        pb::Endpoint {
            name: "chat".into(),
            target: Some(pb::endpoint::Target::OpenaiChat(pb::OpenAiChatTarget {
                base_url: format!("{}/v1", target.url),
                model: "echo".into(),
                ..Default::default()
            })),
            ..Default::default()
        },
    )
    .await;
    create_endpoint(&server, http_endpoint("plain", &target.url)).await;
    create_metric(&server, regex("anything", ".")).await;
    create_test_set(
        &server,
        "set",
        &["anything"],
        vec![test("one two three", "", &[])],
    )
    .await;

    let (_, results, summary) = execute(&server, execute_request("set", "chat")).await;
    assert_eq!(results[0].usage, usage(3, 4));
    assert_eq!(results[0].cost_usd, 0.0, "no pricing: free");
    assert_eq!(summary.usage, usage(3, 4));

    let (_, results, summary) = execute(&server, execute_request("set", "plain")).await;
    assert_eq!(results[0].usage, None);
    assert_eq!(summary.usage, usage(0, 0));
}

#[tokio::test]
async fn cost_and_token_usage_metrics_bound_the_endpoint_call() {
    let server = Server::start().await;
    let target = Target::start().await;
    create_endpoint(&server, priced("app", &target)).await;
    create_endpoint(&server, http_endpoint("unmapped", &target.url)).await;
    create_metric(
        &server,
        metric("cheap", Kind::Cost(pb::Cost { max_usd: 10.0 })),
    )
    .await;
    create_metric(
        &server,
        metric(
            "short",
            Kind::TokenUsage(pb::TokenUsageLimit { max_tokens: 8 }),
        ),
    )
    .await;
    create_test_set(
        &server,
        "set",
        &["cheap", "short"],
        vec![
            // 2 + 2 tokens, 2 + 4 USD.
            test("a b", "", &[("answer", "c d")]),
            // 3 + 6 tokens, 3 + 12 USD.
            test("a b c", "", &[("answer", "d e f g h i")]),
        ],
    )
    .await;

    let (_, results, _) = execute(&server, execute_request("set", "app")).await;
    let verdicts = |output: &str| -> Vec<(String, bool, String)> {
        let r = results.iter().find(|r| r.output == output).unwrap();
        r.metric_results
            .iter()
            .map(|m| (m.metric_name.clone(), m.passed, m.reason.clone()))
            .collect()
    };
    let small = verdicts("c d");
    assert!(small.iter().all(|(_, passed, _)| *passed), "{small:?}");
    let big = verdicts("d e f g h i");
    assert!(big.iter().all(|(_, passed, _)| !*passed), "{big:?}");
    assert!(
        big.iter()
            .any(|(_, _, reason)| reason == "9 tokens (3 in, 6 out), over 8"),
        "{big:?}"
    );
    assert!(
        big.iter()
            .any(|(_, _, reason)| reason == "cost 15 USD, over 10 USD"),
        "{big:?}"
    );

    // Without token usage there is nothing to bound: an error of the metric.
    let (_, results, _) = execute(&server, execute_request("set", "unmapped")).await;
    for m in &results[0].metric_results {
        assert!(m.error.contains("token usage"), "{m:?}");
    }
    assert_eq!(results[0].status, pb::ResultStatus::Error as i32);

    for (kind, field) in [
        (
            Kind::Cost(pb::Cost { max_usd: -1.0 }),
            "metric.cost.max_usd",
        ),
        (
            Kind::TokenUsage(pb::TokenUsageLimit { max_tokens: 0 }),
            "metric.token_usage.max_tokens",
        ),
    ] {
        let status = server
            .metrics()
            .create_metric(pb::CreateMetricRequest {
                metric: Some(metric("bad", kind)),
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().contains(field), "{}", status.message());
    }
}

#[tokio::test]
async fn a_budget_stops_starting_tests_once_spent_and_keeps_every_result_so_far() {
    let server = Server::start().await;
    let target = Target::start().await;
    create_endpoint(&server, priced("app", &target)).await;
    create_metric(&server, regex("anything", ".")).await;
    // Each test costs 2 + 4 = 6 USD.
    let tests = (0..5).map(|i| test(&format!("q {i}"), "", &[("answer", "a b")]));
    create_test_set(&server, "set", &["anything"], tests.collect()).await;

    let request = pb::ExecuteRequest {
        mode: pb::ExecutionMode::Sequential as i32,
        budget_usd: Some(10.0),
        ..execute_request("set", "app")
    };
    let (run, results, summary) = execute(&server, request).await;
    // 6 USD after the first test is under 10, 12 after the second is not: no third starts.
    assert_eq!(results.len(), 2);
    assert_eq!(target.calls(), 2);
    assert_eq!(summary.status, pb::RunStatus::BudgetExceeded as i32);
    assert_eq!((summary.total, summary.passed), (5, 2));
    assert_eq!(summary.cost_usd, 12.0);
    assert!(
        summary.reason.contains("budget of 10 USD reached") && summary.reason.contains("3 of 5"),
        "{}",
        summary.reason
    );
    let stored = get_run(&server, &run.id).await;
    assert_eq!(stored.status, pb::RunStatus::BudgetExceeded as i32);
    assert_eq!(stored.error, summary.reason);
    assert_eq!(stored_results(&server, &run.id).await.len(), 2);

    // A budget the run never reaches changes nothing.
    let request = pb::ExecuteRequest {
        budget_usd: Some(1000.0),
        ..execute_request("set", "app")
    };
    let (_, results, summary) = execute(&server, request).await;
    assert_eq!(results.len(), 5);
    assert_eq!(summary.status, pb::RunStatus::Completed as i32);
    assert!(summary.reason.is_empty());

    for bad in [0.0, -1.0, f64::NAN] {
        let request = pb::ExecuteRequest {
            budget_usd: Some(bad),
            ..execute_request("set", "app")
        };
        let status = server.execution().execute(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(
            status.message().contains("budget_usd"),
            "{}",
            status.message()
        );
    }
}

#[tokio::test]
async fn endpoint_prices_must_be_finite_and_not_negative() {
    let server = Server::start().await;
    let target = Target::start().await;
    let mut endpoint = priced("app", &target);
    endpoint.pricing = Some(pb::Pricing {
        input_usd_per_million_tokens: -2.0,
        output_usd_per_million_tokens: 0.0,
    });
    let status = server
        .endpoints()
        .create_endpoint(pb::CreateEndpointRequest {
            endpoint: Some(endpoint),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status
            .message()
            .contains("endpoint.pricing.input_usd_per_million_tokens"),
        "{}",
        status.message()
    );
    let created = create_endpoint(&server, priced("ok", &target)).await;
    assert_eq!(
        created.pricing,
        Some(pb::Pricing {
            input_usd_per_million_tokens: 1_000_000.0,
            output_usd_per_million_tokens: 2_000_000.0,
        })
    );
}
