//! Licensing (DOMAIN.md "Licensing"): a retailer applies, an inspector visits the
//! premises, the license office approves or rejects; a license runs for a fixed
//! term, is renewed before it expires, and can be suspended or revoked for
//! violations. Outlets are planned by layout: a new license within the minimum
//! spacing of an active one is refused.
//!
//! Both the application and the license are explicit state machines; an illegal
//! transition is an error naming the current state.

use chrono::{DateTime, Duration, Utc};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplicationKind {
    New,
    Renewal,
    Change,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InspectionOutcome {
    Pass,
    Fail,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplicationState {
    Submitted,
    /// The latest inspection; a failed one may be followed by another visit.
    Inspected {
        outcome: InspectionOutcome,
        inspector: String,
    },
    Approved,
    Rejected,
}

impl ApplicationState {
    pub fn name(&self) -> &'static str {
        match self {
            ApplicationState::Submitted => "SUBMITTED",
            ApplicationState::Inspected { .. } => "INSPECTED",
            ApplicationState::Approved => "APPROVED",
            ApplicationState::Rejected => "REJECTED",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LicenseStatus {
    Active,
    Suspended,
    Revoked,
    Expired,
}

impl LicenseStatus {
    pub fn name(self) -> &'static str {
        match self {
            LicenseStatus::Active => "ACTIVE",
            LicenseStatus::Suspended => "SUSPENDED",
            LicenseStatus::Revoked => "REVOKED",
            LicenseStatus::Expired => "EXPIRED",
        }
    }
}

/// A refused transition, with the state it was refused in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Stable reason for clients, e.g. `APPLICATION_ALREADY_DECIDED`.
    pub reason: &'static str,
    pub current_state: &'static str,
    pub message: String,
}

fn refuse(reason: &'static str, current_state: &'static str, message: impl Into<String>) -> Refusal {
    Refusal {
        reason,
        current_state,
        message: message.into(),
    }
}

/// Records an inspection visit. Only undecided applications are inspected.
pub fn inspect(
    state: &ApplicationState,
    outcome: InspectionOutcome,
    inspector: &str,
) -> Result<ApplicationState, Refusal> {
    match state {
        ApplicationState::Submitted | ApplicationState::Inspected { .. } => Ok(ApplicationState::Inspected {
            outcome,
            inspector: inspector.to_string(),
        }),
        decided => Err(refuse(
            "APPLICATION_ALREADY_DECIDED",
            decided.name(),
            "a decided application cannot be inspected again",
        )),
    }
}

/// The nearest active licensed outlet to the premises, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct NearestOutlet {
    pub license_number: String,
    pub distance_m: f64,
}

/// Approval needs a passed inspection by someone other than the approver (four
/// eyes), and the premises must keep the minimum spacing to active outlets.
pub fn approve(
    state: &ApplicationState,
    approver: &str,
    nearest: Option<&NearestOutlet>,
    min_spacing_m: f64,
) -> Result<ApplicationState, Refusal> {
    match state {
        ApplicationState::Inspected {
            outcome: InspectionOutcome::Pass,
            inspector,
        } => {
            if inspector == approver {
                return Err(refuse(
                    "APPROVER_IS_INSPECTOR",
                    state.name(),
                    format!("{approver} inspected these premises and may not also approve them"),
                ));
            }
            if let Some(outlet) = nearest.filter(|o| o.distance_m < min_spacing_m) {
                return Err(refuse(
                    "SPACING_BELOW_MINIMUM",
                    state.name(),
                    format!(
                        "licensed outlet {} is {:.0} m away; the minimum spacing is {:.0} m",
                        outlet.license_number, outlet.distance_m, min_spacing_m
                    ),
                ));
            }
            Ok(ApplicationState::Approved)
        }
        ApplicationState::Inspected {
            outcome: InspectionOutcome::Fail,
            ..
        } => Err(refuse(
            "INSPECTION_NOT_PASSED",
            state.name(),
            "the latest inspection failed; approval needs a passed inspection",
        )),
        ApplicationState::Submitted => Err(refuse(
            "INSPECTION_NOT_PASSED",
            state.name(),
            "the premises have not been inspected; approval needs a passed inspection",
        )),
        decided => Err(refuse(
            "APPLICATION_ALREADY_DECIDED",
            decided.name(),
            "the application is already decided",
        )),
    }
}

pub fn reject(state: &ApplicationState) -> Result<ApplicationState, Refusal> {
    match state {
        ApplicationState::Submitted | ApplicationState::Inspected { .. } => Ok(ApplicationState::Rejected),
        decided => Err(refuse(
            "APPLICATION_ALREADY_DECIDED",
            decided.name(),
            "the application is already decided",
        )),
    }
}

/// A license as the rules see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicenseTerm {
    pub status: LicenseStatus,
    pub valid_from: DateTime<Utc>,
    pub valid_to: DateTime<Utc>,
    /// End of a suspension; `None` means until reinstated.
    pub suspended_until: Option<DateTime<Utc>>,
}

/// The status at `now`: a license expires by itself at the end of its term, and a
/// suspension with an end date lifts by itself at that date.
pub fn effective_status(license: &LicenseTerm, now: DateTime<Utc>) -> LicenseStatus {
    match license.status {
        LicenseStatus::Active | LicenseStatus::Suspended if now >= license.valid_to => LicenseStatus::Expired,
        LicenseStatus::Suspended if license.suspended_until.is_some_and(|until| now >= until) => {
            LicenseStatus::Active
        }
        status => status,
    }
}

/// A new license's term: from approval for the configured length.
pub fn new_term(approved_at: DateTime<Utc>, term: Duration) -> LicenseTerm {
    LicenseTerm {
        status: LicenseStatus::Active,
        valid_from: approved_at,
        valid_to: approved_at + term,
        suspended_until: None,
    }
}

/// A renewal approved before expiry extends the term from its current end, without
/// a gap; after expiry the new term starts at approval. A revoked license cannot be
/// renewed. A suspension stays in force across the renewal.
pub fn renew(
    license: &LicenseTerm,
    approved_at: DateTime<Utc>,
    term: Duration,
) -> Result<LicenseTerm, Refusal> {
    match effective_status(license, approved_at) {
        LicenseStatus::Revoked => Err(refuse(
            "LICENSE_REVOKED",
            LicenseStatus::Revoked.name(),
            "a revoked license cannot be renewed; apply for a new one",
        )),
        LicenseStatus::Expired => Ok(new_term(approved_at, term)),
        status => Ok(LicenseTerm {
            status,
            valid_from: license.valid_from,
            valid_to: license.valid_to + term,
            suspended_until: license.suspended_until,
        }),
    }
}

pub fn suspend(
    license: &LicenseTerm,
    now: DateTime<Utc>,
    until: Option<DateTime<Utc>>,
) -> Result<LicenseTerm, Refusal> {
    match effective_status(license, now) {
        LicenseStatus::Active => {
            if until.is_some_and(|u| u <= now) {
                return Err(refuse(
                    "SUSPENSION_END_IN_PAST",
                    LicenseStatus::Active.name(),
                    "a suspension must end in the future",
                ));
            }
            Ok(LicenseTerm {
                status: LicenseStatus::Suspended,
                suspended_until: until,
                ..license.clone()
            })
        }
        status => Err(refuse(
            "LICENSE_NOT_ACTIVE",
            status.name(),
            format!("only an active license can be suspended; it is {}", status.name()),
        )),
    }
}

pub fn reinstate(license: &LicenseTerm, now: DateTime<Utc>) -> Result<LicenseTerm, Refusal> {
    match effective_status(license, now) {
        LicenseStatus::Suspended => Ok(LicenseTerm {
            status: LicenseStatus::Active,
            suspended_until: None,
            ..license.clone()
        }),
        status => Err(refuse(
            "LICENSE_NOT_SUSPENDED",
            status.name(),
            format!(
                "only a suspended license can be reinstated; it is {}",
                status.name()
            ),
        )),
    }
}

pub fn revoke(license: &LicenseTerm, now: DateTime<Utc>) -> Result<LicenseTerm, Refusal> {
    match effective_status(license, now) {
        LicenseStatus::Active | LicenseStatus::Suspended => Ok(LicenseTerm {
            status: LicenseStatus::Revoked,
            suspended_until: None,
            ..license.clone()
        }),
        status => Err(refuse(
            "LICENSE_NOT_IN_FORCE",
            status.name(),
            format!("only a license in force can be revoked; it is {}", status.name()),
        )),
    }
}

/// The stored state brought up to `now` (expiry, end of suspension), for the sweep
/// that persists what time has already decided.
pub fn settle(license: &LicenseTerm, now: DateTime<Utc>) -> LicenseTerm {
    let status = effective_status(license, now);
    LicenseTerm {
        status,
        suspended_until: if status == LicenseStatus::Suspended {
            license.suspended_until
        } else {
            None
        },
        ..license.clone()
    }
}

/// Great-circle distance in meters (haversine). Spacing rules are tens of meters,
/// far above the formula's error at city scale.
pub fn distance_m(a: (f64, f64), b: (f64, f64)) -> f64 {
    const EARTH_RADIUS_M: f64 = 6_371_000.0;
    let (lat1, lon1) = (a.0.to_radians(), a.1.to_radians());
    let (lat2, lon2) = (b.0.to_radians(), b.1.to_radians());
    let h =
        ((lat2 - lat1) / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * ((lon2 - lon1) / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().clamp(0.0, 1.0).asin()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(day: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_790_000_000 + day * 86_400, 0).unwrap_or_default()
    }

    fn active(from: i64, to: i64) -> LicenseTerm {
        LicenseTerm {
            status: LicenseStatus::Active,
            valid_from: at(from),
            valid_to: at(to),
            suspended_until: None,
        }
    }

    fn inspected(outcome: InspectionOutcome, by: &str) -> ApplicationState {
        ApplicationState::Inspected {
            outcome,
            inspector: by.into(),
        }
    }

    #[test]
    fn an_inspector_may_not_approve_their_own_inspection() {
        let refusal = approve(&inspected(InspectionOutcome::Pass, "mi-1"), "mi-1", None, 50.0).unwrap_err();
        assert_eq!(refusal.reason, "APPROVER_IS_INSPECTOR");
        assert_eq!(
            approve(&inspected(InspectionOutcome::Pass, "mi-1"), "lo-1", None, 50.0),
            Ok(ApplicationState::Approved)
        );
    }

    #[test]
    fn approval_needs_a_passed_inspection() {
        for state in [
            ApplicationState::Submitted,
            inspected(InspectionOutcome::Fail, "mi-1"),
        ] {
            assert_eq!(
                approve(&state, "lo-1", None, 50.0).unwrap_err().reason,
                "INSPECTION_NOT_PASSED"
            );
        }
    }

    #[test]
    fn an_outlet_within_the_minimum_spacing_blocks_approval() {
        let near = NearestOutlet {
            license_number: "l-1".into(),
            distance_m: 30.0,
        };
        let refusal = approve(
            &inspected(InspectionOutcome::Pass, "mi-1"),
            "lo-1",
            Some(&near),
            50.0,
        )
        .unwrap_err();
        assert_eq!(refusal.reason, "SPACING_BELOW_MINIMUM");
        assert!(refusal.message.contains("l-1") && refusal.message.contains("30 m"));
    }

    #[test]
    fn a_license_expires_by_itself_at_the_end_of_its_term() {
        let license = active(0, 365);
        assert_eq!(effective_status(&license, at(364)), LicenseStatus::Active);
        assert_eq!(effective_status(&license, at(365)), LicenseStatus::Expired);
        assert_eq!(settle(&license, at(400)).status, LicenseStatus::Expired);
    }

    #[test]
    fn a_renewal_before_expiry_extends_without_a_gap() {
        let renewed = renew(&active(0, 365), at(300), Duration::days(365)).unwrap();
        assert_eq!(renewed.valid_from, at(0));
        assert_eq!(renewed.valid_to, at(730));
        assert_eq!(renewed.status, LicenseStatus::Active);
        // After expiry the new term starts at approval.
        let late = renew(&active(0, 365), at(400), Duration::days(365)).unwrap();
        assert_eq!((late.valid_from, late.valid_to), (at(400), at(765)));
    }

    #[test]
    fn a_suspension_with_an_end_lifts_by_itself() {
        let suspended = suspend(&active(0, 365), at(10), Some(at(40))).unwrap();
        assert_eq!(effective_status(&suspended, at(20)), LicenseStatus::Suspended);
        assert_eq!(effective_status(&suspended, at(40)), LicenseStatus::Active);
    }

    #[test]
    fn illegal_transitions_name_the_current_state() {
        let revoked = revoke(&active(0, 365), at(1)).unwrap();
        let refusal = reinstate(&revoked, at(2)).unwrap_err();
        assert_eq!(refusal.current_state, "REVOKED");
        assert_eq!(
            renew(&revoked, at(2), Duration::days(1)).unwrap_err().reason,
            "LICENSE_REVOKED"
        );
        assert_eq!(
            suspend(&active(0, 5), at(9), None).unwrap_err().current_state,
            "EXPIRED"
        );
    }

    #[test]
    fn distances_are_in_meters() {
        // One thousandth of a degree of latitude is about 111 m.
        let d = distance_m((30.0, 104.0), (30.001, 104.0));
        assert!((d - 111.2).abs() < 0.5, "{d}");
        assert_eq!(distance_m((30.0, 104.0), (30.0, 104.0)), 0.0);
    }

    #[derive(Debug, Clone)]
    enum Call {
        Suspend(Option<i64>),
        Reinstate,
        Revoke,
        Renew(i64),
        Wait(i64),
    }

    fn call() -> impl Strategy<Value = Call> {
        prop_oneof![
            proptest::option::of(1i64..200).prop_map(Call::Suspend),
            Just(Call::Reinstate),
            Just(Call::Revoke),
            (1i64..800).prop_map(Call::Renew),
            (0i64..400).prop_map(Call::Wait),
        ]
    }

    proptest! {
        /// No sequence of calls reaches an illegal state: terms never shrink or
        /// invert, only a suspended license has a suspension end, nothing leaves
        /// REVOKED, and a refused call changes nothing.
        #[test]
        fn no_sequence_of_calls_reaches_an_illegal_state(calls in proptest::collection::vec(call(), 0..40)) {
            let mut now = at(0);
            let mut license = active(0, 365);
            for call in calls {
                let before = license.clone();
                let result = match call {
                    Call::Suspend(days) => suspend(&license, now, days.map(|d| now + Duration::days(d))),
                    Call::Reinstate => reinstate(&license, now),
                    Call::Revoke => revoke(&license, now),
                    Call::Renew(days) => renew(&license, now, Duration::days(days)),
                    Call::Wait(days) => {
                        now += Duration::days(days);
                        Ok(settle(&license, now))
                    }
                };
                match result {
                    Ok(next) => {
                        prop_assert!(next.valid_to > next.valid_from);
                        if before.status == LicenseStatus::Revoked {
                            prop_assert_eq!(next.status, LicenseStatus::Revoked);
                        }
                        if next.status != LicenseStatus::Suspended {
                            prop_assert!(next.suspended_until.is_none());
                        }
                        license = next;
                    }
                    Err(refusal) => {
                        prop_assert_eq!(refusal.current_state, effective_status(&before, now).name());
                        prop_assert_eq!(&license, &before);
                    }
                }
            }
        }

        #[test]
        fn a_renewal_in_force_never_leaves_a_gap(remaining in 1i64..365, term in 1i64..2000) {
            let license = active(0, 365);
            let now = at(365 - remaining);
            let renewed = renew(&license, now, Duration::days(term)).unwrap();
            prop_assert_eq!(renewed.valid_from, license.valid_from);
            prop_assert_eq!(renewed.valid_to, license.valid_to + Duration::days(term));
            prop_assert_eq!(effective_status(&renewed, license.valid_to), LicenseStatus::Active);
        }
    }
}
