//! Runs: executing a test set against an endpoint, rescoring stored outputs, following and
//! cancelling runs. Knows nothing of gRPC: the API layer turns [`RunEvent`]s into messages.
//!
//! A run belongs to the engine, not to the client that started it: whatever asks for it, it is
//! created by one path ([`start`]) and driven by its own task ([`runner`]), which stores every
//! result and then announces progress; clients follow the store ([`follow`]), so a disconnected
//! or slow client never holds a run back.
//!
//! Several replicas on one database share every run ([`scheduler`]): a run stores its plan and
//! its items when it starts, and every replica claims items of it under leases, a few at a time,
//! until none is left. So runs survive stops and crashes too: a stop lets the tests in flight
//! finish (up to a grace period) and gives up the rest, a crashed replica's leases expire, and the
//! other replicas, or the next start, take the items over.

mod budget;
mod concurrency;
mod follow;
mod history;
mod jobs;
mod pace;
mod plan;
mod runner;
mod scheduler;
mod select;
mod start;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;
use uuid::Uuid;

use crate::domain::{
    ExecutionMode, Labels, PageRequest, Ref, RunStatus, Test, TestResult, TestRun,
};
use crate::endpoint_client::{PreparedTarget, TargetClient};
use crate::error::{Error, Result};
use crate::scoring::Scorer;
use crate::store::{Store, WriteFaults};
use crate::telemetry::{ActiveRun, Telemetry};
pub use concurrency::ConcurrencyLimits;
pub use history::{Base, RunComparison};
use runner::Work;
pub use scheduler::{DEFAULT_POLL, Replica};
pub use select::Selection;

/// What a run stream carries.
#[derive(Clone, Debug)]
pub enum RunEvent {
    /// The run as created (first event).
    Started(TestRun),
    /// Results just stored, in order (at least one). Shared with the run and its other
    /// followers, not copied for each.
    Results(Arc<[TestResult]>),
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
    /// Most USD the run may spend; `None`: no budget.
    pub budget_usd: Option<f64>,
    /// Labels stored on the run (validated).
    pub labels: Labels,
    /// Which tests run.
    pub selection: Selection,
    /// How many times each test runs (validated: 1 to 100).
    pub repeats: u32,
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
    /// Dispatch mode.
    pub mode: ExecutionMode,
    /// Concurrency asked for; 0: no wish.
    pub max_concurrency: u32,
    /// Which of the source's results are scored (no shard).
    pub selection: Selection,
}

/// Progress of a run on this replica, announced after each batch of results it stores.
#[derive(Clone, Debug, Default)]
struct Progress {
    /// The batch stored last, so that followers that are caught up need not read it back.
    latest: Option<Arc<StoredBatch>>,
    /// The run has ended and its final state is stored.
    ended: bool,
    /// This replica stopped working on the run because its results could not be stored, and
    /// neither could the run's end: why. The run stays `RUNNING` in the store.
    unstored: Option<String>,
}

/// Results just stored, in order.
#[derive(Debug)]
struct StoredBatch {
    /// The position of the run's result stored just before these (`None`: none was).
    after: Option<i64>,
    /// The store position of the last of them.
    last_position: i64,
    results: Arc<[TestResult]>,
}

#[derive(Clone)]
struct LiveRun {
    progress: watch::Receiver<Progress>,
    cancel: CancellationToken,
}

/// The run task's side of a live run: it announces progress and is told to cancel.
struct Registered {
    progress: watch::Sender<Progress>,
    cancel: CancellationToken,
    /// Counts the run as active on this replica until the task is done with it.
    active: ActiveRun,
}

/// How an engine runs its share of the work.
#[derive(Clone, Debug)]
pub struct EngineSettings {
    /// A run's concurrency on this replica.
    pub concurrency: ConcurrencyLimits,
    /// How long a stop waits for the tests in flight.
    pub shutdown_grace: Duration,
    /// This replica, as the others see it.
    pub replica: Replica,
    /// The environment variables endpoints and judges may read.
    pub secret_env: crate::endpoint_client::SecretEnv,
    /// Largest response body read from an endpoint or judge.
    pub max_response_bytes: u64,
    /// Largest answer of an endpoint (output, context and metadata) a result stores; a larger
    /// one is an error of that result.
    pub max_stored_output_bytes: usize,
    /// The addresses endpoint and judge calls may reach.
    pub outbound: crate::endpoint_client::OutboundPolicy,
    /// Where runs, results, endpoint calls and metric evaluations are counted.
    pub telemetry: Telemetry,
    /// Where writes of results that failed are told, for health reporting.
    pub write_faults: WriteFaults,
}

/// Runs test sets and keeps track of the runs this replica works on.
pub struct Engine {
    store: Arc<dyn Store>,
    targets: TargetClient,
    scorer: Scorer,
    concurrency: ConcurrencyLimits,
    /// How long a stop waits for the tests in flight.
    shutdown_grace: Duration,
    replica: Replica,
    telemetry: Telemetry,
    /// Largest answer a result stores.
    max_stored_bytes: usize,
    /// Where failed writes are told.
    write_faults: WriteFaults,
    /// The runs this replica works on.
    live: Mutex<HashMap<Uuid, LiveRun>>,
    /// Tells the scheduler to look for work now.
    wake: tokio::sync::Notify,
    stopping: CancellationToken,
    tasks: TaskTracker,
}

/// Tests and results read from the store at once while planning.
const LOAD_PAGE: u32 = 1000;

impl Engine {
    /// An engine over `store`, working as `settings` say; LLM-judge metrics that name no judge
    /// use `default_judge`. It takes part in runs once [`Engine::schedule`] is called.
    pub fn new(
        store: Arc<dyn Store>,
        settings: EngineSettings,
        default_judge: Option<crate::domain::Endpoint>,
    ) -> Arc<Self> {
        let mut targets = TargetClient::new()
            .with_secret_env(settings.secret_env)
            .with_max_response_bytes(settings.max_response_bytes)
            .with_outbound(settings.outbound)
            .with_telemetry(settings.telemetry.clone());
        if store.is_shared() {
            let pace = pace::StorePace {
                store: Arc::clone(&store),
            };
            targets = targets.with_shared_pace(Arc::new(pace));
        }
        let scorer = Scorer::new(targets.clone(), default_judge);
        Arc::new(Engine {
            store,
            targets,
            scorer,
            concurrency: settings.concurrency,
            shutdown_grace: settings.shutdown_grace,
            replica: settings.replica,
            telemetry: settings.telemetry,
            max_stored_bytes: settings.max_stored_output_bytes,
            write_faults: settings.write_faults,
            live: Mutex::new(HashMap::new()),
            wake: tokio::sync::Notify::new(),
            stopping: CancellationToken::new(),
            tasks: TaskTracker::new(),
        })
    }

    /// An endpoint ready to be called, sharing its gate with every other run.
    fn prepare(
        &self,
        endpoint: &crate::domain::Endpoint,
        parameters: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Arc<PreparedTarget>> {
        let target = self.targets.prepare(endpoint, parameters).map_err(|e| {
            Error::precondition(
                format!("endpoint {}", endpoint.name),
                format!("endpoint {:?} cannot be called: {e}", endpoint.name),
            )
        })?;
        Ok(Arc::new(target))
    }

    /// Every test of a test set, by id.
    async fn tests_by_id(&self, test_set_id: Uuid) -> Result<HashMap<Uuid, Test>> {
        let tests = collect_pages(|p| self.store.list_tests(test_set_id, p)).await?;
        Ok(tests.into_iter().map(|t| (t.id, t)).collect())
    }

    /// Follows a run: its stored results first, then live ones until it ends, whichever replica
    /// stores them.
    pub async fn watch(&self, run_id: Uuid) -> Result<RunEvents> {
        let live = self.live_run(run_id);
        let run = self.store.get_run(run_id).await?;
        Ok(self.follow(run, live.map(|l| l.progress)))
    }

    /// Cancels a running run and returns it as it ended: no result is stored after, and every
    /// replica working on it stops its calls. Cancelling a cancelled run returns it; cancelling a
    /// run that ended otherwise is `FailedPrecondition`.
    pub async fn cancel(&self, run_id: Uuid) -> Result<TestRun> {
        let ended_here = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let ending = Arc::clone(&ended_here);
        let run = self
            .store
            .update_run(
                run_id,
                Box::new(move |mut run: TestRun| match run.status {
                    RunStatus::Running => {
                        run.end(RunStatus::Cancelled);
                        ending.store(true, std::sync::atomic::Ordering::Relaxed);
                        Ok(run)
                    }
                    RunStatus::Cancelled => Ok(run),
                    status => Err(Error::precondition(
                        format!("run {run_id}"),
                        format!("run {run_id} has already ended as {}", status.as_str()),
                    )),
                }),
            )
            .await?;
        if ended_here.load(std::sync::atomic::Ordering::Relaxed) {
            self.telemetry.run_finished(RunStatus::Cancelled);
        }
        // The other replicas see it at their next look (the scheduler's poll).
        if let Some(live) = self.live_run(run_id) {
            live.cancel.cancel();
        }
        Ok(run)
    }

    /// Stops taking new runs and dispatching tests, waits up to the grace period for the tests
    /// in flight and stores their results, and gives up the items it claimed: runs that did not
    /// end stay `RUNNING`, for the other replicas or the next start.
    pub async fn shutdown(&self) {
        self.stopping.cancel();
        self.tasks.close();
        self.tasks.wait().await;
        if let Err(e) = self.store.release_claims(&self.replica.id).await {
            // Their leases end soon anyway.
            tracing::warn!(error = %e, "claims could not be given up");
        }
    }

    fn live_run(&self, run_id: Uuid) -> Option<LiveRun> {
        self.live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&run_id)
            .cloned()
    }

    /// Makes a run live on this replica (watchers follow its progress, `cancel` can stop it),
    /// unless it is already.
    fn register(&self, run_id: Uuid) -> Option<Registered> {
        let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        if live.contains_key(&run_id) {
            return None;
        }
        let (progress_tx, progress_rx) = watch::channel(Progress::default());
        let cancel = CancellationToken::new();
        live.insert(
            run_id,
            LiveRun {
                progress: progress_rx,
                cancel: cancel.clone(),
            },
        );
        Some(Registered {
            progress: progress_tx,
            cancel,
            active: self.telemetry.run_active(),
        })
    }

    /// The runs live on this replica.
    fn live_runs(&self) -> Vec<(Uuid, CancellationToken)> {
        self.live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(id, live)| (*id, live.cancel.clone()))
            .collect()
    }

    fn unregister(&self, run_id: Uuid) {
        self.live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&run_id);
    }

    /// Works on a registered run in its own task, under an `assay.run` span that is a child of
    /// the current one (the RPC that started the run; none for a run taken up from the store).
    fn spawn_drive(self: &Arc<Self>, run: TestRun, work: Work, live: Registered) {
        let span = tracing::info_span!(
            "assay.run",
            run_id = %run.id,
            endpoint = work.target.as_ref().map_or("", |t| t.name()),
            assay.run.kind = run.kind.as_str(),
        );
        let engine = Arc::clone(self);
        self.tasks
            .spawn(async move { engine.drive(run, work, live).await }.instrument(span));
    }

    fn follow(&self, run: TestRun, progress: Option<watch::Receiver<Progress>>) -> RunEvents {
        // A small buffer (of batches): a slow client makes its follower wait, not the run.
        let (tx, rx) = mpsc::channel(4);
        let follower = follow::Follower {
            store: Arc::clone(&self.store),
            telemetry: self.telemetry.clone(),
            poll: self.replica.poll,
            stopping: self.stopping.clone(),
        };
        tokio::spawn(follower.follow(run, progress, tx));
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
