//! Credit RPCs: profiles, grades, limits and the blacklist.

use distnet_platform::ServiceError;
use distnet_platform::auth::Caller;
use distnet_proto::accreditation::v1::*;

use super::AccreditationApi;

fn pending() -> ServiceError {
    ServiceError::new(tonic::Code::Unimplemented, "NOT_BUILT_YET", "in progress")
}

impl AccreditationApi {
    pub(super) async fn upsert_credit_profile(
        &self,
        _caller: Caller,
        _request: UpsertCreditProfileRequest,
    ) -> Result<CreditProfile, ServiceError> {
        Err(pending())
    }

    pub(super) async fn credit_profile(
        &self,
        _caller: Caller,
        _request: GetCreditProfileRequest,
    ) -> Result<CreditProfile, ServiceError> {
        Err(pending())
    }
}
