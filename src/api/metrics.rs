//! `MetricService`: proto <-> domain conversion of metrics and their CRUD.

use std::sync::Arc;

use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::mask::{self, Updatable};
use super::{reference, required, timestamp, update_target};
use crate::domain::{
    Affix, LengthUnit, LlmJudge, Metric, MetricKind, PageRequest, ScoreType, SimilarityMeasure,
    Target, ThresholdOperator, Timestamp,
};
use crate::error::{Error, Result};
use crate::proto::v1 as pb;
use crate::proto::v1::metric::Kind;
use crate::store::Store;

/// The gRPC `MetricService`.
pub struct MetricApi {
    store: Arc<dyn Store>,
    default_judge: bool,
}

impl MetricApi {
    /// A service over `store`, on a server without a default judge.
    pub fn new(store: Arc<dyn Store>) -> Self {
        MetricApi {
            store,
            default_judge: false,
        }
    }

    /// Whether the server has a default judge for LLM-judge metrics that name none.
    pub fn with_default_judge(mut self, configured: bool) -> Self {
        self.default_judge = configured;
        self
    }

    /// Replaces an LLM judge's `judge_endpoint` reference by the endpoint's id: unknown is
    /// `NotFound`, not of the `openai_chat` kind is `InvalidArgument`. A judge metric that names
    /// no judge while the server has no default judge is `InvalidArgument`.
    async fn resolve_judge(&self, metric: &mut pb::Metric) -> Result<()> {
        const FIELD: &str = "metric.llm_judge.judge_endpoint";
        let Some(Kind::LlmJudge(judge)) = &mut metric.kind else {
            return Ok(());
        };
        if !judge.judge_endpoint.trim().is_empty() {
            let endpoint = self
                .store
                .get_endpoint(&reference(&judge.judge_endpoint, FIELD)?)
                .await?;
            if !matches!(endpoint.target, Target::OpenAiChat(_)) {
                return Err(Error::invalid(
                    FIELD,
                    format!(
                        "endpoint {:?} is not of the openai_chat kind, so it cannot judge",
                        endpoint.name
                    ),
                ));
            }
            judge.judge_endpoint = endpoint.id.to_string();
        } else if judge.base_url.trim().is_empty()
            && judge.model.trim().is_empty()
            && !self.default_judge
        {
            return Err(Error::invalid(
                FIELD,
                "is required: the server has no default judge (ASSAY_JUDGE_BASE_URL, \
                 ASSAY_JUDGE_MODEL); name an endpoint of the openai_chat kind",
            ));
        }
        Ok(())
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
        MetricKind::Regex { pattern, no_match } => Kind::Regex(pb::Regex { pattern, no_match }),
        MetricKind::LlmJudge(j) => Kind::LlmJudge(pb::LlmJudge {
            base_url: j.base_url,
            model: j.model,
            api_key_env: j.api_key_env.unwrap_or_default(),
            evaluation_prompt: j.evaluation_prompt,
            min_score: j.min_score,
            max_score: j.max_score,
            timeout_ms: j.timeout_ms,
            judge_endpoint: j
                .judge_endpoint
                .map(|id| id.to_string())
                .unwrap_or_default(),
            evaluation_steps: j.evaluation_steps,
        }),
        MetricKind::NotContains {
            values,
            case_sensitive,
        } => Kind::NotContains(pb::NotContains {
            values,
            case_sensitive,
        }),
        MetricKind::StartsWith(a) => Kind::StartsWith(affix_to_proto(a)),
        MetricKind::EndsWith(a) => Kind::EndsWith(affix_to_proto(a)),
        MetricKind::IsJson => Kind::IsJson(pb::IsJson {}),
        MetricKind::JsonSchema { schema } => Kind::JsonSchema(pb::JsonSchema { schema }),
        MetricKind::Length { min, max, unit } => Kind::Length(pb::Length {
            min,
            max,
            unit: match unit {
                LengthUnit::Characters => pb::LengthUnit::Characters,
                LengthUnit::Words => pb::LengthUnit::Words,
            } as i32,
        }),
        MetricKind::Latency { max_ms } => Kind::Latency(pb::Latency { max_ms }),
        MetricKind::Similarity { measure, value } => {
            let similarity = pb::Similarity { value };
            match measure {
                SimilarityMeasure::Levenshtein => Kind::Levenshtein(similarity),
                SimilarityMeasure::RougeL => Kind::RougeL(similarity),
                SimilarityMeasure::Bleu => Kind::Bleu(similarity),
            }
        }
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

fn affix_to_proto(a: Affix) -> pb::AffixMatch {
    pb::AffixMatch {
        value: a.value,
        ignore_case: a.ignore_case,
        trim: a.trim,
    }
}

fn affix_from_proto(a: pb::AffixMatch) -> Affix {
    Affix {
        value: a.value,
        ignore_case: a.ignore_case,
        trim: a.trim,
    }
}

/// The kinds of the `Metric.kind` oneof, for error messages.
const KINDS: &str = "exact_match, contains, not_contains, regex, starts_with, ends_with, \
    is_json, json_schema, length, latency, levenshtein, rouge_l, bleu, llm_judge";

/// A metric from the API, validated; `id` and times are given by the caller. A judge endpoint
/// must already be given as an id (see [`MetricApi::resolve_judge`]).
fn from_proto(p: pb::Metric, id: Uuid, created_at: Timestamp) -> Result<Metric> {
    let kind = match required(p.kind, "metric.kind")
        .map_err(|_| Error::invalid("metric.kind", format!("one of {KINDS} is required")))?
    {
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
        Kind::Regex(r) => MetricKind::Regex {
            pattern: r.pattern,
            no_match: r.no_match,
        },
        Kind::NotContains(c) => MetricKind::NotContains {
            values: c.values,
            case_sensitive: c.case_sensitive,
        },
        Kind::StartsWith(a) => MetricKind::StartsWith(affix_from_proto(a)),
        Kind::EndsWith(a) => MetricKind::EndsWith(affix_from_proto(a)),
        Kind::IsJson(_) => MetricKind::IsJson,
        Kind::JsonSchema(j) => MetricKind::JsonSchema { schema: j.schema },
        Kind::Length(l) => MetricKind::Length {
            min: l.min,
            max: l.max,
            unit: match pb::LengthUnit::try_from(l.unit) {
                Ok(pb::LengthUnit::Unspecified | pb::LengthUnit::Characters) => {
                    LengthUnit::Characters
                }
                Ok(pb::LengthUnit::Words) => LengthUnit::Words,
                Err(_) => {
                    return Err(Error::invalid(
                        "metric.length.unit",
                        format!("{} is not a LengthUnit", l.unit),
                    ));
                }
            },
        },
        Kind::Latency(l) => MetricKind::Latency { max_ms: l.max_ms },
        Kind::Levenshtein(s) => similarity(SimilarityMeasure::Levenshtein, s),
        Kind::RougeL(s) => similarity(SimilarityMeasure::RougeL, s),
        Kind::Bleu(s) => similarity(SimilarityMeasure::Bleu, s),
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
            judge_endpoint: match j.judge_endpoint.trim() {
                "" => None,
                id => Some(super::uuid(id, "metric.llm_judge.judge_endpoint")?),
            },
            evaluation_steps: j.evaluation_steps,
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

fn similarity(measure: SimilarityMeasure, s: pb::Similarity) -> MetricKind {
    MetricKind::Similarity {
        measure,
        value: s.value,
    }
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
        "not_contains",
        "starts_with",
        "ends_with",
        "is_json",
        "json_schema",
        "length",
        "latency",
        "levenshtein",
        "rouge_l",
        "bleu",
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
        let mut p = required(request.into_inner().metric, "metric")?;
        self.resolve_judge(&mut p).await?;
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
        let mut merged = mask::apply(to_proto(current), &p, r.update_mask.as_ref())?;
        self.resolve_judge(&mut merged).await?;
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
