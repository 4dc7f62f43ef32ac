//! Scoring RPCs: the rulebook, the ledger and scorecards.

use distnet_platform::ServiceError;
use distnet_platform::auth::Caller;
use distnet_proto::accreditation::v1::*;

use super::AccreditationApi;

fn pending() -> ServiceError {
    ServiceError::new(tonic::Code::Unimplemented, "NOT_BUILT_YET", "in progress")
}

impl AccreditationApi {
    pub(super) async fn rulebook(
        &self,
        _caller: Caller,
        _request: GetRulebookRequest,
    ) -> Result<Rulebook, ServiceError> {
        Err(pending())
    }

    pub(super) async fn update_rulebook(
        &self,
        _caller: Caller,
        _request: UpdateRulebookRequest,
    ) -> Result<Rulebook, ServiceError> {
        Err(pending())
    }

    pub(super) async fn record_score_event(
        &self,
        _caller: Caller,
        _request: RecordScoreEventRequest,
    ) -> Result<ScoreEvent, ServiceError> {
        Err(pending())
    }

    pub(super) async fn scorecard(
        &self,
        _caller: Caller,
        _request: GetScorecardRequest,
    ) -> Result<Scorecard, ServiceError> {
        Err(pending())
    }
}
