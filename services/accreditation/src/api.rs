//! `distnet.accreditation.v1.AccreditationService`: validate → authorize → rules
//! in `domain/` → store → reply. Every standing change goes out as
//! `StandingChanged` in the same transaction.

use chrono::{DateTime, Utc};
use distnet_platform::clock::SharedClock;
use distnet_platform::events::Outbox;
use distnet_platform::settings::AccreditationSettings;
use distnet_platform::{ServiceError, rpc};
use distnet_proto::accreditation::v1::accreditation_service_server::AccreditationService;
use distnet_proto::accreditation::v1::*;
use distnet_proto::events::v1::StandingChanged;
use sqlx::{PgConnection, PgPool};

use crate::store;
use tonic::{Request, Response, Status};

use crate::domain::access::{self};
use crate::domain::license::{self as rules};

pub const DOMAIN: &str = "accreditation.distnet";

mod access_rules;
mod credit;
mod grading;
mod licensing;
mod scoring;

pub use access_rules::ACCESS;

pub use licensing::{settle_due_licenses, violation_points};

pub struct AccreditationApi {
    pool: PgPool,
    outbox: Outbox,
    clock: SharedClock,
    rules: AccreditationSettings,
}

/// The retailer as accreditation knows it from `CustomerChanged`. A retailer just
/// created may not have arrived yet: FAILED_PRECONDITION with `RetryInfo`.
pub(crate) async fn known_customer(
    conn: &mut PgConnection,
    customer_id: &str,
) -> Result<store::CachedCustomer, ServiceError> {
    store::customer(conn, customer_id).await?.ok_or_else(|| {
        ServiceError::failed_precondition(
            "CUSTOMER_NOT_KNOWN",
            format!("customers/{customer_id} is not known here yet; retry shortly"),
        )
        .with_retry_after(std::time::Duration::from_secs(2))
    })
}

pub(crate) use distnet_platform::idempotency::begin as begin_idempotent;

impl AccreditationApi {
    pub fn new(pool: PgPool, outbox: Outbox, clock: SharedClock, rules: AccreditationSettings) -> Self {
        Self {
            pool,
            outbox,
            clock,
            rules,
        }
    }

    async fn publish_standing(
        &self,
        tx: &mut PgConnection,
        standing: Option<Standing>,
    ) -> Result<(), ServiceError> {
        if let Some(standing) = standing {
            let aggregate = standing.customer.clone();
            self.outbox
                .publish(
                    tx,
                    &aggregate,
                    &StandingChanged {
                        standing: Some(standing),
                    },
                )
                .await?;
        }
        Ok(())
    }
}

#[tonic::async_trait]
impl AccreditationService for AccreditationApi {
    async fn submit_application(
        &self,
        request: Request<SubmitApplicationRequest>,
    ) -> Result<Response<Application>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| self.submit(caller, message)).await
    }

    async fn get_application(
        &self,
        request: Request<GetApplicationRequest>,
    ) -> Result<Response<Application>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| {
            self.get_application(caller, message)
        })
        .await
    }

    async fn record_inspection(
        &self,
        request: Request<RecordInspectionRequest>,
    ) -> Result<Response<Application>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| self.inspect(caller, message)).await
    }

    async fn decide_application(
        &self,
        request: Request<DecideApplicationRequest>,
    ) -> Result<Response<Application>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| self.decide(caller, message)).await
    }

    async fn get_license(&self, request: Request<GetLicenseRequest>) -> Result<Response<License>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| {
            self.get_license(caller, message)
        })
        .await
    }

    async fn list_licenses(
        &self,
        request: Request<ListLicensesRequest>,
    ) -> Result<Response<ListLicensesResponse>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| {
            self.list_licenses(caller, message)
        })
        .await
    }

    async fn suspend_license(
        &self,
        request: Request<SuspendLicenseRequest>,
    ) -> Result<Response<License>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| async move {
            caller.require(access::SUSPENDERS)?;
            let until = message.until.and_then(|t| {
                DateTime::<Utc>::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0))
            });
            let fields = (
                message.request_id.as_str(),
                message.name.as_str(),
                message.reason.as_str(),
            );
            self.license_transition(caller.clone(), "SuspendLicense", &message, fields, |term, now| {
                rules::suspend(term, now, until)
            })
            .await
        })
        .await
    }

    async fn reinstate_license(
        &self,
        request: Request<ReinstateLicenseRequest>,
    ) -> Result<Response<License>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| async move {
            caller.require(access::LICENSE_OFFICE)?;
            let fields = (
                message.request_id.as_str(),
                message.name.as_str(),
                message.reason.as_str(),
            );
            self.license_transition(
                caller.clone(),
                "ReinstateLicense",
                &message,
                fields,
                rules::reinstate,
            )
            .await
        })
        .await
    }

    async fn revoke_license(
        &self,
        request: Request<RevokeLicenseRequest>,
    ) -> Result<Response<License>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| async move {
            caller.require(access::LICENSE_OFFICE)?;
            let fields = (
                message.request_id.as_str(),
                message.name.as_str(),
                message.reason.as_str(),
            );
            self.license_transition(caller.clone(), "RevokeLicense", &message, fields, rules::revoke)
                .await
        })
        .await
    }

    async fn record_violation(
        &self,
        request: Request<RecordViolationRequest>,
    ) -> Result<Response<Violation>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| {
            self.record_violation(caller, message)
        })
        .await
    }

    async fn get_standing(&self, request: Request<GetStandingRequest>) -> Result<Response<Standing>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| async move {
            let mut standings = self
                .standings_of(&caller, &[message.customer], "customer")
                .await?;
            standings
                .pop()
                .ok_or_else(|| ServiceError::internal("a standing went missing"))
        })
        .await
    }

    async fn batch_get_standings(
        &self,
        request: Request<BatchGetStandingsRequest>,
    ) -> Result<Response<BatchGetStandingsResponse>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| async move {
            Ok(BatchGetStandingsResponse {
                standings: self
                    .standings_of(&caller, &message.customers, "customers")
                    .await?,
            })
        })
        .await
    }

    async fn list_standings(
        &self,
        request: Request<ListStandingsRequest>,
    ) -> Result<Response<ListStandingsResponse>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| {
            self.list_standings(caller, message)
        })
        .await
    }

    async fn get_rulebook(&self, request: Request<GetRulebookRequest>) -> Result<Response<Rulebook>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| self.rulebook(caller, message)).await
    }

    async fn update_rulebook(
        &self,
        request: Request<UpdateRulebookRequest>,
    ) -> Result<Response<Rulebook>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| {
            self.update_rulebook(caller, message)
        })
        .await
    }

    async fn record_score_event(
        &self,
        request: Request<RecordScoreEventRequest>,
    ) -> Result<Response<ScoreEvent>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| {
            self.record_score_event(caller, message)
        })
        .await
    }

    async fn get_scorecard(
        &self,
        request: Request<GetScorecardRequest>,
    ) -> Result<Response<Scorecard>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| self.scorecard(caller, message)).await
    }

    async fn record_purchases(
        &self,
        request: Request<RecordPurchasesRequest>,
    ) -> Result<Response<RecordPurchasesResponse>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| {
            self.record_purchases(caller, message)
        })
        .await
    }

    async fn run_grading(&self, request: Request<RunGradingRequest>) -> Result<Response<Grading>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| {
            self.run_grading(caller, message)
        })
        .await
    }

    async fn get_grading(&self, request: Request<GetGradingRequest>) -> Result<Response<Grading>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| self.grading(caller, message)).await
    }

    async fn list_tier_assignments(
        &self,
        request: Request<ListTierAssignmentsRequest>,
    ) -> Result<Response<ListTierAssignmentsResponse>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| {
            self.tier_assignments(caller, message)
        })
        .await
    }

    async fn publish_grading(
        &self,
        request: Request<PublishGradingRequest>,
    ) -> Result<Response<Grading>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| {
            self.publish_grading(caller, message)
        })
        .await
    }

    async fn override_tier(
        &self,
        request: Request<OverrideTierRequest>,
    ) -> Result<Response<TierAssignment>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| {
            self.override_tier(caller, message)
        })
        .await
    }

    async fn upsert_credit_profile(
        &self,
        request: Request<UpsertCreditProfileRequest>,
    ) -> Result<Response<CreditProfile>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| {
            self.upsert_credit_profile(caller, message)
        })
        .await
    }

    async fn get_credit_profile(
        &self,
        request: Request<GetCreditProfileRequest>,
    ) -> Result<Response<CreditProfile>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| {
            self.credit_profile(caller, message)
        })
        .await
    }
}
