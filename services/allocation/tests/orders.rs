//! Orders through real gRPC: quota, supply, window, license, credit, blacklist, scope,
//! cancellation, and the events they raise.

mod support;

use distnet_platform::Settings;
use distnet_proto::accreditation::v1::LicenseStatus;
use distnet_proto::accreditation::v1::Standing;
use distnet_proto::allocation::v1::*;
use distnet_proto::customers::v1::Settlement;
use distnet_proto::events::v1::{DeliveryCompleted, OrderCancelled, OrderConfirmed, StandingChanged};
use distnet_testkit::eventually;
use support::*;
use tonic::Code;
use tonic_types::StatusExt as _;

/// Ten retailers in tiers 1..=3 and a scarce product with a 1/2/3 ramp.
async fn open_cycle(service: &TestService) -> Vec<Allocation> {
    let mut retailers: Vec<Retailer> = (0..10)
        .map(|i| Retailer::new(format!("r-{i:02}"), 1 + i % 3))
        .collect();
    retailers.push(Retailer {
        settlement: Settlement::Cash,
        credit_limit_fen: 100_000,
        ..Retailer::new("cash-01", 3)
    });
    service.know(&retailers).await;
    let mut planner = service.planner();
    // 22 available = 4 × 1 + 3 × 2 + 4 × 3: the ramp 1, 2, 3 fits it exactly.
    scarce_product(
        &mut planner,
        "zhonghua",
        122,
        100,
        tier_quota(1, 3, Some(3), Some(1)),
    )
    .await;
    planner
        .upsert_product(UpsertProductRequest {
            request_id: rid(),
            product: Some(Product {
                sku: "plain".into(),
                display_name: "Plain".into(),
                price_class: 4,
                wholesale_price: cny(8_000),
                scarce: false,
                stock_cartons: 20,
                ..Product::default()
            }),
        })
        .await
        .expect("plain product");
    let allocations = commit(&mut planner, &["zhonghua"]).await;
    service.clock.set(during_window());
    allocations
}

#[tokio::test]
async fn placing_an_order_within_quota_consumes_it_and_announces_the_order() {
    let (service, mut recorder) = TestService::start_recording_orders().await;
    let allocations = open_cycle(&service).await;
    assert_eq!(
        allocations[0].tiers.iter().map(|t| t.quota).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );

    let mut retailer = service.retailer("r-02");
    let placed = retailer
        .place_order(order("r-02", &[("zhonghua", 2), ("plain", 5)]))
        .await
        .expect("placed")
        .into_inner();
    assert_eq!(placed.status, OrderStatus::Confirmed as i32);
    assert_eq!(placed.value.as_ref().map(|m| m.fen), Some(2 * 25_000 + 5 * 8_000));
    // Confirmed at 10:00 Shanghai: handed to picking at 11:30.
    let cutoff = placed.picking_cutoff_time.expect("cut-off");
    assert_eq!(cutoff.seconds - during_window().timestamp(), 90 * 60);

    let entitlements = retailer
        .get_entitlements(GetEntitlementsRequest {
            customer: "customers/r-02".into(),
            cycle: CYCLE.into(),
        })
        .await
        .expect("entitlements")
        .into_inner()
        .entitlements;
    let zhonghua = &entitlements[0];
    assert_eq!(
        (
            zhonghua.tier,
            zhonghua.quota,
            zhonghua.consumed,
            zhonghua.remaining
        ),
        (3, 3, 2, 1)
    );
    assert_eq!(zhonghua.supply_remaining, 22 - 2);

    let event = recorder
        .next(std::time::Duration::from_secs(30))
        .await
        .expect("OrderConfirmed");
    assert_eq!(event.event_type, "distnet.events.v1.OrderConfirmed");
    let confirmed: OrderConfirmed = event.payload.expect("payload").to_msg().expect("decodes");
    assert_eq!(confirmed.order.map(|o| o.name), Some(placed.name));
    service.stop().await;
}

#[tokio::test]
async fn placing_an_order_beyond_quota_is_refused_line_by_line_and_changes_nothing() {
    let service = TestService::start().await;
    open_cycle(&service).await;
    let mut agent = service.agent(&["area-01"]);
    // r-00 is tier 1 (quota 1); plain has 20 in stock.
    let refused = agent
        .place_order(order("r-00", &[("zhonghua", 2), ("plain", 25), ("nope", 1)]))
        .await
        .expect_err("refused");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert_eq!(reason(&refused), "ORDER_REFUSED");
    let mut kinds = preconditions(&refused);
    kinds.sort();
    assert_eq!(
        kinds,
        vec![
            ("QUOTA_EXCEEDED".to_string(), "lines[0]".to_string()),
            ("UNKNOWN_PRODUCT".to_string(), "lines[2]".to_string()),
        ],
        "stock is checked only once every quota holds: {refused:?}"
    );
    let refused = agent
        .place_order(order("r-00", &[("zhonghua", 1), ("plain", 25)]))
        .await
        .expect_err("out of stock");
    assert_eq!(reason(&refused), "OUT_OF_STOCK");
    assert_eq!(
        preconditions(&refused),
        vec![("OUT_OF_STOCK".into(), "lines[1]".into())]
    );

    // Nothing was consumed by the refusals.
    let entitlements = agent
        .get_entitlements(GetEntitlementsRequest {
            customer: "customers/r-00".into(),
            cycle: CYCLE.into(),
        })
        .await
        .expect("entitlements")
        .into_inner();
    assert_eq!(entitlements.entitlements[0].consumed, 0);
    agent
        .place_order(order("r-00", &[("zhonghua", 1), ("plain", 20)]))
        .await
        .expect("exactly the quota and the stock");
    service.stop().await;
}

/// (type, subject, description) of each `PreconditionFailure` violation, sorted.
fn explained(status: &tonic::Status) -> Vec<(String, String, String)> {
    let mut all: Vec<_> = status
        .get_details_precondition_failure()
        .map(|p| {
            p.violations
                .into_iter()
                .map(|v| (v.r#type, v.subject, v.description))
                .collect()
        })
        .unwrap_or_default();
    all.sort();
    all
}

#[tokio::test]
async fn each_refused_line_says_what_quota_the_retailer_had() {
    let service = TestService::start().await;
    open_cycle(&service).await;
    // A scarce product with supply but no committed allocation, and a retailer known
    // only after the commit (in no snapshot: no tier, no quota).
    scarce_product(
        &mut service.planner(),
        "panda",
        50,
        0,
        tier_quota(1, 3, Some(3), Some(1)),
    )
    .await;
    service.know(&[Retailer::new("late-01", 2)]).await;
    let mut agent = service.agent(&["area-01"]);

    // r-00 is tier 1 (quota 1).
    let refused = agent
        .place_order(order("r-00", &[("zhonghua", 2), ("panda", 1)]))
        .await
        .expect_err("beyond quota, not allocated");
    assert_eq!(reason(&refused), "ORDER_REFUSED");
    assert_eq!(
        explained(&refused),
        vec![
            (
                "NOT_ALLOCATED".into(),
                "lines[1]".into(),
                format!("products/panda has no committed allocation in {CYCLE}")
            ),
            (
                "QUOTA_EXCEEDED".into(),
                "lines[0]".into(),
                "2 cartons asked, 1 of quota 1 remain".into()
            ),
        ]
    );
    // Once its consumption row exists, a refusal reads the row.
    agent
        .place_order(order("r-00", &[("zhonghua", 1)]))
        .await
        .expect("the quota");
    let refused = agent
        .place_order(order("r-00", &[("zhonghua", 1)]))
        .await
        .expect_err("quota used up");
    assert_eq!(
        explained(&refused),
        vec![(
            "QUOTA_EXCEEDED".into(),
            "lines[0]".into(),
            "1 cartons asked, 0 of quota 1 remain".into()
        )]
    );
    let refused = agent
        .place_order(order("late-01", &[("zhonghua", 1)]))
        .await
        .expect_err("in no snapshot");
    assert_eq!(
        explained(&refused),
        vec![(
            "NOT_ALLOCATED".into(),
            "lines[0]".into(),
            format!("the retailer has no quota of products/zhonghua in {CYCLE} (tier 0)")
        )]
    );
    service.stop().await;
}

/// A cancellation gives a retailer's quota back before its credit; an order takes
/// them in the same order, so two calls about one retailer never wait on each other.
#[tokio::test]
async fn an_order_takes_the_retailers_quota_before_its_credit() {
    let service = TestService::start().await;
    open_cycle(&service).await;
    let mut agent = service.agent(&["area-01"]);
    agent
        .place_order(order("cash-01", &[("zhonghua", 1)]))
        .await
        .expect("the first order creates the quota and credit rows");
    let second = order("cash-01", &[("zhonghua", 1)]);
    let (quota_held, answer) = quota_held_while_credit_waits(&service, agent, second, "zhonghua").await;
    assert!(
        quota_held,
        "the order waited for the credit row before it took the quota row"
    );
    answer.expect("the second order goes through once the credit row is free");
    service.stop().await;
}

/// The rows every retailer's orders share come last: stock, then the scarce products'
/// supply (the hottest rows, held the shortest), each in sku order, and a cancellation
/// gives them back in the same order. "zz-regular" sorts after "zhonghua": taking the
/// lines in sku order across both tables would hold the supply row first.
#[tokio::test]
async fn orders_and_cancellations_take_the_shared_stock_before_the_supply() {
    let service = TestService::start().await;
    open_cycle(&service).await;
    service
        .planner()
        .upsert_product(UpsertProductRequest {
            request_id: rid(),
            product: Some(Product {
                sku: "zz-regular".into(),
                display_name: "Regular".into(),
                price_class: 4,
                wholesale_price: cny(5_000),
                scarce: false,
                stock_cartons: 100,
                ..Product::default()
            }),
        })
        .await
        .expect("a product taken from stock");
    let supply = format!(
        "SELECT 1 FROM allocation.supplies WHERE sku = 'zhonghua' AND cycle_id = '{}' FOR UPDATE",
        CYCLE.trim_start_matches("cycles/")
    );
    let stock = "SELECT 1 FROM allocation.products WHERE sku = 'zz-regular' FOR UPDATE NOWAIT";
    let mut agent = service.agent(&["area-01"]);
    let request = order("r-02", &[("zhonghua", 1), ("zz-regular", 2)]);
    let (stock_held, placed) = held_while_waiting(
        &service,
        async move { agent.place_order(request).await },
        &supply,
        stock,
    )
    .await;
    assert!(
        stock_held,
        "the order waited for the supply row before it took the stock row"
    );
    let placed = placed.expect("placed once the supply row is free");
    let mut planner = service.planner();
    assert_eq!(shared_rows(&mut planner).await, (98, 1), "stock and supply taken");

    let mut agent = service.agent(&["area-01"]);
    let cancel = CancelOrderRequest {
        request_id: rid(),
        name: placed.name,
        reason: String::new(),
    };
    let (stock_held, cancelled) = held_while_waiting(
        &service,
        async move { agent.cancel_order(cancel).await },
        &supply,
        stock,
    )
    .await;
    assert!(
        stock_held,
        "the cancellation waited for the supply row before it took the stock row"
    );
    assert_eq!(
        cancelled.expect("cancelled once the supply row is free").status,
        OrderStatus::Cancelled as i32
    );
    assert_eq!(
        shared_rows(&mut planner).await,
        (100, 0),
        "stock and supply given back"
    );
    service.stop().await;
}

/// The regular product's stock on hand and the cartons of zhonghua confirmed in the
/// cycle.
async fn shared_rows(planner: &mut Client) -> (i64, i64) {
    let stock = planner
        .get_product(GetProductRequest {
            name: "products/zz-regular".into(),
        })
        .await
        .expect("the regular product")
        .into_inner()
        .stock_cartons;
    let confirmed = planner
        .get_supply(GetSupplyRequest {
            product: "products/zhonghua".into(),
            cycle: CYCLE.into(),
        })
        .await
        .expect("zhonghua's supply")
        .into_inner()
        .confirmed;
    (stock, confirmed)
}

#[tokio::test]
async fn cancelling_gives_quota_supply_and_credit_back_exactly_once() {
    let (service, mut recorder) = TestService::start_recording_orders().await;
    open_cycle(&service).await;
    let mut agent = service.agent(&["area-01"]);
    let placed = agent
        .place_order(order("cash-01", &[("zhonghua", 3)]))
        .await
        .expect("placed")
        .into_inner();
    // 3 × 250 yuan = 75,000 fen of the 100,000 fen limit is now outstanding.
    let over = agent
        .place_order(order("cash-01", &[("plain", 4)]))
        .await
        .expect_err("32,000 more fen passes the limit");
    assert_eq!(reason(&over), "CREDIT_LIMIT_EXCEEDED");
    assert_eq!(
        explained(&over),
        vec![(
            "CREDIT_LIMIT_EXCEEDED".into(),
            "customers/cash-01".into(),
            "outstanding 75000 fen + order 32000 fen exceeds the credit limit of 100000 fen".into()
        )]
    );

    let cancel = CancelOrderRequest {
        request_id: rid(),
        name: placed.name.clone(),
        reason: "retailer changed its mind".into(),
    };
    let cancelled = agent
        .cancel_order(cancel.clone())
        .await
        .expect("cancelled")
        .into_inner();
    assert_eq!(cancelled.status, OrderStatus::Cancelled as i32);
    // A retry replays; a second cancellation is refused; neither gives back twice.
    assert_eq!(
        agent.cancel_order(cancel).await.expect("replay").into_inner(),
        cancelled
    );
    let again = agent
        .cancel_order(CancelOrderRequest {
            request_id: rid(),
            name: placed.name.clone(),
            reason: String::new(),
        })
        .await
        .expect_err("already cancelled");
    assert_eq!(reason(&again), "NOT_CANCELLABLE");

    let entitlement = agent
        .get_entitlements(GetEntitlementsRequest {
            customer: "customers/cash-01".into(),
            cycle: CYCLE.into(),
        })
        .await
        .expect("entitlements")
        .into_inner()
        .entitlements
        .remove(0);
    assert_eq!((entitlement.consumed, entitlement.remaining), (0, 3));
    assert_eq!(entitlement.supply_remaining, 22);
    agent
        .place_order(order("cash-01", &[("plain", 4)]))
        .await
        .expect("the credit came back too");

    let first = recorder
        .next(std::time::Duration::from_secs(30))
        .await
        .expect("confirmed");
    assert_eq!(first.event_type, "distnet.events.v1.OrderConfirmed");
    let second = recorder
        .next(std::time::Duration::from_secs(30))
        .await
        .expect("cancelled");
    let cancelled_event: OrderCancelled = second.payload.expect("payload").to_msg().expect("decodes");
    assert_eq!(cancelled_event.order.map(|o| o.name), Some(placed.name));
    service.stop().await;
}

#[tokio::test]
async fn an_order_after_picking_started_cannot_be_cancelled() {
    let service = TestService::start().await;
    open_cycle(&service).await;
    let mut agent = service.agent(&["area-01"]);
    let placed = agent
        .place_order(order("r-01", &[("zhonghua", 1)]))
        .await
        .expect("placed")
        .into_inner();
    service.clock.advance(chrono::Duration::hours(2));
    let late = agent
        .cancel_order(CancelOrderRequest {
            request_id: rid(),
            name: placed.name,
            reason: String::new(),
        })
        .await
        .expect_err("picked at 11:30");
    assert_eq!(reason(&late), "PICKING_STARTED");
    service.stop().await;
}

#[tokio::test]
async fn orders_outside_the_window_from_suspended_or_blacklisted_retailers_are_refused() {
    let service = TestService::start().await;
    open_cycle(&service).await;
    service
        .know(&[
            Retailer {
                license: LicenseStatus::Suspended,
                ..Retailer::new("suspended-1", 3)
            },
            Retailer {
                blacklisted: true,
                ..Retailer::new("blacklisted-1", 3)
            },
        ])
        .await;
    let mut agent = service.agent(&["area-01"]);
    let suspended = agent
        .place_order(order("suspended-1", &[("plain", 1)]))
        .await
        .expect_err("suspended");
    assert_eq!(reason(&suspended), "LICENSE_NOT_ACTIVE");
    let blacklisted = agent
        .place_order(order("blacklisted-1", &[("plain", 1)]))
        .await
        .expect_err("blacklisted");
    assert_eq!(reason(&blacklisted), "BLACKLISTED");

    // Saturday 17:30 Shanghai closes 2026-W48.
    service.clock.set(
        chrono::DateTime::parse_from_rfc3339("2026-11-28T17:30:00+08:00")
            .map(|t| t.with_timezone(&chrono::Utc))
            .expect("time"),
    );
    let closed = agent
        .place_order(order("r-00", &[("zhonghua", 1)]))
        .await
        .expect_err("closed");
    assert_eq!(reason(&closed), "WINDOW_CLOSED");
    assert_eq!(
        preconditions(&closed),
        vec![("WINDOW_CLOSED".into(), CYCLE.into())]
    );
    service.stop().await;
}

#[tokio::test]
async fn callers_order_only_for_retailers_in_their_scope() {
    let service = TestService::start().await;
    open_cycle(&service).await;
    let denied = service
        .agent(&["area-02"])
        .place_order(order("r-00", &[("plain", 1)]))
        .await
        .expect_err("other area");
    assert_eq!(denied.code(), Code::PermissionDenied);
    let denied = service
        .retailer("r-01")
        .place_order(order("r-00", &[("plain", 1)]))
        .await
        .expect_err("another retailer");
    assert_eq!(denied.code(), Code::PermissionDenied);
    let denied = service
        .planner()
        .place_order(order("r-00", &[("plain", 1)]))
        .await
        .expect_err("planners do not take orders");
    assert_eq!(denied.code(), Code::PermissionDenied);
    // A retailer's order is invisible to others: NOT_FOUND, not PERMISSION_DENIED.
    let placed = service
        .retailer("r-00")
        .place_order(order("r-00", &[("plain", 1)]))
        .await
        .expect("own order")
        .into_inner();
    let hidden = service
        .retailer("r-01")
        .get_order(GetOrderRequest {
            name: placed.name.clone(),
        })
        .await
        .expect_err("hidden");
    assert_eq!(hidden.code(), Code::NotFound);
    let mine = service
        .retailer("r-00")
        .list_orders(ListOrdersRequest {
            customer: "customers/r-00".into(),
            ..ListOrdersRequest::default()
        })
        .await
        .expect("own list")
        .into_inner();
    assert_eq!(mine.orders.len(), 1);
    let invalid = service
        .agent(&["area-01"])
        .place_order(PlaceOrderRequest {
            channel: 0,
            lines: vec![],
            ..order("r-00", &[])
        })
        .await
        .expect_err("invalid");
    assert_eq!(invalid.code(), Code::InvalidArgument);
    let mut fields = bad_fields(&invalid);
    fields.sort();
    assert_eq!(fields, vec!["channel", "lines"]);
    service.stop().await;
}

#[tokio::test]
async fn a_retailer_not_known_yet_is_retried_and_entitlements_stay_in_scope() {
    let service = TestService::start().await;
    open_cycle(&service).await;
    // Just created in customers, its CustomerChanged not relayed yet: retry shortly.
    let mut newcomer = service.retailer("r-new");
    for error in [
        newcomer
            .place_order(order("r-new", &[("zhonghua", 1)]))
            .await
            .expect_err("not known"),
        newcomer
            .get_entitlements(GetEntitlementsRequest {
                customer: "customers/r-new".into(),
                cycle: CYCLE.into(),
            })
            .await
            .expect_err("not known"),
    ] {
        assert_eq!(error.code(), Code::FailedPrecondition);
        assert_eq!(reason(&error), "CUSTOMER_NOT_KNOWN");
        assert!(error.get_details_retry_info().is_some(), "a retry delay");
    }
    // Another retailer's entitlements are out of scope, known or not.
    for customer in ["customers/r-01", "customers/r-new"] {
        let denied = service
            .retailer("r-00")
            .get_entitlements(GetEntitlementsRequest {
                customer: customer.into(),
                cycle: CYCLE.into(),
            })
            .await
            .expect_err("another retailer");
        assert_eq!(denied.code(), Code::PermissionDenied, "{customer}");
    }
    // An agent of another area does not learn whether it is known.
    let denied = service
        .agent(&["area-01"])
        .place_order(order("r-new", &[("zhonghua", 1)]))
        .await
        .expect_err("not in the agent's areas");
    assert_eq!(denied.code(), Code::PermissionDenied);
    // A known retailer of a cycle with no committed allocation: no entitlements.
    let none = service
        .agent(&["area-01"])
        .get_entitlements(GetEntitlementsRequest {
            customer: "customers/r-00".into(),
            cycle: "cycles/2026-W01".into(),
        })
        .await
        .expect("known retailer")
        .into_inner();
    assert!(none.entitlements.is_empty());
    service.stop().await;
}

/// Accreditation's standing can arrive before customers' profile: until the profile
/// is here the retailer is not known (retry), rather than judged on a profile's
/// defaults (a cash retailer without credit) and refused for good.
#[tokio::test]
async fn a_retailer_known_only_by_its_standing_waits_for_its_profile() {
    let service = TestService::start().await;
    open_cycle(&service).await;
    let standing = Standing {
        customer: "customers/r-late".into(),
        license_status: LicenseStatus::Active as i32,
        tier: 2,
        grading_version: 1,
        version: 1,
        area_id: "area-01".into(),
        ..Standing::default()
    };
    service
        .deliver(
            "StandingChanged",
            "customers/r-late",
            prost_types::Any::from_msg(&StandingChanged {
                standing: Some(standing),
            })
            .expect("any"),
        )
        .await;
    let request = order("r-late", &[("plain", 1)]);
    let mut retailer = service.retailer("r-late");
    let early = retailer
        .place_order(request.clone())
        .await
        .expect_err("no profile yet");
    assert_eq!(early.code(), Code::FailedPrecondition);
    assert_eq!(reason(&early), "CUSTOMER_NOT_KNOWN");
    assert!(early.get_details_retry_info().is_some(), "a retry delay");
    let entitlements = retailer
        .get_entitlements(GetEntitlementsRequest {
            customer: "customers/r-late".into(),
            cycle: CYCLE.into(),
        })
        .await
        .expect_err("no profile yet");
    assert_eq!(reason(&entitlements), "CUSTOMER_NOT_KNOWN");

    // The profile arrives: the same request, retried, is taken.
    service.know(&[Retailer::new("r-late", 2)]).await;
    let placed = retailer
        .place_order(request)
        .await
        .expect("taken once the profile is here")
        .into_inner();
    assert_eq!(placed.status, OrderStatus::Confirmed as i32);
    service.stop().await;
}

#[tokio::test]
async fn cash_collected_on_delivery_lowers_the_credit_exposure() {
    let service = TestService::start().await;
    open_cycle(&service).await;
    let mut agent = service.agent(&["area-01"]);
    let placed = agent
        .place_order(order("cash-01", &[("zhonghua", 3)]))
        .await
        .expect("placed")
        .into_inner();
    agent
        .place_order(order("cash-01", &[("plain", 4)]))
        .await
        .expect_err("limit reached");
    let delivered = DeliveryCompleted {
        order: placed.name.clone(),
        customer: "customers/cash-01".into(),
        cartons_delivered: 3,
        cash_collected: cny(75_000),
        ..DeliveryCompleted::default()
    };
    service
        .deliver(
            "DeliveryCompleted",
            &placed.name,
            prost_types::Any::from_msg(&delivered).expect("any"),
        )
        .await;
    let order_now = agent
        .get_order(GetOrderRequest { name: placed.name })
        .await
        .expect("order")
        .into_inner();
    assert_eq!(order_now.status, OrderStatus::Delivered as i32);
    assert_eq!(order_now.cash_collected.map(|m| m.fen), Some(75_000));
    agent
        .place_order(order("cash-01", &[("plain", 4)]))
        .await
        .expect("the cash paid the exposure off");
    service.stop().await;
}

/// `GetEntitlements` through `client`: the only entitlement of `customer` (one scarce
/// product in the cycle), or the refusal.
async fn entitlement_of(client: &mut Client, customer: &str) -> Result<Entitlement, tonic::Status> {
    let mut entitlements = client
        .get_entitlements(GetEntitlementsRequest {
            customer: format!("customers/{customer}"),
            cycle: CYCLE.into(),
        })
        .await?
        .into_inner()
        .entitlements;
    assert_eq!(entitlements.len(), 1, "{entitlements:?}");
    Ok(entitlements.remove(0))
}

/// Two replicas of one database with `settings`, r-01 (tier 3) and r-02 (tier 1)
/// known, and zhonghua's 30 cartons committed: the replicas, a planner and the
/// allocation.
async fn two_replicas_with_zhonghua(settings: &Settings) -> (TestService, TestService, Client, Allocation) {
    let one = TestService::start_with(settings).await;
    let two = TestService::start_with(settings).await;
    one.know(&[Retailer::new("r-01", 3), Retailer::new("r-02", 1)])
        .await;
    let mut planner = one.planner();
    scarce_product(
        &mut planner,
        "zhonghua",
        130,
        100,
        tier_quota(1, 3, Some(6), Some(2)),
    )
    .await;
    let allocation = commit(&mut planner, &["zhonghua"]).await.remove(0);
    (one, two, planner, allocation)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entitlements_follow_commits_orders_and_replica_changes_on_every_replica() {
    // Two replicas on one database: each caches the entitlements' make-up it reads.
    let db = migrated_db().await;
    let settings = distnet_testkit::settings(&db.url);
    let (one, two, mut planner, first) = two_replicas_with_zhonghua(&settings).await;
    let tier_3 = |a: &Allocation| a.tiers.iter().find(|t| t.tier == 3).map(|t| t.quota);
    let mut agent_one = one.agent(&["area-01"]);
    let mut agent_two = two.agent(&["area-01"]);
    for agent in [&mut agent_one, &mut agent_two] {
        for _ in 0..2 {
            let e = entitlement_of(agent, "r-01").await.expect("entitlement");
            assert_eq!(e.allocation, first.name);
            assert_eq!((e.tier, Some(e.quota), e.consumed), (3, tier_3(&first), 0));
            assert_eq!(e.supply_remaining, 30);
        }
    }

    // Served from memory: a change that notifies nobody (triggers off) is not seen until
    // a notification comes.
    {
        use sqlx::Connection as _;
        let mut conn = sqlx::PgConnection::connect(&db.url).await.expect("connect");
        sqlx::raw_sql(
            "BEGIN; SET LOCAL session_replication_role = replica; \
             UPDATE allocation.allocation_tiers SET quota = quota + 100 WHERE tier = 3; COMMIT",
        )
        .execute(&mut conn)
        .await
        .expect("quietly changed");
        let e = entitlement_of(&mut agent_one, "r-01").await.expect("entitlement");
        assert_eq!(Some(e.quota), tier_3(&first), "cached");
        sqlx::query("SELECT pg_notify('allocation_entitlements', '*')")
            .execute(&mut conn)
            .await
            .expect("notified");
        let e = eventually("the notified change", || {
            let mut agent = agent_one.clone();
            let before = tier_3(&first);
            async move {
                let e = entitlement_of(&mut agent, "r-01").await.expect("entitlement");
                (Some(e.quota) != before).then_some(e)
            }
        })
        .await;
        assert_eq!(Some(e.quota - 100), tier_3(&first), "'*' empties the cache");
    }

    // A new commit (less supply): the replica that made it answers from it at once, the
    // other as soon as the notification reaches it.
    planner
        .set_supply(SetSupplyRequest {
            request_id: rid(),
            product: "products/zhonghua".into(),
            cycle: CYCLE.into(),
            quantity: 106,
            holdback: 100,
            target: 0,
        })
        .await
        .expect("less supply");
    let second = commit(&mut planner, &["zhonghua"]).await.remove(0);
    assert_ne!(second.name, first.name);
    assert_ne!(tier_3(&second), tier_3(&first), "{second:?}");
    let e = entitlement_of(&mut agent_one, "r-01").await.expect("entitlement");
    assert_eq!(
        (e.allocation.as_str(), Some(e.quota)),
        (second.name.as_str(), tier_3(&second))
    );
    let e = eventually("the other replica's entitlements of the new commit", || {
        let mut agent = agent_two.clone();
        let name = second.name.clone();
        async move {
            let e = entitlement_of(&mut agent, "r-01").await.expect("entitlement");
            (e.allocation == name).then_some(e)
        }
    })
    .await;
    assert_eq!(
        (e.allocation.as_str(), Some(e.quota)),
        (second.name.as_str(), tier_3(&second))
    );
    assert_eq!(e.supply_remaining, 6);

    // An order on one replica shows on the other once announced.
    one.clock.set(during_window());
    two.clock.set(during_window());
    agent_two
        .place_order(order("r-01", &[("zhonghua", 1)]))
        .await
        .expect("placed");
    let e = eventually("the order on the other replica", || {
        let mut agent = agent_one.clone();
        async move {
            let e = entitlement_of(&mut agent, "r-01").await.expect("entitlement");
            (e.consumed == 1).then_some(e)
        }
    })
    .await;
    assert_eq!((e.consumed, e.supply_remaining), (1, 5));
    assert_eq!(e.remaining, e.quota - 1);

    // The retailer moves to area-02: agents of area-01 lose it on both replicas.
    one.know(&[Retailer {
        area: "area-02".into(),
        ..Retailer::new("r-01", 3)
    }])
    .await;
    for agent in [&agent_one, &agent_two] {
        let refused = eventually("the move out of area-01", || {
            let mut agent = agent.clone();
            async move { entitlement_of(&mut agent, "r-01").await.err() }
        })
        .await;
        assert_eq!(refused.code(), Code::PermissionDenied);
    }
    let e = entitlement_of(&mut two.agent(&["area-02"]), "r-01")
        .await
        .expect("the new area's agent sees it");
    assert_eq!((e.consumed, e.allocation.as_str()), (1, second.name.as_str()));
    one.stop().await;
    two.stop().await;
}

/// Whether `client` reads `(consumed, supply_remaining)` of r-01's entitlement now,
/// for [`eventually`].
async fn reads(client: &Client, expected: (i64, i64)) -> Option<()> {
    reads_of(client, "r-01", expected).await
}

/// [`reads`] of `customer`.
async fn reads_of(client: &Client, customer: &str, expected: (i64, i64)) -> Option<()> {
    let e = entitlement_of(&mut client.clone(), customer)
        .await
        .expect("entitlement");
    ((e.consumed, e.supply_remaining) == expected).then_some(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_show_at_once_where_taken_and_on_other_replicas_once_announced() {
    // Two replicas serving consumption and supply from memory for an hour: only the
    // replica's own commits and the announcements and triggers' notifications make
    // them read again.
    let db = migrated_db().await;
    let mut settings = distnet_testkit::settings(&db.url);
    settings.allocation.entitlements_live_max_age_seconds = 3_600;
    let (one, two, mut planner, _) = two_replicas_with_zhonghua(&settings).await;
    one.clock.set(during_window());
    two.clock.set(during_window());
    let agent_one = one.agent(&["area-01"]);
    let agent_two = two.agent(&["area-01"]);
    for agent in [&agent_one, &agent_two] {
        for _ in 0..2 {
            assert_eq!(reads(agent, (0, 30)).await, Some(()), "before any order");
            assert_eq!(
                reads_of(agent, "r-02", (0, 30)).await,
                Some(()),
                "before any order"
            );
        }
    }

    // Confirmed cartons changed behind the services' back are not seen, by either,
    // until the product's supply is announced changed.
    let mut conn = {
        use sqlx::Connection as _;
        sqlx::PgConnection::connect(&db.url).await.expect("connect")
    };
    sqlx::query("UPDATE allocation.supplies SET confirmed = confirmed + 2 WHERE sku = 'zhonghua'")
        .execute(&mut conn)
        .await
        .expect("quietly confirmed");
    for agent in [&agent_one, &agent_two] {
        assert_eq!(reads(agent, (0, 30)).await, Some(()), "from memory");
    }
    sqlx::query("SELECT pg_notify('allocation_live', 'customers/r-99 products/zhonghua')")
        .execute(&mut conn)
        .await
        .expect("announced");
    for agent in [&agent_one, &agent_two] {
        eventually("the announced supply", || reads(agent, (0, 28))).await;
    }

    // An order: the replica that took it reads it at once, the other once announced.
    let placed = agent_two
        .clone()
        .place_order(order("r-01", &[("zhonghua", 2)]))
        .await
        .expect("placed")
        .into_inner();
    assert_eq!(reads(&agent_two, (2, 26)).await, Some(()), "at once where taken");
    assert_eq!(
        reads_of(&agent_two, "r-02", (0, 26)).await,
        Some(()),
        "the supply too"
    );
    // (Another retailer first: reading the ordering retailer's consumption again
    // would read the supply with it.)
    eventually("the supply it took, for another retailer", || {
        reads_of(&agent_one, "r-02", (0, 26))
    })
    .await;
    eventually("the order on the other replica", || reads(&agent_one, (2, 26))).await;

    // Its cancellation, the other way round.
    agent_one
        .clone()
        .cancel_order(CancelOrderRequest {
            request_id: rid(),
            name: placed.name,
            reason: String::new(),
        })
        .await
        .expect("cancelled");
    assert_eq!(
        reads(&agent_one, (0, 28)).await,
        Some(()),
        "at once where cancelled"
    );
    eventually("the supply it gave back, for another retailer", || {
        reads_of(&agent_two, "r-02", (0, 28))
    })
    .await;
    eventually("the cancellation on the other replica", || {
        reads(&agent_two, (0, 28))
    })
    .await;

    // More supply, set on one replica: a trigger tells the other.
    planner
        .set_supply(SetSupplyRequest {
            request_id: rid(),
            product: "products/zhonghua".into(),
            cycle: CYCLE.into(),
            quantity: 140,
            holdback: 100,
            target: 0,
        })
        .await
        .expect("more supply");
    assert_eq!(reads(&agent_one, (0, 38)).await, Some(()), "at once where set");
    eventually("the new supply on the other replica", || {
        reads(&agent_two, (0, 38))
    })
    .await;

    // While a listener is away notifications may be lost: the cache is bypassed until
    // it listens again, and starts empty (a change made meanwhile, here without any
    // notification, is not served stale).
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
          WHERE datname = current_database() AND query ILIKE 'LISTEN%allocation_live%'",
    )
    .execute(&mut conn)
    .await
    .expect("listeners cut off");
    sqlx::query("UPDATE allocation.supplies SET confirmed = confirmed + 1 WHERE sku = 'zhonghua'")
        .execute(&mut conn)
        .await
        .expect("quietly confirmed");
    for agent in [&agent_one, &agent_two] {
        eventually("the change made while not listening", || reads(agent, (0, 37))).await;
    }
    one.stop().await;
    two.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_reads_the_entitlements_of_the_cycle_into_memory_before_it_reports_ready() {
    const API: &str = "distnet.allocation.v1.AllocationService";
    let db = migrated_db().await;
    let mut settings = distnet_testkit::settings(&db.url);
    settings.allocation.entitlements_live_max_age_seconds = 3_600;
    let (one, two, _, allocation) = two_replicas_with_zhonghua(&settings).await;
    // Started before anything was committed: nothing to read, ready at once.
    for replica in [&one, &two] {
        let channel = replica.channel.clone();
        eventually("ready with nothing to read", || {
            let channel = channel.clone();
            async move { distnet_testkit::serving(&channel, API).await.ok()?.then_some(()) }
        })
        .await;
    }
    two.stop().await;

    let three = TestService::start_with(&settings).await;
    assert!(
        distnet_testkit::serving(&three.channel, "")
            .await
            .expect("health"),
        "alive while reading"
    );
    let channel = three.channel.clone();
    eventually("ready once read", || {
        let channel = channel.clone();
        async move { distnet_testkit::serving(&channel, API).await.ok()?.then_some(()) }
    })
    .await;
    // Changed without notifying anyone: a replica reading on demand would see it.
    let mut conn = {
        use sqlx::Connection as _;
        sqlx::PgConnection::connect(&db.url).await.expect("connect")
    };
    sqlx::raw_sql(
        "BEGIN; SET LOCAL session_replication_role = replica; \
         UPDATE allocation.allocation_tiers SET quota = quota + 100; \
         UPDATE allocation.supplies SET confirmed = confirmed + 5; COMMIT",
    )
    .execute(&mut conn)
    .await
    .expect("quietly changed");
    let quota = |tier: i32| allocation.tiers.iter().find(|t| t.tier == tier).map(|t| t.quota);
    let agent = three.agent(&["area-01"]);
    for (customer, tier) in [("r-01", 3), ("r-02", 1)] {
        let e = entitlement_of(&mut agent.clone(), customer)
            .await
            .expect("entitlement");
        assert_eq!(
            (e.tier, Some(e.quota), e.supply_remaining),
            (tier, quota(tier), 30),
            "{customer} from memory"
        );
    }

    // Both parts were in memory, each following its channel.
    sqlx::query("SELECT pg_notify('allocation_live', '*')")
        .execute(&mut conn)
        .await
        .expect("notified");
    eventually("the supply read again", || reads_of(&agent, "r-02", (0, 25))).await;
    let e = entitlement_of(&mut agent.clone(), "r-01")
        .await
        .expect("entitlement");
    assert_eq!(Some(e.quota), quota(3), "the make-up still from memory");
    sqlx::query("SELECT pg_notify('allocation_entitlements', '*')")
        .execute(&mut conn)
        .await
        .expect("notified");
    eventually("the make-up read again", || {
        let agent = agent.clone();
        async move {
            let e = entitlement_of(&mut agent.clone(), "r-01")
                .await
                .expect("entitlement");
            (Some(e.quota - 100) == quota(3)).then_some(())
        }
    })
    .await;
    one.stop().await;
    three.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_commit_every_replica_reads_the_cycle_into_memory_again() {
    // Both replicas started before anything was committed: their start-up warm-up read
    // nothing. The commit empties every replica's entitlements; each reads them again
    // on its own, before any retailer is asked for.
    let db = migrated_db().await;
    let mut settings = distnet_testkit::settings(&db.url);
    settings.allocation.entitlements_live_max_age_seconds = 3_600;
    let one = TestService::start_with(&settings).await;
    let two = TestService::start_with(&settings).await;
    let retailers = sixty_retailers_and_a_commit(&one).await;

    for (replica, name) in [(&one, "one"), (&two, "two")] {
        assert!(
            first_from_memory(replica, &retailers, &db.url).await.is_some(),
            "replica {name}: every retailer was read on demand, none from memory"
        );
    }
    one.stop().await;
    two.stop().await;
}

/// Makes 60 retailers in tiers 1 to 3 known to `replica` and commits zhonghua's
/// allocation to them (30 cartons allocatable).
async fn sixty_retailers_and_a_commit(replica: &TestService) -> Vec<Retailer> {
    let retailers: Vec<Retailer> = (1..=60)
        .map(|i| Retailer::new(format!("r-{i:02}"), 1 + i % 3))
        .collect();
    replica.know(&retailers).await;
    let mut planner = replica.planner();
    scarce_product(
        &mut planner,
        "zhonghua",
        130,
        100,
        tier_quota(1, 3, Some(6), Some(2)),
    )
    .await;
    commit(&mut planner, &["zhonghua"]).await;
    retailers
}

/// Asks `replica` for each retailer's entitlements once, right after the supply
/// changed quietly (no trigger, no announcement): a read on demand sees the change,
/// and only what was read into memory before it does not — which a retailer never
/// asked for can only be by the replica's own reading. Returns the first retailer
/// answered from memory.
async fn first_from_memory(replica: &TestService, retailers: &[Retailer], url: &str) -> Option<String> {
    let mut conn = {
        use sqlx::Connection as _;
        sqlx::PgConnection::connect(url).await.expect("connect")
    };
    let mut agent = replica.agent(&["area-01"]);
    for retailer in retailers {
        sqlx::raw_sql(
            "BEGIN; SET LOCAL session_replication_role = replica; \
             UPDATE allocation.supplies SET confirmed = 1 - confirmed WHERE sku = 'zhonghua'; COMMIT",
        )
        .execute(&mut conn)
        .await
        .expect("quietly changed");
        let confirmed: i64 =
            sqlx::query_scalar("SELECT confirmed FROM allocation.supplies WHERE sku = 'zhonghua'")
                .fetch_one(&mut conn)
                .await
                .expect("confirmed");
        let e = entitlement_of(&mut agent, &retailer.id)
            .await
            .expect("entitlement");
        if e.supply_remaining != 30 - confirmed {
            return Some(retailer.id.clone());
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reading_of_the_cycle_that_fails_is_tried_again() {
    // The replica's reading after an emptying is cut off (its connections killed while
    // they wait on a lock); it reads the cycle again once the database answers.
    let db = migrated_db().await;
    let mut settings = distnet_testkit::settings(&db.url);
    settings.allocation.entitlements_live_max_age_seconds = 3_600;
    let service = TestService::start_with(&settings).await;
    let retailers = sixty_retailers_and_a_commit(&service).await;

    let mut holder = {
        use sqlx::Connection as _;
        sqlx::PgConnection::connect(&db.url).await.expect("connect")
    };
    let holder_pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut holder)
        .await
        .expect("pid");
    sqlx::raw_sql("BEGIN; LOCK TABLE allocation.consumption IN ACCESS EXCLUSIVE MODE")
        .execute(&mut holder)
        .await
        .expect("locked");
    let watcher = sqlx::PgPool::connect(&db.url).await.expect("connect");
    sqlx::query("SELECT pg_notify('allocation_entitlements', '*')")
        .execute(&watcher)
        .await
        .expect("emptied");
    eventually("the reading waits for the lock", || {
        let watcher = watcher.clone();
        async move {
            let cut: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                  WHERE $1 = ANY(pg_blocking_pids(pid))) AS t",
            )
            .bind(holder_pid)
            .fetch_one(&watcher)
            .await
            .ok()?;
            (cut > 0).then_some(())
        }
    })
    .await;
    sqlx::raw_sql("ROLLBACK")
        .execute(&mut holder)
        .await
        .expect("released");

    assert!(
        first_from_memory(&service, &retailers, &db.url).await.is_some(),
        "every retailer was read on demand, none from memory: the failed reading was not tried again"
    );
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumption_and_supply_are_read_again_once_older_than_their_maximum_age() {
    // The replica that took an order died before announcing it: the others catch up
    // when what they hold is older than `entitlements_live_max_age_seconds`.
    let db = migrated_db().await;
    let mut settings = distnet_testkit::settings(&db.url);
    settings.allocation.entitlements_live_max_age_seconds = 6;
    let (service, other, _, _) = two_replicas_with_zhonghua(&settings).await;
    other.stop().await;
    let agent = service.agent(&["area-01"]);
    let mut conn = {
        use sqlx::Connection as _;
        sqlx::PgConnection::connect(&db.url).await.expect("connect")
    };
    // Cached for 3 to 6 s from here.
    assert_eq!(reads(&agent, (0, 30)).await, Some(()));
    sqlx::raw_sql(
        "INSERT INTO allocation.consumption (sku, cycle_id, customer_id, allocation_id, quota, consumed) \
         SELECT sku, cycle_id, 'r-01', allocation_id, 3, 1 FROM allocation.allocations WHERE state = 2; \
         UPDATE allocation.supplies SET confirmed = confirmed + 1 WHERE sku = 'zhonghua'",
    )
    .execute(&mut conn)
    .await
    .expect("an order that was never announced");
    assert_eq!(reads(&agent, (0, 30)).await, Some(()), "from memory");
    eventually(
        "what the order changed, once the cached figures are 3-6 s old",
        || reads(&agent, (1, 29)),
    )
    .await;
    service.stop().await;
}
