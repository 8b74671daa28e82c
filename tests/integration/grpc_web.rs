//! gRPC-Web on the gRPC port: a browser's HTTP/1.1 call reaches the real services, and CORS
//! answers preflights for the configured origins only.

use assay::proto::v1 as pb;
use prost::Message;
use reqwest::header::{HeaderMap, HeaderValue};

use crate::fixtures::{contains, create_metric};
use crate::harness::Server;

const ORIGIN: &str = "http://app.localhost:5173";

/// What a gRPC-Web call answered: its messages, and its status from the headers (a failure
/// before any message) or else from the trailer frame.
struct WebReply {
    messages: Vec<Vec<u8>>,
    status: String,
    message: String,
    headers: HeaderMap,
}

/// Calls `method` (e.g. `assay.v1.MetricService/GetMetric`) with gRPC-Web over HTTP/1.1.
async fn call_web(server: &Server, method: &str, request: impl Message) -> WebReply {
    let payload = request.encode_to_vec();
    let mut body = vec![0u8];
    body.extend_from_slice(&u32::try_from(payload.len()).unwrap().to_be_bytes());
    body.extend_from_slice(&payload);
    let client = reqwest::Client::builder().http1_only().build().unwrap();
    let response = client
        .post(format!("{}/{method}", server.url()))
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .header("origin", ORIGIN)
        .body(body)
        .send()
        .await
        .expect("gRPC-Web call");
    assert_eq!(response.version(), reqwest::Version::HTTP_11);
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    let headers = response.headers().clone();
    let bytes = response.bytes().await.expect("body");
    let header = |name: &str| headers.get(name).map(|v| v.to_str().unwrap().to_string());
    let (mut status, mut message) = (header("grpc-status"), header("grpc-message"));
    let mut messages = Vec::new();
    let mut rest = &bytes[..];
    while !rest.is_empty() {
        let len = u32::from_be_bytes(rest[1..5].try_into().unwrap()) as usize;
        let frame = &rest[5..5 + len];
        if rest[0] & 0x80 == 0 {
            messages.push(frame.to_vec());
        } else {
            for line in String::from_utf8_lossy(frame).split("\r\n") {
                match line.split_once(':') {
                    Some(("grpc-status", v)) => status = Some(v.trim().to_string()),
                    Some(("grpc-message", v)) => message = Some(v.trim().to_string()),
                    _ => {}
                }
            }
        }
        rest = &rest[5 + len..];
    }
    WebReply {
        messages,
        status: status.expect("a grpc-status"),
        message: message.unwrap_or_default(),
        headers,
    }
}

/// GetMetric over gRPC-Web.
async fn get_metric_over_web(server: &Server, metric: &str) -> WebReply {
    let request = pb::GetMetricRequest {
        metric: metric.into(),
    };
    call_web(server, "assay.v1.MetricService/GetMetric", request).await
}

/// Sends a browser's CORS preflight for a gRPC-Web call from `origin`.
async fn preflight(server: &Server, origin: &str) -> HeaderMap {
    let response = reqwest::Client::new()
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/assay.v1.MetricService/GetMetric", server.url()),
        )
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type,x-grpc-web,authorization",
        )
        .send()
        .await
        .expect("preflight");
    response.headers().clone()
}

#[tokio::test]
async fn a_grpc_web_call_over_http1_reaches_the_service() {
    let server = Server::start().await;
    let created = create_metric(&server, contains("polite", &["please"])).await;
    let reply = get_metric_over_web(&server, "polite").await;
    assert_eq!(reply.status, "0", "{}", reply.message);
    let [message] = &reply.messages[..] else {
        panic!("one message, got {}", reply.messages.len())
    };
    let metric = pb::Metric::decode(&message[..]).expect("a Metric");
    assert_eq!(metric.id, created.id);
    assert_eq!(metric.name, "polite");
}

#[tokio::test]
async fn a_grpc_web_error_carries_its_status_and_message() {
    let server = Server::start().await;
    let reply = get_metric_over_web(&server, "nope").await;
    assert_eq!(reply.status, (tonic::Code::NotFound as i32).to_string());
    assert!(reply.message.contains("nope"), "{}", reply.message);
    assert!(reply.messages.is_empty());
}

#[tokio::test]
async fn preflight_from_an_allowed_origin_is_answered_with_cors_headers() {
    let server = Server::start_with(|c| c.cors_allow_origins = vec![ORIGIN.into()]).await;
    let headers = preflight(&server, ORIGIN).await;
    assert_eq!(
        headers.get("access-control-allow-origin"),
        Some(&HeaderValue::from_static(ORIGIN))
    );
    let allowed = headers
        .get("access-control-allow-headers")
        .expect("allowed headers")
        .to_str()
        .unwrap();
    for header in ["content-type", "x-grpc-web", "authorization"] {
        assert!(allowed.contains(header), "{header} not in {allowed}");
    }
    // The browser reads the call's status from these on a real call.
    let reply = get_metric_over_web(&server, "nope").await;
    let exposed = reply
        .headers
        .get("access-control-expose-headers")
        .expect("exposed headers")
        .to_str()
        .unwrap();
    assert!(exposed.contains("grpc-status"), "{exposed}");
}

#[tokio::test]
async fn another_origin_gets_no_cors_headers() {
    let server = Server::start_with(|c| c.cors_allow_origins = vec![ORIGIN.into()]).await;
    let headers = preflight(&server, "http://evil.localhost").await;
    assert!(headers.get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn without_allowed_origins_no_cors_headers_are_sent() {
    let server = Server::start().await;
    let headers = preflight(&server, ORIGIN).await;
    assert!(headers.get("access-control-allow-origin").is_none());
    assert!(headers.get("access-control-allow-methods").is_none());
}
