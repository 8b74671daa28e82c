//! The jobs of a run: one per test, with the metrics that score it and where its answer comes
//! from (a call, a stored output to score again, or a stored result to copy).
//!
//! Execution and rescore runs read their tests (or the source's results) from the store a page at
//! a time while they run, so a run's memory does not grow with its size.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures::stream::{self, BoxStream};
use futures::{StreamExt, TryStreamExt};
use tokio_util::task::AbortOnDropHandle;
use uuid::Uuid;

use super::plan::{MetricPlan, MetricSet};
use crate::domain::{ResultStatus, Test, TestResult};
use crate::error::{Error, Result};
use crate::store::Store;

/// Tests or results read from the store at once while a run goes on.
const PAGE: u32 = 256;

/// Where the answer of one job comes from.
pub(super) enum Input {
    /// The endpoint is called.
    Call,
    /// A stored result's output is scored again (rescore).
    Rescore(TestResult),
    /// A stored result is kept as it is (a retry-errors run copies what was no error).
    Copy(TestResult),
}

/// One unit of work of a run: a test, the metrics that score it, and where its answer comes
/// from.
pub(super) struct Job {
    pub(super) test: Test,
    pub(super) metrics: MetricSet,
    pub(super) input: Input,
}

/// The jobs of a run, in dispatch order; an error means the store could not be read.
pub(super) type Jobs = BoxStream<'static, Result<Job>>;

/// Jobs that call the endpoint for the tests of a test set up to position `through`, skipping
/// the tests in `done` (a resumed run).
pub(super) fn call_jobs(
    store: Arc<dyn Store>,
    test_set_id: Uuid,
    through: i64,
    plan: Arc<MetricPlan>,
    done: HashSet<Uuid>,
) -> Jobs {
    pages(
        move |after| {
            let store = Arc::clone(&store);
            async move { store.tests_after(test_set_id, after, PAGE).await }
        },
        through,
        (done, |test: &Test| test.id),
    )
    .map_ok(move |test| Job {
        metrics: plan.for_test(test.behavior_id),
        test,
        input: Input::Call,
    })
    .boxed()
}

/// Jobs that score the results of a source run up to position `through` again, skipping the
/// tests in `done` (a resumed run).
pub(super) fn rescore_jobs(
    store: Arc<dyn Store>,
    source_run_id: Uuid,
    through: i64,
    test_set_id: Uuid,
    plan: Arc<MetricPlan>,
    done: HashSet<Uuid>,
) -> Jobs {
    pages(
        move |after| {
            let store = Arc::clone(&store);
            async move { store.results_after(source_run_id, after, PAGE).await }
        },
        through,
        (done, |r: &TestResult| r.test_id),
    )
    .map_ok(move |r| Job {
        metrics: plan.for_test(r.behavior_id),
        test: snapshot(&r, test_set_id),
        input: Input::Rescore(r),
    })
    .boxed()
}

/// Jobs of a retry-errors run: the source's errors are executed again with the test as it is
/// now (tests removed since are left out), everything else is copied.
pub(super) fn retry_jobs(
    results: Vec<TestResult>,
    tests: &HashMap<Uuid, Test>,
    test_set_id: Uuid,
    plan: &MetricPlan,
) -> Vec<Job> {
    results
        .into_iter()
        .filter_map(|r| {
            // The behaviour at the time of the source run picks the metrics, as it did then.
            let metrics = plan.for_test(r.behavior_id);
            if r.status != ResultStatus::Error {
                return Some(Job {
                    test: snapshot(&r, test_set_id),
                    metrics,
                    input: Input::Copy(r),
                });
            }
            let test = tests.get(&r.test_id)?.clone();
            Some(Job {
                test,
                metrics,
                input: Input::Call,
            })
        })
        .collect()
}

/// Jobs already in memory, as a run takes them.
pub(super) fn from_vec(jobs: Vec<Job>) -> Jobs {
    stream::iter(jobs.into_iter().map(Ok)).boxed()
}

/// The items up to position `through` of a paged store read (`fetch(after)` answers the next
/// page with positions), but those whose test is in `done`. The next page is read while the
/// current one is dispatched, so a fast endpoint never waits for the store between pages; at most
/// two pages are in memory.
fn pages<T, F, Fut>(
    mut fetch: F,
    through: i64,
    (done, test_id): (HashSet<Uuid>, fn(&T) -> Uuid),
) -> BoxStream<'static, Result<T>>
where
    T: Send + 'static,
    F: FnMut(Option<i64>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Vec<(i64, T)>>> + Send + 'static,
{
    // Aborted when dropped, so a cancelled run leaves no read behind.
    let mut prefetch = move |after| AbortOnDropHandle::new(tokio::spawn(fetch(after)));
    let first = prefetch(None);
    stream::try_unfold(
        (prefetch, Some(first), done),
        move |(mut prefetch, reading, done)| async move {
            let Some(reading) = reading else {
                return Ok::<_, Error>(None);
            };
            let page = reading
                .await
                .map_err(|e| Error::internal_from("reading a page of tests failed", e))??;
            let next = match page.last() {
                Some(&(last, _)) if page.len() == PAGE as usize && last < through => {
                    Some(prefetch(Some(last)))
                }
                _ => None,
            };
            let items: Vec<T> = page
                .into_iter()
                .filter(|(position, item)| *position <= through && !done.contains(&test_id(item)))
                .map(|(_, item)| item)
                .collect();
            Ok(Some((items, (prefetch, next, done))))
        },
    )
    .map_ok(|items| stream::iter(items.into_iter().map(Ok)))
    .try_flatten()
    .boxed()
}

/// The test as a result recorded it (prompt, expected response, behaviour).
fn snapshot(r: &TestResult, test_set_id: Uuid) -> Test {
    Test {
        id: r.test_id,
        test_set_id,
        prompt: r.prompt.clone(),
        expected_response: r.expected_response.clone(),
        behavior_id: r.behavior_id,
        category: String::new(),
        topic: String::new(),
        metadata: Default::default(),
        created_at: r.created_at,
    }
}
