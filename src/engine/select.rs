//! Running some of the tests: a request's filter and shard turned into the positions of the
//! items a run takes (tests of the set for an execution, results of the source for a rescore).

use std::collections::{HashMap, HashSet};

use uuid::Uuid;

use super::{Engine, LOAD_PAGE};
use crate::domain::{Ref, Shard, Test, TestFacts, TestFilter, TestResult};
use crate::error::{Error, Result};

/// Which tests a request chooses: its filter, with behaviours by reference until resolved, and
/// its shard.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// The filter; its `behavior_ids` are added from `behaviors`.
    pub filter: TestFilter,
    /// Behaviours as the request names them (ids or names).
    pub behaviors: Vec<Ref>,
    /// One part of a split by test id.
    pub shard: Option<Shard>,
}

impl Selection {
    /// Whether it chooses every test.
    fn is_all(&self) -> bool {
        self.filter.is_empty() && self.behaviors.is_empty() && self.shard.is_none()
    }
}

/// A resolved selection: whether one test is chosen.
struct Chooser {
    filter: TestFilter,
    shard: Option<Shard>,
}

impl Chooser {
    /// Whether the filter keeps a test, and whether it is chosen (kept, and in the shard).
    fn choice(&self, facts: TestFacts<'_>) -> (bool, bool) {
        let kept = self.filter.matches(facts);
        (kept, kept && self.shard.is_none_or(|s| s.holds(facts.id)))
    }
}

impl Engine {
    /// The selection with its behaviours resolved (an unknown one is `NotFound`); `None` when
    /// it chooses every test, so the run takes its items without reading them.
    async fn chooser(&self, selection: &Selection) -> Result<Option<Chooser>> {
        if selection.is_all() {
            return Ok(None);
        }
        let mut filter = selection.filter.clone();
        for behavior in &selection.behaviors {
            filter
                .behavior_ids
                .insert(self.store.get_behavior(behavior).await?.id);
        }
        Ok(Some(Chooser {
            filter,
            shard: selection.shard,
        }))
    }

    /// The positions of the tests of a test set, up to `through`, that `selection` chooses;
    /// `None` when it chooses all. None chosen is `FailedPrecondition` naming `set_name`.
    pub(super) async fn choose_tests(
        &self,
        test_set_id: Uuid,
        set_name: &str,
        through: i64,
        selection: &Selection,
    ) -> Result<Option<Vec<i64>>> {
        let Some(chooser) = self.chooser(selection).await? else {
            return Ok(None);
        };
        let mut filtered = false;
        let chosen = positions_where(
            |after| self.store.tests_after(test_set_id, after, LOAD_PAGE),
            through,
            |t: &Test| {
                let (kept, chosen) = chooser.choice(t.into());
                filtered |= kept;
                chosen
            },
        )
        .await?;
        kept_some(chosen, filtered, || format!("test set {set_name:?}"))
    }

    /// The positions of the results of `source_run_id`, up to `through`, whose test
    /// `selection` chooses (category, topic and metadata as the tests of `test_set_id` are
    /// now), and how many tests they are the results of (a repeated run has several results of
    /// a test); `None` when it chooses all.
    pub(super) async fn choose_results(
        &self,
        source_run_id: Uuid,
        test_set_id: Uuid,
        through: i64,
        selection: &Selection,
    ) -> Result<Option<(Vec<i64>, u32)>> {
        let Some(chooser) = self.chooser(selection).await? else {
            return Ok(None);
        };
        let tests: HashMap<Uuid, Test> = self.tests_by_id(test_set_id).await?;
        let mut chosen_tests = HashSet::new();
        let mut filtered = false;
        let chosen = positions_where(
            |after| self.store.results_after(source_run_id, after, LOAD_PAGE),
            through,
            |r: &TestResult| {
                let (kept, chosen) = chooser.choice(TestFacts {
                    id: r.test_id,
                    behavior_id: r.behavior_id,
                    test: tests.get(&r.test_id),
                });
                filtered |= kept;
                if chosen {
                    chosen_tests.insert(r.test_id);
                }
                chosen
            },
        )
        .await?;
        let count = u32::try_from(chosen_tests.len()).unwrap_or(u32::MAX);
        Ok(kept_some(chosen, filtered, || format!("run {source_run_id}"))?.map(|p| (p, count)))
    }
}

/// The positions, up to `through`, of the items that `fetch` reads page by page (after a
/// position) and `keep` keeps.
async fn positions_where<T, Fut>(
    mut fetch: impl FnMut(Option<i64>) -> Fut,
    through: i64,
    mut keep: impl FnMut(&T) -> bool,
) -> Result<Vec<i64>>
where
    Fut: Future<Output = Result<Vec<(i64, T)>>>,
{
    let mut chosen = Vec::new();
    let mut after = None;
    loop {
        let page = fetch(after).await?;
        let Some((last, _)) = page.last() else {
            return Ok(chosen);
        };
        let last = *last;
        chosen.extend(
            page.iter()
                .filter(|(p, item)| *p <= through && keep(item))
                .map(|(p, _)| *p),
        );
        if last >= through {
            return Ok(chosen);
        }
        after = Some(last);
    }
}

/// The chosen positions. A filter that keeps none of the tests (`filtered` false) is
/// `FailedPrecondition` naming what they were chosen from; a shard that holds none of the kept
/// tests is an empty selection, not an error: the shards of a split together run each test once,
/// and with fewer tests than shards some shards are empty.
fn kept_some(
    chosen: Vec<i64>,
    filtered: bool,
    of: impl FnOnce() -> String,
) -> Result<Option<Vec<i64>>> {
    if !filtered {
        let of = of();
        return Err(Error::precondition(
            of.clone(),
            format!("the filter chooses none of the tests of {of}"),
        ));
    }
    Ok(Some(chosen))
}
