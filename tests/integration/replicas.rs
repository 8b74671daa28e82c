//! Several `assay serve` processes on one PostgreSQL database are one service: each test starts
//! real replicas of the built binary on a database of its own, with a real HTTP target on
//! 127.0.0.1, and checks that they share every run: both work on a run started on one, any
//! replica follows and cancels it, a replica killed mid-run leaves its tests to the others, a
//! restart of every replica resumes the run, and an endpoint's limits (calls in flight, calls per
//! minute) hold for all together.

use std::collections::HashSet;
use std::time::Duration;

use assay::proto::v1 as pb;
use futures::StreamExt;
use pb::execution_event::Event;
use pb::test_execution_service_client::TestExecutionServiceClient;
use tonic::transport::Channel;

use crate::app_server::Target;
use crate::e2e::Assay;
use crate::fixtures::{http_endpoint, regex, split, test};
use crate::postgres::TestDatabase;

/// Each replica's own concurrency for a run that asks for none.
const REPLICA_CONCURRENCY: &str = "4";

/// A replica of the service on `db`, connected.
struct Replica {
    process: Assay,
    channel: Channel,
}

impl Replica {
    async fn start(db: &TestDatabase, dir: &std::path::Path, name: &str) -> Replica {
        let args = [
            "--default-concurrency",
            REPLICA_CONCURRENCY,
            "--lease-ms",
            "1000",
        ];
        let log = dir.join(name);
        let process = tokio::task::block_in_place(|| Assay::start_with(db.url(), &log, &args));
        let channel = Channel::from_shared(format!("http://{}", process.addr()))
            .expect("uri")
            .connect()
            .await
            .expect("connect");
        Replica { process, channel }
    }

    fn runs(&self) -> TestExecutionServiceClient<Channel> {
        TestExecutionServiceClient::new(self.channel.clone())
    }

    async fn watch(&self, run: &str) -> tonic::Streaming<pb::ExecutionEvent> {
        self.runs()
            .watch_test_run(pb::WatchTestRunRequest { run: run.into() })
            .await
            .expect("watch the run")
            .into_inner()
    }
}

/// Two replicas on a database of their own, and the application they call.
struct Cluster {
    db: TestDatabase,
    dir: tempfile::TempDir,
    target: Target,
    a: Replica,
    b: Replica,
}

impl Cluster {
    async fn start() -> Cluster {
        let db = TestDatabase::create().await;
        let dir = tempfile::tempdir().unwrap();
        let target = Target::start().await;
        let a = Replica::start(&db, dir.path(), "a").await;
        let b = Replica::start(&db, dir.path(), "b").await;
        Cluster {
            db,
            dir,
            target,
            a,
            b,
        }
    }
}

/// A metric, the endpoint `slow` (as `configure` sets it) and a test set `slow` of `tests` tests
/// that each take `delay_ms`.
async fn catalogue(
    channel: &Channel,
    target: &Target,
    tests: usize,
    delay_ms: u32,
    configure: impl FnOnce(&mut pb::Endpoint),
) {
    let mut endpoint = http_endpoint("slow", &target.url);
    configure(&mut endpoint);
    pb::metric_service_client::MetricServiceClient::new(channel.clone())
        .create_metric(pb::CreateMetricRequest {
            metric: Some(regex("anything", ".")),
        })
        .await
        .unwrap();
    pb::endpoint_service_client::EndpointServiceClient::new(channel.clone())
        .create_endpoint(pb::CreateEndpointRequest {
            endpoint: Some(endpoint),
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
    let delay = delay_ms.to_string();
    sets.add_tests(pb::AddTestsRequest {
        test_set: "slow".into(),
        tests: (0..tests)
            .map(|i| test(&format!("q{i}"), "", &[("delay_ms", delay.as_str())]))
            .collect(),
    })
    .await
    .unwrap();
}

/// Starts a run of `slow` on `replica`; returns the run and its stream.
async fn execute(replica: &Replica) -> (pb::TestRun, tonic::Streaming<pb::ExecutionEvent>) {
    let mut stream = replica
        .runs()
        .execute(pb::ExecuteRequest {
            test_set: "slow".into(),
            endpoint: "slow".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    match stream.next().await {
        Some(Ok(pb::ExecutionEvent {
            event: Some(Event::RunStarted(run)),
        })) => (run, stream),
        other => panic!("expected the run first, got {other:?}"),
    }
}

/// Every event of a stream until it ends (after `started`, when its first event was read).
async fn events_after(
    started: Option<&pb::TestRun>,
    mut stream: tonic::Streaming<pb::ExecutionEvent>,
) -> Vec<Event> {
    let mut events: Vec<Event> = started
        .cloned()
        .map(Event::RunStarted)
        .into_iter()
        .collect();
    while let Some(event) = stream.next().await {
        events.push(event.expect("an event").event.expect("event set"));
    }
    events
}

/// Every event of a stream until it ends.
async fn events(stream: tonic::Streaming<pb::ExecutionEvent>) -> Vec<Event> {
    events_after(None, stream).await
}

/// Reads results from `stream` until `n` were read.
async fn read_results(stream: &mut tonic::Streaming<pb::ExecutionEvent>, n: usize) {
    let mut read = 0;
    while read < n {
        match stream.next().await {
            Some(Ok(pb::ExecutionEvent {
                event: Some(Event::Result(_)),
            })) => read += 1,
            Some(Ok(_)) => {}
            other => panic!("expected a result, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_started_on_one_replica_is_worked_on_by_both_and_followed_from_either() {
    // Many short tests, so that both replicas store results in turn all along the run.
    const TESTS: usize = 120;
    let Cluster {
        db: _db,
        dir: _dir,
        target,
        a,
        b,
    } = Cluster::start().await;
    catalogue(&a.channel, &target, TESTS, 50, |_| {}).await;

    let (run, stream) = execute(&a).await;
    let watched = b.watch(&run.id).await;
    let (on_a, on_b) = tokio::join!(events_after(Some(&run), stream), events(watched));

    let (_, results_a, summary) = split(on_a);
    let (_, results_b, summary_b) = split(on_b);
    assert_eq!(summary.status, pb::RunStatus::Completed as i32);
    assert_eq!(
        (summary.total, summary.passed),
        (TESTS as u32, TESTS as u32)
    );
    assert_eq!(summary_b, summary, "both replicas tell the same end");
    let ids: HashSet<_> = results_a.iter().map(|r| r.test_id.as_str()).collect();
    assert_eq!(
        (results_a.len(), ids.len()),
        (TESTS, TESTS),
        "each test once"
    );
    assert_eq!(
        results_b, results_a,
        "the same results in the same (stored) order"
    );
    assert_eq!(target.calls(), TESTS, "no test called twice");
    let cap: usize = REPLICA_CONCURRENCY.parse().unwrap();
    assert!(
        target.max_in_flight() > cap,
        "{} calls in flight at most: one replica's cap is {cap}, so only one worked",
        target.max_in_flight()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_on_another_replica_stops_the_run_everywhere() {
    let Cluster {
        db: _db,
        dir: _dir,
        target,
        a,
        b,
    } = Cluster::start().await;
    catalogue(&a.channel, &target, 200, 200, |_| {}).await;

    let (run, mut stream) = execute(&a).await;
    read_results(&mut stream, 4).await;
    let cancelled = b
        .runs()
        .cancel_test_run(pb::CancelTestRunRequest {
            run: run.id.clone(),
        })
        .await
        .expect("cancel on the other replica")
        .into_inner();
    assert_eq!(cancelled.status, pb::RunStatus::Cancelled as i32);

    // The stream on the replica that started it ends with the cancelled run.
    let (_, _, summary) = split(events_after(Some(&run), stream).await);
    assert_eq!(summary.status, pb::RunStatus::Cancelled as i32);
    // Once every replica has seen it (a poll) and the calls in flight are dropped, no replica
    // calls the target again.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let calls = target.calls();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(target.calls(), calls, "a replica went on calling");
    assert!(calls < 200, "the run was not stopped: {calls} calls");
    let stored = crate::fixtures::stored_results_on(&b.channel, &run.id).await;
    assert_eq!(
        stored.len() as u32,
        summary.passed + summary.failed + summary.errored
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_replicas_tests_go_to_the_others_and_a_full_restart_resumes() {
    const TESTS: usize = 40;
    let Cluster {
        db,
        dir,
        target,
        a,
        b,
    } = Cluster::start().await;
    catalogue(&a.channel, &target, TESTS, 300, |_| {}).await;

    let (run, mut stream) = execute(&a).await;
    read_results(&mut stream, 6).await;
    // SIGKILL: a's claims stay until their lease (1 s) ends, then b takes them.
    tokio::task::block_in_place(|| a.process.kill());
    let mut watched = b.watch(&run.id).await;
    read_results(&mut watched, 14).await;
    // Every replica stops (SIGTERM) while the run goes on, and two start again.
    let status = tokio::task::block_in_place(|| b.process.terminate());
    assert!(status.success(), "{status}");
    let c = Replica::start(&db, dir.path(), "c").await;
    let d = Replica::start(&db, dir.path(), "d").await;
    let (on_c, on_d) = tokio::join!(
        events(c.watch(&run.id).await),
        events(d.watch(&run.id).await)
    );

    let (_, results, summary) = split(on_c);
    assert_eq!(
        summary.status,
        pb::RunStatus::Completed as i32,
        "{summary:?}"
    );
    assert_eq!(
        (summary.total, summary.passed),
        (TESTS as u32, TESTS as u32)
    );
    let ids: HashSet<_> = results.iter().map(|r| r.test_id.as_str()).collect();
    assert_eq!((results.len(), ids.len()), (TESTS, TESTS), "each test once");
    assert_eq!(split(on_d).1, results);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoints_limit_holds_across_replicas() {
    const TESTS: usize = 18;
    let Cluster {
        db: _db,
        dir: _dir,
        target,
        a,
        b,
    } = Cluster::start().await;
    catalogue(&a.channel, &target, TESTS, 200, |e| e.max_concurrency = 3).await;

    let (run, stream) = execute(&a).await;
    let watched = b.watch(&run.id).await;
    let (on_a, _) = tokio::join!(events_after(Some(&run), stream), events(watched));
    let (_, results, summary) = split(on_a);
    assert_eq!(summary.status, pb::RunStatus::Completed as i32);
    assert_eq!(results.len(), TESTS);
    assert!(
        target.max_in_flight() <= 3,
        "{} calls in flight at once; the endpoint allows 3",
        target.max_in_flight()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoints_rate_holds_across_replicas() {
    const TESTS: usize = 12;
    let Cluster {
        db: _db,
        dir: _dir,
        target,
        a,
        b,
    } = Cluster::start().await;
    // 240 calls per minute: one every 250 ms, for both replicas together.
    catalogue(&a.channel, &target, TESTS, 0, |e| {
        e.call_policy = Some(pb::CallPolicy {
            requests_per_minute: 240,
            ..Default::default()
        })
    })
    .await;
    let (run, stream) = execute(&a).await;
    let watched = b.watch(&run.id).await;
    let (on_a, _) = tokio::join!(events_after(Some(&run), stream), events(watched));
    let (_, results, summary) = split(on_a);
    assert_eq!(summary.status, pb::RunStatus::Completed as i32);
    assert_eq!(results.len(), TESTS);
    // Spaced 250 ms apart, the 12 calls span 2.75 s; a call started late can only shorten that
    // by its delay. Each replica alone would allow a burst of 4 and 4 per second: about 0.5 s.
    let times = target.times();
    let span = *times.iter().max().unwrap() - *times.iter().min().unwrap();
    assert!(
        span >= Duration::from_millis(1_750),
        "{TESTS} calls within {span:?}: the replicas did not keep the rate together"
    );
}
