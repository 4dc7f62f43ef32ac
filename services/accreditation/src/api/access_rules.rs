//! Who may call what on `AccreditationService` (`distnet_platform::authz`): the roles
//! are the same constants the handlers check; scopes are enforced by the handlers.

use distnet_platform::authz::Rule;

use super::credit::{CREDIT_OFFICE, CREDIT_READERS};
use super::grading::{ASSIGNMENT_READERS, GRADERS, GRADING_READERS, PURCHASE_RECORDERS};
use super::scoring::{RULEBOOK_EDITORS, RULEBOOK_READERS};
use crate::domain::access::{
    APPLICANTS, DECIDERS, INSPECTORS, LICENSE_OFFICE, READERS, SUSPENDERS, VIOLATION_RECORDERS,
};
use crate::domain::scoring::SERVING_ROLES;

const SERVICE: &str = "distnet.accreditation.v1.AccreditationService";

const READ_SCOPE: &str = "admin, service, allocation_planner, dispatcher: all; customer_manager, call_center_agent, \
     market_inspector: their areas; retailer: itself. Out of scope reads are `NOT_FOUND`, lists are filtered";

pub const ACCESS: &[Rule] = &[
    Rule::new(
        SERVICE,
        "SubmitApplication",
        APPLICANTS,
        "customer_manager: retailers they own or in their areas",
    ),
    Rule::new(SERVICE, "GetApplication", READERS, READ_SCOPE),
    Rule::new(
        SERVICE,
        "RecordInspection",
        INSPECTORS,
        "applications of retailers in their areas",
    ),
    Rule::new(
        SERVICE,
        "DecideApplication",
        DECIDERS,
        "the license office; never the inspector of the same application",
    ),
    Rule::new(SERVICE, "GetLicense", READERS, READ_SCOPE),
    Rule::new(SERVICE, "ListLicenses", READERS, READ_SCOPE),
    Rule::new(
        SERVICE,
        "SuspendLicense",
        SUSPENDERS,
        "market_inspector: their areas",
    ),
    Rule::new(SERVICE, "ReinstateLicense", LICENSE_OFFICE, ""),
    Rule::new(SERVICE, "RevokeLicense", LICENSE_OFFICE, ""),
    Rule::new(
        SERVICE,
        "RecordViolation",
        VIOLATION_RECORDERS,
        "market_inspector: their areas",
    ),
    Rule::new(SERVICE, "GetStanding", READERS, READ_SCOPE),
    Rule::new(SERVICE, "BatchGetStandings", READERS, READ_SCOPE),
    Rule::new(SERVICE, "ListStandings", READERS, READ_SCOPE),
    Rule::new(SERVICE, "GetRulebook", RULEBOOK_READERS, ""),
    Rule::new(
        SERVICE,
        "UpdateRulebook",
        RULEBOOK_EDITORS,
        "`version` must be current",
    ),
    Rule::new(
        SERVICE,
        "RecordScoreEvent",
        &SERVING_ROLES,
        "only the roles the scoring rule names; customer_manager: retailers they own or in their areas; the others: \
         their areas",
    ),
    Rule::new(SERVICE, "GetScorecard", READERS, READ_SCOPE),
    Rule::new(SERVICE, "RecordPurchases", PURCHASE_RECORDERS, ""),
    Rule::new(SERVICE, "RunGrading", GRADERS, ""),
    Rule::new(SERVICE, "GetGrading", GRADING_READERS, ""),
    Rule::new(SERVICE, "ListTierAssignments", ASSIGNMENT_READERS, ""),
    Rule::new(SERVICE, "PublishGrading", GRADERS, ""),
    Rule::new(SERVICE, "OverrideTier", GRADERS, "an override needs a reason"),
    Rule::new(SERVICE, "UpsertCreditProfile", CREDIT_OFFICE, "the credit office"),
    Rule::new(
        SERVICE,
        "GetCreditProfile",
        CREDIT_READERS,
        "admin, service, allocation_planner: all; customer_manager: owned or in their areas; call_center_agent: their \
         areas; retailer: itself",
    ),
];
