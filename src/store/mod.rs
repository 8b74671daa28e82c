//! Persistence behind one trait, [`Store`], so that a backend (SQLite today, PostgreSQL next) can
//! be added without touching the API or the engine. Every backend must pass the contract suite
//! in `tests/store_contract.rs`.

mod postgres;
mod records;
mod sql;
mod sqlite;
mod work;

pub use postgres::PgStore;
pub use sqlite::{SqliteStore, fault_of_error as sqlite_fault};
pub use work::{ClaimRequest, Completed, Completion, Fold, WorkSource};

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use uuid::Uuid;

use crate::domain::{
    Behavior, Endpoint, Labels, Metric, Page, PageRequest, Ref, RunFilter, RunStatus, Test,
    TestResult, TestRun, TestSet, Timestamp,
};
use crate::error::Result;

/// The size of a test set or of a run's results, known before reading them page by page.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Extent {
    /// Number of items.
    pub count: u32,
    /// Number of distinct tests among them (a repeated run's results name each test several
    /// times).
    pub tests: u32,
    /// Position of the last item (`None` when there is none); items added later lie after it.
    pub last: Option<i64>,
    /// The distinct behaviours of the items' tests, sorted.
    pub behavior_ids: Vec<Uuid>,
}

/// Which run [`Store::latest_run`] looks for: of a test set and endpoint, in one of `statuses`,
/// ended before a time when given, carrying every label of `labels`.
#[derive(Clone, Debug)]
pub struct LatestRun<'a> {
    /// The test set run.
    pub test_set_id: Uuid,
    /// The endpoint run against.
    pub endpoint_id: Uuid,
    /// The statuses it may have.
    pub statuses: &'a [RunStatus],
    /// It ended strictly before this time, when given.
    pub finished_before: Option<Timestamp>,
    /// Labels it carries (among others).
    pub labels: &'a Labels,
}

/// How an update turns the stored value of a record into its new value. It runs inside the
/// update's transaction, between the read and the write, so it must not wait on anything.
pub type Change<'a, T> = Box<dyn FnOnce(T) -> Result<T> + Send + 'a>;

/// The test set an import fills.
#[derive(Clone, Debug)]
pub enum ImportInto {
    /// An existing test set, by id: the tests are appended.
    Existing(Uuid),
    /// An existing test set, by id: its tests are removed in the import's transaction, then the
    /// imported ones added (a failed import leaves them).
    Replace(Uuid),
    /// A new test set, created with the tests (its metrics must exist).
    New(TestSet),
}

/// Records of one kind that a suite writes: the new ones and the replaced ones (whole records,
/// ids kept).
#[derive(Clone, Debug)]
pub struct Writes<T> {
    /// Records to insert.
    pub create: Vec<T>,
    /// Records to replace, by id.
    pub update: Vec<T>,
}

impl<T> Default for Writes<T> {
    fn default() -> Self {
        Writes {
            create: Vec::new(),
            update: Vec::new(),
        }
    }
}

impl<T> Writes<T> {
    /// Whether nothing is written.
    pub fn is_empty(&self) -> bool {
        self.create.is_empty() && self.update.is_empty()
    }
}

/// What applying a suite writes, stored by [`Store::apply_suite`] in one transaction.
#[derive(Clone, Debug, Default)]
pub struct SuiteWrites {
    /// Endpoints.
    pub endpoints: Writes<Endpoint>,
    /// Metrics.
    pub metrics: Writes<Metric>,
    /// Behaviours.
    pub behaviors: Writes<Behavior>,
    /// Test sets.
    pub test_sets: Writes<TestSet>,
    /// Tests: new ones are appended to their test set, replaced ones keep their position.
    pub tests: Writes<Test>,
    /// Ids of tests to remove.
    pub removed_tests: Vec<Uuid>,
}

/// An import in progress: one write transaction that tests are added to piece by piece. Nothing
/// of it is visible until [`commit`](Self::commit); dropping it stores nothing.
#[async_trait]
pub trait TestImport: Send {
    /// Appends tests (already validated, of the import's test set) in the order given; a
    /// behaviour that does not exist is `Error::NotFound`.
    async fn add(&mut self, tests: &[Test]) -> Result<()>;
    /// Makes the test set and every test added visible at once; returns the test set with its
    /// `test_count`.
    async fn commit(self: Box<Self>) -> Result<TestSet>;
}

/// Everything Assay persists. Methods that take a [`Ref`] answer `Error::NotFound` naming the
/// reference; methods that write a unique name answer `Error::AlreadyExists`.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Answers when the database can be read and, unless a write is in progress, written:
    /// what health checks ask. The error says which failed, and why when the database says.
    async fn ping(&self) -> Result<()>;
    /// Whether several processes may use this database at once, so that limits must hold across
    /// them.
    fn is_shared(&self) -> bool;
    /// Reserves the moment a call of an endpoint may start, for every process on this database:
    /// the later of `now_us` and `interval_us` after the moment reserved last (Unix
    /// microseconds), so the endpoint's calls are spaced `interval_us` apart.
    async fn reserve_call(&self, endpoint_id: Uuid, now_us: i64, interval_us: i64) -> Result<i64>;

    // ---- metrics
    /// Stores a new metric.
    async fn create_metric(&self, metric: &Metric) -> Result<()>;
    /// One metric by id or name.
    async fn get_metric(&self, metric: &Ref) -> Result<Metric>;
    /// Metrics by reference, in the order given, without repeats; the first unknown reference
    /// fails the whole call.
    async fn resolve_metrics(&self, metrics: &[Ref]) -> Result<Vec<Metric>>;
    /// A page of metrics in creation order.
    async fn list_metrics(&self, page: PageRequest) -> Result<Page<Metric>>;
    /// Reads a metric by id or name, turns it into its new value with `change` and stores that,
    /// all in one transaction (so concurrent updates cannot lose one another's writes);
    /// returns the new value.
    async fn update_metric(&self, metric: &Ref, change: Change<'_, Metric>) -> Result<Metric>;
    /// Deletes a metric; `Error::FailedPrecondition` naming the behaviours and test sets that
    /// still use it.
    async fn delete_metric(&self, id: Uuid) -> Result<()>;

    // ---- behaviours
    /// Stores a new behaviour.
    async fn create_behavior(&self, behavior: &Behavior) -> Result<()>;
    /// One behaviour by id or name.
    async fn get_behavior(&self, behavior: &Ref) -> Result<Behavior>;
    /// Behaviours by id; unknown ids are skipped.
    async fn get_behaviors(&self, ids: &[Uuid]) -> Result<Vec<Behavior>>;
    /// A page of behaviours in creation order.
    async fn list_behaviors(&self, page: PageRequest) -> Result<Page<Behavior>>;
    /// Reads a behavior by id or name, turns it into its new value with `change` and stores that,
    /// all in one transaction (so concurrent updates cannot lose one another's writes);
    /// returns the new value.
    async fn update_behavior(
        &self,
        behavior: &Ref,
        change: Change<'_, Behavior>,
    ) -> Result<Behavior>;
    /// Deletes a behaviour; `Error::FailedPrecondition` naming the test sets whose tests use it.
    async fn delete_behavior(&self, id: Uuid) -> Result<()>;

    // ---- endpoints
    /// Stores a new endpoint.
    async fn create_endpoint(&self, endpoint: &Endpoint) -> Result<()>;
    /// One endpoint by id or name (secrets in clear: callers mask).
    async fn get_endpoint(&self, endpoint: &Ref) -> Result<Endpoint>;
    /// A page of endpoints in creation order.
    async fn list_endpoints(&self, page: PageRequest) -> Result<Page<Endpoint>>;
    /// Reads a endpoint by id or name, turns it into its new value with `change` and stores that,
    /// all in one transaction (so concurrent updates cannot lose one another's writes);
    /// returns the new value.
    async fn update_endpoint(
        &self,
        endpoint: &Ref,
        change: Change<'_, Endpoint>,
    ) -> Result<Endpoint>;
    /// Deletes an endpoint; its runs stay.
    async fn delete_endpoint(&self, id: Uuid) -> Result<()>;

    // ---- test sets and tests
    /// Stores a new test set.
    async fn create_test_set(&self, test_set: &TestSet) -> Result<()>;
    /// One test set by id or name, with its `test_count`.
    async fn get_test_set(&self, test_set: &Ref) -> Result<TestSet>;
    /// A page of test sets in creation order, with their `test_count`.
    async fn list_test_sets(&self, page: PageRequest) -> Result<Page<TestSet>>;
    /// Reads a test set by id or name, turns it into its new value with `change` and stores that,
    /// all in one transaction (so concurrent updates cannot lose one another's writes);
    /// returns the new value.
    async fn update_test_set(&self, test_set: &Ref, change: Change<'_, TestSet>)
    -> Result<TestSet>;
    /// Deletes a test set and its tests; its runs stay.
    async fn delete_test_set(&self, id: Uuid) -> Result<()>;
    /// Adds and removes metrics of a test set atomically; returns its metric ids afterwards.
    /// Adding one already there or removing one not there changes nothing.
    async fn change_test_set_metrics(
        &self,
        test_set_id: Uuid,
        add: &[Uuid],
        remove: &[Uuid],
    ) -> Result<Vec<Uuid>>;
    /// Appends tests to a test set in one transaction.
    async fn add_tests(&self, test_set_id: Uuid, tests: &[Test]) -> Result<()>;
    /// Starts an import of tests into a test set (created by it when new), in one transaction
    /// that holds until it is committed or dropped.
    async fn begin_import(&self, into: ImportInto) -> Result<Box<dyn TestImport>>;
    /// Stores the writes of an applied suite in one transaction, in dependency order (endpoints,
    /// metrics, behaviours, test sets, tests): all or nothing. A name taken meanwhile is
    /// `Error::AlreadyExists`, a record gone meanwhile `Error::NotFound`, and the metrics and
    /// behaviours named must exist once the suite's own are written.
    async fn apply_suite(&self, writes: &SuiteWrites) -> Result<()>;
    /// A page of a test set's tests in test-set order.
    async fn list_tests(&self, test_set_id: Uuid, page: PageRequest) -> Result<Page<Test>>;
    /// How many tests a test set has, the position of the last one, and the behaviours they
    /// use: what a run needs to know before it reads its tests.
    async fn test_set_extent(&self, test_set_id: Uuid) -> Result<Extent>;
    /// Removes tests from a test set, all or nothing: an id not in the set is
    /// `Error::NotFound` and removes nothing. Returns how many were removed.
    async fn remove_tests(&self, test_set_id: Uuid, test_ids: &[Uuid]) -> Result<u32>;

    // ---- runs and results
    /// Stores a new run with its items to work on, taken from `work`, in one transaction.
    async fn create_run(&self, run: &TestRun, work: WorkSource) -> Result<()>;
    /// Reads a run, turns it into its new value with `change` and stores that, in one
    /// transaction that no result of the run can come between; a run that `change` ends loses the
    /// items it has left, and when it repeats its tests, its summary counts them by their
    /// repetitions ([`RunSummary::count_tests`](crate::domain::RunSummary::count_tests)) over
    /// every result stored. Returns the new value.
    async fn update_run(&self, run_id: Uuid, change: Change<'_, TestRun>) -> Result<TestRun>;
    /// One run by id.
    async fn get_run(&self, id: Uuid) -> Result<TestRun>;
    /// A page of runs, newest first.
    async fn list_runs(&self, filter: &RunFilter, page: PageRequest) -> Result<Page<TestRun>>;
    /// The latest run (by finish time) that `query` describes, if any.
    async fn latest_run(&self, query: &LatestRun<'_>) -> Result<Option<TestRun>>;
    /// Running runs that have items no live claim holds (never claimed, or whose lease ended
    /// before `now_ms`), oldest first: what a replica looks for to take part.
    async fn claimable_runs(&self, now_ms: i64) -> Result<Vec<Uuid>>;
    /// Claims up to `limit` free items of a run for a replica, in order, keeping the caps it
    /// names across replicas; returns their positions (empty: no item is free), or `None` when a
    /// cap is reached (items may be free, but not for now).
    ///
    /// On a store that is not [shared](Self::is_shared), one process is the only replica, and
    /// its own concurrency (for the run, and the endpoint's gate across its runs) bounds what it
    /// has in flight: the caps are not counted, and the answer is never `None`.
    async fn claim_work(&self, request: &ClaimRequest<'_>) -> Result<Option<Vec<i64>>>;
    /// Extends every claim of `owner` to `lease_until_ms`.
    async fn renew_claims(&self, owner: &str, lease_until_ms: i64) -> Result<()>;
    /// Gives up every claim of `owner` (a replica stopping with items it did not finish).
    async fn release_claims(&self, owner: &str) -> Result<()>;
    /// At most `limit` tests of a test set after position `after` (`None`: from the start), in
    /// test-set order, each with its position: what choosing some of the tests reads.
    async fn tests_after(
        &self,
        test_set_id: Uuid,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<(i64, Test)>>;
    /// Tests of a test set at the given positions, in order, each with its position; positions
    /// whose test is gone are left out.
    async fn tests_at(&self, test_set_id: Uuid, positions: &[i64]) -> Result<Vec<(i64, Test)>>;
    /// Results of a run at the given positions, in order, each with its position.
    async fn results_at(&self, run_id: Uuid, positions: &[i64]) -> Result<Vec<(i64, TestResult)>>;
    /// In one transaction: stores the results of items the replica still holds (in the order
    /// given), gives up those items and the dropped ones, and folds the stored results into the
    /// run with `fold` (told whether items are left); a repeated run that `fold` ends has its
    /// tests counted by their repetitions, as `update_run` does. A run that has ended stores
    /// nothing. A second result for a repetition of a test of a run is `Error::AlreadyExists` and
    /// stores nothing.
    async fn complete_work(&self, done: Completion<'_>, fold: Fold<'_>) -> Result<Completed>;
    /// A page of a run's results in the order they were stored.
    async fn list_results(&self, run_id: Uuid, page: PageRequest) -> Result<Page<TestResult>>;
    /// How many results a run has, of how many tests, the position of the last one, and the
    /// behaviours of their tests: what a rescore needs to know before it reads them.
    async fn run_extent(&self, run_id: Uuid) -> Result<Extent>;
    /// At most `limit` results of a run stored after position `after` (the `seq` cursor; `None`:
    /// from the start), in order, each with its position. Followers of a live run poll this, so
    /// unlike `list_results` it always tells the position of the last item.
    async fn results_after(
        &self,
        run_id: Uuid,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<(i64, TestResult)>>;
}

/// Failures of writes that the store's users saw (results of a run that could not be stored),
/// shared with health reporting: a database that refuses writes makes the server `NOT_SERVING`
/// for a while, also when the health check's own small write still goes through (a nearly full
/// disk may take it).
#[derive(Clone, Debug, Default)]
pub struct WriteFaults(Arc<Mutex<Option<(Instant, String)>>>);

impl WriteFaults {
    /// Records that a write failed with `error`.
    pub fn record(&self, error: &crate::error::Error) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((Instant::now(), error.to_string()));
    }

    /// The last failure, when it happened within `within`.
    pub fn recent(&self, within: Duration) -> Option<String> {
        let last = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        last.as_ref()
            .filter(|(at, _)| at.elapsed() < within)
            .map(|(_, error)| error.clone())
    }
}
