//! Update masks: which fields of an `Update*` request to apply (AIP-134).

use prost_types::FieldMask;

use crate::error::{Error, Result};

/// A proto resource whose top-level fields can be updated by path.
pub(super) trait Updatable: Sized {
    /// The paths that may be updated.
    const PATHS: &'static [&'static str];
    /// Whether the field at `path` holds a non-default value (used when no mask is given).
    fn is_set(&self, path: &str) -> bool;
    /// Copies the field at `path` from `source`.
    fn copy_from(&mut self, source: &Self, path: &str);
}

/// `current` with the fields named by `mask` taken from `request`. An empty mask means every
/// field that is set in `request`.
pub(super) fn apply<P: Updatable>(
    mut current: P,
    request: &P,
    mask: Option<&FieldMask>,
) -> Result<P> {
    let paths: Vec<&str> = match mask.map(|m| m.paths.as_slice()).filter(|p| !p.is_empty()) {
        None => P::PATHS
            .iter()
            .copied()
            .filter(|p| request.is_set(p))
            .collect(),
        Some(paths) => {
            for path in paths {
                if !P::PATHS.contains(&path.as_str()) {
                    return Err(Error::invalid(
                        "update_mask.paths",
                        format!(
                            "{path:?} cannot be updated; allowed: {}",
                            P::PATHS.join(", ")
                        ),
                    ));
                }
            }
            paths.iter().map(String::as_str).collect()
        }
    };
    for path in paths {
        current.copy_from(request, path);
    }
    Ok(current)
}

/// [`Updatable`] for resources whose updatable fields are `name`, `description` and `metrics`
/// (behaviours and test sets).
macro_rules! named_with_metrics {
    ($message:ty) => {
        impl $crate::api::mask::Updatable for $message {
            const PATHS: &'static [&'static str] = &["name", "description", "metrics"];

            fn is_set(&self, path: &str) -> bool {
                match path {
                    "name" => !self.name.is_empty(),
                    "description" => !self.description.is_empty(),
                    _ => !self.metrics.is_empty(),
                }
            }

            fn copy_from(&mut self, s: &Self, path: &str) {
                match path {
                    "name" => self.name.clone_from(&s.name),
                    "description" => self.description.clone_from(&s.description),
                    _ => self.metrics.clone_from(&s.metrics),
                }
            }
        }
    };
}
pub(super) use named_with_metrics;
