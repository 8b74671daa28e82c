//! Browsers: gRPC-Web is served on the gRPC port, and CORS lets the configured origins call it.

use std::time::Duration;

use http::{HeaderName, HeaderValue, Method};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// How long a browser may cache a preflight answer.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(24 * 60 * 60);

/// Request headers a gRPC-Web client sends (Connect's and grpc-web's clients), and the API key.
const ALLOWED_HEADERS: [&str; 7] = [
    "content-type",
    "x-grpc-web",
    "x-user-agent",
    "grpc-timeout",
    "connect-protocol-version",
    "authorization",
    "x-api-key",
];

/// Response headers a browser client must read: the status and its details (gRPC-Web sends
/// them as headers when a call fails before its first message).
const EXPOSED_HEADERS: [&str; 3] = ["grpc-status", "grpc-message", "grpc-status-details-bin"];

/// Checks one `--cors-allow-origin` value: `*`, or an origin `scheme://host[:port]` with no
/// path, as browsers send it in the `Origin` header.
pub fn parse_origin(value: &str) -> Result<String, String> {
    let value = value.trim();
    if value == "*" {
        return Ok(value.to_string());
    }
    let origin = url::Url::parse(value)
        .map(|url| url.origin().ascii_serialization())
        .map_err(|e| format!("{value:?} is not an origin such as https://app.example.com: {e}"))?;
    if origin != value.trim_end_matches('/') {
        return Err(format!(
            "{value:?} is not an origin such as https://app.example.com (scheme, host and port only, e.g. {origin:?})"
        ));
    }
    Ok(origin)
}

/// The CORS layer for the allowed origins (already checked by [`parse_origin`]); `None` when
/// there are none, so that no CORS header is ever sent.
pub fn cors_layer(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow_origin = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow_origin)
            .allow_methods([Method::POST])
            .allow_headers(ALLOWED_HEADERS.map(HeaderName::from_static))
            .expose_headers(EXPOSED_HEADERS.map(HeaderName::from_static))
            .max_age(PREFLIGHT_MAX_AGE),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_origin_is_scheme_host_and_port() {
        assert_eq!(
            parse_origin("http://localhost:5173").unwrap(),
            "http://localhost:5173"
        );
        assert_eq!(
            parse_origin("https://app.example.com/").unwrap(),
            "https://app.example.com"
        );
        assert_eq!(parse_origin("*").unwrap(), "*");
    }

    #[test]
    fn a_path_or_a_bare_host_is_refused() {
        assert!(parse_origin("https://app.example.com/page").is_err());
        assert!(parse_origin("app.example.com").is_err());
    }

    #[test]
    fn no_origin_means_no_cors_layer() {
        assert!(cors_layer(&[]).is_none());
    }
}
