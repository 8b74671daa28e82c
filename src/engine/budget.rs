//! A run's spend against its budget (`ExecuteRequest.budget_usd`), as this replica sees it: what
//! was stored when it began driving the run, plus what its own results cost since. No test
//! starts once the spend reaches the budget; tests in flight finish.

use std::sync::{Mutex, PoisonError};

use crate::domain::TestRun;

/// What a run has spent and may spend.
#[derive(Debug)]
pub(super) struct Spend {
    budget_usd: Option<f64>,
    spent_usd: Mutex<f64>,
}

impl Spend {
    /// The spend of `run` as stored.
    pub(super) fn of(run: &TestRun) -> Self {
        let plan = run.plan.as_ref();
        Spend {
            budget_usd: plan.and_then(|p| p.budget_usd),
            spent_usd: Mutex::new(plan.map_or(0.0, |p| p.tally.spending().total_usd())),
        }
    }

    /// Whether the budget is spent, so no further test may start.
    pub(super) fn exhausted(&self) -> bool {
        self.budget_usd.is_some_and(|budget| {
            *self
                .spent_usd
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                >= budget
        })
    }

    /// Counts what a result cost.
    pub(super) fn add(&self, usd: f64) {
        *self
            .spent_usd
            .lock()
            .unwrap_or_else(PoisonError::into_inner) += usd;
    }
}
