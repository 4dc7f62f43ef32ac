//! Who may call what (DESIGN.md "Who may do what"), as one table per service: every
//! RPC has a rule naming the roles that may call it and the scope within which they
//! may act. The server's middleware enforces the roles before a handler runs, and an
//! RPC without a rule is refused: a new RPC cannot ship open by accident. Scopes
//! (areas, ownership, depots, the retailer itself) depend on the data and are checked
//! by the handlers; the rule describes them for people. The README's "Who may call
//! what" section is rendered from these tables.

use crate::auth::Role;

/// Access to one RPC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// Fully qualified gRPC service, e.g. `distnet.customers.v1.CustomerService`.
    pub service: &'static str,
    /// Method name, e.g. `GetCustomer`.
    pub method: &'static str,
    /// Roles that may call it at all.
    pub roles: &'static [Role],
    /// Which data a caller of each role may reach, in words; empty when unlimited.
    pub scope: &'static str,
}

impl Rule {
    pub const fn new(
        service: &'static str,
        method: &'static str,
        roles: &'static [Role],
        scope: &'static str,
    ) -> Self {
        Self {
            service,
            method,
            roles,
            scope,
        }
    }

    /// Whether this rule is for the HTTP/2 path `/{service}/{method}`.
    pub fn matches(&self, path: &str) -> bool {
        path.strip_prefix('/')
            .and_then(|p| p.strip_prefix(self.service))
            .and_then(|p| p.strip_prefix('/'))
            .is_some_and(|m| m == self.method)
    }
}

/// Every service serves the event sink its subscriptions deliver to.
pub const EVENT_SINK: &[Rule] = &[Rule::new(
    "distnet.events.v1.EventSink",
    "Deliver",
    &[Role::Service, Role::Admin],
    "events of the subscriptions DESIGN.md lists; redeliveries are dropped",
)];

/// The rule for `path` among `tables`.
pub fn rule_for<'a>(tables: &[&'a [Rule]], path: &str) -> Option<&'a Rule> {
    tables.iter().flat_map(|t| t.iter()).find(|r| r.matches(path))
}

/// A Markdown table of `rules`: one row per RPC, its roles and scope.
pub fn render_markdown(rules: &[Rule]) -> String {
    let mut out = String::from("| RPC | roles | scope |\n|---|---|---|\n");
    for rule in rules {
        let roles: Vec<&str> = rule.roles.iter().map(|r| r.as_str()).collect();
        let service = rule.service.rsplit('.').next().unwrap_or(rule.service);
        out.push_str(&format!(
            "| `{service}/{}` | {} | {} |\n",
            rule.method,
            roles.join(", "),
            rule.scope
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &[Rule] = &[Rule::new(
        "distnet.customers.v1.CustomerService",
        "GetCustomer",
        &[Role::Admin, Role::Retailer],
        "a retailer itself",
    )];

    #[test]
    fn a_rule_matches_its_own_path_only() {
        assert!(TABLE[0].matches("/distnet.customers.v1.CustomerService/GetCustomer"));
        for other in [
            "/distnet.customers.v1.CustomerService/GetCustomers",
            "/distnet.customers.v1.CustomerService/Get",
            "/distnet.customers.v1.CustomerServiceX/GetCustomer",
            "distnet.customers.v1.CustomerService/GetCustomer",
            "",
        ] {
            assert!(!TABLE[0].matches(other), "{other}");
        }
        assert!(rule_for(&[EVENT_SINK, TABLE], "/distnet.events.v1.EventSink/Deliver").is_some());
        assert!(rule_for(&[TABLE], "/distnet.events.v1.EventSink/Deliver").is_none());
    }

    #[test]
    fn the_table_renders_as_markdown() {
        assert_eq!(
            render_markdown(TABLE),
            "| RPC | roles | scope |\n|---|---|---|\n\
             | `CustomerService/GetCustomer` | admin, retailer | a retailer itself |\n"
        );
    }
}
