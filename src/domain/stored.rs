//! The size of the texts Assay stores for each test and result, so that any stored record fits
//! in one gRPC message of the read RPCs (4 MiB, clients' usual limit): a test's prompt and
//! expected response, and an endpoint's answer (output, context and metadata together), are each
//! at most `--max-stored-output-bytes`, which is at most [`MAX_STORED_OUTPUT_BYTES`].

use crate::error::{Error, Result};

/// Default of `--max-stored-output-bytes`: 1 MiB.
pub const DEFAULT_MAX_STORED_OUTPUT_BYTES: usize = 1024 * 1024;

/// Highest `--max-stored-output-bytes`: a result holds a prompt, an expected response and an
/// answer of at most this size each, plus its metrics' reasons, and must stay below 4 MiB.
pub const MAX_STORED_OUTPUT_BYTES: usize = 1024 * 1024;

/// Longest reason a metric result keeps, in characters: a judge's reason is its own text, read
/// from a reply that may be megabytes long.
pub const MAX_REASON_CHARS: usize = 10_000;

/// What the limit's errors call it.
const LIMIT_NAME: &str = "--max-stored-output-bytes, ASSAY_MAX_STORED_OUTPUT_BYTES";

/// `INVALID_ARGUMENT` naming `field` when `text` is longer than `limit` bytes.
pub fn check_stored_text(field: &str, text: &str, limit: usize) -> Result<()> {
    if text.len() > limit {
        return Err(Error::invalid(
            field,
            format!(
                "is {} bytes, over the limit of {limit} bytes ({LIMIT_NAME})",
                text.len()
            ),
        ));
    }
    Ok(())
}

/// Why an endpoint's answer of `size` bytes is not stored, when it is over `limit`.
pub fn answer_over_limit(size: usize, limit: usize) -> Option<String> {
    (size > limit).then(|| {
        format!(
            "the endpoint's answer (output, context and metadata) is {size} bytes, over the \
             limit of {limit} bytes ({LIMIT_NAME}): it is not stored"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_over_the_limit_names_the_field_the_size_and_the_flag() {
        assert!(check_stored_text("tests[0].prompt", "abcd", 4).is_ok());
        let err = check_stored_text("tests[0].prompt", "abcde", 4).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("tests[0].prompt"), "{text}");
        assert!(text.contains("5 bytes"), "{text}");
        assert!(text.contains("ASSAY_MAX_STORED_OUTPUT_BYTES"), "{text}");
        assert!(answer_over_limit(4, 4).is_none());
        assert!(answer_over_limit(5, 4).is_some_and(|e| e.contains("--max-stored-output-bytes")));
    }
}
