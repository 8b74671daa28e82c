//! `BehaviorService`: proto <-> domain conversion of behaviours and their CRUD.

use std::sync::Arc;

use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::mask;
use super::{metric_ids, reference, required, timestamp, update_target};
use crate::domain::{Behavior, PageRequest, Timestamp};
use crate::error::Result;
use crate::proto::v1 as pb;
use crate::store::Store;

/// The gRPC `BehaviorService`.
pub struct BehaviorApi {
    store: Arc<dyn Store>,
}

impl BehaviorApi {
    /// A service over `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        BehaviorApi { store }
    }

    /// A behaviour from the API: metric references resolved, validated.
    async fn to_domain(
        &self,
        p: pb::Behavior,
        id: Uuid,
        created_at: Timestamp,
    ) -> Result<Behavior> {
        let metric_ids = metric_ids(&*self.store, &p.metrics, "behavior.metrics").await?;
        let behavior = Behavior {
            id,
            name: p.name,
            description: p.description,
            metric_ids,
            created_at,
            updated_at: chrono::Utc::now(),
        };
        behavior.validate("behavior")?;
        Ok(behavior)
    }
}

fn to_proto(b: Behavior) -> pb::Behavior {
    pb::Behavior {
        id: b.id.to_string(),
        name: b.name,
        description: b.description,
        metrics: b.metric_ids.iter().map(Uuid::to_string).collect(),
        created_at: Some(timestamp(b.created_at)),
        updated_at: Some(timestamp(b.updated_at)),
    }
}

mask::named_with_metrics!(pb::Behavior);

#[tonic::async_trait]
impl pb::behavior_service_server::BehaviorService for BehaviorApi {
    async fn create_behavior(
        &self,
        request: Request<pb::CreateBehaviorRequest>,
    ) -> Result<Response<pb::Behavior>, Status> {
        let p = required(request.into_inner().behavior, "behavior")?;
        let behavior = self
            .to_domain(p, Uuid::now_v7(), chrono::Utc::now())
            .await?;
        self.store.create_behavior(&behavior).await?;
        Ok(Response::new(to_proto(behavior)))
    }

    async fn get_behavior(
        &self,
        request: Request<pb::GetBehaviorRequest>,
    ) -> Result<Response<pb::Behavior>, Status> {
        let r = reference(&request.into_inner().behavior, "behavior")?;
        Ok(Response::new(to_proto(self.store.get_behavior(&r).await?)))
    }

    async fn list_behaviors(
        &self,
        request: Request<pb::ListBehaviorsRequest>,
    ) -> Result<Response<pb::ListBehaviorsResponse>, Status> {
        let r = request.into_inner();
        let page = self
            .store
            .list_behaviors(PageRequest::parse(r.page_size, &r.page_token)?)
            .await?;
        Ok(Response::new(pb::ListBehaviorsResponse {
            next_page_token: page.next_token(),
            behaviors: page.items.into_iter().map(to_proto).collect(),
        }))
    }

    async fn update_behavior(
        &self,
        request: Request<pb::UpdateBehaviorRequest>,
    ) -> Result<Response<pb::Behavior>, Status> {
        let r = request.into_inner();
        let p = required(r.behavior, "behavior")?;
        let current = self
            .store
            .get_behavior(&update_target(&p.id, &p.name, "behavior")?)
            .await?;
        let (id, created_at) = (current.id, current.created_at);
        let merged = mask::apply(to_proto(current), &p, r.update_mask.as_ref())?;
        let behavior = self.to_domain(merged, id, created_at).await?;
        self.store.update_behavior(&behavior).await?;
        Ok(Response::new(to_proto(behavior)))
    }

    async fn delete_behavior(
        &self,
        request: Request<pb::DeleteBehaviorRequest>,
    ) -> Result<Response<()>, Status> {
        let r = reference(&request.into_inner().behavior, "behavior")?;
        let behavior = self.store.get_behavior(&r).await?;
        self.store.delete_behavior(behavior.id).await?;
        Ok(Response::new(()))
    }
}
