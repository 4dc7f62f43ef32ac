//! A call's deadline reaches its handler: what the handler passes on to the calls it
//! makes (`deadline::budget`) is what is left of the caller's `grpc-timeout`, or of
//! the server's `request_timeout_ms` when the caller set none or a longer one.

use std::time::Duration;

use distnet_platform::auth::Role;
use distnet_platform::deadline;
use distnet_platform::server::{self, ServeSpec, Shutdown};
use distnet_proto::events::v1::event_sink_client::EventSinkClient;
use distnet_proto::events::v1::event_sink_server::{EventSink, EventSinkServer};
use distnet_proto::events::v1::{DeliverRequest, DeliverResponse};
use distnet_testkit::Bearer;
use tokio::sync::mpsc;
use tonic::service::Routes;

/// Reports the budget a downstream call made from inside the handler would get.
struct DeadlineProbe(mpsc::UnboundedSender<Duration>);

#[tonic::async_trait]
impl EventSink for DeadlineProbe {
    async fn deliver(
        &self,
        _request: tonic::Request<DeliverRequest>,
    ) -> Result<tonic::Response<DeliverResponse>, tonic::Status> {
        let _ = self.0.send(deadline::budget(Duration::from_secs(60)));
        Ok(tonic::Response::new(DeliverResponse::default()))
    }
}

#[tokio::test]
async fn the_callers_deadline_is_what_the_handler_passes_on() {
    let mut settings = distnet_testkit::settings("postgres://unused@127.0.0.1:1/unused");
    settings.server.request_timeout_ms = 5_000;
    let (sender, mut seen) = mpsc::unbounded_channel();
    let shutdown = Shutdown::new();
    let handle = server::serve(ServeSpec {
        domain: "test.distnet",
        grpc_services: &["distnet.events.v1.EventSink"],
        access: &[distnet_platform::authz::EVENT_SINK],
        routes: Routes::new(EventSinkServer::new(DeadlineProbe(sender))),
        listener: tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind"),
        settings: &settings,
        shutdown: shutdown.clone(),
        ready: None,
    })
    .await
    .expect("serves");
    let channel = distnet_testkit::channel(handle.local_addr)
        .await
        .expect("connect");
    let token = distnet_testkit::token_for(Role::Service, "caller", &[]);
    let mut client = EventSinkClient::with_interceptor(channel, Bearer(Some(token)));

    // The caller allows 800 ms: downstream gets at most that.
    let mut request = tonic::Request::new(DeliverRequest::default());
    request.set_timeout(Duration::from_millis(800));
    client.deliver(request).await.expect("delivered");
    let budget = seen.recv().await.expect("the handler ran");
    assert!(
        budget <= Duration::from_millis(800) && budget > Duration::from_millis(300),
        "{budget:?}"
    );

    // No caller deadline, or a longer one: the server's own limit.
    for timeout in [None, Some(Duration::from_secs(30))] {
        let mut request = tonic::Request::new(DeliverRequest::default());
        if let Some(timeout) = timeout {
            request.set_timeout(timeout);
        }
        client.deliver(request).await.expect("delivered");
        let budget = seen.recv().await.expect("the handler ran");
        assert!(
            budget <= Duration::from_secs(5) && budget > Duration::from_secs(4),
            "{timeout:?}: {budget:?}"
        );
    }

    shutdown.trigger();
    handle.wait().await.expect("stops");
}
