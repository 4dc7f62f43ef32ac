//! Products, cycles, supply, demand estimates and policies.

use chrono::{DateTime, Utc};
use distnet_platform::ServiceError;
use distnet_platform::pagination::Page;
use distnet_proto::allocation::v1::{Cycle, DemandEstimate, Product, Supply};
use sqlx::PgConnection;

use super::{cny, timestamp};
use crate::domain::cycle::{self, CycleId, OrderWindow, SHANGHAI_OFFSET_SECONDS};
use crate::domain::run::PolicyBody;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ProductRow {
    pub sku: String,
    pub display_name: String,
    pub price_class: i16,
    pub wholesale_fen: i64,
    pub cartons_per_case: i32,
    pub scarce: bool,
    pub stock_cartons: i64,
    pub updated_at: DateTime<Utc>,
}

impl ProductRow {
    pub fn to_wire(&self) -> Product {
        Product {
            name: format!("products/{}", self.sku),
            sku: self.sku.clone(),
            display_name: self.display_name.clone(),
            price_class: i32::from(self.price_class),
            wholesale_price: Some(cny(self.wholesale_fen)),
            cartons_per_case: self.cartons_per_case,
            scarce: self.scarce,
            stock_cartons: self.stock_cartons,
            update_time: Some(timestamp(self.updated_at)),
        }
    }
}

pub async fn upsert_product(tx: &mut PgConnection, p: &ProductRow) -> Result<ProductRow, ServiceError> {
    Ok(sqlx::query_as(
        "INSERT INTO products (sku, display_name, price_class, wholesale_fen, cartons_per_case, scarce, \
         stock_cartons, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (sku) DO UPDATE SET display_name = $2, price_class = $3, wholesale_fen = $4, \
         cartons_per_case = $5, scarce = $6, stock_cartons = $7, updated_at = $8 RETURNING *",
    )
    .bind(&p.sku)
    .bind(&p.display_name)
    .bind(p.price_class)
    .bind(p.wholesale_fen)
    .bind(p.cartons_per_case)
    .bind(p.scarce)
    .bind(p.stock_cartons)
    .bind(p.updated_at)
    .fetch_one(&mut *tx)
    .await?)
}

pub async fn product(conn: &mut PgConnection, sku: &str) -> Result<Option<ProductRow>, ServiceError> {
    Ok(sqlx::query_as("SELECT * FROM products WHERE sku = $1")
        .bind(sku)
        .fetch_optional(&mut *conn)
        .await?)
}

pub async fn list_products(
    conn: &mut PgConnection,
    scarce_only: bool,
    page: &Page,
) -> Result<Vec<ProductRow>, ServiceError> {
    Ok(sqlx::query_as(
        "SELECT * FROM products WHERE (NOT $1 OR scarce) AND ($2::text IS NULL OR sku > $2) \
         ORDER BY sku LIMIT $3",
    )
    .bind(scarce_only)
    .bind(page.after.as_deref())
    .bind(page.size + 1)
    .fetch_all(&mut *conn)
    .await?)
}

/// A cycle's window: as set, or the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CycleWindow {
    pub window: OrderWindow,
    pub release: DateTime<Utc>,
    pub customized: bool,
}

impl CycleWindow {
    pub fn to_wire(self, id: CycleId) -> Cycle {
        Cycle {
            name: format!("cycles/{id}"),
            open_time: Some(timestamp(self.window.opens)),
            close_time: Some(timestamp(self.window.closes)),
            release_time: Some(timestamp(self.release)),
            customized: self.customized,
        }
    }
}

pub fn default_cycle(id: CycleId) -> Result<CycleWindow, ServiceError> {
    let window = cycle::default_window(id, SHANGHAI_OFFSET_SECONDS);
    let release = cycle::default_release(id, SHANGHAI_OFFSET_SECONDS);
    match (window, release) {
        (Some(window), Some(release)) => Ok(CycleWindow {
            window,
            release,
            customized: false,
        }),
        _ => Err(ServiceError::invalid_field(
            "cycle",
            "has no representable window",
        )),
    }
}

pub async fn cycle(conn: &mut PgConnection, id: CycleId) -> Result<CycleWindow, ServiceError> {
    let row: Option<(DateTime<Utc>, DateTime<Utc>, DateTime<Utc>)> =
        sqlx::query_as("SELECT opens_at, closes_at, release_at FROM cycles WHERE cycle_id = $1")
            .bind(id.to_string())
            .fetch_optional(&mut *conn)
            .await?;
    window_or_default(id, row)
}

/// The window of a `cycles` row (opens, closes, release) if the cycle has one, else
/// the default.
pub fn window_or_default(
    id: CycleId,
    row: Option<(DateTime<Utc>, DateTime<Utc>, DateTime<Utc>)>,
) -> Result<CycleWindow, ServiceError> {
    match row {
        Some((opens, closes, release)) => Ok(CycleWindow {
            window: OrderWindow { opens, closes },
            release,
            customized: true,
        }),
        None => default_cycle(id),
    }
}

/// The cycle whose entitlements the call center reads at `now`: of the cycles with
/// committed allocations, the one open or next to open ([`cycle::current_or_next`]).
pub async fn cycle_to_warm(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
) -> Result<Option<CycleId>, ServiceError> {
    type Row = (
        String,
        Option<DateTime<Utc>>,
        Option<DateTime<Utc>>,
        Option<DateTime<Utc>>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT DISTINCT a.cycle_id, c.opens_at, c.closes_at, c.release_at \
           FROM allocations a LEFT JOIN cycles c ON c.cycle_id = a.cycle_id \
          WHERE a.state = $1",
    )
    .bind(super::runs::STATE_COMMITTED)
    .fetch_all(&mut *conn)
    .await?;
    let windows = rows.into_iter().filter_map(|(id, opens, closes, release)| {
        let id = CycleId::parse(&id)?;
        let row = opens.zip(closes).zip(release).map(|((o, c), r)| (o, c, r));
        Some((id, window_or_default(id, row).ok()?.window))
    });
    Ok(cycle::current_or_next(windows, now))
}

pub async fn upsert_cycle(tx: &mut PgConnection, id: CycleId, c: &CycleWindow) -> Result<(), ServiceError> {
    sqlx::query(
        "INSERT INTO cycles (cycle_id, opens_at, closes_at, release_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (cycle_id) DO UPDATE SET opens_at = $2, closes_at = $3, release_at = $4",
    )
    .bind(id.to_string())
    .bind(c.window.opens)
    .bind(c.window.closes)
    .bind(c.release)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SupplyRow {
    pub sku: String,
    pub cycle_id: String,
    pub quantity: i64,
    pub holdback: i64,
    pub target: i64,
    pub confirmed: i64,
    pub updated_at: DateTime<Utc>,
}

impl SupplyRow {
    pub fn available(&self) -> i64 {
        self.quantity - self.holdback
    }

    pub fn to_wire(&self) -> Supply {
        Supply {
            product: format!("products/{}", self.sku),
            cycle: format!("cycles/{}", self.cycle_id),
            quantity: self.quantity,
            holdback: self.holdback,
            available: self.available(),
            target: self.target,
            confirmed: self.confirmed,
            remaining: self.available() - self.confirmed,
            update_time: Some(timestamp(self.updated_at)),
        }
    }
}

/// Sets the week's supply. Lowering it below what is already confirmed violates the
/// table's check and is refused (`FAILED_PRECONDITION`) by the caller.
pub async fn set_supply(tx: &mut PgConnection, s: &SupplyRow) -> Result<Option<SupplyRow>, ServiceError> {
    Ok(sqlx::query_as(
        "INSERT INTO supplies (sku, cycle_id, quantity, holdback, target, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (sku, cycle_id) DO UPDATE SET quantity = $3, holdback = $4, target = $5, updated_at = $6 \
         WHERE supplies.confirmed <= $3 - $4 RETURNING *",
    )
    .bind(&s.sku)
    .bind(&s.cycle_id)
    .bind(s.quantity)
    .bind(s.holdback)
    .bind(s.target)
    .bind(s.updated_at)
    .fetch_optional(&mut *tx)
    .await?)
}

pub async fn supply(
    conn: &mut PgConnection,
    sku: &str,
    cycle_id: &str,
) -> Result<Option<SupplyRow>, ServiceError> {
    Ok(
        sqlx::query_as("SELECT * FROM supplies WHERE sku = $1 AND cycle_id = $2")
            .bind(sku)
            .bind(cycle_id)
            .fetch_optional(&mut *conn)
            .await?,
    )
}

/// Every product with supply in the cycle (what a run without a product list covers).
pub async fn supplied_skus(conn: &mut PgConnection, cycle_id: &str) -> Result<Vec<String>, ServiceError> {
    Ok(sqlx::query_scalar(
        "SELECT s.sku FROM supplies s JOIN policies p USING (sku) WHERE s.cycle_id = $1 ORDER BY s.sku",
    )
    .bind(cycle_id)
    .fetch_all(&mut *conn)
    .await?)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DemandRow {
    pub sku: String,
    pub month: String,
    pub last_year_cartons: i64,
    pub growth_cartons: i64,
    pub holiday_factor_bp: i32,
    pub cartons: i64,
    pub explanation: String,
    pub estimated_by: String,
    pub updated_at: DateTime<Utc>,
}

impl DemandRow {
    pub fn to_wire(&self) -> DemandEstimate {
        DemandEstimate {
            product: format!("products/{}", self.sku),
            month: self.month.clone(),
            last_year_same_month_cartons: self.last_year_cartons,
            growth_forecast_cartons: self.growth_cartons,
            holiday_factor_bp: self.holiday_factor_bp,
            cartons: self.cartons,
            explanation: self.explanation.clone(),
            estimated_by: self.estimated_by.clone(),
            update_time: Some(timestamp(self.updated_at)),
        }
    }
}

pub async fn save_demand(tx: &mut PgConnection, d: &DemandRow) -> Result<(), ServiceError> {
    sqlx::query(
        "INSERT INTO demand_estimates (sku, month, last_year_cartons, growth_cartons, holiday_factor_bp, cartons, \
         explanation, estimated_by, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (sku, month) DO UPDATE SET last_year_cartons = $3, growth_cartons = $4, \
         holiday_factor_bp = $5, cartons = $6, explanation = $7, estimated_by = $8, updated_at = $9",
    )
    .bind(&d.sku)
    .bind(&d.month)
    .bind(d.last_year_cartons)
    .bind(d.growth_cartons)
    .bind(d.holiday_factor_bp)
    .bind(d.cartons)
    .bind(&d.explanation)
    .bind(&d.estimated_by)
    .bind(d.updated_at)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct PolicyRow {
    pub sku: String,
    pub body: PolicyBody,
    pub version: i64,
    pub updated_by: String,
    pub updated_at: DateTime<Utc>,
}

type RawPolicy = (String, sqlx::types::Json<PolicyBody>, i64, String, DateTime<Utc>);

fn policy_row((sku, body, version, updated_by, updated_at): RawPolicy) -> PolicyRow {
    PolicyRow {
        sku,
        body: body.0,
        version,
        updated_by,
        updated_at,
    }
}

pub async fn set_policy(
    tx: &mut PgConnection,
    sku: &str,
    body: &PolicyBody,
    by: &str,
    at: DateTime<Utc>,
) -> Result<PolicyRow, ServiceError> {
    let row: RawPolicy = sqlx::query_as(
        "INSERT INTO policies (sku, body, version, updated_by, updated_at) VALUES ($1, $2, 1, $3, $4) \
         ON CONFLICT (sku) DO UPDATE SET body = $2, version = policies.version + 1, updated_by = $3, \
         updated_at = $4 RETURNING sku, body, version, updated_by, updated_at",
    )
    .bind(sku)
    .bind(sqlx::types::Json(body))
    .bind(by)
    .bind(at)
    .fetch_one(&mut *tx)
    .await?;
    Ok(policy_row(row))
}

pub async fn policy(conn: &mut PgConnection, sku: &str) -> Result<Option<PolicyRow>, ServiceError> {
    let row: Option<RawPolicy> =
        sqlx::query_as("SELECT sku, body, version, updated_by, updated_at FROM policies WHERE sku = $1")
            .bind(sku)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(row.map(policy_row))
}

/// Supplies of `skus` in the cycle; `lock` holds them against orders and other
/// commits until the transaction ends.
pub async fn supplies(
    conn: &mut PgConnection,
    skus: &[String],
    cycle_id: &str,
    lock: bool,
) -> Result<Vec<SupplyRow>, ServiceError> {
    let sql = if lock {
        "SELECT * FROM supplies WHERE sku = ANY($1) AND cycle_id = $2 ORDER BY sku FOR UPDATE"
    } else {
        "SELECT * FROM supplies WHERE sku = ANY($1) AND cycle_id = $2 ORDER BY sku"
    };
    Ok(sqlx::query_as(sql)
        .bind(skus)
        .bind(cycle_id)
        .fetch_all(&mut *conn)
        .await?)
}

pub async fn policies(conn: &mut PgConnection, skus: &[String]) -> Result<Vec<PolicyRow>, ServiceError> {
    let rows: Vec<RawPolicy> = sqlx::query_as(
        "SELECT sku, body, version, updated_by, updated_at FROM policies WHERE sku = ANY($1) ORDER BY sku",
    )
    .bind(skus)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(policy_row).collect())
}
