//! Order facts and the four degrees through a real server and Postgres: history
//! imported, orders arriving as allocation's events, surveys and complaints, the
//! A/B/C segments and flags, the ListCustomers filters, and who may see them.

mod support;

use distnet_testkit::eventually;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use distnet_platform::auth::{Claims, Role};
use distnet_platform::clock::ManualClock;
use distnet_proto::allocation::v1::{Order, OrderLine};
use distnet_proto::common::v1::Money;
use distnet_proto::customers::v1::{
    Channel, CustomerFlag, CustomerInsights, GetCustomerInsightsRequest, ImportOrderHistoryRequest,
    ListCustomersRequest, OpenCaseRequest, OrderHistoryRecord, RecordSurveyRequest, Segment, SurveyResponse,
};
use distnet_proto::events::v1::event_sink_client::EventSinkClient;
use distnet_proto::events::v1::{DeliverRequest, EventEnvelope, OrderCancelled, OrderConfirmed};
use distnet_testkit::Bearer;
use support::{Client, TestService, bad_fields, create_request, retailer};
use tonic::Code;

/// Wednesday of ISO week 2026-W48, mid-morning in Chengdu: the window runs from
/// 2026-W37 to 2026-W48.
fn wednesday() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-25T10:00:00+08:00")
        .expect("time")
        .with_timezone(&Utc)
}

const WINDOW: [&str; 12] = [
    "2026-W37", "2026-W38", "2026-W39", "2026-W40", "2026-W41", "2026-W42", "2026-W43", "2026-W44",
    "2026-W45", "2026-W46", "2026-W47", "2026-W48",
];

fn cny(fen: i64) -> Option<Money> {
    Some(Money {
        currency_code: "CNY".into(),
        fen,
    })
}

/// Customers refreshing their insights every 50 ms on a manual clock, three customers
/// at a time: every figure below (segments are relative to the whole network) also
/// shows that a refresh in pages reads each customer's inputs whole.
async fn world() -> TestService {
    let db = TestService::database().await;
    let mut settings = distnet_testkit::settings(&db.url);
    settings.customers.insights_refresh_ms = 50;
    settings.customers.insights_refresh_page = 3;
    let mut service = TestService::start_clocked(&settings, Arc::new(ManualClock::new(wednesday()))).await;
    service.db = Some(db);
    let mut admin = service.admin();
    let mut people = vec![
        ("r-big", "area-01", "cm-001"),
        ("r-mid", "area-01", "cm-001"),
        ("r-quiet", "area-01", "cm-001"),
        ("r-new", "area-02", "cm-002"),
        ("r-bad", "area-02", "cm-002"),
    ];
    let smalls: Vec<String> = (1..=5).map(|i| format!("r-small{i}")).collect();
    people.extend(smalls.iter().map(|id| (id.as_str(), "area-02", "cm-002")));
    for (id, area, owner) in people {
        let mut customer = retailer(id, area, owner);
        customer.visit_weekday = 2;
        if id == "r-bad" {
            customer.legal_name.clear();
        }
        admin
            .create_customer(create_request(&format!("create-{id}"), id, customer))
            .await
            .expect("customer created");
    }
    service
}

fn record(customer: &str, cycle: &str, value_fen: i64, cartons: i64, scarce: i64) -> OrderHistoryRecord {
    OrderHistoryRecord {
        customer: format!("customers/{customer}"),
        cycle: format!("cycles/{cycle}"),
        orders: 1,
        value: cny(value_fen),
        cartons,
        scarce_cartons: scarce,
    }
}

/// Twelve weeks of history: one big retailer, one middling, one that stopped three
/// weeks ago, five small ones; r-new and r-bad never ordered.
fn history() -> Vec<OrderHistoryRecord> {
    let mut records = Vec::new();
    for (i, cycle) in WINDOW.iter().enumerate() {
        records.push(record("r-big", cycle, 1_000_000, 100, 20));
        records.push(record("r-mid", cycle, 300_000, 30, 0));
        if i < 9 {
            records.push(record("r-quiet", cycle, 200_000, 40, 10));
        }
        for s in 1..=5 {
            records.push(record(&format!("r-small{s}"), cycle, 50_000, 5, 5));
        }
    }
    records
}

/// The customer's insights once `ready` holds for them.
async fn insights_when(
    client: &Client,
    customer: &str,
    ready: impl Fn(&CustomerInsights) -> bool,
) -> CustomerInsights {
    let ready = &ready;
    eventually(&format!("insights of {customer}"), || {
        let mut client = client.clone();
        let customer = customer.to_string();
        async move {
            client
                .get_customer_insights(GetCustomerInsightsRequest {
                    customer: format!("customers/{customer}"),
                })
                .await
                .ok()
                .map(|r| r.into_inner())
                .filter(|i| ready(i))
        }
    })
    .await
}

async fn listed(client: &mut Client, segment: Segment, flag: CustomerFlag) -> Vec<String> {
    client
        .list_customers(ListCustomersRequest {
            segment: segment as i32,
            flag: flag as i32,
            ..ListCustomersRequest::default()
        })
        .await
        .expect("listed")
        .into_inner()
        .customers
        .into_iter()
        .map(|c| c.name.trim_start_matches("customers/").to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imported_history_gives_degrees_segments_and_flags_that_explain_themselves() {
    let service = world().await;
    let mut admin = service.admin();
    let request = ImportOrderHistoryRequest {
        request_id: "history-1".into(),
        records: history(),
    };
    let imported = admin
        .import_order_history(request.clone())
        .await
        .expect("imported")
        .into_inner();
    assert_eq!(imported.imported, 12 * 7 + 9);
    let replay = admin
        .import_order_history(request)
        .await
        .expect("replayed")
        .into_inner();
    assert_eq!(replay, imported, "the same request is answered the same");

    let big = insights_when(&admin, "r-big", |i| i.value_share_percent > 0.0).await;
    let cycles: Vec<&str> = big.cycles.iter().map(|c| c.cycle.as_str()).collect();
    let expected: Vec<String> = WINDOW.iter().map(|c| format!("cycles/{c}")).collect();
    assert_eq!(cycles, expected, "the window is the last 12 cycles, oldest first");
    assert!(
        big.cycles
            .iter()
            .all(|c| c.orders == 1 && c.cartons == 100 && c.scarce_cartons == 20)
    );
    assert_eq!(big.segment, Segment::A as i32);
    assert_eq!(big.flags, vec![CustomerFlag::Vip as i32], "the top 5 % by value");
    let dependency = big.dependency.clone().expect("dependency");
    assert!((dependency.score - (0.7 * 100.0 + 0.3 * 20.0)).abs() < 1e-9);
    let names: Vec<&str> = dependency.factors.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        vec!["cycle_share", "scarce_reliance"],
        "every degree shows its inputs"
    );
    assert!(!dependency.formula.is_empty());
    assert!(big.compute_time.is_some());

    // Value 1,200,000 + 360,000 + 180,000 + 5 × 60,000 yuan: A holds the first three
    // (76.5 % before r-quiet), B the small ones while below 95 %, C the rest.
    let mut total_share = 0.0;
    let mut segments = Vec::new();
    for id in [
        "r-bad", "r-big", "r-mid", "r-new", "r-quiet", "r-small1", "r-small2", "r-small3", "r-small4",
        "r-small5",
    ] {
        let insights = insights_when(&admin, id, |_| true).await;
        total_share += insights.value_share_percent;
        segments.push((id, Segment::try_from(insights.segment).expect("segment")));
    }
    assert!((total_share - 100.0).abs() < 1e-9, "shares sum to {total_share}");
    assert_eq!(
        listed(&mut admin, Segment::A, CustomerFlag::Unspecified).await,
        vec!["r-big", "r-mid", "r-quiet"]
    );
    assert_eq!(
        listed(&mut admin, Segment::B, CustomerFlag::Unspecified).await,
        vec!["r-small1", "r-small2", "r-small3", "r-small4"]
    );
    assert_eq!(
        listed(&mut admin, Segment::C, CustomerFlag::Unspecified).await,
        vec!["r-bad", "r-new", "r-small5"]
    );
    assert_eq!(
        listed(&mut admin, Segment::Unspecified, CustomerFlag::ChurnRisk).await,
        vec!["r-quiet"]
    );
    assert_eq!(
        listed(&mut admin, Segment::Unspecified, CustomerFlag::IncompleteFile).await,
        vec!["r-bad"]
    );
    let bad = insights_when(&admin, "r-bad", |_| true).await;
    assert_eq!(bad.missing_fields, vec!["legal_name"]);
    let quiet = insights_when(&admin, "r-quiet", |_| true).await;
    let loyalty = quiet.loyalty.expect("loyalty");
    let churn = loyalty
        .factors
        .iter()
        .find(|f| f.name == "churn_risk")
        .expect("shown");
    assert_eq!(churn.value, 1.0);
    // A customer manager filters within their own customers.
    let mut rep = service.as_role(Role::CustomerManager, "cm-002", &["area-02"]);
    assert_eq!(
        listed(&mut rep, Segment::B, CustomerFlag::Unspecified).await,
        vec!["r-small1", "r-small2", "r-small3", "r-small4"]
    );
    assert!(
        listed(&mut rep, Segment::A, CustomerFlag::Unspecified)
            .await
            .is_empty()
    );
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn surveys_and_complaints_move_satisfaction() {
    let service = world().await;
    let admin = service.admin();
    let before = insights_when(&admin, "r-mid", |_| true).await;
    assert_eq!(
        before.satisfaction.expect("satisfaction").score,
        100.0,
        "no complaints, nothing else known"
    );

    let mut agent = service.as_role(Role::CallCenterAgent, "cc-001", &["area-01"]);
    let answers = ["delivery", "service", "supply", "complaints", "overall"]
        .into_iter()
        .map(|q| SurveyResponse {
            question_id: q.into(),
            answer_id: "very_satisfied".into(),
            ..SurveyResponse::default()
        })
        .collect();
    agent
        .record_survey(RecordSurveyRequest {
            request_id: "survey-1".into(),
            customer: "customers/r-mid".into(),
            channel: Channel::CallOut as i32,
            responses: answers,
            comment: String::new(),
        })
        .await
        .expect("survey");
    agent
        .open_case(OpenCaseRequest {
            request_id: "case-1".into(),
            customer: "customers/r-mid".into(),
            category: distnet_proto::customers::v1::CaseCategory::Delivery as i32,
            channel: Channel::CallIn as i32,
            description: "送货晚了两个小时".into(),
        })
        .await
        .expect("case");
    // Surveys 100 (weight 0.5), one complaint 75 (weight 0.3), no callbacks yet. A
    // refresh may land between the two calls and show the survey alone first.
    let after = insights_when(&admin, "r-mid", |i| {
        i.satisfaction.as_ref().is_some_and(|s| {
            let factor = |name: &str| s.factors.iter().find(|f| f.name == name).map(|f| f.value);
            s.factors.len() == 2 && factor("surveys").is_some() && factor("complaints") == Some(75.0)
        })
    })
    .await;
    let satisfaction = after.satisfaction.expect("satisfaction");
    assert!((satisfaction.score - (0.5 * 100.0 + 0.3 * 75.0) / 0.8).abs() < 1e-9);
    service.stop().await;
}

fn order(id: &str, customer: &str, value_fen: i64, lines: &[(i64, bool)]) -> Order {
    Order {
        name: format!("orders/{id}"),
        customer: format!("customers/{customer}"),
        cycle: "cycles/2026-W48".into(),
        value: cny(value_fen),
        lines: lines
            .iter()
            .map(|&(cartons, scarce)| OrderLine {
                product: "products/p-1".into(),
                cartons,
                scarce,
                ..OrderLine::default()
            })
            .collect(),
        ..Order::default()
    }
}

fn envelope<M: prost::Name>(id: u32, message: &M) -> EventEnvelope {
    EventEnvelope {
        event_id: format!("0193a5c0-0000-7000-8000-{id:012}"),
        event_type: M::full_name(),
        source: "allocation".into(),
        aggregate: "orders/o".into(),
        payload: Some(prost_types::Any::from_msg(message).expect("encodes")),
        ..EventEnvelope::default()
    }
}

/// A cycle's (orders, value in fen, cartons, scarce cartons).
fn totals(facts: &distnet_proto::customers::v1::CycleFacts) -> (i64, Option<i64>, i64, i64) {
    (
        facts.orders,
        facts.value.as_ref().map(|m| m.fen),
        facts.cartons,
        facts.scarce_cartons,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmed_orders_become_facts_once_and_cancelled_ones_leave_them() {
    let service = world().await;
    let admin = service.admin();
    let mut sink = EventSinkClient::with_interceptor(
        service.channel.clone(),
        Bearer(Some(distnet_testkit::token_for(Role::Service, "allocation", &[]))),
    );
    let o1 = order("o-1", "r-new", 80_000, &[(10, true), (30, false)]);
    let o2 = order("o-2", "r-new", 10_000, &[(5, false)]);
    let events = vec![
        envelope(
            1,
            &OrderConfirmed {
                order: Some(o1.clone()),
            },
        ),
        // Confirmed twice under different event ids: still one order.
        envelope(
            2,
            &OrderConfirmed {
                order: Some(o1.clone()),
            },
        ),
        // o-2 is cancelled before its confirmation arrives.
        envelope(
            3,
            &OrderCancelled {
                order: Some(o2.clone()),
            },
        ),
        envelope(4, &OrderConfirmed { order: Some(o2) }),
    ];
    sink.deliver(DeliverRequest { events }).await.expect("delivered");
    let current = |i: &CustomerInsights| i.cycles.last().cloned().unwrap_or_default();
    let new = insights_when(&admin, "r-new", |i| current(i).orders > 0).await;
    let facts = current(&new);
    assert_eq!(facts.cycle, "cycles/2026-W48");
    assert_eq!(totals(&facts), (1, Some(80_000), 40, 10));
    assert_eq!(new.segment, Segment::A as i32, "the only customer with orders");

    sink.deliver(DeliverRequest {
        events: vec![envelope(5, &OrderCancelled { order: Some(o1) })],
    })
    .await
    .expect("delivered");
    let cancelled = insights_when(&admin, "r-new", |i| current(i).orders == 0).await;
    assert_eq!(current(&cancelled).value.map(|m| m.fen), Some(0));
    assert_eq!(cancelled.segment, Segment::C as i32);

    // Two orders in the same week add up in that week's facts.
    let o3 = order("o-3", "r-new", 25_000, &[(4, true)]);
    let o4 = order("o-4", "r-new", 15_000, &[(6, false)]);
    sink.deliver(DeliverRequest {
        events: vec![
            envelope(6, &OrderConfirmed { order: Some(o3) }),
            envelope(7, &OrderConfirmed { order: Some(o4) }),
        ],
    })
    .await
    .expect("delivered");
    let both = insights_when(&admin, "r-new", |i| current(i).orders == 2).await;
    assert_eq!(totals(&current(&both)), (2, Some(40_000), 10, 4));
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imports_are_validated_and_insights_are_scoped_to_staff() {
    let service = world().await;
    let mut admin = service.admin();
    let mut records = vec![
        record("r-big", "2026-W49", 1, 1, 0),
        record("r-big", "2026-48", 1, 1, 0),
        record("r-big", "2026-W40", 1, 1, 2),
        record("r-big", "2026-W41", -5, 1, 0),
        record("r-big", "2026-W42", 1, 1, 0),
        record("r-big", "2026-W42", 1, 1, 0),
    ];
    records[5].value = cny(2);
    let invalid = admin
        .import_order_history(ImportOrderHistoryRequest {
            request_id: "bad-1".into(),
            records,
        })
        .await
        .expect_err("invalid");
    assert_eq!(invalid.code(), Code::InvalidArgument);
    assert_eq!(
        bad_fields(&invalid),
        vec![
            "records[0].cycle",
            "records[1].cycle",
            "records[2].scarce_cartons",
            "records[3].value.fen",
            "records[5].cycle"
        ]
    );
    let unknown = admin
        .import_order_history(ImportOrderHistoryRequest {
            request_id: "bad-2".into(),
            records: vec![
                record("r-big", "2026-W40", 1, 1, 0),
                record("nobody", "2026-W40", 1, 1, 0),
            ],
        })
        .await
        .expect_err("unknown customer");
    assert_eq!(unknown.code(), Code::NotFound);
    assert!(
        unknown.message().contains("customers/nobody"),
        "{}",
        unknown.message()
    );

    let mut rep = service.as_role(Role::CustomerManager, "cm-001", &["area-01"]);
    let denied = rep
        .import_order_history(ImportOrderHistoryRequest {
            request_id: "rep-1".into(),
            records: vec![record("r-big", "2026-W40", 1, 1, 0)],
        })
        .await
        .expect_err("only admins import");
    assert_eq!(denied.code(), Code::PermissionDenied);

    // Staff read insights of the customers they may see; others' are NOT_FOUND.
    insights_when(&rep, "r-big", |_| true).await;
    let other = rep
        .get_customer_insights(GetCustomerInsightsRequest {
            customer: "customers/r-new".into(),
        })
        .await
        .expect_err("another rep's customer");
    assert_eq!(other.code(), Code::NotFound);
    let malformed = rep
        .get_customer_insights(GetCustomerInsightsRequest {
            customer: "r-big".into(),
        })
        .await
        .expect_err("malformed name");
    assert_eq!(malformed.code(), Code::InvalidArgument);

    // A retailer does not see how it is segmented, not even by filtering.
    let mut shop = service.client(Some(distnet_testkit::token(
        &Claims::new("shop-r-big", Role::Retailer, Duration::from_secs(600)).with_customer("r-big"),
    )));
    let own = shop
        .get_customer_insights(GetCustomerInsightsRequest {
            customer: "customers/r-big".into(),
        })
        .await
        .expect_err("retailers do not read insights");
    assert_eq!(own.code(), Code::PermissionDenied);
    let filtered = shop
        .list_customers(ListCustomersRequest {
            segment: Segment::A as i32,
            ..ListCustomersRequest::default()
        })
        .await
        .expect_err("nor filter by them");
    assert_eq!(filtered.code(), Code::PermissionDenied);
    shop.list_customers(ListCustomersRequest::default())
        .await
        .expect("a retailer still lists itself");
    for role in [Role::Driver, Role::MarketInspector, Role::Dispatcher] {
        let mut client = service.as_role(role, "someone", &["area-01"]);
        let denied = client
            .get_customer_insights(GetCustomerInsightsRequest {
                customer: "customers/r-big".into(),
            })
            .await
            .expect_err("not an insight reader");
        assert_eq!(denied.code(), Code::PermissionDenied, "{role:?}");
    }
    let anonymous = service
        .client(None)
        .get_customer_insights(GetCustomerInsightsRequest {
            customer: "customers/r-big".into(),
        })
        .await
        .expect_err("anonymous");
    assert_eq!(anonymous.code(), Code::Unauthenticated);
    let unknown_flag = admin
        .list_customers(ListCustomersRequest {
            flag: 99,
            ..ListCustomersRequest::default()
        })
        .await
        .expect_err("unknown flag");
    assert_eq!(bad_fields(&unknown_flag), vec!["flag"]);
    service.stop().await;
}
