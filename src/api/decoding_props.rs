//! Property tests of request decoding: whatever bytes arrive as a request, decoding them and
//! turning the message into the domain's drafts and specs (and checking those) answers `Ok` or
//! an error, and never panics. Inputs are typical requests with some of their bytes changed, so
//! that most of them still decode, and bytes of no request at all.

use proptest::prelude::*;
use prost::Message;
use uuid::Uuid;

use super::{behaviors, endpoints, execution, metrics, test_sets};
use crate::domain::{Endpoint, Metric};
use crate::endpoint_client::BodyTemplateSyntax;
use crate::proto::v1 as pb;

/// A metric of each kind that takes strings, encoded.
fn metric_seeds() -> Vec<Vec<u8>> {
    let kinds = [
        pb::metric::Kind::Regex(pb::Regex {
            pattern: "(a+)+$".into(),
            ..Default::default()
        }),
        pb::metric::Kind::LlmJudge(pb::LlmJudge {
            base_url: "http://127.0.0.1:9/v1".into(),
            model: "m".into(),
            evaluation_prompt: "{{ output }} {% for c in prompt %}{% endfor %}".into(),
            ..Default::default()
        }),
        pb::metric::Kind::JsonSchema(pb::JsonSchema {
            schema: r#"{"type": "object", "required": ["a"]}"#.into(),
        }),
    ];
    kinds
        .into_iter()
        .map(|kind| {
            pb::Metric {
                name: "m".into(),
                threshold: Some(0.5),
                categories: vec!["a".into()],
                kind: Some(kind),
                ..Default::default()
            }
            .encode_to_vec()
        })
        .collect()
}

/// An endpoint with every part set, encoded.
fn endpoint_seed() -> Vec<u8> {
    pb::Endpoint {
        name: "e".into(),
        target: Some(pb::endpoint::Target::Http(pb::HttpTarget {
            url: "http://127.0.0.1:9/answer".into(),
            body_template: r#"{"q": "{{ prompt }}", "n": "{{= metadata.n }}"}"#.into(),
            headers: [(
                "authorization".to_string(),
                "Bearer ${env:ASSAY_SECRET_K}".to_string(),
            )]
            .into(),
            response_mapping: Some(pb::ResponseMapping {
                output: "$.a[0].b".into(),
                context: "$..c".into(),
                ..Default::default()
            }),
            timeout_ms: 100,
            ..Default::default()
        })),
        rate_limit_per_second: 1.0,
        ..Default::default()
    }
    .encode_to_vec()
}

/// An execute request with a filter, a shard, labels and a budget, encoded.
fn execute_seed() -> Vec<u8> {
    pb::ExecuteRequest {
        test_set: "set".into(),
        endpoint: "01a224c5-94ae-70d3-bc6c-40606df84741".into(),
        metrics: vec!["m".into()],
        budget_usd: Some(1.5),
        labels: [("branch".to_string(), "main".to_string())].into(),
        filter: Some(pb::TestFilter {
            categories: vec!["c".into()],
            ..Default::default()
        }),
        shard: Some(pb::Shard { index: 1, count: 3 }),
        ..Default::default()
    }
    .encode_to_vec()
}

/// An import's first message, creating a test set, encoded.
fn import_seed() -> Vec<u8> {
    pb::ImportTestsRequest {
        new_test_set: Some(pb::TestSet {
            name: "s".into(),
            metrics: vec!["m".into()],
            ..Default::default()
        }),
        tests: vec![pb::Test {
            prompt: "p".into(),
            expected_response: Some("e".into()),
            behavior: "b".into(),
            metadata: [("k".to_string(), "v".to_string())].into(),
            ..Default::default()
        }],
        ..Default::default()
    }
    .encode_to_vec()
}

/// `seed` with some bytes replaced, inserted or cut off.
pub(crate) fn mutated(seed: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let len = seed.len().max(1);
    (
        prop::collection::vec((0..len, any::<u8>()), 0..6),
        prop::collection::vec((0..len, any::<u8>()), 0..3),
        0..=len,
    )
        .prop_map(move |(replaced, inserted, kept)| {
            let mut bytes = seed.clone();
            for (at, byte) in replaced {
                if let Some(b) = bytes.get_mut(at) {
                    *b = byte;
                }
            }
            for (at, byte) in inserted {
                bytes.insert(at.min(bytes.len()), byte);
            }
            bytes.truncate(kept.max(1));
            bytes
        })
}

/// A typical message of some kind with changed bytes, or arbitrary bytes.
pub(crate) fn request_bytes(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    let mutants = prop::sample::select(seeds).prop_flat_map(mutated);
    prop_oneof![
        4 => mutants,
        1 => prop::collection::vec(any::<u8>(), 0..256),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_metric_of_any_bytes_is_a_draft_or_an_error(bytes in request_bytes(metric_seeds())) {
        if let Ok(message) = pb::Metric::decode(bytes.as_slice())
            && let Ok(draft) = metrics::from_proto(message)
        {
            let _ = Metric::from_draft(draft, Uuid::nil(), chrono::Utc::now());
        }
    }

    #[test]
    fn an_endpoint_of_any_bytes_is_a_draft_or_an_error(bytes in request_bytes(vec![endpoint_seed()])) {
        if let Ok(message) = pb::Endpoint::decode(bytes.as_slice()) {
            let draft = endpoints::from_proto(message);
            if let Ok(endpoint) = Endpoint::from_draft(draft, Uuid::nil(), chrono::Utc::now()) {
                let _ = endpoint.validate("endpoint", &BodyTemplateSyntax);
            }
        }
    }

    #[test]
    fn an_execute_request_of_any_bytes_is_a_spec_or_an_error(bytes in request_bytes(vec![execute_seed()])) {
        if let Ok(message) = pb::ExecuteRequest::decode(bytes.as_slice()) {
            let _ = execution::execute_spec(message);
        }
    }

    #[test]
    fn an_import_or_suite_of_any_bytes_is_drafts_or_an_error(
        bytes in request_bytes(vec![import_seed(), endpoint_seed()]),
    ) {
        if let Ok(mut message) = pb::ImportTestsRequest::decode(bytes.as_slice()) {
            let _ = test_sets::import_target(&mut message);
            let _ = test_sets::import_piece(message, 0);
        }
        if let Ok(message) = pb::ApplySuiteRequest::decode(bytes.as_slice()) {
            let _ = test_sets::suite_from_proto(message);
        }
        if let Ok(message) = pb::Behavior::decode(bytes.as_slice()) {
            let _ = behaviors::from_proto(message);
        }
    }
}
