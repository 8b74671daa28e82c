//! Comparing two runs test by test: what regressed, what was fixed, and whether the change of
//! pass rate over the paired tests is more than chance (exact McNemar test). Pure: it sees only
//! the two runs' results.

use std::collections::HashMap;

use uuid::Uuid;

use super::{ResultStatus, TestResult};

/// How one test changed from the base run to the head run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TestChange {
    /// Passed in the base, not in the head.
    Regressed,
    /// Did not pass in the base, passed in the head.
    Fixed,
    /// An error in either run.
    Error,
    /// Only in the head.
    Added,
    /// Only in the base.
    Removed,
    /// Failed in both.
    StillFailing,
    /// Passed in both.
    StillPassing,
}

/// How the tests of two runs are paired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchBy {
    /// The same test id: runs of one test set.
    TestId,
    /// The same prompt: runs of different test sets.
    Prompt,
}

/// One test in one run: its results (several when it was repeated) taken together.
#[derive(Clone, Debug, PartialEq)]
pub struct TestOutcome {
    /// The test's id in that run.
    pub test_id: Uuid,
    /// Status by majority of its results: passed when more than half passed, else an error when
    /// more than half are errors, else failed.
    pub status: ResultStatus,
    /// Share of its results that passed.
    pub pass_rate: f64,
}

/// How one metric's verdict on a test changed.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricChange {
    /// Metric id.
    pub metric_id: Uuid,
    /// Metric name (the head's when both have it).
    pub metric_name: String,
    /// Mean score in the base, when it gave one.
    pub base_score: Option<f64>,
    /// Mean score in the head, when it gave one.
    pub head_score: Option<f64>,
    /// Whether most of the base's answers passed it.
    pub base_passed: bool,
    /// Whether most of the head's answers passed it.
    pub head_passed: bool,
}

impl MetricChange {
    /// head - base, when both scores are known.
    pub fn score_delta(&self) -> Option<f64> {
        Some(self.head_score? - self.base_score?)
    }
}

/// One test in a comparison.
#[derive(Clone, Debug, PartialEq)]
pub struct TestComparison {
    /// The test's prompt.
    pub prompt: String,
    /// How it changed.
    pub change: TestChange,
    /// The test in the base, when the base has it.
    pub base: Option<TestOutcome>,
    /// The test in the head, when the head has it.
    pub head: Option<TestOutcome>,
    /// Per metric that scored it in either run, in order of first use (head first).
    pub metrics: Vec<MetricChange>,
}

/// The counts of a comparison.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChangeCounts {
    /// Tests that regressed.
    pub regressed: u32,
    /// Tests that were fixed.
    pub fixed: u32,
    /// Tests that passed in both.
    pub still_passing: u32,
    /// Tests that failed in both.
    pub still_failing: u32,
    /// Tests only in the head.
    pub added: u32,
    /// Tests only in the base.
    pub removed: u32,
    /// Tests that are an error in either run.
    pub errored: u32,
}

impl ChangeCounts {
    fn count(&mut self, change: TestChange) {
        let field = match change {
            TestChange::Regressed => &mut self.regressed,
            TestChange::Fixed => &mut self.fixed,
            TestChange::StillPassing => &mut self.still_passing,
            TestChange::StillFailing => &mut self.still_failing,
            TestChange::Added => &mut self.added,
            TestChange::Removed => &mut self.removed,
            TestChange::Error => &mut self.errored,
        };
        *field += 1;
    }

    /// Tests in both runs and an error in neither.
    pub fn paired(&self) -> u32 {
        self.regressed + self.fixed + self.still_passing + self.still_failing
    }

    /// The two-sided exact McNemar p-value of the change over the paired tests.
    pub fn mcnemar_p_value(&self) -> f64 {
        mcnemar_exact(self.regressed, self.fixed)
    }
}

/// A comparison of two runs.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    /// The counts.
    pub counts: ChangeCounts,
    /// Every test of either run: regressions, fixes, errors, added, removed, still failing,
    /// still passing; within a kind in the head's order (removed ones in the base's).
    pub tests: Vec<TestComparison>,
}

/// The results of one run grouped by test, in the order each test first appears.
struct Grouped<'a> {
    order: Vec<String>,
    by_key: HashMap<String, Vec<&'a TestResult>>,
}

fn group(results: &[TestResult], by: MatchBy) -> Grouped<'_> {
    let mut order = Vec::new();
    let mut by_key: HashMap<String, Vec<&TestResult>> = HashMap::new();
    for r in results {
        let key = match by {
            MatchBy::TestId => r.test_id.to_string(),
            MatchBy::Prompt => r.prompt.clone(),
        };
        let entry = by_key.entry(key.clone()).or_default();
        if entry.is_empty() {
            order.push(key);
        }
        entry.push(r);
    }
    Grouped { order, by_key }
}

fn outcome(results: &[&TestResult]) -> TestOutcome {
    let n = results.len();
    let passed = results
        .iter()
        .filter(|r| r.status == ResultStatus::Passed)
        .count();
    let errored = results
        .iter()
        .filter(|r| r.status == ResultStatus::Error)
        .count();
    let status = if passed * 2 > n {
        ResultStatus::Passed
    } else if errored * 2 > n {
        ResultStatus::Error
    } else {
        ResultStatus::Failed
    };
    TestOutcome {
        test_id: results[0].test_id,
        status,
        pass_rate: passed as f64 / n as f64,
    }
}

fn change_of(base: Option<&TestOutcome>, head: Option<&TestOutcome>) -> TestChange {
    use ResultStatus::{Error, Passed};
    match (base.map(|o| o.status), head.map(|o| o.status)) {
        (None, _) => TestChange::Added,
        (_, None) => TestChange::Removed,
        (Some(Error), _) | (_, Some(Error)) => TestChange::Error,
        (Some(Passed), Some(Passed)) => TestChange::StillPassing,
        (Some(Passed), Some(_)) => TestChange::Regressed,
        (Some(_), Some(Passed)) => TestChange::Fixed,
        (Some(_), Some(_)) => TestChange::StillFailing,
    }
}

/// Per metric of either side: mean score and majority verdict.
fn metric_changes(base: &[&TestResult], head: &[&TestResult]) -> Vec<MetricChange> {
    #[derive(Default)]
    struct Side {
        scores: Vec<f64>,
        passed: usize,
        seen: usize,
    }
    impl Side {
        fn mean(&self) -> Option<f64> {
            (!self.scores.is_empty())
                .then(|| self.scores.iter().sum::<f64>() / self.scores.len() as f64)
        }
        fn passed(&self) -> bool {
            self.seen > 0 && self.passed * 2 > self.seen
        }
    }
    let mut order: Vec<(Uuid, String)> = Vec::new();
    let mut sides: HashMap<Uuid, (Side, Side)> = HashMap::new();
    for (is_head, results) in [(true, head), (false, base)] {
        for m in results.iter().flat_map(|r| &r.metric_results) {
            let entry = sides.entry(m.metric_id).or_insert_with(|| {
                order.push((m.metric_id, m.metric_name.clone()));
                Default::default()
            });
            let side = if is_head { &mut entry.1 } else { &mut entry.0 };
            side.seen += 1;
            side.passed += usize::from(m.passed);
            side.scores.extend(m.score);
        }
    }
    order
        .into_iter()
        .map(|(metric_id, metric_name)| {
            let (base, head) = &sides[&metric_id];
            MetricChange {
                metric_id,
                metric_name,
                base_score: base.mean(),
                head_score: head.mean(),
                base_passed: base.passed(),
                head_passed: head.passed(),
            }
        })
        .collect()
}

/// Compares the results of a head run with those of a base run, pairing tests `by` id or
/// prompt.
pub fn compare(base: &[TestResult], head: &[TestResult], by: MatchBy) -> Comparison {
    let base = group(base, by);
    let head = group(head, by);
    let empty = Vec::new();
    let keys = head.order.iter().chain(
        base.order
            .iter()
            .filter(|k| !head.by_key.contains_key(k.as_str())),
    );
    let mut counts = ChangeCounts::default();
    let mut tests: Vec<TestComparison> = keys
        .map(|key| {
            let b = base.by_key.get(key).unwrap_or(&empty);
            let h = head.by_key.get(key).unwrap_or(&empty);
            let base_outcome = (!b.is_empty()).then(|| outcome(b));
            let head_outcome = (!h.is_empty()).then(|| outcome(h));
            let change = change_of(base_outcome.as_ref(), head_outcome.as_ref());
            counts.count(change);
            TestComparison {
                prompt: h
                    .first()
                    .or(b.first())
                    .map(|r| r.prompt.clone())
                    .unwrap_or_default(),
                change,
                base: base_outcome,
                head: head_outcome,
                metrics: metric_changes(b, h),
            }
        })
        .collect();
    // Stable: within a kind the order above stays.
    tests.sort_by_key(|t| t.change);
    Comparison { counts, tests }
}

/// Two-sided exact McNemar test: with `b` pairs that went one way and `c` the other, the
/// probability under "no change" (each discordant pair either way with probability 1/2) of a
/// split at least as uneven: `min(1, 2 * P[X <= min(b, c)])` for X ~ Binomial(b + c, 1/2).
/// 1 when no pair is discordant. Summed in log space so that large runs do not underflow.
pub fn mcnemar_exact(b: u32, c: u32) -> f64 {
    let n = b + c;
    if n == 0 {
        return 1.0;
    }
    let k = b.min(c);
    let n_f = f64::from(n);
    let ln_half_n = -n_f * std::f64::consts::LN_2;
    let mut ln_choose = 0.0; // ln C(n, 0)
    let mut tail = 0.0;
    for i in 0..=k {
        if i > 0 {
            ln_choose += (n_f - f64::from(i) + 1.0).ln() - f64::from(i).ln();
        }
        tail += (ln_choose + ln_half_n).exp();
    }
    (2.0 * tail).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::tally::tests::result as sample;

    fn result(test_id: Uuid, prompt: &str, status: ResultStatus, score: f64) -> TestResult {
        TestResult {
            test_id,
            prompt: prompt.into(),
            ..sample(status, Some(score), None)
        }
    }

    #[test]
    fn mcnemar_matches_hand_computed_values() {
        // b = 1, c = 6, n = 7: P[X <= 1] = (C(7,0) + C(7,1)) / 2^7 = 8/128; doubled: 0.125.
        assert!((mcnemar_exact(1, 6) - 0.125).abs() < 1e-12);
        assert!((mcnemar_exact(6, 1) - 0.125).abs() < 1e-12);
        // b = 0, c = 5: 2 * 1/32 = 0.0625.
        assert!((mcnemar_exact(0, 5) - 0.0625).abs() < 1e-12);
        // b = 2, c = 10, n = 12: (1 + 12 + 66) / 4096 * 2 = 158/4096.
        assert!((mcnemar_exact(2, 10) - 158.0 / 4096.0).abs() < 1e-12);
        // Even splits and no change are no evidence at all.
        assert_eq!(mcnemar_exact(2, 2), 1.0);
        assert_eq!(mcnemar_exact(0, 0), 1.0);
        // Large runs stay finite: 0 vs 2000 is overwhelming evidence, not NaN.
        let p = mcnemar_exact(0, 2000);
        assert!(p.is_finite() && p < 1e-300, "{p}");
        assert!((mcnemar_exact(1000, 1000) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn every_kind_of_change_is_named() {
        use ResultStatus::{Error, Failed, Passed};
        let ids: Vec<Uuid> = (0..7).map(|_| Uuid::now_v7()).collect();
        let base = vec![
            result(ids[0], "regressed", Passed, 1.0),
            result(ids[1], "fixed", Failed, 0.0),
            result(ids[2], "still passing", Passed, 1.0),
            result(ids[3], "still failing", Failed, 0.0),
            result(ids[4], "removed", Passed, 1.0),
            result(ids[5], "error", Passed, 1.0),
        ];
        let head = vec![
            result(ids[2], "still passing", Passed, 0.9),
            result(ids[3], "still failing", Failed, 0.1),
            result(ids[0], "regressed", Failed, 0.25),
            result(ids[1], "fixed", Passed, 1.0),
            result(ids[5], "error", Error, 0.0),
            result(ids[6], "added", Passed, 1.0),
        ];
        let c = compare(&base, &head, MatchBy::TestId);
        let changes: Vec<(&str, TestChange)> = c
            .tests
            .iter()
            .map(|t| (t.prompt.as_str(), t.change))
            .collect();
        assert_eq!(
            changes,
            vec![
                ("regressed", TestChange::Regressed),
                ("fixed", TestChange::Fixed),
                ("error", TestChange::Error),
                ("added", TestChange::Added),
                ("removed", TestChange::Removed),
                ("still failing", TestChange::StillFailing),
                ("still passing", TestChange::StillPassing),
            ]
        );
        let counts = &c.counts;
        assert_eq!(
            (
                counts.regressed,
                counts.fixed,
                counts.errored,
                counts.added,
                counts.removed
            ),
            (1, 1, 1, 1, 1)
        );
        assert_eq!((counts.still_failing, counts.still_passing), (1, 1));
        assert_eq!(counts.paired(), 4);
        assert_eq!(counts.mcnemar_p_value(), 1.0);
        let regressed = &c.tests[0];
        assert_eq!(regressed.base.as_ref().unwrap().pass_rate, 1.0);
        assert_eq!(regressed.head.as_ref().unwrap().pass_rate, 0.0);
        assert_eq!(regressed.metrics[0].score_delta(), Some(-0.75));
        assert!(regressed.metrics[0].base_passed && !regressed.metrics[0].head_passed);
        let added = &c.tests[3];
        assert!(added.base.is_none() && added.metrics[0].base_score.is_none());
        assert_eq!(added.metrics[0].score_delta(), None);
    }

    #[test]
    fn runs_of_different_sets_pair_by_prompt() {
        let base = vec![result(
            Uuid::now_v7(),
            "capital of Italy?",
            ResultStatus::Passed,
            1.0,
        )];
        let head = vec![result(
            Uuid::now_v7(),
            "capital of Italy?",
            ResultStatus::Failed,
            0.0,
        )];
        let by_prompt = compare(&base, &head, MatchBy::Prompt);
        assert_eq!(by_prompt.tests.len(), 1);
        assert_eq!(by_prompt.tests[0].change, TestChange::Regressed);
        let by_id = compare(&base, &head, MatchBy::TestId);
        assert_eq!((by_id.counts.added, by_id.counts.removed), (1, 1));
    }

    #[test]
    fn repeated_results_count_by_majority() {
        use ResultStatus::{Failed, Passed};
        let id = Uuid::now_v7();
        let base = vec![
            result(id, "t", Passed, 1.0),
            result(id, "t", Passed, 1.0),
            result(id, "t", Failed, 0.0),
        ];
        let head = vec![
            result(id, "t", Passed, 1.0),
            result(id, "t", Failed, 0.0),
            result(id, "t", Failed, 0.0),
        ];
        let c = compare(&base, &head, MatchBy::TestId);
        let t = &c.tests[0];
        assert_eq!(t.change, TestChange::Regressed);
        assert!((t.base.as_ref().unwrap().pass_rate - 2.0 / 3.0).abs() < 1e-12);
        assert!((t.head.as_ref().unwrap().pass_rate - 1.0 / 3.0).abs() < 1e-12);
    }
}
