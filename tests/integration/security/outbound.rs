//! The outbound policy: calls reach no denied address, whether the URL names it, a DNS name
//! resolves to it, or a redirect leads there.

use assay::endpoint_client::OutboundPolicy;
use assay::proto::v1 as pb;
use tonic::Code;

use super::recorder::Recorder;
use crate::fixtures::{
    contains, create_endpoint, create_metric, create_test_set, execute, execute_request, test,
};
use crate::harness::Server;

fn cidr(text: &str) -> ipnet::IpNet {
    OutboundPolicy::parse_cidr(text).expect("a range")
}

fn endpoint(url: &str) -> pb::Endpoint {
    pb::Endpoint {
        name: "bot".into(),
        target: Some(pb::endpoint::Target::Http(pb::HttpTarget {
            url: url.into(),
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// Runs one test against endpoint `bot`; its error.
async fn error_of_one_call(server: &Server) -> String {
    create_metric(server, contains("says-paris", &["Paris"])).await;
    create_test_set(
        server,
        "set",
        &["says-paris"],
        vec![test("capital of France?", "", &[])],
    )
    .await;
    let (_, results, _) = execute(server, execute_request("set", "bot")).await;
    let result = results.into_iter().next().expect("one result");
    assert_eq!(result.status, pb::ResultStatus::Error as i32, "{result:?}");
    result.error
}

#[tokio::test]
async fn a_denied_address_in_a_url_is_refused_at_create() {
    let server = Server::start_with(|config| config.deny_cidr.push(cidr("127.0.0.2/32"))).await;
    for url in [
        "http://127.0.0.2:9/answer",
        "http://169.254.169.254/latest/meta-data",
    ] {
        let refused = server
            .endpoints()
            .create_endpoint(pb::CreateEndpointRequest {
                endpoint: Some(endpoint(url)),
            })
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{url}");
        assert!(
            refused.message().contains("endpoint.http.url")
                && refused.message().contains("--deny-cidr"),
            "{refused:?}"
        );
    }
}

#[tokio::test]
async fn a_name_that_resolves_to_a_denied_address_is_blocked_when_connecting() {
    let server = Server::start_with(|config| {
        config.deny_cidr = vec![cidr("127.0.0.0/8"), cidr("::1/128")];
    })
    .await;
    let target = Recorder::start().await;
    let port = target.url.rsplit(':').next().unwrap().to_string();
    create_endpoint(
        &server,
        endpoint(&format!("http://localhost:{port}/answer")),
    )
    .await;
    let error = error_of_one_call(&server).await;
    assert!(error.contains("refused by the outbound policy"), "{error}");
    assert!(target.headers().is_empty(), "the call was made");
}

#[tokio::test]
async fn a_redirect_to_a_denied_address_is_blocked() {
    let server = Server::start_with(|config| config.deny_cidr.push(cidr("127.0.0.2/32"))).await;
    let target = Recorder::start().await;
    create_endpoint(
        &server,
        endpoint(&format!(
            "{}/redirect?to=http://127.0.0.2:9/answer",
            target.url
        )),
    )
    .await;
    let error = error_of_one_call(&server).await;
    assert!(
        error.contains("blocked") && error.contains("127.0.0.2"),
        "{error}"
    );
}
