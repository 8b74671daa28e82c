//! A database that cannot serve is found out: a corrupt or read-only SQLite file is refused at
//! start with a message that says which (the built binary, as an operator starts it), and a
//! server whose writes start failing says `NOT_SERVING` (see `durability`).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::fixtures::{create_test_set, test};
use crate::harness::Server;

/// How long the binary may take to refuse a database.
const REFUSE_TIMEOUT: Duration = Duration::from_secs(30);

/// Starts `assay serve` on `database`, which it must refuse: its exit status is a failure and
/// its log is returned.
fn refused_start(database: &str, log: &Path) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_assay"))
        .args(["serve", "--listen", "127.0.0.1:0", "--database", database])
        .env_remove("ASSAY_LISTEN")
        .env_remove("ASSAY_DATABASE_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("log file"))
        .spawn()
        .expect("spawn the assay binary");
    let deadline = Instant::now() + REFUSE_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll the child") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "assay served {database}; its log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(25));
    };
    let text = std::fs::read_to_string(log).expect("read the log");
    assert!(!status.success(), "assay exited with {status}: {text}");
    text
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

#[test]
fn a_file_that_is_not_a_database_is_refused_at_start_saying_it_is_corrupt() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("assay.db");
    std::fs::write(&db, vec![0x5a_u8; 64 * 1024]).expect("write garbage");
    let log = refused_start(
        &format!("sqlite://{}", db.display()),
        &dir.path().join("log"),
    );
    assert!(log.contains("corrupt"), "{log}");
    assert!(!log.contains("folder does not exist"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_with_damaged_pages_is_refused_at_start_saying_it_is_corrupt() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = filled_database(dir.path()).await;
    // Page 1 (the header and the schema) stays; tables' pages after it are overwritten.
    let mut bytes = std::fs::read(&db).expect("read the database");
    assert!(bytes.len() > 16 * 4096, "{} bytes", bytes.len());
    bytes[8 * 4096..16 * 4096].fill(0xa5);
    std::fs::write(&db, bytes).expect("damage the database");
    let log = tokio::task::block_in_place(|| {
        refused_start(
            &format!("sqlite://{}", db.display()),
            &dir.path().join("log"),
        )
    });
    assert!(log.contains("corrupt"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_that_cannot_be_written_is_refused_at_start_saying_it_is_read_only() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = filled_database(dir.path()).await;
    // Opened read-only, the file refuses writes as a read-only file or folder does (which
    // root, who runs some CI, could write anyway).
    let log = tokio::task::block_in_place(|| {
        refused_start(
            &format!("sqlite://{}?mode=ro", db.display()),
            &dir.path().join("log"),
        )
    });
    assert!(log.contains("read-only"), "{log}");
}
