//! `MetricService`: proto <-> domain conversion of metrics and their CRUD.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::{mask_paths, reference, required, timestamp, update_target};
use crate::catalogue::Catalogue;
use crate::domain::{
    Affix, BleuTokenizer, ExternalScorer, LengthUnit, LlmJudge, Metric, MetricDraft, MetricKind,
    PageRequest, Ref, ScoreType, ScorerProtocol, SimilarityMeasure, SimilarityOptions,
    ThresholdOperator,
};
use crate::error::{Error, Result};
use crate::proto::v1 as pb;
use crate::proto::v1::metric::Kind;

/// The gRPC `MetricService`.
pub struct MetricApi {
    catalogue: Arc<Catalogue>,
}

impl MetricApi {
    /// A service over the catalogue.
    pub fn new(catalogue: Arc<Catalogue>) -> Self {
        MetricApi { catalogue }
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
        MetricKind::Cost { max_usd } => Kind::Cost(pb::Cost { max_usd }),
        MetricKind::TokenUsage { max_tokens } => {
            Kind::TokenUsage(pb::TokenUsageLimit { max_tokens })
        }
        MetricKind::SemanticSimilarity {
            value,
            embedding_endpoint,
        } => Kind::SemanticSimilarity(pb::SemanticSimilarity {
            value,
            embedding_endpoint: embedding_endpoint
                .map(|id| id.to_string())
                .unwrap_or_default(),
        }),
        MetricKind::External(scorer) => Kind::External(pb::External {
            protocol: match scorer.protocol {
                ScorerProtocol::Http => pb::ExternalProtocol::Http,
                ScorerProtocol::Grpc => pb::ExternalProtocol::Grpc,
            } as i32,
            url: scorer.url,
            endpoint: scorer.endpoint.map(|id| id.to_string()).unwrap_or_default(),
        }),
        MetricKind::Similarity {
            measure,
            value,
            options,
        } => {
            let similarity = pb::Similarity {
                value,
                ignore_case: options.ignore_case,
                nfc: options.nfc,
                lowercase: options.lowercase,
                // The tokenizer in force is shown for BLEU, the only measure that has one.
                tokenize: if measure == SimilarityMeasure::Bleu {
                    options.tokenize.name().to_string()
                } else {
                    String::new()
                },
            };
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

/// A metric from the API as a draft: enums read, references not yet resolved, defaults not yet
/// applied (the catalogue does both).
pub(super) fn from_proto(p: pb::Metric) -> Result<MetricDraft> {
    let mut judge_endpoint = None;
    let kind = p
        .kind
        .map(|kind| -> Result<MetricKind> {
            Ok(match kind {
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
                Kind::Levenshtein(s) => similarity(SimilarityMeasure::Levenshtein, s)?,
                Kind::RougeL(s) => similarity(SimilarityMeasure::RougeL, s)?,
                Kind::Bleu(s) => similarity(SimilarityMeasure::Bleu, s)?,
                Kind::Cost(c) => MetricKind::Cost { max_usd: c.max_usd },
                Kind::TokenUsage(t) => MetricKind::TokenUsage {
                    max_tokens: t.max_tokens,
                },
                Kind::SemanticSimilarity(s) => {
                    judge_endpoint = optional_ref(&s.embedding_endpoint);
                    MetricKind::SemanticSimilarity {
                        value: s.value,
                        embedding_endpoint: None,
                    }
                }
                Kind::External(e) => {
                    judge_endpoint = optional_ref(&e.endpoint);
                    MetricKind::External(ExternalScorer {
                        protocol: match pb::ExternalProtocol::try_from(e.protocol) {
                            Ok(pb::ExternalProtocol::Unspecified | pb::ExternalProtocol::Http) => {
                                ScorerProtocol::Http
                            }
                            Ok(pb::ExternalProtocol::Grpc) => ScorerProtocol::Grpc,
                            Err(_) => {
                                return Err(Error::invalid(
                                    "metric.external.protocol",
                                    format!("{} is not an ExternalProtocol", e.protocol),
                                ));
                            }
                        },
                        url: e.url,
                        endpoint: None,
                    })
                }
                Kind::LlmJudge(j) => {
                    judge_endpoint = optional_ref(&j.judge_endpoint);
                    MetricKind::LlmJudge(LlmJudge {
                        base_url: j.base_url,
                        model: j.model,
                        api_key_env: super::non_empty(j.api_key_env),
                        evaluation_prompt: j.evaluation_prompt,
                        min_score: j.min_score,
                        max_score: j.max_score,
                        timeout_ms: j.timeout_ms,
                        judge_endpoint: None,
                        evaluation_steps: j.evaluation_steps,
                    })
                }
            })
        })
        .transpose()?;
    let score_type = match pb::ScoreType::try_from(p.score_type) {
        Ok(pb::ScoreType::Unspecified) => None,
        Ok(pb::ScoreType::Binary) => Some(ScoreType::Binary),
        Ok(pb::ScoreType::Numeric) => Some(ScoreType::Numeric),
        Ok(pb::ScoreType::Categorical) => Some(ScoreType::Categorical),
        Err(_) => {
            return Err(Error::invalid(
                "metric.score_type",
                format!("{} is not a ScoreType", p.score_type),
            ));
        }
    };
    let threshold_operator = if p.threshold_operator.trim().is_empty() {
        None
    } else {
        Some(
            ThresholdOperator::parse(&p.threshold_operator).ok_or_else(|| {
                Error::invalid(
                    "metric.threshold_operator",
                    format!(
                        "{:?} is not one of >=, >, <=, <, ==, !=",
                        p.threshold_operator
                    ),
                )
            })?,
        )
    };
    Ok(MetricDraft {
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
        judge_endpoint,
    })
}

/// A reference to a resource, `None` when blank.
fn optional_ref(reference: &str) -> Option<Ref> {
    match reference.trim() {
        "" => None,
        reference => Some(Ref::parse(reference)),
    }
}

/// A similarity kind; its tokenizer name is read here, whether each option belongs to the
/// measure is checked with the metric.
fn similarity(measure: SimilarityMeasure, s: pb::Similarity) -> Result<MetricKind> {
    let tokenize = match s.tokenize.as_str() {
        "" => BleuTokenizer::default(),
        name => BleuTokenizer::parse(name).ok_or_else(|| {
            let names: Vec<&str> = BleuTokenizer::ALL.iter().map(|t| t.name()).collect();
            Error::invalid(
                format!("metric.{}.tokenize", measure.name()),
                format!("{name:?} is not one of {}", names.join(", ")),
            )
        })?,
    };
    Ok(MetricKind::Similarity {
        measure,
        value: s.value,
        options: SimilarityOptions {
            ignore_case: s.ignore_case,
            nfc: s.nfc,
            lowercase: s.lowercase,
            tokenize,
        },
    })
}

#[tonic::async_trait]
impl pb::metric_service_server::MetricService for MetricApi {
    async fn create_metric(
        &self,
        request: Request<pb::CreateMetricRequest>,
    ) -> Result<Response<pb::Metric>, Status> {
        let draft = from_proto(required(request.into_inner().metric, "metric")?)?;
        let metric = self.catalogue.create_metric(draft).await?;
        Ok(Response::new(to_proto(metric)))
    }

    async fn get_metric(
        &self,
        request: Request<pb::GetMetricRequest>,
    ) -> Result<Response<pb::Metric>, Status> {
        let r = reference(&request.into_inner().metric, "metric")?;
        Ok(Response::new(to_proto(
            self.catalogue.get_metric(&r).await?,
        )))
    }

    async fn list_metrics(
        &self,
        request: Request<pb::ListMetricsRequest>,
    ) -> Result<Response<pb::ListMetricsResponse>, Status> {
        let r = request.into_inner();
        let page = self
            .catalogue
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
        let target = update_target(&p.id, &p.name, "metric")?;
        let metric = self
            .catalogue
            .update_metric(&target, from_proto(p)?, &mask_paths(r.update_mask))
            .await?;
        Ok(Response::new(to_proto(metric)))
    }

    async fn delete_metric(
        &self,
        request: Request<pb::DeleteMetricRequest>,
    ) -> Result<Response<()>, Status> {
        let r = reference(&request.into_inner().metric, "metric")?;
        self.catalogue.delete_metric(&r).await?;
        Ok(Response::new(()))
    }
}
