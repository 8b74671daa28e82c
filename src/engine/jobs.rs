//! The jobs of a run: one per item (a test, or a result of the source run), with the metrics that
//! score it and where its answer comes from (a call, a stored output to score again, or a stored
//! result to copy). A replica turns the items it claimed into jobs a batch at a time, so a run's
//! memory does not grow with its size.

use std::collections::{HashMap, HashSet};

use uuid::Uuid;

use super::plan::{MetricPlan, MetricSet};
use crate::domain::{ResultStatus, Test, TestResult};
use crate::error::Result;
use crate::store::Store;

/// Where the answer of one job comes from.
pub(super) enum Input {
    /// The endpoint is called.
    Call,
    /// A stored result's output is scored again (rescore).
    Rescore(TestResult),
    /// A stored result is kept as it is (a retry-errors run copies what was no error).
    Copy(TestResult),
}

/// One unit of work of a run: an item, the metrics that score it, and where its answer comes
/// from.
pub(super) struct Job {
    /// The item's position (what its claim names).
    pub(super) position: i64,
    /// Which repetition of its test the job is (0-based), kept by its result.
    pub(super) repetition: u32,
    pub(super) test: Test,
    pub(super) metrics: MetricSet,
    pub(super) input: Input,
}

/// What a run's items are, and so how they become jobs.
pub(super) enum Items {
    /// An execution: the tests of a test set, each called `repeats` times (the items of the test
    /// at `seq` are at `seq * repeats + repetition`).
    Tests { test_set_id: Uuid, repeats: u32 },
    /// A rescore: the results of the source run, each output scored again.
    Rescore {
        source_run_id: Uuid,
        test_set_id: Uuid,
    },
    /// A retry of a run's errors: the results of the source run; errors are executed again with
    /// the test as it is now (tests removed since are dropped), everything else is copied.
    RetryErrors {
        source_run_id: Uuid,
        test_set_id: Uuid,
        tests: HashMap<Uuid, Test>,
    },
}

/// The jobs of a batch of claimed items, in order, and the positions of items that have nothing
/// left to run (their test was removed).
pub(super) type Batch = (Vec<Job>, Vec<i64>);

impl Items {
    /// The jobs of the items at `positions`.
    pub(super) async fn jobs(
        &self,
        store: &dyn Store,
        plan: &MetricPlan,
        positions: &[i64],
    ) -> Result<Batch> {
        let (jobs, found): (Vec<Job>, HashSet<i64>) = match self {
            Items::Tests {
                test_set_id,
                repeats,
            } => {
                let repeats = i64::from((*repeats).max(1));
                let mut seqs: Vec<i64> = positions.iter().map(|p| p / repeats).collect();
                seqs.dedup();
                let tests = store.tests_at(*test_set_id, &seqs).await?;
                let jobs = repetition_jobs(tests, positions, repeats, plan);
                let found = jobs.iter().map(|j| j.position).collect();
                (jobs, found)
            }
            Items::Rescore {
                source_run_id,
                test_set_id,
            } => {
                let results = store.results_at(*source_run_id, positions).await?;
                let found = results.iter().map(|(p, _)| *p).collect();
                let jobs = results
                    .into_iter()
                    .map(|(position, r)| Job {
                        position,
                        repetition: r.repetition,
                        metrics: plan.for_test(r.behavior_id),
                        test: snapshot(&r, *test_set_id),
                        input: Input::Rescore(r),
                    })
                    .collect();
                (jobs, found)
            }
            Items::RetryErrors {
                source_run_id,
                test_set_id,
                tests,
            } => {
                let results = store.results_at(*source_run_id, positions).await?;
                let jobs: Vec<Job> = results
                    .into_iter()
                    .filter_map(|(position, r)| retry_job(position, r, tests, *test_set_id, plan))
                    .collect();
                let found = jobs.iter().map(|j| j.position).collect();
                (jobs, found)
            }
        };
        let dropped = positions
            .iter()
            .copied()
            .filter(|p| !found.contains(p))
            .collect();
        Ok((jobs, dropped))
    }
}

/// The jobs of the items at `positions` (sorted) of an execution whose tests run `repeats`
/// times, from the tests at their positions (`tests`, sorted by position): a test is cloned only
/// for its repetitions but the last, so a run of one repetition moves every test as it was read.
fn repetition_jobs(
    tests: Vec<(i64, Test)>,
    positions: &[i64],
    repeats: i64,
    plan: &MetricPlan,
) -> Vec<Job> {
    let mut jobs = Vec::with_capacity(positions.len());
    let mut positions = positions.iter().copied().peekable();
    for (seq, test) in tests {
        // Items of tests removed since have no test here: skipped, so they are dropped.
        while positions.next_if(|p| p / repeats < seq).is_some() {}
        let mut test = Some(test);
        while let Some(position) = positions.next_if(|p| p / repeats == seq) {
            let last = positions.peek().is_none_or(|p| p / repeats != seq);
            let test = if last { test.take() } else { test.clone() };
            let Some(test) = test else { break };
            jobs.push(Job {
                position,
                repetition: u32::try_from(position % repeats).unwrap_or(0),
                metrics: plan.for_test(test.behavior_id),
                test,
                input: Input::Call,
            });
        }
    }
    jobs
}

/// The job of a retry-errors run for one result of its source: an error is executed again with
/// the test as it is now (`None` when the test was removed since), anything else is copied.
fn retry_job(
    position: i64,
    r: TestResult,
    tests: &HashMap<Uuid, Test>,
    test_set_id: Uuid,
    plan: &MetricPlan,
) -> Option<Job> {
    // The behaviour at the time of the source run picks the metrics, as it did then.
    let metrics = plan.for_test(r.behavior_id);
    if r.status != ResultStatus::Error {
        return Some(Job {
            position,
            repetition: r.repetition,
            test: snapshot(&r, test_set_id),
            metrics,
            input: Input::Copy(r),
        });
    }
    Some(Job {
        position,
        repetition: r.repetition,
        test: tests.get(&r.test_id)?.clone(),
        metrics,
        input: Input::Call,
    })
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
        key: String::new(),
    }
}
