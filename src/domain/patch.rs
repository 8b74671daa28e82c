//! Partial updates (AIP-134 field masks) on the drafts of catalogue resources: which fields of
//! an update to apply to the stored value.

use crate::error::{Error, Result};

/// A draft whose top-level fields can be updated by path.
pub trait Patch: Sized {
    /// The paths that may be updated.
    const PATHS: &'static [&'static str];
    /// Whether the field at `path` holds a non-default value (used when no mask is given).
    fn is_set(&self, path: &str) -> bool;
    /// Copies the field at `path` from `source`.
    fn copy_from(&mut self, source: &Self, path: &str);
}

/// `current` with the fields named by `paths` taken from `update`. No paths means every field
/// that is set in `update` (proto3 cannot tell an unset field from a default one).
pub fn apply<P: Patch>(mut current: P, update: &P, paths: &[String]) -> Result<P> {
    let chosen: Vec<&str> = if paths.is_empty() {
        P::PATHS
            .iter()
            .copied()
            .filter(|p| update.is_set(p))
            .collect()
    } else {
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
    };
    for path in chosen {
        current.copy_from(update, path);
    }
    Ok(current)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::GroupDraft;

    fn draft(name: &str, description: &str) -> GroupDraft {
        GroupDraft {
            name: name.into(),
            description: description.into(),
            metrics: vec![],
        }
    }

    #[test]
    fn without_paths_every_set_field_is_taken() {
        let merged = apply(draft("a", "old"), &draft("", "new"), &[]).unwrap();
        assert_eq!(
            (merged.name.as_str(), merged.description.as_str()),
            ("a", "new")
        );
    }

    #[test]
    fn paths_take_fields_even_when_empty() {
        let merged = apply(draft("a", "old"), &draft("", ""), &["description".into()]).unwrap();
        assert_eq!(
            (merged.name.as_str(), merged.description.as_str()),
            ("a", "")
        );
    }

    #[test]
    fn an_unknown_path_names_the_mask_field() {
        let err = apply(draft("a", ""), &draft("", ""), &["nope".into()]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("update_mask.paths: \"nope\" cannot be updated")
        );
    }
}
