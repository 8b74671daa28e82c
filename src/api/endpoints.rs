//! `EndpointService`: proto <-> domain conversion of endpoints (secrets masked on the way out)
//! and their CRUD.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::{mask_paths, non_empty, reference, required, timestamp, update_target};
use crate::catalogue::Catalogue;
use crate::domain::{
    CallPolicy, Endpoint, EndpointDraft, HttpTarget, OpenAiChatTarget, PageRequest, Pricing,
    ResponseMapping, Target,
};
use crate::proto::v1 as pb;
use crate::proto::v1::endpoint::Target as PbTarget;

/// The gRPC `EndpointService`.
pub struct EndpointApi {
    catalogue: Arc<Catalogue>,
}

impl EndpointApi {
    /// A service over the catalogue.
    pub fn new(catalogue: Arc<Catalogue>) -> Self {
        EndpointApi { catalogue }
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
                input_tokens: h.response_mapping.input_tokens.unwrap_or_default(),
                output_tokens: h.response_mapping.output_tokens.unwrap_or_default(),
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
        pricing: Some(pb::Pricing {
            input_usd_per_million_tokens: e.pricing.input_usd_per_million_tokens,
            output_usd_per_million_tokens: e.pricing.output_usd_per_million_tokens,
        }),
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

/// A call policy from the API (0 durations are filled in by the domain).
fn policy_from_proto(p: pb::CallPolicy) -> CallPolicy {
    CallPolicy {
        backoff_base_ms: p.backoff_base_ms,
        backoff_max_ms: p.backoff_max_ms,
        max_retry_wait_ms: p.max_retry_wait_ms,
        retry_budget_ms: p.retry_budget_ms,
        requests_per_minute: p.requests_per_minute,
        adaptive_concurrency: p.adaptive_concurrency,
    }
}

/// An endpoint as read RPCs answer it.
fn to_masked_proto(e: Endpoint) -> pb::Endpoint {
    to_proto(e.masked())
}

/// An endpoint from the API as a draft (the domain fills in defaults).
pub(super) fn from_proto(p: pb::Endpoint) -> EndpointDraft {
    let target = p.target.map(|target| match target {
        PbTarget::Http(h) => {
            let mapping = h.response_mapping.unwrap_or_default();
            Target::Http(HttpTarget {
                url: h.url,
                method: h.method,
                headers: h.headers.into_iter().collect(),
                body_template: h.body_template,
                response_mapping: ResponseMapping {
                    output: mapping.output,
                    context: non_empty(mapping.context),
                    metadata: non_empty(mapping.metadata),
                    input_tokens: non_empty(mapping.input_tokens),
                    output_tokens: non_empty(mapping.output_tokens),
                },
                timeout_ms: h.timeout_ms,
            })
        }
        PbTarget::OpenaiChat(c) => Target::OpenAiChat(OpenAiChatTarget {
            base_url: c.base_url,
            model: c.model,
            system_prompt: non_empty(c.system_prompt),
            api_key_env: non_empty(c.api_key_env),
            timeout_ms: c.timeout_ms,
        }),
    });
    EndpointDraft {
        name: p.name,
        description: p.description,
        target,
        max_concurrency: p.max_concurrency,
        max_retries: p.max_retries,
        rate_limit_per_second: p.rate_limit_per_second,
        call_policy: p.call_policy.map(policy_from_proto),
        pricing: p.pricing.map(|pricing| Pricing {
            input_usd_per_million_tokens: pricing.input_usd_per_million_tokens,
            output_usd_per_million_tokens: pricing.output_usd_per_million_tokens,
        }),
    }
}

#[tonic::async_trait]
impl pb::endpoint_service_server::EndpointService for EndpointApi {
    async fn create_endpoint(
        &self,
        request: Request<pb::CreateEndpointRequest>,
    ) -> Result<Response<pb::Endpoint>, Status> {
        let draft = from_proto(required(request.into_inner().endpoint, "endpoint")?);
        let endpoint = self.catalogue.create_endpoint(draft).await?;
        Ok(Response::new(to_masked_proto(endpoint)))
    }

    async fn get_endpoint(
        &self,
        request: Request<pb::GetEndpointRequest>,
    ) -> Result<Response<pb::Endpoint>, Status> {
        let r = reference(&request.into_inner().endpoint, "endpoint")?;
        Ok(Response::new(to_masked_proto(
            self.catalogue.get_endpoint(&r).await?,
        )))
    }

    async fn list_endpoints(
        &self,
        request: Request<pb::ListEndpointsRequest>,
    ) -> Result<Response<pb::ListEndpointsResponse>, Status> {
        let r = request.into_inner();
        let page = self
            .catalogue
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
        let target = update_target(&p.id, &p.name, "endpoint")?;
        let endpoint = self
            .catalogue
            .update_endpoint(&target, from_proto(p), &mask_paths(r.update_mask))
            .await?;
        Ok(Response::new(to_masked_proto(endpoint)))
    }

    async fn delete_endpoint(
        &self,
        request: Request<pb::DeleteEndpointRequest>,
    ) -> Result<Response<()>, Status> {
        let r = reference(&request.into_inner().endpoint, "endpoint")?;
        self.catalogue.delete_endpoint(&r).await?;
        Ok(Response::new(()))
    }
}
