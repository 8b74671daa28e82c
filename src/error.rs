//! The one error type of the domain, engine and store. `api::status` maps it to gRPC codes.
//! Errors of the crates beneath (sqlx, serde_json) are converted where they arise, in the store,
//! so that this type depends on none of them.

/// Everything that can go wrong below the API layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request field is wrong; `field` names it (e.g. `metric.name`).
    #[error("{field}: {reason}")]
    InvalidArgument {
        /// The offending field, as a path into the request.
        field: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A referenced resource does not exist.
    #[error("{kind} {reference:?} not found")]
    NotFound {
        /// The kind of resource (`metric`, `test set`, ...).
        kind: &'static str,
        /// The id or name that was given.
        reference: String,
    },
    /// A resource with this unique name exists already.
    #[error("{kind} named {name:?} already exists")]
    AlreadyExists {
        /// The kind of resource.
        kind: &'static str,
        /// The name that is taken.
        name: String,
    },
    /// The system is not in a state that allows the operation.
    #[error("{description}")]
    FailedPrecondition {
        /// What the precondition is about (e.g. `metric exact`).
        subject: String,
        /// Why the operation cannot proceed.
        description: String,
    },
    /// The server cannot take the request now (it is shutting down); the client may try again.
    #[error("{0}")]
    Unavailable(String),
    /// The request is larger than a limit of the server; the message names the limit.
    #[error("{0}")]
    ResourceExhausted(String),
    // Storage and Internal put their source's text in the message as well as in `source()`:
    // the gRPC status and the log lines carry only the message.
    /// The storage backend failed.
    #[error("storage error: {context}: {source}")]
    Storage {
        /// What failed (e.g. `migrating the database`).
        context: String,
        /// The backend's error.
        #[source]
        source: Cause,
    },
    /// A bug or an unexpected state of the server.
    #[error("internal error: {context}{}", cause_text(source.as_deref()))]
    Internal {
        /// What failed or what is unexpected.
        context: String,
        /// The error behind it, if there is one.
        #[source]
        source: Option<Cause>,
    },
}

/// The error behind an [`Error::Storage`] or [`Error::Internal`], of whatever crate it comes
/// from, so that this type depends on none of them.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

/// `": {source}"`, or nothing without a source.
fn cause_text(source: Option<&(dyn std::error::Error + Send + Sync)>) -> String {
    source.map(|e| format!(": {e}")).unwrap_or_default()
}

impl Error {
    /// An [`Error::InvalidArgument`] for `field`.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidArgument {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The error with an [`Error::InvalidArgument`] field under `from` (`metric.kind`) moved
    /// under `to` (`metrics[2].kind`): a resource checked alone, reported where a request that
    /// holds several has it. Other errors are returned as they are.
    pub fn within(self, from: &str, to: &str) -> Self {
        match self {
            Error::InvalidArgument { field, reason } => {
                let field = match field.strip_prefix(from) {
                    Some(rest) if rest.is_empty() || rest.starts_with(['.', '[']) => {
                        format!("{to}{rest}")
                    }
                    _ => field,
                };
                Error::InvalidArgument { field, reason }
            }
            other => other,
        }
    }

    /// An [`Error::NotFound`] for a resource of `kind` named by `reference`.
    pub fn not_found(kind: &'static str, reference: impl std::fmt::Display) -> Self {
        Error::NotFound {
            kind,
            reference: reference.to_string(),
        }
    }

    /// An [`Error::Storage`]: `context` says what failed, `source` why.
    pub fn storage(context: impl Into<String>, source: impl Into<Cause>) -> Self {
        Error::Storage {
            context: context.into(),
            source: source.into(),
        }
    }

    /// An [`Error::Internal`] with no error behind it.
    pub fn internal(context: impl Into<String>) -> Self {
        Error::Internal {
            context: context.into(),
            source: None,
        }
    }

    /// An [`Error::Internal`] caused by `source`.
    pub fn internal_from(context: impl Into<String>, source: impl Into<Cause>) -> Self {
        Error::Internal {
            context: context.into(),
            source: Some(source.into()),
        }
    }

    /// An [`Error::FailedPrecondition`] about `subject`.
    pub fn precondition(subject: impl Into<String>, description: impl Into<String>) -> Self {
        Error::FailedPrecondition {
            subject: subject.into(),
            description: description.into(),
        }
    }
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn within_moves_a_field_under_its_place_in_a_larger_request() {
        let moved = |field: &str| match Error::invalid(field, "bad").within("metric", "metrics[2]")
        {
            Error::InvalidArgument { field, .. } => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(moved("metric.kind"), "metrics[2].kind");
        assert_eq!(moved("metric"), "metrics[2]");
        assert_eq!(moved("metrics.x"), "metrics.x", "only whole path segments");
        let other = Error::not_found("metric", "x").within("metric", "metrics[2]");
        assert!(matches!(other, Error::NotFound { .. }));
    }

    #[test]
    fn storage_and_internal_errors_keep_their_source() {
        let err = Error::storage("writing a batch", std::io::Error::other("disk full"));
        assert_eq!(err.to_string(), "storage error: writing a batch: disk full");
        assert_eq!(
            err.source().map(ToString::to_string).as_deref(),
            Some("disk full")
        );

        let err = Error::internal_from("a test's task failed", std::io::Error::other("panicked"));
        assert_eq!(
            err.to_string(),
            "internal error: a test's task failed: panicked"
        );
        assert!(err.source().is_some());

        let err = Error::internal("an empty batch was written");
        assert_eq!(
            err.to_string(),
            "internal error: an empty batch was written"
        );
        assert!(err.source().is_none());
    }
}
