//! Route planning: our problem model, and an adapter that solves it with `vrp-core` 1.25.
//!
//! A [`RoutingProblem`] is one depot's stops for one slot (date, MORNING/AFTERNOON)
//! and the vehicles available. [`solve`] plans capacitated routes with time windows:
//!
//! - **capacity** in cases (fractional cases allowed; handled internally in hundredths),
//! - **time windows**: a stop's window bounds the *start* of service (arrive early and
//!   wait, never start late),
//! - **shifts**: a vehicle leaves the depot at its shift start and must be back by its
//!   shift end,
//! - **service time** per stop,
//! - **second trips**: a vehicle with `max_trips = 2` may return to the depot, reload
//!   (for [`MultiTripRules::reload_seconds`]) and go out again, modelled with vrp-core's
//!   reload feature; stops served after a reload must lie within
//!   [`MultiTripRules::second_trip_radius_m`] of the depot (the 25 km band),
//! - **travel** from haversine distance × circuity ÷ speed, planar coordinates (VRPLIB
//!   benchmarks) or a supplied matrix.
//!
//! **Search.** vrp-core builds the first solutions and improves them for half the
//! budget; our own ruin-and-recreate search (`polish`: string removals, cheapest
//! reinsertion with blinks, simulated annealing, after Christiaens & Vanden Berghe
//! 2020) spends the other half on its best single-trip routes, on one chain per thread.
//! On the 1,000-stop benchmark instances this halves vrp-core's gap to the best known
//! solutions (BENCHMARKS.md).
//!
//! The objective is lexicographic: serve as many stops as possible, then minimise total
//! distance (vehicle count and waiting time are not minimised; between otherwise equal
//! choices, earlier vehicles in [`RoutingProblem::vehicles`] are preferred).
//!
//! Stops that cannot be served are reported with an [`UnassignedReason`]. Plans are
//! checked independently of the solver ([`verify_plan`]); should vrp-core ever return an
//! infeasible route, the offending stops are taken out and reported rather than published.
//!
//! Everything here is synchronous and CPU-bound: the service runs [`solve`] on the
//! blocking pool.

use std::fmt;
use std::time::Duration;

mod engine;
mod polish;
mod schedule;
mod travel;

pub use travel::{EARTH_RADIUS_M, MAX_LOCATIONS, haversine_m};

use travel::Matrix;

/// Largest vehicle capacity or stop demand accepted, in cases (keeps the solver's
/// integer hundredths far from overflow).
pub const MAX_CASES: f64 = 100_000.0;

/// Where a depot or stop is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Location {
    /// WGS-84 latitude and longitude in degrees.
    LatLng {
        /// Latitude, −90..=90.
        lat: f64,
        /// Longitude, −180..=180.
        lng: f64,
    },
    /// Planar coordinates (VRPLIB instances).
    Planar {
        /// x.
        x: f64,
        /// y.
        y: f64,
    },
}

/// How planar distances are rounded (VRPLIB conventions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rounding {
    /// Round each edge to the nearest integer (CVRP, X set).
    Nearest,
    /// Truncate each edge to one decimal (VRPTW, DIMACS / Gehring & Homberger).
    TruncateOneDecimal,
    /// No rounding.
    Exact,
}

/// The travel model.
#[derive(Debug, Clone, PartialEq)]
pub enum Travel {
    /// Road distance estimated as great-circle distance × `circuity`; time = distance ÷
    /// `speed_kmh`. All locations must be [`Location::LatLng`].
    Haversine {
        /// Road distance over straight-line distance (≥ 1; typically 1.2–1.4 in cities).
        circuity: f64,
        /// Average driving speed.
        speed_kmh: f64,
    },
    /// Euclidean distance between [`Location::Planar`] points, rounded by `rounding`;
    /// travel time equals distance (VRPLIB).
    Planar {
        /// Rounding convention.
        rounding: Rounding,
    },
    /// Supplied matrices, (stops + 1)², index 0 the depot and `i + 1` for `stops[i]`.
    /// A negative or non-finite entry means the leg is impossible.
    Matrix {
        /// Distances in metres.
        distances_m: Vec<Vec<f64>>,
        /// Durations in seconds.
        durations_s: Vec<Vec<f64>>,
    },
}

/// A delivery to make.
#[derive(Debug, Clone, PartialEq)]
pub struct Stop {
    /// Caller's id (e.g. the shipment id); unique within the problem.
    pub id: String,
    /// Where.
    pub location: Location,
    /// Cases to deliver (fractional cases allowed; resolution 0.01).
    pub demand: f64,
    /// Time spent at the stop.
    pub service_seconds: f64,
    /// Receiving window `(start, end)` in seconds on the plan's clock: service must start
    /// within it. `None` means any time in the vehicle's shift. `end` may be infinite.
    pub window: Option<(f64, f64)>,
}

/// A vehicle available for the slot. It starts and ends at the depot.
#[derive(Debug, Clone, PartialEq)]
pub struct Vehicle {
    /// Caller's id; unique within the problem.
    pub id: String,
    /// Capacity in cases.
    pub capacity: f64,
    /// `(start, end)` in seconds: leaves the depot at `start`, back by `end` (may be infinite).
    pub shift: (f64, f64),
    /// Trips allowed (1 or more); a second trip starts with a reload at the depot.
    pub max_trips: u8,
}

/// Rules for vehicles with more than one trip.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MultiTripRules {
    /// Time at the depot to reload between trips.
    pub reload_seconds: f64,
    /// Stops served after a reload must lie within this straight-line distance of the
    /// depot (metres for lat/lng, planar units, or matrix distance for [`Travel::Matrix`]).
    /// `None`: no restriction.
    pub second_trip_radius_m: Option<f64>,
}

impl Default for MultiTripRules {
    /// 30 minutes to reload; second trips only within 25 km of the depot.
    fn default() -> Self {
        Self {
            reload_seconds: 1800.0,
            second_trip_radius_m: Some(25_000.0),
        }
    }
}

/// One depot, one slot: the stops to serve and the vehicles to serve them with.
#[derive(Debug, Clone, PartialEq)]
pub struct RoutingProblem {
    /// The depot every vehicle starts from and returns to.
    pub depot: Location,
    /// Stops to serve.
    pub stops: Vec<Stop>,
    /// Vehicles available.
    pub vehicles: Vec<Vehicle>,
    /// Travel model.
    pub travel: Travel,
    /// Multi-trip rules (used by vehicles with `max_trips > 1`).
    pub multi_trip: MultiTripRules,
}

/// How to run the search.
///
/// **Reproducibility.** The seed drives the random choices vrp-core makes through its
/// `Random` source, but vrp-core 1.25 is not reproducible run to run even with a fixed
/// seed, one thread and a generation limit: it iterates `std` hash sets and maps keyed
/// by pointer (`Registry` picks vehicles from a `HashSet<Arc<Actor>>`, the ruin
/// operators' tabu list evicts via `HashSet::iter().choose`, unassigned jobs are
/// re-queued from a `HashMap<Job, _>`), whose order changes between runs (upstream
/// reinterpretcat/vrp#136, #147). Same input and seed therefore give an equally valid
/// plan, not necessarily the same one; callers that need stability should persist the
/// plan (as `PublishPlan` does) rather than recompute it.
#[derive(Debug, Clone, PartialEq)]
pub struct SolveOptions {
    /// Wall-clock budget for the search. The first complete solution is always built,
    /// even if that takes longer (so a tiny budget still yields a full plan); after
    /// that the search stops as soon as the budget is spent.
    pub time_budget: Duration,
    /// Seed of the solver's random source.
    pub seed: u64,
    /// Also stop vrp-core after this many generations, and our own search after 50
    /// iterations per generation (so tests can bound the work whatever the budget).
    pub max_generations: Option<usize>,
    /// Worker threads: 0 uses rayon's global pool (all cores); `n` runs the search on a
    /// dedicated pool of `n` threads (at most [`MAX_THREADS`]), e.g. 1 to leave the other
    /// cores to request handling.
    pub threads: usize,
}

/// Upper bound on [`SolveOptions::threads`].
pub const MAX_THREADS: usize = 64;

impl Default for SolveOptions {
    /// 10 s, seed 0, no generation limit, all cores.
    fn default() -> Self {
        Self {
            time_budget: Duration::from_secs(10),
            seed: 0,
            max_generations: None,
            threads: 0,
        }
    }
}

/// Why a stop is not in the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UnassignedReason {
    /// Its demand exceeds every vehicle's capacity, or no capacity was left.
    Capacity,
    /// Its receiving window cannot be met (alone or alongside the other stops).
    TimeWindow,
    /// It fits its window but not in any vehicle's shift (including the way back).
    ShiftTime,
    /// No road (matrix entry) leads there or back.
    Unreachable,
    /// Anything else (e.g. no vehicles at all).
    Other,
}

impl UnassignedReason {
    /// The UPPER_SNAKE reason used in APIs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Capacity => "CAPACITY",
            Self::TimeWindow => "TIME_WINDOW",
            Self::ShiftTime => "SHIFT_TIME",
            Self::Unreachable => "UNREACHABLE",
            Self::Other => "OTHER",
        }
    }
}

impl fmt::Display for UnassignedReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stop in a planned route.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedStop {
    /// [`Stop::id`].
    pub stop_id: String,
    /// Trip number, 1-based (2 after a reload).
    pub trip: u8,
    /// Arrival (ETA), seconds.
    pub arrival_s: f64,
    /// Service start: arrival, or the window start if the vehicle arrives early.
    pub service_start_s: f64,
    /// Departure after service.
    pub departure_s: f64,
    /// Cases still on board after this delivery.
    pub load_after: f64,
}

/// One vehicle's route for the slot.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// [`Vehicle::id`].
    pub vehicle_id: String,
    /// Departure from the depot.
    pub start_s: f64,
    /// Return to the depot.
    pub end_s: f64,
    /// Stops in visiting order.
    pub stops: Vec<PlannedStop>,
    /// Trips driven (1, or 2 with a reload).
    pub trips: u8,
    /// Distance driven, metres (planar units for planar travel).
    pub distance_m: f64,
    /// `end_s − start_s`: driving, service, waiting and reloading.
    pub duration_s: f64,
    /// Cases delivered.
    pub load: f64,
}

/// The result of planning.
#[derive(Debug, Clone, PartialEq)]
pub struct RoutingPlan {
    /// Routes, in the order of [`RoutingProblem::vehicles`]; unused vehicles are omitted.
    pub routes: Vec<Route>,
    /// Stops not planned, in the order of [`RoutingProblem::stops`].
    pub unassigned: Vec<(String, UnassignedReason)>,
    /// Sum of route distances (metres, or planar units).
    pub total_distance: f64,
    /// Sum of route durations, seconds.
    pub total_duration_s: f64,
    /// Routes with at least one stop.
    pub vehicles_used: usize,
}

/// Why planning failed as a whole (individual stops that cannot be served are not
/// errors: they are [`RoutingPlan::unassigned`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoutingError {
    /// The problem is malformed (duplicate ids, non-finite numbers, matrix of the wrong size…).
    InvalidProblem(String),
    /// vrp-core failed (or panicked) while solving.
    Engine(String),
}

impl RoutingError {
    fn invalid(message: String) -> Self {
        Self::InvalidProblem(message)
    }
}

impl fmt::Display for RoutingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidProblem(m) => write!(f, "invalid routing problem: {m}"),
            Self::Engine(m) => write!(f, "routing engine failed: {m}"),
        }
    }
}

impl std::error::Error for RoutingError {}

/// Plans routes for `problem`.
///
/// Stops that no vehicle could serve even alone (demand above every capacity, no road,
/// window or shift impossible on a direct trip) are reported without involving the
/// solver; the rest go to vrp-core, whose unassignment codes are mapped to reasons.
pub fn solve(problem: &RoutingProblem, options: &SolveOptions) -> Result<RoutingPlan, RoutingError> {
    validate(problem)?;
    let matrix = Matrix::build(problem)?;
    let model = schedule::Model::new(problem, &matrix);

    let mut unassigned: Vec<(usize, UnassignedReason)> = Vec::new();
    let mut candidates = Vec::new();
    for stop in 0..problem.stops.len() {
        match model.precheck(stop) {
            Some(reason) => unassigned.push((stop, reason)),
            None => candidates.push(stop),
        }
    }

    let mut routes = Vec::new();
    if !candidates.is_empty() {
        let outcome = engine::run(&model, &candidates, options)?;
        routes = outcome.routes;
        unassigned.extend(outcome.unassigned);
    }

    // Independent check of what the engine returned; anything infeasible is taken out.
    let (planned, dropped) = model.finalize(routes);
    unassigned.extend(dropped);
    unassigned.sort_by_key(|&(stop, _)| stop);
    unassigned.dedup_by_key(|(stop, _)| *stop);

    // Every stop ends up planned or explained, whatever the engine did.
    let mut accounted = vec![false; problem.stops.len()];
    let index: std::collections::HashMap<&str, usize> = problem
        .stops
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i))
        .collect();
    for stop in planned.iter().flat_map(|r| r.stops.iter()) {
        if let Some(&i) = index.get(stop.stop_id.as_str()) {
            accounted[i] = true;
        }
    }
    unassigned.retain(|&(stop, _)| !std::mem::replace(&mut accounted[stop], true));
    unassigned.extend(
        accounted
            .iter()
            .enumerate()
            .filter(|(_, done)| !**done)
            .map(|(stop, _)| (stop, UnassignedReason::Other)),
    );
    unassigned.sort_by_key(|&(stop, _)| stop);

    let total_distance = planned.iter().map(|r| r.distance_m).sum();
    let total_duration_s = planned.iter().map(|r| r.duration_s).sum();
    let vehicles_used = planned.iter().filter(|r| !r.stops.is_empty()).count();
    Ok(RoutingPlan {
        routes: planned,
        unassigned: unassigned
            .into_iter()
            .map(|(stop, reason)| (problem.stops[stop].id.clone(), reason))
            .collect(),
        total_distance,
        total_duration_s,
        vehicles_used,
    })
}

/// Checks `plan` against `problem` without the solver: every stop planned at most once
/// or listed as unassigned (exactly one of the two), known vehicles each used once, at
/// most `max_trips` trips, no trip over capacity, service starting inside each window,
/// departure at or after the shift start and return by the shift end, second-trip stops
/// inside the band, and the reported times, loads and distances matching the travel
/// model. Returns the list of violations (empty when the plan is feasible).
pub fn verify_plan(problem: &RoutingProblem, plan: &RoutingPlan) -> Result<Vec<String>, RoutingError> {
    validate(problem)?;
    let matrix = Matrix::build(problem)?;
    let model = schedule::Model::new(problem, &matrix);
    Ok(model.verify(plan))
}

fn check_finite(what: &str, v: f64) -> Result<(), RoutingError> {
    if v.is_finite() {
        Ok(())
    } else {
        Err(RoutingError::invalid(format!("{what} is not finite: {v}")))
    }
}

fn check_location(what: &str, location: &Location) -> Result<(), RoutingError> {
    match *location {
        Location::LatLng { lat, lng } => {
            if !(lat.is_finite()
                && lng.is_finite()
                && (-90.0..=90.0).contains(&lat)
                && (-180.0..=180.0).contains(&lng))
            {
                return Err(RoutingError::invalid(format!(
                    "{what}: invalid coordinates ({lat}, {lng})"
                )));
            }
        }
        Location::Planar { x, y } => {
            check_finite(&format!("{what} x"), x)?;
            check_finite(&format!("{what} y"), y)?;
        }
    }
    Ok(())
}

/// Time interval check: finite start, end ≥ start (end may be +∞).
fn check_interval(what: &str, (start, end): (f64, f64)) -> Result<(), RoutingError> {
    check_finite(&format!("{what} start"), start)?;
    if end.is_nan() || end == f64::NEG_INFINITY {
        return Err(RoutingError::invalid(format!("{what} end is not a time: {end}")));
    }
    Ok(())
}

fn validate(problem: &RoutingProblem) -> Result<(), RoutingError> {
    check_location("depot", &problem.depot)?;
    let mut ids = std::collections::HashSet::new();
    for stop in &problem.stops {
        if !ids.insert(stop.id.as_str()) {
            return Err(RoutingError::invalid(format!("duplicate stop id {:?}", stop.id)));
        }
        let what = format!("stop {:?}", stop.id);
        check_location(&what, &stop.location)?;
        if !(stop.demand.is_finite() && (0.0..=MAX_CASES).contains(&stop.demand)) {
            return Err(RoutingError::invalid(format!(
                "{what}: demand {} outside 0..={MAX_CASES}",
                stop.demand
            )));
        }
        if !(stop.service_seconds.is_finite() && stop.service_seconds >= 0.0) {
            return Err(RoutingError::invalid(format!(
                "{what}: service time {}",
                stop.service_seconds
            )));
        }
        if let Some(window) = stop.window {
            // A window that closes before it opens is not an error: the stop is
            // reported as TIME_WINDOW.
            check_interval(&format!("{what} window"), window)?;
        }
    }
    let mut ids = std::collections::HashSet::new();
    for vehicle in &problem.vehicles {
        if !ids.insert(vehicle.id.as_str()) {
            return Err(RoutingError::invalid(format!(
                "duplicate vehicle id {:?}",
                vehicle.id
            )));
        }
        let what = format!("vehicle {:?}", vehicle.id);
        if !(vehicle.capacity.is_finite() && (0.0..=MAX_CASES).contains(&vehicle.capacity)) {
            return Err(RoutingError::invalid(format!(
                "{what}: capacity {} outside 0..={MAX_CASES}",
                vehicle.capacity
            )));
        }
        check_interval(&format!("{what} shift"), vehicle.shift)?;
        if vehicle.shift.1 < vehicle.shift.0 {
            return Err(RoutingError::invalid(format!(
                "{what}: shift ends before it starts"
            )));
        }
        if vehicle.max_trips == 0 {
            return Err(RoutingError::invalid(format!(
                "{what}: max_trips must be at least 1"
            )));
        }
    }
    let rules = &problem.multi_trip;
    if !(rules.reload_seconds.is_finite() && rules.reload_seconds >= 0.0) {
        return Err(RoutingError::invalid(format!(
            "reload time {}",
            rules.reload_seconds
        )));
    }
    if let Some(r) = rules.second_trip_radius_m
        && (r.is_nan() || r < 0.0)
    {
        return Err(RoutingError::invalid(format!("second-trip radius {r}")));
    }
    Ok(())
}
