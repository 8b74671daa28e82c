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
    /// Stable key within its test set (empty: none); see [`Test::match_key`].
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub key: String,
}

impl Test {
    /// What matches the test with a suite's: its key, else its prompt.
    pub fn match_key(&self) -> &str {
        if self.key.is_empty() {
            &self.prompt
        } else {
            &self.key
        }
    }

    /// Whether two tests say the same (ids, test set and times aside).
    pub fn same_content(&self, other: &Test) -> bool {
        self.prompt == other.prompt
            && self.expected_response == other.expected_response
            && self.behavior_id == other.behavior_id
            && self.category == other.category
            && self.topic == other.topic
            && self.metadata == other.metadata
            && self.key == other.key
    }

    /// Checks the test's fields; `field` is its path in the request (e.g. `tests[3]`).
    pub fn validate(&self, field: &str) -> Result<()> {
        if self.prompt.trim().is_empty() {
            return Err(Error::invalid(format!("{field}.prompt"), "is required"));
        }
        Ok(())
    }
}
