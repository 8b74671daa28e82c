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
    assert_pages(lister, 120, 50, &[50, 50, 20]).await;
}

async fn without_a_page_size_a_page_holds_50(lister: Lister) {
    assert_pages(lister, 51, 0, &[50, 1]).await;
}

async fn an_empty_list_has_no_next_page_token(lister: Lister) {
    // One empty page: a token would have asked for a second.
    assert_pages(lister, 0, 0, &[0]).await;
}

async fn a_page_size_above_1000_is_capped_at_1000(lister: Lister) {
    assert_pages(lister, 1001, 5000, &[1000, 1]).await;
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

/// Creates `count` items and lists them with `page_size` from the first page to the one without
/// a next page token: pages of `sizes` items, together every item in creation order.
async fn assert_pages(lister: Lister, count: usize, page_size: i32, sizes: &[usize]) {
    let server = Server::start().await;
    let created = lister.create(&server, count).await;
    let pages = lister.every_page(&server, page_size).await;
    let listed: Vec<usize> = pages.iter().map(Vec::len).collect();
    assert_eq!(listed, sizes, "page sizes");
    assert_eq!(pages.concat(), created);
}
