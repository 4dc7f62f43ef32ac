//! Profile changes reach subscribers as `CustomerChanged`, in order, through the
//! outbox relay and a real `EventSink` server.

mod support;

use std::time::Duration;

use distnet_platform::server::{self, ServeSpec, Shutdown};
use distnet_proto::customers::v1::{Customer, UpdateCustomerRequest};
use distnet_proto::events::v1::event_sink_server::{EventSink, EventSinkServer};
use distnet_proto::events::v1::{CustomerChanged, DeliverRequest, DeliverResponse, EventEnvelope};
use distnet_testkit::TestDb;
use support::{TestService, create_request, retailer};
use tokio::sync::mpsc;
use tonic::service::Routes;

/// A subscriber that hands every delivered event to the test.
struct RecordingSink(mpsc::UnboundedSender<EventEnvelope>);

#[tonic::async_trait]
impl EventSink for RecordingSink {
    async fn deliver(
        &self,
        request: tonic::Request<DeliverRequest>,
    ) -> Result<tonic::Response<DeliverResponse>, tonic::Status> {
        let events = request.into_inner().events;
        let applied = events.len() as i32;
        for event in events {
            let _ = self.0.send(event);
        }
        Ok(tonic::Response::new(DeliverResponse {
            applied,
            duplicates: 0,
        }))
    }
}

#[tokio::test]
async fn profile_changes_are_delivered_to_subscribers_in_order() {
    let db = TestDb::new().await.expect("database");
    let mut settings = distnet_testkit::settings(&db.url);

    let (sender, mut delivered) = mpsc::unbounded_channel();
    let sink_shutdown = Shutdown::new();
    let sink = server::serve(ServeSpec {
        domain: "test.distnet",
        grpc_services: &["distnet.events.v1.EventSink"],
        routes: Routes::new(EventSinkServer::new(RecordingSink(sender))),
        listener: tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind"),
        settings: &settings,
        shutdown: sink_shutdown.clone(),
    })
    .await
    .expect("sink serves");
    settings
        .events
        .subscriptions
        .insert("CustomerChanged".into(), vec!["logistics".into()]);
    settings.services.logistics.url = format!("http://{}", sink.local_addr);

    let service = TestService::start_with(&settings).await;
    let mut admin = service.admin();
    let created = admin
        .create_customer(create_request("c", "r-1", retailer("甲", "area-01", "cm-1")))
        .await
        .expect("created")
        .into_inner();
    admin
        .update_customer(UpdateCustomerRequest {
            request_id: "u".into(),
            customer: Some(Customer {
                name: created.name.clone(),
                display_name: "乙".into(),
                ..Customer::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["display_name".into()],
            }),
        })
        .await
        .expect("updated");

    let mut names = Vec::new();
    for _ in 0..2 {
        let event = tokio::time::timeout(Duration::from_secs(30), delivered.recv())
            .await
            .expect("delivered in time")
            .expect("an event");
        assert_eq!(event.event_type, "distnet.events.v1.CustomerChanged");
        assert_eq!(event.source, "customers");
        assert_eq!(event.aggregate, "customers/r-1");
        let changed: CustomerChanged = event.payload.expect("payload").to_msg().expect("decodes");
        let customer = changed.customer.expect("customer");
        assert_eq!(
            customer.contact_phone, "13812345678",
            "subscribers get the full profile"
        );
        names.push(customer.display_name);
    }
    assert_eq!(names, vec!["甲", "乙"], "in the order of the changes");

    service.stop().await;
    sink_shutdown.trigger();
    sink.wait().await.expect("sink stops");
}
