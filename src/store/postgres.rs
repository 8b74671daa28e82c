//! PostgreSQL backend of [`Store`](super::Store): the queries are [`sql_store!`](super::sql)'s;
//! this module connects, migrates, and says how PostgreSQL spells what differs.
//!
//! The schema (`migrations/postgres`) has the same tables and columns as SQLite's. One pool
//! serves reads and writes: PostgreSQL runs writers side by side, so a transaction that reads a
//! record it is about to rewrite locks its row (`FOR UPDATE`). The migrator takes an advisory
//! lock, so several servers may start on one database at once.

use std::str::FromStr;

use sqlx::Postgres;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgArguments, PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgRow};

use super::sql::sql_store;

/// Connections of the pool: runs store and stream through a few, catalogue calls take others.
const CONNECTIONS: u32 = 16;

/// The schema versions of this backend, embedded so that the binary needs no files at run time.
static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// [`Store`](super::Store) on a PostgreSQL database.
#[derive(Clone, Debug)]
pub struct PgStore {
    /// The pool writes go through: the same pool as `reader`.
    writer: PgPool,
    /// The pool reads go through.
    reader: PgPool,
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://USER@HOST:PORT/DB`; `?sslmode=require`
    /// for TLS, through rustls) and brings its schema up to date.
    pub async fn open(url: &str) -> Result<PgStore> {
        let options = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(CONNECTIONS)
            .connect_with(options)
            .await?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| Error::storage("migrating the database", e))?;
        Ok(PgStore {
            writer: pool.clone(),
            reader: pool,
        })
    }

    /// Closes every connection, waiting for those in use to be returned.
    pub async fn close(&self) {
        self.writer.close().await;
    }
}

/// How PostgreSQL spells what differs between backends (see [`super::sql`]).
mod dialect {
    use sqlx::AssertSqlSafe;
    use sqlx::error::DatabaseError;

    /// The statement with its `?` placeholders numbered (`$1`, `$2`, ...). The shared SQL has no
    /// `?` anywhere else: no string literal holds one and no JSON operator is spelled with it.
    pub(super) fn sql(text: String) -> AssertSqlSafe<String> {
        let mut numbered = String::with_capacity(text.len() + 8);
        let mut n = 0;
        for c in text.chars() {
            if c == '?' {
                n += 1;
                numbered.push('$');
                numbered.push_str(&n.to_string());
            } else {
                numbered.push(c);
            }
        }
        AssertSqlSafe(numbered)
    }

    pub(super) const IDS_IN: &str = "(SELECT json_array_elements_text(?::json))";

    /// Who uses a metric: behaviours, then test sets, each in creation order.
    pub(super) const METRIC_USERS: &str = "SELECT kind, name FROM (
        SELECT 0 AS rank, b.seq AS seq, 'behavior' AS kind, b.name AS name FROM behaviors b
         WHERE EXISTS (SELECT 1 FROM json_array_elements_text(b.body::json -> 'metric_ids') m
                       WHERE m = $1)
        UNION ALL
        SELECT 1, s.seq, 'test set', s.name FROM test_sets s
         WHERE EXISTS (SELECT 1 FROM json_array_elements_text(s.body::json -> 'metric_ids') m
                       WHERE m = $1)
    ) users ORDER BY rank, seq";

    /// Who uses a behaviour: the test sets with a test of it.
    pub(super) const BEHAVIOR_USERS: &str = "SELECT 'test set', s.name FROM test_sets s
         WHERE EXISTS (SELECT 1 FROM tests t WHERE t.test_set_id = s.id AND t.behavior_id = $1)
         ORDER BY s.seq";

    pub(super) const RESULT_BEHAVIORS: &str = "SELECT DISTINCT body::json ->> 'behavior_id' \
         FROM test_results WHERE run_id = ? AND seq <= ? \
         AND body::json ->> 'behavior_id' IS NOT NULL";

    /// Writers run side by side: a read that a write depends on locks the row it read.
    pub(super) const FOR_UPDATE: &str = " FOR UPDATE OF t";

    /// PostgreSQL names the constraint: `metrics_name_key`.
    pub(super) const POSITIONS_IN: &str = "(SELECT json_array_elements_text(?::json)::bigint)";

    pub(super) const SKIP_LOCKED: &str = " FOR UPDATE SKIP LOCKED";

    pub(super) const XACT_LOCK: Option<&str> = Some("SELECT pg_advisory_xact_lock(hashtext($1))");

    // Replicas share a PostgreSQL database.
    pub(super) const SHARED: bool = true;

    pub(super) const GREATEST: &str = "GREATEST";

    pub(super) fn is_name_clash(db: &dyn DatabaseError) -> bool {
        db.constraint().is_some_and(|c| c.ends_with("_name_key"))
    }

    /// Which fault of the database an error reports, by its SQLSTATE.
    pub(super) fn fault_of(db: &dyn DatabaseError) -> Option<&'static str> {
        match db.code()?.as_ref() {
            "XX001" | "XX002" => Some("its data is corrupt"),
            "25006" => Some("it is read-only"),
            "53100" => Some("its disk is full"),
            _ => None,
        }
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn placeholders_are_numbered_in_order() {
            let numbered = super::sql("a = ? AND b IN (SELECT x(?::json)) LIMIT ?".into());
            assert_eq!(numbered.0, "a = $1 AND b IN (SELECT x($2::json)) LIMIT $3");
        }
    }
}

sql_store!(
    store: PgStore,
    import: PgImport,
    db: Postgres,
    connection: PgConnection,
    row: PgRow,
    arguments: PgArguments,
    dialect: dialect,
);
