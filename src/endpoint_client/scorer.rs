//! External scorers (`external` metrics): what they are given and what they answer, in both
//! protocols. The JSON of an HTTP scorer has the fields of the gRPC messages
//! (`assay.v1.ScoreRequest`, `assay.v1.ScoreResponse`), in snake_case.

use std::collections::BTreeMap;

use reqwest::Url;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use serde::{Deserialize, Serialize};
use tonic::transport::Channel;
use uuid::Uuid;

use crate::proto::v1 as pb;
use pb::scorer_service_client::ScorerServiceClient;

/// What a scorer is given for one answer.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct ScorerInput<'a> {
    /// The test's id.
    pub test_id: Uuid,
    /// The name of the metric that calls the scorer.
    pub metric: &'a str,
    /// The prompt sent to the endpoint.
    pub prompt: &'a str,
    /// The endpoint's answer.
    pub output: &'a str,
    /// The test's expected response (`null` in JSON when it has none).
    pub expected_response: Option<&'a str>,
    /// Context the endpoint returned.
    pub context: &'a [String],
    /// The test's metadata.
    pub metadata: &'a BTreeMap<String, String>,
}

impl ScorerInput<'_> {
    /// The gRPC request.
    pub(crate) fn to_proto(self) -> pb::ScoreRequest {
        pb::ScoreRequest {
            test_id: self.test_id.to_string(),
            metric: self.metric.to_string(),
            prompt: self.prompt.to_string(),
            output: self.output.to_string(),
            expected_response: self.expected_response.map(str::to_string),
            context: self.context.to_vec(),
            metadata: self
                .metadata
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }
}

/// What a scorer answered; the scoring layer decides whether it is a verdict.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct ScorerAnswer {
    /// The score.
    #[serde(default)]
    pub score: Option<f64>,
    /// The verdict.
    #[serde(default)]
    pub passed: Option<bool>,
    /// A category; `None` when empty.
    #[serde(default)]
    pub category: Option<String>,
    /// Why.
    #[serde(default)]
    pub reason: Option<String>,
}

impl From<pb::ScoreResponse> for ScorerAnswer {
    fn from(r: pb::ScoreResponse) -> Self {
        ScorerAnswer {
            score: r.score,
            passed: r.passed,
            category: Some(r.category).filter(|c| !c.is_empty()),
            reason: Some(r.reason).filter(|r| !r.is_empty()),
        }
    }
}

/// A scorer ready for one run.
pub(crate) enum PreparedScorer {
    /// POSTs JSON to the URL.
    Http(Url),
    /// Calls `Score` on the server at the URL.
    Grpc {
        /// The server, and the RPC's URL (for spans and logs).
        url: Url,
        /// Connects on first use, shared by the run's calls.
        client: ScorerServiceClient<Channel>,
    },
}

/// The `Content-Type` of an HTTP scorer's request.
pub(crate) fn json_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers
}

/// The path of the RPC below a gRPC scorer's URL.
pub(crate) const SCORE_PATH: &str = "/assay.v1.ScorerService/Score";
