//! Applying a suite: metrics, behaviours, endpoints and test sets (with their tests) matched by
//! name and made to match the suite, all or nothing.
//!
//! Everything is read, resolved and validated first, with references to resources of the same
//! suite resolved to the ids they are given here (a judge endpoint before its metric, metrics
//! before the behaviours and test sets naming them, behaviours before tests); then the store
//! writes it all in one transaction. So a bad item anywhere stores nothing, and no half-applied
//! suite is ever seen. Between the reads and the write a concurrent change of the same resources
//! is overwritten (the suite is the wanted state); a name taken meanwhile fails the apply.

use std::collections::HashMap;

use uuid::Uuid;

use super::Catalogue;
use super::endpoints::{check_env, check_outbound};
use super::metrics::{check_judge, model_endpoint, model_role, place_judge};
use crate::domain::{
    Behavior, Endpoint, EndpointDraft, GroupDraft, Metric, MetricDraft, PageRequest, Ref, Test,
    TestDraft, TestSet, Timestamp,
};
use crate::endpoint_client::BodyTemplateSyntax;
use crate::error::{Error, Result};
use crate::store::{SuiteWrites, Writes};

/// Tests read per page when comparing a test set's stored tests with a suite's.
const TEST_PAGE: u32 = 1000;

/// A suite as given: drafts of every kind, each matched with the stored one by name.
#[derive(Clone, Debug, Default)]
pub struct Suite {
    /// Metrics.
    pub metrics: Vec<MetricDraft>,
    /// Behaviours.
    pub behaviors: Vec<GroupDraft>,
    /// Endpoints.
    pub endpoints: Vec<EndpointDraft>,
    /// Test sets and their tests.
    pub test_sets: Vec<SuiteTestSet>,
}

/// A test set of a suite.
#[derive(Clone, Debug, Default)]
pub struct SuiteTestSet {
    /// The test set's own fields.
    pub test_set: GroupDraft,
    /// Its tests; empty leaves the stored tests as they are.
    pub tests: Vec<TestDraft>,
}

/// What applying did to one resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Created.
    Created,
    /// Replaced: it differed.
    Updated,
    /// Left alone: it was as the suite says.
    Unchanged,
}

/// What applying did to the tests of one test set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TestChanges {
    /// Appended.
    pub created: u32,
    /// Updated in place.
    pub updated: u32,
    /// Removed: not in the suite.
    pub removed: u32,
    /// Left alone.
    pub unchanged: u32,
}

/// One resource of an applied suite.
#[derive(Clone, Debug)]
pub struct Applied {
    /// `metric`, `behavior`, `endpoint` or `test_set`.
    pub kind: &'static str,
    /// Its name.
    pub name: String,
    /// Its id.
    pub id: Uuid,
    /// What was done to its own fields.
    pub action: Action,
    /// For a test set that lists tests: what was done to them.
    pub tests: Option<TestChanges>,
}

/// Catalogue records whose stored form has a last-change time: a record built from a suite is
/// compared with the stored one with that time (and other read-only fields) set aside.
trait Stamped: PartialEq {
    /// Copies the fields the suite does not set (the last change, counts) from the stored one.
    fn settle_from(&mut self, stored: &Self);
    /// Marks the record as changed now.
    fn touch(&mut self, now: Timestamp);
}

macro_rules! stamped {
    ($($type:ty),*) => {$(
        impl Stamped for $type {
            fn settle_from(&mut self, stored: &Self) {
                self.updated_at = stored.updated_at;
            }
            fn touch(&mut self, now: Timestamp) {
                self.updated_at = now;
            }
        }
    )*};
}
stamped!(Metric, Behavior, Endpoint);

impl Stamped for TestSet {
    fn settle_from(&mut self, stored: &Self) {
        self.updated_at = stored.updated_at;
        self.test_count = stored.test_count;
    }
    fn touch(&mut self, now: Timestamp) {
        self.updated_at = now;
    }
}

/// Files `record` as a creation (no stored one), an update (it differs) or nothing.
fn settle<T: Stamped>(
    mut record: T,
    stored: Option<&T>,
    now: Timestamp,
    writes: &mut Writes<T>,
) -> Action {
    match stored {
        None => {
            writes.create.push(record);
            Action::Created
        }
        Some(stored) => {
            record.settle_from(stored);
            if record == *stored {
                return Action::Unchanged;
            }
            record.touch(now);
            writes.update.push(record);
            Action::Updated
        }
    }
}

/// `Ok(None)` for a resource that is not found.
fn found<T>(lookup: Result<T>) -> Result<Option<T>> {
    match lookup {
        Ok(value) => Ok(Some(value)),
        Err(Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The stored id and creation time to keep, or new ones.
fn identity<T>(
    stored: Option<&T>,
    of: impl Fn(&T) -> (Uuid, Timestamp),
    now: Timestamp,
) -> (Uuid, Timestamp) {
    stored.map_or_else(|| (Uuid::now_v7(), now), of)
}

/// Fails when two items of a section have one name: `section[i].name`.
fn unique_names<'a>(section: &str, names: impl Iterator<Item = &'a str>) -> Result<()> {
    let mut seen = HashMap::new();
    for (i, name) in names.enumerate() {
        if let Some(first) = seen.insert(name, i) {
            return Err(Error::invalid(
                format!("{section}[{i}].name"),
                format!("{name:?} is also the name of {section}[{first}]"),
            ));
        }
    }
    Ok(())
}

impl Catalogue {
    /// Makes the catalogue match `suite` (see the module docs); returns what was done to each
    /// resource, in the order applied: endpoints, metrics, behaviours, test sets.
    pub async fn apply_suite(&self, suite: Suite) -> Result<Vec<Applied>> {
        unique_names("endpoints", suite.endpoints.iter().map(|d| d.name.as_str()))?;
        unique_names("metrics", suite.metrics.iter().map(|d| d.name.as_str()))?;
        unique_names("behaviors", suite.behaviors.iter().map(|d| d.name.as_str()))?;
        unique_names(
            "test_sets",
            suite.test_sets.iter().map(|s| s.test_set.name.as_str()),
        )?;
        let now = chrono::Utc::now();
        let mut writes = SuiteWrites::default();
        let mut applied = Vec::new();

        let mut endpoints = HashMap::new();
        for (i, draft) in suite.endpoints.into_iter().enumerate() {
            let field = format!("endpoints[{i}]");
            let stored = found(
                self.store
                    .get_endpoint(&Ref::Name(draft.name.clone()))
                    .await,
            )?;
            let (id, created_at) = identity(stored.as_ref(), |e| (e.id, e.created_at), now);
            let mut endpoint = Endpoint::from_draft(draft, id, created_at)
                .map_err(|e| e.within("endpoint", &field))?;
            if let Some(stored) = &stored {
                endpoint.keep_masked_secrets(stored)?;
            }
            endpoint.validate(&field, &BodyTemplateSyntax)?;
            // The same rules as CreateEndpoint: allowed variables only, reachable addresses only.
            check_env(&endpoint, &self.secret_env)
                .and_then(|()| check_outbound(&endpoint, &self.outbound))
                .map_err(|e| e.within("endpoint", &field))?;
            endpoints.insert(endpoint.name.clone(), endpoint.clone());
            let action = settle(
                endpoint.clone(),
                stored.as_ref(),
                now,
                &mut writes.endpoints,
            );
            applied.push(Applied::of("endpoint", &endpoint.name, id, action));
        }

        let mut metric_ids = HashMap::new();
        for (i, mut draft) in suite.metrics.into_iter().enumerate() {
            let field = format!("metrics[{i}]");
            let role = model_role(draft.kind.as_ref());
            let in_suite = match (role, &draft.judge_endpoint) {
                (Some(role), Some(Ref::Name(name))) => endpoints.get(name).map(|e| (e, role)),
                _ => None,
            };
            let judged = match in_suite {
                Some((model, role)) => {
                    model_endpoint(model, role).map(|id| draft.judge_endpoint = Some(id))
                }
                None => self.resolve_judge(&mut draft).await,
            };
            judged.map_err(|e| e.within("metric", &field))?;
            let stored = found(self.store.get_metric(&Ref::Name(draft.name.clone())).await)?;
            let (id, created_at) = identity(stored.as_ref(), |m| (m.id, m.created_at), now);
            let metric = place_judge(draft, self.default_judge)
                .and_then(|draft| Metric::from_draft(draft, id, created_at))
                .map_err(|e| e.within("metric", &field))?;
            check_judge(&metric, &self.secret_env, &self.outbound)
                .map_err(|e| e.within("metric", &field))?;
            metric_ids.insert(metric.name.clone(), id);
            let name = metric.name.clone();
            let action = settle(metric, stored.as_ref(), now, &mut writes.metrics);
            applied.push(Applied::of("metric", &name, id, action));
        }

        let mut behavior_ids = HashMap::new();
        for (i, draft) in suite.behaviors.into_iter().enumerate() {
            let field = format!("behaviors[{i}]");
            let metrics = self.suite_metric_ids(&draft.metrics, &metric_ids).await?;
            let stored = found(
                self.store
                    .get_behavior(&Ref::Name(draft.name.clone()))
                    .await,
            )?;
            let (id, created_at) = identity(stored.as_ref(), |b| (b.id, b.created_at), now);
            let behavior = Behavior::from_draft(draft, metrics, id, created_at)
                .map_err(|e| e.within("behavior", &field))?;
            behavior_ids.insert(Ref::Name(behavior.name.clone()), id);
            let name = behavior.name.clone();
            let action = settle(behavior, stored.as_ref(), now, &mut writes.behaviors);
            applied.push(Applied::of("behavior", &name, id, action));
        }

        for (i, suite_set) in suite.test_sets.into_iter().enumerate() {
            let field = format!("test_sets[{i}]");
            let draft = suite_set.test_set;
            let metrics = self.suite_metric_ids(&draft.metrics, &metric_ids).await?;
            let stored = found(
                self.store
                    .get_test_set(&Ref::Name(draft.name.clone()))
                    .await,
            )?;
            let (id, created_at) = identity(stored.as_ref(), |t| (t.id, t.created_at), now);
            let test_set = TestSet::from_draft(draft, metrics, (id, created_at), &field)?;
            let name = test_set.name.clone();
            let action = settle(test_set, stored.as_ref(), now, &mut writes.test_sets);
            let mut item = Applied::of("test_set", &name, id, action);
            if !suite_set.tests.is_empty() {
                let tests = self
                    .tests(id, suite_set.tests, 0, &mut behavior_ids.clone())
                    .await
                    .map_err(|e| e.within("tests", &format!("{field}.tests")))?;
                let stored_tests = match stored {
                    Some(_) => self.all_tests(id).await?,
                    None => Vec::new(),
                };
                item.tests = Some(match_tests(tests, stored_tests, &field, &mut writes)?);
            }
            applied.push(item);
        }

        self.store.apply_suite(&writes).await?;
        tracing::info!(
            resources = applied.len(),
            changed = applied.iter().filter(|a| a.changed()).count(),
            "suite applied"
        );
        Ok(applied)
    }

    /// Metric references as ids: names of the suite's metrics by the ids given them here, other
    /// references by the store; in order, without repeats.
    async fn suite_metric_ids(
        &self,
        metrics: &[Ref],
        in_suite: &HashMap<String, Uuid>,
    ) -> Result<Vec<Uuid>> {
        let mut ids = Vec::with_capacity(metrics.len());
        for reference in metrics {
            let id = match reference {
                Ref::Name(name) if in_suite.contains_key(name) => in_suite[name],
                other => self.store.get_metric(other).await?.id,
            };
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        Ok(ids)
    }

    /// Every test of a test set, in order.
    async fn all_tests(&self, test_set_id: Uuid) -> Result<Vec<Test>> {
        let mut tests = Vec::new();
        let mut after = None;
        loop {
            let page = self
                .store
                .list_tests(
                    test_set_id,
                    PageRequest {
                        size: TEST_PAGE,
                        after,
                    },
                )
                .await?;
            tests.extend(page.items);
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(tests),
            }
        }
    }
}

impl Applied {
    fn of(kind: &'static str, name: &str, id: Uuid, action: Action) -> Applied {
        Applied {
            kind,
            name: name.to_string(),
            id,
            action,
            tests: None,
        }
    }

    /// Whether applying changed the resource or its tests.
    pub fn changed(&self) -> bool {
        let tests_changed = self
            .tests
            .is_some_and(|t| t.created + t.updated + t.removed > 0);
        self.action != Action::Unchanged || tests_changed
    }
}

/// Matches a suite's tests (validated, of test set `field`) with the stored ones by key (else
/// prompt): files new, changed and gone tests in `writes` and counts them. Two tests of the
/// suite with one key are `InvalidArgument`.
fn match_tests(
    tests: Vec<Test>,
    stored: Vec<Test>,
    field: &str,
    writes: &mut SuiteWrites,
) -> Result<TestChanges> {
    let mut positions: HashMap<String, usize> = HashMap::new();
    for (i, test) in tests.iter().enumerate() {
        if let Some(first) = positions.insert(test.match_key().to_string(), i) {
            let which = if test.key.is_empty() { "prompt" } else { "key" };
            return Err(Error::invalid(
                format!("{field}.tests[{i}].{which}"),
                format!(
                    "{:?} is also the {which} of tests[{first}]: tests are matched by key (else \
                     by prompt), so give each a distinct `key`",
                    test.match_key()
                ),
            ));
        }
    }
    // A stored duplicate (appended by an import) beyond the first of its key is removed.
    let mut by_key: HashMap<String, Test> = HashMap::new();
    let mut changes = TestChanges::default();
    for test in stored {
        if by_key.contains_key(test.match_key()) {
            writes.removed_tests.push(test.id);
            changes.removed += 1;
        } else {
            by_key.insert(test.match_key().to_string(), test);
        }
    }
    for test in tests {
        match by_key.remove(test.match_key()) {
            None => {
                writes.tests.create.push(test);
                changes.created += 1;
            }
            Some(old) if old.same_content(&test) => changes.unchanged += 1,
            Some(old) => {
                writes.tests.update.push(Test {
                    id: old.id,
                    created_at: old.created_at,
                    ..test
                });
                changes.updated += 1;
            }
        }
    }
    for gone in by_key.into_values() {
        writes.removed_tests.push(gone.id);
        changes.removed += 1;
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test(key: &str, prompt: &str, topic: &str) -> Test {
        Test {
            id: Uuid::now_v7(),
            test_set_id: Uuid::nil(),
            prompt: prompt.into(),
            expected_response: None,
            behavior_id: None,
            category: String::new(),
            topic: topic.into(),
            metadata: Default::default(),
            created_at: chrono::Utc::now(),
            key: key.into(),
        }
    }

    #[test]
    fn tests_are_matched_by_key_else_prompt() {
        let stored = vec![test("a", "p1", ""), test("", "p2", ""), test("", "p3", "")];
        let wanted = vec![
            test("a", "p1 reworded", ""),
            test("", "p2", ""),
            test("", "p4", ""),
        ];
        let mut writes = SuiteWrites::default();
        let changes = match_tests(wanted, stored.clone(), "test_sets[0]", &mut writes).unwrap();
        assert_eq!(
            changes,
            TestChanges {
                created: 1,
                updated: 1,
                removed: 1,
                unchanged: 1
            }
        );
        assert_eq!(writes.tests.update[0].id, stored[0].id, "updated in place");
        assert_eq!(writes.tests.create[0].prompt, "p4");
        assert_eq!(writes.removed_tests, [stored[2].id]);
    }

    #[test]
    fn two_tests_with_one_key_are_refused() {
        let wanted = vec![test("", "p", ""), test("", "p", "other")];
        let error = match_tests(
            wanted,
            Vec::new(),
            "test_sets[1]",
            &mut SuiteWrites::default(),
        )
        .unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("test_sets[1].tests[1].prompt:"),
            "{error}"
        );
    }
}
