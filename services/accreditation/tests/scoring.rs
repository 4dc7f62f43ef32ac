//! Scoring through gRPC: the rulebook and its versions, who may record which item,
//! caps per period under concurrency, retries, scorecards, and classes with the
//! `StandingChanged` events they publish.

mod support;

use std::time::Duration;

use distnet_platform::auth::{Claims, Role};
use distnet_proto::accreditation::v1::accreditation_service_client::AccreditationServiceClient;
use distnet_proto::accreditation::v1::*;
use distnet_proto::events::v1::StandingChanged;
use distnet_testkit::{Bearer, EventRecorder};
use support::{Client, TestService, metadata, reason};
use tonic::Code;
use tonic_types::StatusExt as _;

const SHOP: (f64, f64) = (30.6570, 104.0810);

fn record(request_id: &str, customer: &str, rule: &str) -> RecordScoreEventRequest {
    RecordScoreEventRequest {
        request_id: request_id.into(),
        customer: format!("customers/{customer}"),
        rule_code: rule.into(),
        note: String::new(),
    }
}

async fn scorecard(client: &mut Client, customer: &str, period: &str) -> Scorecard {
    client
        .get_scorecard(GetScorecardRequest {
            customer: format!("customers/{customer}"),
            period: period.into(),
        })
        .await
        .expect("scorecard")
        .into_inner()
}

async fn rulebook(client: &mut Client) -> Rulebook {
    client
        .get_rulebook(GetRulebookRequest {})
        .await
        .expect("rulebook")
        .into_inner()
}

async fn update(
    client: &mut Client,
    request_id: &str,
    rulebook: Rulebook,
) -> Result<Rulebook, tonic::Status> {
    client
        .update_rulebook(UpdateRulebookRequest {
            request_id: request_id.into(),
            rulebook: Some(rulebook),
        })
        .await
        .map(tonic::Response::into_inner)
}

fn fields(status: &tonic::Status) -> Vec<String> {
    status
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

async fn next_standing(recorder: &mut EventRecorder, within: Duration) -> Option<Standing> {
    let event = recorder.next(within).await.ok()?;
    let changed: StandingChanged = event.payload.expect("payload").to_msg().expect("decodes");
    changed.standing
}

#[tokio::test]
async fn the_default_rulebook_is_served_to_staff_until_one_is_stored() {
    let service = TestService::start().await;
    let served = rulebook(&mut service.as_role(Role::Driver, "d-1", &["area-01"])).await;
    assert_eq!(served.version, 1);
    assert_eq!(served.rules.len(), 20);
    assert_eq!((served.special_threshold, served.key_threshold), (300, 150));
    assert_eq!(
        (
            served.special_rebate_bp,
            served.key_rebate_bp,
            served.general_rebate_bp
        ),
        (150, 100, 50)
    );
    let shelf = served
        .rules
        .iter()
        .find(|r| r.code == "SHELF_TIDY")
        .expect("SHELF_TIDY");
    assert_eq!(shelf.dimension, Dimension::Constructiveness as i32);
    assert_eq!(shelf.recorder_roles, ["customer_manager"]);
    assert_eq!((shelf.points, shelf.cap_per_period), (2, 5));

    let error = service
        .as_role(Role::Retailer, "r-1", &[])
        .get_rulebook(GetRulebookRequest {})
        .await
        .expect_err("retailers do not read the handbook");
    assert_eq!(error.code(), Code::PermissionDenied);
    service.stop().await;
}

#[tokio::test]
async fn only_the_roles_a_rule_names_may_record_it_for_retailers_they_serve() {
    let service = TestService::start().await;
    service.know_customer("r-1", "area-01", "cm-1", SHOP).await;
    let mut driver = service.as_role(Role::Driver, "d-1", &["area-01"]);

    let error = driver
        .record_score_event(record("d-shelf", "r-1", "SHELF_TIDY"))
        .await
        .expect_err("drivers do not judge shelves");
    assert_eq!(error.code(), Code::PermissionDenied);
    assert_eq!(reason(&error), "ROLE_NOT_ALLOWED_BY_RULE");
    assert_eq!(metadata(&error, "rule"), "SHELF_TIDY");
    assert_eq!(metadata(&error, "role"), "driver");

    let event = driver
        .record_score_event(record("d-goods", "r-1", "GOODS_CHECKED_ON_HANDOVER"))
        .await
        .expect("drivers record the handover")
        .into_inner();
    assert!(event.name.starts_with("score-events/s-"));
    assert_eq!(event.customer, "customers/r-1");
    assert_eq!(
        (event.dimension, event.points),
        (Dimension::Cooperation as i32, 2)
    );
    assert_eq!(event.period, "2026-11");
    assert_eq!(
        (event.recorded_by.as_str(), event.recorder_role.as_str()),
        ("d-1", "driver")
    );
    assert_eq!(event.rulebook_version, 1);

    // Admins run the handbook, they do not score retailers.
    let error = service
        .admin()
        .record_score_event(record("a-1", "r-1", "SHELF_TIDY"))
        .await
        .expect_err("not a serving role");
    assert_eq!(error.code(), Code::PermissionDenied);

    let error = driver
        .record_score_event(record("d-bogus", "r-1", "NO_SUCH_RULE"))
        .await
        .expect_err("unknown rule");
    assert_eq!(error.code(), Code::InvalidArgument);
    assert_eq!(fields(&error), ["rule_code"]);

    // Serving another area's retailer is not possible, and does not reveal it.
    let error = service
        .as_role(Role::CustomerManager, "cm-2", &["area-02"])
        .record_score_event(record("cm2-shelf", "r-1", "SHELF_TIDY"))
        .await
        .expect_err("not theirs");
    assert_eq!(error.code(), Code::NotFound);
    let error = service
        .as_role(Role::Driver, "d-2", &["area-02"])
        .record_score_event(record("d2-goods", "r-1", "GOODS_CHECKED_ON_HANDOVER"))
        .await
        .expect_err("not their area");
    assert_eq!(error.code(), Code::NotFound);

    // The owner records without holding the area.
    service
        .as_role(Role::CustomerManager, "cm-1", &[])
        .record_score_event(record("cm1-shelf", "r-1", "SHELF_TIDY"))
        .await
        .expect("owner records");

    let error = driver
        .record_score_event(record("d-unknown", "r-404", "GOODS_CHECKED_ON_HANDOVER"))
        .await
        .expect_err("unknown retailer");
    assert_eq!(error.code(), Code::FailedPrecondition);
    assert_eq!(reason(&error), "CUSTOMER_NOT_KNOWN");

    let card = scorecard(&mut service.admin(), "r-1", "").await;
    assert_eq!((card.cooperation, card.constructiveness), (2, 2));
    assert_eq!((card.period_total, card.cumulative_points), (4, 4));
    service.stop().await;
}

#[tokio::test]
async fn a_rules_cap_holds_under_fifty_concurrent_recordings() {
    let db = support::migrated_db().await;
    let mut settings = support::settings(&db.url);
    // Fifty callers queue for one retailer's ledger; give them time to.
    settings.database.acquire_timeout_ms = 10_000;
    let service = TestService::start_with(&settings).await;
    service.know_customer("r-1", "area-01", "cm-1", SHOP).await;
    let cm = service.as_role(Role::CustomerManager, "cm-1", &["area-01"]);

    let calls = (0..50).map(|i| {
        let mut cm = cm.clone();
        async move {
            cm.record_score_event(record(&format!("shelf-{i}"), "r-1", "SHELF_TIDY"))
                .await
        }
    });
    let results = futures::future::join_all(calls).await;
    let recorded = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(recorded, 5, "the cap per period is 5");
    for error in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(error.code(), Code::FailedPrecondition, "{error:?}");
        assert_eq!(reason(error), "SCORE_CAP_REACHED");
        assert_eq!(metadata(error, "cap"), "5");
    }
    let card = scorecard(&mut cm.clone(), "r-1", "2026-11").await;
    assert_eq!(card.constructiveness, 10);

    // A new period, a new allowance; the class counts every period.
    service.clock.advance(chrono::Duration::days(10));
    let mut cm = cm.clone();
    cm.record_score_event(record("shelf-december", "r-1", "SHELF_TIDY"))
        .await
        .expect("December has its own cap");
    let december = scorecard(&mut cm, "r-1", "").await;
    assert_eq!(december.period, "2026-12");
    assert_eq!((december.constructiveness, december.cumulative_points), (2, 12));
    assert_eq!(scorecard(&mut cm, "r-1", "2026-11").await.period_total, 10);
    service.stop().await;
}

#[tokio::test]
async fn a_retried_recording_returns_the_original_and_counts_once() {
    let service = TestService::start().await;
    service.know_customer("r-1", "area-01", "cm-1", SHOP).await;
    let mut agent = service.as_role(Role::CallCenterAgent, "cc-1", &["area-01"]);
    let first = agent
        .record_score_event(record("call-1", "r-1", "ORDER_PLACED_ON_CALL"))
        .await
        .expect("recorded")
        .into_inner();
    let retried = agent
        .record_score_event(record("call-1", "r-1", "ORDER_PLACED_ON_CALL"))
        .await
        .expect("replayed")
        .into_inner();
    assert_eq!(retried, first);
    let card = scorecard(&mut agent, "r-1", "").await;
    assert_eq!((card.cooperation, card.cumulative_points), (2, 2));

    // The same id for a different request is a client bug, not a retry.
    let error = agent
        .record_score_event(record("call-1", "r-1", "STABLE_ORDERING"))
        .await
        .expect_err("reused id");
    assert_eq!(error.code(), Code::InvalidArgument);
    service.stop().await;
}

#[tokio::test]
async fn crossing_the_key_threshold_changes_the_class_and_publishes_one_standing_change() {
    let (service, mut recorder) = TestService::start_recording_standings().await;
    service.know_customer("r-1", "area-01", "cm-1", SHOP).await;
    let mut office = service.admin();
    let mut cm = service.as_role(Role::CustomerManager, "cm-1", &["area-01"]);

    // A small network: key from 10 points, special from 100.
    let mut lowered = rulebook(&mut office).await;
    lowered.key_threshold = 10;
    lowered.special_threshold = 100;
    let stored = update(&mut office, "lower", lowered).await.expect("updated");
    assert_eq!(stored.version, 2);
    assert_eq!(stored.updated_by, "lo-1");

    for i in 0..4 {
        cm.record_score_event(record(&format!("shelf-{i}"), "r-1", "SHELF_TIDY"))
            .await
            .expect("recorded");
    }
    let general = next_standing(&mut recorder, Duration::from_secs(30))
        .await
        .expect("classified on the first points");
    assert_eq!(
        (general.customer_class, general.rebate_bp),
        (CustomerClass::General as i32, 50)
    );
    let card = scorecard(&mut cm, "r-1", "").await;
    assert_eq!(card.cumulative_points, 8);
    assert_eq!(card.customer_class, CustomerClass::General as i32);

    let event = cm
        .record_score_event(record("shelf-4", "r-1", "SHELF_TIDY"))
        .await
        .expect("the fifth")
        .into_inner();
    assert_eq!(event.rulebook_version, 2);
    let key = next_standing(&mut recorder, Duration::from_secs(30))
        .await
        .expect("the class changed");
    assert_eq!(
        (key.customer_class, key.rebate_bp),
        (CustomerClass::Key as i32, 100)
    );
    assert_eq!(key.version, general.version + 1);
    assert!(
        next_standing(&mut recorder, Duration::from_millis(500))
            .await
            .is_none(),
        "points that change no class publish nothing"
    );
    let card = scorecard(&mut cm, "r-1", "").await;
    assert_eq!(
        (card.cumulative_points, card.customer_class, card.rebate_bp),
        (10, CustomerClass::Key as i32, 100)
    );
    let standing = office
        .get_standing(GetStandingRequest {
            customer: "customers/r-1".into(),
        })
        .await
        .expect("standing")
        .into_inner();
    assert_eq!(standing.customer_class, CustomerClass::Key as i32);

    // Raising the threshold classifies every scored retailer again.
    let mut raised = rulebook(&mut office).await;
    raised.key_threshold = 20;
    update(&mut office, "raise", raised).await.expect("updated");
    let again = next_standing(&mut recorder, Duration::from_secs(30))
        .await
        .expect("re-classified");
    assert_eq!(again.customer_class, CustomerClass::General as i32);

    // A new rebate rate alone moves the standing too.
    let mut richer = rulebook(&mut office).await;
    richer.general_rebate_bp = 60;
    update(&mut office, "richer", richer).await.expect("updated");
    let again = next_standing(&mut recorder, Duration::from_secs(30))
        .await
        .expect("new rebate");
    assert_eq!(again.rebate_bp, 60);

    service.stop().await;
    recorder.stop().await;
}

#[tokio::test]
async fn a_rulebook_update_needs_the_current_version_and_an_admin() {
    let service = TestService::start().await;
    let mut office = service.admin();
    let current = rulebook(&mut office).await;
    let mut next = current.clone();
    next.rules.retain(|r| r.code != "STORE_UPGRADED");
    let stored = update(&mut office, "v2", next.clone()).await.expect("updated");
    assert_eq!(stored.version, 2);
    assert_eq!(stored.rules.len(), 19);
    assert_eq!(rulebook(&mut office).await, stored);

    // A retry replays; the same edit from the old version is stale.
    assert_eq!(
        update(&mut office, "v2", next.clone()).await.expect("replay"),
        stored
    );
    let error = update(&mut office, "v2-again", next.clone())
        .await
        .expect_err("stale");
    assert_eq!(error.code(), Code::Aborted);
    assert_eq!(metadata(&error, "current_version"), "2");

    let mut cm = service.as_role(Role::CustomerManager, "cm-1", &["area-01"]);
    let mut from_current = stored.clone();
    from_current.key_threshold = 100;
    let error = update(&mut cm, "cm-edit", from_current)
        .await
        .expect_err("not an admin");
    assert_eq!(error.code(), Code::PermissionDenied);
    assert_eq!(rulebook(&mut office).await.version, 2);

    // Removed items can no longer be recorded.
    service.know_customer("r-1", "area-01", "cm-1", SHOP).await;
    let error = cm
        .record_score_event(record("upgrade", "r-1", "STORE_UPGRADED"))
        .await
        .expect_err("removed");
    assert_eq!(fields(&error), ["rule_code"]);
    service.stop().await;
}

#[tokio::test]
async fn an_invalid_rulebook_names_every_offending_field() {
    let service = TestService::start().await;
    let mut office = service.admin();
    let mut broken = rulebook(&mut office).await;
    broken.rules[1].code = broken.rules[0].code.clone();
    broken.rules[2].recorder_roles = vec!["driver".into(), "boss".into()];
    broken.rules[3].recorder_roles = vec!["admin".into()];
    broken.rules[4].dimension = Dimension::Unspecified as i32;
    broken.rules[5].points = 0;
    broken.rules[6].cap_per_period = -1;
    broken.special_threshold = 100;
    broken.key_threshold = 100;
    broken.key_rebate_bp = 10_001;
    broken.general_rebate_bp = -5;
    let error = update(&mut office, "broken", broken).await.expect_err("invalid");
    assert_eq!(error.code(), Code::InvalidArgument);
    let mut found = fields(&error);
    found.sort();
    let mut expected = vec![
        "rulebook.rules[1].code",
        "rulebook.rules[2].recorder_roles[1]",
        "rulebook.rules[3].recorder_roles[0]",
        "rulebook.rules[4].dimension",
        "rulebook.rules[5].points",
        "rulebook.rules[6].cap_per_period",
        "rulebook.special_threshold",
        "rulebook.key_rebate_bp",
        "rulebook.general_rebate_bp",
    ];
    expected.sort();
    assert_eq!(found, expected);
    assert_eq!(rulebook(&mut office).await.version, 1, "nothing stored");
    service.stop().await;
}

#[tokio::test]
async fn a_scorecard_is_read_in_scope_for_a_valid_period() {
    let service = TestService::start().await;
    service.know_customer("r-1", "area-01", "cm-1", SHOP).await;
    let mut inspector = service.as_role(Role::MarketInspector, "mi-1", &["area-01"]);
    inspector
        .record_score_event(record("clean", "r-1", "INSPECTION_PASSED_CLEAN"))
        .await
        .expect("recorded");
    inspector
        .record_score_event(RecordScoreEventRequest {
            note: "two cartons without tax stamps".into(),
            ..record("fake", "r-1", "COUNTERFEIT_FOUND")
        })
        .await
        .expect("violations are uncapped and negative");
    let card = scorecard(&mut inspector, "r-1", "2026-11").await;
    assert_eq!(
        (card.law_abidance, card.period_total, card.cumulative_points),
        (-90, -90, -90)
    );
    assert_eq!(
        (card.customer_class, card.rebate_bp),
        (CustomerClass::General as i32, 50)
    );
    assert_eq!(scorecard(&mut inspector, "r-1", "2026-10").await.period_total, 0);

    let error = inspector
        .get_scorecard(GetScorecardRequest {
            customer: "customers/r-1".into(),
            period: "2026-13".into(),
        })
        .await
        .expect_err("no such month");
    assert_eq!(error.code(), Code::InvalidArgument);
    assert_eq!(fields(&error), ["period"]);

    let error = service
        .as_role(Role::CustomerManager, "cm-2", &["area-02"])
        .get_scorecard(GetScorecardRequest {
            customer: "customers/r-1".into(),
            period: String::new(),
        })
        .await
        .expect_err("out of scope");
    assert_eq!(error.code(), Code::NotFound);

    // A retailer sees its own card and no other.
    let token = distnet_testkit::token(
        &Claims::new("r-1", Role::Retailer, Duration::from_secs(3600)).with_customer("r-1"),
    );
    let mut retailer =
        AccreditationServiceClient::with_interceptor(service.channel.clone(), Bearer(Some(token)));
    assert_eq!(scorecard(&mut retailer, "r-1", "").await.law_abidance, -90);
    service.know_customer("r-2", "area-01", "cm-1", SHOP).await;
    let error = retailer
        .get_scorecard(GetScorecardRequest {
            customer: "customers/r-2".into(),
            period: String::new(),
        })
        .await
        .expect_err("another retailer");
    assert_eq!(error.code(), Code::NotFound);
    service.stop().await;
}
