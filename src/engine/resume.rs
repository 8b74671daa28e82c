//! Resuming the runs that a stop or a crash left `RUNNING`: each goes on with the tests that have
//! no stored result, by the plan it stored when it started. A run that cannot go on (its plan,
//! test set, endpoint or a metric is gone) ends `FAILED`, saying why.

use std::collections::HashSet;
use std::sync::Arc;

use uuid::Uuid;

use super::jobs::{call_jobs, from_vec, rescore_jobs, retry_jobs};
use super::plan::MetricPlan;
use super::runner::Work;
use super::summary::Tally;
use super::{Engine, LOAD_PAGE, collect_pages};
use crate::domain::{Ref, RunKind, RunStatus, TestRun};
use crate::error::{Error, Result};

impl Engine {
    /// Resumes every run left `RUNNING`; returns how many go on.
    pub async fn resume_unfinished(self: &Arc<Self>) -> Result<usize> {
        let mut resumed = 0;
        for run in self.store.unfinished_runs().await? {
            let (tally, done) = self.stored_so_far(&run).await?;
            let stored = done.len();
            match self.jobs_left(&run, done).await {
                Ok(left) => {
                    tracing::info!(run_id = %run.id, stored, left = left.count, "run resumed");
                    let live = self.register(run.id, stored);
                    self.spawn_drive(run, left, tally, live);
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

    /// The tally of a run's stored results and the tests they belong to, read a page at a time.
    async fn stored_so_far(&self, run: &TestRun) -> Result<(Tally, HashSet<Uuid>)> {
        let mut tally = Tally::new(run.total);
        let mut done = HashSet::new();
        let mut after = None;
        loop {
            let page = self.store.results_after(run.id, after, LOAD_PAGE).await?;
            let Some(&(last, _)) = page.last() else {
                return Ok((tally, done));
            };
            after = Some(last);
            for (_, result) in &page {
                tally.add(result);
                done.insert(result.test_id);
            }
        }
    }

    /// The jobs of `run` whose test has no result in `done`.
    async fn jobs_left(&self, run: &TestRun, done: HashSet<Uuid>) -> Result<Work> {
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
        let store = Arc::clone(&self.store);
        let (jobs, count) = if run.kind == RunKind::Rescore {
            let source = source()?;
            let extent = self.store.run_extent(source).await?;
            let through = extent.last.unwrap_or(0);
            let jobs = rescore_jobs(
                store,
                source,
                through,
                run.test_set_id,
                Arc::new(metrics),
                done.clone(),
            );
            (jobs, extent.count as usize)
        } else if plan.retry_errors {
            // The tests are called as they are now; a test set deleted since ends the run.
            self.store.get_test_set(&Ref::Id(run.test_set_id)).await?;
            let tests = self.tests_by_id(run.test_set_id).await?;
            let source = source()?;
            let results = collect_pages(|p| self.store.list_results(source, p)).await?;
            let jobs: Vec<_> = retry_jobs(results, &tests, run.test_set_id, &metrics)
                .into_iter()
                .filter(|job| !done.contains(&job.test.id))
                .collect();
            let count = jobs.len() + done.len();
            (from_vec(jobs), count)
        } else {
            // A test set deleted since ends the run; tests removed from it are left out.
            self.store.get_test_set(&Ref::Id(run.test_set_id)).await?;
            let through = plan.tests_through.unwrap_or(i64::MAX);
            let count = run.total as usize;
            let jobs = call_jobs(
                store,
                run.test_set_id,
                through,
                Arc::new(metrics),
                done.clone(),
            );
            (jobs, count)
        };
        let count = count.saturating_sub(done.len());
        let calls = run.kind != RunKind::Rescore && count > 0;
        let target = if calls {
            let endpoint = self.store.get_endpoint(&Ref::Id(run.endpoint_id)).await?;
            Some(self.prepare(&endpoint, &run.parameters)?)
        } else {
            None
        };
        Ok(Work {
            jobs,
            count,
            target,
        })
    }
}
