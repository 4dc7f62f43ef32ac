//! Route plans, and what planning reads: a slot's pending shipments and the vehicles
//! available on a date.

use chrono::{DateTime, NaiveDate, Utc};
use distnet_platform::ServiceError;
use distnet_proto::logistics::v1::{Plan, PlanStatus, ShipmentStatus};
use prost::Message as _;
use sqlx::PgConnection;

use super::ShipmentView;
use super::network::VehicleRow;

pub async fn pending_shipments(
    conn: &mut PgConnection,
    depot_id: &str,
    date: NaiveDate,
    half: i16,
) -> Result<Vec<ShipmentView>, ServiceError> {
    Ok(sqlx::query_as(&format!(
        "{} WHERE s.depot_id = $1 AND s.slot_date = $2 AND s.slot_half = $3 AND s.status = $4 \
         ORDER BY s.shipment_id",
        super::VIEW
    ))
    .bind(depot_id)
    .bind(date)
    .bind(half)
    .bind(ShipmentStatus::Pending as i16)
    .fetch_all(&mut *conn)
    .await?)
}

pub async fn available_vehicles(
    conn: &mut PgConnection,
    depot_id: &str,
    date: NaiveDate,
) -> Result<Vec<VehicleRow>, ServiceError> {
    Ok(sqlx::query_as(
        "SELECT * FROM vehicles WHERE depot_id = $1 AND NOT ($2 = ANY(unavailable_days)) ORDER BY vehicle_id",
    )
    .bind(depot_id)
    .bind(date)
    .fetch_all(&mut *conn)
    .await?)
}

/// Earlier drafts of the slot give way to a new one.
pub async fn supersede_drafts(
    tx: &mut PgConnection,
    depot_id: &str,
    date: NaiveDate,
    half: i16,
) -> Result<(), ServiceError> {
    let drafts: Vec<(String, Vec<u8>)> = sqlx::query_as(
        "SELECT plan_id, body FROM plans WHERE depot_id = $1 AND slot_date = $2 AND slot_half = $3 AND status = $4 \
         FOR UPDATE",
    )
    .bind(depot_id)
    .bind(date)
    .bind(half)
    .bind(PlanStatus::Draft as i16)
    .fetch_all(&mut *tx)
    .await?;
    for (id, body) in drafts {
        let mut plan = Plan::decode(body.as_slice())?;
        plan.status = PlanStatus::Superseded as i32;
        sqlx::query("UPDATE plans SET status = $2, body = $3 WHERE plan_id = $1")
            .bind(&id)
            .bind(PlanStatus::Superseded as i16)
            .bind(plan.encode_to_vec())
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

pub struct PlanKey<'a> {
    pub plan_id: &'a str,
    pub depot_id: &'a str,
    pub date: NaiveDate,
    pub half: i16,
}

pub async fn insert(
    tx: &mut PgConnection,
    key: &PlanKey<'_>,
    plan: &Plan,
    at: DateTime<Utc>,
) -> Result<(), ServiceError> {
    sqlx::query(
        "INSERT INTO plans (plan_id, depot_id, slot_date, slot_half, status, body, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(key.plan_id)
    .bind(key.depot_id)
    .bind(key.date)
    .bind(key.half)
    .bind(i16::try_from(plan.status).unwrap_or(0))
    .bind(plan.encode_to_vec())
    .bind(at)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// The plan and its depot id; `lock` holds it until the transaction ends.
pub async fn plan(
    conn: &mut PgConnection,
    id: &str,
    lock: bool,
) -> Result<Option<(Plan, String)>, ServiceError> {
    let sql = if lock {
        "SELECT body, depot_id FROM plans WHERE plan_id = $1 FOR UPDATE"
    } else {
        "SELECT body, depot_id FROM plans WHERE plan_id = $1"
    };
    let row: Option<(Vec<u8>, String)> = sqlx::query_as(sql).bind(id).fetch_optional(&mut *conn).await?;
    row.map(|(body, depot)| Ok((Plan::decode(body.as_slice())?, depot)))
        .transpose()
}

/// Stores the published plan; `None` when the slot already has a published plan.
pub async fn publish(
    tx: &mut PgConnection,
    id: &str,
    plan: &Plan,
    at: DateTime<Utc>,
) -> Result<(), ServiceError> {
    sqlx::query("UPDATE plans SET status = $2, body = $3, published_at = $4 WHERE plan_id = $1")
        .bind(id)
        .bind(PlanStatus::Published as i16)
        .bind(plan.encode_to_vec())
        .bind(at)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

pub async fn mark_planned(
    tx: &mut PgConnection,
    shipment_ids: &[String],
    at: DateTime<Utc>,
) -> Result<(), ServiceError> {
    sqlx::query(
        "UPDATE shipments SET status = $2, updated_at = $3 WHERE shipment_id = ANY($1) AND status = $4",
    )
    .bind(shipment_ids)
    .bind(ShipmentStatus::Planned as i16)
    .bind(at)
    .bind(ShipmentStatus::Pending as i16)
    .execute(&mut *tx)
    .await?;
    Ok(())
}
