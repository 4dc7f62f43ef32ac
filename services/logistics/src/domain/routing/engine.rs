//! The vrp-core 1.25 adapter: builds a `vrp_core::models::Problem` from our model, runs
//! the solver with a budget and a seed, and reads the routes and unassigned jobs back.
//!
//! vrp-core APIs used: `SingleBuilder` / `VehicleBuilder` / `VehicleDetailBuilder` /
//! `ProblemBuilder`, a custom `TransportCost` over our matrix, the features
//! `MinimizeUnassignedBuilder`, `TransportFeatureBuilder::build_minimize_distance`,
//! `CapacityFeatureBuilder` or `ReloadFeatureFactory` (multi-trip), and
//! `create_reachable_feature`, plus one custom `FeatureConstraint` (second-trip band);
//! `GoalContextBuilder`, `VrpConfigBuilder` (with our `Environment`: seeded `Random`,
//! time `Quota`, silent logger, `Parallelism`), rosomaxa's `ThreadPool` for a bounded
//! number of threads, and `Solver::solve`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use vrp_core::construction::features::{
    CapacityFeatureBuilder, MinimizeUnassignedBuilder, ReloadFeatureFactory, TransportFeatureBuilder,
    create_reachable_feature,
};
use vrp_core::construction::heuristics::{InsertionContext, MoveContext, UnassignmentInfo};
use vrp_core::models::common::{Demand, Location as CoreLocation, Profile, SingleDimLoad, TimeWindow};
use vrp_core::models::problem::{
    Actor, Job, Single, SingleBuilder, TransportCost, TravelTime, VehicleBuilder, VehicleDetailBuilder,
};
use vrp_core::models::solution::Route as CoreRoute;
use vrp_core::models::{
    ConstraintViolation, Feature, FeatureBuilder, FeatureConstraint, GoalContext, GoalContextBuilder,
    Problem, ProblemBuilder, ViolationCode,
};
use vrp_core::rosomaxa::evolution::{InitialOperator, TelemetryMode};
use vrp_core::rosomaxa::prelude::{Environment, Float, GenericError, Quota, Random, RandomGen};
use vrp_core::rosomaxa::utils::{InfoLogger, Parallelism, ThreadPool};
use vrp_core::solver::search::RecreateWithNearestNeighbor;
use vrp_core::solver::{
    RecreateInitialOperator, RefinementContext, Solver, VrpConfigBuilder, create_default_init_operators,
};

use super::polish;
use super::schedule::{EngineRoute, Model, Visit, to_cents};
use super::travel::Matrix;
use super::{MAX_THREADS, RoutingError, SolveOptions, UnassignedReason};

const CAPACITY_CODE: ViolationCode = ViolationCode(1);
const TIME_CODE: ViolationCode = ViolationCode(2);
const REACHABLE_CODE: ViolationCode = ViolationCode(3);
const BAND_CODE: ViolationCode = ViolationCode(4);

/// Reload markers are offered to a vehicle once a trip's load reaches this share of its
/// capacity (as in vrp-core's pragmatic format), or earlier once the trip cannot take
/// a stop of median demand any more.
const RELOAD_THRESHOLD: f64 = 0.9;
/// Fixed cost per group index: breaks ties between otherwise equal new routes in favour
/// of earlier vehicles (vrp-core's distance objective ignores fixed costs).
const TIE_BREAK_COST: f64 = 1e-6;

/// Share of the budget vrp-core gets; our own search (`polish`) spends the rest.
const ENGINE_SHARE: f64 = 0.5;
/// With a generation limit, our search is limited to this many iterations per generation.
const ITERATIONS_PER_GENERATION: u64 = 50;

/// Seconds cheapest insertion takes per stop³, measured on the 2-core machine
/// (1,400 stops with windows: ≈50 s; it is quadratic in stops × positions).
const CHEAPEST_INSERTION_S_PER_CUBED_STOP: f64 = 1.8e-8;

/// Whether building the first solution by cheapest insertion would take more than 40 %
/// of the budget (C1_10_1's 1,000 stops in 60 s: no; a demo day's 900 stops in 14 s: yes).
fn cheapest_insertion_too_slow(stops: usize, budget: Duration) -> bool {
    let n = stops as f64;
    n * n * n * CHEAPEST_INSERTION_S_PER_CUBED_STOP > 0.4 * budget.as_secs_f64()
}

/// What the engine found.
pub(crate) struct Outcome {
    pub routes: Vec<EngineRoute>,
    pub unassigned: Vec<(usize, UnassignedReason)>,
}

/// Tags our jobs carry as a vrp-core dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JobTag {
    Stop(usize),
    /// A reload marker owned by vehicle `usize`.
    Reload(usize),
}

struct JobTagKey;
struct VehicleIndexKey;

fn job_tag(single: &Single) -> Option<JobTag> {
    single.dimens.get_value::<JobTagKey, JobTag>().copied()
}

fn vehicle_index(actor: &Actor) -> Option<usize> {
    actor
        .vehicle
        .dimens
        .get_value::<VehicleIndexKey, usize>()
        .copied()
}

/// Our matrix as vrp-core routing data (negative = unreachable, as vrp-core expects).
/// This is the solver's hottest path, so it indexes the flat vectors directly.
struct MatrixTransport {
    size: usize,
    distances: Arc<[f64]>,
    durations: Arc<[f64]>,
}

impl MatrixTransport {
    fn new(matrix: &Matrix) -> Self {
        Self {
            size: matrix.size,
            distances: matrix.distances.clone(),
            durations: matrix.durations.clone(),
        }
    }

    #[inline]
    fn lookup(&self, values: &[f64], from: CoreLocation, to: CoreLocation) -> Float {
        if from < self.size && to < self.size {
            values.get(from * self.size + to).copied().unwrap_or(-1.0)
        } else {
            -1.0
        }
    }
}

impl TransportCost for MatrixTransport {
    fn duration_approx(&self, _: &Profile, from: CoreLocation, to: CoreLocation) -> Float {
        self.lookup(&self.durations, from, to)
    }

    fn distance_approx(&self, _: &Profile, from: CoreLocation, to: CoreLocation) -> Float {
        self.lookup(&self.distances, from, to)
    }

    fn duration(&self, _: &CoreRoute, from: CoreLocation, to: CoreLocation, _: TravelTime) -> Float {
        self.lookup(&self.durations, from, to)
    }

    fn distance(&self, _: &CoreRoute, from: CoreLocation, to: CoreLocation, _: TravelTime) -> Float {
        self.lookup(&self.distances, from, to)
    }
}

/// A seeded random source (SplitMix64). vrp-core draws most of its random choices
/// through these methods; `get_rng` (used for shuffles) can only return one of
/// rosomaxa's thread-local generators.
struct SeededRandom {
    state: AtomicU64,
}

impl SeededRandom {
    fn new(seed: u64) -> Self {
        Self {
            state: AtomicU64::new(seed),
        }
    }

    fn next_u64(&self) -> u64 {
        let mut z = self
            .state
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn next_unit(&self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

impl Random for SeededRandom {
    fn uniform_int(&self, min: i32, max: i32) -> i32 {
        if min >= max {
            return min;
        }
        let span = (i64::from(max) - i64::from(min) + 1) as u64;
        (i64::from(min) + (self.next_u64() % span) as i64) as i32
    }

    fn uniform_real(&self, min: Float, max: Float) -> Float {
        if min.partial_cmp(&max) != Some(std::cmp::Ordering::Less) {
            return min;
        }
        min + (max - min) * self.next_unit()
    }

    fn is_head_not_tails(&self) -> bool {
        self.next_u64() & 1 == 1
    }

    fn is_hit(&self, probability: Float) -> bool {
        self.next_unit() < probability.clamp(0.0, 1.0)
    }

    fn weighted(&self, weights: &[usize]) -> usize {
        // Same scheme as rosomaxa's default: smallest exponential sample wins.
        weights
            .iter()
            .enumerate()
            .map(|(i, &w)| (-(1.0 - self.next_unit()).ln() / w as f64, i))
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .map_or(0, |(_, i)| i)
    }

    fn get_rng(&self) -> RandomGen {
        RandomGen::new_repeatable()
    }
}

/// Stops the search once the wall-clock budget is spent, but only after a first
/// solution exists: vrp-core's insertion heuristic also polls the quota and would
/// otherwise leave jobs unassigned in the very first solution of a large problem.
struct Deadline {
    at: Instant,
    armed: Arc<AtomicBool>,
}

impl Quota for Deadline {
    fn is_reached(&self) -> bool {
        self.armed.load(Ordering::Relaxed) && Instant::now() >= self.at
    }
}

type InitialOperatorBox = Box<
    dyn InitialOperator<Context = RefinementContext, Objective = GoalContext, Solution = InsertionContext>
        + Send
        + Sync,
>;

/// Wraps an initial-solution operator to arm the [`Deadline`] once it has built a solution.
struct ArmDeadline {
    inner: InitialOperatorBox,
    armed: Arc<AtomicBool>,
}

impl InitialOperator for ArmDeadline {
    type Context = RefinementContext;
    type Objective = GoalContext;
    type Solution = InsertionContext;

    fn create(&self, heuristic_ctx: &Self::Context) -> Self::Solution {
        let solution = self.inner.create(heuristic_ctx);
        self.armed.store(true, Ordering::Relaxed);
        solution
    }
}

/// Vehicles rejecting jobs from second trips beyond the band.
struct SecondTripBand {
    outside: Arc<Vec<bool>>,
}

impl FeatureConstraint for SecondTripBand {
    fn evaluate(&self, move_ctx: &MoveContext<'_>) -> Option<ConstraintViolation> {
        let MoveContext::Activity {
            route_ctx,
            activity_ctx,
        } = move_ctx
        else {
            return None;
        };
        let Some(JobTag::Stop(stop)) = activity_ctx.target.job.as_deref().and_then(job_tag) else {
            return None;
        };
        if !self.outside.get(stop).copied().unwrap_or(false) {
            return None;
        }
        let tour = &route_ctx.route().tour;
        let after_reload = (0..=activity_ctx.index)
            .filter_map(|i| tour.get(i))
            .any(|a| matches!(a.job.as_deref().and_then(job_tag), Some(JobTag::Reload(_))));
        if after_reload {
            ConstraintViolation::skip(BAND_CODE)
        } else {
            None
        }
    }

    fn merge(&self, source: Job, _candidate: Job) -> Result<Job, ViolationCode> {
        Ok(source)
    }
}

fn engine_error(e: GenericError) -> RoutingError {
    RoutingError::Engine(e.to_string())
}

fn window(start: f64, end: f64) -> TimeWindow {
    // vrp-core has no infinity: its "unbounded" is Float::MAX.
    let clamp = |t: f64| t.clamp(-Float::MAX, Float::MAX);
    TimeWindow::new(clamp(start), clamp(end))
}

/// Builds the vrp-core problem for the `candidates` stops.
fn build_problem(
    model: &Model<'_>,
    candidates: &[usize],
    logger: InfoLogger,
) -> Result<Problem, RoutingError> {
    let problem = model.problem;
    let matrix = model.matrix;
    let transport: Arc<dyn TransportCost> = Arc::new(MatrixTransport::new(matrix));

    let mut jobs = Vec::with_capacity(candidates.len());
    for &i in candidates {
        let stop = &problem.stops[i];
        let (open, close) = model.window(i);
        let demand =
            i32::try_from(to_cents(stop.demand)).map_err(|_| RoutingError::invalid("demand".into()))?;
        let job = SingleBuilder::default()
            .id(&format!("stop{i}"))
            .demand(Demand::<SingleDimLoad>::delivery(demand))
            .location(i + 1)
            .and_then(|b| b.duration(stop.service_seconds))
            .and_then(|b| b.times(vec![window(open, close)]))
            .map(|b| b.dimension(|d| d.set_value::<JobTagKey, _>(JobTag::Stop(i))))
            .and_then(SingleBuilder::build_as_job)
            .map_err(engine_error)?;
        jobs.push(job);
    }

    let multi_trip = problem.vehicles.iter().any(|v| v.max_trips > 1);
    let time_constrained = candidates.iter().any(|&i| problem.stops[i].window.is_some())
        || problem.vehicles.iter().any(|v| v.shift.1.is_finite());
    let groups = Arc::new(vehicle_groups(model));
    let mut vehicles = Vec::with_capacity(problem.vehicles.len());
    for (v, vehicle) in problem.vehicles.iter().enumerate() {
        let capacity =
            i32::try_from(model.capacity[v]).map_err(|_| RoutingError::invalid("capacity".into()))?;
        let (start, end) = vehicle.shift;
        let detail = VehicleDetailBuilder::default()
            .set_start_location(0)
            .set_start_time(start)
            .set_end_location(0)
            .set_end_time(end.min(Float::MAX))
            .build()
            .map_err(engine_error)?;
        let mut built = VehicleBuilder::default()
            .id(&format!("vehicle{v}"))
            .add_detail(detail)
            .capacity(SingleDimLoad::new(capacity))
            .dimension(|d| d.set_value::<VehicleIndexKey, _>(v))
            .build()
            .map_err(engine_error)?;
        built.costs.fixed = TIE_BREAK_COST * groups.get(v).map_or(0.0, |&g| g as f64 + 1.0);
        vehicles.push(built);
        for k in 1..vehicle.max_trips {
            let reload = SingleBuilder::default()
                .id(&format!("reload{v}.{k}"))
                .location(0)
                .and_then(|b| b.duration(problem.multi_trip.reload_seconds))
                .and_then(|b| b.times(vec![window(start, end)]))
                .map(|b| b.dimension(|d| d.set_value::<JobTagKey, _>(JobTag::Reload(v))))
                .and_then(SingleBuilder::build_as_job)
                .map_err(engine_error)?;
            jobs.push(reload);
        }
    }

    let mut features: Vec<Feature> = Vec::new();
    if matrix.has_unreachable {
        features.push(
            create_reachable_feature("reachable", transport.clone(), REACHABLE_CODE).map_err(engine_error)?,
        );
    }
    features.push(
        MinimizeUnassignedBuilder::new("min-unassigned")
            .build()
            .map_err(engine_error)?,
    );
    let median_demand = {
        let mut demands: Vec<i64> = candidates.iter().map(|&i| model.demand[i]).collect();
        demands.sort_unstable();
        demands
            .get(demands.len() / 2)
            .copied()
            .and_then(|d| i32::try_from(d).ok())
            .unwrap_or(0)
    };
    let capacity = if multi_trip {
        ReloadFeatureFactory::<SingleDimLoad>::new("capacity")
            .set_capacity_code(CAPACITY_CODE)
            .set_is_reload_single(|single: &Single| matches!(job_tag(single), Some(JobTag::Reload(_))))
            .set_belongs_to_route(|route: &CoreRoute, job: &Job| {
                let owner = job.as_single().and_then(|s| job_tag(s));
                matches!(owner, Some(JobTag::Reload(v)) if Some(v) == vehicle_index(&route.actor))
            })
            .set_load_schedule_threshold(move |capacity: &SingleDimLoad| {
                let share = (f64::from(capacity.value) * RELOAD_THRESHOLD) as i32;
                let full = capacity.value.saturating_sub(median_demand).saturating_add(1);
                SingleDimLoad::new(share.min(full).max(0))
            })
            .build_simple()
    } else {
        CapacityFeatureBuilder::<SingleDimLoad>::new("capacity")
            .set_violation_code(CAPACITY_CODE)
            .build()
    }
    .map_err(engine_error)?;
    features.push(capacity);
    if multi_trip && model.outside_band.iter().any(|&o| o) {
        let band = FeatureBuilder::default()
            .with_name("second-trip-band")
            .with_constraint(SecondTripBand {
                outside: Arc::new(model.outside_band.clone()),
            })
            .build()
            .map_err(engine_error)?;
        features.push(band);
    }
    features.push(
        TransportFeatureBuilder::new("min-distance")
            .set_transport_cost(transport.clone())
            // Without any window or finite shift (plain CVRP) time cannot bind: skip
            // the time checks on every insertion.
            .set_time_constrained(time_constrained)
            .set_violation_code(TIME_CODE)
            .build_minimize_distance()
            .map_err(engine_error)?,
    );
    let goal = GoalContextBuilder::with_features(&features)
        .and_then(|b| b.build())
        .map_err(engine_error)?;

    ProblemBuilder::default()
        .add_jobs(jobs.into_iter())
        .add_vehicles(vehicles.into_iter())
        // Interchangeable vehicles (same capacity, shift and trips) form one group, so
        // the solver does not try every empty vehicle of a homogeneous fleet.
        .with_vehicle_similarity(move |_: &[Arc<Actor>]| {
            let groups = groups.clone();
            Box::new(move |a: &Actor| {
                vehicle_index(a)
                    .and_then(|v| groups.get(v).copied())
                    .unwrap_or(usize::MAX)
            })
        })
        .with_goal(goal)
        .with_transport_cost(transport)
        .with_logger(logger)
        .build()
        .map_err(engine_error)
}

/// Group of each vehicle: vehicles with equal capacity, shift and trips share a group
/// (numbered by first appearance).
fn vehicle_groups(model: &Model<'_>) -> Vec<usize> {
    let mut keys: Vec<(i64, u64, u64, u8)> = Vec::new();
    model
        .problem
        .vehicles
        .iter()
        .enumerate()
        .map(|(v, vehicle)| {
            let key = (
                model.capacity[v],
                vehicle.shift.0.to_bits(),
                vehicle.shift.1.to_bits(),
                vehicle.max_trips,
            );
            match keys.iter().position(|k| *k == key) {
                Some(g) => g,
                None => {
                    keys.push(key);
                    keys.len() - 1
                }
            }
        })
        .collect()
}

/// Gives each group's routes the group's vehicles in input order, routes ordered by
/// their first stop. Vehicles of a group are interchangeable, and vrp-core picks among
/// them through a hash set whose order changes from run to run; this keeps the
/// vehicle ids of a plan reproducible.
fn relabel(model: &Model<'_>, routes: &mut [EngineRoute]) {
    let groups = vehicle_groups(model);
    let group_of = |v: usize| groups.get(v).copied().unwrap_or(usize::MAX);
    let first_stop = |r: &EngineRoute| {
        r.visits.iter().find_map(|v| match v {
            Visit::Stop(i) => Some(*i),
            Visit::Reload => None,
        })
    };
    let mut order: Vec<usize> = (0..routes.len()).collect();
    order.sort_by_key(|&r| (group_of(routes[r].vehicle), first_stop(&routes[r])));
    let mut next_member: Vec<usize> = Vec::new();
    for r in order {
        let g = group_of(routes[r].vehicle);
        if g == usize::MAX {
            continue;
        }
        if next_member.len() <= g {
            next_member.resize(g + 1, 0);
        }
        // The k-th route of group g gets the k-th vehicle of group g.
        let k = next_member[g];
        next_member[g] += 1;
        if let Some(v) = groups
            .iter()
            .enumerate()
            .filter(|(_, gg)| **gg == g)
            .map(|(v, _)| v)
            .nth(k)
        {
            routes[r].vehicle = v;
        }
    }
}

/// Maps vrp-core's unassignment info for stop `i` to a reason.
fn reason(model: &Model<'_>, stop: usize, info: &UnassignmentInfo) -> UnassignedReason {
    let code = match info {
        UnassignmentInfo::Simple(code) => Some(*code),
        UnassignmentInfo::Detailed(details) => {
            // The most common code across vehicles; ties go to the lowest code.
            let mut counts: Vec<(i32, usize)> = Vec::new();
            for (_, code) in details {
                match counts.iter_mut().find(|(c, _)| *c == code.0) {
                    Some(entry) => entry.1 += 1,
                    None => counts.push((code.0, 1)),
                }
            }
            counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            counts.first().map(|&(c, _)| ViolationCode(c))
        }
        UnassignmentInfo::Unknown => None,
    };
    match code {
        Some(CAPACITY_CODE) | Some(BAND_CODE) => UnassignedReason::Capacity,
        Some(TIME_CODE) => model.time_reason(stop),
        Some(REACHABLE_CODE) => UnassignedReason::Unreachable,
        _ => UnassignedReason::Other,
    }
}

/// Solves for `candidates` (indices of stops that pass the pre-checks).
pub(crate) fn run(
    model: &Model<'_>,
    candidates: &[usize],
    options: &SolveOptions,
) -> Result<Outcome, RoutingError> {
    let started = Instant::now();
    let deadline = started + options.time_budget;
    let engine_options = SolveOptions {
        time_budget: options.time_budget.mul_f64(ENGINE_SHARE),
        ..options.clone()
    };
    let engine_deadline = started + engine_options.time_budget;
    let work = || {
        solve_inner(
            model,
            candidates,
            &engine_options,
            engine_deadline,
            options.time_budget,
        )
    };
    let result = catch_unwind(AssertUnwindSafe(|| match options.threads {
        0 => work(),
        // A dedicated pool: vrp-core's parallel steps (rayon) run on these threads only.
        n => ThreadPool::new(n.min(MAX_THREADS)).execute(work),
    }));
    let mut outcome = result.unwrap_or_else(|_| Err(RoutingError::Engine("vrp-core panicked".into())))?;

    // Our own search spends the rest of the budget, on as many chains as threads.
    let threads = match options.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
    .min(MAX_THREADS);
    let left_out: Vec<usize> = outcome.unassigned.iter().map(|&(i, _)| i).collect();
    let max_iterations = options
        .max_generations
        .map(|g| (g as u64).saturating_mul(ITERATIONS_PER_GENERATION));
    let polished = catch_unwind(AssertUnwindSafe(|| {
        polish::polish(
            model,
            &outcome.routes,
            &left_out,
            deadline,
            options.seed,
            threads,
            max_iterations,
        )
    }));
    if let Ok(Some(polished)) = polished {
        outcome.routes = polished.routes;
        outcome
            .unassigned
            .retain(|(i, _)| polished.unassigned.binary_search(i).is_ok());
        // A stop the engine served may have made way for one it had left out: it
        // fits alone (it passed the pre-checks), so capacity or time keeps it out.
        let explained: Vec<usize> = outcome.unassigned.iter().map(|&(i, _)| i).collect();
        let load = loads(model, &outcome.routes);
        for &i in &polished.unassigned {
            if !explained.contains(&i) {
                outcome.unassigned.push((i, left_out_reason(model, &load, i)));
            }
        }
    }
    relabel(model, &mut outcome.routes);
    Ok(outcome)
}

/// Cases loaded on each vehicle by `routes`.
fn loads(model: &Model<'_>, routes: &[EngineRoute]) -> Vec<i64> {
    let mut load = vec![0i64; model.capacity.len()];
    for route in routes {
        if let Some(l) = load.get_mut(route.vehicle) {
            *l += route
                .visits
                .iter()
                .filter_map(|v| match v {
                    Visit::Stop(s) => model.demand.get(*s).copied(),
                    Visit::Reload => None,
                })
                .sum::<i64>();
        }
    }
    load
}

/// Why stop `i`, which fits alone, is not in routes loading vehicles with `load`:
/// capacity when no vehicle has room left for it, its window (or the shifts) otherwise.
fn left_out_reason(model: &Model<'_>, load: &[i64], i: usize) -> UnassignedReason {
    let demand = model.demand.get(i).copied().unwrap_or(0);
    let room = (0..load.len()).any(|v| {
        let trips = model
            .problem
            .vehicles
            .get(v)
            .map_or(1, |x| i64::from(x.max_trips));
        load[v] + demand <= model.capacity[v] * trips
    });
    if room {
        model.time_reason(i)
    } else {
        UnassignedReason::Capacity
    }
}

fn solve_inner(
    model: &Model<'_>,
    candidates: &[usize],
    options: &SolveOptions,
    deadline: Instant,
    full_budget: Duration,
) -> Result<Outcome, RoutingError> {
    let logger: InfoLogger = Arc::new(|_: &str| {});
    let problem = Arc::new(build_problem(model, candidates, logger.clone())?);

    let random: Arc<dyn Random> = Arc::new(SeededRandom::new(options.seed));
    let parallelism = match options.threads {
        0 => Parallelism::default(),
        n => Parallelism::new_with_cpus(n.min(MAX_THREADS)),
    };
    let armed = Arc::new(AtomicBool::new(false));
    let environment = Arc::new(Environment::new(
        random,
        Some(Arc::new(Deadline {
            at: deadline,
            armed: armed.clone(),
        })),
        parallelism,
        logger.clone(),
        false,
    ));

    let builder = VrpConfigBuilder::new(problem.clone())
        .set_environment(environment.clone())
        .set_telemetry_mode(TelemetryMode::None);
    // vrp-core's default initial operators (4 initial solutions while under 5 % of the
    // budget), each arming the deadline once it has produced a solution. The first
    // solution comes from the first operator, cheapest insertion: the best start, but
    // its time grows with the cube of the stops (≈50 s for 1,400 stops with windows).
    // When that would eat the budget, nearest neighbour (one position per route) goes
    // first.
    let mut operators = create_default_init_operators(problem.clone(), environment.clone());
    if cheapest_insertion_too_slow(candidates.len(), full_budget) {
        let first: Box<
            dyn InitialOperator<
                    Context = RefinementContext,
                    Objective = GoalContext,
                    Solution = InsertionContext,
                > + Send
                + Sync,
        > = Box::new(RecreateInitialOperator::new(Arc::new(
            RecreateWithNearestNeighbor::new(environment.random.clone()),
        )));
        operators.insert(0, (first, 1));
    }
    let initial = operators
        .into_iter()
        .map(|(inner, weight)| {
            let op: InitialOperatorBox = Box::new(ArmDeadline {
                inner,
                armed: armed.clone(),
            });
            (op, weight)
        })
        .collect();
    let mut config = builder
        .prebuild()
        .map_err(engine_error)?
        .with_initial(4, 0.05, initial);
    // vrp-core's own time limit is in whole seconds and only steers its progress
    // estimate; the exact budget is enforced by the `Deadline` quota.
    let secs = options.time_budget.as_secs_f64().ceil().clamp(1.0, 1e9);
    config = config.with_max_time(Some(secs as usize));
    if let Some(limit) = options.max_generations {
        config = config.with_max_generations(Some(limit.max(1)));
    }
    let config = config.build().map_err(engine_error)?;
    let solution = Solver::new(problem, config).solve().map_err(engine_error)?;

    let mut routes = Vec::new();
    for route in &solution.routes {
        let Some(vehicle) = vehicle_index(&route.actor) else {
            continue;
        };
        let visits: Vec<Visit> = route
            .tour
            .all_activities()
            .filter_map(|a| a.job.as_deref().and_then(job_tag))
            .map(|tag| match tag {
                JobTag::Stop(i) => Visit::Stop(i),
                JobTag::Reload(_) => Visit::Reload,
            })
            .collect();
        if visits.iter().any(|v| matches!(v, Visit::Stop(_))) {
            routes.push(EngineRoute { vehicle, visits });
        }
    }
    let unassigned = solution
        .unassigned
        .iter()
        .filter_map(|(job, info)| match job.as_single().and_then(|s| job_tag(s)) {
            Some(JobTag::Stop(i)) => Some((i, reason(model, i, info))),
            _ => None,
        })
        .collect();
    Ok(Outcome { routes, unassigned })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::routing::{Location, MultiTripRules, RoutingProblem, Travel, Vehicle};

    #[test]
    fn nearest_neighbour_starts_only_when_cheapest_insertion_would_eat_the_budget() {
        assert!(!cheapest_insertion_too_slow(1_000, Duration::from_secs(60)));
        assert!(!cheapest_insertion_too_slow(501, Duration::from_secs(12)));
        assert!(cheapest_insertion_too_slow(900, Duration::from_secs(14)));
        assert!(cheapest_insertion_too_slow(1_000, Duration::from_secs(24)));
        assert!(!cheapest_insertion_too_slow(50, Duration::from_millis(100)));
    }

    #[test]
    fn seeded_random_is_repeatable_and_in_range() {
        let draw = |seed| {
            let r = SeededRandom::new(seed);
            (0..64)
                .map(|i| match i % 4 {
                    0 => f64::from(r.uniform_int(-3, 9)),
                    1 => r.uniform_real(2.0, 5.0),
                    2 => f64::from(u8::from(r.is_hit(0.3))),
                    _ => r.weighted(&[1, 5, 0, 3]) as f64,
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(42), draw(42));
        assert_ne!(draw(42), draw(43));
        let r = SeededRandom::new(7);
        for _ in 0..1000 {
            assert!((-3..=9).contains(&r.uniform_int(-3, 9)));
            let x = r.uniform_real(2.0, 5.0);
            assert!((2.0..5.0).contains(&x));
            assert_ne!(r.weighted(&[1, 5, 0, 3]), 2, "zero weight is never picked");
        }
        // Degenerate arguments do not panic.
        assert_eq!(r.uniform_int(5, 5), 5);
        assert_eq!(r.uniform_int(9, 1), 9);
        assert_eq!(r.uniform_real(1.0, 1.0), 1.0);
        assert!(r.uniform_real(f64::NAN, 1.0).is_nan());
        assert_eq!(r.weighted(&[]), 0);
        assert!(!r.is_hit(0.0) && r.is_hit(1.0));
    }

    #[test]
    fn interchangeable_vehicles_are_relabelled_in_input_order() {
        let vehicle = |id: &str, capacity| Vehicle {
            id: id.into(),
            capacity,
            shift: (0.0, 100.0),
            max_trips: 1,
        };
        let problem = RoutingProblem {
            depot: Location::Planar { x: 0.0, y: 0.0 },
            stops: Vec::new(),
            vehicles: vec![
                vehicle("a", 10.0),
                vehicle("big", 20.0),
                vehicle("b", 10.0),
                vehicle("c", 10.0),
            ],
            travel: Travel::Planar {
                rounding: crate::domain::routing::Rounding::Exact,
            },
            multi_trip: MultiTripRules::default(),
        };
        let matrix = Matrix::build(&problem).expect("matrix");
        let model = Model::new(&problem, &matrix);
        assert_eq!(vehicle_groups(&model), vec![0, 1, 0, 0]);
        let mut routes = vec![
            EngineRoute {
                vehicle: 3,
                visits: vec![Visit::Stop(5)],
            },
            EngineRoute {
                vehicle: 1,
                visits: vec![Visit::Stop(0)],
            },
            EngineRoute {
                vehicle: 2,
                visits: vec![Visit::Stop(2), Visit::Reload, Visit::Stop(1)],
            },
        ];
        relabel(&model, &mut routes);
        let vehicles: Vec<usize> = routes.iter().map(|r| r.vehicle).collect();
        // Group 0 routes ordered by first stop (2, then 5) get vehicles a (0) and b (2).
        assert_eq!(vehicles, vec![2, 1, 0]);
    }
}
