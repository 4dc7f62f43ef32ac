//! Standings snapshots, allocation runs, their tiers, and entitlements read from them.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};

use distnet_platform::ServiceError;
use distnet_platform::pagination::Page;
use distnet_proto::allocation::v1::{Allocation, AllocationState, PolicyKind, TierAllocation};
use sqlx::{PgConnection, Postgres, QueryBuilder};

use super::timestamp;
use crate::domain::eligibility::{Candidate, Eligibility};
use crate::domain::run::{RunOutcome, TierLine};

/// The base eligibility every snapshot row meets: license ACTIVE, not blacklisted,
/// graded (DESIGN.md "Allocation").
const BASE_ELIGIBLE: &str = "license_status = 1 AND NOT blacklisted AND tier > 0";

/// The policy filters of allocation `a` for snapshot row `sr`, as in
/// `domain::eligibility::Eligibility::admits`.
pub const ELIGIBLE: &str = "(cardinality(a.classes) = 0 OR sr.customer_class = ANY(a.classes)) \
     AND (cardinality(a.area_ids) = 0 OR sr.area_id = ANY(a.area_ids)) \
     AND (cardinality(a.formats) = 0 OR sr.format = ANY(a.formats)) \
     AND (cardinality(a.targets) = 0 OR sr.customer_id = ANY(a.targets))";

type CandidateRow = (String, i32, i16, String, i16);

fn candidate((customer_id, tier, class, area_id, format): CandidateRow) -> Candidate {
    Candidate {
        customer_id,
        tier: u32::try_from(tier).unwrap_or(0),
        class,
        area_id,
        format,
    }
}

/// The replica as it is now (for previews), with the highest grading version in it.
pub async fn live_candidates(conn: &mut PgConnection) -> Result<(Vec<Candidate>, i64), ServiceError> {
    let rows: Vec<CandidateRow> = sqlx::query_as(&format!(
        "SELECT customer_id, tier, customer_class, area_id, format FROM retailers WHERE {BASE_ELIGIBLE}"
    ))
    .fetch_all(&mut *conn)
    .await?;
    let (grading_version,): (Option<i64>,) = sqlx::query_as("SELECT max(grading_version) FROM retailers")
        .fetch_one(&mut *conn)
        .await?;
    Ok((
        rows.into_iter().map(candidate).collect(),
        grading_version.unwrap_or(0),
    ))
}

#[derive(Debug, Clone)]
pub struct Snapshot {
    pub id: String,
    pub grading_version: i64,
}

/// The snapshot of the replica as it is now: reused when nothing changed since the
/// last one, else copied. Holding the replica revision `FOR SHARE` keeps events from
/// changing the replica between reading the revision and copying the rows.
pub async fn snapshot(tx: &mut PgConnection, now: DateTime<Utc>) -> Result<Snapshot, ServiceError> {
    let (revision,): (i64,) = sqlx::query_as("SELECT revision FROM replica_state WHERE id = 1 FOR SHARE")
        .fetch_one(&mut *tx)
        .await?;
    let existing: Option<(String, i64)> = sqlx::query_as(
        "SELECT snapshot_id, grading_version FROM snapshots WHERE revision = $1 ORDER BY taken_at DESC LIMIT 1",
    )
    .bind(revision)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some((id, grading_version)) = existing {
        return Ok(Snapshot { id, grading_version });
    }
    let id = uuid::Uuid::now_v7().to_string();
    let (grading_version,): (Option<i64>,) = sqlx::query_as("SELECT max(grading_version) FROM retailers")
        .fetch_one(&mut *tx)
        .await?;
    let grading_version = grading_version.unwrap_or(0);
    sqlx::query(
        "INSERT INTO snapshots (snapshot_id, revision, grading_version, retailers, taken_at) VALUES ($1, $2, $3, 0, $4)",
    )
    .bind(&id)
    .bind(revision)
    .bind(grading_version)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let copied = sqlx::query(&format!(
        "INSERT INTO snapshot_retailers (snapshot_id, customer_id, tier, customer_class, area_id, format) \
         SELECT $1, customer_id, tier, customer_class, area_id, format FROM retailers WHERE {BASE_ELIGIBLE}"
    ))
    .bind(&id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    sqlx::query("UPDATE snapshots SET retailers = $2 WHERE snapshot_id = $1")
        .bind(&id)
        .bind(i64::try_from(copied).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await?;
    Ok(Snapshot { id, grading_version })
}

pub async fn snapshot_candidates(
    conn: &mut PgConnection,
    snapshot_id: &str,
) -> Result<Vec<Candidate>, ServiceError> {
    let rows: Vec<CandidateRow> = sqlx::query_as(
        "SELECT customer_id, tier, customer_class, area_id, format FROM snapshot_retailers WHERE snapshot_id = $1",
    )
    .bind(snapshot_id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(candidate).collect())
}

pub const STATE_COMMITTED: i16 = AllocationState::Committed as i16;
pub const STATE_SUPERSEDED: i16 = AllocationState::Superseded as i16;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AllocationRow {
    pub allocation_id: String,
    pub sku: String,
    pub cycle_id: String,
    pub state: i16,
    pub kind: i16,
    pub policy_version: i64,
    pub snapshot_id: String,
    pub grading_version: i64,
    pub classes: Vec<i16>,
    pub area_ids: Vec<String>,
    pub formats: Vec<i16>,
    pub targets: Vec<String>,
    pub supply_available: i64,
    pub target: i64,
    pub total: i64,
    pub leftover: i64,
    pub shortfall: i64,
    pub unmet_floor: i64,
    pub eligible: i64,
    pub released: i64,
    pub scaled_down: i64,
    pub balanced_down: i64,
    pub explanation: String,
    pub committed_by: String,
    pub committed_at: DateTime<Utc>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TierRow {
    pub tier: i32,
    pub retailers: i64,
    pub quota: i64,
    pub extra_retailers: i64,
    pub total: i64,
    pub explanation: String,
    /// PROPORTIONAL: eligible retailers of the tier with an id at or below this get
    /// one carton more.
    pub extra_until: Option<String>,
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl TierRow {
    pub fn of(line: &TierLine, extra_until: Option<String>) -> Self {
        Self {
            tier: i32::try_from(line.tier).unwrap_or(i32::MAX),
            retailers: to_i64(line.retailers),
            quota: to_i64(line.quota),
            extra_retailers: to_i64(line.extra_retailers),
            total: to_i64(line.total),
            explanation: line.explanation.clone(),
            extra_until,
        }
    }

    fn to_wire(&self) -> TierAllocation {
        TierAllocation {
            tier: self.tier,
            retailers: self.retailers,
            quota: self.quota,
            extra_retailers: self.extra_retailers,
            total: self.total,
            explanation: self.explanation.clone(),
        }
    }
}

/// What a run needs besides its outcome to become an allocation.
pub struct RunContext<'a> {
    pub sku: &'a str,
    pub cycle_id: &'a str,
    pub kind: PolicyKind,
    pub policy_version: i64,
    pub eligibility: &'a Eligibility,
    pub supply_available: i64,
    pub target: i64,
}

impl AllocationRow {
    pub fn new(
        context: &RunContext<'_>,
        outcome: &RunOutcome,
        snapshot: &Snapshot,
        by: &str,
        at: DateTime<Utc>,
    ) -> Self {
        Self {
            allocation_id: uuid::Uuid::now_v7().to_string(),
            sku: context.sku.to_string(),
            cycle_id: context.cycle_id.to_string(),
            state: STATE_COMMITTED,
            kind: context.kind as i16,
            policy_version: context.policy_version,
            snapshot_id: snapshot.id.clone(),
            grading_version: snapshot.grading_version,
            classes: context.eligibility.classes.clone(),
            area_ids: context.eligibility.area_ids.clone(),
            formats: context.eligibility.formats.clone(),
            targets: context.eligibility.targets.clone(),
            supply_available: context.supply_available,
            target: context.target,
            total: to_i64(outcome.total),
            leftover: to_i64(outcome.leftover),
            shortfall: to_i64(outcome.shortfall),
            unmet_floor: to_i64(outcome.unmet_floor),
            eligible: to_i64(outcome.eligible),
            released: 0,
            scaled_down: 0,
            balanced_down: 0,
            explanation: outcome.explanation.clone(),
            committed_by: by.to_string(),
            committed_at: at,
        }
    }

    pub fn to_wire(&self, tiers: &[TierRow]) -> Allocation {
        Allocation {
            name: if self.allocation_id.is_empty() {
                String::new()
            } else {
                format!("allocations/{}", self.allocation_id)
            },
            product: format!("products/{}", self.sku),
            cycle: format!("cycles/{}", self.cycle_id),
            state: i32::from(self.state),
            kind: i32::from(self.kind),
            policy_version: self.policy_version,
            grading_version: self.grading_version,
            snapshot: self.snapshot_id.clone(),
            supply_available: self.supply_available,
            target: self.target,
            total: self.total,
            leftover: self.leftover,
            shortfall: self.shortfall,
            unmet_floor: self.unmet_floor,
            eligible_retailers: self.eligible,
            tiers: tiers.iter().map(TierRow::to_wire).collect(),
            released: self.released,
            committed_by: self.committed_by.clone(),
            commit_time: (self.state != AllocationState::Preview as i16)
                .then(|| timestamp(self.committed_at)),
            explanation: self.explanation.clone(),
            scaled_down_retailers: self.scaled_down,
            balanced_down: self.balanced_down,
        }
    }
}

pub async fn current(
    conn: &mut PgConnection,
    sku: &str,
    cycle_id: &str,
) -> Result<Option<AllocationRow>, ServiceError> {
    Ok(
        sqlx::query_as("SELECT * FROM allocations WHERE sku = $1 AND cycle_id = $2 AND state = $3")
            .bind(sku)
            .bind(cycle_id)
            .bind(STATE_COMMITTED)
            .fetch_optional(&mut *conn)
            .await?,
    )
}

pub async fn supersede(tx: &mut PgConnection, allocation_id: &str) -> Result<(), ServiceError> {
    sqlx::query("UPDATE allocations SET state = $2 WHERE allocation_id = $1")
        .bind(allocation_id)
        .bind(STATE_SUPERSEDED)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

pub async fn insert(
    tx: &mut PgConnection,
    row: &AllocationRow,
    tiers: &[TierRow],
) -> Result<(), ServiceError> {
    sqlx::query(
        "INSERT INTO allocations (allocation_id, sku, cycle_id, state, kind, policy_version, snapshot_id, \
         grading_version, classes, area_ids, formats, targets, supply_available, target, total, leftover, \
         shortfall, unmet_floor, eligible, released, explanation, committed_by, committed_at, scaled_down, \
         balanced_down) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, \
         $19, $20, $21, $22, $23, $24, $25)",
    )
    .bind(&row.allocation_id)
    .bind(&row.sku)
    .bind(&row.cycle_id)
    .bind(row.state)
    .bind(row.kind)
    .bind(row.policy_version)
    .bind(&row.snapshot_id)
    .bind(row.grading_version)
    .bind(&row.classes)
    .bind(&row.area_ids)
    .bind(&row.formats)
    .bind(&row.targets)
    .bind(row.supply_available)
    .bind(row.target)
    .bind(row.total)
    .bind(row.leftover)
    .bind(row.shortfall)
    .bind(row.unmet_floor)
    .bind(row.eligible)
    .bind(row.released)
    .bind(&row.explanation)
    .bind(&row.committed_by)
    .bind(row.committed_at)
    .bind(row.scaled_down)
    .bind(row.balanced_down)
    .execute(&mut *tx)
    .await?;
    let mut builder: QueryBuilder<Postgres> = QueryBuilder::new(
        "INSERT INTO allocation_tiers (allocation_id, tier, retailers, quota, extra_retailers, total, explanation, \
         extra_until) ",
    );
    builder.push_values(tiers, |mut b, t| {
        b.push_bind(&row.allocation_id)
            .push_bind(t.tier)
            .push_bind(t.retailers)
            .push_bind(t.quota)
            .push_bind(t.extra_retailers)
            .push_bind(t.total)
            .push_bind(&t.explanation)
            .push_bind(&t.extra_until);
    });
    if !tiers.is_empty() {
        builder.build().execute(&mut *tx).await?;
    }
    Ok(())
}

pub async fn allocation(conn: &mut PgConnection, id: &str) -> Result<Option<AllocationRow>, ServiceError> {
    Ok(
        sqlx::query_as("SELECT * FROM allocations WHERE allocation_id = $1")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?,
    )
}

pub async fn tiers(conn: &mut PgConnection, allocation_id: &str) -> Result<Vec<TierRow>, ServiceError> {
    Ok(sqlx::query_as(
        "SELECT tier, retailers, quota, extra_retailers, total, explanation, extra_until FROM allocation_tiers \
         WHERE allocation_id = $1 ORDER BY tier",
    )
    .bind(allocation_id)
    .fetch_all(&mut *conn)
    .await?)
}

#[derive(sqlx::FromRow)]
struct OwnedTier {
    allocation_id: String,
    #[sqlx(flatten)]
    tier: TierRow,
}

/// The tiers of several allocations in one query, by allocation id.
pub async fn tiers_of(
    conn: &mut PgConnection,
    allocation_ids: &[String],
) -> Result<std::collections::HashMap<String, Vec<TierRow>>, ServiceError> {
    let rows: Vec<OwnedTier> = sqlx::query_as(
        "SELECT allocation_id, tier, retailers, quota, extra_retailers, total, explanation, extra_until \
         FROM allocation_tiers WHERE allocation_id = ANY($1) ORDER BY allocation_id, tier",
    )
    .bind(allocation_ids)
    .fetch_all(&mut *conn)
    .await?;
    let mut by_allocation: std::collections::HashMap<String, Vec<TierRow>> = std::collections::HashMap::new();
    for row in rows {
        by_allocation.entry(row.allocation_id).or_default().push(row.tier);
    }
    Ok(by_allocation)
}

pub async fn list(
    conn: &mut PgConnection,
    cycle_id: &str,
    sku: Option<&str>,
    include_superseded: bool,
    page: &Page,
) -> Result<Vec<AllocationRow>, ServiceError> {
    Ok(sqlx::query_as(
        "SELECT * FROM allocations WHERE cycle_id = $1 AND ($2::text IS NULL OR sku = $2) \
         AND ($3 OR state = $4) AND ($5::text IS NULL OR allocation_id > $5) ORDER BY allocation_id LIMIT $6",
    )
    .bind(cycle_id)
    .bind(sku)
    .bind(include_superseded)
    .bind(STATE_COMMITTED)
    .bind(page.after.as_deref())
    .bind(page.size + 1)
    .fetch_all(&mut *conn)
    .await?)
}

/// A retailer's quota in allocation `a`: its tier's quota, plus one for a
/// `PROPORTIONAL` +1, when the snapshot has it and the filters admit it.
fn entitled_quota() -> String {
    format!(
        "CASE WHEN sr.customer_id IS NOT NULL AND {ELIGIBLE} \
         THEN coalesce(adj.quota, coalesce(t.quota, 0) + {PLUS_ONE}) ELSE 0 END"
    )
}

const ENTITLEMENT_JOINS: &str = "LEFT JOIN snapshot_retailers sr ON sr.snapshot_id = a.snapshot_id AND sr.customer_id = $1 \
     LEFT JOIN allocation_tiers t ON t.allocation_id = a.allocation_id AND t.tier = sr.tier \
     LEFT JOIN allocation_adjustments adj ON adj.allocation_id = a.allocation_id AND adj.customer_id = $1";

/// A PROPORTIONAL +1: the retailer's id is at or below its tier's cut-off, bytewise
/// as `domain::eligibility::Population::extra_cutoffs` compares.
const PLUS_ONE: &str = "CASE WHEN t.extra_until IS NOT NULL AND sr.customer_id COLLATE \"C\" <= t.extra_until COLLATE \"C\" \
     THEN 1 ELSE 0 END";

/// The part of an entitlement that orders change (consumption and supply left).
#[derive(Clone, Copy, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct EntitlementLive {
    /// The consumption row's quota; `None` until the retailer first orders the product.
    pub consumption_quota: Option<i64>,
    pub extra: i64,
    pub consumed: i64,
    /// `None`: the product has no supply row in the cycle (it is left out).
    pub supply_remaining: Option<i64>,
}

impl EntitlementLive {
    /// The quota: fixed in the consumption row at the first order, else what the
    /// allocation entitles the retailer to now.
    pub fn quota(&self, entitled: i64) -> i64 {
        self.consumption_quota.unwrap_or(entitled)
    }
}

/// A cycle's committed allocations: (allocation id, sku), in sku order.
pub type Products = std::sync::Arc<[(String, String)]>;

/// What a retailer's entitlements in a cycle are made of apart from its consumption
/// and the supply: whose it is and, for each committed allocation, its snapshot
/// tier and the quota the allocation entitles it to. Orders change none of it;
/// commits, adjustments and replica updates do (they notify, see the migration
/// `20261204000001_entitlement_changes.sql`), so `GetEntitlements` caches it.
#[derive(Debug)]
pub struct EntitlementBase {
    pub cycle_id: String,
    /// Whose the retailer is; `None`: not known here.
    pub scope: Option<super::RetailerScope>,
    /// The cycle's committed allocations in sku order; the same for every retailer of
    /// the cycle, so shared between cache entries.
    pub products: Products,
    /// For each of `products`: the retailer's tier and entitled quota.
    pub quotas: Vec<(i32, i64)>,
}

/// The retailer's (`$1`) committed allocations in the cycle (`$2`), in sku order, with
/// the quota each entitles it to and its consumption and supply.
static ENTITLEMENTS_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT a.allocation_id, a.sku, coalesce(sr.tier, 0) AS tier, {quota} AS entitled, \
         c.quota AS consumption_quota, coalesce(c.extra, 0) AS extra, coalesce(c.consumed, 0) AS consumed, \
         s.quantity - s.holdback - s.confirmed AS supply_remaining \
         FROM allocations a {ENTITLEMENT_JOINS} \
         LEFT JOIN consumption c ON c.sku = a.sku AND c.cycle_id = a.cycle_id AND c.customer_id = $1 \
         LEFT JOIN supplies s ON s.sku = a.sku AND s.cycle_id = a.cycle_id \
         WHERE a.cycle_id = $2 AND a.state = 2 ORDER BY a.sku",
        quota = entitled_quota()
    )
});

/// The replica row of the retailer `r` as [`RetailerEntitlementRow`] reads it.
const RETAILER_COLUMNS: &str =
    "r.customer_id, r.area_id, r.owner_id, r.settlement, r.license_status, r.credit_limit_fen, r.blacklisted";

/// One row of [`retailer_entitlements`]: the replica row beside each entitlement.
#[derive(sqlx::FromRow)]
struct RetailerEntitlementRow {
    #[sqlx(flatten)]
    retailer: super::OptionalRetailer,
    allocation_id: Option<String>,
    sku: Option<String>,
    tier: Option<i32>,
    entitled: Option<i64>,
    consumption_quota: Option<i64>,
    extra: Option<i64>,
    consumed: Option<i64>,
    supply_remaining: Option<i64>,
}

/// The retailer's [`EntitlementBase`] in the cycle and, by sku, the
/// [`EntitlementLive`] part of each of its products, in one round trip.
pub async fn retailer_entitlements(
    conn: &mut PgConnection,
    customer_id: &str,
    cycle_id: &str,
) -> Result<(EntitlementBase, Vec<(String, EntitlementLive)>), ServiceError> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {RETAILER_COLUMNS}, e.* \
               FROM (VALUES (1)) AS one (x) \
               LEFT JOIN retailers r ON r.customer_id = $1 AND r.profile_known \
               LEFT JOIN LATERAL ({}) e ON true \
              ORDER BY e.sku",
            *ENTITLEMENTS_SQL
        )
    });
    let rows: Vec<RetailerEntitlementRow> = sqlx::query_as(&SQL)
        .bind(customer_id)
        .bind(cycle_id)
        .fetch_all(&mut *conn)
        .await?;
    assemble(cycle_id, rows)
}

/// [`retailer_entitlements`] of many retailers at once (a warm-up): each retailer of
/// `customer_ids` (in their order) with its entitlements. Rather than look the
/// retailer's snapshot row, tier and adjustment up again beside every allocation, it
/// reads those of all the retailers once and joins them by hash — half the time of
/// the single read's shape repeated per retailer at 200 products (BENCHMARKS.md). In
/// a transaction of its own, planned for the array it is given each time: a generic
/// plan, made for a handful of rows, nests loops over 50,000.
pub async fn retailers_entitlements(
    conn: &mut PgConnection,
    customer_ids: &[String],
    cycle_id: &str,
) -> Result<Vec<(String, EntitlementBase, Vec<(String, EntitlementLive)>)>, ServiceError> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "WITH w AS MATERIALIZED (SELECT id, n FROM unnest($1::text[]) WITH ORDINALITY AS w (id, n)),
                  a AS MATERIALIZED (
                      SELECT a.allocation_id, a.sku, a.snapshot_id, a.classes, a.area_ids, a.formats, a.targets,
                             s.quantity - s.holdback - s.confirmed AS supply_remaining
                        FROM allocations a LEFT JOIN supplies s ON s.sku = a.sku AND s.cycle_id = a.cycle_id
                       WHERE a.cycle_id = $2 AND a.state = 2),
                  sr AS MATERIALIZED (
                      SELECT sr.* FROM snapshot_retailers sr
                       WHERE sr.customer_id = ANY($1) AND sr.snapshot_id IN (SELECT a.snapshot_id FROM a)),
                  t AS MATERIALIZED (
                      SELECT t.* FROM allocation_tiers t WHERE t.allocation_id IN (SELECT a.allocation_id FROM a)),
                  adj AS MATERIALIZED (
                      SELECT adj.* FROM allocation_adjustments adj
                       WHERE adj.customer_id = ANY($1) AND adj.allocation_id IN (SELECT a.allocation_id FROM a))
             SELECT w.id AS wanted, {RETAILER_COLUMNS},
                    a.allocation_id, a.sku, coalesce(sr.tier, 0) AS tier, {quota} AS entitled,
                    c.quota AS consumption_quota, coalesce(c.extra, 0) AS extra, coalesce(c.consumed, 0) AS consumed,
                    a.supply_remaining
               FROM w
               LEFT JOIN retailers r ON r.customer_id = w.id AND r.profile_known
               LEFT JOIN a ON true
               LEFT JOIN sr ON sr.snapshot_id = a.snapshot_id AND sr.customer_id = w.id
               LEFT JOIN t ON t.allocation_id = a.allocation_id AND t.tier = sr.tier
               LEFT JOIN adj ON adj.allocation_id = a.allocation_id AND adj.customer_id = w.id
               LEFT JOIN consumption c ON c.sku = a.sku AND c.cycle_id = $2 AND c.customer_id = w.id
              ORDER BY w.n, a.sku",
            quota = entitled_quota()
        )
    });
    /// A row of the statement: whose it is, beside the single read's row.
    #[derive(sqlx::FromRow)]
    struct Row {
        wanted: String,
        #[sqlx(flatten)]
        row: RetailerEntitlementRow,
    }
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    sqlx::query("SET LOCAL plan_cache_mode = force_custom_plan")
        .execute(&mut *tx)
        .await?;
    let rows: Vec<Row> = sqlx::query_as(&SQL)
        .bind(customer_ids)
        .bind(cycle_id)
        .fetch_all(&mut *tx)
        .await?;
    tx.commit().await?;
    let mut read = Vec::with_capacity(customer_ids.len());
    let mut rows = rows.into_iter().peekable();
    while let Some(first) = rows.next() {
        let wanted = first.wanted;
        let mut own = vec![first.row];
        while let Some(next) = rows.next_if(|next| next.wanted == wanted) {
            own.push(next.row);
        }
        let (base, live) = assemble(cycle_id, own)?;
        read.push((wanted, base, live));
    }
    Ok(read)
}

/// One retailer's [`EntitlementBase`] and live parts from its rows (at least one).
fn assemble(
    cycle_id: &str,
    rows: Vec<RetailerEntitlementRow>,
) -> Result<(EntitlementBase, Vec<(String, EntitlementLive)>), ServiceError> {
    let mut rows = rows.into_iter();
    let Some(mut first) = rows.next() else {
        return Err(ServiceError::internal("the entitlements query returned no row"));
    };
    let scope = std::mem::take(&mut first.retailer)
        .known()
        .map(|r| super::RetailerScope {
            customer_id: r.customer_id,
            area_id: r.area_id,
            owner_id: r.owner_id,
        });
    let mut products = Vec::new();
    let mut quotas = Vec::new();
    let mut live = Vec::new();
    for row in std::iter::once(first).chain(rows) {
        if let (Some(allocation_id), Some(sku), Some(tier), Some(entitled), Some(extra), Some(consumed)) = (
            row.allocation_id,
            row.sku,
            row.tier,
            row.entitled,
            row.extra,
            row.consumed,
        ) {
            live.push((
                sku.clone(),
                EntitlementLive {
                    consumption_quota: row.consumption_quota,
                    extra,
                    consumed,
                    supply_remaining: row.supply_remaining,
                },
            ));
            products.push((allocation_id, sku));
            quotas.push((tier, entitled));
        }
    }
    let base = EntitlementBase {
        cycle_id: cycle_id.to_string(),
        scope,
        products: products.into(),
        quotas,
    };
    Ok((base, live))
}

/// The ids of up to `limit` retailers known here, in id order.
pub async fn known_retailers(conn: &mut PgConnection, limit: usize) -> Result<Vec<String>, ServiceError> {
    Ok(sqlx::query_scalar(
        "SELECT customer_id FROM retailers WHERE profile_known ORDER BY customer_id LIMIT $1",
    )
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(&mut *conn)
    .await?)
}

/// The [`EntitlementLive`] part of the retailer's entitlements of `skus` in the cycle,
/// by sku (products without a supply row are missing): the supply rows and the
/// retailer's consumption rows, by primary key. Written so that PostgreSQL settles on
/// a generic plan after the first executions of the prepared statement: over an
/// `unnest` of the array it kept planning every call afresh, and planning took twice
/// as long as executing.
pub async fn live_entitlements(
    conn: &mut PgConnection,
    customer_id: &str,
    cycle_id: &str,
    skus: &[&str],
) -> Result<Vec<(String, EntitlementLive)>, ServiceError> {
    #[derive(sqlx::FromRow)]
    struct Row {
        sku: String,
        #[sqlx(flatten)]
        live: EntitlementLive,
    }
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT s.sku, c.quota AS consumption_quota, coalesce(c.extra, 0) AS extra, \
                coalesce(c.consumed, 0) AS consumed, s.quantity - s.holdback - s.confirmed AS supply_remaining \
           FROM supplies s \
           LEFT JOIN consumption c ON c.sku = s.sku AND c.cycle_id = s.cycle_id AND c.customer_id = $1 \
          WHERE s.cycle_id = $2 AND s.sku = ANY($3)",
    )
    .bind(customer_id)
    .bind(cycle_id)
    .bind(skus)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(|r| (r.sku, r.live)).collect())
}

/// The scarce lines of an order, for [`take_quota_and_credit`]: sku and cartons.
pub struct QuotaLine<'a> {
    pub sku: &'a str,
    pub cartons: i64,
}

/// Why [`take_quota_and_credit`] could not take a line's cartons.
#[derive(Debug)]
pub enum QuotaShort {
    /// The product has no committed allocation (with a supply) in the cycle.
    NotAllocated,
    /// The retailer's tier, quota and extra, and what it had consumed before.
    Beyond {
        tier: i32,
        quota: i64,
        extra: i64,
        consumed: i64,
    },
}

/// What [`take_quota_and_credit`] could not take.
#[derive(Debug)]
pub struct Shortfall {
    /// The lines beyond the retailer's remaining quota, in sku order.
    pub quota: Vec<(String, QuotaShort)>,
    /// The order's value would pass the retailer's credit limit: what the retailer
    /// owed before it.
    pub credit: Option<i64>,
}

/// One row of [`take_quota_and_credit`]'s statement: whether the credit was charged,
/// beside each scarce line with what the retailer had of it before the order.
#[derive(sqlx::FromRow)]
struct GuardRow {
    charged: bool,
    outstanding: i64,
    sku: Option<String>,
    taken: Option<bool>,
    tier: Option<i32>,
    entitled: Option<i64>,
    consumption_quota: Option<i64>,
    extra: Option<i64>,
    consumed: Option<i64>,
    supplied: Option<bool>,
}

/// The retailer's side of an order, in one round trip: consumes each scarce line's
/// cartons from the retailer's quota of the product in the cycle (its consumption row
/// is created on the first order, quota from the committed allocation, and never lets
/// consumption pass quota + extra), and, when `credit` is `Some((value_fen,
/// limit_fen))`, adds the value to the retailer's outstanding credit only while it
/// stays within the limit (DOMAIN.md "Credit"). The same statement reads what the
/// retailer had of each line's product and what it owed, so a refusal explains itself
/// without reading again.
///
/// Locks: the consumption rows in sku order, then the credit row — the order a
/// cancellation takes them in — so two calls about one retailer cannot deadlock.
/// `charged` reads all of `taken` before it writes, which makes the order explicit
/// (sibling CTEs otherwise run in whatever order the plan pulls them). A line asking
/// more than the allocation's quota can only fit in the extra of a row that exists
/// (extra is granted to existing rows, and consumption rows are never deleted): it is
/// offered to the same insert only then, so it always meets that row (its proposed
/// `extra` only satisfies the table's CHECK, which PostgreSQL evaluates before `ON
/// CONFLICT`) and the update's guard decides.
pub async fn take_quota_and_credit(
    tx: &mut PgConnection,
    customer_id: &str,
    cycle_id: &str,
    lines: &[QuotaLine<'_>],
    credit: Option<(i64, i64)>,
) -> Result<Shortfall, ServiceError> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "WITH ent AS (
                 SELECT w.sku, w.cartons, a.allocation_id, coalesce(sr.tier, 0) AS tier, {quota} AS quota
                   FROM unnest($2::text[], $4::bigint[]) AS w (sku, cartons)
                   JOIN allocations a ON a.sku = w.sku AND a.cycle_id = $3 AND a.state = 2
                   {ENTITLEMENT_JOINS}
             ), taken AS (
                 INSERT INTO consumption (sku, cycle_id, customer_id, allocation_id, quota, extra, consumed)
                 SELECT ent.sku, $3, $1, ent.allocation_id, ent.quota, greatest(0, ent.cartons - ent.quota), ent.cartons
                   FROM ent
                  WHERE ent.quota >= ent.cartons
                     OR EXISTS (SELECT 1 FROM consumption c
                                 WHERE c.sku = ent.sku AND c.cycle_id = $3 AND c.customer_id = $1)
                  ORDER BY ent.sku
                 ON CONFLICT (sku, cycle_id, customer_id) DO UPDATE SET consumed = consumption.consumed + EXCLUDED.consumed
                  WHERE consumption.consumed + EXCLUDED.consumed <= consumption.quota + consumption.extra
                 RETURNING sku
             ), charged AS (
                 INSERT INTO exposures (customer_id, outstanding_fen) SELECT $1, $5::bigint
                  WHERE $5::bigint <= $6::bigint AND (SELECT count(*) FROM taken) >= 0
                 ON CONFLICT (customer_id) DO UPDATE SET outstanding_fen = exposures.outstanding_fen + EXCLUDED.outstanding_fen
                  WHERE exposures.outstanding_fen + EXCLUDED.outstanding_fen <= $6::bigint
                 RETURNING 1
             )
             SELECT ch.charged, ch.outstanding, l.sku, l.taken, l.tier, l.entitled, l.consumption_quota, l.extra, l.consumed, l.supplied
               FROM (SELECT EXISTS (SELECT 1 FROM charged) AS charged,
                            coalesce((SELECT outstanding_fen FROM exposures WHERE customer_id = $1), 0) AS outstanding
                    ) AS ch
               LEFT JOIN (
                   SELECT w.n, w.sku, t.sku IS NOT NULL AS taken, e.tier, e.quota AS entitled,
                          c.quota AS consumption_quota, c.extra, c.consumed, s.sku IS NOT NULL AS supplied
                     FROM unnest($2::text[]) WITH ORDINALITY AS w (sku, n)
                     LEFT JOIN taken t ON t.sku = w.sku
                     LEFT JOIN ent e ON e.sku = w.sku
                     LEFT JOIN consumption c ON c.sku = w.sku AND c.cycle_id = $3 AND c.customer_id = $1
                     LEFT JOIN supplies s ON s.sku = w.sku AND s.cycle_id = $3
               ) AS l ON true
              ORDER BY l.n",
            quota = entitled_quota()
        )
    });
    let skus: Vec<&str> = lines.iter().map(|l| l.sku).collect();
    let cartons: Vec<i64> = lines.iter().map(|l| l.cartons).collect();
    let rows: Vec<GuardRow> = sqlx::query_as(&SQL)
        .bind(customer_id)
        .bind(&skus)
        .bind(cycle_id)
        .bind(&cartons)
        .bind(credit.map_or(0, |(value, _)| value))
        .bind(credit.map(|(_, limit)| limit))
        .fetch_all(&mut *tx)
        .await?;
    let mut short = Shortfall {
        quota: Vec::new(),
        credit: match rows.first() {
            Some(row) if credit.is_some() && !row.charged => Some(row.outstanding),
            _ => None,
        },
    };
    for row in rows {
        let (Some(sku), Some(false)) = (row.sku, row.taken) else {
            continue;
        };
        let refusal = match (row.entitled, row.supplied) {
            (Some(entitled), Some(true)) => QuotaShort::Beyond {
                tier: row.tier.unwrap_or(0),
                quota: row.consumption_quota.unwrap_or(entitled),
                extra: row.extra.unwrap_or(0),
                consumed: row.consumed.unwrap_or(0),
            },
            _ => QuotaShort::NotAllocated,
        };
        short.quota.push((sku, refusal));
    }
    Ok(short)
}

/// Dynamic balance: the retailers a commit scaled down, with their quota.
pub async fn insert_adjustments(
    tx: &mut PgConnection,
    allocation_id: &str,
    scaled: &[(String, u64)],
) -> Result<(), ServiceError> {
    if scaled.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = scaled.iter().map(|(id, _)| id.as_str()).collect();
    let quotas: Vec<i64> = scaled.iter().map(|(_, q)| to_i64(*q)).collect();
    sqlx::query(
        "INSERT INTO allocation_adjustments (allocation_id, customer_id, quota) \
         SELECT $1, id, quota FROM unnest($2::text[], $3::bigint[]) AS s(id, quota)",
    )
    .bind(allocation_id)
    .bind(&ids)
    .bind(&quotas)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Retailers that used all of their quota and extra (they qualify for a release).
pub async fn full_users(
    conn: &mut PgConnection,
    allocation: &AllocationRow,
) -> Result<Vec<(String, i32, i64)>, ServiceError> {
    Ok(sqlx::query_as(
        "SELECT c.customer_id, sr.tier, c.quota FROM consumption c \
         JOIN snapshot_retailers sr ON sr.snapshot_id = $3 AND sr.customer_id = c.customer_id \
         WHERE c.sku = $1 AND c.cycle_id = $2 AND c.quota > 0 AND c.consumed >= c.quota + c.extra",
    )
    .bind(&allocation.sku)
    .bind(&allocation.cycle_id)
    .bind(&allocation.snapshot_id)
    .fetch_all(&mut *conn)
    .await?)
}

/// Extra quota granted but not ordered yet: still claimable, so not released again.
pub async fn unused_extra(conn: &mut PgConnection, sku: &str, cycle_id: &str) -> Result<i64, ServiceError> {
    let (unused,): (Option<i64>,) = sqlx::query_as(
        "SELECT sum(greatest(0, quota + extra - greatest(consumed, quota)))::bigint FROM consumption \
         WHERE sku = $1 AND cycle_id = $2 AND extra > 0",
    )
    .bind(sku)
    .bind(cycle_id)
    .fetch_one(&mut *conn)
    .await?;
    Ok(unused.unwrap_or(0))
}

pub async fn grant_extra(
    tx: &mut PgConnection,
    allocation: &AllocationRow,
    offers: &[(String, u64)],
) -> Result<(), ServiceError> {
    let ids: Vec<&str> = offers.iter().map(|(id, _)| id.as_str()).collect();
    let amounts: Vec<i64> = offers.iter().map(|(_, n)| to_i64(*n)).collect();
    sqlx::query(
        "UPDATE consumption c SET extra = c.extra + o.amount FROM unnest($3::text[], $4::bigint[]) AS o(id, amount) \
         WHERE c.sku = $1 AND c.cycle_id = $2 AND c.customer_id = o.id",
    )
    .bind(&allocation.sku)
    .bind(&allocation.cycle_id)
    .bind(&ids)
    .bind(&amounts)
    .execute(&mut *tx)
    .await?;
    let total: i64 = amounts.iter().sum();
    sqlx::query("UPDATE allocations SET released = released + $2 WHERE allocation_id = $1")
        .bind(&allocation.allocation_id)
        .bind(total)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Per tier of an allocation, from the consumption rows: retailers that ordered,
/// cartons ordered, retailers that used all their quota.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TierUse {
    pub tier: i32,
    pub ordering: i64,
    pub ordered: i64,
    pub stock_outs: i64,
}

pub async fn tier_use(
    conn: &mut PgConnection,
    allocation: &AllocationRow,
) -> Result<Vec<TierUse>, ServiceError> {
    Ok(sqlx::query_as(
        "SELECT sr.tier, count(*) FILTER (WHERE c.consumed > 0) AS ordering, \
         coalesce(sum(c.consumed), 0)::bigint AS ordered, \
         count(*) FILTER (WHERE c.quota > 0 AND c.consumed >= c.quota + c.extra) AS stock_outs \
         FROM consumption c JOIN snapshot_retailers sr ON sr.snapshot_id = $3 AND sr.customer_id = c.customer_id \
         WHERE c.sku = $1 AND c.cycle_id = $2 GROUP BY sr.tier ORDER BY sr.tier",
    )
    .bind(&allocation.sku)
    .bind(&allocation.cycle_id)
    .bind(&allocation.snapshot_id)
    .fetch_all(&mut *conn)
    .await?)
}

/// Per eligible retailer and cycle of `cycle_ids` (oldest first): (customer, cycle,
/// quota + extra, consumed) of `sku`, whether or not it ordered; the history the
/// dynamic-balance rule reads.
pub async fn use_history(
    conn: &mut PgConnection,
    sku: &str,
    cycle_ids: &[String],
) -> Result<Vec<(String, String, i64, i64)>, ServiceError> {
    let sql = format!(
        "SELECT sr.customer_id, a.cycle_id, \
         coalesce(c.quota, adj.quota, coalesce(t.quota, 0) + {PLUS_ONE}) \
         + coalesce(c.extra, 0) AS quota, coalesce(c.consumed, 0) AS consumed \
         FROM allocations a JOIN snapshot_retailers sr ON sr.snapshot_id = a.snapshot_id \
         LEFT JOIN allocation_tiers t ON t.allocation_id = a.allocation_id AND t.tier = sr.tier \
         LEFT JOIN allocation_adjustments adj ON adj.allocation_id = a.allocation_id \
         AND adj.customer_id = sr.customer_id \
         LEFT JOIN consumption c ON c.sku = a.sku AND c.cycle_id = a.cycle_id AND c.customer_id = sr.customer_id \
         WHERE a.sku = $1 AND a.cycle_id = ANY($2) AND a.state = 2 AND {ELIGIBLE} \
         ORDER BY sr.customer_id, a.cycle_id"
    );
    Ok(sqlx::query_as(&sql)
        .bind(sku)
        .bind(cycle_ids)
        .fetch_all(&mut *conn)
        .await?)
}
