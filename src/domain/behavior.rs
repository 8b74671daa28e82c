use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Timestamp;
use super::metric::validate_name;
use crate::error::Result;

/// A behaviour and the metrics that score its tests (the lowest tier of the hierarchy).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Behavior {
    /// UUID.
    pub id: Uuid,
    /// Unique name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Metrics of the behaviour, in the order given.
    pub metric_ids: Vec<Uuid>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}

impl Behavior {
    /// Checks the behaviour's own fields (metric references are checked when resolved).
    pub fn validate(&self, prefix: &str) -> Result<()> {
        validate_name(&self.name, &format!("{prefix}.name"))
    }
}
