//! Profile changes reach subscribers as `CustomerChanged`, in order, through the
//! outbox relay and a real `EventSink` server.

mod support;

use std::time::Duration;

use distnet_proto::customers::v1::{Customer, UpdateCustomerRequest};
use distnet_proto::events::v1::CustomerChanged;
use distnet_testkit::{EventRecorder, TestDb};
use support::{TestService, create_request, retailer};

#[tokio::test]
async fn profile_changes_are_delivered_to_subscribers_in_order() {
    let db = TestDb::new().await.expect("database");
    let mut settings = distnet_testkit::settings(&db.url);
    let mut recorder = EventRecorder::start(&settings).await.expect("recorder");
    settings
        .events
        .subscriptions
        .insert("CustomerChanged".into(), vec!["logistics".into()]);
    settings.services.logistics.url = format!("http://{}", recorder.addr);
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
        let event = recorder
            .next(Duration::from_secs(30))
            .await
            .expect("delivered in time");
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
    recorder.stop().await;
}

/// A subscriber that accepts connections and never answers (a hung process, a
/// black-holed network) holds back only its own queue: the other subscriber gets the
/// event while the hung one's delivery is still waiting for its answer.
#[tokio::test]
async fn a_subscriber_that_never_answers_does_not_hold_back_the_others() {
    let db = TestDb::new().await.expect("database");
    let mut settings = distnet_testkit::settings(&db.url);
    let mut recorder = EventRecorder::start(&settings).await.expect("recorder");
    let hung = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let hung_addr = hung.local_addr().expect("addr");
    let held = tokio::spawn(async move {
        // Connections are accepted and kept open; not a byte is ever written.
        let mut held = Vec::new();
        while let Ok((socket, _)) = hung.accept().await {
            held.push(socket);
        }
    });
    // "accreditation" sorts first: a relay going subscriber by subscriber would wait
    // out its call timeout before delivering to "logistics".
    settings.events.subscriptions.insert(
        "CustomerChanged".into(),
        vec!["accreditation".into(), "logistics".into()],
    );
    settings.services.accreditation.url = format!("http://{hung_addr}");
    settings.services.logistics.url = format!("http://{}", recorder.addr);
    let service = TestService::start_with(&settings).await;
    service
        .admin()
        .create_customer(create_request("c", "r-1", retailer("甲", "area-01", "cm-1")))
        .await
        .expect("created");

    let event = recorder
        .next(Duration::from_secs(30))
        .await
        .expect("delivered to logistics");
    assert_eq!(event.aggregate, "customers/r-1");
    let pool = sqlx::PgPool::connect(&db.url).await.expect("database");
    let attempts: Vec<i32> = sqlx::query_scalar(
        "SELECT attempts FROM customers.outbox_pending WHERE subscriber = 'accreditation'",
    )
    .fetch_all(&pool)
    .await
    .expect("pending deliveries");
    assert_eq!(
        attempts,
        vec![0],
        "accreditation's delivery is still waiting for its first answer"
    );

    held.abort();
    pool.close().await;
    service.stop().await;
    recorder.stop().await;
}
