//! `TestSetService`: test sets and the tests in them (AddTests, ListTests, RemoveTests). What a
//! test set shares with every other kind (references, names, masks, paging) is in
//! `references.rs`, `validation.rs` and `paging.rs`.

use assay::proto::v1 as pb;
use tonic::Code;

use crate::fixtures::*;
use crate::harness::Server;

use super::kinds::Resource;
use super::{
    add_tests, all_tests, assert_invalid, assert_status, create_behavior, delete_behavior,
    delete_test_set, get_test_set, headers, ids, mask, random_uuid, remove_tests,
    try_create_test_set, update_test_set,
};

#[tokio::test]
async fn test_sets_count_their_tests_through_get_list_and_update() {
    let server = Server::start().await;
    let m = create_metric(&server, exact("m")).await;
    let request = pb::TestSet {
        name: "geo".into(),
        description: "capitals".into(),
        metrics: ids(["m"]),
        ..Default::default()
    };
    let created = try_create_test_set(&server, request).await.expect("create");
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
    create_test_set(&server, "other", &[], vec![]).await;
    let listed = server
        .test_sets()
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
    let updated = update_test_set(&server, request, mask(&["description"]))
        .await
        .unwrap();
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
    let renamed = update_test_set(&server, request, None).await.unwrap();
    assert_eq!(renamed.name, "capitals");
    assert_eq!(
        get_test_set(&server, "capitals").await.unwrap().test_count,
        3,
        "renaming lost the tests"
    );
}

#[tokio::test]
async fn a_test_set_with_an_unknown_or_empty_metric_is_rejected_naming_it() {
    let server = Server::start().await;
    let with_metrics = |metrics: &[&str]| pb::TestSet {
        name: "s".into(),
        metrics: ids(metrics.iter().copied()),
        ..Default::default()
    };
    let status = try_create_test_set(&server, with_metrics(&["nope"])).await;
    assert_status(&status.unwrap_err(), Code::NotFound, &["nope"]);
    let status = try_create_test_set(&server, with_metrics(&[""])).await;
    assert_invalid(&status.unwrap_err(), "test_set.metrics[0]");
    let names = Resource::TestSet.names(&server).await;
    assert!(
        names.is_empty(),
        "a rejected test set was stored: {names:?}"
    );
}

#[tokio::test]
async fn add_tests_returns_the_stored_tests_with_ids_in_the_order_given() {
    let server = Server::start().await;
    let set = create_test_set(&server, "s", &[], vec![]).await;
    let behavior = create_behavior(&server, "polite", &[]).await.unwrap();
    let mut full = pb::Test {
        prompt: "say hi".into(),
        expected_response: Some("hi".into()),
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
    assert_eq!(t.expected_response.as_deref(), Some("hi"));
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
    let removed = remove_tests(&server, &set.id, &[&added[1].id, &added[3].id])
        .await
        .expect("remove");
    assert_eq!(removed, 2);
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

    let unknown = random_uuid();
    let status = remove_tests(&server, "s", &[&added[0].id, &unknown])
        .await
        .unwrap_err();
    assert_status(&status, Code::NotFound, &[&unknown]);
    // A test of another set is not in this one.
    let status = remove_tests(&server, "s", &[&added[1].id, &foreign[0].id])
        .await
        .unwrap_err();
    assert_status(&status, Code::NotFound, &[&foreign[0].id]);
    let status = remove_tests(&server, "s", &[&added[2].id, "t0"])
        .await
        .unwrap_err();
    assert_invalid(&status, "test_ids[1]");
    let status = remove_tests(&server, "s", &[]).await.unwrap_err();
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

    delete_test_set(&server, "doomed").await.expect("delete");
    for reference in [set.id.as_str(), "doomed"] {
        let request = pb::ListTestsRequest {
            test_set: reference.into(),
            ..Default::default()
        };
        let status = server.test_sets().list_tests(request).await.unwrap_err();
        assert_status(&status, Code::NotFound, &[reference]);
    }
    // Its tests are gone: the behaviour they used is free, and a new set of that name is empty.
    delete_behavior(&server, "b")
        .await
        .expect("behaviour no longer used");
    create_test_set(&server, "doomed", &[], vec![]).await;
    assert!(all_tests(&server, "doomed", 0).await.0.is_empty());
    assert_eq!(get_test_set(&server, "doomed").await.unwrap().test_count, 0);
}

fn prompts(tests: &[pb::Test]) -> Vec<&str> {
    tests.iter().map(|t| t.prompt.as_str()).collect()
}
