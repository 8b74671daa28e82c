//! The standard gRPC services the server runs beside its own: health checking (the server and
//! every service report serving) and reflection (v1 and v1alpha list and describe the services).

use tonic::Code;

use crate::fixtures::SERVICES;
use crate::harness::Server;

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
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let server = Server::start().await;
    let mut client = ServerReflectionClient::new(server.channel());
    let requests = vec![
        ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        },
        ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::FileContainingSymbol(
                "assay.v1.MetricService".into(),
            )),
        },
    ];
    let mut responses = client
        .server_reflection_info(futures::stream::iter(requests))
        .await
        .expect("reflection")
        .into_inner();

    let first = responses
        .message()
        .await
        .expect("response")
        .expect("a response");
    let Some(MessageResponse::ListServicesResponse(list)) = first.message_response else {
        panic!("not a service list: {first:?}")
    };
    let names: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
    for service in SERVICES
        .iter()
        .chain(&["grpc.reflection.v1.ServerReflection"])
    {
        assert!(
            names.contains(service),
            "{service} is not listed in {names:?}"
        );
    }

    let second = responses
        .message()
        .await
        .expect("response")
        .expect("a response");
    let Some(MessageResponse::FileDescriptorResponse(files)) = second.message_response else {
        panic!("no descriptor: {second:?}")
    };
    assert!(!files.file_descriptor_proto.is_empty());
}

#[tokio::test]
async fn reflection_v1alpha_lists_every_service() {
    use tonic_reflection::pb::v1alpha::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let server = Server::start().await;
    let mut client = ServerReflectionClient::new(server.channel());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = client
        .server_reflection_info(futures::stream::iter(vec![request]))
        .await
        .expect("reflection")
        .into_inner();
    let first = responses
        .message()
        .await
        .expect("response")
        .expect("a response");
    let Some(MessageResponse::ListServicesResponse(list)) = first.message_response else {
        panic!("not a service list: {first:?}")
    };
    let names: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
    for service in SERVICES {
        assert!(
            names.contains(service),
            "{service} is not listed in {names:?}"
        );
    }
}
