//! `GET /metrics` over HTTP/1.1 on its own listener (`--metrics-listen`), for Prometheus to
//! scrape.

use std::future::Future;

use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;

use super::Telemetry;

/// The content type of the OpenMetrics text format that `prometheus-client` writes; Prometheus
/// asks for it and parses it natively.
const CONTENT: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Serves `telemetry`'s metrics at `/metrics` on `listener` until `shutdown` completes.
pub async fn serve(
    telemetry: Telemetry,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = axum::Router::new().route(
        "/metrics",
        get(move || {
            let text = telemetry.encode().unwrap_or_default();
            async move { ([(CONTENT_TYPE, CONTENT)], text).into_response() }
        }),
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
