//! The standard gRPC services the server runs beside its own: health checking (the server and
//! every service report serving) and reflection (v1 and v1alpha list and describe the services).

use tonic::Code;

use crate::fixtures::SERVICES;
use crate::harness::Server;

/// Asks reflection `$version` (`v1` or `v1alpha`: alike but for their generated types) of
/// `$server` for its services and for the file that describes `assay.v1.MetricService`: the
/// names of the services and the number of file descriptors.
macro_rules! reflect {
    ($version:ident, $server:expr) => {{
        use tonic_reflection::pb::$version::{
            ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
            server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
        };
        let request = |message| ServerReflectionRequest {
            host: String::new(),
            message_request: Some(message),
        };
        let requests = vec![
            request(MessageRequest::ListServices(String::new())),
            request(MessageRequest::FileContainingSymbol(
                "assay.v1.MetricService".into(),
            )),
        ];
        let mut responses = ServerReflectionClient::new($server.channel())
            .server_reflection_info(futures::stream::iter(requests))
            .await
            .expect("reflection")
            .into_inner();
        let mut answers = Vec::new();
        while let Some(response) = responses.message().await.expect("response") {
            answers.push(response.message_response);
        }
        let [
            Some(MessageResponse::ListServicesResponse(list)),
            Some(MessageResponse::FileDescriptorResponse(files)),
        ] = <[_; 2]>::try_from(answers).expect("two answers")
        else {
            panic!("not a service list and a descriptor")
        };
        let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
        (names, files.file_descriptor_proto.len())
    }};
}

#[tokio::test]
async fn health_reports_serving_for_the_server_and_every_service() {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    let server = Server::start().await;
    let mut health = HealthClient::new(server.channel());
    for service in [
        "",
        "assay.v1.MetricService",
        "assay.v1.BehaviorService",
        "assay.v1.EndpointService",
        "assay.v1.TestSetService",
        "assay.v1.TestExecutionService",
    ] {
        let response = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("check")
            .into_inner();
        assert_eq!(
            response.status,
            ServingStatus::Serving as i32,
            "service {service:?}"
        );
    }
    let status = health
        .check(HealthCheckRequest {
            service: "assay.v1.NoSuchService".into(),
        })
        .await
        .expect_err("an unknown service has a health status");
    assert_eq!(status.code(), Code::NotFound);
}

#[tokio::test]
async fn reflection_v1_lists_every_service_and_describes_them() {
    let server = Server::start().await;
    let (services, descriptors) = reflect!(v1, server);
    assert_lists(&services, SERVICES);
    assert_lists(&services, &["grpc.reflection.v1.ServerReflection"]);
    // Described (scorers are generated from it) but served by users' scorers, not by Assay.
    assert!(
        !services.iter().any(|s| s == "assay.v1.ScorerService"),
        "{services:?}"
    );
    assert!(descriptors > 0, "no file descriptor for a service");
}

#[tokio::test]
async fn reflection_v1alpha_lists_every_service_and_describes_them() {
    let server = Server::start().await;
    let (services, descriptors) = reflect!(v1alpha, server);
    assert_lists(&services, SERVICES);
    assert!(descriptors > 0, "no file descriptor for a service");
}

#[track_caller]
fn assert_lists(services: &[String], expected: &[&str]) {
    for service in expected {
        assert!(
            services.iter().any(|s| s == service),
            "{service} is not listed in {services:?}"
        );
    }
}
