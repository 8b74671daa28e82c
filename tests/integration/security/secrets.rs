//! Secrets the operator allows: endpoints and judges read only the environment variables
//! `--secret-env` allows; a stored secret goes only to the origin it was stored with; a
//! redirect to another origin carries none of the configured headers.

use std::collections::HashMap;

use assay::proto::v1 as pb;
use tonic::Code;

use super::recorder::Recorder;
use crate::fixtures::{
    contains, create_endpoint, create_metric, create_test_set, execute, execute_request, test,
};
use crate::harness::Server;

/// An HTTP endpoint calling `url` with `headers`.
fn endpoint(name: &str, url: &str, headers: &[(&str, &str)]) -> pb::Endpoint {
    pb::Endpoint {
        name: name.into(),
        target: Some(pb::endpoint::Target::Http(pb::HttpTarget {
            url: url.into(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<HashMap<_, _>>(),
            ..Default::default()
        })),
        ..Default::default()
    }
}

async fn create_refused(server: &Server, endpoint: pb::Endpoint) -> tonic::Status {
    server
        .endpoints()
        .create_endpoint(pb::CreateEndpointRequest {
            endpoint: Some(endpoint),
        })
        .await
        .expect_err("the endpoint was created")
}

#[tokio::test]
async fn a_variable_outside_the_allowlist_is_refused_at_create_saying_what_is_allowed() {
    let server = Server::start().await;
    let refused = create_refused(
        &server,
        endpoint("leak", "http://127.0.0.1:9/", &[("X-Leak", "${env:HOME}")]),
    )
    .await;
    assert_eq!(refused.code(), Code::InvalidArgument);
    let message = refused.message();
    assert!(
        message.contains("endpoint.http.headers") && message.contains("\"HOME\""),
        "{message}"
    );
    assert!(
        message.contains("ASSAY_SECRET_*") && message.contains("--secret-env"),
        "{message}"
    );

    let chat = pb::Endpoint {
        name: "chat".into(),
        target: Some(pb::endpoint::Target::OpenaiChat(pb::OpenAiChatTarget {
            base_url: "http://127.0.0.1:9/v1".into(),
            model: "m".into(),
            api_key_env: "PATH".into(),
            ..Default::default()
        })),
        ..Default::default()
    };
    let refused = create_refused(&server, chat).await;
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused.message().contains("openai_chat.api_key_env"),
        "{refused:?}"
    );

    let judge = pb::Metric {
        name: "judge".into(),
        kind: Some(pb::metric::Kind::LlmJudge(pb::LlmJudge {
            base_url: "http://127.0.0.1:9/v1".into(),
            model: "m".into(),
            api_key_env: "DB_PASSWORD".into(),
            evaluation_prompt: "Is it right?".into(),
            ..Default::default()
        })),
        ..Default::default()
    };
    let refused = server
        .metrics()
        .create_metric(pb::CreateMetricRequest {
            metric: Some(judge),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused.message().contains("metric.llm_judge.api_key_env"),
        "{refused:?}"
    );

    // Allowed by the default, created.
    create_endpoint(
        &server,
        endpoint(
            "ok",
            "http://127.0.0.1:9/",
            &[("X-Key", "${env:ASSAY_SECRET_BOT}")],
        ),
    )
    .await;
}

#[tokio::test]
async fn an_update_to_a_variable_outside_the_allowlist_is_refused() {
    let server = Server::start().await;
    create_endpoint(&server, endpoint("bot", "http://127.0.0.1:9/", &[])).await;
    let refused = server
        .endpoints()
        .update_endpoint(pb::UpdateEndpointRequest {
            endpoint: Some(endpoint(
                "bot",
                "http://127.0.0.1:9/",
                &[("Authorization", "Bearer ${env:HOME}")],
            )),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["http".into()],
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    assert!(refused.message().contains("\"HOME\""), "{refused:?}");
}

#[tokio::test]
async fn secret_env_allows_names_and_prefixes() {
    let server = Server::start_with(|config| {
        config.secret_env = vec!["BOT_TOKEN".into(), "TEAM_*".into()];
    })
    .await;
    create_endpoint(
        &server,
        endpoint("a", "http://127.0.0.1:9/", &[("X-A", "${env:BOT_TOKEN}")]),
    )
    .await;
    create_endpoint(
        &server,
        endpoint("b", "http://127.0.0.1:9/", &[("X-B", "${env:TEAM_KEY}")]),
    )
    .await;
    let refused = create_refused(
        &server,
        endpoint(
            "c",
            "http://127.0.0.1:9/",
            &[("X-C", "${env:ASSAY_SECRET_X}")],
        ),
    )
    .await;
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused.message().contains("BOT_TOKEN, TEAM_*"),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_malformed_reference_is_refused_at_create() {
    let server = Server::start().await;
    let refused = create_refused(
        &server,
        endpoint("bad", "http://127.0.0.1:9/", &[("X-Key", "${env:HOME")]),
    )
    .await;
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(refused.message().contains("unterminated"), "{refused:?}");
}

/// Updates endpoint `bot` to `url` and headers; the status when refused.
async fn move_endpoint(
    server: &Server,
    url: &str,
    headers: &[(&str, &str)],
) -> Result<pb::Endpoint, tonic::Status> {
    server
        .endpoints()
        .update_endpoint(pb::UpdateEndpointRequest {
            endpoint: Some(endpoint("bot", url, headers)),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["http".into()],
            }),
        })
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn a_stored_secret_is_only_sent_to_the_origin_it_was_stored_with() {
    let server = Server::start().await;
    create_endpoint(
        &server,
        endpoint(
            "bot",
            "http://127.0.0.1:9/answer",
            &[("X-Api-Key", "sk-live-1")],
        ),
    )
    .await;
    let masked = [("X-Api-Key", "********")];

    // Same origin, other path: the mask keeps the secret.
    move_endpoint(&server, "http://127.0.0.1:9/v2/answer", &masked)
        .await
        .expect("same origin");
    // Another origin (here another port) with the mask: refused, naming both origins.
    let refused = move_endpoint(&server, "http://127.0.0.1:10/answer", &masked)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused.message().contains("http://127.0.0.1:10")
            && refused.message().contains("X-Api-Key"),
        "{refused:?}"
    );
    assert!(!refused.message().contains("sk-live-1"));
    // With the secret sent again, it moves.
    move_endpoint(
        &server,
        "http://127.0.0.1:10/answer",
        &[("X-Api-Key", "sk-live-2")],
    )
    .await
    .expect("secret sent again");
}

/// Runs one test against endpoint `bot`.
async fn run_once(server: &Server, set: &str) -> pb::TestResult {
    create_test_set(
        server,
        set,
        &["says-paris"],
        vec![test("capital of France?", "", &[])],
    )
    .await;
    let (_, results, _) = execute(server, execute_request(set, "bot")).await;
    results.into_iter().next().expect("one result")
}

#[tokio::test]
async fn a_redirect_to_another_origin_drops_every_configured_header() {
    let server = Server::start().await;
    let (origin, elsewhere) = (Recorder::start().await, Recorder::start().await);
    create_metric(&server, contains("says-paris", &["Paris"])).await;
    let headers = [
        ("X-Api-Key", "sk-live-1"),
        ("X-Team", "qa"),
        ("Authorization", "Bearer t"),
    ];

    let away = format!("{}/redirect?to={}/answer", origin.url, elsewhere.url);
    create_endpoint(&server, endpoint("bot", &away, &headers)).await;
    let result = run_once(&server, "away").await;
    assert_eq!(result.output, "Paris", "{result:?}");
    let seen = &elsewhere.headers()[0];
    for name in ["x-api-key", "x-team", "authorization"] {
        assert!(
            seen.get(name).is_none(),
            "{name} was forwarded to another origin"
        );
    }

    // A redirect on the same origin keeps them.
    let home = format!("{}/redirect?to={}/answer", origin.url, origin.url);
    move_endpoint(&server, &home, &headers)
        .await
        .expect("moved");
    run_once(&server, "home").await;
    let seen = &origin.headers()[0];
    assert_eq!(seen["x-api-key"], "sk-live-1");
    assert_eq!(seen["x-team"], "qa");
}

#[tokio::test]
async fn a_resolved_secret_echoed_by_the_application_is_never_stored_or_shown() {
    // SAFETY: a variable of this test's own name, set before any server reads it.
    unsafe { std::env::set_var("ASSAY_SECRET_IT_ECHOED", "s3cr3t-echoed-42") };
    let server = Server::start().await;
    let app = Recorder::start().await;
    create_metric(&server, contains("says-paris", &["Paris"])).await;
    let key = [("X-Api-Key", "${env:ASSAY_SECRET_IT_ECHOED}")];
    create_endpoint(&server, endpoint("bot", &format!("{}/echo", app.url), &key)).await;
    let answered = run_once(&server, "answered").await;
    assert_eq!(answered.output, "Paris (key ********)", "{answered:?}");

    move_endpoint(&server, &format!("{}/echo?fail=1", app.url), &key)
        .await
        .expect("moved");
    let failed = run_once(&server, "failed").await;
    assert_eq!(failed.status(), pb::ResultStatus::Error);
    assert!(
        failed.error.contains("bad key ********"),
        "{}",
        failed.error
    );

    // Nor does any read show it: the stored results, as reports are written from them.
    let stored = server
        .execution()
        .list_test_results(pb::ListTestResultsRequest {
            run: failed.run_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let text = format!("{stored:?}");
    assert!(!text.contains("s3cr3t-echoed-42"), "{text}");
    assert!(!format!("{answered:?}").contains("s3cr3t-echoed-42"));
}
