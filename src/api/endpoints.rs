//! `EndpointService`: proto <-> domain conversion of endpoints (secrets masked on the way out)
//! and their CRUD.

use std::sync::Arc;

use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::mask::{self, Updatable};
use super::{non_empty, reference, required, timestamp, update_target};
use crate::domain::{
    CallPolicy, DEFAULT_BODY_TEMPLATE, DEFAULT_OUTPUT_PATH, Endpoint, HttpTarget, OpenAiChatTarget,
    PageRequest, ResponseMapping, Target, Timestamp,
};
use crate::endpoint_client::{
    BodyTemplateSyntax, DEFAULT_CHAT_TIMEOUT_MS, DEFAULT_HTTP_TIMEOUT_MS,
};
use crate::error::{Error, Result};
use crate::proto::v1 as pb;
use crate::proto::v1::endpoint::Target as PbTarget;
use crate::store::Store;

/// The gRPC `EndpointService`.
pub struct EndpointApi {
    store: Arc<dyn Store>,
}

impl EndpointApi {
    /// A service over `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        EndpointApi { store }
    }
}

/// An endpoint as stored, in proto form (secrets in clear: mask before answering).
fn to_proto(e: Endpoint) -> pb::Endpoint {
    let target = match e.target {
        Target::Http(h) => PbTarget::Http(pb::HttpTarget {
            url: h.url,
            method: h.method,
            headers: h.headers.into_iter().collect(),
            body_template: h.body_template,
            response_mapping: Some(pb::ResponseMapping {
                output: h.response_mapping.output,
                context: h.response_mapping.context.unwrap_or_default(),
                metadata: h.response_mapping.metadata.unwrap_or_default(),
            }),
            timeout_ms: h.timeout_ms,
        }),
        Target::OpenAiChat(c) => PbTarget::OpenaiChat(pb::OpenAiChatTarget {
            base_url: c.base_url,
            model: c.model,
            system_prompt: c.system_prompt.unwrap_or_default(),
            api_key_env: c.api_key_env.unwrap_or_default(),
            timeout_ms: c.timeout_ms,
        }),
    };
    pb::Endpoint {
        id: e.id.to_string(),
        name: e.name,
        description: e.description,
        target: Some(target),
        max_concurrency: e.max_concurrency,
        max_retries: e.max_retries,
        rate_limit_per_second: e.rate_limit_per_second,
        call_policy: Some(policy_to_proto(e.call_policy)),
        created_at: Some(timestamp(e.created_at)),
        updated_at: Some(timestamp(e.updated_at)),
    }
}

fn policy_to_proto(p: CallPolicy) -> pb::CallPolicy {
    pb::CallPolicy {
        backoff_base_ms: p.backoff_base_ms,
        backoff_max_ms: p.backoff_max_ms,
        max_retry_wait_ms: p.max_retry_wait_ms,
        retry_budget_ms: p.retry_budget_ms,
        requests_per_minute: p.requests_per_minute,
        adaptive_concurrency: p.adaptive_concurrency,
    }
}

/// A call policy from the API, unset durations at their defaults.
fn policy_from_proto(p: pb::CallPolicy) -> CallPolicy {
    CallPolicy {
        backoff_base_ms: p.backoff_base_ms,
        backoff_max_ms: p.backoff_max_ms,
        max_retry_wait_ms: p.max_retry_wait_ms,
        retry_budget_ms: p.retry_budget_ms,
        requests_per_minute: p.requests_per_minute,
        adaptive_concurrency: p.adaptive_concurrency,
    }
    .with_defaults()
}

/// An endpoint as read RPCs answer it.
fn to_masked_proto(e: Endpoint) -> pb::Endpoint {
    to_proto(e.masked())
}

/// An endpoint from the API with defaults filled in; validated by the caller.
fn from_proto(p: pb::Endpoint, id: Uuid, created_at: Timestamp) -> Result<Endpoint> {
    let target = match p.target {
        None => {
            return Err(Error::invalid(
                "endpoint.target",
                "one of http, openai_chat is required",
            ));
        }
        Some(PbTarget::Http(h)) => {
            let mapping = h.response_mapping.unwrap_or_default();
            Target::Http(HttpTarget {
                url: h.url,
                method: or_default(h.method.to_ascii_uppercase(), "POST"),
                headers: h.headers.into_iter().collect(),
                body_template: or_default(h.body_template, DEFAULT_BODY_TEMPLATE),
                response_mapping: ResponseMapping {
                    output: or_default(mapping.output, DEFAULT_OUTPUT_PATH),
                    context: non_empty(mapping.context),
                    metadata: non_empty(mapping.metadata),
                },
                timeout_ms: nonzero_or(h.timeout_ms, DEFAULT_HTTP_TIMEOUT_MS),
            })
        }
        Some(PbTarget::OpenaiChat(c)) => Target::OpenAiChat(OpenAiChatTarget {
            base_url: c.base_url,
            model: c.model,
            system_prompt: non_empty(c.system_prompt),
            api_key_env: non_empty(c.api_key_env),
            timeout_ms: nonzero_or(c.timeout_ms, DEFAULT_CHAT_TIMEOUT_MS),
        }),
    };
    Ok(Endpoint {
        id,
        name: p.name,
        description: p.description,
        target,
        max_concurrency: p.max_concurrency,
        max_retries: p.max_retries,
        rate_limit_per_second: p.rate_limit_per_second,
        call_policy: policy_from_proto(p.call_policy.unwrap_or_default()),
        created_at,
        updated_at: chrono::Utc::now(),
    })
}

/// A text field, or `default` when it is blank (proto3 cannot tell unset from empty).
fn or_default(value: String, default: &str) -> String {
    if value.trim().is_empty() {
        default.to_string()
    } else {
        value
    }
}

/// A number field, or `default` when it is 0 (unset).
fn nonzero_or(value: u32, default: u32) -> u32 {
    if value == 0 { default } else { value }
}

impl Updatable for pb::Endpoint {
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
    ];

    fn is_set(&self, path: &str) -> bool {
        match path {
            "name" => !self.name.is_empty(),
            "description" => !self.description.is_empty(),
            // The oneof is copied once, under its own name.
            "target" => self.target.is_some(),
            "max_concurrency" => self.max_concurrency != 0,
            "max_retries" => self.max_retries != 0,
            "rate_limit_per_second" => self.rate_limit_per_second != 0.0,
            "call_policy" => self.call_policy.is_some(),
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
            "call_policy" => self.call_policy.clone_from(&s.call_policy),
            _ => self.target.clone_from(&s.target),
        }
    }
}

#[tonic::async_trait]
impl pb::endpoint_service_server::EndpointService for EndpointApi {
    async fn create_endpoint(
        &self,
        request: Request<pb::CreateEndpointRequest>,
    ) -> Result<Response<pb::Endpoint>, Status> {
        let p = required(request.into_inner().endpoint, "endpoint")?;
        let endpoint = from_proto(p, Uuid::now_v7(), chrono::Utc::now())?;
        endpoint.validate("endpoint", &BodyTemplateSyntax)?;
        self.store.create_endpoint(&endpoint).await?;
        tracing::info!(endpoint_id = %endpoint.id, name = %endpoint.name, "endpoint created");
        Ok(Response::new(to_masked_proto(endpoint)))
    }

    async fn get_endpoint(
        &self,
        request: Request<pb::GetEndpointRequest>,
    ) -> Result<Response<pb::Endpoint>, Status> {
        let r = reference(&request.into_inner().endpoint, "endpoint")?;
        Ok(Response::new(to_masked_proto(
            self.store.get_endpoint(&r).await?,
        )))
    }

    async fn list_endpoints(
        &self,
        request: Request<pb::ListEndpointsRequest>,
    ) -> Result<Response<pb::ListEndpointsResponse>, Status> {
        let r = request.into_inner();
        let page = self
            .store
            .list_endpoints(PageRequest::parse(r.page_size, &r.page_token)?)
            .await?;
        Ok(Response::new(pb::ListEndpointsResponse {
            next_page_token: page.next_token(),
            endpoints: page.items.into_iter().map(to_masked_proto).collect(),
        }))
    }

    async fn update_endpoint(
        &self,
        request: Request<pb::UpdateEndpointRequest>,
    ) -> Result<Response<pb::Endpoint>, Status> {
        let r = request.into_inner();
        let p = required(r.endpoint, "endpoint")?;
        let stored = self
            .store
            .get_endpoint(&update_target(&p.id, &p.name, "endpoint")?)
            .await?;
        let merged = mask::apply(to_proto(stored.clone()), &p, r.update_mask.as_ref())?;
        let mut endpoint = from_proto(merged, stored.id, stored.created_at)?;
        endpoint.keep_masked_secrets(&stored)?;
        endpoint.validate("endpoint", &BodyTemplateSyntax)?;
        self.store.update_endpoint(&endpoint).await?;
        Ok(Response::new(to_masked_proto(endpoint)))
    }

    async fn delete_endpoint(
        &self,
        request: Request<pb::DeleteEndpointRequest>,
    ) -> Result<Response<()>, Status> {
        let r = reference(&request.into_inner().endpoint, "endpoint")?;
        let endpoint = self.store.get_endpoint(&r).await?;
        self.store.delete_endpoint(endpoint.id).await?;
        Ok(Response::new(()))
    }
}
