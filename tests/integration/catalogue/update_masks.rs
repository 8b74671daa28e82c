//! Update masks, which every update RPC checks alike: a path the resource does not have is
//! `INVALID_ARGUMENT` naming `update_mask` and the path, even beside a valid one, and changes
//! nothing. Written once over a [`Resource`]: `catalogue::update_masks::<case>::<kind>`.

use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::harness::Server;

use super::{Record, Resource, mask};

for_each!(Resource [
        metric: Metric,
        behavior: Behavior,
        endpoint: Endpoint,
        test_set: TestSet,
    ]
    an_unknown_update_mask_path_is_invalid_argument_naming_update_mask,
);

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
