//! Importing tests: a test set (new or existing) and its tests in one transaction, received in
//! bounded pieces, so that a large import is never held in memory whole and a bad row anywhere
//! imports nothing.

use std::collections::HashMap;
use std::time::Duration;

use futures::{Stream, StreamExt};

use super::Catalogue;
use super::test_sets::check_piece;
use crate::domain::{GroupDraft, Ref, TestDraft, TestSet};
use crate::error::{Error, Result};
use crate::store::ImportInto;

/// Longest pause between two pieces of an import. The import holds a write transaction (on
/// SQLite, the one writer that runs also store their results through), so a client that stalls
/// is cut off rather than allowed to hold it.
pub const IMPORT_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// The test set an import fills.
#[derive(Clone, Debug)]
pub enum ImportTarget {
    /// An existing test set, by id or name: the tests are appended.
    Existing(Ref),
    /// An existing test set, by id or name: the tests replace its tests.
    Replace(Ref),
    /// A new test set, created together with the tests.
    New(GroupDraft),
}

/// What an import stored.
#[derive(Clone, Debug)]
pub struct Imported {
    /// The test set afterwards, with its test count.
    pub test_set: TestSet,
    /// How many tests were imported.
    pub count: u64,
}

impl Catalogue {
    /// Imports the tests of `pieces` into a test set, all or nothing, in one transaction: each
    /// piece is validated and written before the next is read; any error (a bad test, an unknown
    /// behaviour, a broken stream, a pause longer than [`IMPORT_IDLE_TIMEOUT`]) stores nothing,
    /// not even a new test set. Error fields count tests across the whole import (`tests[i]`).
    pub async fn import_tests<S>(&self, target: ImportTarget, mut pieces: S) -> Result<Imported>
    where
        S: Stream<Item = Result<Vec<TestDraft>>> + Send + Unpin,
    {
        let into = match target {
            ImportTarget::Existing(reference) => {
                ImportInto::Existing(self.store.get_test_set(&reference).await?.id)
            }
            ImportTarget::Replace(reference) => {
                ImportInto::Replace(self.store.get_test_set(&reference).await?.id)
            }
            ImportTarget::New(draft) => {
                ImportInto::New(self.new_test_set(draft, "new_test_set").await?)
            }
        };
        let test_set_id = match &into {
            ImportInto::Existing(id) | ImportInto::Replace(id) => *id,
            ImportInto::New(test_set) => test_set.id,
        };
        let mut import = self.store.begin_import(into).await?;
        let mut behaviors = HashMap::new();
        let mut count = 0usize;
        loop {
            let next = tokio::time::timeout(IMPORT_IDLE_TIMEOUT, pieces.next())
                .await
                .map_err(|_| {
                    Error::precondition(
                        "import",
                        format!(
                            "no piece of the import arrived for {} s after {count} tests; \
                             nothing was imported",
                            IMPORT_IDLE_TIMEOUT.as_secs()
                        ),
                    )
                })?;
            let Some(piece) = next else { break };
            let drafts = piece?;
            if drafts.is_empty() {
                continue;
            }
            check_piece(drafts.len())?;
            let len = drafts.len();
            let tests = self
                .tests(test_set_id, drafts, count, &mut behaviors)
                .await?;
            import.add(&tests).await?;
            count += len;
        }
        if count == 0 {
            return Err(Error::invalid("tests", "give at least one test"));
        }
        let test_set = import.commit().await?;
        tracing::info!(test_set_id = %test_set.id, count, "tests imported");
        Ok(Imported {
            test_set,
            count: count as u64,
        })
    }
}
