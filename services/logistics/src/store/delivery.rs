//! Delivery execution: stop events as recorded, and what they do to shipments.

use chrono::{DateTime, NaiveDate, Utc};
use distnet_platform::ServiceError;
use distnet_proto::logistics::v1::ShipmentStatus;
use sqlx::PgConnection;

/// A stop event as the driver recorded it.
pub struct StopEventRow<'a> {
    pub plan_id: &'a str,
    pub shipment_id: &'a str,
    pub vehicle_id: &'a str,
    pub kind: i16,
    pub failure_reason: i16,
    pub cartons_delivered: i64,
    pub cash_fen: i64,
    pub recipient_name: &'a str,
    pub signature_sha256: &'a str,
    pub photo_sha256: &'a str,
    pub location: Option<(f64, f64)>,
    pub notes: &'a str,
    pub recorded_by: &'a str,
    pub occurred_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
}

pub async fn insert_stop_event(tx: &mut PgConnection, e: &StopEventRow<'_>) -> Result<(), ServiceError> {
    sqlx::query(
        "INSERT INTO stop_events (event_id, plan_id, shipment_id, vehicle_id, kind, failure_reason, \
         cartons_delivered, cash_fen, recipient_name, signature_sha256, photo_sha256, latitude, longitude, notes, \
         recorded_by, occurred_at, recorded_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(e.plan_id)
    .bind(e.shipment_id)
    .bind(e.vehicle_id)
    .bind(e.kind)
    .bind(e.failure_reason)
    .bind(e.cartons_delivered)
    .bind(e.cash_fen)
    .bind(e.recipient_name)
    .bind(e.signature_sha256)
    .bind(e.photo_sha256)
    .bind(e.location.map(|l| l.0))
    .bind(e.location.map(|l| l.1))
    .bind(e.notes)
    .bind(e.recorded_by)
    .bind(e.occurred_at)
    .bind(e.recorded_at)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Delivered, in full or in part.
pub async fn delivered(
    tx: &mut PgConnection,
    shipment_id: &str,
    cartons: i64,
    at: DateTime<Utc>,
) -> Result<(), ServiceError> {
    sqlx::query(
        "UPDATE shipments SET status = $2, cartons_delivered = $3, updated_at = $4 WHERE shipment_id = $1",
    )
    .bind(shipment_id)
    .bind(ShipmentStatus::Delivered as i16)
    .bind(cartons)
    .bind(at)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// A failed attempt: back to PENDING in `next` slot, or FAILED when there is none.
pub async fn failed(
    tx: &mut PgConnection,
    shipment_id: &str,
    next: Option<(NaiveDate, i16)>,
    at: DateTime<Utc>,
) -> Result<(), ServiceError> {
    let status = if next.is_some() {
        ShipmentStatus::Pending
    } else {
        ShipmentStatus::Failed
    };
    sqlx::query(
        "UPDATE shipments SET attempts = attempts + 1, status = $2, updated_at = $3, \
         plan_id = CASE WHEN $4::date IS NULL THEN plan_id END, \
         slot_date = COALESCE($4, slot_date), slot_half = COALESCE($5, slot_half) \
         WHERE shipment_id = $1",
    )
    .bind(shipment_id)
    .bind(status as i16)
    .bind(at)
    .bind(next.map(|n| n.0))
    .bind(next.map(|n| n.1))
    .execute(&mut *tx)
    .await?;
    Ok(())
}
