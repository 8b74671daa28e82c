//! Following a run: the run, its stored results, then live ones, then its end. Everything a
//! follower sends is read back from the store, so a streamed result is always a durable one,
//! replay and live follow are one code path, and a slow client costs one page of memory, never
//! the run's size.

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
    loop {
        // Read the state before the results: if it says "ended", the read below sees every result.
        let ended = match progress {
            Some(rx) => rx.borrow_and_update().ended,
            None => true,
        };
        let page = store.results_after(run_id, cursor, PAGE).await?;
        let full = page.len() == PAGE as usize;
        for (seq, result) in page {
            cursor = Some(seq);
            if tx.send(Ok(RunEvent::Result(result))).await.is_err() {
                return Ok(());
            }
        }
        if full {
            continue;
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
