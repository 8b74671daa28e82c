//! Updates are transactions: concurrent updates of different fields of one resource all land,
//! on SQLite (one writer) and on PostgreSQL (row locks).

use assay::proto::v1 as pb;
use prost_types::FieldMask;

use crate::fixtures::{create_metric, create_test_set, exact};
use crate::harness::Server;
use crate::on_postgres::server_on;
use crate::postgres::TestDatabase;

/// Rounds of concurrent updates: a lost write shows as a stale field after some round.
const ROUNDS: usize = 15;

fn mask(path: &str) -> Option<FieldMask> {
    Some(FieldMask {
        paths: vec![path.into()],
    })
}

fn levenshtein(name: &str, value: &str) -> pb::Metric {
    pb::Metric {
        name: name.into(),
        kind: Some(pb::metric::Kind::Levenshtein(pb::Similarity {
            value: Some(value.into()),
            ..Default::default()
        })),
        ..Default::default()
    }
}

#[tokio::test]
async fn concurrent_updates_of_different_metric_fields_lose_none() {
    metric_fields_case(&Server::start().await).await;
}

#[tokio::test]
async fn concurrent_updates_of_different_metric_fields_lose_none_on_postgres() {
    let database = TestDatabase::create().await;
    metric_fields_case(&server_on(&database).await).await;
}

#[tokio::test]
async fn concurrent_updates_of_different_test_set_fields_lose_none() {
    test_set_fields_case(&Server::start().await).await;
}

#[tokio::test]
async fn concurrent_updates_of_different_test_set_fields_lose_none_on_postgres() {
    let database = TestDatabase::create().await;
    test_set_fields_case(&server_on(&database).await).await;
}

async fn metric_fields_case(server: &Server) {
    let id = create_metric(server, levenshtein("similar", "v")).await.id;
    for round in 0..ROUNDS {
        let (description, threshold) = (format!("round {round}"), round as f64 / 100.0);
        let operator = if round % 2 == 0 { ">" } else { ">=" };
        let value = format!("value {round}");
        let updates = [
            (
                "description",
                pb::Metric {
                    description: description.clone(),
                    ..Default::default()
                },
            ),
            (
                "threshold",
                pb::Metric {
                    threshold: Some(threshold),
                    ..Default::default()
                },
            ),
            (
                "threshold_operator",
                pb::Metric {
                    threshold_operator: operator.into(),
                    ..Default::default()
                },
            ),
            (
                "requires_context",
                pb::Metric {
                    requires_context: round % 2 == 0,
                    ..Default::default()
                },
            ),
            ("levenshtein", levenshtein("", &value)),
        ];
        let calls = updates.into_iter().map(|(path, metric)| {
            let mut client = server.metrics();
            let request = pb::UpdateMetricRequest {
                metric: Some(pb::Metric {
                    id: id.clone(),
                    ..metric
                }),
                update_mask: mask(path),
            };
            async move { client.update_metric(request).await }
        });
        for result in futures::future::join_all(calls).await {
            result.expect("update");
        }

        let m = server
            .metrics()
            .get_metric(pb::GetMetricRequest { metric: id.clone() })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(m.description, description, "round {round}");
        assert_eq!(m.threshold, Some(threshold), "round {round}");
        assert_eq!(m.threshold_operator, operator, "round {round}");
        assert_eq!(m.requires_context, round % 2 == 0, "round {round}");
        assert_eq!(m.name, "similar", "round {round}");
        let Some(pb::metric::Kind::Levenshtein(s)) = m.kind else {
            panic!("round {round}: the kind changed: {:?}", m.kind);
        };
        assert_eq!(s.value.as_deref(), Some(value.as_str()), "round {round}");
    }
}

async fn test_set_fields_case(server: &Server) {
    let metric = create_metric(server, exact("exact")).await;
    let id = create_test_set(server, "set", &[], vec![]).await.id;
    for round in 0..ROUNDS {
        let (name, description) = (format!("set {round}"), format!("round {round}"));
        let metrics: Vec<String> = if round % 2 == 0 {
            vec![metric.id.clone()]
        } else {
            vec![]
        };
        let updates = [
            (
                "name",
                pb::TestSet {
                    name: name.clone(),
                    ..Default::default()
                },
            ),
            (
                "description",
                pb::TestSet {
                    description: description.clone(),
                    ..Default::default()
                },
            ),
            (
                "metrics",
                pb::TestSet {
                    metrics: metrics.clone(),
                    ..Default::default()
                },
            ),
        ];
        let calls = updates.into_iter().map(|(path, test_set)| {
            let mut client = server.test_sets();
            let request = pb::UpdateTestSetRequest {
                test_set: Some(pb::TestSet {
                    id: id.clone(),
                    ..test_set
                }),
                update_mask: mask(path),
            };
            async move { client.update_test_set(request).await }
        });
        for result in futures::future::join_all(calls).await {
            result.expect("update");
        }

        let s = server
            .test_sets()
            .get_test_set(pb::GetTestSetRequest {
                test_set: id.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (s.name, s.description, s.metrics),
            (name, description, metrics),
            "round {round}"
        );
    }
}
