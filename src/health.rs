//! `grpc.health.v1`: every service of Assay is `SERVING` while its database can be read and
//! written, and `NOT_SERVING` while it cannot (so a load balancer sends requests to replicas that
//! can serve them; the log says why: not answering, corrupt, read-only, full) or once the server
//! is shutting down.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tonic::server::NamedService;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::api::{BehaviorApi, EndpointApi, ExecutionApi, MetricApi, TestSetApi};
use crate::proto::v1::{
    behavior_service_server::BehaviorServiceServer, endpoint_service_server::EndpointServiceServer,
    metric_service_server::MetricServiceServer,
    test_execution_service_server::TestExecutionServiceServer,
    test_set_service_server::TestSetServiceServer,
};
use crate::store::{Store, WriteFaults};

/// How often the database is asked whether it answers.
const CHECK_EVERY: Duration = Duration::from_secs(1);
/// How long an answer may take before the database counts as gone.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a failed write of results keeps the server `NOT_SERVING`: the health check's own
/// write may succeed where larger ones fail (a full disk), so the failure counts for a while.
pub const FAULT_HOLD: Duration = Duration::from_secs(30);

/// The names the health service knows: the server as a whole (`""`) and each service.
const SERVICES: [&str; 6] = [
    "",
    <MetricServiceServer<MetricApi> as NamedService>::NAME,
    <BehaviorServiceServer<BehaviorApi> as NamedService>::NAME,
    <EndpointServiceServer<EndpointApi> as NamedService>::NAME,
    <TestSetServiceServer<TestSetApi> as NamedService>::NAME,
    <TestExecutionServiceServer<ExecutionApi> as NamedService>::NAME,
];

/// Sets the status of every service at once.
#[derive(Clone)]
pub struct Health {
    reporter: HealthReporter,
}

impl Health {
    /// Reports through `reporter` (from `tonic_health::server::health_reporter`).
    pub fn new(reporter: HealthReporter) -> Self {
        Health { reporter }
    }

    /// Every service at `status`.
    pub async fn set(&self, status: ServingStatus) {
        for service in SERVICES {
            self.reporter.set_service_status(service, status).await;
        }
    }

    /// Asks the database every second whether it can be read and written, and says so, until
    /// `stop`; a write of results that failed (told through `faults`) makes the server
    /// `NOT_SERVING` for [`FAULT_HOLD`] too. Each change is logged with why.
    pub fn follow_store(
        &self,
        store: Arc<dyn Store>,
        faults: WriteFaults,
        stop: CancellationToken,
    ) {
        let health = self.clone();
        tokio::spawn(async move {
            let mut serving = true;
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(CHECK_EVERY) => {}
                }
                let answered = match tokio::time::timeout(CHECK_TIMEOUT, store.ping()).await {
                    Ok(Ok(())) => match faults.recent(FAULT_HOLD) {
                        None => Ok(()),
                        Some(error) => Err(format!("a write failed: {error}")),
                    },
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err(format!("no answer within {CHECK_TIMEOUT:?}")),
                };
                // The stop may have come while the database was asked: it has the last word.
                if stop.is_cancelled() || answered.is_ok() == serving {
                    continue;
                }
                serving = answered.is_ok();
                match answered {
                    Ok(()) => tracing::info!("the database answers again: serving"),
                    Err(error) => {
                        tracing::error!(%error, "the database cannot serve: not serving")
                    }
                }
                let status = if serving {
                    ServingStatus::Serving
                } else {
                    ServingStatus::NotServing
                };
                health.set(status).await;
            }
        });
    }
}
