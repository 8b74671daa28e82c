//! A database that cannot serve is found out: a server started on a corrupt or read-only SQLite
//! file (the built binary, as an operator starts it) serves, but says `NOT_SERVING` on
//! grpc.health.v1 and answers every other call `UNAVAILABLE` with a message that says which, as
//! its log does; a server whose writes start failing says `NOT_SERVING` too (see `durability`).

use std::path::Path;

use assay::proto::v1 as pb;
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::e2e::Assay;
use crate::fixtures::{create_test_set, test};
use crate::harness::Server;

/// Starts `assay serve` on `database`, which it cannot use, and checks what it says: health
/// `NOT_SERVING` for the server and its services, and a call refused `UNAVAILABLE`. Returns the
/// refusal's message and the server's log.
async fn degraded_start(database: &str, log_base: &Path) -> (String, String) {
    let server = tokio::task::block_in_place(|| Assay::start_with(database, log_base, &[]));
    let channel = Channel::from_shared(format!("http://{}", server.addr()))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let mut health = HealthClient::new(channel.clone());
    for service in [
        "",
        "assay.v1.MetricService",
        "assay.v1.TestExecutionService",
    ] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("health answers")
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::NotServing as i32, "{service:?}");
    }
    let refused = pb::metric_service_client::MetricServiceClient::new(channel)
        .list_metrics(pb::ListMetricsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    let log = server.log_text();
    server.terminate();
    (refused.message().to_string(), log)
}

/// A database with a test set of 200 tests, stopped: several pages of tables past the first.
async fn filled_database(dir: &Path) -> std::path::PathBuf {
    let db = dir.join("assay.db");
    let server = Server::start_on(&db).await;
    let tests = (0..200)
        .map(|i| test(&format!("{i} {}", "x".repeat(500)), "", &[]))
        .collect();
    create_test_set(&server, "set", &[], tests).await;
    server.stop().await;
    // The tests may still be in the write-ahead log (a connection of the stopped server can
    // outlive it): move them into the database file, whose pages the tests damage.
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .expect("open the database");
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut conn)
        .await
        .expect("checkpoint");
    conn.close().await.expect("close");
    db
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_that_is_not_a_database_makes_health_not_serving_saying_it_is_corrupt() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("assay.db");
    std::fs::write(&db, vec![0x5a_u8; 64 * 1024]).expect("write garbage");
    let (message, log) = degraded_start(&format!("sqlite://{}", db.display()), &db).await;
    assert!(message.contains("corrupt"), "{message}");
    assert!(log.contains("corrupt"), "{log}");
    assert!(!log.contains("folder does not exist"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_with_damaged_pages_makes_health_not_serving_saying_it_is_corrupt() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = filled_database(dir.path()).await;
    // Page 1 (the header and the schema) stays; tables' pages after it are overwritten.
    let mut bytes = std::fs::read(&db).expect("read the database");
    assert!(bytes.len() > 16 * 4096, "{} bytes", bytes.len());
    bytes[8 * 4096..16 * 4096].fill(0xa5);
    std::fs::write(&db, bytes).expect("damage the database");
    let (message, log) = degraded_start(&format!("sqlite://{}", db.display()), &db).await;
    assert!(message.contains("corrupt"), "{message}");
    assert!(log.contains("corrupt"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_that_cannot_be_written_makes_health_not_serving_saying_it_is_read_only() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = filled_database(dir.path()).await;
    // Opened read-only, the file refuses writes as a read-only file or folder does (which
    // root, who runs some CI, could write anyway).
    let (message, log) = degraded_start(&format!("sqlite://{}?mode=ro", db.display()), &db).await;
    assert!(message.contains("read-only"), "{message}");
    assert!(log.contains("read-only"), "{log}");
}
