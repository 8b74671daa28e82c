//! The connection to the server and the generated clients on it.

use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::service::interceptor::{InterceptedService, Interceptor};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use super::{CliError, Global};
use crate::auth::ApiKey;
use crate::proto::v1::{
    behavior_service_client::BehaviorServiceClient, endpoint_service_client::EndpointServiceClient,
    metric_service_client::MetricServiceClient,
    test_execution_service_client::TestExecutionServiceClient,
    test_set_service_client::TestSetServiceClient,
};
use crate::tls::read_pem;

/// Largest message sent or received (an `AddTests` call or its answer can be large); imports go
/// in pieces far smaller.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// The TLS settings of the client: the system's roots, or `--ca-cert`; `--client-cert` and
/// `--client-key` for mutual TLS.
fn client_tls(global: &Global) -> Result<ClientTlsConfig, CliError> {
    let mut tls = ClientTlsConfig::new();
    tls = match &global.ca_cert {
        Some(ca) => tls.ca_certificate(Certificate::from_pem(
            read_pem(ca, "--ca-cert").map_err(CliError::Usage)?,
        )),
        None => tls.with_native_roots(),
    };
    match (&global.client_cert, &global.client_key) {
        (Some(cert), Some(key)) => {
            let cert = read_pem(cert, "--client-cert").map_err(CliError::Usage)?;
            let key = read_pem(key, "--client-key").map_err(CliError::Usage)?;
            Ok(tls.identity(Identity::from_pem(cert, key)))
        }
        (None, None) => Ok(tls),
        _ => Err(CliError::usage(
            "--client-cert and --client-key go together",
        )),
    }
}

/// Sends the API key, when there is one, with every call as `authorization: Bearer KEY`.
#[derive(Clone, Debug, Default)]
pub struct SendApiKey(Option<AsciiMetadataValue>);

impl SendApiKey {
    /// Sends `key`.
    pub fn new(key: &ApiKey) -> SendApiKey {
        // A key is printable ASCII (checked when parsed), so it is always a valid header value.
        let mut value = MetadataValue::try_from(format!("Bearer {}", key.expose()))
            .expect("an API key is printable ASCII");
        // Kept out of HPACK's table and of debug output.
        value.set_sensitive(true);
        SendApiKey(Some(value))
    }
}

impl Interceptor for SendApiKey {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// The transport of every client: the channel, with the API key added to each call.
pub type Transport = InterceptedService<Channel, SendApiKey>;

/// One connection to the server, shared by the clients of each service.
pub struct Clients {
    transport: Transport,
}

impl Clients {
    /// The clients of a channel already open (an embedding program or a test's own server),
    /// sending no key.
    pub fn on(channel: Channel) -> Clients {
        Clients::with_key(channel, SendApiKey::default())
    }

    /// The clients of a channel already open, sending `key` with every call.
    pub fn with_key(channel: Channel, key: SendApiKey) -> Clients {
        Clients {
            transport: InterceptedService::new(channel, key),
        }
    }

    /// Checks the URL of `--server`, then connects (with TLS for `https://`); every call sends
    /// `--api-key`, if given.
    pub async fn connect(global: &Global) -> Result<Clients, CliError> {
        Clients::connect_to(global, global.server_url()).await
    }

    /// Connects to the server at `url` with the key and TLS settings of `global`.
    pub async fn connect_to(global: &Global, url: &str) -> Result<Clients, CliError> {
        let key = global
            .api_key
            .as_ref()
            .map(SendApiKey::new)
            .unwrap_or_default();
        let mut endpoint = Clients::endpoint(url)?;
        if endpoint.uri().scheme_str() == Some("https") {
            endpoint = endpoint
                .tls_config(client_tls(global)?)
                .map_err(|e| CliError::usage(format!("TLS settings: {e}")))?;
        } else if global.ca_cert.is_some() || global.client_cert.is_some() {
            return Err(CliError::usage(format!(
                "--ca-cert and --client-cert need an https:// server, not {url:?}"
            )));
        }
        endpoint
            .connect()
            .await
            .map(|channel| Clients::with_key(channel, key))
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
    pub fn health(&self) -> tonic_health::pb::health_client::HealthClient<Transport> {
        tonic_health::pb::health_client::HealthClient::new(self.transport.clone())
    }

    /// `MetricService`.
    pub fn metrics(&self) -> MetricServiceClient<Transport> {
        MetricServiceClient::new(self.transport.clone())
    }

    /// `BehaviorService`.
    pub fn behaviors(&self) -> BehaviorServiceClient<Transport> {
        BehaviorServiceClient::new(self.transport.clone())
    }

    /// `EndpointService`.
    pub fn endpoints(&self) -> EndpointServiceClient<Transport> {
        EndpointServiceClient::new(self.transport.clone())
    }

    /// `TestSetService`, with room for bulk imports.
    pub fn test_sets(&self) -> TestSetServiceClient<Transport> {
        TestSetServiceClient::new(self.transport.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }

    /// `TestExecutionService`; a page of results of long outputs can be large.
    pub fn execution(&self) -> TestExecutionServiceClient<Transport> {
        TestExecutionServiceClient::new(self.transport.clone())
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
