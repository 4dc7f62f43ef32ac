//! RecordSurvey: a weighted satisfaction questionnaire (`domain::surveys`).

use distnet_platform::ServiceError;
use distnet_platform::auth::{Caller, Role};
use distnet_platform::validate::{Violations, parse_name};
use distnet_proto::customers::v1::{Channel, RecordSurveyRequest, Survey, SurveyResponse};

use super::CustomersApi;
use crate::domain::interactions;
use crate::domain::surveys;
use crate::store;

/// Staff who phone or visit retailers record surveys.
pub const SURVEY_RECORDERS: &[Role] = &[Role::Admin, Role::CustomerManager, Role::CallCenterAgent];

impl CustomersApi {
    pub(super) async fn record_survey(
        &self,
        caller: Caller,
        request: RecordSurveyRequest,
    ) -> Result<Survey, ServiceError> {
        caller.require(SURVEY_RECORDERS)?;
        let questions = if self.settings.survey_questions.is_empty() {
            surveys::default_questionnaire()
        } else {
            self.settings.survey_questions.clone()
        };
        let mut v = Violations::new();
        v.request_id(&request.request_id);
        v.known_enum::<Channel>(request.channel, "channel");
        v.check(
            interactions::loggable(Channel::try_from(request.channel).unwrap_or(Channel::Unspecified)),
            "channel",
            "must be VISIT, CALL_OUT, CALL_IN, WEB or SMS",
        );
        v.check(
            !request.responses.is_empty(),
            "responses",
            "must answer at least one question",
        );
        v.check(
            request.responses.len() <= questions.len(),
            "responses",
            "has more answers than the questionnaire has questions",
        );
        v.text(&request.comment, "comment", 2000);
        let pairs: Vec<(String, String)> = request
            .responses
            .iter()
            .map(|r| (r.question_id.clone(), r.answer_id.clone()))
            .collect();
        let resolved = match surveys::resolve(&questions, &pairs) {
            Ok(resolved) => resolved,
            Err((i, why)) => {
                v.add(format!("responses[{i}]"), why);
                Vec::new()
            }
        };
        v.into_result()?;
        let score = surveys::score(&resolved);
        let customer_id = parse_name(&request.customer, "customers", "customer")?.to_string();

        let mut tx = self.pool.begin().await?;
        let request_key = (request.request_id.as_str(), "RecordSurvey", &request);
        let (key, customer) =
            match super::claim_customer(&mut tx, &caller, request_key, &request.customer, &customer_id)
                .await?
            {
                Ok(fresh) => fresh,
                Err(replay) => return Ok(replay),
            };
        let id = format!("sv-{}", uuid::Uuid::now_v7().simple());
        let now = self.clock.now();
        store::surveys::insert(
            &mut tx,
            &store::surveys::NewSurvey {
                id: &id,
                customer_id: &customer_id,
                area_id: &customer.area_id,
                channel: request.channel,
                actor: &caller.sub,
                time: now,
                responses: &resolved,
                comment: &request.comment,
                score,
            },
        )
        .await?;
        let survey = Survey {
            name: format!("surveys/{id}"),
            customer: request.customer.clone(),
            channel: request.channel,
            actor: caller.sub.clone(),
            time: Some(distnet_platform::wire::timestamp(now)),
            responses: resolved
                .iter()
                .map(|(q, a, weight, score)| SurveyResponse {
                    question_id: q.clone(),
                    answer_id: a.clone(),
                    weight: *weight,
                    score: *score,
                })
                .collect(),
            comment: request.comment.clone(),
            score,
        };
        key.complete(&mut tx, &survey).await?;
        tx.commit().await?;
        Ok(survey)
    }
}
