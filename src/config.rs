//! Configuration of `assay serve`: one typed struct, every field a flag and an `ASSAY_*`
//! environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;

use ipnet::IpNet;

use crate::auth::{ApiKey, ApiKeys};
use crate::domain::{DEFAULT_MAX_STORED_OUTPUT_BYTES, Endpoint, MAX_STORED_OUTPUT_BYTES};
use crate::endpoint_client::{
    DEFAULT_DENY_CIDRS, DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_MAX_TEMPLATE_OUTPUT_BYTES,
    DEFAULT_SECRET_ENV, DEFAULT_TEMPLATE_FUEL, OutboundPolicy, SecretEnv, TemplateLimits,
};
use crate::scoring::judge;
use crate::telemetry::logging::{LogFormat, OtlpSettings};

/// Settings of the server.
#[derive(Clone, Debug, clap::Args)]
pub struct ServeConfig {
    /// Address the gRPC server listens on.
    #[arg(long, env = "ASSAY_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,

    /// API key that grants every RPC: the global `--api-key` (`ASSAY_API_KEY`), which the
    /// client commands send and `serve` requires of callers. Without one, the server listens on
    /// loopback addresses only (unless `--insecure-no-auth`).
    #[arg(skip)]
    pub api_key: Option<ApiKey>,

    /// API key that grants only the RPCs that change nothing and call nothing (Get*, List*,
    /// LastRun, WatchTestRun). Needs `--api-key`.
    #[arg(long, env = "ASSAY_READ_ONLY_API_KEY", hide_env_values = true)]
    pub read_only_api_key: Option<ApiKey>,

    /// Serve without an API key on a non-loopback address (e.g. behind a mesh or a proxy that
    /// authenticates callers itself): anyone who reaches the port can do everything.
    #[arg(long, env = "ASSAY_INSECURE_NO_AUTH")]
    pub insecure_no_auth: bool,

    /// TLS: the server's certificate chain (PEM). Needs `--tls-key`.
    #[arg(long, env = "ASSAY_TLS_CERT", requires = "tls_key", value_name = "PEM")]
    pub tls_cert: Option<PathBuf>,

    /// TLS: the server's private key (PEM). Needs `--tls-cert`.
    #[arg(long, env = "ASSAY_TLS_KEY", requires = "tls_cert", value_name = "PEM")]
    pub tls_key: Option<PathBuf>,

    /// Mutual TLS: the CA certificates (PEM) that client certificates must be signed by; every
    /// connection without such a certificate is refused. Needs `--tls-cert` and `--tls-key`.
    #[arg(
        long,
        env = "ASSAY_TLS_CLIENT_CA",
        requires = "tls_cert",
        value_name = "PEM"
    )]
    pub tls_client_ca: Option<PathBuf>,

    /// Environment variables that endpoint headers (`${env:NAME}`) and `apiKeyEnv` settings may
    /// read: a name, or a prefix ending in `*`. Repeat the flag for several. Any other variable
    /// is refused at create and update, so that no client can send the server's environment to
    /// a URL of its choosing. The default judge's `--judge-api-key-env` is always allowed.
    #[arg(
        long = "secret-env",
        value_name = "NAME|PREFIX*",
        env = "ASSAY_SECRET_ENV",
        value_delimiter = ',',
        default_value = DEFAULT_SECRET_ENV,
        value_parser = SecretEnv::parse_pattern
    )]
    pub secret_env: Vec<String>,

    /// Address ranges endpoint, judge and redirect calls may never reach, checked after DNS
    /// resolution when connecting (a name cannot lead there); an endpoint whose URL is such an
    /// address is refused at create. Repeat the flag for several; giving it replaces the default
    /// (link-local and cloud metadata addresses).
    #[arg(
        long = "deny-cidr",
        value_name = "CIDR",
        env = "ASSAY_DENY_CIDR",
        value_delimiter = ',',
        default_values_t = default_deny_cidrs(),
        value_parser = OutboundPolicy::parse_cidr
    )]
    pub deny_cidr: Vec<IpNet>,

    /// When given, the only address ranges calls may reach (the denied ones excepted). Repeat
    /// the flag for several.
    #[arg(
        long = "allow-cidr",
        value_name = "CIDR",
        env = "ASSAY_ALLOW_CIDR",
        value_delimiter = ',',
        value_parser = OutboundPolicy::parse_cidr
    )]
    pub allow_cidr: Vec<IpNet>,

    /// Largest response body, in bytes, read from an endpoint or a judge; a larger one is an
    /// endpoint error, and memory stays bounded however large the body.
    #[arg(long, env = "ASSAY_MAX_RESPONSE_BYTES", default_value_t = DEFAULT_MAX_RESPONSE_BYTES, value_parser = clap::value_parser!(u64).range(1024..))]
    pub max_response_bytes: u64,

    /// Work one render of a template (a body template's string, a judge's prompt) may do, in
    /// minijinja fuel: about one unit per instruction, or per 64 bytes allocated or written. A
    /// template that needs more fails that call, so that no template can hang the server.
    #[arg(long, env = "ASSAY_TEMPLATE_FUEL", default_value_t = DEFAULT_TEMPLATE_FUEL, value_parser = clap::value_parser!(u64).range(1000..))]
    pub template_fuel: u64,

    /// Largest text, in bytes, one render of a template may produce.
    #[arg(long, env = "ASSAY_MAX_TEMPLATE_OUTPUT_BYTES", default_value_t = DEFAULT_MAX_TEMPLATE_OUTPUT_BYTES, value_parser = at_least_1_kib)]
    pub max_template_output_bytes: usize,

    /// Largest request message, in bytes (an `AddTests` call, one message of `ImportTests`);
    /// larger ones are refused with RESOURCE_EXHAUSTED. The CLI imports in pieces far smaller.
    #[arg(long, env = "ASSAY_MAX_REQUEST_BYTES", default_value_t = DEFAULT_MAX_REQUEST_BYTES, value_parser = at_least_1_kib)]
    pub max_request_bytes: usize,

    /// Largest text, in bytes, stored for one test or result: a test's prompt and its expected
    /// response (a longer one is refused at AddTests, ImportTests and apply), and an endpoint's
    /// answer, its output, context and metadata together (a longer one makes the result an
    /// error, its answer not stored). So every stored test and result fits in one message of
    /// the read RPCs. At most 1 MiB.
    #[arg(long, env = "ASSAY_MAX_STORED_OUTPUT_BYTES", default_value_t = DEFAULT_MAX_STORED_OUTPUT_BYTES, value_parser = stored_text_limit)]
    pub max_stored_output_bytes: usize,

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

    /// Not a flag: the most pages the SQLite file may grow to (SQLite's `max_page_count`), so
    /// that writes beyond fail as on a full disk. Fault tests set it.
    #[arg(skip)]
    pub sqlite_max_page_count: Option<u32>,

    /// OpenTelemetry collector to export spans to over OTLP/gRPC (e.g. `http://127.0.0.1:4317`);
    /// unset: no spans are exported and no `traceparent` is sent to endpoints.
    #[arg(long, env = "ASSAY_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,

    /// Share of traces exported, from 0 to 1, for traces that no caller's `traceparent` has
    /// already decided on.
    #[arg(long, env = "ASSAY_OTLP_SAMPLE_RATIO", default_value_t = 1.0)]
    pub otlp_sample_ratio: f64,
}

/// Default of `--max-request-bytes`: 4 MiB, gRPC's usual limit.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;

/// The default of `--deny-cidr`.
fn default_deny_cidrs() -> Vec<IpNet> {
    DEFAULT_DENY_CIDRS
        .iter()
        .filter_map(|cidr| cidr.parse().ok())
        .collect()
}

/// A size of at least 1 KiB.
fn at_least_1_kib(value: &str) -> Result<usize, String> {
    let bytes: usize = value
        .parse()
        .map_err(|e| format!("{value:?} is not a size in bytes: {e}"))?;
    if bytes < 1024 {
        return Err(format!("{bytes} is below the minimum of 1024 bytes"));
    }
    Ok(bytes)
}

/// A `--max-stored-output-bytes`: from 1 KiB to [`MAX_STORED_OUTPUT_BYTES`].
fn stored_text_limit(value: &str) -> Result<usize, String> {
    let bytes = at_least_1_kib(value)?;
    if bytes > MAX_STORED_OUTPUT_BYTES {
        return Err(format!(
            "{bytes} is above the maximum of {MAX_STORED_OUTPUT_BYTES} bytes"
        ));
    }
    Ok(bytes)
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
            api_key: None,
            read_only_api_key: None,
            insecure_no_auth: false,
            cors_allow_origins: Vec::new(),
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            secret_env: vec![DEFAULT_SECRET_ENV.to_string()],
            deny_cidr: default_deny_cidrs(),
            allow_cidr: Vec::new(),
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            template_fuel: DEFAULT_TEMPLATE_FUEL,
            max_template_output_bytes: DEFAULT_MAX_TEMPLATE_OUTPUT_BYTES,
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            max_stored_output_bytes: DEFAULT_MAX_STORED_OUTPUT_BYTES,
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
            sqlite_max_page_count: None,
        }
    }

    /// The settings `serve` would take from the environment (`ASSAY_*`) with no flags, on the
    /// listen address and database given: what `assay eval` runs inside its process.
    pub fn from_env(listen: SocketAddr, database: String) -> Result<Self, clap::Error> {
        use clap::{Args, FromArgMatches};
        let matches = ServeConfig::augment_args(clap::Command::new("serve"))
            .try_get_matches_from(["serve"])?;
        Ok(ServeConfig {
            listen,
            database,
            ..ServeConfig::from_arg_matches(&matches)?
        })
    }

    /// The keys callers must present; `None` when no `--api-key` is set (every call is let in).
    /// A read-only key alone is refused: nobody could then change anything.
    pub fn api_keys(&self) -> Result<Option<ApiKeys>, String> {
        match (&self.api_key, &self.read_only_api_key) {
            (Some(full), read_only) => Ok(Some(ApiKeys::new(full.clone(), read_only.clone()))),
            (None, Some(_)) => Err("--read-only-api-key (ASSAY_READ_ONLY_API_KEY) needs \
                                    --api-key (ASSAY_API_KEY) too"
                .into()),
            (None, None) => Ok(None),
        }
    }

    /// The environment variables endpoints may read: `--secret-env`, and the default judge's key.
    pub fn secret_env(&self) -> SecretEnv {
        let allowed = SecretEnv::new(self.secret_env.iter().cloned());
        match self.judge_api_key_env.as_deref().map(str::trim) {
            Some(name) if !name.is_empty() => allowed.and(name),
            _ => allowed,
        }
    }

    /// The addresses endpoint and judge calls may reach.
    pub fn outbound(&self) -> OutboundPolicy {
        OutboundPolicy::new(self.deny_cidr.clone(), self.allow_cidr.clone())
    }

    /// The limits of one template render.
    pub fn template_limits(&self) -> TemplateLimits {
        TemplateLimits {
            fuel: self.template_fuel,
            max_output_bytes: self.max_template_output_bytes,
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
