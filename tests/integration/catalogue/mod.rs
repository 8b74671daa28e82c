//! The catalogue RPCs (metrics, behaviours, endpoints, test sets and tests) through the generated
//! clients against a real server, every error case included: a file per service, and one per
//! concern that every service shares (paging, references). This file holds the helpers they share.

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
mod endpoints;
mod metrics;
mod paging;
mod references;
mod test_sets;
mod update_masks;

use std::collections::HashMap;

use assay::proto::v1 as pb;
use prost_types::FieldMask;
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::fixtures::{create_endpoint, create_metric, create_test_set, exact};
use crate::harness::Server;

/// The four kinds of catalogue resource, for the cases they all share.
#[derive(Clone, Copy, Debug)]
enum Resource {
    Metric,
    Behavior,
    Endpoint,
    TestSet,
}

/// The id, name and description of a resource of any kind: what the shared cases read and write.
#[derive(Clone, Debug, Default, PartialEq)]
struct Record {
    id: String,
    name: String,
    description: String,
}

/// A `Record` from each resource message, and a message with only a record's fields set.
macro_rules! record_of {
    ($($message:ty),+) => {$(
        impl From<$message> for Record {
            fn from(m: $message) -> Record {
                Record { id: m.id, name: m.name, description: m.description }
            }
        }

        impl From<Record> for $message {
            fn from(r: Record) -> $message {
                Self { id: r.id, name: r.name, description: r.description, ..Default::default() }
            }
        }
    )+};
}

record_of!(pb::Metric, pb::Behavior, pb::Endpoint, pb::TestSet);

impl Resource {
    /// The request field that names one: `metric`, `behavior`, `endpoint` or `test_set`.
    fn field(self) -> &'static str {
        match self {
            Resource::Metric => "metric",
            Resource::Behavior => "behavior",
            Resource::Endpoint => "endpoint",
            Resource::TestSet => "test_set",
        }
    }

    /// Creates one named `name` with only what it requires; returns its id.
    async fn create(self, server: &Server, name: &str) -> String {
        match self {
            Resource::Metric => create_metric(server, exact(name)).await.id,
            Resource::Behavior => {
                let behavior = create_behavior(server, name, &[]).await;
                behavior.expect("create behavior").into_inner().id
            }
            Resource::Endpoint => {
                let endpoint = bare_http(name, "http://127.0.0.1:9/");
                create_endpoint(server, endpoint).await.id
            }
            Resource::TestSet => create_test_set(server, name, &[], vec![]).await.id,
        }
    }

    /// `Get<Kind>` of `reference` (an id or a name).
    async fn get(self, server: &Server, reference: &str) -> Result<Record, Status> {
        let reference = reference.to_string();
        Ok(match self {
            Resource::Metric => {
                let request = pb::GetMetricRequest { metric: reference };
                server
                    .metrics()
                    .get_metric(request)
                    .await?
                    .into_inner()
                    .into()
            }
            Resource::Behavior => {
                let request = pb::GetBehaviorRequest {
                    behavior: reference,
                };
                server
                    .behaviors()
                    .get_behavior(request)
                    .await?
                    .into_inner()
                    .into()
            }
            Resource::Endpoint => {
                let request = pb::GetEndpointRequest {
                    endpoint: reference,
                };
                server
                    .endpoints()
                    .get_endpoint(request)
                    .await?
                    .into_inner()
                    .into()
            }
            Resource::TestSet => {
                let request = pb::GetTestSetRequest {
                    test_set: reference,
                };
                server
                    .test_sets()
                    .get_test_set(request)
                    .await?
                    .into_inner()
                    .into()
            }
        })
    }

    /// `Update<Kind>` with a message of only `record`'s fields.
    async fn update(
        self,
        server: &Server,
        record: Record,
        update_mask: Option<FieldMask>,
    ) -> Result<Record, Status> {
        Ok(match self {
            Resource::Metric => {
                let metric = Some(record.into());
                let request = pb::UpdateMetricRequest {
                    metric,
                    update_mask,
                };
                server
                    .metrics()
                    .update_metric(request)
                    .await?
                    .into_inner()
                    .into()
            }
            Resource::Behavior => {
                let behavior = Some(record.into());
                let request = pb::UpdateBehaviorRequest {
                    behavior,
                    update_mask,
                };
                server
                    .behaviors()
                    .update_behavior(request)
                    .await?
                    .into_inner()
                    .into()
            }
            Resource::Endpoint => {
                let endpoint = Some(record.into());
                let request = pb::UpdateEndpointRequest {
                    endpoint,
                    update_mask,
                };
                server
                    .endpoints()
                    .update_endpoint(request)
                    .await?
                    .into_inner()
                    .into()
            }
            Resource::TestSet => {
                let test_set = Some(record.into());
                let request = pb::UpdateTestSetRequest {
                    test_set,
                    update_mask,
                };
                server
                    .test_sets()
                    .update_test_set(request)
                    .await?
                    .into_inner()
                    .into()
            }
        })
    }

    /// `Delete<Kind>` of `reference` (an id or a name).
    async fn delete(self, server: &Server, reference: &str) -> Result<(), Status> {
        let reference = reference.to_string();
        match self {
            Resource::Metric => {
                let request = pb::DeleteMetricRequest { metric: reference };
                server.metrics().delete_metric(request).await?;
            }
            Resource::Behavior => {
                let request = pb::DeleteBehaviorRequest {
                    behavior: reference,
                };
                server.behaviors().delete_behavior(request).await?;
            }
            Resource::Endpoint => {
                let request = pb::DeleteEndpointRequest {
                    endpoint: reference,
                };
                server.endpoints().delete_endpoint(request).await?;
            }
            Resource::TestSet => {
                let request = pb::DeleteTestSetRequest {
                    test_set: reference,
                };
                server.test_sets().delete_test_set(request).await?;
            }
        }
        Ok(())
    }
}

/// The error of a call that must fail.
fn error<T: std::fmt::Debug>(result: Result<tonic::Response<T>, Status>) -> Status {
    match result {
        Ok(response) => panic!("the call succeeded: {:?}", response.into_inner()),
        Err(status) => status,
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

async fn create_behavior(
    server: &Server,
    name: &str,
    metrics: &[&str],
) -> Result<tonic::Response<pb::Behavior>, Status> {
    let behavior = pb::Behavior {
        name: name.into(),
        metrics: metrics.iter().map(|m| m.to_string()).collect(),
        ..Default::default()
    };
    server
        .behaviors()
        .create_behavior(pb::CreateBehaviorRequest {
            behavior: Some(behavior),
        })
        .await
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
