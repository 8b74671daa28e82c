//! The connection to the server and the generated clients on it.

use tonic::transport::{Channel, Endpoint};

use super::CliError;
use crate::proto::v1::{
    behavior_service_client::BehaviorServiceClient, endpoint_service_client::EndpointServiceClient,
    metric_service_client::MetricServiceClient,
    test_execution_service_client::TestExecutionServiceClient,
    test_set_service_client::TestSetServiceClient,
};

/// Largest message sent or received (an `AddTests` call or its answer can be large); imports go
/// in pieces far smaller.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// One connection to the server, shared by the clients of each service.
pub struct Clients {
    channel: Channel,
}

impl Clients {
    /// The clients of a channel already open (an embedding program or a test's own server).
    pub fn on(channel: Channel) -> Clients {
        Clients { channel }
    }

    /// Checks the URL, then connects.
    pub async fn connect(url: &str) -> Result<Clients, CliError> {
        Clients::endpoint(url)?
            .connect()
            .await
            .map(Clients::on)
            .map_err(|e| {
                // The transport error alone says "transport error"; its causes say why.
                let mut causes = vec![e.to_string()];
                let mut source = std::error::Error::source(&e);
                while let Some(cause) = source {
                    if causes.last() != Some(&cause.to_string()) {
                        causes.push(cause.to_string());
                    }
                    source = cause.source();
                }
                CliError::Connect(url.to_string(), causes.join(": "))
            })
    }

    /// The endpoint of a server URL; `HOST:PORT` without a scheme means `http://HOST:PORT`. A
    /// malformed URL is a usage error.
    pub fn endpoint(url: &str) -> Result<Endpoint, CliError> {
        let full = if url.contains("://") {
            url.to_string()
        } else {
            format!("http://{url}")
        };
        Endpoint::from_shared(full)
            .map_err(|e| CliError::usage(format!("--server {url:?} is not a valid URL: {e}")))
    }

    /// grpc.health.v1 `Health`.
    pub fn health(&self) -> tonic_health::pb::health_client::HealthClient<Channel> {
        tonic_health::pb::health_client::HealthClient::new(self.channel.clone())
    }

    /// `MetricService`.
    pub fn metrics(&self) -> MetricServiceClient<Channel> {
        MetricServiceClient::new(self.channel.clone())
    }

    /// `BehaviorService`.
    pub fn behaviors(&self) -> BehaviorServiceClient<Channel> {
        BehaviorServiceClient::new(self.channel.clone())
    }

    /// `EndpointService`.
    pub fn endpoints(&self) -> EndpointServiceClient<Channel> {
        EndpointServiceClient::new(self.channel.clone())
    }

    /// `TestSetService`, with room for bulk imports.
    pub fn test_sets(&self) -> TestSetServiceClient<Channel> {
        TestSetServiceClient::new(self.channel.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }

    /// `TestExecutionService`; a page of results of long outputs can be large.
    pub fn execution(&self) -> TestExecutionServiceClient<Channel> {
        TestExecutionServiceClient::new(self.channel.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_without_a_scheme_is_plain_http() {
        let endpoint = Clients::endpoint("127.0.0.1:50051").expect("an endpoint");
        assert_eq!(endpoint.uri().to_string(), "http://127.0.0.1:50051/");
        let endpoint = Clients::endpoint("https://assay.example:443").expect("an endpoint");
        assert_eq!(endpoint.uri().scheme_str(), Some("https"));
        assert!(Clients::endpoint("http://bad host").is_err());
    }
}
