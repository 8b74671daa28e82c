//! What every create and update checks alike, whatever the kind: the request carries the
//! resource; its name is given, is no UUID and is not taken; an update mask names only fields
//! the resource has. A rejected request changes nothing. Each case is written once, over a
//! [`Resource`], and is a test of each kind: `catalogue::validation::<case>::<kind>`.

use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::harness::Server;

use super::kinds::{Record, Resource};
use super::{assert_invalid, assert_status, mask, random_uuid};

for_each!(Resource [
        metric: Metric,
        behavior: Behavior,
        endpoint: Endpoint,
        test_set: TestSet,
    ]
    a_create_without_the_resource_is_invalid_argument_naming_it,
    a_blank_name_is_invalid_argument_naming_the_name,
    a_name_like_a_uuid_is_invalid_argument_naming_the_name,
    a_taken_name_is_already_exists_on_create_and_on_rename,
    an_unknown_update_mask_path_is_invalid_argument_naming_update_mask,
);

async fn a_create_without_the_resource_is_invalid_argument_naming_it(resource: Resource) {
    let server = Server::start().await;
    let status = resource.try_create(&server, None).await.unwrap_err();
    assert_invalid(&status, resource.field());
    assert_nothing_stored(&server, resource).await;
}

async fn a_blank_name_is_invalid_argument_naming_the_name(resource: Resource) {
    let server = Server::start().await;
    for name in ["", "   "] {
        let status = resource.try_create(&server, Some(name)).await.unwrap_err();
        assert_invalid(&status, &format!("{}.name", resource.field()));
    }
    assert_nothing_stored(&server, resource).await;
}

async fn a_name_like_a_uuid_is_invalid_argument_naming_the_name(resource: Resource) {
    let server = Server::start().await;
    let status = resource.try_create(&server, Some(&random_uuid())).await;
    assert_invalid(&status.unwrap_err(), &format!("{}.name", resource.field()));
    assert_nothing_stored(&server, resource).await;
}

async fn a_taken_name_is_already_exists_on_create_and_on_rename(resource: Resource) {
    let server = Server::start().await;
    resource.create(&server, "first").await;
    let second = resource.create(&server, "second").await;
    let status = resource
        .try_create(&server, Some("first"))
        .await
        .unwrap_err();
    assert_status(&status, Code::AlreadyExists, &["first"]);
    for update_mask in [mask(&["name"]), None] {
        let request = Record {
            id: second.clone(),
            name: "first".into(),
            ..Default::default()
        };
        let status = resource.update(&server, request, update_mask).await;
        assert_status(&status.unwrap_err(), Code::AlreadyExists, &["first"]);
    }
    assert_eq!(resource.get(&server, &second).await.unwrap().name, "second");
    assert_eq!(resource.names(&server).await, ["first", "second"]);
}

async fn an_unknown_update_mask_path_is_invalid_argument_naming_update_mask(resource: Resource) {
    let server = Server::start().await;
    resource.create(&server, "named").await;
    let path = match resource {
        Resource::Metric => "no_such_field",
        Resource::Behavior => "colour",
        // A field of the target, not the target: the mask takes `http` whole.
        Resource::Endpoint => "http.url",
        // Counted by the server, not set.
        Resource::TestSet => "test_count",
    };
    for paths in [&[path][..], &["description", path]] {
        let request = Record {
            name: "named".into(),
            description: "x".into(),
            ..Default::default()
        };
        let status = resource.update(&server, request, mask(paths)).await;
        assert_invalid_mask(&status.unwrap_err(), path);
        assert_eq!(
            resource.get(&server, "named").await.unwrap().description,
            "",
            "a rejected update changed the {resource:?}"
        );
    }
}

async fn assert_nothing_stored(server: &Server, resource: Resource) {
    let names = resource.names(server).await;
    assert!(names.is_empty(), "a rejected create stored {names:?}");
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
