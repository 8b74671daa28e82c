//! How domain records map to rows, whatever the backend: each record is one row of key columns
//! (for lookups, uniqueness, filters and ordering) plus its whole value as JSON in `body`.

use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::domain::{
    Behavior, Endpoint, Labels, Metric, RunKind, Test, TestResult, TestRun, TestSet, Timestamp,
};
use crate::error::Error;

/// Most bytes of stored records (their JSON, larger than their protobuf form) in one page of a
/// list, so that a page stays below gRPC's usual 4 MiB message limit; a page of one record may
/// be larger, up to about 3.1 MiB (see `crate::domain::MAX_STORED_OUTPUT_BYTES`).
pub(super) const MAX_PAGE_BYTES: usize = 2 * 1024 * 1024;

/// Bind parameters per statement of a bulk insert, below SQLite's limit (32766) and
/// PostgreSQL's (65535).
pub(super) const MAX_BINDS_PER_STATEMENT: usize = 8000;

/// A table and how it is named in errors.
#[derive(Clone, Copy, Debug)]
pub(super) struct Table {
    /// SQL name.
    pub(super) name: &'static str,
    /// Kind of resource, for `NotFound` and `AlreadyExists`.
    pub(super) kind: &'static str,
    /// Key columns written beside `body`, in the order of [`Stored::keys`].
    pub(super) columns: &'static [&'static str],
    /// SQL expression over the row `t` selected as `extra` (see [`Stored::with_extra`]).
    pub(super) extra: &'static str,
}

pub(super) const METRICS: Table = Table {
    name: "metrics",
    kind: "metric",
    columns: &["id", "name"],
    extra: "CAST(0 AS BIGINT)",
};
pub(super) const BEHAVIORS: Table = Table {
    name: "behaviors",
    kind: "behavior",
    columns: &["id", "name"],
    extra: "CAST(0 AS BIGINT)",
};
pub(super) const ENDPOINTS: Table = Table {
    name: "endpoints",
    kind: "endpoint",
    columns: &["id", "name"],
    extra: "CAST(0 AS BIGINT)",
};
pub(super) const TEST_SETS: Table = Table {
    name: "test_sets",
    kind: "test set",
    columns: &["id", "name"],
    extra: "(SELECT COUNT(*) FROM tests c WHERE c.test_set_id = t.id)",
};
pub(super) const TESTS: Table = Table {
    name: "tests",
    kind: "test",
    columns: &["id", "test_set_id", "behavior_id"],
    extra: "CAST(0 AS BIGINT)",
};
pub(super) const TEST_RUNS: Table = Table {
    name: "test_runs",
    kind: "test run",
    columns: &[
        "id",
        "test_set_id",
        "endpoint_id",
        "status",
        "kind",
        "finished_at",
    ],
    extra: "CAST(0 AS BIGINT)",
};
pub(super) const TEST_RESULTS: Table = Table {
    name: "test_results",
    kind: "test result",
    columns: &["id", "run_id", "test_id", "repetition", "status"],
    extra: "CAST(0 AS BIGINT)",
};

/// A domain type stored as one row: key columns plus the JSON `body`.
pub(super) trait Stored: Serialize + DeserializeOwned + Send + Sync {
    /// Where it is stored.
    const TABLE: Table;
    /// Its id.
    fn id(&self) -> Uuid;
    /// Its unique name, for types that have one.
    fn name(&self) -> Option<&str> {
        None
    }
    /// Values of `TABLE.columns`, in that order.
    fn keys(&self) -> Vec<Bind> {
        vec![text(self.id())]
    }
    /// Fills in what is computed when read rather than stored (a test set's test count).
    fn with_extra(self, _extra: i64) -> Self {
        self
    }
}

/// A catalogue type: unique name, and maybe metrics that must exist.
pub(super) trait Named: Stored {
    /// Metrics it names.
    fn metric_ids(&self) -> &[Uuid] {
        &[]
    }
}

/// Implements [`Stored`] and [`Named`] for a catalogue type (id and name columns), naming the
/// field with its metrics if it has one, and any further [`Stored`] items after a `;`.
macro_rules! catalogue {
    ($type:ty, $table:expr $(, $metrics:ident)? $(; $($item:item)*)?) => {
        impl Stored for $type {
            const TABLE: Table = $table;
            fn id(&self) -> Uuid {
                self.id
            }
            fn name(&self) -> Option<&str> {
                Some(&self.name)
            }
            fn keys(&self) -> Vec<Bind> {
                vec![text(self.id), text(&self.name)]
            }
            $($($item)*)?
        }
        impl Named for $type {
            $(fn metric_ids(&self) -> &[Uuid] {
                &self.$metrics
            })?
        }
    };
}

catalogue!(Metric, METRICS);
catalogue!(Behavior, BEHAVIORS, metric_ids);
catalogue!(Endpoint, ENDPOINTS);
catalogue!(TestSet, TEST_SETS, metric_ids;
    fn with_extra(mut self, test_count: i64) -> Self {
        self.test_count = u32::try_from(test_count).unwrap_or(u32::MAX);
        self
    }
);

impl Stored for Test {
    const TABLE: Table = TESTS;
    fn id(&self) -> Uuid {
        self.id
    }
    fn keys(&self) -> Vec<Bind> {
        vec![
            text(self.id),
            text(self.test_set_id),
            Bind::Text(self.behavior_id.map(|id| id.to_string())),
        ]
    }
}

impl Stored for TestRun {
    const TABLE: Table = TEST_RUNS;
    fn id(&self) -> Uuid {
        self.id
    }
    fn keys(&self) -> Vec<Bind> {
        let kind = match self.kind {
            RunKind::Execution => "execution",
            RunKind::Rescore => "rescore",
        };
        vec![
            text(self.id),
            text(self.test_set_id),
            text(self.endpoint_id),
            text(self.status.as_str()),
            text(kind),
            Bind::Int(self.finished_at.map(|t| t.timestamp_micros())),
        ]
    }
}

impl Stored for TestResult {
    const TABLE: Table = TEST_RESULTS;
    fn id(&self) -> Uuid {
        self.id
    }
    fn keys(&self) -> Vec<Bind> {
        vec![
            text(self.id),
            text(self.run_id),
            text(self.test_id),
            Bind::Int(Some(i64::from(self.repetition))),
            text(self.status.as_str()),
        ]
    }
}

/// A bind parameter of a statement built at run time.
#[derive(Clone, Debug)]
pub(super) enum Bind {
    /// TEXT or NULL.
    Text(Option<String>),
    /// INTEGER or NULL.
    Int(Option<i64>),
}

pub(super) fn text(value: impl ToString) -> Bind {
    Bind::Text(Some(value.to_string()))
}

/// One condition of a list over the row `t`: SQL with `?` placeholders and their binds.
pub(super) struct Condition {
    pub(super) sql: String,
    pub(super) binds: Vec<Bind>,
}

impl Condition {
    /// `t.<column> = value`.
    pub(super) fn eq(column: &str, value: impl ToString) -> Condition {
        Condition {
            sql: format!("t.{column} = ?"),
            binds: vec![text(value)],
        }
    }

    /// `t.<column>` is one of `values` (never true for none).
    pub(super) fn any<'a>(column: &str, values: impl Iterator<Item = &'a str>) -> Condition {
        let binds: Vec<Bind> = values.map(text).collect();
        let marks = vec!["?"; binds.len()].join(", ");
        Condition {
            sql: if binds.is_empty() {
                "1 = 0".to_string()
            } else {
                format!("t.{column} IN ({marks})")
            },
            binds,
        }
    }

    /// A run that ended before `time`.
    pub(super) fn finished_before(time: Timestamp) -> Condition {
        Condition {
            sql: "t.finished_at < ?".to_string(),
            binds: vec![Bind::Int(Some(time.timestamp_micros()))],
        }
    }

    /// A run that carries every one of `labels`: one lookup per label in `run_labels`.
    pub(super) fn labels(labels: &Labels) -> impl Iterator<Item = Condition> + '_ {
        labels.iter().map(|(key, value)| Condition {
            sql: "EXISTS (SELECT 1 FROM run_labels l WHERE l.run_id = t.id AND l.key = ? \
                  AND l.value = ?)"
                .to_string(),
            binds: vec![text(key), text(value)],
        })
    }

    /// Every one of `conditions`, as SQL ending in ` AND ` (for what follows) and the binds.
    pub(super) fn all(conditions: &[Condition]) -> (String, Vec<Bind>) {
        let mut sql = String::new();
        let mut binds = Vec::new();
        for condition in conditions {
            sql.push_str(&condition.sql);
            sql.push_str(" AND ");
            binds.extend(condition.binds.iter().cloned());
        }
        (sql, binds)
    }
}

/// `records` cut into runs whose lengths are powers of two of at most `max` rows, largest first:
/// an insert of n rows is its own SQL text, and with few distinct lengths the connection's
/// statement cache keeps every one of them prepared whatever the batch sizes.
pub(super) fn power_of_two_chunks<T>(mut records: &[T], max: usize) -> impl Iterator<Item = &[T]> {
    let largest = if max == 0 { 1 } else { 1 << max.ilog2() };
    std::iter::from_fn(move || {
        if records.is_empty() {
            return None;
        }
        let len = largest.min(1 << records.len().ilog2());
        let (chunk, rest) = records.split_at(len);
        records = rest;
        Some(chunk)
    })
}

/// Bodies are written and read as JSON; one that does not round-trip is a bug or a corrupt row.
impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::internal_from("stored JSON does not decode", e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_powers_of_two_largest_first_and_cover_everything() {
        let records: Vec<u32> = (0..300).collect();
        let chunks: Vec<&[u32]> = power_of_two_chunks(&records, 100).collect();
        let lengths: Vec<usize> = chunks.iter().map(|c| c.len()).collect();
        assert_eq!(lengths, vec![64, 64, 64, 64, 32, 8, 4]);
        assert_eq!(chunks.concat(), records);
        assert_eq!(power_of_two_chunks(&[1], 0).count(), 1);
        assert_eq!(power_of_two_chunks::<u32>(&[], 8).count(), 0);
    }
}
