//! Requests over `--max-request-bytes`. tonic refuses a message above a service's decoding limit
//! with `OUT_OF_RANGE` and a text that names no setting; such refusals are answered
//! `RESOURCE_EXHAUSTED` (gRPC's code for a message larger than the receiver accepts) with a
//! message naming the limit, its flag and its variable, so an operator or a client knows what to
//! change or how to send less.

use std::pin::Pin;
use std::task::{Context, Poll};

use http::{Request, Response};
use tonic::{Code, Status};

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
/// trailers-only responses, whose status is in the headers).
#[derive(Clone, Copy, Debug)]
pub struct RequestLimitLayer {
    limit: usize,
}

impl RequestLimitLayer {
    /// For services whose decoding limit is `limit` bytes.
    pub fn new(limit: usize) -> Self {
        RequestLimitLayer { limit }
    }
}

impl<S> tower::Layer<S> for RequestLimitLayer {
    type Service = RequestLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestLimit {
            inner,
            limit: self.limit,
        }
    }
}

/// See [`RequestLimitLayer`].
#[derive(Clone, Debug)]
pub struct RequestLimit<S> {
    inner: S,
    limit: usize,
}

impl<S, B, RB> tower::Service<Request<B>> for RequestLimit<S>
where
    S: tower::Service<Request<B>, Response = Response<RB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<RB>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // The clone that was made ready is the one called (tower's usual swap).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let limit = self.limit;
        Box::pin(async move {
            let mut response = inner.call(request).await?;
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
            Ok(response)
        })
    }
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
