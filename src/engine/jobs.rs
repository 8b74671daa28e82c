//! The jobs of a run: one per test, with the metrics that score it and where its answer comes
//! from (a call, a stored output to score again, or a stored result to copy).

use std::collections::HashMap;

use uuid::Uuid;

use super::plan::{MetricPlan, MetricSet};
use crate::domain::{ResultStatus, Test, TestResult};

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

/// Jobs that call the endpoint for `tests`.
pub(super) fn call_jobs(tests: Vec<Test>, plan: &MetricPlan) -> Vec<Job> {
    tests
        .into_iter()
        .map(|test| Job {
            metrics: plan.for_test(test.behavior_id),
            test,
            input: Input::Call,
        })
        .collect()
}

/// Jobs that score the stored results of a source run again.
pub(super) fn rescore_jobs(
    results: Vec<TestResult>,
    test_set_id: Uuid,
    plan: &MetricPlan,
) -> Vec<Job> {
    results
        .into_iter()
        .map(|r| Job {
            metrics: plan.for_test(r.behavior_id),
            test: snapshot(&r, test_set_id),
            input: Input::Rescore(r),
        })
        .collect()
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
