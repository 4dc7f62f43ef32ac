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

/// The slot's shipments that are still to be planned or ride a plan, and those named
/// (a plan's stops, whatever became of them).
pub async fn slot_shipments(
    conn: &mut PgConnection,
    depot_id: &str,
    date: NaiveDate,
    half: i16,
    named: &[String],
) -> Result<Vec<ShipmentView>, ServiceError> {
    Ok(sqlx::query_as(&format!(
        "{} WHERE (s.depot_id = $1 AND s.slot_date = $2 AND s.slot_half = $3 AND s.status IN ($4, $5))          OR s.shipment_id = ANY($6) ORDER BY s.shipment_id",
        super::VIEW
    ))
    .bind(depot_id)
    .bind(date)
    .bind(half)
    .bind(ShipmentStatus::Pending as i16)
    .bind(ShipmentStatus::Planned as i16)
    .bind(named)
    .fetch_all(&mut *conn)
    .await?)
}

/// The pending shipments named ride `plan_id` now.
pub async fn mark_planned(
    tx: &mut PgConnection,
    plan_id: &str,
    shipment_ids: &[String],
    at: DateTime<Utc>,
) -> Result<(), ServiceError> {
    sqlx::query(
        "UPDATE shipments SET status = $2, plan_id = $5, updated_at = $3          WHERE shipment_id = ANY($1) AND (status = $4 OR (status = $2 AND plan_id = $5))",
    )
    .bind(shipment_ids)
    .bind(ShipmentStatus::Planned as i16)
    .bind(at)
    .bind(ShipmentStatus::Pending as i16)
    .bind(plan_id)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// The shipments named leave `plan_id`: planned ones wait for a plan again.
pub async fn unplan(
    tx: &mut PgConnection,
    plan_id: &str,
    shipment_ids: &[String],
    at: DateTime<Utc>,
) -> Result<(), ServiceError> {
    sqlx::query(
        "UPDATE shipments SET plan_id = NULL, updated_at = $3,          status = CASE WHEN status = $4 THEN $5 ELSE status END          WHERE shipment_id = ANY($1) AND plan_id = $2",
    )
    .bind(shipment_ids)
    .bind(plan_id)
    .bind(at)
    .bind(ShipmentStatus::Planned as i16)
    .bind(ShipmentStatus::Pending as i16)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Who drives each of the published plan's routes (replacing what was there).
pub async fn set_route_drivers(
    tx: &mut PgConnection,
    plan_id: &str,
    plan: &Plan,
) -> Result<(), ServiceError> {
    sqlx::query("DELETE FROM route_drivers WHERE plan_id = $1")
        .bind(plan_id)
        .execute(&mut *tx)
        .await?;
    let vehicles: Vec<String> = plan
        .routes
        .iter()
        .map(|r| r.vehicle.trim_start_matches("vehicles/").to_string())
        .collect();
    let drivers: Vec<String> = plan.routes.iter().map(|r| r.driver.clone()).collect();
    sqlx::query(
        "INSERT INTO route_drivers (plan_id, vehicle_id, driver, depot_id, slot_date, slot_half)          SELECT p.plan_id, v, d, p.depot_id, p.slot_date, p.slot_half          FROM plans p, unnest($2::text[], $3::text[]) AS t(v, d) WHERE p.plan_id = $1",
    )
    .bind(plan_id)
    .bind(&vehicles)
    .bind(&drivers)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Keeps a published plan's earlier revision as a SUPERSEDED row of its own.
pub async fn keep_revision(
    tx: &mut PgConnection,
    old: &Plan,
    depot_id: &str,
    at: DateTime<Utc>,
) -> Result<(), ServiceError> {
    let id = uuid::Uuid::now_v7().to_string();
    let mut kept = old.clone();
    kept.name = format!("plans/{id}");
    kept.status = PlanStatus::Superseded as i32;
    let date = NaiveDate::parse_from_str(&old.date, "%Y-%m-%d")
        .map_err(|_| ServiceError::internal("stored plan without a date"))?;
    insert(
        tx,
        &PlanKey {
            plan_id: &id,
            depot_id,
            date,
            half: i16::try_from(old.half).unwrap_or(0),
        },
        &kept,
        at,
    )
    .await
}

/// Rewrites a plan's body (a stop's progress), keeping its status.
pub async fn save(tx: &mut PgConnection, id: &str, plan: &Plan) -> Result<(), ServiceError> {
    sqlx::query("UPDATE plans SET body = $2 WHERE plan_id = $1")
        .bind(id)
        .bind(plan.encode_to_vec())
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// A driver's published routes on a date (`None`: today at each depot, per `now`).
pub async fn driver_plans(
    conn: &mut PgConnection,
    driver: &str,
    date: Option<NaiveDate>,
    now: DateTime<Utc>,
) -> Result<Vec<(Plan, String)>, ServiceError> {
    let rows: Vec<(Vec<u8>, String)> = sqlx::query_as(
        "SELECT p.body, r.vehicle_id FROM route_drivers r          JOIN plans p ON p.plan_id = r.plan_id AND p.status = $4          JOIN depots d ON d.depot_id = r.depot_id          WHERE r.driver = $1 AND r.slot_date = COALESCE($2, ($3::timestamptz AT TIME ZONE d.time_zone)::date)          ORDER BY r.slot_date, r.slot_half, r.plan_id",
    )
    .bind(driver)
    .bind(date)
    .bind(now)
    .bind(PlanStatus::Published as i16)
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter()
        .map(|(body, vehicle)| Ok((Plan::decode(body.as_slice())?, vehicle)))
        .collect()
}

/// The depot's published plans on a date, morning first.
pub async fn published_on(
    conn: &mut PgConnection,
    depot_id: &str,
    date: NaiveDate,
) -> Result<Vec<Plan>, ServiceError> {
    let rows: Vec<(Vec<u8>,)> = sqlx::query_as(
        "SELECT body FROM plans WHERE depot_id = $1 AND slot_date = $2 AND status = $3 ORDER BY slot_half",
    )
    .bind(depot_id)
    .bind(date)
    .bind(PlanStatus::Published as i16)
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter()
        .map(|(body,)| Ok(Plan::decode(body.as_slice())?))
        .collect()
}
