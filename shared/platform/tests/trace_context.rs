//! W3C trace context crosses a gRPC hop: a server continues the caller's trace, and
//! what it writes next (an outgoing call, an outbox event) carries the same trace.

use distnet_platform::auth::Role;
use distnet_platform::server::{self, ServeSpec, Shutdown};
use distnet_platform::settings::TelemetrySettings;
use distnet_platform::telemetry;
use distnet_proto::events::v1::event_sink_client::EventSinkClient;
use distnet_proto::events::v1::event_sink_server::{EventSink, EventSinkServer};
use distnet_proto::events::v1::{DeliverRequest, DeliverResponse};
use distnet_testkit::Bearer;
use tokio::sync::mpsc;
use tonic::service::Routes;

/// Reports the trace context current inside the handler.
struct TraceProbe(mpsc::UnboundedSender<std::collections::HashMap<String, String>>);

#[tonic::async_trait]
impl EventSink for TraceProbe {
    async fn deliver(
        &self,
        _request: tonic::Request<DeliverRequest>,
    ) -> Result<tonic::Response<DeliverResponse>, tonic::Status> {
        let _ = self.0.send(telemetry::current_trace_context());
        Ok(tonic::Response::new(DeliverResponse::default()))
    }
}

#[tokio::test]
async fn a_server_continues_the_callers_trace() {
    let _telemetry = telemetry::init("trace-test", &TelemetrySettings::default());
    let settings = distnet_testkit::settings("postgres://unused@127.0.0.1:1/unused");
    let (sender, mut seen) = mpsc::unbounded_channel();
    let shutdown = Shutdown::new();
    let handle = server::serve(ServeSpec {
        domain: "test.distnet",
        grpc_services: &["distnet.events.v1.EventSink"],
        access: &[distnet_platform::authz::EVENT_SINK],
        routes: Routes::new(EventSinkServer::new(TraceProbe(sender))),
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

    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let mut request = tonic::Request::new(DeliverRequest::default());
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{trace_id}-00f067aa0ba902b7-01")
            .parse()
            .expect("header"),
    );
    client.deliver(request).await.expect("delivered");

    let context = seen.recv().await.expect("the handler ran");
    let traceparent = context.get("traceparent").expect("a current trace context");
    assert!(
        traceparent.starts_with(&format!("00-{trace_id}-")),
        "the handler's work continues the caller's trace: {traceparent}"
    );
    assert!(
        !traceparent.contains("00f067aa0ba902b7"),
        "under a span of its own, not the caller's"
    );

    // Without a caller's context the server starts a fresh trace.
    client
        .deliver(DeliverRequest::default())
        .await
        .expect("delivered");
    let fresh = seen.recv().await.expect("the handler ran");
    let fresh = fresh.get("traceparent").expect("a trace of its own");
    assert!(!fresh.contains(trace_id));

    shutdown.trigger();
    handle.wait().await.expect("stops");
}
