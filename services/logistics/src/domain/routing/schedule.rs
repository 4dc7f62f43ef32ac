//! Our own view of a route: schedules, loads and feasibility computed from the travel
//! matrix, independently of vrp-core. Used to pre-screen stops, to turn the engine's
//! tours into [`Route`]s (dropping anything infeasible) and to verify plans.

use std::collections::HashMap;

use super::travel::Matrix;
use super::{PlannedStop, Route, RoutingPlan, RoutingProblem, UnassignedReason};

/// Tolerance for time comparisons, seconds.
const EPS: f64 = 1e-6;
/// Tolerance when comparing a plan's reported figures with recomputed ones.
const REPORT_EPS: f64 = 1e-3;

/// A visit in an engine route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Visit {
    /// `stops[i]`.
    Stop(usize),
    /// Back to the depot to reload before the next trip.
    Reload,
}

/// A route as the engine returned it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EngineRoute {
    /// Index into `vehicles`.
    pub vehicle: usize,
    pub visits: Vec<Visit>,
}

/// Converts cases to integer hundredths (the solver's load unit).
pub(crate) fn to_cents(cases: f64) -> i64 {
    // Inputs are validated to 0..=MAX_CASES, so this neither overflows nor saturates.
    (cases * 100.0).round() as i64
}

fn from_cents(cents: i64) -> f64 {
    cents as f64 / 100.0
}

/// The problem with its matrix and derived per-stop facts.
pub(crate) struct Model<'a> {
    pub problem: &'a RoutingProblem,
    pub matrix: &'a Matrix,
    pub demand: Vec<i64>,
    pub capacity: Vec<i64>,
    /// Stops a second trip may not serve.
    pub outside_band: Vec<bool>,
}

struct Timed {
    stop: usize,
    trip: u8,
    arrival: f64,
    start: f64,
    departure: f64,
    load_after: i64,
}

struct Simulated {
    timed: Vec<Timed>,
    trips: u8,
    distance: f64,
    start: f64,
    end: f64,
    load: i64,
}

impl<'a> Model<'a> {
    pub fn new(problem: &'a RoutingProblem, matrix: &'a Matrix) -> Self {
        let demand = problem.stops.iter().map(|s| to_cents(s.demand)).collect();
        let capacity = problem.vehicles.iter().map(|v| to_cents(v.capacity)).collect();
        let outside_band = (0..problem.stops.len())
            .map(|i| match problem.multi_trip.second_trip_radius_m {
                Some(radius) => matrix.band_distance(problem, i) > radius,
                None => false,
            })
            .collect();
        Self {
            problem,
            matrix,
            demand,
            capacity,
            outside_band,
        }
    }

    /// The window of stop `i` (unbounded when it has none).
    pub fn window(&self, stop: usize) -> (f64, f64) {
        self.problem
            .stops
            .get(stop)
            .and_then(|s| s.window)
            .unwrap_or((f64::NEG_INFINITY, f64::INFINITY))
    }

    /// Why stop `i` cannot be served even alone on a direct trip by any vehicle, if so.
    pub fn precheck(&self, stop: usize) -> Option<UnassignedReason> {
        let vehicles = &self.problem.vehicles;
        if vehicles.is_empty() {
            return Some(UnassignedReason::Other);
        }
        let demand = self.demand.get(stop).copied().unwrap_or(0);
        let capable: Vec<usize> = (0..vehicles.len())
            .filter(|&v| self.capacity[v] >= demand)
            .collect();
        if capable.is_empty() {
            return Some(UnassignedReason::Capacity);
        }
        let (Some((_, out)), Some((_, back))) = (self.matrix.leg(0, stop + 1), self.matrix.leg(stop + 1, 0))
        else {
            return Some(UnassignedReason::Unreachable);
        };
        let (open, close) = self.window(stop);
        if close < open {
            return Some(UnassignedReason::TimeWindow);
        }
        let service = self.problem.stops.get(stop).map_or(0.0, |s| s.service_seconds);
        let mut shift_blocked = false;
        for v in capable {
            let (shift_start, shift_end) = vehicles[v].shift;
            let arrival = shift_start + out;
            if arrival > close + EPS {
                continue;
            }
            if arrival.max(open) + service + back <= shift_end + EPS {
                return None;
            }
            // Late back at the depot: the shift is to blame if the trip would fit
            // without waiting for the window to open, the window otherwise.
            if arrival + service + back <= shift_end + EPS {
                continue;
            }
            shift_blocked = true;
        }
        Some(if shift_blocked {
            UnassignedReason::ShiftTime
        } else {
            UnassignedReason::TimeWindow
        })
    }

    /// Reason for a stop the engine left out on timing grounds although it fits alone:
    /// its window if it has one, otherwise the shifts.
    pub fn time_reason(&self, stop: usize) -> UnassignedReason {
        match self.problem.stops.get(stop).and_then(|s| s.window) {
            Some(_) => UnassignedReason::TimeWindow,
            None => UnassignedReason::ShiftTime,
        }
    }

    /// Drops reloads that do not separate two groups of stops.
    fn normalize(visits: &mut Vec<Visit>) {
        let mut out: Vec<Visit> = Vec::with_capacity(visits.len());
        for &v in visits.iter() {
            match v {
                Visit::Reload if matches!(out.last(), None | Some(Visit::Reload)) => {}
                _ => out.push(v),
            }
        }
        if out.last() == Some(&Visit::Reload) {
            out.pop();
        }
        *visits = out;
    }

    /// Simulates `visits` for vehicle `v`. On the first infeasibility returns the position
    /// (in `visits`) of the stop to blame and the reason.
    fn simulate(&self, v: usize, visits: &[Visit]) -> Result<Simulated, (usize, UnassignedReason)> {
        let vehicle = &self.problem.vehicles[v];
        let (shift_start, shift_end) = vehicle.shift;
        let capacity = self.capacity[v];

        // Load of each trip, checked against capacity.
        let mut trip_loads = vec![0i64];
        for (pos, visit) in visits.iter().enumerate() {
            match *visit {
                Visit::Reload => trip_loads.push(0),
                Visit::Stop(i) => {
                    let load = trip_loads.last_mut().ok_or((pos, UnassignedReason::Other))?;
                    *load += self.demand.get(i).copied().unwrap_or(0);
                    if *load > capacity {
                        return Err((pos, UnassignedReason::Capacity));
                    }
                }
            }
        }
        if trip_loads.len() > usize::from(vehicle.max_trips) {
            // Blame the first stop of the trip that is one too many.
            let mut reloads = 0;
            for (pos, visit) in visits.iter().enumerate() {
                match visit {
                    Visit::Reload => reloads += 1,
                    Visit::Stop(_) if reloads >= usize::from(vehicle.max_trips) => {
                        return Err((pos, UnassignedReason::Capacity));
                    }
                    Visit::Stop(_) => {}
                }
            }
        }

        let mut timed = Vec::new();
        let mut t = shift_start;
        let mut at = 0usize;
        let mut trip: u8 = 1;
        let mut on_board = trip_loads.first().copied().unwrap_or(0);
        let mut distance = 0.0;
        let mut last_stop_pos = 0;
        for (pos, visit) in visits.iter().enumerate() {
            match *visit {
                Visit::Reload => {
                    let (d, dt) = self
                        .matrix
                        .leg(at, 0)
                        .ok_or((last_stop_pos, UnassignedReason::Unreachable))?;
                    distance += d;
                    t += dt;
                    if t > shift_end + EPS {
                        return Err((last_stop_pos, UnassignedReason::ShiftTime));
                    }
                    t += self.problem.multi_trip.reload_seconds;
                    at = 0;
                    trip = trip.saturating_add(1);
                    on_board = trip_loads.get(usize::from(trip) - 1).copied().unwrap_or(0);
                }
                Visit::Stop(i) => {
                    let (d, dt) = self
                        .matrix
                        .leg(at, i + 1)
                        .ok_or((pos, UnassignedReason::Unreachable))?;
                    if trip > 1 && self.outside_band.get(i).copied().unwrap_or(true) {
                        return Err((pos, UnassignedReason::Capacity));
                    }
                    distance += d;
                    let arrival = t + dt;
                    let (open, close) = self.window(i);
                    if arrival > close + EPS {
                        return Err((pos, UnassignedReason::TimeWindow));
                    }
                    let start = arrival.max(open);
                    if start > shift_end + EPS {
                        return Err((pos, self.time_reason(i)));
                    }
                    let service = self.problem.stops.get(i).map_or(0.0, |s| s.service_seconds);
                    let departure = start + service;
                    on_board -= self.demand.get(i).copied().unwrap_or(0);
                    timed.push(Timed {
                        stop: i,
                        trip,
                        arrival,
                        start,
                        departure,
                        load_after: on_board,
                    });
                    t = departure;
                    at = i + 1;
                    last_stop_pos = pos;
                }
            }
        }
        if at != 0 {
            let (d, dt) = self
                .matrix
                .leg(at, 0)
                .ok_or((last_stop_pos, UnassignedReason::Unreachable))?;
            distance += d;
            t += dt;
        }
        if t > shift_end + EPS {
            return Err((last_stop_pos, UnassignedReason::ShiftTime));
        }
        let load = trip_loads.iter().sum();
        Ok(Simulated {
            timed,
            trips: trip,
            distance,
            start: shift_start,
            end: t,
            load,
        })
    }

    fn to_route(&self, v: usize, sim: Simulated) -> Route {
        let stops = sim
            .timed
            .into_iter()
            .map(|t| PlannedStop {
                stop_id: self.problem.stops[t.stop].id.clone(),
                trip: t.trip,
                arrival_s: t.arrival,
                service_start_s: t.start,
                departure_s: t.departure,
                load_after: from_cents(t.load_after),
            })
            .collect();
        Route {
            vehicle_id: self.problem.vehicles[v].id.clone(),
            start_s: sim.start,
            end_s: sim.end,
            stops,
            trips: sim.trips,
            distance_m: sim.distance,
            duration_s: sim.end - sim.start,
            load: from_cents(sim.load),
        }
    }

    /// Turns engine routes into planned routes, removing (and reporting) any stop that
    /// makes a route infeasible by our own reckoning. Routes come out in vehicle order.
    pub fn finalize(&self, mut routes: Vec<EngineRoute>) -> (Vec<Route>, Vec<(usize, UnassignedReason)>) {
        routes.sort_by_key(|r| r.vehicle);
        let mut planned = Vec::new();
        let mut dropped = Vec::new();
        let mut used = vec![false; self.problem.vehicles.len()];
        let mut seen = vec![false; self.problem.stops.len()];
        for mut route in routes {
            // A stop the engine placed twice (or never heard of) is kept once at most.
            route.visits.retain(|v| match *v {
                Visit::Stop(i) => seen.get_mut(i).is_some_and(|s| !std::mem::replace(s, true)),
                Visit::Reload => true,
            });
            if route.vehicle >= used.len() || std::mem::replace(&mut used[route.vehicle], true) {
                // Unknown or repeated vehicle: its stops cannot be trusted.
                dropped.extend(route.visits.iter().filter_map(|v| match v {
                    Visit::Stop(i) => Some((*i, UnassignedReason::Other)),
                    Visit::Reload => None,
                }));
                continue;
            }
            loop {
                Self::normalize(&mut route.visits);
                if route.visits.is_empty() {
                    break;
                }
                match self.simulate(route.vehicle, &route.visits) {
                    Ok(sim) => {
                        planned.push(self.to_route(route.vehicle, sim));
                        break;
                    }
                    Err((pos, reason)) => {
                        let removed = route.visits.remove(pos.min(route.visits.len() - 1));
                        if let Visit::Stop(i) = removed {
                            dropped.push((i, reason));
                        }
                    }
                }
            }
        }
        (planned, dropped)
    }

    /// See [`super::verify_plan`].
    pub fn verify(&self, plan: &RoutingPlan) -> Vec<String> {
        let mut problems = Vec::new();
        let stop_index: HashMap<&str, usize> = self
            .problem
            .stops
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.as_str(), i))
            .collect();
        let vehicle_index: HashMap<&str, usize> = self
            .problem
            .vehicles
            .iter()
            .enumerate()
            .map(|(i, v)| (v.id.as_str(), i))
            .collect();
        let mut seen = vec![0usize; self.problem.stops.len()];
        let mut vehicle_seen = vec![false; self.problem.vehicles.len()];
        let (mut total_distance, mut total_duration) = (0.0, 0.0);

        for route in &plan.routes {
            let Some(&v) = vehicle_index.get(route.vehicle_id.as_str()) else {
                problems.push(format!("route for unknown vehicle {:?}", route.vehicle_id));
                continue;
            };
            if std::mem::replace(&mut vehicle_seen[v], true) {
                problems.push(format!("vehicle {:?} has more than one route", route.vehicle_id));
            }
            let mut visits = Vec::new();
            let mut trip = 1u8;
            let mut known = true;
            for stop in &route.stops {
                let Some(&i) = stop_index.get(stop.stop_id.as_str()) else {
                    problems.push(format!(
                        "route {:?}: unknown stop {:?}",
                        route.vehicle_id, stop.stop_id
                    ));
                    known = false;
                    continue;
                };
                seen[i] += 1;
                if stop.trip == trip.saturating_add(1) {
                    visits.push(Visit::Reload);
                    trip = stop.trip;
                } else if stop.trip != trip {
                    problems.push(format!(
                        "route {:?}: stop {:?} on trip {} after trip {trip}",
                        route.vehicle_id, stop.stop_id, stop.trip
                    ));
                }
                visits.push(Visit::Stop(i));
            }
            if !known {
                continue;
            }
            match self.simulate(v, &visits) {
                Err((pos, reason)) => {
                    let what = match visits.get(pos) {
                        Some(Visit::Stop(i)) => format!("stop {:?}", self.problem.stops[*i].id),
                        _ => "a reload".to_string(),
                    };
                    problems.push(format!(
                        "route {:?}: infeasible at {what}: {reason}",
                        route.vehicle_id
                    ));
                }
                Ok(sim) => {
                    let expected = self.to_route(v, sim);
                    total_distance += expected.distance_m;
                    total_duration += expected.duration_s;
                    let close = |a: f64, b: f64| (a - b).abs() <= REPORT_EPS * (1.0 + a.abs().max(b.abs()));
                    for (got, want) in route.stops.iter().zip(&expected.stops) {
                        if !(close(got.arrival_s, want.arrival_s)
                            && close(got.service_start_s, want.service_start_s)
                            && close(got.departure_s, want.departure_s)
                            && close(got.load_after, want.load_after))
                        {
                            problems.push(format!(
                                "route {:?}: stop {:?} reported {:?}, recomputed {:?}",
                                route.vehicle_id, got.stop_id, got, want
                            ));
                        }
                    }
                    if !(close(route.distance_m, expected.distance_m)
                        && close(route.end_s, expected.end_s)
                        && close(route.start_s, expected.start_s)
                        && close(route.load, expected.load)
                        && route.trips == expected.trips)
                    {
                        problems.push(format!(
                            "route {:?}: totals reported (distance {}, end {}, load {}, trips {}), recomputed \
                             (distance {}, end {}, load {}, trips {})",
                            route.vehicle_id,
                            route.distance_m,
                            route.end_s,
                            route.load,
                            route.trips,
                            expected.distance_m,
                            expected.end_s,
                            expected.load,
                            expected.trips
                        ));
                    }
                }
            }
        }

        for (id, _) in &plan.unassigned {
            match stop_index.get(id.as_str()) {
                Some(&i) => seen[i] += 1,
                None => problems.push(format!("unknown unassigned stop {id:?}")),
            }
        }
        for (i, &count) in seen.iter().enumerate() {
            if count != 1 {
                problems.push(format!(
                    "stop {:?} appears {count} times (planned + unassigned)",
                    self.problem.stops[i].id
                ));
            }
        }
        let close = |a: f64, b: f64| (a - b).abs() <= REPORT_EPS * (1.0 + a.abs().max(b.abs()));
        if !close(plan.total_distance, total_distance) {
            problems.push(format!(
                "total distance {} ≠ sum of routes {total_distance}",
                plan.total_distance
            ));
        }
        if !close(plan.total_duration_s, total_duration) {
            problems.push(format!(
                "total duration {} ≠ sum of routes {total_duration}",
                plan.total_duration_s
            ));
        }
        let used = plan.routes.iter().filter(|r| !r.stops.is_empty()).count();
        if plan.vehicles_used != used {
            problems.push(format!(
                "vehicles_used {} but {used} routes have stops",
                plan.vehicles_used
            ));
        }
        problems
    }
}
