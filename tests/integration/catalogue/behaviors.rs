//! `BehaviorService`: behaviours and the metrics they name.

use assay::proto::v1 as pb;
use tonic::Code;

use crate::fixtures::*;
use crate::harness::Server;

use super::{
    add_tests, assert_invalid, assert_status, create_behavior, error, ids, mask, random_uuid,
};

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
