//! Satisfaction questionnaires (DOMAIN.md "Customer relationship": satisfaction is
//! measured with questionnaires whose answers carry weights). Each question has a
//! weight and each answer a score from 0 (worst) to 100 (best); a survey's score is
//! the weighted mean over the questions answered:
//!
//! score = Σ weight(q) × score(answer to q) ÷ Σ weight(q)
//!
//! so it stays 0–100 whatever the weights and however many questions were answered.

pub use distnet_platform::settings::{SurveyAnswer, SurveyQuestion};

/// The built-in questionnaire: the four parts of the relationship DOMAIN.md names
/// (delivery, the rep's service, supply, complaint handling) plus an overall rating.
pub fn default_questionnaire() -> Vec<SurveyQuestion> {
    let scale = || {
        [
            ("very_satisfied", "非常满意", 100.0),
            ("satisfied", "满意", 80.0),
            ("neutral", "一般", 60.0),
            ("dissatisfied", "不满意", 30.0),
            ("very_dissatisfied", "非常不满意", 0.0),
        ]
        .into_iter()
        .map(|(id, text, score)| SurveyAnswer {
            id: id.into(),
            text: text.into(),
            score,
        })
        .collect::<Vec<_>>()
    };
    [
        ("delivery", "送货准时、货品完好", 2.0),
        ("service", "客户经理的服务", 2.0),
        ("supply", "紧俏货源的供应", 1.5),
        ("complaints", "投诉的处理", 1.5),
        ("overall", "总体满意度", 3.0),
    ]
    .into_iter()
    .map(|(id, text, weight)| SurveyQuestion {
        id: id.into(),
        text: text.into(),
        weight,
        answers: scale(),
    })
    .collect()
}

/// An answer resolved against the questionnaire: (question id, answer id, weight, score).
pub type Resolved = (String, String, f64, f64);

/// Resolves `responses` (question id, answer id) against `questions`, or names the
/// first problem: an unknown question, an unknown answer, or a question answered twice.
pub fn resolve(
    questions: &[SurveyQuestion],
    responses: &[(String, String)],
) -> Result<Vec<Resolved>, (usize, String)> {
    let mut out: Vec<Resolved> = Vec::with_capacity(responses.len());
    for (i, (question_id, answer_id)) in responses.iter().enumerate() {
        let question = questions
            .iter()
            .find(|q| &q.id == question_id)
            .ok_or((i, format!("unknown question {question_id:?}")))?;
        if out.iter().any(|r| &r.0 == question_id) {
            return Err((i, format!("question {question_id:?} answered twice")));
        }
        let answer = question
            .answers
            .iter()
            .find(|a| &a.id == answer_id)
            .ok_or((i, format!("{answer_id:?} is not an answer to {question_id:?}")))?;
        out.push((
            question_id.clone(),
            answer_id.clone(),
            question.weight.max(0.0),
            answer.score.clamp(0.0, 100.0),
        ));
    }
    Ok(out)
}

/// The weighted score 0–100 of resolved answers (0 when no weight was answered).
pub fn score(resolved: &[Resolved]) -> f64 {
    let weight: f64 = resolved.iter().map(|r| r.2).sum();
    if weight <= 0.0 {
        return 0.0;
    }
    (resolved.iter().map(|r| r.2 * r.3).sum::<f64>() / weight).clamp(0.0, 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn answers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(q, a)| (q.to_string(), a.to_string()))
            .collect()
    }

    #[test]
    fn the_score_is_the_weighted_mean_of_the_answers() {
        let q = default_questionnaire();
        let all_best: Vec<(String, String)> = q
            .iter()
            .map(|x| (x.id.clone(), "very_satisfied".into()))
            .collect();
        assert_eq!(score(&resolve(&q, &all_best).expect("valid")), 100.0);
        // delivery (2) very dissatisfied, overall (3) satisfied: (2×0 + 3×80) ÷ 5 = 48.
        let r = resolve(
            &q,
            &answers(&[("delivery", "very_dissatisfied"), ("overall", "satisfied")]),
        )
        .expect("valid");
        assert!((score(&r) - 48.0).abs() < 1e-9);
        assert_eq!(score(&[]), 0.0);
    }

    #[test]
    fn unknown_or_repeated_answers_are_named() {
        let q = default_questionnaire();
        assert_eq!(
            resolve(&q, &answers(&[("price", "satisfied")])).map_err(|e| e.0),
            Err(0)
        );
        assert_eq!(
            resolve(&q, &answers(&[("overall", "meh")])).map_err(|e| e.0),
            Err(0)
        );
        assert_eq!(
            resolve(&q, &answers(&[("overall", "satisfied"), ("overall", "neutral")])).map_err(|e| e.0),
            Err(1)
        );
    }

    proptest! {
        #[test]
        fn scores_stay_between_0_and_100(picks in proptest::collection::vec((0usize..5, 0usize..5), 0..5)) {
            let q = default_questionnaire();
            let mut seen = std::collections::HashSet::new();
            let responses: Vec<(String, String)> = picks
                .into_iter()
                .filter(|(qi, _)| seen.insert(*qi))
                .map(|(qi, ai)| (q[qi].id.clone(), q[qi].answers[ai].id.clone()))
                .collect();
            let s = score(&resolve(&q, &responses).expect("valid"));
            prop_assert!((0.0..=100.0).contains(&s));
        }
    }
}
