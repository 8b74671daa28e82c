//! Requests over `--max-request-bytes`. tonic refuses a message above a service's decoding limit
//! with `OUT_OF_RANGE` and a text that names no setting; such refusals are answered
//! `RESOURCE_EXHAUSTED` (gRPC's code for a message larger than the receiver accepts) with a
//! message naming the limit, its flag and its variable, so an operator or a client knows what to
//! change or how to send less.

use http::Response;
use tonic::body::Body;
use tonic::{Code, Status};
use tower::util::MapResponseLayer;

/// The start of tonic's text for a message above the decoding limit.
const TONIC_TOO_LARGE: &str = "Error, decoded message length too large";

/// Whether `status` is tonic's refusal of a message above the decoding limit.
pub fn is_over_limit(status: &Status) -> bool {
    status.code() == Code::OutOfRange && status.message().starts_with(TONIC_TOO_LARGE)
}

/// The refusal of a request message above `limit` bytes, as clients are told it.
pub fn over_limit(status: &Status, limit: usize) -> Status {
    // tonic says "...: found N bytes, the limit is: M bytes"; the size found is worth keeping.
    let found = status
        .message()
        .split("found ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .map(|n| format!(" of {n} bytes"))
        .unwrap_or_default();
    Status::resource_exhausted(format!(
        "the request message{found} is larger than the server's limit of {limit} bytes \
         (--max-request-bytes / ASSAY_MAX_REQUEST_BYTES): send less in one call (AddTests) or \
         import in pieces (ImportTests)"
    ))
}

/// A layer that rewrites the decoding-limit refusals of the services inside it (they come as
/// trailers-only responses, whose status is in the headers); it goes innermost, on the routes.
pub fn layer(limit: usize) -> MapResponseLayer<impl Fn(Response<Body>) -> Response<Body> + Clone> {
    MapResponseLayer::new(move |mut response: Response<Body>| {
        if let Some(status) = Status::from_header_map(response.headers())
            && is_over_limit(&status)
        {
            let headers = response.headers_mut();
            for name in ["grpc-status", "grpc-message", "grpc-status-details-bin"] {
                headers.remove(name);
            }
            // Only fails on a message that cannot be a header; this one always can.
            let _ = over_limit(&status, limit).add_header(headers);
        }
        response
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tonics_refusal_becomes_resource_exhausted_naming_the_limit() {
        let tonic = Status::out_of_range(
            "Error, decoded message length too large: found 5242990 bytes, the limit is: \
             4194304 bytes",
        );
        assert!(is_over_limit(&tonic));
        let told = over_limit(&tonic, 4_194_304);
        assert_eq!(told.code(), Code::ResourceExhausted);
        for part in [
            "5242990 bytes",
            "4194304 bytes",
            "--max-request-bytes",
            "ASSAY_MAX_REQUEST_BYTES",
        ] {
            assert!(told.message().contains(part), "{}", told.message());
        }
        assert!(!is_over_limit(&Status::out_of_range(
            "page token out of range"
        )));
    }
}
