//! The `semantic_similarity` metric through gRPC: the output and the reference are embedded by a
//! real OpenAI-compatible `/v1/embeddings` API on 127.0.0.1 (the test target's, whose vectors
//! count letters) and scored by their cosine.

use assay::proto::v1 as pb;
use pb::metric::Kind;
use tonic::Code;

use crate::app_server::{Target, letter_counts};
use crate::fixtures::*;
use crate::harness::Server;

/// An endpoint of the `openai_chat` kind on the target's embeddings API.
fn embedder(name: &str, target: &Target) -> pb::Endpoint {
    pb::Endpoint {
        name: name.into(),
        target: Some(pb::endpoint::Target::OpenaiChat(pb::OpenAiChatTarget {
            base_url: format!("{}/v1", target.url),
            model: "embed-model".into(),
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// A semantic similarity metric embedding through `endpoint`, passing at `threshold`.
fn semantic(name: &str, endpoint: &str, value: Option<&str>, threshold: f64) -> pb::Metric {
    pb::Metric {
        name: name.into(),
        threshold: Some(threshold),
        kind: Some(Kind::SemanticSimilarity(pb::SemanticSimilarity {
            value: value.map(str::to_string),
            embedding_endpoint: endpoint.into(),
        })),
        ..Default::default()
    }
}

/// What numpy computes: `dot(a, b) / (norm(a) * norm(b))`.
fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b))
}

#[tokio::test]
async fn semantic_similarity_is_the_cosine_of_the_embeddings_of_output_and_reference() {
    let server = Server::start().await;
    let target = Target::start().await;
    create_endpoint(&server, http_endpoint("app", &target.url)).await;
    let embedding = create_endpoint(&server, embedder("embedder", &target)).await;
    let created = create_metric(&server, semantic("meaning", "embedder", None, 0.9)).await;
    // The endpoint is named when created and returned as its id.
    let Some(Kind::SemanticSimilarity(settings)) = &created.kind else {
        panic!("{created:?}")
    };
    assert_eq!(settings.embedding_endpoint, embedding.id);
    assert_eq!(created.score_type, pb::ScoreType::Numeric as i32);
    create_metric(&server, semantic("fixed", "embedder", Some("abc"), 0.5)).await;
    let tests = vec![
        test("q1", "paris", &[("answer", "Paris")]),
        test("q2", "a", &[("answer", "ab")]),
        test("q3", "", &[("answer", "cab")]),
    ];
    create_test_set(&server, "set", &["meaning", "fixed"], tests).await;

    let (_, results, summary) = execute(&server, execute_request("set", "app")).await;
    let score = |output: &str, name: &str| {
        let result = results.iter().find(|r| r.output == output).unwrap();
        let m = result.metric_results.iter().find(|m| m.metric_name == name);
        let m = m.unwrap();
        (m.score, m.passed, m.error.clone())
    };
    let close = |got: Option<f64>, want: f64| {
        assert!((got.unwrap() - want).abs() < 1e-12, "{got:?} vs {want}")
    };
    let (got, passed, _) = score("Paris", "meaning");
    close(got, 1.0);
    assert!(passed);
    let (got, passed, _) = score("ab", "meaning");
    close(got, cosine(&letter_counts("ab"), &letter_counts("a")));
    assert!(!passed, "0.707 is below the threshold 0.9");
    // A fixed value is compared with instead of the expected response.
    let (got, passed, _) = score("cab", "fixed");
    close(got, 1.0);
    assert!(passed);
    let (got, passed, error) = score("cab", "meaning");
    assert_eq!((got, passed), (None, false));
    assert!(error.contains("needs an expected response"), "{error}");
    assert_eq!(summary.total, 3);

    // One call per metric and answer, with the endpoint's model, output first.
    let embedded: Vec<_> = target
        .bodies()
        .into_iter()
        .filter(|b| b.get("input").is_some())
        .collect();
    assert_eq!(embedded.len(), 5, "{embedded:?}");
    assert!(embedded.iter().all(|b| b["model"] == "embed-model"));
    assert!(
        embedded
            .iter()
            .any(|b| b["input"] == serde_json::json!(["ab", "a"])),
        "{embedded:?}"
    );
}

#[tokio::test]
async fn a_failing_embedding_endpoint_is_an_error_of_the_metric_not_of_the_run() {
    let server = Server::start().await;
    let target = Target::start().await;
    create_endpoint(&server, http_endpoint("app", &target.url)).await;
    let mut broken = embedder("broken", &target);
    if let Some(pb::endpoint::Target::OpenaiChat(chat)) = broken.target.as_mut() {
        // The target's text route answers plain text to a POST below this base URL.
        chat.base_url = format!("{}/nothing-here", target.url);
    }
    broken.max_retries = Some(0);
    create_endpoint(&server, broken).await;
    create_metric(&server, semantic("meaning", "broken", None, 0.5)).await;
    create_metric(&server, regex("anything", ".")).await;
    create_test_set(
        &server,
        "set",
        &["meaning", "anything"],
        vec![test("q", "q", &[])],
    )
    .await;

    let (_, results, _) = execute(&server, execute_request("set", "app")).await;
    let meaning = &results[0]
        .metric_results
        .iter()
        .find(|m| m.metric_name == "meaning");
    let error = &meaning.unwrap().error;
    assert!(
        error.contains("embedding endpoint \"broken\"") && error.contains("HTTP 404"),
        "{error}"
    );
    assert_eq!(results[0].status, pb::ResultStatus::Failed as i32);
}

#[tokio::test]
async fn the_embedding_endpoint_must_exist_and_be_of_the_openai_chat_kind() {
    let server = Server::start().await;
    let target = Target::start().await;
    create_endpoint(&server, http_endpoint("app", &target.url)).await;
    let create = |metric: pb::Metric| {
        let mut client = server.metrics();
        async move {
            client
                .create_metric(pb::CreateMetricRequest {
                    metric: Some(metric),
                })
                .await
                .expect_err("the metric was created")
        }
    };
    let field = "metric.semantic_similarity.embedding_endpoint";

    let missing = create(semantic("m", "", None, 0.5)).await;
    assert_eq!(missing.code(), Code::InvalidArgument);
    assert!(missing.message().contains(field), "{}", missing.message());

    let http = create(semantic("m", "app", None, 0.5)).await;
    assert_eq!(http.code(), Code::InvalidArgument);
    assert!(
        http.message().contains(field) && http.message().contains("\"app\""),
        "{}",
        http.message()
    );

    let unknown = create(semantic("m", "nowhere", None, 0.5)).await;
    assert_eq!(unknown.code(), Code::NotFound);
    assert!(
        unknown.message().contains("nowhere"),
        "{}",
        unknown.message()
    );
}
