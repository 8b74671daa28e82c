//! References: every catalogue RPC names its resource by id or by name; an empty reference is
//! invalid, an unknown one not found.

use assay::proto::v1 as pb;
use tonic::Code;

use crate::fixtures::*;
use crate::harness::Server;

use super::{
    add_tests, all_tests, assert_invalid, assert_status, bare_http, create_behavior, error,
    get_endpoint, get_metric, get_test_set, ids, random_uuid,
};

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
