//! Reading stored runs and their results: what the engine has done, for clients that look back.

use uuid::Uuid;

use super::Engine;
use crate::domain::{Page, PageRequest, Ref, RunFilter, TestResult, TestRun};
use crate::error::Result;

impl Engine {
    /// One run by id.
    pub async fn get_run(&self, run_id: Uuid) -> Result<TestRun> {
        self.store.get_run(run_id).await
    }

    /// A page of runs, newest first, of a test set and/or an endpoint when given.
    pub async fn list_runs(
        &self,
        test_set: Option<&Ref>,
        endpoint: Option<&Ref>,
        page: PageRequest,
    ) -> Result<Page<TestRun>> {
        let mut filter = RunFilter::default();
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
}
