//! An HTTP application for the security tests: `/answer` records each call's headers and
//! answers; `/redirect?to=URL` answers 307 to that URL; `/huge` streams a body that never ends;
//! `/sized?bytes=N` answers an output of `N` bytes.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

/// A running recorder on 127.0.0.1.
#[derive(Clone)]
pub struct Recorder {
    /// Base URL, e.g. `http://127.0.0.1:1234`.
    pub url: String,
    seen: Arc<Mutex<Vec<HeaderMap>>>,
}

#[derive(serde::Deserialize)]
struct To {
    to: String,
}

#[derive(serde::Deserialize)]
struct Size {
    bytes: usize,
}

impl Recorder {
    /// Starts a recorder on an ephemeral loopback port.
    pub async fn start() -> Recorder {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new()
            .route("/answer", post(answer))
            .route("/redirect", post(redirect))
            .route("/huge", post(huge))
            .route("/sized", post(sized))
            .route("/echo", post(echo))
            .with_state(Arc::clone(&seen));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await.expect("recorder") });
        Recorder { url, seen }
    }

    /// The headers of every call to `/answer`, in order.
    pub fn headers(&self) -> Vec<HeaderMap> {
        self.seen.lock().unwrap().clone()
    }
}

async fn answer(State(seen): State<Arc<Mutex<Vec<HeaderMap>>>>, headers: HeaderMap) -> Response {
    seen.lock().unwrap().push(headers);
    (
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"output": "Paris"}"#,
    )
        .into_response()
}

async fn redirect(Query(to): Query<To>) -> Response {
    (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, to.to)]).into_response()
}

/// An endless body without a length: only a bounded read can survive it.
async fn huge() -> Response {
    let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
    let stream = futures::stream::repeat_with(move || Ok::<_, std::io::Error>(chunk.clone()));
    Response::new(Body::from_stream(stream))
}

/// `{"output": "xxx..."}` with an output of the size asked, once the request is read whole (a
/// request left unread resets the connection).
async fn sized(Query(size): Query<Size>, _request: Bytes) -> Response {
    let body = serde_json::json!({ "output": "x".repeat(size.bytes) });
    (
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// The value of the request's `x-api-key` echoed, as a careless application's debug output
/// does: in its answer, or with `?fail=1` in an error page.
async fn echo(Query(fail): Query<Fail>, headers: HeaderMap) -> Response {
    let key = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    if fail.fail == 1 {
        return (StatusCode::INTERNAL_SERVER_ERROR, format!("bad key {key}")).into_response();
    }
    let body = serde_json::json!({ "output": format!("Paris (key {key})") });
    (
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

#[derive(serde::Deserialize)]
struct Fail {
    #[serde(default)]
    fail: u8,
}
