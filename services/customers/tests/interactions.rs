//! Contacts with customers through a real server and Postgres: visits with their
//! check-in rule, calls, and deliveries logged from logistics' events.

mod support;

use std::time::Duration;

use distnet_platform::auth::{Claims, Role};
use distnet_proto::common::v1::{LatLng, Money};
use distnet_proto::customers::v1::{
    Channel, Interaction, ListInteractionsRequest, LogInteractionRequest, MaintenanceTask,
};
use distnet_proto::events::v1::event_sink_client::EventSinkClient;
use distnet_proto::events::v1::{DeliverRequest, DeliveryCompleted, DeliveryFailed, EventEnvelope};
use distnet_testkit::Bearer;
use prost::Name as _;
use support::{Client, TestService, bad_fields, create_request, retailer};
use tonic::Code;

/// The demo store location of `support::retailer`.
const STORE: (f64, f64) = (30.657, 104.081);

async fn world() -> TestService {
    let service = TestService::start().await;
    let mut admin = service.admin();
    for (id, area, owner) in [("r-1", "area-01", "cm-001"), ("r-2", "area-02", "cm-002")] {
        admin
            .create_customer(create_request(
                &format!("create-{id}"),
                id,
                retailer(id, area, owner),
            ))
            .await
            .expect("customer created");
    }
    service
}

fn visit(request_id: &str, customer: &str, at: (f64, f64)) -> LogInteractionRequest {
    LogInteractionRequest {
        request_id: request_id.into(),
        customer: customer.into(),
        channel: Channel::Visit as i32,
        outcome: "ORDER_TAKEN".into(),
        notes: "新品陈列到位".into(),
        check_in: Some(LatLng {
            latitude: at.0,
            longitude: at.1,
        }),
        tasks: vec![
            MaintenanceTask::Display as i32,
            MaintenanceTask::ShelfTidying as i32,
            MaintenanceTask::Display as i32,
        ],
        time: None,
    }
}

fn by_customer(customer: &str) -> ListInteractionsRequest {
    ListInteractionsRequest {
        customer: customer.into(),
        ..ListInteractionsRequest::default()
    }
}

async fn list(client: &mut Client, request: ListInteractionsRequest) -> Vec<Interaction> {
    client
        .list_interactions(request)
        .await
        .expect("listed")
        .into_inner()
        .interactions
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visit_two_kilometres_from_the_store_is_flagged() {
    let service = world().await;
    let mut rep = service.as_role(Role::CustomerManager, "cm-001", &["area-01"]);
    let near = rep
        .log_interaction(visit("v-1", "customers/r-1", (STORE.0 + 0.0003, STORE.1)))
        .await
        .expect("logged")
        .into_inner();
    assert!(!near.flagged);
    assert!(near.check_in_distance_m < 50.0, "{}", near.check_in_distance_m);
    assert_eq!(near.actor, "cm-001");
    assert_eq!(near.actor_role, "customer_manager");
    // Tasks are kept once each.
    assert_eq!(
        near.tasks,
        vec![
            MaintenanceTask::Display as i32,
            MaintenanceTask::ShelfTidying as i32
        ]
    );

    // ≈2 km north of the store.
    let far = rep
        .log_interaction(visit("v-2", "customers/r-1", (STORE.0 + 0.018, STORE.1)))
        .await
        .expect("logged")
        .into_inner();
    assert!(far.flagged);
    assert!(
        (far.check_in_distance_m - 2_000.0).abs() < 30.0,
        "{}",
        far.check_in_distance_m
    );

    // A retry is the same contact, not a second one.
    let again = rep
        .log_interaction(visit("v-2", "customers/r-1", (STORE.0 + 0.018, STORE.1)))
        .await
        .expect("replayed")
        .into_inner();
    assert_eq!(again.name, far.name);

    let call = rep
        .log_interaction(LogInteractionRequest {
            request_id: "c-1".into(),
            customer: "customers/r-1".into(),
            channel: Channel::CallOut as i32,
            outcome: "NO_ANSWER".into(),
            ..LogInteractionRequest::default()
        })
        .await
        .expect("a call")
        .into_inner();

    let all = list(&mut rep, by_customer("customers/r-1")).await;
    assert_eq!(all.len(), 3);
    // Each answer is the contact as stored (its time, the server's now, to the
    // microsecond).
    for logged in [&near, &far, &call] {
        assert!(all.contains(logged), "{logged:?} not in {all:?}");
    }
    assert!(
        all.windows(2)
            .all(|w| w[0].time.as_ref().map(|t| (t.seconds, t.nanos))
                >= w[1].time.as_ref().map(|t| (t.seconds, t.nanos))),
        "newest first"
    );
    let visits = list(
        &mut rep,
        ListInteractionsRequest {
            channel: Channel::Visit as i32,
            actor: "cm-001".into(),
            page_size: 1,
            ..ListInteractionsRequest::default()
        },
    )
    .await;
    assert_eq!(visits.len(), 1);
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_are_validated_and_authorized() {
    let service = world().await;
    let mut rep = service.as_role(Role::CustomerManager, "cm-001", &["area-01"]);
    let mut no_check_in = visit("v-x", "customers/r-1", STORE);
    no_check_in.check_in = None;
    let bad = rep.log_interaction(no_check_in).await.expect_err("invalid");
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert_eq!(bad_fields(&bad), vec!["check_in".to_string()]);

    let bad = rep
        .log_interaction(LogInteractionRequest {
            request_id: "d-x".into(),
            customer: "customers/r-1".into(),
            channel: Channel::Delivery as i32,
            outcome: "DELIVERED".into(),
            tasks: vec![MaintenanceTask::Promotion as i32, 42],
            time: Some(prost_types::Timestamp {
                seconds: chrono::Utc::now().timestamp() + 86_400,
                nanos: 0,
            }),
            ..LogInteractionRequest::default()
        })
        .await
        .expect_err("invalid");
    let fields = bad_fields(&bad);
    for field in ["channel", "tasks", "tasks[1]", "time"] {
        assert!(fields.iter().any(|f| f == field), "{field} in {fields:?}");
    }

    // Roles that do not serve retailers log nothing.
    for role in [Role::Driver, Role::Dispatcher, Role::Retailer] {
        let denied = service
            .as_role(role, "someone", &["area-01"])
            .log_interaction(visit("v-r", "customers/r-1", STORE))
            .await
            .expect_err("role may not log");
        assert_eq!(denied.code(), Code::PermissionDenied, "{role:?}");
    }
    // Another area's customer does not exist for this rep.
    let hidden = rep
        .log_interaction(visit("v-o", "customers/r-2", STORE))
        .await
        .expect_err("other area");
    assert_eq!(hidden.code(), Code::NotFound);
    let unknown = rep
        .log_interaction(visit("v-u", "customers/no-such-shop", STORE))
        .await
        .expect_err("no such customer");
    assert_eq!(unknown.code(), Code::NotFound);

    rep.log_interaction(visit("v-1", "customers/r-1", STORE))
        .await
        .expect("logged");
    // Other areas' staff and other shops see none of it; the shop sees its own.
    let mut other = service.as_role(Role::CallCenterAgent, "cc-002", &["area-02"]);
    assert!(
        list(&mut other, ListInteractionsRequest::default())
            .await
            .is_empty()
    );
    let mut shop = service.client(Some(distnet_testkit::token(
        &Claims::new("shop-r-1", Role::Retailer, Duration::from_secs(600)).with_customer("r-1"),
    )));
    assert_eq!(list(&mut shop, ListInteractionsRequest::default()).await.len(), 1);
    let mut other_shop = service.client(Some(distnet_testkit::token(
        &Claims::new("shop-r-2", Role::Retailer, Duration::from_secs(600)).with_customer("r-2"),
    )));
    assert!(
        list(&mut other_shop, ListInteractionsRequest::default())
            .await
            .is_empty()
    );
    let denied = service
        .client(None)
        .list_interactions(ListInteractionsRequest::default())
        .await
        .expect_err("anonymous");
    assert_eq!(denied.code(), Code::Unauthenticated);
    service.stop().await;
}

fn envelope(id: &str, payload: prost_types::Any, event_type: String) -> EventEnvelope {
    EventEnvelope {
        event_id: id.into(),
        event_type,
        source: "logistics".into(),
        aggregate: "orders/o-1".into(),
        payload: Some(payload),
        ..EventEnvelope::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_are_logged_from_logistics_events_once() {
    let service = world().await;
    let failed = DeliveryFailed {
        order: "orders/o-1".into(),
        customer: "customers/r-1".into(),
        shipment: "shipments/s-1".into(),
        reason: "CLOSED".into(),
        failed_time: Some(prost_types::Timestamp {
            seconds: chrono::Utc::now().timestamp() - 7_200,
            nanos: 0,
        }),
        rescheduled_date: "2026-11-24".into(),
        rescheduled_half: "MORNING".into(),
    };
    let done = DeliveryCompleted {
        order: "orders/o-1".into(),
        customer: "customers/r-1".into(),
        shipment: "shipments/s-1".into(),
        cartons_delivered: 12,
        cash_collected: Some(Money {
            currency_code: "CNY".into(),
            fen: 1_234_567,
        }),
        partial: false,
        delivered_time: Some(prost_types::Timestamp {
            seconds: chrono::Utc::now().timestamp() - 3_600,
            nanos: 0,
        }),
    };
    let events = vec![
        envelope(
            "0193a5c0-0000-7000-8000-00000000000a",
            prost_types::Any::from_msg(&failed).expect("encodes"),
            DeliveryFailed::full_name(),
        ),
        envelope(
            "0193a5c0-0000-7000-8000-00000000000b",
            prost_types::Any::from_msg(&done).expect("encodes"),
            DeliveryCompleted::full_name(),
        ),
    ];
    let mut sink = EventSinkClient::with_interceptor(
        service.channel.clone(),
        Bearer(Some(distnet_testkit::token_for(Role::Service, "logistics", &[]))),
    );
    let first = sink
        .deliver(DeliverRequest {
            events: events.clone(),
        })
        .await
        .expect("delivered")
        .into_inner();
    assert_eq!(first.applied, 2);
    let again = sink
        .deliver(DeliverRequest { events })
        .await
        .expect("redelivered")
        .into_inner();
    assert_eq!((again.applied, again.duplicates), (0, 2));

    let mut rep = service.as_role(Role::CustomerManager, "cm-001", &["area-01"]);
    let deliveries = list(
        &mut rep,
        ListInteractionsRequest {
            customer: "customers/r-1".into(),
            channel: Channel::Delivery as i32,
            ..ListInteractionsRequest::default()
        },
    )
    .await;
    let outcomes: Vec<&str> = deliveries.iter().map(|i| i.outcome.as_str()).collect();
    assert_eq!(outcomes, vec!["DELIVERED", "FAILED_CLOSED"], "newest first");
    assert_eq!(deliveries[0].actor, "logistics");
    assert_eq!(deliveries[0].order, "orders/o-1");
    assert!(
        deliveries[0].notes.contains("12 cartons"),
        "{}",
        deliveries[0].notes
    );
    assert!(
        deliveries[0].notes.contains("12345.67"),
        "{}",
        deliveries[0].notes
    );
    assert!(
        deliveries[1].notes.contains("2026-11-24 morning"),
        "{}",
        deliveries[1].notes
    );
    service.stop().await;
}
