//! What an operator sees with `grpcurl`: the service, health and reflection.

mod support;

use support::TestService;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1alpha::ServerReflectionRequest;
use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;

#[tokio::test]
async fn grpcurl_list_shows_the_customer_service_health_and_reflection() {
    let service = TestService::start().await;

    // grpcurl 1.8 asks reflection v1alpha, without a token.
    let mut reflection = ServerReflectionClient::new(service.channel.clone());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .expect("reflection answers")
        .into_inner();
    let response = responses.message().await.expect("a reply").expect("not empty");
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("expected a service list, got {response:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in [
        "distnet.customers.v1.CustomerService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
        "grpc.reflection.v1.ServerReflection",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }

    // The server at once; its API once its profile cache is warm.
    let mut health = HealthClient::new(service.channel.clone());
    let status = health
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("health answers")
        .into_inner()
        .status;
    assert_eq!(status, ServingStatus::Serving as i32, "health of the server");
    let channel = service.channel.clone();
    distnet_testkit::eventually("the API SERVING", || {
        let channel = channel.clone();
        async move {
            distnet_testkit::serving(&channel, "distnet.customers.v1.CustomerService")
                .await
                .ok()?
                .then_some(())
        }
    })
    .await;
    service.stop().await;
}

#[tokio::test]
async fn shutting_down_turns_health_not_serving_first() {
    let service = TestService::start().await;
    let mut health = HealthClient::new(service.channel.clone());
    service.stop().await;
    // After shutdown the listener is closed: the call fails outright.
    let result = health
        .check(HealthCheckRequest {
            service: "distnet.customers.v1.CustomerService".into(),
        })
        .await;
    assert!(
        result
            .map(|r| r.into_inner().status != ServingStatus::Serving as i32)
            .unwrap_or(true),
        "a stopped server must not report SERVING"
    );
}
