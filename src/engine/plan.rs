//! The metric hierarchy: which metrics score each test of a run.
//!
//! Execution metrics, when given, replace both lower tiers for every test; else the test set's
//! metrics; else the metrics of the test's behaviour. A tier that resolves to nothing falls
//! through to the next.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use uuid::Uuid;

use crate::domain::{Metric, MetricKind, Ref, RunPlan, TestSet};
use crate::error::{Error, Result};
use crate::scoring::{JudgeHandle, PreparedMetric, Scorer, default_policy_endpoint, judge};
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
        scorer: &Scorer,
        execution_metrics: &[Ref],
        test_set: &TestSet,
        behavior_ids: impl IntoIterator<Item = Uuid>,
    ) -> Result<Self> {
        let mut judges = Judges::new(store, scorer);
        let mut shared = judges
            .prepare(store.resolve_metrics(execution_metrics).await?)
            .await?;
        if shared.is_empty() {
            let ids: Vec<Ref> = test_set.metric_ids.iter().copied().map(Ref::Id).collect();
            shared = judges.prepare(store.resolve_metrics(&ids).await?).await?;
        }
        let mut by_behavior = HashMap::new();
        if shared.is_empty() {
            let mut ids: Vec<Uuid> = behavior_ids.into_iter().collect();
            ids.sort_unstable();
            ids.dedup();
            for behavior in store.get_behaviors(&ids).await? {
                let refs: Vec<Ref> = behavior.metric_ids.iter().copied().map(Ref::Id).collect();
                let metrics = judges.prepare(store.resolve_metrics(&refs).await?).await?;
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
    pub(super) async fn load(store: &dyn Store, scorer: &Scorer, plan: &RunPlan) -> Result<Self> {
        let ids = |ids: &[Uuid]| ids.iter().copied().map(Ref::Id).collect::<Vec<_>>();
        let mut judges = Judges::new(store, scorer);
        let shared = match &plan.shared_metrics {
            Some(shared) => Some(
                judges
                    .prepare(store.resolve_metrics(&ids(shared)).await?)
                    .await?,
            ),
            None => None,
        };
        let mut by_behavior = HashMap::new();
        for (behavior, metrics) in &plan.behavior_metrics {
            let metrics = judges
                .prepare(store.resolve_metrics(&ids(metrics)).await?)
                .await?;
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

    /// Ids of the metrics the plan uses, the shared tier in its order, else the behaviours'
    /// by behaviour id, without repeats.
    pub(super) fn metric_ids(&self) -> Vec<Uuid> {
        let mut behaviors: Vec<_> = self.by_behavior.iter().collect();
        behaviors.sort_unstable_by_key(|(id, _)| **id);
        let sets = self
            .shared
            .iter()
            .chain(behaviors.into_iter().map(|(_, set)| set));
        let mut ids = Vec::new();
        for m in sets.flat_map(|set| set.iter()) {
            if !ids.contains(&m.metric.id) {
                ids.push(m.metric.id);
            }
        }
        ids
    }
}

/// Prepares metrics, and each judge endpoint once for the whole run.
struct Judges<'a> {
    store: &'a dyn Store,
    scorer: &'a Scorer,
    /// By judge endpoint id (an inline judge: by metric id).
    prepared: HashMap<Uuid, JudgeHandle>,
}

impl<'a> Judges<'a> {
    fn new(store: &'a dyn Store, scorer: &'a Scorer) -> Self {
        Judges {
            store,
            scorer,
            prepared: HashMap::new(),
        }
    }

    async fn prepare(&mut self, metrics: Vec<Metric>) -> Result<MetricSet> {
        let mut set = Vec::with_capacity(metrics.len());
        for m in metrics {
            let judge = self.judge(&m).await;
            let name = m.name.clone();
            let prepared = PreparedMetric::new(m, judge).map_err(|e| {
                Error::precondition(
                    format!("metric {name}"),
                    format!("metric {name:?} cannot be used: {e}"),
                )
            })?;
            set.push(Arc::new(prepared));
        }
        Ok(Arc::from(set))
    }

    /// The endpoint of a metric that calls one (an LLM judge's judge, a semantic similarity's
    /// embedding endpoint, an external scorer with its call policy): one that cannot be had is an
    /// error of the metric's results, not of the run.
    async fn judge(&mut self, metric: &Metric) -> Option<JudgeHandle> {
        let role = match &metric.kind {
            MetricKind::LlmJudge(_) => "judge",
            MetricKind::SemanticSimilarity { .. } => "embedding",
            MetricKind::External(_) => "call policy",
            _ => return None,
        };
        let endpoint = if let Some(id) = metric.kind.model_endpoint() {
            match self.store.get_endpoint(&Ref::Id(id)).await {
                Ok(endpoint) => endpoint,
                Err(Error::NotFound { .. }) => {
                    return Some(Err(format!("{role} endpoint {id} no longer exists")));
                }
                Err(e) => return Some(Err(format!("{role} endpoint {id}: {e}"))),
            }
        } else if let MetricKind::LlmJudge(settings) = &metric.kind
            && settings.is_inline()
        {
            judge::inline_endpoint(metric, settings)
        } else if let MetricKind::External(settings) = &metric.kind {
            default_policy_endpoint(metric, settings)
        } else {
            match self.scorer.default_judge() {
                Some(endpoint) => endpoint.clone(),
                None => {
                    return Some(Err(
                        "the metric names no judge and the server has no default \
                         judge (ASSAY_JUDGE_BASE_URL, ASSAY_JUDGE_MODEL)"
                            .into(),
                    ));
                }
            }
        };
        let scorer = self.scorer;
        if let MetricKind::External(settings) = &metric.kind {
            // Prepared per metric (the URL is the metric's); the gate is still the endpoint's.
            return Some(scorer.prepare_scorer(settings, &endpoint));
        }
        Some(
            self.prepared
                .entry(endpoint.id)
                .or_insert_with(|| scorer.prepare_judge(&endpoint))
                .clone(),
        )
    }
}
