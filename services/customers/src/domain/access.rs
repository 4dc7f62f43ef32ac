//! Who may do what with customer profiles (DESIGN.md "Who may do what"):
//! permissions follow ownership and area. A customer manager sees and changes the
//! retailers they own or that lie in their areas; call-center agents and market
//! inspectors read their areas; a retailer sees only itself; admin and services see
//! everything. Contact phones are masked for roles that do not phone retailers.

use distnet_platform::auth::{Caller, Role};

/// Roles that may read profiles at all.
pub const READERS: &[Role] = &[
    Role::Admin,
    Role::Service,
    Role::CustomerManager,
    Role::CallCenterAgent,
    Role::MarketInspector,
    Role::Dispatcher,
    Role::AllocationPlanner,
    Role::Retailer,
];

/// Roles that may create profiles.
pub const CREATORS: &[Role] = &[Role::Admin, Role::Service, Role::CustomerManager];

/// Roles that may change profiles.
pub const EDITORS: &[Role] = &[Role::Admin, Role::Service, Role::CustomerManager];

/// Only admins hand a relationship to another customer manager.
pub const OWNER_ASSIGNERS: &[Role] = &[Role::Admin];

/// The part of a customer that decides access.
#[derive(Debug, Clone, Copy)]
pub struct Holder<'a> {
    pub customer_id: &'a str,
    pub owner_id: &'a str,
    pub area_id: &'a str,
}

/// Which customers a caller can see, as a list filter (borrowed from the caller: a
/// page checks it once per profile).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility<'a> {
    All,
    /// Owned by `owner` or in one of `areas`.
    OwnedOrInAreas {
        owner: &'a str,
        areas: &'a [String],
    },
    InAreas(&'a [String]),
    Only(&'a str),
    Nothing,
}

pub fn visibility(caller: &Caller) -> Visibility<'_> {
    match caller.role {
        Role::Admin | Role::Service | Role::Dispatcher | Role::AllocationPlanner => Visibility::All,
        Role::CustomerManager => Visibility::OwnedOrInAreas {
            owner: &caller.sub,
            areas: &caller.areas,
        },
        Role::CallCenterAgent | Role::MarketInspector => Visibility::InAreas(&caller.areas),
        Role::Retailer => match &caller.customer {
            Some(id) => Visibility::Only(id),
            None => Visibility::Nothing,
        },
        Role::Driver => Visibility::Nothing,
    }
}

pub fn may_read(caller: &Caller, holder: Holder<'_>) -> bool {
    match visibility(caller) {
        Visibility::All => true,
        Visibility::OwnedOrInAreas { owner, areas } => {
            holder.owner_id == owner || areas.iter().any(|a| a == holder.area_id)
        }
        Visibility::InAreas(areas) => areas.iter().any(|a| a == holder.area_id),
        Visibility::Only(id) => id == holder.customer_id,
        Visibility::Nothing => false,
    }
}

/// Editors may change what they may read.
pub fn may_edit(caller: &Caller, holder: Holder<'_>) -> bool {
    EDITORS.contains(&caller.role) && may_read(caller, holder)
}

/// A customer manager may only place customers in their own areas.
pub fn may_place_in_area(caller: &Caller, area_id: &str) -> bool {
    match caller.role {
        Role::Admin | Role::Service => true,
        Role::CustomerManager => caller.has_area(area_id),
        _ => false,
    }
}

/// Staff who phone retailers see the number; a retailer sees its own.
pub fn sees_contact_phone(caller: &Caller, holder: Holder<'_>) -> bool {
    match caller.role {
        Role::Admin | Role::Service | Role::CustomerManager | Role::CallCenterAgent => true,
        Role::Retailer => caller.customer.as_deref() == Some(holder.customer_id),
        _ => false,
    }
}

/// Keeps the first three and last four digits: "13812345678" → "138****5678".
pub fn mask_phone(phone: &str) -> String {
    let chars: Vec<char> = phone.chars().collect();
    if chars.len() <= 7 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 7))
}

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

    const IN_A1_OWNED_BY_CM1: Holder<'static> = Holder {
        customer_id: "r-1",
        owner_id: "cm-1",
        area_id: "area-01",
    };

    #[test]
    fn a_customer_manager_reads_owned_and_area_customers_only() {
        assert!(may_read(
            &caller(Role::CustomerManager, "cm-1", &[]),
            IN_A1_OWNED_BY_CM1
        ));
        assert!(may_read(
            &caller(Role::CustomerManager, "cm-2", &["area-01"]),
            IN_A1_OWNED_BY_CM1
        ));
        assert!(!may_read(
            &caller(Role::CustomerManager, "cm-2", &["area-02"]),
            IN_A1_OWNED_BY_CM1
        ));
    }

    #[test]
    fn agents_read_but_do_not_edit_their_areas() {
        let agent = caller(Role::CallCenterAgent, "cc-1", &["area-01"]);
        assert!(may_read(&agent, IN_A1_OWNED_BY_CM1));
        assert!(!may_edit(&agent, IN_A1_OWNED_BY_CM1));
    }

    #[test]
    fn a_retailer_sees_only_itself() {
        let mut me = caller(Role::Retailer, "shop", &[]);
        me.customer = Some("r-1".into());
        assert!(may_read(&me, IN_A1_OWNED_BY_CM1));
        assert!(sees_contact_phone(&me, IN_A1_OWNED_BY_CM1));
        me.customer = Some("r-2".into());
        assert!(!may_read(&me, IN_A1_OWNED_BY_CM1));
    }

    #[test]
    fn drivers_see_no_profiles_and_inspectors_no_phones() {
        assert!(!may_read(
            &caller(Role::Driver, "d", &["area-01"]),
            IN_A1_OWNED_BY_CM1
        ));
        let inspector = caller(Role::MarketInspector, "mi", &["area-01"]);
        assert!(may_read(&inspector, IN_A1_OWNED_BY_CM1));
        assert!(!sees_contact_phone(&inspector, IN_A1_OWNED_BY_CM1));
    }

    #[test]
    fn phones_are_masked_in_the_middle() {
        assert_eq!(mask_phone("13812345678"), "138****5678");
        assert_eq!(mask_phone("12345"), "*****");
        assert_eq!(mask_phone("电话号码一二三四五六"), "电话号***三四五六");
    }
}
