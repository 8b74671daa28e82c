//! Configuration of `assay serve`: one typed struct, every field a flag and an `ASSAY_*`
//! environment variable.

use std::net::SocketAddr;

use crate::domain::Endpoint;
use crate::scoring::judge;
use crate::telemetry::logging::{LogFormat, OtlpSettings};

/// Settings of the server.
#[derive(Clone, Debug, clap::Args)]
pub struct ServeConfig {
    /// Address the gRPC server listens on.
    #[arg(long, env = "ASSAY_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,

    /// Browser origins (e.g. `https://app.example.com`) allowed to call the API through
    /// gRPC-Web on the same port; `*` allows any. Repeat the flag for several; none: no CORS
    /// headers are sent, so browsers on other origins are refused.
    #[arg(
        long = "cors-allow-origin",
        value_name = "ORIGIN",
        env = "ASSAY_CORS_ALLOW_ORIGINS",
        value_delimiter = ',',
        value_parser = crate::web::parse_origin
    )]
    pub cors_allow_origins: Vec<String>,

    /// Database URL: `sqlite://PATH` (the file is created on first start) or
    /// `postgres://USER[:PASSWORD]@HOST:PORT/DB` (add `?sslmode=require` for TLS).
    #[arg(
        long,
        env = "ASSAY_DATABASE_URL",
        default_value = "sqlite://assay.db",
        hide_env_values = true
    )]
    pub database: String,

    /// Endpoint calls in flight at once for one run when neither the request nor the endpoint
    /// sets a limit.
    #[arg(long, env = "ASSAY_DEFAULT_CONCURRENCY", default_value_t = 16)]
    pub default_concurrency: u32,

    /// Most endpoint calls in flight at once for one run, whatever the request or the endpoint
    /// asks.
    #[arg(long, env = "ASSAY_MAX_CONCURRENCY_CAP", default_value_t = 256)]
    pub max_concurrency_cap: u32,

    /// On SIGTERM or SIGINT: how long, in milliseconds, the tests in flight may take to finish
    /// and be stored before the server exits; runs not done by then go on on the other replicas,
    /// or resume at the next start.
    #[arg(long, env = "ASSAY_SHUTDOWN_GRACE_MS", default_value_t = DEFAULT_SHUTDOWN_GRACE_MS)]
    pub shutdown_grace_ms: u64,

    /// Replicas on one PostgreSQL database share every run: how long, in milliseconds, a
    /// replica's claim on the tests it works on lasts unless renewed (every third of it). When a
    /// replica dies, the others take its tests over once its leases end.
    #[arg(long, env = "ASSAY_LEASE_MS", default_value_t = DEFAULT_LEASE_MS, value_parser = clap::value_parser!(u64).range(300..=300_000))]
    pub lease_ms: u64,

    /// Default LLM judge: base URL of an OpenAI-compatible API (e.g. `http://127.0.0.1:8000/v1`)
    /// for judge metrics that name no judge. Needs `--judge-model`.
    #[arg(long, env = "ASSAY_JUDGE_BASE_URL", requires = "judge_model")]
    pub judge_base_url: Option<String>,

    /// Default LLM judge: model name.
    #[arg(long, env = "ASSAY_JUDGE_MODEL", requires = "judge_base_url")]
    pub judge_model: Option<String>,

    /// Default LLM judge: name of the environment variable holding its API key.
    #[arg(long, env = "ASSAY_JUDGE_API_KEY_ENV")]
    pub judge_api_key_env: Option<String>,

    /// Default LLM judge: timeout of one call, in milliseconds.
    #[arg(long, env = "ASSAY_JUDGE_TIMEOUT_MS", default_value_t = 60_000)]
    pub judge_timeout_ms: u32,

    /// Default LLM judge: most calls in flight at once, across all runs.
    #[arg(long, env = "ASSAY_JUDGE_MAX_CONCURRENCY", default_value_t = 8)]
    pub judge_max_concurrency: u32,

    /// Address to serve Prometheus metrics on, at `GET /metrics` (e.g. `0.0.0.0:9464`); unset:
    /// no metrics are served.
    #[arg(long, env = "ASSAY_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// How the server logs on stderr: `text`, or `json` (one object per line, with `run_id`,
    /// `test_id` and `endpoint` fields where they apply).
    #[arg(long, env = "ASSAY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// OpenTelemetry collector to export spans to over OTLP/gRPC (e.g. `http://127.0.0.1:4317`);
    /// unset: no spans are exported and no `traceparent` is sent to endpoints.
    #[arg(long, env = "ASSAY_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,

    /// Share of traces exported, from 0 to 1, for traces that no caller's `traceparent` has
    /// already decided on.
    #[arg(long, env = "ASSAY_OTLP_SAMPLE_RATIO", default_value_t = 1.0)]
    pub otlp_sample_ratio: f64,
}

/// Default of `--shutdown-grace-ms`: below the 30 s after which orchestrators send SIGKILL.
pub const DEFAULT_SHUTDOWN_GRACE_MS: u64 = 20_000;

/// Default of `--lease-ms`: the tests of a replica that died wait this long for another.
pub const DEFAULT_LEASE_MS: u64 = 10_000;

impl ServeConfig {
    /// Settings for tests and embedding: listen address and database given, defaults otherwise.
    pub fn new(listen: SocketAddr, database: impl Into<String>) -> Self {
        ServeConfig {
            listen,
            cors_allow_origins: Vec::new(),
            database: database.into(),
            default_concurrency: 16,
            max_concurrency_cap: 256,
            shutdown_grace_ms: DEFAULT_SHUTDOWN_GRACE_MS,
            lease_ms: DEFAULT_LEASE_MS,
            judge_base_url: None,
            judge_model: None,
            judge_api_key_env: None,
            judge_timeout_ms: 60_000,
            judge_max_concurrency: 8,
            metrics_listen: None,
            log_format: LogFormat::Text,
            otlp_endpoint: None,
            otlp_sample_ratio: 1.0,
        }
    }

    /// Where spans are exported, when `--otlp-endpoint` is set.
    pub fn otlp(&self) -> Option<OtlpSettings> {
        let endpoint = self
            .otlp_endpoint
            .as_deref()
            .filter(|e| !e.trim().is_empty())?;
        Some(OtlpSettings {
            endpoint: endpoint.to_string(),
            sample_ratio: self.otlp_sample_ratio,
        })
    }

    /// The default judge as an in-memory endpoint, when a base URL and model are configured.
    pub fn default_judge(&self) -> Option<Endpoint> {
        let base_url = self
            .judge_base_url
            .as_deref()
            .filter(|u| !u.trim().is_empty())?;
        let model = self
            .judge_model
            .as_deref()
            .filter(|m| !m.trim().is_empty())?;
        Some(judge::default_endpoint(
            base_url,
            model,
            self.judge_api_key_env
                .clone()
                .filter(|v| !v.trim().is_empty()),
            self.judge_timeout_ms,
            self.judge_max_concurrency,
        ))
    }
}
