//! `MetricService`: creating, reading, updating and deleting metrics, and every way a metric is
//! rejected.

use assay::proto::v1 as pb;
use prost_types::FieldMask;
use tonic::{Code, Status};

use crate::fixtures::*;
use crate::harness::Server;

use super::{assert_invalid, assert_status, create_behavior, error, ids, mask, random_uuid};

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

async fn get_metric(server: &Server, reference: &str) -> Result<pb::Metric, Status> {
    server
        .metrics()
        .get_metric(pb::GetMetricRequest {
            metric: reference.into(),
        })
        .await
        .map(|r| r.into_inner())
}
