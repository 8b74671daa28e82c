//! gRPC calls of external scorers (`assay.v1.ScorerService/Score`): a tonic channel whose
//! connections go through the outbound policy, and one attempt of a call. Gate, timeout and
//! retries are the HTTP calls' own ([`super::http::retrying`]).

use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use reqwest::Url;
use reqwest::header::HeaderMap;
use tokio::net::TcpStream;
use tonic::Code;
use tonic::metadata::MetadataMap;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use super::CallError;
use super::http::{Attempted, Guard, error_chain};
use super::outbound::{OutboundPolicy, allowed_addrs, refused_by_policy};
use crate::proto::v1::scorer_service_client::ScorerServiceClient;
use crate::proto::v1::{ScoreRequest, ScoreResponse};

/// The HTTP status a gRPC status stands for (`google.rpc.Code`'s mapping).
pub(crate) fn http_equivalent(code: Code) -> u16 {
    match code {
        Code::Ok => 200,
        Code::Cancelled => 499,
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => 400,
        Code::Unauthenticated => 401,
        Code::PermissionDenied => 403,
        Code::NotFound => 404,
        Code::AlreadyExists | Code::Aborted => 409,
        Code::ResourceExhausted => 429,
        Code::Unimplemented => 501,
        Code::Unavailable => 503,
        Code::DeadlineExceeded => 504,
        Code::Unknown | Code::Internal | Code::DataLoss => 500,
    }
}

/// A lazily connecting client of the scorer at `url` (`http://` is HTTP/2 without TLS,
/// `https://` TLS with the system's roots) that reads answers of at most `max_body` bytes.
/// Every connection, reconnections included, reaches only addresses the policy allows.
pub(crate) fn scorer_client(
    url: &Url,
    outbound: &Arc<OutboundPolicy>,
    max_body: u64,
) -> Result<ScorerServiceClient<Channel>, String> {
    let mut endpoint = Endpoint::from_shared(url.as_str().trim_end_matches('/').to_string())
        .map_err(|e| format!("{url}: {e}"))?
        .connect_timeout(Duration::from_secs(10))
        .tcp_nodelay(true);
    if url.scheme() == "https" {
        endpoint = endpoint
            .tls_config(ClientTlsConfig::new().with_native_roots())
            .map_err(|e| format!("{url}: {e}"))?;
    }
    let policy = Arc::clone(outbound);
    let connector = tower::service_fn(move |uri: http::Uri| {
        let policy = Arc::clone(&policy);
        async move { connect(&policy, &uri).await }
    });
    let channel = endpoint.connect_with_connector_lazy(connector);
    Ok(ScorerServiceClient::new(channel)
        .max_decoding_message_size(usize::try_from(max_body).unwrap_or(usize::MAX)))
}

/// A TCP connection to the first allowed address of the URI's host that accepts one.
async fn connect(
    policy: &OutboundPolicy,
    uri: &http::Uri,
) -> Result<TokioIo<TcpStream>, Box<dyn std::error::Error + Send + Sync>> {
    let host = uri.host().ok_or("the scorer URL has no host")?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = uri
        .port_u16()
        .unwrap_or(if uri.scheme_str() == Some("https") {
            443
        } else {
            80
        });
    let mut last = None;
    for addr in allowed_addrs(policy, host, port).await? {
        match TcpStream::connect(addr).await {
            Ok(stream) => {
                stream.set_nodelay(true)?;
                return Ok(TokioIo::new(stream));
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.map_or_else(|| format!("{host} has no address").into(), Into::into))
}

/// One attempt of `Score` on the scorer at `url`, with `headers` (the trace context) as metadata.
pub(crate) async fn score(
    mut client: ScorerServiceClient<Channel>,
    url: &Url,
    message: ScoreRequest,
    headers: HeaderMap,
    guard: &Guard,
) -> Attempted<ScoreResponse> {
    guard
        .outbound
        .check_url(url)
        .map_err(|message| (CallError::Blocked { message }, None))?;
    let mut request = tonic::Request::new(message);
    *request.metadata_mut() = MetadataMap::from_headers(headers);
    match client.score(request).await {
        Ok(response) => Ok((200, response.into_inner())),
        // tonic's own check of `max_decoding_message_size`.
        Err(status)
            if status.code() == Code::OutOfRange
                && status.message().contains("message length too large") =>
        {
            Err((
                CallError::TooLarge {
                    limit: guard.max_body,
                },
                None,
            ))
        }
        Err(status) if refused_by_policy(&status) => Err((
            CallError::Blocked {
                message: error_chain(&status),
            },
            None,
        )),
        Err(status) => Err((
            CallError::Grpc {
                code: status.code(),
                message: status.message().to_string(),
            },
            None,
        )),
    }
}
