//! `MetricService`: proto <-> domain conversion of metrics and their CRUD.

use std::sync::Arc;

use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::mask::{self, Updatable};
use super::{reference, required, timestamp, update_target};
use crate::domain::{
    LlmJudge, Metric, MetricKind, PageRequest, ScoreType, ThresholdOperator, Timestamp,
};
use crate::error::{Error, Result};
use crate::proto::v1 as pb;
use crate::proto::v1::metric::Kind;
use crate::store::Store;

/// The gRPC `MetricService`.
pub struct MetricApi {
    store: Arc<dyn Store>,
}

impl MetricApi {
    /// A service over `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        MetricApi { store }
    }
}

/// A metric as the API shows it.
pub(super) fn to_proto(m: Metric) -> pb::Metric {
    let kind = match m.kind {
        MetricKind::ExactMatch {
            value,
            ignore_case,
            trim,
        } => Kind::ExactMatch(pb::ExactMatch {
            value,
            ignore_case,
            trim,
        }),
        MetricKind::Contains {
            values,
            match_all,
            case_sensitive,
        } => Kind::Contains(pb::Contains {
            values,
            match_all,
            case_sensitive,
        }),
        MetricKind::Regex { pattern } => Kind::Regex(pb::Regex { pattern }),
        MetricKind::LlmJudge(j) => Kind::LlmJudge(pb::LlmJudge {
            base_url: j.base_url,
            model: j.model,
            api_key_env: j.api_key_env.unwrap_or_default(),
            evaluation_prompt: j.evaluation_prompt,
            min_score: j.min_score,
            max_score: j.max_score,
            timeout_ms: j.timeout_ms,
        }),
    };
    pb::Metric {
        id: m.id.to_string(),
        name: m.name,
        description: m.description,
        score_type: match m.score_type {
            ScoreType::Binary => pb::ScoreType::Binary,
            ScoreType::Numeric => pb::ScoreType::Numeric,
            ScoreType::Categorical => pb::ScoreType::Categorical,
        } as i32,
        threshold: m.threshold,
        threshold_operator: m.threshold_operator.symbol().to_string(),
        categories: m.categories,
        passing_categories: m.passing_categories,
        requires_expected: m.requires_expected,
        requires_context: m.requires_context,
        kind: Some(kind),
        created_at: Some(timestamp(m.created_at)),
        updated_at: Some(timestamp(m.updated_at)),
    }
}

/// A metric from the API, validated; `id` and times are given by the caller.
fn from_proto(p: pb::Metric, id: Uuid, created_at: Timestamp) -> Result<Metric> {
    let kind = match required(p.kind, "metric.kind").map_err(|_| {
        Error::invalid(
            "metric.kind",
            "one of exact_match, contains, regex, llm_judge is required",
        )
    })? {
        Kind::ExactMatch(e) => MetricKind::ExactMatch {
            value: e.value,
            ignore_case: e.ignore_case,
            trim: e.trim,
        },
        Kind::Contains(c) => MetricKind::Contains {
            values: c.values,
            match_all: c.match_all,
            case_sensitive: c.case_sensitive,
        },
        Kind::Regex(r) => MetricKind::Regex { pattern: r.pattern },
        Kind::LlmJudge(j) => MetricKind::LlmJudge(LlmJudge {
            base_url: j.base_url,
            model: j.model,
            api_key_env: super::non_empty(j.api_key_env),
            evaluation_prompt: j.evaluation_prompt,
            min_score: j.min_score,
            // An unset maximum means the usual 0..1 scale.
            max_score: if j.max_score == 0.0 && j.min_score == 0.0 {
                1.0
            } else {
                j.max_score
            },
            timeout_ms: j.timeout_ms,
        }),
    };
    let score_type = match pb::ScoreType::try_from(p.score_type) {
        Ok(pb::ScoreType::Unspecified) => kind.natural_score_type(),
        Ok(pb::ScoreType::Binary) => ScoreType::Binary,
        Ok(pb::ScoreType::Numeric) => ScoreType::Numeric,
        Ok(pb::ScoreType::Categorical) => ScoreType::Categorical,
        Err(_) => {
            return Err(Error::invalid(
                "metric.score_type",
                format!("{} is not a ScoreType", p.score_type),
            ));
        }
    };
    let threshold_operator = if p.threshold_operator.trim().is_empty() {
        ThresholdOperator::default_for(score_type)
    } else {
        ThresholdOperator::parse(&p.threshold_operator).ok_or_else(|| {
            Error::invalid(
                "metric.threshold_operator",
                format!(
                    "{:?} is not one of >=, >, <=, <, ==, !=",
                    p.threshold_operator
                ),
            )
        })?
    };
    let metric = Metric {
        id,
        name: p.name,
        description: p.description,
        score_type,
        threshold: p.threshold,
        threshold_operator,
        categories: p.categories,
        passing_categories: p.passing_categories,
        requires_expected: p.requires_expected,
        requires_context: p.requires_context,
        kind,
        created_at,
        updated_at: chrono::Utc::now(),
    };
    metric.validate("metric")?;
    Ok(metric)
}

impl Updatable for pb::Metric {
    const PATHS: &'static [&'static str] = &[
        "name",
        "description",
        "score_type",
        "threshold",
        "threshold_operator",
        "categories",
        "passing_categories",
        "requires_expected",
        "requires_context",
        "kind",
        "exact_match",
        "contains",
        "regex",
        "llm_judge",
    ];

    fn is_set(&self, path: &str) -> bool {
        match path {
            "name" => !self.name.is_empty(),
            "description" => !self.description.is_empty(),
            "score_type" => self.score_type != 0,
            "threshold" => self.threshold.is_some(),
            "threshold_operator" => !self.threshold_operator.is_empty(),
            "categories" => !self.categories.is_empty(),
            "passing_categories" => !self.passing_categories.is_empty(),
            "requires_expected" => self.requires_expected,
            "requires_context" => self.requires_context,
            // The oneof is copied once, under its own name.
            "kind" => self.kind.is_some(),
            _ => false,
        }
    }

    fn copy_from(&mut self, s: &Self, path: &str) {
        match path {
            "name" => self.name.clone_from(&s.name),
            "description" => self.description.clone_from(&s.description),
            "score_type" => self.score_type = s.score_type,
            "threshold" => self.threshold = s.threshold,
            "threshold_operator" => self.threshold_operator.clone_from(&s.threshold_operator),
            "categories" => self.categories.clone_from(&s.categories),
            "passing_categories" => self.passing_categories.clone_from(&s.passing_categories),
            "requires_expected" => self.requires_expected = s.requires_expected,
            "requires_context" => self.requires_context = s.requires_context,
            _ => self.kind.clone_from(&s.kind),
        }
    }
}

#[tonic::async_trait]
impl pb::metric_service_server::MetricService for MetricApi {
    async fn create_metric(
        &self,
        request: Request<pb::CreateMetricRequest>,
    ) -> Result<Response<pb::Metric>, Status> {
        let p = required(request.into_inner().metric, "metric")?;
        let metric = from_proto(p, Uuid::now_v7(), chrono::Utc::now())?;
        self.store.create_metric(&metric).await?;
        tracing::info!(metric_id = %metric.id, name = %metric.name, "metric created");
        Ok(Response::new(to_proto(metric)))
    }

    async fn get_metric(
        &self,
        request: Request<pb::GetMetricRequest>,
    ) -> Result<Response<pb::Metric>, Status> {
        let r = reference(&request.into_inner().metric, "metric")?;
        Ok(Response::new(to_proto(self.store.get_metric(&r).await?)))
    }

    async fn list_metrics(
        &self,
        request: Request<pb::ListMetricsRequest>,
    ) -> Result<Response<pb::ListMetricsResponse>, Status> {
        let r = request.into_inner();
        let page = self
            .store
            .list_metrics(PageRequest::parse(r.page_size, &r.page_token)?)
            .await?;
        Ok(Response::new(pb::ListMetricsResponse {
            next_page_token: page.next_token(),
            metrics: page.items.into_iter().map(to_proto).collect(),
        }))
    }

    async fn update_metric(
        &self,
        request: Request<pb::UpdateMetricRequest>,
    ) -> Result<Response<pb::Metric>, Status> {
        let r = request.into_inner();
        let p = required(r.metric, "metric")?;
        let current = self
            .store
            .get_metric(&update_target(&p.id, &p.name, "metric")?)
            .await?;
        let (id, created_at) = (current.id, current.created_at);
        let merged = mask::apply(to_proto(current), &p, r.update_mask.as_ref())?;
        let metric = from_proto(merged, id, created_at)?;
        self.store.update_metric(&metric).await?;
        Ok(Response::new(to_proto(metric)))
    }

    async fn delete_metric(
        &self,
        request: Request<pb::DeleteMetricRequest>,
    ) -> Result<Response<()>, Status> {
        let r = reference(&request.into_inner().metric, "metric")?;
        let metric = self.store.get_metric(&r).await?;
        self.store.delete_metric(metric.id).await?;
        tracing::info!(metric_id = %metric.id, "metric deleted");
        Ok(Response::new(()))
    }
}
