//! The whole server on PostgreSQL: the same RPCs as on SQLite, through the generated client,
//! against a database of the test's own.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use assay::domain::RunStatus;
use assay::proto::v1 as pb;
use assay::store::{PgStore, Store};
use tokio::net::{TcpListener, TcpStream};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::app_server::Target;
use crate::fixtures::{
    collect, contains, create_endpoint, create_metric, create_test_set, execute, execute_request,
    get_run, http_endpoint, last_run, next_result, rescore, split, start, stored_results, test,
    watch,
};
use crate::harness::Server;
use crate::postgres::TestDatabase;

/// A server on `database`.
pub async fn server_on(database: &TestDatabase) -> Server {
    let url = database.url().to_string();
    Server::start_with(move |config| config.database = url).await
}

#[tokio::test]
async fn a_server_on_postgres_executes_rescores_and_keeps_its_runs_across_a_restart() {
    let database = TestDatabase::create().await;
    let target = Target::start().await;
    let server = server_on(&database).await;
    create_metric(&server, contains("says-paris", &["Paris"])).await;
    create_endpoint(&server, http_endpoint("app", &target.url)).await;
    let tests = vec![
        test("capital of France?", "", &[("answer", "Paris, of course")]),
        test("capital of Italy?", "", &[("answer", "Milan")]),
    ];
    create_test_set(&server, "geo", &["says-paris"], tests).await;

    let (run, results, summary) = execute(&server, execute_request("geo", "app")).await;
    assert_eq!((summary.total, summary.passed, summary.failed), (2, 1, 1));
    assert_eq!(results.len(), 2);
    assert_eq!(stored_results(&server, &run.id).await.len(), 2);
    assert_eq!(target.calls(), 2);

    let (rescored, again, summary) = rescore(
        &server,
        pb::RescoreRequest {
            test_set: "geo".into(),
            endpoint: "app".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(rescored.source_run_id, run.id);
    assert_eq!((again.len(), summary.passed), (2, 1));
    assert_eq!(target.calls(), 2, "a rescore never calls the endpoint");

    let last = last_run(&server, "geo", "app")
        .await
        .expect("a completed run");
    assert_eq!(last.run_id, rescored.id);

    server.stop().await;
    let server = server_on(&database).await;
    let stored = get_run(&server, &run.id).await;
    assert_eq!(stored.status, pb::RunStatus::Completed as i32);
    assert_eq!(stored_results(&server, &run.id).await.len(), 2);
}

#[tokio::test]
async fn a_run_stopped_on_postgres_resumes_when_the_server_starts_again() {
    let database = TestDatabase::create().await;
    let target = Target::start().await;
    let server = server_on(&database).await;
    create_metric(&server, contains("answered", &["q"])).await;
    create_endpoint(&server, http_endpoint("app", &target.url)).await;
    let slow = (0..5)
        .map(|i| test(&format!("q{i}"), "", &[("delay_ms", "300")]))
        .collect();
    create_test_set(&server, "slow", &["answered"], slow).await;
    let mut request = execute_request("slow", "app");
    request.mode = pb::ExecutionMode::Sequential as i32;
    let (run, mut stream) = start(&server, request).await;
    let first = next_result(&mut stream).await;

    // A graceful stop stores the test in flight and leaves the run RUNNING.
    server.stop().await;
    assert!(target.calls() < 5, "the stop left tests to resume");
    assert_eq!(stored_status(&database, &run.id).await, RunStatus::Running);
    let server = server_on(&database).await;
    let (_, results, summary) = split(collect(watch(&server, &run.id).await).await);
    assert_eq!(summary.status, pb::RunStatus::Completed as i32);
    assert_eq!((summary.passed, results.len()), (5, 5));
    assert!(
        results.iter().any(|r| r.id == first.id),
        "the first result was lost"
    );
    let tests: HashSet<_> = results.iter().map(|r| r.test_id.clone()).collect();
    assert_eq!(tests.len(), 5, "no test has two results");
    assert_eq!(target.calls(), 5, "no test was called twice");
}

/// The status of a run as stored, read straight from the database while no server runs.
async fn stored_status(database: &TestDatabase, run: &str) -> RunStatus {
    let store = PgStore::open(database.url()).await.expect("open the store");
    let run = store
        .get_run(run.parse().expect("a run id"))
        .await
        .expect("the run");
    store.close().await;
    run.status
}

/// A TCP path to the PostgreSQL server that a test can cut and restore: a database that goes away
/// and comes back, for this test's server only.
struct Outage {
    addr: std::net::SocketAddr,
    up: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Outage {
    /// A path to the server of `database`'s URL (host and port).
    async fn to(database: &TestDatabase) -> Outage {
        let url = url::Url::parse(database.url()).expect("database URL");
        let server = format!(
            "{}:{}",
            url.host_str().expect("a TCP host"),
            url.port().unwrap_or(5432)
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (up, links) = (
            Arc::new(AtomicBool::new(true)),
            Arc::new(Mutex::new(Vec::new())),
        );
        let (accepting, linking) = (Arc::clone(&up), Arc::clone(&links));
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                // While cut, connections are refused as they come.
                if !accepting.load(Ordering::SeqCst) {
                    continue;
                }
                let server = server.clone();
                let link = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(&server).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                linking.lock().unwrap().push(link);
            }
        });
        Outage { addr, up, links }
    }

    /// `database`'s URL through this path.
    fn url(&self, database: &TestDatabase) -> String {
        let mut url = url::Url::parse(database.url()).expect("database URL");
        url.set_ip_host(self.addr.ip()).expect("an IP host");
        url.set_port(Some(self.addr.port())).expect("a port");
        url.to_string()
    }

    /// The database goes away: every connection through the path breaks, new ones are refused.
    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.links.lock().unwrap().drain(..).for_each(|l| l.abort());
    }

    /// The database is back.
    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// Asks the server's health service until it says `wanted` about the server as a whole.
async fn wait_for_health(server: &Server, wanted: ServingStatus) {
    let mut health = HealthClient::new(server.channel());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let status = health
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .expect("health answers")
            .into_inner()
            .status;
        if status == wanted as i32 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "health never said {wanted:?} (last: {status})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_server_whose_database_goes_away_says_not_serving_and_serves_again_when_it_returns() {
    let database = TestDatabase::create().await;
    let outage = Outage::to(&database).await;
    let url = outage.url(&database);
    let server = Server::start_with(move |config| config.database = url).await;
    wait_for_health(&server, ServingStatus::Serving).await;
    create_metric(&server, contains("before", &["x"])).await;

    outage.cut();
    wait_for_health(&server, ServingStatus::NotServing).await;
    // The health service itself answers throughout; the other services answer with errors.
    let status = server
        .metrics()
        .get_metric(pb::GetMetricRequest {
            metric: "before".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Internal, "{status:?}");

    outage.restore();
    wait_for_health(&server, ServingStatus::Serving).await;
    let metric = server
        .metrics()
        .get_metric(pb::GetMetricRequest {
            metric: "before".into(),
        })
        .await
        .expect("served again")
        .into_inner();
    assert_eq!(metric.name, "before");
}

/// Makes every new session of `database` read-only (or writable again), and ends the sessions
/// open on it, so the server's pool reconnects into new ones.
async fn set_read_only(database: &TestDatabase, read_only: bool) {
    use sqlx::Connection;
    let mut admin = sqlx::PgConnection::connect(database.url())
        .await
        .expect("connect");
    let name = url::Url::parse(database.url()).expect("a URL").path()[1..].to_string();
    let value = if read_only { "on" } else { "off" };
    // This session may be read-only itself, as a new session of the database.
    sqlx::raw_sql("SET default_transaction_read_only = off")
        .execute(&mut admin)
        .await
        .expect("a writable session");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "ALTER DATABASE {name} SET default_transaction_read_only = {value}"
    )))
    .execute(&mut admin)
    .await
    .expect("change the database");
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind(&name)
    .execute(&mut admin)
    .await
    .expect("end the server's sessions");
}

#[tokio::test]
async fn a_server_whose_database_turns_read_only_says_not_serving_and_still_reads() {
    let database = TestDatabase::create().await;
    let server = server_on(&database).await;
    wait_for_health(&server, ServingStatus::Serving).await;
    create_metric(&server, contains("before", &["x"])).await;

    set_read_only(&database, true).await;
    wait_for_health(&server, ServingStatus::NotServing).await;
    let metric = server
        .metrics()
        .get_metric(pb::GetMetricRequest {
            metric: "before".into(),
        })
        .await
        .expect("reads are served")
        .into_inner();
    assert_eq!(metric.name, "before");
    let refused = server
        .metrics()
        .create_metric(pb::CreateMetricRequest {
            metric: Some(contains("after", &["x"])),
        })
        .await
        .unwrap_err();
    assert!(refused.message().contains("read-only"), "{refused:?}");
}

#[tokio::test]
async fn a_run_whose_results_and_end_cannot_be_stored_ends_its_stream_saying_so_and_goes_on_later()
{
    let database = TestDatabase::create().await;
    let target = Target::start().await;
    let server = server_on(&database).await;
    create_metric(&server, contains("any", &["q"])).await;
    create_endpoint(&server, http_endpoint("slow", &target.url)).await;
    let tests = (0..10)
        .map(|i| test(&format!("q{i}"), "", &[("delay_ms", "200")]))
        .collect();
    create_test_set(&server, "set", &["any"], tests).await;
    let mut request = execute_request("set", "slow");
    request.max_concurrency = 1;
    let (run, mut stream) = start(&server, request).await;
    let first = next_result(&mut stream).await;

    // Nothing can be written from now on: neither the next results nor the run's end.
    set_read_only(&database, true).await;
    let mut streamed = vec![first.id];
    let status = loop {
        match stream.message().await {
            Ok(Some(pb::ExecutionEvent {
                event: Some(pb::execution_event::Event::Result(result)),
            })) => streamed.push(result.id),
            Ok(other) => panic!("expected results, then an error; got {other:?}"),
            Err(status) => break status,
        }
    };
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains("could not be stored")
            && status.message().contains("stays RUNNING"),
        "{status:?}"
    );
    // What was streamed is stored; the run is readable, still running.
    let stored: HashSet<String> = stored_results(&server, &run.id)
        .await
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(stored, streamed.into_iter().collect());
    assert_eq!(
        get_run(&server, &run.id).await.status,
        pb::RunStatus::Running as i32
    );

    // Once the database can be written again, the run goes on (here: at the next start).
    set_read_only(&database, false).await;
    server.stop().await;
    let server = server_on(&database).await;
    let (_, results, summary) = split(collect(watch(&server, &run.id).await).await);
    assert_eq!(
        summary.status,
        pb::RunStatus::Completed as i32,
        "{summary:?}"
    );
    assert_eq!(results.len(), 10);
}

/// What health says of the server as a whole; `None` while it cannot be asked (the server
/// making way for another on its port).
async fn health_of(server: &Server) -> Option<i32> {
    let mut health = HealthClient::new(server.channel());
    let asked = health.check(HealthCheckRequest {
        service: String::new(),
    });
    Some(asked.await.ok()?.into_inner().status)
}

#[tokio::test]
async fn a_server_started_while_its_database_is_away_says_not_serving_then_serves_when_it_returns()
{
    let database = TestDatabase::create().await;
    let outage = Outage::to(&database).await;
    outage.cut();
    let url = outage.url(&database);
    let server = Server::start_with(move |config| config.database = url).await;
    assert_eq!(
        health_of(&server).await,
        Some(ServingStatus::NotServing as i32)
    );
    let refused = server
        .metrics()
        .list_metrics(pb::ListMetricsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");
    assert!(
        refused.message().contains("database cannot be used"),
        "{}",
        refused.message()
    );

    outage.restore();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while health_of(&server).await != Some(ServingStatus::Serving as i32) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the server never served once its database returned"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The whole server now: the catalogue is stored on the database that came back.
    create_metric(&server, contains("after", &["x"])).await;
    let listed = server
        .metrics()
        .list_metrics(pb::ListMetricsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .metrics;
    assert_eq!(listed.len(), 1);
    server.stop().await;
}
