//! The gRPC server: opens the store (migrations run first), registers Assay's services with
//! reflection and health, and shuts down gracefully.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tower_http::trace::{DefaultOnFailure, TraceLayer};
use tracing::Level;

use crate::api::{BehaviorApi, EndpointApi, ExecutionApi, MetricApi, TestSetApi};
use crate::catalogue::Catalogue;
use crate::config::ServeConfig;
use crate::engine::{ConcurrencyLimits, Engine, EngineSettings, Replica};
use crate::health::Health;
use crate::proto::v1::{
    behavior_service_server::BehaviorServiceServer, endpoint_service_server::EndpointServiceServer,
    metric_service_server::MetricServiceServer,
    test_execution_service_server::TestExecutionServiceServer,
    test_set_service_server::TestSetServiceServer,
};
use crate::store::{PgStore, SqliteStore, Store, WriteFaults, sqlite_fault};
use crate::telemetry::{Telemetry, exposition, grpc};

/// The services this server implements besides reflection, as reflection lists them.
const SERVED: [&str; 6] = [
    crate::proto::v1::metric_service_server::SERVICE_NAME,
    crate::proto::v1::behavior_service_server::SERVICE_NAME,
    crate::proto::v1::endpoint_service_server::SERVICE_NAME,
    crate::proto::v1::test_set_service_server::SERVICE_NAME,
    crate::proto::v1::test_execution_service_server::SERVICE_NAME,
    "grpc.health.v1.Health",
];

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Binding or reading the listen address failed.
    #[error("listen: {0}")]
    Io(#[from] std::io::Error),
    /// The database could not be opened or migrated.
    #[error("database: {0}")]
    Store(#[from] crate::error::Error),
    /// The reflection service could not be built.
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The settings do not allow serving (e.g. no API key on a public address).
    #[error("{0}")]
    Config(String),
    /// The gRPC transport failed.
    #[error("transport: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Runs the server on `config.listen` (and its metrics on `config.metrics_listen`) until SIGINT
/// or SIGTERM.
pub async fn run(config: ServeConfig) -> Result<(), ServerError> {
    let listener = TcpListener::bind(config.listen).await?;
    let metrics = match config.metrics_listen {
        Some(addr) => Some(TcpListener::bind(addr).await?),
        None => None,
    };
    serve_with_metrics(config, listener, metrics, shutdown_signal()).await
}

/// Opens the store named by a database URL: `sqlite://PATH` (created if missing) or
/// `postgres://USER@HOST:PORT/DB` (`postgresql://` too).
pub async fn open_store(url: &str) -> Result<Arc<dyn Store>, ServerError> {
    open_store_limited(url, None).await
}

/// [`open_store`], a SQLite file allowed `sqlite_max_page_count` pages at most when given.
async fn open_store_limited(
    url: &str,
    sqlite_max_page_count: Option<u32>,
) -> Result<Arc<dyn Store>, ServerError> {
    if url.starts_with("sqlite:") {
        let opened = SqliteStore::open_with_page_limit(url, sqlite_max_page_count).await;
        let store = opened.map_err(|e| {
            let hint =
                sqlite_fault(&e).map_or_else(|| sqlite_hint(url).into(), |why| format!(" ({why})"));
            crate::error::Error::storage(format!("cannot open {url:?}{hint}"), e)
        })?;
        return Ok(Arc::new(store));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let store = PgStore::open(url).await.map_err(|e| {
            crate::error::Error::storage(format!("cannot open {:?}", redacted(url)), e)
        })?;
        return Ok(Arc::new(store));
    }
    Err(crate::error::Error::invalid(
        "database",
        format!(
            "{:?} is not a supported database URL (use sqlite://PATH or postgres://USER@HOST:PORT/DB)",
            redacted(url)
        ),
    )
    .into())
}

/// Why a SQLite file may not open, when it can be told without opening it: a missing folder.
fn sqlite_hint(url: &str) -> &'static str {
    let path = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let path = path.split('?').next().unwrap_or(path);
    match std::path::Path::new(path).parent() {
        Some(folder) if !folder.as_os_str().is_empty() && !folder.exists() => {
            " (its folder does not exist)"
        }
        _ => "",
    }
}

/// A database URL as logs and errors show it: without its password.
pub fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("********"));
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}

/// Serves on an already bound `listener` until `shutdown` completes; then lets the tests in
/// flight finish (up to the grace period), leaves unfinished runs to resume at the next start,
/// and drains the connections. Runs left `RUNNING` by an earlier stop or crash are resumed first.
pub async fn serve(
    config: ServeConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    serve_with_metrics(config, listener, None, shutdown).await
}

/// [`serve`], and Prometheus metrics at `GET /metrics` on `metrics`, an already bound listener,
/// when given (`config.metrics_listen` is not read here).
pub async fn serve_with_metrics(
    config: ServeConfig,
    listener: TcpListener,
    metrics: Option<TcpListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let telemetry = if metrics.is_some() {
        Telemetry::on()
    } else {
        Telemetry::off()
    };
    let address = listener.local_addr()?;
    let api_keys = config.api_keys().map_err(ServerError::Config)?;
    let tls = crate::tls::server_tls(&config).map_err(ServerError::Config)?;
    // Client certificates (mutual TLS) authenticate callers as a key does.
    let authenticated = api_keys.is_some() || config.tls_client_ca.is_some();
    if !authenticated && !address.ip().is_loopback() && !config.insecure_no_auth {
        return Err(ServerError::Config(format!(
            "refusing to listen on {address} without an API key: set --api-key (ASSAY_API_KEY) \
             or --tls-client-ca, listen on a loopback address, or pass --insecure-no-auth \
             (ASSAY_INSECURE_NO_AUTH) if something in front of the server authenticates callers"
        )));
    }
    // Process-wide: templates are compiled far from the configuration (see the function).
    if !crate::endpoint_client::set_template_limits(config.template_limits())
        && crate::endpoint_client::template_limits() != config.template_limits()
    {
        tracing::warn!("template limits were set by an earlier server of this process; kept");
    }
    // `shutdown` may come while the database is awaited, or while the server runs.
    let stop = CancellationToken::new();
    tokio::spawn({
        let stop = stop.clone();
        async move {
            shutdown.await;
            stop.cancel();
        }
    });
    let open = || open_store_limited(&config.database, config.sqlite_max_page_count);
    let store = match open().await {
        Ok(store) => store,
        // A database that cannot be used (corrupt, read-only, not answering) is waited for
        // while health says NOT_SERVING; a bad URL is a configuration error.
        Err(ServerError::Store(e @ crate::error::Error::Storage { .. })) => {
            let settings = crate::degraded::Settings {
                tls: tls.clone(),
                api_keys: api_keys.clone(),
            };
            let retry = || async { open().await.map_err(|e| e.to_string()) };
            match crate::degraded::until_open(
                &listener,
                settings,
                e.to_string(),
                retry,
                stop.clone(),
            )
            .await?
            {
                Some(store) => store,
                None => return Ok(()),
            }
        }
        Err(e) => return Err(e),
    };
    let default_judge = config.default_judge();
    let write_faults = WriteFaults::default();
    let engine = Engine::new(
        Arc::clone(&store),
        EngineSettings {
            concurrency: ConcurrencyLimits {
                default: config.default_concurrency,
                cap: config.max_concurrency_cap,
            },
            shutdown_grace: Duration::from_millis(config.shutdown_grace_ms),
            replica: Replica::new(Duration::from_millis(config.lease_ms)),
            secret_env: config.secret_env(),
            max_response_bytes: config.max_response_bytes,
            max_stored_output_bytes: config.max_stored_output_bytes,
            outbound: config.outbound(),
            telemetry: telemetry.clone(),
            write_faults: write_faults.clone(),
        },
        default_judge.clone(),
    );
    let catalogue = Arc::new(
        Catalogue::new(Arc::clone(&store), default_judge.is_some())
            .with_secret_env(config.secret_env())
            .with_outbound(config.outbound())
            .with_max_stored_output_bytes(config.max_stored_output_bytes),
    );
    // Runs left by an earlier stop or crash, and runs of the other replicas, are taken up now.
    engine.schedule();

    let (reporter, health_service) = tonic_health::server::health_reporter();
    let health = Health::new(reporter);
    // Migrations have run: only now does the server say it is serving, and from now on it says
    // whether its database answers.
    health.set(ServingStatus::Serving).await;
    let stop_health = CancellationToken::new();
    health.follow_store(Arc::clone(&store), write_faults, stop_health.clone());

    let (reflection_v1, reflection_v1alpha) = reflection()?;

    // Client mistakes (INVALID_ARGUMENT, NOT_FOUND, ...) are not server faults: debug level.
    // Server faults are logged at error level where they are mapped to a status.
    let trace = TraceLayer::new_for_grpc()
        .make_span_with(grpc::rpc_span)
        .on_failure(DefaultOnFailure::new().level(Level::DEBUG));
    let grpc_metrics = grpc::GrpcMetricsLayer::new(
        telemetry.clone(),
        &[
            crate::proto::FILE_DESCRIPTOR_SET,
            tonic_health::pb::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
        ],
    );
    let stop_metrics = CancellationToken::new();
    if let Some(metrics) = metrics {
        tracing::info!(address = %metrics.local_addr()?, "serving metrics at /metrics");
        let stopped = stop_metrics.clone();
        tokio::spawn(async move {
            let stop = async move { stopped.cancelled().await };
            if let Err(e) = exposition::serve(telemetry, metrics, stop).await {
                tracing::error!(error = %e, "the metrics server stopped");
            }
        });
    }

    tracing::info!(
        %address,
        database = %redacted(&config.database),
        api_keys = api_keys.is_some(),
        tls = config.tls_cert.is_some(),
        mutual_tls = config.tls_client_ca.is_some(),
        "assay serving"
    );
    let stop_engine = Arc::clone(&engine);
    // No Nagle delay on accepted connections: a streamed result is a small write that must leave
    // at once, not wait up to 40 ms for the client's delayed ACK.
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    // gRPC-Web (HTTP/1.1 too) on the same port, for browsers; CORS answers their preflights
    // first, for the configured origins only.
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        builder = builder.tls_config(tls)?;
    }
    builder
        .accept_http1(true)
        .layer(trace)
        .layer(tower::util::option_layer(crate::web::cors_layer(
            &config.cors_allow_origins,
        )))
        .layer(tonic_web::GrpcWebLayer::new())
        // Inside gRPC-Web, so that it sees the trailers of every request as native gRPC ones;
        // outside the key check, so that refused calls are counted too.
        .layer(grpc_metrics)
        // Inside gRPC-Web: its calls arrive here as gRPC, and a refusal goes back translated.
        // After CORS: preflights carry no key.
        .layer(tower::util::option_layer(
            api_keys.map(crate::auth::RequireApiKey::new),
        ))
        // Inside the metrics layer, which then counts the code clients are told.
        .layer(crate::api::request_limit::layer(config.max_request_bytes))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(
            MetricServiceServer::new(MetricApi::new(Arc::clone(&catalogue)))
                .max_decoding_message_size(config.max_request_bytes),
        )
        .add_service(
            BehaviorServiceServer::new(BehaviorApi::new(Arc::clone(&catalogue)))
                .max_decoding_message_size(config.max_request_bytes),
        )
        .add_service(
            EndpointServiceServer::new(EndpointApi::new(Arc::clone(&catalogue)))
                .max_decoding_message_size(config.max_request_bytes),
        )
        .add_service(
            TestSetServiceServer::new(TestSetApi::new(
                Arc::clone(&catalogue),
                config.max_request_bytes,
            ))
            .max_decoding_message_size(config.max_request_bytes),
        )
        .add_service(
            TestExecutionServiceServer::new(ExecutionApi::new(catalogue, engine))
                .max_decoding_message_size(config.max_request_bytes),
        )
        .serve_with_incoming_shutdown(incoming, async move {
            stop.cancelled().await;
            tracing::info!("shutting down");
            stop_health.cancel();
            health.set(ServingStatus::NotServing).await;
            // New runs are refused from here on; live runs store what is in flight and stop, which
            // ends their streams, so the connections can drain.
            stop_engine.shutdown().await;
            stop_metrics.cancel();
        })
        .await?;
    tracing::info!("assay stopped");
    Ok(())
}

/// Reflection, v1 and v1alpha (grpcurl asks v1, some clients v1alpha). google.rpc error details
/// are registered too, so that grpcurl can decode them. Only the services served are listed:
/// `assay.v1.ScorerService` is described (scorers are generated from it) but implemented by
/// users' scorers, not here.
pub(crate) fn reflection() -> Result<
    (
        tonic_reflection::server::v1::ServerReflectionServer<
            impl tonic_reflection::server::v1::ServerReflection,
        >,
        tonic_reflection::server::v1alpha::ServerReflectionServer<
            impl tonic_reflection::server::v1alpha::ServerReflection,
        >,
    ),
    tonic_reflection::server::Error,
> {
    let builder = |own: &str| {
        SERVED.iter().chain([&own]).fold(
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET),
            |builder, name| builder.with_service_name(*name),
        )
    };
    Ok((
        builder("grpc.reflection.v1.ServerReflection").build_v1()?,
        builder("grpc.reflection.v1alpha.ServerReflection").build_v1alpha()?,
    ))
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM (what orchestrators send).
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
