//! Starts the real server in-process: a pre-bound 127.0.0.1:0 listener (no port races) and a
//! SQLite database in a temporary directory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use assay::auth::ApiKey;
use assay::cli::{Clients, SendApiKey};
use assay::config::ServeConfig;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

/// A running server and clients for it.
pub struct Server {
    channel: Channel,
    clients: Clients,
    url: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    db_path: PathBuf,
    // Kept last: removed after the server is stopped.
    dir: Option<tempfile::TempDir>,
}

impl Server {
    /// A server on a fresh database.
    pub async fn start() -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let db_path = dir.path().join("assay.db");
        let mut server = Server::start_on(&db_path).await;
        server.dir = Some(dir);
        server
    }

    /// A server on a fresh database, with settings changed by `configure`.
    pub async fn start_with(configure: impl FnOnce(&mut ServeConfig)) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let db_path = dir.path().join("assay.db");
        let mut server = Server::launch(&db_path, configure, None).await;
        server.dir = Some(dir);
        server
    }

    /// A server on the database file at `db_path` (kept by the caller).
    pub async fn start_on(db_path: &Path) -> Server {
        Server::launch(db_path, |_| {}, None).await
    }

    /// A server on the database file at `db_path` (kept by the caller), with settings changed
    /// by `configure`.
    pub async fn start_on_with(db_path: &Path, configure: impl FnOnce(&mut ServeConfig)) -> Server {
        Server::launch(db_path, configure, None).await
    }

    /// A server on a fresh database, with settings changed by `configure`, that serves
    /// Prometheus metrics too, and the address of its metrics listener.
    pub async fn start_with_metrics(
        configure: impl FnOnce(&mut ServeConfig),
    ) -> (Server, SocketAddr) {
        let dir = tempfile::tempdir().expect("temp dir");
        let db_path = dir.path().join("assay.db");
        let metrics = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let metrics_addr = metrics.local_addr().expect("addr");
        let mut server = Server::launch(&db_path, configure, Some(metrics)).await;
        server.dir = Some(dir);
        (server, metrics_addr)
    }

    async fn launch(
        db_path: &Path,
        configure: impl FnOnce(&mut ServeConfig),
        metrics: Option<TcpListener>,
    ) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut config = ServeConfig::new(addr, format!("sqlite://{}", db_path.display()));
        configure(&mut config);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            assay::server::serve_with_metrics(config, listener, metrics, async {
                let _ = stopped.await;
            })
            .await
            .expect("server failed");
        });
        let channel = Channel::from_shared(format!("http://{addr}"))
            .expect("uri")
            .connect()
            .await
            .expect("connect");
        Server {
            clients: Clients::on(channel.clone()),
            channel,
            url: format!("http://{addr}"),
            stop: Some(stop),
            task: Some(task),
            db_path: db_path.to_path_buf(),
            dir: None,
        }
    }

    /// Stops the server gracefully and waits for it; returns the temporary directory (if it
    /// owns one) so a test can start a new server on the same database.
    pub async fn stop(mut self) -> (PathBuf, Option<tempfile::TempDir>) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task");
        }
        (self.db_path.clone(), self.dir.take())
    }

    /// The server's URL, e.g. `http://127.0.0.1:1234`, for clients in other processes.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Signals a graceful stop without waiting for it; `stop` then waits.
    pub fn begin_stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// From now on the clients (`server.metrics()`, ..., and the fixtures) send `key` with
    /// every call.
    pub fn send_key(&mut self, key: &ApiKey) {
        self.clients = Clients::with_key(self.channel.clone(), SendApiKey::new(key));
    }

    /// A raw channel, for health and reflection clients.
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }
}

/// The generated clients of every service (those the command-line client uses), on this
/// server: `server.metrics()`, `server.execution()`, ...
impl std::ops::Deref for Server {
    type Target = Clients;

    fn deref(&self) -> &Clients {
        &self.clients
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
