use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Timestamp;
use super::metric::validate_name;
use crate::error::{Error, Result};

/// A test set: its tests live apart (see [`Test`]); its metrics are the middle tier.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TestSet {
    /// UUID.
    pub id: Uuid,
    /// Unique name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Metrics of the test set, in the order added.
    pub metric_ids: Vec<Uuid>,
    /// Number of tests (filled in by the store when read).
    #[serde(skip)]
    pub test_count: u32,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}

impl TestSet {
    /// Checks the test set's own fields.
    pub fn validate(&self, prefix: &str) -> Result<()> {
        validate_name(&self.name, &format!("{prefix}.name"))
    }
}

/// One test of a test set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Test {
    /// UUID.
    pub id: Uuid,
    /// The test set holding it.
    pub test_set_id: Uuid,
    /// Prompt sent to the endpoint.
    pub prompt: String,
    /// Expected answer.
    pub expected_response: Option<String>,
    /// Behaviour checked.
    pub behavior_id: Option<Uuid>,
    /// Free label.
    pub category: String,
    /// Free label.
    pub topic: String,
    /// Extra data for templates.
    pub metadata: BTreeMap<String, String>,
    /// When it was added.
    pub created_at: Timestamp,
}

impl Test {
    /// Checks the test's fields; `field` is its path in the request (e.g. `tests[3]`).
    pub fn validate(&self, field: &str) -> Result<()> {
        if self.prompt.trim().is_empty() {
            return Err(Error::invalid(format!("{field}.prompt"), "is required"));
        }
        Ok(())
    }
}
