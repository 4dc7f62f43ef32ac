//! The license lifecycle through gRPC: application, inspection, four-eyes
//! approval, suspension, renewal without a gap, expiry by the clock, revocation,
//! violations, spacing; and the `StandingChanged` events it publishes.

mod support;

use chrono::Duration as Days;
use distnet_platform::auth::Role;
use distnet_proto::accreditation::v1::*;
use distnet_proto::common::v1::LatLng;
use support::{Client, TestService, metadata, next_standing, reason};
use tonic::Code;
use tonic_types::StatusExt as _;

const SHOP: (f64, f64) = (30.6570, 104.0810);

fn premises(location: (f64, f64)) -> Option<Premises> {
    Some(Premises {
        location: Some(LatLng {
            latitude: location.0,
            longitude: location.1,
        }),
        floor_area_sqm: 40,
        format: 2,
        ..Premises::default()
    })
}

async fn submit(
    cm: &mut Client,
    request_id: &str,
    customer: &str,
    kind: ApplicationKind,
    at: (f64, f64),
) -> Application {
    cm.submit_application(SubmitApplicationRequest {
        request_id: request_id.into(),
        customer: format!("customers/{customer}"),
        kind: kind as i32,
        premises: premises(at),
        documents: vec![Document {
            r#type: "business_registration".into(),
            sha256: "ab".repeat(32),
        }],
    })
    .await
    .expect("submitted")
    .into_inner()
}

async fn inspect(
    inspector: &mut Client,
    request_id: &str,
    application: &str,
    outcome: InspectionOutcome,
) -> Application {
    inspector
        .record_inspection(RecordInspectionRequest {
            request_id: request_id.into(),
            name: application.into(),
            outcome: outcome as i32,
            checklist: vec![ChecklistItem {
                item: "license displayed".into(),
                passed: true,
                note: String::new(),
            }],
        })
        .await
        .expect("inspected")
        .into_inner()
}

fn decide(request_id: &str, application: &str, decision: Decision) -> DecideApplicationRequest {
    DecideApplicationRequest {
        request_id: request_id.into(),
        name: application.into(),
        decision: decision as i32,
        reasons: vec!["premises fit".into()],
    }
}

fn status_of(license: &License) -> LicenseStatus {
    LicenseStatus::try_from(license.status).unwrap_or(LicenseStatus::Unspecified)
}

#[tokio::test]
async fn the_license_lifecycle_runs_from_application_to_expiry() {
    let (service, mut recorder) = TestService::start_recording_standings().await;
    service.know_customer("r-1", "area-01", "cm-1", SHOP).await;

    let mut cm = service.as_role(Role::CustomerManager, "cm-1", &["area-01"]);
    let mut inspector = service.as_role(Role::MarketInspector, "mi-1", &["area-01"]);
    let mut office = service.admin();

    let application = submit(&mut cm, "apply-1", "r-1", ApplicationKind::New, SHOP).await;
    assert_eq!(application.state, ApplicationState::Submitted as i32);

    // Approval needs a passed inspection.
    let error = office
        .decide_application(decide("early", &application.name, Decision::Approve))
        .await
        .expect_err("not inspected");
    assert_eq!(error.code(), Code::FailedPrecondition);
    assert_eq!(reason(&error), "INSPECTION_NOT_PASSED");
    assert_eq!(metadata(&error, "current_state"), "SUBMITTED");

    let inspected = inspect(
        &mut inspector,
        "visit-1",
        &application.name,
        InspectionOutcome::Pass,
    )
    .await;
    assert_eq!(inspected.state, ApplicationState::Inspected as i32);
    assert_eq!(inspected.inspection.expect("inspection").inspector, "mi-1");

    // Four eyes: the inspector may not approve their own inspection.
    let error = service
        .as_role(Role::Admin, "mi-1", &[])
        .decide_application(decide("self", &application.name, Decision::Approve))
        .await
        .expect_err("own inspection");
    assert_eq!(reason(&error), "APPROVER_IS_INSPECTOR");

    let approved = office
        .decide_application(decide("ok-1", &application.name, Decision::Approve))
        .await
        .expect("approved")
        .into_inner();
    assert_eq!(approved.state, ApplicationState::Approved as i32);
    let license = office
        .get_license(GetLicenseRequest {
            name: approved.license.clone(),
        })
        .await
        .expect("license")
        .into_inner();
    assert_eq!(status_of(&license), LicenseStatus::Active);
    assert_eq!(license.holder, "customers/r-1");
    let first_term_end = license.valid_to.expect("valid_to");
    let standing = next_standing(&mut recorder).await;
    assert_eq!(standing.license_status, LicenseStatus::Active as i32);
    assert_eq!(standing.version, 1);

    // A decided application cannot be decided again.
    let error = office
        .decide_application(decide("again", &application.name, Decision::Reject))
        .await
        .expect_err("decided");
    assert_eq!(metadata(&error, "current_state"), "APPROVED");

    // Suspend and reinstate.
    let suspended = office
        .suspend_license(SuspendLicenseRequest {
            request_id: "s-1".into(),
            name: license.name.clone(),
            reason: "inspection follow-up".into(),
            until: None,
        })
        .await
        .expect("suspended")
        .into_inner();
    assert_eq!(status_of(&suspended), LicenseStatus::Suspended);
    assert_eq!(
        next_standing(&mut recorder).await.license_status,
        LicenseStatus::Suspended as i32
    );
    let error = office
        .suspend_license(SuspendLicenseRequest {
            request_id: "s-2".into(),
            name: license.name.clone(),
            reason: "twice".into(),
            until: None,
        })
        .await
        .expect_err("already suspended");
    assert_eq!(error.code(), Code::FailedPrecondition);
    assert_eq!(metadata(&error, "current_state"), "SUSPENDED");
    let reinstated = office
        .reinstate_license(ReinstateLicenseRequest {
            request_id: "r-1".into(),
            name: license.name.clone(),
            reason: "resolved".into(),
        })
        .await
        .expect("reinstated")
        .into_inner();
    assert_eq!(status_of(&reinstated), LicenseStatus::Active);
    assert_eq!(
        next_standing(&mut recorder).await.license_status,
        LicenseStatus::Active as i32
    );

    // A renewal approved a month before expiry extends the term without a gap.
    service.clock.set(
        chrono::DateTime::<chrono::Utc>::from_timestamp(first_term_end.seconds, 0).expect("time")
            - Days::days(30),
    );
    let renewal = submit(&mut cm, "renew-1", "r-1", ApplicationKind::Renewal, SHOP).await;
    inspect(&mut inspector, "visit-2", &renewal.name, InspectionOutcome::Pass).await;
    let renewed = office
        .decide_application(decide("ok-2", &renewal.name, Decision::Approve))
        .await
        .expect("renewed")
        .into_inner();
    assert_eq!(renewed.license, license.name, "the same license is extended");
    let extended = office
        .get_license(GetLicenseRequest {
            name: license.name.clone(),
        })
        .await
        .expect("license")
        .into_inner();
    assert_eq!(extended.valid_from, license.valid_from);
    let new_end = extended.valid_to.expect("valid_to");
    assert_eq!(
        new_end.seconds - first_term_end.seconds,
        5 * 365 * 86_400,
        "one more term, no gap"
    );
    assert_eq!(status_of(&extended), LicenseStatus::Active);

    // Past its term the license expires by itself: reads say so at once, and the
    // sweep publishes the standing change.
    service
        .clock
        .set(chrono::DateTime::<chrono::Utc>::from_timestamp(new_end.seconds, 0).expect("time"));
    let expired = office
        .get_license(GetLicenseRequest {
            name: license.name.clone(),
        })
        .await
        .expect("license")
        .into_inner();
    assert_eq!(status_of(&expired), LicenseStatus::Expired);
    let standing = next_standing(&mut recorder).await;
    assert_eq!(standing.license_status, LicenseStatus::Expired as i32);
    assert_eq!(
        standing.version, 4,
        "ACTIVE, SUSPENDED, ACTIVE, EXPIRED: the renewal changed no standing"
    );

    let error = office
        .revoke_license(RevokeLicenseRequest {
            request_id: "x-1".into(),
            name: license.name.clone(),
            reason: "too late".into(),
        })
        .await
        .expect_err("expired");
    assert_eq!(metadata(&error, "current_state"), "EXPIRED");

    let expiring = office
        .list_licenses(ListLicensesRequest {
            status: LicenseStatus::Expired as i32,
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(expiring.licenses.len(), 1);

    service.stop().await;
    recorder.stop().await;
}

#[tokio::test]
async fn licensing_within_the_minimum_spacing_is_rejected_with_the_distance() {
    let service = TestService::start().await;
    service.know_customer("r-1", "area-01", "cm-1", SHOP).await;
    // About 30 m north of the first shop.
    let neighbour = (SHOP.0 + 0.00027, SHOP.1);
    service.know_customer("r-2", "area-01", "cm-1", neighbour).await;
    let mut cm = service.as_role(Role::CustomerManager, "cm-1", &["area-01"]);
    let mut inspector = service.as_role(Role::MarketInspector, "mi-1", &["area-01"]);
    let mut office = service.admin();

    let first = submit(&mut cm, "a-1", "r-1", ApplicationKind::New, SHOP).await;
    inspect(&mut inspector, "v-1", &first.name, InspectionOutcome::Pass).await;
    let granted = office
        .decide_application(decide("d-1", &first.name, Decision::Approve))
        .await
        .expect("first license")
        .into_inner();

    let second = submit(&mut cm, "a-2", "r-2", ApplicationKind::New, neighbour).await;
    let visit = inspect(&mut inspector, "v-2", &second.name, InspectionOutcome::Pass).await;
    let inspection = visit.inspection.expect("inspection");
    assert_eq!(inspection.nearest_license, granted.license);
    assert!(
        (25.0..35.0).contains(&inspection.nearest_distance_m),
        "{}",
        inspection.nearest_distance_m
    );

    let error = office
        .decide_application(decide("d-2", &second.name, Decision::Approve))
        .await
        .expect_err("too close");
    assert_eq!(error.code(), Code::FailedPrecondition);
    assert_eq!(reason(&error), "SPACING_BELOW_MINIMUM");
    let violation = error
        .get_details_precondition_failure()
        .expect("precondition failure")
        .violations
        .into_iter()
        .next()
        .expect("a violation");
    assert_eq!(violation.subject, granted.license);

    // A failed inspection blocks approval too, and rejection needs reasons.
    let error = office
        .decide_application(DecideApplicationRequest {
            request_id: "d-3".into(),
            name: second.name.clone(),
            decision: Decision::Reject as i32,
            reasons: vec![],
        })
        .await
        .expect_err("no reasons");
    assert_eq!(error.code(), Code::InvalidArgument);
    service.stop().await;
}

#[tokio::test]
async fn violations_past_the_threshold_suspend_the_license() {
    let service = TestService::start().await;
    service.know_customer("r-1", "area-01", "cm-1", SHOP).await;
    let mut cm = service.as_role(Role::CustomerManager, "cm-1", &["area-01"]);
    let mut inspector = service.as_role(Role::MarketInspector, "mi-1", &["area-01"]);
    let application = submit(&mut cm, "a-1", "r-1", ApplicationKind::New, SHOP).await;
    inspect(&mut inspector, "v-1", &application.name, InspectionOutcome::Pass).await;
    let license = service
        .admin()
        .decide_application(decide("d-1", &application.name, Decision::Approve))
        .await
        .expect("granted")
        .into_inner()
        .license;

    let record = |request_id: &str| RecordViolationRequest {
        request_id: request_id.into(),
        license: license.clone(),
        r#type: ViolationType::Price as i32,
        severity: Severity::Major as i32,
        evidence_refs: vec!["photo://shelf-price-tag".into()],
        note: "price above the marked price".into(),
    };
    let first = inspector
        .record_violation(record("x-1"))
        .await
        .expect("recorded")
        .into_inner();
    assert_eq!(first.points, 6);
    assert!(!first.suspended_license);
    // A retry counts once.
    let retry = inspector
        .record_violation(record("x-1"))
        .await
        .expect("replayed")
        .into_inner();
    assert_eq!(retry, first);
    let second = inspector
        .record_violation(record("x-2"))
        .await
        .expect("recorded")
        .into_inner();
    assert!(second.suspended_license, "12 points within a year suspend");

    // Each violation deducts the handbook's law-abidance points, once.
    let card = inspector
        .get_scorecard(GetScorecardRequest {
            customer: "customers/r-1".into(),
            period: String::new(),
        })
        .await
        .expect("scorecard")
        .into_inner();
    assert_eq!(card.law_abidance, -40, "PRICE_VIOLATION is -20, recorded twice");
    assert_eq!(card.cumulative_points, -40);

    let standing = inspector
        .get_standing(GetStandingRequest {
            customer: "customers/r-1".into(),
        })
        .await
        .expect("standing")
        .into_inner();
    assert_eq!(standing.license_status, LicenseStatus::Suspended as i32);

    // An inspector of another area sees nothing of it.
    let error = service
        .as_role(Role::MarketInspector, "mi-9", &["area-09"])
        .get_standing(GetStandingRequest {
            customer: "customers/r-1".into(),
        })
        .await
        .expect_err("out of scope");
    assert_eq!(error.code(), Code::NotFound);
    service.stop().await;
}

#[tokio::test]
async fn only_the_named_roles_may_act() {
    let service = TestService::start().await;
    service.know_customer("r-1", "area-01", "cm-1", SHOP).await;
    // A customer manager of another area cannot apply for this retailer.
    let error = service
        .as_role(Role::CustomerManager, "cm-2", &["area-02"])
        .submit_application(SubmitApplicationRequest {
            request_id: "a".into(),
            customer: "customers/r-1".into(),
            kind: ApplicationKind::New as i32,
            premises: premises(SHOP),
            documents: vec![],
        })
        .await
        .expect_err("not theirs");
    assert_eq!(error.code(), Code::PermissionDenied);
    // Drivers do not inspect; nobody without a token does anything.
    let error = service
        .as_role(Role::Driver, "d-1", &["area-01"])
        .record_inspection(RecordInspectionRequest {
            request_id: "i".into(),
            name: "applications/a-1".into(),
            outcome: InspectionOutcome::Pass as i32,
            checklist: vec![],
        })
        .await
        .expect_err("driver");
    assert_eq!(error.code(), Code::PermissionDenied);
    let error =
        distnet_proto::accreditation::v1::accreditation_service_client::AccreditationServiceClient::new(
            service.channel.clone(),
        )
        .get_standing(GetStandingRequest {
            customer: "customers/r-1".into(),
        })
        .await
        .expect_err("no token");
    assert_eq!(error.code(), Code::Unauthenticated);
    service.stop().await;
}
