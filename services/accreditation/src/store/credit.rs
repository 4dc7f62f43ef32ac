//! Credit profiles in Postgres: the credit file's inputs (JSON in a shape of their
//! own), the assessment made from them, and the blacklist flag.

use chrono::{DateTime, Utc};
use distnet_platform::ServiceError;
use distnet_proto::accreditation::v1::CreditProfile;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;

use super::timestamp;
use crate::domain::credit::{CreditAssessment, CreditGrade, CreditInputs, LimitBase};

/// The grade as the contract spells it.
pub fn grade_name(grade: CreditGrade) -> &'static str {
    match grade {
        CreditGrade::Aaa => "AAA",
        CreditGrade::Aa => "AA",
        CreditGrade::A => "A",
        CreditGrade::B => "B",
        CreditGrade::C => "C",
        CreditGrade::D => "D",
    }
}

/// The limit base as the contract spells it.
pub fn limit_base_name(base: LimitBase) -> &'static str {
    match base {
        LimitBase::WorkingCapital => "WORKING_CAPITAL",
        LimitBase::NetAssets => "NET_ASSETS",
        LimitBase::NoBase => "NONE",
    }
}

pub use distnet_platform::wire::cny;

/// The stored JSON of a credit file's inputs.
#[derive(Serialize, Deserialize)]
struct InputsBody {
    working_capital_fen: i64,
    net_assets_fen: i64,
    current_ratio: f64,
    interest_coverage: f64,
    debt_ratio: f64,
    cash_ratio: f64,
    on_time_payment_rate: f64,
    disputes_last_year: u32,
}

impl From<&CreditInputs> for InputsBody {
    fn from(inputs: &CreditInputs) -> Self {
        Self {
            working_capital_fen: inputs.working_capital_fen,
            net_assets_fen: inputs.net_assets_fen,
            current_ratio: inputs.current_ratio,
            interest_coverage: inputs.interest_coverage,
            debt_ratio: inputs.debt_ratio,
            cash_ratio: inputs.cash_ratio,
            on_time_payment_rate: inputs.on_time_payment_rate,
            disputes_last_year: inputs.disputes_last_year,
        }
    }
}

impl From<InputsBody> for CreditInputs {
    fn from(body: InputsBody) -> Self {
        Self {
            working_capital_fen: body.working_capital_fen,
            net_assets_fen: body.net_assets_fen,
            current_ratio: body.current_ratio,
            interest_coverage: body.interest_coverage,
            debt_ratio: body.debt_ratio,
            cash_ratio: body.cash_ratio,
            on_time_payment_rate: body.on_time_payment_rate,
            disputes_last_year: body.disputes_last_year,
        }
    }
}

/// A credit file as stored: inputs, the assessment and the blacklist flag.
#[derive(Debug, Clone)]
pub struct StoredProfile {
    pub customer_id: String,
    pub inputs: CreditInputs,
    pub assessment: CreditAssessment,
    pub blacklisted: bool,
    pub blacklist_reason: String,
    pub updated_by: String,
    pub updated_at: DateTime<Utc>,
}

impl StoredProfile {
    /// The wire form. `limit` is the scorecard's limit; a blacklisted customer's
    /// limit in force is zero, and the explanation says so.
    pub fn to_proto(&self) -> CreditProfile {
        let inputs = &self.inputs;
        let assessment = &self.assessment;
        let mut explanation = assessment.explanation.clone();
        if self.blacklisted {
            explanation.push(format!(
                "blacklisted ({}): limit in force 0 fen",
                self.blacklist_reason
            ));
        }
        CreditProfile {
            customer: format!("customers/{}", self.customer_id),
            working_capital: Some(cny(inputs.working_capital_fen)),
            net_assets: Some(cny(inputs.net_assets_fen)),
            current_ratio: inputs.current_ratio,
            interest_coverage: inputs.interest_coverage,
            debt_ratio: inputs.debt_ratio,
            cash_ratio: inputs.cash_ratio,
            on_time_payment_rate: inputs.on_time_payment_rate,
            disputes_last_year: i32::try_from(inputs.disputes_last_year).unwrap_or(i32::MAX),
            blacklisted: self.blacklisted,
            blacklist_reason: self.blacklist_reason.clone(),
            score: i32::try_from(assessment.score).unwrap_or(i32::MAX),
            grade: grade_name(assessment.grade).to_owned(),
            limit: Some(cny(assessment.limit_fen)),
            limit_base: limit_base_name(assessment.base).to_owned(),
            terms_days: i32::try_from(assessment.terms_days).unwrap_or(i32::MAX),
            early_payment_discount_bp: i32::try_from(assessment.early_payment_discount_bp)
                .unwrap_or(i32::MAX),
            explanation,
            updated_by: self.updated_by.clone(),
            update_time: Some(timestamp(self.updated_at)),
        }
    }
}

#[derive(sqlx::FromRow)]
struct ProfileRow {
    customer_id: String,
    inputs: serde_json::Value,
    score: i32,
    grade: String,
    limit_fen: i64,
    limit_base: String,
    terms_days: i32,
    early_payment_discount_bp: i32,
    explanation: Vec<String>,
    blacklisted: bool,
    blacklist_reason: String,
    updated_by: String,
    updated_at: DateTime<Utc>,
}

impl ProfileRow {
    fn into_profile(self) -> Result<StoredProfile, ServiceError> {
        let customer = &self.customer_id;
        let inputs: InputsBody = serde_json::from_value(self.inputs)
            .map_err(|e| ServiceError::internal(format!("credit inputs of {customer}: {e}")))?;
        let grade = CreditGrade::ALL
            .into_iter()
            .find(|g| grade_name(*g) == self.grade)
            .ok_or_else(|| ServiceError::internal(format!("credit grade {} of {customer}", self.grade)))?;
        let base = [LimitBase::WorkingCapital, LimitBase::NetAssets, LimitBase::NoBase]
            .into_iter()
            .find(|b| limit_base_name(*b) == self.limit_base)
            .ok_or_else(|| ServiceError::internal(format!("limit base {} of {customer}", self.limit_base)))?;
        let count = |value: i32| u32::try_from(value).unwrap_or(0);
        Ok(StoredProfile {
            customer_id: self.customer_id,
            inputs: inputs.into(),
            assessment: CreditAssessment {
                score: count(self.score),
                grade,
                base,
                limit_fen: self.limit_fen,
                terms_days: count(self.terms_days),
                early_payment_discount_bp: count(self.early_payment_discount_bp),
                explanation: self.explanation,
            },
            blacklisted: self.blacklisted,
            blacklist_reason: self.blacklist_reason,
            updated_by: self.updated_by,
            updated_at: self.updated_at,
        })
    }
}

pub async fn profile(
    conn: &mut PgConnection,
    customer_id: &str,
) -> Result<Option<StoredProfile>, ServiceError> {
    let row: Option<ProfileRow> = sqlx::query_as("SELECT * FROM credit_profiles WHERE customer_id = $1")
        .bind(customer_id)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(ProfileRow::into_profile).transpose()
}

/// Writes the whole file: a revision replaces inputs and assessment together.
pub async fn upsert_profile(tx: &mut PgConnection, profile: &StoredProfile) -> Result<(), ServiceError> {
    let inputs = serde_json::to_value(InputsBody::from(&profile.inputs)).map_err(ServiceError::internal)?;
    let assessment = &profile.assessment;
    let as_i32 = |value: u32| i32::try_from(value).unwrap_or(i32::MAX);
    sqlx::query(
        "INSERT INTO credit_profiles (customer_id, inputs, score, grade, limit_fen, limit_base, terms_days, \
           early_payment_discount_bp, explanation, blacklisted, blacklist_reason, updated_by, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
         ON CONFLICT (customer_id) DO UPDATE SET inputs = $2, score = $3, grade = $4, limit_fen = $5, \
           limit_base = $6, terms_days = $7, early_payment_discount_bp = $8, explanation = $9, \
           blacklisted = $10, blacklist_reason = $11, updated_by = $12, updated_at = $13",
    )
    .bind(&profile.customer_id)
    .bind(inputs)
    .bind(as_i32(assessment.score))
    .bind(grade_name(assessment.grade))
    .bind(assessment.limit_fen)
    .bind(limit_base_name(assessment.base))
    .bind(as_i32(assessment.terms_days))
    .bind(as_i32(assessment.early_payment_discount_bp))
    .bind(&assessment.explanation)
    .bind(profile.blacklisted)
    .bind(&profile.blacklist_reason)
    .bind(&profile.updated_by)
    .bind(profile.updated_at)
    .execute(&mut *tx)
    .await?;
    Ok(())
}
