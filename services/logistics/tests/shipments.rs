//! The delivery network, shipments and planning through real gRPC.

mod support;

use distnet_platform::auth::Role;
use distnet_proto::common::v1::TimeOfDay;
use distnet_proto::events::v1::OrderCancelled;
use distnet_proto::logistics::v1::*;
use support::*;
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmed_order_becomes_one_shipment_in_its_zones_next_slot() {
    let suite = Suite::start().await;
    let mut dispatcher = suite.as_role(Role::Dispatcher, "disp-1", Some("chengdu"));
    network(&mut dispatcher).await;
    suite.create_customer("shop-1", "area-01", (30.66, 104.08)).await;
    suite.create_customer("shop-9", "area-09", (30.70, 104.10)).await;

    // Confirmed Tuesday 10:00: the 11:30 batch, delivered Wednesday morning.
    let confirmed = order(
        "0195a000-0000-7000-8000-000000000001",
        "shop-1",
        "area-01",
        "2026-11-24T10:00:00+08:00",
        75,
    );
    suite.confirm(&confirmed).await;
    // A second delivery of the same order (a new event id) still makes one shipment.
    suite.confirm(&confirmed).await;
    let listed = shipments(
        &mut dispatcher,
        ListShipmentsRequest {
            depot: "depots/chengdu".into(),
            slot_date: "2026-11-25".into(),
            ..ListShipmentsRequest::default()
        },
    )
    .await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    let shipment = &listed[0];
    assert_eq!(shipment.zone, "zones/inner");
    assert_eq!(shipment.slot_half, Half::Morning as i32);
    assert_eq!(shipment.status, ShipmentStatus::Pending as i32);
    assert!((shipment.cases - 1.5).abs() < 1e-9, "75 cartons are 1.5 cases");
    assert_eq!(
        shipment.customer_display_name, "店 shop-1",
        "fetched with BatchGetCustomers"
    );
    assert!(shipment.location.is_some());

    // Confirmed Wednesday 15:00: the 17:30 batch; Thursday is a holiday: Friday afternoon.
    let late = order(
        "0195a000-0000-7000-8000-000000000002",
        "shop-1",
        "area-01",
        "2026-11-25T15:00:00+08:00",
        50,
    );
    suite.confirm(&late).await;
    let friday = shipments(
        &mut dispatcher,
        ListShipmentsRequest {
            slot_date: "2026-11-27".into(),
            slot_half: Half::Afternoon as i32,
            ..ListShipmentsRequest::default()
        },
    )
    .await;
    assert_eq!(friday.len(), 1, "{friday:?}");

    // An area no zone covers waits for a dispatcher.
    let unzoned = order(
        "0195a000-0000-7000-8000-000000000003",
        "shop-9",
        "area-09",
        "2026-11-24T10:00:00+08:00",
        10,
    );
    suite.confirm(&unzoned).await;
    let waiting = shipments(
        &mut suite.as_role(Role::Admin, "ops", None),
        ListShipmentsRequest {
            status: ShipmentStatus::Unzoned as i32,
            ..ListShipmentsRequest::default()
        },
    )
    .await;
    assert_eq!(waiting.len(), 1);

    // Cancelling the order drops its shipment.
    let payload = prost_types::Any::from_msg(&OrderCancelled {
        order: Some(confirmed.clone()),
    })
    .expect("any");
    suite.deliver("OrderCancelled", &confirmed.name, payload).await;
    let dropped = dispatcher
        .get_shipment(GetShipmentRequest {
            name: shipment.name.clone(),
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(dropped.status, ShipmentStatus::Cancelled as i32);

    // The retailer sees its own shipment; another retailer does not learn it exists.
    suite
        .as_role(Role::Retailer, "shop-1", None)
        .get_shipment(GetShipmentRequest {
            name: shipment.name.clone(),
        })
        .await
        .expect("own shipment");
    let hidden = suite
        .as_role(Role::Retailer, "shop-9", None)
        .get_shipment(GetShipmentRequest {
            name: shipment.name.clone(),
        })
        .await
        .expect_err("hidden");
    assert_eq!(hidden.code(), Code::NotFound);
    suite.stop().await;
}

/// The shipment a confirmed order becomes follows the network as it is when the
/// order arrives: the zone and depot of an area are kept in memory, and every change
/// of zones or depots (made here, or by another replica) drops them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_is_placed_by_the_network_as_changed_before_it() {
    let suite = Suite::start().await;
    let mut dispatcher = suite.as_role(Role::Dispatcher, "disp-1", Some("chengdu"));
    network(&mut dispatcher).await;
    suite.create_customer("shop-1", "area-01", (30.66, 104.08)).await;
    suite.create_customer("shop-9", "area-09", (30.70, 104.10)).await;
    let tuesday = "2026-11-24T10:00:00+08:00";
    let placed = |id: &str, shop: &str, area: &str| order(id, shop, area, tuesday, 10);
    let shipment_of = |order: &distnet_proto::allocation::v1::Order| {
        let mut client = suite.as_role(Role::Admin, "ops", None);
        let order = order.name.clone();
        async move {
            let all = shipments(&mut client, ListShipmentsRequest::default()).await;
            all.into_iter()
                .find(|s| s.order == order)
                .expect("a shipment for the order")
        }
    };

    // No zone covers area-09: its order waits, and area-01's is placed in "inner".
    let first = placed("0195a000-0000-7000-8000-000000000011", "shop-9", "area-09");
    suite.confirm(&first).await;
    assert_eq!(shipment_of(&first).await.status, ShipmentStatus::Unzoned as i32);
    let inner = placed("0195a000-0000-7000-8000-000000000012", "shop-1", "area-01");
    suite.confirm(&inner).await;
    let before = shipment_of(&inner).await;
    assert_eq!(
        (before.zone.as_str(), before.slot_date.as_str()),
        ("zones/inner", "2026-11-25")
    );

    // A dispatcher adds a zone for area-09 and closes the depot on Wednesday too.
    dispatcher
        .upsert_zone(UpsertZoneRequest {
            request_id: rid(),
            zone: Some(zone("north", &["area-09"], (1, 0), Frequency::TwiceDaily)),
        })
        .await
        .expect("zone");
    let mut depot = dispatcher
        .get_depot(GetDepotRequest {
            name: "depots/chengdu".into(),
        })
        .await
        .expect("depot")
        .into_inner();
    depot.non_working_days = vec!["2026-11-25".into(), "2026-11-26".into()];
    dispatcher
        .upsert_depot(UpsertDepotRequest {
            request_id: rid(),
            depot: Some(depot),
        })
        .await
        .expect("depot closed on Wednesday");
    let second = placed("0195a000-0000-7000-8000-000000000013", "shop-9", "area-09");
    suite.confirm(&second).await;
    let zoned = shipment_of(&second).await;
    assert_eq!(
        (zoned.zone.as_str(), zoned.status),
        ("zones/north", ShipmentStatus::Pending as i32)
    );
    // Wednesday and Thursday closed: Friday morning.
    let later = placed("0195a000-0000-7000-8000-000000000014", "shop-1", "area-01");
    suite.confirm(&later).await;
    assert_eq!(shipment_of(&later).await.slot_date, "2026-11-27");

    // Another replica moves area-09 to "inner" (here: straight in the database); its
    // commit notifies this replica, which places the next order there.
    let db = sqlx::PgPool::connect(suite.database_url())
        .await
        .expect("connect");
    sqlx::query(
        "UPDATE logistics.zones SET area_ids = CASE zone_id WHEN 'inner' THEN ARRAY['area-01', 'area-09'] \
         ELSE ARRAY['area-02'] END WHERE zone_id IN ('inner', 'north')",
    )
    .execute(&db)
    .await
    .expect("zones moved");
    db.close().await;
    for n in 15..100 {
        let next = placed(
            &format!("0195a000-0000-7000-8000-0000000000{n}"),
            "shop-9",
            "area-09",
        );
        suite.confirm(&next).await;
        if shipment_of(&next).await.zone == "zones/inner" {
            suite.stop().await;
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the change made by another replica never reached the placements");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_network_is_validated_and_kept_to_each_dispatchers_depot() {
    let suite = Suite::start().await;
    let mut dispatcher = suite.as_role(Role::Dispatcher, "disp-1", Some("chengdu"));
    network(&mut dispatcher).await;

    // An area belongs to one zone.
    let overlap = dispatcher
        .upsert_zone(UpsertZoneRequest {
            request_id: rid(),
            zone: Some(zone(
                "other",
                &["area-01", "area-05"],
                (3, 2),
                Frequency::OnceDaily,
            )),
        })
        .await
        .expect_err("area-01 is zoned");
    assert_eq!(overlap.code(), Code::FailedPrecondition);

    // Twice a day only within 25 km: a retailer ~40 km out keeps area-07 once a day. It
    // reaches logistics' cache through BatchGetCustomers when an order needs it.
    suite.create_customer("far-1", "area-07", (30.95, 104.35)).await;
    suite
        .confirm(&order(
            "0195a000-0000-7000-8000-0000000000f1",
            "far-1",
            "area-07",
            "2026-11-24T10:00:00+08:00",
            5,
        ))
        .await;
    let beyond = dispatcher
        .upsert_zone(UpsertZoneRequest {
            request_id: rid(),
            zone: Some(zone("far", &["area-07"], (3, 1), Frequency::TwiceDaily)),
        })
        .await
        .expect_err("beyond the band");
    assert_eq!(beyond.code(), Code::FailedPrecondition);
    dispatcher
        .upsert_zone(UpsertZoneRequest {
            request_id: rid(),
            zone: Some(zone("far", &["area-07"], (3, 1), Frequency::OnceDaily)),
        })
        .await
        .expect("once a day is fine");

    let van = |name: &str, start: i32, end: i32| Vehicle {
        name: format!("vehicles/{name}"),
        display_name: "川A·12345".into(),
        depot: "depots/chengdu".into(),
        capacity_cases: 45,
        crew_size: 2,
        shift_start: Some(TimeOfDay {
            hours: start,
            minutes: 0,
        }),
        shift_end: Some(TimeOfDay {
            hours: end,
            minutes: 0,
        }),
        ..Vehicle::default()
    };
    let vehicle = dispatcher
        .upsert_vehicle(UpsertVehicleRequest {
            request_id: rid(),
            vehicle: Some(van("van-01", 8, 15)),
        })
        .await
        .expect("vehicle")
        .into_inner();
    assert_eq!(vehicle.capacity_cases, 45);
    let invalid = dispatcher
        .upsert_vehicle(UpsertVehicleRequest {
            request_id: rid(),
            vehicle: Some(van("van-02", 18, 8)),
        })
        .await
        .expect_err("a shift ends after it starts");
    assert_eq!(invalid.code(), Code::InvalidArgument);

    let schedule = dispatcher
        .set_cutoff_schedule(SetCutoffScheduleRequest {
            request_id: rid(),
            depot: "depots/chengdu".into(),
            cutoffs: vec![Cutoff {
                at: Some(TimeOfDay {
                    hours: 14,
                    minutes: 0,
                }),
                delivery_days: 1,
                delivery_half: Half::Morning as i32,
            }],
        })
        .await
        .expect("schedule")
        .into_inner();
    assert_eq!(schedule.cutoffs.len(), 1);

    // A dispatcher of another depot cannot change this one; agents read the network.
    let denied = suite
        .as_role(Role::Dispatcher, "disp-2", Some("mianyang"))
        .upsert_vehicle(UpsertVehicleRequest {
            request_id: rid(),
            vehicle: Some(van("van-03", 8, 15)),
        })
        .await
        .expect_err("other depot");
    assert_eq!(denied.code(), Code::PermissionDenied);
    let zones = suite
        .as_role(Role::CallCenterAgent, "cc-1", None)
        .list_zones(ListZonesRequest {
            depot: "depots/chengdu".into(),
            ..ListZonesRequest::default()
        })
        .await
        .expect("readable")
        .into_inner()
        .zones;
    assert_eq!(zones.len(), 3);
    suite.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_is_planned_with_vrp_core_and_published_with_its_drivers() {
    let suite = Suite::start().await;
    let mut dispatcher = suite.as_role(Role::Dispatcher, "disp-1", Some("chengdu"));
    network(&mut dispatcher).await;
    for van in ["van-01", "van-02"] {
        dispatcher
            .upsert_vehicle(UpsertVehicleRequest {
                request_id: rid(),
                vehicle: Some(Vehicle {
                    name: format!("vehicles/{van}"),
                    display_name: van.into(),
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
            .expect("vehicle");
    }
    // Eight shops within a few km of the depot, 10–30 cases each; one needs 100 cases,
    // more than a van carries.
    let mut orders = Vec::new();
    for i in 0..9 {
        let id = format!("shop-{i}");
        let at = (
            DEPOT.0 + 0.01 * f64::from(i % 3),
            DEPOT.1 + 0.012 * f64::from(i / 3),
        );
        suite.create_customer(&id, "area-01", at).await;
        let cartons = if i == 8 {
            5_000
        } else {
            500 + 250 * i64::from(i % 3)
        };
        let order = order(
            &format!("0195a000-0000-7000-8000-0000000001{i:02}"),
            &id,
            "area-01",
            "2026-11-24T10:00:00+08:00",
            cartons,
        );
        suite.confirm(&order).await;
        orders.push(order);
    }

    let plan = dispatcher
        .plan_routes(PlanRoutesRequest {
            request_id: rid(),
            depot: "depots/chengdu".into(),
            date: "2026-11-25".into(),
            half: Half::Morning as i32,
            time_budget_seconds: 2,
            seed: 7,
        })
        .await
        .expect("planned")
        .into_inner();
    assert_eq!(plan.status, PlanStatus::Draft as i32);
    let totals = plan.totals.expect("totals");
    assert_eq!(totals.shipments, 9);
    assert_eq!(plan.unassigned.len(), 1, "{:?}", plan.unassigned);
    assert_eq!(plan.unassigned[0].reason, "CAPACITY");
    let planned: usize = plan.routes.iter().map(|r| r.stops.len()).sum();
    assert_eq!(planned, 8, "every other shipment is on a route");
    for route in &plan.routes {
        assert!(
            route.load_cases <= 45.0 * f64::from(route.trips) + 1e-9,
            "{route:?}"
        );
        let etas: Vec<i64> = route
            .stops
            .iter()
            .filter_map(|s| s.eta.map(|t| t.seconds))
            .collect();
        assert!(etas.windows(2).all(|w| w[0] <= w[1]), "stops in visiting order");
    }
    assert!(totals.distance_km > 0.0 && totals.cases > 0.0);
    assert_eq!(
        dispatcher
            .get_plan(GetPlanRequest {
                name: plan.name.clone()
            })
            .await
            .expect("get")
            .into_inner(),
        plan
    );

    let missing = dispatcher
        .publish_plan(PublishPlanRequest {
            request_id: rid(),
            name: plan.name.clone(),
            drivers: Default::default(),
        })
        .await
        .expect_err("drivers first");
    assert_eq!(missing.code(), Code::FailedPrecondition);
    let drivers = plan
        .routes
        .iter()
        .enumerate()
        .map(|(i, r)| (r.vehicle.clone(), format!("driver-{i}")))
        .collect();
    let published = dispatcher
        .publish_plan(PublishPlanRequest {
            request_id: rid(),
            name: plan.name.clone(),
            drivers,
        })
        .await
        .expect("published")
        .into_inner();
    assert_eq!(published.status, PlanStatus::Published as i32);
    assert!(published.routes.iter().all(|r| r.driver.starts_with("driver-")));
    let planned_now = shipments(
        &mut dispatcher,
        ListShipmentsRequest {
            status: ShipmentStatus::Planned as i32,
            ..ListShipmentsRequest::default()
        },
    )
    .await;
    assert_eq!(planned_now.len(), 8);

    // The slot has its published plan: another one cannot be published over it.
    let again = dispatcher
        .plan_routes(PlanRoutesRequest {
            request_id: rid(),
            depot: "depots/chengdu".into(),
            date: "2026-11-25".into(),
            half: Half::Morning as i32,
            time_budget_seconds: 1,
            seed: 7,
        })
        .await
        .expect("planned")
        .into_inner();
    let refused = dispatcher
        .publish_plan(PublishPlanRequest {
            request_id: rid(),
            name: again.name,
            drivers: Default::default(),
        })
        .await
        .expect_err("one published plan per slot");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    suite.stop().await;
}
