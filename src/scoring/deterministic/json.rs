//! JSON checks: the output parses as JSON (is_json), and is valid against a schema (json_schema).

use super::PassFail;
use crate::domain::compile_schema;
use crate::scoring::{ScoreInput, truncate};

/// The output parses as JSON (see `MetricKind::IsJson`).
#[derive(Debug)]
pub(crate) struct IsJson;

impl PassFail for IsJson {
    fn evaluate(&self, input: &ScoreInput<'_>) -> (bool, String) {
        // Parsed without building the document: only its validity matters.
        match serde_json::from_str::<serde::de::IgnoredAny>(input.output) {
            Ok(_) => (true, "the output is JSON".to_string()),
            Err(e) => (false, format!("the output is not JSON: {e}")),
        }
    }
}

/// The output is JSON valid against a schema (see `MetricKind::JsonSchema`).
#[derive(Debug)]
pub(crate) struct JsonSchema(Box<jsonschema::Validator>);

impl JsonSchema {
    /// Compiles `schema` (JSON text); fails when it is not a usable schema.
    pub(crate) fn new(schema: &str) -> Result<Self, String> {
        Ok(JsonSchema(Box::new(
            compile_schema(schema).map_err(|e| format!("json_schema.schema {e}"))?,
        )))
    }
}

impl PassFail for JsonSchema {
    fn evaluate(&self, input: &ScoreInput<'_>) -> (bool, String) {
        let json = match serde_json::from_str::<serde_json::Value>(input.output) {
            Ok(json) => json,
            Err(e) => return (false, format!("the output is not JSON: {e}")),
        };
        // The first few errors say enough and keep the reason short.
        let errors: Vec<String> = self
            .0
            .iter_errors(&json)
            .take(3)
            .map(|e| format!("{}: {e}", e.instance_path()))
            .collect();
        if errors.is_empty() {
            (true, "the output is valid against the schema".to_string())
        } else {
            (
                false,
                format!(
                    "the output is not valid against the schema: {}",
                    truncate(&errors.join("; "), 300)
                ),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scoring::deterministic::tests::assert_cases;
    use crate::scoring::fixtures::input;

    #[test]
    fn is_json_accepts_whole_documents_only() {
        let long = format!("[{}1]", "1, ".repeat(33_000));
        assert_cases(
            &IsJson,
            &[
                (r#"{"a": [1, 2]}"#, None, true),
                (" \n42\n", None, true),
                (r#""ünïcödé""#, None, true),
                (r#"{"a": 1"#, None, false),
                (r#"Here: {"a": 1}"#, None, false),
                ("", None, false),
                (&long, None, true),
            ],
        );
    }

    #[test]
    fn json_schema_validates_the_output() {
        let schema = JsonSchema::new(
            r#"{"type": "object", "required": ["city"],
                "properties": {"city": {"type": "string", "minLength": 1}}}"#,
        )
        .unwrap();
        let long = format!(r#"{{"city": "{}"}}"#, "x".repeat(100_000));
        assert_cases(
            &schema,
            &[
                (r#"{"city": "Paris"}"#, None, true),
                (r#"{"city": "Zürich", "extra": true}"#, None, true),
                (r#"{"city": ""}"#, None, false),
                (r#"{"town": "Paris"}"#, None, false),
                (r#"["Paris"]"#, None, false),
                ("Paris", None, false),
                ("", None, false),
                (&long, None, true),
            ],
        );
    }

    #[test]
    fn a_schema_failure_says_where() {
        let schema = JsonSchema::new(r#"{"properties": {"age": {"type": "integer"}}}"#).unwrap();
        let (passed, reason) = schema.evaluate(&input(r#"{"age": "old"}"#, None));
        assert!(!passed);
        assert!(reason.contains("/age"), "{reason}");
    }
}
