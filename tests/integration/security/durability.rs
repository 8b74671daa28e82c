//! Durability under faults: what a run streamed is stored, and a run whose tests go missing
//! says so instead of ending `COMPLETED`.

use std::collections::HashSet;
use std::path::Path;

use assay::proto::v1 as pb;
use futures::StreamExt;
use pb::execution_event::Event;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::app_server::Target;
use crate::fixtures::{
    collect, create_endpoint, create_metric, create_test_set, execute_request, get_run,
    http_endpoint, next_result, regex, start, stored_results, stored_tests, test,
};
use crate::harness::Server;

#[tokio::test]
async fn a_run_whose_tests_are_removed_while_it_runs_ends_partial_saying_how_many() {
    let server = Server::start().await;
    let target = Target::start().await;
    create_metric(&server, regex("anything", ".")).await;
    create_endpoint(&server, http_endpoint("slow", &target.url)).await;
    let tests = (0..20)
        .map(|i| test(&format!("q{i}"), "", &[("delay_ms", "100")]))
        .collect();
    create_test_set(&server, "set", &["anything"], tests).await;
    // One test at a time: the last ten are far from being claimed when they are removed.
    let mut request = execute_request("set", "slow");
    request.max_concurrency = 1;
    let (run, mut stream) = start(&server, request).await;
    next_result(&mut stream).await;
    let removed = stored_tests(&server, "set").await[10..]
        .iter()
        .map(|t| t.id.clone())
        .collect();
    server
        .test_sets()
        .remove_tests(pb::RemoveTestsRequest {
            test_set: "set".into(),
            test_ids: removed,
        })
        .await
        .expect("remove tests");
    let events = collect(stream).await;
    let Some(pb::execution_event::Event::RunFinished(summary)) = events.last() else {
        panic!("the stream ends with the summary: {events:?}")
    };
    assert_eq!(summary.status, pb::RunStatus::Partial as i32, "{summary:?}");
    assert_eq!((summary.total, summary.passed), (20, 10), "{summary:?}");
    let run = get_run(&server, &run.id).await;
    assert_eq!(run.status, pb::RunStatus::Partial as i32);
    assert!(
        run.error.contains("10 of 20 tests were removed"),
        "{}",
        run.error
    );
    assert_eq!(stored_results(&server, &run.id).await.len(), 10);
}

/// Tests in the test set of the full-disk run.
const TESTS: usize = 200;

/// The size of a SQLite database file in pages, read through a connection of its own.
async fn page_count(db: &Path) -> u32 {
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .expect("open the database");
    let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
        .fetch_one(&pool)
        .await
        .expect("page count");
    pool.close().await;
    u32::try_from(pages).expect("a page count")
}

/// What the health service says of the server as a whole, once it says `status`.
async fn health_becomes(server: &Server, status: ServingStatus) {
    let mut changes = HealthClient::new(server.channel())
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("watch health")
        .into_inner();
    while let Some(change) = changes.next().await {
        if change.expect("health").status == status as i32 {
            return;
        }
    }
    panic!("the health stream ended before {status:?}");
}

#[tokio::test]
async fn a_full_disk_ends_the_run_with_a_clear_error_and_keeps_every_result_it_streamed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("assay.db");
    let target = Target::start().await;
    let server = Server::start_on(&db).await;
    create_metric(&server, regex("anything", ".")).await;
    create_endpoint(&server, http_endpoint("bot", &target.url)).await;
    // Results of about 4 KB each (the target echoes the prompt): a page or more apiece.
    let tests = (0..TESTS)
        .map(|i| test(&format!("{i} {}", "x".repeat(2000)), "", &[]))
        .collect();
    create_test_set(&server, "set", &["anything"], tests).await;
    server.stop().await;

    // The file may grow by 40 pages: enough for the run and some results, not for all.
    let pages = page_count(&db).await + 40;
    let server = Server::start_on_with(&db, |config| {
        config.sqlite_max_page_count = Some(pages);
    })
    .await;
    let mut request = execute_request("set", "bot");
    request.max_concurrency = 4;
    let mut stream = server
        .execution()
        .execute(request)
        .await
        .expect("execute")
        .into_inner();
    let (mut run, mut streamed, mut end) = (None, Vec::new(), None);
    while let Some(event) = stream.next().await {
        match event.map(|e| e.event) {
            Ok(Some(Event::RunStarted(started))) => run = Some(started),
            Ok(Some(Event::Result(result))) => streamed.push(result),
            Ok(Some(Event::RunFinished(summary))) => end = Some(Ok(summary)),
            Ok(None) => panic!("an event without a kind"),
            Err(status) => end = Some(Err(status)),
        }
    }
    let run = run.expect("the run started");
    assert!(
        !streamed.is_empty() && streamed.len() < TESTS,
        "{} results streamed",
        streamed.len()
    );
    // The run ended with an error that says what happened.
    let why = match end.expect("the stream ended with the run's end or an error") {
        Ok(summary) => {
            assert_eq!(summary.status, pb::RunStatus::Failed as i32, "{summary:?}");
            get_run(&server, &run.id).await.error
        }
        Err(status) => status.message().to_string(),
    };
    assert!(
        why.contains("could not be stored") && why.contains("full"),
        "{why}"
    );
    // Every result streamed is stored, and nothing else is.
    let stored: HashSet<String> = stored_results(&server, &run.id)
        .await
        .into_iter()
        .map(|r| r.id)
        .collect();
    let sent: HashSet<String> = streamed.into_iter().map(|r| r.id).collect();
    assert_eq!(sent, stored);
    // The server goes on serving reads, and tells load balancers that it cannot write.
    server
        .metrics()
        .list_metrics(pb::ListMetricsRequest::default())
        .await
        .expect("reads are served");
    health_becomes(&server, ServingStatus::NotServing).await;

    // After a restart without the limit, the run and every result streamed are there.
    server.stop().await;
    let server = Server::start_on(&db).await;
    let run = get_run(&server, &run.id).await;
    let kept: HashSet<String> = stored_results(&server, &run.id)
        .await
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert!(sent.is_subset(&kept), "results streamed were lost");
}
