//! Delivery execution: the driver's route for the day, what happens at each stop
//! (arrival, delivery with proof and cash, failure — rescheduled to the zone's next
//! run), and the depot's day report.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use distnet_platform::ServiceError;
use distnet_platform::auth::{Caller, Role};
use distnet_platform::validate::{Violations, parse_name};
use distnet_proto::common::v1::Money;
use distnet_proto::events::v1::{DeliveryCompleted, DeliveryFailed};
use distnet_proto::logistics::v1::{
    AssignedRoute, DayReport, FailureReason, GetDayReportRequest, GetMyRouteRequest, Half, MyRoute,
    PlanStatus, PlannedStop, RecordStopEventRequest, RecordStopEventResponse, ShipmentStatus, StopEventKind,
    StopStatus, VehicleDay,
};

use super::plans::started;
use super::{LogisticsApi, begin_idempotent, parse_date};
use crate::domain::access;
use crate::domain::slot::{self, Slot};
use crate::store::delivery::{self as store, StopEventRow};
use crate::store::{self as shipments, CARTONS_PER_CASE, date_text, half_code, network, plans, timestamp};

/// Arrivals within this much of the ETA count as on time.
pub const ON_TIME_TOLERANCE_MINUTES: i64 = 30;
/// Failed attempts after which a shipment waits for a dispatcher instead of the next run.
pub const MAX_ATTEMPTS: i32 = 3;
/// How far ahead of the server a phone's clock may be.
const CLOCK_SKEW_SECONDS: i64 = 300;

fn is_sha256(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

use distnet_platform::wire::from_timestamp as time;

fn money(fen: i64) -> Money {
    Money {
        currency_code: "CNY".into(),
        fen,
    }
}

fn failure_name(reason: i32) -> &'static str {
    match FailureReason::try_from(reason) {
        Ok(FailureReason::Closed) => "CLOSED",
        Ok(FailureReason::Refused) => "REFUSED",
        Ok(FailureReason::Unreachable) => "UNREACHABLE",
        Ok(FailureReason::Damaged) => "DAMAGED",
        _ => "UNSPECIFIED",
    }
}

/// The message-level rules of `RecordStopEvent`; what depends on the stop is checked
/// once it is found.
fn validate_stop_event(
    m: &RecordStopEventRequest,
    now: DateTime<Utc>,
) -> Result<StopEventKind, ServiceError> {
    let mut v = Violations::new();
    v.request_id(&m.request_id);
    if parse_name(&m.shipment, "shipments", "shipment").is_err()
        || uuid::Uuid::parse_str(m.shipment.trim_start_matches("shipments/")).is_err()
    {
        v.add("shipment", "must be `shipments/{id}`");
    }
    let kind = StopEventKind::try_from(m.kind)
        .ok()
        .filter(|k| *k != StopEventKind::Unspecified);
    v.check(
        kind.is_some(),
        "kind",
        "must be ARRIVED, DELIVERED, PARTIAL or FAILED",
    );
    v.known_enum::<FailureReason>(m.failure_reason, "failure_reason");
    let failed = kind == Some(StopEventKind::Failed);
    let handed_over = matches!(kind, Some(StopEventKind::Delivered | StopEventKind::Partial));
    v.check(
        failed == (m.failure_reason != FailureReason::Unspecified as i32),
        "failure_reason",
        "required for FAILED and only for FAILED",
    );
    v.check(
        m.cases_delivered.is_finite() && m.cases_delivered >= 0.0,
        "cases_delivered",
        "must be a number of cases ≥ 0",
    );
    v.check(
        handed_over || m.cases_delivered == 0.0,
        "cases_delivered",
        "only DELIVERED and PARTIAL deliver cases",
    );
    if kind == Some(StopEventKind::Partial) {
        v.check(
            m.cases_delivered > 0.0,
            "cases_delivered",
            "PARTIAL delivers some cases",
        );
    }
    match &m.proof {
        Some(proof) if handed_over => {
            v.non_empty(&proof.recipient_name, "proof.recipient_name");
            v.text(&proof.recipient_name, "proof.recipient_name", 128);
            v.check(
                proof.signature_sha256.is_empty() || is_sha256(&proof.signature_sha256),
                "proof.signature_sha256",
                "must be 64 lower-case hex digits",
            );
            v.check(
                proof.photo_sha256.is_empty() || is_sha256(&proof.photo_sha256),
                "proof.photo_sha256",
                "must be 64 lower-case hex digits",
            );
            v.check(
                !(proof.signature_sha256.is_empty() && proof.photo_sha256.is_empty()),
                "proof",
                "needs a signature or a photo",
            );
            if let Some(at) = &proof.location {
                v.latitude(at.latitude, "proof.location.latitude");
                v.longitude(at.longitude, "proof.location.longitude");
            }
            if let Some(t) = &proof.capture_time {
                v.check(time(t).is_some(), "proof.capture_time", "must be a valid time");
            }
        }
        Some(_) => v.add("proof", "only DELIVERED and PARTIAL carry a proof of delivery"),
        None if handed_over => v.add("proof", "DELIVERED and PARTIAL need a proof of delivery"),
        None => {}
    }
    if let Some(cash) = &m.cash_collected {
        v.check(
            cash.currency_code.is_empty() || cash.currency_code == "CNY",
            "cash_collected.currency_code",
            "must be CNY",
        );
        v.check(cash.fen >= 0, "cash_collected.fen", "must be ≥ 0");
        v.check(
            handed_over || cash.fen == 0,
            "cash_collected",
            "cash is collected on delivery only",
        );
    }
    if let Some(t) = &m.occur_time {
        match time(t) {
            Some(at) => v.check(
                at <= now + chrono::Duration::seconds(CLOCK_SKEW_SECONDS),
                "occur_time",
                "must not be in the future",
            ),
            None => v.add("occur_time", "must be a valid time"),
        }
    }
    v.text(&m.notes, "notes", 1000);
    v.into_result()?;
    kind.ok_or_else(|| ServiceError::invalid_field("kind", "must be set"))
}

impl LogisticsApi {
    pub(super) async fn get_my_route(
        &self,
        caller: Caller,
        message: GetMyRouteRequest,
    ) -> Result<MyRoute, ServiceError> {
        let date = if message.date.is_empty() {
            None
        } else {
            Some(parse_date(&message.date, "date")?)
        };
        caller.require(access::DRIVERS)?;
        let mut conn = self.pool.acquire().await?;
        let found = plans::driver_plans(&mut conn, &caller.sub, date, self.clock.now()).await?;
        let routes = found
            .into_iter()
            .filter_map(|(plan, vehicle)| {
                let vehicle = format!("vehicles/{vehicle}");
                let route = plan
                    .routes
                    .iter()
                    .find(|r| r.vehicle == vehicle && r.driver == caller.sub)?
                    .clone();
                Some(AssignedRoute {
                    plan: plan.name.clone(),
                    depot: plan.depot.clone(),
                    date: plan.date.clone(),
                    half: plan.half,
                    revision: plan.revision,
                    route: Some(route),
                })
            })
            .collect();
        Ok(MyRoute {
            driver: caller.sub.clone(),
            routes,
        })
    }

    pub(super) async fn record_stop_event(
        &self,
        caller: Caller,
        message: RecordStopEventRequest,
    ) -> Result<RecordStopEventResponse, ServiceError> {
        let now = self.clock.now();
        let kind = validate_stop_event(&message, now)?;
        caller.require(access::STOP_RECORDERS)?;
        let shipment_id = message.shipment.trim_start_matches("shipments/").to_string();
        let not_found = || ServiceError::not_found(message.shipment.clone());

        let mut tx = self.pool.begin().await?;
        let key = match begin_idempotent(&mut tx, &caller, &message.request_id, "RecordStopEvent", &message)
            .await?
        {
            Ok(key) => key,
            Err(replay) => return Ok(replay),
        };
        // Plan first, then shipment: the order PublishPlan and ReplanRoutes lock in.
        let seen = shipments::shipment(&mut tx, &shipment_id)
            .await?
            .ok_or_else(not_found)?;
        let Some(plan_id) = seen.shipment.plan_id.clone() else {
            return Err(if caller.role == Role::Driver {
                not_found()
            } else {
                ServiceError::failed_precondition(
                    "NOT_ON_A_ROUTE",
                    format!("{} is on no published route", message.shipment),
                )
            });
        };
        let (mut plan, depot_id) = plans::plan(&mut tx, &plan_id, true)
            .await?
            .ok_or_else(not_found)?;
        let view = shipments::shipment_for_update(&mut tx, &shipment_id)
            .await?
            .filter(|v| v.shipment.plan_id.as_deref() == Some(plan_id.as_str()))
            .ok_or_else(|| {
                ServiceError::new(
                    tonic::Code::Aborted,
                    "PLAN_CHANGED",
                    "the shipment moved; try again",
                )
                .with_retry_after(std::time::Duration::from_millis(100))
            })?;
        let Some((r, i)) = plan.routes.iter().enumerate().find_map(|(r, route)| {
            route
                .stops
                .iter()
                .position(|s| s.shipment == message.shipment)
                .map(|i| (r, i))
        }) else {
            return Err(not_found());
        };
        let allowed = match caller.role {
            Role::Driver => plan.routes[r].driver == caller.sub,
            _ => access::manages_depot(&caller, &depot_id),
        };
        if !allowed {
            return Err(not_found());
        }
        if plan.status != PlanStatus::Published as i32 {
            return Err(ServiceError::failed_precondition(
                "PLAN_NOT_PUBLISHED",
                format!("{} is not published", plan.name),
            ));
        }
        let vehicle_id = plan.routes[r].vehicle.trim_start_matches("vehicles/").to_string();
        let this_slot = Slot {
            date: parse_date(&plan.date, "date")?,
            half: network::half_from_wire(plan.half).unwrap_or(slot::Half::Morning),
        };
        let stop = &mut plan.routes[r].stops[i];
        if view.shipment.status == ShipmentStatus::Cancelled as i16 {
            return Err(ServiceError::failed_precondition(
                "SHIPMENT_CANCELLED",
                "the order was cancelled: do not deliver",
            ));
        }
        if started(stop) && stop.status != StopStatus::Arrived as i32 {
            return Err(ServiceError::failed_precondition(
                "STOP_COMPLETED",
                format!(
                    "{} is already {:?}",
                    message.shipment,
                    StopStatus::try_from(stop.status)
                ),
            ));
        }
        if kind == StopEventKind::Arrived && stop.status == StopStatus::Arrived as i32 {
            return Err(ServiceError::failed_precondition(
                "ALREADY_ARRIVED",
                "the arrival is already recorded",
            ));
        }
        let occurred = message.occur_time.as_ref().and_then(time).unwrap_or(now);
        let cartons = view.shipment.cartons;
        let delivered_cartons = match kind {
            StopEventKind::Delivered if message.cases_delivered == 0.0 => cartons,
            StopEventKind::Delivered | StopEventKind::Partial => {
                (message.cases_delivered * CARTONS_PER_CASE).round() as i64
            }
            _ => 0,
        };
        let mut v = Violations::new();
        match kind {
            StopEventKind::Delivered => v.check(
                delivered_cartons == cartons,
                "cases_delivered",
                "DELIVERED hands over all the stop's cases: record fewer as PARTIAL",
            ),
            StopEventKind::Partial => v.check(
                (1..cartons).contains(&delivered_cartons),
                "cases_delivered",
                "PARTIAL hands over more than none and fewer than all the stop's cases",
            ),
            _ => {}
        }
        let cash = message.cash_collected.as_ref().map_or(0, |m| m.fen);
        v.check(
            cash <= view.shipment.value_fen,
            "cash_collected.fen",
            "must not exceed the order's value",
        );
        v.into_result()?;

        let proof = message.proof.clone().unwrap_or_default();
        store::insert_stop_event(
            &mut tx,
            &StopEventRow {
                plan_id: &plan_id,
                shipment_id: &shipment_id,
                vehicle_id: &vehicle_id,
                kind: i16::try_from(message.kind).unwrap_or(0),
                failure_reason: i16::try_from(message.failure_reason).unwrap_or(0),
                cartons_delivered: delivered_cartons,
                cash_fen: cash,
                recipient_name: &proof.recipient_name,
                signature_sha256: &proof.signature_sha256,
                photo_sha256: &proof.photo_sha256,
                location: proof.location.map(|l| (l.latitude, l.longitude)),
                notes: &message.notes,
                recorded_by: &caller.sub,
                occurred_at: occurred,
                recorded_at: now,
            },
        )
        .await?;

        let order = format!("orders/{}", view.shipment.order_id);
        let customer = format!("customers/{}", view.shipment.customer_id);
        let mut rescheduled = None;
        match kind {
            StopEventKind::Arrived => {
                stop.status = StopStatus::Arrived as i32;
                stop.arrive_time = Some(timestamp(occurred));
            }
            StopEventKind::Delivered | StopEventKind::Partial => {
                stop.status = if kind == StopEventKind::Delivered {
                    StopStatus::Delivered as i32
                } else {
                    StopStatus::Partial as i32
                };
                stop.complete_time = Some(timestamp(occurred));
                stop.cases_delivered = delivered_cartons as f64 / CARTONS_PER_CASE;
                stop.cash_collected = Some(money(cash));
                store::delivered(&mut tx, &shipment_id, delivered_cartons, now).await?;
                self.outbox
                    .publish(
                        &mut tx,
                        &order,
                        &DeliveryCompleted {
                            order: order.clone(),
                            customer: customer.clone(),
                            shipment: message.shipment.clone(),
                            cartons_delivered: delivered_cartons,
                            cash_collected: Some(money(cash)),
                            partial: kind == StopEventKind::Partial,
                            delivered_time: Some(timestamp(occurred)),
                        },
                    )
                    .await?;
            }
            StopEventKind::Failed | StopEventKind::Unspecified => {
                stop.status = StopStatus::Failed as i32;
                stop.complete_time = Some(timestamp(occurred));
                stop.failure_reason = message.failure_reason;
                if view.shipment.attempts + 1 < MAX_ATTEMPTS {
                    rescheduled = next_slot(&mut tx, &view.shipment, this_slot).await?;
                }
                store::failed(
                    &mut tx,
                    &shipment_id,
                    rescheduled.map(|s: Slot| (s.date, half_code(s.half))),
                    now,
                )
                .await?;
                self.outbox
                    .publish(
                        &mut tx,
                        &order,
                        &DeliveryFailed {
                            order: order.clone(),
                            customer: customer.clone(),
                            shipment: message.shipment.clone(),
                            reason: failure_name(message.failure_reason).into(),
                            failed_time: Some(timestamp(occurred)),
                            rescheduled_date: rescheduled.map(|s| date_text(s.date)).unwrap_or_default(),
                            rescheduled_half: rescheduled
                                .map(|s| match s.half {
                                    slot::Half::Morning => "MORNING",
                                    slot::Half::Afternoon => "AFTERNOON",
                                })
                                .unwrap_or_default()
                                .into(),
                        },
                    )
                    .await?;
            }
        }
        let stop = stop.clone();
        plans::save(&mut tx, &plan_id, &plan).await?;
        let after = shipments::shipment(&mut tx, &shipment_id)
            .await?
            .ok_or_else(not_found)?;
        let response = RecordStopEventResponse {
            stop: Some(stop),
            shipment: Some(after.to_wire()),
            rescheduled_date: rescheduled.map(|s| date_text(s.date)).unwrap_or_default(),
            rescheduled_half: rescheduled.map_or(Half::Unspecified as i32, |s| i32::from(half_code(s.half))),
        };
        key.complete(&mut tx, &response).await?;
        tx.commit().await?;
        tracing::info!(shipment = %message.shipment, kind = ?kind, "stop event recorded");
        Ok(response)
    }

    pub(super) async fn get_day_report(
        &self,
        caller: Caller,
        message: GetDayReportRequest,
    ) -> Result<DayReport, ServiceError> {
        let depot_id = parse_name(&message.depot, "depots", "depot");
        let date = parse_date(&message.date, "date");
        let mut v = Violations::new();
        if let Err(e) = &depot_id {
            v.add("depot", e.message.clone());
        }
        if let Err(e) = &date {
            v.add("date", e.message.clone());
        }
        v.into_result()?;
        let (depot_id, date) = (depot_id?, date?);
        caller.require(access::REPORT_READERS)?;
        access::ensure_depot(&caller, depot_id)?;
        let mut conn = self.pool.acquire().await?;
        network::depot(&mut conn, depot_id)
            .await?
            .ok_or_else(|| ServiceError::not_found(message.depot.clone()))?;
        let published = plans::published_on(&mut conn, depot_id, date).await?;
        Ok(day_report(&message, &published))
    }
}

/// The zone's next run after the failed one, on the depot's calendar.
async fn next_slot(
    tx: &mut sqlx::PgConnection,
    shipment: &shipments::ShipmentRow,
    failed: Slot,
) -> Result<Option<Slot>, ServiceError> {
    let (Some(zone_id), Some(depot_id)) = (&shipment.zone_id, &shipment.depot_id) else {
        return Ok(None);
    };
    let (Some(zone), Some(depot)) = (
        network::zone(tx, zone_id).await?,
        network::depot(tx, depot_id).await?,
    ) else {
        return Ok(None);
    };
    Ok(slot::next_slot(failed, &zone.cycle(), &depot.calendar()).ok())
}

/// The day's figures from its published plans (see `DayReport` for each one).
fn day_report(message: &GetDayReportRequest, published: &[distnet_proto::logistics::v1::Plan]) -> DayReport {
    let tolerance = ON_TIME_TOLERANCE_MINUTES * 60;
    let mut report = DayReport {
        depot: message.depot.clone(),
        date: message.date.clone(),
        plans: published.iter().map(|p| p.name.clone()).collect(),
        on_time_tolerance_minutes: i32::try_from(ON_TIME_TOLERANCE_MINUTES).unwrap_or(30),
        ..DayReport::default()
    };
    let mut vehicles: BTreeMap<String, VehicleDay> = BTreeMap::new();
    let mut failures: BTreeMap<String, i32> = BTreeMap::new();
    let (mut arrived, mut on_time, mut cash) = (0i32, 0i32, 0i64);
    for route in published.iter().flat_map(|p| &p.routes) {
        let day = vehicles
            .entry(route.vehicle.clone())
            .or_insert_with(|| VehicleDay {
                vehicle: route.vehicle.clone(),
                driver: route.driver.clone(),
                ..VehicleDay::default()
            });
        day.distance_km += route.distance_km;
        for stop in &route.stops {
            day.stops += 1;
            day.cases_planned += stop.cases;
            day.cases_delivered += stop.cases_delivered;
            report.stops += 1;
            report.cases_planned += stop.cases;
            report.cases_delivered += stop.cases_delivered;
            cash += stop.cash_collected.as_ref().map_or(0, |m| m.fen);
            match StopStatus::try_from(stop.status) {
                Ok(StopStatus::Delivered) => {
                    report.delivered += 1;
                    day.delivered += 1;
                }
                Ok(StopStatus::Partial) => {
                    report.delivered += 1;
                    report.partial += 1;
                    day.delivered += 1;
                }
                Ok(StopStatus::Failed) => {
                    report.failed += 1;
                    day.failed += 1;
                    *failures
                        .entry(failure_name(stop.failure_reason).into())
                        .or_default() += 1;
                }
                _ => report.pending += 1,
            }
            if let Some(punctual) = punctual(stop, tolerance) {
                arrived += 1;
                day.arrived += 1;
                if punctual {
                    on_time += 1;
                    day.on_time += 1;
                }
            }
        }
    }
    report.vehicles_used = i32::try_from(vehicles.len()).unwrap_or(i32::MAX);
    report.distance_km = vehicles.values().map(|v| v.distance_km).sum();
    report.cases_per_vehicle = if vehicles.is_empty() {
        0.0
    } else {
        report.cases_delivered / vehicles.len() as f64
    };
    report.delivered_rate = ratio(report.delivered, report.stops);
    report.on_time_rate = ratio(on_time, arrived);
    report.cash_collected = Some(money(cash));
    report.failures_by_reason = failures.into_iter().collect();
    report.vehicles = vehicles.into_values().collect();
    report
}

fn ratio(part: i32, whole: i32) -> f64 {
    if whole == 0 {
        0.0
    } else {
        f64::from(part) / f64::from(whole)
    }
}

/// Whether the stop was reached within `tolerance` seconds of its ETA; `None` before
/// anyone got there. The arrival is the ARRIVED event, else the completion.
fn punctual(stop: &PlannedStop, tolerance: i64) -> Option<bool> {
    let reached = stop.arrive_time.as_ref().or(stop.complete_time.as_ref())?;
    let eta = stop.eta.as_ref()?;
    Some((reached.seconds - eta.seconds).abs() <= tolerance)
}

#[cfg(test)]
mod tests {
    use super::*;
    use distnet_proto::logistics::v1::{Plan, Route};

    fn at(seconds: i64) -> Option<prost_types::Timestamp> {
        Some(prost_types::Timestamp { seconds, nanos: 0 })
    }

    fn stop(status: StopStatus, eta: i64, arrived: Option<i64>, cases: f64) -> PlannedStop {
        PlannedStop {
            status: status as i32,
            eta: at(eta),
            arrive_time: arrived.and_then(at),
            cases,
            cases_delivered: if matches!(status, StopStatus::Delivered) {
                cases
            } else {
                0.0
            },
            ..PlannedStop::default()
        }
    }

    #[test]
    fn the_day_report_counts_punctuality_delivery_and_failures() {
        let mut failed = stop(StopStatus::Failed, 10_000, Some(10_000 + 3600), 1.0);
        failed.failure_reason = FailureReason::Closed as i32;
        let plan = Plan {
            name: "plans/p".into(),
            routes: vec![
                Route {
                    vehicle: "vehicles/v1".into(),
                    distance_km: 12.5,
                    stops: vec![
                        stop(StopStatus::Delivered, 1_000, Some(1_000 + 29 * 60), 2.0),
                        stop(StopStatus::Delivered, 5_000, Some(5_000 - 31 * 60), 1.0),
                        failed,
                    ],
                    ..Route::default()
                },
                Route {
                    vehicle: "vehicles/v2".into(),
                    distance_km: 7.5,
                    stops: vec![stop(StopStatus::Pending, 2_000, None, 3.0)],
                    ..Route::default()
                },
            ],
            ..Plan::default()
        };
        let report = day_report(
            &GetDayReportRequest {
                depot: "depots/d".into(),
                date: "2026-11-24".into(),
            },
            &[plan],
        );
        assert_eq!(
            (report.stops, report.delivered, report.failed, report.pending),
            (4, 2, 1, 1)
        );
        assert!((report.delivered_rate - 0.5).abs() < 1e-9);
        // 29 min late is on time; 31 min early and an hour late are not.
        assert!((report.on_time_rate - 1.0 / 3.0).abs() < 1e-9);
        assert_eq!(report.failures_by_reason.get("CLOSED"), Some(&1));
        assert_eq!(report.vehicles_used, 2);
        assert!((report.distance_km - 20.0).abs() < 1e-9);
        assert!((report.cases_delivered - 3.0).abs() < 1e-9);
        assert!((report.cases_per_vehicle - 1.5).abs() < 1e-9);
    }

    #[test]
    fn proof_hashes_are_lower_case_sha256() {
        assert!(is_sha256(&"ab".repeat(32)));
        assert!(!is_sha256(&"AB".repeat(32)));
        assert!(!is_sha256("abc"));
    }
}
