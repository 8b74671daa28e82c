//! References, which every catalogue RPC takes alike: a resource is named by its id or by its
//! name (an update by its name when the id is empty), an empty reference is `INVALID_ARGUMENT`
//! naming the field, an unknown one `NOT_FOUND` naming the reference. The cases of the four kinds
//! of resource are written once, over a [`Resource`], and are a test of each kind:
//! `catalogue::references::<case>::<kind>`. The tests RPCs (AddTests, ListTests, RemoveTests)
//! name their test set the same way.

use assay::proto::v1 as pb;
use tonic::{Code, Status};

use crate::fixtures::{create_metric, create_test_set, exact, test};
use crate::harness::Server;

use super::kinds::{Record, Resource};
use super::{
    add_tests, all_tests, assert_invalid, assert_status, create_behavior, mask, random_uuid,
    remove_tests,
};

for_each!(Resource [
        metric: Metric,
        behavior: Behavior,
        endpoint: Endpoint,
        test_set: TestSet,
    ]
    get_takes_an_id_or_a_name,
    a_resource_deleted_by_id_or_name_is_not_found,
    an_update_without_an_id_finds_its_resource_by_name,
    a_renamed_resource_is_found_by_its_new_name_only,
    an_update_with_an_id_that_is_no_uuid_is_invalid_argument_naming_the_id,
    an_empty_reference_is_invalid_argument_naming_the_field,
    an_unknown_reference_is_not_found_naming_it,
);

async fn get_takes_an_id_or_a_name(resource: Resource) {
    let server = Server::start().await;
    let id = resource.create(&server, "named").await;
    for reference in [id.as_str(), "named"] {
        let got = resource.get(&server, reference).await.expect("get");
        assert_eq!((got.id.as_str(), got.name.as_str()), (id.as_str(), "named"));
    }
}

async fn a_resource_deleted_by_id_or_name_is_not_found(resource: Resource) {
    let server = Server::start().await;
    let by_id = resource.create(&server, "by-id").await;
    let by_name = resource.create(&server, "by-name").await;
    resource.create(&server, "stays").await;
    resource
        .delete(&server, &by_id)
        .await
        .expect("delete by id");
    resource
        .delete(&server, "by-name")
        .await
        .expect("delete by name");
    for reference in [by_id.as_str(), "by-id", by_name.as_str(), "by-name"] {
        let status = resource.get(&server, reference).await.unwrap_err();
        assert_status(&status, Code::NotFound, &[reference]);
        let status = resource.delete(&server, reference).await.unwrap_err();
        assert_status(&status, Code::NotFound, &[reference]);
    }
    assert_eq!(resource.names(&server).await, ["stays"]);
}

async fn an_update_without_an_id_finds_its_resource_by_name(resource: Resource) {
    let server = Server::start().await;
    let id = resource.create(&server, "named").await;
    let request = Record {
        name: "named".into(),
        description: "by name".into(),
        ..Default::default()
    };
    let updated = resource.update(&server, request, None).await;
    let updated = updated.expect("update by name");
    assert_eq!(
        (updated.id.as_str(), updated.description.as_str()),
        (id.as_str(), "by name")
    );
    assert_eq!(resource.get(&server, &id).await.unwrap(), updated);
}

async fn a_renamed_resource_is_found_by_its_new_name_only(resource: Resource) {
    let server = Server::start().await;
    let id = resource.create(&server, "old-name").await;
    // With the name in the mask, and with no mask.
    let renames = [
        ("old-name", "new-name", mask(&["name"])),
        ("new-name", "newer-name", None),
    ];
    for (old, new, update_mask) in renames {
        let request = Record {
            id: id.clone(),
            name: new.into(),
            ..Default::default()
        };
        let renamed = resource.update(&server, request, update_mask).await;
        let renamed = renamed.expect("rename");
        assert_eq!(
            (renamed.id.as_str(), renamed.name.as_str()),
            (id.as_str(), new)
        );
        assert_eq!(
            resource.get(&server, new).await.expect("by new name").id,
            id
        );
        let status = resource.get(&server, old).await.unwrap_err();
        assert_status(&status, Code::NotFound, &[old]);
    }
}

async fn an_update_with_an_id_that_is_no_uuid_is_invalid_argument_naming_the_id(
    resource: Resource,
) {
    let server = Server::start().await;
    resource.create(&server, "named").await;
    let request = Record {
        id: "not-a-uuid".into(),
        name: "named".into(),
        description: "x".into(),
    };
    let status = resource.update(&server, request, None).await.unwrap_err();
    assert_invalid(&status, &format!("{}.id", resource.field()));
    assert_eq!(
        resource.get(&server, "named").await.unwrap().description,
        ""
    );
}

async fn an_empty_reference_is_invalid_argument_naming_the_field(resource: Resource) {
    let server = Server::start().await;
    resource.create(&server, "named").await;
    for reference in ["", " "] {
        let status = resource.get(&server, reference).await.unwrap_err();
        assert_invalid(&status, resource.field());
        let status = resource.delete(&server, reference).await.unwrap_err();
        assert_invalid(&status, resource.field());
    }
    // An update with neither an id nor a name names nothing.
    let request = Record {
        description: "x".into(),
        ..Default::default()
    };
    let status = resource.update(&server, request, None).await.unwrap_err();
    assert_invalid(&status, &format!("{}.id", resource.field()));
}

async fn an_unknown_reference_is_not_found_naming_it(resource: Resource) {
    let server = Server::start().await;
    resource.create(&server, "named").await;
    let id = random_uuid();
    for reference in ["nothing-here", id.as_str()] {
        let status = resource.get(&server, reference).await.unwrap_err();
        assert_status(&status, Code::NotFound, &[reference]);
        let status = resource.delete(&server, reference).await.unwrap_err();
        assert_status(&status, Code::NotFound, &[reference]);
    }
    let by_id = Record {
        id: id.clone(),
        description: "x".into(),
        ..Default::default()
    };
    let by_name = Record {
        name: "nothing-here".into(),
        description: "x".into(),
        ..Default::default()
    };
    for (request, reference) in [(by_id, id.as_str()), (by_name, "nothing-here")] {
        let status = resource.update(&server, request, None).await.unwrap_err();
        assert_status(&status, Code::NotFound, &[reference]);
    }
}

#[tokio::test]
async fn the_tests_rpcs_take_the_test_set_and_the_behavior_by_id_or_name() {
    let server = Server::start().await;
    let metric = create_metric(&server, exact("m")).await;
    let behavior = create_behavior(&server, "b", &[]).await;
    let behavior = behavior.unwrap();
    let set = create_test_set(&server, "s", &[&metric.id], vec![]).await;
    assert_eq!(set.metrics, std::slice::from_ref(&metric.id));

    let mut by_id = test("by id", "", &[]);
    by_id.behavior = behavior.id.clone();
    let mut by_name = test("by name", "", &[]);
    by_name.behavior = "b".into();
    let first = add_tests(&server, &set.id, vec![by_id]).await.unwrap();
    let second = add_tests(&server, "s", vec![by_name]).await.unwrap();
    assert_eq!(first[0].behavior, behavior.id);
    assert_eq!(second[0].behavior, behavior.id);
    for reference in [set.id.as_str(), "s"] {
        assert_eq!(
            all_tests(&server, reference, 0).await.0,
            [first[0].clone(), second[0].clone()]
        );
    }

    for (reference, added) in [("s", &first[0]), (set.id.as_str(), &second[0])] {
        let removed = remove_tests(&server, reference, &[&added.id]).await;
        assert_eq!(removed.expect("remove"), 1);
    }
    assert!(all_tests(&server, "s", 0).await.0.is_empty());
}

#[tokio::test]
async fn the_tests_rpcs_take_no_empty_test_set_reference() {
    let server = Server::start().await;
    create_test_set(&server, "s", &[], vec![test("p", "", &[])]).await;
    for reference in ["", " "] {
        for status in tests_rpcs(&server, reference).await {
            assert_invalid(&status, "test_set");
        }
    }
}

#[tokio::test]
async fn the_tests_rpcs_on_an_unknown_test_set_are_not_found_naming_it() {
    let server = Server::start().await;
    create_test_set(&server, "s", &[], vec![test("p", "", &[])]).await;
    let id = random_uuid();
    for reference in ["nothing-here", id.as_str()] {
        for status in tests_rpcs(&server, reference).await {
            assert_status(&status, Code::NotFound, &[reference]);
        }
    }
}

/// The errors of AddTests, ListTests and RemoveTests (of a random test id) on the test set
/// `reference`; each must fail.
async fn tests_rpcs(server: &Server, reference: &str) -> [Status; 3] {
    let added = add_tests(server, reference, vec![test("p", "", &[])]).await;
    let request = pb::ListTestsRequest {
        test_set: reference.into(),
        ..Default::default()
    };
    let listed = server.test_sets().list_tests(request).await;
    let removed = remove_tests(server, reference, &[&random_uuid()]).await;
    [
        added.expect_err("AddTests"),
        error(listed),
        removed.expect_err("RemoveTests"),
    ]
}

/// The error of a call that must fail.
fn error<T: std::fmt::Debug>(result: Result<tonic::Response<T>, Status>) -> Status {
    match result {
        Ok(response) => panic!("the call succeeded: {:?}", response.into_inner()),
        Err(status) => status,
    }
}
