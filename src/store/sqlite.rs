//! SQLite backend of [`Store`](super::Store): the queries are [`sql_store!`](super::sql)'s; this
//! module opens the file and says how SQLite spells what differs.
//!
//! Every row keeps its whole domain value as JSON in `body`; the other columns exist only for
//! lookups, uniqueness, filters and ordering (see `migrations/sqlite/0001_init.sql`).
//!
//! Two pools: one writer connection, through which every write goes (SQLite allows one writer at
//! a time, so queuing writers in the pool instead of in SQLite means a transaction that reads
//! then writes never fails with `SQLITE_BUSY` on its lock upgrade, and needs no row lock), and a
//! few readers, which WAL lets run beside the writer.

use std::str::FromStr;
use std::time::Duration;

use sqlx::Sqlite;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool,
    SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};

use super::sql::sql_store;

/// Reader connections; WAL lets them read while the writer writes.
const READERS: u32 = 4;
/// How long a connection waits for a lock (checkpoints, schema changes) before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The schema versions of this backend, embedded so that the binary needs no files at run time.
static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// [`Store`](super::Store) on an SQLite database file.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    /// One connection: every write goes through it.
    writer: SqlitePool,
    /// Connections for reads only.
    reader: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating it if missing) the database at `url`, e.g. `sqlite://assay.db`, checks
    /// that it is not corrupt, and brings its schema up to date.
    ///
    /// An in-memory URL (`sqlite::memory:`) does not work: the writer and the readers would each
    /// see a database of their own.
    pub async fn open(url: &str) -> Result<SqliteStore> {
        SqliteStore::open_with_page_limit(url, None).await
    }

    /// [`open`](Self::open), the file allowed to grow to `max_page_count` pages at most (SQLite's
    /// `max_page_count`): writes beyond fail as on a full disk. What fault tests use.
    pub async fn open_with_page_limit(
        url: &str,
        max_page_count: Option<u32>,
    ) -> Result<SqliteStore> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let mut writer_options = options.clone();
        if let Some(pages) = max_page_count {
            writer_options = writer_options.pragma("max_page_count", pages.to_string());
        }
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(writer_options)
            .await?;
        // A damaged file is refused at start, saying so, rather than serving until a read
        // reaches the damage. It reads every page once: about a second per few hundred MB.
        let check: String = sqlx::query_scalar("PRAGMA quick_check(1)")
            .fetch_one(&writer)
            .await?;
        if check != "ok" {
            return Err(Error::storage(
                "the file is corrupt or not an SQLite database (PRAGMA quick_check)",
                check,
            ));
        }
        MIGRATOR
            .run(&writer)
            .await
            .map_err(|e| Error::storage("migrating the database", e))?;
        // One server uses a SQLite file: claims an earlier process held (it crashed) are free.
        sqlx::query("UPDATE run_work SET owner = NULL, lease_until = 0 WHERE owner IS NOT NULL")
            .execute(&writer)
            .await?;
        // Opened after the writer so that the file exists and is in WAL mode already;
        // `query_only` turns a write sent to a reader by mistake into an error.
        let reader = SqlitePoolOptions::new()
            .max_connections(READERS)
            .connect_with(
                options
                    .pragma("query_only", "ON")
                    .pragma("cache_size", "-512"),
            )
            .await?;
        Ok(SqliteStore { writer, reader })
    }

    /// Closes every connection, waiting for those in use to be returned (for a clean shutdown,
    /// or before opening the same file again).
    pub async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
    }
}

/// How SQLite spells what differs between backends (see [`super::sql`]).
mod dialect {
    use sqlx::AssertSqlSafe;
    use sqlx::error::DatabaseError;

    /// SQLite takes `?` placeholders as they are.
    pub(super) fn sql(text: String) -> AssertSqlSafe<String> {
        AssertSqlSafe(text)
    }

    pub(super) const IDS_IN: &str = "(SELECT value FROM json_each(?))";

    /// Who uses a metric: behaviours, then test sets, each in creation order.
    pub(super) const METRIC_USERS: &str = "SELECT kind, name FROM (
        SELECT 0 AS rank, b.seq AS seq, 'behavior' AS kind, b.name AS name FROM behaviors b
         WHERE EXISTS (SELECT 1 FROM json_each(b.body, '$.metric_ids') m WHERE m.value = ?1)
        UNION ALL
        SELECT 1, s.seq, 'test set', s.name FROM test_sets s
         WHERE EXISTS (SELECT 1 FROM json_each(s.body, '$.metric_ids') m WHERE m.value = ?1)
    ) ORDER BY rank, seq";

    /// Who uses a behaviour: the test sets with a test of it.
    pub(super) const BEHAVIOR_USERS: &str = "SELECT 'test set', s.name FROM test_sets s
         WHERE EXISTS (SELECT 1 FROM tests t WHERE t.test_set_id = s.id AND t.behavior_id = ?1)
         ORDER BY s.seq";

    pub(super) const RESULT_BEHAVIORS: &str = "SELECT DISTINCT json_extract(body, '$.behavior_id') \
         FROM test_results WHERE run_id = ? AND seq <= ? \
         AND json_extract(body, '$.behavior_id') IS NOT NULL";

    /// Every write goes through the one writer connection: nothing can come between a read and
    /// a write of one transaction, so no lock is needed (and SQLite has no `FOR UPDATE`).
    pub(super) const FOR_UPDATE: &str = "";

    /// SQLite names the column: `UNIQUE constraint failed: metrics.name`.
    pub(super) const POSITIONS_IN: &str = "(SELECT value FROM json_each(?))";

    pub(super) const SKIP_LOCKED: &str = "";

    // One writer connection: a write transaction is alone already.
    pub(super) const XACT_LOCK: Option<&str> = None;

    // One server uses a SQLite file.
    pub(super) const SHARED: bool = false;

    pub(super) const GREATEST: &str = "max";

    pub(super) fn is_name_clash(db: &dyn DatabaseError) -> bool {
        db.message().ends_with(".name")
    }

    /// Which fault of the file an error reports, by SQLite's primary result code.
    pub(super) fn fault_of(db: &dyn DatabaseError) -> Option<&'static str> {
        let code: i32 = db.code()?.parse().ok()?;
        super::fault_of_code(code)
    }
}

/// Which fault of the file an SQLite result code (extended or primary) reports.
fn fault_of_code(code: i32) -> Option<&'static str> {
    match code & 0xff {
        11 | 26 => Some("the file is corrupt or not an SQLite database"),
        8 => Some("the file or its folder is read-only"),
        13 => Some("the disk or the database is full"),
        _ => None,
    }
}

/// What an error of the store says about the file (corrupt, read-only, full), when it says
/// something.
pub fn fault_of_error(e: &Error) -> Option<&'static str> {
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        if let Some(sqlx::Error::Database(db)) = cause.downcast_ref::<sqlx::Error>() {
            return dialect::fault_of(db.as_ref());
        }
        source = cause.source();
    }
    None
}

sql_store!(
    store: SqliteStore,
    import: SqliteImport,
    db: Sqlite,
    connection: SqliteConnection,
    row: SqliteRow,
    arguments: SqliteArguments,
    dialect: dialect,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlx_errors_become_storage_errors_that_keep_them() {
        let err = Error::from(sqlx::Error::PoolTimedOut);
        assert!(matches!(err, Error::Storage { .. }), "{err:?}");
        let source = std::error::Error::source(&err).expect("a source");
        assert!(source.downcast_ref::<sqlx::Error>().is_some(), "{source:?}");
    }

    /// What the two-pool design relies on: WAL (readers beside the writer) and readers that
    /// cannot write.
    #[tokio::test]
    async fn the_file_is_in_wal_mode_and_readers_cannot_write() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}", dir.path().join("assay.db").display());
        let store = SqliteStore::open(&url).await.expect("open");
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&store.reader)
            .await
            .expect("journal mode");
        assert_eq!(mode, "wal");
        let write = sqlx::query("DELETE FROM metrics")
            .execute(&store.reader)
            .await;
        assert!(write.is_err(), "a reader wrote: {write:?}");
        sqlx::query("DELETE FROM metrics")
            .execute(&store.writer)
            .await
            .expect("the writer writes");
        store.close().await;
    }
}
