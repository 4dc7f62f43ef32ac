//! Depots (with their calendar and cut-offs), zones and vehicles.

use chrono::{DateTime, NaiveDate, Utc};
use distnet_platform::ServiceError;
use distnet_platform::pagination::Page;
use distnet_proto::common::v1::{LatLng, TimeOfDay};
use distnet_proto::logistics::v1::{Cutoff as WireCutoff, Depot, Frequency as WireFrequency, Vehicle, Zone};
use sqlx::PgConnection;

use super::{date_text, half_code, timestamp};
use crate::domain::dispatch::DeliveryModel;
use crate::domain::slot::{Calendar, CutoffSchedule, Frequency, Half, ZoneCycle};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DepotRow {
    pub depot_id: String,
    pub display_name: String,
    pub latitude: f64,
    pub longitude: f64,
    pub time_zone: String,
    pub non_working_days: Vec<NaiveDate>,
    pub picking_capacity_cases: i32,
    pub cutoffs: serde_json::Value,
    pub updated_at: DateTime<Utc>,
    pub delivery_model: serde_json::Value,
}

fn time_of_day(t: chrono::NaiveTime) -> TimeOfDay {
    use chrono::Timelike as _;
    TimeOfDay {
        hours: i32::try_from(t.hour()).unwrap_or(0),
        minutes: i32::try_from(t.minute()).unwrap_or(0),
    }
}

impl DepotRow {
    pub fn schedule(&self) -> CutoffSchedule {
        serde_json::from_value(self.cutoffs.clone()).unwrap_or_default()
    }

    /// The depot's road estimate and service times (defaults where unset).
    pub fn delivery_model(&self) -> DeliveryModel {
        serde_json::from_value(self.delivery_model.clone()).unwrap_or_default()
    }

    pub fn calendar(&self) -> Calendar {
        Calendar {
            non_working: self.non_working_days.iter().copied().collect(),
        }
    }

    pub fn to_wire(&self) -> Depot {
        let model = self.delivery_model();
        Depot {
            name: format!("depots/{}", self.depot_id),
            display_name: self.display_name.clone(),
            location: Some(LatLng {
                latitude: self.latitude,
                longitude: self.longitude,
            }),
            time_zone: self.time_zone.clone(),
            non_working_days: self.non_working_days.iter().copied().map(date_text).collect(),
            picking_capacity_cases: self.picking_capacity_cases,
            cutoffs: self
                .schedule()
                .cutoffs
                .iter()
                .map(|c| WireCutoff {
                    at: Some(time_of_day(c.at)),
                    delivery_days: i32::try_from(c.delivery_days).unwrap_or(0),
                    delivery_half: i32::from(half_code(c.delivery_half)),
                })
                .collect(),
            update_time: Some(timestamp(self.updated_at)),
            circuity: model.road.circuity,
            speed_kmh: model.road.speed_kmh,
            stop_service_seconds: model.service.per_stop_s.round() as i32,
            service_seconds_per_case: model.service.per_case_s.round() as i32,
        }
    }
}

pub async fn upsert_depot(tx: &mut PgConnection, d: &DepotRow) -> Result<DepotRow, ServiceError> {
    Ok(sqlx::query_as(
        "INSERT INTO depots (depot_id, display_name, latitude, longitude, time_zone, non_working_days, \
         picking_capacity_cases, cutoffs, updated_at, delivery_model) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (depot_id) DO UPDATE SET display_name = $2, latitude = $3, longitude = $4, time_zone = $5, \
         non_working_days = $6, picking_capacity_cases = $7, updated_at = $9, delivery_model = $10 RETURNING *",
    )
    .bind(&d.depot_id)
    .bind(&d.display_name)
    .bind(d.latitude)
    .bind(d.longitude)
    .bind(&d.time_zone)
    .bind(&d.non_working_days)
    .bind(d.picking_capacity_cases)
    .bind(&d.cutoffs)
    .bind(d.updated_at)
    .bind(&d.delivery_model)
    .fetch_one(&mut *tx)
    .await?)
}

pub async fn set_cutoffs(
    tx: &mut PgConnection,
    depot_id: &str,
    schedule: &CutoffSchedule,
    now: DateTime<Utc>,
) -> Result<Option<DepotRow>, ServiceError> {
    let body = serde_json::to_value(schedule).map_err(ServiceError::internal)?;
    Ok(
        sqlx::query_as("UPDATE depots SET cutoffs = $2, updated_at = $3 WHERE depot_id = $1 RETURNING *")
            .bind(depot_id)
            .bind(body)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?,
    )
}

pub async fn depot(conn: &mut PgConnection, id: &str) -> Result<Option<DepotRow>, ServiceError> {
    Ok(sqlx::query_as("SELECT * FROM depots WHERE depot_id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ZoneRow {
    pub zone_id: String,
    pub display_name: String,
    pub depot_id: String,
    pub area_ids: Vec<String>,
    pub cycle_days: i32,
    pub cycle_day: i32,
    pub cycle_anchor: NaiveDate,
    pub frequency: i16,
    pub updated_at: DateTime<Utc>,
}

impl ZoneRow {
    pub fn cycle(&self) -> ZoneCycle {
        ZoneCycle {
            anchor: self.cycle_anchor,
            cycle_days: u32::try_from(self.cycle_days).unwrap_or(1),
            day: u32::try_from(self.cycle_day).unwrap_or(0),
            frequency: if self.frequency == WireFrequency::OnceDaily as i16 {
                Frequency::OnceDaily
            } else {
                Frequency::TwiceDaily
            },
        }
    }

    pub fn to_wire(&self) -> Zone {
        Zone {
            name: format!("zones/{}", self.zone_id),
            display_name: self.display_name.clone(),
            depot: format!("depots/{}", self.depot_id),
            area_ids: self.area_ids.clone(),
            cycle_days: self.cycle_days,
            cycle_day: self.cycle_day,
            cycle_anchor: date_text(self.cycle_anchor),
            frequency: i32::from(self.frequency),
            update_time: Some(timestamp(self.updated_at)),
        }
    }
}

pub async fn zone(conn: &mut PgConnection, id: &str) -> Result<Option<ZoneRow>, ServiceError> {
    Ok(sqlx::query_as("SELECT * FROM zones WHERE zone_id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?)
}

pub async fn upsert_zone(tx: &mut PgConnection, z: &ZoneRow) -> Result<ZoneRow, ServiceError> {
    Ok(sqlx::query_as(
        "INSERT INTO zones (zone_id, display_name, depot_id, area_ids, cycle_days, cycle_day, cycle_anchor, \
         frequency, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (zone_id) DO UPDATE SET display_name = $2, depot_id = $3, area_ids = $4, cycle_days = $5, \
         cycle_day = $6, cycle_anchor = $7, frequency = $8, updated_at = $9 RETURNING *",
    )
    .bind(&z.zone_id)
    .bind(&z.display_name)
    .bind(&z.depot_id)
    .bind(&z.area_ids)
    .bind(z.cycle_days)
    .bind(z.cycle_day)
    .bind(z.cycle_anchor)
    .bind(z.frequency)
    .bind(z.updated_at)
    .fetch_one(&mut *tx)
    .await?)
}

/// Zones other than `zone_id` that already cover one of `area_ids`.
pub async fn overlapping_zones(
    conn: &mut PgConnection,
    zone_id: &str,
    area_ids: &[String],
) -> Result<Vec<(String, Vec<String>)>, ServiceError> {
    Ok(sqlx::query_as(
        "SELECT zone_id, ARRAY(SELECT unnest(area_ids) INTERSECT SELECT unnest($2::text[])) FROM zones \
         WHERE zone_id <> $1 AND area_ids && $2::text[] ORDER BY zone_id",
    )
    .bind(zone_id)
    .bind(area_ids)
    .fetch_all(&mut *conn)
    .await?)
}

pub async fn zone_for_area(conn: &mut PgConnection, area_id: &str) -> Result<Option<ZoneRow>, ServiceError> {
    Ok(
        sqlx::query_as("SELECT * FROM zones WHERE $1 = ANY(area_ids) ORDER BY zone_id LIMIT 1")
            .bind(area_id)
            .fetch_optional(&mut *conn)
            .await?,
    )
}

pub async fn zones(
    conn: &mut PgConnection,
    depot_id: Option<&str>,
    page: &Page,
) -> Result<Vec<ZoneRow>, ServiceError> {
    Ok(sqlx::query_as(
        "SELECT * FROM zones WHERE ($1::text IS NULL OR depot_id = $1) AND ($2::text IS NULL OR zone_id > $2) \
         ORDER BY zone_id LIMIT $3",
    )
    .bind(depot_id)
    .bind(page.after.as_deref())
    .bind(page.size + 1)
    .fetch_all(&mut *conn)
    .await?)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct VehicleRow {
    pub vehicle_id: String,
    pub display_name: String,
    pub depot_id: String,
    pub capacity_cases: i32,
    pub crew_size: i32,
    pub shift_start_min: i32,
    pub shift_end_min: i32,
    pub unavailable_days: Vec<NaiveDate>,
    pub updated_at: DateTime<Utc>,
}

fn minutes(m: i32) -> TimeOfDay {
    TimeOfDay {
        hours: m / 60,
        minutes: m % 60,
    }
}

impl VehicleRow {
    pub fn to_wire(&self) -> Vehicle {
        Vehicle {
            name: format!("vehicles/{}", self.vehicle_id),
            display_name: self.display_name.clone(),
            depot: format!("depots/{}", self.depot_id),
            capacity_cases: self.capacity_cases,
            crew_size: self.crew_size,
            shift_start: Some(minutes(self.shift_start_min)),
            shift_end: Some(minutes(self.shift_end_min)),
            unavailable_days: self.unavailable_days.iter().copied().map(date_text).collect(),
            update_time: Some(timestamp(self.updated_at)),
        }
    }
}

pub async fn upsert_vehicle(tx: &mut PgConnection, v: &VehicleRow) -> Result<VehicleRow, ServiceError> {
    Ok(sqlx::query_as(
        "INSERT INTO vehicles (vehicle_id, display_name, depot_id, capacity_cases, crew_size, shift_start_min, \
         shift_end_min, unavailable_days, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (vehicle_id) DO UPDATE SET display_name = $2, depot_id = $3, capacity_cases = $4, \
         crew_size = $5, shift_start_min = $6, shift_end_min = $7, unavailable_days = $8, updated_at = $9 \
         RETURNING *",
    )
    .bind(&v.vehicle_id)
    .bind(&v.display_name)
    .bind(&v.depot_id)
    .bind(v.capacity_cases)
    .bind(v.crew_size)
    .bind(v.shift_start_min)
    .bind(v.shift_end_min)
    .bind(&v.unavailable_days)
    .bind(v.updated_at)
    .fetch_one(&mut *tx)
    .await?)
}

pub async fn vehicles(
    conn: &mut PgConnection,
    depot_id: Option<&str>,
    page: &Page,
) -> Result<Vec<VehicleRow>, ServiceError> {
    Ok(sqlx::query_as(
        "SELECT * FROM vehicles WHERE ($1::text IS NULL OR depot_id = $1) \
         AND ($2::text IS NULL OR vehicle_id > $2) ORDER BY vehicle_id LIMIT $3",
    )
    .bind(depot_id)
    .bind(page.after.as_deref())
    .bind(page.size + 1)
    .fetch_all(&mut *conn)
    .await?)
}

/// The half the wire names, if any.
pub fn half_from_wire(code: i32) -> Option<Half> {
    match code {
        1 => Some(Half::Morning),
        2 => Some(Half::Afternoon),
        _ => None,
    }
}

/// Known retailers of `area_ids`: (customer id, latitude, longitude).
pub async fn customer_locations(
    conn: &mut PgConnection,
    area_ids: &[String],
) -> Result<Vec<(String, f64, f64)>, ServiceError> {
    Ok(
        sqlx::query_as("SELECT customer_id, latitude, longitude FROM customer_cache WHERE area_id = ANY($1)")
            .bind(area_ids)
            .fetch_all(&mut *conn)
            .await?,
    )
}
