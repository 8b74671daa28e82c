//! gRPC services: each converts proto <-> domain, calls the [catalogue](crate::catalogue) or the
//! [engine](crate::engine), and maps [`crate::error::Error`] to `Status` (in [`status`]). No
//! business rule lives here.

mod behaviors;
mod comparison;
#[cfg(test)]
pub(crate) mod decoding_props;
mod endpoints;
mod execution;
mod metrics;
pub mod request_limit;
mod selection;
mod status;
mod test_sets;

pub use behaviors::BehaviorApi;
pub use endpoints::EndpointApi;
pub use execution::ExecutionApi;
pub use metrics::MetricApi;
pub use test_sets::TestSetApi;

use uuid::Uuid;

use crate::domain::{Ref, Timestamp};
use crate::error::{Error, Result};

/// A domain time as a protobuf timestamp.
fn timestamp(t: Timestamp) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

/// A required reference field (id or name).
fn reference(value: &str, field: &str) -> Result<Ref> {
    if value.trim().is_empty() {
        return Err(Error::invalid(field, "is required: give an id or a name"));
    }
    Ok(Ref::parse(value))
}

/// Every entry of a repeated reference field.
fn references(values: &[String], field: &str) -> Result<Vec<Ref>> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| reference(v, &format!("{field}[{i}]")))
        .collect()
}

/// The paths of an update mask; none means every field set in the request.
fn mask_paths(mask: Option<prost_types::FieldMask>) -> Vec<String> {
    mask.map(|m| m.paths).unwrap_or_default()
}

/// A required UUID field.
fn uuid(value: &str, field: &str) -> Result<Uuid> {
    if value.is_empty() {
        return Err(Error::invalid(field, "is required"));
    }
    Uuid::parse_str(value).map_err(|_| Error::invalid(field, format!("{value:?} is not a UUID")))
}

/// A required message field.
fn required<T>(value: Option<T>, field: &str) -> Result<T> {
    value.ok_or_else(|| Error::invalid(field, "is required"))
}

/// The reference that an update request names its resource by: the id, else the name.
fn update_target(id: &str, name: &str, field: &str) -> Result<Ref> {
    if !id.is_empty() {
        return uuid(id, &format!("{field}.id")).map(Ref::Id);
    }
    reference(name, &format!("{field}.id"))
}

/// A required run reference. Runs have no names, so a string that is no UUID names nothing:
/// `NotFound`, as for any unknown reference.
fn run_id(value: &str, field: &str) -> Result<Uuid> {
    match reference(value, field)? {
        Ref::Id(id) => Ok(id),
        Ref::Name(name) => Err(Error::not_found("test run", name)),
    }
}

/// An optional text: empty means none.
fn non_empty(value: String) -> Option<String> {
    (!value.is_empty()).then_some(value)
}
