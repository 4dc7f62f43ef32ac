//! Orders, their lines, the supply and stock guards, and credit exposure.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use distnet_platform::ServiceError;
use distnet_platform::idempotency::PgQuery;
use distnet_platform::pagination::Page;
use distnet_proto::allocation::v1::{Order, OrderLine, OrderStatus};
use sqlx::postgres::PgRow;
use sqlx::{FromRow as _, PgConnection};

use super::{cny, timestamp};

pub const CONFIRMED: i16 = OrderStatus::Confirmed as i16;
pub const CANCELLED: i16 = OrderStatus::Cancelled as i16;
pub const DELIVERED: i16 = OrderStatus::Delivered as i16;
pub const DELIVERY_FAILED: i16 = OrderStatus::DeliveryFailed as i16;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OrderRow {
    pub order_id: String,
    pub customer_id: String,
    pub cycle_id: String,
    pub channel: i16,
    pub status: i16,
    pub value_fen: i64,
    pub exposure_fen: i64,
    pub settlement: i16,
    pub area_id: String,
    pub placed_by: String,
    pub created_at: DateTime<Utc>,
    pub picking_cutoff_at: DateTime<Utc>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub cancel_reason: String,
    pub cash_collected_fen: i64,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LineRow {
    pub order_id: String,
    pub line_no: i32,
    pub sku: String,
    pub cartons: i64,
    pub unit_fen: i64,
    pub scarce: bool,
}

impl OrderRow {
    pub fn to_wire(&self, lines: &[LineRow]) -> Order {
        Order {
            name: format!("orders/{}", self.order_id),
            customer: format!("customers/{}", self.customer_id),
            cycle: format!("cycles/{}", self.cycle_id),
            channel: i32::from(self.channel),
            lines: lines
                .iter()
                .filter(|l| l.order_id == self.order_id)
                .map(|l| OrderLine {
                    product: format!("products/{}", l.sku),
                    cartons: l.cartons,
                    unit_price: Some(cny(l.unit_fen)),
                    value: Some(cny(l.unit_fen.saturating_mul(l.cartons))),
                    scarce: l.scarce,
                })
                .collect(),
            value: Some(cny(self.value_fen)),
            status: i32::from(self.status),
            settlement: i32::from(self.settlement),
            placed_by: self.placed_by.clone(),
            create_time: Some(timestamp(self.created_at)),
            picking_cutoff_time: Some(timestamp(self.picking_cutoff_at)),
            cancel_time: self.cancelled_at.map(timestamp),
            cancel_reason: self.cancel_reason.clone(),
            cash_collected: Some(cny(self.cash_collected_fen)),
            update_time: Some(timestamp(self.updated_at)),
            area_id: self.area_id.clone(),
        }
    }
}

/// The order and its lines, written by the statement that also publishes its event
/// and stores its response ([`IdempotencyKey::complete_publishing_with`]): the writes,
/// with parameters from `$9`, bound by [`bind_order`].
///
/// [`IdempotencyKey::complete_publishing_with`]: distnet_platform::idempotency::IdempotencyKey::complete_publishing_with
pub const INSERT_ORDER: &str = "placed AS (
         INSERT INTO orders (order_id, customer_id, cycle_id, channel, status, value_fen, exposure_fen,
                             settlement, area_id, placed_by, created_at, picking_cutoff_at, cancelled_at,
                             cancel_reason, cash_collected_fen, updated_at)
         VALUES ($9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24)
         RETURNING order_id
     ), placed_lines AS (
         INSERT INTO order_lines (order_id, line_no, sku, cartons, unit_fen, scarce)
         SELECT placed.order_id, l.line_no, l.sku, l.cartons, l.unit_fen, l.scarce
           FROM placed, unnest($25::int[], $26::text[], $27::bigint[], $28::bigint[], $29::bool[])
                AS l (line_no, sku, cartons, unit_fen, scarce)
     )";

/// Binds [`INSERT_ORDER`]'s parameters.
pub fn bind_order<'q>(query: PgQuery<'q>, order: &'q OrderRow, lines: &'q [LineRow]) -> PgQuery<'q> {
    let line_nos: Vec<i32> = lines.iter().map(|l| l.line_no).collect();
    let skus: Vec<&str> = lines.iter().map(|l| l.sku.as_str()).collect();
    let cartons: Vec<i64> = lines.iter().map(|l| l.cartons).collect();
    let units: Vec<i64> = lines.iter().map(|l| l.unit_fen).collect();
    let scarce: Vec<bool> = lines.iter().map(|l| l.scarce).collect();
    query
        .bind(&order.order_id)
        .bind(&order.customer_id)
        .bind(&order.cycle_id)
        .bind(order.channel)
        .bind(order.status)
        .bind(order.value_fen)
        .bind(order.exposure_fen)
        .bind(order.settlement)
        .bind(&order.area_id)
        .bind(&order.placed_by)
        .bind(order.created_at)
        .bind(order.picking_cutoff_at)
        .bind(order.cancelled_at)
        .bind(&order.cancel_reason)
        .bind(order.cash_collected_fen)
        .bind(order.updated_at)
        .bind(line_nos)
        .bind(skus)
        .bind(cartons)
        .bind(units)
        .bind(scarce)
}

pub async fn order(conn: &mut PgConnection, id: &str, lock: bool) -> Result<Option<OrderRow>, ServiceError> {
    let sql = if lock {
        "SELECT * FROM orders WHERE order_id = $1 FOR UPDATE"
    } else {
        "SELECT * FROM orders WHERE order_id = $1"
    };
    Ok(sqlx::query_as(sql).bind(id).fetch_optional(&mut *conn).await?)
}

pub async fn lines(conn: &mut PgConnection, order_ids: &[String]) -> Result<Vec<LineRow>, ServiceError> {
    Ok(
        sqlx::query_as("SELECT * FROM order_lines WHERE order_id = ANY($1) ORDER BY order_id, line_no")
            .bind(order_ids)
            .fetch_all(&mut *conn)
            .await?,
    )
}

/// Filters of `ListOrders`; `areas`/`owner` carry the caller's scope.
pub struct OrderFilter<'a> {
    pub customer_id: Option<&'a str>,
    pub cycle_id: Option<&'a str>,
    pub status: Option<i16>,
    /// `None` = every area.
    pub areas: Option<&'a [String]>,
}

pub async fn list(
    conn: &mut PgConnection,
    f: &OrderFilter<'_>,
    page: &Page,
) -> Result<Vec<OrderRow>, ServiceError> {
    Ok(sqlx::query_as(
        "SELECT * FROM orders WHERE ($1::text IS NULL OR customer_id = $1) AND ($2::text IS NULL OR cycle_id = $2) \
         AND ($3::smallint IS NULL OR status = $3) AND ($4::text[] IS NULL OR area_id = ANY($4)) \
         AND ($5::text IS NULL OR order_id > $5) ORDER BY order_id LIMIT $6",
    )
    .bind(f.customer_id)
    .bind(f.cycle_id)
    .bind(f.status)
    .bind(f.areas)
    .bind(page.after.as_deref())
    .bind(page.size + 1)
    .fetch_all(&mut *conn)
    .await?)
}

pub async fn set_status(
    tx: &mut PgConnection,
    id: &str,
    status: i16,
    cancel: Option<(&str, DateTime<Utc>)>,
    now: DateTime<Utc>,
) -> Result<OrderRow, ServiceError> {
    Ok(sqlx::query_as(
        "UPDATE orders SET status = $2, cancel_reason = coalesce($3, cancel_reason), \
         cancelled_at = coalesce($4, cancelled_at), updated_at = $5 WHERE order_id = $1 RETURNING *",
    )
    .bind(id)
    .bind(status)
    .bind(cancel.map(|(reason, _)| reason))
    .bind(cancel.map(|(_, at)| at))
    .bind(now)
    .fetch_one(&mut *tx)
    .await?)
}

/// Each product's confirmed cartons and allocatable supply (quantity − holdback) in
/// the given cycles, for the quota-utilization gauge.
pub async fn supply_use(
    pool: &sqlx::PgPool,
    cycles: &[String],
) -> Result<Vec<(String, String, i64, i64)>, ServiceError> {
    Ok(sqlx::query_as(
        "SELECT sku, cycle_id, confirmed, quantity - holdback FROM supplies \
         WHERE cycle_id = ANY($1) AND quantity > holdback",
    )
    .bind(cycles)
    .fetch_all(pool)
    .await?)
}

/// An order's lines as [`take_supply_and_stock`] and [`give_back`] read them — the
/// CTE `lines (sku, scarce, cartons)` from the arrays bound by [`line_arrays`] at
/// the parameters given — lines of one sku (validation refuses them) added up, so an
/// update never meets a row twice.
fn lines_cte(skus: &str, cartons: &str, scarce: &str) -> String {
    format!(
        "lines AS (
             SELECT l.sku, l.scarce, sum(l.cartons)::bigint AS cartons
               FROM unnest({skus}::text[], {cartons}::bigint[], {scarce}::bool[]) AS l (sku, cartons, scarce)
              GROUP BY l.sku, l.scarce
         )"
    )
}

/// The skus, cartons and scarcity of `lines`, bound for [`lines_cte`].
fn line_arrays<'a>(lines: impl IntoIterator<Item = &'a LineRow>) -> (Vec<&'a str>, Vec<i64>, Vec<bool>) {
    let mut arrays = (Vec::new(), Vec::new(), Vec::new());
    for line in lines {
        arrays.0.push(line.sku.as_str());
        arrays.1.push(line.cartons);
        arrays.2.push(line.scarce);
    }
    arrays
}

/// Which way [`shared_rows`] moves cartons.
#[derive(Clone, Copy, PartialEq)]
enum Move {
    /// An order: from stock on hand only while some is left; into a product's
    /// confirmed supply only while it stays within quantity − holdback.
    Take,
    /// A cancellation: back, unguarded.
    GiveBack,
}

/// The CTEs that move the cartons of `lines` ([`lines_cte`]) on the rows every
/// retailer's orders share, once `after` holds: regular lines' stock, then scarce
/// lines' supply in the cycle `cycle` — `stock_held`, `stock_moved` (the skus
/// moved), `supply_held`, `supply_moved`. One lock order for orders and
/// cancellations alike: each table is first locked by an ordered locking read (a
/// multi-row update locks in whatever order its join runs), in sku order, and each
/// step reads all of the one before it, which makes that order explicit.
fn shared_rows(cycle: &str, after: &str, direction: Move) -> String {
    let take = direction == Move::Take;
    let (stock, stock_guard) = if take {
        ("-", "AND p.stock_cartons >= l.cartons")
    } else {
        ("+", "")
    };
    let (supply, supply_guard) = if take {
        ("+", "AND s.confirmed + l.cartons <= s.quantity - s.holdback")
    } else {
        ("-", "")
    };
    format!(
        "stock_held AS (
             SELECT p.sku FROM products p JOIN lines l ON l.sku = p.sku AND NOT l.scarce
              WHERE {after}
              ORDER BY p.sku FOR UPDATE OF p
         ), stock_moved AS (
             UPDATE products p SET stock_cartons = p.stock_cartons {stock} l.cartons FROM lines l
              WHERE NOT l.scarce AND p.sku = l.sku {stock_guard}
                AND (SELECT count(*) FROM stock_held) >= 0
             RETURNING p.sku
         ), supply_held AS (
             SELECT s.sku FROM supplies s JOIN lines l ON l.sku = s.sku AND l.scarce
              WHERE s.cycle_id = {cycle} AND (SELECT count(*) FROM stock_moved) >= 0
              ORDER BY s.sku FOR UPDATE OF s
         ), supply_moved AS (
             UPDATE supplies s SET confirmed = s.confirmed {supply} l.cartons FROM lines l
              WHERE l.scarce AND s.sku = l.sku AND s.cycle_id = {cycle} {supply_guard}
                AND (SELECT count(*) FROM supply_held) >= 0
             RETURNING s.sku
         )"
    )
}

/// The no-oversell guard for a whole order, in one round trip: confirms each scarce
/// line's cartons of the product's supply in the cycle only while confirmed stays
/// within quantity − holdback, and takes each other line's cartons from stock on hand
/// only while some is left. Returns the skus that did not fit; the caller rolls back
/// when there are any.
///
/// Locks: the stock rows in sku order, then the supply rows in sku order — the order a
/// cancellation gives them back in ([`shared_rows`]) — so that the scarce products'
/// supply rows, the hottest of all, are taken last and held for the shortest time.
/// One line is one guarded update, which costs the database less.
pub async fn take_supply_and_stock(
    tx: &mut PgConnection,
    cycle_id: &str,
    lines: &[&LineRow],
) -> Result<Vec<String>, ServiceError> {
    const SUPPLY: &str = "UPDATE supplies SET confirmed = confirmed + $3 \
         WHERE sku = $1 AND cycle_id = $2 AND confirmed + $3 <= quantity - holdback RETURNING sku";
    const STOCK: &str = "UPDATE products SET stock_cartons = stock_cartons - $2 WHERE sku = $1 AND stock_cartons >= $2 RETURNING sku";
    static ORDER: LazyLock<String> = LazyLock::new(|| {
        format!(
            "WITH {lines}, {shared}
             SELECT sku FROM lines EXCEPT ALL (SELECT sku FROM stock_moved UNION ALL SELECT sku FROM supply_moved)",
            lines = lines_cte("$2", "$3", "$4"),
            shared = shared_rows("$1", "true", Move::Take),
        )
    });
    let line = match lines {
        [] => return Ok(Vec::new()),
        [line] => line,
        _ => {
            let (skus, cartons, scarce) = line_arrays(lines.iter().copied());
            return Ok(sqlx::query_scalar(&ORDER)
                .bind(cycle_id)
                .bind(&skus)
                .bind(&cartons)
                .bind(&scarce)
                .fetch_all(&mut *tx)
                .await?);
        }
    };
    let query = if line.scarce {
        sqlx::query_scalar(SUPPLY)
            .bind(&line.sku)
            .bind(cycle_id)
            .bind(line.cartons)
    } else {
        sqlx::query_scalar(STOCK).bind(&line.sku).bind(line.cartons)
    };
    let taken: Option<String> = query.fetch_optional(&mut *tx).await?;
    Ok(taken.map_or_else(|| vec![line.sku.clone()], |_| Vec::new()))
}

/// Gives a cancelled order's lines back, in one round trip: each scarce line's
/// cartons to the retailer's consumption of the product in the order's cycle, the
/// order's credit exposure (`exposure_fen`, never below 0), then each other line's
/// cartons to stock and each scarce line's to the product's supply. Rows are locked
/// in the order [`take_supply_and_stock`] and the quota guard take them — the
/// retailer's consumption (sku order), its credit, stock (sku order), supply (sku
/// order) — by ordered locking reads, each step reading all of the one before it; so
/// a cancellation and an order cannot deadlock, whatever the number of lines.
pub async fn give_back(
    tx: &mut PgConnection,
    order: &OrderRow,
    lines: &[LineRow],
) -> Result<(), ServiceError> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "WITH {lines}, consumption_held AS (
                 SELECT c.sku FROM consumption c JOIN lines l ON l.sku = c.sku AND l.scarce
                  WHERE c.customer_id = $1 AND c.cycle_id = $2
                  ORDER BY c.sku FOR UPDATE OF c
             ), unconsumed AS (
                 UPDATE consumption c SET consumed = c.consumed - l.cartons FROM lines l
                  WHERE l.scarce AND c.sku = l.sku AND c.customer_id = $1 AND c.cycle_id = $2
                    AND (SELECT count(*) FROM consumption_held) >= 0
                 RETURNING c.sku
             ), credited AS (
                 UPDATE exposures SET outstanding_fen = greatest(0, outstanding_fen - $6)
                  WHERE customer_id = $1 AND $6 > 0 AND (SELECT count(*) FROM unconsumed) >= 0
                 RETURNING 1
             ), {shared}
             SELECT count(*) FROM supply_moved",
            lines = lines_cte("$3", "$4", "$5"),
            shared = shared_rows("$2", "(SELECT count(*) FROM credited) >= 0", Move::GiveBack),
        )
    });
    let (skus, cartons, scarce) = line_arrays(lines);
    sqlx::query(&SQL)
        .bind(&order.customer_id)
        .bind(&order.cycle_id)
        .bind(&skus)
        .bind(&cartons)
        .bind(&scarce)
        .bind(order.exposure_fen)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Lowers the outstanding credit (a cancelled order, cash collected), never below 0.
pub async fn reduce_exposure(tx: &mut PgConnection, customer_id: &str, fen: i64) -> Result<(), ServiceError> {
    sqlx::query(
        "UPDATE exposures SET outstanding_fen = greatest(0, outstanding_fen - $2) WHERE customer_id = $1",
    )
    .bind(customer_id)
    .bind(fen)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Records cash collected on delivery and the order's new status; returns the cash
/// that lowers exposure (no more than the order still carries).
pub async fn record_delivery(
    tx: &mut PgConnection,
    id: &str,
    status: i16,
    cash_fen: i64,
    now: DateTime<Utc>,
) -> Result<Option<(String, i64)>, ServiceError> {
    let row: Option<(String, i64, i64)> = sqlx::query_as(
        "UPDATE orders SET status = $2, cash_collected_fen = cash_collected_fen + $3, updated_at = $4 \
         WHERE order_id = $1 AND status <> 2 RETURNING customer_id, exposure_fen, cash_collected_fen - $3",
    )
    .bind(id)
    .bind(status)
    .bind(cash_fen)
    .bind(now)
    .fetch_optional(&mut *tx)
    .await?;
    Ok(row.map(|(customer, exposure, collected_before)| {
        let still_owed = (exposure - collected_before).max(0);
        (customer, cash_fen.min(still_owed).max(0))
    }))
}

/// What `PlaceOrder` reads before its guards: the retailer's replica row, the
/// cycle's window and the catalog rows of the order's products.
#[derive(Debug)]
pub struct OrderContext {
    pub retailer: Option<super::Retailer>,
    pub window: super::catalog::CycleWindow,
    pub products: Vec<super::catalog::ProductRow>,
}

/// One row of [`order_context`]: the retailer and cycle repeated beside each
/// product found (or once, with no product).
#[derive(sqlx::FromRow)]
struct ContextRow {
    #[sqlx(flatten)]
    retailer: super::OptionalRetailer,
    opens_at: Option<DateTime<Utc>>,
    closes_at: Option<DateTime<Utc>>,
    release_at: Option<DateTime<Utc>>,
    sku: Option<String>,
    display_name: Option<String>,
    price_class: Option<i16>,
    wholesale_fen: Option<i64>,
    cartons_per_case: Option<i32>,
    scarce: Option<bool>,
    stock_cartons: Option<i64>,
    updated_at: Option<DateTime<Utc>>,
}

/// The read of [`OrderContext`] (three reads joined on a single row), made by the
/// request's idempotency claim ([`distnet_platform::idempotency::begin_reading`]):
/// its parameters start at `$8`, bound by [`bind_context`].
pub const ORDER_CONTEXT: &str = "SELECT r.customer_id, r.area_id, r.owner_id, r.settlement, r.license_status, \
            r.credit_limit_fen, r.blacklisted, c.opens_at, c.closes_at, c.release_at, \
            p.sku, p.display_name, p.price_class, p.wholesale_fen, p.cartons_per_case, \
            p.scarce, p.stock_cartons, p.updated_at \
       FROM (VALUES (1)) AS one (x) \
       LEFT JOIN retailers r ON r.customer_id = $8 AND r.profile_known \
       LEFT JOIN cycles c ON c.cycle_id = $9 \
       LEFT JOIN products p ON p.sku = ANY($10) \
      ORDER BY p.sku";

/// Binds [`ORDER_CONTEXT`]'s parameters.
pub fn bind_context<'q>(
    query: PgQuery<'q>,
    customer_id: &'q str,
    cycle: crate::domain::cycle::CycleId,
    skus: &'q [String],
) -> PgQuery<'q> {
    query.bind(customer_id).bind(cycle.to_string()).bind(skus)
}

/// [`OrderContext`] from the rows of [`ORDER_CONTEXT`].
pub fn order_context(
    rows: &[PgRow],
    cycle: crate::domain::cycle::CycleId,
) -> Result<OrderContext, ServiceError> {
    let mut rows = rows
        .iter()
        .map(ContextRow::from_row)
        .collect::<Result<Vec<_>, _>>()?;
    let Some(first) = rows.first_mut() else {
        return Err(ServiceError::internal("the order context query returned no row"));
    };
    let retailer = std::mem::take(&mut first.retailer).known();
    let set = first.opens_at.zip(first.closes_at).zip(first.release_at);
    let window = super::catalog::window_or_default(cycle, set.map(|((o, c), r)| (o, c, r)))?;
    let products = rows
        .into_iter()
        .filter_map(|r| {
            Some(super::catalog::ProductRow {
                sku: r.sku?,
                display_name: r.display_name?,
                price_class: r.price_class?,
                wholesale_fen: r.wholesale_fen?,
                cartons_per_case: r.cartons_per_case?,
                scarce: r.scarce?,
                stock_cartons: r.stock_cartons?,
                updated_at: r.updated_at?,
            })
        })
        .collect();
    Ok(OrderContext {
        retailer,
        window,
        products,
    })
}
