//! Grading RPCs: purchase history, draft gradings, publishing and overrides.

use distnet_platform::ServiceError;
use distnet_platform::auth::Caller;
use distnet_proto::accreditation::v1::*;

use super::AccreditationApi;

fn pending() -> ServiceError {
    ServiceError::new(tonic::Code::Unimplemented, "NOT_BUILT_YET", "in progress")
}

impl AccreditationApi {
    pub(super) async fn record_purchases(
        &self,
        _caller: Caller,
        _request: RecordPurchasesRequest,
    ) -> Result<RecordPurchasesResponse, ServiceError> {
        Err(pending())
    }

    pub(super) async fn run_grading(
        &self,
        _caller: Caller,
        _request: RunGradingRequest,
    ) -> Result<Grading, ServiceError> {
        Err(pending())
    }

    pub(super) async fn grading(
        &self,
        _caller: Caller,
        _request: GetGradingRequest,
    ) -> Result<Grading, ServiceError> {
        Err(pending())
    }

    pub(super) async fn tier_assignments(
        &self,
        _caller: Caller,
        _request: ListTierAssignmentsRequest,
    ) -> Result<ListTierAssignmentsResponse, ServiceError> {
        Err(pending())
    }

    pub(super) async fn publish_grading(
        &self,
        _caller: Caller,
        _request: PublishGradingRequest,
    ) -> Result<Grading, ServiceError> {
        Err(pending())
    }

    pub(super) async fn override_tier(
        &self,
        _caller: Caller,
        _request: OverrideTierRequest,
    ) -> Result<TierAssignment, ServiceError> {
        Err(pending())
    }
}
