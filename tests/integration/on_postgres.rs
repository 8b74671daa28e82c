//! The whole server on PostgreSQL: the same RPCs as on SQLite, through the generated client,
//! against a database of the test's own.

use assay::proto::v1 as pb;

use crate::app_server::Target;
use crate::fixtures::{
    contains, create_endpoint, create_metric, create_test_set, execute, execute_request, get_run,
    http_endpoint, rescore, stored_results, test,
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

    let last = server
        .execution()
        .last_run(pb::LastRunRequest {
            test_set: "geo".into(),
            endpoint: "app".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .run
        .expect("a completed run");
    assert_eq!(last.run_id, rescored.id);

    server.stop().await;
    let server = server_on(&database).await;
    let stored = get_run(&server, &run.id).await;
    assert_eq!(stored.status, pb::RunStatus::Completed as i32);
    assert_eq!(stored_results(&server, &run.id).await.len(), 2);
}
