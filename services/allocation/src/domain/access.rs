//! Who may do what in allocation (DESIGN.md "Who may do what"). Planners (and admin)
//! run the catalog, supply, policies and allocations; orders are taken by call-center
//! agents and customer managers for retailers in their scope and by retailers for
//! themselves; the catalog is public to every signed-in caller.

use distnet_platform::auth::Role;

/// Catalog, cycles, supply, demand, policies, runs, releases.
pub const PLANNERS: &[Role] = &[Role::AllocationPlanner, Role::Admin];

/// Products, cycles: every role.
pub const CATALOG_READERS: &[Role] = &[
    Role::Admin,
    Role::Service,
    Role::AllocationPlanner,
    Role::Dispatcher,
    Role::CustomerManager,
    Role::CallCenterAgent,
    Role::MarketInspector,
    Role::Driver,
    Role::Retailer,
];

/// Supply, policies, allocations and cycle reports.
pub const PLAN_READERS: &[Role] = &[
    Role::AllocationPlanner,
    Role::Admin,
    Role::Service,
    Role::CallCenterAgent,
    Role::CustomerManager,
];

/// `PlaceOrder`, `CancelOrder`; scope decides for which retailers.
pub const ORDER_TAKERS: &[Role] = &[Role::CallCenterAgent, Role::CustomerManager, Role::Retailer];

/// Orders and entitlements; scope decides for which retailers.
pub const ORDER_READERS: &[Role] = &[
    Role::CallCenterAgent,
    Role::CustomerManager,
    Role::Retailer,
    Role::AllocationPlanner,
    Role::Admin,
    Role::Service,
    Role::Dispatcher,
];
