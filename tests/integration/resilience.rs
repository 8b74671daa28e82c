//! Endpoints that fail, throttle and stall: retries, the shared rate limit, adaptive
//! concurrency, attempts on results, RetryErrors, and what a stop does to a run.

use std::collections::HashSet;
use std::time::Duration;

use assay::domain::{ExecutionMode, PageRequest, RunKind, RunPlan, RunStatus, TestResult, TestRun};
use assay::proto::v1 as pb;
use assay::store::{ClaimRequest, Completion, SqliteStore, Store, WorkSource};
use tonic::Code;
use uuid::Uuid;

use crate::app_server::Target;
use crate::fixtures::*;
use crate::harness::Server;

/// An endpoint on `path` of the target with body template `body`, retrying fast.
fn endpoint_on(name: &str, target: &Target, path: &str, body: &str) -> pb::Endpoint {
    let mut endpoint = http_endpoint(name, &target.url);
    if let Some(pb::endpoint::Target::Http(http)) = endpoint.target.as_mut() {
        http.url = format!("{}{path}", target.url);
        http.body_template = body.into();
    }
    endpoint.call_policy = Some(pb::CallPolicy {
        backoff_base_ms: 5,
        backoff_max_ms: 50,
        ..Default::default()
    });
    endpoint
}

fn tests(n: usize) -> Vec<pb::Test> {
    (0..n).map(|i| test(&format!("q{i}"), "", &[])).collect()
}

#[tokio::test]
async fn with_30_percent_transient_failures_every_test_still_ends_with_a_verdict() {
    let server = Server::start().await;
    let target = Target::start().await;
    create_metric(&server, regex("anything", ".")).await;
    let body = r#"{"prompt": "{{ prompt }}", "fault_percent": 30, "faults": "500,503,429,429s,429d,stall", "stall_ms": 3000}"#;
    let mut endpoint = endpoint_on("flaky", &target, "/flaky", body);
    endpoint.max_retries = 10;
    if let Some(pb::endpoint::Target::Http(http)) = endpoint.target.as_mut() {
        http.timeout_ms = 300;
    }
    create_endpoint(&server, endpoint).await;
    create_test_set(&server, "set", &["anything"], tests(40)).await;

    let (_, results, summary) = execute(&server, execute_request("set", "flaky")).await;
    assert_eq!(results.len(), 40);
    assert_eq!(summary.errored, 0, "{results:#?}");
    assert_eq!(summary.passed, 40);
    assert_eq!(summary.status, pb::RunStatus::Completed as i32);
    // Every attempt reached the target, and 30% of them failed on purpose.
    let attempts: u32 = results.iter().map(|r| r.attempts).sum();
    assert_eq!(attempts as usize, target.calls());
    assert!(target.faults() >= 12, "{} faults", target.faults());
    for r in &results {
        assert_eq!(r.attempts > 1, !r.last_error.is_empty(), "{r:?}");
    }
    let last_errors: Vec<&str> = results.iter().map(|r| r.last_error.as_str()).collect();
    for kind in ["HTTP 429", "HTTP 50", "timed out"] {
        assert!(
            last_errors.iter().any(|e| e.contains(kind)),
            "no retried {kind}: {last_errors:?}"
        );
    }
}

#[tokio::test]
async fn a_400_is_not_retried_but_a_408_is() {
    let server = Server::start().await;
    let target = Target::start().await;
    create_metric(&server, regex("anything", ".")).await;
    let mut endpoint = http_endpoint("app", &target.url);
    endpoint.max_retries = 2;
    endpoint.call_policy = Some(pb::CallPolicy {
        backoff_base_ms: 5,
        ..Default::default()
    });
    create_endpoint(&server, endpoint).await;
    create_test_set(
        &server,
        "bad",
        &["anything"],
        vec![test("q", "", &[("fail_status", "400")])],
    )
    .await;
    create_test_set(
        &server,
        "timeout",
        &["anything"],
        vec![test("q", "", &[("fail_status", "408")])],
    )
    .await;

    let (_, results, _) = execute(&server, execute_request("bad", "app")).await;
    assert_eq!(target.calls(), 1);
    assert_eq!(results[0].status, pb::ResultStatus::Error as i32);
    assert_eq!(results[0].attempts, 1);
    assert!(results[0].last_error.contains("HTTP 400"), "{results:?}");

    let (_, results, _) = execute(&server, execute_request("timeout", "app")).await;
    assert_eq!(target.calls(), 1 + 3, "one call and two retries");
    assert_eq!(results[0].attempts, 3);
    assert!(results[0].error.contains("HTTP 408"), "{results:?}");
    assert!(results[0].last_error.contains("HTTP 408"), "{results:?}");
}

#[tokio::test]
async fn a_long_retry_after_is_cut_to_the_maximum_wait_and_the_retry_budget_ends_retries() {
    let server = Server::start().await;
    let target = Target::start().await;
    create_metric(&server, regex("anything", ".")).await;
    // Every call is a 429 asking for an hour.
    let body = r#"{"prompt": "{{ prompt }}", "fault_percent": 100, "faults": "429s", "retry_after_s": 3600}"#;
    let mut capped = endpoint_on("capped", &target, "/flaky", body);
    capped.max_retries = 2;
    capped.call_policy = Some(pb::CallPolicy {
        max_retry_wait_ms: 20,
        ..Default::default()
    });
    create_endpoint(&server, capped).await;
    // Every call is a 503; retries would go on a hundred times, but the budget is 300 ms of
    // backoffs of 100 ms at most.
    let body = r#"{"prompt": "{{ prompt }}", "fault_percent": 100, "faults": "503"}"#;
    let mut budgeted = endpoint_on("budgeted", &target, "/flaky", body);
    budgeted.max_retries = 100;
    budgeted.call_policy = Some(pb::CallPolicy {
        backoff_base_ms: 100,
        backoff_max_ms: 100,
        retry_budget_ms: 300,
        ..Default::default()
    });
    create_endpoint(&server, budgeted).await;
    create_test_set(&server, "one", &["anything"], tests(1)).await;

    let (_, results, _) = execute(&server, execute_request("one", "capped")).await;
    assert_eq!(results[0].attempts, 3, "{results:?}");
    assert!(results[0].error.contains("HTTP 429"), "{results:?}");

    let (_, results, _) = execute(&server, execute_request("one", "budgeted")).await;
    let attempts = results[0].attempts;
    assert!((2..100).contains(&attempts), "{attempts} attempts");
    assert!(results[0].error.contains("HTTP 503"), "{results:?}");
    assert_eq!(target.calls(), 3 + attempts as usize);
}

#[tokio::test]
async fn max_concurrency_caps_the_calls_in_flight_of_all_runs_together() {
    let server = Server::start().await;
    let target = Target::start().await;
    create_metric(&server, regex("anything", ".")).await;
    let mut endpoint = http_endpoint("app", &target.url);
    endpoint.max_concurrency = 2;
    create_endpoint(&server, endpoint).await;
    let slow = |n: usize| {
        (0..n)
            .map(|i| test(&format!("q{i}"), "", &[("delay_ms", "100")]))
            .collect()
    };
    create_test_set(&server, "a", &["anything"], slow(6)).await;
    create_test_set(&server, "b", &["anything"], slow(6)).await;

    // Each run may have 2 calls in flight; together they still have 2, not 4.
    let (_, first) = start(&server, execute_request("a", "app")).await;
    let (_, second) = start(&server, execute_request("b", "app")).await;
    tokio::join!(collect(first), collect(second));
    assert_eq!(target.calls(), 12);
    assert_eq!(target.max_in_flight(), 2);
}

#[tokio::test]
async fn call_policy_defaults_are_shown_and_conflicting_settings_are_invalid_argument() {
    let server = Server::start().await;
    let target = Target::start().await;
    let created = create_endpoint(&server, http_endpoint("app", &target.url)).await;
    assert_eq!(
        created.call_policy,
        Some(pb::CallPolicy {
            backoff_base_ms: 250,
            backoff_max_ms: 10_000,
            max_retry_wait_ms: 30_000,
            retry_budget_ms: 120_000,
            requests_per_minute: 0,
            adaptive_concurrency: false,
        })
    );

    let mut both = http_endpoint("both", &target.url);
    both.rate_limit_per_second = 2.0;
    both.call_policy = Some(pb::CallPolicy {
        requests_per_minute: 60,
        ..Default::default()
    });
    let mut inverted = http_endpoint("inverted", &target.url);
    inverted.call_policy = Some(pb::CallPolicy {
        backoff_base_ms: 500,
        backoff_max_ms: 100,
        ..Default::default()
    });
    for (endpoint, field) in [
        (both, "endpoint.call_policy.requests_per_minute"),
        (inverted, "endpoint.call_policy.backoff_max_ms"),
    ] {
        let status = server
            .endpoints()
            .create_endpoint(pb::CreateEndpointRequest {
                endpoint: Some(endpoint),
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().contains(field), "{status:?}");
    }
}

#[tokio::test]
async fn the_rate_limit_holds_across_two_concurrent_runs_of_one_endpoint() {
    let server = Server::start().await;
    let target = Target::start().await;
    create_metric(&server, regex("anything", ".")).await;
    let mut endpoint = http_endpoint("limited", &target.url);
    // 5 calls per second, the bucket holding one second's worth.
    endpoint.call_policy = Some(pb::CallPolicy {
        requests_per_minute: 300,
        ..Default::default()
    });
    create_endpoint(&server, endpoint).await;
    create_test_set(&server, "a", &["anything"], tests(10)).await;
    create_test_set(&server, "b", &["anything"], tests(10)).await;

    let (_, first) = start(&server, execute_request("a", "limited")).await;
    let (_, second) = start(&server, execute_request("b", "limited")).await;
    let (first, second) = tokio::join!(collect(first), collect(second));
    assert_eq!(first.len() + second.len(), 2 * (10 + 1));

    let times = target.times();
    assert_eq!(times.len(), 20);
    // In any one-second window the target sees at most the bucket (5) plus one second of the
    // rate (5), and one for slack; unlimited, or limited per run, it would see all 20 at once.
    for (i, start) in times.iter().enumerate() {
        let window = times
            .iter()
            .filter(|t| **t >= *start && **t < *start + Duration::from_secs(1))
            .count();
        assert!(window <= 11, "{window} calls in the second after call {i}");
    }
}

#[tokio::test]
async fn adaptive_concurrency_backs_off_on_429_and_is_turned_away_far_less() {
    let body = r#"{"prompt": "{{ prompt }}", "capacity": 2, "delay_ms": 100}"#;
    let mut rejected = Vec::new();
    for adaptive in [false, true] {
        let server = Server::start().await;
        let target = Target::start().await;
        create_metric(&server, regex("anything", ".")).await;
        let mut endpoint = endpoint_on("capped", &target, "/capacity", body);
        endpoint.max_concurrency = 8;
        endpoint.max_retries = 500;
        endpoint.call_policy = Some(pb::CallPolicy {
            backoff_base_ms: 20,
            backoff_max_ms: 100,
            adaptive_concurrency: adaptive,
            ..Default::default()
        });
        create_endpoint(&server, endpoint).await;
        create_test_set(&server, "set", &["anything"], tests(24)).await;

        let (_, _, summary) = execute(&server, execute_request("set", "capped")).await;
        assert_eq!(summary.passed, 24, "adaptive: {adaptive}");
        rejected.push(target.rejected());
    }
    let [fixed, adaptive] = rejected[..] else {
        unreachable!()
    };
    // A fixed window of 8 keeps 6 calls knocking at a target that serves 2; the adaptive
    // window shrinks to what the target serves.
    assert!(adaptive > 0, "the first calls exceed the capacity");
    assert!(
        adaptive * 2 < fixed,
        "429s: adaptive {adaptive}, fixed {fixed}"
    );
}

#[tokio::test]
async fn retry_errors_executes_only_the_errors_again_and_copies_the_rest() {
    let server = Server::start().await;
    let target = Target::start().await;
    create_metric(&server, contains("paris", &["paris"])).await;
    create_endpoint(&server, http_endpoint("app", &target.url)).await;
    let tests = vec![
        test("a", "", &[("answer", "Paris")]),
        test("b", "", &[("answer", "Paris"), ("fail_status", "503")]),
        test("c", "", &[("answer", "Lyon")]),
        test("d", "", &[("answer", "Paris"), ("fail_status", "500")]),
    ];
    create_test_set(&server, "geo", &["paris"], tests).await;
    let (source, first, summary) = execute(&server, execute_request("geo", "app")).await;
    assert_eq!(summary.status, pb::RunStatus::Partial as i32);
    assert_eq!(summary.errored, 2);

    // The endpoint is fixed: it no longer asks the target to fail.
    let mut fixed = http_endpoint("app", &target.url);
    if let Some(pb::endpoint::Target::Http(http)) = fixed.target.as_mut() {
        http.body_template =
            r#"{"prompt": "{{ prompt }}", "answer": "{{ metadata.answer }}"}"#.into();
    }
    server
        .endpoints()
        .update_endpoint(pb::UpdateEndpointRequest {
            endpoint: Some(fixed),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["http".into()],
            }),
        })
        .await
        .unwrap();
    let calls_before = target.calls();

    let stream = server
        .execution()
        .retry_errors(pb::RetryErrorsRequest {
            run: source.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let (run, results, summary) = split(collect(stream).await);
    assert_eq!(run.source_run_id, source.id);
    assert_eq!(run.kind, pb::RunKind::Execution as i32);
    assert_eq!(run.metrics, source.metrics);
    let called: Vec<String> = target.bodies()[calls_before..]
        .iter()
        .map(|b| b["prompt"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        called.iter().collect::<HashSet<_>>(),
        HashSet::from([&"b".to_string(), &"d".to_string()]),
        "only the errors are called again"
    );
    // Complete: every test of the source, the copies as they were.
    assert_eq!(results.len(), 4);
    assert_eq!(summary.total, 4);
    assert_eq!((summary.passed, summary.failed, summary.errored), (3, 1, 0));
    assert_eq!(summary.status, pb::RunStatus::Completed as i32);
    for old in first
        .iter()
        .filter(|r| r.status != pb::ResultStatus::Error as i32)
    {
        let copy = results.iter().find(|r| r.test_id == old.test_id).unwrap();
        assert_ne!(copy.id, old.id);
        assert_eq!(copy.run_id, run.id);
        assert_eq!(
            (
                &copy.output,
                copy.status,
                &copy.metric_results,
                copy.latency_ms
            ),
            (&old.output, old.status, &old.metric_results, old.latency_ms)
        );
    }
    let last = last_run(&server, "geo", "app")
        .await
        .expect("a completed run");
    assert_eq!(last.run_id, run.id);

    // Nothing left to retry, a rescore, an unknown run.
    let mut client = server.execution();
    let status = client
        .retry_errors(pb::RetryErrorsRequest {
            run: run.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(status.message().contains("no ERROR results"), "{status:?}");
    let rescore = client
        .rescore(pb::RescoreRequest {
            test_set: "geo".into(),
            endpoint: "app".into(),
            run: source.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let (rescore, _, _) = split(collect(rescore).await);
    let status = client
        .retry_errors(pb::RetryErrorsRequest { run: rescore.id })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(status.message().contains("rescore"), "{status:?}");
    let status = client
        .retry_errors(pb::RetryErrorsRequest {
            run: Uuid::now_v7().to_string(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}

#[tokio::test]
async fn a_run_still_running_cannot_be_retried() {
    let server = Server::start().await;
    let target = Target::start().await;
    create_metric(&server, regex("anything", ".")).await;
    create_endpoint(&server, http_endpoint("app", &target.url)).await;
    let slow = (0..3)
        .map(|i| test(&format!("q{i}"), "", &[("delay_ms", "300")]))
        .collect();
    create_test_set(&server, "slow", &["anything"], slow).await;
    let mut request = execute_request("slow", "app");
    request.mode = pb::ExecutionMode::Sequential as i32;
    let (run, stream) = start(&server, request).await;
    let status = server
        .execution()
        .retry_errors(pb::RetryErrorsRequest { run: run.id })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(status.message().contains("still running"), "{status:?}");
    collect(stream).await;
}

#[tokio::test]
async fn a_stopping_server_refuses_new_runs_and_a_stopped_run_resumes_at_the_next_start() {
    let server = Server::start().await;
    let target = Target::start().await;
    create_metric(&server, regex("anything", ".")).await;
    create_endpoint(&server, http_endpoint("app", &target.url)).await;
    let slow = (0..5)
        .map(|i| test(&format!("q{i}"), "", &[("delay_ms", "400")]))
        .collect();
    create_test_set(&server, "slow", &["anything"], slow).await;
    let mut request = execute_request("slow", "app");
    request.mode = pb::ExecutionMode::Sequential as i32;
    // Runs asked for during the stop go to another target, so that they cannot blur the count.
    let other = Target::start().await;
    create_endpoint(&server, http_endpoint("other", &other.url)).await;
    let (run, mut stream) = start(&server, request).await;
    let first = next_result(&mut stream).await;

    let mut server = server;
    server.begin_stop();
    let mut refused = None;
    for _ in 0..100 {
        match server
            .execution()
            .execute(execute_request("slow", "other"))
            .await
        {
            Err(status) => {
                refused = Some(status);
                break;
            }
            // Sent before the stop began: that run is left to resume like the other.
            Ok(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
    let refused = refused.expect("a stopping server still takes runs");
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    assert!(refused.message().contains("shutting down"), "{refused:?}");

    // The test in flight finishes within the grace period and is streamed; then the stream
    // says the run will resume.
    let mut streamed = vec![first];
    let ended = loop {
        match futures::StreamExt::next(&mut stream).await {
            Some(Ok(pb::ExecutionEvent {
                event: Some(pb::execution_event::Event::Result(r)),
            })) => streamed.push(r),
            other => break other,
        }
    };
    let Some(Err(status)) = ended else {
        panic!("expected the stream to end with an error, got {ended:?}")
    };
    assert_eq!(status.code(), Code::Unavailable);
    assert!(status.message().contains("resumes"), "{status:?}");
    let (db_path, dir) = server.stop().await;
    assert_eq!(
        target.calls(),
        streamed.len(),
        "no call was cut off: the one in flight was stored"
    );

    let server = Server::start_on(&db_path).await;
    let watched = watch(&server, &run.id).await;
    let (_, results, summary) = split(collect(watched).await);
    assert_eq!(summary.status, pb::RunStatus::Completed as i32);
    assert_eq!(summary.passed, 5);
    assert_eq!(results.len(), 5);
    let tests: HashSet<_> = results.iter().map(|r| r.test_id.clone()).collect();
    assert_eq!(tests.len(), 5, "no test has two results");
    for r in &streamed {
        assert!(results.iter().any(|s| s.id == r.id), "{} was lost", r.id);
    }
    assert_eq!(target.calls(), 5, "no test was called twice");
    server.stop().await;
    drop(dir);
}

#[tokio::test]
async fn a_rescore_left_running_by_a_crash_resumes_without_calling_the_endpoint() {
    let server = Server::start().await;
    let target = Target::start().await;
    let metric = create_metric(&server, regex("anything", ".")).await;
    create_endpoint(&server, http_endpoint("app", &target.url)).await;
    create_test_set(&server, "set", &["anything"], tests(3)).await;
    let (source, _, _) = execute(&server, execute_request("set", "app")).await;
    let (db_path, dir) = server.stop().await;

    // What a crash leaves behind: a rescore still RUNNING with one of its results stored.
    let store = SqliteStore::open(&format!("sqlite://{}", db_path.display()))
        .await
        .unwrap();
    let id = |s: &str| Uuid::parse_str(s).unwrap();
    let source_results = store
        .list_results(id(&source.id), PageRequest::first(10))
        .await
        .unwrap()
        .items;
    let now = chrono::Utc::now();
    let run = TestRun {
        id: Uuid::now_v7(),
        test_set_id: id(&source.test_set_id),
        endpoint_id: id(&source.endpoint_id),
        kind: RunKind::Rescore,
        mode: ExecutionMode::Parallel,
        status: RunStatus::Running,
        source_run_id: Some(id(&source.id)),
        total: 3,
        metric_ids: vec![id(&metric.id)],
        max_concurrency: 4,
        parameters: Default::default(),
        error: None,
        summary: None,
        created_at: now,
        started_at: Some(now),
        finished_at: None,
        plan: Some(RunPlan {
            shared_metrics: Some(vec![id(&metric.id)]),
            ..RunPlan::default()
        }),
        labels: Default::default(),
    };
    let source_run = WorkSource::Results {
        run_id: run.source_run_id.unwrap(),
        through: i64::MAX,
    };
    store.create_run(&run, source_run).await.unwrap();
    let stored = TestResult {
        id: Uuid::now_v7(),
        run_id: run.id,
        ..source_results[0].clone()
    };
    // Stored as the crashed replica did: its first item claimed, and completed.
    let now_ms = now.timestamp_millis();
    let first = store
        .claim_work(&ClaimRequest {
            run_id: run.id,
            owner: "crashed",
            now_ms,
            lease_until_ms: now_ms + 600_000,
            limit: 1,
            run_cap: None,
            endpoint_cap: None,
        })
        .await
        .unwrap()
        .unwrap();
    let completion = Completion {
        run_id: run.id,
        owner: "crashed",
        dropped: vec![],
        results: vec![(first[0], stored.clone())],
    };
    let fold = |mut run: TestRun, stored: &[TestResult], _left: bool| {
        let plan = run.plan.get_or_insert_default();
        stored.iter().for_each(|r| plan.tally.add(r));
        run
    };
    store
        .complete_work(completion, Box::new(fold))
        .await
        .unwrap();
    store.close().await;

    let server = Server::start_on(&db_path).await;
    let watched = watch(&server, &run.id.to_string()).await;
    let (_, results, summary) = split(collect(watched).await);
    assert_eq!(summary.status, pb::RunStatus::Completed as i32);
    assert_eq!((summary.total, summary.passed), (3, 3));
    assert_eq!(results.len(), 3);
    assert_eq!(
        results[0].id,
        stored.id.to_string(),
        "the stored result is kept"
    );
    let tests: HashSet<_> = results.iter().map(|r| r.test_id.as_str()).collect();
    assert_eq!(tests.len(), 3, "no test has two results");
    assert_eq!(target.calls(), 3, "a rescore never calls the endpoint");
    server.stop().await;
    drop(dir);
}
