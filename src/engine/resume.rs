//! Resuming the runs that a stop or a crash left `RUNNING`: each goes on with the tests that have
//! no stored result, by the plan it stored when it started. A run that cannot go on (its plan,
//! test set, endpoint or a metric is gone) ends `FAILED`, saying why.

use std::collections::HashSet;
use std::sync::Arc;

use super::jobs::{Input, Job, call_jobs, rescore_jobs, retry_jobs};
use super::plan::MetricPlan;
use super::summary::Tally;
use super::{Engine, collect_pages};
use crate::domain::{Ref, RunKind, RunStatus, TestRun};
use crate::error::{Error, Result};

impl Engine {
    /// Resumes every run left `RUNNING`; returns how many go on.
    pub async fn resume_unfinished(self: &Arc<Self>) -> Result<usize> {
        let mut resumed = 0;
        for run in self.store.unfinished_runs().await? {
            let stored = collect_pages(|p| self.store.list_results(run.id, p)).await?;
            let mut tally = Tally::new(run.total);
            stored.iter().for_each(|r| tally.add(r));
            let done: HashSet<_> = stored.iter().map(|r| r.test_id).collect();
            match self.jobs_left(&run, &done).await {
                Ok((jobs, target)) => {
                    tracing::info!(run_id = %run.id, stored = done.len(), left = jobs.len(), "run resumed");
                    let (progress, cancel) = self.register(run.id, done.len());
                    self.spawn_drive(run, jobs, target, tally, cancel, progress);
                    resumed += 1;
                }
                Err(e) => {
                    tracing::warn!(run_id = %run.id, error = %e, "run cannot be resumed");
                    let mut run = run;
                    run.status = RunStatus::Failed;
                    run.error = Some(format!("the run could not be resumed: {e}"));
                    tally.finish(&mut run);
                    self.store.update_run(&run).await?;
                }
            }
        }
        Ok(resumed)
    }

    /// The jobs of `run` whose test has no result in `done`, and the endpoint when some job
    /// calls it.
    async fn jobs_left(
        &self,
        run: &TestRun,
        done: &HashSet<uuid::Uuid>,
    ) -> Result<(Vec<Job>, Option<Arc<crate::target::PreparedTarget>>)> {
        let plan = run.plan.as_ref().ok_or_else(|| {
            Error::precondition(
                format!("run {}", run.id),
                "it was started by a version of Assay that did not store its plan",
            )
        })?;
        let metrics = MetricPlan::load(&*self.store, &self.scorer, plan).await?;
        let source_results = || async {
            let source = run
                .source_run_id
                .ok_or_else(|| Error::Internal(format!("run {} has no source run", run.id)))?;
            collect_pages(|p| self.store.list_results(source, p)).await
        };
        let jobs = if run.kind == RunKind::Rescore {
            rescore_jobs(source_results().await?, run.test_set_id, &metrics)
        } else {
            // The tests are called as they are now; a test set deleted since ends the run.
            self.store.get_test_set(&Ref::Id(run.test_set_id)).await?;
            let mut tests = self.tests_by_id(run.test_set_id).await?;
            if plan.retry_errors {
                retry_jobs(source_results().await?, &tests, run.test_set_id, &metrics)
            } else {
                // In the order of the plan; tests removed since are left out.
                let tests = plan.test_ids.iter().filter_map(|id| tests.remove(id));
                call_jobs(tests.collect(), &metrics)
            }
        };
        let jobs: Vec<Job> = jobs
            .into_iter()
            .filter(|job| !done.contains(&job.test.id))
            .collect();
        let target = if jobs.iter().any(|job| matches!(job.input, Input::Call)) {
            let endpoint = self.store.get_endpoint(&Ref::Id(run.endpoint_id)).await?;
            Some(self.prepare(&endpoint, &run.parameters)?)
        } else {
            None
        };
        Ok((jobs, target))
    }
}
