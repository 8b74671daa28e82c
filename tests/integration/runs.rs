//! Runs after `Execute`: `Rescore`, `LastRun`, watching, cancelling, disconnecting, restarting,
//! and the test-set metrics RPCs.

use std::time::Duration;

use assay::proto::v1 as pb;
use futures::StreamExt;
use pb::execution_event::Event;
use tonic::Code;

use crate::app_server::Target;
use crate::fixtures::*;
use crate::harness::Server;

/// A server with metrics `paris` and `rome`, endpoint `app` and a test set `geo` of two tests
/// (answers "Paris" and "Rome"), whose metric is `paris`.
async fn geo(server: &Server, target: &Target) {
    create_metric(server, contains("paris", &["paris"])).await;
    create_metric(server, contains("rome", &["rome"])).await;
    create_endpoint(server, http_endpoint("app", &target.url)).await;
    let tests = vec![
        test("France?", "", &[("answer", "Paris")]),
        test("Italy?", "", &[("answer", "Rome")]),
    ];
    create_test_set(server, "geo", &["paris"], tests).await;
}

fn rescore_request(run: &str, metrics: &[&str]) -> pb::RescoreRequest {
    pb::RescoreRequest {
        test_set: "geo".into(),
        endpoint: "app".into(),
        run: run.into(),
        metrics: metrics.iter().map(|m| m.to_string()).collect(),
        ..Default::default()
    }
}

#[tokio::test]
async fn rescore_never_calls_the_endpoint_and_scores_the_latest_completed_run() {
    let server = Server::start().await;
    let target = Target::start().await;
    geo(&server, &target).await;
    let (first, _, _) = execute(&server, execute_request("geo", "app")).await;
    let (latest, _, _) = execute(&server, execute_request("geo", "app")).await;
    assert_eq!(target.calls(), 4);

    let (run, results, summary) = rescore(&server, rescore_request("", &["rome"])).await;
    assert_eq!(target.calls(), 4, "rescore called the endpoint");
    assert_eq!(run.kind, pb::RunKind::Rescore as i32);
    assert_eq!(run.source_run_id, latest.id);
    assert_ne!(run.source_run_id, first.id);
    assert_eq!(summary.kind, pb::RunKind::Rescore as i32);
    assert_eq!((summary.passed, summary.failed), (1, 1));
    let rome = results.iter().find(|r| r.output == "Rome").unwrap();
    assert_eq!(rome.status, pb::ResultStatus::Passed as i32);
    assert_eq!(rome.metric_results[0].metric_name, "rome");

    // An explicit run is used as given.
    let (run, _, _) = rescore(&server, rescore_request(&first.id, &[])).await;
    assert_eq!(run.source_run_id, first.id);
    assert_eq!(target.calls(), 4);
}

#[tokio::test]
async fn rescore_without_a_completed_run_is_failed_precondition() {
    let server = Server::start().await;
    let target = Target::start().await;
    geo(&server, &target).await;
    let status = server
        .execution()
        .rescore(rescore_request("", &[]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(
        status
            .message()
            .contains("no completed run for test set \"geo\" and endpoint \"app\""),
        "{}",
        status.message()
    );
}

#[tokio::test]
async fn rescore_of_an_unknown_or_foreign_run_is_rejected() {
    let server = Server::start().await;
    let target = Target::start().await;
    geo(&server, &target).await;
    create_endpoint(&server, http_endpoint("other", &target.url)).await;
    let (other_run, _, _) = execute(&server, execute_request("geo", "other")).await;

    let status = server
        .execution()
        .rescore(rescore_request(&uuid_v4(), &[]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let status = server
        .execution()
        .rescore(rescore_request(&other_run.id, &[]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains(&other_run.id),
        "{}",
        status.message()
    );
    let status = server
        .execution()
        .rescore(rescore_request("not-a-uuid", &[]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}

fn uuid_v4() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[tokio::test]
async fn rescore_keeps_endpoint_errors_as_errors() {
    let server = Server::start().await;
    let target = Target::start().await;
    create_metric(&server, regex("anything", ".")).await;
    create_endpoint(&server, http_endpoint("app", &target.url)).await;
    let tests = vec![
        test("fine", "", &[]),
        test("broken", "", &[("fail_status", "502")]),
    ];
    create_test_set(&server, "geo", &["anything"], tests).await;
    let (partial, _, summary) = execute(&server, execute_request("geo", "app")).await;
    assert_eq!(summary.status, pb::RunStatus::Partial as i32);

    let (_, results, summary) = rescore(&server, rescore_request(&partial.id, &[])).await;
    assert_eq!(target.calls(), 2);
    let broken = results.iter().find(|r| r.prompt == "broken").unwrap();
    assert_eq!(broken.status, pb::ResultStatus::Error as i32);
    assert!(broken.error.contains("502"), "{}", broken.error);
    assert_eq!(summary.errored, 1);
}

#[tokio::test]
async fn last_run_is_empty_until_a_run_completes_then_the_latest_completed() {
    let server = Server::start().await;
    let target = Target::start().await;
    geo(&server, &target).await;
    let mut client = server.execution();
    let request = pb::LastRunRequest {
        test_set: "geo".into(),
        endpoint: "app".into(),
        ..Default::default()
    };
    assert!(
        client
            .last_run(request.clone())
            .await
            .unwrap()
            .into_inner()
            .run
            .is_none()
    );

    let (run, _, _) = execute(&server, execute_request("geo", "app")).await;
    let last = client
        .last_run(request.clone())
        .await
        .unwrap()
        .into_inner()
        .run
        .expect("a last run");
    assert_eq!(last.run_id, run.id);
    assert_eq!(last.status, pb::RunStatus::Completed as i32);
    assert_eq!((last.total, last.passed, last.failed), (2, 1, 1));
    assert!((last.pass_rate - 0.5).abs() < 1e-9);

    // A rescore that completes is the latest completed run too.
    let (rescored, _, _) = rescore(&server, rescore_request("", &["rome"])).await;
    let last = client
        .last_run(request.clone())
        .await
        .unwrap()
        .into_inner()
        .run
        .unwrap();
    assert_eq!(last.run_id, rescored.id);
    assert_eq!(last.kind, pb::RunKind::Rescore as i32);

    // A partial run is not completed: the last run stays.
    server
        .test_sets()
        .add_tests(pb::AddTestsRequest {
            test_set: "geo".into(),
            tests: vec![test("down", "", &[("fail_status", "500")])],
        })
        .await
        .unwrap();
    let (_, _, summary) = execute(&server, execute_request("geo", "app")).await;
    assert_eq!(summary.status, pb::RunStatus::Partial as i32);
    let last = client
        .last_run(request)
        .await
        .unwrap()
        .into_inner()
        .run
        .unwrap();
    assert_eq!(last.run_id, rescored.id);
}

#[tokio::test]
async fn test_set_metrics_are_listed_added_and_removed_by_id_or_name() {
    let server = Server::start().await;
    let target = Target::start().await;
    geo(&server, &target).await;
    let rome = server
        .metrics()
        .get_metric(pb::GetMetricRequest {
            metric: "rome".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut client = server.execution();
    let names = |metrics: Vec<pb::Metric>| metrics.into_iter().map(|m| m.name).collect::<Vec<_>>();

    let listed = client
        .list_test_set_metrics(pb::ListTestSetMetricsRequest {
            test_set: "geo".into(),
        })
        .await
        .unwrap();
    assert_eq!(names(listed.into_inner().metrics), ["paris"]);

    let add = pb::AddTestSetMetricsRequest {
        test_set: "geo".into(),
        metrics: vec![rome.id.clone()],
    };
    assert_eq!(
        names(
            client
                .add_test_set_metrics(add.clone())
                .await
                .unwrap()
                .into_inner()
                .metrics
        ),
        ["paris", "rome"]
    );
    // Adding again changes nothing and is no error.
    assert_eq!(
        names(
            client
                .add_test_set_metrics(add)
                .await
                .unwrap()
                .into_inner()
                .metrics
        ),
        ["paris", "rome"]
    );

    let remove = pb::RemoveTestSetMetricsRequest {
        test_set: "geo".into(),
        metrics: vec!["paris".into()],
    };
    assert_eq!(
        names(
            client
                .remove_test_set_metrics(remove.clone())
                .await
                .unwrap()
                .into_inner()
                .metrics
        ),
        ["rome"]
    );
    assert_eq!(
        names(
            client
                .remove_test_set_metrics(remove)
                .await
                .unwrap()
                .into_inner()
                .metrics
        ),
        ["rome"]
    );

    // An unknown reference fails the whole call and changes nothing.
    let status = client
        .add_test_set_metrics(pb::AddTestSetMetricsRequest {
            test_set: "geo".into(),
            metrics: vec!["paris".into(), "ghost".into()],
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert!(status.message().contains("ghost"));
    let status = client
        .remove_test_set_metrics(pb::RemoveTestSetMetricsRequest {
            test_set: "geo".into(),
            metrics: vec!["rome".into(), "ghost".into()],
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let listed = client
        .list_test_set_metrics(pb::ListTestSetMetricsRequest {
            test_set: "geo".into(),
        })
        .await
        .unwrap();
    assert_eq!(names(listed.into_inner().metrics), ["rome"]);

    let status = client
        .list_test_set_metrics(pb::ListTestSetMetricsRequest {
            test_set: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}

/// A server with a test set `slow` of `n` tests that each take `delay_ms`.
async fn slow_set(server: &Server, target: &Target, n: usize, delay_ms: u64) {
    create_metric(server, regex("anything", ".")).await;
    create_endpoint(server, http_endpoint("app", &target.url)).await;
    let tests = (0..n)
        .map(|i| test(&format!("t{i}"), "", &[("delay_ms", &delay_ms.to_string())]))
        .collect();
    create_test_set(server, "slow", &["anything"], tests).await;
}

/// A sequential run of `slow_set`, started, once its first result has arrived.
async fn slow_run_after_one_result(
    server: &Server,
    target: &Target,
    n: usize,
    delay_ms: u64,
) -> (pb::TestRun, tonic::Streaming<pb::ExecutionEvent>) {
    slow_set(server, target, n, delay_ms).await;
    let mut request = execute_request("slow", "app");
    request.mode = pb::ExecutionMode::Sequential as i32;
    let (run, mut stream) = start(server, request).await;
    next_result(&mut stream).await;
    (run, stream)
}

#[tokio::test]
async fn a_client_that_disconnects_does_not_stop_the_run_and_can_watch_it_again() {
    let server = Server::start().await;
    let target = Target::start().await;
    slow_set(&server, &target, 4, 150).await;
    let mut request = execute_request("slow", "app");
    request.mode = pb::ExecutionMode::Sequential as i32;
    let (run, stream) = start(&server, request).await;
    drop(stream);

    let watched = watch(&server, &run.id).await;
    let (again, results, summary) = split(collect(watched).await);
    assert_eq!(again.id, run.id);
    assert_eq!(results.len(), 4);
    assert_eq!(summary.status, pb::RunStatus::Completed as i32);
    assert_eq!(target.calls(), 4);
}

#[tokio::test]
async fn watching_an_ended_run_replays_its_stored_results() {
    let server = Server::start().await;
    let target = Target::start().await;
    geo(&server, &target).await;
    let (run, streamed, _) = execute(&server, execute_request("geo", "app")).await;
    let watched = watch(&server, &run.id).await;
    let (_, replayed, summary) = split(collect(watched).await);
    let ids = |rs: &[pb::TestResult]| rs.iter().map(|r| r.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&replayed), ids(&streamed));
    assert_eq!(summary.run_id, run.id);

    let status = server
        .execution()
        .watch_test_run(pb::WatchTestRunRequest { run: uuid_v4() })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}

#[tokio::test]
async fn cancelling_stops_dispatching_and_ends_the_run_cancelled() {
    let server = Server::start().await;
    let target = Target::start().await;
    // Wait for one result, then cancel.
    let (run, stream) = slow_run_after_one_result(&server, &target, 6, 300).await;
    let cancelled = server
        .execution()
        .cancel_test_run(pb::CancelTestRunRequest {
            run: run.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cancelled.status, pb::RunStatus::Cancelled as i32);
    let calls_at_cancel = target.calls();
    assert!(calls_at_cancel < 6, "every test was dispatched");

    let rest = collect(stream).await;
    let Some(Event::RunFinished(summary)) = rest.last() else {
        panic!("no summary")
    };
    assert_eq!(summary.status, pb::RunStatus::Cancelled as i32);
    assert_eq!(summary.total, 6);
    assert!(summary.passed + summary.failed + summary.errored < 6);
    // Stored results match the summary: nothing half-written.
    let stored = stored_results(&server, &run.id).await;
    assert_eq!(
        stored.len() as u32,
        summary.passed + summary.failed + summary.errored
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        target.calls(),
        calls_at_cancel,
        "tests were dispatched after the cancel"
    );

    // Cancelling again returns the cancelled run; a completed run cannot be cancelled.
    let again = server
        .execution()
        .cancel_test_run(pb::CancelTestRunRequest {
            run: run.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.status, pb::RunStatus::Cancelled as i32);
}

#[tokio::test]
async fn a_completed_run_cannot_be_cancelled() {
    let server = Server::start().await;
    let target = Target::start().await;
    geo(&server, &target).await;
    let (run, _, _) = execute(&server, execute_request("geo", "app")).await;
    let status = server
        .execution()
        .cancel_test_run(pb::CancelTestRunRequest { run: run.id })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
}

#[tokio::test]
async fn runs_are_listed_newest_first_and_filtered() {
    let server = Server::start().await;
    let target = Target::start().await;
    geo(&server, &target).await;
    create_endpoint(&server, http_endpoint("other", &target.url)).await;
    let (a, _, _) = execute(&server, execute_request("geo", "app")).await;
    let (b, _, _) = execute(&server, execute_request("geo", "other")).await;
    let (c, _, _) = execute(&server, execute_request("geo", "app")).await;
    let mut client = server.execution();
    let ids = |runs: Vec<pb::TestRun>| runs.into_iter().map(|r| r.id).collect::<Vec<_>>();

    let all = client
        .list_test_runs(pb::ListTestRunsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ids(all.runs), [c.id.clone(), b.id.clone(), a.id.clone()]);
    let app = client
        .list_test_runs(pb::ListTestRunsRequest {
            endpoint: "app".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ids(app.runs), [c.id.clone(), a.id.clone()]);
    let page = client
        .list_test_runs(pb::ListTestRunsRequest {
            test_set: "geo".into(),
            page_size: 2,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ids(page.runs), [c.id.clone(), b.id.clone()]);
    let next = client
        .list_test_runs(pb::ListTestRunsRequest {
            test_set: "geo".into(),
            page_size: 2,
            page_token: page.next_page_token,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ids(next.runs), std::slice::from_ref(&a.id));
    assert!(next.next_page_token.is_empty());

    let got = client
        .get_test_run(pb::GetTestRunRequest { run: a.id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.status, pb::RunStatus::Completed as i32);
    assert!(got.summary.is_some());
    assert!(got.finished_at.is_some());
}

#[tokio::test]
async fn a_restarted_server_keeps_runs_and_results() {
    let server = Server::start().await;
    let target = Target::start().await;
    geo(&server, &target).await;
    let (run, results, _) = execute(&server, execute_request("geo", "app")).await;
    let (db_path, dir) = server.stop().await;

    let server = Server::start_on(&db_path).await;
    let got = get_run(&server, &run.id).await;
    assert_eq!(got.status, pb::RunStatus::Completed as i32);
    let stored = stored_results(&server, &run.id).await;
    assert_eq!(stored.len(), results.len());
    let last = last_run(&server, "geo", "app")
        .await
        .expect("a completed run");
    assert_eq!(last.run_id, run.id);
    // The stored outputs can still be rescored after the restart.
    let (_, rescored, _) = rescore(&server, rescore_request("", &["rome"])).await;
    assert_eq!(rescored.len(), 2);
    server.stop().await;
    drop(dir);
}

#[tokio::test]
async fn every_follower_gets_every_result_once_in_stored_order() {
    let server = Server::start().await;
    let target = Target::start().await;
    create_metric(&server, regex("anything", ".")).await;
    create_endpoint(&server, http_endpoint("app", &target.url)).await;
    let tests = (0..600).map(|i| test(&format!("t{i}"), "", &[])).collect();
    create_test_set(&server, "many", &["anything"], tests).await;

    // One follower keeps up (it is handed the batches as they are stored); another starts late
    // and pauses, so it reads from the store, then catches up.
    let (run, mut fast) = start(&server, execute_request("many", "app")).await;
    let mut fast_results = vec![next_result(&mut fast).await];
    let mut late = watch(&server, &run.id).await;
    let mut late_events = vec![late.next().await.unwrap().unwrap().event.unwrap()];
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        late_events.push(Event::Result(next_result(&mut late).await));
    }
    let (fast_rest, late_rest) = tokio::join!(collect(fast), collect(late));
    let ids = |results: Vec<pb::TestResult>| results.into_iter().map(|r| r.id).collect::<Vec<_>>();
    let stored = ids(stored_results(&server, &run.id).await);
    assert_eq!(stored.len(), 600);

    let (_, rest, summary) = split(
        std::iter::once(Event::RunStarted(run))
            .chain(fast_rest)
            .collect(),
    );
    assert_eq!(summary.passed, 600);
    fast_results.extend(rest);
    assert_eq!(ids(fast_results), stored);
    late_events.extend(late_rest);
    let (_, late_results, late_summary) = split(late_events);
    assert_eq!(late_summary, summary);
    assert_eq!(ids(late_results), stored);
}

#[tokio::test]
async fn a_client_that_reads_nothing_does_not_hold_the_run_back() {
    let server = Server::start().await;
    let target = Target::start().await;
    create_metric(&server, regex("anything", ".")).await;
    create_endpoint(&server, http_endpoint("app", &target.url)).await;
    // Far more results than the stream's buffers hold.
    let tests = (0..300).map(|i| test(&format!("t{i}"), "", &[])).collect();
    create_test_set(&server, "many", &["anything"], tests).await;

    let (run, stream) = start(&server, execute_request("many", "app")).await;
    // The stream is left unread while the run goes on to its end.
    let mut status = pb::RunStatus::Running as i32;
    for _ in 0..600 {
        let got = get_run(&server, &run.id).await;
        status = got.status;
        if status != pb::RunStatus::Running as i32 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, pb::RunStatus::Completed as i32);
    assert_eq!(target.calls(), 300);
    // Everything is still delivered, in full, to the slow reader.
    let (_, results, summary) = split(
        std::iter::once(Event::RunStarted(run))
            .chain(collect(stream).await)
            .collect(),
    );
    assert_eq!(results.len(), 300);
    assert_eq!(summary.passed, 300);
}

#[tokio::test]
async fn unknown_runs_are_not_found_naming_the_reference() {
    let server = Server::start().await;
    let mut client = server.execution();
    for run in [uuid_v4(), "no-such-run".to_string()] {
        let status = client
            .get_test_run(pb::GetTestRunRequest { run: run.clone() })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::NotFound);
        assert!(status.message().contains(&run), "{}", status.message());
        let status = client
            .cancel_test_run(pb::CancelTestRunRequest { run: run.clone() })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::NotFound);
        let status = client
            .list_test_results(pb::ListTestResultsRequest {
                run: run.clone(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::NotFound);
        let status = client
            .watch_test_run(pb::WatchTestRunRequest { run: run.clone() })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::NotFound);
    }
    let status = client
        .get_test_run(pb::GetTestRunRequest { run: String::new() })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
}
