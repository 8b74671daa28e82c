//! The one mapping from [`Error`] to `tonic::Status`, with rich error details.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::error::Error;

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        let message = error.to_string();
        // Exhaustive on purpose: a new variant must decide its own code.
        match error {
            Error::InvalidArgument { field, reason } => Status::with_error_details(
                Code::InvalidArgument,
                message,
                ErrorDetails::with_bad_request_violation(field, reason),
            ),
            Error::NotFound { kind, reference } => Status::with_error_details(
                Code::NotFound,
                message,
                ErrorDetails::with_resource_info(kind, reference, "", "not found"),
            ),
            Error::AlreadyExists { kind, name } => Status::with_error_details(
                Code::AlreadyExists,
                message,
                ErrorDetails::with_resource_info(kind, name, "", "name already taken"),
            ),
            Error::FailedPrecondition {
                subject,
                description,
            } => Status::with_error_details(
                Code::FailedPrecondition,
                message,
                ErrorDetails::with_precondition_failure_violation("STATE", subject, description),
            ),
            Error::Unavailable(_) => Status::unavailable(message),
            Error::Storage { .. } | Error::Internal { .. } => {
                // Server faults are logged here, once; client mistakes stay at debug level.
                tracing::error!(error = %message, "request failed");
                Status::internal(message)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_argument_carries_the_field() {
        let status = Status::from(Error::invalid("metric.name", "is required"));
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().contains("metric.name"));
        let details = status.get_error_details();
        let violation = &details.bad_request().unwrap().field_violations[0];
        assert_eq!(violation.field, "metric.name");
    }

    #[test]
    fn not_found_names_the_reference() {
        let status = Status::from(Error::not_found("metric", "nope"));
        assert_eq!(status.code(), Code::NotFound);
        assert!(status.message().contains("\"nope\""));
    }
}
