//! A real HTTP target on 127.0.0.1 for tests: it answers like an LLM app, and can delay, fail
//! with a chosen status, count calls, measure overlap and record what it received.
//!
//! Behaviour is chosen per request by fields of the JSON body, so each test decides through its
//! body template and test metadata: `prompt` (echoed), `answer` (returned instead of the echo),
//! `delay_ms`, `fail_status`, `context` (returned as the context list).
//!
//! `/flaky` answers like `/answer` but fails `fault_percent` of its calls (spread evenly by call
//! number) with the `faults` of the body in turn: `500`, `503`, `429`, `429s` (429 with
//! `Retry-After` in seconds: `retry_after_s`, default 0), `429d` (429 with `Retry-After` as an
//! HTTP date) and `stall` (answers after `stall_ms`). `/capacity` serves at most `capacity` calls at once (each taking
//! `delay_ms`) and answers 429 to the rest, like a rate-limited LLM API.
//!
//! `/switch` answers like `/answer`, but with the answer the test last set for the prompt
//! ([`Target::set_answer`]), so its answers change between runs; a prompt may also have a list
//! of answers given in turn, call after call (a flaky app).
//!
//! `/text` answers plain text, not JSON. `/v1/chat/completions` is an OpenAI-compatible model that echoes; `/judge/v1/chat/completions`
//! a judge that scores 0.9 when the evaluated answer mentions Paris, else 0.2.
//! `/scripted/v1/chat/completions` is a judge whose reply is chosen by a marker in the judge
//! prompt (see [`scripted`]).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

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
    /// When each call arrived.
    times: Vec<Instant>,
    in_flight: usize,
    max_in_flight: usize,
    /// Calls of `/flaky` so far, and how many of them failed on purpose.
    flaky_calls: usize,
    faults: usize,
    /// Calls `/capacity` is serving now, and how many it turned away with 429.
    serving: usize,
    rejected: usize,
    /// `/switch`: the answers of each prompt, given in turn, and how many calls each had.
    switched: std::collections::HashMap<String, (Vec<String>, usize)>,
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
            .route("/switch", post(switch))
            .route("/flaky", post(flaky))
            .route("/capacity", post(capacity))
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

    /// When each call arrived, in order of arrival.
    pub fn times(&self) -> Vec<Instant> {
        self.seen.lock().unwrap().times.clone()
    }

    /// Calls `/flaky` failed on purpose.
    pub fn faults(&self) -> usize {
        self.seen.lock().unwrap().faults
    }

    /// From now on `/switch` answers `answers` to `prompt`, one after the other, call after
    /// call (and again from the first after the last).
    pub fn set_answer(&self, prompt: &str, answers: &[&str]) {
        let answers = answers.iter().map(|a| a.to_string()).collect();
        self.seen
            .lock()
            .unwrap()
            .switched
            .insert(prompt.to_string(), (answers, 0));
    }

    /// Calls `/capacity` turned away with 429.
    pub fn rejected(&self) -> usize {
        self.seen.lock().unwrap().rejected
    }
}

/// Counts a call in flight for as long as it lives.
struct InFlight(Arc<Mutex<Seen>>);

impl InFlight {
    fn enter(seen: &Arc<Mutex<Seen>>, headers: axum::http::HeaderMap, body: Value) -> InFlight {
        let mut s = seen.lock().unwrap();
        s.bodies.push(body);
        s.headers.push(headers);
        s.times.push(Instant::now());
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
    reply(&body)
}

async fn switch(
    State(seen): State<Arc<Mutex<Seen>>>,
    headers: axum::http::HeaderMap,
    Json(mut body): Json<Value>,
) -> Response {
    let _guard = InFlight::enter(&seen, headers, body.clone());
    let prompt = body["prompt"].as_str().unwrap_or_default().to_string();
    let answer = {
        let mut s = seen.lock().unwrap();
        s.switched.get_mut(&prompt).map(|(answers, calls)| {
            let answer = answers[*calls % answers.len()].clone();
            *calls += 1;
            answer
        })
    };
    if let Some(answer) = answer {
        body["answer"] = json!(answer);
    }
    reply(&body)
}

/// The answer of `/answer`: the `answer` field, else the prompt echoed, with the context asked.
fn reply(body: &Value) -> Response {
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

async fn flaky(
    State(seen): State<Arc<Mutex<Seen>>>,
    headers: axum::http::HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let _guard = InFlight::enter(&seen, headers, body.clone());
    let percent = number(&body, "fault_percent").unwrap_or(0) as usize;
    let faults: Vec<String> = body["faults"]
        .as_str()
        .unwrap_or("500")
        .split(',')
        .map(|f| f.trim().to_string())
        .collect();
    let fault = {
        let mut s = seen.lock().unwrap();
        let n = s.flaky_calls;
        s.flaky_calls += 1;
        // Call n fails when n * percent crosses a multiple of 100: exactly `percent` of every
        // hundred calls, spread evenly.
        if (n * percent) % 100 < percent {
            s.faults += 1;
            Some(faults[(s.faults - 1) % faults.len()].clone())
        } else {
            None
        }
    };
    let too_many = StatusCode::TOO_MANY_REQUESTS;
    match fault.as_deref() {
        None => reply(&body),
        Some("stall") => {
            let ms = number(&body, "stall_ms").unwrap_or(10_000);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            reply(&body)
        }
        Some("429") => (too_many, "slow down").into_response(),
        Some("429s") => {
            let seconds = number(&body, "retry_after_s").unwrap_or(0).to_string();
            (too_many, [("retry-after", seconds)], "slow down").into_response()
        }
        Some("429d") => {
            let date = httpdate::fmt_http_date(SystemTime::now());
            (too_many, [("retry-after", date)], "slow down").into_response()
        }
        Some(code) => {
            let status = StatusCode::from_u16(code.parse().expect("a fault")).expect("status");
            (status, "injected fault").into_response()
        }
    }
}

async fn capacity(
    State(seen): State<Arc<Mutex<Seen>>>,
    headers: axum::http::HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let _guard = InFlight::enter(&seen, headers, body.clone());
    let capacity = number(&body, "capacity").unwrap_or(1) as usize;
    {
        let mut s = seen.lock().unwrap();
        if s.serving >= capacity {
            s.rejected += 1;
            return (StatusCode::TOO_MANY_REQUESTS, "over capacity").into_response();
        }
        s.serving += 1;
    }
    tokio::time::sleep(Duration::from_millis(
        number(&body, "delay_ms").unwrap_or(0),
    ))
    .await;
    seen.lock().unwrap().serving -= 1;
    reply(&body)
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
