//! `assay health`: whether the server serves, as grpc.health.v1 tells it (the overall status):
//! what a container's health check or a load balancer's probe asks.

use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;

use super::CliError;
use super::args::Global;
use super::client::Clients;
use super::output::line;

/// Prints the server's status; `NotServing` (exit 1) unless it is SERVING.
pub async fn run(global: &Global) -> Result<(), CliError> {
    let clients = Clients::connect(global).await?;
    let status = clients
        .health()
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await?
        .into_inner()
        .status();
    let name = status.as_str_name();
    if status != ServingStatus::Serving {
        return Err(CliError::NotServing(name.to_string()));
    }
    line(name)?;
    Ok(())
}
