//! VRPLIB benchmark instances (`.vrp`) and best-known solutions (`.sol`).
//!
//! Reads the CVRP and VRPTW instances shipped in `bench/vrplib` (conventions in its
//! README): a header of `KEY : value` lines, then `NODE_COORD_SECTION`,
//! `DEMAND_SECTION`, optionally `TIME_WINDOW_SECTION` (and `SERVICE_TIME_SECTION`),
//! `DEPOT_SECTION` and `EOF`. Only `EUC_2D` distances and a single depot are supported.
//!
//! Parsing never panics: every problem in the text is a [`VrplibError`] that names the
//! line (1-based) where it was found.
//!
//! Costs follow the best-known-solution conventions: CVRP (X set) rounds each Euclidean
//! edge to the nearest integer, VRPTW (Gehring & Homberger, DIMACS) truncates each edge
//! to one decimal. [`Instance::rounding`] picks the convention and
//! [`Instance::evaluate_routes`] recomputes a solution's cost and checks it.

use std::fmt;

use super::routing::{Location, Rounding, RoutingProblem, Stop, Vehicle};

/// Largest `DIMENSION` accepted (guards allocations on hostile input).
pub const MAX_DIMENSION: usize = 200_000;

/// One VRPLIB node (the depot or a customer).
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Planar x coordinate.
    pub x: f64,
    /// Planar y coordinate.
    pub y: f64,
    /// Demand (0 for the depot).
    pub demand: f64,
    /// Earliest service start (0 when the instance has no time windows).
    pub ready: f64,
    /// Latest service start (`f64::INFINITY` when the instance has no time windows).
    pub due: f64,
    /// Service duration at this node (`SERVICE_TIME`, or `SERVICE_TIME_SECTION`; 0 at the depot).
    pub service: f64,
}

/// A parsed `.vrp` instance.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    /// `NAME`.
    pub name: String,
    /// `CAPACITY` of every vehicle.
    pub capacity: f64,
    /// `VEHICLES` (an upper bound on the fleet), if given.
    pub vehicles: Option<usize>,
    /// `SERVICE_TIME` (the same at every customer), 0 when absent.
    pub service_time: f64,
    /// Nodes in file order: `nodes[i]` is node id `i + 1`.
    pub nodes: Vec<Node>,
    /// Index into `nodes` of the depot.
    pub depot: usize,
    /// Whether the file had a `TIME_WINDOW_SECTION`.
    pub has_time_windows: bool,
}

/// A parsed `.sol` file.
#[derive(Debug, Clone, PartialEq)]
pub struct Solution {
    /// Routes as customer numbers (node id − 1, so a customer number is its index in
    /// [`Instance::nodes`] when the depot is node 1).
    pub routes: Vec<Vec<usize>>,
    /// The `Cost` line.
    pub cost: f64,
}

/// A recomputed solution: its cost by the instance's convention and what is wrong with it.
#[derive(Debug, Clone, PartialEq)]
pub struct RoutesEvaluation {
    /// Total distance by [`Instance::rounding`].
    pub cost: f64,
    /// Non-empty routes.
    pub vehicles: usize,
    /// Feasibility problems (empty when the routes are a feasible solution).
    pub violations: Vec<String>,
}

/// What went wrong while reading VRPLIB text. Line numbers are 1-based.
#[derive(Debug, Clone, PartialEq)]
pub enum VrplibError {
    /// A line that could not be understood where it was found.
    Syntax {
        /// Line number.
        line: usize,
        /// What was expected.
        message: String,
    },
    /// A number (or other value) that is malformed or out of range.
    InvalidValue {
        /// Line number.
        line: usize,
        /// The header key or section the value belongs to.
        field: &'static str,
        /// The offending text.
        value: String,
    },
    /// A required header key never appeared.
    MissingHeader {
        /// The key, e.g. `DIMENSION`.
        key: &'static str,
    },
    /// A required section never appeared.
    MissingSection {
        /// The section, e.g. `DEMAND_SECTION`.
        section: &'static str,
    },
    /// A node id outside `1..=DIMENSION`.
    NodeOutOfRange {
        /// Line number.
        line: usize,
        /// The id as written.
        id: i64,
        /// `DIMENSION`.
        dimension: usize,
    },
    /// A node listed twice in one section.
    DuplicateNode {
        /// Line number.
        line: usize,
        /// The node id.
        id: usize,
        /// The section.
        section: &'static str,
    },
    /// A node a section should list but does not.
    MissingNode {
        /// The node id.
        id: usize,
        /// The section.
        section: &'static str,
    },
    /// A feature of the format this reader does not handle.
    Unsupported {
        /// Line number (0 when not tied to a line).
        line: usize,
        /// What is not supported.
        what: String,
    },
    /// A `.sol` route names a customer the instance does not have.
    UnknownCustomer {
        /// The customer number as written.
        customer: usize,
    },
}

impl fmt::Display for VrplibError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Syntax { line, message } => write!(f, "line {line}: {message}"),
            Self::InvalidValue { line, field, value } => {
                write!(f, "line {line}: invalid value {value:?} for {field}")
            }
            Self::MissingHeader { key } => write!(f, "missing header {key}"),
            Self::MissingSection { section } => write!(f, "missing section {section}"),
            Self::NodeOutOfRange { line, id, dimension } => {
                write!(f, "line {line}: node {id} outside 1..={dimension}")
            }
            Self::DuplicateNode { line, id, section } => {
                write!(f, "line {line}: node {id} listed twice in {section}")
            }
            Self::MissingNode { id, section } => write!(f, "node {id} missing from {section}"),
            Self::Unsupported { line, what } => write!(f, "line {line}: unsupported: {what}"),
            Self::UnknownCustomer { customer } => write!(f, "unknown customer {customer}"),
        }
    }
}

impl std::error::Error for VrplibError {}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    Header,
    Coords,
    Demands,
    Windows,
    Service,
    Depots,
    Eof,
}

impl Section {
    fn name(self) -> &'static str {
        match self {
            Self::Header => "header",
            Self::Coords => "NODE_COORD_SECTION",
            Self::Demands => "DEMAND_SECTION",
            Self::Windows => "TIME_WINDOW_SECTION",
            Self::Service => "SERVICE_TIME_SECTION",
            Self::Depots => "DEPOT_SECTION",
            Self::Eof => "EOF",
        }
    }
}

/// Per-node values of one section, filled as lines are read.
struct Column<T> {
    section: Section,
    values: Vec<Option<T>>,
    seen: bool,
}

impl<T: Copy> Column<T> {
    fn new(section: Section) -> Self {
        Self {
            section,
            values: Vec::new(),
            seen: false,
        }
    }

    fn set(&mut self, line: usize, id: usize, value: T) -> Result<(), VrplibError> {
        // `id` was range-checked by the caller; `values` is sized to the dimension.
        match self.values.get_mut(id - 1) {
            Some(slot @ None) => {
                *slot = Some(value);
                Ok(())
            }
            Some(Some(_)) => Err(VrplibError::DuplicateNode {
                line,
                id,
                section: self.section.name(),
            }),
            None => Err(VrplibError::Syntax {
                line,
                message: "node index out of range".into(),
            }),
        }
    }

    fn complete(&self) -> Result<Vec<T>, VrplibError> {
        self.values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.ok_or(VrplibError::MissingNode {
                    id: i + 1,
                    section: self.section.name(),
                })
            })
            .collect()
    }
}

fn parse_f64(line: usize, field: &'static str, text: &str) -> Result<f64, VrplibError> {
    text.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| VrplibError::InvalidValue {
            line,
            field,
            value: text.to_string(),
        })
}

fn parse_nonneg(line: usize, field: &'static str, text: &str) -> Result<f64, VrplibError> {
    let v = parse_f64(line, field, text)?;
    if v < 0.0 {
        return Err(VrplibError::InvalidValue {
            line,
            field,
            value: text.to_string(),
        });
    }
    Ok(v)
}

fn parse_usize(line: usize, field: &'static str, text: &str) -> Result<usize, VrplibError> {
    text.parse::<usize>().map_err(|_| VrplibError::InvalidValue {
        line,
        field,
        value: text.to_string(),
    })
}

/// Parses a node id and checks it lies in `1..=dimension`.
fn parse_id(line: usize, text: &str, dimension: usize) -> Result<usize, VrplibError> {
    let id = text.parse::<i64>().map_err(|_| VrplibError::InvalidValue {
        line,
        field: "node id",
        value: text.to_string(),
    })?;
    match usize::try_from(id) {
        Ok(u) if (1..=dimension).contains(&u) => Ok(u),
        _ => Err(VrplibError::NodeOutOfRange { line, id, dimension }),
    }
}

fn expect_fields(line: usize, tokens: &[&str], n: usize, section: Section) -> Result<(), VrplibError> {
    if tokens.len() != n {
        return Err(VrplibError::Syntax {
            line,
            message: format!(
                "{} expects {n} fields per line, found {}",
                section.name(),
                tokens.len()
            ),
        });
    }
    Ok(())
}

/// Parses the text of a `.vrp` file.
pub fn parse_instance(text: &str) -> Result<Instance, VrplibError> {
    let mut name: Option<String> = None;
    let mut dimension: Option<usize> = None;
    let mut capacity: Option<f64> = None;
    let mut vehicles: Option<usize> = None;
    let mut service_time: f64 = 0.0;

    let mut section = Section::Header;
    let mut coords: Column<(f64, f64)> = Column::new(Section::Coords);
    let mut demands: Column<f64> = Column::new(Section::Demands);
    let mut windows: Column<(f64, f64)> = Column::new(Section::Windows);
    let mut services: Column<f64> = Column::new(Section::Service);
    let mut depots: Vec<usize> = Vec::new();
    let mut depot_closed = false;
    let mut saw_depot_section = false;

    for (idx, raw) in text.lines().enumerate() {
        let line = idx + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            continue;
        }
        let first = trimmed.split_whitespace().next().unwrap_or_default();
        let is_keyword = first.chars().next().is_some_and(|c| c.is_ascii_alphabetic());

        if section == Section::Eof {
            return Err(VrplibError::Syntax {
                line,
                message: "text after EOF".into(),
            });
        }

        if is_keyword {
            // A header `KEY : value` or a section keyword.
            let (key, value) = match trimmed.split_once(':') {
                Some((k, v)) => (k.trim(), Some(v.trim())),
                None => (first, None),
            };
            let keyword = key.to_ascii_uppercase();
            let next = match keyword.as_str() {
                "NODE_COORD_SECTION" => Some(Section::Coords),
                "DEMAND_SECTION" => Some(Section::Demands),
                "TIME_WINDOW_SECTION" => Some(Section::Windows),
                "SERVICE_TIME_SECTION" => Some(Section::Service),
                "DEPOT_SECTION" => Some(Section::Depots),
                "EOF" => Some(Section::Eof),
                _ => None,
            };
            if let Some(next) = next {
                if value.is_some_and(|v| !v.is_empty()) || trimmed.split_whitespace().count() > 1 {
                    return Err(VrplibError::Syntax {
                        line,
                        message: format!("unexpected text after {keyword}"),
                    });
                }
                if next != Section::Eof {
                    let dim = dimension.ok_or(VrplibError::Syntax {
                        line,
                        message: format!("{keyword} before DIMENSION"),
                    })?;
                    let column_seen = match next {
                        Section::Coords => &mut coords.seen,
                        Section::Demands => &mut demands.seen,
                        Section::Windows => &mut windows.seen,
                        Section::Service => &mut services.seen,
                        _ => &mut saw_depot_section,
                    };
                    if *column_seen {
                        return Err(VrplibError::Syntax {
                            line,
                            message: format!("{keyword} appears twice"),
                        });
                    }
                    *column_seen = true;
                    match next {
                        Section::Coords => coords.values = vec![None; dim],
                        Section::Demands => demands.values = vec![None; dim],
                        Section::Windows => windows.values = vec![None; dim],
                        Section::Service => services.values = vec![None; dim],
                        _ => {}
                    }
                }
                section = next;
                continue;
            }
            if section != Section::Header {
                return Err(VrplibError::Syntax {
                    line,
                    message: format!("unexpected {key:?} inside {}", section.name()),
                });
            }
            let Some(value) = value else {
                return Err(VrplibError::Syntax {
                    line,
                    message: format!("expected `{key} : value`"),
                });
            };
            match keyword.as_str() {
                "NAME" => name = Some(value.to_string()),
                "DIMENSION" => {
                    let dim = parse_usize(line, "DIMENSION", value)?;
                    if !(2..=MAX_DIMENSION).contains(&dim) {
                        return Err(VrplibError::InvalidValue {
                            line,
                            field: "DIMENSION",
                            value: value.into(),
                        });
                    }
                    if dimension.is_some_and(|d| d != dim) {
                        return Err(VrplibError::Syntax {
                            line,
                            message: "DIMENSION given twice".into(),
                        });
                    }
                    dimension = Some(dim);
                }
                "CAPACITY" => capacity = Some(parse_nonneg(line, "CAPACITY", value)?),
                "VEHICLES" => vehicles = Some(parse_usize(line, "VEHICLES", value)?),
                "SERVICE_TIME" => service_time = parse_nonneg(line, "SERVICE_TIME", value)?,
                "EDGE_WEIGHT_TYPE" if !value.eq_ignore_ascii_case("EUC_2D") => {
                    return Err(VrplibError::Unsupported {
                        line,
                        what: format!("EDGE_WEIGHT_TYPE {value} (only EUC_2D)"),
                    });
                }
                "TYPE" => {
                    let t = value.to_ascii_uppercase();
                    if !matches!(t.as_str(), "CVRP" | "VRPTW" | "CVRPTW") {
                        return Err(VrplibError::Unsupported {
                            line,
                            what: format!("TYPE {value}"),
                        });
                    }
                }
                // COMMENT and other informational keys.
                _ => {}
            }
            continue;
        }

        // A data line of the current section.
        let tokens: Vec<&str> = trimmed.split_whitespace().collect();
        let dim = dimension.unwrap_or(0);
        match section {
            Section::Header | Section::Eof => {
                return Err(VrplibError::Syntax {
                    line,
                    message: "data line outside a section".into(),
                });
            }
            Section::Coords => {
                expect_fields(line, &tokens, 3, section)?;
                let id = parse_id(line, tokens[0], dim)?;
                let x = parse_f64(line, "NODE_COORD_SECTION", tokens[1])?;
                let y = parse_f64(line, "NODE_COORD_SECTION", tokens[2])?;
                coords.set(line, id, (x, y))?;
            }
            Section::Demands => {
                expect_fields(line, &tokens, 2, section)?;
                let id = parse_id(line, tokens[0], dim)?;
                let d = parse_nonneg(line, "DEMAND_SECTION", tokens[1])?;
                demands.set(line, id, d)?;
            }
            Section::Windows => {
                expect_fields(line, &tokens, 3, section)?;
                let id = parse_id(line, tokens[0], dim)?;
                let ready = parse_nonneg(line, "TIME_WINDOW_SECTION", tokens[1])?;
                let due = parse_nonneg(line, "TIME_WINDOW_SECTION", tokens[2])?;
                if due < ready {
                    return Err(VrplibError::InvalidValue {
                        line,
                        field: "TIME_WINDOW_SECTION",
                        value: trimmed.to_string(),
                    });
                }
                windows.set(line, id, (ready, due))?;
            }
            Section::Service => {
                expect_fields(line, &tokens, 2, section)?;
                let id = parse_id(line, tokens[0], dim)?;
                let s = parse_nonneg(line, "SERVICE_TIME_SECTION", tokens[1])?;
                services.set(line, id, s)?;
            }
            Section::Depots => {
                for token in tokens {
                    if depot_closed {
                        return Err(VrplibError::Syntax {
                            line,
                            message: "DEPOT_SECTION data after -1".into(),
                        });
                    }
                    if token == "-1" {
                        depot_closed = true;
                        continue;
                    }
                    let id = parse_id(line, token, dim)?;
                    if !depots.is_empty() {
                        return Err(VrplibError::Unsupported {
                            line,
                            what: "more than one depot".into(),
                        });
                    }
                    depots.push(id);
                }
            }
        }
    }

    let name = name.ok_or(VrplibError::MissingHeader { key: "NAME" })?;
    dimension.ok_or(VrplibError::MissingHeader { key: "DIMENSION" })?;
    let capacity = capacity.ok_or(VrplibError::MissingHeader { key: "CAPACITY" })?;
    if !coords.seen {
        return Err(VrplibError::MissingSection {
            section: "NODE_COORD_SECTION",
        });
    }
    if !demands.seen {
        return Err(VrplibError::MissingSection {
            section: "DEMAND_SECTION",
        });
    }
    let coords = coords.complete()?;
    let demand_values = demands.complete()?;
    let window_values = if windows.seen {
        Some(windows.complete()?)
    } else {
        None
    };
    let service_values = if services.seen {
        Some(services.complete()?)
    } else {
        None
    };
    // VRPLIB's default depot is node 1 when DEPOT_SECTION is absent.
    let depot = depots.first().copied().unwrap_or(1) - 1;

    let nodes = coords
        .iter()
        .enumerate()
        .map(|(i, &(x, y))| {
            let (ready, due) = window_values
                .as_ref()
                .and_then(|w| w.get(i).copied())
                .unwrap_or((0.0, f64::INFINITY));
            let service = match &service_values {
                Some(s) => s.get(i).copied().unwrap_or(0.0),
                None if i == depot => 0.0,
                None => service_time,
            };
            Node {
                x,
                y,
                demand: demand_values.get(i).copied().unwrap_or(0.0),
                ready,
                due,
                service,
            }
        })
        .collect();

    Ok(Instance {
        name,
        capacity,
        vehicles,
        service_time,
        nodes,
        depot,
        has_time_windows: window_values.is_some(),
    })
}

/// Parses the text of a `.sol` file: `Route #k: c1 c2 ...` lines and a `Cost <value>` line.
pub fn parse_solution(text: &str) -> Result<Solution, VrplibError> {
    let mut routes = Vec::new();
    let mut cost = None;
    for (idx, raw) in text.lines().enumerate() {
        let line = idx + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            continue;
        }
        let mut tokens = trimmed.split_whitespace();
        let first = tokens.next().unwrap_or_default();
        if first.eq_ignore_ascii_case("route") {
            let Some((_, customers)) = trimmed.split_once(':') else {
                return Err(VrplibError::Syntax {
                    line,
                    message: "expected `Route #k: customers`".into(),
                });
            };
            let route = customers
                .split_whitespace()
                .map(|c| parse_usize(line, "Route", c))
                .collect::<Result<Vec<_>, _>>()?;
            routes.push(route);
        } else if first.eq_ignore_ascii_case("cost") {
            if cost.is_some() {
                return Err(VrplibError::Syntax {
                    line,
                    message: "Cost given twice".into(),
                });
            }
            let value = tokens.next().ok_or(VrplibError::Syntax {
                line,
                message: "Cost without a value".into(),
            })?;
            if tokens.next().is_some() {
                return Err(VrplibError::Syntax {
                    line,
                    message: "unexpected text after Cost".into(),
                });
            }
            cost = Some(parse_f64(line, "Cost", value)?);
        } else {
            return Err(VrplibError::Syntax {
                line,
                message: format!("unexpected {first:?}"),
            });
        }
    }
    let cost = cost.ok_or(VrplibError::MissingHeader { key: "Cost" })?;
    Ok(Solution { routes, cost })
}

/// Distance between two planar points under a rounding convention, in integer units of
/// [`Rounding::scale`] (so sums are exact).
fn edge_units(a: &Node, b: &Node, rounding: Rounding) -> i64 {
    let d = (a.x - b.x).hypot(a.y - b.y);
    // `as` saturates on overflow and maps NaN to 0; coordinates are finite by construction.
    match rounding {
        Rounding::Nearest => d.round() as i64,
        Rounding::TruncateOneDecimal => (d * 10.0).trunc() as i64,
        Rounding::Exact => (d * 1e6).round() as i64,
    }
}

impl Instance {
    /// The BKS convention for this instance: VRPTW (time windows present) truncates to one
    /// decimal, CVRP rounds to the nearest integer.
    pub fn rounding(&self) -> Rounding {
        if self.has_time_windows {
            Rounding::TruncateOneDecimal
        } else {
            Rounding::Nearest
        }
    }

    /// Number of customers (nodes other than the depot).
    pub fn customers(&self) -> usize {
        self.nodes.len().saturating_sub(1)
    }

    /// Edge length between node indices under `rounding` (`None` if an index is out of range).
    pub fn distance(&self, from: usize, to: usize, rounding: Rounding) -> Option<f64> {
        let (a, b) = (self.nodes.get(from)?, self.nodes.get(to)?);
        Some(edge_units(a, b, rounding) as f64 / rounding.scale())
    }

    /// Maps a customer number from a `.sol` file to its node index: customer numbers are
    /// node ids minus one, i.e. node indices (the depot, node 1, being index 0).
    fn customer_node(&self, customer: usize) -> Result<usize, VrplibError> {
        if customer == self.depot || customer >= self.nodes.len() {
            return Err(VrplibError::UnknownCustomer { customer });
        }
        Ok(customer)
    }

    /// Cost of `routes` (customer numbers, as in `.sol` files) by [`Instance::rounding`].
    pub fn solution_cost(&self, routes: &[Vec<usize>]) -> Result<f64, VrplibError> {
        Ok(self.evaluate_routes(routes)?.cost)
    }

    /// Recomputes the cost of `routes` by the instance's convention and checks them:
    /// every customer exactly once, no route over capacity, and (with time windows) every
    /// service starting by its due time and every vehicle back by the depot's due time,
    /// travel time being the (rounded) distance.
    pub fn evaluate_routes(&self, routes: &[Vec<usize>]) -> Result<RoutesEvaluation, VrplibError> {
        let rounding = self.rounding();
        let mut units: i64 = 0;
        let mut violations = Vec::new();
        let mut visits = vec![0usize; self.nodes.len()];
        let depot = self.nodes.get(self.depot).ok_or(VrplibError::MissingNode {
            id: self.depot + 1,
            section: "NODE_COORD_SECTION",
        })?;
        let mut vehicles = 0;
        for (r, route) in routes.iter().enumerate() {
            if route.is_empty() {
                continue;
            }
            vehicles += 1;
            let mut load = 0.0;
            let mut prev = depot;
            let mut time = depot.ready;
            for &customer in route {
                let index = self.customer_node(customer)?;
                let node = &self.nodes[index];
                visits[index] += 1;
                let leg = edge_units(prev, node, rounding);
                units = units.saturating_add(leg);
                load += node.demand;
                if self.has_time_windows {
                    let arrival = time + leg as f64 / rounding.scale();
                    if arrival > node.due + 1e-9 {
                        violations.push(format!(
                            "route {}: customer {customer} reached at {arrival:.1} after due {}",
                            r + 1,
                            node.due
                        ));
                    }
                    time = arrival.max(node.ready) + node.service;
                }
                prev = node;
            }
            let back = edge_units(prev, depot, rounding);
            units = units.saturating_add(back);
            if self.has_time_windows {
                let arrival = time + back as f64 / rounding.scale();
                if arrival > depot.due + 1e-9 {
                    violations.push(format!(
                        "route {}: back at depot at {arrival:.1} after {}",
                        r + 1,
                        depot.due
                    ));
                }
            }
            if load > self.capacity + 1e-9 {
                violations.push(format!(
                    "route {}: load {load} over capacity {}",
                    r + 1,
                    self.capacity
                ));
            }
        }
        for (index, &count) in visits.iter().enumerate() {
            if index != self.depot && count != 1 {
                violations.push(format!("node {} visited {count} times", index + 1));
            }
        }
        if let Some(limit) = self.vehicles
            && vehicles > limit
        {
            violations.push(format!("{vehicles} vehicles used, at most {limit}"));
        }
        Ok(RoutesEvaluation {
            cost: units as f64 / rounding.scale(),
            vehicles,
            violations,
        })
    }

    /// The instance in our routing model, so benchmarks run through the planning code:
    /// planar locations, [`Instance::rounding`] travel, one stop per customer (id = its
    /// customer number, as in `.sol` files), and a homogeneous fleet of `VEHICLES`
    /// (or one vehicle per customer when unlimited) whose shift is the depot's window.
    pub fn to_routing_problem(&self) -> RoutingProblem {
        let depot_node = self.nodes.get(self.depot);
        let (depot_location, shift) = match depot_node {
            Some(n) => (Location::Planar { x: n.x, y: n.y }, (n.ready, n.due)),
            None => (Location::Planar { x: 0.0, y: 0.0 }, (0.0, f64::INFINITY)),
        };
        let stops = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != self.depot)
            .map(|(i, n)| Stop {
                // Customer number as used in `.sol` files (node id − 1).
                id: i.to_string(),
                location: Location::Planar { x: n.x, y: n.y },
                demand: n.demand,
                service_seconds: n.service,
                window: if self.has_time_windows {
                    Some((n.ready, n.due))
                } else {
                    None
                },
            })
            .collect::<Vec<_>>();
        let fleet = self.vehicles.unwrap_or(stops.len()).max(1);
        let vehicles = (1..=fleet)
            .map(|k| Vehicle {
                id: format!("v{k}"),
                capacity: self.capacity,
                shift,
                max_trips: 1,
            })
            .collect();
        RoutingProblem {
            depot: depot_location,
            stops,
            vehicles,
            travel: super::routing::Travel::Planar {
                rounding: self.rounding(),
            },
            multi_trip: Default::default(),
        }
    }
}
