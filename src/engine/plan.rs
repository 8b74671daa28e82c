//! The metric hierarchy: which metrics score each test of a run.
//!
//! Execution metrics, when given, replace both lower tiers for every test; else the test set's
//! metrics; else the metrics of the test's behaviour. A tier that resolves to nothing falls
//! through to the next.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use uuid::Uuid;

use crate::domain::{Metric, Ref, RunPlan, TestSet};
use crate::error::{Error, Result};
use crate::scoring::PreparedMetric;
use crate::store::Store;

/// The metrics of one test.
pub(super) type MetricSet = Arc<[Arc<PreparedMetric>]>;

/// The metrics of every test of a run, resolved once when the run starts.
pub(super) struct MetricPlan {
    /// Execution or test-set metrics: the same for every test.
    shared: Option<MetricSet>,
    /// Behaviour metrics, by behaviour.
    by_behavior: HashMap<Uuid, MetricSet>,
    none: MetricSet,
}

impl MetricPlan {
    /// Resolves the hierarchy for tests whose behaviours are `behavior_ids`. An unknown
    /// execution metric is `NotFound`.
    pub(super) async fn resolve(
        store: &dyn Store,
        execution_metrics: &[Ref],
        test_set: &TestSet,
        behavior_ids: impl IntoIterator<Item = Uuid>,
    ) -> Result<Self> {
        let mut shared = prepare(store.resolve_metrics(execution_metrics).await?)?;
        if shared.is_empty() {
            let ids: Vec<Ref> = test_set.metric_ids.iter().copied().map(Ref::Id).collect();
            shared = prepare(store.resolve_metrics(&ids).await?)?;
        }
        let mut by_behavior = HashMap::new();
        if shared.is_empty() {
            let mut ids: Vec<Uuid> = behavior_ids.into_iter().collect();
            ids.sort_unstable();
            ids.dedup();
            for behavior in store.get_behaviors(&ids).await? {
                let refs: Vec<Ref> = behavior.metric_ids.iter().copied().map(Ref::Id).collect();
                let metrics = prepare(store.resolve_metrics(&refs).await?)?;
                by_behavior.insert(behavior.id, metrics);
            }
        }
        Ok(MetricPlan {
            shared: (!shared.is_empty()).then_some(shared),
            by_behavior,
            none: Arc::from(Vec::new()),
        })
    }

    /// The plan a run stored (see [`MetricPlan::store_in`]), with the metrics' current
    /// definitions. A metric deleted since is `NotFound`.
    pub(super) async fn load(store: &dyn Store, plan: &RunPlan) -> Result<Self> {
        let ids = |ids: &[Uuid]| ids.iter().copied().map(Ref::Id).collect::<Vec<_>>();
        let shared = match &plan.shared_metrics {
            Some(shared) => Some(prepare(store.resolve_metrics(&ids(shared)).await?)?),
            None => None,
        };
        let mut by_behavior = HashMap::new();
        for (behavior, metrics) in &plan.behavior_metrics {
            let metrics = prepare(store.resolve_metrics(&ids(metrics)).await?)?;
            by_behavior.insert(*behavior, metrics);
        }
        Ok(MetricPlan {
            shared,
            by_behavior,
            none: Arc::from(Vec::new()),
        })
    }

    /// Writes the plan's metric ids into a run's stored plan.
    pub(super) fn store_in(&self, plan: &mut RunPlan) {
        let ids = |set: &MetricSet| set.iter().map(|m| m.metric.id).collect::<Vec<_>>();
        plan.shared_metrics = self.shared.as_ref().map(ids);
        plan.behavior_metrics = self
            .by_behavior
            .iter()
            .map(|(behavior, set)| (*behavior, ids(set)))
            .collect::<BTreeMap<_, _>>();
    }

    /// The metrics of a test with behaviour `behavior_id`; empty when no tier has any.
    pub(super) fn for_test(&self, behavior_id: Option<Uuid>) -> MetricSet {
        if let Some(shared) = &self.shared {
            return shared.clone();
        }
        behavior_id
            .and_then(|b| self.by_behavior.get(&b))
            .cloned()
            .unwrap_or_else(|| self.none.clone())
    }
}

fn prepare(metrics: Vec<Metric>) -> Result<MetricSet> {
    metrics
        .into_iter()
        .map(|m| {
            let name = m.name.clone();
            PreparedMetric::new(m).map(Arc::new).map_err(|e| {
                Error::precondition(
                    format!("metric {name}"),
                    format!("metric {name:?} cannot be used: {e}"),
                )
            })
        })
        .collect::<Result<Vec<_>>>()
        .map(Arc::from)
}

/// Ids of the metrics used by some test, in order of first use.
pub(super) fn used_metric_ids<'a>(sets: impl IntoIterator<Item = &'a MetricSet>) -> Vec<Uuid> {
    let mut ids = Vec::new();
    for set in sets {
        for m in set.iter() {
            if !ids.contains(&m.metric.id) {
                ids.push(m.metric.id);
            }
        }
    }
    ids
}
