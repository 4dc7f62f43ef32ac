//! Visit planning and compliance through a real server, Postgres and an injected clock.

mod support;

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use distnet_platform::auth::Role;
use distnet_platform::clock::ManualClock;
use distnet_proto::common::v1::LatLng;
use distnet_proto::customers::v1::{
    BatchGetCustomersRequest, Channel, GetVisitComplianceRequest, GetVisitPlanRequest, LogInteractionRequest,
    VisitPlan,
};
use support::{Client, TestService, create_request, retailer};
use tonic::Code;

const REP_CUSTOMERS: usize = 200;

/// (latitude, longitude) of the i-th shop: a 20 × 10 grid about 150 m apart.
fn spot(i: usize) -> (f64, f64) {
    (
        30.60 + (i % 20) as f64 * 0.0014,
        104.00 + (i / 20) as f64 * 0.0016,
    )
}

/// cm-001 owns 200 shops and cm-002 40 in the same area, visit days Monday–Friday.
async fn world(clock: &ManualClock) -> (TestService, distnet_testkit::TestDb) {
    let db = TestService::database().await;
    let settings = distnet_testkit::settings(&db.url);
    let service = TestService::start_clocked(&settings, Arc::new(clock.clone())).await;
    let mut admin = service.admin();
    for i in 0..REP_CUSTOMERS + 40 {
        let owner = if i < REP_CUSTOMERS { "cm-001" } else { "cm-002" };
        let id = format!("r-{i:03}");
        let mut customer = retailer(&id, "area-01", owner);
        let (lat, lng) = spot(i);
        customer.location = Some(LatLng {
            latitude: lat,
            longitude: lng,
        });
        customer.visit_weekday = 1 + (i % 5) as i32;
        admin
            .create_customer(create_request(&format!("c-{i}"), &id, customer))
            .await
            .expect("customer created");
    }
    (service, db)
}

/// 10:00 in Chengdu on `day` November 2026.
fn local_ten(day: u32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, day, 2, 0, 0)
        .single()
        .expect("valid time")
}

async fn plan(client: &mut Client, rep: &str, date: &str) -> VisitPlan {
    client
        .get_visit_plan(GetVisitPlanRequest {
            rep: rep.into(),
            date: date.into(),
        })
        .await
        .expect("plan")
        .into_inner()
}

fn visit(request_id: &str, customer: &str, at: (f64, f64)) -> LogInteractionRequest {
    LogInteractionRequest {
        request_id: request_id.into(),
        customer: customer.into(),
        channel: Channel::Visit as i32,
        outcome: "ORDER_TAKEN".into(),
        check_in: Some(LatLng {
            latitude: at.0,
            longitude: at.1,
        }),
        ..LogInteractionRequest::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rep_with_two_hundred_customers_gets_forty_visits_a_day_in_walking_order() {
    let clock = ManualClock::new(local_ten(23));
    let (service, _db) = world(&clock).await;
    let mut rep = service.as_role(Role::CustomerManager, "cm-001", &["area-01"]);

    // Monday: the 40 shops with Monday as their visit day, all cm-001's.
    let monday = plan(&mut rep, "", "").await;
    assert_eq!(monday.date, "2026-11-23");
    assert_eq!(monday.visits.len(), 40);
    assert!(monday.visits.iter().all(|v| !v.overdue && v.visit_weekday == 1));
    let names: Vec<String> = monday.visits.iter().map(|v| v.customer.clone()).collect();
    let owners = service
        .admin()
        .batch_get_customers(BatchGetCustomersRequest { names })
        .await
        .expect("read")
        .into_inner();
    assert!(
        owners.customers.iter().all(|c| c.owner_id == "cm-001"),
        "none of another rep's"
    );
    // Walking order: each leg is to the nearest shop not yet visited.
    assert_eq!(monday.visits[0].from_previous_m, 0.0);
    let total: f64 = monday.visits.iter().map(|v| v.from_previous_m).sum();
    assert!((total - monday.total_m).abs() < 1e-6);
    assert!(
        monday.visits.iter().skip(1).all(|v| v.from_previous_m < 1_000.0),
        "a neighbour-to-neighbour walk over a 150 m grid has no long legs"
    );

    // Two Monday visits: one at the shop, one checked in ≈2 km away (flagged).
    let first = &monday.visits[0].customer;
    let second = &monday.visits[1].customer;
    let at = |name: &str| {
        let i: usize = name.trim_start_matches("customers/r-").parse().expect("number");
        spot(i)
    };
    let done = rep
        .log_interaction(visit("v-1", first, at(first)))
        .await
        .expect("visited")
        .into_inner();
    assert!(!done.flagged);
    let (lat, lng) = at(second);
    let far = rep
        .log_interaction(visit("v-2", second, (lat + 0.018, lng)))
        .await
        .expect("visited")
        .into_inner();
    assert!(far.flagged, "a check-in 2 km from the store is flagged");

    // Tuesday: Monday's 38 unvisited shops first (overdue), then Tuesday's 40.
    clock.set(local_ten(24));
    let tuesday = plan(&mut rep, "", "").await;
    assert_eq!(tuesday.visits.len(), 78);
    assert!(
        tuesday.visits[..38]
            .iter()
            .all(|v| v.overdue && v.visit_weekday == 1)
    );
    assert!(
        tuesday.visits[38..]
            .iter()
            .all(|v| !v.overdue && v.visit_weekday == 2)
    );
    assert!(
        !tuesday
            .visits
            .iter()
            .any(|v| &v.customer == first || &v.customer == second)
    );
    // Another date on request.
    let friday = plan(&mut rep, "", "2026-11-27").await;
    assert_eq!(friday.visits.iter().filter(|v| !v.overdue).count(), 40);

    // Wednesday: one of Monday's shops visited late.
    clock.set(local_ten(25));
    let late = &tuesday.visits[0].customer;
    rep.log_interaction(visit("v-3", late, at(late)))
        .await
        .expect("visited");
    let week = rep
        .get_visit_compliance(GetVisitComplianceRequest {
            rep: String::new(),
            week: "2026-W48".into(),
        })
        .await
        .expect("compliance")
        .into_inner();
    assert_eq!(week.planned, 200);
    assert_eq!((week.done, week.late, week.flagged), (2, 1, 1));
    // Monday's other 37 and Tuesday's 40 missed; Wednesday (today) to Friday ahead.
    assert_eq!((week.missed, week.pending), (77, 120));

    // The next week starts clean: everything pending.
    let next = service
        .admin()
        .get_visit_compliance(GetVisitComplianceRequest {
            rep: "cm-001".into(),
            week: "2026-W49".into(),
        })
        .await
        .expect("admin reads any rep")
        .into_inner();
    assert_eq!((next.planned, next.done, next.pending), (200, 0, 200));
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn visit_plans_are_a_reps_own() {
    let clock = ManualClock::new(local_ten(23));
    let (service, _db) = world(&clock).await;
    let mut other = service.as_role(Role::CustomerManager, "cm-002", &["area-01"]);
    let own = plan(&mut other, "", "").await;
    assert_eq!(own.rep, "cm-002");
    assert_eq!(own.visits.len(), 8);
    let denied = other
        .get_visit_plan(GetVisitPlanRequest {
            rep: "cm-001".into(),
            date: String::new(),
        })
        .await
        .expect_err("another rep's plan");
    assert_eq!(denied.code(), Code::PermissionDenied);
    let denied = service
        .as_role(Role::CallCenterAgent, "cc-001", &["area-01"])
        .get_visit_plan(GetVisitPlanRequest::default())
        .await
        .expect_err("agents have no visit plan");
    assert_eq!(denied.code(), Code::PermissionDenied);
    let bad = other
        .get_visit_plan(GetVisitPlanRequest {
            rep: String::new(),
            date: "23/11/2026".into(),
        })
        .await
        .expect_err("bad date");
    assert_eq!(bad.code(), Code::InvalidArgument);
    let bad = other
        .get_visit_compliance(GetVisitComplianceRequest {
            rep: String::new(),
            week: "2026-48".into(),
        })
        .await
        .expect_err("bad week");
    assert_eq!(bad.code(), Code::InvalidArgument);
    let admin_view = plan(&mut service.admin(), "cm-001", "2026-11-23").await;
    assert_eq!(admin_view.visits.len(), 40);
    service.stop().await;
}
