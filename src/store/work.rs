//! The shared work of runs: the items a run has left, claimed by replicas under leases. Every
//! replica on one database takes part in every run: it claims a few items, works on them, and
//! stores their results in the transaction that gives up the claim; a replica that dies leaves
//! claims that expire and are taken by the others.

use uuid::Uuid;

use crate::domain::{TestResult, TestRun};

/// Where the items of a new run come from (by position, in order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WorkSource {
    /// The tests of a test set up to a position (an execution run), each `repeats` times: the
    /// items of the test at `seq` are at `seq * repeats + repetition`.
    Tests {
        /// The test set.
        test_set_id: Uuid,
        /// Position of its last test when the run started.
        through: i64,
        /// How many times each test runs (at least 1).
        repeats: u32,
    },
    /// The results of an earlier run (a rescore, or a retry of its errors).
    Results {
        /// The source run.
        run_id: Uuid,
        /// Position of its last result taken.
        through: i64,
    },
    /// Chosen tests of a test set (their repetitions' positions), or results of an earlier run,
    /// by position (a run of some of the tests: filtered or sharded).
    Positions(Vec<i64>),
}

/// A replica asking for items of a run.
///
/// A cap bounds the items in flight. While the asking replica is the only one holding live
/// claims under a cap, its own concurrency (which never exceeds the cap) bounds what it has in
/// flight, so it claims freely: claims also count items finished but not yet stored and items
/// claimed ahead, and counting those would keep fewer items in flight than the cap allows. Once
/// another replica holds claims under the cap, every claim counts, and a replica joins only with
/// what the claims of all leave under the cap.
#[derive(Clone, Debug)]
pub struct ClaimRequest<'a> {
    /// The run.
    pub run_id: Uuid,
    /// The replica asking.
    pub owner: &'a str,
    /// Now, in Unix milliseconds: claims whose lease ended before are free.
    pub now_ms: i64,
    /// When the claims end unless renewed, in Unix milliseconds.
    pub lease_until_ms: i64,
    /// Most items to claim.
    pub limit: u32,
    /// Most items of the run in flight at once across every replica, when limited.
    pub run_cap: Option<u32>,
    /// Most items calling this endpoint in flight at once across every run and replica.
    pub endpoint_cap: Option<(Uuid, u32)>,
}

/// A replica's finished items of one run.
#[derive(Debug)]
pub struct Completion<'a> {
    /// The run.
    pub run_id: Uuid,
    /// The replica that claimed them.
    pub owner: &'a str,
    /// Finished items that have no result (their test was removed from the set meanwhile).
    pub dropped: Vec<i64>,
    /// Results, each with the position of its item, in the order to store them.
    pub results: Vec<(i64, TestResult)>,
}

/// Brings a run up to date with results just stored: `(run, stored, work_left)` → the run to
/// store (which ends it when nothing is left). Runs inside the storing transaction.
pub type Fold<'a> = Box<dyn FnOnce(TestRun, &[TestResult], bool) -> TestRun + Send + 'a>;

/// What storing a [`Completion`] did.
#[derive(Debug)]
pub struct Completed {
    /// The run as stored afterwards. When it had already ended (cancelled, or failed
    /// elsewhere), nothing was stored.
    pub run: TestRun,
    /// The results stored: those whose item the replica still held, in order.
    pub results: Vec<TestResult>,
    /// Position of the run's last result before these (`None`: there was none).
    pub after: Option<i64>,
    /// Position of the last result stored (`None`: none was).
    pub last: Option<i64>,
}
