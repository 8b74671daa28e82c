//! Paging of the list RPCs: page sizes, the default and the cap, page tokens.

use assay::proto::v1 as pb;

use crate::fixtures::*;
use crate::harness::Server;

use super::{assert_invalid, error};

#[tokio::test]
async fn metrics_are_listed_in_pages_of_the_requested_size_in_creation_order() {
    let server = Server::start().await;
    let mut created = Vec::new();
    for i in 0..120 {
        created.push(
            create_metric(&server, regex(&format!("m{i:03}"), "x"))
                .await
                .id,
        );
    }
    let mut client = server.metrics();
    let mut listed = Vec::new();
    let mut sizes = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_metrics(pb::ListMetricsRequest {
                page_size: 50,
                page_token: token.clone(),
            })
            .await
            .expect("list")
            .into_inner();
        sizes.push(page.metrics.len());
        listed.extend(page.metrics.into_iter().map(|m| m.id));
        if page.next_page_token.is_empty() {
            break;
        }
        assert_ne!(page.next_page_token, token);
        token = page.next_page_token;
        assert!(sizes.len() < 10, "paging does not end");
    }
    assert_eq!(sizes, [50, 50, 20]);
    assert_eq!(listed, created);

    // No page size: 50.
    let first = client
        .list_metrics(pb::ListMetricsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.metrics.len(), 50);
    assert!(!first.next_page_token.is_empty());
    assert_eq!(
        first
            .metrics
            .iter()
            .map(|m| m.id.clone())
            .collect::<Vec<_>>(),
        created[..50]
    );
}

#[tokio::test]
async fn an_empty_list_has_no_next_page_token() {
    let server = Server::start().await;
    let metrics = server
        .metrics()
        .list_metrics(pb::ListMetricsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(metrics.metrics.is_empty());
    assert_eq!(metrics.next_page_token, "");
    let behaviors = server
        .behaviors()
        .list_behaviors(pb::ListBehaviorsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(behaviors.behaviors.is_empty());
    assert_eq!(behaviors.next_page_token, "");
}

#[tokio::test]
async fn a_page_size_above_1000_is_capped_at_1000() {
    let server = Server::start().await;
    create_test_set(
        &server,
        "big",
        &[],
        (0..1500).map(|i| test(&format!("p{i}"), "", &[])).collect(),
    )
    .await;
    let mut client = server.test_sets();
    let first = client
        .list_tests(pb::ListTestsRequest {
            test_set: "big".into(),
            page_size: 5000,
            page_token: String::new(),
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(first.tests.len(), 1000);
    assert!(!first.next_page_token.is_empty());
    let rest = client
        .list_tests(pb::ListTestsRequest {
            test_set: "big".into(),
            page_size: 5000,
            page_token: first.next_page_token,
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(rest.tests.len(), 500);
    assert_eq!(rest.next_page_token, "");
    assert_eq!(rest.tests[499].prompt, "p1499");
}

#[tokio::test]
async fn an_invalid_page_token_is_invalid_argument_naming_page_token() {
    let server = Server::start().await;
    create_test_set(&server, "set", &[], vec![test("p", "", &[])]).await;
    let token = "not-a-token".to_string();
    let status = error(
        server
            .metrics()
            .list_metrics(pb::ListMetricsRequest {
                page_size: 10,
                page_token: token.clone(),
            })
            .await,
    );
    assert_invalid(&status, "page_token");
    let status = error(
        server
            .behaviors()
            .list_behaviors(pb::ListBehaviorsRequest {
                page_size: 10,
                page_token: token.clone(),
            })
            .await,
    );
    assert_invalid(&status, "page_token");
    let status = error(
        server
            .endpoints()
            .list_endpoints(pb::ListEndpointsRequest {
                page_size: 10,
                page_token: token.clone(),
            })
            .await,
    );
    assert_invalid(&status, "page_token");
    let status = error(
        server
            .test_sets()
            .list_test_sets(pb::ListTestSetsRequest {
                page_size: 10,
                page_token: token.clone(),
            })
            .await,
    );
    assert_invalid(&status, "page_token");
    let status = error(
        server
            .test_sets()
            .list_tests(pb::ListTestsRequest {
                test_set: "set".into(),
                page_size: 10,
                page_token: token,
            })
            .await,
    );
    assert_invalid(&status, "page_token");
}

#[tokio::test]
async fn a_negative_page_size_is_invalid_argument_naming_page_size() {
    let server = Server::start().await;
    create_test_set(&server, "set", &[], vec![test("p", "", &[])]).await;
    let status = error(
        server
            .metrics()
            .list_metrics(pb::ListMetricsRequest {
                page_size: -1,
                page_token: String::new(),
            })
            .await,
    );
    assert_invalid(&status, "page_size");
    let status = error(
        server
            .behaviors()
            .list_behaviors(pb::ListBehaviorsRequest {
                page_size: -1,
                page_token: String::new(),
            })
            .await,
    );
    assert_invalid(&status, "page_size");
    let status = error(
        server
            .endpoints()
            .list_endpoints(pb::ListEndpointsRequest {
                page_size: -1,
                page_token: String::new(),
            })
            .await,
    );
    assert_invalid(&status, "page_size");
    let status = error(
        server
            .test_sets()
            .list_test_sets(pb::ListTestSetsRequest {
                page_size: -1,
                page_token: String::new(),
            })
            .await,
    );
    assert_invalid(&status, "page_size");
    let status = error(
        server
            .test_sets()
            .list_tests(pb::ListTestsRequest {
                test_set: "set".into(),
                page_size: -1,
                page_token: String::new(),
            })
            .await,
    );
    assert_invalid(&status, "page_size");
}
