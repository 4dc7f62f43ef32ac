//! Route planning for one depot's slot, on `vrp-core` (DESIGN.md "Routing"), and the
//! publication that locks a plan and assigns its drivers.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone as _, Utc};
use distnet_platform::ServiceError;
use distnet_platform::auth::Caller;
use distnet_platform::validate::{Violations, parse_name};
use distnet_proto::common::v1::LatLng;
use distnet_proto::logistics::v1::{
    GetPlanRequest, Half, Plan, PlanRoutesRequest, PlanStatus, PlanTotals, PlannedStop as WireStop,
    PublishPlanRequest, Route as WireRoute, UnassignedShipment,
};

use super::{LogisticsApi, begin_idempotent, parse_date};
use crate::domain::access;
use crate::domain::geo::RoadModel;
use crate::domain::routing::{
    Location, MultiTripRules, RoutingProblem, SolveOptions, Stop, Travel, Vehicle, solve,
};
use crate::store::plans::{self as store, PlanKey};
use crate::store::{ShipmentView, timestamp};

/// Time at a stop: parking, checking the goods with the retailer on handover and the
/// proof of delivery (DOMAIN.md), plus carrying each case in.
const STOP_SECONDS: f64 = 300.0;
const SECONDS_PER_CASE: f64 = 60.0;
/// 1 case (件) = 50 cartons (条).
const CARTONS_PER_CASE: f64 = 50.0;

fn plan_id(name: &str) -> Result<&str, ServiceError> {
    name.strip_prefix("plans/")
        .filter(|id| uuid::Uuid::parse_str(id).is_ok())
        .ok_or_else(|| ServiceError::invalid_field("name", "must be `plans/{id}`"))
}

/// Seconds after local midnight of a `TimeOfDay`.
fn seconds(t: Option<distnet_proto::common::v1::TimeOfDay>) -> Option<f64> {
    t.map(|t| f64::from(t.hours * 3600 + t.minutes * 60))
}

/// A vehicle's part of its shift for the slot: the morning run takes the first half,
/// the afternoon run the second.
fn slot_shift(start_min: i32, end_min: i32, half: Half) -> (f64, f64) {
    let (start, end) = (f64::from(start_min) * 60.0, f64::from(end_min) * 60.0);
    let middle = (start + end) / 2.0;
    match half {
        Half::Afternoon => (middle, end),
        _ => (start, middle),
    }
}

fn stop_of(view: &ShipmentView) -> Option<Stop> {
    let (lat, lng) = (view.latitude?, view.longitude?);
    let cases = view.shipment.cartons as f64 / CARTONS_PER_CASE;
    let window = view
        .receiving_window
        .as_deref()
        .and_then(|b| <distnet_proto::common::v1::LocalTimeWindow as prost::Message>::decode(b).ok())
        .and_then(|w| Some((seconds(w.start)?, seconds(w.end)?)))
        .filter(|(start, end)| start < end);
    Some(Stop {
        id: view.shipment.shipment_id.clone(),
        location: Location::LatLng { lat, lng },
        demand: cases,
        service_seconds: STOP_SECONDS + SECONDS_PER_CASE * cases,
        window,
    })
}

impl LogisticsApi {
    pub(super) async fn plan_routes(
        &self,
        caller: Caller,
        message: PlanRoutesRequest,
    ) -> Result<Plan, ServiceError> {
        let mut v = Violations::new();
        v.request_id(&message.request_id);
        let half = Half::try_from(message.half)
            .ok()
            .filter(|h| *h != Half::Unspecified);
        v.check(half.is_some(), "half", "must be MORNING or AFTERNOON");
        v.check(
            (0..=300).contains(&message.time_budget_seconds),
            "time_budget_seconds",
            "must be 1..=300 (0 = 10)",
        );
        let date = parse_date(&message.date, "date");
        if let Err(e) = &date {
            v.add("date", e.message.clone());
        }
        let depot_id = parse_name(&message.depot, "depots", "depot");
        v.into_result()?;
        let (depot_id, date) = (depot_id?, date?);
        let half = half.unwrap_or(Half::Morning);
        caller.require(access::NETWORK_EDITORS)?;
        if !access::manages_depot(&caller, depot_id) {
            return Err(ServiceError::permission_denied(format!(
                "{} is not your depot",
                message.depot
            )));
        }

        let mut conn = self.pool.acquire().await?;
        let depot = crate::store::network::depot(&mut conn, depot_id)
            .await?
            .ok_or_else(|| ServiceError::not_found(message.depot.clone()))?;
        let half_code = half as i16;
        let shipments = store::pending_shipments(&mut conn, depot_id, date, half_code).await?;
        let vehicles = store::available_vehicles(&mut conn, depot_id, date).await?;
        drop(conn);

        let mut unassigned = Vec::new();
        let mut stops = Vec::with_capacity(shipments.len());
        for view in &shipments {
            match stop_of(view) {
                Some(stop) => stops.push(stop),
                None => unassigned.push(UnassignedShipment {
                    shipment: format!("shipments/{}", view.shipment.shipment_id),
                    reason: "NO_LOCATION".into(),
                }),
            }
        }
        let road = RoadModel::default();
        let problem = RoutingProblem {
            depot: Location::LatLng {
                lat: depot.latitude,
                lng: depot.longitude,
            },
            stops,
            vehicles: vehicles
                .iter()
                .map(|v| Vehicle {
                    id: v.vehicle_id.clone(),
                    capacity: f64::from(v.capacity_cases),
                    shift: slot_shift(v.shift_start_min, v.shift_end_min, half),
                    max_trips: 2,
                })
                .collect(),
            travel: Travel::Haversine {
                circuity: road.circuity,
                speed_kmh: road.speed_kmh,
            },
            multi_trip: MultiTripRules::default(),
        };
        let budget = if message.time_budget_seconds == 0 {
            10
        } else {
            message.time_budget_seconds
        };
        let options = SolveOptions {
            time_budget: Duration::from_secs(u64::try_from(budget).unwrap_or(10)),
            seed: message.seed,
            max_generations: None,
            // Leave the other core to request handling.
            threads: 1,
        };
        let started = Instant::now();
        let solved = if problem.stops.is_empty() {
            None
        } else {
            let problem = problem.clone();
            Some(
                tokio::task::spawn_blocking(move || solve(&problem, &options))
                    .await
                    .map_err(ServiceError::internal)?
                    .map_err(|e| ServiceError::failed_precondition("UNPLANNABLE", e.to_string()))?,
            )
        };
        let solve_millis = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);

        let tz: chrono_tz::Tz = depot.time_zone.parse().unwrap_or(chrono_tz::Asia::Shanghai);
        let midnight = tz
            .from_local_datetime(&date.and_time(chrono::NaiveTime::MIN))
            .earliest()
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|| {
                DateTime::<Utc>::from_naive_utc_and_offset(date.and_time(chrono::NaiveTime::MIN), Utc)
            });
        let at = |s: f64| timestamp(midnight + chrono::Duration::milliseconds((s * 1000.0).round() as i64));
        let by_id: HashMap<&str, &ShipmentView> = shipments
            .iter()
            .map(|v| (v.shipment.shipment_id.as_str(), v))
            .collect();
        let capacity: HashMap<&str, f64> = vehicles
            .iter()
            .map(|v| (v.vehicle_id.as_str(), f64::from(v.capacity_cases)))
            .collect();
        let mut routes = Vec::new();
        if let Some(solved) = &solved {
            for route in solved.routes.iter().filter(|r| !r.stops.is_empty()) {
                let cap = capacity
                    .get(route.vehicle_id.as_str())
                    .copied()
                    .unwrap_or(1.0)
                    .max(1.0);
                routes.push(WireRoute {
                    vehicle: format!("vehicles/{}", route.vehicle_id),
                    driver: String::new(),
                    stops: route
                        .stops
                        .iter()
                        .map(|s| {
                            let view = by_id.get(s.stop_id.as_str());
                            WireStop {
                                shipment: format!("shipments/{}", s.stop_id),
                                customer: view
                                    .map(|v| format!("customers/{}", v.shipment.customer_id))
                                    .unwrap_or_default(),
                                customer_display_name: view
                                    .and_then(|v| v.display_name.clone())
                                    .unwrap_or_default(),
                                location: view.and_then(|v| match (v.latitude, v.longitude) {
                                    (Some(latitude), Some(longitude)) => Some(LatLng { latitude, longitude }),
                                    _ => None,
                                }),
                                trip: i32::from(s.trip),
                                eta: Some(at(s.arrival_s)),
                                service_start: Some(at(s.service_start_s)),
                                departure: Some(at(s.departure_s)),
                                cases: view.map_or(0.0, |v| v.shipment.cartons as f64 / CARTONS_PER_CASE),
                            }
                        })
                        .collect(),
                    start_time: Some(at(route.start_s)),
                    end_time: Some(at(route.end_s)),
                    distance_km: route.distance_m / 1000.0,
                    duration_seconds: route.duration_s.round() as i64,
                    load_cases: route.load,
                    trips: i32::from(route.trips),
                    utilization: route.load / (cap * f64::from(route.trips.max(1))),
                });
            }
            unassigned.extend(solved.unassigned.iter().map(|(id, reason)| UnassignedShipment {
                shipment: format!("shipments/{id}"),
                reason: reason.as_str().into(),
            }));
        }
        let used = routes.len();
        let cases: f64 = routes.iter().map(|r| r.load_cases).sum();
        let capacity_used: f64 = routes
            .iter()
            .map(|r| {
                capacity
                    .get(r.vehicle.trim_start_matches("vehicles/"))
                    .copied()
                    .unwrap_or(0.0)
                    * f64::from(r.trips.max(1))
            })
            .sum();
        let now = self.clock.now();
        let id = uuid::Uuid::now_v7().to_string();
        let plan = Plan {
            name: format!("plans/{id}"),
            depot: message.depot.clone(),
            date: message.date.clone(),
            half: half as i32,
            status: PlanStatus::Draft as i32,
            totals: Some(PlanTotals {
                shipments: i32::try_from(shipments.len()).unwrap_or(i32::MAX),
                unassigned: i32::try_from(unassigned.len()).unwrap_or(i32::MAX),
                vehicles_available: i32::try_from(vehicles.len()).unwrap_or(i32::MAX),
                vehicles_used: i32::try_from(used).unwrap_or(i32::MAX),
                distance_km: routes.iter().map(|r| r.distance_km).sum(),
                cases,
                cases_per_vehicle: if used == 0 { 0.0 } else { cases / used as f64 },
                utilization: if capacity_used > 0.0 {
                    cases / capacity_used
                } else {
                    0.0
                },
            }),
            routes,
            unassigned,
            solve_millis,
            seed: message.seed,
            planned_by: caller.sub.clone(),
            create_time: Some(timestamp(now)),
            publish_time: None,
        };
        let mut tx = self.pool.begin().await?;
        let key =
            match begin_idempotent(&mut tx, &caller, &message.request_id, "PlanRoutes", &message).await? {
                Ok(key) => key,
                Err(replay) => return Ok(replay),
            };
        store::supersede_drafts(&mut tx, depot_id, date, half_code).await?;
        store::insert(
            &mut tx,
            &PlanKey {
                plan_id: &id,
                depot_id,
                date,
                half: half_code,
            },
            &plan,
            now,
        )
        .await?;
        key.complete(&mut tx, &plan).await?;
        tx.commit().await?;
        tracing::info!(plan = %plan.name, solve_millis, routes = used, "routes planned");
        Ok(plan)
    }

    pub(super) async fn get_plan(
        &self,
        caller: Caller,
        message: GetPlanRequest,
    ) -> Result<Plan, ServiceError> {
        let id = plan_id(&message.name)?;
        caller.require(access::NETWORK_EDITORS)?;
        let mut conn = self.pool.acquire().await?;
        match store::plan(&mut conn, id, false).await? {
            Some((plan, depot)) if access::manages_depot(&caller, &depot) => Ok(plan),
            _ => Err(ServiceError::not_found(message.name.clone())),
        }
    }

    pub(super) async fn publish_plan(
        &self,
        caller: Caller,
        message: PublishPlanRequest,
    ) -> Result<Plan, ServiceError> {
        let mut v = Violations::new();
        v.request_id(&message.request_id);
        for (vehicle, driver) in &message.drivers {
            v.check(
                vehicle.starts_with("vehicles/"),
                "drivers",
                "keys are `vehicles/{id}`",
            );
            v.non_empty(driver, &format!("drivers[{vehicle}]"));
            v.text(driver, &format!("drivers[{vehicle}]"), 128);
        }
        v.into_result()?;
        let id = plan_id(&message.name)?;
        caller.require(access::NETWORK_EDITORS)?;
        let mut tx = self.pool.begin().await?;
        let key =
            match begin_idempotent(&mut tx, &caller, &message.request_id, "PublishPlan", &message).await? {
                Ok(key) => key,
                Err(replay) => return Ok(replay),
            };
        let (mut plan, depot) = match store::plan(&mut tx, id, true).await? {
            Some((plan, depot)) if access::manages_depot(&caller, &depot) => (plan, depot),
            _ => return Err(ServiceError::not_found(message.name.clone())),
        };
        if plan.status != PlanStatus::Draft as i32 {
            return Err(ServiceError::failed_precondition(
                "NOT_A_DRAFT",
                format!("{} is {:?}", message.name, PlanStatus::try_from(plan.status)),
            ));
        }
        let mut missing = Vec::new();
        for route in &mut plan.routes {
            match message.drivers.get(&route.vehicle) {
                Some(driver) => route.driver = driver.clone(),
                None => missing.push(route.vehicle.clone()),
            }
        }
        if !missing.is_empty() {
            let mut error = ServiceError::failed_precondition(
                "DRIVER_MISSING",
                "every vehicle the plan uses needs a driver",
            );
            for vehicle in missing {
                error = error.with_precondition("DRIVER_MISSING", vehicle, "no driver assigned");
            }
            return Err(error);
        }
        let now = self.clock.now();
        plan.status = PlanStatus::Published as i32;
        plan.publish_time = Some(timestamp(now));
        store::publish(&mut tx, id, &plan, now).await.map_err(|e| {
            if e.code == tonic::Code::AlreadyExists {
                ServiceError::failed_precondition(
                    "SLOT_ALREADY_PUBLISHED",
                    "the slot already has a published plan",
                )
            } else {
                e
            }
        })?;
        let shipments: Vec<String> = plan
            .routes
            .iter()
            .flat_map(|r| &r.stops)
            .map(|s| s.shipment.trim_start_matches("shipments/").to_string())
            .collect();
        store::mark_planned(&mut tx, &shipments, now).await?;
        key.complete(&mut tx, &plan).await?;
        tx.commit().await?;
        tracing::info!(plan = %plan.name, depot = %depot, "plan published");
        Ok(plan)
    }
}
