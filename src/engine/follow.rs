//! Following a run: the run, its stored results in the order they were stored, then its end,
//! whichever replica stores them. A follower sends only results that are stored: it reads them
//! from the store past its cursor, or, when the batch this replica stored last comes right after
//! its cursor, takes that batch from the run's progress instead of reading it back. While this
//! replica works on the run, each batch it stores wakes the follower; results stored by other
//! replicas are read every poll interval. A slow client falls behind onto the store path, so it
//! costs a few pages of memory, never the run's size, and never holds the run back.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::{Progress, RunEvent};
use crate::domain::{RunStatus, TestRun};
use crate::error::{Error, Result};
use crate::store::Store;

/// Results read from the store at once.
const PAGE: u32 = 256;

/// What a follower reads and waits on.
pub(super) struct Follower {
    pub(super) store: Arc<dyn Store>,
    /// Measures how long live results wait to be sent.
    pub(super) telemetry: crate::telemetry::Telemetry,
    /// How often results stored elsewhere are looked for.
    pub(super) poll: Duration,
    /// This server is stopping.
    pub(super) stopping: CancellationToken,
}

impl Follower {
    /// Sends the events of `run` to `tx` until the run has ended and every result was sent, or
    /// the receiver is gone. `progress` is the run's progress on this replica, when it works on
    /// the run.
    pub(super) async fn follow(
        self,
        run: TestRun,
        mut progress: Option<watch::Receiver<Progress>>,
        tx: mpsc::Sender<Result<RunEvent>>,
    ) {
        if let Err(e) = self.follow_inner(run, &mut progress, &tx).await {
            // The client learns why its stream ended; the run itself goes on.
            let _ = tx.send(Err(e)).await;
        }
    }

    async fn follow_inner(
        &self,
        run: TestRun,
        progress: &mut Option<watch::Receiver<Progress>>,
        tx: &mpsc::Sender<Result<RunEvent>>,
    ) -> Result<()> {
        let run_id = run.id;
        let mut ended = (run.status != RunStatus::Running).then_some(run.clone());
        if tx.send(Ok(RunEvent::Started(run))).await.is_err() {
            return Ok(());
        }
        let mut cursor = None;
        // Set when this replica could store neither the run's results nor its end.
        let mut unstored: Option<String> = None;
        loop {
            // Whether the run has ended is known before the results are read, so that the read
            // below sees every result.
            let latest = match progress {
                Some(rx) => {
                    let (ended_here, latest) = {
                        let state = rx.borrow_and_update();
                        unstored.clone_from(&state.unstored);
                        (state.ended, state.latest.clone())
                    };
                    if ended_here && ended.is_none() && unstored.is_none() {
                        ended = Some(self.store.get_run(run_id).await?);
                    }
                    latest
                }
                None => {
                    if ended.is_none() {
                        let run = self.store.get_run(run_id).await?;
                        ended = (run.status != RunStatus::Running).then_some(run);
                    }
                    None
                }
            };
            // Once the run has ended, everything is read from the store: other replicas may have
            // stored results after this replica's last batch.
            match latest
                .filter(|batch| batch.after == cursor && ended.is_none() && unstored.is_none())
            {
                // Caught up: the batch stored last is exactly what comes next.
                Some(batch) => {
                    let results = Arc::clone(&batch.results);
                    if tx.send(Ok(RunEvent::Results(results))).await.is_err() {
                        return Ok(());
                    }
                    // Only live results: those read back from the store were sent long after.
                    self.telemetry.results_sent(&batch.results);
                    cursor = Some(batch.last_position);
                }
                None => loop {
                    let page = self.store.results_after(run_id, cursor, PAGE).await?;
                    let full = page.len() == PAGE as usize;
                    if let Some(&(last, _)) = page.last() {
                        cursor = Some(last);
                        let results = page.into_iter().map(|(_, result)| result).collect();
                        if tx.send(Ok(RunEvent::Results(results))).await.is_err() {
                            return Ok(());
                        }
                    }
                    if !full {
                        break;
                    }
                },
            }
            if let Some(run) = ended.take() {
                let _ = tx.send(Ok(RunEvent::Finished(run))).await;
                return Ok(());
            }
            if let Some(why) = unstored.take() {
                return Err(Error::Unavailable(why));
            }
            self.wait(progress).await;
            if self.stopping.is_cancelled() && progress.is_none() {
                let run = self.store.get_run(run_id).await?;
                if run.status == RunStatus::Running {
                    return Err(Error::Unavailable(format!(
                        "the server stopped before run {run_id} ended; the run goes on on the other replicas, or resumes when the server starts again: watch it then"
                    )));
                }
                ended = Some(run);
            }
        }
    }

    /// Waits until this replica stores more of the run, or the poll interval passes (results
    /// stored elsewhere), or the server stops.
    async fn wait(&self, progress: &mut Option<watch::Receiver<Progress>>) {
        let tick = tokio::time::sleep(self.poll);
        match progress {
            Some(rx) => tokio::select! {
                changed = rx.changed() => if changed.is_err() {
                    // This replica no longer works on the run: others may.
                    *progress = None;
                },
                () = tick => {}
            },
            None => tokio::select! {
                () = tick => {}
                () = self.stopping.cancelled() => {}
            },
        }
    }
}
