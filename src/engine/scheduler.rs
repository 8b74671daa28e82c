//! Taking part in runs. Every replica looks for runs with free items (just started here or on
//! another replica, left by a stop, or by a replica whose leases ended) and works on each; it
//! renews the leases of the items it holds, and stops working on runs that ended elsewhere
//! (cancelled on another replica). A run that cannot go on (its plan, test set, endpoint or a
//! metric is gone) ends `FAILED`, saying why.

use std::sync::Arc;
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::Engine;
use super::jobs::Items;
use super::plan::MetricPlan;
use super::runner::Work;
use crate::domain::{Endpoint, Ref, RunKind, RunStatus, TestRun};
use crate::endpoint_client::PreparedTarget;
use crate::error::{Error, Result};

/// How often a replica looks for work and for runs that ended elsewhere, and a follower of a run
/// worked on elsewhere reads new results.
pub const DEFAULT_POLL: Duration = Duration::from_millis(100);

/// This replica, as the others see it.
#[derive(Clone, Debug)]
pub struct Replica {
    /// Names this replica's claims; new at every start.
    pub id: String,
    /// How long a claim holds unless renewed: how soon the others take over the items of a
    /// replica that died.
    pub lease: Duration,
    /// See [`DEFAULT_POLL`].
    pub poll: Duration,
}

impl Replica {
    /// A replica with a new id whose claims last `lease`.
    pub fn new(lease: Duration) -> Self {
        Replica {
            id: Uuid::now_v7().to_string(),
            lease,
            poll: DEFAULT_POLL,
        }
    }

    /// The lease, in milliseconds.
    pub(super) fn lease_ms(&self) -> i64 {
        i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX)
    }
}

impl Engine {
    /// Takes part in every run with free items, from now until the server stops.
    pub fn schedule(self: &Arc<Self>) {
        let engine = Arc::clone(self);
        self.tasks
            .spawn(async move { engine.schedule_loop().await });
    }

    async fn schedule_loop(self: Arc<Self>) {
        // Renewed well before they end, so a slow round does not lose them.
        let renew_every = self.replica.lease / 3;
        let mut renewed = Instant::now();
        loop {
            if let Err(e) = self.look().await {
                tracing::warn!(error = %e, "looking for runs to work on failed");
            }
            if renewed.elapsed() >= renew_every {
                let until = chrono::Utc::now().timestamp_millis() + self.replica.lease_ms();
                match self.store.renew_claims(&self.replica.id, until).await {
                    Ok(()) => renewed = Instant::now(),
                    Err(e) => tracing::warn!(error = %e, "leases could not be renewed"),
                }
            }
            tokio::select! {
                () = self.stopping.cancelled() => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(self.replica.poll) => {}
            }
        }
    }

    /// One round: stop working on runs that ended elsewhere, take part in runs with free items.
    async fn look(self: &Arc<Self>) -> Result<()> {
        for (run_id, cancel) in self.live_runs() {
            match self.store.get_run(run_id).await {
                Ok(run) if run.status != RunStatus::Running => cancel.cancel(),
                // A run starting here is live before it is stored.
                Ok(_) | Err(Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let now = chrono::Utc::now().timestamp_millis();
        for run_id in self.store.claimable_runs(now).await? {
            if self.stopping.is_cancelled() {
                break;
            }
            let Some(live) = self.register(run_id) else {
                continue;
            };
            let run = self.store.get_run(run_id).await?;
            match self.work_of(&run).await {
                Ok(work) => {
                    tracing::debug!(run_id = %run_id, "working on a run");
                    self.spawn_drive(run, work, live);
                }
                // The database is away: try again at the next round.
                Err(e @ (Error::Storage { .. } | Error::Unavailable(_))) => {
                    self.unregister(run_id);
                    return Err(e);
                }
                Err(e) => {
                    tracing::warn!(run_id = %run_id, error = %e, "run cannot go on");
                    self.unregister(run_id);
                    self.fail(run_id, format!("the run could not be resumed: {e}"))
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// What working on a stored run needs, read again from the store.
    async fn work_of(&self, run: &TestRun) -> Result<Work> {
        let plan = run.plan.as_ref().ok_or_else(|| {
            Error::precondition(
                format!("run {}", run.id),
                "it was started by a version of Assay that did not store its plan",
            )
        })?;
        let metrics = MetricPlan::load(&*self.store, &self.scorer, plan).await?;
        let source = || {
            run.source_run_id
                .ok_or_else(|| Error::internal(format!("run {} has no source run", run.id)))
        };
        let items = if run.kind == RunKind::Rescore {
            Items::Rescore {
                source_run_id: source()?,
                test_set_id: run.test_set_id,
            }
        } else {
            // A test set deleted since ends the run; tests removed from it are left out.
            self.store.get_test_set(&Ref::Id(run.test_set_id)).await?;
            if plan.retry_errors {
                Items::RetryErrors {
                    source_run_id: source()?,
                    test_set_id: run.test_set_id,
                    tests: self.tests_by_id(run.test_set_id).await?,
                }
            } else {
                Items::Tests {
                    test_set_id: run.test_set_id,
                    repeats: plan.repeats(),
                }
            }
        };
        let (endpoint, target) = if run.kind == RunKind::Rescore {
            (None, None)
        } else {
            let endpoint = self.store.get_endpoint(&Ref::Id(run.endpoint_id)).await?;
            let target = self.prepare(&endpoint, &run.parameters)?;
            (Some(endpoint), Some(target))
        };
        Ok(self.work(run, items, Arc::new(metrics), target, endpoint.as_ref()))
    }

    /// How this replica works on `run`: on its own share of the run's concurrency, with the caps
    /// that hold across replicas.
    pub(super) fn work(
        &self,
        run: &TestRun,
        items: Items,
        metrics: Arc<MetricPlan>,
        target: Option<Arc<PreparedTarget>>,
        endpoint: Option<&Endpoint>,
    ) -> Work {
        let run_cap = match run.mode {
            crate::domain::ExecutionMode::Sequential => Some(1),
            crate::domain::ExecutionMode::Parallel => {
                run.plan.as_ref().and_then(|p| p.cluster_concurrency)
            }
        };
        let endpoint_cap = endpoint
            .filter(|e| e.max_concurrency > 0)
            .map(|e| (e.id, e.max_concurrency));
        Work {
            items,
            metrics,
            target,
            concurrency: self.concurrency.for_run(&[run_cap.unwrap_or(0)]),
            run_cap,
            endpoint_cap,
        }
    }
}
