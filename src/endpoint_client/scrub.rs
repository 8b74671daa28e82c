//! Resolved secrets kept out of what is stored and shown: an application that echoes a request's
//! headers (in an error page, a debug field of its answer) must not put a key the server read
//! from its environment, or a secret header, into a stored result, a report or a log line. Every
//! occurrence of a sensitive header's value in an answer or an error is replaced by the mask the
//! read RPCs show for secret headers.

use reqwest::header::HeaderMap;

use super::TargetError;
use crate::domain::SECRET_MASK;

/// Shorter values are not looked for: masking every "qa" of an answer would hide more than it
/// protects.
const SHORTEST: usize = 6;

/// The texts of one request that must not be stored: the values of its sensitive headers (a
/// secret header's, or one resolved from the environment), whole and without their scheme
/// (`Bearer KEY` is looked for as `KEY` too), longest first.
#[derive(Debug, Default)]
pub(crate) struct Secrets(Vec<String>);

impl Secrets {
    /// The secrets of a request's headers.
    pub(crate) fn of(headers: &HeaderMap) -> Secrets {
        let mut values: Vec<String> = Vec::new();
        for value in headers.values().filter(|v| v.is_sensitive()) {
            let Ok(text) = value.to_str() else { continue };
            values.push(text.to_string());
            if let Some((_, token)) = text.split_once(' ') {
                values.push(token.trim().to_string());
            }
        }
        values.retain(|v| v.len() >= SHORTEST);
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        values.dedup();
        Secrets(values)
    }

    /// `text` with every secret masked.
    pub(crate) fn scrub(&self, text: &mut String) {
        for secret in &self.0 {
            if text.contains(secret.as_str()) {
                *text = text.replace(secret.as_str(), SECRET_MASK);
            }
        }
    }

    /// `error` with every secret its texts quote masked.
    pub(crate) fn scrub_error(&self, error: &mut TargetError) {
        if self.0.is_empty() {
            return;
        }
        match error {
            TargetError::Status { body, .. } | TargetError::NoMatch { body, .. } => {
                self.scrub(body);
            }
            TargetError::Connect { message, .. }
            | TargetError::Transport { message, .. }
            | TargetError::Blocked { message }
            | TargetError::Grpc { message, .. } => self.scrub(message),
            TargetError::NotJson { reason }
            | TargetError::BadResponse { reason }
            | TargetError::Template { reason } => self.scrub(reason),
            TargetError::Timeout { .. }
            | TargetError::TooLarge { .. }
            | TargetError::MissingEnv { .. }
            | TargetError::InvalidHeader { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    fn sensitive(text: &str) -> HeaderValue {
        let mut value = HeaderValue::from_str(text).unwrap();
        value.set_sensitive(true);
        value
    }

    #[test]
    fn sensitive_values_are_masked_whole_and_without_their_scheme() {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", sensitive("Bearer sk-live-123456"));
        headers.insert("x-team", HeaderValue::from_static("quality-assurance"));
        headers.insert("x-short", sensitive("abc"));
        let secrets = Secrets::of(&headers);
        let mut text =
            "got Bearer sk-live-123456, then sk-live-123456 alone, team quality-assurance, abc"
                .to_string();
        secrets.scrub(&mut text);
        assert_eq!(
            text,
            "got ********, then ******** alone, team quality-assurance, abc"
        );
        let mut error = TargetError::Status {
            status: 500,
            body: "echo: sk-live-123456".into(),
            attempts: 1,
        };
        secrets.scrub_error(&mut error);
        assert_eq!(
            error.to_string(),
            "endpoint returned HTTP 500: echo: ********"
        );
    }
}
