//! Repeats: running each test of a run several times, so that an answer that changes from call
//! to call shows. A test passes by majority of its repetitions; the summary tells the flaky tests
//! (some repetitions passed, some did not), the mean pass rate over every repetition with its 95%
//! Wilson score interval, and pass@k / pass^k for k = the run's repeats.

use super::RunSummary;
use crate::error::{Error, Result};

/// Most repetitions of a test in one run.
pub const MAX_REPEATS: u32 = 100;

/// The z of a two-sided 95% interval.
const Z_95: f64 = 1.96;

/// The repeats a request asked for, checked under `field`: 0 means 1 (the field unset), above
/// [`MAX_REPEATS`] is `InvalidArgument`.
pub fn validate_repeats(repeats: u32, field: &str) -> Result<u32> {
    if repeats > MAX_REPEATS {
        return Err(Error::invalid(
            field,
            format!("{repeats} repetitions asked for; give 1 to {MAX_REPEATS} (0 or unset: 1)"),
        ));
    }
    Ok(repeats.max(1))
}

/// The 95% Wilson score interval of a proportion of `successes` out of `trials`: `(low, high)`
/// in [0, 1]. Unlike the normal approximation it stays inside [0, 1] and is not empty at 0 or
/// `trials` successes, which is where small repeated runs often are. No trials: `(0, 1)`, as
/// nothing is known.
pub fn wilson_interval(successes: u64, trials: u64) -> (f64, f64) {
    if trials == 0 {
        return (0.0, 1.0);
    }
    let n = trials as f64;
    let p = successes.min(trials) as f64 / n;
    let z2 = Z_95 * Z_95;
    let denominator = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denominator;
    let half = Z_95 * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denominator;
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// How many tests of a run had `passed` passing and `errored` errored results out of
/// `results` (its repetitions stored): a run's repetitions counted test by test, grouped by that
/// shape, so that its size does not grow with the number of tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RepetitionCount {
    /// Passing repetitions of each of these tests.
    pub passed: u32,
    /// Errored repetitions of each.
    pub errored: u32,
    /// Repetitions stored of each.
    pub results: u32,
    /// Tests with these counts.
    pub tests: u32,
}

impl RunSummary {
    /// Counts tests rather than results in a summary of a run of `repeats` repetitions, from its
    /// results counted test by test: a test passed when more than half its repetitions passed,
    /// is an error when more than half are errors, else it failed; `pass_rate` is passed tests /
    /// total (tests that never ran count as not passed); a test is flaky when at least one of its
    /// repetitions passed and at least one did not; pass@k counts tests with at least one passing
    /// repetition, pass^k tests whose `repeats` repetitions all passed. The mean pass rate and
    /// its interval stay over repetitions.
    pub fn count_tests(&mut self, counts: &[RepetitionCount], repeats: u32) {
        let (mut passed, mut failed, mut errored, mut flaky, mut any, mut all) = (0, 0, 0, 0, 0, 0);
        for c in counts {
            if c.passed * 2 > c.results {
                passed += c.tests;
            } else if c.errored * 2 > c.results {
                errored += c.tests;
            } else {
                failed += c.tests;
            }
            if c.passed > 0 {
                any += c.tests;
                if c.passed < c.results {
                    flaky += c.tests;
                }
            }
            if c.passed >= repeats {
                all += c.tests;
            }
        }
        let share = |tests: u32| {
            if self.total == 0 {
                0.0
            } else {
                f64::from(tests) / f64::from(self.total)
            }
        };
        self.passed = passed;
        self.failed = failed;
        self.errored = errored;
        self.pass_rate = share(passed);
        self.flaky = flaky;
        self.pass_at_k = share(any);
        self.pass_hat_k = share(all);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_interval_matches_known_values() {
        // 8 of 10 at 95% (z = 1.96): the textbook interval 0.4902 .. 0.9433.
        let (low, high) = wilson_interval(8, 10);
        assert!((low - 0.490_16).abs() < 1e-4, "{low}");
        assert!((high - 0.943_32).abs() < 1e-4, "{high}");
        // All or nothing still leaves room on one side.
        let (low, high) = wilson_interval(5, 5);
        assert!((low - 0.565_51).abs() < 1e-4, "{low}");
        assert!((high - 1.0).abs() < 1e-12, "{high}");
        let (low, high) = wilson_interval(0, 5);
        assert!(low.abs() < 1e-12, "{low}");
        assert!((high - 0.434_49).abs() < 1e-4, "{high}");
        assert_eq!(wilson_interval(0, 0), (0.0, 1.0));
    }

    #[test]
    fn repeats_default_to_one_and_are_bounded() {
        assert_eq!(validate_repeats(0, "repeats").unwrap(), 1);
        assert_eq!(validate_repeats(100, "repeats").unwrap(), 100);
        let e = validate_repeats(101, "repeats").unwrap_err().to_string();
        assert!(e.contains("repeats") && e.contains("101"), "{e}");
    }

    #[test]
    fn tests_count_by_majority_of_their_repetitions() {
        let count = |passed, errored, tests| RepetitionCount {
            passed,
            errored,
            results: 5,
            tests,
        };
        let mut s = RunSummary {
            total: 10,
            ..RunSummary::default()
        };
        s.count_tests(
            &[
                count(5, 0, 4), // always passed
                count(3, 0, 2), // flaky, passed by majority
                count(2, 0, 1), // flaky, failed by majority
                count(0, 3, 1), // errored by majority
                count(0, 0, 1), // never passed
            ],
            5,
        );
        assert_eq!((s.passed, s.failed, s.errored, s.flaky), (6, 2, 1, 3));
        assert!((s.pass_rate - 0.6).abs() < 1e-12);
        // At least one pass: 4 + 2 + 1; all five: 4; one test of the ten never ran.
        assert!((s.pass_at_k - 0.7).abs() < 1e-12);
        assert!((s.pass_hat_k - 0.4).abs() < 1e-12);
    }
}
