//! Delivery execution through real gRPC: a published plan is driven stop by stop by
//! its drivers (arrival, delivery with proof and cash, partial, failure rescheduled to
//! the zone's next run), the events reach allocation's sink, the day report adds it
//! up, and re-planning keeps what is under way.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use distnet_platform::auth::Role;
use distnet_proto::common::v1::{LatLng, Money, TimeOfDay};
use distnet_proto::events::v1::{DeliveryCompleted, DeliveryFailed, EventEnvelope, OrderCancelled};
use distnet_proto::logistics::v1::*;
use support::*;
use tonic::Code;

/// Wednesday 2026-11-25 in Chengdu, the morning run's day.
fn wednesday(hours: u32, minutes: u32) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(&format!("2026-11-25T{hours:02}:{minutes:02}:00+08:00"))
        .expect("time")
        .with_timezone(&Utc)
}

async fn vans(dispatcher: &mut Client, count: usize) -> Vec<Vehicle> {
    let mut vans = Vec::new();
    for i in 0..count {
        let van = dispatcher
            .upsert_vehicle(UpsertVehicleRequest {
                request_id: rid(),
                vehicle: Some(Vehicle {
                    name: format!("vehicles/van-{i:02}"),
                    display_name: format!("川A-{i:05}"),
                    depot: "depots/chengdu".into(),
                    capacity_cases: 45,
                    crew_size: 2,
                    shift_start: Some(TimeOfDay { hours: 8, minutes: 0 }),
                    shift_end: Some(TimeOfDay {
                        hours: 15,
                        minutes: 0,
                    }),
                    ..Vehicle::default()
                }),
            })
            .await
            .expect("vehicle")
            .into_inner();
        vans.push(van);
    }
    vans
}

/// `count` shops in area-01 around the depot, each with one order for Wednesday
/// morning (confirmed Tuesday 10:00); every third shop receives only 09:00–10:30.
async fn shops_with_orders(suite: &Suite, count: usize, cartons: i64) -> Vec<String> {
    let mut orders = Vec::new();
    for i in 0..count {
        let id = format!("shop-{i:02}");
        let at = (DEPOT.0 + 0.008 * (i % 4) as f64, DEPOT.1 + 0.011 * (i / 4) as f64);
        let window = (i % 3 == 0).then_some(((9, 0), (10, 30)));
        suite.create_customer_with(&id, "area-01", at, window).await;
        let order = order(
            &format!("0195b000-0000-7000-8000-0000000002{i:02}"),
            &id,
            "area-01",
            "2026-11-24T10:00:00+08:00",
            cartons,
        );
        suite.confirm(&order).await;
        orders.push(order.name);
    }
    orders
}

/// A draft of Wednesday morning's run, planned within 1 s.
async fn plan_wednesday_morning(dispatcher: &mut Client, seed: u64) -> Plan {
    dispatcher
        .plan_routes(PlanRoutesRequest {
            request_id: rid(),
            depot: "depots/chengdu".into(),
            date: "2026-11-25".into(),
            half: Half::Morning as i32,
            time_budget_seconds: 1,
            seed,
        })
        .await
        .expect("planned")
        .into_inner()
}

async fn plan_and_publish(dispatcher: &mut Client) -> Plan {
    let plan = plan_wednesday_morning(dispatcher, 11).await;
    let drivers = plan
        .routes
        .iter()
        .map(|r| {
            (
                r.vehicle.clone(),
                format!("driver-{}", r.vehicle.trim_start_matches("vehicles/")),
            )
        })
        .collect();
    dispatcher
        .publish_plan(PublishPlanRequest {
            request_id: rid(),
            name: plan.name,
            drivers,
        })
        .await
        .expect("published")
        .into_inner()
}

/// Checks a published plan from its own figures, without the solver: every trip within
/// the van's 45 cases, every route inside the morning half of the 08:00–15:00 shift,
/// stops in time order, and service inside each receiving window.
fn assert_feasible(plan: &Plan) {
    let (shift_start, shift_end) = (wednesday(8, 0).timestamp(), wednesday(11, 30).timestamp());
    for route in &plan.routes {
        let start = route.start_time.expect("start").seconds;
        let end = route.end_time.expect("end").seconds;
        assert!(
            start >= shift_start && end <= shift_end,
            "{route:?} outside the shift"
        );
        let mut per_trip: HashMap<i32, f64> = HashMap::new();
        let mut last = start;
        for stop in &route.stops {
            *per_trip.entry(stop.trip).or_default() += stop.cases;
            let service = stop.service_start.expect("service start").seconds;
            let eta = stop.eta.expect("eta").seconds;
            assert!(eta >= last && service >= eta, "stops in time order: {stop:?}");
            last = stop.departure.expect("departure").seconds;
            if let Some(window) = &stop.receiving_window
                && let (Some(open), Some(close)) = (window.start, window.end)
            {
                let open = wednesday(open.hours as u32, open.minutes as u32).timestamp();
                let close = wednesday(close.hours as u32, close.minutes as u32).timestamp();
                assert!(
                    (open..=close).contains(&service),
                    "{} served outside its window",
                    stop.shipment
                );
            }
        }
        for (trip, cases) in per_trip {
            assert!(
                cases <= 45.0 + 1e-9,
                "trip {trip} of {} carries {cases}",
                route.vehicle
            );
        }
        assert!(last <= end);
    }
}

fn proof() -> ProofOfDelivery {
    ProofOfDelivery {
        recipient_name: "王老板".into(),
        signature_sha256: "5d".repeat(32),
        photo_sha256: String::new(),
        location: Some(LatLng {
            latitude: DEPOT.0,
            longitude: DEPOT.1,
        }),
        capture_time: None,
    }
}

fn cny(fen: i64) -> Option<Money> {
    Some(Money {
        currency_code: "CNY".into(),
        fen,
    })
}

async fn next_event(suite: &mut Suite) -> EventEnvelope {
    suite
        .events
        .next(Duration::from_secs(20))
        .await
        .expect("an event")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_route_is_driven_with_proof_and_a_failure_is_rescheduled() {
    let mut suite = Suite::start().await;
    suite.clock.set(wednesday(6, 0));
    let mut dispatcher = suite.as_role(Role::Dispatcher, "disp-1", Some("chengdu"));
    network(&mut dispatcher).await;
    vans(&mut dispatcher, 2).await;
    shops_with_orders(&suite, 6, 600).await;
    let plan = plan_and_publish(&mut dispatcher).await;
    assert!(plan.unassigned.is_empty(), "{:?}", plan.unassigned);
    assert_feasible(&plan);
    // Six stops on two vans: one van has at least three, however the search split
    // them in its time budget (on a loaded machine it may load one van with five).
    let route = plan
        .routes
        .iter()
        .max_by_key(|r| r.stops.len())
        .cloned()
        .expect("a route");
    assert!(route.stops.len() >= 3, "{route:?}");
    let first = &route.stops[0];
    assert_eq!(first.status, StopStatus::Pending as i32);
    assert!(
        first
            .address
            .as_ref()
            .is_some_and(|a| a.street.starts_with("春熙路"))
    );

    // The driver sees today's route, in order, with addresses and ETAs.
    let mut driver = suite.as_role(Role::Driver, &route.driver, None);
    let mine = driver
        .get_my_route(GetMyRouteRequest::default())
        .await
        .expect("my route")
        .into_inner();
    assert_eq!(mine.routes.len(), 1);
    assert_eq!(mine.routes[0].plan, plan.name);
    assert_eq!(mine.routes[0].route.as_ref(), Some(&route));
    let tomorrow = driver
        .get_my_route(GetMyRouteRequest {
            date: "2026-11-26".into(),
        })
        .await
        .expect("my route")
        .into_inner();
    assert!(tomorrow.routes.is_empty());
    let stranger = suite
        .as_role(Role::Driver, "driver-nobody", None)
        .get_my_route(GetMyRouteRequest::default())
        .await
        .expect("my route")
        .into_inner();
    assert!(stranger.routes.is_empty(), "other drivers' routes never show");
    let denied = dispatcher
        .get_my_route(GetMyRouteRequest::default())
        .await
        .expect_err("drivers only");
    assert_eq!(denied.code(), Code::PermissionDenied);

    // Arrival, then delivery with proof and cash; the phone retries the delivery.
    suite.clock.set(wednesday(8, 40));
    let arrived = driver
        .record_stop_event(RecordStopEventRequest {
            request_id: rid(),
            shipment: first.shipment.clone(),
            kind: StopEventKind::Arrived as i32,
            ..RecordStopEventRequest::default()
        })
        .await
        .expect("arrived")
        .into_inner();
    assert_eq!(arrived.stop.expect("stop").status, StopStatus::Arrived as i32);
    let delivery = RecordStopEventRequest {
        request_id: rid(),
        shipment: first.shipment.clone(),
        kind: StopEventKind::Delivered as i32,
        proof: Some(proof()),
        cash_collected: cny(150_000),
        ..RecordStopEventRequest::default()
    };
    let delivered = driver
        .record_stop_event(delivery.clone())
        .await
        .expect("delivered")
        .into_inner();
    let retried = driver
        .record_stop_event(delivery)
        .await
        .expect("retried")
        .into_inner();
    assert_eq!(retried, delivered, "a retry answers the same");
    let shipment = delivered.shipment.expect("shipment");
    assert_eq!(shipment.status, ShipmentStatus::Delivered as i32);
    assert_eq!(shipment.cartons_delivered, 600);
    let event = next_event(&mut suite).await;
    let completed: DeliveryCompleted = event.payload.expect("payload").to_msg().expect("completed");
    assert_eq!(completed.shipment, first.shipment);
    assert_eq!(completed.order, shipment.order);
    assert_eq!(completed.cartons_delivered, 600);
    assert_eq!(completed.cash_collected, cny(150_000));
    assert!(!completed.partial);

    let again = driver
        .record_stop_event(RecordStopEventRequest {
            request_id: rid(),
            shipment: first.shipment.clone(),
            kind: StopEventKind::Failed as i32,
            failure_reason: FailureReason::Closed as i32,
            ..RecordStopEventRequest::default()
        })
        .await
        .expect_err("a completed stop stays completed");
    assert_eq!(again.code(), Code::FailedPrecondition);

    // Bad input is refused field by field, before anything changes.
    let second = &route.stops[1];
    for (bad, field) in [
        (
            RecordStopEventRequest {
                kind: StopEventKind::Delivered as i32,
                ..RecordStopEventRequest::default()
            },
            "proof",
        ),
        (
            RecordStopEventRequest {
                kind: StopEventKind::Failed as i32,
                ..RecordStopEventRequest::default()
            },
            "failure_reason",
        ),
        (
            RecordStopEventRequest {
                kind: StopEventKind::Delivered as i32,
                proof: Some(ProofOfDelivery {
                    signature_sha256: "not-a-hash".into(),
                    ..proof()
                }),
                ..RecordStopEventRequest::default()
            },
            "proof.signature_sha256",
        ),
        (
            RecordStopEventRequest {
                kind: StopEventKind::Delivered as i32,
                proof: Some(proof()),
                cash_collected: cny(600 * 25_000 + 1),
                ..RecordStopEventRequest::default()
            },
            "cash_collected.fen",
        ),
        (
            RecordStopEventRequest {
                kind: StopEventKind::Partial as i32,
                proof: Some(proof()),
                cases_delivered: 12.0,
                ..RecordStopEventRequest::default()
            },
            "cases_delivered",
        ),
    ] {
        let refused = driver
            .record_stop_event(RecordStopEventRequest {
                request_id: rid(),
                shipment: second.shipment.clone(),
                ..bad
            })
            .await
            .expect_err("invalid");
        assert_eq!(refused.code(), Code::InvalidArgument, "{field}: {refused:?}");
        assert!(
            format!("{:?}", refused.details()).contains(field)
                || refused.message().contains(field)
                || tonic_types::StatusExt::get_details_bad_request(&refused)
                    .is_some_and(|b| b.field_violations.iter().any(|v| v.field == field)),
            "{field}: {refused:?}"
        );
    }

    // Another van's driver cannot touch this route; nor can a retailer.
    let other = suite.as_role(Role::Driver, "driver-elsewhere", None);
    for mut caller in [other, suite.as_role(Role::Retailer, "shop-01", None)] {
        let refused = caller
            .record_stop_event(RecordStopEventRequest {
                request_id: rid(),
                shipment: second.shipment.clone(),
                kind: StopEventKind::Arrived as i32,
                ..RecordStopEventRequest::default()
            })
            .await
            .expect_err("not theirs");
        assert!(
            matches!(refused.code(), Code::NotFound | Code::PermissionDenied),
            "{refused:?}"
        );
    }

    // Half the cases handed over: partial, with its proof.
    suite.clock.set(wednesday(9, 20));
    let partial = driver
        .record_stop_event(RecordStopEventRequest {
            request_id: rid(),
            shipment: second.shipment.clone(),
            kind: StopEventKind::Partial as i32,
            cases_delivered: 6.0,
            proof: Some(proof()),
            ..RecordStopEventRequest::default()
        })
        .await
        .expect("partial")
        .into_inner();
    assert_eq!(partial.shipment.expect("shipment").cartons_delivered, 300);
    let completed: DeliveryCompleted = next_event(&mut suite)
        .await
        .payload
        .expect("payload")
        .to_msg()
        .expect("completed");
    assert!(completed.partial);
    assert_eq!(completed.cartons_delivered, 300);

    // Closed: the inner zone runs twice a day, so the shipment rides this afternoon.
    let third = &route.stops[2];
    let failed = driver
        .record_stop_event(RecordStopEventRequest {
            request_id: rid(),
            shipment: third.shipment.clone(),
            kind: StopEventKind::Failed as i32,
            failure_reason: FailureReason::Closed as i32,
            notes: "卷帘门关着，电话无人接".into(),
            ..RecordStopEventRequest::default()
        })
        .await
        .expect("failed")
        .into_inner();
    assert_eq!(
        (failed.rescheduled_date.as_str(), failed.rescheduled_half),
        ("2026-11-25", Half::Afternoon as i32)
    );
    let moved = failed.shipment.expect("shipment");
    assert_eq!(moved.status, ShipmentStatus::Pending as i32);
    assert_eq!(
        (moved.slot_date.as_str(), moved.slot_half),
        ("2026-11-25", Half::Afternoon as i32)
    );
    assert_eq!(moved.attempts, 1);
    assert!(moved.plan.is_empty());
    let failure: DeliveryFailed = next_event(&mut suite)
        .await
        .payload
        .expect("payload")
        .to_msg()
        .expect("failed");
    assert_eq!(failure.reason, "CLOSED");
    assert_eq!(failure.rescheduled_date, "2026-11-25");
    assert_eq!(failure.rescheduled_half, "AFTERNOON");
    let afternoon = shipments(
        &mut dispatcher,
        ListShipmentsRequest {
            slot_date: "2026-11-25".into(),
            slot_half: Half::Afternoon as i32,
            status: ShipmentStatus::Pending as i32,
            ..ListShipmentsRequest::default()
        },
    )
    .await;
    assert_eq!(afternoon.len(), 1, "waiting for the afternoon plan");

    // The day so far.
    let report = dispatcher
        .get_day_report(GetDayReportRequest {
            depot: "depots/chengdu".into(),
            date: "2026-11-25".into(),
        })
        .await
        .expect("report")
        .into_inner();
    let stops: i32 = plan.routes.iter().map(|r| r.stops.len() as i32).sum();
    assert_eq!(report.plans, vec![plan.name.clone()]);
    assert_eq!(report.stops, stops);
    assert_eq!((report.delivered, report.partial, report.failed), (2, 1, 1));
    assert_eq!(report.pending, stops - 3);
    assert_eq!(report.failures_by_reason.get("CLOSED"), Some(&1));
    assert!((report.cases_delivered - 18.0).abs() < 1e-9);
    assert_eq!(report.cash_collected, cny(150_000));
    assert!((report.delivered_rate - 2.0 / f64::from(stops)).abs() < 1e-9);
    assert!((0.0..=1.0).contains(&report.on_time_rate));
    assert_eq!(report.vehicles_used, plan.routes.len() as i32);
    assert!(report.distance_km > 0.0);
    let denied = suite
        .as_role(Role::Dispatcher, "disp-2", Some("deyang"))
        .get_day_report(GetDayReportRequest {
            depot: "depots/chengdu".into(),
            date: "2026-11-25".into(),
        })
        .await
        .expect_err("another depot's dispatcher");
    assert_eq!(denied.code(), Code::PermissionDenied);
    suite.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replanning_keeps_routes_under_way_adds_late_orders_and_drops_cancelled_ones() {
    let suite = Suite::start().await;
    suite.clock.set(wednesday(6, 0));
    let mut dispatcher = suite.as_role(Role::Dispatcher, "disp-1", Some("chengdu"));
    network(&mut dispatcher).await;
    vans(&mut dispatcher, 3).await;
    let orders = shops_with_orders(&suite, 6, 600).await;

    // A draft cannot be re-planned; only what is published.
    let draft = plan_wednesday_morning(&mut dispatcher, 3).await;
    let refused = dispatcher
        .replan_routes(ReplanRoutesRequest {
            request_id: rid(),
            name: draft.name,
            ..ReplanRoutesRequest::default()
        })
        .await
        .expect_err("drafts are planned again instead");
    assert_eq!(refused.code(), Code::FailedPrecondition);

    let plan = plan_and_publish(&mut dispatcher).await;
    assert_eq!(plan.revision, 1);
    // One van's first stop was closed: that route is under way, and the failed
    // shipment now waits for this afternoon's run, not this one.
    let started = plan.routes[0].clone();
    suite
        .as_role(Role::Driver, &started.driver, None)
        .record_stop_event(RecordStopEventRequest {
            request_id: rid(),
            shipment: started.stops[0].shipment.clone(),
            kind: StopEventKind::Failed as i32,
            failure_reason: FailureReason::Closed as i32,
            ..RecordStopEventRequest::default()
        })
        .await
        .expect("failed");

    // A late order for the same run, and a cancellation of a stop nobody reached.
    suite
        .create_customer("shop-late", "area-01", (DEPOT.0 - 0.01, DEPOT.1 - 0.01))
        .await;
    let late = order(
        "0195b000-0000-7000-8000-000000000399",
        "shop-late",
        "area-01",
        "2026-11-24T11:20:00+08:00",
        400,
    );
    suite.confirm(&late).await;
    let cancelled_stop = plan
        .routes
        .iter()
        .flat_map(|r| &r.stops)
        .last()
        .expect("a stop")
        .clone();
    assert_ne!(cancelled_stop.shipment, started.stops[0].shipment);
    let cancelled_shipment = dispatcher
        .get_shipment(GetShipmentRequest {
            name: cancelled_stop.shipment.clone(),
        })
        .await
        .expect("shipment")
        .into_inner();
    assert!(orders.contains(&cancelled_shipment.order));
    let mut cancelled_order = order(
        cancelled_shipment.order.trim_start_matches("orders/"),
        cancelled_stop.customer.trim_start_matches("customers/"),
        "area-01",
        "2026-11-24T10:00:00+08:00",
        600,
    );
    cancelled_order.name = cancelled_shipment.order.clone();
    suite
        .deliver(
            "OrderCancelled",
            &cancelled_shipment.order,
            prost_types::Any::from_msg(&OrderCancelled {
                order: Some(cancelled_order),
            })
            .expect("any"),
        )
        .await;

    suite.clock.set(wednesday(7, 0));
    let replanned = dispatcher
        .replan_routes(ReplanRoutesRequest {
            request_id: rid(),
            name: plan.name.clone(),
            time_budget_seconds: 1,
            seed: 5,
            drivers: [
                ("vehicles/van-00".to_string(), "driver-van-00".to_string()),
                ("vehicles/van-01".to_string(), "driver-van-01".to_string()),
                ("vehicles/van-02".to_string(), "driver-van-02".to_string()),
            ]
            .into_iter()
            .collect(),
        })
        .await
        .expect("re-planned")
        .into_inner();
    assert_eq!(replanned.name, plan.name, "the published plan changes in place");
    assert_eq!(replanned.revision, 2);
    assert_eq!(replanned.status, PlanStatus::Published as i32);
    assert!(replanned.unassigned.is_empty(), "{:?}", replanned.unassigned);
    assert_feasible(&replanned);
    let kept = replanned
        .routes
        .iter()
        .find(|r| r.vehicle == started.vehicle)
        .expect("the route under way stays");
    let expected: Vec<&str> = started
        .stops
        .iter()
        .filter(|s| s.shipment != cancelled_stop.shipment)
        .map(|s| s.shipment.as_str())
        .collect();
    assert_eq!(
        kept.stops.iter().map(|s| s.shipment.as_str()).collect::<Vec<_>>(),
        expected,
        "its stops stay, in order, less the cancelled one"
    );
    assert_eq!(kept.stops[0].status, StopStatus::Failed as i32);
    let all: Vec<&PlannedStop> = replanned.routes.iter().flat_map(|r| &r.stops).collect();
    assert_eq!(
        all.iter()
            .filter(|s| s.shipment == started.stops[0].shipment)
            .count(),
        1,
        "the failed stop is not planned again into the run it failed on"
    );
    assert!(all.iter().all(|s| s.shipment != cancelled_stop.shipment));
    let late_shipment = shipments(
        &mut dispatcher,
        ListShipmentsRequest {
            status: ShipmentStatus::Planned as i32,
            ..ListShipmentsRequest::default()
        },
    )
    .await
    .into_iter()
    .find(|s| s.order == late.name)
    .expect("the late order rides the plan");
    assert_eq!(late_shipment.plan, plan.name);
    assert!(all.iter().any(|s| s.shipment == late_shipment.name));
    assert_eq!(all.len(), 6, "six orders, one cancelled, one late");
    // Routes that had not left start no earlier than the re-plan.
    for route in replanned.routes.iter().filter(|r| r.vehicle != started.vehicle) {
        assert!(route.start_time.expect("start").seconds >= wednesday(8, 0).timestamp());
    }
    suite.stop().await;
}
