//! Who may do what in logistics (DESIGN.md "Who may do what"): dispatchers (and
//! admin) run the network of their depot; shipments are seen by dispatchers, the
//! services, and — one at a time — by those who see the retailer.

use distnet_platform::ServiceError;
use distnet_platform::auth::{Caller, Role};

pub const NETWORK_EDITORS: &[Role] = &[Role::Dispatcher, Role::Admin];

pub const NETWORK_READERS: &[Role] = &[
    Role::Dispatcher,
    Role::Admin,
    Role::Service,
    Role::Driver,
    Role::AllocationPlanner,
    Role::CallCenterAgent,
    Role::CustomerManager,
];

/// `GetShipment`; scope by retailer for the roles that have one.
pub const SHIPMENT_READERS: &[Role] = &[
    Role::Dispatcher,
    Role::Admin,
    Role::Service,
    Role::CallCenterAgent,
    Role::CustomerManager,
    Role::Retailer,
];

/// `ListShipments`.
pub const SHIPMENT_LISTERS: &[Role] = &[Role::Dispatcher, Role::Admin, Role::Service];

/// A dispatcher whose token names a depot works that depot only.
pub fn manages_depot(caller: &Caller, depot_id: &str) -> bool {
    match (caller.role, caller.depot.as_deref()) {
        (Role::Dispatcher, Some(own)) => own == depot_id,
        _ => true,
    }
}

/// [`manages_depot`], as the `PERMISSION_DENIED` a request for another depot gets.
pub fn ensure_depot(caller: &Caller, depot_id: &str) -> Result<(), ServiceError> {
    if manages_depot(caller, depot_id) {
        Ok(())
    } else {
        Err(ServiceError::permission_denied(format!(
            "depots/{depot_id} is not your depot"
        )))
    }
}

/// `GetMyRoute`: drivers only, their own routes.
pub const DRIVERS: &[Role] = &[Role::Driver];

/// `RecordStopEvent`: the route's driver, or a dispatcher of the depot correcting it.
pub const STOP_RECORDERS: &[Role] = &[Role::Driver, Role::Dispatcher, Role::Admin];

/// `GetDayReport`.
pub const REPORT_READERS: &[Role] = &[Role::Dispatcher, Role::Admin];
