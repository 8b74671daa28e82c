//! `TestExecutionService`: requests to the [`Engine`], runs and results to proto, and the
//! test-set metrics RPCs.

use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt, future, stream};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{comparison, metrics, reference, references, run_id, selection, timestamp};
use crate::catalogue::Catalogue;
use crate::domain::{
    ExecutionMode, Metric, MetricResult, PageRequest, Ref, ResultStatus, RunKind, RunStatus,
    TestResult, TestRun, Usage, validate_repeats,
};
use crate::engine::{Base, Engine, ExecuteSpec, RescoreSpec, RunEvent, RunEvents};
use crate::error::{Error, Result};
use crate::proto::v1 as pb;
use crate::proto::v1::execution_event::Event;

/// A stream of execution events as tonic sends it.
type EventStream = Pin<Box<dyn Stream<Item = Result<pb::ExecutionEvent, Status>> + Send>>;

/// The gRPC `TestExecutionService`.
pub struct ExecutionApi {
    catalogue: Arc<Catalogue>,
    engine: Arc<Engine>,
}

impl ExecutionApi {
    /// A service over the catalogue (test-set metrics), running through `engine`.
    pub fn new(catalogue: Arc<Catalogue>, engine: Arc<Engine>) -> Self {
        ExecutionApi { catalogue, engine }
    }
}

/// Metrics as the API shows them.
fn metrics_to_proto(metrics: Vec<Metric>) -> Vec<pb::Metric> {
    metrics.into_iter().map(metrics::to_proto).collect()
}

/// The metric references of an Add/RemoveTestSetMetrics request: at least one.
fn metric_refs(given: &[String]) -> Result<Vec<Ref>> {
    if given.is_empty() {
        return Err(Error::invalid(
            "metrics",
            "give at least one metric id or name",
        ));
    }
    references(given, "metrics")
}

fn mode_from_proto(value: i32) -> Result<ExecutionMode> {
    match pb::ExecutionMode::try_from(value) {
        Ok(pb::ExecutionMode::Unspecified | pb::ExecutionMode::Parallel) => {
            Ok(ExecutionMode::Parallel)
        }
        Ok(pb::ExecutionMode::Sequential) => Ok(ExecutionMode::Sequential),
        Err(_) => Err(Error::invalid(
            "mode",
            format!(
                "{value} is not an ExecutionMode: use EXECUTION_MODE_PARALLEL or EXECUTION_MODE_SEQUENTIAL"
            ),
        )),
    }
}

fn mode_to_proto(mode: ExecutionMode) -> pb::ExecutionMode {
    match mode {
        ExecutionMode::Parallel => pb::ExecutionMode::Parallel,
        ExecutionMode::Sequential => pb::ExecutionMode::Sequential,
    }
}

fn kind_to_proto(kind: RunKind) -> pb::RunKind {
    match kind {
        RunKind::Execution => pb::RunKind::Execution,
        RunKind::Rescore => pb::RunKind::Rescore,
    }
}

fn status_to_proto(status: RunStatus) -> pb::RunStatus {
    match status {
        RunStatus::Running => pb::RunStatus::Running,
        RunStatus::Completed => pb::RunStatus::Completed,
        RunStatus::Partial => pb::RunStatus::Partial,
        RunStatus::Failed => pb::RunStatus::Failed,
        RunStatus::Cancelled => pb::RunStatus::Cancelled,
        RunStatus::BudgetExceeded => pb::RunStatus::BudgetExceeded,
    }
}

pub(super) fn result_status_to_proto(status: ResultStatus) -> pb::ResultStatus {
    match status {
        ResultStatus::Passed => pb::ResultStatus::Passed,
        ResultStatus::Failed => pb::ResultStatus::Failed,
        ResultStatus::Error => pb::ResultStatus::Error,
    }
}

/// The summary of an ended run; `None` while it runs.
fn summary_to_proto(run: &TestRun) -> Option<pb::TestRunSummary> {
    let s = run.summary.as_ref()?;
    Some(pb::TestRunSummary {
        run_id: run.id.to_string(),
        status: status_to_proto(run.status) as i32,
        kind: kind_to_proto(run.kind) as i32,
        total: s.total,
        passed: s.passed,
        failed: s.failed,
        errored: s.errored,
        pass_rate: s.pass_rate,
        started_at: run.started_at.map(timestamp),
        finished_at: run.finished_at.map(timestamp),
        duration_ms: s.duration_ms,
        metrics: s
            .metrics
            .iter()
            .map(|m| pb::MetricSummary {
                metric_id: m.metric_id.to_string(),
                metric_name: m.metric_name.clone(),
                evaluated: m.evaluated,
                passed: m.passed,
                errored: m.errored,
                mean_score: m.mean_score,
            })
            .collect(),
        test_set_id: run.test_set_id.to_string(),
        endpoint_id: run.endpoint_id.to_string(),
        source_run_id: run
            .source_run_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        usage: Some(usage_to_proto(s.spending.usage)),
        cost_usd: s.spending.cost_usd,
        judge_usage: Some(usage_to_proto(s.spending.judge_usage)),
        judge_cost_usd: s.spending.judge_cost_usd,
        reason: run.error.clone().unwrap_or_default(),
        flaky: s.flaky,
        pass_rate_low: s.pass_rate_low,
        pass_rate_high: s.pass_rate_high,
        pass_at_k: s.pass_at_k,
        pass_hat_k: s.pass_hat_k,
        mean_pass_rate: s.mean_pass_rate,
        // Summaries stored before repeats existed read 0: their tests ran once.
        repeats: s.repeats.max(1),
    })
}

fn usage_to_proto(u: Usage) -> pb::TokenUsage {
    pb::TokenUsage {
        input_tokens: u.input_tokens,
        output_tokens: u.output_tokens,
    }
}

/// What an `Execute` request asks for, checked.
pub(super) fn execute_spec(r: pb::ExecuteRequest) -> Result<ExecuteSpec, Status> {
    Ok(ExecuteSpec {
        mode: mode_from_proto(r.mode)?,
        test_set: reference(&r.test_set, "test_set")?,
        endpoint: reference(&r.endpoint, "endpoint")?,
        metrics: references(&r.metrics, "metrics")?,
        max_concurrency: r.max_concurrency,
        parameters: r.parameters.map(json::from_struct).unwrap_or_default(),
        budget_usd: budget(r.budget_usd)?,
        labels: selection::labels(r.labels, "labels")?,
        selection: selection::selection(r.filter, r.shard)?,
        repeats: validate_repeats(r.repeats, "repeats")?,
    })
}

/// A budget in USD: finite and above 0 when given.
fn budget(budget_usd: Option<f64>) -> Result<Option<f64>, Status> {
    match budget_usd {
        Some(usd) if !(usd.is_finite() && usd > 0.0) => Err(Error::invalid(
            "budget_usd",
            format!("must be a finite number above 0, got {usd}"),
        )
        .into()),
        budget => Ok(budget),
    }
}

fn run_to_proto(run: TestRun) -> pb::TestRun {
    pb::TestRun {
        repeats: run.repeats(),
        summary: summary_to_proto(&run),
        id: run.id.to_string(),
        test_set_id: run.test_set_id.to_string(),
        endpoint_id: run.endpoint_id.to_string(),
        kind: kind_to_proto(run.kind) as i32,
        mode: mode_to_proto(run.mode) as i32,
        status: status_to_proto(run.status) as i32,
        source_run_id: run
            .source_run_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        total: run.total,
        metrics: run.metric_ids.iter().map(Uuid::to_string).collect(),
        max_concurrency: run.max_concurrency,
        parameters: Some(json::to_struct(run.parameters)),
        error: run.error.unwrap_or_default(),
        created_at: Some(timestamp(run.created_at)),
        started_at: run.started_at.map(timestamp),
        finished_at: run.finished_at.map(timestamp),
        labels: run.labels.into_iter().collect(),
    }
}

fn metric_result_to_proto(m: MetricResult) -> pb::MetricResult {
    pb::MetricResult {
        metric_id: m.metric_id.to_string(),
        metric_name: m.metric_name,
        score: m.score,
        category: m.category.unwrap_or_default(),
        passed: m.passed,
        reason: m.reason,
        error: m.error.unwrap_or_default(),
        duration_ms: m.duration_ms,
    }
}

/// By reference: streamed results are shared by the run's followers.
fn result_to_proto(r: &TestResult) -> pb::TestResult {
    pb::TestResult {
        id: r.id.to_string(),
        run_id: r.run_id.to_string(),
        test_id: r.test_id.to_string(),
        status: result_status_to_proto(r.status) as i32,
        output: r.output.clone().unwrap_or_default(),
        context: r.context.clone(),
        metadata: r.metadata.clone().and_then(json::object_to_struct),
        latency_ms: r.latency_ms,
        repetition: r.repetition,
        error: r.error.clone().unwrap_or_default(),
        attempts: r.attempts,
        last_error: r.last_error.clone().unwrap_or_default(),
        trace_id: r.trace_id.clone(),
        metric_results: r
            .metric_results
            .iter()
            .cloned()
            .map(metric_result_to_proto)
            .collect(),
        prompt: r.prompt.clone(),
        expected_response: r.expected_response.clone(),
        created_at: Some(timestamp(r.created_at)),
        usage: r.usage.map(usage_to_proto),
        cost_usd: r.cost_usd,
        judge_usage: Some(usage_to_proto(r.judge_usage)),
        judge_cost_usd: r.judge_cost_usd,
    }
}

/// The messages of one engine event: one per result of a batch, converted as the stream is
/// read, so a batch is never held twice.
fn event_messages(event: RunEvent) -> impl Iterator<Item = pb::ExecutionEvent> + Send {
    let (single, results) = match event {
        RunEvent::Started(run) => (Some(Event::RunStarted(run_to_proto(run))), None),
        RunEvent::Results(results) => (None, Some(results)),
        RunEvent::Finished(run) => match summary_to_proto(&run) {
            Some(summary) => (Some(Event::RunFinished(summary)), None),
            // A run whose end could not be stored is reported as it stands.
            None => (Some(Event::RunStarted(run_to_proto(run))), None),
        },
    };
    let results = results.into_iter().flat_map(|results| {
        (0..results.len()).map(move |i| Event::Result(result_to_proto(&results[i])))
    });
    single
        .into_iter()
        .chain(results)
        .map(|event| pb::ExecutionEvent { event: Some(event) })
}

fn event_stream(events: RunEvents) -> Response<EventStream> {
    Response::new(Box::pin(events.flat_map(|event| match event {
        Ok(event) => stream::iter(event_messages(event).map(Ok)).left_stream(),
        Err(e) => stream::once(future::ready(Err(Status::from(e)))).right_stream(),
    })))
}

#[tonic::async_trait]
impl pb::test_execution_service_server::TestExecutionService for ExecutionApi {
    type ExecuteStream = EventStream;
    type RescoreStream = EventStream;
    type WatchTestRunStream = EventStream;
    type RetryErrorsStream = EventStream;

    async fn execute(
        &self,
        request: Request<pb::ExecuteRequest>,
    ) -> Result<Response<EventStream>, Status> {
        let spec = execute_spec(request.into_inner())?;
        Ok(event_stream(self.engine.execute(spec).await?))
    }

    async fn rescore(
        &self,
        request: Request<pb::RescoreRequest>,
    ) -> Result<Response<EventStream>, Status> {
        let r = request.into_inner();
        let spec = RescoreSpec {
            test_set: reference(&r.test_set, "test_set")?,
            endpoint: reference(&r.endpoint, "endpoint")?,
            run: if r.run.is_empty() {
                None
            } else {
                Some(run_id(&r.run, "run")?)
            },
            metrics: references(&r.metrics, "metrics")?,
            mode: mode_from_proto(r.mode)?,
            max_concurrency: r.max_concurrency,
            selection: selection::selection(r.filter, None)?,
        };
        Ok(event_stream(self.engine.rescore(spec).await?))
    }

    async fn last_run(
        &self,
        request: Request<pb::LastRunRequest>,
    ) -> Result<Response<pb::LastRunResponse>, Status> {
        let r = request.into_inner();
        let test_set = reference(&r.test_set, "test_set")?;
        let endpoint = reference(&r.endpoint, "endpoint")?;
        let labels = selection::labels(r.labels, "labels")?;
        let run = self.engine.last_run(&test_set, &endpoint, &labels).await?;
        Ok(Response::new(pb::LastRunResponse {
            run: run.as_ref().and_then(summary_to_proto),
        }))
    }

    async fn list_test_set_metrics(
        &self,
        request: Request<pb::ListTestSetMetricsRequest>,
    ) -> Result<Response<pb::ListTestSetMetricsResponse>, Status> {
        let test_set = reference(&request.into_inner().test_set, "test_set")?;
        let metrics = self.catalogue.test_set_metrics(&test_set).await?;
        Ok(Response::new(pb::ListTestSetMetricsResponse {
            metrics: metrics_to_proto(metrics),
        }))
    }

    async fn add_test_set_metrics(
        &self,
        request: Request<pb::AddTestSetMetricsRequest>,
    ) -> Result<Response<pb::AddTestSetMetricsResponse>, Status> {
        let r = request.into_inner();
        let add = metric_refs(&r.metrics)?;
        let test_set = reference(&r.test_set, "test_set")?;
        let metrics = self
            .catalogue
            .change_test_set_metrics(&test_set, &add, &[])
            .await?;
        Ok(Response::new(pb::AddTestSetMetricsResponse {
            metrics: metrics_to_proto(metrics),
        }))
    }

    async fn remove_test_set_metrics(
        &self,
        request: Request<pb::RemoveTestSetMetricsRequest>,
    ) -> Result<Response<pb::RemoveTestSetMetricsResponse>, Status> {
        let r = request.into_inner();
        let remove = metric_refs(&r.metrics)?;
        let test_set = reference(&r.test_set, "test_set")?;
        let metrics = self
            .catalogue
            .change_test_set_metrics(&test_set, &[], &remove)
            .await?;
        Ok(Response::new(pb::RemoveTestSetMetricsResponse {
            metrics: metrics_to_proto(metrics),
        }))
    }

    async fn get_test_run(
        &self,
        request: Request<pb::GetTestRunRequest>,
    ) -> Result<Response<pb::TestRun>, Status> {
        let id = run_id(&request.into_inner().run, "run")?;
        Ok(Response::new(run_to_proto(self.engine.get_run(id).await?)))
    }

    async fn list_test_runs(
        &self,
        request: Request<pb::ListTestRunsRequest>,
    ) -> Result<Response<pb::ListTestRunsResponse>, Status> {
        let r = request.into_inner();
        let page = PageRequest::parse(r.page_size, &r.page_token)?;
        let optional = |value: &str| (!value.is_empty()).then(|| Ref::parse(value));
        let (test_set, endpoint) = (optional(&r.test_set), optional(&r.endpoint));
        let labels = selection::labels(r.labels, "labels")?;
        let page = self
            .engine
            .list_runs(test_set.as_ref(), endpoint.as_ref(), labels, page)
            .await?;
        Ok(Response::new(pb::ListTestRunsResponse {
            next_page_token: page.next_token(),
            runs: page.items.into_iter().map(run_to_proto).collect(),
        }))
    }

    async fn list_test_results(
        &self,
        request: Request<pb::ListTestResultsRequest>,
    ) -> Result<Response<pb::ListTestResultsResponse>, Status> {
        let r = request.into_inner();
        let id = run_id(&r.run, "run")?;
        let page = PageRequest::parse(r.page_size, &r.page_token)?;
        let page = self.engine.list_results(id, page).await?;
        Ok(Response::new(pb::ListTestResultsResponse {
            next_page_token: page.next_token(),
            results: page.items.iter().map(result_to_proto).collect(),
        }))
    }

    async fn watch_test_run(
        &self,
        request: Request<pb::WatchTestRunRequest>,
    ) -> Result<Response<EventStream>, Status> {
        let id = run_id(&request.into_inner().run, "run")?;
        Ok(event_stream(self.engine.watch(id).await?))
    }

    async fn cancel_test_run(
        &self,
        request: Request<pb::CancelTestRunRequest>,
    ) -> Result<Response<pb::TestRun>, Status> {
        let id = run_id(&request.into_inner().run, "run")?;
        Ok(Response::new(run_to_proto(self.engine.cancel(id).await?)))
    }

    async fn retry_errors(
        &self,
        request: Request<pb::RetryErrorsRequest>,
    ) -> Result<Response<EventStream>, Status> {
        let id = run_id(&request.into_inner().run, "run")?;
        Ok(event_stream(self.engine.retry_errors(id).await?))
    }

    async fn compare_runs(
        &self,
        request: Request<pb::CompareRunsRequest>,
    ) -> Result<Response<pb::CompareRunsResponse>, Status> {
        let r = request.into_inner();
        let head = run_id(&r.head_run, "head_run")?;
        let base = if r.base_run.is_empty() {
            Base::Latest(selection::labels(r.base_labels, "base_labels")?)
        } else {
            if !r.base_labels.is_empty() {
                return Err(Error::invalid(
                    "base_labels",
                    "give base_run or base_labels, not both: base_labels choose the base when base_run is empty",
                )
                .into());
            }
            Base::Run(run_id(&r.base_run, "base_run")?)
        };
        let compared = self.engine.compare_runs(head, base).await?;
        Ok(Response::new(comparison::to_proto(compared)))
    }
}

/// `google.protobuf.Struct` <-> JSON objects.
mod json {
    use prost_types::value::Kind;
    use prost_types::{ListValue, Struct, Value};
    use serde_json::{Map, Number, Value as Json};

    /// A JSON object as a Struct.
    pub(super) fn to_struct(map: Map<String, Json>) -> Struct {
        Struct {
            fields: map.into_iter().map(|(k, v)| (k, to_value(v))).collect(),
        }
    }

    /// A JSON value as a Struct, when it is an object.
    pub(super) fn object_to_struct(value: Json) -> Option<Struct> {
        match value {
            Json::Object(map) => Some(to_struct(map)),
            _ => None,
        }
    }

    fn to_value(v: Json) -> Value {
        let kind = match v {
            Json::Null => Kind::NullValue(0),
            Json::Bool(b) => Kind::BoolValue(b),
            Json::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
            Json::String(s) => Kind::StringValue(s),
            Json::Array(items) => Kind::ListValue(ListValue {
                values: items.into_iter().map(to_value).collect(),
            }),
            Json::Object(map) => Kind::StructValue(to_struct(map)),
        };
        Value { kind: Some(kind) }
    }

    /// A Struct as a JSON object. Whole numbers become integers, so `{{ parameters.n }}` renders
    /// `3`, not `3.0`.
    pub(super) fn from_struct(s: Struct) -> Map<String, Json> {
        s.fields
            .into_iter()
            .map(|(k, v)| (k, from_value(v)))
            .collect()
    }

    fn from_value(v: Value) -> Json {
        match v.kind {
            None | Some(Kind::NullValue(_)) => Json::Null,
            Some(Kind::BoolValue(b)) => Json::Bool(b),
            Some(Kind::NumberValue(n)) if n.fract() == 0.0 && n.abs() < 9e15 => {
                Json::Number(Number::from(n as i64))
            }
            Some(Kind::NumberValue(n)) => Number::from_f64(n).map_or(Json::Null, Json::Number),
            Some(Kind::StringValue(s)) => Json::String(s),
            Some(Kind::ListValue(l)) => Json::Array(l.values.into_iter().map(from_value).collect()),
            Some(Kind::StructValue(s)) => Json::Object(from_struct(s)),
        }
    }
}
