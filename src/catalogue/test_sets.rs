//! Test sets: their own fields and metrics (the middle tier of the hierarchy), and their tests.

use std::collections::HashMap;

use uuid::Uuid;

use super::{Catalogue, ids, refs};
use crate::domain::{
    GroupDraft, Metric, Page, PageRequest, Ref, Test, TestDraft, TestSet, apply_patch,
    check_stored_text,
};
use crate::error::{Error, Result};

/// Most tests one `AddTests` call, or one message of an import, may carry.
pub const MAX_TESTS_PER_CALL: usize = 100_000;

impl Catalogue {
    /// Creates a test set without tests; its metrics must exist.
    pub async fn create_test_set(&self, draft: GroupDraft) -> Result<TestSet> {
        let test_set = self.new_test_set(draft, "test_set").await?;
        self.store.create_test_set(&test_set).await?;
        tracing::info!(test_set_id = %test_set.id, name = %test_set.name, "test set created");
        Ok(test_set)
    }

    /// The test set a draft describes, its metrics resolved; not stored. `field` is the
    /// draft's path in the request, for errors.
    pub(super) async fn new_test_set(&self, draft: GroupDraft, field: &str) -> Result<TestSet> {
        let metric_ids = self.metric_ids(&draft.metrics).await?;
        let now = chrono::Utc::now();
        TestSet::from_draft(draft, metric_ids, (Uuid::now_v7(), now), field)
    }

    /// One test set by id or name, with its test count.
    pub async fn get_test_set(&self, test_set: &Ref) -> Result<TestSet> {
        self.store.get_test_set(test_set).await
    }

    /// A page of test sets in creation order.
    pub async fn list_test_sets(&self, page: PageRequest) -> Result<Page<TestSet>> {
        self.store.list_test_sets(page).await
    }

    /// Applies the fields of `update` named by `paths` (every set field when empty) to a test
    /// set, in one transaction; its tests are untouched.
    pub async fn update_test_set(
        &self,
        test_set: &Ref,
        mut update: GroupDraft,
        paths: &[String],
    ) -> Result<TestSet> {
        // Resolved first: a change runs inside the transaction and must not wait.
        update.metrics = refs(self.metric_ids(&update.metrics).await?);
        let paths = paths.to_vec();
        let change = move |current: TestSet| {
            let draft = apply_patch(current.to_draft(), &update, &paths)?;
            let metric_ids = ids(&draft.metrics);
            let created = (current.id, current.created_at);
            let updated = TestSet::from_draft(draft, metric_ids, created, "test_set")?;
            Ok(TestSet {
                test_count: current.test_count,
                ..updated
            })
        };
        self.store.update_test_set(test_set, Box::new(change)).await
    }

    /// Deletes a test set and its tests; its runs stay.
    pub async fn delete_test_set(&self, test_set: &Ref) -> Result<()> {
        let test_set = self.store.get_test_set(test_set).await?;
        self.store.delete_test_set(test_set.id).await
    }

    /// The metrics of a test set, in the order they were added.
    pub async fn test_set_metrics(&self, test_set: &Ref) -> Result<Vec<Metric>> {
        let test_set = self.store.get_test_set(test_set).await?;
        self.metrics_by_id(test_set.metric_ids).await
    }

    /// Adds and removes metrics of a test set atomically; returns its metrics afterwards.
    /// Adding one already there or removing one not there changes nothing; an unknown
    /// reference changes nothing and is `NotFound`.
    pub async fn change_test_set_metrics(
        &self,
        test_set: &Ref,
        add: &[Ref],
        remove: &[Ref],
    ) -> Result<Vec<Metric>> {
        let test_set = self.store.get_test_set(test_set).await?;
        let (add, remove) = (self.metric_ids(add).await?, self.metric_ids(remove).await?);
        let after = self
            .store
            .change_test_set_metrics(test_set.id, &add, &remove)
            .await?;
        self.metrics_by_id(after).await
    }

    async fn metrics_by_id(&self, ids: Vec<Uuid>) -> Result<Vec<Metric>> {
        self.store.resolve_metrics(&refs(ids)).await
    }

    /// Appends tests to a test set, all or nothing.
    pub async fn add_tests(&self, test_set: &Ref, drafts: Vec<TestDraft>) -> Result<Vec<Test>> {
        let test_set = self.store.get_test_set(test_set).await?;
        check_piece(drafts.len())?;
        let tests = self
            .tests(test_set.id, drafts, 0, &mut HashMap::new())
            .await?;
        self.store.add_tests(test_set.id, &tests).await?;
        tracing::info!(test_set_id = %test_set.id, count = tests.len(), "tests added");
        Ok(tests)
    }

    /// A page of a test set's tests in test-set order.
    pub async fn list_tests(&self, test_set: &Ref, page: PageRequest) -> Result<Page<Test>> {
        let test_set = self.store.get_test_set(test_set).await?;
        self.store.list_tests(test_set.id, page).await
    }

    /// Removes tests from a test set, all or nothing; returns how many were removed.
    pub async fn remove_tests(&self, test_set: &Ref, test_ids: &[Uuid]) -> Result<u32> {
        let test_set = self.store.get_test_set(test_set).await?;
        if test_ids.is_empty() {
            return Err(Error::invalid("test_ids", "give at least one test id"));
        }
        self.store.remove_tests(test_set.id, test_ids).await
    }

    /// Tests from drafts, validated, their behaviours resolved through `behaviors` (each
    /// distinct reference looked up once, so a bulk import with one behaviour costs one lookup).
    /// `first` is the index of the first draft in its request, for error fields (`tests[i]`).
    pub(super) async fn tests(
        &self,
        test_set_id: Uuid,
        drafts: Vec<TestDraft>,
        first: usize,
        behaviors: &mut HashMap<Ref, Uuid>,
    ) -> Result<Vec<Test>> {
        let now = chrono::Utc::now();
        let mut tests = Vec::with_capacity(drafts.len());
        for (i, mut draft) in drafts.into_iter().enumerate() {
            let behavior_id = match draft.behavior.take() {
                None => None,
                Some(reference) => Some(match behaviors.get(&reference) {
                    Some(id) => *id,
                    None => {
                        let id = self.store.get_behavior(&reference).await?.id;
                        behaviors.insert(reference, id);
                        id
                    }
                }),
            };
            let field = format!("tests[{}]", first + i);
            let limit = self.max_stored_bytes;
            check_stored_text(&format!("{field}.prompt"), &draft.prompt, limit)?;
            if let Some(expected) = &draft.expected_response {
                check_stored_text(&format!("{field}.expected_response"), expected, limit)?;
            }
            tests.push(Test::from_draft(
                draft,
                test_set_id,
                behavior_id,
                now,
                &field,
            )?);
        }
        Ok(tests)
    }
}

/// Checks the size of one piece of tests: at least one, at most [`MAX_TESTS_PER_CALL`].
pub(super) fn check_piece(count: usize) -> Result<()> {
    if count == 0 {
        return Err(Error::invalid("tests", "give at least one test"));
    }
    if count > MAX_TESTS_PER_CALL {
        return Err(Error::invalid(
            "tests",
            format!("{count} tests in one call; at most {MAX_TESTS_PER_CALL}"),
        ));
    }
    Ok(())
}
