//! `EndpointService`: endpoints, their defaults, their validation and how secret headers are
//! masked. What an endpoint shares with every other kind (references, names, masks, paging) is in
//! `references.rs`, `validation.rs` and `paging.rs`.

use assay::proto::v1 as pb;

use crate::app_server::Target;
use crate::fixtures::*;
use crate::harness::Server;

use super::kinds::Resource;
use super::{
    assert_invalid, bare_http, get_endpoint, headers, mask, try_create_endpoint, update_endpoint,
};

#[tokio::test]
async fn creating_an_http_endpoint_fills_in_the_defaults() {
    let server = Server::start().await;
    let created = create_endpoint(&server, bare_http("app", "http://127.0.0.1:9/answer")).await;
    assert!(uuid::Uuid::parse_str(&created.id).is_ok());
    let h = http(&created);
    assert_eq!(h.url, "http://127.0.0.1:9/answer");
    assert_eq!(h.method, "POST");
    assert_eq!(h.body_template, r#"{"prompt": "{{ prompt }}"}"#);
    assert_eq!(
        h.response_mapping.as_ref().map(|m| m.output.as_str()),
        Some("$.output")
    );
    assert_eq!(h.timeout_ms, 30_000);
    assert_eq!(get_endpoint(&server, "app").await.unwrap(), created);
}

#[tokio::test]
async fn endpoints_keep_their_settings_through_get_list_and_update() {
    let server = Server::start().await;
    let mut endpoint = bare_http("app", "https://example.com/v1/answer");
    endpoint.description = "the app".into();
    endpoint.max_concurrency = 4;
    endpoint.max_retries = Some(2);
    endpoint.rate_limit_per_second = 10.0;
    http_mut(&mut endpoint).method = "PUT".into();
    http_mut(&mut endpoint).timeout_ms = 1234;
    let app = create_endpoint(&server, endpoint).await;
    assert_eq!(
        (
            app.max_concurrency,
            app.max_retries,
            app.rate_limit_per_second
        ),
        (4, Some(2), 10.0)
    );
    assert_eq!(
        (http(&app).method.as_str(), http(&app).timeout_ms),
        ("PUT", 1234)
    );

    let chat = create_endpoint(
        &server,
        pb::Endpoint {
            name: "chat".into(),
            target: Some(pb::endpoint::Target::OpenaiChat(pb::OpenAiChatTarget {
                base_url: "https://api.example.com/v1".into(),
                model: "gpt-test".into(),
                system_prompt: "be brief".into(),
                api_key_env: "ASSAY_SECRET_EXAMPLE_KEY".into(),
                timeout_ms: 0,
            })),
            ..Default::default()
        },
    )
    .await;
    let Some(pb::endpoint::Target::OpenaiChat(settings)) = &chat.target else {
        panic!("not a chat endpoint: {chat:?}")
    };
    assert_eq!(settings.model, "gpt-test");
    assert_eq!(settings.system_prompt, "be brief");
    assert_eq!(settings.api_key_env, "ASSAY_SECRET_EXAMPLE_KEY");
    assert_eq!(settings.timeout_ms, 60_000);

    assert_eq!(get_endpoint(&server, &app.id).await.unwrap(), app);
    assert_eq!(get_endpoint(&server, "chat").await.unwrap(), chat);
    assert_eq!(first_page(&server).await, [app.clone(), chat.clone()]);

    let request = pb::Endpoint {
        id: chat.id.clone(),
        description: "chat model".into(),
        max_concurrency: 8,
        ..Default::default()
    };
    let updated = update_endpoint(&server, request, mask(&["description"]))
        .await
        .unwrap();
    assert_eq!(updated.description, "chat model");
    assert_eq!(
        updated.max_concurrency, 0,
        "a field outside the mask changed"
    );
    assert_eq!(updated.target, chat.target);

    // Switching the kind of target.
    let request = pb::Endpoint {
        id: chat.id.clone(),
        target: app.target.clone(),
        ..Default::default()
    };
    let switched = update_endpoint(&server, request, None).await.unwrap();
    assert_eq!(switched.target, app.target);
}

#[tokio::test]
async fn secret_headers_are_masked_by_create_get_list_and_update() {
    let server = Server::start().await;
    let mut endpoint = bare_http("app", "http://127.0.0.1:9/answer");
    http_mut(&mut endpoint).headers = headers(&[
        ("Authorization", "Bearer sk-live-123"),
        ("X-Api-Key", "key-456"),
        ("X-Auth-Token", "tok-789"),
        ("Client-Secret", "shh"),
        ("Content-Type", "application/json"),
    ]);
    let expected = headers(&[
        ("Authorization", "********"),
        ("X-Api-Key", "********"),
        ("X-Auth-Token", "********"),
        ("Client-Secret", "********"),
        ("Content-Type", "application/json"),
    ]);
    let created = create_endpoint(&server, endpoint).await;
    assert_eq!(http(&created).headers, expected, "Create");
    assert_eq!(
        http(&get_endpoint(&server, "app").await.unwrap()).headers,
        expected,
        "Get"
    );
    let listed = first_page(&server).await;
    assert_eq!(http(&listed[0]).headers, expected, "List");
    let request = pb::Endpoint {
        id: created.id.clone(),
        description: "d".into(),
        ..Default::default()
    };
    let updated = update_endpoint(&server, request, None).await.unwrap();
    assert_eq!(http(&updated).headers, expected, "Update");
}

#[tokio::test]
async fn env_references_and_plain_headers_are_shown_as_given() {
    let server = Server::start().await;
    let given = headers(&[
        ("Authorization", "Bearer ${env:ASSAY_SECRET_TEST_TOKEN}"),
        ("X-Api-Key", "${env:ASSAY_SECRET_TEST_KEY}"),
        ("Content-Type", "application/json"),
        ("X-Request-Source", "assay"),
    ]);
    let mut endpoint = bare_http("app", "http://127.0.0.1:9/answer");
    http_mut(&mut endpoint).headers = given.clone();
    assert_eq!(
        http(&create_endpoint(&server, endpoint).await).headers,
        given
    );
    assert_eq!(
        http(&get_endpoint(&server, "app").await.unwrap()).headers,
        given
    );
}

#[tokio::test]
async fn sending_the_masked_secret_back_keeps_the_stored_secret() {
    let (server, target) =
        app_sending(&[("Authorization", "Bearer sk-live-123"), ("X-Trace", "one")]).await;

    // A client reads the endpoint, changes a plain header and sends the whole thing back.
    let mut read = get_endpoint(&server, "app").await.unwrap();
    assert_eq!(http(&read).headers["Authorization"], "********");
    http_mut(&mut read)
        .headers
        .insert("X-Trace".into(), "two".into());
    let updated = update_endpoint(&server, read, None).await.expect("update");
    assert_eq!(
        http(&updated).headers,
        headers(&[("Authorization", "********"), ("X-Trace", "two")])
    );
    assert_eq!(
        http(&get_endpoint(&server, "app").await.unwrap()).headers,
        headers(&[("Authorization", "********"), ("X-Trace", "two")])
    );

    let (_, results, summary) = execute(&server, execute_request("one", "app")).await;
    assert_eq!(
        summary.status,
        pb::RunStatus::Completed as i32,
        "{results:?}"
    );
    assert_eq!(
        sent(&target, "authorization"),
        ["Bearer sk-live-123"],
        "the stored secret was lost"
    );
    assert_eq!(sent(&target, "x-trace"), ["two"]);

    // A new value replaces the secret.
    let mut read = get_endpoint(&server, "app").await.unwrap();
    http_mut(&mut read)
        .headers
        .insert("Authorization".into(), "Bearer sk-new".into());
    update_endpoint(&server, read, mask(&["http"]))
        .await
        .expect("update");
    execute(&server, execute_request("one", "app")).await;
    assert_eq!(
        sent(&target, "authorization"),
        ["Bearer sk-live-123", "Bearer sk-new"]
    );
}

#[tokio::test]
async fn a_masked_secret_sent_back_under_another_letter_case_keeps_the_stored_secret() {
    // HTTP header names are case-insensitive: `authorization` is the `Authorization` header, so
    // sending its mask back must keep the secret, not store the mask as the new value.
    let (server, target) = app_sending(&[("Authorization", "Bearer sk-live-123")]).await;
    let mut read = get_endpoint(&server, "app").await.unwrap();
    http_mut(&mut read).headers = headers(&[("authorization", "********")]);
    update_endpoint(&server, read, None).await.expect("update");

    execute(&server, execute_request("one", "app")).await;
    assert_eq!(
        sent(&target, "authorization"),
        ["Bearer sk-live-123"],
        "the stored secret was replaced by the mask"
    );
}

/// A server with the endpoint `app` on a stand-in target, configured to send `pairs` as headers,
/// and the test set `one` of one test to run against it; and the target.
async fn app_sending(pairs: &[(&str, &str)]) -> (Server, Target) {
    let server = Server::start().await;
    let target = Target::start().await;
    create_metric(&server, regex("anything", ".")).await;
    create_test_set(&server, "one", &["anything"], vec![test("hello", "", &[])]).await;
    let mut endpoint = http_endpoint("app", &target.url);
    http_mut(&mut endpoint).headers = headers(pairs);
    create_endpoint(&server, endpoint).await;
    (server, target)
}

/// The value of header `name` in each call the target received, in order; every call must have
/// it.
fn sent(target: &Target, name: &str) -> Vec<String> {
    let calls = target.headers();
    let value = |call: &axum::http::HeaderMap| {
        let value = call
            .get(name)
            .unwrap_or_else(|| panic!("a call without {name}"));
        value.to_str().expect("a text header").to_string()
    };
    calls.iter().map(value).collect()
}

#[tokio::test]
async fn an_endpoint_with_an_invalid_or_missing_target_is_invalid_argument_naming_the_setting() {
    let server = Server::start().await;
    let mut cases = Vec::new();
    for url in ["", "not a url", "ftp://example.com/file", "/relative/path"] {
        cases.push((bare_http("app", url), "endpoint.http.url".to_string()));
    }
    let chat = pb::Endpoint {
        name: "chat".into(),
        target: Some(pb::endpoint::Target::OpenaiChat(pb::OpenAiChatTarget {
            base_url: "api.example.com".into(),
            model: "m".into(),
            ..Default::default()
        })),
        ..Default::default()
    };
    cases.push((chat, "endpoint.openai_chat.base_url".into()));
    // A body template that is no JSON.
    let mut endpoint = bare_http("app", "http://127.0.0.1:9/answer");
    http_mut(&mut endpoint).body_template = r#"{"prompt": {{ prompt }}"#.into();
    cases.push((endpoint, "endpoint.http.body_template".into()));
    // A response mapping that is no JSONPath.
    for (field, path) in [
        ("output", "output"),
        ("context", "$.context["),
        ("metadata", "$..[?("),
    ] {
        let mut endpoint = bare_http("app", "http://127.0.0.1:9/answer");
        let mut mapping = pb::ResponseMapping {
            output: "$.output".into(),
            ..Default::default()
        };
        match field {
            "output" => mapping.output = path.into(),
            "context" => mapping.context = path.into(),
            _ => mapping.metadata = path.into(),
        }
        http_mut(&mut endpoint).response_mapping = Some(mapping);
        cases.push((endpoint, format!("endpoint.http.response_mapping.{field}")));
    }
    let no_target = pb::Endpoint {
        name: "app".into(),
        ..Default::default()
    };
    cases.push((no_target, "endpoint.target".into()));

    for (endpoint, field) in cases {
        let status = try_create_endpoint(&server, endpoint).await.unwrap_err();
        assert_invalid(&status, &field);
    }
    let names = Resource::Endpoint.names(&server).await;
    assert!(
        names.is_empty(),
        "a rejected endpoint was stored: {names:?}"
    );
}

#[tokio::test]
async fn an_update_that_breaks_an_endpoint_is_rejected_and_changes_nothing() {
    let server = Server::start().await;
    let created = create_endpoint(&server, bare_http("app", "http://127.0.0.1:9/answer")).await;
    let mut request = created.clone();
    http_mut(&mut request).url = "nowhere".into();
    let status = update_endpoint(&server, request, None).await.unwrap_err();
    assert_invalid(&status, "endpoint.http.url");
    assert_eq!(get_endpoint(&server, "app").await.unwrap(), created);
}

/// The endpoints on the first page of ListEndpoints, which must be the only page.
async fn first_page(server: &Server) -> Vec<pb::Endpoint> {
    let request = pb::ListEndpointsRequest::default();
    let page = server.endpoints().list_endpoints(request).await;
    let page = page.expect("list endpoints").into_inner();
    assert_eq!(page.next_page_token, "", "more than one page");
    page.endpoints
}

fn http(endpoint: &pb::Endpoint) -> &pb::HttpTarget {
    match &endpoint.target {
        Some(pb::endpoint::Target::Http(h)) => h,
        other => panic!("not an http endpoint: {other:?}"),
    }
}

fn http_mut(endpoint: &mut pb::Endpoint) -> &mut pb::HttpTarget {
    match &mut endpoint.target {
        Some(pb::endpoint::Target::Http(h)) => h,
        other => panic!("not an http endpoint: {other:?}"),
    }
}
