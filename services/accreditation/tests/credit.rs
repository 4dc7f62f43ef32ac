//! Credit through gRPC: the credit office grades a file by the documented
//! scorecard, the grade and limit reach the standing (and allocation, through
//! `StandingChanged`), the blacklist zeroes the limit, and files stay private.

mod support;

use std::time::Duration;

use distnet_accreditation::domain::credit::{CreditInputs, assess};
use distnet_platform::auth::{Claims, Role};
use distnet_proto::accreditation::v1::accreditation_service_client::AccreditationServiceClient;
use distnet_proto::accreditation::v1::*;
use distnet_proto::common::v1::Money;
use distnet_testkit::Bearer;
use support::{Client, TestService, next_standing, reason};
use tonic::Code;
use tonic_types::StatusExt as _;

const SHOP: (f64, f64) = (30.6570, 104.0810);

fn cny(fen: i64) -> Option<Money> {
    Some(Money {
        currency_code: "CNY".into(),
        fen,
    })
}

/// A sound shop with a middling payment record: 20 + 10 + 10 + 6 + 20 + 10 = 76, grade A.
fn file(customer: &str) -> CreditProfile {
    CreditProfile {
        customer: format!("customers/{customer}"),
        working_capital: cny(8_000_000),
        net_assets: cny(20_000_000),
        current_ratio: 2.2,
        interest_coverage: 3.5,
        debt_ratio: 0.55,
        cash_ratio: 0.3,
        on_time_payment_rate: 0.96,
        disputes_last_year: 1,
        ..CreditProfile::default()
    }
}

fn inputs_of(profile: &CreditProfile) -> CreditInputs {
    CreditInputs {
        working_capital_fen: profile.working_capital.as_ref().map_or(0, |m| m.fen),
        net_assets_fen: profile.net_assets.as_ref().map_or(0, |m| m.fen),
        current_ratio: profile.current_ratio,
        interest_coverage: profile.interest_coverage,
        debt_ratio: profile.debt_ratio,
        cash_ratio: profile.cash_ratio,
        on_time_payment_rate: profile.on_time_payment_rate,
        disputes_last_year: u32::try_from(profile.disputes_last_year).expect("non-negative"),
    }
}

async fn upsert(
    client: &mut Client,
    request_id: &str,
    profile: CreditProfile,
) -> Result<CreditProfile, tonic::Status> {
    client
        .upsert_credit_profile(UpsertCreditProfileRequest {
            request_id: request_id.into(),
            profile: Some(profile),
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn read(client: &mut Client, customer: &str) -> Result<CreditProfile, tonic::Status> {
    client
        .get_credit_profile(GetCreditProfileRequest {
            customer: format!("customers/{customer}"),
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn standing(client: &mut Client, customer: &str) -> Standing {
    client
        .get_standing(GetStandingRequest {
            customer: format!("customers/{customer}"),
        })
        .await
        .expect("standing")
        .into_inner()
}

fn fields(status: &tonic::Status) -> Vec<String> {
    status
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

fn retailer(service: &TestService, customer: &str) -> Client {
    let token = distnet_testkit::token(
        &Claims::new(customer, Role::Retailer, Duration::from_secs(3600)).with_customer(customer),
    );
    AccreditationServiceClient::with_interceptor(service.channel.clone(), Bearer(Some(token)))
}

#[tokio::test]
async fn an_upsert_grades_the_file_and_publishes_grade_and_limit_in_the_standing() {
    let (service, mut recorder) = TestService::start_recording_standings().await;
    service.know_customer("r-1", "area-01", "cm-1", SHOP).await;
    let mut office = service.admin();

    let submitted = file("r-1");
    let expected = assess(&inputs_of(&submitted));
    let graded = upsert(&mut office, "grade-1", submitted.clone())
        .await
        .expect("graded");
    assert_eq!(graded.score, 76);
    assert_eq!(graded.score, i32::try_from(expected.score).expect("score"));
    assert_eq!(graded.grade, "A");
    assert_eq!(graded.limit, cny(expected.limit_fen));
    assert_eq!(graded.limit, cny(1_600_000), "20 % of working capital");
    assert_eq!(graded.limit_base, "WORKING_CAPITAL");
    assert_eq!((graded.terms_days, graded.early_payment_discount_bp), (15, 50));
    assert_eq!(graded.explanation, expected.explanation);
    assert_eq!(graded.updated_by, "lo-1");
    assert_eq!((graded.current_ratio, graded.on_time_payment_rate), (2.2, 0.96));

    let published = next_standing(&mut recorder).await;
    assert_eq!(published.customer, "customers/r-1");
    assert_eq!(published.credit_grade, "A");
    assert_eq!(published.credit_limit, cny(1_600_000));
    assert!(!published.blacklisted);
    assert_eq!(published.area_id, "area-01");
    assert_eq!(standing(&mut office, "r-1").await, published);
    assert_eq!(read(&mut office, "r-1").await.expect("read"), graded);

    // A retry replays and changes nothing.
    let replayed = upsert(&mut office, "grade-1", submitted.clone())
        .await
        .expect("replayed");
    assert_eq!(replayed, graded);

    // A revised file is graded again: without working capital, net assets are the base.
    let revised = CreditProfile {
        working_capital: cny(-50_000),
        on_time_payment_rate: 0.99,
        disputes_last_year: 0,
        ..submitted
    };
    let regraded = upsert(&mut office, "grade-2", revised.clone())
        .await
        .expect("regraded");
    let expected = assess(&inputs_of(&revised));
    assert_eq!(regraded.grade, "AA");
    assert_eq!(regraded.limit_base, "NET_ASSETS");
    assert_eq!(regraded.limit, cny(expected.limit_fen));
    let published = next_standing(&mut recorder).await;
    assert_eq!(
        (published.credit_grade.as_str(), published.credit_limit),
        ("AA", cny(5_000_000))
    );
    assert_eq!(published.version, 2, "the replay published nothing in between");

    service.stop().await;
    recorder.stop().await;
}

#[tokio::test]
async fn blacklisting_needs_a_reason_and_sets_the_limit_in_force_to_zero() {
    let (service, mut recorder) = TestService::start_recording_standings().await;
    service.know_customer("r-1", "area-01", "cm-1", SHOP).await;
    let mut office = service.admin();
    upsert(&mut office, "grade", file("r-1")).await.expect("graded");
    assert_eq!(next_standing(&mut recorder).await.credit_limit, cny(1_600_000));

    let unexplained = CreditProfile {
        blacklisted: true,
        ..file("r-1")
    };
    let error = upsert(&mut office, "blacklist-0", unexplained.clone())
        .await
        .expect_err("no reason");
    assert_eq!(error.code(), Code::InvalidArgument);
    assert_eq!(fields(&error), ["profile.blacklist_reason"]);

    let blacklisted = upsert(
        &mut office,
        "blacklist-1",
        CreditProfile {
            blacklist_reason: "bounced three payments".into(),
            ..unexplained
        },
    )
    .await
    .expect("blacklisted");
    assert!(blacklisted.blacklisted);
    assert_eq!(blacklisted.blacklist_reason, "bounced three payments");
    assert_eq!(blacklisted.grade, "A", "the file keeps its grade");
    assert!(
        blacklisted
            .explanation
            .last()
            .is_some_and(|line| line.contains("limit in force 0")),
        "{:?}",
        blacklisted.explanation
    );

    let published = next_standing(&mut recorder).await;
    assert!(published.blacklisted);
    assert_eq!(published.blacklist_reason, "bounced three payments");
    assert_eq!(published.credit_limit, cny(0));
    assert_eq!(standing(&mut office, "r-1").await.credit_limit, cny(0));

    // Taken off the list, the limit comes back and the reason goes.
    upsert(&mut office, "reinstate", file("r-1"))
        .await
        .expect("reinstated");
    let published = next_standing(&mut recorder).await;
    assert!(!published.blacklisted);
    assert_eq!(
        (published.blacklist_reason.as_str(), published.credit_limit),
        ("", cny(1_600_000))
    );

    service.stop().await;
    recorder.stop().await;
}

#[tokio::test]
async fn invalid_inputs_are_rejected_naming_every_field() {
    let service = TestService::start().await;
    service.know_customer("r-1", "area-01", "cm-1", SHOP).await;
    let mut office = service.admin();
    let broken = CreditProfile {
        working_capital: Some(Money {
            currency_code: "USD".into(),
            fen: 100,
        }),
        current_ratio: -1.0,
        debt_ratio: -0.2,
        cash_ratio: -3.0,
        on_time_payment_rate: 1.5,
        disputes_last_year: -1,
        ..file("r-1")
    };
    let error = upsert(&mut office, "broken", broken).await.expect_err("invalid");
    assert_eq!(error.code(), Code::InvalidArgument);
    let mut found = fields(&error);
    found.sort();
    assert_eq!(
        found,
        [
            "profile.cash_ratio",
            "profile.current_ratio",
            "profile.debt_ratio",
            "profile.disputes_last_year",
            "profile.on_time_payment_rate",
            "profile.working_capital.currency_code",
        ]
    );

    let error = office
        .upsert_credit_profile(UpsertCreditProfileRequest {
            request_id: "empty".into(),
            profile: None,
        })
        .await
        .expect_err("no profile");
    assert_eq!(fields(&error), ["profile"]);

    let error = upsert(&mut office, "unknown", file("r-404"))
        .await
        .expect_err("unknown retailer");
    assert_eq!(error.code(), Code::FailedPrecondition);
    assert_eq!(reason(&error), "CUSTOMER_NOT_KNOWN");

    // Nothing was stored by any of it.
    let error = read(&mut office, "r-1").await.expect_err("no file yet");
    assert_eq!(error.code(), Code::NotFound);
    service.stop().await;
}

#[tokio::test]
async fn a_credit_file_is_graded_by_the_office_and_read_only_in_scope() {
    let service = TestService::start().await;
    service.know_customer("r-1", "area-01", "cm-1", SHOP).await;
    service.know_customer("r-2", "area-01", "cm-1", SHOP).await;

    let error = upsert(
        &mut service.as_role(Role::CustomerManager, "cm-1", &["area-01"]),
        "cm-grade",
        file("r-1"),
    )
    .await
    .expect_err("managers sell, the office grades");
    assert_eq!(error.code(), Code::PermissionDenied);

    let graded = upsert(&mut service.admin(), "grade", file("r-1"))
        .await
        .expect("graded");

    for mut reader in [
        service.as_role(Role::CustomerManager, "cm-1", &[]),
        service.as_role(Role::CustomerManager, "cm-3", &["area-01"]),
        service.as_role(Role::CallCenterAgent, "cc-1", &["area-01"]),
        service.as_role(Role::AllocationPlanner, "ap-1", &[]),
        service.as_role(Role::Service, "allocation", &[]),
        retailer(&service, "r-1"),
    ] {
        assert_eq!(read(&mut reader, "r-1").await.expect("in scope"), graded);
    }
    for mut outsider in [
        service.as_role(Role::CustomerManager, "cm-2", &["area-02"]),
        service.as_role(Role::CallCenterAgent, "cc-2", &["area-02"]),
        retailer(&service, "r-2"),
    ] {
        let error = read(&mut outsider, "r-1").await.expect_err("out of scope");
        assert_eq!(error.code(), Code::NotFound);
    }
    for mut other_role in [
        service.as_role(Role::Driver, "d-1", &["area-01"]),
        service.as_role(Role::MarketInspector, "mi-1", &["area-01"]),
    ] {
        let error = read(&mut other_role, "r-1")
            .await
            .expect_err("not theirs to read");
        assert_eq!(error.code(), Code::PermissionDenied);
    }
    let error = read(&mut service.admin(), "r-2").await.expect_err("no file");
    assert_eq!(error.code(), Code::NotFound);
    service.stop().await;
}
