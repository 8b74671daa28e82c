//! Paging, which every list RPC promises alike (ListMetrics, ListBehaviors, ListEndpoints,
//! ListTestSets and ListTests): pages of the size asked for, 50 when none is, at most 1000, in
//! creation order, and `INVALID_ARGUMENT` for a negative size or a token the server did not
//! issue. Each case is written once, over a [`Lister`], and is a test of every list RPC:
//! `catalogue::paging::<case>::<rpc>`.

use crate::harness::Server;

use super::assert_invalid;
use super::kinds::Lister;

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
