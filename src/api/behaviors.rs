//! `BehaviorService`: proto <-> domain conversion of behaviours and their CRUD.

use std::sync::Arc;

use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{mask_paths, reference, references, required, timestamp, update_target};
use crate::catalogue::Catalogue;
use crate::domain::{Behavior, GroupDraft, PageRequest};
use crate::error::Result;
use crate::proto::v1 as pb;

/// The gRPC `BehaviorService`.
pub struct BehaviorApi {
    catalogue: Arc<Catalogue>,
}

impl BehaviorApi {
    /// A service over the catalogue.
    pub fn new(catalogue: Arc<Catalogue>) -> Self {
        BehaviorApi { catalogue }
    }
}

/// A behaviour from the API as a draft.
pub(super) fn from_proto(p: pb::Behavior) -> Result<GroupDraft> {
    Ok(GroupDraft {
        metrics: references(&p.metrics, "behavior.metrics")?,
        name: p.name,
        description: p.description,
    })
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

#[tonic::async_trait]
impl pb::behavior_service_server::BehaviorService for BehaviorApi {
    async fn create_behavior(
        &self,
        request: Request<pb::CreateBehaviorRequest>,
    ) -> Result<Response<pb::Behavior>, Status> {
        let draft = from_proto(required(request.into_inner().behavior, "behavior")?)?;
        let behavior = self.catalogue.create_behavior(draft).await?;
        Ok(Response::new(to_proto(behavior)))
    }

    async fn get_behavior(
        &self,
        request: Request<pb::GetBehaviorRequest>,
    ) -> Result<Response<pb::Behavior>, Status> {
        let r = reference(&request.into_inner().behavior, "behavior")?;
        Ok(Response::new(to_proto(
            self.catalogue.get_behavior(&r).await?,
        )))
    }

    async fn list_behaviors(
        &self,
        request: Request<pb::ListBehaviorsRequest>,
    ) -> Result<Response<pb::ListBehaviorsResponse>, Status> {
        let r = request.into_inner();
        let page = self
            .catalogue
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
        let target = update_target(&p.id, &p.name, "behavior")?;
        let behavior = self
            .catalogue
            .update_behavior(&target, from_proto(p)?, &mask_paths(r.update_mask))
            .await?;
        Ok(Response::new(to_proto(behavior)))
    }

    async fn delete_behavior(
        &self,
        request: Request<pb::DeleteBehaviorRequest>,
    ) -> Result<Response<()>, Status> {
        let r = reference(&request.into_inner().behavior, "behavior")?;
        self.catalogue.delete_behavior(&r).await?;
        Ok(Response::new(()))
    }
}
