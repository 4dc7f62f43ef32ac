//! Tier gradings through gRPC: every licensed retailer gets exactly one tier, the
//! composite rises with the tier, the result is deterministic, publishing changes
//! standings (and emits `StandingChanged`) exactly where the tier changed, and
//! overrides need a reason.

mod support;

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use distnet_platform::auth::Role;
use distnet_proto::accreditation::v1::*;
use distnet_proto::common::v1::LatLng;
use distnet_proto::events::v1::StandingChanged;
use distnet_testkit::EventRecorder;
use support::{Client, TestService, reason};
use tonic::Code;

const RETAILERS: usize = 60;
const WITHOUT_HISTORY: usize = 10;

fn id(i: usize) -> String {
    format!("r-{i:03}")
}

/// Licenses `RETAILERS` shops 111 m apart, as the office would.
async fn license_all(service: &TestService) {
    let mut cm = service.as_role(Role::CustomerManager, "cm-1", &["area-01"]);
    let mut inspector = service.as_role(Role::MarketInspector, "mi-1", &["area-01"]);
    let mut office = service.admin();
    for i in 0..RETAILERS {
        let location = (30.60 + 0.001 * i as f64, 104.06);
        service.know_customer(&id(i), "area-01", "cm-1", location).await;
        let application = cm
            .submit_application(SubmitApplicationRequest {
                request_id: format!("apply-{i}"),
                customer: format!("customers/{}", id(i)),
                kind: ApplicationKind::New as i32,
                premises: Some(Premises {
                    location: Some(LatLng {
                        latitude: location.0,
                        longitude: location.1,
                    }),
                    ..Premises::default()
                }),
                documents: vec![],
            })
            .await
            .expect("applied")
            .into_inner();
        inspector
            .record_inspection(RecordInspectionRequest {
                request_id: format!("visit-{i}"),
                name: application.name.clone(),
                outcome: InspectionOutcome::Pass as i32,
                checklist: vec![],
            })
            .await
            .expect("inspected");
        office
            .decide_application(DecideApplicationRequest {
                request_id: format!("decide-{i}"),
                name: application.name,
                decision: Decision::Approve as i32,
                reasons: vec![],
            })
            .await
            .expect("licensed");
    }
}

/// Purchases for all but the last `WITHOUT_HISTORY` retailers; `bump` raises some.
async fn record_purchases(office: &mut Client, request_id: &str, bump: &[usize]) {
    let records = (0..RETAILERS - WITHOUT_HISTORY)
        .map(|i| {
            // A skewed 80/20 shape: a few big buyers, many small ones.
            let base = if i % 5 == 0 {
                400_000
            } else {
                20_000 + 1_000 * i as i64
            };
            let amount = if bump.contains(&i) { base * 50 } else { base };
            PurchaseRecord {
                customer: format!("customers/{}", id(i)),
                amount_fen: amount * 100,
                cartons: amount / 250,
            }
        })
        .collect();
    office
        .record_purchases(RecordPurchasesRequest {
            request_id: request_id.into(),
            period: "2026-11".into(),
            records,
        })
        .await
        .expect("purchases recorded");
}

async fn run(planner: &mut Client, request_id: &str) -> Grading {
    planner
        .run_grading(RunGradingRequest {
            request_id: request_id.into(),
            period: "2026-11".into(),
            weights: None,
            tiers: 10,
        })
        .await
        .expect("graded")
        .into_inner()
}

async fn assignments(planner: &mut Client, grading: &str) -> Vec<TierAssignment> {
    let mut all = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = planner
            .list_tier_assignments(ListTierAssignmentsRequest {
                grading: grading.into(),
                page_size: 7,
                page_token,
                tier: 0,
            })
            .await
            .expect("assignments")
            .into_inner();
        all.extend(page.assignments);
        if page.next_page_token.is_empty() {
            return all;
        }
        page_token = page.next_page_token;
    }
}

async fn publish(planner: &mut Client, request_id: &str, grading: &str) -> Result<Grading, tonic::Status> {
    planner
        .publish_grading(PublishGradingRequest {
            request_id: request_id.into(),
            name: grading.into(),
            effective_cycle: "2026-W49".into(),
        })
        .await
        .map(|r| r.into_inner())
}

/// Exactly `count` standing events, and then no more.
async fn standings_published(recorder: &mut EventRecorder, count: usize) -> Vec<Standing> {
    let mut standings = Vec::new();
    for _ in 0..count {
        let event = recorder
            .next(Duration::from_secs(30))
            .await
            .expect("a standing event");
        let changed: StandingChanged = event.payload.expect("payload").to_msg().expect("decodes");
        standings.push(changed.standing.expect("standing"));
    }
    assert!(
        recorder.next(Duration::from_millis(800)).await.is_err(),
        "no more than {count} standing events"
    );
    standings
}

#[tokio::test]
async fn gradings_place_every_licensed_retailer_once_and_publish_only_changes() {
    let (service, mut recorder) = TestService::start_recording_standings().await;
    license_all(&service).await;
    standings_published(&mut recorder, RETAILERS).await;

    let mut office = service.admin();
    let mut planner = service.as_role(Role::AllocationPlanner, "ap-1", &[]);
    record_purchases(&mut office, "buy-1", &[]).await;

    let first = run(&mut planner, "grade-1").await;
    assert_eq!(first.state, GradingState::Draft as i32);
    assert_eq!(first.retailers as usize, RETAILERS);
    assert_eq!(first.distribution.iter().sum::<i32>() as usize, RETAILERS);
    assert_eq!(first.placed_by_format as usize, WITHOUT_HISTORY);
    assert_eq!(first.explanations.len(), 10);

    let placed = assignments(&mut planner, &first.name).await;
    let ids: HashSet<&str> = placed.iter().map(|a| a.customer.as_str()).collect();
    assert_eq!(placed.len(), RETAILERS, "every licensed retailer");
    assert_eq!(ids.len(), RETAILERS, "exactly once");
    assert!(placed.iter().all(|a| (1..=10).contains(&a.tier)));
    let mut graded: Vec<&TierAssignment> = placed.iter().filter(|a| !a.placed_by_format).collect();
    graded.sort_by_key(|a| (a.tier, a.composite));
    for pair in graded.windows(2) {
        assert!(
            pair[0].composite <= pair[1].composite,
            "composite is monotone in tier"
        );
    }

    // The same inputs grade the same way.
    let again = run(&mut planner, "grade-2").await;
    let tiers = |list: &[TierAssignment]| -> BTreeMap<String, i32> {
        list.iter().map(|a| (a.customer.clone(), a.tier)).collect()
    };
    assert_eq!(
        tiers(&assignments(&mut planner, &again.name).await),
        tiers(&placed)
    );

    // Publishing the first moves every standing from "not graded" to its tier.
    publish(&mut planner, "publish-1", &first.name)
        .await
        .expect("published");
    let changed = standings_published(&mut recorder, RETAILERS).await;
    assert!(
        changed
            .iter()
            .all(|s| s.tier > 0 && s.grading_version == first.version)
    );

    // An identical grading changes no tier: nothing is published.
    publish(&mut planner, "publish-2", &again.name)
        .await
        .expect("published");
    standings_published(&mut recorder, 0).await;

    // Big new purchases by three small buyers move some tiers; events go out for
    // exactly the retailers whose tier changed.
    record_purchases(&mut office, "buy-2", &[1, 2, 3]).await;
    let third = run(&mut planner, "grade-3").await;
    let before = tiers(&placed);
    let after = tiers(&assignments(&mut planner, &third.name).await);
    let moved: HashSet<String> = after
        .iter()
        .filter(|(customer, tier)| before.get(*customer) != Some(tier))
        .map(|(customer, _)| customer.clone())
        .collect();
    assert!(!moved.is_empty());
    publish(&mut planner, "publish-3", &third.name)
        .await
        .expect("published");
    let events: HashSet<String> = standings_published(&mut recorder, moved.len())
        .await
        .into_iter()
        .map(|s| s.customer)
        .collect();
    assert_eq!(events, moved);

    // A published grading is locked; an older draft cannot overtake it.
    let error = publish(&mut planner, "publish-4", &third.name)
        .await
        .expect_err("locked");
    assert_eq!(reason(&error), "GRADING_NOT_DRAFT");
    let stale = run(&mut planner, "grade-4").await;
    let newer = run(&mut planner, "grade-5").await;
    publish(&mut planner, "publish-5", &newer.name)
        .await
        .expect("published");
    let error = publish(&mut planner, "publish-6", &stale.name)
        .await
        .expect_err("superseded");
    assert_eq!(reason(&error), "GRADING_SUPERSEDED");
    standings_published(&mut recorder, 0).await;

    // Overrides need a reason; in force, the standing follows and is published.
    let target = format!("customers/{}", id(0));
    let error = planner
        .override_tier(OverrideTierRequest {
            request_id: "o-0".into(),
            grading: newer.name.clone(),
            customer: target.clone(),
            tier: 1,
            reason: String::new(),
        })
        .await
        .expect_err("no reason");
    assert_eq!(error.code(), Code::InvalidArgument);
    let current = after.get(&target).copied().unwrap_or_default();
    let new_tier = if current == 1 { 2 } else { 1 };
    let overridden = planner
        .override_tier(OverrideTierRequest {
            request_id: "o-1".into(),
            grading: newer.name.clone(),
            customer: target.clone(),
            tier: new_tier,
            reason: "shop rebuilt after fire".into(),
        })
        .await
        .expect("overridden")
        .into_inner();
    assert_eq!(overridden.tier, new_tier);
    assert_eq!(
        overridden.computed_tier, current,
        "the computed tier is kept for the audit"
    );
    assert_eq!(overridden.overridden_by, "ap-1");
    let standing = standings_published(&mut recorder, 1).await.remove(0);
    assert_eq!(
        (standing.customer.as_str(), standing.tier),
        (target.as_str(), new_tier)
    );

    service.stop().await;
    recorder.stop().await;
}

#[tokio::test]
async fn only_planners_and_admin_grade_and_inputs_are_checked() {
    let service = TestService::start().await;
    let error = service
        .as_role(Role::CustomerManager, "cm-1", &["area-01"])
        .run_grading(RunGradingRequest {
            request_id: "g".into(),
            period: "2026-11".into(),
            weights: None,
            tiers: 30,
        })
        .await
        .expect_err("not a planner");
    assert_eq!(error.code(), Code::PermissionDenied);

    let error = service
        .as_role(Role::AllocationPlanner, "ap-1", &[])
        .run_grading(RunGradingRequest {
            request_id: "g".into(),
            period: "2026-13".into(),
            weights: Some(GradingWeights {
                amount_bp: 7000,
                quantity_bp: 2000,
                score_bp: 2000,
            }),
            tiers: 101,
        })
        .await
        .expect_err("bad input");
    assert_eq!(error.code(), Code::InvalidArgument);
    let fields = support::bad_fields(&error);
    for field in ["period", "weights", "tiers"] {
        assert!(
            fields.iter().any(|f| f == field),
            "{field} missing from {fields:?}"
        );
    }
    service.stop().await;
}
