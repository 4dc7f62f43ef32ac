//! Service cases (complaints) under first-contact responsibility (DOMAIN.md "Customer
//! relationship"): the first person who receives a complaint owns it for the case's
//! whole life; handling passes between staff by transfer; the customer is called back
//! after resolution, and only then is the case closed. Response and resolution are
//! time-limited by category and customer class; an overdue case escalates once.

use chrono::{DateTime, Duration, Utc};
pub use distnet_platform::settings::CaseDeadline as DeadlineRule;
use distnet_proto::customers::v1::{CaseCategory, CaseStatus};

/// Why an overdue case escalated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overdue {
    /// Nobody acted on it (transfer or resolution) by `respond_by`.
    Response,
    /// Not resolved by `resolve_by`.
    Resolution,
}

impl Overdue {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Response => "RESPONSE_OVERDUE",
            Self::Resolution => "RESOLUTION_OVERDUE",
        }
    }
}

/// What decides whether a case is overdue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub respond_by: DateTime<Utc>,
    pub resolve_by: DateTime<Utc>,
    pub first_response: Option<DateTime<Utc>>,
    pub resolved: Option<DateTime<Utc>>,
}

/// Whether the case is overdue at `now`, and why (resolution first: it is the graver).
pub fn overdue(timing: &Timing, now: DateTime<Utc>) -> Option<Overdue> {
    if timing.resolved.is_some() {
        return None;
    }
    if now > timing.resolve_by {
        Some(Overdue::Resolution)
    } else if timing.first_response.is_none() && now > timing.respond_by {
        Some(Overdue::Response)
    } else {
        None
    }
}

/// An action on a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Transfer,
    Resolve,
    Callback { satisfied: bool },
    Close,
}

/// Where `action` takes a case in `status`, or why it cannot (a precondition message).
/// An unsatisfied callback reopens the case: it must be resolved (and called back)
/// again before it closes. `called_back` says whether the current resolution has had
/// its callback.
pub fn transition(status: CaseStatus, called_back: bool, action: Action) -> Result<CaseStatus, &'static str> {
    use CaseStatus::{Closed, Open, Resolved};
    match (status, action) {
        (Open, Action::Transfer) => Ok(Open),
        (Open, Action::Resolve) => Ok(Resolved),
        (Resolved, Action::Callback { satisfied: true }) => Ok(Resolved),
        (Resolved, Action::Callback { satisfied: false }) => Ok(Open),
        (Resolved, Action::Close) if called_back => Ok(Closed),
        (Resolved, Action::Close) => Err("the customer has not been called back since the case was resolved"),
        (Open, Action::Callback { .. }) => Err("the case is not resolved yet: call back after resolving"),
        (Open, Action::Close) => Err("the case is not resolved yet"),
        (Resolved, Action::Transfer) => Err("a resolved case is not transferred; record the callback"),
        (Resolved, Action::Resolve) => Err("the case is already resolved"),
        (Closed, _) => Err("the case is closed"),
        (CaseStatus::Unspecified, _) => Err("the case has no status"),
    }
}

/// The default table: per category, hours to respond and to resolve for general
/// customers; key customers get three quarters of that, special customers half.
/// Deliveries and product quality touch the retailer's shelf today, so they are
/// the fastest; billing and shortages need other departments.
const DEFAULT_HOURS: &[(CaseCategory, i64, i64)] = &[
    (CaseCategory::ProductQuality, 4, 24),
    (CaseCategory::Delivery, 2, 24),
    (CaseCategory::ServiceAttitude, 4, 48),
    (CaseCategory::Billing, 8, 72),
    (CaseCategory::SupplyShortage, 8, 72),
    (CaseCategory::Other, 24, 120),
];

/// Short name of a category ("DELIVERY").
pub fn category_name(category: CaseCategory) -> &'static str {
    category
        .as_str_name()
        .strip_prefix("CASE_CATEGORY_")
        .unwrap_or("UNSPECIFIED")
}

/// Response and resolution time for a case of `category` for a customer of `class`:
/// the first configured rule for the exact class, then for any class, then the
/// default table.
pub fn deadlines(rules: &[DeadlineRule], category: CaseCategory, class: &str) -> (Duration, Duration) {
    let name = category_name(category);
    let configured = rules
        .iter()
        .find(|r| r.category == name && r.class == class)
        .or_else(|| rules.iter().find(|r| r.category == name && r.class.is_empty()));
    if let Some(rule) = configured {
        return (
            Duration::minutes(rule.respond_minutes.max(1)),
            Duration::minutes(rule.resolve_minutes.max(1)),
        );
    }
    let (respond_h, resolve_h) = DEFAULT_HOURS
        .iter()
        .find(|(c, _, _)| *c == category)
        .map_or((24, 120), |&(_, a, b)| (a, b));
    // Minutes, scaled by class: special ×1/2, key ×3/4.
    let (num, den) = match class {
        "SPECIAL" => (1, 2),
        "KEY" => (3, 4),
        _ => (1, 1),
    };
    (
        Duration::minutes(respond_h * 60 * num / den),
        Duration::minutes(resolve_h * 60 * num / den),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, h, 0, 0)
            .single()
            .expect("valid time")
    }

    #[test]
    fn a_case_closes_only_after_resolution_and_callback() {
        use CaseStatus::*;
        assert_eq!(transition(Open, false, Action::Transfer), Ok(Open));
        assert!(transition(Open, false, Action::Close).is_err());
        assert!(transition(Open, false, Action::Callback { satisfied: true }).is_err());
        assert_eq!(transition(Open, false, Action::Resolve), Ok(Resolved));
        assert!(transition(Resolved, false, Action::Close).is_err());
        assert_eq!(
            transition(Resolved, false, Action::Callback { satisfied: true }),
            Ok(Resolved)
        );
        assert_eq!(transition(Resolved, true, Action::Close), Ok(Closed));
        // An unhappy customer reopens the case.
        assert_eq!(
            transition(Resolved, false, Action::Callback { satisfied: false }),
            Ok(Open)
        );
        for action in [
            Action::Transfer,
            Action::Resolve,
            Action::Callback { satisfied: true },
            Action::Close,
        ] {
            assert!(transition(Closed, true, action).is_err());
        }
    }

    #[test]
    fn overdue_by_response_then_by_resolution() {
        let timing = Timing {
            respond_by: at(10),
            resolve_by: at(20),
            first_response: None,
            resolved: None,
        };
        assert_eq!(overdue(&timing, at(9)), None);
        assert_eq!(overdue(&timing, at(10)), None, "due at 10:00 is on time at 10:00");
        assert_eq!(overdue(&timing, at(11)), Some(Overdue::Response));
        assert_eq!(overdue(&timing, at(21)), Some(Overdue::Resolution));
        let answered = Timing {
            first_response: Some(at(9)),
            ..timing
        };
        assert_eq!(overdue(&answered, at(11)), None);
        let resolved = Timing {
            resolved: Some(at(19)),
            ..timing
        };
        assert_eq!(overdue(&resolved, at(23)), None);
    }

    #[test]
    fn deadlines_by_category_and_class_with_overrides() {
        let none: Vec<DeadlineRule> = Vec::new();
        let (respond, resolve) = deadlines(&none, CaseCategory::Delivery, "GENERAL");
        assert_eq!((respond.num_hours(), resolve.num_hours()), (2, 24));
        let (respond, resolve) = deadlines(&none, CaseCategory::Delivery, "SPECIAL");
        assert_eq!((respond.num_minutes(), resolve.num_hours()), (60, 12));
        let (respond, _) = deadlines(&none, CaseCategory::Billing, "KEY");
        assert_eq!(respond.num_hours(), 6);
        let rules = vec![
            DeadlineRule {
                category: "DELIVERY".into(),
                class: String::new(),
                respond_minutes: 30,
                resolve_minutes: 240,
            },
            DeadlineRule {
                category: "DELIVERY".into(),
                class: "SPECIAL".into(),
                respond_minutes: 15,
                resolve_minutes: 120,
            },
        ];
        let (respond, resolve) = deadlines(&rules, CaseCategory::Delivery, "SPECIAL");
        assert_eq!((respond.num_minutes(), resolve.num_minutes()), (15, 120));
        let (respond, _) = deadlines(&rules, CaseCategory::Delivery, "");
        assert_eq!(respond.num_minutes(), 30);
        let (respond, _) = deadlines(&rules, CaseCategory::Other, "");
        assert_eq!(respond.num_hours(), 24);
    }
}
