//! Choosing which tests a run takes: a [`TestFilter`] over the tests' fields and a [`Shard`], a
//! stable split by test id so that several CI jobs together run each chosen test once.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use super::Test;
use crate::error::{Error, Result};

/// Which tests run. Within a field any value matches; across fields every field that is set
/// must match; an empty filter matches every test.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TestFilter {
    /// Categories, any of which matches.
    pub categories: BTreeSet<String>,
    /// Topics, any of which matches.
    pub topics: BTreeSet<String>,
    /// Behaviour ids, any of which matches.
    pub behavior_ids: BTreeSet<Uuid>,
    /// Test ids, any of which matches.
    pub test_ids: BTreeSet<Uuid>,
    /// Metadata pairs, every one of which the test must have (a map holds one value per key,
    /// so "any value" of a key is that value).
    pub metadata: BTreeMap<String, String>,
}

/// What a filter looks at of one test. A rescore's items are stored results, whose test may be
/// gone from the set: then it has only its id and behaviour.
#[derive(Clone, Copy, Debug)]
pub struct TestFacts<'a> {
    /// The test's id.
    pub id: Uuid,
    /// Its behaviour.
    pub behavior_id: Option<Uuid>,
    /// The test as it is in the set now, if it still is.
    pub test: Option<&'a Test>,
}

impl<'a> From<&'a Test> for TestFacts<'a> {
    fn from(test: &'a Test) -> Self {
        TestFacts {
            id: test.id,
            behavior_id: test.behavior_id,
            test: Some(test),
        }
    }
}

impl TestFilter {
    /// Whether it chooses every test.
    pub fn is_empty(&self) -> bool {
        self == &TestFilter::default()
    }

    /// Whether the filter chooses the test.
    pub fn matches(&self, facts: TestFacts<'_>) -> bool {
        let any = |set: &BTreeSet<String>, pick: fn(&Test) -> &String| {
            set.is_empty() || facts.test.is_some_and(|t| set.contains(pick(t)))
        };
        (self.test_ids.is_empty() || self.test_ids.contains(&facts.id))
            && (self.behavior_ids.is_empty()
                || facts
                    .behavior_id
                    .is_some_and(|b| self.behavior_ids.contains(&b)))
            && any(&self.categories, |t| &t.category)
            && any(&self.topics, |t| &t.topic)
            && (self.metadata.is_empty()
                || facts.test.is_some_and(|t| {
                    self.metadata
                        .iter()
                        .all(|(k, v)| t.metadata.get(k) == Some(v))
                }))
    }
}

/// One of `count` parts of a stable split of the tests by id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// This part, 0-based, below `count`.
    pub index: u32,
    /// Number of parts, at least 1.
    pub count: u32,
}

impl Shard {
    /// A shard as a request gives it under `field`; `None` when `count` is 0 (no sharding).
    pub fn new(index: u32, count: u32, field: &str) -> Result<Option<Shard>> {
        if count == 0 {
            if index != 0 {
                return Err(Error::invalid(
                    format!("{field}.count"),
                    format!("is 0 (no sharding) but {field}.index is {index}: set the count too"),
                ));
            }
            return Ok(None);
        }
        if index >= count {
            return Err(Error::invalid(
                format!("{field}.index"),
                format!("{index} is not below {field}.count {count} (indexes are 0-based)"),
            ));
        }
        Ok(Some(Shard { index, count }))
    }

    /// Whether the test with this id belongs to this shard: the shard of a test depends on its
    /// id alone, so it never moves when tests are added or removed, and the shards partition
    /// any set of tests.
    pub fn holds(&self, test_id: Uuid) -> bool {
        shard_of(test_id, self.count) == self.index
    }
}

/// The shard, out of `count`, of a test: FNV-1a over the id's bytes, modulo `count`. Written
/// out rather than `std`'s hasher, whose output may change between Rust releases: a test must
/// keep its shard across server versions while CI jobs of one pipeline run.
fn shard_of(test_id: Uuid, count: u32) -> u32 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let hash = test_id
        .as_bytes()
        .iter()
        .fold(OFFSET, |h, b| (h ^ u64::from(*b)).wrapping_mul(PRIME));
    (hash % u64::from(count)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test(category: &str, topic: &str, meta: &[(&str, &str)]) -> Test {
        Test {
            id: Uuid::now_v7(),
            test_set_id: Uuid::nil(),
            prompt: "p".into(),
            expected_response: None,
            behavior_id: None,
            category: category.into(),
            topic: topic.into(),
            metadata: meta
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            created_at: chrono::Utc::now(),
        }
    }

    fn set(values: &[&str]) -> BTreeSet<String> {
        values.iter().map(|v| v.to_string()).collect()
    }

    #[test]
    fn any_value_within_a_field_all_fields_across() {
        let geo = test("geo", "europe", &[("lang", "en")]);
        let math = test("math", "europe", &[("lang", "fr")]);
        let filter = TestFilter {
            categories: set(&["geo", "math"]),
            topics: set(&["europe"]),
            ..TestFilter::default()
        };
        assert!(filter.matches((&geo).into()) && filter.matches((&math).into()));
        let filter = TestFilter {
            categories: set(&["geo", "math"]),
            metadata: [("lang".to_string(), "fr".to_string())].into(),
            ..TestFilter::default()
        };
        assert!(!filter.matches((&geo).into()));
        assert!(filter.matches((&math).into()));
        let by_id = TestFilter {
            test_ids: [geo.id].into(),
            ..TestFilter::default()
        };
        assert!(by_id.matches((&geo).into()) && !by_id.matches((&math).into()));
        assert!(TestFilter::default().matches((&geo).into()));
    }

    #[test]
    fn a_test_gone_from_the_set_matches_only_by_id_and_behaviour() {
        let behavior = Uuid::now_v7();
        let gone = TestFacts {
            id: Uuid::now_v7(),
            behavior_id: Some(behavior),
            test: None,
        };
        let by_behavior = TestFilter {
            behavior_ids: [behavior].into(),
            ..TestFilter::default()
        };
        assert!(by_behavior.matches(gone));
        let by_category = TestFilter {
            categories: set(&["geo"]),
            ..TestFilter::default()
        };
        assert!(!by_category.matches(gone));
    }

    #[test]
    fn shards_partition_the_tests_and_spread_them() {
        let ids: Vec<Uuid> = (0..1000).map(|_| Uuid::now_v7()).collect();
        let count = 4;
        let shards: Vec<Shard> = (0..count)
            .map(|i| Shard::new(i, count, "shard").unwrap().unwrap())
            .collect();
        for id in &ids {
            assert_eq!(shards.iter().filter(|s| s.holds(*id)).count(), 1);
        }
        for shard in &shards {
            let size = ids.iter().filter(|id| shard.holds(**id)).count();
            // 250 expected; a fair split stays far inside these bounds.
            assert!((150..350).contains(&size), "shard {shard:?} holds {size}");
        }
    }

    #[test]
    fn a_test_keeps_its_shard() {
        // Pinned: a change of the hash would move tests between the jobs of one pipeline.
        let id = Uuid::parse_str("01a217c4-6ff0-77c7-9717-fdaef9e565a0").unwrap();
        assert_eq!(shard_of(id, 1), 0);
        assert_eq!(shard_of(id, 7), shard_of(id, 7));
        let pinned: Vec<u32> = (1..=5).map(|count| shard_of(id, count)).collect();
        assert_eq!(pinned, PINNED);
    }

    const PINNED: [u32; 5] = [0, 0, 1, 2, 3];

    #[test]
    fn bad_shards_name_the_field() {
        assert_eq!(Shard::new(0, 0, "shard").unwrap(), None);
        let e = Shard::new(4, 4, "shard").unwrap_err();
        assert!(e.to_string().starts_with("shard.index: 4"), "{e}");
        let e = Shard::new(1, 0, "shard").unwrap_err();
        assert!(e.to_string().starts_with("shard.count"), "{e}");
    }
}
