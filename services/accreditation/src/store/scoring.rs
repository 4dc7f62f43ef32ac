//! The scoring ledger in Postgres: versioned rulebooks (JSON bodies in a shape of
//! their own, so that renaming a domain field never breaks stored versions) and the
//! append-only `score_events`.
//!
//! Two advisory locks keep classes right under concurrency: recording takes the
//! rulebook lock shared and the customer's ledger lock exclusive, so a cap count
//! and a cumulative sum always see every committed event of that customer; a
//! rulebook update takes the rulebook lock exclusive, so it re-classifies with no
//! recording in flight and no recording classifies with a superseded rulebook.

use chrono::{DateTime, Utc};
use distnet_platform::ServiceError;
use distnet_platform::auth::Role;
use distnet_proto::accreditation::v1::{
    CustomerClass as WireClass, Dimension as WireDimension, Rulebook as WireRulebook, ScoreEvent,
    ScoreRule as WireRule,
};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;

use super::timestamp;
use crate::domain::scoring::{
    ClassThresholds, CustomerClass, Dimension, Rebates, Rulebook, ScoreRule, default_rulebook,
};

/// Advisory lock namespaces (the two-key form, so they never meet single-key locks).
const RULEBOOK_LOCK: i32 = 0x5C0_0001;
const LEDGER_LOCK: i32 = 0x5C0_0002;

/// The rulebook in force, with who stored it and when (nobody, for the default).
#[derive(Debug, Clone)]
pub struct StoredRulebook {
    pub rulebook: Rulebook,
    pub updated_by: String,
    pub updated_at: Option<DateTime<Utc>>,
}

impl StoredRulebook {
    pub fn to_proto(&self) -> WireRulebook {
        let rulebook = &self.rulebook;
        WireRulebook {
            version: rulebook.version,
            rules: rulebook
                .rules
                .iter()
                .map(|rule| WireRule {
                    code: rule.code.clone(),
                    title: rule.title.clone(),
                    dimension: dimension_code(rule.dimension).into(),
                    recorder_roles: rule.recorders.iter().map(|r| r.as_str().to_owned()).collect(),
                    points: rule.points,
                    cap_per_period: i32::try_from(rule.cap_per_period).unwrap_or(i32::MAX),
                })
                .collect(),
            special_threshold: rulebook.class_thresholds.special,
            key_threshold: rulebook.class_thresholds.key,
            special_rebate_bp: bp(rulebook.rebates.special_bp),
            key_rebate_bp: bp(rulebook.rebates.key_bp),
            general_rebate_bp: bp(rulebook.rebates.general_bp),
            updated_by: self.updated_by.clone(),
            update_time: self.updated_at.map(timestamp),
        }
    }
}

fn bp(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

/// The wire (and column) number of a dimension.
pub fn dimension_code(dimension: Dimension) -> i16 {
    let wire = match dimension {
        Dimension::LawAbidance => WireDimension::LawAbidance,
        Dimension::Cooperation => WireDimension::Cooperation,
        Dimension::Constructiveness => WireDimension::Constructiveness,
        Dimension::Growth => WireDimension::Growth,
    };
    wire as i16
}

/// The wire (and standings column) number of a class.
pub fn class_code(class: CustomerClass) -> i16 {
    let wire = match class {
        CustomerClass::Special => WireClass::Special,
        CustomerClass::Key => WireClass::Key,
        CustomerClass::General => WireClass::General,
    };
    wire as i16
}

pub fn dimension_from_code(code: i32) -> Option<Dimension> {
    match WireDimension::try_from(code).ok()? {
        WireDimension::LawAbidance => Some(Dimension::LawAbidance),
        WireDimension::Cooperation => Some(Dimension::Cooperation),
        WireDimension::Constructiveness => Some(Dimension::Constructiveness),
        WireDimension::Growth => Some(Dimension::Growth),
        WireDimension::Unspecified => None,
    }
}

/// The stored JSON body of a rulebook version.
#[derive(Serialize, Deserialize)]
struct RulebookBody {
    rules: Vec<RuleBody>,
    special_threshold: i64,
    key_threshold: i64,
    special_rebate_bp: u32,
    key_rebate_bp: u32,
    general_rebate_bp: u32,
}

#[derive(Serialize, Deserialize)]
struct RuleBody {
    code: String,
    title: String,
    /// The wire number of the dimension.
    dimension: i16,
    /// Role names as in tokens, e.g. `customer_manager`.
    recorders: Vec<String>,
    points: i32,
    cap_per_period: u32,
}

impl RulebookBody {
    fn of(rulebook: &Rulebook) -> Self {
        Self {
            rules: rulebook
                .rules
                .iter()
                .map(|rule| RuleBody {
                    code: rule.code.clone(),
                    title: rule.title.clone(),
                    dimension: dimension_code(rule.dimension),
                    recorders: rule.recorders.iter().map(|r| r.as_str().to_owned()).collect(),
                    points: rule.points,
                    cap_per_period: rule.cap_per_period,
                })
                .collect(),
            special_threshold: rulebook.class_thresholds.special,
            key_threshold: rulebook.class_thresholds.key,
            special_rebate_bp: rulebook.rebates.special_bp,
            key_rebate_bp: rulebook.rebates.key_bp,
            general_rebate_bp: rulebook.rebates.general_bp,
        }
    }

    fn into_rulebook(self, version: i64) -> Result<Rulebook, ServiceError> {
        let mut rules = Vec::with_capacity(self.rules.len());
        for rule in self.rules {
            let dimension = dimension_from_code(i32::from(rule.dimension)).ok_or_else(|| {
                ServiceError::internal(format!("rulebook {version}: stored dimension {}", rule.dimension))
            })?;
            let recorders = rule
                .recorders
                .iter()
                .map(|name| name.parse::<Role>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| ServiceError::internal(format!("rulebook {version}: {e}")))?;
            rules.push(ScoreRule {
                code: rule.code,
                title: rule.title,
                dimension,
                recorders,
                points: rule.points,
                cap_per_period: rule.cap_per_period,
            });
        }
        Ok(Rulebook {
            version,
            rules,
            class_thresholds: ClassThresholds {
                special: self.special_threshold,
                key: self.key_threshold,
            },
            rebates: Rebates {
                special_bp: self.special_rebate_bp,
                key_bp: self.key_rebate_bp,
                general_bp: self.general_rebate_bp,
            },
        })
    }
}

/// The highest stored version, or the default rulebook (version 1) when none is.
pub async fn current_rulebook(conn: &mut PgConnection) -> Result<StoredRulebook, ServiceError> {
    let row: Option<(i64, serde_json::Value, String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT version, body, updated_by, updated_at FROM rulebooks ORDER BY version DESC LIMIT 1",
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some((version, body, updated_by, updated_at)) = row else {
        return Ok(StoredRulebook {
            rulebook: default_rulebook(),
            updated_by: String::new(),
            updated_at: None,
        });
    };
    let body: RulebookBody = serde_json::from_value(body)
        .map_err(|e| ServiceError::internal(format!("rulebook {version}: {e}")))?;
    Ok(StoredRulebook {
        rulebook: body.into_rulebook(version)?,
        updated_by,
        updated_at: Some(updated_at),
    })
}

/// Stores `rulebook` under its own version.
pub async fn insert_rulebook(
    tx: &mut PgConnection,
    rulebook: &Rulebook,
    updated_by: &str,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    let body = serde_json::to_value(RulebookBody::of(rulebook)).map_err(ServiceError::internal)?;
    sqlx::query("INSERT INTO rulebooks (version, body, updated_by, updated_at) VALUES ($1, $2, $3, $4)")
        .bind(rulebook.version)
        .bind(body)
        .bind(updated_by)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Recording holds this shared; a rulebook update holds it exclusive.
pub async fn lock_rulebook(tx: &mut PgConnection, exclusive: bool) -> Result<(), ServiceError> {
    let sql = if exclusive {
        "SELECT pg_advisory_xact_lock($1, 0)"
    } else {
        "SELECT pg_advisory_xact_lock_shared($1, 0)"
    };
    sqlx::query(sql).bind(RULEBOOK_LOCK).execute(&mut *tx).await?;
    Ok(())
}

/// Serializes recordings for one customer until the transaction ends: the cap per
/// period is counted, and the class computed, from every committed event.
pub async fn lock_ledger(tx: &mut PgConnection, customer_id: &str) -> Result<(), ServiceError> {
    sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
        .bind(LEDGER_LOCK)
        .bind(customer_id)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// How often the customer already got the rule in the period.
pub async fn times_recorded(
    conn: &mut PgConnection,
    customer_id: &str,
    rule_code: &str,
    period: &str,
) -> Result<i64, ServiceError> {
    let (count,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM score_events WHERE customer_id = $1 AND rule_code = $2 AND period = $3",
    )
    .bind(customer_id)
    .bind(rule_code)
    .bind(period)
    .fetch_one(&mut *conn)
    .await?;
    Ok(count)
}

/// One row of the ledger.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ScoreEventRow {
    pub id: String,
    pub customer_id: String,
    pub rule_code: String,
    pub dimension: i16,
    pub points: i32,
    pub period: String,
    pub recorded_by: String,
    pub recorder_role: String,
    pub rulebook_version: i64,
    pub note: String,
    pub recorded_at: DateTime<Utc>,
}

impl ScoreEventRow {
    pub fn to_proto(&self) -> ScoreEvent {
        ScoreEvent {
            name: format!("score-events/{}", self.id),
            customer: format!("customers/{}", self.customer_id),
            rule_code: self.rule_code.clone(),
            dimension: i32::from(self.dimension),
            points: self.points,
            period: self.period.clone(),
            recorded_by: self.recorded_by.clone(),
            recorder_role: self.recorder_role.clone(),
            rulebook_version: self.rulebook_version,
            note: self.note.clone(),
            record_time: Some(timestamp(self.recorded_at)),
        }
    }
}

pub async fn insert_event(tx: &mut PgConnection, event: &ScoreEventRow) -> Result<(), ServiceError> {
    sqlx::query(
        "INSERT INTO score_events (id, customer_id, rule_code, dimension, points, period, recorded_by, \
         recorder_role, rulebook_version, note, recorded_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&event.id)
    .bind(&event.customer_id)
    .bind(&event.rule_code)
    .bind(event.dimension)
    .bind(event.points)
    .bind(&event.period)
    .bind(&event.recorded_by)
    .bind(&event.recorder_role)
    .bind(event.rulebook_version)
    .bind(&event.note)
    .bind(event.recorded_at)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// All points the customer ever got: its class follows from them.
pub async fn cumulative_points(conn: &mut PgConnection, customer_id: &str) -> Result<i64, ServiceError> {
    let (points,): (Option<i64>,) =
        sqlx::query_as("SELECT sum(points)::bigint FROM score_events WHERE customer_id = $1")
            .bind(customer_id)
            .fetch_one(&mut *conn)
            .await?;
    Ok(points.unwrap_or(0))
}

/// The period's points by dimension.
pub async fn period_points(
    conn: &mut PgConnection,
    customer_id: &str,
    period: &str,
) -> Result<Vec<(Dimension, i64)>, ServiceError> {
    let rows: Vec<(i16, Option<i64>)> = sqlx::query_as(
        "SELECT dimension, sum(points)::bigint FROM score_events \
         WHERE customer_id = $1 AND period = $2 GROUP BY dimension",
    )
    .bind(customer_id)
    .bind(period)
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter()
        .map(|(code, points)| {
            dimension_from_code(i32::from(code))
                .map(|dimension| (dimension, points.unwrap_or(0)))
                .ok_or_else(|| ServiceError::internal(format!("stored dimension {code}")))
        })
        .collect()
}

/// A customer with points in the ledger.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ScoredCustomer {
    pub customer_id: String,
    pub area_id: String,
    pub cumulative_points: i64,
}

/// Every customer with points, with its area from the replica, in id order.
pub async fn scored_customers(tx: &mut PgConnection) -> Result<Vec<ScoredCustomer>, ServiceError> {
    Ok(sqlx::query_as(
        "SELECT e.customer_id, coalesce(c.area_id, '') AS area_id, \
           sum(e.points)::bigint AS cumulative_points \
         FROM score_events e LEFT JOIN customer_cache c ON c.customer_id = e.customer_id \
         GROUP BY e.customer_id, c.area_id ORDER BY e.customer_id",
    )
    .fetch_all(&mut *tx)
    .await?)
}
