//! Repeats: each test run several times against a real HTTP target whose answers change from
//! call to call, passing by majority, with flaky tests, pass@k, pass^k and the Wilson interval
//! in the summary; rescores, retries and comparisons of repeated runs.

use std::collections::{BTreeSet, HashMap};

use assay::proto::v1 as pb;
use tonic::Code;

use crate::app_server::Target;
use crate::fixtures::{
    collect, create_endpoint, create_metric, create_test_set, execute, execute_request, get_run,
    http_endpoint, next_result, regex, rescore, split, start, stored_results, stored_tests, test,
    watch,
};
use crate::harness::Server;
use crate::regressions::{exact_set, switch_endpoint};

/// Each test's repetitions, by test id.
fn repetitions(results: &[pb::TestResult]) -> HashMap<String, Vec<u32>> {
    let mut by_test: HashMap<String, Vec<u32>> = HashMap::new();
    for r in results {
        by_test
            .entry(r.test_id.clone())
            .or_default()
            .push(r.repetition);
    }
    by_test.values_mut().for_each(|reps| reps.sort_unstable());
    by_test
}

fn close(got: f64, want: f64) -> bool {
    (got - want).abs() < 1e-9
}

async fn execute_repeated(
    server: &Server,
    set: &str,
    repeats: u32,
) -> (pb::TestRun, Vec<pb::TestResult>, pb::TestRunSummary) {
    let request = pb::ExecuteRequest {
        repeats,
        ..execute_request(set, "switch")
    };
    execute(server, request).await
}

#[tokio::test]
async fn five_repeats_store_five_results_per_test_and_a_flaky_test_passes_by_majority() {
    five_repeats_of_a_changing_target(&Server::start().await).await;
}

#[tokio::test]
async fn on_postgres_too_a_repeated_run_counts_tests_by_majority() {
    let database = crate::postgres::TestDatabase::create().await;
    five_repeats_of_a_changing_target(&crate::on_postgres::server_on(&database).await).await;
}

/// Three tests run five times each on `server`: one always passes, one passes three calls of
/// five, one never passes.
async fn five_repeats_of_a_changing_target(server: &Server) {
    let target = Target::start().await;
    switch_endpoint(server, &target).await;
    exact_set(
        server,
        "suite",
        &[
            ("ping", "ping"),
            ("capital of France?", "Paris"),
            ("never right", "right"),
        ],
    )
    .await;
    // Three calls of five answer right: the test passes by majority, and is flaky.
    target.set_answer(
        "capital of France?",
        &["Paris", "Lyon", "Paris", "Lyon", "Paris"],
    );

    let (run, results, summary) = execute_repeated(server, "suite", 5).await;
    assert_eq!((run.total, run.repeats), (3, 5));
    assert_eq!(target.calls(), 15);
    assert_eq!(results.len(), 15);
    let streamed = repetitions(&results);
    assert_eq!(streamed.len(), 3);
    for reps in streamed.values() {
        assert_eq!(reps, &[0, 1, 2, 3, 4]);
    }
    // Stored once each: what was streamed is what is listed.
    let stored = stored_results(server, &run.id).await;
    assert_eq!(repetitions(&stored), streamed);
    let ids: BTreeSet<&str> = stored.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids.len(), 15);

    assert_eq!(summary.status, pb::RunStatus::Completed as i32);
    assert_eq!(summary.repeats, 5);
    // Tests by majority: ping and the capital passed, the third failed.
    assert_eq!(
        (
            summary.total,
            summary.passed,
            summary.failed,
            summary.errored
        ),
        (3, 2, 1, 0)
    );
    assert_eq!(summary.flaky, 1);
    assert!(close(summary.pass_rate, 2.0 / 3.0), "{summary:?}");
    // pass@5: ping and the capital passed at least once; pass^5: only ping passed all five.
    assert!(close(summary.pass_at_k, 2.0 / 3.0), "{summary:?}");
    assert!(close(summary.pass_hat_k, 1.0 / 3.0), "{summary:?}");
    // 5 + 3 + 0 of 15 repetitions passed; Wilson 95% of 8/15 by hand: 0.30117 .. 0.75191.
    assert!(close(summary.mean_pass_rate, 8.0 / 15.0), "{summary:?}");
    assert!(
        (summary.pass_rate_low - 0.301_166).abs() < 1e-5,
        "{summary:?}"
    );
    assert!(
        (summary.pass_rate_high - 0.751_908).abs() < 1e-5,
        "{summary:?}"
    );
    // The run as stored says the same.
    let stored_run = get_run(server, &run.id).await;
    assert_eq!(stored_run.repeats, 5);
    assert_eq!(stored_run.summary.as_ref(), Some(&summary));
}

#[tokio::test]
async fn one_repetition_fills_the_new_fields_consistently() {
    let server = Server::start().await;
    let target = Target::start().await;
    switch_endpoint(&server, &target).await;
    exact_set(
        &server,
        "suite",
        &[("ping", "ping"), ("never right", "right")],
    )
    .await;

    // 0 (unset) is one repetition.
    let (run, results, summary) = execute_repeated(&server, "suite", 0).await;
    assert_eq!(run.repeats, 1);
    assert!(results.iter().all(|r| r.repetition == 0));
    assert_eq!((summary.passed, summary.failed, summary.flaky), (1, 1, 0));
    assert_eq!(summary.repeats, 1);
    for rate in [
        summary.mean_pass_rate,
        summary.pass_at_k,
        summary.pass_hat_k,
    ] {
        assert!(close(rate, 0.5), "{summary:?}");
    }
    // Wilson 95% of 1/2: 0.5 ± 0.4057 (by hand).
    assert!(
        (summary.pass_rate_low - 0.094_529).abs() < 1e-5,
        "{summary:?}"
    );
    assert!(
        (summary.pass_rate_high - 0.905_471).abs() < 1e-5,
        "{summary:?}"
    );
}

#[tokio::test]
async fn more_than_100_repeats_are_invalid_argument() {
    let server = Server::start().await;
    let target = Target::start().await;
    switch_endpoint(&server, &target).await;
    exact_set(&server, "suite", &[("ping", "ping")]).await;
    let err = server
        .execution()
        .execute(pb::ExecuteRequest {
            repeats: 101,
            ..execute_request("suite", "switch")
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("repeats") && err.message().contains("101"),
        "{}",
        err.message()
    );
    assert_eq!(target.calls(), 0);
}

#[tokio::test]
async fn sequential_repeats_run_a_tests_repetitions_before_the_next_test() {
    let server = Server::start().await;
    let target = Target::start().await;
    switch_endpoint(&server, &target).await;
    exact_set(
        &server,
        "suite",
        &[("first", "first"), ("second", "second")],
    )
    .await;
    let request = pb::ExecuteRequest {
        repeats: 3,
        mode: pb::ExecutionMode::Sequential as i32,
        ..execute_request("suite", "switch")
    };
    let (_, results, _) = execute(&server, request).await;
    let prompts: Vec<String> = target
        .bodies()
        .iter()
        .map(|b| b["prompt"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        prompts,
        ["first", "first", "first", "second", "second", "second"]
    );
    let order: Vec<u32> = results.iter().map(|r| r.repetition).collect();
    assert_eq!(order, [0, 1, 2, 0, 1, 2]);
}

#[tokio::test]
async fn a_rescore_of_a_repeated_run_keeps_its_repetitions() {
    let server = Server::start().await;
    let target = Target::start().await;
    switch_endpoint(&server, &target).await;
    exact_set(&server, "suite", &[("ping", "ping"), ("capital?", "Paris")]).await;
    target.set_answer("capital?", &["Paris", "Lyon", "Paris"]);
    let (source, source_results, source_summary) = execute_repeated(&server, "suite", 3).await;

    let (run, results, summary) = rescore(
        &server,
        pb::RescoreRequest {
            test_set: "suite".into(),
            endpoint: "switch".into(),
            run: source.id.clone(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(target.calls(), 6, "a rescore never calls the endpoint");
    assert_eq!((run.total, run.repeats), (2, 3));
    assert_eq!(repetitions(&results), repetitions(&source_results));
    // Each rescored result keeps the output, so the status, of its source repetition.
    let key = |r: &pb::TestResult| (r.test_id.clone(), r.repetition);
    let verdicts = |rs: &[pb::TestResult]| {
        rs.iter()
            .map(|r| (key(r), (r.output.clone(), r.status)))
            .collect::<HashMap<_, _>>()
    };
    assert_eq!(verdicts(&results), verdicts(&source_results));
    assert_eq!(
        (summary.passed, summary.flaky, summary.repeats),
        (source_summary.passed, 1, 3)
    );
    assert!(close(summary.pass_hat_k, 0.5), "{summary:?}");
}

#[tokio::test]
async fn retry_errors_of_a_repeated_run_keeps_its_repetitions() {
    let server = Server::start().await;
    let target = Target::start().await;
    create_metric(&server, regex("anything", ".")).await;
    // Every other call fails with a 500, never retried: repetitions 0 and 2 of the first run.
    let mut endpoint = http_endpoint("flaky", &target.url);
    if let Some(pb::endpoint::Target::Http(http)) = endpoint.target.as_mut() {
        http.url = format!("{}/flaky", target.url);
        http.body_template = r#"{"prompt": "{{ prompt }}", "fault_percent": 50}"#.into();
    }
    endpoint.max_retries = Some(0);
    create_endpoint(&server, endpoint).await;
    create_test_set(&server, "set", &["anything"], vec![test("q", "", &[])]).await;
    let request = pb::ExecuteRequest {
        repeats: 4,
        mode: pb::ExecutionMode::Sequential as i32,
        ..execute_request("set", "flaky")
    };
    let (source, source_results, source_summary) = execute(&server, request).await;
    let errored: BTreeSet<u32> = source_results
        .iter()
        .filter(|r| r.status == pb::ResultStatus::Error as i32)
        .map(|r| r.repetition)
        .collect();
    assert_eq!(errored, BTreeSet::from([0, 2]));
    // Two of four passed: not a majority, and not a majority of errors either.
    assert_eq!(
        (
            source_summary.passed,
            source_summary.failed,
            source_summary.flaky
        ),
        (0, 1, 1)
    );
    assert_eq!(source_summary.status, pb::RunStatus::Partial as i32);

    let stream = server
        .execution()
        .retry_errors(pb::RetryErrorsRequest {
            run: source.id.clone(),
        })
        .await
        .expect("retry errors")
        .into_inner();
    let (run, results, summary) = split(collect(stream).await);
    assert_eq!((run.total, run.repeats), (1, 4));
    assert_eq!(target.calls(), 6, "only the two errors were called again");
    assert_eq!(repetitions(&results), repetitions(&source_results));
    // The passing repetitions are copied as they were.
    for r in results.iter().filter(|r| !errored.contains(&r.repetition)) {
        assert_eq!(r.status, pb::ResultStatus::Passed as i32, "{r:?}");
    }
    // Call 4 failed again, call 5 passed: three of four repetitions pass.
    assert_eq!((summary.passed, summary.flaky, summary.repeats), (1, 1, 4));
    assert!(close(summary.mean_pass_rate, 0.75), "{summary:?}");
}

#[tokio::test]
async fn compare_runs_of_repeated_runs_calls_a_majority_flip_a_regression() {
    let server = Server::start().await;
    let target = Target::start().await;
    switch_endpoint(&server, &target).await;
    exact_set(&server, "suite", &[("ping", "ping"), ("capital?", "Paris")]).await;
    target.set_answer("capital?", &["Paris", "Paris", "Lyon"]);
    let (base, _, base_summary) = execute_repeated(&server, "suite", 3).await;
    assert_eq!((base_summary.passed, base_summary.flaky), (2, 1));
    target.set_answer("capital?", &["Paris", "Lyon", "Lyon"]);
    let (head, _, head_summary) = execute_repeated(&server, "suite", 3).await;
    assert_eq!((head_summary.passed, head_summary.flaky), (1, 1));

    let compared = server
        .execution()
        .compare_runs(pb::CompareRunsRequest {
            head_run: head.id.clone(),
            base_run: base.id.clone(),
            ..Default::default()
        })
        .await
        .expect("compare runs")
        .into_inner();
    let summary = compared.summary.expect("summary");
    assert_eq!(
        (
            summary.regressed,
            summary.fixed,
            summary.still_passing,
            summary.paired
        ),
        (1, 0, 1, 2)
    );
    let regressed = &compared.tests[0];
    assert_eq!(regressed.change, pb::TestChange::Regressed as i32);
    assert_eq!(regressed.prompt, "capital?");
    assert!(close(regressed.base_pass_rate, 2.0 / 3.0), "{regressed:?}");
    assert!(close(regressed.head_pass_rate, 1.0 / 3.0), "{regressed:?}");
    assert_eq!(regressed.base_status, pb::ResultStatus::Passed as i32);
    assert_eq!(regressed.head_status, pb::ResultStatus::Failed as i32);
}

#[tokio::test]
async fn a_filtered_run_repeats_only_the_chosen_tests() {
    let server = Server::start().await;
    let target = Target::start().await;
    switch_endpoint(&server, &target).await;
    let set = exact_set(&server, "suite", &[("ping", "ping"), ("pong", "pong")]).await;
    let tests = stored_tests(&server, &set.name).await;
    let chosen = tests.iter().find(|t| t.prompt == "pong").expect("pong");
    let request = pb::ExecuteRequest {
        repeats: 2,
        filter: Some(pb::TestFilter {
            test_ids: vec![chosen.id.clone()],
            ..Default::default()
        }),
        ..execute_request("suite", "switch")
    };
    let (run, results, summary) = execute(&server, request).await;
    assert_eq!((run.total, run.repeats), (1, 2));
    assert_eq!(
        repetitions(&results),
        HashMap::from([(chosen.id.clone(), vec![0, 1])])
    );
    assert_eq!((summary.total, summary.passed), (1, 1));
    assert!(close(summary.pass_hat_k, 1.0), "{summary:?}");
}

#[tokio::test]
async fn a_cancelled_repeated_run_counts_tests_not_results() {
    let server = Server::start().await;
    let target = Target::start().await;
    create_metric(&server, regex("anything", ".")).await;
    create_endpoint(&server, http_endpoint("bot", &target.url)).await;
    let tests = vec![
        test("fast", "", &[]),
        test("slow", "", &[("delay_ms", "5000")]),
    ];
    create_test_set(&server, "set", &["anything"], tests).await;
    // Two at a time in position order: the fast test's three repetitions come back while the
    // slow test's first call waits; then the run is cancelled.
    let request = pb::ExecuteRequest {
        repeats: 3,
        max_concurrency: 2,
        ..execute_request("set", "bot")
    };
    let (run, mut stream) = start(&server, request).await;
    for _ in 0..3 {
        let result = next_result(&mut stream).await;
        assert_eq!(result.prompt, "fast");
    }
    let cancelled = server
        .execution()
        .cancel_test_run(pb::CancelTestRunRequest { run: run.id })
        .await
        .expect("cancel")
        .into_inner();
    let summary = cancelled.summary.expect("a summary");
    assert_eq!(summary.status, pb::RunStatus::Cancelled as i32);
    // One test passed (three passing results), the other never ran.
    assert_eq!(
        (
            summary.total,
            summary.passed,
            summary.failed,
            summary.errored
        ),
        (2, 1, 0, 0)
    );
    assert!(close(summary.pass_rate, 0.5), "{summary:?}");
    assert!(close(summary.pass_hat_k, 0.5), "{summary:?}");
    assert!(close(summary.mean_pass_rate, 0.5), "{summary:?}");
}

#[tokio::test]
async fn a_stopped_repeated_run_resumes_with_each_repetition_run_once() {
    let server = Server::start().await;
    let target = Target::start().await;
    create_metric(&server, regex("anything", ".")).await;
    create_endpoint(&server, http_endpoint("bot", &target.url)).await;
    let tests = vec![
        test("q1", "", &[("delay_ms", "200")]),
        test("q2", "", &[("delay_ms", "200")]),
    ];
    create_test_set(&server, "set", &["anything"], tests).await;
    let request = pb::ExecuteRequest {
        repeats: 3,
        mode: pb::ExecutionMode::Sequential as i32,
        ..execute_request("set", "bot")
    };
    let (run, mut stream) = start(&server, request).await;
    next_result(&mut stream).await;
    let mut server = server;
    server.begin_stop();
    // The stream ends once the call in flight is stored: the run resumes at the next start.
    while let Some(Ok(_)) = futures::StreamExt::next(&mut stream).await {}
    let (db_path, dir) = server.stop().await;
    let before = target.calls();
    assert!(before < 6, "the run ended before the stop");

    let server = Server::start_on(&db_path).await;
    let watched = watch(&server, &run.id).await;
    let (_, results, summary) = split(collect(watched).await);
    assert_eq!(summary.status, pb::RunStatus::Completed as i32);
    let by_test = repetitions(&results);
    assert_eq!(by_test.len(), 2);
    for reps in by_test.values() {
        assert_eq!(reps, &[0, 1, 2]);
    }
    assert_eq!(target.calls(), 6, "no repetition was called twice");
    assert_eq!((summary.passed, summary.repeats), (2, 3));
    server.stop().await;
    drop(dir);
}
