//! Who may call what on `CustomerService` (`distnet_platform::authz`): the roles are
//! the same constants the handlers check; scopes are enforced by the handlers.

use distnet_platform::authz::Rule;

use super::cases::{CASE_HANDLERS, CASE_OPENERS, CASE_READERS, CASE_STATS_READERS};
use super::insights::{HISTORY_IMPORTERS, INSIGHT_READERS};
use super::interactions::{INTERACTION_LOGGERS, INTERACTION_READERS};
use super::surveys::SURVEY_RECORDERS;
use super::visits::VISIT_READERS;
use crate::domain::access::{CREATORS, EDITORS, OWNER_ASSIGNERS, READERS};

const SERVICE: &str = "distnet.customers.v1.CustomerService";

const READ_SCOPE: &str = "admin, service, dispatcher, allocation_planner: all; customer_manager: owned or in their \
     areas; call_center_agent, market_inspector: their areas; retailer: itself. Out of scope reads are `NOT_FOUND`, \
     lists are filtered";
const CASE_READ_SCOPE: &str = "admin, service: all; staff: cases of customers they may read, plus cases they opened \
     or handle; retailer: its own. Out of scope reads are `NOT_FOUND`, lists are filtered";
const CASE_ACT_SCOPE: &str = "the case's first-contact owner or current handler (admins any); others who may read \
     it get `PERMISSION_DENIED`";
const CUSTOMER_IN_SCOPE: &str = "a customer the caller may read (otherwise `NOT_FOUND`)";

pub const ACCESS: &[Rule] = &[
    Rule::new(
        SERVICE,
        "CreateCustomer",
        CREATORS,
        "a customer manager creates only in their areas and owns what they create unless `owner_id` says otherwise",
    ),
    Rule::new(SERVICE, "GetCustomer", READERS, READ_SCOPE),
    Rule::new(SERVICE, "BatchGetCustomers", READERS, READ_SCOPE),
    Rule::new(
        SERVICE,
        "ListCustomers",
        READERS,
        "as `GetCustomer`; filtering by `segment` or `flag` needs the right to read insights",
    ),
    Rule::new(
        SERVICE,
        "UpdateCustomer",
        EDITORS,
        "customer_manager: owned or in their areas, and may move a retailer only into one of their areas",
    ),
    Rule::new(SERVICE, "ReassignOwner", OWNER_ASSIGNERS, ""),
    Rule::new(SERVICE, "ListOwnershipHistory", READERS, READ_SCOPE),
    Rule::new(
        SERVICE,
        "LogInteraction",
        INTERACTION_LOGGERS,
        "a customer the caller may read (otherwise `NOT_FOUND`); the actor is the caller",
    ),
    Rule::new(
        SERVICE,
        "ListInteractions",
        INTERACTION_READERS,
        "admin, service: all; staff: contacts with customers they may read, plus their own; retailer: its own",
    ),
    Rule::new(
        SERVICE,
        "GetVisitPlan",
        VISIT_READERS,
        "customer_manager: their own; another rep's is `PERMISSION_DENIED`",
    ),
    Rule::new(
        SERVICE,
        "GetVisitCompliance",
        VISIT_READERS,
        "customer_manager: their own; another rep's is `PERMISSION_DENIED`",
    ),
    Rule::new(SERVICE, "RecordSurvey", SURVEY_RECORDERS, CUSTOMER_IN_SCOPE),
    Rule::new(
        SERVICE,
        "OpenCase",
        CASE_OPENERS,
        "a customer the caller may read (otherwise `NOT_FOUND`); the caller becomes the first-contact owner",
    ),
    Rule::new(SERVICE, "GetCase", CASE_READERS, CASE_READ_SCOPE),
    Rule::new(SERVICE, "TransferCase", CASE_HANDLERS, CASE_ACT_SCOPE),
    Rule::new(SERVICE, "ResolveCase", CASE_HANDLERS, CASE_ACT_SCOPE),
    Rule::new(SERVICE, "RecordCallback", CASE_HANDLERS, CASE_ACT_SCOPE),
    Rule::new(SERVICE, "CloseCase", CASE_HANDLERS, CASE_ACT_SCOPE),
    Rule::new(SERVICE, "ListCases", CASE_READERS, CASE_READ_SCOPE),
    Rule::new(
        SERVICE,
        "GetCaseStats",
        CASE_STATS_READERS,
        "admin: all; staff: their areas; another area is `PERMISSION_DENIED`",
    ),
    Rule::new(
        SERVICE,
        "GetCustomerInsights",
        INSIGHT_READERS,
        "admin, service, allocation_planner: all; customer_manager: owned or in their areas; call_center_agent: their \
         areas. Out of scope reads are `NOT_FOUND`",
    ),
    Rule::new(SERVICE, "ImportOrderHistory", HISTORY_IMPORTERS, ""),
];
