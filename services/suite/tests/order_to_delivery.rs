//! Order to delivery end to end, through the four real services on ephemeral ports
//! against one database, with their real outboxes and relays between them: a retailer
//! is created (customers), licensed (accreditation), orders (allocation); the order
//! shows in the retailer's order facts and insights (customers) and becomes a
//! shipment, is planned, published and delivered with proof (logistics); allocation
//! marks the order delivered and customers logs the delivery as a contact.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use distnet_platform::auth::Role;
use distnet_platform::clock::ManualClock;
use distnet_platform::server::{ServerHandle, Shutdown};
use distnet_proto::accreditation::v1::accreditation_service_client::AccreditationServiceClient;
use distnet_proto::accreditation::v1::{
    ApplicationKind, ChecklistItem, DecideApplicationRequest, Decision, InspectionOutcome, Premises,
    RecordInspectionRequest, SubmitApplicationRequest,
};
use distnet_proto::allocation::v1::allocation_service_client::AllocationServiceClient;
use distnet_proto::allocation::v1::{
    Channel as OrderChannel, GetOrderRequest, OrderStatus, PlaceOrderLine, PlaceOrderRequest, Product,
    UpsertProductRequest,
};
use distnet_proto::common::v1::{LatLng, Money, TimeOfDay};
use distnet_proto::customers::v1::customer_service_client::CustomerServiceClient;
use distnet_proto::customers::v1::{
    Channel as ContactChannel, GetCustomerInsightsRequest, ListInteractionsRequest,
    Segment as CustomerSegment,
};
use distnet_proto::customers::v1::{CreateCustomerRequest, Customer, CustomerFormat, Settlement};
use distnet_proto::logistics::v1::logistics_service_client::LogisticsServiceClient;
use distnet_proto::logistics::v1::*;
use distnet_testkit::TestDb;

mod support;

use support::{
    DEPOT, bearer, channel_for, chengdu_depot_and_inner_zone, chengdu_van, eventually, first_shipment,
    listeners, plan_half_day_of, rid, tuesday_morning, wired,
};

/// The trace the call-center app's order belongs to.
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_placed_in_allocation_is_planned_delivered_with_proof_and_marked_delivered() {
    let db = TestDb::new().await.expect("database");
    let mut settings = distnet_testkit::settings(&db.url);
    wired(&mut settings);
    settings.customers.insights_refresh_ms = 100;
    let [customers_l, accreditation_l, allocation_l, logistics_l] = listeners(&mut settings).await;
    let shutdown = Shutdown::new();
    let clock = ManualClock::new(tuesday_morning());
    let handles: Vec<ServerHandle> = vec![
        distnet_customers::serve_with_clock(
            &settings,
            customers_l,
            shutdown.clone(),
            Arc::new(clock.clone()),
        )
        .await
        .expect("customers"),
        distnet_accreditation::serve(&settings, accreditation_l, shutdown.clone())
            .await
            .expect("accreditation"),
        distnet_allocation::serve_with_clock(
            &settings,
            allocation_l,
            shutdown.clone(),
            Arc::new(clock.clone()),
        )
        .await
        .expect("allocation"),
        distnet_logistics::serve_with_clock(
            &settings,
            logistics_l,
            shutdown.clone(),
            Arc::new(clock.clone()),
        )
        .await
        .expect("logistics"),
    ];
    let connect = |i: usize| distnet_testkit::channel(handles[i].local_addr);
    let (customers, accreditation, allocation, logistics) = (
        connect(0).await.expect("connect"),
        connect(1).await.expect("connect"),
        connect(2).await.expect("connect"),
        connect(3).await.expect("connect"),
    );

    // Customers: the retailer, e-settled, near the Chengdu DC, receiving 08:30–11:00.
    let admin = bearer(Role::Admin, "admin-1", &[], None);
    CustomerServiceClient::new(channel_for(&customers, admin.clone()))
        .create_customer(CreateCustomerRequest {
            request_id: rid(),
            customer_id: "shop-e2e".into(),
            customer: Some(Customer {
                display_name: "春熙路便利店".into(),
                format: CustomerFormat::Grocery as i32,
                settlement: Settlement::ESettlement as i32,
                area_id: "area-01".into(),
                owner_id: "cm-1".into(),
                location: Some(LatLng {
                    latitude: DEPOT.0 + 0.02,
                    longitude: DEPOT.1 + 0.01,
                }),
                receiving_window: Some(distnet_proto::common::v1::LocalTimeWindow {
                    start: Some(TimeOfDay {
                        hours: 8,
                        minutes: 30,
                    }),
                    end: Some(TimeOfDay {
                        hours: 11,
                        minutes: 0,
                    }),
                    time_zone: "Asia/Shanghai".into(),
                }),
                ..Customer::default()
            }),
        })
        .await
        .expect("customer");

    // Accreditation: applied, inspected by an inspector, approved by the office.
    let mut office = AccreditationServiceClient::new(channel_for(&accreditation, admin.clone()));
    let mut inspector = AccreditationServiceClient::new(channel_for(
        &accreditation,
        bearer(Role::MarketInspector, "mi-1", &["area-01"], None),
    ));
    let application = eventually("the retailer reaches accreditation", || {
        let mut office = office.clone();
        async move {
            office
                .submit_application(SubmitApplicationRequest {
                    request_id: rid(),
                    customer: "customers/shop-e2e".into(),
                    kind: ApplicationKind::New as i32,
                    premises: Some(Premises {
                        location: Some(LatLng {
                            latitude: DEPOT.0 + 0.02,
                            longitude: DEPOT.1 + 0.01,
                        }),
                        floor_area_sqm: 40,
                        format: CustomerFormat::Grocery as i32,
                        ..Premises::default()
                    }),
                    documents: vec![],
                })
                .await
                .ok()
                .map(|r| r.into_inner())
        }
    })
    .await;
    inspector
        .record_inspection(RecordInspectionRequest {
            request_id: rid(),
            name: application.name.clone(),
            outcome: InspectionOutcome::Pass as i32,
            checklist: vec![ChecklistItem {
                item: "premises match the application".into(),
                passed: true,
                note: String::new(),
            }],
        })
        .await
        .expect("inspected");
    office
        .decide_application(DecideApplicationRequest {
            request_id: rid(),
            name: application.name.clone(),
            decision: Decision::Approve as i32,
            reasons: vec!["end-to-end test".into()],
        })
        .await
        .expect("approved");

    // Logistics: the DC, its inner zone (area-01, every day, twice daily), one van.
    let mut dispatcher = LogisticsServiceClient::new(channel_for(
        &logistics,
        bearer(Role::Dispatcher, "disp-1", &[], Some("chengdu")),
    ));
    chengdu_depot_and_inner_zone(&mut dispatcher).await;
    chengdu_van(&mut dispatcher).await;

    // Allocation: a product in stock; the call center orders 150 cartons (3 cases)
    // once the license has reached allocation.
    let planner = bearer(Role::AllocationPlanner, "planner-1", &[], None);
    AllocationServiceClient::new(channel_for(&allocation, planner))
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
                stock_cartons: 1_000,
                ..Product::default()
            }),
        })
        .await
        .expect("product");
    let agent = AllocationServiceClient::new(channel_for(
        &allocation,
        bearer(Role::CallCenterAgent, "agent-1", &["area-01"], None),
    ));
    let order = eventually("the license reaches allocation and the order is taken", || {
        let mut agent = agent.clone();
        async move {
            // The call-center app continues its own trace: the audit log keeps it.
            let mut request = tonic::Request::new(PlaceOrderRequest {
                request_id: rid(),
                customer: "customers/shop-e2e".into(),
                cycle: "cycles/2026-W48".into(),
                channel: OrderChannel::CallCenter as i32,
                lines: vec![PlaceOrderLine {
                    product: "products/jiaozi".into(),
                    cartons: 150,
                }],
            });
            request
                .metadata_mut()
                .insert("traceparent", TRACEPARENT.parse().expect("header"));
            agent.place_order(request).await.ok().map(|r| r.into_inner())
        }
    })
    .await;
    assert_eq!(order.status, OrderStatus::Confirmed as i32);

    // OrderConfirmed also reaches customers: the week's order facts and the insights.
    let insights_reader = CustomerServiceClient::new(channel_for(&customers, admin.clone()));
    let insights = eventually("the order shows in the retailer's facts and insights", || {
        let mut reader = insights_reader.clone();
        async move {
            reader
                .get_customer_insights(GetCustomerInsightsRequest {
                    customer: "customers/shop-e2e".into(),
                })
                .await
                .ok()
                .map(|r| r.into_inner())
                .filter(|i| i.cycles.last().is_some_and(|c| c.orders == 1))
        }
    })
    .await;
    let week = insights.cycles.last().expect("the current cycle");
    assert_eq!(week.cycle, "cycles/2026-W48");
    assert_eq!(week.value, order.value);
    assert_eq!((week.cartons, week.scarce_cartons), (150, 0));
    assert!(
        (insights.value_share_percent - 100.0).abs() < 1e-9,
        "the only ordering retailer"
    );
    assert_eq!(insights.segment, CustomerSegment::A as i32);
    let dependency = insights.dependency.expect("dependency");
    assert_eq!(dependency.factors[0].name, "cycle_share");
    assert_eq!(
        dependency.factors[0].value, 100.0,
        "ordered in its only open cycle"
    );

    // The order reaches logistics as a shipment for Wednesday morning.
    let shipment = first_shipment(&dispatcher).await;
    assert_eq!(shipment.order, order.name);
    assert_eq!(
        (shipment.slot_date.as_str(), shipment.slot_half),
        ("2026-11-25", Half::Morning as i32)
    );
    assert!((shipment.cases - 3.0).abs() < 1e-9);

    // Planned, published, driven.
    let plan = plan_half_day_of(&mut dispatcher, &shipment).await;
    assert_eq!(plan.routes.len(), 1, "{plan:?}");
    dispatcher
        .publish_plan(PublishPlanRequest {
            request_id: rid(),
            name: plan.name.clone(),
            drivers: [("vehicles/van-01".to_string(), "driver-7".to_string())]
                .into_iter()
                .collect(),
        })
        .await
        .expect("published");
    clock.set(
        DateTime::parse_from_rfc3339("2026-11-25T09:10:00+08:00")
            .expect("time")
            .with_timezone(&Utc),
    );
    let mut driver = LogisticsServiceClient::new(channel_for(
        &logistics,
        bearer(Role::Driver, "driver-7", &[], None),
    ));
    let mine = driver
        .get_my_route(GetMyRouteRequest::default())
        .await
        .expect("my route")
        .into_inner();
    let stop = mine.routes[0].route.as_ref().expect("route").stops[0].clone();
    assert_eq!(stop.shipment, shipment.name);
    driver
        .record_stop_event(RecordStopEventRequest {
            request_id: rid(),
            shipment: stop.shipment.clone(),
            kind: StopEventKind::Delivered as i32,
            proof: Some(ProofOfDelivery {
                recipient_name: "李店长".into(),
                photo_sha256: "0f".repeat(32),
                ..ProofOfDelivery::default()
            }),
            ..RecordStopEventRequest::default()
        })
        .await
        .expect("delivered");

    // DeliveryCompleted reaches allocation: the order is delivered.
    let reader = AllocationServiceClient::new(channel_for(&allocation, admin.clone()));
    let delivered = eventually("allocation marks the order delivered", || {
        let mut reader = reader.clone();
        let name = order.name.clone();
        async move {
            reader
                .get_order(GetOrderRequest { name })
                .await
                .ok()
                .map(|r| r.into_inner())
                .filter(|o| o.status == OrderStatus::Delivered as i32)
        }
    })
    .await;
    assert_eq!(delivered.name, order.name);

    // And customers: the delivery is logged as a contact with the retailer.
    let contacts = CustomerServiceClient::new(channel_for(&customers, admin));
    let logged = eventually("customers logs the delivery", || {
        let mut contacts = contacts.clone();
        async move {
            contacts
                .list_interactions(ListInteractionsRequest {
                    customer: "customers/shop-e2e".into(),
                    channel: ContactChannel::Delivery as i32,
                    ..ListInteractionsRequest::default()
                })
                .await
                .ok()
                .map(|r| r.into_inner().interactions)
                .filter(|found| !found.is_empty())
        }
    })
    .await;
    assert_eq!(logged[0].outcome, "DELIVERED");
    assert_eq!(logged[0].order, order.name);

    // Every change of the story is in its service's audit log, with who, role and
    // request id; `distnet audit` reads them all.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_distnet"))
        .args(["audit", "--limit", "1000"])
        .env("DATABASE_URL", &db.url)
        .env("DISTNET__TELEMETRY__LOG_FILTER", "warn")
        .output()
        .expect("distnet audit runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let audit = String::from_utf8_lossy(&output.stdout);
    let row = |service: &str, method: &str| {
        audit
            .lines()
            .find(|line| {
                let cells: Vec<&str> = line.split_whitespace().collect();
                cells.get(2) == Some(&service) && cells.get(5) == Some(&method)
            })
            .unwrap_or_else(|| panic!("no audit record of {service} {method} in:\n{audit}"))
            .split_whitespace()
            .map(String::from)
            .collect::<Vec<String>>()
    };
    for (service, method) in [
        ("customers", "CreateCustomer"),
        ("accreditation", "SubmitApplication"),
        ("accreditation", "RecordInspection"),
        ("accreditation", "DecideApplication"),
        ("logistics", "UpsertDepot"),
        ("logistics", "UpsertZone"),
        ("logistics", "UpsertVehicle"),
        ("allocation", "UpsertProduct"),
        ("logistics", "PlanRoutes"),
        ("logistics", "PublishPlan"),
    ] {
        row(service, method);
    }
    let placed = row("allocation", "PlaceOrder");
    assert_eq!(
        placed[3..5],
        ["agent-1".to_string(), "call_center_agent".to_string()]
    );
    assert_eq!(
        placed.get(7).map(String::as_str),
        Some("4bf92f3577b34da6a3ce929d0e0e4736")
    );
    let stop = row("logistics", "RecordStopEvent");
    assert_eq!(stop[3..5], ["driver-7".to_string(), "driver".to_string()]);

    shutdown.trigger();
    for handle in handles {
        handle.wait().await.expect("clean shutdown");
    }
}
