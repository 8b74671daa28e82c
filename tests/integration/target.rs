//! A real HTTP target on 127.0.0.1 for tests: it answers like an LLM app, and can delay, fail
//! with a chosen status, count calls, measure overlap and record what it received.
//!
//! Behaviour is chosen per request by fields of the JSON body, so each test decides through its
//! body template and test metadata: `prompt` (echoed), `answer` (returned instead of the echo),
//! `delay_ms`, `fail_status`, `context` (returned as the context list).
//!
//! `/text` answers plain text, not JSON. `/v1/chat/completions` is an OpenAI-compatible model that echoes; `/judge/v1/chat/completions`
//! a judge that scores 0.9 when the evaluated answer mentions Paris, else 0.2.
//! `/scripted/v1/chat/completions` is a judge whose reply is chosen by a marker in the judge
//! prompt (see [`scripted`]).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};

/// What the target saw.
#[derive(Default)]
struct Seen {
    bodies: Vec<Value>,
    headers: Vec<axum::http::HeaderMap>,
    in_flight: usize,
    max_in_flight: usize,
}

/// A running target.
#[derive(Clone)]
pub struct Target {
    /// Base URL, e.g. `http://127.0.0.1:1234`.
    pub url: String,
    seen: Arc<Mutex<Seen>>,
}

impl Target {
    /// Starts a target on an ephemeral loopback port.
    pub async fn start() -> Target {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let app = Router::new()
            .route("/answer", post(answer))
            .route("/v1/chat/completions", post(chat))
            .route("/judge/v1/chat/completions", post(judge))
            .route("/text", post(text))
            .route("/scripted/v1/chat/completions", post(scripted))
            .with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind target");
        let addr: SocketAddr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            axum::serve(listener, app).await.expect("target server");
        });
        Target {
            url: format!("http://{addr}"),
            seen,
        }
    }

    /// Number of calls received.
    pub fn calls(&self) -> usize {
        self.seen.lock().unwrap().bodies.len()
    }

    /// The JSON bodies received, in order of arrival.
    pub fn bodies(&self) -> Vec<Value> {
        self.seen.lock().unwrap().bodies.clone()
    }

    /// The headers of every call, in order of arrival.
    pub fn headers(&self) -> Vec<axum::http::HeaderMap> {
        self.seen.lock().unwrap().headers.clone()
    }

    /// Most calls that were in flight at the same time.
    pub fn max_in_flight(&self) -> usize {
        self.seen.lock().unwrap().max_in_flight
    }
}

/// Counts a call in flight for as long as it lives.
struct InFlight(Arc<Mutex<Seen>>);

impl InFlight {
    fn enter(seen: &Arc<Mutex<Seen>>, headers: axum::http::HeaderMap, body: Value) -> InFlight {
        let mut s = seen.lock().unwrap();
        s.bodies.push(body);
        s.headers.push(headers);
        s.in_flight += 1;
        s.max_in_flight = s.max_in_flight.max(s.in_flight);
        InFlight(seen.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.lock().unwrap().in_flight -= 1;
    }
}

fn number(body: &Value, key: &str) -> Option<u64> {
    match body.get(key)? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

async fn answer(
    State(seen): State<Arc<Mutex<Seen>>>,
    headers: axum::http::HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let _guard = InFlight::enter(&seen, headers, body.clone());
    if let Some(ms) = number(&body, "delay_ms") {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    if let Some(status) = number(&body, "fail_status").filter(|s| *s > 0) {
        let status = StatusCode::from_u16(status as u16).expect("status");
        return (status, "target failure on purpose").into_response();
    }
    let output = match body
        .get("answer")
        .and_then(Value::as_str)
        .filter(|a| !a.is_empty())
    {
        Some(answer) => answer.to_string(),
        None => body
            .get("prompt")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
    };
    let context: Vec<Value> = match body.get("context") {
        Some(Value::String(s)) if !s.is_empty() => vec![json!(s)],
        Some(Value::Array(items)) => items.clone(),
        _ => vec![],
    };
    Json(json!({ "output": output, "context": context, "meta": { "model": "test-target" } }))
        .into_response()
}

async fn chat(
    State(seen): State<Arc<Mutex<Seen>>>,
    headers: axum::http::HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let _guard = InFlight::enter(&seen, headers, body.clone());
    let last = last_message(&body).to_string();
    Json(json!({
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "choices": [{ "index": 0, "message": { "role": "assistant", "content": format!("echo: {last}") }, "finish_reason": "stop" }]
    }))
    .into_response()
}

async fn judge(
    State(seen): State<Arc<Mutex<Seen>>>,
    headers: axum::http::HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let _guard = InFlight::enter(&seen, headers, body.clone());
    let user = last_message(&body);
    let answer = user
        .rsplit("Answer to evaluate:")
        .next()
        .unwrap_or_default();
    let verdict = if answer.contains("Paris") {
        json!({"score": 0.9, "reason": "the answer names Paris"})
    } else {
        json!({"score": 0.2, "reason": "the answer does not name Paris"})
    };
    completion(&verdict.to_string())
}

async fn text(
    State(seen): State<Arc<Mutex<Seen>>>,
    headers: axum::http::HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let _guard = InFlight::enter(&seen, headers, body);
    "Sorry, I only speak plain text".into_response()
}

/// A judge that answers what a marker in its prompt (e.g. in the evaluated answer) asks for:
/// `[judge:valid]` `{"score": 4}`, `[judge:fenced]` a fenced `{"score": 5}` after some text,
/// `[judge:malformed]` no JSON, `[judge:out_of_range]` `{"score": 11}`, `[judge:good]` and
/// `[judge:purple]` categories, `[judge:slow]` a valid reply after 2 s, `[judge:fail]` HTTP 500,
/// `[judge:busy]` a valid reply after 50 ms. Without a marker: `{"score": 4}`.
async fn scripted(
    State(seen): State<Arc<Mutex<Seen>>>,
    headers: axum::http::HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let _guard = InFlight::enter(&seen, headers, body.clone());
    let prompt = last_message(&body);
    let marker = prompt
        .split("[judge:")
        .nth(1)
        .and_then(|rest| rest.split(']').next())
        .unwrap_or("valid")
        .to_string();
    let valid = r#"{"score": 4, "reason": "mostly right"}"#;
    let content = match marker.as_str() {
        "fenced" => "Here is my verdict:\n```json\n{\"score\": 5, \"reason\": \"fenced\"}\n```",
        "malformed" => "I would rather not say.",
        "out_of_range" => r#"{"score": 11, "reason": "beyond great"}"#,
        "good" => r#"{"category": "good", "reason": "fine"}"#,
        "purple" => r#"{"category": "purple", "reason": "colourful"}"#,
        "slow" => {
            tokio::time::sleep(Duration::from_secs(2)).await;
            valid
        }
        "busy" => {
            tokio::time::sleep(Duration::from_millis(50)).await;
            valid
        }
        "fail" => return (StatusCode::INTERNAL_SERVER_ERROR, "judge overloaded").into_response(),
        _ => valid,
    };
    completion(content)
}

/// The content of the last message of a chat-completions request.
fn last_message(body: &Value) -> &str {
    body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
}

/// A chat completion whose one choice says `content`.
fn completion(content: &str) -> Response {
    Json(json!({
        "choices": [{ "index": 0, "message": { "role": "assistant", "content": content }, "finish_reason": "stop" }]
    }))
    .into_response()
}
