//! Running totals of a run, turned into its [`RunSummary`] and final [`RunStatus`]. The tally is
//! stored with the run and brought up to date in the transaction that stores each batch of its
//! results, so whichever replica stores the last result ends the run with the totals of all.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{MetricStats, ResultStatus, RunStatus, RunSummary, Spending, TestResult, TestRun};

/// Counts results as they are stored.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Tally {
    passed: u32,
    failed: u32,
    errored: u32,
    metrics: Vec<MetricTally>,
    /// Tallies stored before it was counted read none.
    #[serde(default)]
    spending: Spending,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct MetricTally {
    stats: MetricStats,
    scored: u32,
    score_sum: f64,
}

impl Tally {
    /// Counts one stored result.
    pub fn add(&mut self, result: &TestResult) {
        match result.status {
            ResultStatus::Passed => self.passed += 1,
            ResultStatus::Failed => self.failed += 1,
            ResultStatus::Error => self.errored += 1,
        }
        self.spending.add(result);
        for m in &result.metric_results {
            let tally = self.metric(m.metric_id, &m.metric_name);
            if m.error.is_some() {
                tally.stats.errored += 1;
                continue;
            }
            tally.stats.evaluated += 1;
            tally.stats.passed += u32::from(m.passed);
            if let Some(score) = m.score {
                tally.scored += 1;
                tally.score_sum += score;
            }
        }
    }

    fn metric(&mut self, id: Uuid, name: &str) -> &mut MetricTally {
        // Runs use few metrics: a linear search beats hashing and keeps first-use order.
        let index = match self.metrics.iter().position(|m| m.stats.metric_id == id) {
            Some(i) => i,
            None => {
                self.metrics.push(MetricTally {
                    stats: MetricStats {
                        metric_id: id,
                        metric_name: name.to_string(),
                        ..MetricStats::default()
                    },
                    scored: 0,
                    score_sum: 0.0,
                });
                self.metrics.len() - 1
            }
        };
        &mut self.metrics[index]
    }

    /// What the results counted so far spent.
    pub fn spending(&self) -> Spending {
        self.spending
    }

    /// Results counted so far.
    pub fn stored(&self) -> u32 {
        self.passed + self.failed + self.errored
    }

    /// The final status of a run that was not cancelled: failed when every result is an
    /// error, partial when some are, completed otherwise.
    pub fn status(&self) -> RunStatus {
        if self.stored() == 0 || self.errored == self.stored() {
            RunStatus::Failed
        } else if self.errored > 0 {
            RunStatus::Partial
        } else {
            RunStatus::Completed
        }
    }

    /// Ends `run` now: its summary, with the duration from its start (a resumed run counts the
    /// time it was down), and its finish time.
    pub fn finish(&self, run: &mut TestRun) {
        let now = chrono::Utc::now();
        let duration = run
            .started_at
            .map_or(0, |started| (now - started).num_milliseconds().max(0));
        run.summary = Some(self.summary(run.total, run.repeats(), duration as u64));
        run.finished_at = Some(now);
    }

    /// The summary of a run of `total` tests, each run `repeats` times; `pass_rate` is passed /
    /// total, so untested tests of a cancelled run count as not passed. The mean pass rate and
    /// its Wilson interval are over every repetition (total × repeats). Its counts are of
    /// results: with one repetition each, of tests; with more, the store counts the tests by
    /// their repetitions when the run ends ([`RunSummary::count_tests`]).
    pub fn summary(&self, total: u32, repeats: u32, duration_ms: u64) -> RunSummary {
        let share = |part: u32, whole: u64| {
            if whole == 0 {
                0.0
            } else {
                f64::from(part) / whole as f64
            }
        };
        let pass_rate = share(self.passed, u64::from(total));
        let repetitions = u64::from(total) * u64::from(repeats.max(1));
        let (pass_rate_low, pass_rate_high) =
            super::wilson_interval(u64::from(self.passed), repetitions);
        RunSummary {
            total,
            passed: self.passed,
            failed: self.failed,
            errored: self.errored,
            pass_rate,
            repeats: repeats.max(1),
            flaky: 0,
            mean_pass_rate: share(self.passed, repetitions),
            pass_rate_low,
            pass_rate_high,
            pass_at_k: pass_rate,
            pass_hat_k: pass_rate,
            duration_ms,
            metrics: self
                .metrics
                .iter()
                .map(|m| MetricStats {
                    mean_score: if m.scored == 0 {
                        0.0
                    } else {
                        m.score_sum / f64::from(m.scored)
                    },
                    ..m.stats.clone()
                })
                .collect(),
            spending: self.spending,
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::domain::MetricResult;

    /// A result scored by one metric `m`; shared with the other domain tests.
    pub(in crate::domain) fn result(
        status: ResultStatus,
        score: Option<f64>,
        error: Option<&str>,
    ) -> TestResult {
        TestResult {
            id: Uuid::now_v7(),
            run_id: Uuid::nil(),
            test_id: Uuid::nil(),
            status,
            output: Some("x".into()),
            context: vec![],
            metadata: None,
            latency_ms: 1,
            repetition: 0,
            error: None,
            attempts: 1,
            last_error: None,
            metric_results: vec![MetricResult {
                metric_id: Uuid::nil(),
                metric_name: "m".into(),
                score,
                category: None,
                passed: status == ResultStatus::Passed,
                reason: String::new(),
                error: error.map(str::to_string),
                duration_ms: 0,
                usage: None,
                cost_usd: 0.0,
            }],
            prompt: "p".into(),
            expected_response: None,
            behavior_id: None,
            created_at: chrono::Utc::now(),
            usage: None,
            cost_usd: 0.0,
            judge_usage: Default::default(),
            judge_cost_usd: 0.0,
            trace_id: String::new(),
        }
    }

    #[test]
    fn statuses_follow_the_errors() {
        let mut t = Tally::default();
        t.add(&result(ResultStatus::Passed, Some(1.0), None));
        t.add(&result(ResultStatus::Failed, Some(0.0), None));
        assert_eq!(t.status(), RunStatus::Completed);
        t.add(&result(ResultStatus::Error, None, Some("boom")));
        assert_eq!(t.status(), RunStatus::Partial);
        let s = t.summary(3, 1, 5);
        assert_eq!((s.total, s.passed, s.failed, s.errored), (3, 1, 1, 1));
        assert!((s.pass_rate - 1.0 / 3.0).abs() < 1e-9);
        // One repetition: the rates over repetitions are those over tests, and nothing is flaky.
        assert_eq!(s.flaky, 0);
        assert_eq!(
            (s.mean_pass_rate, s.pass_at_k, s.pass_hat_k),
            (s.pass_rate, s.pass_rate, s.pass_rate)
        );
        assert_eq!(
            (s.pass_rate_low, s.pass_rate_high),
            crate::domain::wilson_interval(1, 3)
        );
        assert_eq!(s.metrics[0].evaluated, 2);
        assert_eq!(s.metrics[0].errored, 1);
        assert!((s.metrics[0].mean_score - 0.5).abs() < 1e-9);
    }

    #[test]
    fn all_errors_fail_the_run() {
        let mut t = Tally::default();
        t.add(&result(ResultStatus::Error, None, Some("boom")));
        assert_eq!(t.status(), RunStatus::Failed);
    }
}
