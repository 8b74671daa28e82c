//! Paging, which every list RPC promises alike (ListMetrics, ListBehaviors, ListEndpoints,
//! ListTestSets and ListTests): pages of the size asked for, 50 when none is, at most 1000, in
//! creation order, and `INVALID_ARGUMENT` for a negative size or a token the server did not
//! issue. Each case is written once, over a [`Lister`], and is a test of every list RPC:
//! `catalogue::paging::<case>::<rpc>`.

use assay::proto::v1 as pb;
use tonic::Status;

use crate::fixtures::{create_test_set, test};
use crate::harness::Server;

use super::{Resource, assert_invalid};

for_each!(Lister [
        list_metrics: Metrics,
        list_behaviors: Behaviors,
        list_endpoints: Endpoints,
        list_test_sets: TestSets,
        list_tests: Tests,
    ]
    items_are_listed_in_pages_of_the_requested_size_in_creation_order,
    without_a_page_size_a_page_holds_50,
    an_empty_list_has_no_next_page_token,
    a_page_size_above_1000_is_capped_at_1000,
    an_invalid_page_token_is_invalid_argument_naming_page_token,
    a_negative_page_size_is_invalid_argument_naming_page_size,
);

async fn items_are_listed_in_pages_of_the_requested_size_in_creation_order(lister: Lister) {
    let server = Server::start().await;
    let created = lister.create(&server, 120).await;
    let pages = lister.every_page(&server, 50).await;
    let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
    assert_eq!(sizes, [50, 50, 20]);
    assert_eq!(pages.concat(), created);
}

async fn without_a_page_size_a_page_holds_50(lister: Lister) {
    let server = Server::start().await;
    let created = lister.create(&server, 51).await;
    let first = lister.page(&server, 0, "").await.expect("list");
    assert_eq!(first.names, created[..50]);
    assert!(!first.next_page_token.is_empty());
    let rest = lister.page(&server, 0, &first.next_page_token).await;
    let rest = rest.expect("list");
    assert_eq!(rest.names, created[50..]);
    assert_eq!(rest.next_page_token, "");
}

async fn an_empty_list_has_no_next_page_token(lister: Lister) {
    let server = Server::start().await;
    lister.create(&server, 0).await;
    let page = lister.page(&server, 0, "").await.expect("list");
    assert!(page.names.is_empty(), "{:?}", page.names);
    assert_eq!(page.next_page_token, "");
}

async fn a_page_size_above_1000_is_capped_at_1000(lister: Lister) {
    let server = Server::start().await;
    let created = lister.create(&server, 1001).await;
    let first = lister.page(&server, 5000, "").await.expect("list");
    assert_eq!(first.names.len(), 1000);
    assert_eq!(first.names, created[..1000]);
    assert!(!first.next_page_token.is_empty());
    let rest = lister.page(&server, 5000, &first.next_page_token).await;
    let rest = rest.expect("list");
    assert_eq!(rest.names, created[1000..]);
    assert_eq!(rest.next_page_token, "");
}

async fn an_invalid_page_token_is_invalid_argument_naming_page_token(lister: Lister) {
    let server = Server::start().await;
    lister.create(&server, 1).await;
    let status = lister.page(&server, 10, "not-a-token").await.unwrap_err();
    assert_invalid(&status, "page_token");
}

async fn a_negative_page_size_is_invalid_argument_naming_page_size(lister: Lister) {
    let server = Server::start().await;
    lister.create(&server, 1).await;
    let status = lister.page(&server, -1, "").await.unwrap_err();
    assert_invalid(&status, "page_size");
}

/// A list RPC: `ListMetrics`, ..., `ListTests` (of one test set).
#[derive(Clone, Copy, Debug)]
enum Lister {
    Metrics,
    Behaviors,
    Endpoints,
    TestSets,
    Tests,
}

/// The test set whose tests `Lister::Tests` lists.
const TEST_SET: &str = "listed";

/// One page of a list: the names of its items (of a test, its prompt) and the next page's token.
#[derive(Debug)]
struct Page {
    names: Vec<String>,
    next_page_token: String,
}

impl Lister {
    /// Creates `count` items of the kind this RPC lists (for ListTests, a test set of `count`
    /// tests) and returns their names in creation order.
    async fn create(self, server: &Server, count: usize) -> Vec<String> {
        let names: Vec<String> = (0..count).map(|i| format!("item-{i:04}")).collect();
        let resource = match self {
            Lister::Metrics => Resource::Metric,
            Lister::Behaviors => Resource::Behavior,
            Lister::Endpoints => Resource::Endpoint,
            Lister::TestSets => Resource::TestSet,
            Lister::Tests => {
                let tests = names.iter().map(|prompt| test(prompt, "", &[])).collect();
                create_test_set(server, TEST_SET, &[], tests).await;
                return names;
            }
        };
        for name in &names {
            resource.create(server, name).await;
        }
        names
    }

    /// One call of this RPC.
    async fn page(self, server: &Server, page_size: i32, page_token: &str) -> Result<Page, Status> {
        let page_token = page_token.to_string();
        let (names, next_page_token) = match self {
            Lister::Metrics => {
                let request = pb::ListMetricsRequest {
                    page_size,
                    page_token,
                };
                let page = server.metrics().list_metrics(request).await?.into_inner();
                let names = page.metrics.into_iter().map(|m| m.name).collect();
                (names, page.next_page_token)
            }
            Lister::Behaviors => {
                let request = pb::ListBehaviorsRequest {
                    page_size,
                    page_token,
                };
                let page = server
                    .behaviors()
                    .list_behaviors(request)
                    .await?
                    .into_inner();
                let names = page.behaviors.into_iter().map(|b| b.name).collect();
                (names, page.next_page_token)
            }
            Lister::Endpoints => {
                let request = pb::ListEndpointsRequest {
                    page_size,
                    page_token,
                };
                let page = server
                    .endpoints()
                    .list_endpoints(request)
                    .await?
                    .into_inner();
                let names = page.endpoints.into_iter().map(|e| e.name).collect();
                (names, page.next_page_token)
            }
            Lister::TestSets => {
                let request = pb::ListTestSetsRequest {
                    page_size,
                    page_token,
                };
                let page = server
                    .test_sets()
                    .list_test_sets(request)
                    .await?
                    .into_inner();
                let names = page.test_sets.into_iter().map(|s| s.name).collect();
                (names, page.next_page_token)
            }
            Lister::Tests => {
                let request = pb::ListTestsRequest {
                    test_set: TEST_SET.into(),
                    page_size,
                    page_token,
                };
                let page = server.test_sets().list_tests(request).await?.into_inner();
                let names = page.tests.into_iter().map(|t| t.prompt).collect();
                (names, page.next_page_token)
            }
        };
        Ok(Page {
            names,
            next_page_token,
        })
    }

    /// Every page from the first, read with `page_size`: the names on each. Each page's token
    /// differs from the one before.
    async fn every_page(self, server: &Server, page_size: i32) -> Vec<Vec<String>> {
        let mut pages = Vec::new();
        let mut token = String::new();
        loop {
            let page = self.page(server, page_size, &token).await.expect("list");
            pages.push(page.names);
            if page.next_page_token.is_empty() {
                return pages;
            }
            assert_ne!(page.next_page_token, token, "the same token twice");
            token = page.next_page_token;
            assert!(pages.len() < 100, "paging does not end");
        }
    }
}
