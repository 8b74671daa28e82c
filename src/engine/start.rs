//! Starting runs. `Execute`, `Rescore` and `RetryErrors` each work out what differs (the tests or
//! results to take, the source run, the metrics) as a [`NewRun`]; one path then creates the run,
//! stores it, makes it live and hands it to its own task.

use std::sync::Arc;

use uuid::Uuid;

use super::jobs::Items;
use super::plan::MetricPlan;
use super::{Engine, ExecuteSpec, RescoreSpec, RunEvents, collect_pages};
use crate::domain::{
    Endpoint, ExecutionMode, Labels, Ref, ResultStatus, RunKind, RunPlan, RunStatus, TestRun,
    TestSet,
};
use crate::endpoint_client::PreparedTarget;
use crate::error::{Error, Result};
use crate::store::{Extent, LatestRun, WorkSource};

/// A run to create, as an entry point worked it out.
struct NewRun {
    test_set_id: Uuid,
    endpoint_id: Uuid,
    kind: RunKind,
    mode: ExecutionMode,
    source_run_id: Option<Uuid>,
    /// The metrics scoring each test; stored in `plan` and named in the run's metric ids.
    metrics: Arc<MetricPlan>,
    max_concurrency: u32,
    parameters: serde_json::Map<String, serde_json::Value>,
    labels: Labels,
    /// The plan to store, but its metrics (filled in from `metrics`).
    plan: RunPlan,
    /// How many tests the run has.
    total: u32,
    /// What the run's items are, and where they are taken from when it is stored.
    items: Items,
    source: WorkSource,
    /// The endpoint and its prepared client, when some job calls it.
    endpoint: Option<(Endpoint, Arc<PreparedTarget>)>,
}

impl Engine {
    /// Starts a run of every test of a test set against an endpoint.
    pub async fn execute(self: &Arc<Self>, spec: ExecuteSpec) -> Result<RunEvents> {
        self.start(self.execution_run(spec)).await
    }

    /// Starts a new run that executes again the tests whose result in `source` (an ended
    /// execution run) was an error, against the same endpoint with the same metrics, and copies
    /// every other result without calling the endpoint: the new run is complete on its own.
    pub async fn retry_errors(self: &Arc<Self>, source: Uuid) -> Result<RunEvents> {
        self.start(self.retry_errors_run(source)).await
    }

    /// Starts a run that scores the outputs of an earlier run again, never calling the endpoint.
    pub async fn rescore(self: &Arc<Self>, spec: RescoreSpec) -> Result<RunEvents> {
        self.start(self.rescore_run(spec)).await
    }

    /// The run [`Engine::execute`] starts: the set's tests up to its last one now.
    async fn execution_run(&self, spec: ExecuteSpec) -> Result<NewRun> {
        let test_set = self.store.get_test_set(&spec.test_set).await?;
        let endpoint = self.store.get_endpoint(&spec.endpoint).await?;
        let extent = self.store.test_set_extent(test_set.id).await?;
        let (through, total, metrics) = self
            .plan_over(extent, &spec.metrics, &test_set, || {
                Error::precondition(
                    format!("test set {}", test_set.name),
                    format!("test set {:?} has no tests", test_set.name),
                )
            })
            .await?;
        let chosen = self
            .choose_tests(test_set.id, &test_set.name, through, &spec.selection)
            .await?;
        let target = self.prepare(&endpoint, &spec.parameters)?;
        let (max_concurrency, cluster_concurrency) =
            self.concurrency_of(spec.mode, &[spec.max_concurrency, endpoint.max_concurrency]);
        let repeats = spec.repeats.max(1);
        // The chosen tests' repetitions, at `seq * repeats + repetition` (see `RunPlan::repeats`).
        let chosen = chosen.map(|seqs| {
            let tests = u32::try_from(seqs.len()).unwrap_or(u32::MAX);
            let r = i64::from(repeats);
            let positions = seqs
                .iter()
                .flat_map(|seq| (0..r).map(move |n| seq * r + n))
                .collect();
            (positions, tests)
        });
        let (total, source) = chosen_or_all(
            chosen,
            total,
            WorkSource::Tests {
                test_set_id: test_set.id,
                through,
                repeats,
            },
        );
        Ok(NewRun {
            test_set_id: test_set.id,
            endpoint_id: endpoint.id,
            kind: RunKind::Execution,
            mode: spec.mode,
            source_run_id: None,
            metrics: Arc::new(metrics),
            max_concurrency,
            parameters: spec.parameters,
            labels: spec.labels,
            plan: RunPlan {
                tests_through: Some(through),
                cluster_concurrency,
                budget_usd: spec.budget_usd,
                repeats,
                ..RunPlan::default()
            },
            total,
            items: Items::Tests {
                test_set_id: test_set.id,
                repeats,
            },
            source,
            endpoint: Some((endpoint, target)),
        })
    }

    /// The run [`Engine::retry_errors`] starts: the source's errors called again, the rest copied.
    async fn retry_errors_run(&self, source: Uuid) -> Result<NewRun> {
        let source = self.store.get_run(source).await?;
        let subject = format!("run {}", source.id);
        if source.status == RunStatus::Running {
            return Err(Error::precondition(
                subject,
                format!("run {} is still running", source.id),
            ));
        }
        if source.kind == RunKind::Rescore {
            return Err(Error::precondition(
                subject,
                format!(
                    "run {} is a rescore, which never calls the endpoint; retry the errors of the run it rescored",
                    source.id
                ),
            ));
        }
        let results = collect_pages(|p| self.store.list_results(source.id, p)).await?;
        if !results.iter().any(|r| r.status == ResultStatus::Error) {
            return Err(Error::precondition(
                subject,
                format!("run {} has no ERROR results to retry", source.id),
            ));
        }
        let test_set = self
            .store
            .get_test_set(&Ref::Id(source.test_set_id))
            .await?;
        let endpoint = self
            .store
            .get_endpoint(&Ref::Id(source.endpoint_id))
            .await?;
        let metrics = match &source.plan {
            Some(plan) => MetricPlan::load(&*self.store, &self.scorer, plan).await?,
            // Runs stored before plans were: the hierarchy as it is now.
            None => {
                let behaviors = results.iter().filter_map(|r| r.behavior_id);
                MetricPlan::resolve(&*self.store, &self.scorer, &[], &test_set, behaviors).await?
            }
        };
        let target = self.prepare(&endpoint, &source.parameters)?;
        let tests = self.tests_by_id(test_set.id).await?;
        // Errors whose test was removed since are left out; a repeated test counts once.
        let total = results
            .iter()
            .filter(|r| r.status != ResultStatus::Error || tests.contains_key(&r.test_id))
            .map(|r| r.test_id)
            .collect::<std::collections::HashSet<_>>()
            .len();
        let cluster_concurrency = source.plan.as_ref().and_then(|p| p.cluster_concurrency);
        let repeats = source.repeats();
        Ok(NewRun {
            test_set_id: test_set.id,
            endpoint_id: endpoint.id,
            kind: RunKind::Execution,
            mode: source.mode,
            source_run_id: Some(source.id),
            metrics: Arc::new(metrics),
            max_concurrency: source.max_concurrency,
            parameters: source.parameters,
            labels: source.labels,
            plan: RunPlan {
                retry_errors: true,
                cluster_concurrency,
                // Retried results keep their repetitions, and the run its source's repeats.
                repeats,
                ..RunPlan::default()
            },
            total: u32::try_from(total).unwrap_or(u32::MAX),
            items: Items::RetryErrors {
                source_run_id: source.id,
                test_set_id: test_set.id,
                tests,
            },
            source: WorkSource::Results {
                run_id: source.id,
                through: i64::MAX,
            },
            endpoint: Some((endpoint, target)),
        })
    }

    /// The run [`Engine::rescore`] starts: the source's stored outputs scored again.
    async fn rescore_run(&self, spec: RescoreSpec) -> Result<NewRun> {
        let test_set = self.store.get_test_set(&spec.test_set).await?;
        let endpoint = self.store.get_endpoint(&spec.endpoint).await?;
        let source = match spec.run {
            Some(id) => {
                let run = self.store.get_run(id).await?;
                if run.test_set_id != test_set.id || run.endpoint_id != endpoint.id {
                    return Err(Error::invalid(
                        "run",
                        format!(
                            "run {id} belongs to test set {} and endpoint {}, not to test set {:?} and endpoint {:?}",
                            run.test_set_id, run.endpoint_id, test_set.name, endpoint.name
                        ),
                    ));
                }
                if run.status == RunStatus::Running {
                    return Err(Error::precondition(
                        format!("run {id}"),
                        format!("run {id} is still running"),
                    ));
                }
                run
            }
            None => self
                .store
                .latest_run(&LatestRun {
                    test_set_id: test_set.id,
                    endpoint_id: endpoint.id,
                    statuses: &[RunStatus::Completed],
                    finished_before: None,
                    labels: &Labels::new(),
                })
                .await?
                .ok_or_else(|| {
                    Error::precondition(
                        format!("test set {} and endpoint {}", test_set.name, endpoint.name),
                        format!(
                            "no completed run for test set {:?} and endpoint {:?}",
                            test_set.name, endpoint.name
                        ),
                    )
                })?,
        };
        let extent = self.store.run_extent(source.id).await?;
        let (through, total, metrics) = self
            .plan_over(extent, &spec.metrics, &test_set, || {
                Error::precondition(
                    format!("run {}", source.id),
                    format!("run {} has no results to rescore", source.id),
                )
            })
            .await?;
        let chosen = self
            .choose_results(source.id, test_set.id, through, &spec.selection)
            .await?;
        let (total, work) = chosen_or_all(
            chosen,
            total,
            WorkSource::Results {
                run_id: source.id,
                through,
            },
        );
        // The endpoint is never called, so its limit does not apply (judges keep theirs).
        let (max_concurrency, cluster_concurrency) =
            self.concurrency_of(spec.mode, &[spec.max_concurrency]);
        let repeats = source.repeats();
        Ok(NewRun {
            test_set_id: test_set.id,
            endpoint_id: endpoint.id,
            kind: RunKind::Rescore,
            mode: spec.mode,
            source_run_id: Some(source.id),
            metrics: Arc::new(metrics),
            max_concurrency,
            parameters: source.parameters,
            labels: source.labels,
            plan: RunPlan {
                cluster_concurrency,
                // Rescored results keep their repetitions, and the run its source's repeats.
                repeats,
                ..RunPlan::default()
            },
            total,
            items: Items::Rescore {
                source_run_id: source.id,
                test_set_id: test_set.id,
            },
            source: work,
            endpoint: None,
        })
    }

    /// The concurrency of a run in `mode` (1 when sequential, else the lowest limit `asked`
    /// sets, 0 being none, else the default) and the limit that holds across replicas: one asked
    /// for; without one, each replica works at its default.
    fn concurrency_of(&self, mode: ExecutionMode, asked: &[u32]) -> (u32, Option<u32>) {
        let max_concurrency = match mode {
            ExecutionMode::Sequential => 1,
            ExecutionMode::Parallel => self.concurrency.for_run(asked),
        };
        let cluster = asked
            .iter()
            .any(|&c| c > 0)
            .then(|| self.concurrency.for_run(asked));
        (max_concurrency, cluster)
    }

    /// What a run over `extent` (the tests of a test set, or the results of a source run) reads
    /// through, how many tests it has, and the metrics that score them: the hierarchy, replaced
    /// by `metrics` when given. Nothing to read is the error `empty` makes.
    async fn plan_over(
        &self,
        extent: Extent,
        metrics: &[Ref],
        test_set: &TestSet,
        empty: impl FnOnce() -> Error,
    ) -> Result<(i64, u32, MetricPlan)> {
        let through = extent.last.ok_or_else(empty)?;
        let plan = MetricPlan::resolve(
            &*self.store,
            &self.scorer,
            metrics,
            test_set,
            extent.behavior_ids,
        )
        .await?;
        Ok((through, extent.tests, plan))
    }

    /// Creates the run `new` works out, stores it, hands it to its own task, and returns a
    /// follower of it. `new` is only awaited once the server is known to take runs, so a stopping
    /// server refuses before looking anything up.
    async fn start(
        self: &Arc<Self>,
        new: impl Future<Output = Result<NewRun>>,
    ) -> Result<RunEvents> {
        self.accepting()?;
        let new = new.await?;
        let mut plan = new.plan;
        new.metrics.store_in(&mut plan);
        let now = chrono::Utc::now();
        let mut run = TestRun {
            id: Uuid::now_v7(),
            test_set_id: new.test_set_id,
            endpoint_id: new.endpoint_id,
            kind: new.kind,
            mode: new.mode,
            status: RunStatus::Running,
            source_run_id: new.source_run_id,
            total: new.total,
            metric_ids: new.metrics.metric_ids(),
            max_concurrency: new.max_concurrency,
            parameters: new.parameters,
            error: None,
            summary: None,
            created_at: now,
            started_at: Some(now),
            finished_at: None,
            plan: Some(plan),
            labels: new.labels,
        };
        // A shard that holds none of the chosen tests has nothing to run: the run is stored
        // ended, so a CI job whose shard is empty passes instead of failing.
        if run.total == 0 {
            run.end(RunStatus::Completed);
            self.store.create_run(&run, new.source).await?;
            self.telemetry.run_started(run.kind);
            self.ended(&run);
            return Ok(self.follow(run, None));
        }
        let run_id = run.id;
        let created = run.clone();
        // Registered before it is stored, so a watcher that finds the run also finds it live,
        // and this replica's scheduler leaves it to the task started here.
        let registered = self
            .register(run_id)
            .ok_or_else(|| Error::internal(format!("run {run_id} was live before it existed")))?;
        if let Err(e) = self.store.create_run(&run, new.source).await {
            self.unregister(run_id);
            return Err(e);
        }
        tracing::info!(run_id = %run_id, kind = ?run.kind, mode = ?run.mode, total = run.total, concurrency = run.max_concurrency, "run started");
        self.telemetry.run_started(run.kind);
        let follower = registered.progress.subscribe();
        let (endpoint, target) = new.endpoint.unzip();
        let work = self.work(&run, new.items, new.metrics, target, endpoint.as_ref());
        self.spawn_drive(run, work, registered);
        Ok(self.follow(created, Some(follower)))
    }

    /// Refuses new runs once the server is stopping.
    fn accepting(&self) -> Result<()> {
        if self.stopping.is_cancelled() {
            return Err(Error::Unavailable(
                "the server is shutting down and starts no new runs; try again once it is back"
                    .into(),
            ));
        }
        Ok(())
    }
}

/// A run's test count and where its items come from: the positions chosen with the number of
/// tests they are items of, else all `total` tests of `all`.
fn chosen_or_all(
    chosen: Option<(Vec<i64>, u32)>,
    total: u32,
    all: WorkSource,
) -> (u32, WorkSource) {
    match chosen {
        Some((positions, tests)) => (tests, WorkSource::Positions(positions)),
        None => (total, all),
    }
}
