//! SQLite backend of [`Store`].
//!
//! Every row keeps its whole domain value as JSON in `body`; the other columns exist only for
//! lookups, uniqueness, filters and ordering (see `migrations/sqlite/0001_init.sql`). The code is
//! generic over [`Stored`] types so that each resource is one small trait impl, not a copy of the
//! queries.
//!
//! Two pools: one writer connection, through which every write goes (SQLite allows one writer at
//! a time, so queuing writers in the pool instead of in SQLite means a transaction that reads
//! then writes never fails with `SQLITE_BUSY` on its lock upgrade), and a few readers, which WAL
//! lets run beside the writer.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::error::ErrorKind;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, QueryBuilder, Row, Sqlite};
use uuid::Uuid;

use super::{Change, Extent, ImportInto, Store, TestImport};
use crate::domain::{
    Behavior, Endpoint, Metric, Page, PageRequest, Ref, RunFilter, RunKind, RunStatus, Test,
    TestResult, TestRun, TestSet,
};
use crate::error::{Error, Result};

/// Reader connections; WAL lets them read while the writer writes.
const READERS: u32 = 4;
/// How long a connection waits for a lock (checkpoints, schema changes) before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Bind parameters per statement of a bulk insert, well below SQLite's limit (32766).
const MAX_BINDS_PER_STATEMENT: usize = 8000;

/// The schema versions of this backend, embedded so that the binary needs no files at run time.
static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// [`Store`] on an SQLite database file.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    /// One connection: every write goes through it.
    writer: SqlitePool,
    /// Connections for reads only.
    reader: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating it if missing) the database at `url`, e.g. `sqlite://assay.db`, and
    /// brings its schema up to date.
    ///
    /// An in-memory URL (`sqlite::memory:`) does not work: the writer and the readers would each
    /// see a database of their own.
    pub async fn open(url: &str) -> Result<SqliteStore> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        MIGRATOR
            .run(&writer)
            .await
            .map_err(|e| Error::storage("migrating the database", e))?;
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

    /// A reader connection.
    async fn read(&self) -> Result<sqlx::pool::PoolConnection<Sqlite>> {
        Ok(self.reader.acquire().await?)
    }

    /// Count, last position and behaviours of the rows of one parent: `counting` answers
    /// `(COUNT(*), MAX(seq))` for the parent id, `behaviors` the distinct behaviour ids for the
    /// parent id and the last position. One read transaction, so the three agree.
    async fn extent(&self, counting: &str, behaviors: &str, parent: Uuid) -> Result<Extent> {
        let mut tx = self.reader.begin().await?;
        let (count, last): (i64, Option<i64>) = sqlx::query_as(sql(counting.to_string()))
            .bind(parent.to_string())
            .fetch_one(&mut *tx)
            .await?;
        let ids: Vec<String> = sqlx::query_scalar(sql(behaviors.to_string()))
            .bind(parent.to_string())
            .bind(last.unwrap_or(0))
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        let mut behavior_ids = ids
            .iter()
            .map(|id| {
                Uuid::parse_str(id)
                    .map_err(|e| Error::internal_from(format!("stored behaviour id {id:?}"), e))
            })
            .collect::<Result<Vec<_>>>()?;
        behavior_ids.sort_unstable();
        Ok(Extent {
            count: u32::try_from(count).unwrap_or(u32::MAX),
            last,
            behavior_ids,
        })
    }

    /// Stores new records in one transaction.
    async fn insert<T: Stored>(&self, records: &[T]) -> Result<()> {
        let mut tx = self.writer.begin().await?;
        insert_records(&mut tx, records).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Stores a new catalogue record after checking the metrics it names.
    async fn create<T: Named>(&self, record: &T) -> Result<()> {
        let mut tx = self.writer.begin().await?;
        require_all(&mut tx, METRICS, None, record.metric_ids()).await?;
        insert_records(&mut tx, std::slice::from_ref(record)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Reads a catalogue record, applies `change` and writes the result after checking the
    /// metrics it names, in one transaction of the one writer: no other write comes between.
    async fn update<T: Named>(&self, reference: &Ref, change: Change<'_, T>) -> Result<T> {
        let mut tx = self.writer.begin().await?;
        let current = fetch_ref::<T>(&mut tx, reference).await?;
        let record = change(current)?;
        require_all(&mut tx, METRICS, None, record.metric_ids()).await?;
        update_record(&mut tx, &record).await?;
        tx.commit().await?;
        Ok(record)
    }

    /// One record by a unique column; `None` when there is none.
    async fn find<T: Stored>(&self, column: &str, value: String) -> Result<Option<T>> {
        let mut conn = self.read().await?;
        let found = fetch_where::<T>(&mut conn, &format!("t.{column} = ?"), vec![value]).await?;
        Ok(found.into_iter().next())
    }

    /// One catalogue record by id or name.
    async fn get<T: Named>(&self, reference: &Ref) -> Result<T> {
        let mut conn = self.read().await?;
        fetch_ref(&mut conn, reference).await
    }

    /// Records by id, in the order given, each once; unknown ids are left out.
    async fn get_many<T: Stored>(&self, ids: &[Uuid]) -> Result<Vec<T>> {
        let mut conn = self.read().await?;
        let records = fetch_where::<T>(
            &mut conn,
            "t.id IN (SELECT value FROM json_each(?))",
            vec![serde_json::to_string(ids)?],
        )
        .await?;
        let mut by_id: HashMap<Uuid, T> = records.into_iter().map(|r| (r.id(), r)).collect();
        Ok(ids.iter().filter_map(|id| by_id.remove(id)).collect())
    }

    /// A page of records matching `filters` (column = value), oldest first or newest first.
    async fn page<T: Stored>(
        &self,
        filters: &[(&str, String)],
        page: PageRequest,
        newest_first: bool,
    ) -> Result<Page<T>> {
        let size = page.size as usize;
        // One row more than asked tells whether there is a next page.
        let mut rows = self
            .after::<T>(
                filters,
                page.after,
                page.size.saturating_add(1),
                newest_first,
            )
            .await?;
        let more = rows.len() > size;
        rows.truncate(size);
        let next = if more {
            rows.last().map(|(seq, _)| *seq)
        } else {
            None
        };
        Ok(Page {
            items: rows.into_iter().map(|(_, record)| record).collect(),
            next,
        })
    }

    /// Up to `limit` records matching `filters` past the cursor `after`, each with its `seq`
    /// (the cursor to continue from).
    async fn after<T: Stored>(
        &self,
        filters: &[(&str, String)],
        after: Option<i64>,
        limit: u32,
        newest_first: bool,
    ) -> Result<Vec<(i64, T)>> {
        let (op, order, start) = if newest_first {
            ("<", "DESC", i64::MAX)
        } else {
            (">", "ASC", 0)
        };
        let mut condition = String::new();
        for (column, _) in filters {
            condition.push_str(&format!("t.{column} = ? AND "));
        }
        condition.push_str(&format!("t.seq {op} ? ORDER BY t.seq {order} LIMIT ?"));
        let mut binds: Vec<Bind> = filters.iter().map(|(_, v)| text(v)).collect();
        binds.push(Bind::Int(Some(after.unwrap_or(start))));
        binds.push(Bind::Int(Some(i64::from(limit))));

        let mut conn = self.read().await?;
        let rows = bind_all(sqlx::query(select::<T>(&condition)), binds)
            .fetch_all(&mut *conn)
            .await?;
        rows.iter()
            .map(|row| Ok((row.try_get::<i64, _>("seq")?, decode(row)?)))
            .collect()
    }

    /// Deletes a catalogue record unless `users` (a query binding the id once as `?1` and
    /// answering `(kind, name)` rows) finds something that still needs it.
    async fn delete<T: Named>(&self, id: Uuid, users: Option<&'static str>) -> Result<()> {
        let table = T::TABLE;
        let id_text = id.to_string();
        let mut tx = self.writer.begin().await?;
        let name: Option<String> =
            sqlx::query_scalar(sql(format!("SELECT name FROM {} WHERE id = ?", table.name)))
                .bind(&id_text)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(name) = name else {
            return Err(Error::not_found(table.kind, id));
        };
        if let Some(users) = users {
            let users: Vec<(String, String)> = sqlx::query_as(users)
                .bind(&id_text)
                .fetch_all(&mut *tx)
                .await?;
            if !users.is_empty() {
                let list = users
                    .iter()
                    .map(|(kind, user)| format!("{kind} \"{user}\""))
                    .collect::<Vec<_>>()
                    .join(", ");
                return Err(Error::precondition(
                    format!("{} {name}", table.kind),
                    format!("{} \"{name}\" is still used by {list}", table.kind),
                ));
            }
        }
        sqlx::query(sql(format!("DELETE FROM {} WHERE id = ?", table.name)))
            .bind(&id_text)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// An empty page of children is either the end of a list or a parent that does not exist;
    /// tells them apart so that an unknown parent is `NotFound`.
    async fn require_parent<T>(&self, page: Page<T>, parent: Table, id: Uuid) -> Result<Page<T>> {
        if page.items.is_empty() {
            let mut conn = self.read().await?;
            require_all(&mut conn, parent, None, &[id]).await?;
        }
        Ok(page)
    }
}

/// An import holding the writer's transaction: SQLite has one writer, so other writes wait for
/// the import to end (the catalogue bounds how long a client may pause between pieces).
struct SqliteImport {
    tx: sqlx::Transaction<'static, Sqlite>,
    test_set_id: Uuid,
}

#[async_trait]
impl TestImport for SqliteImport {
    async fn add(&mut self, tests: &[Test]) -> Result<()> {
        debug_assert!(tests.iter().all(|t| t.test_set_id == self.test_set_id));
        insert_tests(&mut self.tx, tests).await
    }

    async fn commit(mut self: Box<Self>) -> Result<TestSet> {
        let reference = Ref::Id(self.test_set_id);
        let test_set = fetch_ref::<TestSet>(&mut self.tx, &reference).await?;
        self.tx.commit().await?;
        Ok(test_set)
    }
}

// ---- how records map to tables

/// A table and how it is named in errors.
#[derive(Clone, Copy, Debug)]
struct Table {
    /// SQL name.
    name: &'static str,
    /// Kind of resource, for `NotFound` and `AlreadyExists`.
    kind: &'static str,
    /// Key columns written beside `body`, in the order of [`Stored::keys`].
    columns: &'static [&'static str],
    /// SQL expression over the row `t` selected as `extra` (see [`Stored::with_extra`]).
    extra: &'static str,
}

const METRICS: Table = Table {
    name: "metrics",
    kind: "metric",
    columns: &["id", "name"],
    extra: "0",
};
const BEHAVIORS: Table = Table {
    name: "behaviors",
    kind: "behavior",
    columns: &["id", "name"],
    extra: "0",
};
const ENDPOINTS: Table = Table {
    name: "endpoints",
    kind: "endpoint",
    columns: &["id", "name"],
    extra: "0",
};
const TEST_SETS: Table = Table {
    name: "test_sets",
    kind: "test set",
    columns: &["id", "name"],
    extra: "(SELECT COUNT(*) FROM tests c WHERE c.test_set_id = t.id)",
};
const TESTS: Table = Table {
    name: "tests",
    kind: "test",
    columns: &["id", "test_set_id", "behavior_id"],
    extra: "0",
};
const TEST_RUNS: Table = Table {
    name: "test_runs",
    kind: "test run",
    columns: &[
        "id",
        "test_set_id",
        "endpoint_id",
        "status",
        "kind",
        "finished_at",
    ],
    extra: "0",
};
const TEST_RESULTS: Table = Table {
    name: "test_results",
    kind: "test result",
    columns: &["id", "run_id", "test_id"],
    extra: "0",
};

/// A domain type stored as one row: key columns plus the JSON `body`.
trait Stored: Serialize + DeserializeOwned + Send + Sync {
    /// Where it is stored.
    const TABLE: Table;
    /// Its id.
    fn id(&self) -> Uuid;
    /// Its unique name, for types that have one.
    fn name(&self) -> Option<&str> {
        None
    }
    /// Values of `TABLE.columns`, in that order.
    fn keys(&self) -> Vec<Bind> {
        vec![text(self.id())]
    }
    /// Fills in what is computed when read rather than stored (a test set's test count).
    fn with_extra(self, _extra: i64) -> Self {
        self
    }
}

/// A catalogue type: unique name, and maybe metrics that must exist.
trait Named: Stored {
    /// Metrics it names.
    fn metric_ids(&self) -> &[Uuid] {
        &[]
    }
}

/// Implements [`Stored`] and [`Named`] for a catalogue type (id and name columns), naming the
/// field with its metrics if it has one, and any further [`Stored`] items after a `;`.
macro_rules! catalogue {
    ($type:ty, $table:expr $(, $metrics:ident)? $(; $($item:item)*)?) => {
        impl Stored for $type {
            const TABLE: Table = $table;
            fn id(&self) -> Uuid {
                self.id
            }
            fn name(&self) -> Option<&str> {
                Some(&self.name)
            }
            fn keys(&self) -> Vec<Bind> {
                vec![text(self.id), text(&self.name)]
            }
            $($($item)*)?
        }
        impl Named for $type {
            $(fn metric_ids(&self) -> &[Uuid] {
                &self.$metrics
            })?
        }
    };
}

catalogue!(Metric, METRICS);
catalogue!(Behavior, BEHAVIORS, metric_ids);
catalogue!(Endpoint, ENDPOINTS);
catalogue!(TestSet, TEST_SETS, metric_ids;
    fn with_extra(mut self, test_count: i64) -> Self {
        self.test_count = u32::try_from(test_count).unwrap_or(u32::MAX);
        self
    }
);

impl Stored for Test {
    const TABLE: Table = TESTS;
    fn id(&self) -> Uuid {
        self.id
    }
    fn keys(&self) -> Vec<Bind> {
        vec![
            text(self.id),
            text(self.test_set_id),
            Bind::Text(self.behavior_id.map(|id| id.to_string())),
        ]
    }
}

impl Stored for TestRun {
    const TABLE: Table = TEST_RUNS;
    fn id(&self) -> Uuid {
        self.id
    }
    fn keys(&self) -> Vec<Bind> {
        let kind = match self.kind {
            RunKind::Execution => "execution",
            RunKind::Rescore => "rescore",
        };
        vec![
            text(self.id),
            text(self.test_set_id),
            text(self.endpoint_id),
            text(self.status.as_str()),
            text(kind),
            Bind::Int(self.finished_at.map(|t| t.timestamp_micros())),
        ]
    }
}

impl Stored for TestResult {
    const TABLE: Table = TEST_RESULTS;
    fn id(&self) -> Uuid {
        self.id
    }
    fn keys(&self) -> Vec<Bind> {
        vec![text(self.id), text(self.run_id), text(self.test_id)]
    }
}

// ---- generic SQL helpers

/// A bind parameter of a statement built at run time.
enum Bind {
    /// TEXT or NULL.
    Text(Option<String>),
    /// INTEGER or NULL.
    Int(Option<i64>),
}

fn text(value: impl ToString) -> Bind {
    Bind::Text(Some(value.to_string()))
}

/// SQL assembled from table descriptors and fixed fragments only; input always goes in binds.
fn sql(text: String) -> AssertSqlSafe<String> {
    AssertSqlSafe(text)
}

fn bind_all<'q>(
    mut query: sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments>,
    binds: Vec<Bind>,
) -> sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments> {
    for bind in binds {
        query = match bind {
            Bind::Text(value) => query.bind(value),
            Bind::Int(value) => query.bind(value),
        };
    }
    query
}

/// `SELECT seq, body, extra FROM <table> t WHERE <condition>`.
fn select<T: Stored>(condition: &str) -> AssertSqlSafe<String> {
    let table = T::TABLE;
    sql(format!(
        "SELECT t.seq AS seq, t.body AS body, {} AS extra FROM {} t WHERE {condition}",
        table.extra, table.name
    ))
}

fn decode<T: Stored>(row: &SqliteRow) -> Result<T> {
    let body: &str = row.try_get("body")?;
    let extra: i64 = row.try_get("extra")?;
    Ok(serde_json::from_str::<T>(body)?.with_extra(extra))
}

/// Records matching `condition` (over the row `t`, with `?` for `binds`), in the order it gives.
async fn fetch_where<T: Stored>(
    conn: &mut SqliteConnection,
    condition: &str,
    binds: Vec<String>,
) -> Result<Vec<T>> {
    let binds = binds.into_iter().map(|b| Bind::Text(Some(b))).collect();
    let rows = bind_all(sqlx::query(select::<T>(condition)), binds)
        .fetch_all(conn)
        .await?;
    rows.iter().map(decode).collect()
}

/// One catalogue record by id or name; `NotFound` naming the reference.
async fn fetch_ref<T: Named>(conn: &mut SqliteConnection, reference: &Ref) -> Result<T> {
    let (column, value) = match reference {
        Ref::Id(id) => ("id", id.to_string()),
        Ref::Name(name) => ("name", name.clone()),
    };
    let found = fetch_where::<T>(conn, &format!("t.{column} = ?"), vec![value]).await?;
    found
        .into_iter()
        .next()
        .ok_or_else(|| Error::not_found(T::TABLE.kind, reference))
}

/// Appends tests of one test set after checking that their behaviours exist.
async fn insert_tests(conn: &mut SqliteConnection, tests: &[Test]) -> Result<()> {
    let mut behaviors: Vec<Uuid> = tests.iter().filter_map(|t| t.behavior_id).collect();
    behaviors.sort_unstable();
    behaviors.dedup();
    require_all(conn, BEHAVIORS, None, &behaviors).await?;
    insert_records(conn, tests).await
}

/// Inserts records with multi-row statements (thousands of tests in a few statements).
async fn insert_records<T: Stored>(conn: &mut SqliteConnection, records: &[T]) -> Result<()> {
    let table = T::TABLE;
    let rows_per_statement = MAX_BINDS_PER_STATEMENT / (table.columns.len() + 1);
    for chunk in power_of_two_chunks(records, rows_per_statement) {
        let rows = chunk
            .iter()
            .map(|record| Ok((record.keys(), serde_json::to_string(record)?)))
            .collect::<Result<Vec<_>>>()?;
        let mut query = QueryBuilder::<Sqlite>::new(format!(
            "INSERT INTO {} ({}, body) ",
            table.name,
            table.columns.join(", ")
        ));
        query.push_values(rows, |mut row, (keys, body)| {
            for key in keys {
                match key {
                    Bind::Text(value) => row.push_bind(value),
                    Bind::Int(value) => row.push_bind(value),
                };
            }
            row.push_bind(body);
        });
        if let Err(e) = query.build().execute(&mut *conn).await {
            return Err(conflict(e, table, chunk));
        }
    }
    Ok(())
}

/// `records` cut into runs whose lengths are powers of two of at most `max` rows, largest first:
/// an insert of n rows is its own SQL text, and with few distinct lengths the connection's
/// statement cache keeps every one of them prepared whatever the batch sizes.
fn power_of_two_chunks<T>(mut records: &[T], max: usize) -> impl Iterator<Item = &[T]> {
    let largest = if max == 0 { 1 } else { 1 << max.ilog2() };
    std::iter::from_fn(move || {
        if records.is_empty() {
            return None;
        }
        let len = largest.min(1 << records.len().ilog2());
        let (chunk, rest) = records.split_at(len);
        records = rest;
        Some(chunk)
    })
}

/// Replaces a record's key columns and body; `NotFound` when its id is unknown.
async fn update_record<T: Stored>(conn: &mut SqliteConnection, record: &T) -> Result<()> {
    let table = T::TABLE;
    let assignments = table
        .columns
        .iter()
        .map(|column| format!("{column} = ?"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut binds = record.keys();
    binds.push(text(serde_json::to_string(record)?));
    binds.push(text(record.id()));
    let done = bind_all(
        sqlx::query(sql(format!(
            "UPDATE {} SET {assignments}, body = ? WHERE id = ?",
            table.name
        ))),
        binds,
    )
    .execute(&mut *conn)
    .await
    .map_err(|e| conflict(e, table, std::slice::from_ref(record)))?;
    if done.rows_affected() == 0 {
        return Err(Error::not_found(table.kind, record.id()));
    }
    Ok(())
}

// The conversions of the backend's errors live here, not in `crate::error`, so that the
// domain's error type depends on no storage crate.

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        Error::storage("SQLite call failed", e)
    }
}

/// Bodies are written and read as JSON; one that does not round-trip is a bug or a corrupt row.
impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::internal_from("stored JSON does not decode", e)
    }
}

/// Turns a unique violation into `AlreadyExists` naming the taken name (or id); with several
/// records, SQLite does not say which one clashed, so the first is named.
fn conflict<T: Stored>(e: sqlx::Error, table: Table, records: &[T]) -> Error {
    if let sqlx::Error::Database(db) = &e
        && db.kind() == ErrorKind::UniqueViolation
        && let Some(record) = records.first()
    {
        let name = match record.name() {
            Some(name) if db.message().ends_with(".name") => name.to_string(),
            _ => record.id().to_string(),
        };
        return Error::AlreadyExists {
            kind: table.kind,
            name,
        };
    }
    e.into()
}

/// Fails with `NotFound` naming the first of `ids` that is not in `table` (within the rows where
/// `scope` = (column, value) when given).
async fn require_all(
    conn: &mut SqliteConnection,
    table: Table,
    scope: Option<(&str, String)>,
    ids: &[Uuid],
) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let mut binds = vec![Bind::Text(Some(serde_json::to_string(ids)?))];
    let mut text = format!(
        "SELECT id FROM {} WHERE id IN (SELECT value FROM json_each(?))",
        table.name
    );
    if let Some((column, value)) = scope {
        text.push_str(&format!(" AND {column} = ?"));
        binds.push(Bind::Text(Some(value)));
    }
    let rows = bind_all(sqlx::query(sql(text)), binds)
        .fetch_all(conn)
        .await?;
    let found = rows
        .iter()
        .map(|row| row.try_get::<String, _>(0))
        .collect::<Result<HashSet<_>, _>>()?;
    match ids.iter().find(|id| !found.contains(&id.to_string())) {
        Some(missing) => Err(Error::not_found(table.kind, missing)),
        None => Ok(()),
    }
}

/// Who uses a metric: behaviours, then test sets, each in creation order.
const METRIC_USERS: &str = "SELECT kind, name FROM (
    SELECT 0 AS rank, b.seq AS seq, 'behavior' AS kind, b.name AS name FROM behaviors b
     WHERE EXISTS (SELECT 1 FROM json_each(b.body, '$.metric_ids') m WHERE m.value = ?1)
    UNION ALL
    SELECT 1, s.seq, 'test set', s.name FROM test_sets s
     WHERE EXISTS (SELECT 1 FROM json_each(s.body, '$.metric_ids') m WHERE m.value = ?1)
) ORDER BY rank, seq";

/// Who uses a behaviour: the test sets with a test of it.
const BEHAVIOR_USERS: &str = "SELECT 'test set', s.name FROM test_sets s
     WHERE EXISTS (SELECT 1 FROM tests t WHERE t.test_set_id = s.id AND t.behavior_id = ?1)
     ORDER BY s.seq";

#[async_trait]
impl Store for SqliteStore {
    async fn create_metric(&self, metric: &Metric) -> Result<()> {
        self.create(metric).await
    }

    async fn get_metric(&self, metric: &Ref) -> Result<Metric> {
        self.get(metric).await
    }

    async fn resolve_metrics(&self, metrics: &[Ref]) -> Result<Vec<Metric>> {
        let mut ids = Vec::new();
        let mut names = Vec::new();
        for reference in metrics {
            match reference {
                Ref::Id(id) => ids.push(id.to_string()),
                Ref::Name(name) => names.push(name.as_str()),
            }
        }
        let mut conn = self.read().await?;
        let found: Vec<Metric> = fetch_where(
            &mut conn,
            "t.id IN (SELECT value FROM json_each(?)) \
             OR t.name IN (SELECT value FROM json_each(?))",
            vec![serde_json::to_string(&ids)?, serde_json::to_string(&names)?],
        )
        .await?;
        let mut seen = HashSet::new();
        let mut resolved = Vec::new();
        for reference in metrics {
            let metric = found
                .iter()
                .find(|m| match reference {
                    Ref::Id(id) => m.id == *id,
                    Ref::Name(name) => m.name == *name,
                })
                .ok_or_else(|| Error::not_found(METRICS.kind, reference))?;
            if seen.insert(metric.id) {
                resolved.push(metric.clone());
            }
        }
        Ok(resolved)
    }

    async fn list_metrics(&self, page: PageRequest) -> Result<Page<Metric>> {
        self.page(&[], page, false).await
    }

    async fn update_metric(&self, metric: &Ref, change: Change<'_, Metric>) -> Result<Metric> {
        self.update(metric, change).await
    }

    async fn delete_metric(&self, id: Uuid) -> Result<()> {
        self.delete::<Metric>(id, Some(METRIC_USERS)).await
    }

    async fn create_behavior(&self, behavior: &Behavior) -> Result<()> {
        self.create(behavior).await
    }

    async fn get_behavior(&self, behavior: &Ref) -> Result<Behavior> {
        self.get(behavior).await
    }

    async fn get_behaviors(&self, ids: &[Uuid]) -> Result<Vec<Behavior>> {
        self.get_many(ids).await
    }

    async fn list_behaviors(&self, page: PageRequest) -> Result<Page<Behavior>> {
        self.page(&[], page, false).await
    }

    async fn update_behavior(
        &self,
        behavior: &Ref,
        change: Change<'_, Behavior>,
    ) -> Result<Behavior> {
        self.update(behavior, change).await
    }

    async fn delete_behavior(&self, id: Uuid) -> Result<()> {
        self.delete::<Behavior>(id, Some(BEHAVIOR_USERS)).await
    }

    async fn create_endpoint(&self, endpoint: &Endpoint) -> Result<()> {
        self.create(endpoint).await
    }

    async fn get_endpoint(&self, endpoint: &Ref) -> Result<Endpoint> {
        self.get(endpoint).await
    }

    async fn list_endpoints(&self, page: PageRequest) -> Result<Page<Endpoint>> {
        self.page(&[], page, false).await
    }

    async fn update_endpoint(
        &self,
        endpoint: &Ref,
        change: Change<'_, Endpoint>,
    ) -> Result<Endpoint> {
        self.update(endpoint, change).await
    }

    async fn delete_endpoint(&self, id: Uuid) -> Result<()> {
        self.delete::<Endpoint>(id, None).await
    }

    async fn create_test_set(&self, test_set: &TestSet) -> Result<()> {
        self.create(test_set).await
    }

    async fn get_test_set(&self, test_set: &Ref) -> Result<TestSet> {
        self.get(test_set).await
    }

    async fn list_test_sets(&self, page: PageRequest) -> Result<Page<TestSet>> {
        self.page(&[], page, false).await
    }

    async fn update_test_set(
        &self,
        test_set: &Ref,
        change: Change<'_, TestSet>,
    ) -> Result<TestSet> {
        self.update(test_set, change).await
    }

    async fn delete_test_set(&self, id: Uuid) -> Result<()> {
        // Its tests go by `ON DELETE CASCADE`.
        self.delete::<TestSet>(id, None).await
    }

    async fn change_test_set_metrics(
        &self,
        test_set_id: Uuid,
        add: &[Uuid],
        remove: &[Uuid],
    ) -> Result<Vec<Uuid>> {
        let mut tx = self.writer.begin().await?;
        let mut test_set =
            fetch_where::<TestSet>(&mut tx, "t.id = ?", vec![test_set_id.to_string()])
                .await?
                .into_iter()
                .next()
                .ok_or_else(|| Error::not_found(TEST_SETS.kind, test_set_id))?;
        // Checked inside the transaction so that a metric deleted meanwhile cannot slip in.
        require_all(&mut tx, METRICS, None, add).await?;
        let before = test_set.metric_ids.clone();
        for id in add {
            if !test_set.metric_ids.contains(id) {
                test_set.metric_ids.push(*id);
            }
        }
        test_set.metric_ids.retain(|id| !remove.contains(id));
        if test_set.metric_ids != before {
            test_set.updated_at = chrono::Utc::now();
            update_record(&mut tx, &test_set).await?;
        }
        tx.commit().await?;
        Ok(test_set.metric_ids)
    }

    async fn add_tests(&self, test_set_id: Uuid, tests: &[Test]) -> Result<()> {
        // The body must agree with the column; copy only when a caller left it unset.
        let tests: Cow<'_, [Test]> = if tests.iter().all(|t| t.test_set_id == test_set_id) {
            Cow::Borrowed(tests)
        } else {
            Cow::Owned(
                tests
                    .iter()
                    .map(|t| Test {
                        test_set_id,
                        ..t.clone()
                    })
                    .collect(),
            )
        };
        let mut tx = self.writer.begin().await?;
        require_all(&mut tx, TEST_SETS, None, &[test_set_id]).await?;
        insert_tests(&mut tx, &tests).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn begin_import(&self, into: ImportInto) -> Result<Box<dyn TestImport>> {
        let mut tx = self.writer.begin().await?;
        let test_set_id = match into {
            ImportInto::Existing(id) => {
                require_all(&mut tx, TEST_SETS, None, &[id]).await?;
                id
            }
            ImportInto::New(test_set) => {
                require_all(&mut tx, METRICS, None, &test_set.metric_ids).await?;
                insert_records(&mut tx, std::slice::from_ref(&test_set)).await?;
                test_set.id
            }
        };
        Ok(Box::new(SqliteImport { tx, test_set_id }))
    }

    async fn list_tests(&self, test_set_id: Uuid, page: PageRequest) -> Result<Page<Test>> {
        let tests = self
            .page(&[("test_set_id", test_set_id.to_string())], page, false)
            .await?;
        self.require_parent(tests, TEST_SETS, test_set_id).await
    }

    async fn tests_after(
        &self,
        test_set_id: Uuid,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<(i64, Test)>> {
        self.after(
            &[("test_set_id", test_set_id.to_string())],
            after,
            limit,
            false,
        )
        .await
    }

    async fn test_set_extent(&self, test_set_id: Uuid) -> Result<Extent> {
        self.extent(
            "SELECT COUNT(*), MAX(seq) FROM tests WHERE test_set_id = ?",
            "SELECT DISTINCT behavior_id FROM tests \
             WHERE test_set_id = ? AND seq <= ? AND behavior_id IS NOT NULL",
            test_set_id,
        )
        .await
    }

    async fn remove_tests(&self, test_set_id: Uuid, test_ids: &[Uuid]) -> Result<u32> {
        let mut tx = self.writer.begin().await?;
        require_all(&mut tx, TEST_SETS, None, &[test_set_id]).await?;
        let scope = ("test_set_id", test_set_id.to_string());
        require_all(&mut tx, TESTS, Some(scope), test_ids).await?;
        let done = sqlx::query(
            "DELETE FROM tests WHERE test_set_id = ? AND id IN (SELECT value FROM json_each(?))",
        )
        .bind(test_set_id.to_string())
        .bind(serde_json::to_string(test_ids)?)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(u32::try_from(done.rows_affected()).unwrap_or(u32::MAX))
    }

    async fn create_run(&self, run: &TestRun) -> Result<()> {
        self.insert(std::slice::from_ref(run)).await
    }

    async fn update_run(&self, run: &TestRun) -> Result<()> {
        let mut conn = self.writer.acquire().await?;
        update_record(&mut conn, run).await
    }

    async fn get_run(&self, id: Uuid) -> Result<TestRun> {
        self.find("id", id.to_string())
            .await?
            .ok_or_else(|| Error::not_found(TEST_RUNS.kind, id))
    }

    async fn list_runs(&self, filter: &RunFilter, page: PageRequest) -> Result<Page<TestRun>> {
        let filters: Vec<(&str, String)> = [
            ("test_set_id", filter.test_set_id),
            ("endpoint_id", filter.endpoint_id),
        ]
        .into_iter()
        .filter_map(|(column, id)| Some((column, id?.to_string())))
        .collect();
        self.page(&filters, page, true).await
    }

    async fn latest_completed_run(
        &self,
        test_set_id: Uuid,
        endpoint_id: Uuid,
    ) -> Result<Option<TestRun>> {
        let mut conn = self.read().await?;
        let runs = fetch_where::<TestRun>(
            &mut conn,
            "t.test_set_id = ? AND t.endpoint_id = ? AND t.status = ? \
             ORDER BY t.finished_at DESC, t.seq DESC LIMIT 1",
            vec![
                test_set_id.to_string(),
                endpoint_id.to_string(),
                RunStatus::Completed.as_str().to_string(),
            ],
        )
        .await?;
        Ok(runs.into_iter().next())
    }

    async fn unfinished_runs(&self) -> Result<Vec<TestRun>> {
        let mut conn = self.read().await?;
        fetch_where::<TestRun>(
            &mut conn,
            "t.status = ? ORDER BY t.seq",
            vec![RunStatus::Running.as_str().to_string()],
        )
        .await
    }

    async fn insert_results(&self, results: &[TestResult]) -> Result<Option<i64>> {
        if results.is_empty() {
            return Ok(None);
        }
        let mut runs: Vec<Uuid> = results.iter().map(|r| r.run_id).collect();
        runs.sort_unstable();
        runs.dedup();
        let mut tx = self.writer.begin().await?;
        require_all(&mut tx, TEST_RUNS, None, &runs).await?;
        insert_records(&mut tx, results).await?;
        // `seq` is the rowid, and the rows were inserted in order.
        let last: i64 = sqlx::query_scalar("SELECT last_insert_rowid()")
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(last))
    }

    async fn list_results(&self, run_id: Uuid, page: PageRequest) -> Result<Page<TestResult>> {
        let results = self
            .page(&[("run_id", run_id.to_string())], page, false)
            .await?;
        self.require_parent(results, TEST_RUNS, run_id).await
    }

    async fn run_extent(&self, run_id: Uuid) -> Result<Extent> {
        self.extent(
            "SELECT COUNT(*), MAX(seq) FROM test_results WHERE run_id = ?",
            "SELECT DISTINCT json_extract(body, '$.behavior_id') FROM test_results \
             WHERE run_id = ? AND seq <= ? AND json_extract(body, '$.behavior_id') IS NOT NULL",
            run_id,
        )
        .await
    }

    async fn results_after(
        &self,
        run_id: Uuid,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<(i64, TestResult)>> {
        // No parent check: followers poll this often and have read the run already.
        self.after(&[("run_id", run_id.to_string())], after, limit, false)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_powers_of_two_largest_first_and_cover_everything() {
        let records: Vec<u32> = (0..300).collect();
        let chunks: Vec<&[u32]> = power_of_two_chunks(&records, 100).collect();
        let lengths: Vec<usize> = chunks.iter().map(|c| c.len()).collect();
        assert_eq!(lengths, vec![64, 64, 64, 64, 32, 8, 4]);
        assert_eq!(chunks.concat(), records);
        assert_eq!(power_of_two_chunks(&[1], 0).count(), 1);
        assert_eq!(power_of_two_chunks::<u32>(&[], 8).count(), 0);
    }

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
