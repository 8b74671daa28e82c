//! API keys: a tower layer in front of every service (gRPC and gRPC-Web alike) that lets a call
//! through only with a key that grants its RPC.
//!
//! The full key (`--api-key`) grants every RPC; the read-only key (`--read-only-api-key`) grants
//! the RPCs that change nothing and call no endpoint. Health checking and reflection stay open:
//! load balancers probe without a key, and the schema they describe is public.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::Either;
use http::HeaderMap;
use subtle::ConstantTimeEq;
use tonic::Status;

/// The RPCs the read-only key grants: they read stored state and call nothing.
const READ_ONLY_RPCS: [&str; 16] = [
    "/assay.v1.MetricService/GetMetric",
    "/assay.v1.MetricService/ListMetrics",
    "/assay.v1.BehaviorService/GetBehavior",
    "/assay.v1.BehaviorService/ListBehaviors",
    "/assay.v1.EndpointService/GetEndpoint",
    "/assay.v1.EndpointService/ListEndpoints",
    "/assay.v1.TestSetService/GetTestSet",
    "/assay.v1.TestSetService/ListTestSets",
    "/assay.v1.TestSetService/ListTests",
    "/assay.v1.TestExecutionService/LastRun",
    "/assay.v1.TestExecutionService/ListTestSetMetrics",
    "/assay.v1.TestExecutionService/GetTestRun",
    "/assay.v1.TestExecutionService/ListTestRuns",
    "/assay.v1.TestExecutionService/ListTestResults",
    "/assay.v1.TestExecutionService/WatchTestRun",
    "/assay.v1.TestExecutionService/CompareRuns",
];

/// Services open to every caller: `grpc.health.v1` and both reflection versions.
const OPEN_SERVICES: [&str; 3] = [
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1.ServerReflection/",
    "/grpc.reflection.v1alpha.ServerReflection/",
];

/// A secret key; its `Debug` output is masked, so that printing a configuration never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// The key as sent by clients.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(********)")
    }
}

impl FromStr for ApiKey {
    type Err = String;

    /// A key is printable ASCII without spaces (it travels in an HTTP header), and not empty:
    /// an unset variable in a compose file must not configure an empty key.
    fn from_str(value: &str) -> Result<Self, String> {
        if value.is_empty() {
            return Err("an API key must not be empty".into());
        }
        if !value.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("an API key must be printable ASCII without spaces".into());
        }
        Ok(ApiKey(value.to_string()))
    }
}

/// The keys a server accepts.
#[derive(Clone, Debug)]
pub struct ApiKeys {
    full: ApiKey,
    read_only: Option<ApiKey>,
}

/// What a key presented with a call grants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Grant {
    Full,
    ReadOnly,
}

impl ApiKeys {
    /// The full key and, optionally, the read-only one.
    pub fn new(full: ApiKey, read_only: Option<ApiKey>) -> Self {
        ApiKeys { full, read_only }
    }

    /// Whether a call to `path` (`/package.Service/Method`) with these request headers may go
    /// on; the status to answer otherwise.
    pub fn check(&self, path: &str, headers: &HeaderMap) -> Result<(), Status> {
        if OPEN_SERVICES.iter().any(|open| path.starts_with(open)) {
            return Ok(());
        }
        let Some(presented) = presented_key(headers) else {
            return Err(Status::unauthenticated(
                "an API key is required: send `authorization: Bearer KEY` or `x-api-key: KEY`",
            ));
        };
        match self.grant(presented) {
            Some(Grant::Full) => Ok(()),
            Some(Grant::ReadOnly) if READ_ONLY_RPCS.contains(&path) => Ok(()),
            Some(Grant::ReadOnly) => Err(Status::permission_denied(format!(
                "the read-only API key does not grant {}: it grants only RPCs that read (Get, \
                 List, LastRun, WatchTestRun, CompareRuns)",
                path.trim_start_matches('/')
            ))),
            None => Err(Status::unauthenticated("the API key is not valid")),
        }
    }

    /// What `presented` grants. Both keys are compared in constant time, every time, so that
    /// the time taken says nothing about either.
    fn grant(&self, presented: &[u8]) -> Option<Grant> {
        let full = self.full.0.as_bytes().ct_eq(presented);
        let read_only = self
            .read_only
            .as_ref()
            .map_or(subtle::Choice::from(0), |key| {
                key.0.as_bytes().ct_eq(presented)
            });
        if bool::from(full) {
            Some(Grant::Full)
        } else if bool::from(read_only) {
            Some(Grant::ReadOnly)
        } else {
            None
        }
    }
}

/// The key a call presents: the token of `authorization: Bearer KEY`, else `x-api-key`.
fn presented_key(headers: &HeaderMap) -> Option<&[u8]> {
    let bearer = headers
        .get(http::header::AUTHORIZATION)
        .map(|v| v.as_bytes())
        .and_then(|v| {
            let (scheme, token) = v.split_at_checked(7)?;
            scheme.eq_ignore_ascii_case(b"bearer ").then_some(token)
        });
    bearer.or_else(|| headers.get("x-api-key").map(|v| v.as_bytes()))
}

/// The tower layer that checks keys; see [`ApiKeys::check`].
#[derive(Clone, Debug)]
pub struct RequireApiKey {
    keys: Arc<ApiKeys>,
}

impl RequireApiKey {
    /// The layer for these keys.
    pub fn new(keys: ApiKeys) -> Self {
        RequireApiKey {
            keys: Arc::new(keys),
        }
    }
}

impl<S> tower::Layer<S> for RequireApiKey {
    type Service = RequireApiKeyService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireApiKeyService {
            keys: Arc::clone(&self.keys),
            inner,
        }
    }
}

/// The service of [`RequireApiKey`].
#[derive(Clone, Debug)]
pub struct RequireApiKeyService<S> {
    keys: Arc<ApiKeys>,
    inner: S,
}

impl<S, B, R> tower::Service<http::Request<B>> for RequireApiKeyService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    R: Default,
{
    type Response = http::Response<R>;
    type Error = S::Error;
    type Future = Either<std::future::Ready<Result<http::Response<R>, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        match self.keys.check(request.uri().path(), request.headers()) {
            Ok(()) => Either::Right(self.inner.call(request)),
            // A trailers-only answer: gRPC and gRPC-Web clients both read its status.
            Err(status) => Either::Left(std::future::ready(Ok(status.into_http()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    const FULL: &str = "full-key-0123456789";
    const READ: &str = "read-key-0123456789";

    fn keys() -> ApiKeys {
        ApiKeys::new(FULL.parse().unwrap(), Some(READ.parse().unwrap()))
    }

    fn headers(name: &'static str, value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(name, value.parse().unwrap());
        headers
    }

    #[test]
    fn a_key_is_taken_from_a_bearer_token_or_x_api_key() {
        let keys = keys();
        let path = "/assay.v1.MetricService/CreateMetric";
        assert!(
            keys.check(path, &headers("authorization", &format!("Bearer {FULL}")))
                .is_ok()
        );
        assert!(
            keys.check(path, &headers("authorization", &format!("bearer {FULL}")))
                .is_ok()
        );
        assert!(keys.check(path, &headers("x-api-key", FULL)).is_ok());
        let basic = headers("authorization", &format!("Basic {FULL}"));
        assert_eq!(
            keys.check(path, &basic).unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
    }

    #[test]
    fn the_read_only_key_grants_reads_only() {
        let keys = keys();
        let read = headers("x-api-key", READ);
        assert!(
            keys.check("/assay.v1.TestExecutionService/WatchTestRun", &read)
                .is_ok()
        );
        let denied = keys
            .check("/assay.v1.TestExecutionService/Execute", &read)
            .unwrap_err();
        assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    }

    #[test]
    fn health_and_reflection_need_no_key() {
        let keys = keys();
        let none = HeaderMap::new();
        assert!(keys.check("/grpc.health.v1.Health/Check", &none).is_ok());
        assert!(
            keys.check(
                "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                &none
            )
            .is_ok()
        );
        let denied = keys
            .check("/assay.v1.MetricService/GetMetric", &none)
            .unwrap_err();
        assert_eq!(denied.code(), tonic::Code::Unauthenticated);
    }

    #[test]
    fn empty_or_spaced_keys_are_refused() {
        assert!("".parse::<ApiKey>().is_err());
        assert!("a key with spaces in it".parse::<ApiKey>().is_err());
        assert_eq!(format!("{:?}", keys()).matches(FULL).count(), 0);
    }

    /// Every RPC that reads (named Get*, List*, Compare*, LastRun or Watch*) is granted to the read-only
    /// key, and nothing else is: a new RPC is classified here or this test fails.
    #[test]
    fn the_read_only_list_is_exactly_the_reading_rpcs() {
        let set =
            prost_types::FileDescriptorSet::decode(crate::proto::FILE_DESCRIPTOR_SET).unwrap();
        let mut reading = Vec::new();
        for file in set.file.iter().filter(|f| f.package() == "assay.v1") {
            for service in &file.service {
                for method in &service.method {
                    let name = method.name();
                    if ["Get", "List", "Watch", "Compare"]
                        .iter()
                        .any(|p| name.starts_with(p))
                        || name == "LastRun"
                    {
                        reading.push(format!("/assay.v1.{}/{name}", service.name()));
                    }
                }
            }
        }
        reading.sort();
        let mut granted: Vec<String> = READ_ONLY_RPCS.iter().map(|s| s.to_string()).collect();
        granted.sort();
        assert_eq!(reading, granted);
    }
}
