//! A subscriber down while orders are placed: logistics is stopped, the call center
//! places 60 orders and cancels 6 of them, logistics comes back on its address, and
//! every event arrives exactly once in effect — a shipment for each order still
//! standing, the cancelled ones cancelled, none twice.

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;

use distnet_platform::auth::Role;
use distnet_platform::clock::ManualClock;
use distnet_platform::server::{ServerHandle, Shutdown};
use distnet_proto::accreditation::v1::{LicenseStatus, Standing};
use distnet_proto::allocation::v1::allocation_service_client::AllocationServiceClient;
use distnet_proto::allocation::v1::{
    CancelOrderRequest, Channel as OrderChannel, PlaceOrderLine, PlaceOrderRequest, Product,
    UpsertProductRequest,
};
use distnet_proto::common::v1::{LatLng, LocalTimeWindow, Money, TimeOfDay};
use distnet_proto::customers::v1::customer_service_client::CustomerServiceClient;
use distnet_proto::customers::v1::{CreateCustomerRequest, Customer, CustomerFormat, Settlement};
use distnet_proto::events::v1::event_sink_client::EventSinkClient;
use distnet_proto::events::v1::{DeliverRequest, EventEnvelope, StandingChanged};
use distnet_proto::logistics::v1::logistics_service_client::LogisticsServiceClient;
use distnet_proto::logistics::v1::{ListShipmentsRequest, ShipmentStatus};
use distnet_testkit::TestDb;
use prost::Name as _;
use support::{
    DEPOT, bearer, channel_for, chengdu_depot_and_inner_zone, eventually, rid, tuesday_morning, wired,
};
use tonic::Code;

const RETAILERS: usize = 20;
const ORDERS_EACH: usize = 3;

async fn start_logistics(
    settings: &distnet_platform::Settings,
    addr: std::net::SocketAddr,
    clock: &ManualClock,
) -> (ServerHandle, Shutdown) {
    let shutdown = Shutdown::new();
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .expect("logistics address");
    let handle =
        distnet_logistics::serve_with_clock(settings, listener, shutdown.clone(), Arc::new(clock.clone()))
            .await
            .expect("logistics");
    (handle, shutdown)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_for_a_subscriber_that_was_down_arrive_once_each_when_it_returns() {
    let db = TestDb::new().await.expect("database");
    let mut settings = distnet_testkit::settings(&db.url);
    wired(&mut settings);
    settings.events.relay_max_backoff_ms = 300;
    let bind = || tokio::net::TcpListener::bind("127.0.0.1:0");
    let (customers_l, allocation_l, logistics_l) = (
        bind().await.expect("bind"),
        bind().await.expect("bind"),
        bind().await.expect("bind"),
    );
    let logistics_addr = logistics_l.local_addr().expect("addr");
    drop(logistics_l);
    settings.services.customers.url = format!("http://{}", customers_l.local_addr().expect("addr"));
    settings.services.allocation.url = format!("http://{}", allocation_l.local_addr().expect("addr"));
    settings.services.logistics.url = format!("http://{logistics_addr}");
    // Accreditation is not running here: its subscriptions would only queue.
    settings.retain_subscribers(|service, _| service != distnet_accreditation::SERVICE);
    let shutdown = Shutdown::new();
    let clock = ManualClock::new(tuesday_morning());
    let customers = distnet_customers::serve(&settings, customers_l, shutdown.clone())
        .await
        .expect("customers");
    let allocation = distnet_allocation::serve_with_clock(
        &settings,
        allocation_l,
        shutdown.clone(),
        Arc::new(clock.clone()),
    )
    .await
    .expect("allocation");
    let customers_channel = distnet_testkit::channel(customers.local_addr)
        .await
        .expect("connect");
    let allocation_channel = distnet_testkit::channel(allocation.local_addr)
        .await
        .expect("connect");

    // Logistics up first: the depot and its zone for area-01.
    let (logistics, logistics_stop) = start_logistics(&settings, logistics_addr, &clock).await;
    let logistics_channel = distnet_testkit::channel(logistics_addr).await.expect("connect");
    let mut dispatcher = LogisticsServiceClient::new(channel_for(
        &logistics_channel,
        bearer(Role::Dispatcher, "disp-1", &[], Some("chengdu")),
    ));
    chengdu_depot_and_inner_zone(&mut dispatcher).await;

    // The retailers, and their standings as accreditation would publish them.
    let admin = bearer(Role::Admin, "admin-1", &[], None);
    let mut directory = CustomerServiceClient::new(channel_for(&customers_channel, admin.clone()));
    let mut events = Vec::new();
    for i in 0..RETAILERS {
        let id = format!("sd-{i:02}");
        directory
            .create_customer(CreateCustomerRequest {
                request_id: rid(),
                customer_id: id.clone(),
                customer: Some(Customer {
                    display_name: format!("店{i}"),
                    format: CustomerFormat::Grocery as i32,
                    settlement: Settlement::ESettlement as i32,
                    area_id: "area-01".into(),
                    owner_id: "cm-1".into(),
                    location: Some(LatLng {
                        latitude: DEPOT.0 + 0.001 * i as f64,
                        longitude: DEPOT.1 + 0.01,
                    }),
                    receiving_window: Some(LocalTimeWindow {
                        start: Some(TimeOfDay { hours: 8, minutes: 0 }),
                        end: Some(TimeOfDay {
                            hours: 17,
                            minutes: 0,
                        }),
                        time_zone: "Asia/Shanghai".into(),
                    }),
                    ..Customer::default()
                }),
            })
            .await
            .expect("customer");
        let standing = StandingChanged {
            standing: Some(Standing {
                customer: format!("customers/{id}"),
                license_status: LicenseStatus::Active as i32,
                tier: 10,
                grading_version: 1,
                version: 1,
                area_id: "area-01".into(),
                ..Standing::default()
            }),
        };
        events.push(EventEnvelope {
            event_id: uuid_like(i),
            event_type: StandingChanged::full_name(),
            source: "accreditation".into(),
            aggregate: format!("customers/{id}"),
            payload: Some(prost_types::Any::from_msg(&standing).expect("any")),
            ..EventEnvelope::default()
        });
    }
    EventSinkClient::new(channel_for(
        &allocation_channel,
        bearer(Role::Service, "accreditation", &[], None),
    ))
    .deliver(DeliverRequest { events })
    .await
    .expect("standings delivered");
    AllocationServiceClient::new(channel_for(
        &allocation_channel,
        bearer(Role::AllocationPlanner, "planner-1", &[], None),
    ))
    .upsert_product(UpsertProductRequest {
        request_id: rid(),
        product: Some(Product {
            sku: "jiaozi".into(),
            display_name: "娇子(蓝)".into(),
            price_class: 4,
            wholesale_price: Some(Money {
                currency_code: "CNY".into(),
                fen: 9_000,
            }),
            scarce: false,
            stock_cartons: 100_000,
            ..Product::default()
        }),
    })
    .await
    .expect("product");

    // Logistics goes down; the call center takes orders and cancels some.
    logistics_stop.trigger();
    logistics.wait().await.expect("logistics stops");
    let agent = AllocationServiceClient::new(channel_for(
        &allocation_channel,
        bearer(Role::CallCenterAgent, "agent-1", &["area-01"], None),
    ));
    let mut placed = Vec::new();
    for i in 0..RETAILERS * ORDERS_EACH {
        let customer = format!("customers/sd-{:02}", i % RETAILERS);
        let order = eventually("the retailer is known to allocation", || {
            let (mut agent, customer) = (agent.clone(), customer.clone());
            let request = PlaceOrderRequest {
                request_id: format!("sd-order-{i}"),
                customer,
                cycle: "cycles/2026-W48".into(),
                channel: OrderChannel::CallCenter as i32,
                lines: vec![PlaceOrderLine {
                    product: "products/jiaozi".into(),
                    cartons: 10 + i as i64,
                }],
            };
            async move {
                match agent.place_order(request).await {
                    Ok(order) => Some(order.into_inner()),
                    // Until its profile reaches allocation the retailer is outside an
                    // agent's known scope; anything else is an answer, and wrong.
                    Err(status) if matches!(status.code(), Code::PermissionDenied | Code::Unavailable) => {
                        None
                    }
                    Err(status) => panic!("order {i} refused: {status:?}"),
                }
            }
        })
        .await;
        placed.push(order.name);
    }
    let cancelled: BTreeSet<String> = placed.iter().step_by(10).cloned().collect();
    for name in &cancelled {
        agent
            .clone()
            .cancel_order(CancelOrderRequest {
                request_id: format!("sd-cancel-{}", name.trim_start_matches("orders/")),
                name: name.clone(),
                reason: "retailer changed their mind".into(),
            })
            .await
            .expect("cancelled");
    }

    // Logistics returns on the same address: the relay delivers what waited.
    let (logistics, logistics_stop) = start_logistics(&settings, logistics_addr, &clock).await;
    let logistics_channel = distnet_testkit::channel(logistics_addr).await.expect("connect");
    let dispatcher = LogisticsServiceClient::new(channel_for(
        &logistics_channel,
        bearer(Role::Dispatcher, "disp-1", &[], Some("chengdu")),
    ));
    let expected = placed.len();
    let shipments = eventually("every order reaches logistics", || {
        let mut dispatcher = dispatcher.clone();
        let cancelled = cancelled.clone();
        async move {
            let mut all = Vec::new();
            let mut page_token = String::new();
            loop {
                let page = dispatcher
                    .list_shipments(ListShipmentsRequest {
                        depot: "depots/chengdu".into(),
                        page_size: 1000,
                        page_token,
                        ..ListShipmentsRequest::default()
                    })
                    .await
                    .ok()?
                    .into_inner();
                all.extend(page.shipments);
                if page.next_page_token.is_empty() {
                    break;
                }
                page_token = page.next_page_token;
            }
            let cancelled_ok = all
                .iter()
                .filter(|s| cancelled.contains(&s.order))
                .all(|s| s.status == ShipmentStatus::Cancelled as i32);
            (all.len() >= expected && cancelled_ok).then_some(all)
        }
    })
    .await;
    let orders: Vec<&str> = shipments.iter().map(|s| s.order.as_str()).collect();
    let distinct: BTreeSet<&str> = orders.iter().copied().collect();
    assert_eq!(orders.len(), distinct.len(), "no order became two shipments");
    assert_eq!(
        distinct,
        placed.iter().map(String::as_str).collect::<BTreeSet<_>>(),
        "one shipment per confirmed order"
    );
    let standing: Vec<_> = shipments
        .iter()
        .filter(|s| s.status != ShipmentStatus::Cancelled as i32)
        .collect();
    assert_eq!(standing.len(), expected - cancelled.len());
    eprintln!(
        "{} orders placed while logistics was down, {} cancelled: {} shipments, {} standing",
        expected,
        cancelled.len(),
        shipments.len(),
        standing.len()
    );

    logistics_stop.trigger();
    logistics.wait().await.expect("logistics stops");
    shutdown.trigger();
    customers.wait().await.expect("customers stop");
    allocation.wait().await.expect("allocation stops");
}

/// A fixed UUID per retailer for the standings' event ids.
fn uuid_like(i: usize) -> String {
    format!("0193a5c0-0000-7000-8000-{i:012}")
}
