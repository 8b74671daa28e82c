//! Live progress of a run as its events stream in: a bar with counts and throughput on a
//! terminal, plain lines otherwise, or one JSON line per event for scripts.

use std::io::{self, IsTerminal};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

use super::json::to_json;
use super::output::{line, shorten, table};
use super::report::brief_reason;
use crate::proto::v1 as pb;

/// How many characters of a failing test's prompt are shown.
const PROMPT_CHARS: usize = 80;

/// How many failing tests are shown one by one; the report has them all, and a run where
/// everything fails should not bury its summary.
const MAX_BRIEFS: u64 = 50;

/// How progress is shown.
enum Display {
    /// `--json`: every event as one JSON line.
    Json,
    /// A terminal: a bar on stderr, failing tests above it.
    Bar(ProgressBar),
    /// Not a terminal: failing tests and a progress line every tenth of the run.
    Plain,
}

/// Shows one run's events.
pub struct Progress {
    display: Display,
    /// Results the run will have: its tests times its repeats.
    total: u64,
    /// How many times each test runs.
    repeats: u32,
    done: u64,
    passed: u64,
    failed: u64,
    errored: u64,
    started: Instant,
}

impl Progress {
    /// Progress for people (a bar when stderr is a terminal), or JSON lines.
    pub fn new(json: bool) -> Progress {
        let display = if json {
            Display::Json
        } else if std::io::stderr().is_terminal() {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} {msg}{rate}",
                )
                .expect("the template is valid")
                .with_key(
                    "rate",
                    |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                        if let Some(rate) = throughput(state.pos(), state.elapsed()) {
                            let _ = write!(w, " ({rate:.1}/s)");
                        }
                    },
                ),
            );
            Display::Bar(bar)
        } else {
            Display::Plain
        };
        Progress {
            display,
            total: 0,
            repeats: 1,
            done: 0,
            passed: 0,
            failed: 0,
            errored: 0,
            started: Instant::now(),
        }
    }

    /// Shows one event.
    pub fn event(&mut self, event: &pb::ExecutionEvent) -> io::Result<()> {
        use pb::execution_event::Event;
        if let Display::Json = self.display {
            let json = serde_json::to_string(&to_json(event, "ExecutionEvent"))?;
            line(json)?;
        }
        match &event.event {
            Some(Event::RunStarted(run)) => self.started(run),
            Some(Event::Result(result)) => self.result(result),
            Some(Event::RunFinished(summary)) => self.finished(summary),
            None => Ok(()),
        }
    }

    fn started(&mut self, run: &pb::TestRun) -> io::Result<()> {
        self.repeats = run.repeats.max(1);
        self.total = u64::from(run.total) * u64::from(self.repeats);
        self.started = Instant::now();
        let repeated = if self.repeats > 1 {
            format!(" x {} repeats", self.repeats)
        } else {
            String::new()
        };
        let mode = pb::ExecutionMode::try_from(run.mode)
            .map(|m| {
                m.as_str_name()
                    .trim_start_matches("EXECUTION_MODE_")
                    .to_lowercase()
            })
            .unwrap_or_default();
        // The concurrency the server chose (the request's or the endpoint's, up to its cap).
        let at_once = if run.max_concurrency > 1 {
            format!(", {} at a time", run.max_concurrency)
        } else {
            String::new()
        };
        let text = format!(
            "run {} started: {} tests{repeated} ({mode}{at_once})",
            run.id, run.total
        );
        match &self.display {
            Display::Json => {}
            Display::Bar(bar) => {
                bar.set_length(self.total);
                bar.println(text);
            }
            Display::Plain => line(text)?,
        }
        Ok(())
    }

    fn result(&mut self, result: &pb::TestResult) -> io::Result<()> {
        let status = pb::ResultStatus::try_from(result.status).unwrap_or_default();
        self.done += 1;
        let label = match status {
            pb::ResultStatus::Passed => {
                self.passed += 1;
                None
            }
            pb::ResultStatus::Error => {
                self.errored += 1;
                Some("ERROR ")
            }
            _ => {
                self.failed += 1;
                Some("FAILED")
            }
        };
        let shown = self.failed + self.errored <= MAX_BRIEFS;
        let repetition = if self.repeats > 1 {
            format!(" (repetition {})", result.repetition)
        } else {
            String::new()
        };
        let brief = label.filter(|_| shown).map(|label| {
            format!(
                "{label} {}{repetition}\n       {}",
                shorten(&result.prompt, PROMPT_CHARS),
                brief_reason(result)
            )
        });
        match &self.display {
            Display::Json => {}
            Display::Bar(bar) => {
                if let Some(brief) = brief {
                    bar.suspend(|| line(brief))?;
                }
                bar.set_position(self.done);
                bar.set_message(self.counts());
            }
            Display::Plain => {
                if let Some(brief) = brief {
                    line(brief)?;
                }
                // About ten progress lines per run, whatever its size.
                let every = (self.total / 10).max(1);
                if self.done.is_multiple_of(every) && self.done < self.total {
                    let rate = throughput(self.done, self.started.elapsed())
                        .map(|rate| format!(" ({rate:.1}/s)"))
                        .unwrap_or_default();
                    line(format_args!(
                        "progress: {}/{} {}{rate}",
                        self.done,
                        self.total,
                        self.counts(),
                    ))?;
                }
            }
        }
        Ok(())
    }

    fn counts(&self) -> String {
        format!(
            "passed {} failed {} errored {}",
            self.passed, self.failed, self.errored
        )
    }

    /// Stops drawing: the client no longer follows the run.
    pub fn abandon(&mut self) {
        if let Display::Bar(bar) = &self.display {
            bar.finish_and_clear();
        }
    }

    fn finished(&mut self, summary: &pb::TestRunSummary) -> io::Result<()> {
        if let Display::Bar(bar) = &self.display {
            bar.finish_and_clear();
        }
        if let Display::Json = self.display {
            return Ok(());
        }
        let not_shown = (self.failed + self.errored).saturating_sub(MAX_BRIEFS);
        if not_shown > 0 {
            line(format_args!(
                "... and {not_shown} more tests that did not pass (all are in --report)"
            ))?;
        }
        line(summary_text(summary))
    }
}

/// With repeats, the line after the totals: flaky tests, the mean pass rate over every
/// repetition with its 95% Wilson interval, pass@k and pass^k. Nothing when each test ran once.
fn repeats_text(summary: &pb::TestRunSummary) -> String {
    let k = summary.repeats;
    if k <= 1 {
        return String::new();
    }
    let percent = |rate: f64| format!("{:.1}%", rate * 100.0);
    format!(
        "{k} repeats: {} flaky, mean pass rate {} (95% CI {}-{}), pass@{k} {}, pass^{k} {}\n",
        summary.flaky,
        percent(summary.mean_pass_rate),
        percent(summary.pass_rate_low),
        percent(summary.pass_rate_high),
        percent(summary.pass_at_k),
        percent(summary.pass_hat_k),
    )
}

/// The closing lines: totals, then a table per metric.
pub(super) fn summary_text(summary: &pb::TestRunSummary) -> String {
    let status = pb::RunStatus::try_from(summary.status)
        .map(|s| {
            s.as_str_name()
                .trim_start_matches("RUN_STATUS_")
                .to_string()
        })
        .unwrap_or_default();
    let mut text = format!(
        "\nrun {} {status} in {:.2}s: {} tests, {} passed, {} failed, {} errored (pass rate {:.1}%)\n",
        summary.run_id,
        summary.duration_ms as f64 / 1000.0,
        summary.total,
        summary.passed,
        summary.failed,
        summary.errored,
        summary.pass_rate * 100.0
    );
    if !summary.reason.is_empty() {
        text.push_str(&format!("{}\n", summary.reason));
    }
    text.push_str(&repeats_text(summary));
    text.push_str(&spend_text(summary));
    if !summary.metrics.is_empty() {
        let rows: Vec<Vec<String>> = summary
            .metrics
            .iter()
            .map(|m| {
                vec![
                    m.metric_name.clone(),
                    m.evaluated.to_string(),
                    m.passed.to_string(),
                    m.errored.to_string(),
                    format!("{:.3}", m.mean_score),
                ]
            })
            .collect();
        text.push('\n');
        text.push_str(&table(
            &["METRIC", "EVALUATED", "PASSED", "ERRORED", "MEAN SCORE"],
            &rows,
        ));
    }
    text
}

/// The tokens and cost of the endpoint calls, and of the judge and embedding calls.
fn spend_text(summary: &pb::TestRunSummary) -> String {
    let part = |usage: Option<&pb::TokenUsage>, cost_usd: f64| {
        let usage = usage.cloned().unwrap_or_default();
        format!(
            "{} tokens ({} in, {} out), {cost_usd:.4} USD",
            usage.input_tokens + usage.output_tokens,
            usage.input_tokens,
            usage.output_tokens
        )
    };
    format!(
        "endpoint: {}; judges: {}\n",
        part(summary.usage.as_ref(), summary.cost_usd),
        part(summary.judge_usage.as_ref(), summary.judge_cost_usd)
    )
}

/// Results per second, once a second has passed: before that, a rate says more about the first
/// answers' timing than about the run (two results in 0.4 ms are no "5000/s").
fn throughput(done: u64, elapsed: std::time::Duration) -> Option<f64> {
    let seconds = elapsed.as_secs_f64();
    (seconds >= 1.0).then(|| done as f64 / seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throughput_shows_once_a_second_has_passed() {
        use std::time::Duration;
        assert_eq!(throughput(2, Duration::from_micros(400)), None);
        assert_eq!(throughput(900, Duration::from_millis(999)), None);
        assert_eq!(throughput(3000, Duration::from_secs(2)), Some(1500.0));
    }

    #[test]
    fn the_summary_names_the_totals_and_each_metric() {
        let text = summary_text(&pb::TestRunSummary {
            run_id: "r1".into(),
            status: pb::RunStatus::Completed as i32,
            total: 4,
            passed: 3,
            failed: 1,
            pass_rate: 0.75,
            duration_ms: 1500,
            usage: Some(pb::TokenUsage {
                input_tokens: 120,
                output_tokens: 30,
            }),
            cost_usd: 0.0125,
            metrics: vec![pb::MetricSummary {
                metric_name: "exact".into(),
                evaluated: 4,
                passed: 3,
                mean_score: 0.75,
                ..Default::default()
            }],
            ..Default::default()
        });
        assert!(text.contains(
            "run r1 COMPLETED in 1.50s: 4 tests, 3 passed, 1 failed, 0 errored (pass rate 75.0%)"
        ));
        assert!(text.contains(
            "endpoint: 150 tokens (120 in, 30 out), 0.0125 USD; judges: 0 tokens (0 in, 0 out), 0.0000 USD"
        ));
        assert!(text.contains("METRIC  EVALUATED  PASSED  ERRORED  MEAN SCORE\nexact   4          3       0        0.750"));
    }
}
