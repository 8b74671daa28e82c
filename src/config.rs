//! Configuration of `assay serve`: one typed struct, every field a flag and an `ASSAY_*`
//! environment variable.

use std::net::SocketAddr;

/// Settings of the server.
#[derive(Clone, Debug, clap::Args)]
pub struct ServeConfig {
    /// Address the gRPC server listens on.
    #[arg(long, env = "ASSAY_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,

    /// Database URL; a SQLite file is created on first start.
    #[arg(long, env = "ASSAY_DATABASE_URL", default_value = "sqlite://assay.db")]
    pub database: String,

    /// Most endpoint calls in flight at once for one run, when neither the request nor the
    /// endpoint asks for fewer.
    #[arg(long, env = "ASSAY_DEFAULT_CONCURRENCY", default_value_t = 16)]
    pub default_concurrency: u32,

    /// On SIGTERM or SIGINT: how long, in milliseconds, the tests in flight may take to finish
    /// and be stored before the server exits; runs not done by then resume at the next start.
    #[arg(long, env = "ASSAY_SHUTDOWN_GRACE_MS", default_value_t = DEFAULT_SHUTDOWN_GRACE_MS)]
    pub shutdown_grace_ms: u64,
}

/// Default of `--shutdown-grace-ms`: below the 30 s after which orchestrators send SIGKILL.
pub const DEFAULT_SHUTDOWN_GRACE_MS: u64 = 20_000;

impl ServeConfig {
    /// Settings for tests and embedding: listen address and database given, defaults otherwise.
    pub fn new(listen: SocketAddr, database: impl Into<String>) -> Self {
        ServeConfig {
            listen,
            database: database.into(),
            default_concurrency: 16,
            shutdown_grace_ms: DEFAULT_SHUTDOWN_GRACE_MS,
        }
    }
}
