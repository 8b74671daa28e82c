//! Proto messages <-> JSON through the embedded descriptor set (prost-reflect), so files and
//! `--json` output use the canonical proto JSON mapping, exactly what grpcurl reads and prints,
//! and new fields or metric kinds need no change here.

use std::path::Path;
use std::sync::OnceLock;

use prost_reflect::{DescriptorPool, DynamicMessage, Kind, MessageDescriptor, ReflectMessage};
use serde_json::Value;

use super::CliError;

/// The descriptors of `assay.v1`, decoded once.
fn pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| {
        DescriptorPool::decode(crate::proto::FILE_DESCRIPTOR_SET)
            .expect("the embedded descriptor set is valid")
    })
}

/// The descriptor of a message: `Metric` is `assay.v1.Metric`; full names are taken as they are
/// (`google.protobuf.Struct`).
fn descriptor(name: &str) -> MessageDescriptor {
    let full = if name.contains('.') {
        name.to_string()
    } else {
        format!("assay.v1.{name}")
    };
    pool()
        .get_message_by_name(&full)
        .unwrap_or_else(|| panic!("{full} is in the descriptor set"))
}

/// A message that serializes as proto JSON (lowerCamelCase, defaults left out, enums by name),
/// its fields in the order of the proto, as grpcurl prints them.
pub struct ProtoJson(DynamicMessage);

impl ProtoJson {
    /// As a JSON value (for picking fields; objects lose the field order).
    pub fn value(&self) -> Value {
        serde_json::to_value(self).expect("proto JSON is serializable")
    }
}

impl serde::Serialize for ProtoJson {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

/// A message as proto JSON; `name` is its message name, e.g. `Metric`.
pub fn to_json<M: prost::Message>(message: &M, name: &str) -> ProtoJson {
    let mut dynamic = DynamicMessage::new(descriptor(name));
    dynamic
        .transcode_from(message)
        .expect("a generated message decodes with its own descriptor");
    spell_non_finite(&mut dynamic);
    ProtoJson(dynamic)
}

/// Proto JSON has no form for a non-finite number in a `google.protobuf.Value` (in a `Struct`,
/// e.g. a run's parameters, which any client can set), and refuses to serialize one: such a
/// number becomes the string proto JSON spells it with elsewhere ("NaN", "Infinity",
/// "-Infinity").
fn spell_non_finite(message: &mut DynamicMessage) {
    if message.descriptor().full_name() == "google.protobuf.Value" {
        let number = message
            .get_field_by_name("number_value")
            .and_then(|v| v.as_f64())
            .filter(|n| !n.is_finite() && message.has_field_by_name("number_value"));
        if let Some(n) = number {
            let text = if n.is_nan() {
                "NaN"
            } else if n > 0.0 {
                "Infinity"
            } else {
                "-Infinity"
            };
            message.set_field_by_name("string_value", prost_reflect::Value::String(text.into()));
            return;
        }
    }
    for (_, value) in message.fields_mut() {
        spell_in(value);
    }
}

fn spell_in(value: &mut prost_reflect::Value) {
    match value {
        prost_reflect::Value::Message(message) => spell_non_finite(message),
        prost_reflect::Value::List(items) => items.iter_mut().for_each(spell_in),
        prost_reflect::Value::Map(entries) => entries.values_mut().for_each(spell_in),
        _ => {}
    }
}

/// Reads proto JSON (either field-name style) into the message `name`; `what` names the input
/// in the error.
pub fn from_json<M: prost::Message + Default>(
    value: Value,
    name: &str,
    what: &str,
) -> Result<M, CliError> {
    dynamic(value, name, what)?
        .transcode_to()
        .map_err(|e| CliError::input(format!("{what}: not a valid {name}: {e}")))
}

/// Checks that proto JSON reads as the message `name`; `what` names the input in the error.
pub fn check_json(value: Value, name: &str, what: &str) -> Result<(), CliError> {
    dynamic(value, name, what).map(drop)
}

fn dynamic(value: Value, name: &str, what: &str) -> Result<DynamicMessage, CliError> {
    DynamicMessage::deserialize(descriptor(name), value)
        .map_err(|e| CliError::input(format!("{what}: not a valid {name}: {e}")))
}

/// Reads a YAML or JSON file (`-` is standard input) into JSON; YAML is a superset of JSON, so
/// one parser reads both.
pub fn read_document(path: &Path) -> Result<Value, CliError> {
    let text = read_text(path)?;
    serde_yaml_ng::from_str(&text).map_err(|e| CliError::input(format!("{}: {e}", path.display())))
}

/// The text of a file, or of standard input for `-`.
pub fn read_text(path: &Path) -> Result<String, CliError> {
    let read = if path == Path::new("-") {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(path)
    };
    read.map_err(|e| CliError::input(format!("cannot read {}: {e}", path.display())))
}

/// A `key=value` argument: the value as JSON when it parses (numbers, lists, objects), else
/// as text, so `threshold=0.7` is a number and `url=http://...` a string.
pub fn key_value(arg: &str, flag: &str) -> Result<(String, Value), CliError> {
    let (key, value) = arg
        .split_once('=')
        .filter(|(key, _)| !key.is_empty())
        .ok_or_else(|| CliError::usage(format!("{flag} {arg:?}: expected KEY=VALUE")))?;
    let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_string()));
    Ok((key.to_string(), value))
}

/// A `--set PATH=VALUE` for a resource of the message `message`: a text field takes VALUE as
/// it is (`--set description=42` is the text "42"); any other field reads it as JSON (a list,
/// a number, `true`), or else as text.
pub fn set_flag(message: &str, arg: &str) -> Result<(String, Value), CliError> {
    let (path, value) = key_value(arg, "--set")?;
    if is_text_field(descriptor(message), &path) {
        let raw = arg.split_once('=').map_or("", |(_, raw)| raw);
        return Ok((path, Value::String(raw.to_string())));
    }
    Ok((path, value))
}

/// Whether the dotted `path` (proto or JSON field names) names a singular string field.
fn is_text_field(mut message: MessageDescriptor, path: &str) -> bool {
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        let Some(field) = message
            .get_field_by_name(part)
            .or_else(|| message.get_field_by_json_name(part))
        else {
            return false;
        };
        match field.kind() {
            Kind::String if parts.peek().is_none() => return !field.is_list() && !field.is_map(),
            Kind::Message(inner) if parts.peek().is_some() => message = inner,
            _ => return false,
        }
    }
    false
}

/// Sets `value` at a dotted `path` of a JSON object, creating the objects on the way.
pub fn set_path(target: &mut Value, path: &str, value: Value) -> Result<(), CliError> {
    let mut node = target;
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        let Value::Object(object) = node else {
            return Err(CliError::usage(format!(
                "--set {path}: {part:?} is inside a value that is not an object"
            )));
        };
        if parts.peek().is_none() {
            object.insert(part.to_string(), value);
            return Ok(());
        }
        node = object
            .entry(part.to_string())
            .or_insert_with(|| Value::Object(Default::default()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::proto::v1 as pb;

    #[test]
    fn metrics_read_and_print_as_proto_json() {
        let metric: pb::Metric = from_json(
            json!({"name": "m", "contains": {"values": ["Paris"]}, "score_type": "SCORE_TYPE_BINARY"}),
            "Metric",
            "file",
        )
        .unwrap();
        assert_eq!(metric.name, "m");
        let printed = serde_json::to_string(&to_json(&metric, "Metric")).unwrap();
        // Proto field order, as grpcurl prints it.
        assert_eq!(
            printed,
            r#"{"name":"m","scoreType":"SCORE_TYPE_BINARY","contains":{"values":["Paris"]}}"#
        );
    }

    #[test]
    fn unknown_fields_are_input_errors() {
        let error = from_json::<pb::Metric>(json!({"nmae": "m"}), "Metric", "m.yaml").unwrap_err();
        assert!(matches!(error, CliError::Input(m) if m.contains("m.yaml") && m.contains("nmae")));
    }

    #[test]
    fn set_path_builds_nested_objects_and_parses_values() {
        let mut value = json!({"name": "m"});
        let (key, v) = key_value("contains.values=[\"a\"]", "--set").unwrap();
        set_path(&mut value, &key, v).unwrap();
        let (key, v) = key_value("http.url=http://x", "--set").unwrap();
        set_path(&mut value, &key, v).unwrap();
        assert_eq!(
            value,
            json!({"name": "m", "contains": {"values": ["a"]}, "http": {"url": "http://x"}})
        );
        assert!(key_value("novalue", "--set").is_err());
        assert!(set_path(&mut value, "name.x", json!(1)).is_err());
    }

    #[test]
    fn set_takes_plain_text_for_text_fields_and_json_for_others() {
        let (_, v) = set_flag("Metric", "description=42").unwrap();
        assert_eq!(v, json!("42"));
        let (_, v) = set_flag("Metric", "exact_match.value=true").unwrap();
        assert_eq!(v, json!("true"));
        let (_, v) = set_flag("Endpoint", "http.bodyTemplate={\"q\": \"{{ prompt }}\"}").unwrap();
        assert_eq!(v, json!("{\"q\": \"{{ prompt }}\"}"));
        let (_, v) = set_flag("Metric", "threshold=0.5").unwrap();
        assert_eq!(v, json!(0.5));
        let (_, v) = set_flag("Metric", "contains.values=[\"Paris\"]").unwrap();
        assert_eq!(v, json!(["Paris"]));
    }

    /// A result and a run with every kind of field set, encoded.
    fn rendered_seeds() -> Vec<Vec<u8>> {
        use prost::Message;
        let result = pb::TestResult {
            id: "r".into(),
            output: "Paris \u{0} \"quoted\" 🎉".into(),
            context: vec!["c".into()],
            metadata: Some(prost_types::Struct {
                fields: [(
                    "k".to_string(),
                    prost_types::Value {
                        kind: Some(prost_types::value::Kind::NumberValue(f64::NAN)),
                    },
                )]
                .into(),
            }),
            metric_results: vec![pb::MetricResult {
                metric_name: "m".into(),
                score: Some(0.5),
                ..Default::default()
            }],
            latency_ms: u64::MAX,
            ..Default::default()
        };
        let run = pb::TestRun {
            id: "run".into(),
            status: pb::RunStatus::Partial as i32,
            labels: [("branch".to_string(), "main".to_string())].into(),
            ..Default::default()
        };
        vec![result.encode_to_vec(), run.encode_to_vec()]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Whatever a result or a run holds (unknown enum values, NaN, any text), it renders
        /// as proto JSON, and that JSON reads back as the same message.
        #[test]
        fn any_message_renders_as_json_that_reads_back(
            bytes in crate::api::decoding_props::request_bytes(rendered_seeds()),
        ) {
            use prost::Message;
            if let Ok(result) = pb::TestResult::decode(bytes.as_slice()) {
                let value = to_json(&result, "TestResult").value();
                let back: pb::TestResult = from_json(value.clone(), "TestResult", "rendered")
                    .expect("rendered JSON reads back");
                proptest::prop_assert_eq!(to_json(&back, "TestResult").value(), value);
            }
            if let Ok(run) = pb::TestRun::decode(bytes.as_slice()) {
                let value = to_json(&run, "TestRun").value();
                let back: pb::TestRun =
                    from_json(value.clone(), "TestRun", "rendered").expect("rendered JSON reads back");
                proptest::prop_assert_eq!(to_json(&back, "TestRun").value(), value);
            }
        }
    }
}
