//! The delivery network: depots with their calendar and cut-offs, zones, vehicles.

use chrono::NaiveTime;
use distnet_platform::ServiceError;
use distnet_platform::auth::Caller;
use distnet_platform::pagination;
use distnet_platform::validate::{Violations, parse_name};
use distnet_proto::common::v1::TimeOfDay;
use distnet_proto::logistics::v1::*;

use super::{LogisticsApi, begin_idempotent, parse_date};
use crate::domain::access;
use crate::domain::dispatch::{DeliveryModel, ServiceTimes};
use crate::domain::geo::{LatLng, RoadModel, within_twice_daily_band};
use crate::domain::slot::{Cutoff as RuleCutoff, CutoffSchedule};
use crate::store::network::{self as store, DepotRow, VehicleRow, ZoneRow, half_from_wire};

fn local_time(t: Option<TimeOfDay>, field: &str, v: &mut Violations) -> NaiveTime {
    let t = t.unwrap_or_default();
    match NaiveTime::from_hms_opt(
        u32::try_from(t.hours).unwrap_or(99),
        u32::try_from(t.minutes).unwrap_or(99),
        0,
    ) {
        Some(time) => time,
        None => {
            v.add(field, "must be a time of day (hours 0..23, minutes 0..59)");
            NaiveTime::MIN
        }
    }
}

fn dates(texts: &[String], field: &str, v: &mut Violations) -> Vec<chrono::NaiveDate> {
    v.check(texts.len() <= 1000, field, "at most 1,000 dates");
    let mut out: Vec<chrono::NaiveDate> = texts
        .iter()
        .enumerate()
        .filter_map(|(i, t)| match parse_date(t, "") {
            Ok(d) => Some(d),
            Err(_) => {
                v.add(format!("{field}[{i}]"), "must be a date YYYY-MM-DD");
                None
            }
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The depot's delivery model from its fields; 0 means the default.
fn delivery_model(depot: &Depot, v: &mut Violations) -> DeliveryModel {
    let defaults = DeliveryModel::default();
    let or = |value: f64, default: f64| if value == 0.0 { default } else { value };
    v.check(
        depot.circuity == 0.0 || (1.0..=3.0).contains(&depot.circuity),
        "depot.circuity",
        "must be 1..=3 (0 = 1.3)",
    );
    v.check(
        depot.speed_kmh == 0.0 || (5.0..=120.0).contains(&depot.speed_kmh),
        "depot.speed_kmh",
        "must be 5..=120 (0 = 25)",
    );
    v.check(
        (0..=3600).contains(&depot.stop_service_seconds),
        "depot.stop_service_seconds",
        "must be 0..=3600 (0 = 240)",
    );
    v.check(
        (0..=600).contains(&depot.service_seconds_per_case),
        "depot.service_seconds_per_case",
        "must be 0..=600 (0 = 30)",
    );
    DeliveryModel {
        road: RoadModel {
            circuity: or(depot.circuity, defaults.road.circuity),
            speed_kmh: or(depot.speed_kmh, defaults.road.speed_kmh),
        },
        service: ServiceTimes {
            per_stop_s: or(f64::from(depot.stop_service_seconds), defaults.service.per_stop_s),
            per_case_s: or(
                f64::from(depot.service_seconds_per_case),
                defaults.service.per_case_s,
            ),
        },
    }
}

impl LogisticsApi {
    pub(super) async fn upsert_depot(
        &self,
        caller: Caller,
        message: UpsertDepotRequest,
    ) -> Result<Depot, ServiceError> {
        let mut v = Violations::new();
        v.request_id(&message.request_id);
        let depot = message.depot.clone().unwrap_or_default();
        v.non_empty(&depot.display_name, "depot.display_name");
        v.text(&depot.display_name, "depot.display_name", 200);
        let location = depot.location.unwrap_or_default();
        v.check(depot.location.is_some(), "depot.location", "is required");
        v.latitude(location.latitude, "depot.location.latitude");
        v.longitude(location.longitude, "depot.location.longitude");
        let time_zone = if depot.time_zone.is_empty() {
            "Asia/Shanghai".to_string()
        } else {
            depot.time_zone.clone()
        };
        v.check(
            time_zone.parse::<chrono_tz::Tz>().is_ok(),
            "depot.time_zone",
            "must be an IANA time zone such as Asia/Shanghai",
        );
        let non_working = dates(&depot.non_working_days, "depot.non_working_days", &mut v);
        v.check(
            (0..=100_000).contains(&depot.picking_capacity_cases),
            "depot.picking_capacity_cases",
            "must be 0..=100,000",
        );
        let model = delivery_model(&depot, &mut v);
        let id = parse_name(&depot.name, "depots", "depot.name");
        v.into_result()?;
        let id = id?;
        caller.require(access::NETWORK_EDITORS)?;
        access::ensure_depot(&caller, id)?;
        let mut tx = self.pool.begin().await?;
        let key =
            match begin_idempotent(&mut tx, &caller, &message.request_id, "UpsertDepot", &message).await? {
                Ok(key) => key,
                Err(replay) => return Ok(replay),
            };
        let row = store::upsert_depot(
            &mut tx,
            &DepotRow {
                depot_id: id.to_string(),
                display_name: depot.display_name.clone(),
                latitude: location.latitude,
                longitude: location.longitude,
                time_zone,
                non_working_days: non_working,
                picking_capacity_cases: depot.picking_capacity_cases,
                cutoffs: serde_json::to_value(CutoffSchedule::default()).map_err(ServiceError::internal)?,
                updated_at: self.clock.now(),
                delivery_model: serde_json::to_value(model).map_err(ServiceError::internal)?,
            },
        )
        .await?;
        let reply = row.to_wire();
        key.complete(&mut tx, &reply).await?;
        tx.commit().await?;
        self.placements.clear();
        Ok(reply)
    }

    pub(super) async fn get_depot(
        &self,
        caller: Caller,
        message: GetDepotRequest,
    ) -> Result<Depot, ServiceError> {
        let id = parse_name(&message.name, "depots", "name")?;
        caller.require(access::NETWORK_READERS)?;
        let mut conn = self.pool.acquire().await?;
        store::depot(&mut conn, id)
            .await?
            .map(|d| d.to_wire())
            .ok_or_else(|| ServiceError::not_found(message.name.clone()))
    }

    pub(super) async fn set_cutoff_schedule(
        &self,
        caller: Caller,
        message: SetCutoffScheduleRequest,
    ) -> Result<Depot, ServiceError> {
        let mut v = Violations::new();
        v.request_id(&message.request_id);
        v.check(
            (1..=8).contains(&message.cutoffs.len()),
            "cutoffs",
            "a depot has 1..=8 cut-offs",
        );
        let mut cutoffs = Vec::with_capacity(message.cutoffs.len());
        for (i, c) in message.cutoffs.iter().enumerate() {
            let at = local_time(c.at, &format!("cutoffs[{i}].at"), &mut v);
            v.check(
                (0..=7).contains(&c.delivery_days),
                &format!("cutoffs[{i}].delivery_days"),
                "must be 0..=7",
            );
            let half = half_from_wire(c.delivery_half);
            v.check(
                half.is_some(),
                &format!("cutoffs[{i}].delivery_half"),
                "must be MORNING or AFTERNOON",
            );
            if let Some(half) = half {
                cutoffs.push(RuleCutoff {
                    at,
                    delivery_days: u32::try_from(c.delivery_days).unwrap_or(0),
                    delivery_half: half,
                });
            }
        }
        cutoffs.sort_by_key(|c| c.at);
        v.check(
            cutoffs.windows(2).all(|w| w[0].at != w[1].at),
            "cutoffs",
            "two cut-offs at the same time",
        );
        let id = parse_name(&message.depot, "depots", "depot");
        v.into_result()?;
        let id = id?;
        caller.require(access::NETWORK_EDITORS)?;
        access::ensure_depot(&caller, id)?;
        let mut tx = self.pool.begin().await?;
        let key = match begin_idempotent(
            &mut tx,
            &caller,
            &message.request_id,
            "SetCutoffSchedule",
            &message,
        )
        .await?
        {
            Ok(key) => key,
            Err(replay) => return Ok(replay),
        };
        let row = store::set_cutoffs(&mut tx, id, &CutoffSchedule { cutoffs }, self.clock.now())
            .await?
            .ok_or_else(|| ServiceError::not_found(message.depot.clone()))?;
        let reply = row.to_wire();
        key.complete(&mut tx, &reply).await?;
        tx.commit().await?;
        self.placements.clear();
        Ok(reply)
    }

    /// An area belongs to one zone; a twice-daily zone's known retailers all lie within
    /// the 25 km band of its depot (DOMAIN.md "Order to delivery").
    pub(super) async fn upsert_zone(
        &self,
        caller: Caller,
        message: UpsertZoneRequest,
    ) -> Result<Zone, ServiceError> {
        let mut v = Violations::new();
        v.request_id(&message.request_id);
        let zone = message.zone.clone().unwrap_or_default();
        v.non_empty(&zone.display_name, "zone.display_name");
        v.text(&zone.display_name, "zone.display_name", 200);
        v.check(
            (1..=500).contains(&zone.area_ids.len()),
            "zone.area_ids",
            "a zone covers 1..=500 areas",
        );
        for (i, area) in zone.area_ids.iter().enumerate() {
            v.non_empty(area, &format!("zone.area_ids[{i}]"));
            v.text(area, &format!("zone.area_ids[{i}]"), 64);
        }
        v.check(
            (1..=14).contains(&zone.cycle_days),
            "zone.cycle_days",
            "must be 1..=14",
        );
        v.check(
            (0..zone.cycle_days.max(1)).contains(&zone.cycle_day),
            "zone.cycle_day",
            "must be 0..cycle_days",
        );
        let anchor = parse_date(&zone.cycle_anchor, "zone.cycle_anchor");
        if let Err(e) = &anchor {
            v.add("zone.cycle_anchor", e.message.clone());
        }
        let frequency = Frequency::try_from(zone.frequency)
            .ok()
            .filter(|f| *f != Frequency::Unspecified);
        v.check(
            frequency.is_some(),
            "zone.frequency",
            "must be ONCE_DAILY or TWICE_DAILY",
        );
        let id = parse_name(&zone.name, "zones", "zone.name");
        let depot_id = parse_name(&zone.depot, "depots", "zone.depot");
        v.into_result()?;
        let (id, depot_id, anchor) = (id?, depot_id?, anchor?);
        caller.require(access::NETWORK_EDITORS)?;
        access::ensure_depot(&caller, depot_id)?;
        let mut areas = zone.area_ids.clone();
        areas.sort();
        areas.dedup();

        let mut tx = self.pool.begin().await?;
        let key =
            match begin_idempotent(&mut tx, &caller, &message.request_id, "UpsertZone", &message).await? {
                Ok(key) => key,
                Err(replay) => return Ok(replay),
            };
        let depot = store::depot(&mut tx, depot_id)
            .await?
            .ok_or_else(|| ServiceError::not_found(zone.depot.clone()))?;
        let overlapping = store::overlapping_zones(&mut tx, id, &areas).await?;
        if !overlapping.is_empty() {
            let mut error =
                ServiceError::failed_precondition("AREA_ALREADY_ZONED", "an area belongs to one zone");
            for (other, shared) in overlapping {
                error = error.with_precondition(
                    "AREA_ALREADY_ZONED",
                    format!("zones/{other}"),
                    format!("already covers {}", shared.join(", ")),
                );
            }
            return Err(error);
        }
        if frequency == Some(Frequency::TwiceDaily) {
            let depot_at = LatLng {
                lat: depot.latitude,
                lng: depot.longitude,
            };
            let far = store::customer_locations(&mut tx, &areas)
                .await?
                .into_iter()
                .filter(|(_, lat, lng)| !within_twice_daily_band(depot_at, LatLng { lat: *lat, lng: *lng }))
                .count();
            if far > 0 {
                return Err(ServiceError::failed_precondition(
                    "BEYOND_TWICE_DAILY_BAND",
                    format!(
                        "{far} retailers of these areas lie beyond 25 km of the depot: deliver once a day"
                    ),
                ));
            }
        }
        let row = store::upsert_zone(
            &mut tx,
            &ZoneRow {
                zone_id: id.to_string(),
                display_name: zone.display_name.clone(),
                depot_id: depot_id.to_string(),
                area_ids: areas,
                cycle_days: zone.cycle_days,
                cycle_day: zone.cycle_day,
                cycle_anchor: anchor,
                frequency: i16::try_from(zone.frequency).unwrap_or(0),
                updated_at: self.clock.now(),
            },
        )
        .await?;
        let reply = row.to_wire();
        key.complete(&mut tx, &reply).await?;
        tx.commit().await?;
        self.placements.clear();
        Ok(reply)
    }

    pub(super) async fn list_zones(
        &self,
        caller: Caller,
        message: ListZonesRequest,
    ) -> Result<ListZonesResponse, ServiceError> {
        let depot = if message.depot.is_empty() {
            None
        } else {
            Some(parse_name(&message.depot, "depots", "depot")?)
        };
        let page = pagination::read(message.page_size, &message.page_token, &message.depot)?;
        caller.require(access::NETWORK_READERS)?;
        let mut conn = self.pool.acquire().await?;
        let rows = store::zones(&mut conn, depot, &page).await?;
        let (rows, next_page_token) = pagination::finish(rows, &page, &message.depot, |z| z.zone_id.clone());
        Ok(ListZonesResponse {
            zones: rows.iter().map(ZoneRow::to_wire).collect(),
            next_page_token,
        })
    }

    pub(super) async fn upsert_vehicle(
        &self,
        caller: Caller,
        message: UpsertVehicleRequest,
    ) -> Result<Vehicle, ServiceError> {
        let mut v = Violations::new();
        v.request_id(&message.request_id);
        let vehicle = message.vehicle.clone().unwrap_or_default();
        v.non_empty(&vehicle.display_name, "vehicle.display_name");
        v.text(&vehicle.display_name, "vehicle.display_name", 200);
        v.check(
            (1..=1000).contains(&vehicle.capacity_cases),
            "vehicle.capacity_cases",
            "must be 1..=1000",
        );
        v.check(
            (1..=10).contains(&vehicle.crew_size),
            "vehicle.crew_size",
            "must be 1..=10",
        );
        let start = local_time(vehicle.shift_start, "vehicle.shift_start", &mut v);
        let end = local_time(vehicle.shift_end, "vehicle.shift_end", &mut v);
        v.check(
            start < end,
            "vehicle.shift_end",
            "must be after shift_start on the same day",
        );
        let unavailable = dates(&vehicle.unavailable_days, "vehicle.unavailable_days", &mut v);
        let id = parse_name(&vehicle.name, "vehicles", "vehicle.name");
        let depot_id = parse_name(&vehicle.depot, "depots", "vehicle.depot");
        v.into_result()?;
        let (id, depot_id) = (id?, depot_id?);
        caller.require(access::NETWORK_EDITORS)?;
        access::ensure_depot(&caller, depot_id)?;
        let minutes = |t: NaiveTime| {
            use chrono::Timelike as _;
            i32::try_from(t.hour() * 60 + t.minute()).unwrap_or(0)
        };
        let mut tx = self.pool.begin().await?;
        let key =
            match begin_idempotent(&mut tx, &caller, &message.request_id, "UpsertVehicle", &message).await? {
                Ok(key) => key,
                Err(replay) => return Ok(replay),
            };
        if store::depot(&mut tx, depot_id).await?.is_none() {
            return Err(ServiceError::not_found(vehicle.depot.clone()));
        }
        let row = store::upsert_vehicle(
            &mut tx,
            &VehicleRow {
                vehicle_id: id.to_string(),
                display_name: vehicle.display_name.clone(),
                depot_id: depot_id.to_string(),
                capacity_cases: vehicle.capacity_cases,
                crew_size: vehicle.crew_size,
                shift_start_min: minutes(start),
                shift_end_min: minutes(end),
                unavailable_days: unavailable,
                updated_at: self.clock.now(),
            },
        )
        .await?;
        let reply = row.to_wire();
        key.complete(&mut tx, &reply).await?;
        tx.commit().await?;
        Ok(reply)
    }

    pub(super) async fn list_vehicles(
        &self,
        caller: Caller,
        message: ListVehiclesRequest,
    ) -> Result<ListVehiclesResponse, ServiceError> {
        let depot = if message.depot.is_empty() {
            None
        } else {
            Some(parse_name(&message.depot, "depots", "depot")?)
        };
        let page = pagination::read(message.page_size, &message.page_token, &message.depot)?;
        caller.require(access::NETWORK_READERS)?;
        let mut conn = self.pool.acquire().await?;
        let rows = store::vehicles(&mut conn, depot, &page).await?;
        let (rows, next_page_token) =
            pagination::finish(rows, &page, &message.depot, |v| v.vehicle_id.clone());
        Ok(ListVehiclesResponse {
            vehicles: rows.iter().map(VehicleRow::to_wire).collect(),
            next_page_token,
        })
    }
}
