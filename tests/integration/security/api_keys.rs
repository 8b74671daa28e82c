//! API keys: the full key grants every RPC, the read-only key only the RPCs that read; without
//! a key (or with a wrong one) nothing but health checking and reflection answers, over gRPC and
//! gRPC-Web alike; and a server without a key listens on loopback only.

use assay::auth::ApiKey;
use assay::config::ServeConfig;
use assay::proto::v1 as pb;
use tonic::Code;
use tonic::metadata::MetadataValue;

use crate::fixtures::{contains, create_metric};
use crate::harness::Server;

const FULL: &str = "full-key-for-tests-0123";
const READ_ONLY: &str = "read-only-key-for-tests-4567";

fn key(text: &str) -> ApiKey {
    text.parse().expect("a valid key")
}

/// A server that requires keys, its clients sending none yet.
async fn server_with_keys() -> Server {
    Server::start_with(|config| {
        config.api_key = Some(key(FULL));
        config.read_only_api_key = Some(key(READ_ONLY));
    })
    .await
}

/// `ListMetrics` with one request header.
async fn list_metrics_with(
    server: &Server,
    header: &'static str,
    value: &str,
) -> Result<(), tonic::Status> {
    let mut request = tonic::Request::new(pb::ListMetricsRequest::default());
    request
        .metadata_mut()
        .insert(header, MetadataValue::try_from(value).expect("ascii"));
    server.metrics().list_metrics(request).await.map(|_| ())
}

#[tokio::test]
async fn a_call_without_a_key_or_with_a_wrong_one_is_unauthenticated() {
    let server = server_with_keys().await;
    let missing = server
        .metrics()
        .list_metrics(pb::ListMetricsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::Unauthenticated, "{missing:?}");
    assert!(
        missing.message().contains("authorization: Bearer"),
        "{missing:?}"
    );
    let wrong = list_metrics_with(&server, "authorization", "Bearer not-the-key")
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Code::Unauthenticated);
    let wrong = list_metrics_with(&server, "x-api-key", "not-the-key")
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Code::Unauthenticated);
    // The key is never echoed back.
    assert!(!wrong.message().contains("not-the-key"));
}

#[tokio::test]
async fn the_full_key_is_accepted_as_a_bearer_token_or_as_x_api_key() {
    let mut server = server_with_keys().await;
    list_metrics_with(&server, "authorization", &format!("Bearer {FULL}"))
        .await
        .expect("bearer");
    list_metrics_with(&server, "x-api-key", FULL)
        .await
        .expect("x-api-key");
    server.send_key(&key(FULL));
    create_metric(&server, contains("says-paris", &["Paris"])).await;
}

#[tokio::test]
async fn the_read_only_key_reads_but_changes_and_runs_nothing() {
    let mut server = server_with_keys().await;
    server.send_key(&key(FULL));
    create_metric(&server, contains("says-paris", &["Paris"])).await;
    server.send_key(&key(READ_ONLY));

    let metric = server
        .metrics()
        .get_metric(pb::GetMetricRequest {
            metric: "says-paris".into(),
        })
        .await
        .expect("a read with the read-only key");
    assert_eq!(metric.into_inner().name, "says-paris");
    let runs = server
        .execution()
        .list_test_runs(pb::ListTestRunsRequest::default())
        .await
        .expect("runs listed with the read-only key");
    assert!(runs.into_inner().runs.is_empty());

    let denied = server
        .metrics()
        .delete_metric(pb::DeleteMetricRequest {
            metric: "says-paris".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    assert!(denied.message().contains("DeleteMetric"), "{denied:?}");
    let denied = server
        .execution()
        .execute(pb::ExecuteRequest::default())
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    // Watching is a read: an unknown run is NOT_FOUND, not a refusal.
    let watch = server
        .execution()
        .watch_test_run(pb::WatchTestRunRequest {
            run: uuid::Uuid::nil().to_string(),
        })
        .await
        .unwrap_err();
    assert_eq!(watch.code(), Code::NotFound, "{watch:?}");
    // The metric is still there.
    server
        .metrics()
        .get_metric(pb::GetMetricRequest {
            metric: "says-paris".into(),
        })
        .await
        .expect("not deleted");
}

#[tokio::test]
async fn health_checking_and_reflection_need_no_key() {
    let server = server_with_keys().await;
    let health = tonic_health::pb::health_client::HealthClient::new(server.channel())
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("health without a key");
    assert_eq!(health.into_inner().status, 1, "SERVING");
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest,
    };
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = ServerReflectionClient::new(server.channel())
        .server_reflection_info(futures::stream::iter([request]))
        .await
        .expect("reflection without a key")
        .into_inner();
    assert!(answers.message().await.expect("an answer").is_some());
}

/// A gRPC-Web `ListMetrics` over HTTP/1.1 with `headers`; its `grpc-status`.
async fn web_list_metrics(server: &Server, headers: &[(&str, &str)]) -> String {
    let mut request = reqwest::Client::builder()
        .http1_only()
        .build()
        .unwrap()
        .post(format!(
            "{}/assay.v1.MetricService/ListMetrics",
            server.url()
        ))
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        // An empty message: flag 0, length 0.
        .body(vec![0u8; 5]);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("gRPC-Web call");
    if let Some(status) = response.headers().get("grpc-status") {
        return status.to_str().unwrap().to_string();
    }
    // Else the status is in the trailer frame at the end of the body.
    let body = response.bytes().await.expect("body");
    let text = String::from_utf8_lossy(&body);
    let status = text
        .split("grpc-status:")
        .nth(1)
        .expect("a grpc-status trailer");
    status
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect()
}

#[tokio::test]
async fn grpc_web_calls_need_the_key_too() {
    let server = server_with_keys().await;
    assert_eq!(
        web_list_metrics(&server, &[]).await,
        "16",
        "UNAUTHENTICATED"
    );
    assert_eq!(web_list_metrics(&server, &[("x-api-key", FULL)]).await, "0");
    let bearer = format!("Bearer {READ_ONLY}");
    assert_eq!(
        web_list_metrics(&server, &[("authorization", &bearer)]).await,
        "0"
    );
}

#[tokio::test]
async fn without_a_key_the_server_refuses_a_public_address_unless_told_otherwise() {
    let dir = tempfile::tempdir().expect("temp dir");
    let database = format!("sqlite://{}", dir.path().join("assay.db").display());
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0")
        .await
        .expect("bind");
    let config = ServeConfig::new(listener.local_addr().unwrap(), database.clone());
    let refused = assay::server::serve(config, listener, async {})
        .await
        .unwrap_err();
    let message = refused.to_string();
    assert!(
        message.contains("--api-key") && message.contains("--insecure-no-auth"),
        "{message}"
    );

    // Told it is fine, or given a key, it serves (and stops at once here).
    for configure in [
        (|c: &mut ServeConfig| c.insecure_no_auth = true) as fn(&mut ServeConfig),
        |c: &mut ServeConfig| c.api_key = Some(key(FULL)),
    ] {
        let listener = tokio::net::TcpListener::bind("0.0.0.0:0")
            .await
            .expect("bind");
        let mut config = ServeConfig::new(listener.local_addr().unwrap(), database.clone());
        configure(&mut config);
        assay::server::serve(config, listener, async {})
            .await
            .expect("served");
    }
}

#[tokio::test]
async fn a_read_only_key_alone_is_refused_at_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let mut config = ServeConfig::new(
        listener.local_addr().unwrap(),
        format!("sqlite://{}", dir.path().join("assay.db").display()),
    );
    config.read_only_api_key = Some(key(READ_ONLY));
    let refused = assay::server::serve(config, listener, async {})
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("--read-only-api-key"),
        "{refused}"
    );
}

#[tokio::test]
async fn the_cli_sends_its_api_key() {
    let server = server_with_keys().await;
    let run = |key: Option<&'static str>| {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_assay"));
        command
            .args(["metric", "list"])
            .env("ASSAY_SERVER", server.url())
            .env("ASSAY_LOG", "warn")
            .env_remove("ASSAY_API_KEY")
            .stdin(std::process::Stdio::null());
        if let Some(key) = key {
            command.env("ASSAY_API_KEY", key);
        }
        async move { command.output().await.expect("run the assay binary") }
    };
    let refused = run(None).await;
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("Unauthenticated"));
    let accepted = run(Some(FULL)).await;
    assert_eq!(
        accepted.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&accepted.stderr)
    );
    // The flag works as the variable does.
    let flag = tokio::process::Command::new(env!("CARGO_BIN_EXE_assay"))
        .args([
            "metric",
            "list",
            "--api-key",
            READ_ONLY,
            "--server",
            server.url(),
        ])
        .env_remove("ASSAY_API_KEY")
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .expect("run the assay binary");
    assert_eq!(
        flag.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&flag.stderr)
    );
}
