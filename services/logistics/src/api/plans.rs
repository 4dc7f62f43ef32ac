//! Route planning for one depot's slot, on `vrp-core` (DESIGN.md "Routing"), the
//! publication that locks a plan and assigns its drivers, and re-planning a published
//! plan around the stops already under way.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, TimeZone as _, Utc};
use distnet_platform::ServiceError;
use distnet_platform::auth::Caller;
use distnet_platform::validate::{Violations, parse_name};
use distnet_proto::common::v1::LocalTimeWindow;
use distnet_proto::logistics::v1::{
    GetPlanRequest, Half, Plan, PlanRoutesRequest, PlanStatus, PlanTotals, PlannedStop as WireStop,
    PublishPlanRequest, ReplanRoutesRequest, Route as WireRoute, ShipmentStatus, StopStatus,
    UnassignedShipment,
};
use prost::Message as _;
use tonic::Code;

use super::{LogisticsApi, begin_idempotent, parse_date};
use crate::domain::access;
use crate::domain::dispatch::{Delivery, Van};
use crate::domain::routing::{SolveOptions, solve};
use crate::domain::slot;
use crate::store::network::{DepotRow, VehicleRow, half_from_wire};
use crate::store::plans::{self as store, PlanKey};
use crate::store::{ShipmentView, timestamp};

pub(super) fn plan_id(name: &str) -> Result<&str, ServiceError> {
    name.strip_prefix("plans/")
        .filter(|id| uuid::Uuid::parse_str(id).is_ok())
        .ok_or_else(|| ServiceError::invalid_field("name", "must be `plans/{id}`"))
}

/// Seconds after local midnight of a `TimeOfDay`.
fn seconds(t: Option<distnet_proto::common::v1::TimeOfDay>) -> Option<f64> {
    t.map(|t| f64::from(t.hours * 3600 + t.minutes * 60))
}

fn window_of(view: &ShipmentView) -> Option<LocalTimeWindow> {
    view.receiving_window
        .as_deref()
        .and_then(|b| LocalTimeWindow::decode(b).ok())
}

fn delivery_of(view: &ShipmentView) -> Option<Delivery> {
    Some(Delivery {
        id: view.shipment.shipment_id.clone(),
        at: (view.latitude?, view.longitude?),
        cartons: view.shipment.cartons,
        window: window_of(view).and_then(|w| Some((seconds(w.start)?, seconds(w.end)?))),
    })
}

/// UTC of local midnight starting `date` at the depot.
pub(super) fn local_midnight(depot: &DepotRow, date: NaiveDate) -> DateTime<Utc> {
    let tz: chrono_tz::Tz = depot.time_zone.parse().unwrap_or(chrono_tz::Asia::Shanghai);
    tz.from_local_datetime(&date.and_time(chrono::NaiveTime::MIN))
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| {
            DateTime::<Utc>::from_naive_utc_and_offset(date.and_time(chrono::NaiveTime::MIN), Utc)
        })
}

/// Routes and unassigned shipments for some of a slot's shipments.
struct Solved {
    routes: Vec<WireRoute>,
    unassigned: Vec<UnassignedShipment>,
    solve_millis: i64,
}

/// What a slot is planned with.
struct SlotInput<'a> {
    depot: &'a DepotRow,
    date: NaiveDate,
    half: Half,
    /// Vehicles may not leave before this (seconds after local midnight).
    not_before_s: f64,
}

fn budget(seconds: i32) -> Duration {
    Duration::from_secs(u64::try_from(if seconds == 0 { 10 } else { seconds }).unwrap_or(10))
}

/// Plans `shipments` over `vehicles` with vrp-core on the blocking pool.
async fn solve_slot(
    input: &SlotInput<'_>,
    shipments: &[&ShipmentView],
    vehicles: &[&VehicleRow],
    time_budget: Duration,
    seed: u64,
) -> Result<Solved, ServiceError> {
    let mut unassigned = Vec::new();
    let mut deliveries = Vec::with_capacity(shipments.len());
    for view in shipments {
        match delivery_of(view) {
            Some(delivery) => deliveries.push(delivery),
            None => unassigned.push(UnassignedShipment {
                shipment: format!("shipments/{}", view.shipment.shipment_id),
                reason: "NO_LOCATION".into(),
            }),
        }
    }
    let vans: Vec<Van> = vehicles
        .iter()
        .map(|v| Van {
            id: v.vehicle_id.clone(),
            capacity_cases: v.capacity_cases,
            shift_start_min: v.shift_start_min,
            shift_end_min: v.shift_end_min,
        })
        .collect();
    let half = half_from_wire(input.half as i32).unwrap_or(slot::Half::Morning);
    let problem = input.depot.delivery_model().problem(
        (input.depot.latitude, input.depot.longitude),
        &deliveries,
        &vans,
        half,
        input.not_before_s,
    );
    let options = SolveOptions {
        time_budget,
        seed,
        max_generations: None,
        // Leave the other core to request handling.
        threads: 1,
    };
    let started = Instant::now();
    let solved = if problem.stops.is_empty() {
        None
    } else if problem.vehicles.is_empty() {
        unassigned.extend(problem.stops.iter().map(|s| UnassignedShipment {
            shipment: format!("shipments/{}", s.id),
            reason: "CAPACITY".into(),
        }));
        None
    } else {
        Some(
            tokio::task::spawn_blocking(move || solve(&problem, &options))
                .await
                .map_err(ServiceError::internal)?
                .map_err(|e| ServiceError::failed_precondition("UNPLANNABLE", e.to_string()))?,
        )
    };
    if solved.is_some() {
        distnet_platform::metrics::plan_solved(&input.depot.depot_id, started.elapsed());
    }
    let solve_millis = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);

    let midnight = local_midnight(input.depot, input.date);
    let at = |s: f64| timestamp(midnight + chrono::Duration::milliseconds((s * 1000.0).round() as i64));
    let by_id: HashMap<&str, &ShipmentView> = shipments
        .iter()
        .map(|v| (v.shipment.shipment_id.as_str(), *v))
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
                    .filter_map(|s| {
                        let view = by_id.get(s.stop_id.as_str())?;
                        let mut stop = wire_stop(view);
                        stop.trip = i32::from(s.trip);
                        stop.eta = Some(at(s.arrival_s));
                        stop.service_start = Some(at(s.service_start_s));
                        stop.departure = Some(at(s.departure_s));
                        Some(stop)
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
    Ok(Solved {
        routes,
        unassigned,
        solve_millis,
    })
}

/// A stop as the driver sees it, before the solver times it.
fn wire_stop(view: &ShipmentView) -> WireStop {
    let shipment = view.to_wire();
    WireStop {
        shipment: shipment.name,
        customer: shipment.customer,
        customer_display_name: shipment.customer_display_name,
        location: shipment.location,
        cases: shipment.cases,
        address: shipment.address,
        receiving_window: shipment.receiving_window,
        status: StopStatus::Pending as i32,
        ..WireStop::default()
    }
}

fn totals(routes: &[WireRoute], shipments: usize, unassigned: usize, vehicles: &[VehicleRow]) -> PlanTotals {
    let capacity: HashMap<String, f64> = vehicles
        .iter()
        .map(|v| (format!("vehicles/{}", v.vehicle_id), f64::from(v.capacity_cases)))
        .collect();
    let used = routes.len();
    let cases: f64 = routes.iter().map(|r| r.load_cases).sum();
    let capacity_used: f64 = routes
        .iter()
        .map(|r| capacity.get(&r.vehicle).copied().unwrap_or(0.0) * f64::from(r.trips.max(1)))
        .sum();
    let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
    PlanTotals {
        shipments: count(shipments),
        unassigned: count(unassigned),
        vehicles_available: count(vehicles.len()),
        vehicles_used: count(used),
        distance_km: routes.iter().map(|r| r.distance_km).sum(),
        cases,
        cases_per_vehicle: if used == 0 { 0.0 } else { cases / used as f64 },
        utilization: if capacity_used > 0.0 {
            cases / capacity_used
        } else {
            0.0
        },
    }
}

fn validate_drivers(v: &mut Violations, drivers: &HashMap<String, String>) {
    for (vehicle, driver) in drivers {
        v.check(
            vehicle.starts_with("vehicles/"),
            "drivers",
            "keys are `vehicles/{id}`",
        );
        v.non_empty(driver, &format!("drivers[{vehicle}]"));
        v.text(driver, &format!("drivers[{vehicle}]"), 128);
    }
}

/// Every route gets its driver: the one it had, else the one given; refuses naming
/// the vehicles left without one.
fn assign_drivers(
    routes: &mut [WireRoute],
    previous: &HashMap<String, String>,
    given: &HashMap<String, String>,
) -> Result<(), ServiceError> {
    let mut missing = Vec::new();
    for route in routes.iter_mut() {
        match given.get(&route.vehicle).or_else(|| previous.get(&route.vehicle)) {
            Some(driver) => route.driver = driver.clone(),
            None => missing.push(route.vehicle.clone()),
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let mut error =
        ServiceError::failed_precondition("DRIVER_MISSING", "every vehicle the plan uses needs a driver");
    for vehicle in missing {
        error = error.with_precondition("DRIVER_MISSING", vehicle, "no driver assigned");
    }
    Err(error)
}

/// Whether a driver has recorded anything at the stop.
pub(super) fn started(stop: &WireStop) -> bool {
    stop.status > StopStatus::Pending as i32
}

fn shipment_id(stop: &WireStop) -> &str {
    stop.shipment.trim_start_matches("shipments/")
}

/// The shipments of the plan's stops nobody has reached yet.
fn pending_shipments(plan: &Plan) -> Vec<String> {
    plan.routes
        .iter()
        .flat_map(|r| &r.stops)
        .filter(|s| !started(s))
        .map(|s| shipment_id(s).to_string())
        .collect()
}

/// A route is under way once its vehicle has left (its start time has passed) or a
/// stop on it has an event: its stops stay where they are.
fn under_way(route: &WireRoute, now: &prost_types::Timestamp) -> bool {
    let left = route
        .start_time
        .as_ref()
        .is_some_and(|t| (t.seconds, t.nanos) <= (now.seconds, now.nanos));
    left || route.stops.iter().any(started)
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
        access::ensure_depot(&caller, depot_id)?;

        let mut conn = self.pool.acquire().await?;
        let depot = crate::store::network::depot(&mut conn, depot_id)
            .await?
            .ok_or_else(|| ServiceError::not_found(message.depot.clone()))?;
        let half_code = half as i16;
        let shipments = store::pending_shipments(&mut conn, depot_id, date, half_code).await?;
        let vehicles = store::available_vehicles(&mut conn, depot_id, date).await?;
        drop(conn);

        let input = SlotInput {
            depot: &depot,
            date,
            half,
            not_before_s: f64::NEG_INFINITY,
        };
        let solved = solve_slot(
            &input,
            &shipments.iter().collect::<Vec<_>>(),
            &vehicles.iter().collect::<Vec<_>>(),
            budget(message.time_budget_seconds),
            message.seed,
        )
        .await?;
        let now = self.clock.now();
        let id = uuid::Uuid::now_v7().to_string();
        let plan = Plan {
            name: format!("plans/{id}"),
            depot: message.depot.clone(),
            date: message.date.clone(),
            half: half as i32,
            status: PlanStatus::Draft as i32,
            totals: Some(totals(
                &solved.routes,
                shipments.len(),
                solved.unassigned.len(),
                &vehicles,
            )),
            routes: solved.routes,
            unassigned: solved.unassigned,
            solve_millis: solved.solve_millis,
            seed: message.seed,
            planned_by: caller.sub.clone(),
            create_time: Some(timestamp(now)),
            publish_time: None,
            revision: 0,
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
        tracing::info!(plan = %plan.name, solve_millis = plan.solve_millis, routes = plan.routes.len(), "routes planned");
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
        validate_drivers(&mut v, &message.drivers);
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
        assign_drivers(&mut plan.routes, &HashMap::new(), &message.drivers)?;
        let now = self.clock.now();
        plan.status = PlanStatus::Published as i32;
        plan.publish_time = Some(timestamp(now));
        plan.revision = 1;
        store::publish(&mut tx, id, &plan, now).await.map_err(|e| {
            if e.code == Code::AlreadyExists {
                ServiceError::failed_precondition(
                    "SLOT_ALREADY_PUBLISHED",
                    "the slot already has a published plan",
                )
            } else {
                e
            }
        })?;
        store::mark_planned(&mut tx, id, &pending_shipments(&plan), now).await?;
        store::set_route_drivers(&mut tx, id, &plan).await?;
        key.complete(&mut tx, &plan).await?;
        tx.commit().await?;
        tracing::info!(plan = %plan.name, depot = %depot, "plan published");
        Ok(plan)
    }

    /// Re-plans a published plan: routes under way keep their stops (less the
    /// cancelled ones still ahead); every other pending stop, and the slot's shipments
    /// that arrived after publication, are planned afresh over the vehicles not yet
    /// out, leaving no earlier than now.
    pub(super) async fn replan_routes(
        &self,
        caller: Caller,
        message: ReplanRoutesRequest,
    ) -> Result<Plan, ServiceError> {
        let mut v = Violations::new();
        v.request_id(&message.request_id);
        v.check(
            (0..=300).contains(&message.time_budget_seconds),
            "time_budget_seconds",
            "must be 1..=300 (0 = 10)",
        );
        validate_drivers(&mut v, &message.drivers);
        v.into_result()?;
        let id = plan_id(&message.name)?;
        caller.require(access::NETWORK_EDITORS)?;

        let mut conn = self.pool.acquire().await?;
        let (old, depot_id) = match store::plan(&mut conn, id, false).await? {
            Some((plan, depot)) if access::manages_depot(&caller, &depot) => (plan, depot),
            _ => return Err(ServiceError::not_found(message.name.clone())),
        };
        if old.status != PlanStatus::Published as i32 {
            return Err(ServiceError::failed_precondition(
                "NOT_PUBLISHED",
                format!("{} is not published: plan the slot again instead", message.name),
            ));
        }
        let date = parse_date(&old.date, "date")?;
        let half = Half::try_from(old.half).unwrap_or(Half::Morning);
        let depot = crate::store::network::depot(&mut conn, &depot_id)
            .await?
            .ok_or_else(|| ServiceError::not_found(old.depot.clone()))?;
        let in_plan: Vec<String> = old
            .routes
            .iter()
            .flat_map(|r| &r.stops)
            .map(|s| shipment_id(s).to_string())
            .collect();
        let shipments = store::slot_shipments(&mut conn, &depot_id, date, half as i16, &in_plan).await?;
        let vehicles = store::available_vehicles(&mut conn, &depot_id, date).await?;
        drop(conn);

        let now = self.clock.now();
        let now_ts = timestamp(now);
        let by_id: HashMap<&str, &ShipmentView> = shipments
            .iter()
            .map(|s| (s.shipment.shipment_id.as_str(), s))
            .collect();
        let cancelled = |stop: &WireStop| {
            by_id
                .get(shipment_id(stop))
                .is_none_or(|s| s.shipment.status == ShipmentStatus::Cancelled as i16)
        };
        // Routes under way stay, less the cancelled stops not yet reached.
        let mut kept: Vec<WireRoute> = Vec::new();
        let mut replanned: Vec<&ShipmentView> = Vec::new();
        let mut busy: HashSet<String> = HashSet::new();
        for route in &old.routes {
            if under_way(route, &now_ts) {
                let mut route = route.clone();
                route.stops.retain(|s| started(s) || !cancelled(s));
                route.load_cases = route.stops.iter().map(|s| s.cases).sum();
                busy.insert(route.vehicle.clone());
                kept.push(route);
            } else {
                replanned.extend(
                    route
                        .stops
                        .iter()
                        .filter(|s| !cancelled(s))
                        .filter_map(|s| by_id.get(shipment_id(s)).copied()),
                );
            }
        }
        // Late: waiting for this slot. (A stop that failed here is pending too, but for
        // its zone's next run.)
        let late: Vec<&ShipmentView> = shipments
            .iter()
            .filter(|s| {
                s.shipment.status == ShipmentStatus::Pending as i16
                    && s.shipment.slot_date == Some(date)
                    && s.shipment.slot_half == half as i16
            })
            .collect();
        replanned.extend(late.iter().copied());
        let free: Vec<&VehicleRow> = vehicles
            .iter()
            .filter(|v| !busy.contains(&format!("vehicles/{}", v.vehicle_id)))
            .collect();
        let not_before_s = (now - local_midnight(&depot, date)).num_milliseconds() as f64 / 1000.0;
        let solved = solve_slot(
            &SlotInput {
                depot: &depot,
                date,
                half,
                not_before_s,
            },
            &replanned,
            &free,
            budget(message.time_budget_seconds),
            message.seed,
        )
        .await?;

        let previous: HashMap<String, String> = old
            .routes
            .iter()
            .map(|r| (r.vehicle.clone(), r.driver.clone()))
            .collect();
        let mut routes = kept;
        routes.extend(solved.routes);
        assign_drivers(&mut routes, &previous, &message.drivers)?;
        let routed: usize = routes.iter().map(|r| r.stops.len()).sum();
        let mut plan = Plan {
            totals: Some(totals(
                &routes,
                routed + solved.unassigned.len(),
                solved.unassigned.len(),
                &vehicles,
            )),
            routes,
            unassigned: solved.unassigned,
            solve_millis: solved.solve_millis,
            seed: message.seed,
            planned_by: caller.sub.clone(),
            ..old.clone()
        };

        let mut tx = self.pool.begin().await?;
        let key =
            match begin_idempotent(&mut tx, &caller, &message.request_id, "ReplanRoutes", &message).await? {
                Ok(key) => key,
                Err(replay) => return Ok(replay),
            };
        // Nothing may have moved while the solver ran: a stop event or another
        // re-plan in between makes this one stale.
        match store::plan(&mut tx, id, true).await? {
            Some((current, _)) if current == old => {}
            _ => {
                return Err(ServiceError::new(
                    Code::Aborted,
                    "PLAN_CHANGED",
                    format!("{} changed while re-planning; try again", message.name),
                )
                .with_retry_after(Duration::from_millis(200)));
            }
        }
        plan.revision = old.revision + 1;
        store::keep_revision(&mut tx, &old, &depot_id, now).await?;
        store::publish(&mut tx, id, &plan, now).await?;
        let now_in: HashSet<String> = pending_shipments(&plan).into_iter().collect();
        let dropped: Vec<String> = pending_shipments(&old)
            .into_iter()
            .filter(|s| !now_in.contains(s))
            .collect();
        store::unplan(&mut tx, id, &dropped, now).await?;
        store::mark_planned(&mut tx, id, &now_in.into_iter().collect::<Vec<_>>(), now).await?;
        store::set_route_drivers(&mut tx, id, &plan).await?;
        key.complete(&mut tx, &plan).await?;
        tx.commit().await?;
        tracing::info!(plan = %plan.name, revision = plan.revision, late = late.len(), "plan re-planned");
        Ok(plan)
    }
}
