//! Who may see which retailer's licensing facts (DESIGN.md "Who may do what"):
//! inspectors and call-center agents work their areas, a customer manager their
//! own retailers and areas, a retailer only itself; admin, services, planners and
//! dispatchers see all.

use distnet_platform::auth::{Caller, Role};

/// The retailer a fact is about.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub customer_id: &'a str,
    pub area_id: &'a str,
    /// The owning customer manager, when known.
    pub owner_id: Option<&'a str>,
}

pub fn in_scope(caller: &Caller, subject: Subject<'_>) -> bool {
    caller.sees_retailer(subject.customer_id, subject.area_id, subject.owner_id)
}

/// For lists: `None` = every area, `Some(areas)` = only these.
pub fn area_filter(caller: &Caller) -> Option<Vec<String>> {
    match caller.role {
        Role::Admin | Role::Service | Role::AllocationPlanner | Role::Dispatcher | Role::Retailer => None,
        _ => Some(caller.areas.clone()),
    }
}

/// Who may read licenses and standings.
pub const READERS: &[Role] = &[
    Role::Admin,
    Role::Service,
    Role::AllocationPlanner,
    Role::Dispatcher,
    Role::CustomerManager,
    Role::CallCenterAgent,
    Role::MarketInspector,
    Role::Retailer,
];
/// Customer managers apply on behalf of their retailers.
pub const APPLICANTS: &[Role] = &[Role::CustomerManager, Role::Admin];
pub const INSPECTORS: &[Role] = &[Role::MarketInspector];
/// The license office.
pub const DECIDERS: &[Role] = &[Role::Admin];
pub const SUSPENDERS: &[Role] = &[Role::Admin, Role::MarketInspector];
pub const LICENSE_OFFICE: &[Role] = &[Role::Admin];
pub const VIOLATION_RECORDERS: &[Role] = &[Role::MarketInspector, Role::Admin];

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(role: Role, sub: &str, areas: &[&str]) -> Caller {
        Caller {
            sub: sub.into(),
            role,
            areas: areas.iter().map(|a| a.to_string()).collect(),
            zones: vec![],
            depot: None,
            customer: None,
            trace_id: String::new(),
        }
    }

    #[test]
    fn inspectors_work_their_areas_and_managers_their_retailers() {
        let subject = Subject {
            customer_id: "r-1",
            area_id: "area-01",
            owner_id: Some("cm-1"),
        };
        assert!(in_scope(
            &caller(Role::MarketInspector, "mi", &["area-01"]),
            subject
        ));
        assert!(!in_scope(
            &caller(Role::MarketInspector, "mi", &["area-02"]),
            subject
        ));
        assert!(in_scope(&caller(Role::CustomerManager, "cm-1", &[]), subject));
        assert!(!in_scope(
            &caller(Role::CustomerManager, "cm-2", &["area-02"]),
            subject
        ));
        assert!(!in_scope(&caller(Role::Driver, "d", &["area-01"]), subject));
    }
}
