//! Reading stored runs and their results: what the engine has done, for clients that look back.

use uuid::Uuid;

use super::{Engine, collect_pages};
use crate::domain::{
    Comparison, Labels, MatchBy, Page, PageRequest, Ref, RunFilter, RunStatus, TestResult, TestRun,
    compare,
};
use crate::error::{Error, Result};
use crate::store::LatestRun;

/// Two runs compared test by test.
#[derive(Clone, Debug)]
pub struct RunComparison {
    /// The run judged.
    pub head: TestRun,
    /// The run it was compared with.
    pub base: TestRun,
    /// Test by test.
    pub comparison: Comparison,
}

/// Where the base of a comparison comes from.
#[derive(Clone, Debug)]
pub enum Base {
    /// This run.
    Run(Uuid),
    /// The latest COMPLETED or PARTIAL run of the head's test set and endpoint that ended
    /// before the head and carries these labels.
    Latest(Labels),
}

impl Engine {
    /// One run by id.
    pub async fn get_run(&self, run_id: Uuid) -> Result<TestRun> {
        self.store.get_run(run_id).await
    }

    /// A page of runs, newest first, of a test set and/or an endpoint when given, carrying every
    /// one of `labels`.
    pub async fn list_runs(
        &self,
        test_set: Option<&Ref>,
        endpoint: Option<&Ref>,
        labels: Labels,
        page: PageRequest,
    ) -> Result<Page<TestRun>> {
        let mut filter = RunFilter {
            labels,
            ..RunFilter::default()
        };
        if let Some(test_set) = test_set {
            filter.test_set_id = Some(self.store.get_test_set(test_set).await?.id);
        }
        if let Some(endpoint) = endpoint {
            filter.endpoint_id = Some(self.store.get_endpoint(endpoint).await?.id);
        }
        self.store.list_runs(&filter, page).await
    }

    /// A page of a run's results in the order they were stored; an unknown run is `NotFound`.
    pub async fn list_results(&self, run_id: Uuid, page: PageRequest) -> Result<Page<TestResult>> {
        self.store.get_run(run_id).await?;
        self.store.list_results(run_id, page).await
    }

    /// The latest completed run of a test set and endpoint that carries every one of `labels`,
    /// if any.
    pub async fn last_run(
        &self,
        test_set: &Ref,
        endpoint: &Ref,
        labels: &Labels,
    ) -> Result<Option<TestRun>> {
        let test_set = self.store.get_test_set(test_set).await?;
        let endpoint = self.store.get_endpoint(endpoint).await?;
        self.store
            .latest_run(&LatestRun {
                test_set_id: test_set.id,
                endpoint_id: endpoint.id,
                statuses: &[RunStatus::Completed],
                finished_before: None,
                labels,
            })
            .await
    }

    /// Compares the ended run `head` with `base`, test by test (by test id, or by prompt when
    /// the runs are of different test sets).
    pub async fn compare_runs(&self, head: Uuid, base: Base) -> Result<RunComparison> {
        let head = self.ended_run(head, "head_run").await?;
        let base = match base {
            Base::Run(id) => self.ended_run(id, "base_run").await?,
            Base::Latest(labels) => self
                .store
                .latest_run(&LatestRun {
                    test_set_id: head.test_set_id,
                    endpoint_id: head.endpoint_id,
                    statuses: &[RunStatus::Completed, RunStatus::Partial],
                    finished_before: head.finished_at,
                    labels: &labels,
                })
                .await?
                .ok_or_else(|| no_base(&head, &labels))?,
        };
        let base_results = collect_pages(|p| self.store.list_results(base.id, p)).await?;
        let head_results = collect_pages(|p| self.store.list_results(head.id, p)).await?;
        let by = if base.test_set_id == head.test_set_id {
            MatchBy::TestId
        } else {
            MatchBy::Prompt
        };
        Ok(RunComparison {
            comparison: compare(&base_results, &head_results, by),
            head,
            base,
        })
    }

    /// A run that has ended; `field` names it in errors.
    async fn ended_run(&self, id: Uuid, field: &str) -> Result<TestRun> {
        let run = self.store.get_run(id).await?;
        if run.status == RunStatus::Running {
            return Err(Error::precondition(
                format!("run {id}"),
                format!("{field} {id} is still running; compare it once it has ended"),
            ));
        }
        Ok(run)
    }
}

/// The error of a comparison that found no base run.
fn no_base(head: &TestRun, labels: &Labels) -> Error {
    let with = if labels.is_empty() {
        String::new()
    } else {
        let list: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!(" with labels {}", list.join(", "))
    };
    Error::precondition(
        format!("run {}", head.id),
        format!(
            "no COMPLETED or PARTIAL run of test set {} and endpoint {}{with} ended before run {}",
            head.test_set_id, head.endpoint_id, head.id
        ),
    )
}
