//! The parts of run requests that choose and label runs: labels, `TestFilter` and `Shard` from
//! proto to domain, checked field by field.

use std::collections::HashMap;

use super::{references, uuid};
use crate::domain::{Labels, Shard, TestFilter, validate_labels};
use crate::engine::Selection;
use crate::error::Result;
use crate::proto::v1 as pb;

/// Labels of a request under `field`, checked.
pub(super) fn labels(given: HashMap<String, String>, field: &str) -> Result<Labels> {
    let labels: Labels = given.into_iter().collect();
    validate_labels(&labels, field)?;
    Ok(labels)
}

/// A request's filter (under `filter`) and shard (under `shard`, `None` for Rescore, which has
/// none).
pub(super) fn selection(
    filter: Option<pb::TestFilter>,
    shard: Option<pb::Shard>,
) -> Result<Selection> {
    let filter = filter.unwrap_or_default();
    let test_ids = filter
        .test_ids
        .iter()
        .enumerate()
        .map(|(i, id)| uuid(id, &format!("filter.test_ids[{i}]")))
        .collect::<Result<_>>()?;
    let shard = match shard {
        Some(s) => Shard::new(s.index, s.count, "shard")?,
        None => None,
    };
    Ok(Selection {
        behaviors: references(&filter.behaviors, "filter.behaviors")?,
        filter: TestFilter {
            categories: filter.categories.into_iter().collect(),
            topics: filter.topics.into_iter().collect(),
            behavior_ids: Default::default(),
            test_ids,
            metadata: filter.metadata.into_iter().collect(),
        },
        shard,
    })
}
