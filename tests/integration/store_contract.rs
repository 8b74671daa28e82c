//! The storage contract: every Store backend must pass these tests.
//!
//! Each contract is a plain async function over a [`Backend`] (something that opens a store on
//! one database, again and again); [`contract!`] runs every one of them against every backend,
//! each in a fresh database. A new backend is one more `backend!` line there.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use assay::domain::{
    Behavior, CallPolicy, DEFAULT_BODY_TEMPLATE, DEFAULT_OUTPUT_PATH, Endpoint, ExecutionMode,
    HttpTarget, Labels, Metric, MetricKind, PageRequest, Pricing, Ref, ResponseMapping,
    ResultStatus, RunFilter, RunKind, RunPlan, RunStatus, ScoreType, Target, Test, TestResult,
    TestRun, TestSet, ThresholdOperator, Timestamp, Usage,
};
use assay::error::Error;
use assay::store::{
    Change, ClaimRequest, Completed, Completion, ImportInto, LatestRun, PgStore, SqliteStore,
    Store, SuiteWrites, WorkSource, Writes,
};
use async_trait::async_trait;
use chrono::{Duration, Utc};
use uuid::Uuid;

/// A database for one test.
#[async_trait]
trait Backend: Send + Sync {
    /// A store on this backend's database; a second call opens the same database again.
    async fn open(&self) -> Arc<dyn Store>;
}

/// SQLite in a file of its own temporary directory.
struct SqliteBackend {
    dir: tempfile::TempDir,
}

impl SqliteBackend {
    async fn new() -> Self {
        SqliteBackend {
            dir: tempfile::tempdir().expect("temporary directory"),
        }
    }
}

#[async_trait]
impl Backend for SqliteBackend {
    async fn open(&self) -> Arc<dyn Store> {
        let url = format!("sqlite://{}", self.dir.path().join("assay.db").display());
        Arc::new(
            SqliteStore::open(&url)
                .await
                .expect("open the SQLite store"),
        )
    }
}

/// A PostgreSQL database of its own, created on the server at `ASSAY_TEST_POSTGRES_URL`
/// (default: the local server every machine of the project runs) and dropped at the end.
pub struct PostgresBackend {
    database: crate::postgres::TestDatabase,
}

impl PostgresBackend {
    async fn new() -> Self {
        PostgresBackend {
            database: crate::postgres::TestDatabase::create().await,
        }
    }
}

#[async_trait]
impl Backend for PostgresBackend {
    async fn open(&self) -> Arc<dyn Store> {
        Arc::new(
            PgStore::open(self.database.url())
                .await
                .expect("open the PostgreSQL store"),
        )
    }
}

/// One `#[tokio::test]` per contract for one backend.
macro_rules! backend {
    ($module:ident, $backend:expr, $($contract:ident),+) => {
        mod $module {
            use super::*;
            $(
                #[tokio::test]
                async fn $contract() {
                    let backend = $backend;
                    super::$contract(&backend).await;
                }
            )+
        }
    };
}

/// Every contract against every backend.
macro_rules! contract {
    ($($contract:ident),+ $(,)?) => {
        backend!(sqlite, SqliteBackend::new().await, $($contract),+);
        backend!(postgres, PostgresBackend::new().await, $($contract),+);
    };
}

/// Contracts of stores that several processes share ([`Store::is_shared`]), against those
/// backends only.
macro_rules! shared_contract {
    ($($contract:ident),+ $(,)?) => {
        backend!(postgres_shared, PostgresBackend::new().await, $($contract),+);
    };
}

/// Contracts of stores that one process uses, against those backends only.
macro_rules! local_contract {
    ($($contract:ident),+ $(,)?) => {
        backend!(sqlite_local, SqliteBackend::new().await, $($contract),+);
    };
}

contract!(
    catalogue_records_are_found_by_id_and_by_name,
    a_taken_name_is_already_exists,
    an_unknown_reference_is_not_found_naming_it,
    resolve_metrics_keeps_order_and_drops_repeats,
    get_behaviors_skips_unknown_ids,
    lists_page_through_in_creation_order,
    updates_replace_and_renames_cannot_take_a_name,
    an_update_reads_changes_and_writes_in_one_transaction,
    an_import_is_seen_whole_once_committed_and_not_at_all_when_dropped,
    a_metric_in_use_cannot_be_deleted,
    a_behavior_in_use_cannot_be_deleted,
    ten_thousand_tests_are_added_in_one_call_and_listed_in_order,
    remove_tests_is_all_or_nothing,
    deleting_a_test_set_deletes_its_tests_but_not_its_runs,
    change_test_set_metrics_is_idempotent,
    runs_are_listed_newest_first_and_filtered,
    latest_completed_run_is_the_last_completed_by_finish_time,
    runs_are_found_by_every_label_they_carry,
    the_latest_run_keeps_to_its_statuses_end_time_and_labels,
    a_run_of_chosen_positions_has_exactly_those_items,
    replicas_claim_a_runs_items_under_leases,
    completing_work_stores_only_what_the_replica_holds,
    reserved_calls_of_an_endpoint_are_spaced_by_the_interval,
    a_test_has_at_most_one_result_per_run,
    a_repeated_run_works_on_every_repetition_and_ends_counting_tests,
    results_are_listed_in_insertion_order_by_page,
    extents_count_and_bound_what_a_run_reads_page_by_page,
    data_survives_reopening,
    an_empty_expected_response_is_kept_apart_from_none,
    a_suite_is_written_whole_or_not_at_all,
    an_import_that_replaces_keeps_the_old_tests_until_it_commits,
);

// Caps are counted across replicas only where there can be several: one process uses a store
// that is not shared, and its own concurrency bounds what it has in flight, so such a store
// counts no caps (see `Store::claim_work`).
shared_contract!(caps_bound_the_items_claimed_across_replicas);
local_contract!(a_store_one_process_uses_counts_no_caps);

// ---- values

fn now() -> Timestamp {
    Utc::now()
}

fn metric(name: &str) -> Metric {
    Metric {
        id: Uuid::now_v7(),
        name: name.into(),
        description: format!("{name} checks things"),
        score_type: ScoreType::Binary,
        threshold: None,
        threshold_operator: ThresholdOperator::Eq,
        categories: vec![],
        passing_categories: vec![],
        requires_expected: true,
        requires_context: false,
        kind: MetricKind::ExactMatch {
            value: None,
            ignore_case: true,
            trim: true,
        },
        created_at: now(),
        updated_at: now(),
    }
}

fn behavior(name: &str, metrics: &[&Metric]) -> Behavior {
    Behavior {
        id: Uuid::now_v7(),
        name: name.into(),
        description: String::new(),
        metric_ids: metrics.iter().map(|m| m.id).collect(),
        created_at: now(),
        updated_at: now(),
    }
}

fn endpoint(name: &str) -> Endpoint {
    Endpoint {
        id: Uuid::now_v7(),
        name: name.into(),
        description: String::new(),
        target: Target::Http(HttpTarget {
            url: "http://127.0.0.1:9/chat".into(),
            method: "POST".into(),
            headers: BTreeMap::from([("Authorization".into(), "Bearer secret".into())]),
            body_template: DEFAULT_BODY_TEMPLATE.into(),
            response_mapping: ResponseMapping {
                output: DEFAULT_OUTPUT_PATH.into(),
                context: None,
                metadata: None,
                input_tokens: Some("$.usage.in".into()),
                output_tokens: None,
            },
            timeout_ms: 1000,
        }),
        max_concurrency: 4,
        max_retries: Some(1),
        rate_limit_per_second: 0.0,
        call_policy: CallPolicy {
            backoff_base_ms: 10,
            requests_per_minute: 90,
            adaptive_concurrency: true,
            ..CallPolicy::default()
        },
        pricing: Pricing {
            input_usd_per_million_tokens: 2.5,
            output_usd_per_million_tokens: 10.0,
        },
        created_at: now(),
        updated_at: now(),
    }
}

fn test_set(name: &str, metrics: &[&Metric]) -> TestSet {
    TestSet {
        id: Uuid::now_v7(),
        name: name.into(),
        description: String::new(),
        metric_ids: metrics.iter().map(|m| m.id).collect(),
        test_count: 0,
        created_at: now(),
        updated_at: now(),
    }
}

fn test(test_set: &TestSet, prompt: &str, behavior: Option<&Behavior>) -> Test {
    Test {
        id: Uuid::now_v7(),
        test_set_id: test_set.id,
        prompt: prompt.into(),
        expected_response: Some(format!("answer to {prompt}")),
        behavior_id: behavior.map(|b| b.id),
        category: "cat".into(),
        topic: "topic".into(),
        metadata: BTreeMap::from([("k".into(), "v \"quoted\"\n".into())]),
        created_at: now(),
        key: String::new(),
    }
}

fn run(test_set: &TestSet, endpoint: &Endpoint, status: RunStatus) -> TestRun {
    TestRun {
        id: Uuid::now_v7(),
        test_set_id: test_set.id,
        endpoint_id: endpoint.id,
        kind: RunKind::Execution,
        mode: ExecutionMode::Parallel,
        status,
        source_run_id: None,
        total: 0,
        metric_ids: vec![],
        max_concurrency: 0,
        parameters: serde_json::Map::new(),
        error: None,
        summary: None,
        created_at: now(),
        started_at: Some(now()),
        finished_at: (status != RunStatus::Running).then(now),
        plan: None,
        labels: Default::default(),
    }
}

fn result(run: &TestRun, prompt: &str) -> TestResult {
    TestResult {
        id: Uuid::now_v7(),
        run_id: run.id,
        test_id: Uuid::now_v7(),
        status: ResultStatus::Passed,
        output: Some(format!("output of {prompt}")),
        context: vec!["ctx".into()],
        metadata: Some(serde_json::json!({"tokens": 3})),
        latency_ms: 12,
        repetition: 0,
        error: None,
        attempts: 2,
        last_error: Some("endpoint returned HTTP 503: busy".into()),
        metric_results: vec![],
        prompt: prompt.into(),
        expected_response: None,
        behavior_id: None,
        created_at: now(),
        usage: Some(Usage {
            input_tokens: 11,
            output_tokens: 7,
        }),
        cost_usd: 0.000_097_5,
        judge_usage: Usage {
            input_tokens: 200,
            output_tokens: 20,
        },
        judge_cost_usd: 0.001,
        // Stored with the rest of the result, on every backend.
        trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
    }
}

/// The replica the contract's results come from.
const OWNER: &str = "contract replica";

/// Creates a run with items to work on: the tests of a set of its own (enough for any contract).
async fn create_run(store: &dyn Store, r: &TestRun) {
    let items = test_set(&format!("items of {}", r.id), &[]);
    store.create_test_set(&items).await.unwrap();
    let tests: Vec<Test> = (0..16)
        .map(|i| test(&items, &format!("item {i}"), None))
        .collect();
    store.add_tests(items.id, &tests).await.unwrap();
    store
        .create_run(
            r,
            WorkSource::Tests {
                test_set_id: items.id,
                through: i64::MAX,
                repeats: 1,
            },
        )
        .await
        .unwrap();
}

/// The latest completed run of a pair.
async fn latest_completed(store: &dyn Store, s: &TestSet, e: &Endpoint) -> Option<TestRun> {
    store
        .latest_run(&LatestRun {
            test_set_id: s.id,
            endpoint_id: e.id,
            statuses: &[RunStatus::Completed],
            finished_before: None,
            labels: &Labels::new(),
        })
        .await
        .unwrap()
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Replaces a stored run.
async fn replace_run(store: &dyn Store, r: &TestRun) {
    let replaced = r.clone();
    store
        .update_run(r.id, Box::new(move |_| Ok(replaced)))
        .await
        .unwrap();
}

/// Stores results of one run as a replica does: claims as many items, and completes them with
/// the results (the run unchanged).
async fn store_results(store: &dyn Store, results: &[TestResult]) -> Result<Completed, Error> {
    let run_id = results[0].run_id;
    let positions = claim(store, run_id, OWNER, results.len() as u32, 60_000).await;
    assert_eq!(positions.len(), results.len(), "items to claim");
    store
        .complete_work(
            Completion {
                run_id,
                owner: OWNER,
                dropped: vec![],
                results: positions.into_iter().zip(results.iter().cloned()).collect(),
            },
            Box::new(|run, _, _| run),
        )
        .await
}

/// Claims up to `limit` items of a run for `owner`, for `lease_ms` from now.
async fn claim(
    store: &dyn Store,
    run_id: Uuid,
    owner: &str,
    limit: u32,
    lease_ms: i64,
) -> Vec<i64> {
    let now = Utc::now().timestamp_millis();
    store
        .claim_work(&ClaimRequest {
            run_id,
            owner,
            now_ms: now,
            lease_until_ms: now + lease_ms,
            limit,
            run_cap: None,
            endpoint_cap: None,
        })
        .await
        .unwrap()
        .expect("no cap")
}

/// Behaviour ids, sorted as extents give them.
fn sorted_ids(behaviors: &[&Behavior]) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = behaviors.iter().map(|b| b.id).collect();
    ids.sort_unstable();
    ids
}

fn name(s: &str) -> Ref {
    Ref::Name(s.into())
}

/// Asserts `NotFound` of `kind` naming `reference`.
fn assert_not_found<T: std::fmt::Debug>(
    outcome: assay::error::Result<T>,
    kind: &str,
    reference: &str,
) {
    match outcome {
        Err(Error::NotFound {
            kind: k,
            reference: r,
        }) if k == kind && r == reference => {}
        other => panic!("expected {kind} {reference:?} not found, got {other:?}"),
    }
}

/// Creates a test set and an endpoint to hang runs on.
async fn run_targets(store: &dyn Store) -> (TestSet, Endpoint) {
    let set = test_set("suite", &[]);
    let target = endpoint("bot");
    store.create_test_set(&set).await.unwrap();
    store.create_endpoint(&target).await.unwrap();
    (set, target)
}

// ---- contracts

async fn catalogue_records_are_found_by_id_and_by_name(backend: &dyn Backend) {
    let store = backend.open().await;
    let m = metric("exact");
    let b = behavior("polite", &[&m]);
    let e = endpoint("bot");
    let s = test_set("smoke", &[&m]);
    store.create_metric(&m).await.unwrap();
    store.create_behavior(&b).await.unwrap();
    store.create_endpoint(&e).await.unwrap();
    store.create_test_set(&s).await.unwrap();

    assert_eq!(store.get_metric(&Ref::Id(m.id)).await.unwrap(), m);
    assert_eq!(store.get_metric(&name("exact")).await.unwrap(), m);
    assert_eq!(store.get_behavior(&Ref::Id(b.id)).await.unwrap(), b);
    assert_eq!(store.get_behavior(&name("polite")).await.unwrap(), b);
    assert_eq!(store.get_endpoint(&Ref::Id(e.id)).await.unwrap(), e);
    assert_eq!(store.get_endpoint(&name("bot")).await.unwrap(), e);
    assert_eq!(store.get_test_set(&Ref::Id(s.id)).await.unwrap(), s);
    assert_eq!(store.get_test_set(&name("smoke")).await.unwrap(), s);
}

async fn a_taken_name_is_already_exists(backend: &dyn Backend) {
    let store = backend.open().await;
    store.create_metric(&metric("exact")).await.unwrap();
    let err = store.create_metric(&metric("exact")).await.unwrap_err();
    assert!(
        matches!(&err, Error::AlreadyExists { kind: "metric", name } if name == "exact"),
        "{err:?}"
    );
    store.create_test_set(&test_set("s", &[])).await.unwrap();
    let err = store
        .create_test_set(&test_set("s", &[]))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::AlreadyExists { kind: "test set", name } if name == "s"),
        "{err:?}"
    );
    // The same name in another kind is no clash.
    store.create_endpoint(&endpoint("exact")).await.unwrap();
}

async fn an_unknown_reference_is_not_found_naming_it(backend: &dyn Backend) {
    let store = backend.open().await;
    let id = Uuid::now_v7();
    assert_not_found(store.get_metric(&name("nope")).await, "metric", "nope");
    assert_not_found(
        store.get_behavior(&Ref::Id(id)).await,
        "behavior",
        &id.to_string(),
    );
    assert_not_found(store.get_endpoint(&name("nope")).await, "endpoint", "nope");
    assert_not_found(store.get_test_set(&name("nope")).await, "test set", "nope");
    assert_not_found(store.get_run(id).await, "test run", &id.to_string());
    assert_not_found(store.delete_metric(id).await, "metric", &id.to_string());
    assert_not_found(store.delete_endpoint(id).await, "endpoint", &id.to_string());
    assert_not_found(store.add_tests(id, &[]).await, "test set", &id.to_string());
    assert_not_found(
        store.list_tests(id, PageRequest::first(10)).await,
        "test set",
        &id.to_string(),
    );
    assert_not_found(
        store.list_results(id, PageRequest::first(10)).await,
        "test run",
        &id.to_string(),
    );
    // A behaviour naming a metric that does not exist is refused too.
    let ghost = metric("ghost");
    assert_not_found(
        store.create_behavior(&behavior("b", &[&ghost])).await,
        "metric",
        &ghost.id.to_string(),
    );
}

async fn resolve_metrics_keeps_order_and_drops_repeats(backend: &dyn Backend) {
    let store = backend.open().await;
    let (a, b, c) = (metric("a"), metric("b"), metric("c"));
    for m in [&a, &b, &c] {
        store.create_metric(m).await.unwrap();
    }
    let got = store
        .resolve_metrics(&[
            name("c"),
            Ref::Id(a.id),
            name("a"),
            Ref::Id(c.id),
            name("b"),
        ])
        .await
        .unwrap();
    assert_eq!(got, vec![c.clone(), a.clone(), b.clone()]);
    assert_eq!(store.resolve_metrics(&[]).await.unwrap(), vec![]);
    assert_not_found(
        store
            .resolve_metrics(&[name("a"), name("missing"), name("also missing")])
            .await,
        "metric",
        "missing",
    );
}

async fn get_behaviors_skips_unknown_ids(backend: &dyn Backend) {
    let store = backend.open().await;
    let (x, y) = (behavior("x", &[]), behavior("y", &[]));
    store.create_behavior(&x).await.unwrap();
    store.create_behavior(&y).await.unwrap();
    let got = store
        .get_behaviors(&[y.id, Uuid::now_v7(), x.id])
        .await
        .unwrap();
    assert_eq!(got, vec![y, x]);
}

async fn lists_page_through_in_creation_order(backend: &dyn Backend) {
    let store = backend.open().await;
    let mut created = Vec::new();
    for i in 0..120 {
        let m = metric(&format!("m{i:03}"));
        store.create_metric(&m).await.unwrap();
        created.push(m);
    }
    let mut listed = Vec::new();
    let mut sizes = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list_metrics(PageRequest { size: 50, after })
            .await
            .unwrap();
        sizes.push((page.items.len(), page.next.is_some()));
        listed.extend(page.items);
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(sizes, vec![(50, true), (50, true), (20, false)]);
    assert_eq!(listed, created);

    // A page that ends exactly at the last item has no next page.
    let exact = store.list_metrics(PageRequest::first(120)).await.unwrap();
    assert_eq!((exact.items.len(), exact.next), (120, None));

    // Test sets come with their test counts.
    let (s1, s2) = (test_set("s1", &[]), test_set("s2", &[]));
    store.create_test_set(&s1).await.unwrap();
    store.create_test_set(&s2).await.unwrap();
    store
        .add_tests(s2.id, &[test(&s2, "p1", None), test(&s2, "p2", None)])
        .await
        .unwrap();
    let sets = store.list_test_sets(PageRequest::first(10)).await.unwrap();
    let counts: Vec<_> = sets
        .items
        .iter()
        .map(|s| (s.name.as_str(), s.test_count))
        .collect();
    assert_eq!(counts, vec![("s1", 0), ("s2", 2)]);
    assert_eq!(store.get_test_set(&name("s2")).await.unwrap().test_count, 2);
}

/// A change that replaces the stored value by `value`.
fn replace_with<T: Send + 'static>(value: T) -> Change<'static, T> {
    Box::new(move |_| Ok(value))
}

async fn updates_replace_and_renames_cannot_take_a_name(backend: &dyn Backend) {
    let store = backend.open().await;
    let mut a = metric("a");
    store.create_metric(&a).await.unwrap();
    store.create_metric(&metric("b")).await.unwrap();

    a.name = "a2".into();
    a.description = "changed".into();
    a.updated_at = now();
    store
        .update_metric(&Ref::Id(a.id), replace_with(a.clone()))
        .await
        .unwrap();
    assert_eq!(store.get_metric(&name("a2")).await.unwrap(), a);
    assert_not_found(store.get_metric(&name("a")).await, "metric", "a");

    let mut clash = a.clone();
    clash.name = "b".into();
    let err = store
        .update_metric(&Ref::Id(a.id), replace_with(clash))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::AlreadyExists { kind: "metric", name } if name == "b"),
        "{err:?}"
    );
    assert_eq!(store.get_metric(&Ref::Id(a.id)).await.unwrap(), a);

    let unknown = endpoint("ghost");
    assert_not_found(
        store
            .update_endpoint(&Ref::Id(unknown.id), replace_with(unknown.clone()))
            .await,
        "endpoint",
        &unknown.id.to_string(),
    );

    let mut e = endpoint("e");
    store.create_endpoint(&e).await.unwrap();
    e.max_retries = Some(7);
    store
        .update_endpoint(&Ref::Id(e.id), replace_with(e.clone()))
        .await
        .unwrap();
    assert_eq!(store.get_endpoint(&Ref::Id(e.id)).await.unwrap(), e);
}

async fn an_update_reads_changes_and_writes_in_one_transaction(backend: &dyn Backend) {
    let store = backend.open().await;
    let m = metric("m");
    store.create_metric(&m).await.unwrap();

    // The change sees the stored value, and what it returns is stored and returned.
    let updated = store
        .update_metric(
            &name("m"),
            Box::new(|mut current: Metric| {
                current.description.push_str(" more");
                Ok(current)
            }),
        )
        .await
        .unwrap();
    assert_eq!(updated.description, format!("{} more", m.description));
    assert_eq!(store.get_metric(&Ref::Id(m.id)).await.unwrap(), updated);

    // A change that fails stores nothing and its error is the update's.
    let err = store
        .update_metric(
            &Ref::Id(m.id),
            Box::new(|_| Err(Error::invalid("metric.name", "is required"))),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
    assert_eq!(store.get_metric(&Ref::Id(m.id)).await.unwrap(), updated);

    // An unknown reference never reaches the change.
    assert_not_found(
        store
            .update_metric(&name("ghost"), Box::new(|_| panic!("changed a ghost")))
            .await,
        "metric",
        "ghost",
    );

    // A behaviour's change may not name a metric that does not exist.
    let b = behavior("b", &[&m]);
    store.create_behavior(&b).await.unwrap();
    let ghost = Uuid::now_v7();
    let err = store
        .update_behavior(
            &Ref::Id(b.id),
            Box::new(move |mut current: Behavior| {
                current.metric_ids.push(ghost);
                Ok(current)
            }),
        )
        .await;
    assert_not_found(err, "metric", &ghost.to_string());
    assert_eq!(store.get_behavior(&Ref::Id(b.id)).await.unwrap(), b);
}

async fn an_import_is_seen_whole_once_committed_and_not_at_all_when_dropped(backend: &dyn Backend) {
    let store = backend.open().await;
    let m = metric("m");
    store.create_metric(&m).await.unwrap();
    let b = behavior("b", &[&m]);
    store.create_behavior(&b).await.unwrap();

    let new = test_set("new", &[&m]);
    let begin = || async {
        let mut import = store
            .begin_import(ImportInto::New(new.clone()))
            .await
            .unwrap();
        import
            .add(&[test(&new, "1", None), test(&new, "2", Some(&b))])
            .await
            .unwrap();
        import
    };
    let mut import = begin().await;
    import.add(&[test(&new, "3", None)]).await.unwrap();
    drop(import);
    assert_not_found(store.get_test_set(&name("new")).await, "test set", "new");

    let mut import = begin().await;
    let ghost = behavior("ghost", &[]);
    assert_not_found(
        import.add(&[test(&new, "x", Some(&ghost))]).await,
        "behavior",
        &ghost.id.to_string(),
    );
    import.add(&[test(&new, "3", None)]).await.unwrap();
    let committed = import.commit().await.unwrap();
    assert_eq!((committed.id, committed.test_count), (new.id, 3));
    let prompts: Vec<String> = store
        .list_tests(new.id, PageRequest::first(10))
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|t| t.prompt)
        .collect();
    assert_eq!(prompts, ["1", "2", "3"]);

    let mut import = store
        .begin_import(ImportInto::Existing(new.id))
        .await
        .unwrap();
    import.add(&[test(&new, "4", None)]).await.unwrap();
    assert_eq!(import.commit().await.unwrap().test_count, 4);

    let unknown = Uuid::now_v7();
    assert_not_found(
        store
            .begin_import(ImportInto::Existing(unknown))
            .await
            .map(drop),
        "test set",
        &unknown.to_string(),
    );
    let taken = test_set("new", &[]);
    let err = store
        .begin_import(ImportInto::New(taken))
        .await
        .map(drop)
        .unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err:?}");
}

async fn a_metric_in_use_cannot_be_deleted(backend: &dyn Backend) {
    let store = backend.open().await;
    let m = metric("exact");
    let other = metric("other");
    store.create_metric(&m).await.unwrap();
    store.create_metric(&other).await.unwrap();
    let mut b = behavior("polite", &[&other, &m]);
    store.create_behavior(&b).await.unwrap();
    let s = test_set("smoke", &[&m]);
    store.create_test_set(&s).await.unwrap();

    let err = store.delete_metric(m.id).await.unwrap_err();
    match &err {
        Error::FailedPrecondition {
            subject,
            description,
        } => {
            assert_eq!(subject, "metric exact");
            assert_eq!(
                description,
                "metric \"exact\" is still used by behavior \"polite\", test set \"smoke\""
            );
        }
        other => panic!("expected a failed precondition, got {other:?}"),
    }

    b.metric_ids = vec![other.id];
    store
        .update_behavior(&Ref::Id(b.id), replace_with(b.clone()))
        .await
        .unwrap();
    let err = store.delete_metric(m.id).await.unwrap_err().to_string();
    assert!(
        err.contains("test set \"smoke\"") && !err.contains("polite"),
        "{err}"
    );

    store
        .change_test_set_metrics(s.id, &[], &[m.id])
        .await
        .unwrap();
    store.delete_metric(m.id).await.unwrap();
    assert_not_found(store.get_metric(&name("exact")).await, "metric", "exact");
    assert_not_found(store.delete_metric(m.id).await, "metric", &m.id.to_string());
}

async fn a_behavior_in_use_cannot_be_deleted(backend: &dyn Backend) {
    let store = backend.open().await;
    let b = behavior("polite", &[]);
    store.create_behavior(&b).await.unwrap();
    let s = test_set("smoke", &[]);
    store.create_test_set(&s).await.unwrap();
    let t = test(&s, "hello", Some(&b));
    store
        .add_tests(s.id, &[t.clone(), test(&s, "plain", None)])
        .await
        .unwrap();

    let err = store.delete_behavior(b.id).await.unwrap_err();
    match &err {
        Error::FailedPrecondition { description, .. } => {
            assert_eq!(
                description,
                "behavior \"polite\" is still used by test set \"smoke\""
            )
        }
        other => panic!("expected a failed precondition, got {other:?}"),
    }
    store.remove_tests(s.id, &[t.id]).await.unwrap();
    store.delete_behavior(b.id).await.unwrap();
    assert_not_found(
        store.get_behavior(&name("polite")).await,
        "behavior",
        "polite",
    );

    // Tests may only name behaviours that exist.
    assert_not_found(
        store.add_tests(s.id, &[test(&s, "x", Some(&b))]).await,
        "behavior",
        &b.id.to_string(),
    );
}

async fn ten_thousand_tests_are_added_in_one_call_and_listed_in_order(backend: &dyn Backend) {
    let store = backend.open().await;
    let s = test_set("big", &[]);
    store.create_test_set(&s).await.unwrap();
    let b = behavior("b", &[]);
    store.create_behavior(&b).await.unwrap();
    let tests: Vec<Test> = (0..10_000)
        .map(|i| test(&s, &format!("prompt {i}"), (i % 3 == 0).then_some(&b)))
        .collect();

    let started = Instant::now();
    store.add_tests(s.id, &tests).await.unwrap();
    eprintln!("add_tests: 10,000 tests in {:?}", started.elapsed());

    assert_eq!(
        store.get_test_set(&Ref::Id(s.id)).await.unwrap().test_count,
        10_000
    );
    let mut listed = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list_tests(s.id, PageRequest { size: 1000, after })
            .await
            .unwrap();
        listed.extend(page.items);
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(listed.len(), tests.len());
    assert!(listed == tests, "tests come back as stored, in order");
}

async fn remove_tests_is_all_or_nothing(backend: &dyn Backend) {
    let store = backend.open().await;
    let (s, other) = (test_set("s", &[]), test_set("other", &[]));
    store.create_test_set(&s).await.unwrap();
    store.create_test_set(&other).await.unwrap();
    let tests = vec![
        test(&s, "1", None),
        test(&s, "2", None),
        test(&s, "3", None),
    ];
    store.add_tests(s.id, &tests).await.unwrap();
    let foreign = test(&other, "f", None);
    store
        .add_tests(other.id, std::slice::from_ref(&foreign))
        .await
        .unwrap();

    let unknown = Uuid::now_v7();
    assert_not_found(
        store.remove_tests(s.id, &[tests[0].id, unknown]).await,
        "test",
        &unknown.to_string(),
    );
    assert_not_found(
        store.remove_tests(s.id, &[tests[1].id, foreign.id]).await,
        "test",
        &foreign.id.to_string(),
    );
    assert_eq!(
        store.get_test_set(&Ref::Id(s.id)).await.unwrap().test_count,
        3
    );

    let removed = store
        .remove_tests(s.id, &[tests[2].id, tests[0].id])
        .await
        .unwrap();
    assert_eq!(removed, 2);
    let left = store
        .list_tests(s.id, PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(left.items, vec![tests[1].clone()]);
    assert_eq!(
        store
            .get_test_set(&Ref::Id(other.id))
            .await
            .unwrap()
            .test_count,
        1
    );
}

async fn deleting_a_test_set_deletes_its_tests_but_not_its_runs(backend: &dyn Backend) {
    let store = backend.open().await;
    let (s, e) = run_targets(store.as_ref()).await;
    store
        .add_tests(s.id, &[test(&s, "1", None), test(&s, "2", None)])
        .await
        .unwrap();
    let r = run(&s, &e, RunStatus::Completed);
    create_run(store.as_ref(), &r).await;

    store.delete_test_set(s.id).await.unwrap();
    store.delete_endpoint(e.id).await.unwrap();
    assert_not_found(
        store.list_tests(s.id, PageRequest::first(10)).await,
        "test set",
        &s.id.to_string(),
    );
    assert_eq!(store.get_run(r.id).await.unwrap(), r);
    assert_not_found(
        store.delete_test_set(s.id).await,
        "test set",
        &s.id.to_string(),
    );

    // The name is free again, and the new set starts empty.
    let again = test_set(&s.name, &[]);
    store.create_test_set(&again).await.unwrap();
    assert_eq!(
        store.get_test_set(&name(&s.name)).await.unwrap().test_count,
        0
    );
}

async fn change_test_set_metrics_is_idempotent(backend: &dyn Backend) {
    let store = backend.open().await;
    let (a, b, c) = (metric("a"), metric("b"), metric("c"));
    for m in [&a, &b, &c] {
        store.create_metric(m).await.unwrap();
    }
    let s = test_set("s", &[]);
    store.create_test_set(&s).await.unwrap();

    let ids = store
        .change_test_set_metrics(s.id, &[a.id, b.id], &[])
        .await
        .unwrap();
    assert_eq!(ids, vec![a.id, b.id]);
    let stamped = store.get_test_set(&Ref::Id(s.id)).await.unwrap().updated_at;

    let again = store
        .change_test_set_metrics(s.id, &[b.id, a.id], &[c.id])
        .await
        .unwrap();
    assert_eq!(again, vec![a.id, b.id]);
    let unchanged = store.get_test_set(&Ref::Id(s.id)).await.unwrap();
    assert_eq!(
        unchanged.updated_at, stamped,
        "nothing changed, nothing written"
    );

    let ids = store
        .change_test_set_metrics(s.id, &[c.id], &[a.id])
        .await
        .unwrap();
    assert_eq!(ids, vec![b.id, c.id]);
    assert_eq!(
        store.get_test_set(&Ref::Id(s.id)).await.unwrap().metric_ids,
        vec![b.id, c.id]
    );

    let ghost = Uuid::now_v7();
    assert_not_found(
        store
            .change_test_set_metrics(s.id, &[a.id, ghost], &[])
            .await,
        "metric",
        &ghost.to_string(),
    );
    assert_eq!(
        store.get_test_set(&Ref::Id(s.id)).await.unwrap().metric_ids,
        vec![b.id, c.id]
    );
    assert_not_found(
        store.change_test_set_metrics(ghost, &[], &[]).await,
        "test set",
        &ghost.to_string(),
    );
}

async fn runs_are_listed_newest_first_and_filtered(backend: &dyn Backend) {
    let store = backend.open().await;
    let (s1, e1) = run_targets(store.as_ref()).await;
    let (s2, e2) = (test_set("s2", &[]), endpoint("e2"));
    let r1 = run(&s1, &e1, RunStatus::Running);
    let r2 = run(&s1, &e2, RunStatus::Running);
    let r3 = run(&s2, &e1, RunStatus::Running);
    let r4 = run(&s1, &e1, RunStatus::Running);
    for r in [&r1, &r2, &r3, &r4] {
        create_run(store.as_ref(), r).await;
    }

    let mut done = r1.clone();
    done.status = RunStatus::Partial;
    done.total = 3;
    done.finished_at = Some(now());
    done.summary = Some(assay::domain::RunSummary {
        total: 3,
        passed: 2,
        errored: 1,
        pass_rate: 2.0 / 3.0,
        ..Default::default()
    });
    replace_run(store.as_ref(), &done).await;
    assert_eq!(store.get_run(r1.id).await.unwrap(), done);

    let ids = |filter: RunFilter| {
        let store = store.clone();
        async move {
            let page = store
                .list_runs(&filter, PageRequest::first(10))
                .await
                .unwrap();
            page.items.into_iter().map(|r| r.id).collect::<Vec<_>>()
        }
    };
    assert_eq!(
        ids(RunFilter::default()).await,
        vec![r4.id, r3.id, r2.id, r1.id]
    );
    assert_eq!(
        ids(RunFilter {
            test_set_id: Some(s1.id),
            ..RunFilter::default()
        })
        .await,
        vec![r4.id, r2.id, r1.id]
    );
    assert_eq!(
        ids(RunFilter {
            endpoint_id: Some(e1.id),
            ..RunFilter::default()
        })
        .await,
        vec![r4.id, r3.id, r1.id]
    );
    assert_eq!(
        ids(RunFilter {
            test_set_id: Some(s1.id),
            endpoint_id: Some(e1.id),
            ..RunFilter::default()
        })
        .await,
        vec![r4.id, r1.id]
    );
    assert_eq!(
        ids(RunFilter {
            test_set_id: Some(s2.id),
            endpoint_id: Some(e2.id),
            ..RunFilter::default()
        })
        .await,
        Vec::<Uuid>::new()
    );

    let first = store
        .list_runs(&RunFilter::default(), PageRequest::first(3))
        .await
        .unwrap();
    assert_eq!(first.items.len(), 3);
    let rest = store
        .list_runs(
            &RunFilter::default(),
            PageRequest {
                size: 3,
                after: first.next,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        rest.items.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![r1.id]
    );
    assert_eq!(rest.next, None);
}

/// `update_run` on an unknown id is `NotFound` (checked apart: the id is only known here).
async fn update_of_an_unknown_run_is_not_found(store: &dyn Store, run: &TestRun) {
    let replaced = run.clone();
    assert_not_found(
        store
            .update_run(run.id, Box::new(move |_| Ok(replaced)))
            .await,
        "test run",
        &run.id.to_string(),
    );
}

async fn latest_completed_run_is_the_last_completed_by_finish_time(backend: &dyn Backend) {
    let store = backend.open().await;
    let (s, e) = run_targets(store.as_ref()).await;
    let other = endpoint("other");
    store.create_endpoint(&other).await.unwrap();
    assert_eq!(latest_completed(store.as_ref(), &s, &e).await, None);

    let base = now();
    let finished = |status: RunStatus, minutes: i64, endpoint: &Endpoint| {
        let mut r = run(&s, endpoint, status);
        r.finished_at = Some(base + Duration::minutes(minutes));
        r
    };
    // Created in this order; finish times differ from creation order on purpose.
    let late_completed = finished(RunStatus::Completed, 10, &e);
    let early_completed = finished(RunStatus::Completed, 5, &e);
    let later_partial = finished(RunStatus::Partial, 20, &e);
    let later_failed = finished(RunStatus::Failed, 30, &e);
    let other_endpoint = finished(RunStatus::Completed, 40, &other);
    let mut rescore = finished(RunStatus::Running, 0, &e);
    rescore.kind = RunKind::Rescore;
    rescore.finished_at = None;
    for r in [
        &late_completed,
        &early_completed,
        &later_partial,
        &later_failed,
        &other_endpoint,
        &rescore,
    ] {
        create_run(store.as_ref(), r).await;
    }
    update_of_an_unknown_run_is_not_found(store.as_ref(), &finished(RunStatus::Completed, 0, &e))
        .await;

    let latest = latest_completed(store.as_ref(), &s, &e).await;
    assert_eq!(latest, Some(late_completed.clone()));

    // A rescore that completes later becomes the latest: either kind counts.
    rescore.status = RunStatus::Completed;
    rescore.finished_at = Some(base + Duration::minutes(50));
    replace_run(store.as_ref(), &rescore).await;
    let latest = latest_completed(store.as_ref(), &s, &e).await;
    assert_eq!(latest, Some(rescore));
    assert_eq!(
        latest_completed(store.as_ref(), &s, &other).await,
        Some(other_endpoint)
    );
}

async fn runs_are_found_by_every_label_they_carry(backend: &dyn Backend) {
    let store = backend.open().await;
    let (s, e) = run_targets(store.as_ref()).await;
    let mut main = run(&s, &e, RunStatus::Completed);
    main.labels = labels(&[("branch", "main"), ("commit", "abc")]);
    let mut feature = run(&s, &e, RunStatus::Completed);
    feature.labels = labels(&[("branch", "feature/x"), ("commit", "abc")]);
    let bare = run(&s, &e, RunStatus::Completed);
    for r in [&main, &feature, &bare] {
        create_run(store.as_ref(), r).await;
    }
    assert_eq!(store.get_run(main.id).await.unwrap().labels, main.labels);
    let ids = |wanted: Labels| {
        let store = store.clone();
        async move {
            let filter = RunFilter {
                labels: wanted,
                ..RunFilter::default()
            };
            let page = store
                .list_runs(&filter, PageRequest::first(10))
                .await
                .unwrap();
            page.items.into_iter().map(|r| r.id).collect::<Vec<_>>()
        }
    };
    assert_eq!(ids(Labels::new()).await, vec![bare.id, feature.id, main.id]);
    assert_eq!(
        ids(labels(&[("commit", "abc")])).await,
        vec![feature.id, main.id]
    );
    assert_eq!(ids(labels(&[("branch", "main")])).await, vec![main.id]);
    assert_eq!(
        ids(labels(&[("branch", "main"), ("commit", "abc")])).await,
        vec![main.id]
    );
    assert!(
        ids(labels(&[("branch", "main"), ("commit", "def")]))
            .await
            .is_empty()
    );
    assert!(ids(labels(&[("pr", "1")])).await.is_empty());
}

async fn the_latest_run_keeps_to_its_statuses_end_time_and_labels(backend: &dyn Backend) {
    let store = backend.open().await;
    let (s, e) = run_targets(store.as_ref()).await;
    let base = now();
    let finished = |status: RunStatus, minutes: i64, branch: &str| {
        let mut r = run(&s, &e, status);
        r.finished_at = Some(base + Duration::minutes(minutes));
        r.labels = labels(&[("branch", branch)]);
        r
    };
    let main_completed = finished(RunStatus::Completed, 1, "main");
    let main_partial = finished(RunStatus::Partial, 2, "main");
    let dev_completed = finished(RunStatus::Completed, 3, "dev");
    let main_failed = finished(RunStatus::Failed, 4, "main");
    for r in [&main_completed, &main_partial, &dev_completed, &main_failed] {
        create_run(store.as_ref(), r).await;
    }
    let latest = |statuses: &'static [RunStatus], before: Option<i64>, wanted: Labels| {
        let store = store.clone();
        let (s, e) = (s.id, e.id);
        async move {
            store
                .latest_run(&LatestRun {
                    test_set_id: s,
                    endpoint_id: e,
                    statuses,
                    finished_before: before.map(|m| base + Duration::minutes(m)),
                    labels: &wanted,
                })
                .await
                .unwrap()
                .map(|r| r.id)
        }
    };
    const ENDED: &[RunStatus] = &[RunStatus::Completed, RunStatus::Partial];
    assert_eq!(
        latest(ENDED, None, Labels::new()).await,
        Some(dev_completed.id)
    );
    let main = labels(&[("branch", "main")]);
    assert_eq!(
        latest(ENDED, None, main.clone()).await,
        Some(main_partial.id)
    );
    assert_eq!(
        latest(&[RunStatus::Completed], None, main.clone()).await,
        Some(main_completed.id)
    );
    // Strictly before: a run is never its own base.
    assert_eq!(
        latest(ENDED, Some(2), main.clone()).await,
        Some(main_completed.id)
    );
    assert_eq!(latest(ENDED, Some(1), main).await, None);
    assert_eq!(latest(&[], None, Labels::new()).await, None);
}

async fn a_run_of_chosen_positions_has_exactly_those_items(backend: &dyn Backend) {
    let store = backend.open().await;
    let (s, e) = run_targets(store.as_ref()).await;
    let tests: Vec<Test> = (0..6).map(|i| test(&s, &format!("t{i}"), None)).collect();
    store.add_tests(s.id, &tests).await.unwrap();
    let all = store.tests_after(s.id, None, 100).await.unwrap();
    assert_eq!(all.len(), 6);
    let after_two = store.tests_after(s.id, Some(all[1].0), 2).await.unwrap();
    assert_eq!(
        after_two
            .iter()
            .map(|(_, t)| t.prompt.as_str())
            .collect::<Vec<_>>(),
        vec!["t2", "t3"]
    );
    let chosen = vec![all[1].0, all[4].0];
    let r = run(&s, &e, RunStatus::Running);
    store
        .create_run(&r, WorkSource::Positions(chosen.clone()))
        .await
        .unwrap();
    let claimed = store
        .claim_work(&ClaimRequest {
            run_id: r.id,
            owner: "replica",
            now_ms: 0,
            lease_until_ms: i64::MAX,
            limit: 100,
            run_cap: None,
            endpoint_cap: None,
        })
        .await
        .unwrap();
    assert_eq!(claimed, Some(chosen));
}

async fn replicas_claim_a_runs_items_under_leases(backend: &dyn Backend) {
    let store = backend.open().await;
    let store = store.as_ref();
    let (s, e) = run_targets(store).await;
    let r = run(&s, &e, RunStatus::Running);
    create_run(store, &r).await;
    let now = || Utc::now().timestamp_millis();
    assert_eq!(store.claimable_runs(now()).await.unwrap(), vec![r.id]);

    // Each replica gets items of its own, in order.
    let a = claim(store, r.id, "a", 5, 60_000).await;
    let b = claim(store, r.id, "b", 5, 60_000).await;
    assert_eq!(a.len(), 5);
    assert!(a.windows(2).all(|w| w[0] < w[1]), "{a:?}");
    assert!(b.iter().all(|p| *p > a[4]), "{a:?} then {b:?}");
    let rest = claim(store, r.id, "a", 100, 60_000).await;
    assert_eq!(rest.len(), 6);
    assert_eq!(
        store.claimable_runs(now()).await.unwrap(),
        Vec::<Uuid>::new()
    );
    // b's lease ends: its items are free again, and only they are.
    store.renew_claims("b", now() - 1).await.unwrap();
    assert_eq!(store.claimable_runs(now()).await.unwrap(), vec![r.id]);
    assert_eq!(claim(store, r.id, "c", 100, 60_000).await, b);
    assert_eq!(
        claim(store, r.id, "c", 100, 60_000).await,
        Vec::<i64>::new()
    );
    assert_eq!(
        store.claimable_runs(now()).await.unwrap(),
        Vec::<Uuid>::new()
    );

    // Renewed claims hold; released ones are free for anyone.
    store.renew_claims("a", now() + 60_000).await.unwrap();
    assert_eq!(
        claim(store, r.id, "d", 100, 60_000).await,
        Vec::<i64>::new()
    );
    store.release_claims("a").await.unwrap();
    let mut a_items = a.clone();
    a_items.extend(&rest);
    assert_eq!(claim(store, r.id, "d", 100, 60_000).await, a_items);

    // A run that ends has no items left.
    store.release_claims("d").await.unwrap();
    let mut ended = r.clone();
    ended.status = RunStatus::Cancelled;
    replace_run(store, &ended).await;
    assert_eq!(
        claim(store, r.id, "a", 100, 60_000).await,
        Vec::<i64>::new()
    );
    assert_eq!(
        store.claimable_runs(now()).await.unwrap(),
        Vec::<Uuid>::new()
    );
}

async fn completing_work_stores_only_what_the_replica_holds(backend: &dyn Backend) {
    let store = backend.open().await;
    let store = store.as_ref();
    let (s, e) = run_targets(store).await;
    let r = run(&s, &e, RunStatus::Running);
    create_run(store, &r).await;
    let complete = |owner: &'static str, dropped: Vec<i64>, results: Vec<(i64, TestResult)>| async move {
        store
            .complete_work(
                Completion {
                    run_id: r.id,
                    owner,
                    dropped,
                    results,
                },
                Box::new(|mut run: TestRun, stored: &[TestResult], left: bool| {
                    run.total += stored.len() as u32;
                    if !left {
                        run.status = RunStatus::Completed;
                    }
                    run
                }),
            )
            .await
            .unwrap()
    };

    // a's lease ends and b takes its items: only b's results are stored.
    let a = claim(store, r.id, "a", 3, -1).await;
    let b = claim(store, r.id, "b", 3, 60_000).await;
    assert_eq!(a, b);
    let late = complete(
        "a",
        vec![],
        a.iter().map(|p| (*p, result(&r, "late"))).collect(),
    )
    .await;
    assert!(late.results.is_empty() && late.last.is_none(), "{late:?}");
    let first = vec![(b[0], result(&r, "b0")), (b[2], result(&r, "b2"))];
    let done = complete("b", vec![b[1]], first.clone()).await;
    assert_eq!(done.results, vec![first[0].1.clone(), first[1].1.clone()]);
    assert_eq!(done.after, None);
    assert_eq!(done.run.total, 2, "the fold saw what was stored");
    assert_eq!(done.run.status, RunStatus::Running, "items are left");

    // The last items end the run, through the fold, in the same transaction.
    let rest = claim(store, r.id, "b", 100, 60_000).await;
    assert_eq!(rest.len(), 13);
    let results: Vec<(i64, TestResult)> = rest
        .iter()
        .map(|p| (*p, result(&r, &format!("b{p}"))))
        .collect();
    let end = complete("b", vec![], results).await;
    assert_eq!(end.after, done.last);
    assert_eq!(end.run.status, RunStatus::Completed);
    assert_eq!(store.get_run(r.id).await.unwrap(), end.run);
    let listed = store
        .list_results(r.id, PageRequest::first(100))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 15);

    // An ended run stores nothing more.
    let after_end = complete("b", vec![], vec![(b[1], result(&r, "after"))]).await;
    assert!(after_end.results.is_empty());
    assert_eq!(after_end.run, end.run);
}

async fn caps_bound_the_items_claimed_across_replicas(backend: &dyn Backend) {
    let store = backend.open().await;
    let store = store.as_ref();
    let (s, e) = run_targets(store).await;
    let (r1, r2) = (
        run(&s, &e, RunStatus::Running),
        run(&s, &e, RunStatus::Running),
    );
    create_run(store, &r1).await;
    create_run(store, &r2).await;
    let capped = |run_id: Uuid, owner: &'static str, limit: u32, run_cap, endpoint_cap| async move {
        let now = Utc::now().timestamp_millis();
        store
            .claim_work(&ClaimRequest {
                run_id,
                owner,
                now_ms: now,
                lease_until_ms: now + 60_000,
                limit,
                run_cap,
                endpoint_cap,
            })
            .await
            .unwrap()
            .map(|positions| positions.len())
    };
    // A replica alone under a cap is bounded by its own concurrency, not by its claims (which
    // count items claimed ahead and finished ones): it claims past the cap.
    assert_eq!(capped(r1.id, "a", 3, Some(2), None).await, Some(3));
    assert_eq!(capped(r1.id, "a", 1, Some(2), None).await, Some(1));
    store.release_claims("a").await.unwrap();
    // Once another replica holds claims, a run's cap counts every replica's live claims of it.
    assert_eq!(capped(r1.id, "a", 3, Some(4), None).await, Some(3));
    assert_eq!(capped(r1.id, "b", 3, Some(4), None).await, Some(1));
    assert_eq!(capped(r1.id, "c", 3, Some(4), None).await, None);
    // An endpoint's cap counts the live claims of every run calling it.
    let cap = Some((e.id, 6));
    assert_eq!(capped(r2.id, "a", 1, None, cap).await, Some(1));
    assert_eq!(capped(r2.id, "b", 5, None, cap).await, Some(1));
    assert_eq!(capped(r2.id, "c", 5, None, cap).await, None);
    // Ended leases count for nothing.
    store.renew_claims("a", 0).await.unwrap();
    assert_eq!(capped(r2.id, "c", 5, None, cap).await, Some(4));
}

async fn a_store_one_process_uses_counts_no_caps(backend: &dyn Backend) {
    let store = backend.open().await;
    let store = store.as_ref();
    assert!(!store.is_shared());
    let (s, e) = run_targets(store).await;
    let r = run(&s, &e, RunStatus::Running);
    create_run(store, &r).await;
    let now = Utc::now().timestamp_millis();
    let claim = |owner: &'static str| ClaimRequest {
        run_id: r.id,
        owner,
        now_ms: now,
        lease_until_ms: now + 60_000,
        limit: 3,
        run_cap: Some(2),
        endpoint_cap: Some((e.id, 2)),
    };
    // Whatever the owners, the claims are whole: the process's own concurrency bounds what it
    // has in flight.
    for owner in ["a", "b"] {
        let claimed = store.claim_work(&claim(owner)).await.unwrap();
        assert_eq!(claimed.map(|positions| positions.len()), Some(3));
    }
}

async fn reserved_calls_of_an_endpoint_are_spaced_by_the_interval(backend: &dyn Backend) {
    let store = backend.open().await;
    let (e, other) = (Uuid::now_v7(), Uuid::now_v7());
    let mut reserved = Vec::new();
    for now in [1_000, 1_000, 1_200] {
        reserved.push(store.reserve_call(e, now, 500).await.unwrap());
    }
    assert_eq!(
        reserved,
        vec![1_000, 1_500, 2_000],
        "each call after the last reserved"
    );
    assert_eq!(store.reserve_call(other, 1_000, 500).await.unwrap(), 1_000);
    // Once the pace has caught up, a call goes at once.
    assert_eq!(store.reserve_call(e, 9_000, 500).await.unwrap(), 9_000);
}

async fn a_test_has_at_most_one_result_per_run(backend: &dyn Backend) {
    let store = backend.open().await;
    let (s, e) = run_targets(store.as_ref()).await;
    let (r, other) = (
        run(&s, &e, RunStatus::Running),
        run(&s, &e, RunStatus::Running),
    );
    create_run(store.as_ref(), &r).await;
    create_run(store.as_ref(), &other).await;
    let first = result(&r, "q");
    store_results(store.as_ref(), std::slice::from_ref(&first))
        .await
        .unwrap();

    let mut again = result(&r, "q again");
    again.test_id = first.test_id;
    let fresh = result(&r, "another test");
    let err = store_results(store.as_ref(), &[fresh.clone(), again])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::AlreadyExists {
                kind: "test result",
                ..
            }
        ),
        "{err:?}"
    );
    let stored = store
        .list_results(r.id, PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(
        stored.items,
        vec![first.clone()],
        "nothing of the failed batch is stored"
    );

    // The same test in another run is another result, and so is another repetition of it.
    let mut elsewhere = result(&other, "q");
    elsewhere.test_id = first.test_id;
    store_results(store.as_ref(), &[elsewhere]).await.unwrap();
    let mut repeated = result(&r, "q repeated");
    repeated.test_id = first.test_id;
    repeated.repetition = 1;
    store_results(store.as_ref(), &[fresh, repeated.clone()])
        .await
        .unwrap();
    let stored = store
        .list_results(r.id, PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(stored.items.last(), Some(&repeated));
}

async fn a_repeated_run_works_on_every_repetition_and_ends_counting_tests(backend: &dyn Backend) {
    let store = backend.open().await;
    let (s, e) = run_targets(store.as_ref()).await;
    let tests: Vec<Test> = ["always", "flaky", "down"]
        .iter()
        .map(|p| test(&s, p, None))
        .collect();
    store.add_tests(s.id, &tests).await.unwrap();
    let seqs: Vec<i64> = store
        .tests_after(s.id, None, 10)
        .await
        .unwrap()
        .iter()
        .map(|(seq, _)| *seq)
        .collect();
    let mut r = run(&s, &e, RunStatus::Running);
    r.total = 3;
    r.plan = Some(RunPlan {
        repeats: 3,
        ..RunPlan::default()
    });
    store
        .create_run(
            &r,
            WorkSource::Tests {
                test_set_id: s.id,
                through: i64::MAX,
                repeats: 3,
            },
        )
        .await
        .unwrap();

    // Test by test, each test's repetitions: position seq * 3 + repetition.
    let positions = claim(store.as_ref(), r.id, OWNER, 100, 60_000).await;
    let want: Vec<i64> = seqs
        .iter()
        .flat_map(|seq| (0..3).map(move |n| seq * 3 + n))
        .collect();
    assert_eq!(positions, want);

    use ResultStatus::{Error as E, Failed as F, Passed as P};
    let statuses = [[P, P, P], [P, F, P], [E, E, F]];
    let results: Vec<(i64, TestResult)> = positions
        .iter()
        .map(|&position| {
            let (test, repetition) = ((position / 3) as usize, (position % 3) as u32);
            let index = seqs.iter().position(|&seq| seq == test as i64).unwrap();
            let status = statuses[index][repetition as usize];
            let result = TestResult {
                test_id: tests[index].id,
                repetition,
                status,
                ..result(&r, &tests[index].prompt)
            };
            (position, result)
        })
        .collect();
    let completed = store
        .complete_work(
            Completion {
                run_id: r.id,
                owner: OWNER,
                dropped: vec![],
                results,
            },
            // As the engine folds: tally what was stored, end the run when nothing is left.
            Box::new(|mut run: TestRun, stored: &[TestResult], left: bool| {
                let plan = run.plan.get_or_insert_with(Default::default);
                stored.iter().for_each(|r| plan.tally.add(r));
                if !left {
                    let status = plan.tally.status();
                    run.end(status);
                }
                run
            }),
        )
        .await
        .unwrap();
    assert_eq!(completed.results.len(), 9);
    let summary = completed.run.summary.expect("the run ended");
    assert_eq!(completed.run.status, RunStatus::Partial);
    // Tests by majority: "always" and "flaky" passed, "down" is an error; "flaky" is flaky.
    assert_eq!(
        (
            summary.total,
            summary.passed,
            summary.failed,
            summary.errored,
            summary.flaky
        ),
        (3, 2, 0, 1, 1)
    );
    assert!((summary.pass_rate - 2.0 / 3.0).abs() < 1e-12);
    assert!((summary.pass_at_k - 2.0 / 3.0).abs() < 1e-12);
    assert!((summary.pass_hat_k - 1.0 / 3.0).abs() < 1e-12);
    assert!((summary.mean_pass_rate - 5.0 / 9.0).abs() < 1e-12);
    assert_eq!(
        store.get_run(r.id).await.unwrap().summary,
        Some(summary),
        "stored as it ended"
    );
    let extent = store.run_extent(r.id).await.unwrap();
    assert_eq!((extent.count, extent.tests), (9, 3));
}

async fn results_are_listed_in_insertion_order_by_page(backend: &dyn Backend) {
    let store = backend.open().await;
    let (s, e) = run_targets(store.as_ref()).await;
    let (r, other) = (
        run(&s, &e, RunStatus::Running),
        run(&s, &e, RunStatus::Running),
    );
    create_run(store.as_ref(), &r).await;
    create_run(store.as_ref(), &other).await;

    let mut stored: Vec<TestResult> = (0..7).map(|i| result(&r, &format!("p{i}"))).collect();
    stored.reverse(); // order given, not id order
    store_results(store.as_ref(), &stored).await.unwrap();
    store_results(store.as_ref(), &[result(&other, "elsewhere")])
        .await
        .unwrap();
    let more: Vec<TestResult> = (7..10).map(|i| result(&r, &format!("p{i}"))).collect();
    let last_of_more = store_results(store.as_ref(), &more).await.unwrap().last;
    stored.extend(more);

    let mut pages = Vec::new();
    let mut listed = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list_results(r.id, PageRequest { size: 4, after })
            .await
            .unwrap();
        pages.push(page.items.len());
        listed.extend(page.items);
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(pages, vec![4, 4, 2]);
    assert_eq!(listed, stored);

    // Followers read on from the position of the last result they saw, even on a short page.
    let first = store.results_after(r.id, None, 6).await.unwrap();
    assert_eq!(first.len(), 6);
    let rest = store
        .results_after(r.id, first.last().map(|(seq, _)| *seq), 6)
        .await
        .unwrap();
    // The position complete_work gives is that of the last result it stored.
    assert_eq!(rest.last().map(|(seq, _)| *seq), last_of_more);
    let followed: Vec<TestResult> = first.into_iter().chain(rest).map(|(_, r)| r).collect();
    assert_eq!(followed, stored);
    let (last, _) = store
        .results_after(r.id, None, 100)
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(
        store.results_after(r.id, Some(last), 100).await.unwrap(),
        vec![]
    );

    let empty = store
        .list_results(run(&s, &e, RunStatus::Running).id, PageRequest::first(4))
        .await;
    assert!(matches!(empty, Err(Error::NotFound { .. })), "{empty:?}");
    let ghost = run(&s, &e, RunStatus::Running);
    assert_not_found(
        store
            .complete_work(
                Completion {
                    run_id: ghost.id,
                    owner: OWNER,
                    dropped: vec![],
                    results: vec![(1, result(&ghost, "x"))],
                },
                Box::new(|run, _, _| run),
            )
            .await
            .map(|c| c.run),
        "test run",
        &ghost.id.to_string(),
    );
}

async fn data_survives_reopening(backend: &dyn Backend) {
    let (m, s, r, t, res);
    {
        let store = backend.open().await;
        m = metric("exact");
        store.create_metric(&m).await.unwrap();
        let e;
        (s, e) = run_targets(store.as_ref()).await;
        t = test(&s, "kept", None);
        store
            .add_tests(s.id, std::slice::from_ref(&t))
            .await
            .unwrap();
        r = run(&s, &e, RunStatus::Running);
        create_run(store.as_ref(), &r).await;
        res = result(&r, "kept");
        store_results(store.as_ref(), std::slice::from_ref(&res))
            .await
            .unwrap();
    }
    let store = backend.open().await;
    assert_eq!(store.get_metric(&name("exact")).await.unwrap(), m);
    let mut expected = s.clone();
    expected.test_count = 1;
    assert_eq!(store.get_test_set(&Ref::Id(s.id)).await.unwrap(), expected);
    let tests = store.list_tests(s.id, PageRequest::first(5)).await.unwrap();
    assert_eq!(tests.items, vec![t]);
    assert_eq!(store.get_run(r.id).await.unwrap(), r);
    let results = store
        .list_results(r.id, PageRequest::first(5))
        .await
        .unwrap();
    assert_eq!(results.items, vec![res]);
}

async fn an_empty_expected_response_is_kept_apart_from_none(backend: &dyn Backend) {
    let store = backend.open().await;
    let (s, e) = run_targets(store.as_ref()).await;
    let expected = [Some(String::new()), None, Some("x".to_string())];
    let tests: Vec<Test> = expected
        .iter()
        .map(|want| Test {
            expected_response: want.clone(),
            ..test(&s, "p", None)
        })
        .collect();
    store.add_tests(s.id, &tests).await.unwrap();
    let listed = store.list_tests(s.id, PageRequest::first(5)).await.unwrap();
    let got: Vec<_> = listed.items.iter().map(|t| &t.expected_response).collect();
    assert_eq!(got, expected.iter().collect::<Vec<_>>());

    let r = run(&s, &e, RunStatus::Running);
    create_run(store.as_ref(), &r).await;
    let results: Vec<TestResult> = expected
        .iter()
        .map(|want| TestResult {
            expected_response: want.clone(),
            ..result(&r, "p")
        })
        .collect();
    store_results(store.as_ref(), &results).await.unwrap();
    let listed = store
        .list_results(r.id, PageRequest::first(5))
        .await
        .unwrap();
    let got: Vec<_> = listed.items.iter().map(|r| &r.expected_response).collect();
    assert_eq!(got, expected.iter().collect::<Vec<_>>());
}

async fn extents_count_and_bound_what_a_run_reads_page_by_page(backend: &dyn Backend) {
    let store = backend.open().await;
    let (s, e) = run_targets(store.as_ref()).await;
    let (b1, b2) = (behavior("b1", &[]), behavior("b2", &[]));
    store.create_behavior(&b1).await.unwrap();
    store.create_behavior(&b2).await.unwrap();
    let empty = store.test_set_extent(s.id).await.unwrap();
    assert_eq!(
        (empty.count, empty.last, empty.behavior_ids),
        (0, None, vec![])
    );

    let tests: Vec<Test> = (0..5)
        .map(|i| {
            let b = [Some(&b2), None, Some(&b1), Some(&b2), None][i];
            test(&s, &format!("t{i}"), b)
        })
        .collect();
    store.add_tests(s.id, &tests).await.unwrap();
    let extent = store.test_set_extent(s.id).await.unwrap();
    assert_eq!(extent.count, 5);
    assert_eq!(extent.behavior_ids, sorted_ids(&[&b1, &b2]));
    let last = extent.last.expect("a last position");

    // The tests are read by position; the last test is at the extent's last position.
    let all = store
        .tests_at(s.id, &(0..=last).collect::<Vec<_>>())
        .await
        .unwrap();
    assert_eq!(all.last().map(|(p, _)| *p), Some(last));
    let positions: Vec<i64> = all.iter().map(|(p, _)| *p).collect();
    let read: Vec<Test> = all.into_iter().map(|(_, t)| t).collect();
    assert_eq!(read, tests);
    let some = store
        .tests_at(s.id, &[positions[3], positions[1]])
        .await
        .unwrap();
    assert_eq!(
        some,
        vec![
            (positions[1], tests[1].clone()),
            (positions[3], tests[3].clone())
        ],
        "in order, whatever order asked"
    );
    // Tests added later lie after it; other test sets' tests are not read.
    let other = test_set("other", &[]);
    store.create_test_set(&other).await.unwrap();
    store
        .add_tests(other.id, &[test(&other, "elsewhere", Some(&b1))])
        .await
        .unwrap();
    store
        .add_tests(s.id, &[test(&s, "later", None)])
        .await
        .unwrap();
    let now_all = store
        .tests_at(s.id, &(0..last + 100).collect::<Vec<_>>())
        .await
        .unwrap();
    let after_last: Vec<_> = now_all.iter().filter(|(p, _)| *p > last).collect();
    assert_eq!(after_last.len(), 1);
    assert_eq!(after_last[0].1.prompt, "later");

    let r = run(&s, &e, RunStatus::Running);
    create_run(store.as_ref(), &r).await;
    assert_eq!(store.run_extent(r.id).await.unwrap(), Default::default());
    let results: Vec<TestResult> = tests
        .iter()
        .map(|t| TestResult {
            test_id: t.id,
            behavior_id: t.behavior_id,
            ..result(&r, &t.prompt)
        })
        .collect();
    store_results(store.as_ref(), &results).await.unwrap();
    let extent = store.run_extent(r.id).await.unwrap();
    assert_eq!(extent.count, 5);
    assert_eq!(extent.behavior_ids, sorted_ids(&[&b1, &b2]));
    let stored = store.results_after(r.id, None, 10).await.unwrap();
    assert_eq!(extent.last, stored.last().map(|(p, _)| *p));
}

async fn a_suite_is_written_whole_or_not_at_all(backend: &dyn Backend) {
    let store = backend.open().await;
    let old = metric("old");
    let s = test_set("suite-set", &[]);
    store.create_metric(&old).await.unwrap();
    store.create_test_set(&s).await.unwrap();
    let (keep, change, drop) = (
        test(&s, "keep", None),
        test(&s, "change", None),
        test(&s, "drop", None),
    );
    store
        .add_tests(s.id, &[keep.clone(), change.clone(), drop.clone()])
        .await
        .unwrap();

    // New records naming each other, an update, tests added, updated and removed: all at once.
    let m = metric("new");
    let b = behavior("b", &[&m]);
    let e = endpoint("e");
    let renamed = Metric {
        description: "changed".into(),
        ..old.clone()
    };
    let changed = Test {
        topic: "changed".into(),
        behavior_id: Some(b.id),
        ..change.clone()
    };
    let added = test(&s, "added", Some(&b));
    let writes = SuiteWrites {
        endpoints: Writes {
            create: vec![e.clone()],
            update: vec![],
        },
        metrics: Writes {
            create: vec![m.clone()],
            update: vec![renamed],
        },
        behaviors: Writes {
            create: vec![b.clone()],
            update: vec![],
        },
        test_sets: Writes {
            create: vec![],
            update: vec![TestSet {
                metric_ids: vec![m.id],
                ..s.clone()
            }],
        },
        tests: Writes {
            create: vec![added.clone()],
            update: vec![changed.clone()],
        },
        removed_tests: vec![drop.id],
    };
    store.apply_suite(&writes).await.unwrap();
    assert_eq!(
        store
            .get_behavior(&Ref::Name("b".into()))
            .await
            .unwrap()
            .metric_ids,
        [m.id]
    );
    assert_eq!(
        store
            .get_metric(&Ref::Id(old.id))
            .await
            .unwrap()
            .description,
        "changed"
    );
    assert_eq!(
        store.get_test_set(&Ref::Id(s.id)).await.unwrap().metric_ids,
        [m.id]
    );
    let listed = store
        .list_tests(s.id, PageRequest::first(10))
        .await
        .unwrap()
        .items;
    let seen: Vec<(&str, &str)> = listed
        .iter()
        .map(|t| (t.prompt.as_str(), t.topic.as_str()))
        .collect();
    assert_eq!(
        seen,
        [("keep", "topic"), ("change", "changed"), ("added", "topic")]
    );

    // A clash at the end (a taken test-set name) stores nothing of the rest.
    let clash = SuiteWrites {
        metrics: Writes {
            create: vec![metric("never")],
            update: vec![],
        },
        test_sets: Writes {
            create: vec![test_set("suite-set", &[])],
            update: vec![],
        },
        removed_tests: vec![keep.id],
        ..SuiteWrites::default()
    };
    let error = store
        .apply_suite(&clash)
        .await
        .expect_err("the name is taken");
    assert!(matches!(error, Error::AlreadyExists { .. }), "{error:?}");
    assert!(matches!(
        store.get_metric(&Ref::Name("never".into())).await,
        Err(Error::NotFound { .. })
    ));
    assert_eq!(
        store
            .list_tests(s.id, PageRequest::first(10))
            .await
            .unwrap()
            .items
            .len(),
        3
    );
}

async fn an_import_that_replaces_keeps_the_old_tests_until_it_commits(backend: &dyn Backend) {
    let store = backend.open().await;
    let s = test_set("replaced", &[]);
    store.create_test_set(&s).await.unwrap();
    store
        .add_tests(s.id, &[test(&s, "old", None)])
        .await
        .unwrap();

    let mut dropped = store.begin_import(ImportInto::Replace(s.id)).await.unwrap();
    dropped.add(&[test(&s, "new", None)]).await.unwrap();
    drop(dropped);
    let prompts = |tests: Vec<Test>| tests.into_iter().map(|t| t.prompt).collect::<Vec<_>>();
    let listed = store
        .list_tests(s.id, PageRequest::first(10))
        .await
        .unwrap()
        .items;
    assert_eq!(prompts(listed), ["old"]);

    let mut import = store.begin_import(ImportInto::Replace(s.id)).await.unwrap();
    import.add(&[test(&s, "new", None)]).await.unwrap();
    assert_eq!(import.commit().await.unwrap().test_count, 1);
    let listed = store
        .list_tests(s.id, PageRequest::first(10))
        .await
        .unwrap()
        .items;
    assert_eq!(prompts(listed), ["new"]);
}
