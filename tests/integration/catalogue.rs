//! The catalogue RPCs (metrics, behaviours, endpoints, test sets and tests) through the generated
//! clients against a real server, every error case included.

use std::collections::HashMap;

use assay::proto::v1 as pb;
use prost_types::FieldMask;
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::app_server::Target;
use crate::fixtures::*;
use crate::harness::Server;

// ---- helpers

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

async fn create_metric_result(
    server: &Server,
    metric: pb::Metric,
) -> Result<tonic::Response<pb::Metric>, Status> {
    server
        .metrics()
        .create_metric(pb::CreateMetricRequest {
            metric: Some(metric),
        })
        .await
}

async fn get_metric(server: &Server, reference: &str) -> Result<pb::Metric, Status> {
    server
        .metrics()
        .get_metric(pb::GetMetricRequest {
            metric: reference.into(),
        })
        .await
        .map(|r| r.into_inner())
}

async fn update_metric(
    server: &Server,
    metric: pb::Metric,
    update_mask: Option<FieldMask>,
) -> Result<tonic::Response<pb::Metric>, Status> {
    server
        .metrics()
        .update_metric(pb::UpdateMetricRequest {
            metric: Some(metric),
            update_mask,
        })
        .await
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

async fn create_endpoint_result(
    server: &Server,
    endpoint: pb::Endpoint,
) -> Result<tonic::Response<pb::Endpoint>, Status> {
    server
        .endpoints()
        .create_endpoint(pb::CreateEndpointRequest {
            endpoint: Some(endpoint),
        })
        .await
}

async fn get_endpoint(server: &Server, reference: &str) -> pb::Endpoint {
    server
        .endpoints()
        .get_endpoint(pb::GetEndpointRequest {
            endpoint: reference.into(),
        })
        .await
        .expect("get endpoint")
        .into_inner()
}

async fn get_test_set(server: &Server, reference: &str) -> Result<pb::TestSet, Status> {
    server
        .test_sets()
        .get_test_set(pb::GetTestSetRequest {
            test_set: reference.into(),
        })
        .await
        .map(|r| r.into_inner())
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

fn prompts(tests: &[pb::Test]) -> Vec<&str> {
    tests.iter().map(|t| t.prompt.as_str()).collect()
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

fn http(endpoint: &pb::Endpoint) -> &pb::HttpTarget {
    match &endpoint.target {
        Some(pb::endpoint::Target::Http(h)) => h,
        other => panic!("not an http endpoint: {other:?}"),
    }
}

fn http_mut(endpoint: &mut pb::Endpoint) -> &mut pb::HttpTarget {
    match &mut endpoint.target {
        Some(pb::endpoint::Target::Http(h)) => h,
        other => panic!("not an http endpoint: {other:?}"),
    }
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

/// An LLM-judge metric (numeric by nature).
fn judge(name: &str) -> pb::Metric {
    pb::Metric {
        name: name.into(),
        kind: Some(pb::metric::Kind::LlmJudge(pb::LlmJudge {
            base_url: "http://127.0.0.1:9/v1".into(),
            model: "judge".into(),
            evaluation_prompt: "Rate {{ output }}".into(),
            ..Default::default()
        })),
        ..Default::default()
    }
}

// ---- metrics

#[tokio::test]
async fn creating_a_metric_fills_in_the_defaults() {
    let server = Server::start().await;
    for metric in [contains("c", &["x"]), regex("r", "^a"), exact("e")] {
        let created = create_metric(&server, metric).await;
        assert!(
            uuid::Uuid::parse_str(&created.id).is_ok(),
            "id {:?} is not a UUID",
            created.id
        );
        assert_eq!(
            created.score_type,
            pb::ScoreType::Binary as i32,
            "{}",
            created.name
        );
        assert_eq!(created.threshold_operator, "==", "{}", created.name);
        assert!(created.created_at.is_some() && created.updated_at.is_some());
    }
    let numeric = create_metric(&server, judge("j")).await;
    assert_eq!(numeric.score_type, pb::ScoreType::Numeric as i32);
    assert_eq!(numeric.threshold_operator, ">=");
    let Some(pb::metric::Kind::LlmJudge(settings)) = numeric.kind else {
        panic!("kind lost")
    };
    assert_eq!((settings.min_score, settings.max_score), (0.0, 1.0));
}

#[tokio::test]
async fn a_metric_can_be_fetched_by_id_or_by_name() {
    let server = Server::start().await;
    let mut metric = contains("mentions-paris", &["Paris", "paris"]);
    metric.description = "says Paris".into();
    metric.requires_expected = true;
    let created = create_metric(&server, metric).await;

    let by_id = get_metric(&server, &created.id).await.expect("by id");
    let by_name = get_metric(&server, "mentions-paris")
        .await
        .expect("by name");
    assert_eq!(by_id, created);
    assert_eq!(by_name, created);
    assert_eq!(by_id.description, "says Paris");
    assert!(by_id.requires_expected);
    assert_eq!(
        by_id.kind,
        Some(pb::metric::Kind::Contains(pb::Contains {
            values: ids(["Paris", "paris"]),
            match_all: false,
            case_sensitive: false
        }))
    );
}

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

#[tokio::test]
async fn an_update_with_a_mask_changes_only_the_masked_fields() {
    let server = Server::start().await;
    let created = create_metric(&server, regex("r", "^yes")).await;
    let request = pb::Metric {
        id: created.id.clone(),
        name: "other-name".into(),
        description: "new description".into(),
        threshold_operator: "!=".into(),
        kind: Some(pb::metric::Kind::Regex(pb::Regex {
            pattern: "^no".into(),
            ..Default::default()
        })),
        ..Default::default()
    };
    let updated = update_metric(&server, request, mask(&["description"]))
        .await
        .expect("update")
        .into_inner();
    assert_eq!(updated.description, "new description");
    assert_eq!(updated.name, "r");
    assert_eq!(updated.threshold_operator, "==");
    assert_eq!(updated.kind, created.kind);
    assert_eq!(updated.created_at, created.created_at);
    assert_eq!(
        get_metric(&server, &created.id).await.unwrap(),
        updated,
        "the update was not stored"
    );

    // A masked field that is empty in the request is cleared.
    let request = pb::Metric {
        id: created.id.clone(),
        ..Default::default()
    };
    let cleared = update_metric(&server, request, mask(&["description"]))
        .await
        .expect("update")
        .into_inner();
    assert_eq!(cleared.description, "");
    assert_eq!(cleared.name, "r");
}

#[tokio::test]
async fn an_update_without_a_mask_changes_every_field_that_is_set() {
    let server = Server::start().await;
    let mut metric = regex("r", "^yes");
    metric.description = "old".into();
    let created = create_metric(&server, metric).await;
    let request = pb::Metric {
        id: created.id.clone(),
        threshold_operator: "!=".into(),
        kind: Some(pb::metric::Kind::Regex(pb::Regex {
            pattern: "^no".into(),
            ..Default::default()
        })),
        ..Default::default()
    };
    let updated = update_metric(&server, request, None)
        .await
        .expect("update")
        .into_inner();
    assert_eq!(updated.threshold_operator, "!=");
    assert_eq!(
        updated.kind,
        Some(pb::metric::Kind::Regex(pb::Regex {
            pattern: "^no".into(),
            ..Default::default()
        }))
    );
    // Fields left unset keep their values.
    assert_eq!(updated.name, "r");
    assert_eq!(updated.description, "old");
    assert_eq!(get_metric(&server, "r").await.unwrap(), updated);

    // An empty mask reads like no mask.
    let request = pb::Metric {
        id: created.id.clone(),
        description: "newer".into(),
        ..Default::default()
    };
    let updated = update_metric(&server, request, mask(&[]))
        .await
        .expect("update")
        .into_inner();
    assert_eq!(updated.description, "newer");
    assert_eq!(updated.threshold_operator, "!=");
}

#[tokio::test]
async fn a_metric_named_in_an_update_without_id_is_found_by_name() {
    let server = Server::start().await;
    create_metric(&server, exact("e")).await;
    let request = pb::Metric {
        name: "e".into(),
        description: "by name".into(),
        ..Default::default()
    };
    let updated = update_metric(&server, request, None)
        .await
        .expect("update by name")
        .into_inner();
    assert_eq!(updated.description, "by name");
    let request = pb::Metric {
        name: "nope".into(),
        description: "x".into(),
        ..Default::default()
    };
    assert_status(
        &error(update_metric(&server, request, None).await),
        Code::NotFound,
        &["nope"],
    );
}

#[tokio::test]
async fn a_metric_can_be_renamed() {
    let server = Server::start().await;
    let created = create_metric(&server, exact("old-name")).await;
    let request = pb::Metric {
        id: created.id.clone(),
        name: "new-name".into(),
        ..Default::default()
    };
    let renamed = update_metric(&server, request, mask(&["name"]))
        .await
        .expect("rename")
        .into_inner();
    assert_eq!(renamed.name, "new-name");
    assert_eq!(renamed.id, created.id);
    assert_eq!(
        get_metric(&server, "new-name")
            .await
            .expect("by new name")
            .id,
        created.id
    );
    assert_eq!(
        get_metric(&server, "old-name").await.unwrap_err().code(),
        Code::NotFound
    );
}

#[tokio::test]
async fn renaming_a_metric_to_a_taken_name_is_already_exists() {
    let server = Server::start().await;
    create_metric(&server, exact("first")).await;
    let second = create_metric(&server, exact("second")).await;
    let request = pb::Metric {
        id: second.id.clone(),
        name: "first".into(),
        ..Default::default()
    };
    let status = error(update_metric(&server, request, mask(&["name"])).await);
    assert_status(&status, Code::AlreadyExists, &["first"]);
    assert_eq!(
        get_metric(&server, &second.id).await.unwrap().name,
        "second"
    );
}

#[tokio::test]
async fn an_unknown_update_mask_path_is_invalid_argument_naming_update_mask() {
    let server = Server::start().await;
    let created = create_metric(&server, exact("e")).await;
    let request = pb::Metric {
        id: created.id.clone(),
        description: "x".into(),
        ..Default::default()
    };
    let status =
        error(update_metric(&server, request, mask(&["description", "no_such_field"])).await);
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().contains("update_mask"),
        "{:?}",
        status.message()
    );
    assert!(
        status.message().contains("no_such_field"),
        "{:?}",
        status.message()
    );
    let violations = status
        .get_details_bad_request()
        .expect("BadRequest details")
        .field_violations;
    assert!(
        violations
            .iter()
            .any(|v| v.field.starts_with("update_mask")),
        "{violations:?}"
    );
    assert_eq!(
        get_metric(&server, "e").await.unwrap().description,
        "",
        "a rejected update changed the metric"
    );

    // The other resources too.
    let behavior = pb::Behavior {
        name: "b".into(),
        ..Default::default()
    };
    server
        .behaviors()
        .create_behavior(pb::CreateBehaviorRequest {
            behavior: Some(behavior.clone()),
        })
        .await
        .unwrap();
    let status = error(
        server
            .behaviors()
            .update_behavior(pb::UpdateBehaviorRequest {
                behavior: Some(behavior),
                update_mask: mask(&["colour"]),
            })
            .await,
    );
    assert_invalid_mask(&status, "colour");
    create_endpoint(&server, bare_http("ep", "http://127.0.0.1:9/")).await;
    let endpoint = pb::Endpoint {
        name: "ep".into(),
        ..Default::default()
    };
    let status = error(
        server
            .endpoints()
            .update_endpoint(pb::UpdateEndpointRequest {
                endpoint: Some(endpoint),
                update_mask: mask(&["http.url"]),
            })
            .await,
    );
    assert_invalid_mask(&status, "http.url");
    create_test_set(&server, "ts", &[], vec![]).await;
    let test_set = pb::TestSet {
        name: "ts".into(),
        ..Default::default()
    };
    let status = error(
        server
            .test_sets()
            .update_test_set(pb::UpdateTestSetRequest {
                test_set: Some(test_set),
                update_mask: mask(&["test_count"]),
            })
            .await,
    );
    assert_invalid_mask(&status, "test_count");
}

/// `INVALID_ARGUMENT` about the update mask, naming the rejected `path`.
#[track_caller]
fn assert_invalid_mask(status: &Status, path: &str) {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().contains("update_mask") && status.message().contains(path),
        "{:?}",
        status.message()
    );
    let violations = status
        .get_details_bad_request()
        .expect("BadRequest details")
        .field_violations;
    assert!(
        violations
            .iter()
            .any(|v| v.field.starts_with("update_mask")),
        "{violations:?}"
    );
}

#[tokio::test]
async fn an_update_with_an_id_that_is_no_uuid_is_invalid_argument() {
    let server = Server::start().await;
    let request = pb::Metric {
        id: "not-a-uuid".into(),
        description: "x".into(),
        ..Default::default()
    };
    assert_invalid(
        &error(update_metric(&server, request, None).await),
        "metric.id",
    );
}

#[tokio::test]
async fn an_update_that_breaks_a_metric_is_rejected_and_changes_nothing() {
    let server = Server::start().await;
    let created = create_metric(&server, regex("r", "^ok")).await;
    let request = pb::Metric {
        id: created.id.clone(),
        kind: Some(pb::metric::Kind::Regex(pb::Regex {
            pattern: "(".into(),
            ..Default::default()
        })),
        ..Default::default()
    };
    assert_invalid(
        &error(update_metric(&server, request, None).await),
        "metric.regex.pattern",
    );
    assert_eq!(get_metric(&server, "r").await.unwrap(), created);
}

#[tokio::test]
async fn a_deleted_metric_is_not_found() {
    let server = Server::start().await;
    let created = create_metric(&server, exact("gone")).await;
    create_metric(&server, exact("stays")).await;
    server
        .metrics()
        .delete_metric(pb::DeleteMetricRequest {
            metric: created.id.clone(),
        })
        .await
        .expect("delete");
    assert_status(
        &get_metric(&server, &created.id).await.unwrap_err(),
        Code::NotFound,
        &[&created.id],
    );
    assert_status(
        &get_metric(&server, "gone").await.unwrap_err(),
        Code::NotFound,
        &["gone"],
    );
    let status = error(
        server
            .metrics()
            .delete_metric(pb::DeleteMetricRequest {
                metric: created.id.clone(),
            })
            .await,
    );
    assert_status(&status, Code::NotFound, &[&created.id]);
    let listed = server
        .metrics()
        .list_metrics(pb::ListMetricsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .metrics;
    assert_eq!(
        listed.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(),
        ["stays"]
    );

    // By name too.
    server
        .metrics()
        .delete_metric(pb::DeleteMetricRequest {
            metric: "stays".into(),
        })
        .await
        .expect("delete by name");
    assert_eq!(
        get_metric(&server, "stays").await.unwrap_err().code(),
        Code::NotFound
    );
}

#[tokio::test]
async fn a_metric_without_a_name_is_invalid_argument_naming_metric_name() {
    let server = Server::start().await;
    assert_invalid(
        &error(create_metric_result(&server, exact("")).await),
        "metric.name",
    );
    assert_invalid(
        &error(create_metric_result(&server, exact("   ")).await),
        "metric.name",
    );
}

#[tokio::test]
async fn a_metric_without_a_kind_is_invalid_argument_naming_metric_kind() {
    let server = Server::start().await;
    let metric = pb::Metric {
        name: "kindless".into(),
        ..Default::default()
    };
    assert_invalid(
        &error(create_metric_result(&server, metric).await),
        "metric.kind",
    );
}

#[tokio::test]
async fn a_create_without_a_metric_is_invalid_argument_naming_metric() {
    let server = Server::start().await;
    let status = error(
        server
            .metrics()
            .create_metric(pb::CreateMetricRequest { metric: None })
            .await,
    );
    assert_invalid(&status, "metric");
}

#[tokio::test]
async fn a_bad_regex_is_invalid_argument_naming_the_pattern() {
    let server = Server::start().await;
    let status = error(create_metric_result(&server, regex("bad", "([a-z")).await);
    assert_invalid(&status, "metric.regex.pattern");
    assert_eq!(
        get_metric(&server, "bad").await.unwrap_err().code(),
        Code::NotFound,
        "a rejected metric was stored"
    );
}

#[tokio::test]
async fn a_binary_metric_with_an_ordering_operator_is_invalid_argument() {
    let server = Server::start().await;
    for op in [">=", ">", "<=", "<"] {
        let mut metric = contains("c", &["x"]);
        metric.threshold_operator = op.into();
        assert_invalid(
            &error(create_metric_result(&server, metric).await),
            "metric.threshold_operator",
        );
    }
    let mut metric = contains("c", &["x"]);
    metric.score_type = pb::ScoreType::Binary as i32;
    metric.threshold_operator = "!=".into();
    assert_eq!(
        create_metric(&server, metric).await.threshold_operator,
        "!="
    );
}

#[tokio::test]
async fn an_unknown_threshold_operator_is_invalid_argument() {
    let server = Server::start().await;
    let mut metric = judge("j");
    metric.threshold_operator = "=>".into();
    let status = error(create_metric_result(&server, metric).await);
    assert_invalid(&status, "metric.threshold_operator");
    assert!(status.message().contains("=>"), "{:?}", status.message());
}

#[tokio::test]
async fn a_categorical_metric_without_categories_is_invalid_argument() {
    let server = Server::start().await;
    let mut metric = judge("cat");
    metric.score_type = pb::ScoreType::Categorical as i32;
    assert_invalid(
        &error(create_metric_result(&server, metric.clone()).await),
        "metric.categories",
    );
    metric.categories = ids(["good", "bad"]);
    assert_invalid(
        &error(create_metric_result(&server, metric.clone()).await),
        "metric.passing_categories",
    );
    metric.passing_categories = ids(["great"]);
    assert_invalid(
        &error(create_metric_result(&server, metric.clone()).await),
        "metric.passing_categories",
    );
    metric.passing_categories = ids(["good"]);
    let created = create_metric(&server, metric).await;
    assert_eq!(created.score_type, pb::ScoreType::Categorical as i32);
    assert_eq!(created.threshold_operator, "==");
}

#[tokio::test]
async fn a_metric_named_like_a_uuid_is_invalid_argument() {
    let server = Server::start().await;
    let status = error(create_metric_result(&server, exact(&random_uuid())).await);
    assert_invalid(&status, "metric.name");
}

#[tokio::test]
async fn a_duplicate_metric_name_is_already_exists() {
    let server = Server::start().await;
    create_metric(&server, exact("twice")).await;
    let status = error(create_metric_result(&server, regex("twice", "x")).await);
    assert_status(&status, Code::AlreadyExists, &["twice"]);
    let listed = server
        .metrics()
        .list_metrics(pb::ListMetricsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .metrics;
    assert_eq!(listed.len(), 1);
}

#[tokio::test]
async fn an_unknown_metric_is_not_found_naming_the_reference() {
    let server = Server::start().await;
    let id = random_uuid();
    assert_status(
        &get_metric(&server, "no-such-metric").await.unwrap_err(),
        Code::NotFound,
        &["no-such-metric"],
    );
    assert_status(
        &get_metric(&server, &id).await.unwrap_err(),
        Code::NotFound,
        &[&id],
    );
    let status = error(
        server
            .metrics()
            .delete_metric(pb::DeleteMetricRequest {
                metric: "no-such-metric".into(),
            })
            .await,
    );
    assert_status(&status, Code::NotFound, &["no-such-metric"]);
    let request = pb::Metric {
        id: id.clone(),
        description: "x".into(),
        ..Default::default()
    };
    assert_status(
        &error(update_metric(&server, request, None).await),
        Code::NotFound,
        &[&id],
    );
}

#[tokio::test]
async fn deleting_a_metric_in_use_fails_naming_its_users_until_they_stop_using_it() {
    let server = Server::start().await;
    let metric = create_metric(&server, exact("shared")).await;
    create_behavior(&server, "polite", &["shared"])
        .await
        .expect("behavior");
    create_test_set(&server, "smoke", &["shared"], vec![]).await;

    let delete = || async {
        server
            .metrics()
            .delete_metric(pb::DeleteMetricRequest {
                metric: "shared".into(),
            })
            .await
    };
    let status = error(delete().await);
    assert_status(
        &status,
        Code::FailedPrecondition,
        &["shared", "polite", "smoke"],
    );
    assert_eq!(
        get_metric(&server, "shared").await.expect("still there"),
        metric
    );

    // The behaviour stops using it: only the test set is left.
    let behavior = pb::Behavior {
        name: "polite".into(),
        ..Default::default()
    };
    server
        .behaviors()
        .update_behavior(pb::UpdateBehaviorRequest {
            behavior: Some(behavior),
            update_mask: mask(&["metrics"]),
        })
        .await
        .expect("clear behaviour metrics");
    let status = error(delete().await);
    assert_status(&status, Code::FailedPrecondition, &["smoke"]);
    assert!(
        !status.message().contains("polite"),
        "{:?}",
        status.message()
    );

    let test_set = pb::TestSet {
        name: "smoke".into(),
        ..Default::default()
    };
    server
        .test_sets()
        .update_test_set(pb::UpdateTestSetRequest {
            test_set: Some(test_set),
            update_mask: mask(&["metrics"]),
        })
        .await
        .expect("clear test set metrics");
    delete().await.expect("delete once unused");
    assert_eq!(
        get_metric(&server, "shared").await.unwrap_err().code(),
        Code::NotFound
    );
}

// ---- behaviours

#[tokio::test]
async fn behaviors_take_metrics_by_name_and_show_them_by_id() {
    let server = Server::start().await;
    let a = create_metric(&server, exact("a")).await;
    let b = create_metric(&server, regex("b", "x")).await;
    let created = create_behavior(&server, "reliability", &["a", &b.id])
        .await
        .expect("create")
        .into_inner();
    assert!(uuid::Uuid::parse_str(&created.id).is_ok());
    assert_eq!(created.metrics, [a.id.clone(), b.id.clone()]);

    let mut client = server.behaviors();
    let by_id = client
        .get_behavior(pb::GetBehaviorRequest {
            behavior: created.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let by_name = client
        .get_behavior(pb::GetBehaviorRequest {
            behavior: "reliability".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_id, created);
    assert_eq!(by_name, created);
}

#[tokio::test]
async fn behaviors_can_be_listed_updated_and_deleted() {
    let server = Server::start().await;
    let a = create_metric(&server, exact("a")).await;
    let b = create_metric(&server, exact("b")).await;
    let first = create_behavior(&server, "first", &["a"])
        .await
        .unwrap()
        .into_inner();
    let second = create_behavior(&server, "second", &[])
        .await
        .unwrap()
        .into_inner();
    let mut client = server.behaviors();

    let page = client
        .list_behaviors(pb::ListBehaviorsRequest {
            page_size: 1,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.behaviors, std::slice::from_ref(&first));
    assert!(!page.next_page_token.is_empty());
    let page = client
        .list_behaviors(pb::ListBehaviorsRequest {
            page_size: 1,
            page_token: page.next_page_token,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.behaviors, std::slice::from_ref(&second));
    assert_eq!(page.next_page_token, "");

    let request = pb::Behavior {
        id: first.id.clone(),
        description: "d".into(),
        metrics: ids(["b", "a"]),
        ..Default::default()
    };
    let updated = client
        .update_behavior(pb::UpdateBehaviorRequest {
            behavior: Some(request),
            update_mask: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.description, "d");
    assert_eq!(updated.metrics, [b.id.clone(), a.id.clone()]);
    assert_eq!(updated.name, "first");

    let request = pb::Behavior {
        id: first.id.clone(),
        name: "renamed".into(),
        description: "ignored".into(),
        ..Default::default()
    };
    let renamed = client
        .update_behavior(pb::UpdateBehaviorRequest {
            behavior: Some(request),
            update_mask: mask(&["name"]),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (renamed.name.as_str(), renamed.description.as_str()),
        ("renamed", "d")
    );

    let request = pb::Behavior {
        id: first.id.clone(),
        name: "second".into(),
        ..Default::default()
    };
    let status = error(
        client
            .update_behavior(pb::UpdateBehaviorRequest {
                behavior: Some(request),
                update_mask: mask(&["name"]),
            })
            .await,
    );
    assert_status(&status, Code::AlreadyExists, &["second"]);
    let request = pb::Behavior {
        id: first.id.clone(),
        ..Default::default()
    };
    let status = error(
        client
            .update_behavior(pb::UpdateBehaviorRequest {
                behavior: Some(request),
                update_mask: mask(&["colour"]),
            })
            .await,
    );
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("update_mask"),
        "{:?}",
        status.message()
    );

    client
        .delete_behavior(pb::DeleteBehaviorRequest {
            behavior: "renamed".into(),
        })
        .await
        .expect("delete");
    let status = error(
        client
            .get_behavior(pb::GetBehaviorRequest {
                behavior: first.id.clone(),
            })
            .await,
    );
    assert_status(&status, Code::NotFound, &[&first.id]);
    let status = error(
        client
            .delete_behavior(pb::DeleteBehaviorRequest {
                behavior: "renamed".into(),
            })
            .await,
    );
    assert_status(&status, Code::NotFound, &["renamed"]);
}

#[tokio::test]
async fn invalid_behaviors_are_rejected_naming_the_field() {
    let server = Server::start().await;
    assert_invalid(
        &error(create_behavior(&server, "", &[]).await),
        "behavior.name",
    );
    assert_invalid(
        &error(create_behavior(&server, &random_uuid(), &[]).await),
        "behavior.name",
    );
    create_metric(&server, exact("m")).await;
    assert_invalid(
        &error(create_behavior(&server, "b", &["m", ""]).await),
        "behavior.metrics[1]",
    );
    let status = error(
        server
            .behaviors()
            .create_behavior(pb::CreateBehaviorRequest { behavior: None })
            .await,
    );
    assert_invalid(&status, "behavior");
    create_behavior(&server, "b", &["m"]).await.expect("create");
    assert_status(
        &error(create_behavior(&server, "b", &[]).await),
        Code::AlreadyExists,
        &["b"],
    );
}

#[tokio::test]
async fn a_behavior_with_an_unknown_metric_is_not_found_naming_it() {
    let server = Server::start().await;
    create_metric(&server, exact("known")).await;
    let status = error(create_behavior(&server, "b", &["known", "unknown-metric"]).await);
    assert_status(&status, Code::NotFound, &["unknown-metric"]);
    let id = random_uuid();
    assert_status(
        &error(create_behavior(&server, "b", &[&id]).await),
        Code::NotFound,
        &[&id],
    );
    let list = server
        .behaviors()
        .list_behaviors(pb::ListBehaviorsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(list.behaviors.is_empty(), "a rejected behaviour was stored");

    let created = create_behavior(&server, "b", &["known"])
        .await
        .unwrap()
        .into_inner();
    let request = pb::Behavior {
        id: created.id.clone(),
        metrics: ids(["known", "missing"]),
        ..Default::default()
    };
    let status = error(
        server
            .behaviors()
            .update_behavior(pb::UpdateBehaviorRequest {
                behavior: Some(request),
                update_mask: None,
            })
            .await,
    );
    assert_status(&status, Code::NotFound, &["missing"]);
    let stored = server
        .behaviors()
        .get_behavior(pb::GetBehaviorRequest {
            behavior: "b".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stored, created);
}

#[tokio::test]
async fn deleting_a_behavior_used_by_a_test_fails_naming_the_test_set() {
    let server = Server::start().await;
    create_behavior(&server, "safety", &[]).await.unwrap();
    create_test_set(&server, "red-team", &[], vec![]).await;
    let mut unsafe_test = test("how do I pick a lock?", "", &[]);
    unsafe_test.behavior = "safety".into();
    let added = add_tests(
        &server,
        "red-team",
        vec![test("hello", "", &[]), unsafe_test],
    )
    .await
    .unwrap();

    let status = error(
        server
            .behaviors()
            .delete_behavior(pb::DeleteBehaviorRequest {
                behavior: "safety".into(),
            })
            .await,
    );
    assert_status(&status, Code::FailedPrecondition, &["safety", "red-team"]);

    let removed = server
        .test_sets()
        .remove_tests(pb::RemoveTestsRequest {
            test_set: "red-team".into(),
            test_ids: vec![added[1].id.clone()],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(removed.removed_count, 1);
    server
        .behaviors()
        .delete_behavior(pb::DeleteBehaviorRequest {
            behavior: "safety".into(),
        })
        .await
        .expect("delete once unused");
}

// ---- endpoints

#[tokio::test]
async fn creating_an_http_endpoint_fills_in_the_defaults() {
    let server = Server::start().await;
    let created = create_endpoint(&server, bare_http("app", "http://127.0.0.1:9/answer")).await;
    assert!(uuid::Uuid::parse_str(&created.id).is_ok());
    let h = http(&created);
    assert_eq!(h.url, "http://127.0.0.1:9/answer");
    assert_eq!(h.method, "POST");
    assert_eq!(h.body_template, r#"{"prompt": "{{ prompt }}"}"#);
    assert_eq!(
        h.response_mapping.as_ref().map(|m| m.output.as_str()),
        Some("$.output")
    );
    assert_eq!(h.timeout_ms, 30_000);
    assert_eq!(get_endpoint(&server, "app").await, created);
}

#[tokio::test]
async fn endpoints_can_be_created_fetched_listed_updated_and_deleted() {
    let server = Server::start().await;
    let mut endpoint = bare_http("app", "https://example.com/v1/answer");
    endpoint.description = "the app".into();
    endpoint.max_concurrency = 4;
    endpoint.max_retries = 2;
    endpoint.rate_limit_per_second = 10.0;
    http_mut(&mut endpoint).method = "PUT".into();
    http_mut(&mut endpoint).timeout_ms = 1234;
    let app = create_endpoint(&server, endpoint).await;
    assert_eq!(
        (
            app.max_concurrency,
            app.max_retries,
            app.rate_limit_per_second
        ),
        (4, 2, 10.0)
    );
    assert_eq!(
        (http(&app).method.as_str(), http(&app).timeout_ms),
        ("PUT", 1234)
    );

    let chat = create_endpoint(
        &server,
        pb::Endpoint {
            name: "chat".into(),
            target: Some(pb::endpoint::Target::OpenaiChat(pb::OpenAiChatTarget {
                base_url: "https://api.example.com/v1".into(),
                model: "gpt-test".into(),
                system_prompt: "be brief".into(),
                api_key_env: "EXAMPLE_KEY".into(),
                timeout_ms: 0,
            })),
            ..Default::default()
        },
    )
    .await;
    let Some(pb::endpoint::Target::OpenaiChat(settings)) = &chat.target else {
        panic!("not a chat endpoint: {chat:?}")
    };
    assert_eq!(settings.model, "gpt-test");
    assert_eq!(settings.system_prompt, "be brief");
    assert_eq!(settings.api_key_env, "EXAMPLE_KEY");
    assert_eq!(settings.timeout_ms, 60_000);

    assert_eq!(get_endpoint(&server, &app.id).await, app);
    assert_eq!(get_endpoint(&server, "chat").await, chat);
    let mut client = server.endpoints();
    let listed = client
        .list_endpoints(pb::ListEndpointsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.endpoints, [app.clone(), chat.clone()]);
    assert_eq!(listed.next_page_token, "");

    let request = pb::Endpoint {
        id: chat.id.clone(),
        description: "chat model".into(),
        max_concurrency: 8,
        ..Default::default()
    };
    let updated = client
        .update_endpoint(pb::UpdateEndpointRequest {
            endpoint: Some(request),
            update_mask: mask(&["description"]),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.description, "chat model");
    assert_eq!(
        updated.max_concurrency, 0,
        "a field outside the mask changed"
    );
    assert_eq!(updated.target, chat.target);

    // Switching the kind of target.
    let request = pb::Endpoint {
        id: chat.id.clone(),
        target: app.target.clone(),
        ..Default::default()
    };
    let switched = client
        .update_endpoint(pb::UpdateEndpointRequest {
            endpoint: Some(request),
            update_mask: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(switched.target, app.target);

    let request = pb::Endpoint {
        id: chat.id.clone(),
        name: "app".into(),
        ..Default::default()
    };
    let status = error(
        client
            .update_endpoint(pb::UpdateEndpointRequest {
                endpoint: Some(request),
                update_mask: mask(&["name"]),
            })
            .await,
    );
    assert_status(&status, Code::AlreadyExists, &["app"]);
    assert_status(
        &error(create_endpoint_result(&server, bare_http("app", "http://x.test/")).await),
        Code::AlreadyExists,
        &["app"],
    );

    client
        .delete_endpoint(pb::DeleteEndpointRequest {
            endpoint: "chat".into(),
        })
        .await
        .expect("delete");
    let status = error(
        client
            .get_endpoint(pb::GetEndpointRequest {
                endpoint: chat.id.clone(),
            })
            .await,
    );
    assert_status(&status, Code::NotFound, &[&chat.id]);
    let status = error(
        client
            .delete_endpoint(pb::DeleteEndpointRequest {
                endpoint: "chat".into(),
            })
            .await,
    );
    assert_status(&status, Code::NotFound, &["chat"]);
}

#[tokio::test]
async fn secret_headers_are_masked_by_create_get_list_and_update() {
    let server = Server::start().await;
    let mut endpoint = bare_http("app", "http://127.0.0.1:9/answer");
    http_mut(&mut endpoint).headers = headers(&[
        ("Authorization", "Bearer sk-live-123"),
        ("X-Api-Key", "key-456"),
        ("X-Auth-Token", "tok-789"),
        ("Client-Secret", "shh"),
        ("Content-Type", "application/json"),
    ]);
    let expected = headers(&[
        ("Authorization", "********"),
        ("X-Api-Key", "********"),
        ("X-Auth-Token", "********"),
        ("Client-Secret", "********"),
        ("Content-Type", "application/json"),
    ]);
    let created = create_endpoint(&server, endpoint).await;
    assert_eq!(http(&created).headers, expected, "Create");
    assert_eq!(
        http(&get_endpoint(&server, "app").await).headers,
        expected,
        "Get"
    );
    let listed = server
        .endpoints()
        .list_endpoints(pb::ListEndpointsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(http(&listed.endpoints[0]).headers, expected, "List");
    let request = pb::Endpoint {
        id: created.id.clone(),
        description: "d".into(),
        ..Default::default()
    };
    let updated = server
        .endpoints()
        .update_endpoint(pb::UpdateEndpointRequest {
            endpoint: Some(request),
            update_mask: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(http(&updated).headers, expected, "Update");
}

#[tokio::test]
async fn env_references_and_plain_headers_are_shown_as_given() {
    let server = Server::start().await;
    let given = headers(&[
        ("Authorization", "Bearer ${env:ASSAY_TEST_TOKEN}"),
        ("X-Api-Key", "${env:ASSAY_TEST_KEY}"),
        ("Content-Type", "application/json"),
        ("X-Request-Source", "assay"),
    ]);
    let mut endpoint = bare_http("app", "http://127.0.0.1:9/answer");
    http_mut(&mut endpoint).headers = given.clone();
    assert_eq!(
        http(&create_endpoint(&server, endpoint).await).headers,
        given
    );
    assert_eq!(http(&get_endpoint(&server, "app").await).headers, given);
}

#[tokio::test]
async fn sending_the_masked_secret_back_keeps_the_stored_secret() {
    let server = Server::start().await;
    let target = Target::start().await;
    create_metric(&server, regex("anything", ".")).await;
    create_test_set(&server, "one", &["anything"], vec![test("hello", "", &[])]).await;
    let mut endpoint = http_endpoint("app", &target.url);
    http_mut(&mut endpoint).headers =
        headers(&[("Authorization", "Bearer sk-live-123"), ("X-Trace", "one")]);
    create_endpoint(&server, endpoint).await;

    // A client reads the endpoint, changes a plain header and sends the whole thing back.
    let mut read = get_endpoint(&server, "app").await;
    assert_eq!(http(&read).headers["Authorization"], "********");
    http_mut(&mut read)
        .headers
        .insert("X-Trace".into(), "two".into());
    let updated = server
        .endpoints()
        .update_endpoint(pb::UpdateEndpointRequest {
            endpoint: Some(read),
            update_mask: None,
        })
        .await
        .expect("update")
        .into_inner();
    assert_eq!(
        http(&updated).headers,
        headers(&[("Authorization", "********"), ("X-Trace", "two")])
    );
    assert_eq!(
        http(&get_endpoint(&server, "app").await).headers,
        headers(&[("Authorization", "********"), ("X-Trace", "two")])
    );

    let (_, results, summary) = execute(&server, execute_request("one", "app")).await;
    assert_eq!(
        summary.status,
        pb::RunStatus::Completed as i32,
        "{results:?}"
    );
    let seen = target.headers();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].get("authorization").and_then(|v| v.to_str().ok()),
        Some("Bearer sk-live-123"),
        "the stored secret was lost"
    );
    assert_eq!(
        seen[0].get("x-trace").and_then(|v| v.to_str().ok()),
        Some("two")
    );

    // A new value replaces the secret.
    let mut read = get_endpoint(&server, "app").await;
    http_mut(&mut read)
        .headers
        .insert("Authorization".into(), "Bearer sk-new".into());
    server
        .endpoints()
        .update_endpoint(pb::UpdateEndpointRequest {
            endpoint: Some(read),
            update_mask: mask(&["http"]),
        })
        .await
        .expect("update");
    execute(&server, execute_request("one", "app")).await;
    let seen = target.headers();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen[1].get("authorization").and_then(|v| v.to_str().ok()),
        Some("Bearer sk-new")
    );
}

#[tokio::test]
async fn a_masked_secret_sent_back_under_another_letter_case_keeps_the_stored_secret() {
    // HTTP header names are case-insensitive: `authorization` is the `Authorization` header, so
    // sending its mask back must keep the secret, not store the mask as the new value.
    let server = Server::start().await;
    let target = Target::start().await;
    create_metric(&server, regex("anything", ".")).await;
    create_test_set(&server, "one", &["anything"], vec![test("hello", "", &[])]).await;
    let mut endpoint = http_endpoint("app", &target.url);
    http_mut(&mut endpoint).headers = headers(&[("Authorization", "Bearer sk-live-123")]);
    create_endpoint(&server, endpoint).await;

    let mut read = get_endpoint(&server, "app").await;
    http_mut(&mut read).headers = headers(&[("authorization", "********")]);
    server
        .endpoints()
        .update_endpoint(pb::UpdateEndpointRequest {
            endpoint: Some(read),
            update_mask: None,
        })
        .await
        .expect("update");

    execute(&server, execute_request("one", "app")).await;
    let seen = target.headers();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].get("authorization").and_then(|v| v.to_str().ok()),
        Some("Bearer sk-live-123"),
        "the stored secret was replaced by the mask"
    );
}

#[tokio::test]
async fn an_endpoint_with_an_invalid_url_is_invalid_argument_naming_it() {
    let server = Server::start().await;
    for url in ["", "not a url", "ftp://example.com/file", "/relative/path"] {
        let status = error(create_endpoint_result(&server, bare_http("app", url)).await);
        assert_invalid(&status, "endpoint.http.url");
    }
    let chat = pb::Endpoint {
        name: "chat".into(),
        target: Some(pb::endpoint::Target::OpenaiChat(pb::OpenAiChatTarget {
            base_url: "api.example.com".into(),
            model: "m".into(),
            ..Default::default()
        })),
        ..Default::default()
    };
    assert_invalid(
        &error(create_endpoint_result(&server, chat).await),
        "endpoint.openai_chat.base_url",
    );
}

#[tokio::test]
async fn an_endpoint_with_a_body_template_that_is_no_json_is_invalid_argument_naming_it() {
    let server = Server::start().await;
    let mut endpoint = bare_http("app", "http://127.0.0.1:9/answer");
    http_mut(&mut endpoint).body_template = r#"{"prompt": {{ prompt }}"#.into();
    assert_invalid(
        &error(create_endpoint_result(&server, endpoint).await),
        "endpoint.http.body_template",
    );
}

#[tokio::test]
async fn an_endpoint_with_an_invalid_jsonpath_is_invalid_argument_naming_it() {
    let server = Server::start().await;
    for (field, path) in [
        ("output", "output"),
        ("context", "$.context["),
        ("metadata", "$..[?("),
    ] {
        let mut endpoint = bare_http("app", "http://127.0.0.1:9/answer");
        let mut mapping = pb::ResponseMapping {
            output: "$.output".into(),
            ..Default::default()
        };
        match field {
            "output" => mapping.output = path.into(),
            "context" => mapping.context = path.into(),
            _ => mapping.metadata = path.into(),
        }
        http_mut(&mut endpoint).response_mapping = Some(mapping);
        let status = error(create_endpoint_result(&server, endpoint).await);
        assert_invalid(&status, &format!("endpoint.http.response_mapping.{field}"));
    }
}

#[tokio::test]
async fn an_endpoint_without_a_target_is_invalid_argument_naming_it() {
    let server = Server::start().await;
    let endpoint = pb::Endpoint {
        name: "app".into(),
        ..Default::default()
    };
    assert_invalid(
        &error(create_endpoint_result(&server, endpoint).await),
        "endpoint.target",
    );
    assert_invalid(
        &error(create_endpoint_result(&server, bare_http("", "http://x.test/")).await),
        "endpoint.name",
    );
    let status = error(
        server
            .endpoints()
            .create_endpoint(pb::CreateEndpointRequest { endpoint: None })
            .await,
    );
    assert_invalid(&status, "endpoint");
    let listed = server
        .endpoints()
        .list_endpoints(pb::ListEndpointsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(
        listed.endpoints.is_empty(),
        "a rejected endpoint was stored"
    );
}

#[tokio::test]
async fn an_update_that_breaks_an_endpoint_is_rejected_and_changes_nothing() {
    let server = Server::start().await;
    let created = create_endpoint(&server, bare_http("app", "http://127.0.0.1:9/answer")).await;
    let mut request = created.clone();
    http_mut(&mut request).url = "nowhere".into();
    let status = error(
        server
            .endpoints()
            .update_endpoint(pb::UpdateEndpointRequest {
                endpoint: Some(request),
                update_mask: None,
            })
            .await,
    );
    assert_invalid(&status, "endpoint.http.url");
    assert_eq!(get_endpoint(&server, "app").await, created);
}

// ---- test sets and tests

#[tokio::test]
async fn test_sets_can_be_created_fetched_listed_updated_and_deleted() {
    let server = Server::start().await;
    let m = create_metric(&server, exact("m")).await;
    let mut client = server.test_sets();
    let created = client
        .create_test_set(pb::CreateTestSetRequest {
            test_set: Some(pb::TestSet {
                name: "geo".into(),
                description: "capitals".into(),
                metrics: ids(["m"]),
                ..Default::default()
            }),
        })
        .await
        .expect("create")
        .into_inner();
    assert!(uuid::Uuid::parse_str(&created.id).is_ok());
    assert_eq!(created.metrics, std::slice::from_ref(&m.id));
    assert_eq!(created.test_count, 0);
    assert_eq!(created.description, "capitals");

    add_tests(
        &server,
        "geo",
        vec![test("a", "", &[]), test("b", "", &[]), test("c", "", &[])],
    )
    .await
    .unwrap();
    let by_id = get_test_set(&server, &created.id).await.unwrap();
    assert_eq!(by_id.test_count, 3);
    assert_eq!(get_test_set(&server, "geo").await.unwrap(), by_id);
    let other = create_test_set(&server, "other", &[], vec![]).await;
    let listed = client
        .list_test_sets(pb::ListTestSetsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        listed
            .test_sets
            .iter()
            .map(|s| (s.name.as_str(), s.test_count))
            .collect::<Vec<_>>(),
        [("geo", 3), ("other", 0)]
    );

    let request = pb::TestSet {
        id: created.id.clone(),
        name: "ignored".into(),
        description: "world capitals".into(),
        ..Default::default()
    };
    let updated = client
        .update_test_set(pb::UpdateTestSetRequest {
            test_set: Some(request),
            update_mask: mask(&["description"]),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            updated.name.as_str(),
            updated.description.as_str(),
            updated.test_count
        ),
        ("geo", "world capitals", 3)
    );
    assert_eq!(updated.metrics, std::slice::from_ref(&m.id));

    let request = pb::TestSet {
        id: created.id.clone(),
        name: "capitals".into(),
        ..Default::default()
    };
    let renamed = client
        .update_test_set(pb::UpdateTestSetRequest {
            test_set: Some(request),
            update_mask: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(renamed.name, "capitals");
    assert_eq!(
        get_test_set(&server, "capitals").await.unwrap().test_count,
        3,
        "renaming lost the tests"
    );

    let request = pb::TestSet {
        id: created.id.clone(),
        name: "other".into(),
        ..Default::default()
    };
    let status = error(
        client
            .update_test_set(pb::UpdateTestSetRequest {
                test_set: Some(request),
                update_mask: None,
            })
            .await,
    );
    assert_status(&status, Code::AlreadyExists, &["other"]);
    let status = error(
        client
            .create_test_set(pb::CreateTestSetRequest {
                test_set: Some(pb::TestSet {
                    name: "other".into(),
                    ..Default::default()
                }),
            })
            .await,
    );
    assert_status(&status, Code::AlreadyExists, &["other"]);

    client
        .delete_test_set(pb::DeleteTestSetRequest {
            test_set: other.id.clone(),
        })
        .await
        .expect("delete");
    assert_status(
        &get_test_set(&server, &other.id).await.unwrap_err(),
        Code::NotFound,
        &[&other.id],
    );
    let status = error(
        client
            .delete_test_set(pb::DeleteTestSetRequest {
                test_set: "other".into(),
            })
            .await,
    );
    assert_status(&status, Code::NotFound, &["other"]);
}

#[tokio::test]
async fn invalid_test_sets_are_rejected_naming_the_field() {
    let server = Server::start().await;
    let create = |test_set: pb::TestSet| {
        let mut client = server.test_sets();
        async move {
            client
                .create_test_set(pb::CreateTestSetRequest {
                    test_set: Some(test_set),
                })
                .await
        }
    };
    assert_invalid(
        &error(create(pb::TestSet::default()).await),
        "test_set.name",
    );
    assert_invalid(
        &error(
            create(pb::TestSet {
                name: random_uuid(),
                ..Default::default()
            })
            .await,
        ),
        "test_set.name",
    );
    let status = error(
        create(pb::TestSet {
            name: "s".into(),
            metrics: ids(["nope"]),
            ..Default::default()
        })
        .await,
    );
    assert_status(&status, Code::NotFound, &["nope"]);
    let status = error(
        server
            .test_sets()
            .create_test_set(pb::CreateTestSetRequest { test_set: None })
            .await,
    );
    assert_invalid(&status, "test_set");
    let listed = server
        .test_sets()
        .list_test_sets(pb::ListTestSetsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(
        listed.test_sets.is_empty(),
        "a rejected test set was stored"
    );
}

#[tokio::test]
async fn add_tests_returns_the_stored_tests_with_ids_in_the_order_given() {
    let server = Server::start().await;
    let set = create_test_set(&server, "s", &[], vec![]).await;
    let behavior = create_behavior(&server, "polite", &[])
        .await
        .unwrap()
        .into_inner();
    let mut full = pb::Test {
        prompt: "say hi".into(),
        expected_response: "hi".into(),
        behavior: "polite".into(),
        category: "greeting".into(),
        topic: "small talk".into(),
        metadata: headers(&[("lang", "en")]),
        ..Default::default()
    };
    full.id = "ignored".into();
    let added = add_tests(
        &server,
        "s",
        vec![test("first", "", &[]), full, test("third", "", &[])],
    )
    .await
    .expect("add");
    assert_eq!(prompts(&added), ["first", "say hi", "third"]);
    assert!(added.iter().all(|t| uuid::Uuid::parse_str(&t.id).is_ok()
        && t.test_set_id == set.id
        && t.created_at.is_some()));
    let unique: std::collections::HashSet<_> = added.iter().map(|t| t.id.clone()).collect();
    assert_eq!(unique.len(), 3);
    let t = &added[1];
    assert_eq!(t.expected_response, "hi");
    assert_eq!(
        t.behavior, behavior.id,
        "a behaviour given by name is shown by id"
    );
    assert_eq!(
        (t.category.as_str(), t.topic.as_str()),
        ("greeting", "small talk")
    );
    assert_eq!(t.metadata, headers(&[("lang", "en")]));

    let (listed, _) = all_tests(&server, "s", 0).await;
    assert_eq!(listed, added);
}

#[tokio::test]
async fn list_tests_pages_through_the_tests_in_test_set_order() {
    let server = Server::start().await;
    create_test_set(
        &server,
        "s",
        &[],
        (0..7).map(|i| test(&format!("t{i}"), "", &[])).collect(),
    )
    .await;
    add_tests(&server, "s", vec![test("t7", "", &[]), test("t8", "", &[])])
        .await
        .unwrap();
    let (tests, pages) = all_tests(&server, "s", 4).await;
    assert_eq!(pages, 3);
    assert_eq!(
        prompts(&tests),
        (0..9).map(|i| format!("t{i}")).collect::<Vec<_>>()
    );

    // Tests of another set do not show up.
    create_test_set(&server, "other", &[], vec![test("elsewhere", "", &[])]).await;
    let (tests, _) = all_tests(&server, "s", 50).await;
    assert_eq!(tests.len(), 9);
}

#[tokio::test]
async fn ten_thousand_tests_are_added_in_one_call_and_listed_in_order() {
    let server = Server::start().await;
    create_behavior(&server, "b", &[]).await.unwrap();
    create_test_set(&server, "bulk", &[], vec![]).await;
    let tests: Vec<pb::Test> = (0..10_000)
        .map(|i| {
            let mut t = test(
                &format!("prompt {i}"),
                &format!("answer {i}"),
                &[("i", &i.to_string())],
            );
            t.behavior = "b".into();
            t
        })
        .collect();
    let added = add_tests(&server, "bulk", tests)
        .await
        .expect("add 10,000 tests");
    assert_eq!(added.len(), 10_000);
    assert_eq!(added[9_999].prompt, "prompt 9999");
    assert_eq!(
        get_test_set(&server, "bulk").await.unwrap().test_count,
        10_000
    );

    let (listed, pages) = all_tests(&server, "bulk", 1000).await;
    assert_eq!(pages, 10);
    assert_eq!(
        listed.iter().map(|t| &t.id).collect::<Vec<_>>(),
        added.iter().map(|t| &t.id).collect::<Vec<_>>()
    );
    assert!(
        listed
            .iter()
            .enumerate()
            .all(|(i, t)| t.prompt == format!("prompt {i}") && t.metadata["i"] == i.to_string())
    );
}

#[tokio::test]
async fn add_tests_is_all_or_nothing_when_a_test_is_invalid() {
    let server = Server::start().await;
    create_test_set(&server, "s", &[], vec![test("existing", "", &[])]).await;
    let mut batch: Vec<pb::Test> = (0..10)
        .map(|i| test(&format!("new {i}"), "", &[]))
        .collect();
    batch[3].prompt = String::new();
    let status = add_tests(&server, "s", batch.clone()).await.unwrap_err();
    assert_invalid(&status, "tests[3].prompt");
    batch[3].prompt = "  \n ".into();
    assert_invalid(
        &add_tests(&server, "s", batch).await.unwrap_err(),
        "tests[3].prompt",
    );

    let (tests, _) = all_tests(&server, "s", 0).await;
    assert_eq!(
        prompts(&tests),
        ["existing"],
        "part of a rejected batch was added"
    );
    assert_eq!(get_test_set(&server, "s").await.unwrap().test_count, 1);

    assert_invalid(&add_tests(&server, "s", vec![]).await.unwrap_err(), "tests");
}

#[tokio::test]
async fn add_tests_with_an_unknown_behavior_is_not_found_and_adds_nothing() {
    let server = Server::start().await;
    create_behavior(&server, "known", &[]).await.unwrap();
    create_test_set(&server, "s", &[], vec![]).await;
    let mut batch: Vec<pb::Test> = (0..5).map(|i| test(&format!("t{i}"), "", &[])).collect();
    batch[0].behavior = "known".into();
    batch[4].behavior = "unknown-behaviour".into();
    let status = add_tests(&server, "s", batch.clone()).await.unwrap_err();
    assert_status(&status, Code::NotFound, &["unknown-behaviour"]);
    let id = random_uuid();
    batch[4].behavior = id.clone();
    assert_status(
        &add_tests(&server, "s", batch).await.unwrap_err(),
        Code::NotFound,
        &[&id],
    );
    let (tests, _) = all_tests(&server, "s", 0).await;
    assert!(
        tests.is_empty(),
        "part of a rejected batch was added: {tests:?}"
    );
}

#[tokio::test]
async fn remove_tests_removes_exactly_the_given_tests() {
    let server = Server::start().await;
    let set = create_test_set(&server, "s", &[], vec![]).await;
    let added = add_tests(
        &server,
        "s",
        (0..5).map(|i| test(&format!("t{i}"), "", &[])).collect(),
    )
    .await
    .unwrap();
    let removed = server
        .test_sets()
        .remove_tests(pb::RemoveTestsRequest {
            test_set: set.id.clone(),
            test_ids: vec![added[1].id.clone(), added[3].id.clone()],
        })
        .await
        .expect("remove")
        .into_inner();
    assert_eq!(removed.removed_count, 2);
    let (tests, _) = all_tests(&server, "s", 0).await;
    assert_eq!(prompts(&tests), ["t0", "t2", "t4"]);
    assert_eq!(get_test_set(&server, "s").await.unwrap().test_count, 3);
}

#[tokio::test]
async fn remove_tests_with_an_unknown_id_is_not_found_and_removes_nothing() {
    let server = Server::start().await;
    create_test_set(&server, "s", &[], vec![]).await;
    let added = add_tests(
        &server,
        "s",
        (0..3).map(|i| test(&format!("t{i}"), "", &[])).collect(),
    )
    .await
    .unwrap();
    let elsewhere = create_test_set(&server, "other", &[], vec![]).await;
    let foreign = add_tests(&server, &elsewhere.id, vec![test("foreign", "", &[])])
        .await
        .unwrap();
    let mut client = server.test_sets();

    let unknown = random_uuid();
    let status = error(
        client
            .remove_tests(pb::RemoveTestsRequest {
                test_set: "s".into(),
                test_ids: vec![added[0].id.clone(), unknown.clone()],
            })
            .await,
    );
    assert_status(&status, Code::NotFound, &[&unknown]);
    // A test of another set is not in this one.
    let status = error(
        client
            .remove_tests(pb::RemoveTestsRequest {
                test_set: "s".into(),
                test_ids: vec![added[1].id.clone(), foreign[0].id.clone()],
            })
            .await,
    );
    assert_status(&status, Code::NotFound, &[&foreign[0].id]);
    let status = error(
        client
            .remove_tests(pb::RemoveTestsRequest {
                test_set: "s".into(),
                test_ids: vec![added[2].id.clone(), "t0".into()],
            })
            .await,
    );
    assert_invalid(&status, "test_ids[1]");
    let status = error(
        client
            .remove_tests(pb::RemoveTestsRequest {
                test_set: "s".into(),
                test_ids: vec![],
            })
            .await,
    );
    assert_invalid(&status, "test_ids");

    let (tests, _) = all_tests(&server, "s", 0).await;
    assert_eq!(
        prompts(&tests),
        ["t0", "t1", "t2"],
        "a failed RemoveTests removed tests"
    );
    assert_eq!(all_tests(&server, "other", 0).await.0.len(), 1);
}

#[tokio::test]
async fn deleting_a_test_set_deletes_its_tests() {
    let server = Server::start().await;
    create_behavior(&server, "b", &[]).await.unwrap();
    let set = create_test_set(&server, "doomed", &[], vec![]).await;
    let mut t = test("t", "", &[]);
    t.behavior = "b".into();
    add_tests(&server, "doomed", vec![t, test("u", "", &[])])
        .await
        .unwrap();

    server
        .test_sets()
        .delete_test_set(pb::DeleteTestSetRequest {
            test_set: "doomed".into(),
        })
        .await
        .expect("delete");
    let status = error(
        server
            .test_sets()
            .list_tests(pb::ListTestsRequest {
                test_set: set.id.clone(),
                ..Default::default()
            })
            .await,
    );
    assert_status(&status, Code::NotFound, &[&set.id]);
    let status = error(
        server
            .test_sets()
            .list_tests(pb::ListTestsRequest {
                test_set: "doomed".into(),
                ..Default::default()
            })
            .await,
    );
    assert_status(&status, Code::NotFound, &["doomed"]);
    // Its tests are gone: the behaviour they used is free, and a new set of that name is empty.
    server
        .behaviors()
        .delete_behavior(pb::DeleteBehaviorRequest {
            behavior: "b".into(),
        })
        .await
        .expect("behaviour no longer used");
    create_test_set(&server, "doomed", &[], vec![]).await;
    assert!(all_tests(&server, "doomed", 0).await.0.is_empty());
    assert_eq!(get_test_set(&server, "doomed").await.unwrap().test_count, 0);
}

#[tokio::test]
async fn every_catalogue_rpc_takes_an_id_or_a_name() {
    let server = Server::start().await;
    let metric = create_metric(&server, exact("m")).await;
    let behavior = create_behavior(&server, "b", &[&metric.id])
        .await
        .unwrap()
        .into_inner();
    let endpoint = create_endpoint(&server, bare_http("e", "http://127.0.0.1:9/")).await;
    let set = create_test_set(&server, "s", &[&metric.id], vec![]).await;

    for reference in [behavior.id.as_str(), "b"] {
        let got = server
            .behaviors()
            .get_behavior(pb::GetBehaviorRequest {
                behavior: reference.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(got.id, behavior.id);
    }
    for reference in [endpoint.id.as_str(), "e"] {
        assert_eq!(get_endpoint(&server, reference).await.id, endpoint.id);
    }
    for reference in [set.id.as_str(), "s"] {
        assert_eq!(get_test_set(&server, reference).await.unwrap().id, set.id);
    }

    // Tests: the set and the behaviour by either.
    let mut by_id = test("by id", "", &[]);
    by_id.behavior = behavior.id.clone();
    let mut by_name = test("by name", "", &[]);
    by_name.behavior = "b".into();
    let first = add_tests(&server, &set.id, vec![by_id]).await.unwrap();
    let second = add_tests(&server, "s", vec![by_name]).await.unwrap();
    assert_eq!(first[0].behavior, behavior.id);
    assert_eq!(second[0].behavior, behavior.id);
    assert_eq!(all_tests(&server, &set.id, 0).await.0.len(), 2);
    let removed = server
        .test_sets()
        .remove_tests(pb::RemoveTestsRequest {
            test_set: "s".into(),
            test_ids: vec![first[0].id.clone()],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(removed.removed_count, 1);

    // Updates name their resource by name when the id is empty.
    let request = pb::Behavior {
        name: "b".into(),
        description: "by name".into(),
        ..Default::default()
    };
    let updated = server
        .behaviors()
        .update_behavior(pb::UpdateBehaviorRequest {
            behavior: Some(request),
            update_mask: None,
        })
        .await
        .unwrap();
    assert_eq!(updated.into_inner().description, "by name");
    let request = pb::Endpoint {
        name: "e".into(),
        description: "by name".into(),
        ..Default::default()
    };
    let updated = server
        .endpoints()
        .update_endpoint(pb::UpdateEndpointRequest {
            endpoint: Some(request),
            update_mask: None,
        })
        .await
        .unwrap();
    assert_eq!(updated.into_inner().description, "by name");
    let request = pb::TestSet {
        name: "s".into(),
        description: "by name".into(),
        ..Default::default()
    };
    let updated = server
        .test_sets()
        .update_test_set(pb::UpdateTestSetRequest {
            test_set: Some(request),
            update_mask: None,
        })
        .await
        .unwrap();
    assert_eq!(updated.into_inner().description, "by name");

    // Deletes by name.
    server
        .endpoints()
        .delete_endpoint(pb::DeleteEndpointRequest {
            endpoint: "e".into(),
        })
        .await
        .expect("endpoint by name");
    server
        .test_sets()
        .delete_test_set(pb::DeleteTestSetRequest {
            test_set: "s".into(),
        })
        .await
        .expect("test set by name");
    server
        .behaviors()
        .delete_behavior(pb::DeleteBehaviorRequest {
            behavior: "b".into(),
        })
        .await
        .expect("behaviour by name");
    server
        .metrics()
        .delete_metric(pb::DeleteMetricRequest { metric: "m".into() })
        .await
        .expect("metric by name");
}

#[tokio::test]
async fn an_empty_reference_is_invalid_argument_naming_the_field() {
    let server = Server::start().await;
    create_test_set(&server, "s", &[], vec![]).await;
    assert_invalid(&get_metric(&server, "").await.unwrap_err(), "metric");
    assert_invalid(
        &error(
            server
                .metrics()
                .delete_metric(pb::DeleteMetricRequest { metric: " ".into() })
                .await,
        ),
        "metric",
    );
    assert_invalid(
        &error(
            server
                .behaviors()
                .get_behavior(pb::GetBehaviorRequest {
                    behavior: String::new(),
                })
                .await,
        ),
        "behavior",
    );
    assert_invalid(
        &error(
            server
                .behaviors()
                .delete_behavior(pb::DeleteBehaviorRequest {
                    behavior: String::new(),
                })
                .await,
        ),
        "behavior",
    );
    assert_invalid(
        &error(
            server
                .endpoints()
                .get_endpoint(pb::GetEndpointRequest {
                    endpoint: String::new(),
                })
                .await,
        ),
        "endpoint",
    );
    assert_invalid(
        &error(
            server
                .endpoints()
                .delete_endpoint(pb::DeleteEndpointRequest {
                    endpoint: String::new(),
                })
                .await,
        ),
        "endpoint",
    );
    assert_invalid(&get_test_set(&server, "").await.unwrap_err(), "test_set");
    assert_invalid(
        &error(
            server
                .test_sets()
                .delete_test_set(pb::DeleteTestSetRequest {
                    test_set: String::new(),
                })
                .await,
        ),
        "test_set",
    );
    assert_invalid(
        &add_tests(&server, "", vec![test("p", "", &[])])
            .await
            .unwrap_err(),
        "test_set",
    );
    assert_invalid(
        &error(
            server
                .test_sets()
                .list_tests(pb::ListTestsRequest::default())
                .await,
        ),
        "test_set",
    );
    let status = error(
        server
            .test_sets()
            .remove_tests(pb::RemoveTestsRequest {
                test_set: String::new(),
                test_ids: vec![random_uuid()],
            })
            .await,
    );
    assert_invalid(&status, "test_set");
    let status = error(
        server
            .test_sets()
            .create_test_set(pb::CreateTestSetRequest {
                test_set: Some(pb::TestSet {
                    name: "t".into(),
                    metrics: ids([""]),
                    ..Default::default()
                }),
            })
            .await,
    );
    assert_invalid(&status, "test_set.metrics[0]");
    let status = error(
        server
            .metrics()
            .update_metric(pb::UpdateMetricRequest {
                metric: Some(pb::Metric::default()),
                update_mask: None,
            })
            .await,
    );
    assert_invalid(&status, "metric.id");
}

#[tokio::test]
async fn unknown_behaviors_endpoints_and_test_sets_are_not_found_naming_the_reference() {
    let server = Server::start().await;
    let id = random_uuid();
    for reference in ["nothing-here", id.as_str()] {
        let status = error(
            server
                .behaviors()
                .get_behavior(pb::GetBehaviorRequest {
                    behavior: reference.into(),
                })
                .await,
        );
        assert_status(&status, Code::NotFound, &[reference]);
        let status = error(
            server
                .endpoints()
                .get_endpoint(pb::GetEndpointRequest {
                    endpoint: reference.into(),
                })
                .await,
        );
        assert_status(&status, Code::NotFound, &[reference]);
        assert_status(
            &get_test_set(&server, reference).await.unwrap_err(),
            Code::NotFound,
            &[reference],
        );
        assert_status(
            &add_tests(&server, reference, vec![test("p", "", &[])])
                .await
                .unwrap_err(),
            Code::NotFound,
            &[reference],
        );
        let status = error(
            server
                .test_sets()
                .list_tests(pb::ListTestsRequest {
                    test_set: reference.into(),
                    ..Default::default()
                })
                .await,
        );
        assert_status(&status, Code::NotFound, &[reference]);
        let status = error(
            server
                .test_sets()
                .remove_tests(pb::RemoveTestsRequest {
                    test_set: reference.into(),
                    test_ids: vec![random_uuid()],
                })
                .await,
        );
        assert_status(&status, Code::NotFound, &[reference]);
        let status = error(
            server
                .test_sets()
                .delete_test_set(pb::DeleteTestSetRequest {
                    test_set: reference.into(),
                })
                .await,
        );
        assert_status(&status, Code::NotFound, &[reference]);
    }
}
