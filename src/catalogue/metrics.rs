//! Metrics, and the rules of the endpoints metrics call through: an LLM judge's judge and a
//! semantic similarity's embedding endpoint, named by reference, must be endpoints of the
//! `openai_chat` kind; a judge metric that names none needs the server's default judge. An
//! external scorer's endpoint (only its call policy is used) may be of any kind.

use std::sync::Arc;

use uuid::Uuid;

use super::Catalogue;
use crate::domain::{
    Endpoint, Metric, MetricDraft, MetricKind, Page, PageRequest, Ref, Target, apply_patch,
};
use crate::endpoint_client::{OutboundPolicy, SecretEnv, check_key_env, check_template_syntax};
use crate::error::{Error, Result};

/// The field that names an LLM judge's endpoint, for errors.
const JUDGE_FIELD: &str = "metric.llm_judge.judge_endpoint";
/// The field that names a semantic similarity's embedding endpoint, for errors.
const EMBEDDING_FIELD: &str = "metric.semantic_similarity.embedding_endpoint";
/// The field that names the endpoint whose call policy an external scorer's calls take.
const EXTERNAL_FIELD: &str = "metric.external.endpoint";

impl Catalogue {
    /// Creates a metric, its unset settings at their defaults.
    pub async fn create_metric(&self, mut draft: MetricDraft) -> Result<Metric> {
        self.resolve_judge(&mut draft).await?;
        let draft = place_judge(draft, self.default_judge)?;
        let metric = Metric::from_draft(draft, Uuid::now_v7(), chrono::Utc::now())?;
        check_judge(&metric, &self.secret_env, &self.outbound)?;
        self.store.create_metric(&metric).await?;
        tracing::info!(metric_id = %metric.id, name = %metric.name, "metric created");
        Ok(metric)
    }

    /// One metric by id or name.
    pub async fn get_metric(&self, metric: &Ref) -> Result<Metric> {
        self.store.get_metric(metric).await
    }

    /// A page of metrics in creation order.
    pub async fn list_metrics(&self, page: PageRequest) -> Result<Page<Metric>> {
        self.store.list_metrics(page).await
    }

    /// Applies the fields of `update` named by `paths` (every set field when empty) to a
    /// metric, in one transaction.
    pub async fn update_metric(
        &self,
        metric: &Ref,
        mut update: MetricDraft,
        paths: &[String],
    ) -> Result<Metric> {
        // Resolved first: a change runs inside the transaction and must not wait.
        self.resolve_judge(&mut update).await?;
        let (paths, default_judge) = (paths.to_vec(), self.default_judge);
        let (secret_env, outbound) = (Arc::clone(&self.secret_env), Arc::clone(&self.outbound));
        let change = move |current: Metric| {
            let draft = apply_patch(current.to_draft(), &update, &paths)?;
            let draft = place_judge(draft, default_judge)?;
            let metric = Metric::from_draft(draft, current.id, current.created_at)?;
            check_judge(&metric, &secret_env, &outbound)?;
            Ok(metric)
        };
        self.store.update_metric(metric, Box::new(change)).await
    }

    /// Deletes a metric that no behaviour or test set uses.
    pub async fn delete_metric(&self, metric: &Ref) -> Result<()> {
        let metric = self.store.get_metric(metric).await?;
        self.store.delete_metric(metric.id).await?;
        tracing::info!(metric_id = %metric.id, "metric deleted");
        Ok(())
    }

    /// Replaces the reference to the endpoint a kind calls through by the endpoint's id: unknown
    /// is `NotFound`; for a model, not of the `openai_chat` kind is `InvalidArgument`.
    pub(super) async fn resolve_judge(&self, draft: &mut MetricDraft) -> Result<()> {
        let (Some(role), Some(reference)) =
            (model_role(draft.kind.as_ref()), &draft.judge_endpoint)
        else {
            return Ok(());
        };
        let endpoint = self.store.get_endpoint(reference).await?;
        draft.judge_endpoint = Some(model_endpoint(&endpoint, role)?);
        Ok(())
    }
}

/// The field naming the endpoint a kind calls through (for errors) and, when the endpoint's
/// model is called, what it does with it; `None` for kinds that call no endpoint.
pub(super) fn model_role(
    kind: Option<&MetricKind>,
) -> Option<(&'static str, Option<&'static str>)> {
    match kind? {
        MetricKind::LlmJudge(_) => Some((JUDGE_FIELD, Some("judge"))),
        MetricKind::SemanticSimilarity { .. } => Some((EMBEDDING_FIELD, Some("embed"))),
        // Only the endpoint's call policy is used, so any kind will do.
        MetricKind::External(_) => Some((EXTERNAL_FIELD, None)),
        _ => None,
    }
}

/// The reference a metric keeps to the endpoint it calls through (its id); `InvalidArgument`
/// when a model is called (`role`) and the endpoint is not of the `openai_chat` kind.
pub(super) fn model_endpoint(
    endpoint: &Endpoint,
    (field, role): (&str, Option<&str>),
) -> Result<Ref> {
    if let Some(role) = role
        && !matches!(endpoint.target, Target::OpenAiChat(_))
    {
        return Err(Error::invalid(
            field,
            format!(
                "endpoint {:?} is not of the openai_chat kind, so it cannot {role}",
                endpoint.name
            ),
        ));
    }
    Ok(Ref::Id(endpoint.id))
}

/// Refuses an LLM judge whose evaluation prompt is not a valid template (it would fail every
/// call), whose inline `api_key_env` names a variable the server does not allow, or whose inline
/// base URL is an address the outbound policy refuses; and an external scorer at an address the
/// outbound policy refuses.
pub(super) fn check_judge(
    metric: &Metric,
    allowed: &SecretEnv,
    outbound: &OutboundPolicy,
) -> Result<()> {
    let judge = match &metric.kind {
        MetricKind::LlmJudge(judge) => judge,
        MetricKind::External(scorer) => {
            return outbound
                .check_url_text(&scorer.url)
                .map_err(|reason| Error::invalid("metric.external.url", reason));
        }
        _ => return Ok(()),
    };
    outbound
        .check_url_text(&judge.base_url)
        .map_err(|reason| Error::invalid("metric.llm_judge.base_url", reason))?;
    check_template_syntax(&judge.evaluation_prompt)
        .map_err(|reason| Error::invalid("metric.llm_judge.evaluation_prompt", reason))?;
    check_key_env(judge.api_key_env.as_deref(), allowed)
        .map_err(|reason| Error::invalid("metric.llm_judge.api_key_env", reason))
}

/// The draft with its resolved model endpoint placed in its kind. A judge metric that names no
/// judge (no endpoint, no inline model) while the server has no default judge is
/// `InvalidArgument`.
pub(super) fn place_judge(mut draft: MetricDraft, default_judge: bool) -> Result<MetricDraft> {
    let resolved = match &draft.judge_endpoint {
        Some(Ref::Id(id)) => Some(*id),
        // Resolved by `resolve_judge` before; a name left here names nothing.
        Some(reference @ Ref::Name(_)) => return Err(Error::not_found("endpoint", reference)),
        None => None,
    };
    let judge = match &mut draft.kind {
        Some(MetricKind::LlmJudge(judge)) => judge,
        Some(MetricKind::SemanticSimilarity {
            embedding_endpoint, ..
        }) => {
            *embedding_endpoint = resolved;
            return Ok(draft);
        }
        Some(MetricKind::External(scorer)) => {
            scorer.endpoint = resolved;
            return Ok(draft);
        }
        _ => return Ok(draft),
    };
    judge.judge_endpoint = resolved;
    if judge.judge_endpoint.is_none()
        && judge.base_url.trim().is_empty()
        && judge.model.trim().is_empty()
        && !default_judge
    {
        return Err(Error::invalid(
            JUDGE_FIELD,
            "is required: the server has no default judge (ASSAY_JUDGE_BASE_URL, \
             ASSAY_JUDGE_MODEL); name an endpoint of the openai_chat kind",
        ));
    }
    Ok(draft)
}
