//! Taking part in one run: claim a few of its items at a time, dispatch their jobs (bounded by
//! this replica's concurrency for the run; sequential is a concurrency of one, which keeps
//! test-set order), score each answer in a task of its own, and store results in batches while
//! dispatching goes on, giving up their claims in the same transaction. Whichever replica stores
//! the run's last result ends it. When the server stops, dispatching ends, the tests in flight get
//! the grace period to finish and be stored, and the run stays `RUNNING` for the other replicas,
//! or for the next start.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::{self, BoxStream};
use futures::{FutureExt, StreamExt, TryStreamExt};
use tokio::sync::Notify;
use tokio_util::task::AbortOnDropHandle;
use tracing::Instrument;
use uuid::Uuid;

use super::budget::Spend;
use super::jobs::{Input, Items, Job};
use super::plan::MetricPlan;
use super::{Engine, Registered, StoredBatch};
use crate::domain::{
    MAX_REASON_CHARS, ResultStatus, RunStatus, Test, TestResult, TestRun, Usage, answer_over_limit,
    truncated,
};
use crate::endpoint_client::PreparedTarget;
use crate::error::{Error, Result};
use crate::scoring::ScoreInput;
use crate::store::{ClaimRequest, Completed, Completion};
use crate::telemetry::propagation;

/// Most results stored in one transaction. Results that become ready while a write is in
/// progress are written together by the next one, which keeps the store off the critical path
/// of a fast endpoint; at this many, results wait in their tasks until the write is done.
const MAX_BATCH: usize = 256;

/// Most items claimed at once (a replica claims as many as it keeps in flight): few enough that
/// other replicas find work too.
const MAX_CLAIM: u32 = 128;

/// On a store that is not shared, a replica claims this many times as many items as it keeps in
/// flight, up to [`MAX_CLAIM_ALONE`]: no other replica needs a share of the run, and fewer,
/// larger claims take fewer trips to the store (a claim, then a read of its tests). Few enough
/// times that a test removed while the run goes on is left out unless it is about to run.
const CLAIM_AHEAD: u32 = 4;

/// Most items claimed at once on a store that is not shared: the tests of two claims (one
/// dispatched, one read ahead) stay few in memory.
const MAX_CLAIM_ALONE: u32 = 256;

/// How long a replica waits before asking again when a cap held across replicas is reached and
/// none of its own writes frees a place sooner.
const CAPPED_RETRY: Duration = Duration::from_millis(50);

/// What taking part in a run needs.
pub(super) struct Work {
    /// What the run's items are.
    pub(super) items: Items,
    /// The metrics of its tests.
    pub(super) metrics: Arc<MetricPlan>,
    /// The endpoint, when some job calls it.
    pub(super) target: Option<Arc<PreparedTarget>>,
    /// Jobs in flight at once on this replica.
    pub(super) concurrency: u32,
    /// Most items in flight across replicas, for the run and for its endpoint.
    pub(super) run_cap: Option<u32>,
    pub(super) endpoint_cap: Option<(Uuid, u32)>,
}

/// What became of one claimed item.
struct Done {
    position: i64,
    /// `None`: nothing to run (the item's test was removed).
    result: Option<TestResult>,
}

/// A write in progress: what storing a batch gave.
type Write = BoxFuture<'static, Result<Completed>>;

/// Stores a run's results while the run goes on dispatching: one write at a time, and the
/// results that become ready meanwhile make up the next one. Invariant: when no write is in
/// progress, nothing is pending.
struct Writer {
    engine: Arc<Engine>,
    run_id: Uuid,
    writing: Option<Write>,
    pending: Vec<(i64, TestResult)>,
    dropped: Vec<i64>,
    /// Told when a write ends, so claims held back by a cap are asked again at once.
    written: Arc<Notify>,
}

impl Writer {
    fn new(engine: Arc<Engine>, run_id: Uuid, written: Arc<Notify>) -> Self {
        Writer {
            engine,
            run_id,
            writing: None,
            pending: Vec::new(),
            dropped: Vec::new(),
            written,
        }
    }

    /// Queues what became of an item; it is written at once when no write is in progress.
    fn push(&mut self, done: Done) {
        match done.result {
            Some(result) => self.pending.push((done.position, result)),
            None => self.dropped.push(done.position),
        }
        self.start();
    }

    fn start(&mut self) {
        if self.writing.is_some() || (self.pending.is_empty() && self.dropped.is_empty()) {
            return;
        }
        let results = std::mem::take(&mut self.pending);
        let dropped = std::mem::take(&mut self.dropped);
        let engine = Arc::clone(&self.engine);
        let run_id = self.run_id;
        self.writing = Some(
            async move {
                let done = Completion {
                    run_id,
                    owner: &engine.replica.id,
                    dropped,
                    results,
                };
                engine.store.complete_work(done, Box::new(fold)).await
            }
            .boxed(),
        );
    }

    /// Nothing written or waiting.
    fn is_idle(&self) -> bool {
        self.writing.is_none()
    }

    /// As many results wait as one write takes.
    fn is_full(&self) -> bool {
        self.pending.len() >= MAX_BATCH
    }

    /// What the write in progress stored, once it is done (and the next write started); never
    /// ready when idle. Cancel-safe: dropped before it is ready, the write goes on.
    async fn written(&mut self) -> Result<Completed> {
        let Some(writing) = self.writing.as_mut() else {
            return std::future::pending().await;
        };
        let completed = writing.await;
        self.writing = None;
        self.written.notify_one();
        self.start();
        completed
    }
}

/// Brings a run up to date with results just stored, and ends it when no item is left.
fn fold(mut run: TestRun, stored: &[TestResult], left: bool) -> TestRun {
    let plan = run.plan.get_or_insert_with(Default::default);
    stored.iter().for_each(|r| plan.tally.add(r));
    if !left {
        let (status, reason) = plan.outcome(run.total);
        run.error = reason.or(run.error.take());
        run.end(status);
    }
    run
}

impl Engine {
    /// Works on the run's items until none is free (or it is cancelled, or the server stops),
    /// storing every result; the replica that stores the last one ends the run.
    pub(super) async fn drive(self: Arc<Self>, run: TestRun, work: Work, live: Registered) {
        let run_id = run.id;
        let Registered {
            progress,
            cancel,
            active: _active,
        } = live;
        let run_span = tracing::Span::current();
        let written = Arc::new(Notify::new());
        let concurrency = work.concurrency.max(1) as usize;
        let target = work.target.clone();
        let spend = Arc::new(Spend::of(&run));
        // Boxed rather than pinned on the stack, so that it can be dropped before the run ends.
        // No job is dispatched once the server is stopping; those in flight go on. Each test is
        // called and scored in a task of its own, so a run uses every core; its handle aborts
        // the task when dropped, so dropping `results` drops the calls in flight.
        let mut results = Box::pin(
            self.claimed(run_id, Arc::new(work), Arc::clone(&written))
                .take_until(self.stopping.clone().cancelled_owned())
                .map(|item| {
                    let engine = Arc::clone(&self);
                    let target = target.clone();
                    let spend = Arc::clone(&spend);
                    let run_span = run_span.clone();
                    async move {
                        let job = match item? {
                            Claimed::Job(job) => *job,
                            Claimed::Dropped(position) => {
                                return Ok::<_, Error>(Done {
                                    position,
                                    result: None,
                                });
                            }
                        };
                        let position = job.position;
                        // Checked as the job is dispatched: a spent budget leaves it not run.
                        if spend.exhausted() {
                            return Ok(Done {
                                position,
                                result: None,
                            });
                        }
                        let span = tracing::info_span!(
                            parent: &run_span,
                            "assay.test",
                            test_id = %job.test.id,
                        );
                        let task = tokio::spawn(
                            async move { engine.process(run_id, job, target.as_deref()).await }
                                .instrument(span),
                        );
                        let result = AbortOnDropHandle::new(task)
                            .await
                            .map_err(|e| Error::internal_from("a test's task failed", e))?;
                        spend.add(result.spent_usd());
                        Ok(Done {
                            position,
                            result: Some(result),
                        })
                    }
                })
                .buffer_unordered(concurrency),
        );
        let grace_over = async {
            self.stopping.cancelled().await;
            tokio::time::sleep(self.shutdown_grace).await;
        };
        tokio::pin!(grace_over);

        let mut writer = Writer::new(Arc::clone(&self), run_id, written);
        // Stored before announced: whatever a client is sent is durable.
        let record = |completed: Completed| -> bool {
            let ended = completed.run.status != RunStatus::Running;
            self.telemetry.results_stored(&completed.results);
            progress.send_modify(|p| {
                if let Some(last) = completed.last {
                    p.latest = Some(Arc::new(StoredBatch {
                        after: completed.after,
                        last_position: last,
                        results: completed.results.into(),
                    }));
                }
                p.ended = ended;
            });
            if ended {
                self.ended(&completed.run);
            }
            ended
        };
        let mut ended = false;
        let mut failure = None;
        let mut exhausted = false;
        loop {
            if exhausted && writer.is_idle() {
                break;
            }
            tokio::select! {
                biased;
                _ = cancel.cancelled() => { ended = true; break; }
                () = &mut grace_over => break,
                written = writer.written() => match written {
                    Ok(completed) => if record(completed) { ended = true; break; },
                    Err(e) => { failure = Some(self.unstored(&e)); break; }
                },
                next = results.next(), if !exhausted && !writer.is_full() => match next {
                    Some(Ok(done)) => writer.push(done),
                    Some(Err(e)) => {
                        failure = Some(format!("the run's tests could not be read: {e}"));
                        break;
                    }
                    None => exhausted = true,
                },
            }
        }
        // Dropping the stream aborts calls still in flight: a cancelled run dispatches nothing more
        // and stores nothing half-done. Results already made are stored, whatever ended the run.
        drop(results);
        while !ended && failure.is_none() && !writer.is_idle() {
            match writer.written().await {
                Ok(completed) => ended = record(completed),
                Err(e) => failure = Some(self.unstored(&e)),
            }
        }
        if let Some(error) = failure {
            tracing::error!(run_id = %run_id, error = %error, "the run failed");
            match self.fail(run_id, error.clone()).await {
                Ok(run) => self.ended(&run),
                Err(e) => {
                    self.write_faults.record(&e);
                    tracing::error!(run_id = %run_id, error = %e, "the end of the run could not be stored");
                    // Its followers must not take the run, still `RUNNING` in the store, for
                    // ended: they end their streams with why.
                    progress.send_modify(|p| {
                        p.unstored = Some(format!(
                            "run {run_id}: {error}; nor could the run's end be stored ({e}): the \
                             run stays RUNNING and goes on once the database can be written \
                             again; the results stored so far are readable"
                        ));
                    });
                }
            }
            ended = true;
        }
        self.unregister(run_id);
        if ended {
            progress.send_modify(|p| p.ended = true);
        } else if self.stopping.is_cancelled() {
            tracing::info!(run_id = %run_id, "run left to the other replicas or the next start");
        }
    }

    /// Why a run stops when a batch of its results could not be stored (told to health
    /// reporting too): none of that batch was sent to any client.
    fn unstored(&self, e: &Error) -> String {
        self.write_faults.record(e);
        format!("results could not be stored: {e}")
    }

    /// Ends a running run as `FAILED` with `error`; a run that has ended already stays as it is.
    pub(super) async fn fail(&self, run_id: Uuid, error: String) -> Result<TestRun> {
        self.store
            .update_run(
                run_id,
                Box::new(move |mut run: TestRun| {
                    if run.status == RunStatus::Running {
                        run.error = Some(error);
                        run.end(RunStatus::Failed);
                    }
                    Ok(run)
                }),
            )
            .await
    }

    /// The jobs of the items this replica claims, a batch at a time, until no item is free. The
    /// next batch is claimed and read while this one is dispatched, so a fast endpoint never
    /// waits for the store between batches.
    fn claimed(
        self: &Arc<Self>,
        run_id: Uuid,
        work: Arc<Work>,
        written: Arc<Notify>,
    ) -> BoxStream<'static, Result<Claimed>> {
        let engine = Arc::clone(self);
        // Aborted when dropped, so a cancelled run leaves no claim in progress behind.
        let prefetch = move || {
            let claiming =
                Arc::clone(&engine).next_batch(run_id, Arc::clone(&work), Arc::clone(&written));
            AbortOnDropHandle::new(tokio::spawn(claiming))
        };
        let first = prefetch();
        stream::try_unfold((prefetch, Some(first)), |(prefetch, claiming)| async move {
            let Some(claiming) = claiming else {
                return Ok::<_, Error>(None);
            };
            let batch = claiming
                .await
                .map_err(|e| Error::internal_from("claiming tests failed", e))??;
            Ok(batch.map(|items| {
                let next = prefetch();
                (
                    stream::iter(items.into_iter().map(Ok)),
                    (prefetch, Some(next)),
                )
            }))
        })
        .try_flatten()
        .boxed()
    }

    /// Claims the next batch of the run's items and turns them into jobs; `None` when no item is
    /// free. When a cap held across replicas is reached, waits for a place.
    async fn next_batch(
        self: Arc<Self>,
        run_id: Uuid,
        work: Arc<Work>,
        written: Arc<Notify>,
    ) -> Result<Option<Vec<Claimed>>> {
        let limit = if self.store.is_shared() {
            work.concurrency.clamp(1, MAX_CLAIM)
        } else {
            work.concurrency
                .saturating_mul(CLAIM_AHEAD)
                .clamp(1, MAX_CLAIM_ALONE)
        };
        loop {
            let now = chrono::Utc::now().timestamp_millis();
            let request = ClaimRequest {
                run_id,
                owner: &self.replica.id,
                now_ms: now,
                lease_until_ms: now + self.replica.lease_ms(),
                limit,
                run_cap: work.run_cap,
                endpoint_cap: work.endpoint_cap,
            };
            match self.store.claim_work(&request).await? {
                // A place frees when a result is stored, here or on another replica.
                None => {
                    let _ = tokio::time::timeout(CAPPED_RETRY, written.notified()).await;
                }
                Some(positions) if positions.is_empty() => return Ok(None),
                Some(positions) => {
                    let (jobs, dropped) = work
                        .items
                        .jobs(&*self.store, &work.metrics, &positions)
                        .await?;
                    let items = jobs
                        .into_iter()
                        .map(|job| Claimed::Job(Box::new(job)))
                        .chain(dropped.into_iter().map(Claimed::Dropped));
                    return Ok(Some(items.collect()));
                }
            }
        }
    }

    /// The result of one job: the endpoint's answer (or the stored one), scored by the job's
    /// metrics. Never fails: every failure is recorded in the result.
    async fn process(&self, run_id: Uuid, job: Job, target: Option<&PreparedTarget>) -> TestResult {
        let test = job.test;
        let mut result = TestResult {
            id: Uuid::now_v7(),
            run_id,
            test_id: test.id,
            status: ResultStatus::Error,
            output: None,
            context: Vec::new(),
            metadata: None,
            latency_ms: 0,
            repetition: job.repetition,
            error: None,
            attempts: 0,
            last_error: None,
            metric_results: Vec::new(),
            prompt: String::new(),
            expected_response: None,
            behavior_id: test.behavior_id,
            created_at: chrono::Utc::now(),
            usage: None,
            cost_usd: 0.0,
            judge_usage: Usage::default(),
            judge_cost_usd: 0.0,
            trace_id: propagation::trace_id(&tracing::Span::current()),
        };
        match (job.input, target) {
            (Input::Copy(source), _) => {
                return TestResult {
                    id: result.id,
                    run_id,
                    created_at: result.created_at,
                    ..source
                };
            }
            (Input::Rescore(source), _) => {
                result.output = source.output;
                result.context = source.context;
                result.metadata = source.metadata;
                result.latency_ms = source.latency_ms;
                result.attempts = source.attempts;
                result.last_error = source.last_error;
                result.usage = source.usage;
                result.cost_usd = source.cost_usd;
                result.error = source.error.filter(|_| result.output.is_none());
            }
            (Input::Call, Some(target)) => match target.call(&test).await {
                Ok(answer) => {
                    result.attempts = answer.attempts;
                    let size = answer.output.len()
                        + answer.context.iter().map(String::len).sum::<usize>()
                        + answer.metadata.as_ref().map_or(0, |m| m.to_string().len());
                    // Stored, it must fit in a message of the read RPCs: refused whole rather
                    // than cut, so that no metric scores an answer other than the one given.
                    if let Some(error) = answer_over_limit(size, self.max_stored_bytes) {
                        result.latency_ms = answer.latency_ms;
                        result.error = Some(error);
                        result.usage = answer.usage;
                        result.cost_usd = answer.cost_usd;
                        return self.finish(result, test);
                    }
                    result.output = Some(answer.output);
                    result.context = answer.context;
                    result.metadata = answer.metadata;
                    result.latency_ms = answer.latency_ms;
                    result.attempts = answer.attempts;
                    result.last_error = answer.last_error;
                    result.usage = answer.usage;
                    result.cost_usd = answer.cost_usd;
                }
                Err(e) => {
                    result.attempts = e.attempts;
                    result.error = Some(e.to_string());
                    result.last_error.clone_from(&result.error);
                }
            },
            (Input::Call, None) => {
                result.error = Some("no endpoint to call and no stored output".into())
            }
        }
        if let Some(output) = result.output.as_deref() {
            if job.metrics.is_empty() {
                result.error = Some("no metrics".into());
            } else {
                let input = ScoreInput {
                    test_id: test.id,
                    metadata: &test.metadata,
                    prompt: &test.prompt,
                    expected_response: test.expected_response.as_deref(),
                    output,
                    context: &result.context,
                    latency_ms: result.latency_ms,
                    usage: result.usage,
                    cost_usd: result.cost_usd,
                };
                let scores = futures::future::join_all(
                    job.metrics.iter().map(|m| self.scorer.score(m, &input)),
                )
                .await;
                result.metric_results = scores;
                for m in &mut result.metric_results {
                    if m.reason.len() > MAX_REASON_CHARS {
                        m.reason = truncated(&m.reason, MAX_REASON_CHARS);
                    }
                }
                result.count_judge_spend();
                result.status = if result.metric_results.iter().all(|m| m.error.is_some()) {
                    result.error = Some("no metric could be evaluated".into());
                    ResultStatus::Error
                } else if result.metric_results.iter().all(|m| m.passed) {
                    ResultStatus::Passed
                } else {
                    ResultStatus::Failed
                };
            }
        }
        self.finish(result, test)
    }

    /// The result stamped now, with its test's prompt and expected response.
    fn finish(&self, mut result: TestResult, test: Test) -> TestResult {
        result.created_at = chrono::Utc::now();
        result.prompt = test.prompt;
        result.expected_response = test.expected_response;
        result
    }
}

/// A claimed item, as the run's job stream yields it.
enum Claimed {
    Job(Box<Job>),
    /// An item with nothing left to run.
    Dropped(i64),
}

impl Engine {
    /// Logs and counts the end of a run, stored by this replica.
    pub(super) fn ended(&self, run: &TestRun) {
        let summary = run.summary.as_ref();
        tracing::info!(
            run_id = %run.id,
            status = run.status.as_str(),
            passed = summary.map_or(0, |s| s.passed),
            failed = summary.map_or(0, |s| s.failed),
            errored = summary.map_or(0, |s| s.errored),
            "run finished"
        );
        self.telemetry.run_finished(run.status);
    }
}
