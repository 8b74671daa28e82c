//! Endpoints: what tests are run against. Read answers mask secret headers; an update that
//! sends a mask back keeps the stored secret.

use std::sync::Arc;

use uuid::Uuid;

use super::Catalogue;
use crate::domain::{Endpoint, EndpointDraft, Page, PageRequest, Ref, Target, apply_patch};
use crate::endpoint_client::{BodyTemplateSyntax, OutboundPolicy, SecretEnv, check_target_env};
use crate::error::{Error, Result};

impl Catalogue {
    /// Creates an endpoint, its unset settings at their defaults. Returned in clear: callers
    /// mask before answering.
    pub async fn create_endpoint(&self, draft: EndpointDraft) -> Result<Endpoint> {
        let endpoint = Endpoint::from_draft(draft, Uuid::now_v7(), chrono::Utc::now())?;
        endpoint.validate("endpoint", &BodyTemplateSyntax)?;
        check_env(&endpoint, &self.secret_env)?;
        check_outbound(&endpoint, &self.outbound)?;
        self.store.create_endpoint(&endpoint).await?;
        tracing::info!(endpoint_id = %endpoint.id, name = %endpoint.name, "endpoint created");
        Ok(endpoint)
    }

    /// One endpoint by id or name (secrets in clear).
    pub async fn get_endpoint(&self, endpoint: &Ref) -> Result<Endpoint> {
        self.store.get_endpoint(endpoint).await
    }

    /// A page of endpoints in creation order (secrets in clear).
    pub async fn list_endpoints(&self, page: PageRequest) -> Result<Page<Endpoint>> {
        self.store.list_endpoints(page).await
    }

    /// Applies the fields of `update` named by `paths` (every set field when empty) to an
    /// endpoint, in one transaction. Header values sent as the mask keep their stored secret.
    pub async fn update_endpoint(
        &self,
        endpoint: &Ref,
        update: EndpointDraft,
        paths: &[String],
    ) -> Result<Endpoint> {
        let paths = paths.to_vec();
        let (secret_env, outbound) = (Arc::clone(&self.secret_env), Arc::clone(&self.outbound));
        let change = move |current: Endpoint| {
            let draft = apply_patch(current.to_draft(), &update, &paths)?;
            let mut endpoint = Endpoint::from_draft(draft, current.id, current.created_at)?;
            endpoint.keep_masked_secrets(&current)?;
            endpoint.validate("endpoint", &BodyTemplateSyntax)?;
            check_env(&endpoint, &secret_env)?;
            check_outbound(&endpoint, &outbound)?;
            Ok(endpoint)
        };
        self.store.update_endpoint(endpoint, Box::new(change)).await
    }

    /// Deletes an endpoint; its runs stay.
    pub async fn delete_endpoint(&self, endpoint: &Ref) -> Result<()> {
        let endpoint = self.store.get_endpoint(endpoint).await?;
        self.store.delete_endpoint(endpoint.id).await
    }
}

/// Refuses an endpoint that refers to an environment variable the server does not allow, or
/// whose reference is malformed (it would fail every call).
pub(super) fn check_env(endpoint: &Endpoint, allowed: &SecretEnv) -> Result<()> {
    check_target_env(&endpoint.target, allowed)
        .map_err(|(field, reason)| Error::invalid(format!("endpoint.{field}"), reason))
}

/// Refuses an endpoint whose URL is an address the outbound policy refuses: every call would be
/// blocked.
pub(super) fn check_outbound(endpoint: &Endpoint, outbound: &OutboundPolicy) -> Result<()> {
    let (url, field) = match &endpoint.target {
        Target::Http(http) => (&http.url, "endpoint.http.url"),
        Target::OpenAiChat(chat) => (&chat.base_url, "endpoint.openai_chat.base_url"),
    };
    outbound
        .check_url_text(url)
        .map_err(|reason| Error::invalid(field, reason))
}
