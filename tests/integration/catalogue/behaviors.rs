//! `BehaviorService`: behaviours and the metrics they name. What a behaviour shares with every
//! other kind (references, names, masks, paging) is in `references.rs`, `validation.rs` and
//! `paging.rs`.

use assay::proto::v1 as pb;
use tonic::Code;

use crate::fixtures::*;
use crate::harness::Server;

use super::kinds::Resource;
use super::{
    add_tests, assert_invalid, assert_status, create_behavior, delete_behavior, get_behavior, ids,
    mask, random_uuid, remove_tests, update_behavior,
};

#[tokio::test]
async fn behaviors_take_metrics_by_name_and_show_them_by_id() {
    let server = Server::start().await;
    let a = create_metric(&server, exact("a")).await;
    let b = create_metric(&server, regex("b", "x")).await;
    let created = create_behavior(&server, "reliability", &["a", &b.id])
        .await
        .expect("create");
    assert!(uuid::Uuid::parse_str(&created.id).is_ok());
    assert_eq!(created.metrics, [a.id.clone(), b.id.clone()]);
    for reference in [created.id.as_str(), "reliability"] {
        assert_eq!(get_behavior(&server, reference).await.unwrap(), created);
    }
}

#[tokio::test]
async fn behaviors_are_listed_whole_and_updated_with_or_without_a_mask() {
    let server = Server::start().await;
    let a = create_metric(&server, exact("a")).await;
    let b = create_metric(&server, exact("b")).await;
    let first = create_behavior(&server, "first", &["a"]).await.unwrap();
    let second = create_behavior(&server, "second", &[]).await.unwrap();

    let mut token = String::new();
    for expected in [&first, &second] {
        let request = pb::ListBehaviorsRequest {
            page_size: 1,
            page_token: token,
        };
        let page = server.behaviors().list_behaviors(request).await;
        let page = page.unwrap().into_inner();
        assert_eq!(page.behaviors, std::slice::from_ref(expected));
        token = page.next_page_token;
    }
    assert_eq!(token, "", "a third page");

    let request = pb::Behavior {
        id: first.id.clone(),
        description: "d".into(),
        metrics: ids(["b", "a"]),
        ..Default::default()
    };
    let updated = update_behavior(&server, request, None).await.unwrap();
    assert_eq!(updated.description, "d");
    assert_eq!(updated.metrics, [b.id.clone(), a.id.clone()]);
    assert_eq!(updated.name, "first");

    let request = pb::Behavior {
        id: first.id.clone(),
        name: "renamed".into(),
        description: "ignored".into(),
        ..Default::default()
    };
    let renamed = update_behavior(&server, request, mask(&["name"]))
        .await
        .unwrap();
    assert_eq!(
        (renamed.name.as_str(), renamed.description.as_str()),
        ("renamed", "d")
    );
    assert_eq!(get_behavior(&server, &first.id).await.unwrap(), renamed);
}

#[tokio::test]
async fn an_empty_metric_reference_is_invalid_argument_naming_it() {
    let server = Server::start().await;
    create_metric(&server, exact("m")).await;
    let status = create_behavior(&server, "b", &["m", ""]).await.unwrap_err();
    assert_invalid(&status, "behavior.metrics[1]");
}

#[tokio::test]
async fn a_behavior_with_an_unknown_metric_is_not_found_naming_it() {
    let server = Server::start().await;
    create_metric(&server, exact("known")).await;
    let status = create_behavior(&server, "b", &["known", "unknown-metric"]).await;
    assert_status(&status.unwrap_err(), Code::NotFound, &["unknown-metric"]);
    let id = random_uuid();
    let status = create_behavior(&server, "b", &[&id]).await.unwrap_err();
    assert_status(&status, Code::NotFound, &[&id]);
    let names = Resource::Behavior.names(&server).await;
    assert!(
        names.is_empty(),
        "a rejected behaviour was stored: {names:?}"
    );

    let created = create_behavior(&server, "b", &["known"]).await.unwrap();
    let request = pb::Behavior {
        id: created.id.clone(),
        metrics: ids(["known", "missing"]),
        ..Default::default()
    };
    let status = update_behavior(&server, request, None).await.unwrap_err();
    assert_status(&status, Code::NotFound, &["missing"]);
    assert_eq!(get_behavior(&server, "b").await.unwrap(), created);
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

    let status = delete_behavior(&server, "safety").await.unwrap_err();
    assert_status(&status, Code::FailedPrecondition, &["safety", "red-team"]);

    let removed = remove_tests(&server, "red-team", &[&added[1].id])
        .await
        .unwrap();
    assert_eq!(removed, 1);
    delete_behavior(&server, "safety")
        .await
        .expect("delete once unused");
}
