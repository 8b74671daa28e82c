//! Calls against a real HTTP server on 127.0.0.1.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::test_server::{Answer, TestServer};
use super::*;
use crate::domain::{HttpTarget, OpenAiChatTarget, ResponseMapping};

pub(super) fn http_endpoint(url: &str, body_template: &str, mapping: ResponseMapping) -> Endpoint {
    endpoint(Target::Http(HttpTarget {
        url: url.to_string(),
        method: String::new(),
        headers: BTreeMap::new(),
        body_template: body_template.to_string(),
        response_mapping: mapping,
        timeout_ms: 0,
    }))
}

fn endpoint(target: Target) -> Endpoint {
    Endpoint {
        id: Uuid::new_v4(),
        name: "e".into(),
        description: String::new(),
        target,
        max_concurrency: 0,
        max_retries: Some(0),
        rate_limit_per_second: 0.0,
        call_policy: Default::default(),
        pricing: Default::default(),
        created_at: chrono::Utc::now(),
        updated_at: chrono::Utc::now(),
    }
}

pub(super) fn mapping(output: &str) -> ResponseMapping {
    ResponseMapping {
        output: output.to_string(),
        context: None,
        metadata: None,
        input_tokens: None,
        output_tokens: None,
    }
}

fn http_mut(endpoint: &mut Endpoint) -> &mut HttpTarget {
    match &mut endpoint.target {
        Target::Http(http) => http,
        Target::OpenAiChat(_) => unreachable!(),
    }
}

fn test_case(prompt: &str) -> Test {
    Test {
        id: Uuid::new_v4(),
        test_set_id: Uuid::new_v4(),
        prompt: prompt.to_string(),
        expected_response: Some("Paris".into()),
        behavior_id: None,
        category: "geo".into(),
        topic: "capitals".into(),
        metadata: BTreeMap::from([("lang".to_string(), "en".to_string())]),
        created_at: chrono::Utc::now(),
        key: String::new(),
    }
}

fn params(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => unreachable!(),
    }
}

fn unique_var(tag: &str) -> String {
    format!("ASSAY_SECRET_TEST_{tag}_{}", Uuid::new_v4().simple())
}

#[tokio::test]
async fn http_call_sends_the_rendered_body_and_maps_the_answer() {
    let server = TestServer::start(|_, _| {
        Answer::json(json!({"data": {"answer": "It is Paris.", "docs": ["a", {"b": 1}]}, "usage": {"tokens": 7}}))
    })
    .await;
    let mut endpoint = http_endpoint(
        &format!("{}/ask", server.url),
        r#"{"q": "{{ prompt }}", "expected": "{{ expected_response }}", "t": "{{ parameters.temperature }}",
            "meta": "{{ metadata }}", "label": "{{ category }}/{{ topic }}", "fixed": [1, null]}"#,
        ResponseMapping {
            output: "$.data.answer".into(),
            context: Some("$.data.docs".into()),
            metadata: Some("$.usage".into()),
            input_tokens: None,
            output_tokens: None,
        },
    );
    http_mut(&mut endpoint)
        .headers
        .insert("X-Client".into(), "assay-test".into());
    let client = TargetClient::new();
    let prepared = client
        .prepare(&endpoint, &params(json!({"temperature": 0.3})))
        .unwrap();
    let prompt = "What's the \"capital\" of\nFrance? ✓ \\o/";
    let out = prepared.call(&test_case(prompt)).await.unwrap();
    assert_eq!(out.output, "It is Paris.");
    assert_eq!(out.context, vec!["a".to_string(), r#"{"b":1}"#.to_string()]);
    assert_eq!(out.metadata, Some(json!({"tokens": 7})));
    assert_eq!(out.attempts, 1);

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/ask");
    assert_eq!(
        request.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(request.header("x-client").as_deref(), Some("assay-test"));
    assert_eq!(
        request.json(),
        json!({"q": prompt, "expected": "Paris", "t": 0.3, "meta": {"lang": "en"},
               "label": "geo/capitals", "fixed": [1, null]})
    );
}

#[tokio::test]
async fn default_template_and_output_path() {
    let server =
        TestServer::start(|_, _| Answer::json(json!({"output": {"structured": true}}))).await;
    let endpoint = http_endpoint(&server.url, "", mapping(""));
    let prepared = TargetClient::new().prepare(&endpoint, &Map::new()).unwrap();
    let out = prepared.call(&test_case("hi")).await.unwrap();
    assert_eq!(out.output, r#"{"structured":true}"#);
    assert!(out.context.is_empty());
    assert_eq!(out.metadata, None);
    assert_eq!(server.requests()[0].json(), json!({"prompt": "hi"}));
}

#[tokio::test]
async fn env_headers_are_resolved_at_call_time() {
    let server = TestServer::start(|_, _| Answer::json(json!({"output": "ok"}))).await;
    let var = unique_var("TOKEN");
    let mut endpoint = http_endpoint(&server.url, "", mapping("$.output"));
    let http = http_mut(&mut endpoint);
    http.headers
        .insert("Authorization".into(), format!("Bearer ${{env:{var}}}"));
    http.headers
        .insert("Content-Type".into(), "application/vnd.test+json".into());
    let prepared = TargetClient::new().prepare(&endpoint, &Map::new()).unwrap();

    let err = prepared.call(&test_case("hi")).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "header \"Authorization\": environment variable \"{var}\" is not set in the server's environment, where it is read"
        )
    );
    assert!(server.requests().is_empty());

    // SAFETY: the variable's name is unique to this test.
    unsafe { std::env::set_var(&var, "first") };
    prepared.call(&test_case("hi")).await.unwrap();
    unsafe { std::env::set_var(&var, "second") };
    prepared.call(&test_case("hi")).await.unwrap();
    unsafe { std::env::remove_var(&var) };

    let requests = server.requests();
    let auth: Vec<_> = requests.iter().map(|r| r.header("authorization")).collect();
    assert_eq!(
        auth,
        vec![Some("Bearer first".into()), Some("Bearer second".into())]
    );
    assert_eq!(
        requests[0].header("content-type").as_deref(),
        Some("application/vnd.test+json")
    );
}

#[tokio::test]
async fn non_2xx_status_is_reported_with_body() {
    let server =
        TestServer::start(|_, _| Answer::status(404, format!("no such route {}", "x".repeat(700))))
            .await;
    let mut endpoint = http_endpoint(&server.url, "", mapping(""));
    endpoint.max_retries = Some(3);
    let prepared = TargetClient::new().prepare(&endpoint, &Map::new()).unwrap();
    let err = prepared.call(&test_case("hi")).await.unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with("endpoint returned HTTP 404: no such route xxx"),
        "{message}"
    );
    assert!(message.chars().count() < 560, "{message}");
    // 4xx other than 429 is not retried.
    assert_eq!(server.requests().len(), 1);
    assert_eq!(err.attempts, 1);
    assert!(matches!(
        err.error,
        TargetError::Status {
            status: 404,
            attempts: 1,
            ..
        }
    ));
}

#[tokio::test]
async fn server_errors_are_retried_until_success() {
    let server = TestServer::start(|n, _| {
        if n < 2 {
            Answer::status(503, "busy")
        } else {
            Answer::json(json!({"output": "finally"}))
        }
    })
    .await;
    let mut endpoint = http_endpoint(&server.url, "", mapping(""));
    endpoint.max_retries = Some(3);
    let prepared = TargetClient::new().prepare(&endpoint, &Map::new()).unwrap();
    let out = prepared.call(&test_case("hi")).await.unwrap();
    assert_eq!(out.output, "finally");
    assert_eq!(out.attempts, 3);
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn retries_give_up_and_say_how_often_they_tried() {
    let server = TestServer::start(|_, _| {
        let mut answer = Answer::status(429, "slow down");
        answer.headers.push(("retry-after", "0".into()));
        answer
    })
    .await;
    let mut endpoint = http_endpoint(&server.url, "", mapping(""));
    endpoint.max_retries = Some(2);
    let prepared = TargetClient::new().prepare(&endpoint, &Map::new()).unwrap();
    let started = std::time::Instant::now();
    let err = prepared.call(&test_case("hi")).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "endpoint returned HTTP 429: slow down (after 3 attempts)"
    );
    // Retry-After: 0 replaces the backoff.
    assert!(started.elapsed() < Duration::from_millis(1000));
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn slow_endpoints_time_out() {
    let server = TestServer::start(|_, _| {
        let mut answer = Answer::json(json!({"output": "late"}));
        answer.delay = Duration::from_secs(5);
        answer
    })
    .await;
    let mut endpoint = http_endpoint(&server.url, "", mapping(""));
    http_mut(&mut endpoint).timeout_ms = 200;
    let prepared = TargetClient::new().prepare(&endpoint, &Map::new()).unwrap();
    let started = std::time::Instant::now();
    let err = prepared.call(&test_case("hi")).await.unwrap_err();
    assert_eq!(err.to_string(), "endpoint timed out after 200 ms");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn connection_refused_is_a_connect_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let mut endpoint = http_endpoint(&url, "", mapping(""));
    endpoint.max_retries = Some(1);
    let prepared = TargetClient::new().prepare(&endpoint, &Map::new()).unwrap();
    let err = prepared.call(&test_case("hi")).await.unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with("could not connect to endpoint: "),
        "{message}"
    );
    assert!(message.ends_with("(after 2 attempts)"), "{message}");
}

#[tokio::test]
async fn non_json_and_unmatched_responses_are_errors() {
    let server = TestServer::start(|n, _| {
        if n == 0 {
            Answer::status(200, "<html>oops</html>")
        } else {
            Answer::json(json!({"result": "x"}))
        }
    })
    .await;
    let endpoint = http_endpoint(&server.url, "", mapping("$.answer"));
    let prepared = TargetClient::new().prepare(&endpoint, &Map::new()).unwrap();
    let err = prepared
        .call(&test_case("hi"))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("endpoint response is not JSON: "), "{err}");
    assert!(err.contains("<html>oops</html>"), "{err}");
    let err = prepared
        .call(&test_case("hi"))
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "response mapping output \"$.answer\" matched nothing; the body was: {\"result\":\"x\"}"
    );
}

#[tokio::test]
async fn context_mapping_accepts_strings_lists_and_nothing() {
    let server = TestServer::start(|n, _| match n {
        0 => Answer::json(json!({"output": "a", "ctx": "one passage"})),
        1 => Answer::json(json!({"output": "a", "ctx": [{"text": "t1"}, {"text": "t2"}]})),
        _ => Answer::json(json!({"output": "a"})),
    })
    .await;
    let mut endpoint = http_endpoint(&server.url, "", mapping(""));
    http_mut(&mut endpoint).response_mapping.context = Some("$.ctx".into());
    let prepared = TargetClient::new().prepare(&endpoint, &Map::new()).unwrap();
    let first = prepared.call(&test_case("hi")).await.unwrap();
    assert_eq!(first.context, vec!["one passage".to_string()]);
    let second = prepared.call(&test_case("hi")).await.unwrap();
    assert_eq!(
        second.context,
        vec![
            r#"{"text":"t1"}"#.to_string(),
            r#"{"text":"t2"}"#.to_string()
        ]
    );
    let third = prepared.call(&test_case("hi")).await.unwrap();
    assert!(third.context.is_empty());

    // Several nodes: each one is a passage.
    let mut endpoint = http_endpoint(&server.url, "", mapping(""));
    http_mut(&mut endpoint).response_mapping.context = Some("$.ctx[*].text".into());
    let server2 = TestServer::start(|_, _| {
        Answer::json(json!({"output": "a", "ctx": [{"text": "t1"}, {"text": "t2"}]}))
    })
    .await;
    http_mut(&mut endpoint).url = server2.url.clone();
    let prepared = TargetClient::new().prepare(&endpoint, &Map::new()).unwrap();
    let out = prepared.call(&test_case("hi")).await.unwrap();
    assert_eq!(out.context, vec!["t1".to_string(), "t2".to_string()]);
}

#[test]
fn prepare_names_the_bad_field() {
    let client = TargetClient::new();
    let bad_template = http_endpoint("http://127.0.0.1:1", r#"{"a": "{{ x + }}"}"#, mapping(""));
    let err = client.prepare(&bad_template, &Map::new()).unwrap_err();
    assert!(err.starts_with("http.body_template: "), "{err}");
    let bad_path = http_endpoint("http://127.0.0.1:1", "", mapping("$.[oops"));
    let err = client.prepare(&bad_path, &Map::new()).unwrap_err();
    assert!(err.starts_with("http.response_mapping.output: "), "{err}");
    let mut bad_header = http_endpoint("http://127.0.0.1:1", "", mapping(""));
    http_mut(&mut bad_header)
        .headers
        .insert("X-Key".into(), "${env:UNTERMINATED".into());
    let err = client.prepare(&bad_header, &Map::new()).unwrap_err();
    assert!(err.starts_with("http.headers.X-Key: "), "{err}");
}

#[test]
fn every_preparation_of_an_endpoint_shares_its_gate() {
    let client = TargetClient::new();
    let endpoint = http_endpoint("http://127.0.0.1:1/", "", mapping(""));
    let first = client.prepare(&endpoint, &Map::new()).unwrap();
    let second = client.clone().prepare(&endpoint, &Map::new()).unwrap();
    assert!(Arc::ptr_eq(&first.gate, &second.gate));
    let other = http_endpoint("http://127.0.0.1:1/", "", mapping(""));
    let third = client.prepare(&other, &Map::new()).unwrap();
    assert!(!Arc::ptr_eq(&first.gate, &third.gate));
}

#[tokio::test]
async fn openai_chat_target() {
    let server = TestServer::start(|_, _| {
        Answer::json(json!({
            "id": "c1", "model": "gpt-test",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Paris."}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 2}
        }))
    })
    .await;
    let var = unique_var("OPENAI");
    // SAFETY: the variable's name is unique to this test.
    unsafe { std::env::set_var(&var, "sk-test") };
    let endpoint = endpoint(Target::OpenAiChat(OpenAiChatTarget {
        base_url: format!("{}/v1/", server.url),
        model: "gpt-test".into(),
        system_prompt: Some("Be brief.".into()),
        api_key_env: Some(var.clone()),
        timeout_ms: 0,
    }));
    let prepared = TargetClient::new()
        .prepare(
            &endpoint,
            &params(json!({"temperature": 0.1, "max_tokens": 20, "model": "ignored"})),
        )
        .unwrap();
    let out = prepared
        .call(&test_case("Capital of \"France\"?"))
        .await
        .unwrap();
    assert_eq!(out.output, "Paris.");
    assert_eq!(
        out.metadata,
        Some(json!({"model": "gpt-test", "finish_reason": "stop",
                    "usage": {"prompt_tokens": 5, "completion_tokens": 2}}))
    );
    let requests = server.requests();
    assert_eq!(requests[0].path, "/v1/chat/completions");
    assert_eq!(
        requests[0].header("authorization").as_deref(),
        Some("Bearer sk-test")
    );
    assert_eq!(
        requests[0].json(),
        json!({
            "model": "gpt-test",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Capital of \"France\"?"}
            ],
            "temperature": 0.1,
            "max_tokens": 20
        })
    );
    unsafe { std::env::remove_var(&var) };
    let err = prepared.call(&test_case("x")).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "header \"Authorization\": environment variable \"{var}\" is not set in the server's environment, where it is read"
        )
    );
}

#[tokio::test]
async fn openai_chat_without_content_is_an_error() {
    let server = TestServer::start(|_, _| Answer::json(json!({"choices": []}))).await;
    let endpoint = endpoint(Target::OpenAiChat(OpenAiChatTarget {
        base_url: server.url.clone(),
        model: "m".into(),
        system_prompt: None,
        api_key_env: None,
        timeout_ms: 0,
    }));
    let prepared = TargetClient::new().prepare(&endpoint, &Map::new()).unwrap();
    let err = prepared
        .call(&test_case("x"))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("choices[0].message.content"), "{err}");
    let request = &server.requests()[0];
    assert_eq!(request.header("authorization"), None);
    assert_eq!(
        request.json(),
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}]})
    );
}
