//! The performance targets of Assay, measured in one run on one machine (see `BENCHMARKS.md`).
//!
//! `cargo bench --bench perf` starts a minimal echo target on 127.0.0.1, measures its raw request
//! rate from a plain HTTP client (the limit), then starts the real `assay` binary of the same
//! build as a child process (a fresh one per memory figure) with its SQLite database in a
//! temporary directory, and drives it through the generated gRPC client:
//!
//! - P1: Execute of 10,000 tests, one `contains` metric, zero delay, concurrency 64: tests/s and
//!   its ratio to the raw rate;
//! - P3: 2,000 tests against a 50 ms target at concurrency 100: wall time against the ideal;
//! - P4: Rescore of 100,000 stored outputs: results/s;
//! - P5: peak RSS (VmHWM, reset once the tests are imported) of a fresh server during
//!   10,000-test runs and during a 100,000-test run;
//! - P1 again on PostgreSQL, against SQLite;
//! - replicas: 4,000 tests against a 50 ms target, each replica keeping at most 32 calls in
//!   flight: the wall time of two replicas on one PostgreSQL database against one's;
//! - latency from a result being scored (its `created_at`) to its arrival at the client;
//! - observability overhead: P1 on a server with Prometheus metrics and every span exported over
//!   OTLP (to a receiver in this process), against P1 on one without, rounds interleaved.
//!   `ASSAY_BENCH_ONLY=overhead` runs this step alone.
//!
//! Every run is checked: each result streamed once, each stored, all passed. It prints one table
//! and writes it as JSON (`target/bench/perf.json`, or `ASSAY_BENCH_OUT`). Under `cargo test`
//! (no `--bench` argument) it runs the same steps on tiny sizes as a smoke test, and writes
//! `perf-smoke.json`; thresholds are only reported, never asserted. `ASSAY_BENCH_BIN` runs another
//! `assay` binary (e.g. one built from another branch) instead of this build's.

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use assay::proto::v1 as pb;
use futures::StreamExt;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use pb::execution_event::Event;
use serde_json::{Value, json};

mod common;
use common::{setup, start_target};
#[path = "../tests/integration/postgres.rs"]
mod postgres;
use postgres::TestDatabase;
use tonic::transport::Channel;

/// Concurrency of P1, of the raw-rate client, and of the 100k run of P5.
const CONCURRENCY: usize = 64;
/// Concurrency and target delay of P3.
const P3_CONCURRENCY: usize = 100;
const P3_DELAY_MS: u64 = 50;
/// Each replica's cap in the replica comparison (its target answers after `P3_DELAY_MS`).
const REPLICA_CAP: usize = 32;

/// How many of each; the smoke run (under `cargo test`) uses tiny sizes.
struct Sizes {
    /// Repetitions of P1, P3 and P4; the median is reported.
    rounds: usize,
    warmup: usize,
    raw: usize,
    p1: usize,
    p3: usize,
    large: usize,
    /// Tests of the run of the replica comparison.
    replicas: usize,
}

impl Sizes {
    fn new(full: bool) -> Sizes {
        if full {
            Sizes {
                rounds: 3,
                warmup: 500,
                raw: 20_000,
                p1: 10_000,
                p3: 2_000,
                large: 100_000,
                replicas: 4_000,
            }
        } else {
            Sizes {
                rounds: 1,
                warmup: 10,
                raw: 200,
                p1: 200,
                p3: 100,
                large: 1_000,
                replicas: 64,
            }
        }
    }
}

// ---- the echo target's limit

/// Requests per second the target answers to a plain client keeping `concurrency` requests in
/// flight, with the body Assay sends: the limit no client of this target can beat. Also the CPU
/// time (target and client together) per request, in microseconds.
async fn raw_rate(url: &str, requests: usize, concurrency: usize) -> (f64, f64) {
    let client = reqwest::Client::new();
    let next = Arc::new(AtomicUsize::new(0));
    let cpu = cpu_seconds("self");
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, next, url) = (client.clone(), next.clone(), url.to_string());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= requests {
                        break;
                    }
                    let body = json!({ "prompt": format!("question {i}"), "delay_ms": "0" });
                    let answer = client.post(&url).json(&body).send().await.unwrap();
                    assert!(answer.status().is_success());
                    answer.bytes().await.unwrap();
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
    (
        requests as f64 / started.elapsed().as_secs_f64(),
        (cpu_seconds("self") - cpu) * 1e6 / requests as f64,
    )
}

/// CPU time (user and system) a process has used so far, in seconds; `pid` may be `self`.
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which may hold spaces): state is the first, utime the 12th.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // USER_HZ is 100 on Linux.
    ticks as f64 / 100.0
}

// ---- the server under test

/// The release `assay` binary as a child process, with its database in a temporary directory.
struct Server {
    child: tokio::process::Child,
    channel: Channel,
    _dir: tempfile::TempDir,
    /// The server's PostgreSQL database, when it has one (replicas share it); dropped after the
    /// last server on it is gone.
    postgres: Option<Arc<TestDatabase>>,
}

impl Server {
    /// A server on a fresh SQLite database.
    async fn start(default_concurrency: usize) -> Server {
        Server::launch(default_concurrency, None).await
    }

    /// A server on a fresh PostgreSQL database (see `tests/integration/postgres.rs`).
    async fn start_on_postgres(default_concurrency: usize) -> Server {
        let database = Arc::new(TestDatabase::create().await);
        Server::launch(default_concurrency, Some(database)).await
    }

    /// Another replica on this server's PostgreSQL database.
    async fn replica(&self, default_concurrency: usize) -> Server {
        Server::launch(default_concurrency, self.postgres.clone()).await
    }

    /// A server whose runs that ask for no concurrency keep `default_concurrency` calls in flight.
    async fn launch(default_concurrency: usize, postgres: Option<Arc<TestDatabase>>) -> Server {
        Server::launch_with(default_concurrency, postgres, &[]).await
    }

    /// [`Server::launch`] on SQLite with the extra flags `args`.
    async fn launch_with(
        default_concurrency: usize,
        postgres: Option<Arc<TestDatabase>>,
        args: &[&str],
    ) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let database = match &postgres {
            Some(database) => database.url().to_string(),
            None => format!("sqlite://{}", dir.path().join("assay.db").display()),
        };
        // The port is free when probed; the child binds it right after.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        // ASSAY_BENCH_BIN measures another build (e.g. of another branch) on the same machine.
        let binary = std::env::var_os("ASSAY_BENCH_BIN")
            .unwrap_or_else(|| env!("CARGO_BIN_EXE_assay").into());
        let mut child = tokio::process::Command::new(binary)
            .arg("serve")
            .args(["--listen", &addr.to_string()])
            .args(["--database", &database])
            .args(["--default-concurrency", &default_concurrency.to_string()])
            .args(args)
            .env("ASSAY_LOG", "warn")
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("the assay binary starts");
        let endpoint = Channel::from_shared(format!("http://{addr}")).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let channel = loop {
            match endpoint.connect().await {
                Ok(channel) => break channel,
                Err(e) if Instant::now() > deadline => panic!("assay did not start: {e}"),
                Err(_) => {
                    // A server that exited (e.g. its port was taken meanwhile) never answers.
                    if let Some(status) = child.try_wait().unwrap() {
                        panic!("assay exited at start: {status}");
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
            }
        };
        Server {
            child,
            channel,
            _dir: dir,
            postgres,
        }
    }

    /// Peak resident set size of the process so far (VmHWM), in KiB.
    fn peak_rss_kib(&self) -> u64 {
        let pid = self.child.id().expect("the server is running");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc/<pid>/status")
    }

    /// Starts the peak RSS afresh, so that it measures what follows (a run) rather than what
    /// came before (importing its tests). First the server is left idle for a while: it gives
    /// memory freed back to the system within a second (jemalloc's decay), and the peak is then
    /// counted from the server at rest.
    async fn reset_peak_rss(&self) {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let pid = self.child.id().expect("the server is running");
        // Writing 5 to clear_refs resets VmHWM (Linux 4.0+).
        std::fs::write(format!("/proc/{pid}/clear_refs"), "5").expect("VmHWM can be reset");
    }

    /// CPU seconds used so far by the server and by this process (target and client).
    fn cpu(&self) -> [f64; 2] {
        let pid = self.child.id().expect("the server is running");
        [cpu_seconds(&pid.to_string()), cpu_seconds("self")]
    }

    /// Stops the server as an operator would (SIGTERM), so that it flushes what it buffers
    /// (exported spans); killed if it is not gone within 10 s.
    async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            self.child.kill().await.unwrap();
        }
    }

    /// Executes test set `name` against endpoint `name` and follows the run to its end.
    async fn execute(&self, name: &str, concurrency: usize) -> Run {
        let mut client = self.execution();
        let started = (Instant::now(), self.cpu());
        let stream = client
            .execute(pb::ExecuteRequest {
                test_set: name.into(),
                endpoint: name.into(),
                max_concurrency: concurrency as u32,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        self.follow(started, stream).await
    }

    /// Rescores the latest completed run of `name` and follows the new run to its end.
    async fn rescore(&self, name: &str) -> Run {
        let mut client = self.execution();
        let started = (Instant::now(), self.cpu());
        let stream = client
            .rescore(pb::RescoreRequest {
                test_set: name.into(),
                endpoint: name.into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        self.follow(started, stream).await
    }

    fn execution(&self) -> pb::test_execution_service_client::TestExecutionServiceClient<Channel> {
        pb::test_execution_service_client::TestExecutionServiceClient::new(self.channel.clone())
            // 100,000 results in one stream: never the limit.
            .max_decoding_message_size(64 << 20)
    }

    /// Reads a run's stream to its end, then checks that every result was streamed exactly
    /// once, stored, and passed.
    async fn follow(
        &self,
        (started, cpu): (Instant, [f64; 2]),
        mut stream: tonic::Streaming<pb::ExecutionEvent>,
    ) -> Run {
        let mut run_id = String::new();
        let mut total = 0;
        let mut ids = HashSet::new();
        let mut latencies_us = Vec::new();
        let mut summary = None;
        while let Some(event) = stream.next().await {
            match event.unwrap().event.unwrap() {
                Event::RunStarted(run) => {
                    run_id = run.id;
                    total = run.total as usize;
                }
                Event::Result(result) => {
                    let arrived = SystemTime::now();
                    let scored = result.created_at.expect("created_at");
                    let scored = SystemTime::UNIX_EPOCH
                        + Duration::new(scored.seconds as u64, scored.nanos as u32);
                    let latency = arrived.duration_since(scored).unwrap_or_default();
                    latencies_us.push(latency.as_micros() as u64);
                    assert!(ids.insert(result.id), "a result was streamed twice");
                }
                Event::RunFinished(s) => summary = Some(s),
            }
        }
        let wall = started.elapsed();
        let [server_cpu, bench_cpu] = self.cpu();
        let summary = summary.expect("the stream ends with the summary");
        assert_eq!(summary.status, pb::RunStatus::Completed as i32);
        assert_eq!(ids.len(), total, "every result streamed");
        assert_eq!(summary.passed as usize, total, "every result passed");
        let stored = self.stored_results(&run_id).await;
        assert_eq!(stored, total, "every result stored");
        Run {
            total,
            wall,
            latencies_us,
            server_cpu_us: (server_cpu - cpu[0]) * 1e6 / total as f64,
            bench_cpu_us: (bench_cpu - cpu[1]) * 1e6 / total as f64,
        }
    }

    /// How many results of a run `ListTestResults` returns.
    async fn stored_results(&self, run: &str) -> usize {
        let mut client = self.execution();
        let (mut count, mut token) = (0, String::new());
        loop {
            let page = client
                .list_test_results(pb::ListTestResultsRequest {
                    run: run.into(),
                    page_size: 1000,
                    page_token: token,
                })
                .await
                .unwrap()
                .into_inner();
            count += page.results.len();
            if page.next_page_token.is_empty() {
                return count;
            }
            token = page.next_page_token;
        }
    }
}

/// One run as the client saw it.
struct Run {
    total: usize,
    wall: Duration,
    /// Scored → arrived at the client, per result.
    latencies_us: Vec<u64>,
    /// CPU time per result of the server, and of this process (target and client).
    server_cpu_us: f64,
    bench_cpu_us: f64,
}

impl Run {
    fn per_second(&self) -> f64 {
        self.total as f64 / self.wall.as_secs_f64()
    }

    /// The `p`-th percentile of the scored → client latency, in milliseconds.
    fn latency_ms(&mut self, p: f64) -> f64 {
        self.latencies_us.sort_unstable();
        let i = ((self.latencies_us.len() - 1) as f64 * p).round() as usize;
        self.latencies_us[i] as f64 / 1e3
    }
}

// ---- the report

/// The item with the median `key`.
fn median_by<T>(mut items: Vec<T>, key: impl Fn(&T) -> f64) -> T {
    items.sort_by(|a, b| key(a).total_cmp(&key(b)));
    items.swap_remove(items.len() / 2)
}

/// One line of the table: a figure, what it should be, and whether it is.
struct Row {
    name: &'static str,
    measured: f64,
    unit: &'static str,
    target: String,
    met: Option<bool>,
}

fn row(name: &'static str, measured: f64, unit: &'static str) -> Row {
    Row {
        name,
        measured,
        unit,
        target: String::new(),
        met: None,
    }
}

fn at_least(name: &'static str, measured: f64, unit: &'static str, target: f64) -> Row {
    Row {
        target: format!(">= {target}"),
        met: Some(measured >= target),
        ..row(name, measured, unit)
    }
}

fn at_most(name: &'static str, measured: f64, unit: &'static str, target: f64) -> Row {
    Row {
        target: format!("<= {target}"),
        met: Some(measured <= target),
        ..row(name, measured, unit)
    }
}

/// The table of figures; verdicts only for a full run (`judged`): a smoke run's tiny sizes say
/// nothing about the targets.
fn print_table(rows: &[Row], judged: bool) {
    println!(
        "{:<46} {:>14} {:<9} {:>10}  verdict",
        "figure", "measured", "unit", "target"
    );
    for r in rows {
        let verdict = match r.met {
            Some(_) if !judged => "(smoke)",
            Some(true) => "met",
            Some(false) => "NOT MET",
            None => "",
        };
        println!(
            "{:<46} {:>14.3} {:<9} {:>10}  {verdict}",
            r.name, r.measured, r.unit, r.target
        );
    }
}

/// What the figures were measured on.
fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let field = |text: &str, key: &str| {
        text.lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split(':').nth(1))
            .map(|v| v.trim().to_string())
    };
    json!({
        "cpus": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "cpu_model": field(&cpuinfo, "model name"),
        "memory": field(&meminfo, "MemTotal"),
    })
}

fn output_path(full: bool) -> PathBuf {
    std::env::var_os("ASSAY_BENCH_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let name = if full { "perf.json" } else { "perf-smoke.json" };
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("target/bench")
                .join(name)
        })
}

/// An OTLP trace receiver that counts the spans it is sent and drops them.
#[derive(Clone, Default)]
struct SpanSink(Arc<AtomicUsize>);

#[tonic::async_trait]
impl TraceService for SpanSink {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let spans: usize = request
            .get_ref()
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum();
        self.0.fetch_add(spans, Ordering::Relaxed);
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

impl SpanSink {
    /// Serves on a loopback port; returns its URL.
    async fn start(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(TraceServiceServer::new(self.clone()))
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        url
    }
}

/// P1 on a server without metrics or traces and on one with both (every span exported), in
/// alternating rounds so that both see the same machine: the medians, and the spans received.
async fn overhead(target: &str, sizes: &Sizes) -> (Run, Run, usize) {
    let sink = SpanSink::default();
    let collector = sink.start().await;
    let off = Server::start(P3_CONCURRENCY).await;
    let on = Server::launch_with(
        P3_CONCURRENCY,
        None,
        &[
            "--metrics-listen",
            "127.0.0.1:0",
            "--otlp-endpoint",
            &collector,
            "--otlp-sample-ratio",
            "1",
        ],
    )
    .await;
    for server in [&off, &on] {
        setup(&server.channel, target, "warmup", sizes.warmup, 0).await;
        server.execute("warmup", CONCURRENCY).await;
        setup(&server.channel, target, "p1", sizes.p1, 0).await;
    }
    let (mut without, mut with) = (Vec::new(), Vec::new());
    for _ in 0..sizes.rounds {
        without.push(off.execute("p1", CONCURRENCY).await);
        with.push(on.execute("p1", CONCURRENCY).await);
    }
    off.stop().await;
    on.stop().await;
    // Without spans the figure would measure nothing (e.g. a log level that disabled them).
    let spans = sink.0.load(Ordering::Relaxed);
    assert!(spans > 0, "the server with tracing exported no span");
    (
        median_by(without, Run::per_second),
        median_by(with, Run::per_second),
        spans,
    )
}

/// The rows of the overhead step.
fn overhead_rows(without: &Run, with: &Run) -> [Row; 4] {
    [
        row(
            "P1 without metrics or traces",
            without.per_second(),
            "tests/s",
        ),
        row(
            "P1 with metrics and every span exported",
            with.per_second(),
            "tests/s",
        ),
        at_least(
            "P1 with / without observability",
            with.per_second() / without.per_second(),
            "",
            0.9,
        ),
        row(
            "P1 with observability: server CPU per test",
            with.server_cpu_us,
            "us",
        ),
    ]
}

#[tokio::main]
async fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let sizes = Sizes::new(full);
    let target = start_target().await;
    if std::env::var("ASSAY_BENCH_ONLY").as_deref() == Ok("overhead") {
        let (without, with, spans) = overhead(&target, &sizes).await;
        println!(
            "P1 {} tests, median of {} rounds; {spans} spans received",
            sizes.p1, sizes.rounds
        );
        print_table(&overhead_rows(&without, &with), full);
        return;
    }

    raw_rate(&target, sizes.warmup, CONCURRENCY).await;

    // A fresh server: a warm-up run, then P1 (the peak RSS over its rounds, counted from the end
    // of the imports, is P5's small figure), then P3.
    let server = Server::start(P3_CONCURRENCY).await;
    setup(&server.channel, &target, "warmup", sizes.warmup, 0).await;
    server.execute("warmup", CONCURRENCY).await;
    setup(&server.channel, &target, "p1", sizes.p1, 0).await;
    setup(&server.channel, &target, "p3", sizes.p3, P3_DELAY_MS).await;
    // The machine may be shared: each round measures the limit right before P1, and the round
    // with the median ratio is reported.
    let mut p1_rounds = Vec::new();
    let mut rss_small = 0;
    let rss_small_setup = server.peak_rss_kib();
    server.reset_peak_rss().await;
    for _ in 0..sizes.rounds {
        let raw = raw_rate(&target, sizes.raw, CONCURRENCY).await;
        let p1 = server.execute("p1", CONCURRENCY).await;
        rss_small = rss_small.max(server.peak_rss_kib());
        p1_rounds.push((raw, p1));
    }
    let ((raw, raw_cpu_us), mut p1) = median_by(p1_rounds, |((raw, _), p1)| p1.per_second() / raw);
    let mut p3 = Vec::new();
    for _ in 0..sizes.rounds {
        p3.push(server.execute("p3", P3_CONCURRENCY).await);
    }
    let mut p3 = median_by(p3, |r| r.wall.as_secs_f64());
    server.stop().await;
    let ideal = sizes.p3 as f64 / P3_CONCURRENCY as f64 * P3_DELAY_MS as f64 / 1e3;

    // P1 again on a server whose database is PostgreSQL (the local server every machine of the
    // project runs, or ASSAY_TEST_POSTGRES_URL), against SQLite's P1 above.
    let server = Server::start_on_postgres(P3_CONCURRENCY).await;
    setup(&server.channel, &target, "warmup", sizes.warmup, 0).await;
    server.execute("warmup", CONCURRENCY).await;
    setup(&server.channel, &target, "p1", sizes.p1, 0).await;
    let mut p1_postgres = Vec::new();
    for _ in 0..sizes.rounds {
        p1_postgres.push(server.execute("p1", CONCURRENCY).await);
    }
    let p1_postgres = median_by(p1_postgres, Run::per_second);
    server.stop().await;

    // Replicas: one latency-bound run (each replica at most REPLICA_CAP calls in flight, a run
    // asking for no concurrency) on one replica, then on two sharing the database.
    let one = Server::start_on_postgres(REPLICA_CAP).await;
    setup(
        &one.channel,
        &target,
        "replicas",
        sizes.replicas,
        P3_DELAY_MS,
    )
    .await;
    let on_one = one.execute("replicas", 0).await;
    let two = one.replica(REPLICA_CAP).await;
    let on_two = one.execute("replicas", 0).await;
    two.stop().await;
    one.stop().await;

    // Another fresh server, the same steps at ten times the size: P5's large figure, then P4 on
    // the outputs that run stored.
    let server = Server::start(P3_CONCURRENCY).await;
    setup(&server.channel, &target, "warmup", sizes.warmup, 0).await;
    server.execute("warmup", CONCURRENCY).await;
    setup(&server.channel, &target, "large", sizes.large, 0).await;
    let rss_large_setup = server.peak_rss_kib();
    server.reset_peak_rss().await;
    let mut large = server.execute("large", CONCURRENCY).await;
    let rss_large = server.peak_rss_kib();
    let mut p4 = Vec::new();
    for _ in 0..sizes.rounds {
        p4.push(server.rescore("large").await);
    }
    let mut p4 = median_by(p4, Run::per_second);
    server.stop().await;

    // Another build (ASSAY_BENCH_BIN) may predate the observability flags: its table ends here.
    let overhead = if std::env::var_os("ASSAY_BENCH_BIN").is_none() {
        let (without, with, _) = overhead(&target, &sizes).await;
        Vec::from(overhead_rows(&without, &with))
    } else {
        Vec::new()
    };

    let rows = [
        row("raw: echo target, plain client x64", raw, "req/s"),
        row("raw: CPU per request (target + client)", raw_cpu_us, "us"),
        row("P1: execute, contains, x64", p1.per_second(), "tests/s"),
        at_least("P1: ratio to raw", p1.per_second() / raw, "", 0.5),
        // What the ratio would be if both were bound by this machine's CPU alone, which is
        // steadier than rates on a shared machine.
        row(
            "P1: ratio of CPU per request (raw / P1)",
            raw_cpu_us / (p1.server_cpu_us + p1.bench_cpu_us),
            "",
        ),
        row("P1: server CPU per test", p1.server_cpu_us, "us"),
        row(
            "P1: CPU per test, target + gRPC client",
            p1.bench_cpu_us,
            "us",
        ),
        row(
            "P1 on PostgreSQL: execute, contains, x64",
            p1_postgres.per_second(),
            "tests/s",
        ),
        row(
            "P1 on PostgreSQL / on SQLite",
            p1_postgres.per_second() / p1.per_second(),
            "",
        ),
        row(
            "P1 on PostgreSQL: server CPU per test",
            p1_postgres.server_cpu_us,
            "us",
        ),
        row(
            "replicas: 50 ms target, x32 each: 1 replica wall",
            on_one.wall.as_secs_f64(),
            "s",
        ),
        row("replicas: 2 replicas wall", on_two.wall.as_secs_f64(), "s"),
        at_most(
            "replicas: wall of 2 / wall of 1",
            on_two.wall.as_secs_f64() / on_one.wall.as_secs_f64(),
            "",
            0.55,
        ),
        row("P1: scored -> client p50", p1.latency_ms(0.5), "ms"),
        row("P1: scored -> client p99", p1.latency_ms(0.99), "ms"),
        row("P3: 50 ms target, x100: wall", p3.wall.as_secs_f64(), "s"),
        row("P3: ideal (tests / concurrency x delay)", ideal, "s"),
        at_most("P3: wall / ideal", p3.wall.as_secs_f64() / ideal, "", 1.1),
        row("P3: scored -> client p50", p3.latency_ms(0.5), "ms"),
        row("P3: scored -> client p99", p3.latency_ms(0.99), "ms"),
        at_least(
            "P4: rescore of the large run",
            p4.per_second(),
            "results/s",
            20_000.0,
        ),
        row("P4: server CPU per result", p4.server_cpu_us, "us"),
        row("P4: scored -> client p50", p4.latency_ms(0.5), "ms"),
        row("P4: scored -> client p99", p4.latency_ms(0.99), "ms"),
        row(
            "P5: peak RSS, P1 runs (small)",
            rss_small as f64 / 1024.0,
            "MiB",
        ),
        row("P5: peak RSS, large run", rss_large as f64 / 1024.0, "MiB"),
        at_most(
            "P5: ratio large / small",
            rss_large as f64 / rss_small as f64,
            "",
            1.2,
        ),
        // Before each run's peak is measured it is reset: these are the peaks of the setup
        // (start, warm-up run, importing the tests), for reference.
        row(
            "P5: peak RSS before, setup of the small runs",
            rss_small_setup as f64 / 1024.0,
            "MiB",
        ),
        row(
            "P5: peak RSS before, setup of the large run",
            rss_large_setup as f64 / 1024.0,
            "MiB",
        ),
        row("large run: execute, x64", large.per_second(), "tests/s"),
        row(
            "large run: scored -> client p99",
            large.latency_ms(0.99),
            "ms",
        ),
    ];
    let rows: Vec<Row> = rows.into_iter().chain(overhead).collect();
    if !full {
        println!("smoke run (tiny sizes; `cargo bench --bench perf` for the real figures)");
    }
    println!(
        "sizes: raw {} requests, P1 {} tests, P3 {} tests, large run (P4, P5) {} tests, \
         replicas {} tests; median of {} rounds",
        sizes.raw, sizes.p1, sizes.p3, sizes.large, sizes.replicas, sizes.rounds
    );
    print_table(&rows, full);

    let report = json!({
        "full": full,
        "machine": machine(),
        "sizes": {
            "raw": sizes.raw,
            "p1": sizes.p1,
            "p3": sizes.p3,
            "p4_and_p5_large": sizes.large,
            "p5_small": sizes.p1,
            "replicas": sizes.replicas,
            "rounds": sizes.rounds,
        },
        "figures": rows.iter().map(|r| json!({
            "name": r.name,
            "measured": r.measured,
            "unit": r.unit,
            "target": r.target,
            "met": r.met,
        })).collect::<Vec<_>>(),
    });
    let path = output_path(full);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, serde_json::to_string_pretty(&report).unwrap()).unwrap();
    println!("written: {}", path.display());
}
