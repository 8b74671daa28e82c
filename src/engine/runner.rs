//! Driving one run: dispatch the jobs (bounded by the run's concurrency; sequential is a
//! concurrency of one, which keeps test-set order), score each answer in a task of its own,
//! store results in batches while dispatching goes on, announce progress, and store the run's
//! end. When the server stops, dispatching ends,
//! the tests in flight get the grace period to finish and be stored, and the run stays `RUNNING`
//! to be resumed.

use std::sync::Arc;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use tokio_util::task::AbortOnDropHandle;
use uuid::Uuid;

use super::jobs::{Input, Job, Jobs};
use super::summary::Tally;
use super::{Engine, Registered, StoredBatch};
use crate::domain::{ResultStatus, RunStatus, TestResult, TestRun};
use crate::endpoint_client::PreparedTarget;
use crate::error::{Error, Result};
use crate::scoring::ScoreInput;
use crate::store::Store;

/// Most results stored in one transaction. Results that become ready while a write is in
/// progress are written together by the next one, which keeps the store off the critical path
/// of a fast endpoint; at this many, results wait in their tasks until the write is done.
const MAX_BATCH: usize = 256;

/// What a run's task has to do.
pub(super) struct Work {
    pub(super) jobs: Jobs,
    /// How many jobs `jobs` is expected to hold (tests removed from the set while the run goes on
    /// can make it fewer).
    pub(super) count: usize,
    /// The endpoint, when some job calls it.
    pub(super) target: Option<Arc<PreparedTarget>>,
}

/// A write in progress: the batch, and what storing it gave.
type Write = BoxFuture<'static, (Vec<TestResult>, Result<Option<i64>>)>;

/// Stores a run's results while the run goes on dispatching: one write at a time, and the
/// results that become ready meanwhile make up the next one. Invariant: when no write is in
/// progress, nothing is pending.
struct Writer {
    store: Arc<dyn Store>,
    writing: Option<Write>,
    pending: Vec<TestResult>,
}

impl Writer {
    fn new(store: Arc<dyn Store>) -> Self {
        Writer {
            store,
            writing: None,
            pending: Vec::new(),
        }
    }

    /// Queues a result; it is written at once when no write is in progress.
    fn push(&mut self, result: TestResult) {
        self.pending.push(result);
        self.start();
    }

    fn start(&mut self) {
        if self.writing.is_none() && !self.pending.is_empty() {
            let batch = std::mem::take(&mut self.pending);
            let store = Arc::clone(&self.store);
            self.writing = Some(
                async move {
                    let stored = store.insert_results(&batch).await;
                    (batch, stored)
                }
                .boxed(),
            );
        }
    }

    /// Nothing written or waiting.
    fn is_idle(&self) -> bool {
        self.writing.is_none()
    }

    /// As many results wait as one write takes.
    fn is_full(&self) -> bool {
        self.pending.len() >= MAX_BATCH
    }

    /// The batch of the write in progress once it is stored (and the next write started), with
    /// the position of its last result; never ready when idle. Cancel-safe: dropped before it is
    /// ready, the write goes on.
    async fn written(&mut self) -> Result<(Vec<TestResult>, i64)> {
        let Some(writing) = self.writing.as_mut() else {
            return std::future::pending().await;
        };
        let (batch, stored) = writing.await;
        self.writing = None;
        self.start();
        let last = stored?.ok_or_else(|| Error::internal("an empty batch was written"))?;
        Ok((batch, last))
    }
}

impl Engine {
    /// Runs the jobs of `work` to the end (or until cancelled, or stopped) and stores the run's
    /// final state. `tally` counts the results stored before (a resumed run).
    pub(super) async fn drive(
        self: Arc<Self>,
        mut run: TestRun,
        work: Work,
        mut tally: Tally,
        live: Registered,
    ) {
        let Work {
            jobs,
            count: mut left,
            target,
        } = work;
        let Registered { progress, cancel } = live;
        let run_id = run.id;
        // Boxed rather than pinned on the stack, so that it can be dropped before the run ends.
        // No job is dispatched once the server is stopping; those in flight go on. Each test is
        // called and scored in a task of its own, so a run uses every core; its handle aborts
        // the task when dropped, so dropping `results` drops the calls in flight.
        let mut results = Box::pin(
            jobs.take_until(self.stopping.clone().cancelled_owned())
                .map(|job| {
                    let engine = Arc::clone(&self);
                    let target = target.clone();
                    async move {
                        let job = job?;
                        let task = tokio::spawn(async move {
                            engine.process(run_id, job, target.as_deref()).await
                        });
                        AbortOnDropHandle::new(task)
                            .await
                            .map_err(|e| Error::internal_from("a test's task failed", e))
                    }
                })
                .buffer_unordered(run.max_concurrency.max(1) as usize),
        );
        let grace_over = async {
            self.stopping.cancelled().await;
            tokio::time::sleep(self.shutdown_grace).await;
        };
        tokio::pin!(grace_over);

        let mut writer = Writer::new(Arc::clone(&self.store));
        // Stored before announced: whatever a client is sent is durable.
        let mut record = |(results, last_position): (Vec<TestResult>, i64)| {
            left = left.saturating_sub(results.len());
            results.iter().for_each(|r| tally.add(r));
            progress.send_modify(|p| {
                let first = p.stored;
                p.stored += results.len();
                p.latest = Some(Arc::new(StoredBatch {
                    first,
                    last_position,
                    results: results.into(),
                }));
            });
        };
        let mut interrupted = None;
        let mut store_error = None;
        let mut exhausted = false;
        loop {
            if exhausted && writer.is_idle() {
                break;
            }
            tokio::select! {
                biased;
                _ = cancel.cancelled() => { interrupted = Some(RunStatus::Cancelled); break; }
                () = &mut grace_over => break,
                written = writer.written() => match written {
                    Ok(batch) => record(batch),
                    Err(e) => { store_error = Some(e); break; }
                },
                next = results.next(), if !exhausted && !writer.is_full() => match next {
                    Some(Ok(result)) => writer.push(result),
                    Some(Err(e)) => {
                        tracing::error!(run_id = %run_id, error = %e, "the run's tests could not be read");
                        run.error = Some(format!("the run's tests could not be read: {e}"));
                        interrupted = Some(RunStatus::Failed);
                        break;
                    }
                    None => exhausted = true,
                },
            }
        }
        // Dropping the stream aborts calls still in flight: a cancelled run dispatches nothing more
        // and stores nothing half-done. Results already made are stored, whatever ended the run.
        drop(results);
        while store_error.is_none() && !writer.is_idle() {
            match writer.written().await {
                Ok(batch) => record(batch),
                Err(e) => store_error = Some(e),
            }
        }
        if let Some(e) = store_error {
            tracing::error!(run_id = %run_id, error = %e, "results could not be stored");
            run.error = Some(format!("results could not be stored: {e}"));
            interrupted = Some(RunStatus::Failed);
        }

        // Every job was dispatched unless the stop cut the jobs short (tests removed from the set
        // while the run went on can leave `left` above zero without a stop).
        if interrupted.is_none() && left > 0 && self.stopping.is_cancelled() {
            // Stopped with tests left: the run stays RUNNING and resumes at the next start.
            self.unregister(run_id);
            tracing::info!(run_id = %run_id, left, "run left to resume at the next start");
            return;
        }
        run.status = interrupted.unwrap_or_else(|| tally.status());
        tally.finish(&mut run);
        if let Err(e) = self.store.update_run(&run).await {
            tracing::error!(run_id = %run_id, error = %e, "the end of the run could not be stored");
        }
        self.unregister(run_id);
        progress.send_modify(|p| p.ended = true);
        let summary = run.summary.as_ref();
        tracing::info!(
            run_id = %run_id,
            status = run.status.as_str(),
            passed = summary.map_or(0, |s| s.passed),
            failed = summary.map_or(0, |s| s.failed),
            errored = summary.map_or(0, |s| s.errored),
            "run finished"
        );
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
            error: None,
            attempts: 0,
            last_error: None,
            metric_results: Vec::new(),
            prompt: String::new(),
            expected_response: None,
            behavior_id: test.behavior_id,
            created_at: chrono::Utc::now(),
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
                result.error = source.error.filter(|_| result.output.is_none());
            }
            (Input::Call, Some(target)) => match target.call(&test).await {
                Ok(answer) => {
                    result.output = Some(answer.output);
                    result.context = answer.context;
                    result.metadata = answer.metadata;
                    result.latency_ms = answer.latency_ms;
                    result.attempts = answer.attempts;
                    result.last_error = answer.last_error;
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
                    prompt: &test.prompt,
                    expected_response: test.expected_response.as_deref(),
                    output,
                    context: &result.context,
                    latency_ms: result.latency_ms,
                };
                let scores = futures::future::join_all(
                    job.metrics.iter().map(|m| self.scorer.score(m, &input)),
                )
                .await;
                result.metric_results = scores;
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
        result.created_at = chrono::Utc::now();
        result.prompt = test.prompt;
        result.expected_response = test.expected_response;
        result
    }
}
