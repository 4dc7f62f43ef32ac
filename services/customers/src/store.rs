//! Customer profiles in Postgres (schema `customers`). Queries are plain SQL with
//! `query_as` into row types; conversion to the wire type happens here.

use distnet_platform::ServiceError;
use distnet_platform::pagination::Page;
use distnet_platform::wire::timestamp;
use distnet_proto::common::v1::{LatLng, LocalTimeWindow, PostalAddress, TimeOfDay};
use distnet_proto::customers::v1::{Customer, CustomerStatus, Ownership};
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder};

use crate::domain::access::Visibility;

pub mod cases;
pub mod insights;
pub mod interactions;
pub mod surveys;
use crate::domain::profile::{etag, window_minutes};

const COLUMNS: &str = "id, display_name, legal_name, format, area_id, owner_id, province, city, \
     district, street, postal_code, latitude, longitude, contact_name, contact_phone, \
     receiving_start, receiving_end, receiving_time_zone, settlement, status, floor_area_sqm, \
     visit_weekday, version, created_at, updated_at";

#[derive(sqlx::FromRow)]
struct CustomerRow {
    id: String,
    display_name: String,
    legal_name: String,
    format: i16,
    area_id: String,
    owner_id: String,
    province: String,
    city: String,
    district: String,
    street: String,
    postal_code: String,
    latitude: f64,
    longitude: f64,
    contact_name: String,
    contact_phone: String,
    receiving_start: Option<i16>,
    receiving_end: Option<i16>,
    receiving_time_zone: String,
    settlement: i16,
    status: i16,
    floor_area_sqm: i32,
    visit_weekday: i16,
    version: i64,
    created_at: chrono::DateTime<chrono::Utc>,
    updated_at: chrono::DateTime<chrono::Utc>,
}

/// An optional wire timestamp as UTC time (`None` when unset or malformed).
pub(crate) fn time_of(t: &Option<prost_types::Timestamp>) -> Option<chrono::DateTime<chrono::Utc>> {
    t.as_ref().and_then(distnet_platform::wire::from_timestamp)
}

fn time_of_day(minutes: i16) -> TimeOfDay {
    TimeOfDay {
        hours: i32::from(minutes / 60),
        minutes: i32::from(minutes % 60),
    }
}

impl From<CustomerRow> for Customer {
    fn from(row: CustomerRow) -> Self {
        let receiving_window = match (row.receiving_start, row.receiving_end) {
            (Some(start), Some(end)) => Some(LocalTimeWindow {
                start: Some(time_of_day(start)),
                end: Some(time_of_day(end)),
                time_zone: row.receiving_time_zone,
            }),
            _ => None,
        };
        Customer {
            name: format!("customers/{}", row.id),
            display_name: row.display_name,
            legal_name: row.legal_name,
            format: i32::from(row.format),
            area_id: row.area_id,
            owner_id: row.owner_id,
            address: Some(PostalAddress {
                province: row.province,
                city: row.city,
                district: row.district,
                street: row.street,
                postal_code: row.postal_code,
            }),
            location: Some(LatLng {
                latitude: row.latitude,
                longitude: row.longitude,
            }),
            contact_name: row.contact_name,
            contact_phone: row.contact_phone,
            receiving_window,
            settlement: i32::from(row.settlement),
            status: i32::from(row.status),
            floor_area_sqm: row.floor_area_sqm,
            visit_weekday: i32::from(row.visit_weekday),
            etag: etag(row.version),
            create_time: Some(timestamp(row.created_at)),
            update_time: Some(timestamp(row.updated_at)),
        }
    }
}

/// Enum numbers are validated before they get here; out-of-range ones cannot be stored.
fn small(value: i32) -> i16 {
    i16::try_from(value).unwrap_or(i16::MAX)
}

/// The profile columns in the order both INSERT and UPDATE bind them ($2..$21).
const PROFILE_COLUMNS: &str = "display_name, legal_name, format, area_id, province, city, district, \
     street, postal_code, latitude, longitude, contact_name, contact_phone, receiving_start, \
     receiving_end, receiving_time_zone, settlement, status, floor_area_sqm, visit_weekday";

type CustomerQuery<'q> = sqlx::query::QueryAs<'q, Postgres, CustomerRow, sqlx::postgres::PgArguments>;

/// Binds the profile columns of `c` after whatever `query` has bound already.
fn bind_profile<'q>(query: CustomerQuery<'q>, c: &Customer) -> CustomerQuery<'q> {
    let address = c.address.clone().unwrap_or_default();
    let location = c.location.unwrap_or_default();
    let (receiving_start, receiving_end, receiving_time_zone) = window_minutes(&c.receiving_window);
    query
        .bind(c.display_name.clone())
        .bind(c.legal_name.clone())
        .bind(small(c.format))
        .bind(c.area_id.clone())
        .bind(address.province)
        .bind(address.city)
        .bind(address.district)
        .bind(address.street)
        .bind(address.postal_code)
        .bind(location.latitude)
        .bind(location.longitude)
        .bind(c.contact_name.clone())
        .bind(c.contact_phone.clone())
        .bind(receiving_start)
        .bind(receiving_end)
        .bind(receiving_time_zone)
        .bind(small(c.settlement))
        .bind(small(c.status))
        .bind(c.floor_area_sqm)
        .bind(small(c.visit_weekday))
}

/// Inserts a new customer and its first ownership. A new profile without a status
/// is ACTIVE.
pub async fn insert(
    tx: &mut PgConnection,
    id: &str,
    c: &Customer,
    assigned_by: &str,
) -> Result<Customer, ServiceError> {
    let mut c = c.clone();
    if c.status == CustomerStatus::Unspecified as i32 {
        c.status = CustomerStatus::Active as i32;
    }
    let sql = format!(
        "INSERT INTO customers (id, {PROFILE_COLUMNS}, owner_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, \
         $19, $20, $21, $22) RETURNING {COLUMNS}"
    );
    let row: CustomerRow = bind_profile(sqlx::query_as(&sql).bind(id), &c)
        .bind(&c.owner_id)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| match ServiceError::from(e) {
            err if err.code == tonic::Code::AlreadyExists => {
                ServiceError::already_exists(format!("customers/{id}"))
            }
            err => err,
        })?;
    sqlx::query(
        "INSERT INTO customer_ownerships (customer_id, owner_id, assigned_by, reason)
         VALUES ($1, $2, $3, 'created')",
    )
    .bind(id)
    .bind(&c.owner_id)
    .bind(assigned_by)
    .execute(&mut *tx)
    .await?;
    Ok(row.into())
}

pub async fn get(pool: &PgPool, id: &str) -> Result<Option<Customer>, ServiceError> {
    let row: Option<CustomerRow> = sqlx::query_as(&format!("SELECT {COLUMNS} FROM customers WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await?;
    Ok(row.map(Into::into))
}

/// The read that a request's idempotency claim makes for a change of one customer
/// ([`distnet_platform::idempotency::begin_reading`]): the customer `$8`, locked as
/// [`get_for_update`] locks it, or one row of NULLs when there is none. Its filter
/// reads the claim's `claimed`, so the claim is made before the lock is taken: a
/// concurrent duplicate waits on the request id, as every claim makes it, and calls
/// that lock the customer after claiming cannot deadlock with this one.
pub static LOCKED_FOR_CLAIM: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT c.* FROM (VALUES (1)) AS one (x) \
         LEFT JOIN LATERAL (SELECT {COLUMNS} FROM customers \
                             WHERE id = $8 AND (SELECT count(*) FROM claimed) >= 0 FOR UPDATE) AS c ON true"
    )
});

/// The customer of [`LOCKED_FOR_CLAIM`]'s rows.
pub fn locked_for_claim(rows: &[sqlx::postgres::PgRow]) -> Result<Option<Customer>, ServiceError> {
    use sqlx::{FromRow as _, Row as _};
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let id: Option<String> = row.try_get("id")?;
    if id.is_none() {
        return Ok(None);
    }
    Ok(Some(CustomerRow::from_row(row)?.into()))
}

/// Reads and locks a customer for a change in `tx`.
pub async fn get_for_update(tx: &mut PgConnection, id: &str) -> Result<Option<Customer>, ServiceError> {
    let row: Option<CustomerRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM customers WHERE id = $1 FOR UPDATE"
    ))
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    Ok(row.map(Into::into))
}

/// Up to `limit` customers with ids after `after`, in id order (for full scans).
pub async fn page_after(
    conn: &mut PgConnection,
    after: &str,
    limit: i64,
) -> Result<Vec<Customer>, ServiceError> {
    let rows: Vec<CustomerRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM customers WHERE id > $1 ORDER BY id LIMIT $2"
    ))
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Which of `ids` are customers.
pub async fn existing_ids(conn: &mut PgConnection, ids: &[String]) -> Result<Vec<String>, ServiceError> {
    Ok(sqlx::query_scalar("SELECT id FROM customers WHERE id = ANY($1)")
        .bind(ids)
        .fetch_all(conn)
        .await?)
}

/// The ids of up to `limit` customers, in id order.
pub async fn ids(pool: &PgPool, limit: usize) -> Result<Vec<String>, ServiceError> {
    Ok(
        sqlx::query_scalar("SELECT id FROM customers ORDER BY id LIMIT $1")
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(pool)
            .await?,
    )
}

pub async fn get_many(pool: &PgPool, ids: &[String]) -> Result<Vec<Customer>, ServiceError> {
    let rows: Vec<CustomerRow> =
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM customers WHERE id = ANY($1)"))
            .bind(ids)
            .fetch_all(pool)
            .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Writes the profile fields of `c` and bumps the version.
pub async fn update(tx: &mut PgConnection, id: &str, c: &Customer) -> Result<Customer, ServiceError> {
    let sql = format!(
        "UPDATE customers SET ({PROFILE_COLUMNS}) = \
         ($2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21), \
         version = version + 1, updated_at = now() WHERE id = $1 RETURNING {COLUMNS}"
    );
    let row: CustomerRow = bind_profile(sqlx::query_as(&sql).bind(id), c)
        .fetch_one(&mut *tx)
        .await?;
    Ok(row.into())
}

/// Ends the current ownership and starts the new one: exactly one owner at a time.
pub async fn reassign_owner(
    tx: &mut PgConnection,
    id: &str,
    new_owner: &str,
    assigned_by: &str,
    reason: &str,
) -> Result<Customer, ServiceError> {
    sqlx::query(
        "UPDATE customer_ownerships SET end_time = clock_timestamp()
         WHERE customer_id = $1 AND end_time IS NULL",
    )
    .bind(id)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO customer_ownerships (customer_id, owner_id, assigned_by, reason)
         VALUES ($1, $2, $3, $4)",
    )
    .bind(id)
    .bind(new_owner)
    .bind(assigned_by)
    .bind(reason)
    .execute(&mut *tx)
    .await?;
    let row: CustomerRow = sqlx::query_as(&format!(
        "UPDATE customers SET owner_id = $2, version = version + 1, updated_at = now()
         WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(new_owner)
    .fetch_one(&mut *tx)
    .await?;
    Ok(row.into())
}

pub async fn ownership_history(pool: &PgPool, id: &str) -> Result<Vec<Ownership>, ServiceError> {
    type Row = (
        String,
        chrono::DateTime<chrono::Utc>,
        Option<chrono::DateTime<chrono::Utc>>,
        String,
        String,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT owner_id, start_time, end_time, assigned_by, reason FROM customer_ownerships
         WHERE customer_id = $1 ORDER BY start_time",
    )
    .bind(id)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(owner_id, start, end, assigned_by, reason)| Ownership {
            owner_id,
            start_time: Some(timestamp(start)),
            end_time: end.map(timestamp),
            assigned_by,
            reason,
        })
        .collect())
}

/// Filters of ListCustomers; empty / zero means "any".
#[derive(Debug, Default)]
pub struct ListFilter {
    pub area_id: String,
    pub owner_id: String,
    pub format: i32,
    pub status: i32,
    pub name_prefix: String,
    /// distnet.customers.v1.Segment; 0 = any.
    pub segment: i32,
    /// Bit of a CustomerFlag in `customer_insights.flags`; 0 = any.
    pub flag_bit: i16,
}

/// The columns that decide who sees a row of a list: the customer's owner, the row's
/// area and customer, and the columns naming staff for whom the row is their own
/// (who opened or handles a case, who logged a contact).
pub(crate) struct ScopeColumns<'a> {
    pub owner: &'a str,
    pub area: &'a str,
    pub customer: &'a str,
    pub own: &'a [&'a str],
}

/// Restricts `q` (ending in a WHERE clause) to the rows `visibility` lets `staff` see.
pub(crate) fn push_scope(
    q: &mut QueryBuilder<'_, Postgres>,
    visibility: &Visibility<'_>,
    columns: &ScopeColumns<'_>,
    staff: &str,
) {
    let own = |q: &mut QueryBuilder<'_, Postgres>| {
        for column in columns.own {
            q.push(format!(" OR {column} = ")).push_bind(staff.to_string());
        }
    };
    match visibility {
        Visibility::All => {}
        Visibility::OwnedOrInAreas { owner, areas } => {
            q.push(format!(" AND ({} = ", columns.owner))
                .push_bind(owner.to_string());
            q.push(format!(" OR {} = ANY(", columns.area))
                .push_bind(areas.to_vec())
                .push(")");
            own(q);
            q.push(")");
        }
        Visibility::InAreas(areas) => {
            q.push(format!(" AND ({} = ANY(", columns.area))
                .push_bind(areas.to_vec())
                .push(")");
            own(q);
            q.push(")");
        }
        Visibility::Only(id) => {
            q.push(format!(" AND {} = ", columns.customer))
                .push_bind(id.to_string());
        }
        Visibility::Nothing => {
            q.push(" AND false");
        }
    }
}

/// One page's ids and versions in id order, with one look-ahead row: the profiles
/// themselves usually come from the cache (see `CustomersApi::profiles`).
pub async fn list(
    conn: &mut PgConnection,
    filter: &ListFilter,
    visibility: &Visibility<'_>,
    page: &Page,
) -> Result<Vec<(String, i64)>, ServiceError> {
    let mut q: QueryBuilder<Postgres> = QueryBuilder::new("SELECT id, version FROM customers WHERE true");
    push_scope(
        &mut q,
        visibility,
        &ScopeColumns {
            owner: "owner_id",
            area: "area_id",
            customer: "id",
            own: &[],
        },
        "",
    );
    if !filter.area_id.is_empty() {
        q.push(" AND area_id = ").push_bind(filter.area_id.clone());
    }
    if !filter.owner_id.is_empty() {
        q.push(" AND owner_id = ").push_bind(filter.owner_id.clone());
    }
    if filter.format != 0 {
        q.push(" AND format = ").push_bind(small(filter.format));
    }
    if filter.status != 0 {
        q.push(" AND status = ").push_bind(small(filter.status));
    }
    if !filter.name_prefix.is_empty() {
        let pattern = format!("{}%", escape_like(&filter.name_prefix.to_lowercase()));
        q.push(" AND lower(display_name) LIKE ").push_bind(pattern);
    }
    if filter.segment != 0 {
        q.push(" AND id IN (SELECT customer_id FROM customer_insights WHERE segment = ")
            .push_bind(small(filter.segment))
            .push(")");
    }
    if filter.flag_bit != 0 {
        q.push(" AND id IN (SELECT customer_id FROM customer_insights WHERE flags & ")
            .push_bind(filter.flag_bit)
            .push(" <> 0)");
    }
    if let Some(after) = &page.after {
        q.push(" AND id > ").push_bind(after.clone());
    }
    q.push(" ORDER BY id LIMIT ").push_bind(page.size + 1);
    Ok(q.build_query_as().fetch_all(conn).await?)
}

fn escape_like(text: &str) -> String {
    text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

/// The owning customer manager of a customer, if it exists.
pub async fn owner_of(tx: &mut PgConnection, id: &str) -> Result<Option<String>, ServiceError> {
    Ok(sqlx::query_scalar("SELECT owner_id FROM customers WHERE id = $1")
        .bind(id)
        .fetch_optional(tx)
        .await?)
}
