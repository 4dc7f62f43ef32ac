//! Logistics in Postgres (schema `logistics`): the network, the customer cache and
//! shipments. `query_as` into row types; conversion to the wire types happens here.

use chrono::{DateTime, NaiveDate, Utc};
use distnet_platform::ServiceError;
use distnet_platform::pagination::Page;
use distnet_proto::common::v1::{LatLng, LocalTimeWindow, PostalAddress};
use distnet_proto::logistics::v1::{Shipment, ShipmentStatus};
use prost::Message as _;
use sqlx::PgConnection;

use crate::domain::slot::Half;

pub mod delivery;
pub mod network;
pub mod plans;

pub use distnet_platform::wire::timestamp;

pub fn date_text(date: NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

pub fn half_code(half: Half) -> i16 {
    match half {
        Half::Morning => 1,
        Half::Afternoon => 2,
    }
}

/// What a delivery needs to know of a retailer.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CachedCustomer {
    pub customer_id: String,
    pub display_name: String,
    pub area_id: String,
    pub owner_id: String,
    pub latitude: f64,
    pub longitude: f64,
    pub address: Vec<u8>,
    pub receiving_window: Vec<u8>,
}

impl CachedCustomer {
    pub fn of(customer: &distnet_proto::customers::v1::Customer) -> Self {
        let location = customer.location.unwrap_or_default();
        Self {
            customer_id: customer
                .name
                .strip_prefix("customers/")
                .unwrap_or_default()
                .to_string(),
            display_name: customer.display_name.clone(),
            area_id: customer.area_id.clone(),
            owner_id: customer.owner_id.clone(),
            latitude: location.latitude,
            longitude: location.longitude,
            address: customer.address.clone().unwrap_or_default().encode_to_vec(),
            receiving_window: customer
                .receiving_window
                .clone()
                .unwrap_or_default()
                .encode_to_vec(),
        }
    }
}

pub async fn upsert_customer(
    tx: &mut PgConnection,
    c: &CachedCustomer,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    sqlx::query(
        "INSERT INTO customer_cache (customer_id, display_name, area_id, owner_id, latitude, longitude, address, \
         receiving_window, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (customer_id) DO UPDATE SET display_name = $2, area_id = $3, owner_id = $4, latitude = $5, \
         longitude = $6, address = $7, receiving_window = $8, updated_at = $9",
    )
    .bind(&c.customer_id)
    .bind(&c.display_name)
    .bind(&c.area_id)
    .bind(&c.owner_id)
    .bind(c.latitude)
    .bind(c.longitude)
    .bind(&c.address)
    .bind(&c.receiving_window)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

pub async fn customer(conn: &mut PgConnection, id: &str) -> Result<Option<CachedCustomer>, ServiceError> {
    Ok(sqlx::query_as(
        "SELECT customer_id, display_name, area_id, owner_id, latitude, longitude, address, receiving_window \
         FROM customer_cache WHERE customer_id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ShipmentRow {
    pub shipment_id: String,
    pub order_id: String,
    pub customer_id: String,
    pub area_id: String,
    pub zone_id: Option<String>,
    pub depot_id: Option<String>,
    pub cartons: i64,
    pub value_fen: i64,
    pub slot_date: Option<NaiveDate>,
    pub slot_half: i16,
    pub status: i16,
    pub confirmed_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub plan_id: Option<String>,
    pub attempts: i32,
    pub cartons_delivered: i64,
}

/// A shipment with the customer facts it is shown with.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ShipmentView {
    #[sqlx(flatten)]
    pub shipment: ShipmentRow,
    pub display_name: Option<String>,
    pub owner_id: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub address: Option<Vec<u8>>,
    pub receiving_window: Option<Vec<u8>>,
}

pub use crate::domain::dispatch::CARTONS_PER_CASE;

impl ShipmentView {
    pub fn to_wire(&self) -> Shipment {
        let s = &self.shipment;
        Shipment {
            name: format!("shipments/{}", s.shipment_id),
            order: format!("orders/{}", s.order_id),
            customer: format!("customers/{}", s.customer_id),
            customer_display_name: self.display_name.clone().unwrap_or_default(),
            area_id: s.area_id.clone(),
            zone: s
                .zone_id
                .as_ref()
                .map(|z| format!("zones/{z}"))
                .unwrap_or_default(),
            depot: s
                .depot_id
                .as_ref()
                .map(|d| format!("depots/{d}"))
                .unwrap_or_default(),
            cartons: s.cartons,
            cases: s.cartons as f64 / CARTONS_PER_CASE,
            value: Some(distnet_proto::common::v1::Money {
                currency_code: "CNY".into(),
                fen: s.value_fen,
            }),
            location: match (self.latitude, self.longitude) {
                (Some(latitude), Some(longitude)) => Some(LatLng { latitude, longitude }),
                _ => None,
            },
            address: self
                .address
                .as_deref()
                .and_then(|b| PostalAddress::decode(b).ok()),
            receiving_window: self
                .receiving_window
                .as_deref()
                .and_then(|b| LocalTimeWindow::decode(b).ok()),
            slot_date: s.slot_date.map(date_text).unwrap_or_default(),
            slot_half: i32::from(s.slot_half),
            status: i32::from(s.status),
            confirm_time: Some(timestamp(s.confirmed_at)),
            update_time: Some(timestamp(s.updated_at)),
            plan: s
                .plan_id
                .as_ref()
                .map(|p| format!("plans/{p}"))
                .unwrap_or_default(),
            attempts: s.attempts,
            cartons_delivered: s.cartons_delivered,
        }
    }
}

/// Creates the shipment of an order once: a redelivered `OrderConfirmed` changes nothing.
pub async fn insert_shipment(tx: &mut PgConnection, s: &ShipmentRow) -> Result<(), ServiceError> {
    sqlx::query(
        "INSERT INTO shipments (shipment_id, order_id, customer_id, area_id, zone_id, depot_id, cartons, value_fen, \
         slot_date, slot_half, status, confirmed_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT (order_id) DO NOTHING",
    )
    .bind(&s.shipment_id)
    .bind(&s.order_id)
    .bind(&s.customer_id)
    .bind(&s.area_id)
    .bind(&s.zone_id)
    .bind(&s.depot_id)
    .bind(s.cartons)
    .bind(s.value_fen)
    .bind(s.slot_date)
    .bind(s.slot_half)
    .bind(s.status)
    .bind(s.confirmed_at)
    .bind(s.updated_at)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// `OrderCancelled`: the shipment is dropped unless it was already delivered.
pub async fn cancel_order(
    tx: &mut PgConnection,
    order_id: &str,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    sqlx::query("UPDATE shipments SET status = $2, updated_at = $3 WHERE order_id = $1 AND status <> $4")
        .bind(order_id)
        .bind(ShipmentStatus::Cancelled as i16)
        .bind(now)
        .bind(ShipmentStatus::Delivered as i16)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

pub(crate) const VIEW: &str = "SELECT s.*, c.display_name, c.owner_id, c.latitude, c.longitude, c.address, c.receiving_window \
     FROM shipments s LEFT JOIN customer_cache c USING (customer_id)";

pub async fn shipment(conn: &mut PgConnection, id: &str) -> Result<Option<ShipmentView>, ServiceError> {
    Ok(sqlx::query_as(&format!("{VIEW} WHERE s.shipment_id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?)
}

/// The shipment, locked until the transaction ends.
pub async fn shipment_for_update(
    tx: &mut PgConnection,
    id: &str,
) -> Result<Option<ShipmentView>, ServiceError> {
    Ok(
        sqlx::query_as(&format!("{VIEW} WHERE s.shipment_id = $1 FOR UPDATE OF s"))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?,
    )
}

pub struct ShipmentFilter<'a> {
    pub depot_id: Option<&'a str>,
    pub slot_date: Option<NaiveDate>,
    pub slot_half: Option<i16>,
    pub status: Option<i16>,
}

pub async fn shipments(
    conn: &mut PgConnection,
    f: &ShipmentFilter<'_>,
    page: &Page,
) -> Result<Vec<ShipmentView>, ServiceError> {
    Ok(sqlx::query_as(&format!(
        "{VIEW} WHERE ($1::text IS NULL OR s.depot_id = $1) AND ($2::date IS NULL OR s.slot_date = $2) \
         AND ($3::smallint IS NULL OR s.slot_half = $3) AND ($4::smallint IS NULL OR s.status = $4) \
         AND ($5::text IS NULL OR s.shipment_id > $5) ORDER BY s.shipment_id LIMIT $6"
    ))
    .bind(f.depot_id)
    .bind(f.slot_date)
    .bind(f.slot_half)
    .bind(f.status)
    .bind(page.after.as_deref())
    .bind(page.size + 1)
    .fetch_all(&mut *conn)
    .await?)
}
