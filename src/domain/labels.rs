//! Labels of a run (`branch`, `commit`, `pr`, ...): free key/value pairs that CI attaches to a
//! run so that runs can be found again by them ("the last run on main").

use std::collections::BTreeMap;

use crate::error::{Error, Result};

/// A run's labels, sorted by key.
pub type Labels = BTreeMap<String, String>;

/// Longest label key, in characters (as Kubernetes label names).
pub const MAX_LABEL_KEY: usize = 63;
/// Longest label value, in characters.
pub const MAX_LABEL_VALUE: usize = 256;
/// Most labels on one run.
pub const MAX_LABELS: usize = 32;

/// Checks labels given in a request under `field` (e.g. `labels`): keys are 1 to 63 lowercase
/// letters, digits, `_`, `.`, `-` or `/`, starting with a letter or digit; values at most 256
/// characters without control characters; at most 32 labels. Keys are lowercase only so that
/// `Branch` and `branch` cannot name two labels that a user takes for one.
pub fn validate_labels(labels: &Labels, field: &str) -> Result<()> {
    if labels.len() > MAX_LABELS {
        return Err(Error::invalid(
            field,
            format!(
                "{} labels given; at most {MAX_LABELS} are allowed",
                labels.len()
            ),
        ));
    }
    for (key, value) in labels {
        validate_key(key, field)?;
        if value.chars().count() > MAX_LABEL_VALUE {
            return Err(Error::invalid(
                format!("{field}[{key}]"),
                format!("the value is longer than {MAX_LABEL_VALUE} characters"),
            ));
        }
        if value.chars().any(char::is_control) {
            return Err(Error::invalid(
                format!("{field}[{key}]"),
                format!("the value {value:?} holds a control character"),
            ));
        }
    }
    Ok(())
}

fn validate_key(key: &str, field: &str) -> Result<()> {
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-/".contains(c);
    let starts_well = key
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if key.len() > MAX_LABEL_KEY || !starts_well || !key.chars().all(allowed) {
        return Err(Error::invalid(
            field,
            format!(
                "label key {key:?} is not valid: use 1 to {MAX_LABEL_KEY} lowercase letters, digits, \
                 '_', '.', '-' or '/', starting with a letter or digit"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn ci_labels_are_valid() {
        let ok = labels(&[
            ("branch", "feature/x"),
            ("commit", "3f2a9c"),
            ("pr", "42"),
            ("ci.job-id/2", ""),
        ]);
        validate_labels(&ok, "labels").unwrap();
    }

    #[test]
    fn bad_keys_and_values_name_the_label() {
        for key in ["", "Branch", "_x", "a b", "é", &"k".repeat(64)] {
            let e = validate_labels(&labels(&[(key, "v")]), "labels").unwrap_err();
            assert!(e.to_string().contains("label key"), "{key:?}: {e}");
        }
        let long = "v".repeat(MAX_LABEL_VALUE + 1);
        let e = validate_labels(&labels(&[("branch", &long)]), "labels").unwrap_err();
        assert!(e.to_string().starts_with("labels[branch]"), "{e}");
        let e = validate_labels(&labels(&[("branch", "a\nb")]), "labels").unwrap_err();
        assert!(e.to_string().contains("control"), "{e}");
        let many: Labels = (0..=MAX_LABELS)
            .map(|i| (format!("k{i}"), String::new()))
            .collect();
        assert!(validate_labels(&many, "labels").is_err());
    }
}
