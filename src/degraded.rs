//! Serving while the database cannot be used at start (a corrupt or read-only SQLite file, a
//! PostgreSQL server that does not answer yet): `grpc.health.v1` says `NOT_SERVING` for every
//! service, every other call is `UNAVAILABLE` with a message that says what is wrong with the
//! database, and the database is tried again every few seconds; once it opens, this server makes
//! way for the real one on the same listener. An orchestrator thus sees a replica that is up but
//! not ready (and why, in its log and in any caller's error), rather than one that exits and
//! restarts in a loop.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::StreamExt;
use http::{Request, Response};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::Status;
use tonic::transport::ServerTlsConfig;
use tonic_health::ServingStatus;

use crate::auth::{ApiKeys, RequireApiKey};
use crate::health::Health;
use crate::server::ServerError;
use crate::store::Store;

/// How long to wait between tries of the database.
const RETRY_EVERY: Duration = Duration::from_secs(2);

/// The path prefixes of the calls that are answered: health checks, and reflection (so that
/// grpcurl can ask for health by name).
const ANSWERED: [&str; 3] = [
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1.ServerReflection/",
    "/grpc.reflection.v1alpha.ServerReflection/",
];

/// What the degraded server needs of the real one's settings: the same TLS and keys.
pub(crate) struct Settings {
    /// The server's TLS, when it has some.
    pub tls: Option<ServerTlsConfig>,
    /// The API keys callers must send, when set.
    pub api_keys: Option<ApiKeys>,
}

/// Serves `NOT_SERVING` on `listener` while `open` fails (its first failure is `why`), trying it
/// again every [`RETRY_EVERY`]. Returns the store once it opens, or `None` when `stop` is
/// cancelled first.
pub(crate) async fn until_open<F, Fut>(
    listener: &TcpListener,
    settings: Settings,
    why: String,
    mut open: F,
    stop: CancellationToken,
) -> Result<Option<Arc<dyn Store>>, ServerError>
where
    F: FnMut() -> Fut + Send,
    Fut: Future<Output = Result<Arc<dyn Store>, String>> + Send,
{
    tracing::error!(error = %why, "the database cannot be used: serving NOT_SERVING until it can");
    let (reporter, health_service) = tonic_health::server::health_reporter();
    Health::new(reporter).set(ServingStatus::NotServing).await;
    let reason = Arc::new(std::sync::RwLock::new(why));
    let opened = CancellationToken::new();
    let store = {
        let reason = Arc::clone(&reason);
        let opened = opened.clone();
        let stop = stop.clone();
        async move {
            loop {
                tokio::select! {
                    () = stop.cancelled() => return None,
                    () = tokio::time::sleep(RETRY_EVERY) => {}
                }
                match open().await {
                    Ok(store) => {
                        opened.cancel();
                        return Some(store);
                    }
                    Err(e) => {
                        let mut current = reason.write().unwrap_or_else(|p| p.into_inner());
                        if *current != e {
                            tracing::error!(error = %e, "the database still cannot be used");
                            *current = e;
                        }
                    }
                }
            }
        }
    };
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = settings.tls {
        builder = builder.tls_config(tls)?;
    }
    let incoming = futures::stream::unfold(listener, |listener| async move {
        let accepted = listener.accept().await.map(|(stream, _)| {
            let _ = stream.set_nodelay(true);
            stream
        });
        Some((accepted, listener))
    })
    .boxed();
    let (reflection_v1, reflection_v1alpha) = crate::server::reflection()?;
    let serving = builder
        .layer(tower::util::option_layer(
            settings.api_keys.map(RequireApiKey::new),
        ))
        .layer(UnavailableLayer { reason })
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .serve_with_incoming_shutdown(incoming, async move {
            tokio::select! {
                () = stop.cancelled() => {}
                () = opened.cancelled() => {}
            }
        });
    let (served, store) = tokio::join!(serving, store);
    served?;
    if store.is_some() {
        tracing::info!("the database can be used now: serving");
    }
    Ok(store)
}

/// Answers every call but health checks and reflection `UNAVAILABLE`, saying why the database
/// cannot be used.
#[derive(Clone)]
struct UnavailableLayer {
    reason: Arc<std::sync::RwLock<String>>,
}

impl<S> tower::Layer<S> for UnavailableLayer {
    type Service = Unavailable<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Unavailable {
            inner,
            reason: Arc::clone(&self.reason),
        }
    }
}

/// See [`UnavailableLayer`].
#[derive(Clone)]
struct Unavailable<S> {
    inner: S,
    reason: Arc<std::sync::RwLock<String>>,
}

impl<S, B> tower::Service<Request<B>> for Unavailable<S>
where
    S: tower::Service<Request<B>, Response = Response<tonic::body::Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        if ANSWERED.iter().any(|p| request.uri().path().starts_with(p)) {
            // The clone that was made ready is the one called (tower's usual swap).
            let clone = self.inner.clone();
            let mut inner = std::mem::replace(&mut self.inner, clone);
            return Box::pin(async move { inner.call(request).await });
        }
        let reason = self
            .reason
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let status = Status::unavailable(format!(
            "the server's database cannot be used ({reason}); health says NOT_SERVING until it \
             can"
        ));
        Box::pin(async move { Ok(status.into_http()) })
    }
}
