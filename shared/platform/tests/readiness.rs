//! A service that is not ready yet (`ServeSpec::ready`, e.g. warming its caches)
//! reports its gRPC services NOT_SERVING while the server itself (`""`, what liveness
//! probes ask) is SERVING; once ready, SERVING — unless it is already shutting down.

use std::time::Duration;

use distnet_platform::server::{self, ServeSpec, ServerHandle, Shutdown};
use distnet_proto::events::v1::event_sink_server::{EventSink, EventSinkServer};
use distnet_proto::events::v1::{DeliverRequest, DeliverResponse};
use distnet_testkit::serving;
use tokio::sync::oneshot;
use tonic::service::Routes;
use tonic::transport::Channel;

const SINK: &str = "distnet.events.v1.EventSink";

struct Sink;

#[tonic::async_trait]
impl EventSink for Sink {
    async fn deliver(
        &self,
        _request: tonic::Request<DeliverRequest>,
    ) -> Result<tonic::Response<DeliverResponse>, tonic::Status> {
        Ok(tonic::Response::new(DeliverResponse::default()))
    }
}

/// A server that is ready when the returned sender is used (or dropped).
async fn not_ready_yet(shutdown: &Shutdown) -> (ServerHandle, Channel, oneshot::Sender<()>) {
    let mut settings = distnet_testkit::settings("postgres://unused@127.0.0.1:1/unused");
    settings.server.shutdown_grace_ms = 3_000;
    let (ready, becomes_ready) = oneshot::channel::<()>();
    let handle = server::serve(ServeSpec {
        domain: "test.distnet",
        grpc_services: &[SINK],
        access: &[distnet_platform::authz::EVENT_SINK],
        routes: Routes::new(EventSinkServer::new(Sink)),
        listener: tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind"),
        settings: &settings,
        shutdown: shutdown.clone(),
        ready: Some(Box::pin(async move {
            let _ = becomes_ready.await;
        })),
    })
    .await
    .expect("serves");
    let channel = distnet_testkit::channel(handle.local_addr)
        .await
        .expect("connect");
    (handle, channel, ready)
}

/// Whether `service` is SERVING, once that stops changing for a moment (or after 5 s).
async fn settled(channel: &Channel, service: &str, want: bool) -> bool {
    let until = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let now = serving(channel, service).await.expect("health answers");
        if now == want || tokio::time::Instant::now() > until {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_services_are_serving_once_ready_and_the_server_before() {
    let shutdown = Shutdown::new();
    let (handle, channel, ready) = not_ready_yet(&shutdown).await;
    for _ in 0..3 {
        assert!(serving(&channel, "").await.expect("health"), "alive");
        assert!(!serving(&channel, SINK).await.expect("health"), "not ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    ready.send(()).expect("still waiting");
    assert!(settled(&channel, SINK, true).await, "ready");
    assert!(serving(&channel, "").await.expect("health"));

    shutdown.trigger();
    assert!(!settled(&channel, SINK, false).await, "shutting down");
    assert!(!serving(&channel, "").await.expect("health"));
    handle.wait().await.expect("stops");
}

#[tokio::test]
async fn a_service_shutting_down_stays_not_serving_when_it_becomes_ready() {
    let shutdown = Shutdown::new();
    let (handle, channel, ready) = not_ready_yet(&shutdown).await;
    shutdown.trigger();
    assert!(!settled(&channel, "", false).await, "shutting down");
    // Within the shutdown grace the server still answers health.
    let _ = ready.send(());
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!serving(&channel, SINK).await.expect("health"));
    }
    handle.wait().await.expect("stops");
}
