//! Who may call what on `LogisticsService` (`distnet_platform::authz`): the roles are
//! the same constants the handlers check; scopes are enforced by the handlers.

use distnet_platform::authz::Rule;

use crate::domain::access::{
    DRIVERS, NETWORK_EDITORS, NETWORK_READERS, REPORT_READERS, SHIPMENT_LISTERS, SHIPMENT_READERS,
    STOP_RECORDERS,
};

const SERVICE: &str = "distnet.logistics.v1.LogisticsService";

const DEPOT_SCOPE: &str = "a dispatcher whose token names a depot works that depot only";
const PLAN_SCOPE: &str = "dispatcher: its depot; publishing needs a driver for every vehicle used; one published \
     plan per slot";

pub const ACCESS: &[Rule] = &[
    Rule::new(SERVICE, "UpsertDepot", NETWORK_EDITORS, DEPOT_SCOPE),
    Rule::new(SERVICE, "GetDepot", NETWORK_READERS, ""),
    Rule::new(SERVICE, "SetCutoffSchedule", NETWORK_EDITORS, DEPOT_SCOPE),
    Rule::new(SERVICE, "UpsertZone", NETWORK_EDITORS, DEPOT_SCOPE),
    Rule::new(SERVICE, "ListZones", NETWORK_READERS, ""),
    Rule::new(SERVICE, "UpsertVehicle", NETWORK_EDITORS, DEPOT_SCOPE),
    Rule::new(SERVICE, "ListVehicles", NETWORK_READERS, ""),
    Rule::new(
        SERVICE,
        "GetShipment",
        SHIPMENT_READERS,
        "dispatcher, admin, service: all (a dispatcher its depot); call_center_agent: their areas; customer_manager: \
         owned or in their areas; retailer: itself. Out of scope is `NOT_FOUND`",
    ),
    Rule::new(
        SERVICE,
        "ListShipments",
        SHIPMENT_LISTERS,
        "dispatcher: its depot",
    ),
    Rule::new(SERVICE, "PlanRoutes", NETWORK_EDITORS, PLAN_SCOPE),
    Rule::new(SERVICE, "GetPlan", NETWORK_EDITORS, PLAN_SCOPE),
    Rule::new(SERVICE, "PublishPlan", NETWORK_EDITORS, PLAN_SCOPE),
    Rule::new(SERVICE, "ReplanRoutes", NETWORK_EDITORS, PLAN_SCOPE),
    Rule::new(SERVICE, "GetMyRoute", DRIVERS, "the driver's own routes only"),
    Rule::new(
        SERVICE,
        "RecordStopEvent",
        STOP_RECORDERS,
        "driver: the route's own; dispatcher: its depot. Someone else's stop is `NOT_FOUND`",
    ),
    Rule::new(SERVICE, "GetDayReport", REPORT_READERS, "dispatcher: its depot"),
];
