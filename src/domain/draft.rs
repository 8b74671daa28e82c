//! Drafts: catalogue resources as a client gives them, before the catalogue resolves their
//! references, fills in defaults and validates them. Proto3 cannot tell an unset field from a
//! default one, so a draft keeps that ambiguity (an empty text or a 0 is "not given") and
//! [`Patch`] reads it the same way. Each resource turns a draft into its stored form
//! (`from_draft`, with defaults) and back (`to_draft`, the base of an update).

use std::collections::BTreeMap;

use uuid::Uuid;

use super::patch::Patch;
use super::{
    Behavior, CallPolicy, Endpoint, Metric, MetricKind, Pricing, Ref, ScoreType, Target, Test,
    TestSet, ThresholdOperator, Timestamp,
};
use crate::error::{Error, Result};

/// The kinds of a metric, as requests name them (for error messages).
pub const METRIC_KINDS: &str = "exact_match, contains, not_contains, regex, starts_with, \
    ends_with, is_json, json_schema, length, latency, levenshtein, rouge_l, bleu, \
    semantic_similarity, cost, token_usage, llm_judge, external";

/// A metric as given: `None` fields take their defaults.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetricDraft {
    /// Unique name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// `None`: the kind's natural score type.
    pub score_type: Option<ScoreType>,
    /// Pass threshold.
    pub threshold: Option<f64>,
    /// `None`: the score type's default operator.
    pub threshold_operator: Option<ThresholdOperator>,
    /// Categorical metrics: every category.
    pub categories: Vec<String>,
    /// Categorical metrics: the passing categories.
    pub passing_categories: Vec<String>,
    /// Needs the test's expected response.
    pub requires_expected: bool,
    /// Needs context from the endpoint.
    pub requires_context: bool,
    /// What the metric checks; required. The kind's [model
    /// endpoint](MetricKind::model_endpoint) is filled in from
    /// [`judge_endpoint`](Self::judge_endpoint) when it is resolved.
    pub kind: Option<MetricKind>,
    /// The endpoint the kind calls through, by id or name: an LLM judge's judge, a semantic
    /// similarity's embedding endpoint, an external scorer's call-policy endpoint.
    pub judge_endpoint: Option<Ref>,
}

impl Patch for MetricDraft {
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
        "semantic_similarity",
        "cost",
        "token_usage",
        "external",
    ];

    fn is_set(&self, path: &str) -> bool {
        match path {
            "name" => !self.name.is_empty(),
            "description" => !self.description.is_empty(),
            "score_type" => self.score_type.is_some(),
            "threshold" => self.threshold.is_some(),
            "threshold_operator" => self.threshold_operator.is_some(),
            "categories" => !self.categories.is_empty(),
            "passing_categories" => !self.passing_categories.is_empty(),
            "requires_expected" => self.requires_expected,
            "requires_context" => self.requires_context,
            // The kind is copied once, under its own name.
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
            "threshold_operator" => self.threshold_operator = s.threshold_operator,
            "categories" => self.categories.clone_from(&s.categories),
            "passing_categories" => self.passing_categories.clone_from(&s.passing_categories),
            "requires_expected" => self.requires_expected = s.requires_expected,
            "requires_context" => self.requires_context = s.requires_context,
            _ => {
                self.kind.clone_from(&s.kind);
                self.judge_endpoint.clone_from(&s.judge_endpoint);
            }
        }
    }
}

impl Metric {
    /// The metric a draft describes, defaults filled in and validated; the draft's judge
    /// endpoint must be resolved into its kind already.
    pub fn from_draft(draft: MetricDraft, id: Uuid, created_at: Timestamp) -> Result<Metric> {
        let kind = draft
            .kind
            .ok_or_else(|| {
                Error::invalid("metric.kind", format!("one of {METRIC_KINDS} is required"))
            })?
            .with_defaults();
        let score_type = draft
            .score_type
            .unwrap_or_else(|| kind.natural_score_type());
        let metric = Metric {
            id,
            name: draft.name,
            description: draft.description,
            score_type,
            threshold: draft.threshold,
            threshold_operator: draft
                .threshold_operator
                .unwrap_or_else(|| ThresholdOperator::default_for(score_type)),
            categories: draft.categories,
            passing_categories: draft.passing_categories,
            requires_expected: draft.requires_expected,
            requires_context: draft.requires_context,
            kind,
            created_at,
            updated_at: chrono::Utc::now(),
        };
        metric.validate("metric")?;
        Ok(metric)
    }

    /// The metric as a draft: what an update starts from.
    pub fn to_draft(&self) -> MetricDraft {
        let judge_endpoint = self.kind.model_endpoint().map(Ref::Id);
        MetricDraft {
            name: self.name.clone(),
            description: self.description.clone(),
            score_type: Some(self.score_type),
            threshold: self.threshold,
            threshold_operator: Some(self.threshold_operator),
            categories: self.categories.clone(),
            passing_categories: self.passing_categories.clone(),
            requires_expected: self.requires_expected,
            requires_context: self.requires_context,
            kind: Some(self.kind.clone()),
            judge_endpoint,
        }
    }
}

/// An endpoint as given: empty or 0 settings take their defaults.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EndpointDraft {
    /// Unique name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// How it is called; required.
    pub target: Option<Target>,
    /// See [`Endpoint::max_concurrency`].
    pub max_concurrency: u32,
    /// See [`Endpoint::max_retries`].
    pub max_retries: Option<u32>,
    /// See [`Endpoint::rate_limit_per_second`].
    pub rate_limit_per_second: f64,
    /// `None`: the default policy; durations that are 0 take their defaults.
    pub call_policy: Option<CallPolicy>,
    /// `None`: free.
    pub pricing: Option<Pricing>,
}

impl Patch for EndpointDraft {
    const PATHS: &'static [&'static str] = &[
        "name",
        "description",
        "target",
        "http",
        "openai_chat",
        "max_concurrency",
        "max_retries",
        "rate_limit_per_second",
        "call_policy",
        "pricing",
    ];

    fn is_set(&self, path: &str) -> bool {
        match path {
            "name" => !self.name.is_empty(),
            "description" => !self.description.is_empty(),
            // The target is copied once, under its own name.
            "target" => self.target.is_some(),
            "max_concurrency" => self.max_concurrency != 0,
            "max_retries" => self.max_retries.is_some(),
            "rate_limit_per_second" => self.rate_limit_per_second != 0.0,
            "call_policy" => self.call_policy.is_some(),
            "pricing" => self.pricing.is_some(),
            _ => false,
        }
    }

    fn copy_from(&mut self, s: &Self, path: &str) {
        match path {
            "name" => self.name.clone_from(&s.name),
            "description" => self.description.clone_from(&s.description),
            "max_concurrency" => self.max_concurrency = s.max_concurrency,
            "max_retries" => self.max_retries = s.max_retries,
            "rate_limit_per_second" => self.rate_limit_per_second = s.rate_limit_per_second,
            "call_policy" => self.call_policy = s.call_policy,
            "pricing" => self.pricing = s.pricing,
            _ => self.target.clone_from(&s.target),
        }
    }
}

impl Endpoint {
    /// The endpoint a draft describes, defaults filled in; not yet validated (an update first
    /// puts back the secrets that were sent masked).
    pub fn from_draft(draft: EndpointDraft, id: Uuid, created_at: Timestamp) -> Result<Endpoint> {
        let target = draft.target.ok_or_else(|| {
            Error::invalid("endpoint.target", "one of http, openai_chat is required")
        })?;
        Ok(Endpoint {
            id,
            name: draft.name,
            description: draft.description,
            target: target.with_defaults(),
            max_concurrency: draft.max_concurrency,
            max_retries: draft.max_retries,
            rate_limit_per_second: draft.rate_limit_per_second,
            call_policy: draft.call_policy.unwrap_or_default().with_defaults(),
            pricing: draft.pricing.unwrap_or_default(),
            created_at,
            updated_at: chrono::Utc::now(),
        })
    }

    /// The endpoint as a draft (secrets in clear): what an update starts from.
    pub fn to_draft(&self) -> EndpointDraft {
        EndpointDraft {
            name: self.name.clone(),
            description: self.description.clone(),
            target: Some(self.target.clone()),
            max_concurrency: self.max_concurrency,
            max_retries: self.max_retries,
            rate_limit_per_second: self.rate_limit_per_second,
            call_policy: Some(self.call_policy),
            pricing: Some(self.pricing),
        }
    }
}

/// A behaviour or a test set as given: a name, a description and metrics by id or name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GroupDraft {
    /// Unique name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Metrics, by id or name, in order.
    pub metrics: Vec<Ref>,
}

impl Patch for GroupDraft {
    const PATHS: &'static [&'static str] = &["name", "description", "metrics"];

    fn is_set(&self, path: &str) -> bool {
        match path {
            "name" => !self.name.is_empty(),
            "description" => !self.description.is_empty(),
            _ => !self.metrics.is_empty(),
        }
    }

    fn copy_from(&mut self, s: &Self, path: &str) {
        match path {
            "name" => self.name.clone_from(&s.name),
            "description" => self.description.clone_from(&s.description),
            _ => self.metrics.clone_from(&s.metrics),
        }
    }
}

impl GroupDraft {
    /// The draft of a stored group (its metrics by id).
    fn of(name: &str, description: &str, metric_ids: &[Uuid]) -> GroupDraft {
        GroupDraft {
            name: name.to_string(),
            description: description.to_string(),
            metrics: metric_ids.iter().copied().map(Ref::Id).collect(),
        }
    }
}

impl Behavior {
    /// The behaviour a draft describes, with its metrics resolved to `metric_ids`; validated.
    pub fn from_draft(
        draft: GroupDraft,
        metric_ids: Vec<Uuid>,
        id: Uuid,
        created_at: Timestamp,
    ) -> Result<Behavior> {
        let behavior = Behavior {
            id,
            name: draft.name,
            description: draft.description,
            metric_ids,
            created_at,
            updated_at: chrono::Utc::now(),
        };
        behavior.validate("behavior")?;
        Ok(behavior)
    }

    /// The behaviour as a draft: what an update starts from.
    pub fn to_draft(&self) -> GroupDraft {
        GroupDraft::of(&self.name, &self.description, &self.metric_ids)
    }
}

impl TestSet {
    /// The test set a draft describes, with its metrics resolved to `metric_ids` and no tests
    /// counted; validated, with errors under `field` (its path in the request).
    pub fn from_draft(
        draft: GroupDraft,
        metric_ids: Vec<Uuid>,
        (id, created_at): (Uuid, Timestamp),
        field: &str,
    ) -> Result<TestSet> {
        let test_set = TestSet {
            id,
            name: draft.name,
            description: draft.description,
            metric_ids,
            test_count: 0,
            created_at,
            updated_at: chrono::Utc::now(),
        };
        test_set.validate(field)?;
        Ok(test_set)
    }

    /// The test set as a draft: what an update starts from.
    pub fn to_draft(&self) -> GroupDraft {
        GroupDraft::of(&self.name, &self.description, &self.metric_ids)
    }
}

/// A test as given: its behaviour by id or name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TestDraft {
    /// Prompt sent to the endpoint; required.
    pub prompt: String,
    /// Expected answer.
    pub expected_response: Option<String>,
    /// Behaviour checked, by id or name.
    pub behavior: Option<Ref>,
    /// Free label.
    pub category: String,
    /// Free label.
    pub topic: String,
    /// Extra data for templates.
    pub metadata: BTreeMap<String, String>,
    /// Stable key within the test set (empty: none).
    pub key: String,
}

impl Test {
    /// The test a draft describes in a test set, its behaviour resolved to `behavior_id`;
    /// validated, with errors under `field` (its path in the request, e.g. `tests[3]`).
    pub fn from_draft(
        draft: TestDraft,
        test_set_id: Uuid,
        behavior_id: Option<Uuid>,
        created_at: Timestamp,
        field: &str,
    ) -> Result<Test> {
        let test = Test {
            id: Uuid::now_v7(),
            test_set_id,
            prompt: draft.prompt,
            expected_response: draft.expected_response,
            behavior_id,
            category: draft.category,
            topic: draft.topic,
            metadata: draft.metadata,
            created_at,
            key: draft.key,
        };
        test.validate(field)?;
        Ok(test)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{HttpTarget, LlmJudge, OpenAiChatTarget, ResponseMapping};

    fn http_draft() -> EndpointDraft {
        EndpointDraft {
            name: "app".into(),
            target: Some(Target::Http(HttpTarget {
                url: "http://127.0.0.1:8000/ask".into(),
                method: "put".into(),
                headers: BTreeMap::new(),
                body_template: " ".into(),
                response_mapping: ResponseMapping {
                    output: String::new(),
                    context: None,
                    metadata: None,
                    input_tokens: None,
                    output_tokens: None,
                },
                timeout_ms: 0,
            })),
            ..EndpointDraft::default()
        }
    }

    #[test]
    fn an_endpoint_draft_takes_the_defaults_declared_with_its_types() {
        let endpoint = Endpoint::from_draft(http_draft(), Uuid::now_v7(), chrono::Utc::now())
            .expect("endpoint");
        let Target::Http(http) = &endpoint.target else {
            panic!("not http: {:?}", endpoint.target);
        };
        assert_eq!(http.method, "PUT");
        assert_eq!(http.body_template, crate::domain::DEFAULT_BODY_TEMPLATE);
        assert_eq!(
            http.response_mapping.output,
            crate::domain::DEFAULT_OUTPUT_PATH
        );
        assert_eq!(http.timeout_ms, crate::domain::DEFAULT_HTTP_TIMEOUT_MS);
        assert_eq!(endpoint.call_policy, CallPolicy::default());

        let chat = Target::OpenAiChat(OpenAiChatTarget {
            base_url: "http://127.0.0.1:9/v1".into(),
            model: "m".into(),
            system_prompt: None,
            api_key_env: None,
            timeout_ms: 0,
        });
        let Target::OpenAiChat(chat) = chat.with_defaults() else {
            unreachable!()
        };
        assert_eq!(chat.timeout_ms, crate::domain::DEFAULT_CHAT_TIMEOUT_MS);
    }

    #[test]
    fn a_draft_without_a_target_or_kind_names_the_field() {
        let err =
            Endpoint::from_draft(EndpointDraft::default(), Uuid::now_v7(), chrono::Utc::now())
                .unwrap_err();
        assert!(err.to_string().starts_with("endpoint.target:"), "{err}");
        let err = Metric::from_draft(MetricDraft::default(), Uuid::now_v7(), chrono::Utc::now())
            .unwrap_err();
        assert!(err.to_string().starts_with("metric.kind: one of"), "{err}");
    }

    #[test]
    fn a_metric_draft_takes_its_kinds_score_type_operator_and_judge_scale() {
        let judge = MetricDraft {
            name: "judged".into(),
            kind: Some(MetricKind::LlmJudge(LlmJudge {
                base_url: "http://127.0.0.1:9/v1".into(),
                model: "m".into(),
                api_key_env: None,
                evaluation_prompt: "Is it right?".into(),
                min_score: 0.0,
                max_score: 0.0,
                timeout_ms: 0,
                judge_endpoint: None,
                evaluation_steps: vec![],
            })),
            ..MetricDraft::default()
        };
        let metric = Metric::from_draft(judge, Uuid::now_v7(), chrono::Utc::now()).unwrap();
        assert_eq!(metric.score_type, ScoreType::Numeric);
        assert_eq!(
            metric.threshold_operator,
            ThresholdOperator::default_for(ScoreType::Numeric)
        );
        let MetricKind::LlmJudge(judge) = &metric.kind else {
            unreachable!()
        };
        assert_eq!((judge.min_score, judge.max_score), (0.0, 1.0));
    }

    #[test]
    fn a_stored_resource_survives_its_draft_unchanged() {
        let (id, created) = (Uuid::now_v7(), chrono::Utc::now());
        let endpoint = Endpoint::from_draft(http_draft(), id, created).unwrap();
        let again = Endpoint::from_draft(endpoint.to_draft(), id, created).unwrap();
        assert_eq!(
            Endpoint {
                updated_at: endpoint.updated_at,
                ..again
            },
            endpoint
        );

        let metric = Metric::from_draft(
            MetricDraft {
                name: "exact".into(),
                kind: Some(MetricKind::ExactMatch {
                    value: Some("Paris".into()),
                    ignore_case: true,
                    trim: false,
                }),
                ..MetricDraft::default()
            },
            id,
            created,
        )
        .unwrap();
        let again = Metric::from_draft(metric.to_draft(), id, created).unwrap();
        assert_eq!(
            Metric {
                updated_at: metric.updated_at,
                ..again
            },
            metric
        );
    }
}
