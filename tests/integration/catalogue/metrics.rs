//! `MetricService`: what a metric keeps and defaults, how it is updated, and every way a metric
//! of some kind is rejected. What it shares with every other kind (references, names, masks,
//! paging) is in `references.rs`, `validation.rs` and `paging.rs`.

use assay::proto::v1 as pb;
use tonic::Code;

use crate::fixtures::*;
use crate::harness::Server;

use super::kinds::Resource;
use super::{
    assert_invalid, assert_status, create_behavior, delete_metric, get_metric, ids, mask,
    try_create_metric, update_behavior, update_metric, update_test_set,
};

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
        .expect("update");
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
        .expect("update");
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
    let updated = update_metric(&server, request, None).await.expect("update");
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
        .expect("update");
    assert_eq!(updated.description, "newer");
    assert_eq!(updated.threshold_operator, "!=");
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
        &update_metric(&server, request, None).await.unwrap_err(),
        "metric.regex.pattern",
    );
    assert_eq!(get_metric(&server, "r").await.unwrap(), created);
}

#[tokio::test]
async fn a_metric_without_a_kind_is_invalid_argument_naming_metric_kind() {
    let server = Server::start().await;
    let metric = pb::Metric {
        name: "kindless".into(),
        ..Default::default()
    };
    assert_invalid(
        &try_create_metric(&server, metric).await.unwrap_err(),
        "metric.kind",
    );
}

#[tokio::test]
async fn a_bad_regex_is_invalid_argument_naming_the_pattern() {
    let server = Server::start().await;
    let status = try_create_metric(&server, regex("bad", "([a-z"))
        .await
        .unwrap_err();
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
            &try_create_metric(&server, metric).await.unwrap_err(),
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
    let status = try_create_metric(&server, metric).await.unwrap_err();
    assert_invalid(&status, "metric.threshold_operator");
    assert!(status.message().contains("=>"), "{:?}", status.message());
}

#[tokio::test]
async fn a_categorical_metric_without_categories_is_invalid_argument() {
    let server = Server::start().await;
    let mut metric = judge("cat");
    metric.score_type = pb::ScoreType::Categorical as i32;
    assert_invalid(
        &try_create_metric(&server, metric.clone())
            .await
            .unwrap_err(),
        "metric.categories",
    );
    metric.categories = ids(["good", "bad"]);
    assert_invalid(
        &try_create_metric(&server, metric.clone())
            .await
            .unwrap_err(),
        "metric.passing_categories",
    );
    metric.passing_categories = ids(["great"]);
    assert_invalid(
        &try_create_metric(&server, metric.clone())
            .await
            .unwrap_err(),
        "metric.passing_categories",
    );
    metric.passing_categories = ids(["good"]);
    let created = create_metric(&server, metric).await;
    assert_eq!(created.score_type, pb::ScoreType::Categorical as i32);
    assert_eq!(created.threshold_operator, "==");
}

#[tokio::test]
async fn a_duplicate_metric_name_is_already_exists_whatever_its_kind() {
    let server = Server::start().await;
    create_metric(&server, exact("twice")).await;
    let status = try_create_metric(&server, regex("twice", "x")).await;
    assert_status(&status.unwrap_err(), Code::AlreadyExists, &["twice"]);
    assert_eq!(Resource::Metric.names(&server).await, ["twice"]);
}

#[tokio::test]
async fn deleting_a_metric_in_use_fails_naming_its_users_until_they_stop_using_it() {
    let server = Server::start().await;
    let metric = create_metric(&server, exact("shared")).await;
    create_behavior(&server, "polite", &["shared"])
        .await
        .expect("behavior");
    create_test_set(&server, "smoke", &["shared"], vec![]).await;

    let status = delete_metric(&server, "shared").await.unwrap_err();
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
    update_behavior(&server, behavior, mask(&["metrics"]))
        .await
        .expect("clear behaviour metrics");
    let status = delete_metric(&server, "shared").await.unwrap_err();
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
    update_test_set(&server, test_set, mask(&["metrics"]))
        .await
        .expect("clear test set metrics");
    delete_metric(&server, "shared")
        .await
        .expect("delete once unused");
    assert_eq!(
        get_metric(&server, "shared").await.unwrap_err().code(),
        Code::NotFound
    );
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
