//! End-to-end benchmark of the hot path: scheduling, calling, scoring, storing and streaming.
//!
//! `cargo bench --bench engine` starts the real server in-process on 127.0.0.1 with a temporary
//! SQLite database and a real HTTP target, drives it through the generated gRPC client, and
//! prints figures measured in one run, so their ratios can be compared fairly. Under `cargo test`
//! (no `--bench` argument) it runs the same scenarios on small sizes, as a smoke test.

use std::sync::Arc;
use std::time::{Duration, Instant};

use assay::config::ServeConfig;
use assay::domain::{
    ExecutionMode, ResultStatus, RunKind, RunStatus, Test, TestResult, TestRun, TestSet,
};
use assay::proto::v1 as pb;
use assay::store::{ClaimRequest, Completion, SqliteStore, Store, WorkSource};
use futures::StreamExt;
use pb::execution_event::Event;
use tonic::transport::Channel;

mod common;
use common::{add_tests_calls, setup, start_target};

async fn start_server(dir: &std::path::Path) -> Channel {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut config = ServeConfig::new(addr, format!("sqlite://{}", dir.join("bench.db").display()));
    config.default_concurrency = 64;
    tokio::spawn(async move {
        assay::server::serve(config, listener, std::future::pending())
            .await
            .unwrap()
    });
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

struct Measured {
    total: Duration,
    first_result: Duration,
    results: usize,
}

async fn run(
    channel: &Channel,
    request: pb::ExecuteRequest,
    rescore: Option<pb::RescoreRequest>,
) -> Measured {
    let mut client =
        pb::test_execution_service_client::TestExecutionServiceClient::new(channel.clone());
    let started = Instant::now();
    let mut stream = match rescore {
        Some(r) => client.rescore(r).await.unwrap().into_inner(),
        None => client.execute(request).await.unwrap().into_inner(),
    };
    let mut first_result = None;
    let mut results = 0;
    while let Some(event) = stream.next().await {
        match event.unwrap().event.unwrap() {
            Event::Result(_) => {
                results += 1;
                first_result.get_or_insert_with(|| started.elapsed());
            }
            Event::RunFinished(s) => assert_eq!(s.status, pb::RunStatus::Completed as i32),
            Event::RunStarted(_) => {}
        }
    }
    Measured {
        total: started.elapsed(),
        first_result: first_result.unwrap_or_default(),
        results,
    }
}

fn request(name: &str, mode: pb::ExecutionMode, max_concurrency: u32) -> pb::ExecuteRequest {
    pb::ExecuteRequest {
        test_set: name.into(),
        endpoint: name.into(),
        mode: mode as i32,
        max_concurrency,
        ..Default::default()
    }
}

fn report(label: &str, m: &Measured) {
    println!(
        "{label:<44} {:>6} results {:>9.1} ms total {:>8.1} ms to first {:>9.0} results/s",
        m.results,
        m.total.as_secs_f64() * 1e3,
        m.first_result.as_secs_f64() * 1e3,
        m.results as f64 / m.total.as_secs_f64()
    );
}

fn result(run_id: uuid::Uuid, i: usize) -> TestResult {
    TestResult {
        id: uuid::Uuid::now_v7(),
        run_id,
        test_id: uuid::Uuid::now_v7(),
        status: ResultStatus::Passed,
        output: Some(format!("answer {i}")),
        context: vec![],
        metadata: None,
        latency_ms: 3,
        repetition: 0,
        error: None,
        attempts: 1,
        last_error: None,
        metric_results: vec![],
        prompt: format!("question {i}"),
        expected_response: None,
        behavior_id: None,
        created_at: chrono::Utc::now(),
        usage: None,
        cost_usd: 0.0,
        judge_usage: Default::default(),
        judge_cost_usd: 0.0,
        trace_id: String::new(),
    }
}

/// Storing results one transaction each versus in batches, as the runner does.
async fn store_batching(dir: &std::path::Path, n: usize) {
    let store = SqliteStore::open(&format!("sqlite://{}", dir.join("store.db").display()))
        .await
        .unwrap();
    let store: Arc<dyn Store> = Arc::new(store);
    let mut timings = Vec::new();
    for batch in [1usize, 64] {
        let now = chrono::Utc::now();
        let run = TestRun {
            id: uuid::Uuid::now_v7(),
            test_set_id: uuid::Uuid::now_v7(),
            endpoint_id: uuid::Uuid::now_v7(),
            kind: RunKind::Execution,
            mode: ExecutionMode::Parallel,
            status: RunStatus::Running,
            source_run_id: None,
            total: n as u32,
            metric_ids: vec![],
            max_concurrency: 1,
            parameters: Default::default(),
            error: None,
            summary: None,
            created_at: now,
            started_at: Some(now),
            finished_at: None,
            plan: None,
            labels: Default::default(),
        };
        // The run's items: n tests of a set of its own, all claimed by this replica.
        let items = TestSet {
            id: uuid::Uuid::now_v7(),
            name: format!("items-{}", run.id),
            description: String::new(),
            metric_ids: vec![],
            test_count: 0,
            created_at: now,
            updated_at: now,
        };
        store.create_test_set(&items).await.unwrap();
        let tests: Vec<Test> = (0..n)
            .map(|i| Test {
                id: uuid::Uuid::now_v7(),
                test_set_id: items.id,
                prompt: format!("question {i}"),
                key: String::new(),
                expected_response: None,
                behavior_id: None,
                category: String::new(),
                topic: String::new(),
                metadata: Default::default(),
                created_at: now,
            })
            .collect();
        store.add_tests(items.id, &tests).await.unwrap();
        let source = WorkSource::Tests {
            test_set_id: items.id,
            through: i64::MAX,
            repeats: 1,
        };
        store.create_run(&run, source).await.unwrap();
        let now_ms = now.timestamp_millis();
        let positions = store
            .claim_work(&ClaimRequest {
                run_id: run.id,
                owner: "bench",
                now_ms,
                lease_until_ms: now_ms + 600_000,
                limit: n as u32,
                run_cap: None,
                endpoint_cap: None,
            })
            .await
            .unwrap()
            .unwrap();
        let results: Vec<(i64, TestResult)> = positions
            .into_iter()
            .enumerate()
            .map(|(i, p)| (p, result(run.id, i)))
            .collect();
        let started = Instant::now();
        for chunk in results.chunks(batch) {
            let done = Completion {
                run_id: run.id,
                owner: "bench",
                dropped: vec![],
                results: chunk.to_vec(),
            };
            store
                .complete_work(done, Box::new(|run, _, _| run))
                .await
                .unwrap();
        }
        let took = started.elapsed();
        println!(
            "{:<44} {:>6} results {:>9.1} ms total {:>28.0} results/s",
            format!("store: complete_work, batches of {batch}"),
            n,
            took.as_secs_f64() * 1e3,
            n as f64 / took.as_secs_f64()
        );
        timings.push(took);
    }
    println!(
        "ratio: batched (64) stores {:.1}x faster than one result per transaction",
        timings[0].as_secs_f64() / timings[1].as_secs_f64()
    );
}

#[tokio::main]
async fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let scale = |n: usize| if full { n } else { n / 100 };
    let dir = tempfile::tempdir().unwrap();
    let channel = start_server(dir.path()).await;
    let target = start_target().await;

    setup(&channel, &target, "instant", scale(2000), 0).await;
    let started = Instant::now();
    setup(&channel, &target, "bulk", 10_000, 0).await;
    let how = if add_tests_calls() {
        "create + AddTests of 10,000 in one call"
    } else {
        "ImportTests of 10,000 in pieces of 1,000"
    };
    println!(
        "{:<44} {:>6} tests   {:>9.1} ms ({how})",
        "catalogue: import",
        10_000,
        started.elapsed().as_secs_f64() * 1e3
    );

    // Warm-up: connections, page cache.
    run(
        &channel,
        request("instant", pb::ExecutionMode::Parallel, 16),
        None,
    )
    .await;
    let parallel = run(
        &channel,
        request("instant", pb::ExecutionMode::Parallel, 16),
        None,
    )
    .await;
    report("execute: instant target, parallel x16", &parallel);
    let wide = run(
        &channel,
        request("instant", pb::ExecutionMode::Parallel, 64),
        None,
    )
    .await;
    report("execute: instant target, parallel x64", &wide);
    let sequential = run(
        &channel,
        request("instant", pb::ExecutionMode::Sequential, 0),
        None,
    )
    .await;
    report("execute: instant target, sequential", &sequential);
    let rescore = run(
        &channel,
        request("instant", pb::ExecutionMode::Parallel, 0),
        Some(pb::RescoreRequest {
            test_set: "instant".into(),
            endpoint: "instant".into(),
            ..Default::default()
        }),
    )
    .await;
    report("rescore: the stored outputs", &rescore);

    setup(&channel, &target, "slow", scale(200), 20).await;
    let slow_parallel = run(
        &channel,
        request("slow", pb::ExecutionMode::Parallel, 16),
        None,
    )
    .await;
    report("execute: 20 ms target, parallel x16", &slow_parallel);
    let slow_sequential = run(
        &channel,
        request("slow", pb::ExecutionMode::Sequential, 0),
        None,
    )
    .await;
    report("execute: 20 ms target, sequential", &slow_sequential);

    println!();
    println!(
        "ratio: 20 ms target, parallel x16 vs sequential: {:.1}x faster",
        slow_sequential.total.as_secs_f64() / slow_parallel.total.as_secs_f64()
    );
    println!(
        "ratio: instant target, parallel x16 vs sequential: {:.1}x faster",
        sequential.total.as_secs_f64() / parallel.total.as_secs_f64()
    );
    println!(
        "ratio: rescore vs execute (parallel x16): {:.1}x faster",
        parallel.total.as_secs_f64() / rescore.total.as_secs_f64()
    );
    println!(
        "ratio: first result / total, 20 ms parallel: {:.3}",
        slow_parallel.first_result.as_secs_f64() / slow_parallel.total.as_secs_f64()
    );
    println!();
    store_batching(dir.path(), scale(2000)).await;
}
