//! Allocation in Postgres (schema `allocation`): the retailer replica here; catalog,
//! runs and orders in the submodules. `query_as` into row types; conversion to the
//! wire types happens next to the rows.

use distnet_platform::ServiceError;
use sqlx::PgConnection;

pub mod catalog;
pub mod orders;
pub mod runs;

pub use distnet_platform::wire::timestamp;

pub use distnet_platform::wire::cny;

/// What an order needs to know of a retailer.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Retailer {
    pub customer_id: String,
    pub area_id: String,
    pub owner_id: String,
    pub settlement: i16,
    pub license_status: i16,
    pub credit_limit_fen: i64,
    pub blacklisted: bool,
}

/// Whose a retailer is: the part of its replica row that decides who may see it.
#[derive(Debug, Clone)]
pub struct RetailerScope {
    pub customer_id: String,
    pub area_id: String,
    /// Empty: no account manager.
    pub owner_id: String,
}

/// A replica row read through a LEFT JOIN: every column null when the retailer is
/// not known here.
#[derive(Debug, Default, sqlx::FromRow)]
pub struct OptionalRetailer {
    customer_id: Option<String>,
    area_id: Option<String>,
    owner_id: Option<String>,
    settlement: Option<i16>,
    license_status: Option<i16>,
    credit_limit_fen: Option<i64>,
    blacklisted: Option<bool>,
}

impl OptionalRetailer {
    pub fn known(self) -> Option<Retailer> {
        Some(Retailer {
            customer_id: self.customer_id?,
            area_id: self.area_id?,
            owner_id: self.owner_id?,
            settlement: self.settlement?,
            license_status: self.license_status?,
            credit_limit_fen: self.credit_limit_fen?,
            blacklisted: self.blacklisted?,
        })
    }
}

pub async fn retailer(conn: &mut PgConnection, customer_id: &str) -> Result<Option<Retailer>, ServiceError> {
    Ok(sqlx::query_as(
        "SELECT customer_id, area_id, owner_id, settlement, license_status, credit_limit_fen, blacklisted \
         FROM retailers WHERE customer_id = $1 AND profile_known",
    )
    .bind(customer_id)
    .fetch_optional(&mut *conn)
    .await?)
}

/// From `CustomerChanged`: the profile facts allocation decides with. A change bumps
/// the replica revision at commit (trigger `retailers_replica_revision`).
pub async fn upsert_profile(
    tx: &mut PgConnection,
    customer_id: &str,
    area_id: &str,
    owner_id: &str,
    format: i16,
    settlement: i16,
) -> Result<(), ServiceError> {
    sqlx::query(
        "INSERT INTO retailers (customer_id, area_id, owner_id, format, settlement, profile_known) \
         VALUES ($1, $2, $3, $4, $5, true) \
         ON CONFLICT (customer_id) DO UPDATE SET area_id = $2, owner_id = $3, format = $4, settlement = $5, \
         profile_known = true, updated_at = now() \
         WHERE (retailers.area_id, retailers.owner_id, retailers.format, retailers.settlement, \
                retailers.profile_known) \
         IS DISTINCT FROM ($2, $3, $4, $5, true)",
    )
    .bind(customer_id)
    .bind(area_id)
    .bind(owner_id)
    .bind(format)
    .bind(settlement)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// The standing facts of `StandingChanged`.
#[derive(Debug, Clone)]
pub struct StandingFacts {
    pub customer_id: String,
    pub area_id: String,
    pub license_status: i16,
    pub tier: i32,
    pub grading_version: i64,
    pub customer_class: i16,
    pub credit_limit_fen: i64,
    pub blacklisted: bool,
    pub version: i64,
}

/// Applies a standing unless a newer one is already here (versions only grow); a
/// change bumps the replica revision at commit.
pub async fn upsert_standing(tx: &mut PgConnection, s: &StandingFacts) -> Result<(), ServiceError> {
    sqlx::query(
        "INSERT INTO retailers (customer_id, area_id, license_status, tier, grading_version, customer_class, \
         credit_limit_fen, blacklisted, standing_version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (customer_id) DO UPDATE SET \
         area_id = CASE WHEN $2 = '' THEN retailers.area_id ELSE $2 END, license_status = $3, tier = $4, \
         grading_version = $5, customer_class = $6, credit_limit_fen = $7, blacklisted = $8, \
         standing_version = $9, updated_at = now() \
         WHERE retailers.standing_version < $9",
    )
    .bind(&s.customer_id)
    .bind(&s.area_id)
    .bind(s.license_status)
    .bind(s.tier)
    .bind(s.grading_version)
    .bind(s.customer_class)
    .bind(s.credit_limit_fen)
    .bind(s.blacklisted)
    .bind(s.version)
    .execute(&mut *tx)
    .await?;
    Ok(())
}
