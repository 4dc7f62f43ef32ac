//! Gradings in Postgres: the inputs (licensed retailers, purchases, score points),
//! drafts with their tier assignments, publication and overrides.

use chrono::{DateTime, Utc};
use distnet_platform::ServiceError;
use distnet_platform::pagination::Page;
use distnet_proto::accreditation::v1::{Grading, GradingState, GradingWeights, Standing, TierAssignment};
use sqlx::{PgConnection, PgPool};

use super::{StandingRow, timestamp};
use crate::domain::grading::{self as rules, GradingInput, ShopFormat};

/// Month-by-month purchases, replacing a retailer's record of the same month.
pub async fn record_purchases(
    tx: &mut PgConnection,
    period: &str,
    customer_ids: &[String],
    amounts_fen: &[i64],
    cartons: &[i64],
) -> Result<u64, ServiceError> {
    Ok(sqlx::query(
        "INSERT INTO purchases (customer_id, period, amount_fen, cartons) \
         SELECT c, $2, a, n FROM unnest($1::text[], $3::bigint[], $4::bigint[]) AS t(c, a, n) \
         ON CONFLICT (customer_id, period) DO UPDATE SET amount_fen = EXCLUDED.amount_fen, \
           cartons = EXCLUDED.cartons",
    )
    .bind(customer_ids)
    .bind(period)
    .bind(amounts_fen)
    .bind(cartons)
    .execute(&mut *tx)
    .await?
    .rows_affected())
}

/// `distnet.customers.v1.CustomerFormat` numbers.
fn shop_format(format: i16) -> ShopFormat {
    match format {
        1 => ShopFormat::ConvenienceStore,
        2 => ShopFormat::Grocery,
        3 => ShopFormat::Supermarket,
        4 => ShopFormat::Mall,
        5 => ShopFormat::ChainStore,
        _ => ShopFormat::Unknown,
    }
}

/// Every retailer with a license in force at `now`, with its purchases over
/// `months` and its cumulative score points.
pub async fn inputs(
    conn: &mut PgConnection,
    months: &[String],
    now: DateTime<Utc>,
) -> Result<Vec<GradingInput>, ServiceError> {
    type Row = (String, i16, i32, i64, i64, bool, i64);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT l.customer_id, coalesce(c.format, 0::smallint), coalesce(c.floor_area_sqm, 0), \
           coalesce(p.amount, 0)::bigint, coalesce(p.cartons, 0)::bigint, \
           coalesce(p.amount > 0 OR p.cartons > 0, false), coalesce(s.points, 0)::bigint \
         FROM licenses l \
         LEFT JOIN customer_cache c ON c.customer_id = l.customer_id \
         LEFT JOIN (SELECT customer_id, sum(amount_fen) AS amount, sum(cartons) AS cartons \
                    FROM purchases WHERE period = ANY($2) GROUP BY customer_id) p \
           ON p.customer_id = l.customer_id \
         LEFT JOIN (SELECT customer_id, sum(points) AS points FROM score_events GROUP BY customer_id) s \
           ON s.customer_id = l.customer_id \
         WHERE l.status IN (1, 2) AND l.valid_to > $1",
    )
    .bind(now)
    .bind(months)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(customer_id, format, floor_area_sqm, amount, cartons, has_history, points)| GradingInput {
                customer_id,
                purchase_amount_fen: amount,
                purchase_cartons: cartons,
                score_points: points,
                has_history,
                format: shop_format(format),
                floor_area_sqm,
            },
        )
        .collect())
}

pub struct NewGrading<'a> {
    pub period: &'a str,
    pub weights: &'a GradingWeights,
    pub grading: &'a rules::Grading,
    pub created_by: &'a str,
    pub now: DateTime<Utc>,
}

/// Stores a draft and its assignments; returns the version.
pub async fn insert_draft(tx: &mut PgConnection, draft: &NewGrading<'_>) -> Result<i64, ServiceError> {
    let grading = draft.grading;
    let distribution: Vec<i32> = grading
        .distribution
        .iter()
        .map(|n| i32::try_from(*n).unwrap_or(i32::MAX))
        .collect();
    let placed_by_format = grading
        .retailers
        .iter()
        .filter(|r| r.placed_by == rules::Placement::FormatAndSize)
        .count();
    let explanations: Vec<String> = (1..=grading.tiers)
        .map(|t| rules::explain_tier(grading, t))
        .collect();
    let (version,): (i64,) = sqlx::query_as(
        "INSERT INTO gradings (period, amount_bp, quantity_bp, score_bp, tiers, state, distribution, \
           boundaries, placed_by_format, explanations, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING version",
    )
    .bind(draft.period)
    .bind(draft.weights.amount_bp)
    .bind(draft.weights.quantity_bp)
    .bind(draft.weights.score_bp)
    .bind(i32::try_from(grading.tiers).unwrap_or(0))
    .bind(GradingState::Draft as i16)
    .bind(&distribution)
    .bind(&grading.boundaries)
    .bind(i32::try_from(placed_by_format).unwrap_or(i32::MAX))
    .bind(&explanations)
    .bind(draft.created_by)
    .bind(draft.now)
    .fetch_one(&mut *tx)
    .await?;
    let mut customers = Vec::with_capacity(grading.retailers.len());
    let mut tiers = Vec::with_capacity(grading.retailers.len());
    let mut composites = Vec::with_capacity(grading.retailers.len());
    let mut by_format = Vec::with_capacity(grading.retailers.len());
    for retailer in &grading.retailers {
        customers.push(retailer.customer_id.clone());
        tiers.push(i32::try_from(retailer.tier).unwrap_or(0));
        composites.push(retailer.composite);
        by_format.push(retailer.placed_by == rules::Placement::FormatAndSize);
    }
    sqlx::query(
        "INSERT INTO tier_assignments (grading_version, customer_id, tier, computed_tier, composite, \
           placed_by_format) \
         SELECT $1, c, t, t, x, f FROM unnest($2::text[], $3::int[], $4::bigint[], $5::bool[]) AS u(c, t, x, f)",
    )
    .bind(version)
    .bind(&customers)
    .bind(&tiers)
    .bind(&composites)
    .bind(&by_format)
    .execute(&mut *tx)
    .await?;
    Ok(version)
}

#[derive(sqlx::FromRow)]
struct GradingRow {
    version: i64,
    period: String,
    amount_bp: i32,
    quantity_bp: i32,
    score_bp: i32,
    tiers: i32,
    state: i16,
    distribution: Vec<i32>,
    boundaries: Vec<i64>,
    placed_by_format: i32,
    explanations: Vec<String>,
    effective_cycle: String,
    created_by: String,
    created_at: DateTime<Utc>,
    published_by: String,
    published_at: Option<DateTime<Utc>>,
}

impl From<GradingRow> for Grading {
    fn from(row: GradingRow) -> Self {
        Grading {
            name: format!("gradings/{}", row.version),
            version: row.version,
            period: row.period,
            weights: Some(GradingWeights {
                amount_bp: row.amount_bp,
                quantity_bp: row.quantity_bp,
                score_bp: row.score_bp,
            }),
            tiers: row.tiers,
            state: i32::from(row.state),
            retailers: row.distribution.iter().sum(),
            distribution: row.distribution,
            boundaries: row.boundaries,
            placed_by_format: row.placed_by_format,
            effective_cycle: row.effective_cycle,
            explanations: row.explanations,
            created_by: row.created_by,
            create_time: Some(timestamp(row.created_at)),
            published_by: row.published_by,
            publish_time: row.published_at.map(timestamp),
        }
    }
}

pub async fn grading(
    conn: &mut PgConnection,
    version: i64,
    lock: bool,
) -> Result<Option<Grading>, ServiceError> {
    let sql = if lock {
        "SELECT * FROM gradings WHERE version = $1 FOR UPDATE"
    } else {
        "SELECT * FROM gradings WHERE version = $1"
    };
    let row: Option<GradingRow> = sqlx::query_as(sql)
        .bind(version)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.map(Into::into))
}

/// The newest published grading's version, if any.
pub async fn latest_published(conn: &mut PgConnection) -> Result<Option<i64>, ServiceError> {
    let (version,): (Option<i64>,) = sqlx::query_as("SELECT max(version) FROM gradings WHERE state = $1")
        .bind(GradingState::Published as i16)
        .fetch_one(&mut *conn)
        .await?;
    Ok(version)
}

pub async fn mark_published(
    tx: &mut PgConnection,
    version: i64,
    cycle: &str,
    by: &str,
    now: DateTime<Utc>,
) -> Result<Grading, ServiceError> {
    let row: GradingRow = sqlx::query_as(
        "UPDATE gradings SET state = $2, effective_cycle = $3, published_by = $4, published_at = $5 \
         WHERE version = $1 RETURNING *",
    )
    .bind(version)
    .bind(GradingState::Published as i16)
    .bind(cycle)
    .bind(by)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    Ok(row.into())
}

/// Moves every graded retailer's standing to its tier. Only standings whose tier
/// actually changes are touched and returned, so events go out exactly for them.
pub async fn apply_tiers_to_standings(
    tx: &mut PgConnection,
    version: i64,
    now: DateTime<Utc>,
) -> Result<Vec<Standing>, ServiceError> {
    let rows: Vec<StandingRow> = sqlx::query_as(
        "UPDATE standings s SET tier = t.tier, grading_version = $1, version = s.version + 1, updated_at = $2 \
         FROM tier_assignments t \
         WHERE t.grading_version = $1 AND t.customer_id = s.customer_id AND s.tier IS DISTINCT FROM t.tier \
         RETURNING s.*",
    )
    .bind(version)
    .bind(now)
    .fetch_all(&mut *tx)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Sets one retailer's standing tier (a published override).
pub async fn set_standing_tier(
    tx: &mut PgConnection,
    customer_id: &str,
    tier: i32,
    version: i64,
    now: DateTime<Utc>,
) -> Result<Option<Standing>, ServiceError> {
    let row: Option<StandingRow> = sqlx::query_as(
        "UPDATE standings SET tier = $2, grading_version = $3, version = version + 1, updated_at = $4 \
         WHERE customer_id = $1 AND tier IS DISTINCT FROM $2 RETURNING *",
    )
    .bind(customer_id)
    .bind(tier)
    .bind(version)
    .bind(now)
    .fetch_optional(&mut *tx)
    .await?;
    Ok(row.map(Into::into))
}

#[derive(sqlx::FromRow)]
struct AssignmentRow {
    customer_id: String,
    tier: i32,
    computed_tier: i32,
    composite: i64,
    placed_by_format: bool,
    override_reason: String,
    overridden_by: String,
}

impl From<AssignmentRow> for TierAssignment {
    fn from(row: AssignmentRow) -> Self {
        TierAssignment {
            customer: format!("customers/{}", row.customer_id),
            tier: row.tier,
            composite: row.composite,
            placed_by_format: row.placed_by_format,
            computed_tier: row.computed_tier,
            override_reason: row.override_reason,
            overridden_by: row.overridden_by,
        }
    }
}

pub async fn assignments(
    pool: &PgPool,
    version: i64,
    tier: i32,
    page: &Page,
) -> Result<Vec<TierAssignment>, ServiceError> {
    let rows: Vec<AssignmentRow> = sqlx::query_as(
        "SELECT customer_id, tier, computed_tier, composite, placed_by_format, override_reason, overridden_by \
         FROM tier_assignments WHERE grading_version = $1 AND ($2 = 0 OR tier = $2) \
         AND ($3::text IS NULL OR customer_id > $3) ORDER BY customer_id LIMIT $4",
    )
    .bind(version)
    .bind(tier)
    .bind(page.after.as_deref())
    .bind(page.size + 1)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Records a planner's override; the computed tier stays for the audit.
pub async fn override_assignment(
    tx: &mut PgConnection,
    version: i64,
    customer_id: &str,
    tier: i32,
    reason: &str,
    by: &str,
    now: DateTime<Utc>,
) -> Result<Option<TierAssignment>, ServiceError> {
    let row: Option<AssignmentRow> = sqlx::query_as(
        "UPDATE tier_assignments SET tier = $3, override_reason = $4, overridden_by = $5, overridden_at = $6 \
         WHERE grading_version = $1 AND customer_id = $2 \
         RETURNING customer_id, tier, computed_tier, composite, placed_by_format, override_reason, overridden_by",
    )
    .bind(version)
    .bind(customer_id)
    .bind(tier)
    .bind(reason)
    .bind(by)
    .bind(now)
    .fetch_optional(&mut *tx)
    .await?;
    Ok(row.map(Into::into))
}
