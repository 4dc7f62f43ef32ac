//! Satisfaction surveys through a real server and Postgres.

mod support;

use distnet_platform::auth::Role;
use distnet_proto::customers::v1::{Channel, RecordSurveyRequest, SurveyResponse};
use support::{TestService, bad_fields, create_request, retailer};
use tonic::Code;

fn answer(question: &str, answer: &str) -> SurveyResponse {
    SurveyResponse {
        question_id: question.into(),
        answer_id: answer.into(),
        ..SurveyResponse::default()
    }
}

fn survey(request_id: &str, customer: &str, responses: Vec<SurveyResponse>) -> RecordSurveyRequest {
    RecordSurveyRequest {
        request_id: request_id.into(),
        customer: customer.into(),
        channel: Channel::CallOut as i32,
        responses,
        comment: "送货比上月准时".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_survey_scores_its_weighted_answers_and_is_scoped() {
    let service = TestService::start().await;
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
    let mut agent = service.as_role(Role::CallCenterAgent, "cc-001", &["area-01"]);
    // delivery (weight 2) very dissatisfied, overall (weight 3) satisfied: 48.
    let recorded = agent
        .record_survey(survey(
            "s-1",
            "customers/r-1",
            vec![
                answer("delivery", "very_dissatisfied"),
                answer("overall", "satisfied"),
            ],
        ))
        .await
        .expect("recorded")
        .into_inner();
    assert!((recorded.score - 48.0).abs() < 1e-9, "{}", recorded.score);
    assert_eq!(recorded.actor, "cc-001");
    assert_eq!(recorded.responses[0].weight, 2.0);
    assert_eq!(recorded.responses[1].score, 80.0);
    let first_request = survey(
        "s-1",
        "customers/r-1",
        vec![
            answer("delivery", "very_dissatisfied"),
            answer("overall", "satisfied"),
        ],
    );
    let again = agent
        .record_survey(first_request)
        .await
        .expect("replayed")
        .into_inner();
    assert_eq!(again.name, recorded.name, "the same request is the same survey");
    let reused = agent
        .record_survey(survey("s-1", "customers/r-1", vec![answer("overall", "neutral")]))
        .await
        .expect_err("another request under a used id");
    assert_eq!(bad_fields(&reused), vec!["request_id".to_string()]);

    let bad = agent
        .record_survey(survey(
            "s-2",
            "customers/r-1",
            vec![answer("overall", "satisfied"), answer("overall", "neutral")],
        ))
        .await
        .expect_err("answered twice");
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert_eq!(bad_fields(&bad), vec!["responses[1]".to_string()]);
    let bad = agent
        .record_survey(survey("s-3", "customers/r-1", vec![answer("price", "satisfied")]))
        .await
        .expect_err("unknown question");
    assert_eq!(bad_fields(&bad), vec!["responses[0]".to_string()]);
    let bad = agent
        .record_survey(survey("s-4", "customers/r-1", Vec::new()))
        .await
        .expect_err("empty");
    assert_eq!(bad_fields(&bad), vec!["responses".to_string()]);

    let hidden = agent
        .record_survey(survey(
            "s-5",
            "customers/r-2",
            vec![answer("overall", "satisfied")],
        ))
        .await
        .expect_err("another area");
    assert_eq!(hidden.code(), Code::NotFound);
    for role in [Role::Driver, Role::MarketInspector, Role::Retailer] {
        let denied = service
            .as_role(role, "someone", &["area-01"])
            .record_survey(survey(
                "s-6",
                "customers/r-1",
                vec![answer("overall", "satisfied")],
            ))
            .await
            .expect_err("role may not record");
        assert_eq!(denied.code(), Code::PermissionDenied, "{role:?}");
    }
    service.stop().await;
}
