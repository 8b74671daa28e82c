//! Runs: executing a test set against an endpoint, rescoring stored outputs, following and
//! cancelling runs. Knows nothing of gRPC: the API layer turns [`RunEvent`]s into messages.
//!
//! A run belongs to the engine, not to the client that started it: it is driven by its own task
//! ([`runner`]), which stores every result and then announces progress; clients follow the
//! store ([`follow`]), so a disconnected or slow client never holds a run back.

mod follow;
mod plan;
mod runner;
mod summary;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::domain::{
    ExecutionMode, PageRequest, Ref, RunKind, RunStatus, Test, TestResult, TestRun,
};
use crate::error::{Error, Result};
use crate::scoring::Scorer;
use crate::store::Store;
use crate::target::TargetClient;
use plan::{MetricPlan, MetricSet, used_metric_ids};

/// What a run stream carries.
#[derive(Clone, Debug)]
pub enum RunEvent {
    /// The run as created (first event).
    Started(TestRun),
    /// One stored result.
    Result(TestResult),
    /// The run as it ended (last event), with its summary.
    Finished(TestRun),
}

/// The events of one run, in order.
pub type RunEvents = ReceiverStream<Result<RunEvent>>;

/// What `Execute` asks for.
#[derive(Clone, Debug)]
pub struct ExecuteSpec {
    /// Test set to run.
    pub test_set: Ref,
    /// Endpoint to call.
    pub endpoint: Ref,
    /// Dispatch mode.
    pub mode: ExecutionMode,
    /// Metrics replacing the lower tiers, when any.
    pub metrics: Vec<Ref>,
    /// Concurrency asked for; 0: no wish.
    pub max_concurrency: u32,
    /// Template parameters.
    pub parameters: serde_json::Map<String, serde_json::Value>,
}

/// What `Rescore` asks for.
#[derive(Clone, Debug)]
pub struct RescoreSpec {
    /// Test set of the source run.
    pub test_set: Ref,
    /// Endpoint of the source run.
    pub endpoint: Ref,
    /// Source run; `None`: the latest completed run of the pair.
    pub run: Option<Uuid>,
    /// Metrics replacing the lower tiers, when any.
    pub metrics: Vec<Ref>,
}

/// Progress of a live run, announced after each batch of results is stored.
#[derive(Clone, Copy, Debug, Default)]
struct Progress {
    /// Results stored so far.
    stored: usize,
    /// The run has ended and its final state is stored.
    ended: bool,
}

#[derive(Clone)]
struct LiveRun {
    progress: watch::Receiver<Progress>,
    cancel: CancellationToken,
}

/// One unit of work of a run: a test, the metrics that score it, and for a rescore the stored
/// result whose output is scored again.
struct Job {
    test: Test,
    metrics: MetricSet,
    source: Option<TestResult>,
}

/// Runs test sets and keeps track of the runs in progress.
pub struct Engine {
    store: Arc<dyn Store>,
    targets: TargetClient,
    scorer: Scorer,
    default_concurrency: u32,
    live: Mutex<HashMap<Uuid, LiveRun>>,
    stopping: CancellationToken,
    tasks: TaskTracker,
}

/// Tests and results read from the store at once while planning.
const LOAD_PAGE: u32 = 1000;

impl Engine {
    /// An engine over `store`; a run's concurrency never exceeds `default_concurrency`.
    pub fn new(store: Arc<dyn Store>, default_concurrency: u32) -> Arc<Self> {
        Self::with_default_judge(store, default_concurrency, None)
    }

    /// An engine whose LLM-judge metrics that name no judge use `default_judge`.
    pub fn with_default_judge(
        store: Arc<dyn Store>,
        default_concurrency: u32,
        default_judge: Option<crate::domain::Endpoint>,
    ) -> Arc<Self> {
        let targets = TargetClient::new();
        let scorer = Scorer::new(targets.clone(), default_judge);
        Arc::new(Engine {
            store,
            targets,
            scorer,
            default_concurrency: default_concurrency.max(1),
            live: Mutex::new(HashMap::new()),
            stopping: CancellationToken::new(),
            tasks: TaskTracker::new(),
        })
    }

    /// Starts a run of every test of a test set against an endpoint.
    pub async fn execute(self: &Arc<Self>, spec: ExecuteSpec) -> Result<RunEvents> {
        let test_set = self.store.get_test_set(&spec.test_set).await?;
        let endpoint = self.store.get_endpoint(&spec.endpoint).await?;
        let tests = collect_pages(|p| self.store.list_tests(test_set.id, p)).await?;
        if tests.is_empty() {
            return Err(Error::precondition(
                format!("test set {}", test_set.name),
                format!("test set {:?} has no tests", test_set.name),
            ));
        }
        let plan = MetricPlan::resolve(
            &*self.store,
            &self.scorer,
            &spec.metrics,
            &test_set,
            tests.iter().filter_map(|t| t.behavior_id),
        )
        .await?;
        let target = self
            .targets
            .prepare(&endpoint, &spec.parameters)
            .map_err(|e| {
                Error::precondition(
                    format!("endpoint {}", endpoint.name),
                    format!("endpoint {:?} cannot be called: {e}", endpoint.name),
                )
            })?;
        let concurrency = match spec.mode {
            ExecutionMode::Sequential => 1,
            ExecutionMode::Parallel => [
                spec.max_concurrency,
                endpoint.max_concurrency,
                self.default_concurrency,
            ]
            .into_iter()
            .filter(|&c| c > 0)
            .min()
            .unwrap_or(1),
        };
        let jobs: Vec<Job> = tests
            .into_iter()
            .map(|test| Job {
                metrics: plan.for_test(test.behavior_id),
                test,
                source: None,
            })
            .collect();
        let run = self.new_run(
            test_set.id,
            endpoint.id,
            RunKind::Execution,
            spec.mode,
            None,
            &jobs,
            concurrency,
            spec.parameters,
        );
        self.start(run, jobs, Some(Arc::new(target))).await
    }

    /// Starts a run that scores the outputs of an earlier run again, never calling the endpoint.
    pub async fn rescore(self: &Arc<Self>, spec: RescoreSpec) -> Result<RunEvents> {
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
                .latest_completed_run(test_set.id, endpoint.id)
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
        let results = collect_pages(|p| self.store.list_results(source.id, p)).await?;
        if results.is_empty() {
            return Err(Error::precondition(
                format!("run {}", source.id),
                format!("run {} has no results to rescore", source.id),
            ));
        }
        let plan = MetricPlan::resolve(
            &*self.store,
            &self.scorer,
            &spec.metrics,
            &test_set,
            results.iter().filter_map(|r| r.behavior_id),
        )
        .await?;
        let jobs: Vec<Job> = results
            .into_iter()
            .map(|r| Job {
                metrics: plan.for_test(r.behavior_id),
                test: Test {
                    id: r.test_id,
                    test_set_id: test_set.id,
                    prompt: r.prompt.clone(),
                    expected_response: r.expected_response.clone(),
                    behavior_id: r.behavior_id,
                    category: String::new(),
                    topic: String::new(),
                    metadata: Default::default(),
                    created_at: r.created_at,
                },
                source: Some(r),
            })
            .collect();
        let run = self.new_run(
            test_set.id,
            endpoint.id,
            RunKind::Rescore,
            ExecutionMode::Parallel,
            Some(source.id),
            &jobs,
            self.default_concurrency,
            source.parameters,
        );
        self.start(run, jobs, None).await
    }

    /// Follows a run: its stored results first, then live ones until it ends.
    pub async fn watch(&self, run_id: Uuid) -> Result<RunEvents> {
        let live = self.live_run(run_id);
        let run = self.store.get_run(run_id).await?;
        Ok(self.follow(run, live.map(|l| l.progress)))
    }

    /// Cancels a running run and returns it as it ended. Cancelling a cancelled run returns it;
    /// cancelling a run that ended otherwise is `FailedPrecondition`.
    pub async fn cancel(&self, run_id: Uuid) -> Result<TestRun> {
        if let Some(live) = self.live_run(run_id) {
            live.cancel.cancel();
            let mut progress = live.progress;
            // An error means the run task is gone, so its final state is stored.
            let _ = progress.wait_for(|p| p.ended).await;
            return self.store.get_run(run_id).await;
        }
        let run = self.store.get_run(run_id).await?;
        match run.status {
            RunStatus::Cancelled => Ok(run),
            status => Err(Error::precondition(
                format!("run {run_id}"),
                format!("run {run_id} has already ended as {}", status.as_str()),
            )),
        }
    }

    /// The latest completed run of a test set and endpoint, if any.
    pub async fn last_run(&self, test_set: &Ref, endpoint: &Ref) -> Result<Option<TestRun>> {
        let test_set = self.store.get_test_set(test_set).await?;
        let endpoint = self.store.get_endpoint(endpoint).await?;
        self.store
            .latest_completed_run(test_set.id, endpoint.id)
            .await
    }

    /// Ends every live run (as failed: the server stopped) and waits until their final state is
    /// stored.
    pub async fn shutdown(&self) {
        self.stopping.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }

    fn live_run(&self, run_id: Uuid) -> Option<LiveRun> {
        self.live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&run_id)
            .cloned()
    }

    #[allow(clippy::too_many_arguments)]
    fn new_run(
        &self,
        test_set_id: Uuid,
        endpoint_id: Uuid,
        kind: RunKind,
        mode: ExecutionMode,
        source_run_id: Option<Uuid>,
        jobs: &[Job],
        max_concurrency: u32,
        parameters: serde_json::Map<String, serde_json::Value>,
    ) -> TestRun {
        let now = chrono::Utc::now();
        TestRun {
            id: Uuid::now_v7(),
            test_set_id,
            endpoint_id,
            kind,
            mode,
            status: RunStatus::Running,
            source_run_id,
            total: jobs.len() as u32,
            metric_ids: used_metric_ids(jobs.iter().map(|j| &j.metrics)),
            max_concurrency,
            parameters,
            error: None,
            summary: None,
            created_at: now,
            started_at: Some(now),
            finished_at: None,
        }
    }

    /// Stores the run, hands it to its own task, and returns a follower of it.
    async fn start(
        self: &Arc<Self>,
        run: TestRun,
        jobs: Vec<Job>,
        target: Option<Arc<crate::target::PreparedTarget>>,
    ) -> Result<RunEvents> {
        let (progress_tx, progress_rx) = watch::channel(Progress::default());
        let cancel = CancellationToken::new();
        let run_id = run.id;
        let created = run.clone();
        // Registered before it is stored, so a watcher that finds the run also finds it live.
        self.live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                run_id,
                LiveRun {
                    progress: progress_rx.clone(),
                    cancel: cancel.clone(),
                },
            );
        if let Err(e) = self.store.create_run(&run).await {
            self.live
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&run_id);
            return Err(e);
        }
        tracing::info!(run_id = %run_id, kind = ?run.kind, mode = ?run.mode, total = run.total, concurrency = run.max_concurrency, "run started");
        let engine = Arc::clone(self);
        self.tasks
            .spawn(async move { engine.drive(run, jobs, target, cancel, progress_tx).await });
        Ok(self.follow(created, Some(progress_rx)))
    }

    fn follow(&self, run: TestRun, progress: Option<watch::Receiver<Progress>>) -> RunEvents {
        // A small buffer: a slow client makes its follower wait, not the run.
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(follow::follow(Arc::clone(&self.store), run, progress, tx));
        ReceiverStream::new(rx)
    }
}

/// Every item of a paged list, read page by page.
async fn collect_pages<T, Fut>(mut fetch: impl FnMut(PageRequest) -> Fut) -> Result<Vec<T>>
where
    Fut: std::future::Future<Output = Result<crate::domain::Page<T>>>,
{
    let mut items = Vec::new();
    let mut page = PageRequest::first(LOAD_PAGE);
    loop {
        let p = fetch(page).await?;
        items.extend(p.items);
        match p.next {
            Some(after) => page.after = Some(after),
            None => return Ok(items),
        }
    }
}
