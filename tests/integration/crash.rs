//! Crash safety end to end: the built `assay` binary runs a test set, is killed with SIGKILL in
//! the middle, restarted on the same database (and killed again while it resumes), and the run
//! still ends complete, with every result that was streamed before a kill, and no test called
//! again once it had a result.

use std::collections::HashSet;
use std::path::Path;

use assay::proto::v1 as pb;
use futures::StreamExt;
use pb::execution_event::Event;
use pb::test_execution_service_client::TestExecutionServiceClient;
use tonic::transport::Channel;

use crate::app_server::Target;
use crate::e2e::Assay;
use crate::fixtures::{http_endpoint, regex, split, test};

const TESTS: usize = 12;

/// Starts the binary on `db` and connects to it.
async fn start(db: &Path) -> (Assay, Channel) {
    let server = tokio::task::block_in_place(|| Assay::start(db));
    let channel = Channel::from_shared(format!("http://{}", server.addr()))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    (server, channel)
}

/// Metric, endpoint (slow answers) and a test set of `TESTS` tests.
async fn catalogue(channel: &Channel, target: &Target) {
    pb::metric_service_client::MetricServiceClient::new(channel.clone())
        .create_metric(pb::CreateMetricRequest {
            metric: Some(regex("anything", ".")),
        })
        .await
        .unwrap();
    pb::endpoint_service_client::EndpointServiceClient::new(channel.clone())
        .create_endpoint(pb::CreateEndpointRequest {
            endpoint: Some(http_endpoint("slow", &target.url)),
        })
        .await
        .unwrap();
    let mut sets = pb::test_set_service_client::TestSetServiceClient::new(channel.clone());
    sets.create_test_set(pb::CreateTestSetRequest {
        test_set: Some(pb::TestSet {
            name: "slow".into(),
            metrics: vec!["anything".into()],
            ..Default::default()
        }),
    })
    .await
    .unwrap();
    sets.add_tests(pb::AddTestsRequest {
        test_set: "slow".into(),
        tests: (0..TESTS)
            .map(|i| test(&format!("q{i}"), "", &[("delay_ms", "300")]))
            .collect(),
    })
    .await
    .unwrap();
}

/// Reads results from `stream` until `n` were read.
async fn results(
    stream: &mut tonic::Streaming<pb::ExecutionEvent>,
    n: usize,
) -> Vec<pb::TestResult> {
    let mut read = Vec::new();
    while read.len() < n {
        match stream.next().await {
            Some(Ok(pb::ExecutionEvent {
                event: Some(Event::Result(r)),
            })) => read.push(r),
            Some(Ok(_)) => {}
            other => panic!("expected a result, got {other:?}"),
        }
    }
    read
}

/// Prompts the target received from call `from` on.
fn prompts_called_since(target: &Target, from: usize) -> HashSet<String> {
    target.bodies()[from..]
        .iter()
        .map(|b| b["prompt"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Watches a run on the server behind `channel`.
async fn watch(channel: &Channel, run: &str) -> tonic::Streaming<pb::ExecutionEvent> {
    TestExecutionServiceClient::new(channel.clone())
        .watch_test_run(pb::WatchTestRunRequest { run: run.into() })
        .await
        .expect("watch the resumed run")
        .into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_twice_completes_with_every_streamed_result_and_no_test_twice() {
    let target = Target::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("crash.db");

    let (server, channel) = start(&db).await;
    catalogue(&channel, &target).await;
    let mut stream = TestExecutionServiceClient::new(channel.clone())
        .execute(pb::ExecuteRequest {
            test_set: "slow".into(),
            endpoint: "slow".into(),
            max_concurrency: 3,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let Some(Ok(pb::ExecutionEvent {
        event: Some(Event::RunStarted(run)),
    })) = stream.next().await
    else {
        panic!("expected the run first")
    };
    let before_first_kill = results(&mut stream, 4).await;
    tokio::task::block_in_place(|| server.kill());

    // The restarted server resumes the run; it is killed again while it does.
    let calls_at_first_restart = target.calls();
    let (server, channel) = start(&db).await;
    let mut watched = watch(&channel, &run.id).await;
    let before_second_kill = results(&mut watched, before_first_kill.len() + 3).await;
    tokio::task::block_in_place(|| server.kill());

    let calls_at_second_restart = target.calls();
    let (_server, channel) = start(&db).await;
    let mut watched = watch(&channel, &run.id).await;
    let mut events = Vec::new();
    while let Some(event) = watched.next().await {
        events.push(event.expect("watch event").event.expect("event set"));
    }
    let (_, all, summary) = split(events);

    assert_eq!(
        summary.status,
        pb::RunStatus::Completed as i32,
        "{summary:?}"
    );
    assert_eq!(
        (summary.total, summary.passed),
        (TESTS as u32, TESTS as u32)
    );
    assert_eq!(all.len(), TESTS);
    let tests: HashSet<_> = all.iter().map(|r| r.test_id.as_str()).collect();
    assert_eq!(tests.len(), TESTS, "no test has two results");
    for streamed in before_first_kill.iter().chain(&before_second_kill) {
        let stored = all.iter().find(|r| r.id == streamed.id);
        assert_eq!(stored, Some(streamed), "a streamed result was lost");
    }
    // A test with a stored result is never called again.
    for (streamed, since) in [
        (&before_first_kill, calls_at_first_restart),
        (&before_second_kill, calls_at_second_restart),
    ] {
        let called = prompts_called_since(&target, since);
        for r in streamed {
            assert!(!called.contains(&r.prompt), "{} was called again", r.prompt);
        }
    }
}
