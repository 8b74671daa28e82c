//! `Execute`, streaming, modes, the metric hierarchy, statuses and summaries.

use assay::proto::v1 as pb;
use pb::execution_event::Event;
use tonic::Code;

use crate::app_server::Target;
use crate::fixtures::*;
use crate::harness::Server;

#[tokio::test]
async fn execute_streams_the_run_then_every_result_then_the_summary() {
    let server = Server::start().await;
    let target = Target::start().await;
    create_metric(&server, contains("mentions-paris", &["paris"])).await;
    create_endpoint(&server, http_endpoint("app", &target.url)).await;
    let tests = vec![
        test("capital of France?", "", &[("answer", "Paris")]),
        test("capital of Italy?", "", &[("answer", "Rome")]),
        test(
            "largest city of France?",
            "",
            &[("answer", "Paris, by far")],
        ),
    ];
    create_test_set(&server, "geo", &["mentions-paris"], tests).await;

    let (run, results, summary) = execute(&server, execute_request("geo", "app")).await;

    assert_eq!(run.status, pb::RunStatus::Running as i32);
    assert_eq!(run.kind, pb::RunKind::Execution as i32);
    assert_eq!(run.mode, pb::ExecutionMode::Parallel as i32);
    assert_eq!(run.total, 3);
    assert_eq!(results.len(), 3);
    assert!(results.iter().all(|r| r.run_id == run.id));
    let passed = results
        .iter()
        .filter(|r| r.status == pb::ResultStatus::Passed as i32)
        .count();
    assert_eq!(passed, 2);
    let rome = results
        .iter()
        .find(|r| r.output == "Rome")
        .expect("Rome result");
    assert_eq!(rome.status, pb::ResultStatus::Failed as i32);
    assert_eq!(rome.metric_results.len(), 1);
    assert!(!rome.metric_results[0].passed);
    assert_eq!(rome.metric_results[0].metric_name, "mentions-paris");
    assert_eq!(summary.run_id, run.id);
    assert_eq!(summary.status, pb::RunStatus::Completed as i32);
    assert_eq!(
        (
            summary.total,
            summary.passed,
            summary.failed,
            summary.errored
        ),
        (3, 2, 1, 0)
    );
    assert!((summary.pass_rate - 2.0 / 3.0).abs() < 1e-9);
    assert_eq!(summary.metrics.len(), 1);
    assert_eq!(summary.metrics[0].evaluated, 3);
    assert_eq!(summary.metrics[0].passed, 2);
    assert_eq!(target.calls(), 3);

    // Every streamed result is stored.
    let stored = stored_results(&server, &run.id).await;
    let mut streamed_ids: Vec<_> = results.iter().map(|r| r.id.clone()).collect();
    let mut stored_ids: Vec<_> = stored.iter().map(|r| r.id.clone()).collect();
    streamed_ids.sort();
    stored_ids.sort();
    assert_eq!(streamed_ids, stored_ids);
}

#[tokio::test]
async fn results_stream_in_completion_order_as_soon_as_they_are_scored_and_stored() {
    let server = Server::start().await;
    let target = Target::start().await;
    create_metric(&server, regex("anything", ".")).await;
    create_endpoint(&server, http_endpoint("app", &target.url)).await;
    // The slow test comes first in the test set; its result must not hold back the fast one.
    let tests = vec![
        test("slow", "", &[("delay_ms", "3000")]),
        test("fast", "", &[]),
    ];
    create_test_set(&server, "mixed", &["anything"], tests).await;

    let (run, mut stream) = start(&server, execute_request("mixed", "app")).await;
    let first = next_result(&mut stream).await;
    // The fast test's result arrives while the slow one is still being answered.
    assert_eq!(first.output, "fast");
    let now = get_run(&server, &run.id).await;
    assert_eq!(
        now.status,
        pb::RunStatus::Running as i32,
        "the run had already ended when the first result came"
    );
    // What was streamed is already stored.
    let stored = stored_results(&server, &run.id).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].id, first.id);
    let rest = collect(stream).await;
    assert!(
        matches!(rest.as_slice(), [Event::Result(r), Event::RunFinished(_)] if r.output == "slow")
    );
}

#[tokio::test]
async fn parallel_mode_overlaps_calls_up_to_the_requested_limit() {
    let server = Server::start().await;
    let target = Target::start().await;
    create_metric(&server, regex("anything", ".")).await;
    create_endpoint(&server, http_endpoint("app", &target.url)).await;
    let tests = (0..8)
        .map(|i| test(&format!("t{i}"), "", &[("delay_ms", "300")]))
        .collect();
    create_test_set(&server, "parallel", &["anything"], tests).await;

    let mut request = execute_request("parallel", "app");
    request.max_concurrency = 4;
    request.mode = pb::ExecutionMode::Parallel as i32;
    let (run, results, summary) = execute(&server, request).await;

    assert_eq!(results.len(), 8);
    assert_eq!(run.max_concurrency, 4);
    assert_eq!(
        target.max_in_flight(),
        4,
        "calls did not overlap up to the limit"
    );
    assert_eq!(summary.status, pb::RunStatus::Completed as i32);
}

#[tokio::test]
async fn the_endpoint_limit_bounds_concurrency() {
    let server = Server::start().await;
    let target = Target::start().await;
    create_metric(&server, regex("anything", ".")).await;
    let mut endpoint = http_endpoint("app", &target.url);
    endpoint.max_concurrency = 2;
    create_endpoint(&server, endpoint).await;
    let tests = (0..6)
        .map(|i| test(&format!("t{i}"), "", &[("delay_ms", "200")]))
        .collect();
    create_test_set(&server, "bounded", &["anything"], tests).await;

    let mut request = execute_request("bounded", "app");
    request.max_concurrency = 10;
    let (run, results, _) = execute(&server, request).await;

    assert_eq!(results.len(), 6);
    assert_eq!(run.max_concurrency, 2);
    assert_eq!(target.max_in_flight(), 2);
}

/// Executes 40 slow tests against a fresh target, asking for `asked` calls at once, on a server
/// with a default of 16 and a cap of `cap`; returns the run's reported concurrency and the most
/// calls the target saw at once.
async fn concurrency_seen(asked: u32, cap: u32) -> (u32, usize) {
    let server = Server::start_with(|config| {
        config.default_concurrency = 16;
        config.max_concurrency_cap = cap;
    })
    .await;
    let target = Target::start().await;
    create_metric(&server, regex("anything", ".")).await;
    create_endpoint(&server, http_endpoint("app", &target.url)).await;
    let tests = (0..40)
        .map(|i| test(&format!("t{i}"), "", &[("delay_ms", "300")]))
        .collect();
    create_test_set(&server, "wide", &["anything"], tests).await;
    let mut request = execute_request("wide", "app");
    request.max_concurrency = asked;
    let (run, results, _) = execute(&server, request).await;
    assert_eq!(results.len(), 40);
    (run.max_concurrency, target.max_in_flight())
}

#[tokio::test]
async fn a_requested_concurrency_above_the_default_is_honoured() {
    assert_eq!(concurrency_seen(40, 256).await, (40, 40));
}

#[tokio::test]
async fn the_server_cap_bounds_a_requested_concurrency() {
    assert_eq!(concurrency_seen(40, 8).await, (8, 8));
}

#[tokio::test]
async fn sequential_mode_keeps_test_set_order_and_never_overlaps() {
    let server = Server::start().await;
    let target = Target::start().await;
    create_metric(&server, regex("anything", ".")).await;
    create_endpoint(&server, http_endpoint("app", &target.url)).await;
    // Earlier tests are slower: in parallel they would finish last.
    let prompts: Vec<String> = (0..5).map(|i| format!("step {i}")).collect();
    let tests = prompts
        .iter()
        .enumerate()
        .map(|(i, p)| test(p, "", &[("delay_ms", &((5 - i) * 40).to_string())]))
        .collect();
    create_test_set(&server, "ordered", &["anything"], tests).await;

    let mut request = execute_request("ordered", "app");
    request.mode = pb::ExecutionMode::Sequential as i32;
    let (run, results, _) = execute(&server, request).await;

    assert_eq!(run.mode, pb::ExecutionMode::Sequential as i32);
    assert_eq!(target.max_in_flight(), 1);
    let sent: Vec<String> = target
        .bodies()
        .iter()
        .map(|b| b["prompt"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(sent, prompts);
    let streamed: Vec<String> = results.iter().map(|r| r.output.clone()).collect();
    assert_eq!(streamed, prompts);
}

#[tokio::test]
async fn an_unknown_mode_is_invalid_argument() {
    let server = Server::start().await;
    let target = Target::start().await;
    create_metric(&server, regex("anything", ".")).await;
    create_endpoint(&server, http_endpoint("app", &target.url)).await;
    create_test_set(&server, "set", &["anything"], vec![test("p", "", &[])]).await;

    let mut request = execute_request("set", "app");
    request.mode = 7;
    let status = server.execution().execute(request).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("mode"), "{}", status.message());
    assert_eq!(target.calls(), 0);
}

#[tokio::test]
async fn an_empty_test_set_is_failed_precondition_and_creates_no_run() {
    let server = Server::start().await;
    let target = Target::start().await;
    create_endpoint(&server, http_endpoint("app", &target.url)).await;
    create_test_set(&server, "empty", &[], vec![]).await;

    let status = server
        .execution()
        .execute(execute_request("empty", "app"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(status.message().contains("empty"), "{}", status.message());
    let runs = server
        .execution()
        .list_test_runs(pb::ListTestRunsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .runs;
    assert!(runs.is_empty());
}

#[tokio::test]
async fn unknown_references_are_not_found() {
    let server = Server::start().await;
    let target = Target::start().await;
    create_metric(&server, regex("anything", ".")).await;
    create_endpoint(&server, http_endpoint("app", &target.url)).await;
    create_test_set(&server, "set", &["anything"], vec![test("p", "", &[])]).await;
    let mut client = server.execution();

    let status = client
        .execute(execute_request("nope", "app"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert!(status.message().contains("nope"));
    let status = client
        .execute(execute_request("set", "nowhere"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert!(status.message().contains("nowhere"));
    let mut request = execute_request("set", "app");
    request.metrics = vec!["missing-metric".into()];
    let status = client.execute(request).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert!(status.message().contains("missing-metric"));
    assert_eq!(target.calls(), 0);
}

#[tokio::test]
async fn execution_metrics_replace_test_set_metrics_which_replace_behavior_metrics() {
    let server = Server::start().await;
    let target = Target::start().await;
    create_metric(&server, contains("says-a", &["a-answer"])).await;
    create_metric(&server, contains("says-b", &["b-answer"])).await;
    create_metric(&server, contains("says-c", &["c-answer"])).await;
    create_endpoint(&server, http_endpoint("app", &target.url)).await;
    server
        .behaviors()
        .create_behavior(pb::CreateBehaviorRequest {
            behavior: Some(pb::Behavior {
                name: "reliability".into(),
                metrics: vec!["says-c".into()],
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    let mut t = test("q", "", &[("answer", "c-answer")]);
    t.behavior = "reliability".into();
    // Test set without metrics: the behaviour's metric scores.
    create_test_set(&server, "by-behavior", &[], vec![t.clone()]).await;
    let (_, results, _) = execute(&server, execute_request("by-behavior", "app")).await;
    assert_eq!(names(&results[0]), ["says-c"]);
    assert_eq!(results[0].status, pb::ResultStatus::Passed as i32);

    // Test set metrics replace the behaviour's.
    create_test_set(&server, "by-set", &["says-b"], vec![t.clone()]).await;
    let (run, results, _) = execute(&server, execute_request("by-set", "app")).await;
    assert_eq!(names(&results[0]), ["says-b"]);
    assert_eq!(results[0].status, pb::ResultStatus::Failed as i32);
    assert_eq!(run.metrics.len(), 1);

    // Execution metrics replace both.
    let mut request = execute_request("by-set", "app");
    request.metrics = vec!["says-a".into()];
    let (run, results, _) = execute(&server, request).await;
    assert_eq!(names(&results[0]), ["says-a"]);
    let says_a = server
        .metrics()
        .get_metric(pb::GetMetricRequest {
            metric: "says-a".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(run.metrics, vec![says_a.id]);
}

fn names(result: &pb::TestResult) -> Vec<String> {
    result
        .metric_results
        .iter()
        .map(|m| m.metric_name.clone())
        .collect()
}

#[tokio::test]
async fn a_test_without_metrics_is_run_stored_and_errored() {
    let server = Server::start().await;
    let target = Target::start().await;
    create_endpoint(&server, http_endpoint("app", &target.url)).await;
    create_test_set(&server, "bare", &[], vec![test("hello there", "", &[])]).await;

    let (_, results, summary) = execute(&server, execute_request("bare", "app")).await;
    assert_eq!(target.calls(), 1);
    assert_eq!(results[0].status, pb::ResultStatus::Error as i32);
    assert_eq!(results[0].error, "no metrics");
    assert_eq!(results[0].output, "hello there");
    assert_eq!(summary.status, pb::RunStatus::Failed as i32);
}

#[tokio::test]
async fn a_failing_endpoint_errors_only_its_result() {
    let server = Server::start().await;
    let target = Target::start().await;
    create_metric(&server, regex("anything", ".")).await;
    create_endpoint(&server, http_endpoint("app", &target.url)).await;
    let tests = vec![
        test("ok 1", "", &[]),
        test("broken", "", &[("fail_status", "503")]),
        test("ok 2", "", &[]),
    ];
    create_test_set(&server, "flaky", &["anything"], tests).await;

    let (_, results, summary) = execute(&server, execute_request("flaky", "app")).await;
    assert_eq!(results.len(), 3);
    let broken = results
        .iter()
        .find(|r| r.status == pb::ResultStatus::Error as i32)
        .expect("an errored result");
    assert!(broken.error.contains("503"), "{}", broken.error);
    assert!(
        broken.metric_results.is_empty(),
        "an endpoint failure must not be scored"
    );
    assert_eq!(summary.status, pb::RunStatus::Partial as i32);
    assert_eq!((summary.passed, summary.errored), (2, 1));
}

#[tokio::test]
async fn a_run_whose_every_call_fails_is_failed() {
    let server = Server::start().await;
    let target = Target::start().await;
    create_metric(&server, regex("anything", ".")).await;
    create_endpoint(&server, http_endpoint("app", &target.url)).await;
    let tests = vec![
        test("a", "", &[("fail_status", "500")]),
        test("b", "", &[("fail_status", "404")]),
    ];
    create_test_set(&server, "down", &["anything"], tests).await;

    let (_, results, summary) = execute(&server, execute_request("down", "app")).await;
    assert!(
        results
            .iter()
            .all(|r| r.status == pb::ResultStatus::Error as i32)
    );
    assert_eq!(summary.status, pb::RunStatus::Failed as i32);
    assert_eq!(summary.pass_rate, 0.0);
}

#[tokio::test]
async fn prompts_with_quotes_newlines_and_unicode_reach_the_target_intact() {
    let server = Server::start().await;
    let target = Target::start().await;
    create_metric(&server, regex("anything", "(?s).")).await;
    create_endpoint(&server, http_endpoint("app", &target.url)).await;
    let tricky = "He said \"stop\"\nthen {{ left }} \\ backslash\ttab — ünïcödé 漢字 🎉 </script>";
    create_test_set(
        &server,
        "tricky",
        &["anything"],
        vec![test(tricky, "", &[])],
    )
    .await;

    let (_, results, _) = execute(&server, execute_request("tricky", "app")).await;
    assert_eq!(target.bodies()[0]["prompt"].as_str(), Some(tricky));
    assert_eq!(results[0].output, tricky);
    assert_eq!(results[0].prompt, tricky);
}

#[tokio::test]
async fn run_parameters_reach_the_body_template_with_their_types() {
    let server = Server::start().await;
    let target = Target::start().await;
    create_metric(&server, regex("anything", ".")).await;
    let mut endpoint = http_endpoint("app", &target.url);
    if let Some(pb::endpoint::Target::Http(http)) = endpoint.target.as_mut() {
        http.body_template = r#"{"prompt": "{{ prompt }}", "temperature": "{{ parameters.temperature }}", "tag": "run-{{ parameters.tag }}", "topic": "{{ topic }}"}"#.into();
    }
    create_endpoint(&server, endpoint).await;
    let mut t = test("p", "", &[]);
    t.topic = "geography".into();
    create_test_set(&server, "params", &["anything"], vec![t]).await;

    let mut request = execute_request("params", "app");
    request.parameters = Some(prost_types::Struct {
        fields: [
            (
                "temperature".to_string(),
                prost_types::Value {
                    kind: Some(prost_types::value::Kind::NumberValue(0.25)),
                },
            ),
            (
                "tag".to_string(),
                prost_types::Value {
                    kind: Some(prost_types::value::Kind::StringValue("nightly".into())),
                },
            ),
        ]
        .into_iter()
        .collect(),
    });
    execute(&server, request).await;
    let body = &target.bodies()[0];
    assert_eq!(body["temperature"], serde_json::json!(0.25));
    assert_eq!(body["tag"], "run-nightly");
    assert_eq!(body["topic"], "geography");
}

#[tokio::test]
async fn context_and_metadata_are_taken_from_the_response() {
    let server = Server::start().await;
    let target = Target::start().await;
    create_metric(&server, regex("anything", ".")).await;
    create_endpoint(&server, http_endpoint("app", &target.url)).await;
    create_test_set(
        &server,
        "rag",
        &["anything"],
        vec![test("q", "", &[("context", "doc one")])],
    )
    .await;

    let (_, results, _) = execute(&server, execute_request("rag", "app")).await;
    assert_eq!(results[0].context, vec!["doc one".to_string()]);
    let meta = results[0].metadata.as_ref().expect("metadata");
    assert!(matches!(
        meta.fields.get("model").and_then(|v| v.kind.as_ref()),
        Some(prost_types::value::Kind::StringValue(s)) if s == "test-target"
    ));
}

#[tokio::test]
async fn an_openai_compatible_target_needs_no_template() {
    let server = Server::start().await;
    let target = Target::start().await;
    create_metric(&server, contains("echoes", &["echo: hi"])).await;
    unsafe { std::env::set_var("ASSAY_SECRET_IT_CHAT_KEY", "sk-test-123") };
    create_endpoint(
        &server,
        pb::Endpoint {
            name: "chat".into(),
            target: Some(pb::endpoint::Target::OpenaiChat(pb::OpenAiChatTarget {
                base_url: format!("{}/v1", target.url),
                model: "tiny".into(),
                system_prompt: "be brief".into(),
                api_key_env: "ASSAY_SECRET_IT_CHAT_KEY".into(),
                timeout_ms: 0,
            })),
            ..Default::default()
        },
    )
    .await;
    create_test_set(&server, "chat-set", &["echoes"], vec![test("hi", "", &[])]).await;

    let (_, results, summary) = execute(&server, execute_request("chat-set", "chat")).await;
    assert_eq!(results[0].output, "echo: hi");
    assert_eq!(summary.status, pb::RunStatus::Completed as i32);
    let body = &target.bodies()[0];
    assert_eq!(body["model"], "tiny");
    assert_eq!(body["messages"][0]["role"], "system");
    assert_eq!(body["messages"][1]["content"], "hi");
    assert_eq!(target.headers()[0]["authorization"], "Bearer sk-test-123");
}

#[tokio::test]
async fn header_secrets_from_the_environment_are_resolved_at_call_time() {
    let server = Server::start().await;
    let target = Target::start().await;
    create_metric(&server, regex("anything", ".")).await;
    let mut endpoint = http_endpoint("app", &target.url);
    if let Some(pb::endpoint::Target::Http(http)) = endpoint.target.as_mut() {
        http.headers.insert(
            "Authorization".into(),
            "Bearer ${env:ASSAY_SECRET_IT_LATE_TOKEN}".into(),
        );
    }
    create_endpoint(&server, endpoint).await;
    create_test_set(&server, "auth", &["anything"], vec![test("p", "", &[])]).await;

    // Set after the endpoint was created: only a call-time lookup can see it.
    unsafe { std::env::set_var("ASSAY_SECRET_IT_LATE_TOKEN", "late-value") };
    execute(&server, execute_request("auth", "app")).await;
    assert_eq!(target.headers()[0]["authorization"], "Bearer late-value");
}

#[tokio::test]
async fn exact_match_compares_the_output_with_the_expected_response() {
    let server = Server::start().await;
    let target = Target::start().await;
    create_metric(&server, exact("exact")).await;
    create_endpoint(&server, http_endpoint("app", &target.url)).await;
    let tests = vec![
        test("q1", "Paris", &[("answer", "Paris")]),
        test("q2", "Paris", &[("answer", "paris")]),
        test("q3", "", &[("answer", "Paris")]),
    ];
    create_test_set(&server, "exact-set", &["exact"], tests).await;

    let (_, results, summary) = execute(&server, execute_request("exact-set", "app")).await;
    let by_prompt = |p: &str| results.iter().find(|r| r.prompt == p).unwrap().clone();
    assert_eq!(by_prompt("q1").status, pb::ResultStatus::Passed as i32);
    assert_eq!(by_prompt("q2").status, pb::ResultStatus::Failed as i32);
    // No expected response: the metric cannot be evaluated.
    let q3 = by_prompt("q3");
    assert_eq!(q3.status, pb::ResultStatus::Error as i32);
    assert!(
        q3.metric_results[0].error.contains("expected response"),
        "{}",
        q3.metric_results[0].error
    );
    assert_eq!(summary.status, pb::RunStatus::Partial as i32);
}

#[tokio::test]
async fn a_metric_that_errors_is_recorded_and_counts_as_not_passed() {
    let server = Server::start().await;
    let target = Target::start().await;
    create_metric(&server, regex("anything", ".")).await;
    // Exact match against an expected response the test does not have: it cannot be evaluated.
    create_metric(&server, exact("exact")).await;
    create_endpoint(&server, http_endpoint("app", &target.url)).await;
    create_test_set(
        &server,
        "half",
        &["anything", "exact"],
        vec![test("q", "", &[])],
    )
    .await;

    let (_, results, summary) = execute(&server, execute_request("half", "app")).await;
    let result = &results[0];
    assert_eq!(result.status, pb::ResultStatus::Failed as i32);
    let errored = result
        .metric_results
        .iter()
        .find(|m| m.metric_name == "exact")
        .unwrap();
    assert!(!errored.passed);
    assert!(!errored.error.is_empty());
    let passed = result
        .metric_results
        .iter()
        .find(|m| m.metric_name == "anything")
        .unwrap();
    assert!(passed.passed);
    assert_eq!(passed.score, Some(1.0));
    // Per-metric statistics of the summary.
    let stats = |name: &str| {
        summary
            .metrics
            .iter()
            .find(|m| m.metric_name == name)
            .unwrap()
            .clone()
    };
    assert_eq!(
        (
            stats("anything").evaluated,
            stats("anything").passed,
            stats("anything").errored
        ),
        (1, 1, 0)
    );
    assert_eq!(stats("anything").mean_score, 1.0);
    assert_eq!((stats("exact").evaluated, stats("exact").errored), (0, 1));
    assert!(summary.started_at.is_some() && summary.finished_at.is_some());
    assert_eq!(summary.status, pb::RunStatus::Completed as i32);
}

#[tokio::test]
async fn an_llm_judge_scores_through_an_openai_compatible_model() {
    let server = Server::start().await;
    let target = Target::start().await;
    create_metric(&server, crate::fixtures::inline_judge("judge", &target.url)).await;
    create_endpoint(&server, http_endpoint("app", &target.url)).await;
    let tests = vec![
        test("capital of France?", "Paris", &[("answer", "Paris")]),
        test("capital of Italy?", "Rome", &[("answer", "Milan")]),
    ];
    create_test_set(&server, "judged", &["judge"], tests).await;

    let (_, results, summary) = execute(&server, execute_request("judged", "app")).await;
    let paris = results.iter().find(|r| r.output == "Paris").unwrap();
    assert_eq!(paris.status, pb::ResultStatus::Passed as i32);
    assert_eq!(paris.metric_results[0].score, Some(0.9));
    assert_eq!(paris.metric_results[0].reason, "the answer names Paris");
    let milan = results.iter().find(|r| r.output == "Milan").unwrap();
    assert_eq!(milan.status, pb::ResultStatus::Failed as i32);
    assert!((summary.metrics[0].mean_score - 0.55).abs() < 1e-9);
    // Two endpoint calls and two judge calls, the judge with its model.
    let judged: Vec<_> = target
        .bodies()
        .into_iter()
        .filter(|b| b["model"] == "judge-model")
        .collect();
    assert_eq!(judged.len(), 2);
}

/// The endpoint error of the only result of a one-test run against `endpoint`.
async fn endpoint_error(
    server: &Server,
    endpoint: pb::Endpoint,
    metadata: &[(&str, &str)],
) -> String {
    let name = endpoint.name.clone();
    create_endpoint(server, endpoint).await;
    create_test_set(server, &name, &["anything"], vec![test("q", "", metadata)]).await;
    let (_, results, _) = execute(server, execute_request(&name, &name)).await;
    assert_eq!(results[0].status, pb::ResultStatus::Error as i32);
    assert!(results[0].metric_results.is_empty());
    results[0].error.clone()
}

#[tokio::test]
async fn endpoint_errors_say_what_went_wrong() {
    let server = Server::start().await;
    let target = Target::start().await;
    create_metric(&server, regex("anything", ".")).await;
    let with = |name: &str, change: &dyn Fn(&mut pb::HttpTarget)| {
        let mut endpoint = http_endpoint(name, &target.url);
        if let Some(pb::endpoint::Target::Http(http)) = endpoint.target.as_mut() {
            change(http);
        }
        endpoint
    };

    let slow = with("slow", &|h| h.timeout_ms = 200);
    let error = endpoint_error(&server, slow, &[("delay_ms", "2000")]).await;
    assert!(error.contains("timed out after 200 ms"), "{error}");

    let status = with("status", &|_| {});
    let error = endpoint_error(&server, status, &[("fail_status", "429")]).await;
    assert!(error.contains("HTTP 429"), "{error}");

    let text = with("text", &|h| h.url = format!("{}/text", target.url));
    let error = endpoint_error(&server, text, &[]).await;
    assert!(error.contains("not JSON"), "{error}");

    let unmapped = with("unmapped", &|h| {
        h.response_mapping.as_mut().unwrap().output = "$.answer.text".into()
    });
    let error = endpoint_error(&server, unmapped, &[]).await;
    assert!(
        error.contains("$.answer.text") && error.contains("matched nothing"),
        "{error}"
    );
    // The stored error shows the body, to see what the path should have been.
    assert!(
        error.contains("the body was: {") && error.contains("\"output\""),
        "{error}"
    );

    let closed = with("closed", &|h| h.url = "http://127.0.0.1:9/answer".into());
    let error = endpoint_error(&server, closed, &[]).await;
    assert!(error.contains("connect"), "{error}");
}

#[tokio::test]
async fn a_failing_call_is_retried_max_retries_times() {
    let server = Server::start().await;
    let target = Target::start().await;
    create_metric(&server, regex("anything", ".")).await;
    let mut endpoint = http_endpoint("app", &target.url);
    endpoint.max_retries = Some(2);
    create_endpoint(&server, endpoint).await;
    // The target fails while the body asks it to: a retry sends the same body, so every attempt
    // fails and is counted.
    create_test_set(
        &server,
        "retried",
        &["anything"],
        vec![test("q", "", &[("fail_status", "503")])],
    )
    .await;

    let (_, results, _) = execute(&server, execute_request("retried", "app")).await;
    assert_eq!(target.calls(), 3, "one call and two retries");
    assert!(
        results[0].error.contains("after 3 attempts"),
        "{}",
        results[0].error
    );
}
