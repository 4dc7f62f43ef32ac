//! Accreditation in Postgres (schema `accreditation`): the customer replica,
//! applications, licenses, violations and standings. `query_as` into row types;
//! conversion to the wire types happens here.

use chrono::{DateTime, Utc};
use distnet_platform::ServiceError;
use distnet_platform::pagination::Page;
use distnet_proto::accreditation::v1::{Application, License, LicenseStatus as WireStatus, Standing};
use distnet_proto::common::v1::{LatLng, Money};
use prost::Message as _;
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder};

use crate::domain::license::{LicenseStatus, LicenseTerm, NearestOutlet, distance_m, effective_status};

pub mod credit;
pub mod grading;
pub mod scoring;

pub use distnet_platform::wire::timestamp;

pub fn status_code(status: LicenseStatus) -> i16 {
    match status {
        LicenseStatus::Active => WireStatus::Active as i16,
        LicenseStatus::Suspended => WireStatus::Suspended as i16,
        LicenseStatus::Revoked => WireStatus::Revoked as i16,
        LicenseStatus::Expired => WireStatus::Expired as i16,
    }
}

fn status_from_code(code: i16) -> LicenseStatus {
    match i32::from(code) {
        x if x == WireStatus::Suspended as i32 => LicenseStatus::Suspended,
        x if x == WireStatus::Revoked as i32 => LicenseStatus::Revoked,
        x if x == WireStatus::Expired as i32 => LicenseStatus::Expired,
        _ => LicenseStatus::Active,
    }
}

/// What accreditation knows of a retailer (from CustomerChanged).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CachedCustomer {
    pub customer_id: String,
    pub area_id: String,
    pub owner_id: String,
    pub display_name: String,
    pub format: i16,
    pub floor_area_sqm: i32,
    pub latitude: f64,
    pub longitude: f64,
}

pub async fn upsert_customer(tx: &mut PgConnection, c: &CachedCustomer) -> Result<(), ServiceError> {
    sqlx::query(
        "INSERT INTO customer_cache (customer_id, area_id, owner_id, display_name, format, floor_area_sqm, \
         latitude, longitude) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (customer_id) DO UPDATE SET area_id = $2, owner_id = $3, display_name = $4, \
         format = $5, floor_area_sqm = $6, latitude = $7, longitude = $8, updated_at = now()",
    )
    .bind(&c.customer_id)
    .bind(&c.area_id)
    .bind(&c.owner_id)
    .bind(&c.display_name)
    .bind(c.format)
    .bind(c.floor_area_sqm)
    .bind(c.latitude)
    .bind(c.longitude)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

pub async fn customer(conn: &mut PgConnection, id: &str) -> Result<Option<CachedCustomer>, ServiceError> {
    Ok(
        sqlx::query_as("SELECT * FROM customer_cache WHERE customer_id = $1")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await
            .map(|row: Option<CachedCustomerRow>| row.map(|r| r.customer))?,
    )
}

#[derive(sqlx::FromRow)]
struct CachedCustomerRow {
    #[sqlx(flatten)]
    customer: CachedCustomer,
    #[allow(dead_code)]
    updated_at: DateTime<Utc>,
}

pub async fn save_application(
    tx: &mut PgConnection,
    id: &str,
    application: &Application,
) -> Result<(), ServiceError> {
    let customer_id = application
        .customer
        .strip_prefix("customers/")
        .unwrap_or_default();
    sqlx::query(
        "INSERT INTO applications (id, customer_id, state, body) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (id) DO UPDATE SET state = $3, body = $4, updated_at = now()",
    )
    .bind(id)
    .bind(customer_id)
    .bind(i16::try_from(application.state).unwrap_or(0))
    .bind(application.encode_to_vec())
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Reads an application; `lock` takes a row lock for a state change.
pub async fn application(
    conn: &mut PgConnection,
    id: &str,
    lock: bool,
) -> Result<Option<Application>, ServiceError> {
    let sql = if lock {
        "SELECT body FROM applications WHERE id = $1 FOR UPDATE"
    } else {
        "SELECT body FROM applications WHERE id = $1"
    };
    let body: Option<(Vec<u8>,)> = sqlx::query_as(sql).bind(id).fetch_optional(&mut *conn).await?;
    body.map(|(bytes,)| Application::decode(bytes.as_slice()).map_err(ServiceError::from))
        .transpose()
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LicenseRow {
    pub number: String,
    pub customer_id: String,
    pub status: i16,
    pub valid_from: DateTime<Utc>,
    pub valid_to: DateTime<Utc>,
    pub suspended_until: Option<DateTime<Utc>>,
    pub status_reason: String,
    pub area_id: String,
    pub latitude: f64,
    pub longitude: f64,
    pub updated_at: DateTime<Utc>,
}

impl LicenseRow {
    pub fn term(&self) -> LicenseTerm {
        LicenseTerm {
            status: status_from_code(self.status),
            valid_from: self.valid_from,
            valid_to: self.valid_to,
            suspended_until: self.suspended_until,
        }
    }

    /// The wire form as of `now`: a license past its term reads EXPIRED even
    /// before the sweep has persisted it.
    pub fn to_proto(&self, now: DateTime<Utc>) -> License {
        let term = self.term();
        let status = effective_status(&term, now);
        License {
            name: format!("licenses/{}", self.number),
            number: self.number.clone(),
            holder: format!("customers/{}", self.customer_id),
            status: i32::from(status_code(status)),
            valid_from: Some(timestamp(self.valid_from)),
            valid_to: Some(timestamp(self.valid_to)),
            suspended_until: if status == LicenseStatus::Suspended {
                self.suspended_until.map(timestamp)
            } else {
                None
            },
            status_reason: self.status_reason.clone(),
            area_id: self.area_id.clone(),
            location: Some(LatLng {
                latitude: self.latitude,
                longitude: self.longitude,
            }),
            update_time: Some(timestamp(self.updated_at)),
        }
    }
}

pub async fn license(
    conn: &mut PgConnection,
    number: &str,
    lock: bool,
) -> Result<Option<LicenseRow>, ServiceError> {
    let sql = if lock {
        "SELECT * FROM licenses WHERE number = $1 FOR UPDATE"
    } else {
        "SELECT * FROM licenses WHERE number = $1"
    };
    Ok(sqlx::query_as(sql)
        .bind(number)
        .fetch_optional(&mut *conn)
        .await?)
}

/// The retailer's license in force (ACTIVE or SUSPENDED as stored), locked.
pub async fn license_in_force(
    tx: &mut PgConnection,
    customer_id: &str,
) -> Result<Option<LicenseRow>, ServiceError> {
    Ok(
        sqlx::query_as("SELECT * FROM licenses WHERE customer_id = $1 AND status IN (1, 2) FOR UPDATE")
            .bind(customer_id)
            .fetch_optional(&mut *tx)
            .await?,
    )
}

/// The nearest ACTIVE outlet other than `exclude_customer`, looked for within
/// about a kilometer: spacing rules are tens of meters.
pub async fn nearest_active_outlet(
    conn: &mut PgConnection,
    location: (f64, f64),
    exclude_customer: &str,
    now: DateTime<Utc>,
) -> Result<Option<NearestOutlet>, ServiceError> {
    let lat_span = 0.01;
    let lng_span = 0.01 / location.0.to_radians().cos().abs().max(0.01);
    let candidates: Vec<(String, f64, f64)> = sqlx::query_as(
        "SELECT number, latitude, longitude FROM licenses \
         WHERE status = 1 AND valid_to > $6 AND customer_id <> $5 \
         AND latitude BETWEEN $1 - $3 AND $1 + $3 AND longitude BETWEEN $2 - $4 AND $2 + $4",
    )
    .bind(location.0)
    .bind(location.1)
    .bind(lat_span)
    .bind(lng_span)
    .bind(exclude_customer)
    .bind(now)
    .fetch_all(&mut *conn)
    .await?;
    Ok(candidates
        .into_iter()
        .map(|(number, lat, lng)| NearestOutlet {
            license_number: number,
            distance_m: distance_m(location, (lat, lng)),
        })
        .min_by(|a, b| a.distance_m.total_cmp(&b.distance_m)))
}

pub async fn next_license_number(tx: &mut PgConnection, year: i32) -> Result<String, ServiceError> {
    let (sequence,): (i64,) = sqlx::query_as("SELECT nextval('license_numbers')")
        .fetch_one(&mut *tx)
        .await?;
    Ok(format!("l-{year}-{sequence:06}"))
}

pub async fn insert_license(tx: &mut PgConnection, row: &LicenseRow) -> Result<(), ServiceError> {
    sqlx::query(
        "INSERT INTO licenses (number, customer_id, status, valid_from, valid_to, suspended_until, \
         status_reason, area_id, latitude, longitude, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&row.number)
    .bind(&row.customer_id)
    .bind(row.status)
    .bind(row.valid_from)
    .bind(row.valid_to)
    .bind(row.suspended_until)
    .bind(&row.status_reason)
    .bind(&row.area_id)
    .bind(row.latitude)
    .bind(row.longitude)
    .bind(row.updated_at)
    .execute(&mut *tx)
    .await
    .map_err(|e| match ServiceError::from(e) {
        err if err.code == tonic::Code::AlreadyExists => ServiceError::failed_precondition(
            "LICENSE_ALREADY_IN_FORCE",
            format!("customers/{} already holds a license in force", row.customer_id),
        ),
        err => err,
    })?;
    Ok(())
}

/// Writes a license's new term and status.
pub async fn update_license(
    tx: &mut PgConnection,
    number: &str,
    term: &LicenseTerm,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<LicenseRow, ServiceError> {
    Ok(sqlx::query_as(
        "UPDATE licenses SET status = $2, valid_from = $3, valid_to = $4, suspended_until = $5, \
         status_reason = $6, updated_at = $7 WHERE number = $1 RETURNING *",
    )
    .bind(number)
    .bind(status_code(term.status))
    .bind(term.valid_from)
    .bind(term.valid_to)
    .bind(term.suspended_until)
    .bind(reason)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?)
}

/// Licenses whose stored status time has overtaken (past their term, or at the
/// end of a suspension), locked for settling.
pub async fn licenses_due(
    tx: &mut PgConnection,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<LicenseRow>, ServiceError> {
    Ok(sqlx::query_as(
        "SELECT * FROM licenses WHERE status IN (1, 2) \
         AND (valid_to <= $1 OR (status = 2 AND suspended_until <= $1)) \
         ORDER BY number LIMIT $2 FOR UPDATE SKIP LOCKED",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?)
}

#[derive(Debug, Default)]
pub struct LicenseFilter {
    pub status: i32,
    pub area_ids: Option<Vec<String>>,
    pub area_id: String,
    pub customer_id: Option<String>,
    pub expiring_within_days: i32,
}

/// One page of licenses in number order (with one look-ahead row). The status
/// filter applies to the status as of `now`, as `effective_status` computes it.
pub async fn list_licenses(
    pool: &PgPool,
    filter: &LicenseFilter,
    page: &Page,
    now: DateTime<Utc>,
) -> Result<Vec<LicenseRow>, ServiceError> {
    let mut q: QueryBuilder<Postgres> = QueryBuilder::new("SELECT * FROM licenses WHERE true");
    if filter.status != 0 {
        q.push(" AND (CASE WHEN status IN (1, 2) AND valid_to <= ")
            .push_bind(now);
        q.push(" THEN 4 WHEN status = 2 AND suspended_until <= ")
            .push_bind(now);
        q.push(" THEN 1 ELSE status END) = ")
            .push_bind(i16::try_from(filter.status).unwrap_or(0));
    }
    if let Some(areas) = &filter.area_ids {
        q.push(" AND area_id = ANY(").push_bind(areas.clone()).push(")");
    }
    if let Some(customer) = &filter.customer_id {
        q.push(" AND customer_id = ").push_bind(customer.clone());
    }
    if !filter.area_id.is_empty() {
        q.push(" AND area_id = ").push_bind(filter.area_id.clone());
    }
    if filter.expiring_within_days > 0 {
        q.push(" AND status IN (1, 2) AND valid_to > ").push_bind(now);
        q.push(" AND valid_to <= ")
            .push_bind(now + chrono::Duration::days(i64::from(filter.expiring_within_days)));
    }
    if let Some(after) = &page.after {
        q.push(" AND number > ").push_bind(after.clone());
    }
    q.push(" ORDER BY number LIMIT ").push_bind(page.size + 1);
    Ok(q.build_query_as().fetch_all(pool).await?)
}

pub struct NewViolation<'a> {
    pub id: &'a str,
    pub license_number: &'a str,
    pub customer_id: &'a str,
    pub violation_type: i16,
    pub severity: i16,
    pub points: i32,
    pub evidence_refs: &'a [String],
    pub note: &'a str,
    pub recorded_by: &'a str,
    pub recorded_at: DateTime<Utc>,
}

pub async fn insert_violation(tx: &mut PgConnection, v: &NewViolation<'_>) -> Result<(), ServiceError> {
    sqlx::query(
        "INSERT INTO violations (id, license_number, customer_id, type, severity, points, evidence_refs, \
         note, recorded_by, recorded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(v.id)
    .bind(v.license_number)
    .bind(v.customer_id)
    .bind(v.violation_type)
    .bind(v.severity)
    .bind(v.points)
    .bind(v.evidence_refs)
    .bind(v.note)
    .bind(v.recorded_by)
    .bind(v.recorded_at)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

pub async fn mark_violation_suspended(tx: &mut PgConnection, id: &str) -> Result<(), ServiceError> {
    sqlx::query("UPDATE violations SET suspended_license = true WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Violation points recorded against a license since `since`.
pub async fn violation_points_since(
    tx: &mut PgConnection,
    license_number: &str,
    since: DateTime<Utc>,
) -> Result<i64, ServiceError> {
    let (points,): (Option<i64>,) = sqlx::query_as(
        "SELECT sum(points)::bigint FROM violations WHERE license_number = $1 AND recorded_at >= $2",
    )
    .bind(license_number)
    .bind(since)
    .fetch_one(&mut *tx)
    .await?;
    Ok(points.unwrap_or(0))
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StandingRow {
    pub customer_id: String,
    pub area_id: String,
    pub license_number: String,
    pub license_status: i16,
    pub tier: i32,
    pub grading_version: i64,
    pub customer_class: i16,
    pub rebate_bp: i32,
    pub credit_grade: String,
    pub credit_limit_fen: i64,
    pub blacklisted: bool,
    pub blacklist_reason: String,
    pub version: i64,
    pub updated_at: DateTime<Utc>,
}

impl From<StandingRow> for Standing {
    fn from(row: StandingRow) -> Self {
        Standing {
            customer: format!("customers/{}", row.customer_id),
            license_status: i32::from(row.license_status),
            license: if row.license_number.is_empty() {
                String::new()
            } else {
                format!("licenses/{}", row.license_number)
            },
            tier: row.tier,
            grading_version: row.grading_version,
            customer_class: i32::from(row.customer_class),
            rebate_bp: row.rebate_bp,
            credit_grade: row.credit_grade,
            credit_limit: Some(Money {
                currency_code: "CNY".into(),
                fen: row.credit_limit_fen,
            }),
            blacklisted: row.blacklisted,
            blacklist_reason: row.blacklist_reason,
            version: row.version,
            area_id: row.area_id,
            update_time: Some(timestamp(row.updated_at)),
        }
    }
}

/// Sets the license part of a retailer's standing. Returns the new standing only
/// when something changed, so an event goes out exactly for real changes.
pub async fn set_license_standing(
    tx: &mut PgConnection,
    customer_id: &str,
    area_id: &str,
    license_number: &str,
    status: LicenseStatus,
    now: DateTime<Utc>,
) -> Result<Option<Standing>, ServiceError> {
    let row: Option<StandingRow> = sqlx::query_as(
        "INSERT INTO standings (customer_id, area_id, license_number, license_status, version, updated_at) \
         VALUES ($1, $2, $3, $4, 1, $5) \
         ON CONFLICT (customer_id) DO UPDATE SET area_id = EXCLUDED.area_id, \
           license_number = EXCLUDED.license_number, license_status = EXCLUDED.license_status, \
           version = standings.version + 1, updated_at = EXCLUDED.updated_at \
         WHERE (standings.area_id, standings.license_number, standings.license_status) \
           IS DISTINCT FROM (EXCLUDED.area_id, EXCLUDED.license_number, EXCLUDED.license_status) \
         RETURNING *",
    )
    .bind(customer_id)
    .bind(area_id)
    .bind(license_number)
    .bind(status_code(status))
    .bind(now)
    .fetch_optional(&mut *tx)
    .await?;
    Ok(row.map(Into::into))
}

pub async fn standings(pool: &PgPool, customer_ids: &[String]) -> Result<Vec<Standing>, ServiceError> {
    let rows: Vec<StandingRow> = sqlx::query_as("SELECT * FROM standings WHERE customer_id = ANY($1)")
        .bind(customer_ids)
        .fetch_all(pool)
        .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

pub async fn list_standings(
    pool: &PgPool,
    area_ids: Option<&[String]>,
    area_id: &str,
    license_status: i32,
    page: &Page,
) -> Result<Vec<Standing>, ServiceError> {
    let mut q: QueryBuilder<Postgres> = QueryBuilder::new("SELECT * FROM standings WHERE true");
    if let Some(areas) = area_ids {
        q.push(" AND area_id = ANY(").push_bind(areas.to_vec()).push(")");
    }
    if !area_id.is_empty() {
        q.push(" AND area_id = ").push_bind(area_id.to_string());
    }
    if license_status != 0 {
        q.push(" AND license_status = ")
            .push_bind(i16::try_from(license_status).unwrap_or(0));
    }
    if let Some(after) = &page.after {
        q.push(" AND customer_id > ").push_bind(after.clone());
    }
    q.push(" ORDER BY customer_id LIMIT ").push_bind(page.size + 1);
    let rows: Vec<StandingRow> = q.build_query_as().fetch_all(pool).await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// New premises for a license (an approved CHANGE application).
pub async fn move_license(
    tx: &mut PgConnection,
    number: &str,
    location: (f64, f64),
) -> Result<LicenseRow, ServiceError> {
    Ok(
        sqlx::query_as("UPDATE licenses SET latitude = $2, longitude = $3 WHERE number = $1 RETURNING *")
            .bind(number)
            .bind(location.0)
            .bind(location.1)
            .fetch_one(&mut *tx)
            .await?,
    )
}

/// Sets the class part of a retailer's standing; `Some` only when it changed.
pub async fn set_class_standing(
    tx: &mut PgConnection,
    customer_id: &str,
    area_id: &str,
    class: i16,
    rebate_bp: i32,
    now: DateTime<Utc>,
) -> Result<Option<Standing>, ServiceError> {
    let row: Option<StandingRow> = sqlx::query_as(
        "INSERT INTO standings (customer_id, area_id, customer_class, rebate_bp, version, updated_at) \
         VALUES ($1, $2, $3, $4, 1, $5) \
         ON CONFLICT (customer_id) DO UPDATE SET customer_class = EXCLUDED.customer_class, \
           rebate_bp = EXCLUDED.rebate_bp, version = standings.version + 1, updated_at = EXCLUDED.updated_at \
         WHERE (standings.customer_class, standings.rebate_bp) \
           IS DISTINCT FROM (EXCLUDED.customer_class, EXCLUDED.rebate_bp) \
         RETURNING *",
    )
    .bind(customer_id)
    .bind(area_id)
    .bind(class)
    .bind(rebate_bp)
    .bind(now)
    .fetch_optional(&mut *tx)
    .await?;
    Ok(row.map(Into::into))
}

/// Sets the credit part of a retailer's standing; `Some` only when it changed.
#[allow(clippy::too_many_arguments)]
pub async fn set_credit_standing(
    tx: &mut PgConnection,
    customer_id: &str,
    area_id: &str,
    grade: &str,
    limit_fen: i64,
    blacklisted: bool,
    blacklist_reason: &str,
    now: DateTime<Utc>,
) -> Result<Option<Standing>, ServiceError> {
    let row: Option<StandingRow> = sqlx::query_as(
        "INSERT INTO standings (customer_id, area_id, credit_grade, credit_limit_fen, blacklisted, \
           blacklist_reason, version, updated_at) VALUES ($1, $2, $3, $4, $5, $6, 1, $7) \
         ON CONFLICT (customer_id) DO UPDATE SET credit_grade = EXCLUDED.credit_grade, \
           credit_limit_fen = EXCLUDED.credit_limit_fen, blacklisted = EXCLUDED.blacklisted, \
           blacklist_reason = EXCLUDED.blacklist_reason, version = standings.version + 1, \
           updated_at = EXCLUDED.updated_at \
         WHERE (standings.credit_grade, standings.credit_limit_fen, standings.blacklisted, \
                standings.blacklist_reason) \
           IS DISTINCT FROM (EXCLUDED.credit_grade, EXCLUDED.credit_limit_fen, EXCLUDED.blacklisted, \
                EXCLUDED.blacklist_reason) \
         RETURNING *",
    )
    .bind(customer_id)
    .bind(area_id)
    .bind(grade)
    .bind(limit_fen)
    .bind(blacklisted)
    .bind(blacklist_reason)
    .bind(now)
    .fetch_optional(&mut *tx)
    .await?;
    Ok(row.map(Into::into))
}
