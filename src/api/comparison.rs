//! `CompareRuns`: a [`RunComparison`] as the API shows it.

use crate::domain::{MetricChange, TestChange, TestComparison, TestOutcome};
use crate::engine::RunComparison;
use crate::proto::v1 as pb;

use super::execution::result_status_to_proto;

fn change_to_proto(change: TestChange) -> pb::TestChange {
    match change {
        TestChange::Regressed => pb::TestChange::Regressed,
        TestChange::Fixed => pb::TestChange::Fixed,
        TestChange::StillPassing => pb::TestChange::StillPassing,
        TestChange::StillFailing => pb::TestChange::StillFailing,
        TestChange::Added => pb::TestChange::Added,
        TestChange::Removed => pb::TestChange::Removed,
        TestChange::Error => pb::TestChange::Error,
    }
}

fn metric_to_proto(m: MetricChange) -> pb::MetricChange {
    pb::MetricChange {
        score_delta: m.score_delta(),
        metric_id: m.metric_id.to_string(),
        metric_name: m.metric_name,
        base_score: m.base_score,
        head_score: m.head_score,
        base_passed: m.base_passed,
        head_passed: m.head_passed,
    }
}

fn test_to_proto(t: TestComparison) -> pb::TestComparison {
    let status = |o: &Option<TestOutcome>| {
        o.as_ref().map_or(pb::ResultStatus::Unspecified, |o| {
            result_status_to_proto(o.status)
        }) as i32
    };
    let rate = |o: &Option<TestOutcome>| o.as_ref().map_or(0.0, |o| o.pass_rate);
    let base_id = t.base.as_ref().map(|o| o.test_id);
    let test_id = t.head.as_ref().map(|o| o.test_id).or(base_id);
    pb::TestComparison {
        test_id: test_id.map(|id| id.to_string()).unwrap_or_default(),
        base_test_id: base_id
            .filter(|id| Some(*id) != test_id)
            .map(|id| id.to_string())
            .unwrap_or_default(),
        prompt: t.prompt,
        change: change_to_proto(t.change) as i32,
        base_status: status(&t.base),
        head_status: status(&t.head),
        base_pass_rate: rate(&t.base),
        head_pass_rate: rate(&t.head),
        metrics: t.metrics.into_iter().map(metric_to_proto).collect(),
    }
}

/// The response of `CompareRuns`.
pub(super) fn to_proto(c: RunComparison) -> pb::CompareRunsResponse {
    let counts = &c.comparison.counts;
    let pass_rate =
        |run: &crate::domain::TestRun| run.summary.as_ref().map_or(0.0, |s| s.pass_rate);
    let summary = pb::ComparisonSummary {
        head_run_id: c.head.id.to_string(),
        base_run_id: c.base.id.to_string(),
        regressed: counts.regressed,
        fixed: counts.fixed,
        still_passing: counts.still_passing,
        still_failing: counts.still_failing,
        added: counts.added,
        removed: counts.removed,
        errored: counts.errored,
        base_pass_rate: pass_rate(&c.base),
        head_pass_rate: pass_rate(&c.head),
        mcnemar_p_value: counts.mcnemar_p_value(),
        paired: counts.paired(),
    };
    pb::CompareRunsResponse {
        summary: Some(summary),
        tests: c.comparison.tests.into_iter().map(test_to_proto).collect(),
    }
}
