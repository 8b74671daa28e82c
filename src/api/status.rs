//! The one mapping from [`Error`] to `tonic::Status`, with rich error details.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::domain::truncated;
use crate::error::Error;

/// Longest text of a status (its message, each detail): a message quotes the input it refuses,
/// and an input may be megabytes long; gRPC clients refuse large metadata.
const MAX_STATUS_CHARS: usize = 500;

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        let message = truncated(&error.to_string(), MAX_STATUS_CHARS);
        let cut = |text: String| truncated(&text, MAX_STATUS_CHARS);
        // Exhaustive on purpose: a new variant must decide its own code.
        match error {
            Error::InvalidArgument { field, reason } => Status::with_error_details(
                Code::InvalidArgument,
                message,
                ErrorDetails::with_bad_request_violation(cut(field), cut(reason)),
            ),
            Error::NotFound { kind, reference } => Status::with_error_details(
                Code::NotFound,
                message,
                ErrorDetails::with_resource_info(kind, cut(reference), "", "not found"),
            ),
            Error::AlreadyExists { kind, name } => Status::with_error_details(
                Code::AlreadyExists,
                message,
                ErrorDetails::with_resource_info(kind, cut(name), "", "name already taken"),
            ),
            Error::FailedPrecondition {
                subject,
                description,
            } => Status::with_error_details(
                Code::FailedPrecondition,
                message,
                ErrorDetails::with_precondition_failure_violation(
                    "STATE",
                    cut(subject),
                    cut(description),
                ),
            ),
            Error::Unavailable(_) => Status::unavailable(message),
            Error::ResourceExhausted(_) => Status::resource_exhausted(message),
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
    fn a_huge_input_is_quoted_in_part() {
        let huge = "x".repeat(1_000_000);
        let status = Status::from(Error::invalid(
            "metric.name",
            format!("{huge:?} is too long"),
        ));
        assert!(
            status.message().len() < 2 * MAX_STATUS_CHARS,
            "{}",
            status.message().len()
        );
        let details = status.get_error_details();
        let violation = &details.bad_request().unwrap().field_violations[0];
        assert!(violation.description.len() < 2 * MAX_STATUS_CHARS);
        let status = Status::from(Error::not_found("metric", huge));
        assert!(status.message().len() < 2 * MAX_STATUS_CHARS);
    }

    #[test]
    fn not_found_names_the_reference() {
        let status = Status::from(Error::not_found("metric", "nope"));
        assert_eq!(status.code(), Code::NotFound);
        assert!(status.message().contains("\"nope\""));
    }
}
