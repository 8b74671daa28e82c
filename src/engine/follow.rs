//! Following a run: the run, its stored results, then live ones, then its end. A follower sends
//! only results that are stored: it reads them from the store, or, when it has sent everything
//! before the batch the run stored last, takes that batch from the run's progress instead of
//! reading it back. Results are sent a stored batch at a time. A slow client falls behind onto
//! the store path, so it costs a few pages of memory (the one being sent and the four batches its
//! channel holds), never the run's size, and never holds the run back.

use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use super::{Progress, RunEvent};
use crate::domain::{RunStatus, TestRun};
use crate::error::{Error, Result};
use crate::store::Store;

/// Results read from the store at once.
const PAGE: u32 = 256;

/// Sends the events of `run` to `tx` until the run has ended and every result was sent, or the
/// receiver is gone. `progress` is `None` for a run that has already ended.
pub(super) async fn follow(
    store: Arc<dyn Store>,
    run: TestRun,
    mut progress: Option<watch::Receiver<Progress>>,
    tx: mpsc::Sender<Result<RunEvent>>,
) {
    if let Err(e) = follow_inner(&*store, run, &mut progress, &tx).await {
        // The client learns why its stream ended; the run itself goes on.
        let _ = tx.send(Err(e)).await;
    }
}

async fn follow_inner(
    store: &dyn Store,
    run: TestRun,
    progress: &mut Option<watch::Receiver<Progress>>,
    tx: &mpsc::Sender<Result<RunEvent>>,
) -> Result<()> {
    let run_id = run.id;
    if tx.send(Ok(RunEvent::Started(run))).await.is_err() {
        return Ok(());
    }
    let mut cursor = None;
    let mut sent = 0;
    loop {
        // Read the state before the results: if it says "ended", the read below sees every result.
        let (ended, latest) = match progress {
            Some(rx) => {
                let state = rx.borrow_and_update();
                (state.ended, state.latest.clone())
            }
            None => (true, None),
        };
        match latest.filter(|batch| batch.first == sent) {
            // Caught up: the batch stored last is exactly what comes next.
            Some(batch) => {
                let results = Arc::clone(&batch.results);
                if tx.send(Ok(RunEvent::Results(results))).await.is_err() {
                    return Ok(());
                }
                sent += batch.results.len();
                cursor = Some(batch.last_position);
            }
            None => {
                let page = store.results_after(run_id, cursor, PAGE).await?;
                let full = page.len() == PAGE as usize;
                if let Some(&(last, _)) = page.last() {
                    cursor = Some(last);
                    sent += page.len();
                    let results = page.into_iter().map(|(_, result)| result).collect();
                    if tx.send(Ok(RunEvent::Results(results))).await.is_err() {
                        return Ok(());
                    }
                }
                if full {
                    continue;
                }
            }
        }
        if ended {
            break;
        }
        if let Some(rx) = progress
            && rx.changed().await.is_err()
        {
            // The run task is gone: whatever it stored is final.
            *progress = None;
        }
    }
    let run = store.get_run(run_id).await?;
    if run.status == RunStatus::Running {
        // The server stopped before the run ended; it resumes at the next start.
        return Err(Error::Unavailable(format!(
            "the server stopped before run {run_id} ended; the run resumes when the server starts again: watch it then"
        )));
    }
    let _ = tx.send(Ok(RunEvent::Finished(run))).await;
    Ok(())
}
