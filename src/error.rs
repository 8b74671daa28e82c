//! The one error type of the domain, engine and store. `api::status` maps it to gRPC codes.

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
    /// The storage backend failed.
    #[error("storage error: {0}")]
    Storage(String),
    /// A bug or an unexpected state of the server.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// An [`Error::InvalidArgument`] for `field`.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidArgument {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// An [`Error::NotFound`] for a resource of `kind` named by `reference`.
    pub fn not_found(kind: &'static str, reference: impl std::fmt::Display) -> Self {
        Error::NotFound {
            kind,
            reference: reference.to_string(),
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

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        Error::Storage(e.to_string())
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Internal(format!("stored JSON does not decode: {e}"))
    }
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
