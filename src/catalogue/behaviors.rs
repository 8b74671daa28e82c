//! Behaviours: a name and the metrics that score their tests.

use uuid::Uuid;

use super::{Catalogue, ids, refs};
use crate::domain::{Behavior, GroupDraft, Page, PageRequest, Ref, apply_patch};
use crate::error::Result;

impl Catalogue {
    /// Creates a behaviour; its metrics must exist.
    pub async fn create_behavior(&self, draft: GroupDraft) -> Result<Behavior> {
        let metric_ids = self.metric_ids(&draft.metrics).await?;
        let behavior = Behavior::from_draft(draft, metric_ids, Uuid::now_v7(), chrono::Utc::now())?;
        self.store.create_behavior(&behavior).await?;
        tracing::info!(behavior_id = %behavior.id, name = %behavior.name, "behavior created");
        Ok(behavior)
    }

    /// One behaviour by id or name.
    pub async fn get_behavior(&self, behavior: &Ref) -> Result<Behavior> {
        self.store.get_behavior(behavior).await
    }

    /// A page of behaviours in creation order.
    pub async fn list_behaviors(&self, page: PageRequest) -> Result<Page<Behavior>> {
        self.store.list_behaviors(page).await
    }

    /// Applies the fields of `update` named by `paths` (every set field when empty) to a
    /// behaviour, in one transaction.
    pub async fn update_behavior(
        &self,
        behavior: &Ref,
        mut update: GroupDraft,
        paths: &[String],
    ) -> Result<Behavior> {
        // Resolved first: a change runs inside the transaction and must not wait.
        update.metrics = refs(self.metric_ids(&update.metrics).await?);
        let paths = paths.to_vec();
        let change = move |current: Behavior| {
            let draft = apply_patch(current.to_draft(), &update, &paths)?;
            let metric_ids = ids(&draft.metrics);
            Behavior::from_draft(draft, metric_ids, current.id, current.created_at)
        };
        self.store.update_behavior(behavior, Box::new(change)).await
    }

    /// Deletes a behaviour that no test uses.
    pub async fn delete_behavior(&self, behavior: &Ref) -> Result<()> {
        let behavior = self.store.get_behavior(behavior).await?;
        self.store.delete_behavior(behavior.id).await
    }
}
