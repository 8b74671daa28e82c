//! The catalogue RPCs (metrics, behaviours, endpoints, test sets and tests) through the generated
//! clients against a real server, every error case included: a file per service, and one per
//! concern that every kind shares (paging, references, validation), written once over the kinds
//! in `kinds.rs`. This file holds the helpers they all use.

/// Makes each `case`, an async fn of one `Kind`, a module of tests: one test per kind, named as
/// listed. `for_each!(Kind [metric: Metric, behavior: Behavior] a_case)` gives the tests
/// `a_case::metric` and `a_case::behavior`, which run `a_case(Kind::Metric)` and
/// `a_case(Kind::Behavior)`.
macro_rules! for_each {
    ($kind:ident $tests:tt $($case:ident),+ $(,)?) => {
        $(for_each!(@case $kind $tests $case);)+
    };
    (@case $kind:ident [$($test:ident: $variant:ident),+ $(,)?] $case:ident) => {
        mod $case {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$case(super::$kind::$variant).await
                }
            )+
        }
    };
}

mod behaviors;
mod concurrent_updates;
mod endpoints;
mod import;
mod kinds;
mod metrics;
mod paging;
mod references;
mod test_sets;
mod validation;

use std::collections::HashMap;

use assay::proto::v1 as pb;
use prost_types::FieldMask;
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::harness::Server;

/// The create, get, update and delete RPCs of each kind, through its generated client: the
/// request built from the arguments, the response unwrapped. `try_create_metric(server, metric)`
/// (or `None` for a request without the metric), `get_metric(server, "id or name")`,
/// `update_metric(server, metric, mask)`, `delete_metric(server, "id or name")`; likewise for
/// behaviours, endpoints and test sets.
macro_rules! rpcs {
    ($($client:ident: $message:ident in $field:ident {
        $try_create:ident = $create:ident($create_request:ident),
        $get:ident($get_request:ident),
        $update:ident($update_request:ident),
        $delete:ident($delete_request:ident) $(,)?
    })+) => {$(
        async fn $try_create(
            server: &Server,
            message: impl Into<Option<pb::$message>>,
        ) -> Result<pb::$message, Status> {
            let request = pb::$create_request { $field: message.into() };
            Ok(server.$client().$create(request).await?.into_inner())
        }

        async fn $get(server: &Server, reference: &str) -> Result<pb::$message, Status> {
            let request = pb::$get_request { $field: reference.into() };
            Ok(server.$client().$get(request).await?.into_inner())
        }

        async fn $update(
            server: &Server,
            message: pb::$message,
            update_mask: Option<FieldMask>,
        ) -> Result<pb::$message, Status> {
            let request = pb::$update_request { $field: Some(message), update_mask };
            Ok(server.$client().$update(request).await?.into_inner())
        }

        async fn $delete(server: &Server, reference: &str) -> Result<(), Status> {
            let request = pb::$delete_request { $field: reference.into() };
            server.$client().$delete(request).await?;
            Ok(())
        }
    )+};
}

rpcs! {
    metrics: Metric in metric {
        try_create_metric = create_metric(CreateMetricRequest),
        get_metric(GetMetricRequest),
        update_metric(UpdateMetricRequest),
        delete_metric(DeleteMetricRequest),
    }
    behaviors: Behavior in behavior {
        try_create_behavior = create_behavior(CreateBehaviorRequest),
        get_behavior(GetBehaviorRequest),
        update_behavior(UpdateBehaviorRequest),
        delete_behavior(DeleteBehaviorRequest),
    }
    endpoints: Endpoint in endpoint {
        try_create_endpoint = create_endpoint(CreateEndpointRequest),
        get_endpoint(GetEndpointRequest),
        update_endpoint(UpdateEndpointRequest),
        delete_endpoint(DeleteEndpointRequest),
    }
    test_sets: TestSet in test_set {
        try_create_test_set = create_test_set(CreateTestSetRequest),
        get_test_set(GetTestSetRequest),
        update_test_set(UpdateTestSetRequest),
        delete_test_set(DeleteTestSetRequest),
    }
}

/// `INVALID_ARGUMENT` naming `field` in the message and in the `BadRequest` details.
#[track_caller]
fn assert_invalid(status: &Status, field: &str) {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().contains(field),
        "the message does not name {field}: {:?}",
        status.message()
    );
    let bad_request = status
        .get_details_bad_request()
        .unwrap_or_else(|| panic!("no BadRequest details in {status:?}"));
    assert!(
        bad_request
            .field_violations
            .iter()
            .any(|v| v.field == field),
        "no violation of {field} in {:?}",
        bad_request.field_violations
    );
}

/// `code` with a message that contains every one of `words`.
#[track_caller]
fn assert_status(status: &Status, code: Code, words: &[&str]) {
    assert_eq!(status.code(), code, "{status:?}");
    for word in words {
        assert!(
            status.message().contains(word),
            "the message does not name {word:?}: {:?}",
            status.message()
        );
    }
}

fn mask(paths: &[&str]) -> Option<FieldMask> {
    Some(FieldMask {
        paths: paths.iter().map(|p| p.to_string()).collect(),
    })
}

fn random_uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Creates a behaviour named `name` that uses `metrics` (ids or names).
async fn create_behavior(
    server: &Server,
    name: &str,
    metrics: &[&str],
) -> Result<pb::Behavior, Status> {
    let behavior = pb::Behavior {
        name: name.into(),
        metrics: ids(metrics.iter().copied()),
        ..Default::default()
    };
    try_create_behavior(server, behavior).await
}

async fn add_tests(
    server: &Server,
    test_set: &str,
    tests: Vec<pb::Test>,
) -> Result<Vec<pb::Test>, Status> {
    server
        .test_sets()
        .add_tests(pb::AddTestsRequest {
            test_set: test_set.into(),
            tests,
        })
        .await
        .map(|r| r.into_inner().tests)
}

/// RemoveTests of the tests `test_ids` from the test set `test_set`: how many were removed.
async fn remove_tests(server: &Server, test_set: &str, test_ids: &[&str]) -> Result<u32, Status> {
    let request = pb::RemoveTestsRequest {
        test_set: test_set.into(),
        test_ids: ids(test_ids.iter().copied()),
    };
    let response = server.test_sets().remove_tests(request).await?;
    Ok(response.into_inner().removed_count)
}

/// Every test of a test set, read page by page with `page_size`, and the number of pages.
async fn all_tests(server: &Server, test_set: &str, page_size: i32) -> (Vec<pb::Test>, usize) {
    let mut client = server.test_sets();
    let mut tests = Vec::new();
    let mut pages = 0;
    let mut token = String::new();
    loop {
        let page = client
            .list_tests(pb::ListTestsRequest {
                test_set: test_set.into(),
                page_size,
                page_token: token,
            })
            .await
            .expect("list tests")
            .into_inner();
        pages += 1;
        tests.extend(page.tests);
        if page.next_page_token.is_empty() {
            return (tests, pages);
        }
        token = page.next_page_token;
    }
}

fn ids<'a>(items: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    items.into_iter().map(str::to_string).collect()
}

fn headers(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A bare HTTP endpoint with only a URL.
fn bare_http(name: &str, url: &str) -> pb::Endpoint {
    pb::Endpoint {
        name: name.into(),
        target: Some(pb::endpoint::Target::Http(pb::HttpTarget {
            url: url.into(),
            ..Default::default()
        })),
        ..Default::default()
    }
}
