//! Service cases under first-contact responsibility, through a real server, real
//! Postgres, a real event relay and an injected clock.

mod support;

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use distnet_platform::auth::Role;
use distnet_platform::clock::ManualClock;
use distnet_proto::accreditation::v1::{CustomerClass, Standing};
use distnet_proto::customers::v1::{
    Case, CaseAction, CaseCategory, CaseStatus, Channel, CloseCaseRequest, GetCaseRequest,
    GetCaseStatsRequest, ListCasesRequest, OpenCaseRequest, RecordCallbackRequest, ResolveCaseRequest,
    TransferCaseRequest,
};
use distnet_proto::events::v1::event_sink_client::EventSinkClient;
use distnet_proto::events::v1::{CaseEscalated, DeliverRequest, EventEnvelope, StandingChanged};
use distnet_testkit::{Bearer, EventRecorder};
use prost::Name as _;
use support::{Client, TestService, bad_fields, create_request, reason, retailer};
use tonic::Code;

/// Monday 23 November 2026, 10:00 in Chengdu.
fn start_time() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 2, 0, 0)
        .single()
        .expect("valid time")
}

struct World {
    service: TestService,
    clock: ManualClock,
    events: EventRecorder,
    _db: distnet_testkit::TestDb,
}

/// Customers on a manual clock, with a sweep every 50 ms and `CaseEscalated` relayed
/// to a recorder; retailers r-1 (area-01, owned by cm-001) and r-2 (area-02, cm-002).
async fn world() -> World {
    let db = TestService::database().await;
    let mut settings = distnet_testkit::settings(&db.url);
    let events = EventRecorder::start(&settings).await.expect("recorder");
    settings
        .events
        .subscriptions
        .insert("CaseEscalated".into(), vec!["allocation".into()]);
    settings.services.allocation.url = format!("http://{}", events.addr);
    settings.customers.case_sweep_ms = 50;
    let clock = ManualClock::new(start_time());
    let service = TestService::start_clocked(&settings, Arc::new(clock.clone())).await;
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
    World {
        service,
        clock,
        events,
        _db: db,
    }
}

fn agent(world: &World, sub: &str, area: &str) -> Client {
    world.service.as_role(Role::CallCenterAgent, sub, &[area])
}

fn open(request_id: &str, customer: &str, category: CaseCategory) -> OpenCaseRequest {
    OpenCaseRequest {
        request_id: request_id.into(),
        customer: customer.into(),
        category: category as i32,
        channel: Channel::CallIn as i32,
        description: "两条中华少了一条，送货员说仓库没配齐".into(),
    }
}

fn transfer(request_id: &str, name: &str, to: &str) -> TransferCaseRequest {
    TransferCaseRequest {
        request_id: request_id.into(),
        name: name.into(),
        to_handler: to.into(),
        reason: "needs the warehouse".into(),
    }
}

fn close(request_id: &str, name: &str) -> CloseCaseRequest {
    CloseCaseRequest {
        request_id: request_id.into(),
        name: name.into(),
    }
}

fn callback(request_id: &str, name: &str, satisfied: bool) -> RecordCallbackRequest {
    RecordCallbackRequest {
        request_id: request_id.into(),
        name: name.into(),
        outcome: "phoned the shop owner".into(),
        satisfied,
    }
}

fn resolve(request_id: &str, name: &str) -> ResolveCaseRequest {
    ResolveCaseRequest {
        request_id: request_id.into(),
        name: name.into(),
        resolution: "the missing carton goes out with tomorrow's delivery".into(),
    }
}

fn actions(case: &Case) -> Vec<CaseAction> {
    case.history
        .iter()
        .map(|s| CaseAction::try_from(s.action).unwrap_or(CaseAction::Unspecified))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_transferred_twice_keeps_its_first_contact_owner_and_closes_only_after_a_callback() {
    let world = world().await;
    let mut first = agent(&world, "cc-001", "area-01");
    let opened = first
        .open_case(open("open-1", "customers/r-1", CaseCategory::Delivery))
        .await
        .expect("opened")
        .into_inner();
    assert_eq!(opened.first_contact_owner, "cc-001");
    assert_eq!(opened.handler, "cc-001");
    assert_eq!(opened.status, CaseStatus::Open as i32);
    assert_eq!(opened.area_id, "area-01");
    // Delivery cases of a customer with no class yet: 2 h to respond, 24 h to resolve.
    let open_s = opened.open_time.as_ref().map_or(0, |t| t.seconds);
    assert_eq!(
        opened.respond_by.as_ref().map(|t| t.seconds - open_s),
        Some(2 * 3600)
    );
    assert_eq!(
        opened.resolve_by.as_ref().map(|t| t.seconds - open_s),
        Some(24 * 3600)
    );

    // A retry of the same request is the same case.
    let again = first
        .open_case(open("open-1", "customers/r-1", CaseCategory::Delivery))
        .await
        .expect("replayed")
        .into_inner();
    assert_eq!(again.name, opened.name);

    let once = first
        .transfer_case(transfer("t-1", &opened.name, "cm-001"))
        .await
        .expect("transferred to the customer manager")
        .into_inner();
    assert_eq!(once.handler, "cm-001");
    assert!(once.first_response_time.is_some());
    let mut manager = world
        .service
        .as_role(Role::CustomerManager, "cm-001", &["area-01"]);
    let twice = manager
        .transfer_case(transfer("t-2", &opened.name, "mi-007"))
        .await
        .expect("transferred to the inspector")
        .into_inner();
    assert_eq!(
        twice.first_contact_owner, "cc-001",
        "first contact stays after two transfers"
    );
    assert_eq!(twice.handler, "mi-007");
    assert_eq!(
        actions(&twice),
        vec![
            CaseAction::Opened,
            CaseAction::Transferred,
            CaseAction::Transferred
        ]
    );
    assert_eq!(twice.history[2].from_handler, "cm-001");
    assert_eq!(twice.history[2].to_handler, "mi-007");

    // The first-contact owner still sees it and may still act on it.
    let seen = first
        .get_case(GetCaseRequest {
            name: opened.name.clone(),
        })
        .await
        .expect("owner reads")
        .into_inner();
    assert_eq!(seen.first_contact_owner, "cc-001");

    let mut inspector = world
        .service
        .as_role(Role::MarketInspector, "mi-007", &["area-01"]);
    let resolved = inspector
        .resolve_case(resolve("res-1", &opened.name))
        .await
        .expect("resolved")
        .into_inner();
    assert_eq!(resolved.status, CaseStatus::Resolved as i32);

    let refused = first
        .close_case(close("close-1", &opened.name))
        .await
        .expect_err("no callback yet");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert_eq!(reason(&refused), "CASE_STATE");

    first
        .record_callback(callback("cb-1", &opened.name, true))
        .await
        .expect("called back");
    let closed = first
        .close_case(close("close-2", &opened.name))
        .await
        .expect("closed")
        .into_inner();
    assert_eq!(closed.status, CaseStatus::Closed as i32);
    assert_eq!(closed.first_contact_owner, "cc-001");
    assert!(
        closed
            .callback
            .as_ref()
            .is_some_and(|c| c.satisfied && c.called_by == "cc-001")
    );
    assert_eq!(
        actions(&closed),
        vec![
            CaseAction::Opened,
            CaseAction::Transferred,
            CaseAction::Transferred,
            CaseAction::Resolved,
            CaseAction::CalledBack,
            CaseAction::Closed
        ]
    );
    // A closed case takes no more actions.
    let late = inspector
        .resolve_case(resolve("res-2", &opened.name))
        .await
        .expect_err("closed");
    assert_eq!(late.code(), Code::FailedPrecondition);
    world.service.stop().await;
    world.events.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unhappy_callback_reopens_the_case() {
    let world = world().await;
    let mut first = agent(&world, "cc-001", "area-01");
    let case = first
        .open_case(open("open-1", "customers/r-1", CaseCategory::ProductQuality))
        .await
        .expect("opened")
        .into_inner();
    first
        .resolve_case(resolve("res-1", &case.name))
        .await
        .expect("resolved");
    let reopened = first
        .record_callback(callback("cb-1", &case.name, false))
        .await
        .expect("called back")
        .into_inner();
    assert_eq!(reopened.status, CaseStatus::Open as i32);
    assert!(reopened.resolve_time.is_none());
    let refused = first
        .close_case(close("close-1", &case.name))
        .await
        .expect_err("open");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    first
        .resolve_case(resolve("res-2", &case.name))
        .await
        .expect("resolved again");
    // The earlier (unhappy) callback does not count for the new resolution.
    let refused = first
        .close_case(close("close-2", &case.name))
        .await
        .expect_err("no new callback");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    first
        .record_callback(callback("cb-2", &case.name, true))
        .await
        .expect("called back");
    first
        .close_case(close("close-3", &case.name))
        .await
        .expect("closed");
    world.service.stop().await;
    world.events.stop().await;
}

async fn wait_escalated(client: &mut Client, name: &str) -> Case {
    for _ in 0..200 {
        let case = client
            .get_case(GetCaseRequest { name: name.into() })
            .await
            .expect("read")
            .into_inner();
        if case.escalated {
            return case;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{name} did not escalate");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overdue_case_escalates_exactly_once() {
    let mut world = world().await;
    let mut first = agent(&world, "cc-001", "area-01");
    let late = first
        .open_case(open("open-1", "customers/r-1", CaseCategory::Delivery))
        .await
        .expect("opened")
        .into_inner();
    let answered = first
        .open_case(open("open-2", "customers/r-1", CaseCategory::Delivery))
        .await
        .expect("opened")
        .into_inner();
    first
        .transfer_case(transfer("t-1", &answered.name, "cm-001"))
        .await
        .expect("responded in time");

    // Past the 2 h response deadline: only the case nobody answered escalates.
    world.clock.advance(chrono::Duration::hours(3));
    let escalated = wait_escalated(&mut first, &late.name).await;
    let steps = actions(&escalated);
    assert_eq!(steps.iter().filter(|a| **a == CaseAction::Escalated).count(), 1);
    assert_eq!(
        escalated.history.last().map(|s| s.note.as_str()),
        Some("RESPONSE_OVERDUE")
    );

    let event = world
        .events
        .next(Duration::from_secs(20))
        .await
        .expect("CaseEscalated");
    assert_eq!(event.event_type, CaseEscalated::full_name());
    let payload: CaseEscalated = event.payload.expect("payload").to_msg().expect("decodes");
    assert_eq!(payload.case.map(|c| c.name), Some(late.name.clone()));
    assert_eq!(payload.cause, "RESPONSE_OVERDUE");

    // Later the answered one misses its resolution deadline and escalates once; the
    // first does not escalate again although it is now overdue for resolution too.
    world.clock.advance(chrono::Duration::hours(24));
    let second = wait_escalated(&mut first, &answered.name).await;
    assert_eq!(
        second.history.last().map(|s| s.note.as_str()),
        Some("RESOLUTION_OVERDUE")
    );
    let event = world
        .events
        .next(Duration::from_secs(20))
        .await
        .expect("second event");
    let payload: CaseEscalated = event.payload.expect("payload").to_msg().expect("decodes");
    assert_eq!(payload.case.map(|c| c.name), Some(answered.name.clone()));
    // Several sweeps later, still exactly one escalation each and no more events.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        world.events.next(Duration::from_millis(300)).await.is_err(),
        "no further events"
    );
    let again = first
        .get_case(GetCaseRequest {
            name: late.name.clone(),
        })
        .await
        .expect("read")
        .into_inner();
    assert_eq!(
        actions(&again)
            .iter()
            .filter(|a| **a == CaseAction::Escalated)
            .count(),
        1
    );

    let overdue = first
        .list_cases(ListCasesRequest {
            overdue_only: true,
            ..ListCasesRequest::default()
        })
        .await
        .expect("listed")
        .into_inner();
    assert_eq!(overdue.cases.len(), 2);
    world.service.stop().await;
    world.events.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_special_customer_gets_half_the_time_through_the_standing_event() {
    let world = world().await;
    let standing = StandingChanged {
        standing: Some(Standing {
            customer: "customers/r-1".into(),
            customer_class: CustomerClass::Special as i32,
            version: 3,
            area_id: "area-01".into(),
            ..Standing::default()
        }),
    };
    let envelope = EventEnvelope {
        event_id: "0193a5c0-0000-7000-8000-000000000001".into(),
        event_type: StandingChanged::full_name(),
        source: "accreditation".into(),
        aggregate: "customers/r-1".into(),
        payload: Some(prost_types::Any::from_msg(&standing).expect("encodes")),
        ..EventEnvelope::default()
    };
    let mut sink = EventSinkClient::with_interceptor(
        world.service.channel.clone(),
        Bearer(Some(distnet_testkit::token_for(
            Role::Service,
            "accreditation",
            &[],
        ))),
    );
    sink.deliver(DeliverRequest {
        events: vec![envelope],
    })
    .await
    .expect("delivered");

    let mut first = agent(&world, "cc-001", "area-01");
    let case = first
        .open_case(open("open-1", "customers/r-1", CaseCategory::Delivery))
        .await
        .expect("opened")
        .into_inner();
    assert_eq!(case.customer_class, "SPECIAL");
    let open_s = case.open_time.as_ref().map_or(0, |t| t.seconds);
    assert_eq!(case.respond_by.as_ref().map(|t| t.seconds - open_s), Some(3600));
    assert_eq!(
        case.resolve_by.as_ref().map(|t| t.seconds - open_s),
        Some(12 * 3600)
    );
    world.service.stop().await;
    world.events.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_and_monthly_stats() {
    let world = world().await;
    let mut one = agent(&world, "cc-001", "area-01");
    let mut two = agent(&world, "cc-002", "area-02");
    let mut names = Vec::new();
    for (i, category) in [
        CaseCategory::Delivery,
        CaseCategory::Billing,
        CaseCategory::Delivery,
    ]
    .into_iter()
    .enumerate()
    {
        let case = one
            .open_case(open(&format!("o-{i}"), "customers/r-1", category))
            .await
            .expect("opened")
            .into_inner();
        names.push(case.name);
        world.clock.advance(chrono::Duration::minutes(10));
    }
    two.open_case(open("o-x", "customers/r-2", CaseCategory::Other))
        .await
        .expect("opened in area-02");
    world.clock.advance(chrono::Duration::hours(2));
    one.resolve_case(resolve("r-0", &names[0]))
        .await
        .expect("resolved");
    one.record_callback(callback("c-0", &names[0], true))
        .await
        .expect("called back");
    one.close_case(close("x-0", &names[0])).await.expect("closed");

    // Newest first, paged; an agent sees the cases of its own area only.
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = one
            .list_cases(ListCasesRequest {
                page_size: 2,
                page_token: token.clone(),
                ..ListCasesRequest::default()
            })
            .await
            .expect("listed")
            .into_inner();
        seen.extend(page.cases.into_iter().map(|c| c.name));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let newest_first: Vec<String> = names.iter().rev().cloned().collect();
    assert_eq!(seen, newest_first);
    let closed = one
        .list_cases(ListCasesRequest {
            status: CaseStatus::Closed as i32,
            ..ListCasesRequest::default()
        })
        .await
        .expect("listed")
        .into_inner();
    assert_eq!(closed.cases.len(), 1);
    let first_page = one
        .list_cases(ListCasesRequest {
            page_size: 1,
            ..ListCasesRequest::default()
        })
        .await
        .expect("listed")
        .into_inner();
    let reused = one
        .list_cases(ListCasesRequest {
            page_size: 1,
            page_token: first_page.next_page_token,
            status: CaseStatus::Open as i32,
            ..ListCasesRequest::default()
        })
        .await
        .expect_err("token of another filter");
    assert_eq!(reused.code(), Code::InvalidArgument);

    let stats = world
        .service
        .admin()
        .get_case_stats(GetCaseStatsRequest {
            month: "2026-11".into(),
            area_id: String::new(),
        })
        .await
        .expect("stats")
        .into_inner();
    let total = stats.categories.last().expect("a total row");
    assert_eq!(total.category, CaseCategory::Unspecified as i32);
    assert_eq!((total.opened, total.resolved, total.closed), (4, 1, 1));
    let delivery = stats
        .categories
        .iter()
        .find(|c| c.category == CaseCategory::Delivery as i32)
        .expect("delivery row");
    assert_eq!(delivery.opened, 2);
    // Resolved 2 h 30 min after opening (opened, then 10 + 10 + 10 min and 2 h passed).
    assert!(
        (delivery.mean_hours_to_resolve - 2.5).abs() < 1e-6,
        "{delivery:?}"
    );
    // Both missed the 2 h response deadline: the first was answered (resolved) at
    // 2 h 30 min, the second not at all.
    assert_eq!(delivery.overdue, 2);

    let own_area = one
        .get_case_stats(GetCaseStatsRequest {
            month: "2026-11".into(),
            area_id: String::new(),
        })
        .await
        .expect("own areas")
        .into_inner();
    assert_eq!(own_area.categories.last().map(|t| t.opened), Some(3));
    let december = one
        .get_case_stats(GetCaseStatsRequest {
            month: "2026-12".into(),
            area_id: String::new(),
        })
        .await
        .expect("empty month")
        .into_inner();
    assert_eq!(december.categories.last().map(|t| t.opened), Some(0));
    world.service.stop().await;
    world.events.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_rpcs_are_validated_and_authorized_by_role_and_scope() {
    let world = world().await;
    let mut first = agent(&world, "cc-001", "area-01");
    let case = first
        .open_case(open("open-1", "customers/r-1", CaseCategory::Delivery))
        .await
        .expect("opened")
        .into_inner();

    // Invalid input names its fields.
    let bad = first
        .open_case(OpenCaseRequest {
            request_id: "open-bad".into(),
            customer: "customers/r-1".into(),
            category: 0,
            channel: 99,
            description: String::new(),
        })
        .await
        .expect_err("invalid");
    assert_eq!(bad.code(), Code::InvalidArgument);
    let fields = bad_fields(&bad);
    for field in ["category", "channel", "description"] {
        assert!(fields.iter().any(|f| f == field), "{field} in {fields:?}");
    }
    let bad = first
        .transfer_case(TransferCaseRequest {
            request_id: "t-bad".into(),
            name: case.name.clone(),
            to_handler: "not a staff id".into(),
            reason: String::new(),
        })
        .await
        .expect_err("invalid");
    assert_eq!(
        bad_fields(&bad),
        vec!["to_handler".to_string(), "reason".to_string()]
    );
    let bad = first
        .get_case_stats(GetCaseStatsRequest {
            month: "2026-13".into(),
            area_id: String::new(),
        })
        .await
        .expect_err("invalid month");
    assert_eq!(bad.code(), Code::InvalidArgument);

    // No token.
    let denied = world
        .service
        .client(None)
        .get_case(GetCaseRequest {
            name: case.name.clone(),
        })
        .await
        .expect_err("anonymous");
    assert_eq!(denied.code(), Code::Unauthenticated);

    // Roles that take no complaints.
    for role in [Role::Driver, Role::Dispatcher, Role::AllocationPlanner] {
        let denied = world
            .service
            .as_role(role, "someone", &["area-01"])
            .open_case(open("open-x", "customers/r-1", CaseCategory::Other))
            .await
            .expect_err("role may not open");
        assert_eq!(denied.code(), Code::PermissionDenied, "{role:?}");
    }
    // Out of scope: another area's customer does not exist for this agent.
    let hidden = first
        .open_case(open("open-2", "customers/r-2", CaseCategory::Other))
        .await
        .expect_err("other area");
    assert_eq!(hidden.code(), Code::NotFound);
    let hidden = agent(&world, "cc-002", "area-02")
        .get_case(GetCaseRequest {
            name: case.name.clone(),
        })
        .await
        .expect_err("other area's case");
    assert_eq!(hidden.code(), Code::NotFound);
    // Same area, but neither its first contact nor its handler: may read, not act.
    let mut colleague = agent(&world, "cc-009", "area-01");
    colleague
        .get_case(GetCaseRequest {
            name: case.name.clone(),
        })
        .await
        .expect("a colleague in the area reads it");
    let denied = colleague
        .resolve_case(resolve("res-x", &case.name))
        .await
        .expect_err("not theirs");
    assert_eq!(denied.code(), Code::PermissionDenied);
    // The retailer reads its own cases only, and acts on none.
    let mut shop = world.service.client(Some(distnet_testkit::token(
        &distnet_platform::auth::Claims::new("shop-r-1", Role::Retailer, Duration::from_secs(600))
            .with_customer("r-1"),
    )));
    shop.get_case(GetCaseRequest {
        name: case.name.clone(),
    })
    .await
    .expect("own case");
    let denied = shop
        .close_case(close("close-x", &case.name))
        .await
        .expect_err("retailers do not close cases");
    assert_eq!(denied.code(), Code::PermissionDenied);
    let mut other_shop = world.service.client(Some(distnet_testkit::token(
        &distnet_platform::auth::Claims::new("shop-r-2", Role::Retailer, Duration::from_secs(600))
            .with_customer("r-2"),
    )));
    let hidden = other_shop
        .get_case(GetCaseRequest {
            name: case.name.clone(),
        })
        .await
        .expect_err("another shop's case");
    assert_eq!(hidden.code(), Code::NotFound);
    // Statistics: staff see their own areas only.
    let denied = first
        .get_case_stats(GetCaseStatsRequest {
            month: "2026-11".into(),
            area_id: "area-02".into(),
        })
        .await
        .expect_err("another area's stats");
    assert_eq!(denied.code(), Code::PermissionDenied);
    let denied = shop
        .get_case_stats(GetCaseStatsRequest {
            month: "2026-11".into(),
            area_id: String::new(),
        })
        .await
        .expect_err("retailers read no stats");
    assert_eq!(denied.code(), Code::PermissionDenied);
    world.service.stop().await;
    world.events.stop().await;
}
