//! Who may call what on `AllocationService` (`distnet_platform::authz`): the roles are
//! the same constants the handlers check; scopes are enforced by the handlers.

use distnet_platform::authz::Rule;

use crate::domain::access::{CATALOG_READERS, ORDER_READERS, ORDER_TAKERS, PLAN_READERS, PLANNERS};

const SERVICE: &str = "distnet.allocation.v1.AllocationService";

const ORDER_SCOPE: &str = "call_center_agent: their areas; customer_manager: owned or in their areas; retailer: \
     itself. Out of scope is `PERMISSION_DENIED`";
const ORDER_READ_SCOPE: &str = "the order takers as for orders; allocation_planner, admin, service, dispatcher: all. \
     Another retailer's order is `NOT_FOUND`; agents' and managers' lists are limited to their areas unless they \
     name a retailer in scope";

pub const ACCESS: &[Rule] = &[
    Rule::new(SERVICE, "UpsertProduct", PLANNERS, ""),
    Rule::new(SERVICE, "GetProduct", CATALOG_READERS, ""),
    Rule::new(SERVICE, "ListProducts", CATALOG_READERS, ""),
    Rule::new(SERVICE, "UpsertCycle", PLANNERS, ""),
    Rule::new(SERVICE, "GetCycle", CATALOG_READERS, ""),
    Rule::new(SERVICE, "SetSupply", PLANNERS, ""),
    Rule::new(SERVICE, "GetSupply", PLAN_READERS, ""),
    Rule::new(SERVICE, "EstimateDemand", PLANNERS, ""),
    Rule::new(SERVICE, "SetPolicy", PLANNERS, ""),
    Rule::new(SERVICE, "GetPolicy", PLAN_READERS, ""),
    Rule::new(SERVICE, "PreviewAllocation", PLANNERS, ""),
    Rule::new(SERVICE, "CommitAllocation", PLANNERS, ""),
    Rule::new(SERVICE, "GetAllocation", PLAN_READERS, ""),
    Rule::new(SERVICE, "ListAllocations", PLAN_READERS, ""),
    Rule::new(SERVICE, "ReleaseUnclaimed", PLANNERS, ""),
    Rule::new(SERVICE, "GetEntitlements", ORDER_READERS, ORDER_READ_SCOPE),
    Rule::new(SERVICE, "PlaceOrder", ORDER_TAKERS, ORDER_SCOPE),
    Rule::new(SERVICE, "CancelOrder", ORDER_TAKERS, ORDER_SCOPE),
    Rule::new(SERVICE, "GetOrder", ORDER_READERS, ORDER_READ_SCOPE),
    Rule::new(SERVICE, "ListOrders", ORDER_READERS, ORDER_READ_SCOPE),
    Rule::new(SERVICE, "GetCycleReport", PLAN_READERS, ""),
];
