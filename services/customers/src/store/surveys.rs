//! Satisfaction surveys (table `surveys`).

use chrono::{DateTime, Utc};
use distnet_platform::ServiceError;
use sqlx::PgConnection;

use crate::domain::surveys::Resolved;

pub struct NewSurvey<'a> {
    pub id: &'a str,
    pub customer_id: &'a str,
    pub area_id: &'a str,
    pub channel: i32,
    pub actor: &'a str,
    pub time: DateTime<Utc>,
    pub responses: &'a [Resolved],
    pub comment: &'a str,
    pub score: f64,
}

pub async fn insert(tx: &mut PgConnection, s: &NewSurvey<'_>) -> Result<(), ServiceError> {
    let responses = serde_json::Value::Array(
        s.responses
            .iter()
            .map(|(q, a, weight, score)| {
                serde_json::json!({"question_id": q, "answer_id": a, "weight": weight, "score": score})
            })
            .collect(),
    );
    sqlx::query(
        "INSERT INTO surveys (id, customer_id, area_id, channel, actor, time, responses, comment, score) \
         VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9)",
    )
    .bind(s.id)
    .bind(s.customer_id)
    .bind(s.area_id)
    .bind(super::small(s.channel))
    .bind(s.actor)
    .bind(s.time)
    .bind(responses.to_string())
    .bind(s.comment)
    .bind(s.score)
    .execute(&mut *tx)
    .await?;
    super::insights::touch(tx).await
}
