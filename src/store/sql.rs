//! The SQL of every backend, written once: [`sql_store!`] implements [`Store`](super::Store) for
//! a backend's store type over its sqlx driver. A backend module gives the store (with a `writer`
//! and a `reader` pool, which may be one pool), and a dialect module `$d` with what differs:
//!
//! - `fn sql(String) -> AssertSqlSafe<String>`: the statement with its `?` placeholders as the
//!   driver wants them;
//! - `IDS_IN`: `(...)`, a subquery of the text values of a JSON array bound as one parameter;
//! - `METRIC_USERS`, `BEHAVIOR_USERS`: who uses a metric or a behaviour (`(kind, name)` rows);
//! - `RESULT_BEHAVIORS`: the distinct behaviour ids of a run's results up to a position;
//! - `FOR_UPDATE`: what ends a read that a write in the same transaction depends on;
//! - `POSITIONS_IN`: `(...)`, a subquery of the integers of a JSON array bound as one parameter;
//! - `SKIP_LOCKED`: what ends the read of free items when claiming, so concurrent claims skip
//!   each other's rows instead of waiting;
//! - `SHARED`: whether several processes may use one database;
//! - `GREATEST`: the function giving the larger of two values;
//! - `XACT_LOCK`: a statement taking a lock (keyed by one text bind) held until the transaction
//!   ends, when the writer is not already alone;
//! - `fn is_name_clash(&dyn DatabaseError) -> bool`: a unique violation on a `name` column.
//!
//! SQL is assembled from table descriptors and fixed fragments only; input always goes in binds.

/// Failures of the driver keep their source; the store adds what it was doing where it knows.
impl From<sqlx::Error> for crate::error::Error {
    fn from(e: sqlx::Error) -> Self {
        crate::error::Error::storage("database call failed", e)
    }
}

/// Implements [`Store`](super::Store) for `$store` (see the module docs).
macro_rules! sql_store {
    (
        store: $store:ident,
        import: $import:ident,
        db: $db:ty,
        connection: $conn:ty,
        row: $row:ty,
        arguments: $args:ty,
        dialect: $d:ident $(,)?
    ) => {
        use std::borrow::Cow;
        use std::collections::{HashMap, HashSet};

        use async_trait::async_trait;
        use sqlx::error::ErrorKind;
        use sqlx::{AssertSqlSafe, QueryBuilder, Row};
        use uuid::Uuid;

        use $crate::domain::{
            Behavior, Endpoint, Metric, Page, PageRequest, Ref, RepetitionCount, ResultStatus,
            RunFilter, RunStatus, Test, TestResult, TestRun, TestSet,
        };
        use $crate::error::{Error, Result};
        use $crate::store::records::{
            BEHAVIORS, Bind, Condition, MAX_BINDS_PER_STATEMENT, MAX_PAGE_BYTES, METRICS, Named,
            Stored, TEST_RUNS, TEST_SETS, TESTS, Table, power_of_two_chunks, text,
        };
        use $crate::store::{
            Change, ClaimRequest, Completed, Completion, Extent, Fold, ImportInto, LatestRun,
            Store, SuiteWrites, TestImport, WorkSource, Writes,
        };

        impl $store {
            /// A reader connection.
            async fn read(&self) -> Result<sqlx::pool::PoolConnection<$db>> {
                Ok(self.reader.acquire().await?)
            }

            /// Count, last position, tests and behaviours of the rows of one parent: `counting`
            /// answers `(COUNT(*), MAX(seq), distinct tests)` for the parent id, `behaviors` the
            /// distinct behaviour ids for the parent id and the last position. One read
            /// transaction, so they agree.
            async fn extent(
                &self,
                counting: &str,
                behaviors: &str,
                parent: Uuid,
            ) -> Result<Extent> {
                let mut tx = self.reader.begin().await?;
                let (count, last, tests): (i64, Option<i64>, i64) =
                    sqlx::query_as($d::sql(counting.to_string()))
                        .bind(parent.to_string())
                        .fetch_one(&mut *tx)
                        .await?;
                let ids: Vec<String> = sqlx::query_scalar($d::sql(behaviors.to_string()))
                    .bind(parent.to_string())
                    .bind(last.unwrap_or(0))
                    .fetch_all(&mut *tx)
                    .await?;
                tx.commit().await?;
                let mut behavior_ids = ids
                    .iter()
                    .map(|id| parse_id(id))
                    .collect::<Result<Vec<_>>>()?;
                behavior_ids.sort_unstable();
                Ok(Extent {
                    count: u32::try_from(count).unwrap_or(u32::MAX),
                    tests: u32::try_from(tests).unwrap_or(u32::MAX),
                    last,
                    behavior_ids,
                })
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
                let current = fetch_ref::<T>(&mut tx, reference, $d::FOR_UPDATE).await?;
                let record = change(current)?;
                require_all(&mut tx, METRICS, None, record.metric_ids()).await?;
                update_record(&mut tx, &record).await?;
                tx.commit().await?;
                Ok(record)
            }

            /// One record by a unique column; `None` when there is none.
            async fn find<T: Stored>(&self, column: &str, value: String) -> Result<Option<T>> {
                let mut conn = self.read().await?;
                let found =
                    fetch_where::<T>(&mut conn, &format!("t.{column} = ?"), vec![value]).await?;
                Ok(found.into_iter().next())
            }

            /// One catalogue record by id or name.
            async fn get<T: Named>(&self, reference: &Ref) -> Result<T> {
                let mut conn = self.read().await?;
                fetch_ref(&mut conn, reference, "").await
            }

            /// Records by id, in the order given, each once; unknown ids are left out.
            async fn get_many<T: Stored>(&self, ids: &[Uuid]) -> Result<Vec<T>> {
                let mut conn = self.read().await?;
                let records = fetch_where::<T>(
                    &mut conn,
                    &format!("t.id IN {}", $d::IDS_IN),
                    vec![serde_json::to_string(ids)?],
                )
                .await?;
                let mut by_id: HashMap<Uuid, T> =
                    records.into_iter().map(|r| (r.id(), r)).collect();
                Ok(ids.iter().filter_map(|id| by_id.remove(id)).collect())
            }

            /// A page of records matching `filters` (column = value), oldest first or newest first.
            async fn page<T: Stored>(
                &self,
                filters: &[Condition],
                page: PageRequest,
                newest_first: bool,
            ) -> Result<Page<T>> {
                let size = page.size as usize;
                // One row more than asked tells whether there is a next page.
                let mut rows = self
                    .after_sized::<T>(
                        filters,
                        page.after,
                        page.size.saturating_add(1),
                        newest_first,
                    )
                    .await?;
                // A page ends early rather than outgrow a response message; it always holds
                // one record, which fits alone (see `crate::domain::MAX_STORED_OUTPUT_BYTES`).
                let mut bytes = 0;
                let fitting = rows
                    .iter()
                    .take_while(|(_, _, len)| {
                        bytes += len;
                        bytes <= MAX_PAGE_BYTES
                    })
                    .count()
                    .max(1);
                let more = rows.len() > size.min(fitting);
                rows.truncate(size.min(fitting));
                let next = if more {
                    rows.last().map(|(seq, _, _)| *seq)
                } else {
                    None
                };
                Ok(Page {
                    items: rows.into_iter().map(|(_, record, _)| record).collect(),
                    next,
                })
            }

            /// Up to `limit` records matching every one of `filters` past the cursor `after`, each with its `seq`
            /// (the cursor to continue from).
            async fn after<T: Stored>(
                &self,
                filters: &[Condition],
                after: Option<i64>,
                limit: u32,
                newest_first: bool,
            ) -> Result<Vec<(i64, T)>> {
                let rows = self
                    .after_sized(filters, after, limit, newest_first)
                    .await?;
                Ok(rows
                    .into_iter()
                    .map(|(seq, record, _)| (seq, record))
                    .collect())
            }

            /// [`after`](Self::after), each record with the size of its stored form in bytes.
            async fn after_sized<T: Stored>(
                &self,
                filters: &[Condition],
                after: Option<i64>,
                limit: u32,
                newest_first: bool,
            ) -> Result<Vec<(i64, T, usize)>> {
                let (op, order, start) = if newest_first {
                    ("<", "DESC", i64::MAX)
                } else {
                    (">", "ASC", 0)
                };
                let (mut condition, mut binds) = Condition::all(filters);
                condition.push_str(&format!("t.seq {op} ? ORDER BY t.seq {order} LIMIT ?"));
                binds.push(Bind::Int(Some(after.unwrap_or(start))));
                binds.push(Bind::Int(Some(i64::from(limit))));

                let mut conn = self.read().await?;
                let rows = bind_all(sqlx::query(select::<T>(&condition)), binds)
                    .fetch_all(&mut *conn)
                    .await?;
                rows.iter()
                    .map(|row| {
                        let size = row.try_get::<&str, _>("body")?.len();
                        Ok((row.try_get::<i64, _>("seq")?, decode(row)?, size))
                    })
                    .collect()
            }

            /// Deletes a catalogue record unless `users` (a query binding the id once as `?1` and
            /// answering `(kind, name)` rows) finds something that still needs it.
            async fn delete<T: Named>(&self, id: Uuid, users: Option<&'static str>) -> Result<()> {
                let table = T::TABLE;
                let id_text = id.to_string();
                let mut tx = self.writer.begin().await?;
                let name: Option<String> = sqlx::query_scalar($d::sql(format!(
                    "SELECT name FROM {} WHERE id = ?",
                    table.name
                )))
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
                sqlx::query($d::sql(format!("DELETE FROM {} WHERE id = ?", table.name)))
                    .bind(&id_text)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            /// An empty page of children is either the end of a list or a parent that does not exist;
            /// tells them apart so that an unknown parent is `NotFound`.
            async fn require_parent<T>(
                &self,
                page: Page<T>,
                parent: Table,
                id: Uuid,
            ) -> Result<Page<T>> {
                if page.items.is_empty() {
                    let mut conn = self.read().await?;
                    require_all(&mut conn, parent, None, &[id]).await?;
                }
                Ok(page)
            }
        }

        /// An import holding the writer's transaction: SQLite has one writer, so other writes wait for
        /// the import to end (the catalogue bounds how long a client may pause between pieces).
        struct $import {
            tx: sqlx::Transaction<'static, $db>,
            test_set_id: Uuid,
        }

        #[async_trait]
        impl TestImport for $import {
            async fn add(&mut self, tests: &[Test]) -> Result<()> {
                debug_assert!(tests.iter().all(|t| t.test_set_id == self.test_set_id));
                insert_tests(&mut self.tx, tests).await
            }

            async fn commit(mut self: Box<Self>) -> Result<TestSet> {
                let reference = Ref::Id(self.test_set_id);
                let test_set = fetch_ref::<TestSet>(&mut self.tx, &reference, "").await?;
                self.tx.commit().await?;
                Ok(test_set)
            }
        }

        fn bind_all<'q>(
            mut query: sqlx::query::Query<'q, $db, $args>,
            binds: Vec<Bind>,
        ) -> sqlx::query::Query<'q, $db, $args> {
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
            $d::sql(format!(
                "SELECT t.seq AS seq, t.body AS body, {} AS extra FROM {} t WHERE {condition}",
                table.extra, table.name
            ))
        }

        fn decode<T: Stored>(row: &$row) -> Result<T> {
            let body: &str = row.try_get("body")?;
            let extra: i64 = row.try_get("extra")?;
            Ok(serde_json::from_str::<T>(body)?.with_extra(extra))
        }

        /// Records matching `condition` (over the row `t`, with `?` for `binds`), in the order it gives.
        async fn fetch_where<T: Stored>(
            conn: &mut $conn,
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
        /// `lock` ends the query (`$d::FOR_UPDATE` in a read-change-write, else empty).
        async fn fetch_ref<T: Named>(conn: &mut $conn, reference: &Ref, lock: &str) -> Result<T> {
            let (column, value) = match reference {
                Ref::Id(id) => ("id", id.to_string()),
                Ref::Name(name) => ("name", name.clone()),
            };
            let found =
                fetch_where::<T>(conn, &format!("t.{column} = ?{lock}"), vec![value]).await?;
            found
                .into_iter()
                .next()
                .ok_or_else(|| Error::not_found(T::TABLE.kind, reference))
        }

        /// A run, locked for the rest of the transaction; `NotFound` when unknown.
        async fn fetch_run(conn: &mut $conn, run_id: Uuid) -> Result<TestRun> {
            fetch_where::<TestRun>(
                conn,
                &format!("t.id = ?{}", $d::FOR_UPDATE),
                vec![run_id.to_string()],
            )
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Error::not_found(TEST_RUNS.kind, run_id))
        }

        /// Records matching `condition` (over the row `t`), each with its position.
        async fn fetch_positioned<T: Stored>(
            conn: &mut $conn,
            condition: &str,
            binds: Vec<Bind>,
        ) -> Result<Vec<(i64, T)>> {
            let rows = bind_all(sqlx::query(select::<T>(condition)), binds)
                .fetch_all(conn)
                .await?;
            rows.iter()
                .map(|row| Ok((row.try_get::<i64, _>("seq")?, decode(row)?)))
                .collect()
        }

        /// Counts the tests of a repeated run that has just ended by their repetitions (see
        /// [`RunSummary::count_tests`](crate::domain::RunSummary::count_tests)), in the
        /// transaction that ends it, so that the results of every batch and replica are counted.
        /// Nothing to do while it runs, or when each test ran once (the running tally counted
        /// its tests already).
        async fn count_repetitions(conn: &mut $conn, run: &mut TestRun) -> Result<()> {
            let repeats = run.repeats();
            let Some(summary) = run.summary.as_mut() else {
                return Ok(());
            };
            if run.status == RunStatus::Running || repeats == 1 {
                return Ok(());
            }
            // One row per shape of test (passed, errored, stored repetitions): few rows,
            // however many tests the run has.
            let rows: Vec<(i64, i64, i64, i64)> = sqlx::query_as($d::sql(
                "SELECT passed, errored, results, COUNT(*) FROM (SELECT \
                 SUM(CASE WHEN status = ? THEN 1 ELSE 0 END) AS passed, \
                 SUM(CASE WHEN status = ? THEN 1 ELSE 0 END) AS errored, \
                 COUNT(*) AS results \
                 FROM test_results WHERE run_id = ? GROUP BY test_id) g \
                 GROUP BY passed, errored, results"
                    .into(),
            ))
            .bind(ResultStatus::Passed.as_str())
            .bind(ResultStatus::Error.as_str())
            .bind(run.id.to_string())
            .fetch_all(&mut *conn)
            .await?;
            let number = |n: i64| u32::try_from(n).unwrap_or(u32::MAX);
            let counts: Vec<RepetitionCount> = rows
                .into_iter()
                .map(|(passed, errored, results, tests)| RepetitionCount {
                    passed: number(passed),
                    errored: number(errored),
                    results: number(results),
                    tests: number(tests),
                })
                .collect();
            summary.count_tests(&counts, repeats);
            Ok(())
        }

        /// A storage error saying what the database `cannot` do, and why when the backend says
        /// which fault it is (corrupt, read-only, full).
        fn fault(cannot: &str, e: sqlx::Error) -> Error {
            let why = e
                .as_database_error()
                .and_then(|db| $d::fault_of(db))
                .map(|why| format!(" ({why})"))
                .unwrap_or_default();
            Error::storage(format!("the database {cannot}{why}"), e)
        }

        /// A stored id.
        fn parse_id(id: &str) -> Result<Uuid> {
            Uuid::parse_str(id).map_err(|e| Error::internal_from(format!("stored id {id:?}"), e))
        }

        /// Appends tests of one test set after checking that their behaviours exist.
        async fn insert_tests(conn: &mut $conn, tests: &[Test]) -> Result<()> {
            let mut behaviors: Vec<Uuid> = tests.iter().filter_map(|t| t.behavior_id).collect();
            behaviors.sort_unstable();
            behaviors.dedup();
            require_all(conn, BEHAVIORS, None, &behaviors).await?;
            insert_records(conn, tests).await
        }

        /// Inserts records with multi-row statements (thousands of tests in a few statements).
        async fn insert_records<T: Stored>(conn: &mut $conn, records: &[T]) -> Result<()> {
            for chunk in power_of_two_chunks(records, rows_per_insert::<T>()) {
                if let Err(e) = insert_statement(chunk, "")?.build().execute(&mut *conn).await {
                    return Err(conflict(e, T::TABLE, chunk));
                }
            }
            Ok(())
        }

        /// [`insert_records`], answering the `seq` of the last record inserted (`None`: none
        /// was) from the inserts themselves: no statement more to ask for it.
        async fn insert_records_last_seq<T: Stored>(
            conn: &mut $conn,
            records: &[T],
        ) -> Result<Option<i64>> {
            let mut last = None;
            for chunk in power_of_two_chunks(records, rows_per_insert::<T>()) {
                let seqs: Vec<i64> = insert_statement(chunk, " RETURNING seq")?
                    .build_query_scalar()
                    .fetch_all(&mut *conn)
                    .await
                    .map_err(|e| conflict(e, T::TABLE, chunk))?;
                last = last.max(seqs.into_iter().max());
            }
            Ok(last)
        }

        /// Most rows of one insert of `T`, within the binds a statement may take.
        fn rows_per_insert<T: Stored>() -> usize {
            MAX_BINDS_PER_STATEMENT / (T::TABLE.columns.len() + 1)
        }

        /// One multi-row insert of `records`, ended by `tail`.
        fn insert_statement<T: Stored>(records: &[T], tail: &str) -> Result<QueryBuilder<$db>> {
            let table = T::TABLE;
            let rows = records
                .iter()
                .map(|record| Ok((record.keys(), serde_json::to_string(record)?)))
                .collect::<Result<Vec<_>>>()?;
            let mut query = QueryBuilder::<$db>::new(format!(
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
            query.push(tail);
            Ok(query)
        }

        /// Inserts and replaces catalogue records of one kind, then checks the metrics they name.
        async fn write_named<T: Named>(conn: &mut $conn, writes: &Writes<T>) -> Result<()> {
            insert_records(conn, &writes.create).await?;
            for record in &writes.update {
                update_record(conn, record).await?;
            }
            let mut metrics: Vec<Uuid> = writes
                .create
                .iter()
                .chain(&writes.update)
                .flat_map(|r| r.metric_ids().iter().copied())
                .collect();
            metrics.sort_unstable();
            metrics.dedup();
            require_all(conn, METRICS, None, &metrics).await
        }

        /// Replaces a record's key columns and body; `NotFound` when its id is unknown. The id
        /// itself is not set: an id in the SET list makes SQLite check every row whose foreign key
        /// names it (every result of a run), on each update.
        async fn update_record<T: Stored>(conn: &mut $conn, record: &T) -> Result<()> {
            let table = T::TABLE;
            debug_assert_eq!(table.columns.first(), Some(&"id"));
            let assignments = table.columns[1..]
                .iter()
                .map(|column| format!("{column} = ?"))
                .collect::<Vec<_>>()
                .join(", ");
            let mut binds = record.keys();
            binds.remove(0);
            binds.push(text(serde_json::to_string(record)?));
            binds.push(text(record.id()));
            let done = bind_all(
                sqlx::query($d::sql(format!(
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

        /// Turns a unique violation into `AlreadyExists` naming the taken name (or id); with several
        /// records, SQLite does not say which one clashed, so the first is named.
        fn conflict<T: Stored>(e: sqlx::Error, table: Table, records: &[T]) -> Error {
            if let sqlx::Error::Database(db) = &e
                && db.kind() == ErrorKind::UniqueViolation
                && let Some(record) = records.first()
            {
                let name = match record.name() {
                    Some(name) if $d::is_name_clash(&**db) => name.to_string(),
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
            conn: &mut $conn,
            table: Table,
            scope: Option<(&str, String)>,
            ids: &[Uuid],
        ) -> Result<()> {
            if ids.is_empty() {
                return Ok(());
            }
            let mut binds = vec![Bind::Text(Some(serde_json::to_string(ids)?))];
            let mut text = format!("SELECT id FROM {} WHERE id IN {}", table.name, $d::IDS_IN);
            if let Some((column, value)) = scope {
                text.push_str(&format!(" AND {column} = ?"));
                binds.push(Bind::Text(Some(value)));
            }
            let rows = bind_all(sqlx::query($d::sql(text)), binds)
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

        #[async_trait]
        impl Store for $store {
            async fn ping(&self) -> Result<()> {
                // A real read, not `SELECT 1`: a file overwritten with garbage fails it.
                sqlx::query("SELECT COUNT(*) FROM health_probe")
                    .execute(&self.reader)
                    .await
                    .map_err(|e| fault("cannot be read", e))?;
                // A write, when the writer is free: while it is busy, writes are going on, and
                // the ones that fail are reported by those who made them. Waiting for it would
                // make a long import look like a database that does not answer.
                let Some(mut writer) = self.writer.try_acquire() else {
                    return Ok(());
                };
                sqlx::query($d::sql(
                    "INSERT INTO health_probe (id, checked_at) VALUES (1, ?) \
                     ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at"
                        .to_string(),
                ))
                .bind(chrono::Utc::now().timestamp_millis())
                .execute(&mut *writer)
                .await
                .map_err(|e| fault("cannot be written", e))?;
                Ok(())
            }

            fn is_shared(&self) -> bool {
                $d::SHARED
            }

            async fn reserve_call(
                &self,
                endpoint_id: Uuid,
                now_us: i64,
                interval_us: i64,
            ) -> Result<i64> {
                let next: i64 = sqlx::query_scalar($d::sql(format!(
                    "INSERT INTO endpoint_pace (endpoint_id, next_us) VALUES (?, ? + ?) \
                     ON CONFLICT (endpoint_id) DO UPDATE \
                     SET next_us = {}(endpoint_pace.next_us, ?) + ? RETURNING next_us",
                    $d::GREATEST
                )))
                .bind(endpoint_id.to_string())
                .bind(now_us)
                .bind(interval_us)
                .bind(now_us)
                .bind(interval_us)
                .fetch_one(&self.writer)
                .await?;
                Ok(next - interval_us)
            }

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
                    &format!("t.id IN {ids} OR t.name IN {ids}", ids = $d::IDS_IN),
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

            async fn update_metric(
                &self,
                metric: &Ref,
                change: Change<'_, Metric>,
            ) -> Result<Metric> {
                self.update(metric, change).await
            }

            async fn delete_metric(&self, id: Uuid) -> Result<()> {
                self.delete::<Metric>(id, Some($d::METRIC_USERS)).await
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
                self.delete::<Behavior>(id, Some($d::BEHAVIOR_USERS)).await
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
                let mut test_set = fetch_where::<TestSet>(
                    &mut tx,
                    &format!("t.id = ?{}", $d::FOR_UPDATE),
                    vec![test_set_id.to_string()],
                )
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
                    ImportInto::Replace(id) => {
                        require_all(&mut tx, TEST_SETS, None, &[id]).await?;
                        sqlx::query($d::sql("DELETE FROM tests WHERE test_set_id = ?".into()))
                            .bind(id.to_string())
                            .execute(&mut *tx)
                            .await?;
                        id
                    }
                    ImportInto::New(test_set) => {
                        require_all(&mut tx, METRICS, None, &test_set.metric_ids).await?;
                        insert_records(&mut tx, std::slice::from_ref(&test_set)).await?;
                        test_set.id
                    }
                };
                Ok(Box::new($import { tx, test_set_id }))
            }

            async fn apply_suite(&self, writes: &SuiteWrites) -> Result<()> {
                let mut tx = self.writer.begin().await?;
                if !writes.removed_tests.is_empty() {
                    sqlx::query($d::sql(format!(
                        "DELETE FROM tests WHERE id IN {}",
                        $d::IDS_IN
                    )))
                    .bind(serde_json::to_string(&writes.removed_tests)?)
                    .execute(&mut *tx)
                    .await?;
                }
                write_named(&mut tx, &writes.endpoints).await?;
                write_named(&mut tx, &writes.metrics).await?;
                write_named(&mut tx, &writes.behaviors).await?;
                write_named(&mut tx, &writes.test_sets).await?;
                let tests = &writes.tests;
                insert_tests(&mut tx, &tests.create).await?;
                let mut behaviors: Vec<Uuid> =
                    tests.update.iter().filter_map(|t| t.behavior_id).collect();
                behaviors.sort_unstable();
                behaviors.dedup();
                require_all(&mut tx, BEHAVIORS, None, &behaviors).await?;
                for test in &tests.update {
                    update_record(&mut tx, test).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn list_tests(&self, test_set_id: Uuid, page: PageRequest) -> Result<Page<Test>> {
                let tests = self
                    .page(&[Condition::eq("test_set_id", test_set_id)], page, false)
                    .await?;
                self.require_parent(tests, TEST_SETS, test_set_id).await
            }

            async fn test_set_extent(&self, test_set_id: Uuid) -> Result<Extent> {
                self.extent(
                    "SELECT COUNT(*), MAX(seq), COUNT(*) FROM tests WHERE test_set_id = ?",
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
                let done = sqlx::query($d::sql(format!(
                    "DELETE FROM tests WHERE test_set_id = ? AND id IN {}",
                    $d::IDS_IN
                )))
                .bind(test_set_id.to_string())
                .bind(serde_json::to_string(test_ids)?)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(u32::try_from(done.rows_affected()).unwrap_or(u32::MAX))
            }

            async fn create_run(&self, run: &TestRun, work: WorkSource) -> Result<()> {
                // Rescores call no endpoint, so their items count against no endpoint's limit.
                let endpoint = (run.kind != $crate::domain::RunKind::Rescore)
                    .then(|| run.endpoint_id.to_string());
                let mut tx = self.writer.begin().await?;
                insert_records(&mut tx, std::slice::from_ref(run)).await?;
                // What to select each item's position from, and its binds: those of a `WITH`
                // before the insert, then those of the position and of the rows it is read from.
                let (with, column, from, before, binds) = match work {
                    // The repetitions 0..repeats of every test, at `seq * repeats + n`.
                    WorkSource::Tests {
                        test_set_id,
                        through,
                        repeats,
                    } => {
                        let repeats = Bind::Int(Some(i64::from(repeats.max(1))));
                        (
                            "WITH RECURSIVE r (n) AS \
                             (SELECT 0 UNION ALL SELECT n + 1 FROM r WHERE n + 1 < ?) ",
                            "t.seq * ? + r.n",
                            "tests t, r WHERE t.test_set_id = ? AND t.seq <= ?".to_string(),
                            vec![repeats.clone()],
                            vec![repeats, text(test_set_id), Bind::Int(Some(through))],
                        )
                    }
                    WorkSource::Results { run_id, through } => (
                        "",
                        "seq",
                        "test_results WHERE run_id = ? AND seq <= ?".to_string(),
                        vec![],
                        vec![text(run_id), Bind::Int(Some(through))],
                    ),
                    // `p.*`: the subquery's one column, whatever the dialect names it.
                    WorkSource::Positions(positions) => (
                        "",
                        "p.*",
                        format!("{} p", $d::POSITIONS_IN),
                        vec![],
                        vec![text(serde_json::to_string(&positions)?)],
                    ),
                };
                let mut all = before;
                all.extend([text(run.id), Bind::Text(endpoint)]);
                all.extend(binds);
                bind_all(
                    sqlx::query($d::sql(format!(
                        "{with}INSERT INTO run_work (run_id, endpoint_id, position) \
                         SELECT ?, ?, {column} FROM {from}"
                    ))),
                    all,
                )
                .execute(&mut *tx)
                .await?;
                for (key, value) in &run.labels {
                    sqlx::query($d::sql(
                        "INSERT INTO run_labels (run_id, key, value) VALUES (?, ?, ?)".into(),
                    ))
                    .bind(run.id.to_string())
                    .bind(key)
                    .bind(value)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn update_run(
                &self,
                run_id: Uuid,
                change: Change<'_, TestRun>,
            ) -> Result<TestRun> {
                let mut tx = self.writer.begin().await?;
                let before = fetch_run(&mut tx, run_id).await?;
                let was_running = before.status == RunStatus::Running;
                let mut run = change(before)?;
                if was_running {
                    count_repetitions(&mut tx, &mut run).await?;
                }
                update_record(&mut tx, &run).await?;
                if run.status != RunStatus::Running {
                    sqlx::query($d::sql("DELETE FROM run_work WHERE run_id = ?".into()))
                        .bind(run_id.to_string())
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(run)
            }

            async fn get_run(&self, id: Uuid) -> Result<TestRun> {
                self.find("id", id.to_string())
                    .await?
                    .ok_or_else(|| Error::not_found(TEST_RUNS.kind, id))
            }

            async fn list_runs(
                &self,
                filter: &RunFilter,
                page: PageRequest,
            ) -> Result<Page<TestRun>> {
                let mut filters: Vec<Condition> = [
                    ("test_set_id", filter.test_set_id),
                    ("endpoint_id", filter.endpoint_id),
                ]
                .into_iter()
                .filter_map(|(column, id)| Some(Condition::eq(column, id?)))
                .collect();
                filters.extend(Condition::labels(&filter.labels));
                self.page(&filters, page, true).await
            }

            async fn latest_run(&self, query: &LatestRun<'_>) -> Result<Option<TestRun>> {
                let mut filters = vec![
                    Condition::eq("test_set_id", query.test_set_id),
                    Condition::eq("endpoint_id", query.endpoint_id),
                    Condition::any("status", query.statuses.iter().map(|s| s.as_str())),
                ];
                if let Some(before) = query.finished_before {
                    filters.push(Condition::finished_before(before));
                }
                filters.extend(Condition::labels(query.labels));
                let (mut sql, binds) = Condition::all(&filters);
                sql.push_str(
                    "t.finished_at IS NOT NULL ORDER BY t.finished_at DESC, t.seq DESC LIMIT 1",
                );
                let mut conn = self.read().await?;
                let rows = bind_all(sqlx::query(select::<TestRun>(&sql)), binds)
                    .fetch_all(&mut *conn)
                    .await?;
                rows.first().map(decode).transpose()
            }

            async fn claimable_runs(&self, now_ms: i64) -> Result<Vec<Uuid>> {
                let mut conn = self.read().await?;
                let ids: Vec<String> = sqlx::query_scalar($d::sql(
                    "SELECT r.id FROM test_runs r WHERE r.status = ? AND EXISTS \
                     (SELECT 1 FROM run_work w WHERE w.run_id = r.id \
                      AND (w.owner IS NULL OR w.lease_until < ?)) ORDER BY r.seq"
                        .into(),
                ))
                .bind(RunStatus::Running.as_str())
                .bind(now_ms)
                .fetch_all(&mut *conn)
                .await?;
                ids.iter().map(|id| parse_id(id)).collect()
            }

            async fn claim_work(&self, request: &ClaimRequest<'_>) -> Result<Option<Vec<i64>>> {
                let run_id = request.run_id.to_string();
                let claim = |limit: i64| {
                    sqlx::query_scalar::<_, i64>($d::sql(format!(
                        "UPDATE run_work SET owner = ?, lease_until = ? \
                         WHERE run_id = ? AND position IN (SELECT position FROM run_work \
                           WHERE run_id = ? AND (owner IS NULL OR lease_until < ?) \
                           ORDER BY position LIMIT ?{}) RETURNING position",
                        $d::SKIP_LOCKED
                    )))
                    .bind(request.owner)
                    .bind(request.lease_until_ms)
                    .bind(run_id.clone())
                    .bind(run_id.clone())
                    .bind(request.now_ms)
                    .bind(limit)
                };
                // Without a cap the claim is one statement, atomic on its own. Nor are caps
                // counted on a database one process uses: its own concurrency bounds all that
                // is in flight (see `Store::claim_work`).
                if !$d::SHARED || (request.run_cap.is_none() && request.endpoint_cap.is_none()) {
                    let mut positions = claim(i64::from(request.limit))
                        .fetch_all(&self.writer)
                        .await?;
                    positions.sort_unstable();
                    return Ok(Some(positions));
                }
                let mut tx = self.writer.begin().await?;
                let mut limit = i64::from(request.limit);
                // Claims under one cap take turns: each counts the others' (see `ClaimRequest`).
                if let Some(lock) = $d::XACT_LOCK {
                    let key = match request.endpoint_cap {
                        Some((endpoint, _)) => endpoint.to_string(),
                        None if request.run_cap.is_some() => run_id.clone(),
                        None => String::new(),
                    };
                    if !key.is_empty() {
                        sqlx::query(lock).bind(key).execute(&mut *tx).await?;
                    }
                }
                let caps = [
                    request.run_cap.map(|cap| ("run_id", run_id.clone(), cap)),
                    request
                        .endpoint_cap
                        .map(|(endpoint, cap)| ("endpoint_id", endpoint.to_string(), cap)),
                ];
                for (column, value, cap) in caps.into_iter().flatten() {
                    let (others, claimed): (i64, i64) = sqlx::query_as($d::sql(format!(
                        "SELECT COALESCE(SUM(CASE WHEN owner <> ? THEN 1 ELSE 0 END), 0), \
                         COUNT(*) FROM run_work WHERE {column} = ? \
                         AND owner IS NOT NULL AND lease_until >= ?"
                    )))
                    .bind(request.owner)
                    .bind(value)
                    .bind(request.now_ms)
                    .fetch_one(&mut *tx)
                    .await?;
                    if others > 0 {
                        limit = limit.min(i64::from(cap) - claimed);
                    }
                }
                if limit <= 0 {
                    return Ok(None);
                }
                let mut positions = claim(limit).fetch_all(&mut *tx).await?;
                tx.commit().await?;
                positions.sort_unstable();
                Ok(Some(positions))
            }

            async fn renew_claims(&self, owner: &str, lease_until_ms: i64) -> Result<()> {
                sqlx::query($d::sql(
                    "UPDATE run_work SET lease_until = ? WHERE owner = ?".into(),
                ))
                .bind(lease_until_ms)
                .bind(owner)
                .execute(&self.writer)
                .await?;
                Ok(())
            }

            async fn release_claims(&self, owner: &str) -> Result<()> {
                sqlx::query($d::sql(
                    "UPDATE run_work SET owner = NULL, lease_until = 0 WHERE owner = ?".into(),
                ))
                .bind(owner)
                .execute(&self.writer)
                .await?;
                Ok(())
            }

            async fn tests_after(
                &self,
                test_set_id: Uuid,
                after: Option<i64>,
                limit: u32,
            ) -> Result<Vec<(i64, Test)>> {
                self.after(
                    &[Condition::eq("test_set_id", test_set_id)],
                    after,
                    limit,
                    false,
                )
                .await
            }

            async fn tests_at(
                &self,
                test_set_id: Uuid,
                positions: &[i64],
            ) -> Result<Vec<(i64, Test)>> {
                let mut conn = self.read().await?;
                fetch_positioned(
                    &mut conn,
                    &format!(
                        "t.test_set_id = ? AND t.seq IN {} ORDER BY t.seq",
                        $d::POSITIONS_IN
                    ),
                    vec![text(test_set_id), text(serde_json::to_string(positions)?)],
                )
                .await
            }

            async fn results_at(
                &self,
                run_id: Uuid,
                positions: &[i64],
            ) -> Result<Vec<(i64, TestResult)>> {
                let mut conn = self.read().await?;
                fetch_positioned(
                    &mut conn,
                    &format!(
                        "t.run_id = ? AND t.seq IN {} ORDER BY t.seq",
                        $d::POSITIONS_IN
                    ),
                    vec![text(run_id), text(serde_json::to_string(positions)?)],
                )
                .await
            }

            async fn complete_work(
                &self,
                done: Completion<'_>,
                fold: Fold<'_>,
            ) -> Result<Completed> {
                let run_id = done.run_id.to_string();
                let mut tx = self.writer.begin().await?;
                // The lock on the run orders its writers: results get their positions in the
                // order they become visible, so a follower reading past its cursor misses none.
                let run = fetch_run(&mut tx, done.run_id).await?;
                if run.status != RunStatus::Running {
                    return Ok(Completed {
                        run,
                        results: Vec::new(),
                        after: None,
                        last: None,
                    });
                }
                let finished: Vec<i64> = done
                    .dropped
                    .iter()
                    .copied()
                    .chain(done.results.iter().map(|(position, _)| *position))
                    .collect();
                let held: HashSet<i64> = sqlx::query_scalar($d::sql(format!(
                    "DELETE FROM run_work WHERE run_id = ? AND owner = ? AND position IN {} \
                     RETURNING position",
                    $d::POSITIONS_IN
                )))
                .bind(&run_id)
                .bind(done.owner)
                .bind(serde_json::to_string(&finished)?)
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .collect();
                // Items whose claim ended and went to another replica are that replica's to store.
                let results: Vec<TestResult> = done
                    .results
                    .into_iter()
                    .filter(|(position, _)| held.contains(position))
                    .map(|(_, result)| result)
                    .collect();
                // Read once the run is locked (on PostgreSQL, a statement sees what was committed
                // when it began): results stored meanwhile by other replicas are counted.
                // Not MAX(seq): SQLite would read every entry of the run in the index. Whether
                // items are left is asked in the same statement, as each costs a round trip to
                // the database (the inserts below change no item).
                let (after, left): (Option<i64>, i64) = sqlx::query_as($d::sql(
                    "SELECT (SELECT seq FROM test_results WHERE run_id = ? \
                     ORDER BY seq DESC LIMIT 1), \
                     (SELECT COUNT(*) FROM (SELECT 1 FROM run_work WHERE run_id = ? LIMIT 1) w)"
                        .into(),
                ))
                .bind(&run_id)
                .bind(&run_id)
                .fetch_one(&mut *tx)
                .await?;
                // `seq` is the identity, and the rows are inserted in order.
                let last = insert_records_last_seq(&mut tx, &results).await?;
                let mut run = fold(run, &results, left > 0);
                count_repetitions(&mut tx, &mut run).await?;
                update_record(&mut tx, &run).await?;
                tx.commit().await?;
                Ok(Completed {
                    run,
                    results,
                    after,
                    last,
                })
            }

            async fn list_results(
                &self,
                run_id: Uuid,
                page: PageRequest,
            ) -> Result<Page<TestResult>> {
                let results = self
                    .page(&[Condition::eq("run_id", run_id)], page, false)
                    .await?;
                self.require_parent(results, TEST_RUNS, run_id).await
            }

            async fn run_extent(&self, run_id: Uuid) -> Result<Extent> {
                self.extent(
                    "SELECT COUNT(*), MAX(seq), COUNT(DISTINCT test_id) FROM test_results \
                     WHERE run_id = ?",
                    $d::RESULT_BEHAVIORS,
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
                self.after(&[Condition::eq("run_id", run_id)], after, limit, false)
                    .await
            }
        }
    };
}

pub(super) use sql_store;
