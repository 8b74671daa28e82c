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
}

impl ServeConfig {
    /// Settings for tests and embedding: listen address and database given, defaults otherwise.
    pub fn new(listen: SocketAddr, database: impl Into<String>) -> Self {
        ServeConfig {
            listen,
            database: database.into(),
            default_concurrency: 16,
        }
    }
}
