//! Runs: executing a test set against an endpoint, rescoring stored outputs, following and
//! cancelling runs. Knows nothing of gRPC: the API layer turns [`RunEvent`]s into messages.
//!
//! A run belongs to the engine, not to the client that started it: whatever asks for it, it is
//! created by one path ([`start`]) and driven by its own task ([`runner`]), which stores every
//! result and then announces progress; clients follow the store ([`follow`]), so a disconnected
//! or slow client never holds a run back.
//!
//! Runs survive stops and crashes ([`resume`]): each run stores its plan when it starts, a stop
//! lets the tests in flight finish (up to a grace period) and leaves the run `RUNNING`, and the
//! next start resumes every `RUNNING` run with the tests that have no stored result.

mod concurrency;
mod follow;
mod history;
mod jobs;
mod plan;
mod resume;
mod runner;
mod start;
mod summary;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::domain::{ExecutionMode, PageRequest, Ref, RunStatus, Test, TestResult, TestRun};
use crate::endpoint_client::{PreparedTarget, TargetClient};
use crate::error::{Error, Result};
use crate::scoring::Scorer;
use crate::store::Store;
pub use concurrency::ConcurrencyLimits;
use runner::Work;
use summary::Tally;

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
#[derive(Clone, Debug, Default)]
struct Progress {
    /// Results stored so far.
    stored: usize,
    /// The batch stored last, so that followers that are caught up need not read it back.
    latest: Option<Arc<StoredBatch>>,
    /// The run has ended and its final state is stored.
    ended: bool,
}

/// Results just stored, in order.
#[derive(Debug)]
struct StoredBatch {
    /// How many results of the run were stored before these.
    first: usize,
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
}

/// Runs test sets and keeps track of the runs in progress.
pub struct Engine {
    store: Arc<dyn Store>,
    targets: TargetClient,
    scorer: Scorer,
    concurrency: ConcurrencyLimits,
    /// How long a stop waits for the tests in flight.
    shutdown_grace: Duration,
    live: Mutex<HashMap<Uuid, LiveRun>>,
    stopping: CancellationToken,
    tasks: TaskTracker,
}

/// Tests and results read from the store at once while planning.
const LOAD_PAGE: u32 = 1000;

impl Engine {
    /// An engine over `store`; a run's concurrency follows `concurrency`; a stop waits up to
    /// `shutdown_grace` for the tests in flight; LLM-judge metrics that name no judge use
    /// `default_judge`.
    pub fn new(
        store: Arc<dyn Store>,
        concurrency: ConcurrencyLimits,
        shutdown_grace: Duration,
        default_judge: Option<crate::domain::Endpoint>,
    ) -> Arc<Self> {
        let targets = TargetClient::new();
        let scorer = Scorer::new(targets.clone(), default_judge);
        Arc::new(Engine {
            store,
            targets,
            scorer,
            concurrency,
            shutdown_grace,
            live: Mutex::new(HashMap::new()),
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

    /// Stops taking new runs and dispatching tests, waits up to the grace period for the tests
    /// in flight and stores their results; runs that did not end stay `RUNNING`, to be resumed
    /// at the next start.
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

    /// Makes a run live: watchers follow its progress, `cancel` can stop it.
    fn register(&self, run_id: Uuid, stored: usize) -> Registered {
        let (progress_tx, progress_rx) = watch::channel(Progress {
            stored,
            ..Progress::default()
        });
        let cancel = CancellationToken::new();
        self.live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                run_id,
                LiveRun {
                    progress: progress_rx,
                    cancel: cancel.clone(),
                },
            );
        Registered {
            progress: progress_tx,
            cancel,
        }
    }

    fn unregister(&self, run_id: Uuid) {
        self.live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&run_id);
    }

    /// Drives a registered run in its own task.
    fn spawn_drive(self: &Arc<Self>, run: TestRun, work: Work, tally: Tally, live: Registered) {
        let engine = Arc::clone(self);
        self.tasks
            .spawn(async move { engine.drive(run, work, tally, live).await });
    }

    fn follow(&self, run: TestRun, progress: Option<watch::Receiver<Progress>>) -> RunEvents {
        // A small buffer (of batches): a slow client makes its follower wait, not the run.
        let (tx, rx) = mpsc::channel(4);
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
