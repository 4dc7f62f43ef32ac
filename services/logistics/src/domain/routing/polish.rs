//! Our own search after vrp-core: ruin and recreate with slack-inducing string
//! removals and simulated annealing, after Christiaens & Vanden Berghe, "Slack
//! Induction by String Removals for Vehicle Routing Problems" (Transportation Science,
//! 2020). Written from the paper's description.
//!
//! vrp-core builds the first solutions and improves them for part of the budget; this
//! search takes its best solution and spends the rest. Each iteration removes a few
//! strings of consecutive stops from routes near a random stop, reinserts every removed
//! (and every still unassigned) stop at its cheapest feasible position (skipping each
//! position with a small probability, the paper's "blinks"), and accepts the result by
//! the annealing rule on distance; fewer unassigned stops always wins, more never does.
//!
//! Feasibility of an insertion is checked in constant time from each route's earliest
//! service starts (forward) and latest service starts that keep the rest of the route
//! on time (backward). A route is recomputed from scratch whenever it changes, and the
//! whole result is verified again by `schedule::Model::finalize` afterwards.
//!
//! Scope: single-trip routes. Routes the engine planned with a reload (second trip)
//! are left as they are, with their vehicles and stops.

use std::sync::Arc;
use std::time::Instant;

use super::schedule::{EngineRoute, Model, Visit};

/// Average number of stops removed per iteration (the paper's c̄).
const MEAN_REMOVED: f64 = 10.0;
/// Longest string removed from one route (the paper's L_max).
const MAX_STRING: f64 = 10.0;
/// Probability of skipping a position while looking for the cheapest insertion.
const BLINK: f64 = 0.01;
/// Neighbours kept per stop for choosing the routes to ruin.
const NEIGHBOURS: usize = 64;
/// Starting and final temperatures, as shares of the mean edge length of the
/// solution handed over by vrp-core.
const START_TEMPERATURE: f64 = 0.03;
const FINAL_TEMPERATURE: f64 = 0.0003;
/// Temperature factor of every other chain. Hot enough to leave a solution of few
/// long routes for more, shorter ones when windows are wide (R2_10_1: 26 routes and
/// +9.4 % at 10×, 29–30 routes and +4.5–7.0 % at 40×).
const HOT_CHAIN: f64 = 40.0;
/// Iterations per stop after which the search stops even with time left (small
/// problems converge long before any sensible budget is spent).
const ITERATIONS_PER_STOP: u64 = 100_000;

/// What the engine handed over, improved.
pub(crate) struct Polished {
    pub routes: Vec<EngineRoute>,
    /// Stops still unassigned (a subset of those handed over).
    pub unassigned: Vec<usize>,
}

/// A small, fast random source (SplitMix64), one per search chain.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in 0..n (0 when n is 0).
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }
}

struct Fleet {
    capacity: i64,
    start: f64,
    end: f64,
}

/// The problem's figures in flat arrays (node 0 is the depot, node `i + 1` stop `i`).
struct Data {
    size: usize,
    distance: Arc<[f64]>,
    duration: Arc<[f64]>,
    demand: Vec<i64>,
    service: Vec<f64>,
    open: Vec<f64>,
    close: Vec<f64>,
    depot_distance: Vec<f64>,
    /// Polishable vehicles (model index and figures).
    vehicles: Vec<(usize, Fleet)>,
    /// Nearest stops in play, per stop.
    neighbours: Vec<Vec<usize>>,
}

impl Data {
    #[inline]
    fn dist(&self, from: usize, to: usize) -> f64 {
        self.distance.get(from * self.size + to).copied().unwrap_or(-1.0)
    }

    #[inline]
    fn time(&self, from: usize, to: usize) -> f64 {
        self.duration.get(from * self.size + to).copied().unwrap_or(-1.0)
    }
}

/// One vehicle's single trip with its schedule.
#[derive(Clone, Default)]
struct Tour {
    stops: Vec<usize>,
    /// Earliest service start at each position.
    start: Vec<f64>,
    /// Latest service start at each position that keeps the rest of the tour on time.
    latest: Vec<f64>,
    load: i64,
    distance: f64,
}

impl Tour {
    /// Recomputes the schedule; false when the tour is infeasible.
    fn refresh(&mut self, data: &Data, fleet: &Fleet) -> bool {
        self.start.clear();
        self.latest.clear();
        self.load = 0;
        self.distance = 0.0;
        let mut at = 0;
        let mut t = fleet.start;
        for &s in &self.stops {
            let node = s + 1;
            let (d, dt) = (data.dist(at, node), data.time(at, node));
            if d < 0.0 || dt < 0.0 {
                return false;
            }
            self.distance += d;
            let begin = (t + dt).max(data.open[s]);
            if begin > data.close[s] {
                return false;
            }
            self.start.push(begin);
            self.load += data.demand[s];
            t = begin + data.service[s];
            at = node;
        }
        if self.stops.is_empty() {
            return true;
        }
        let (d, dt) = (data.dist(at, 0), data.time(at, 0));
        if d < 0.0 || dt < 0.0 || t + dt > fleet.end || self.load > fleet.capacity {
            return false;
        }
        self.distance += d;
        self.latest.resize(self.stops.len(), 0.0);
        let mut next_node = 0;
        let mut next_latest = fleet.end;
        for p in (0..self.stops.len()).rev() {
            let s = self.stops[p];
            let latest = data.close[s].min(next_latest - data.time(s + 1, next_node) - data.service[s]);
            self.latest[p] = latest;
            next_latest = latest;
            next_node = s + 1;
        }
        true
    }

    /// Cheapest feasible position for stop `s` whose added distance is below `bound`:
    /// `(added distance, position)`.
    fn best_insertion(
        &self,
        data: &Data,
        fleet: &Fleet,
        s: usize,
        bound: f64,
        mut rng: Option<&mut Rng>,
    ) -> Option<(f64, usize)> {
        if self.load + data.demand[s] > fleet.capacity {
            return None;
        }
        let node = s + 1;
        let mut best: Option<(f64, usize)> = None;
        let mut best_cost = bound;
        for p in 0..=self.stops.len() {
            if let Some(rng) = rng.as_deref_mut()
                && rng.unit() < BLINK
            {
                continue;
            }
            let prev = if p == 0 { 0 } else { self.stops[p - 1] + 1 };
            let next = self.stops.get(p).map_or(0, |&n| n + 1);
            let (d_in, d_out) = (data.dist(prev, node), data.dist(node, next));
            if d_in < 0.0 || d_out < 0.0 {
                continue;
            }
            let added = d_in + d_out - data.dist(prev, next).max(0.0);
            if added >= best_cost {
                continue;
            }
            let departure = if p == 0 {
                fleet.start
            } else {
                match self.start.get(p - 1) {
                    Some(start) => start + data.service[prev - 1],
                    None => continue,
                }
            };
            let (t_in, t_out) = (data.time(prev, node), data.time(node, next));
            if t_in < 0.0 || t_out < 0.0 {
                continue;
            }
            let begin = (departure + t_in).max(data.open[s]);
            if begin > data.close[s] {
                continue;
            }
            let arrival = begin + data.service[s] + t_out;
            let on_time = match self.stops.get(p) {
                None => arrival <= fleet.end,
                Some(&n) => self
                    .latest
                    .get(p)
                    .is_some_and(|&latest| arrival.max(data.open[n]) <= latest),
            };
            if on_time {
                best_cost = added;
                best = Some((added, p));
            }
        }
        best
    }
}

/// A solution: one tour per polishable vehicle (possibly empty).
#[derive(Clone)]
struct State {
    tours: Vec<Tour>,
    /// Tour of each stop (`usize::MAX`: not in a tour).
    tour_of: Vec<usize>,
    unassigned: Vec<usize>,
    distance: f64,
}

impl State {
    fn better_than(&self, other: &State) -> bool {
        (self.unassigned.len(), self.distance) < (other.unassigned.len(), other.distance)
    }

    /// Copies tour `t` (and its stops' tour marks) from `from`.
    fn copy_tour(&mut self, from: &State, t: usize) {
        for &s in &self.tours[t].stops {
            self.tour_of[s] = usize::MAX;
        }
        self.tours[t].clone_from(&from.tours[t]);
        for &s in &self.tours[t].stops {
            self.tour_of[s] = t;
        }
    }
}

/// One annealing chain's scratch space.
struct Chain<'d> {
    data: &'d Data,
    rng: Rng,
    touched: Vec<usize>,
    is_touched: Vec<bool>,
    removed: Vec<usize>,
    /// Tours with stops (scratch space of `ruin`).
    used: Vec<usize>,
    /// Kinds of empty vehicle already tried for the current stop.
    kinds: Vec<(i64, u64, u64)>,
}

impl<'d> Chain<'d> {
    fn touch(&mut self, t: usize) {
        if !std::mem::replace(&mut self.is_touched[t], true) {
            self.touched.push(t);
        }
    }

    /// Removes strings of stops from tours near a random stop. False when a tour
    /// became infeasible (possible with matrices that break the triangle inequality).
    fn ruin(&mut self, state: &mut State) -> bool {
        let data = self.data;
        let mut used = std::mem::take(&mut self.used);
        used.clear();
        used.extend((0..state.tours.len()).filter(|&t| !state.tours[t].stops.is_empty()));
        if used.is_empty() {
            self.used = used;
            return true;
        }
        let assigned: usize = used.iter().map(|&t| state.tours[t].stops.len()).sum();
        let mean_length = assigned as f64 / used.len() as f64;
        let max_string = MAX_STRING.min(mean_length);
        let max_tours = 4.0 * MEAN_REMOVED / (1.0 + max_string) - 1.0;
        let tours_to_ruin = (1.0 + self.rng.unit() * max_tours).floor().max(1.0) as usize;

        let seed = {
            let t = used[self.rng.below(used.len())];
            let stops = &state.tours[t].stops;
            stops[self.rng.below(stops.len())]
        };
        self.used = used;
        let mut ruined = 0;
        for &c in std::iter::once(&seed).chain(data.neighbours[seed].iter()) {
            if ruined >= tours_to_ruin {
                break;
            }
            let t = state.tour_of[c];
            if t == usize::MAX || self.is_touched[t] {
                continue;
            }
            let tour = &mut state.tours[t];
            let length = tour.stops.len();
            let Some(at) = tour.stops.iter().position(|&s| s == c) else {
                continue;
            };
            let cap = (length as f64).min(max_string);
            let l = ((1.0 + self.rng.unit() * cap).floor() as usize).clamp(1, length);
            let (from, to, keep) = if l == length || self.rng.unit() < 0.5 {
                // A string of l stops containing c.
                let lo = (at + 1).saturating_sub(l);
                let hi = at.min(length - l);
                let from = lo + self.rng.below(hi - lo + 1);
                (from, from + l, 0..0)
            } else {
                // A string of l + m stops containing c, of which m in the middle stay.
                let mut m = 1;
                while l + m < length && self.rng.unit() < 0.5 {
                    m += 1;
                }
                let total = (l + m).min(length);
                let lo = (at + 1).saturating_sub(total);
                let hi = at.min(length - total);
                let from = lo + self.rng.below(hi - lo + 1);
                let keep_from = from + self.rng.below(l + 1);
                (from, from + total, keep_from..keep_from + m)
            };
            let mut p = 0;
            let removed = &mut self.removed;
            let tour_of = &mut state.tour_of;
            tour.stops.retain(|&s| {
                let out = p >= from && p < to && !keep.contains(&p);
                p += 1;
                if out {
                    removed.push(s);
                    tour_of[s] = usize::MAX;
                }
                !out
            });
            ruined += 1;
            self.touch(t);
        }
        let mut feasible = true;
        for &t in &self.touched {
            let (_, fleet) = &data.vehicles[t];
            state.distance -= state.tours[t].distance;
            feasible &= state.tours[t].refresh(data, fleet);
            state.distance += state.tours[t].distance;
        }
        feasible
    }

    /// Reinserts the removed and unassigned stops at their cheapest positions.
    fn recreate(&mut self, state: &mut State) {
        let data = self.data;
        let mut pending = std::mem::take(&mut self.removed);
        // Up to MEAN_REMOVED of the unassigned stops, drawn at random, get a chance too
        // (all of them every time would make a day with many unserved stops crawl).
        for _ in 0..(MEAN_REMOVED as usize).min(state.unassigned.len()) {
            let k = self.rng.below(state.unassigned.len());
            pending.push(state.unassigned.swap_remove(k));
        }
        match self.rng.below(11) {
            0..=3 => {
                for i in (1..pending.len()).rev() {
                    let j = self.rng.below(i + 1);
                    pending.swap(i, j);
                }
            }
            4..=7 => pending.sort_by(|&a, &b| data.demand[b].cmp(&data.demand[a])),
            8..=9 => pending.sort_by(|&a, &b| data.depot_distance[b].total_cmp(&data.depot_distance[a])),
            _ => pending.sort_by(|&a, &b| data.depot_distance[a].total_cmp(&data.depot_distance[b])),
        }
        for &s in &pending {
            let mut best: Option<(f64, usize, usize)> = None;
            for (t, tour) in state.tours.iter().enumerate() {
                if tour.stops.is_empty() {
                    continue;
                }
                let bound = best.map_or(f64::INFINITY, |b| b.0);
                if let Some((cost, p)) =
                    tour.best_insertion(data, &data.vehicles[t].1, s, bound, Some(&mut self.rng))
                {
                    best = Some((cost, t, p));
                }
            }
            // A new route competes too (distance alone decides how many routes there
            // are): one empty vehicle of each kind.
            self.kinds.clear();
            for (t, tour) in state.tours.iter().enumerate() {
                if !tour.stops.is_empty() {
                    continue;
                }
                let fleet = &data.vehicles[t].1;
                let kind = (fleet.capacity, fleet.start.to_bits(), fleet.end.to_bits());
                if self.kinds.contains(&kind) {
                    continue;
                }
                self.kinds.push(kind);
                let bound = best.map_or(f64::INFINITY, |b| b.0);
                if let Some((cost, p)) = tour.best_insertion(data, fleet, s, bound, None) {
                    best = Some((cost, t, p));
                }
            }
            match best {
                Some((_, t, p)) => {
                    let fleet = &data.vehicles[t].1;
                    let tour = &mut state.tours[t];
                    state.distance -= tour.distance;
                    tour.stops.insert(p, s);
                    if tour.refresh(data, fleet) {
                        state.tour_of[s] = t;
                    } else {
                        // Rounding can make the recomputed schedule disagree with the
                        // constant-time check at the very edge of a window: the full
                        // recomputation decides.
                        tour.stops.remove(p);
                        tour.refresh(data, fleet);
                        state.unassigned.push(s);
                    }
                    state.distance += tour.distance;
                    self.touch(t);
                }
                None => state.unassigned.push(s),
            }
        }
        self.removed = pending;
        self.removed.clear();
    }
}

/// Runs one annealing chain from `initial` until `deadline` or `max_iterations`.
fn anneal(
    data: &Data,
    initial: &State,
    deadline: Instant,
    max_iterations: u64,
    seed: u64,
    heat: f64,
) -> State {
    let started = Instant::now();
    let span = deadline
        .saturating_duration_since(started)
        .as_secs_f64()
        .max(1e-9);
    let edges: usize = initial
        .tours
        .iter()
        .filter(|t| !t.stops.is_empty())
        .map(|t| t.stops.len() + 1)
        .sum();
    let mean_edge = if edges == 0 {
        1.0
    } else {
        initial.distance / edges as f64
    };
    let (t0, t1) = (
        heat * START_TEMPERATURE * mean_edge,
        heat * FINAL_TEMPERATURE * mean_edge,
    );

    let mut chain = Chain {
        data,
        rng: Rng(seed),
        touched: Vec::new(),
        is_touched: vec![false; initial.tours.len()],
        removed: Vec::new(),
        used: Vec::new(),
        kinds: Vec::new(),
    };
    let mut current = initial.clone();
    let mut work = initial.clone();
    let mut best = initial.clone();
    let mut progress = 0.0;
    for iteration in 0..max_iterations {
        if iteration % 32 == 0 {
            let elapsed = started.elapsed().as_secs_f64();
            if elapsed >= span {
                break;
            }
            progress = (elapsed / span).max(iteration as f64 / max_iterations as f64);
        }
        let temperature = t0 * (t1 / t0).powf(progress);
        let feasible = chain.ruin(&mut work);
        if feasible {
            chain.recreate(&mut work);
        }
        let accept = feasible
            && (work.unassigned.len() < current.unassigned.len()
                || (work.unassigned.len() == current.unassigned.len()
                    && work.distance < current.distance - temperature * (1.0 - chain.rng.unit()).ln()));
        let touched = std::mem::take(&mut chain.touched);
        if accept {
            for &t in &touched {
                current.copy_tour(&work, t);
            }
            current.unassigned.clone_from(&work.unassigned);
            current.distance = work.distance;
            if current.better_than(&best) {
                best.clone_from(&current);
            }
        } else {
            for &t in &touched {
                work.copy_tour(&current, t);
            }
            work.unassigned.clone_from(&current.unassigned);
            work.distance = current.distance;
        }
        for &t in &touched {
            chain.is_touched[t] = false;
        }
        chain.touched = touched;
        chain.touched.clear();
    }
    // Distances drift with floating-point sums over many iterations: recompute.
    best.distance = best.tours.iter().map(|t| t.distance).sum();
    best
}

/// Improves the engine's `routes` until `deadline` with `threads` independent chains
/// (seeded from `seed`), keeping the best. `unassigned` are the candidate stops the
/// engine left out; the search tries to place them too. Returns `None` when nothing
/// better was found (or nothing could be polished).
pub(crate) fn polish(
    model: &Model<'_>,
    routes: &[EngineRoute],
    unassigned: &[usize],
    deadline: Instant,
    seed: u64,
    threads: usize,
    max_iterations: Option<u64>,
) -> Option<Polished> {
    let problem = model.problem;
    let matrix = model.matrix;
    let fixed: Vec<&EngineRoute> = routes
        .iter()
        .filter(|r| r.visits.iter().any(|v| matches!(v, Visit::Reload)))
        .collect();
    let mut taken = vec![false; problem.vehicles.len()];
    for r in &fixed {
        if let Some(t) = taken.get_mut(r.vehicle) {
            *t = true;
        }
    }
    let vehicles: Vec<(usize, Fleet)> = (0..problem.vehicles.len())
        .filter(|&v| !taken[v])
        .map(|v| {
            let (start, end) = problem.vehicles[v].shift;
            (
                v,
                Fleet {
                    capacity: model.capacity[v],
                    start,
                    end,
                },
            )
        })
        .collect();
    let mut stops: Vec<usize> = routes
        .iter()
        .filter(|r| !r.visits.iter().any(|v| matches!(v, Visit::Reload)))
        .flat_map(|r| r.visits.iter())
        .filter_map(|v| match v {
            Visit::Stop(i) => Some(*i),
            Visit::Reload => None,
        })
        .chain(unassigned.iter().copied())
        .collect();
    stops.sort_unstable();
    stops.dedup();
    if stops.is_empty() || vehicles.is_empty() || Instant::now() >= deadline {
        return None;
    }

    let n = problem.stops.len();
    let mut data = Data {
        size: matrix.size,
        distance: matrix.distances.clone(),
        duration: matrix.durations.clone(),
        demand: model.demand.clone(),
        service: problem.stops.iter().map(|s| s.service_seconds).collect(),
        open: (0..n).map(|i| model.window(i).0).collect(),
        close: (0..n).map(|i| model.window(i).1).collect(),
        depot_distance: (0..n).map(|i| matrix.distance(0, i + 1)).collect(),
        vehicles,
        neighbours: vec![Vec::new(); n],
    };
    for &i in &stops {
        let mut near: Vec<(f64, usize)> = stops
            .iter()
            .filter(|&&j| j != i)
            .map(|&j| {
                let d = data.dist(i + 1, j + 1).max(0.0) + data.dist(j + 1, i + 1).max(0.0);
                (d, j)
            })
            .collect();
        let k = NEIGHBOURS.min(near.len());
        if k > 0 && k < near.len() {
            near.select_nth_unstable_by(k - 1, |a, b| a.0.total_cmp(&b.0));
            near.truncate(k);
        }
        near.sort_by(|a, b| a.0.total_cmp(&b.0));
        data.neighbours[i] = near.into_iter().map(|(_, j)| j).collect();
    }

    // The engine's solution as our state.
    let slot: Vec<Option<usize>> = {
        let mut slot = vec![None; problem.vehicles.len()];
        for (t, (v, _)) in data.vehicles.iter().enumerate() {
            slot[*v] = Some(t);
        }
        slot
    };
    let mut initial = State {
        tours: vec![Tour::default(); data.vehicles.len()],
        tour_of: vec![usize::MAX; n],
        unassigned: unassigned.to_vec(),
        distance: 0.0,
    };
    for route in routes {
        let Some(Some(t)) = slot.get(route.vehicle).copied() else {
            continue;
        };
        let tour = &mut initial.tours[t];
        tour.stops = route
            .visits
            .iter()
            .filter_map(|v| match v {
                Visit::Stop(i) => Some(*i),
                Visit::Reload => None,
            })
            .collect();
        if !tour.refresh(&data, &data.vehicles[t].1) {
            // Not a route we can reason about: leave the engine's solution alone.
            return None;
        }
        for &s in &tour.stops {
            initial.tour_of[s] = t;
        }
        initial.distance += tour.distance;
    }

    let limit = max_iterations.unwrap_or(ITERATIONS_PER_STOP.saturating_mul(stops.len() as u64));
    let data = &data;
    let initial_ref = &initial;
    let best = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads.max(1))
            .map(|k| {
                let chain_seed = seed ^ (k as u64).wrapping_mul(0xA076_1D64_78BD_642F);
                // Every other chain runs forty times hotter: which suits an instance best
                // varies (clustered or not, tight windows or wide), so hedge.
                let heat = if k % 2 == 0 { 1.0 } else { HOT_CHAIN };
                scope.spawn(move || anneal(data, initial_ref, deadline, limit, chain_seed, heat))
            })
            .collect();
        let mut best: Option<State> = None;
        for handle in handles {
            // A panicking chain is simply not counted.
            if let Ok(state) = handle.join()
                && best.as_ref().is_none_or(|b| state.better_than(b))
            {
                best = Some(state);
            }
        }
        best
    })?;
    if !best.better_than(&initial) {
        return None;
    }

    let mut out: Vec<EngineRoute> = fixed.into_iter().cloned().collect();
    for (t, tour) in best.tours.iter().enumerate() {
        if !tour.stops.is_empty() {
            out.push(EngineRoute {
                vehicle: data.vehicles[t].0,
                visits: tour.stops.iter().map(|&s| Visit::Stop(s)).collect(),
            });
        }
    }
    let mut still = best.unassigned;
    still.sort_unstable();
    Some(Polished {
        routes: out,
        unassigned: still,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::routing::travel::Matrix;
    use crate::domain::routing::{Location, MultiTripRules, Rounding, RoutingProblem, Stop, Travel, Vehicle};
    use std::time::Duration;

    /// x, y, demand and window of a stop.
    type Spot = (f64, f64, f64, Option<(f64, f64)>);

    fn planar(stops: Vec<Spot>, vehicles: Vec<(f64, u8)>) -> RoutingProblem {
        RoutingProblem {
            depot: Location::Planar { x: 0.0, y: 0.0 },
            stops: stops
                .into_iter()
                .enumerate()
                .map(|(i, (x, y, demand, window))| Stop {
                    id: format!("s{i}"),
                    location: Location::Planar { x, y },
                    demand,
                    service_seconds: 1.0,
                    window,
                })
                .collect(),
            vehicles: vehicles
                .into_iter()
                .enumerate()
                .map(|(i, (capacity, max_trips))| Vehicle {
                    id: format!("v{i}"),
                    capacity,
                    shift: (0.0, 10_000.0),
                    max_trips,
                })
                .collect(),
            travel: Travel::Planar {
                rounding: Rounding::Exact,
            },
            multi_trip: MultiTripRules {
                reload_seconds: 0.0,
                second_trip_radius_m: None,
            },
        }
    }

    /// Twelve stops on a circle of radius 100 around the depot.
    fn circle() -> Vec<Spot> {
        (0..12)
            .map(|i| {
                let a = i as f64 * std::f64::consts::TAU / 12.0;
                (100.0 * a.cos(), 100.0 * a.sin(), 1.0, None)
            })
            .collect()
    }

    fn stops_of(visits: &[usize]) -> Vec<Visit> {
        visits.iter().map(|&i| Visit::Stop(i)).collect()
    }

    fn run(
        problem: &RoutingProblem,
        routes: &[EngineRoute],
        unassigned: &[usize],
        threads: usize,
    ) -> Option<Polished> {
        let matrix = Matrix::build(problem).expect("matrix");
        let model = Model::new(problem, &matrix);
        let deadline = Instant::now() + Duration::from_secs(30);
        let polished = polish(&model, routes, unassigned, deadline, 11, threads, Some(20_000));
        if let Some(p) = &polished {
            let (planned, dropped) = model.finalize(p.routes.clone());
            assert!(
                dropped.is_empty(),
                "the polished routes pass our own check: {dropped:?}"
            );
            let served: usize = planned.iter().map(|r| r.stops.len()).sum();
            assert_eq!(served + p.unassigned.len(), problem.stops.len());
        }
        polished
    }

    fn distance(problem: &RoutingProblem, routes: &[EngineRoute]) -> f64 {
        let matrix = Matrix::build(problem).expect("matrix");
        let model = Model::new(problem, &matrix);
        model
            .finalize(routes.to_vec())
            .0
            .iter()
            .map(|r| r.distance_m)
            .sum()
    }

    #[test]
    fn a_tangled_route_is_straightened() {
        let problem = planar(circle(), vec![(100.0, 1), (100.0, 1)]);
        // Zig-zag across the circle.
        let tangled = [EngineRoute {
            vehicle: 1,
            visits: stops_of(&[0, 6, 1, 7, 2, 8, 3, 9, 4, 10, 5, 11]),
        }];
        let before = distance(&problem, &tangled);
        let polished = run(&problem, &tangled, &[], 1).expect("improves");
        let after = distance(&problem, &polished.routes);
        // Optimal: out to the circle, round it, back (2 radii + 11 chords of 2·100·sin(π/12)).
        let optimum = 200.0 + 11.0 * 200.0 * (std::f64::consts::PI / 12.0).sin();
        assert!(after < before, "{after} < {before}");
        assert!((after - optimum).abs() < 1e-6, "{after} vs optimum {optimum}");
    }

    #[test]
    fn stops_left_out_are_placed_when_they_fit() {
        let problem = planar(circle(), vec![(6.0, 1), (6.0, 1), (6.0, 1)]);
        let routes = [EngineRoute {
            vehicle: 0,
            visits: stops_of(&[0, 1, 2, 3, 4, 5]),
        }];
        let polished = run(&problem, &routes, &[6, 7, 8, 9, 10, 11], 2).expect("improves");
        assert!(polished.unassigned.is_empty(), "{:?}", polished.unassigned);
        // Capacity 6 a van: twelve stops take two vans.
        assert_eq!(polished.routes.len(), 2);
    }

    #[test]
    fn windows_and_capacity_bind_the_search() {
        // Two stops side by side; the window of s1 closes before the van can reach it
        // after s0, and capacity 2 only takes two of the three unit stops.
        let stops = vec![
            (100.0, 0.0, 1.0, Some((200.0, 300.0))),
            (100.0, 10.0, 1.0, Some((0.0, 150.0))),
            (-100.0, 0.0, 1.0, None),
        ];
        let problem = planar(stops, vec![(2.0, 1)]);
        let routes = [EngineRoute {
            vehicle: 0,
            visits: stops_of(&[1, 0]),
        }];
        // Nothing better exists: s2 does not fit, and s0 before s1 misses s1's window.
        assert!(run(&problem, &routes, &[2], 1).is_none());
    }

    #[test]
    fn routes_with_a_reload_are_kept_as_they_are() {
        let problem = planar(circle(), vec![(6.0, 2), (100.0, 1)]);
        let with_reload = EngineRoute {
            vehicle: 0,
            visits: vec![
                Visit::Stop(0),
                Visit::Stop(6),
                Visit::Reload,
                Visit::Stop(1),
                Visit::Stop(7),
            ],
        };
        let other = EngineRoute {
            vehicle: 1,
            visits: stops_of(&[2, 8, 3, 9, 4, 10, 5, 11]),
        };
        let polished = run(&problem, &[with_reload.clone(), other], &[], 1).expect("improves");
        assert!(polished.routes.contains(&with_reload));
        assert!(
            polished
                .routes
                .iter()
                .all(|r| r.vehicle != 0 || *r == with_reload)
        );
    }

    #[test]
    fn one_thread_with_an_iteration_limit_is_reproducible() {
        let problem = planar(circle(), vec![(4.0, 1), (4.0, 1), (4.0, 1), (4.0, 1)]);
        let routes = [
            EngineRoute {
                vehicle: 0,
                visits: stops_of(&[0, 6, 3, 9]),
            },
            EngineRoute {
                vehicle: 1,
                visits: stops_of(&[1, 7, 4, 10]),
            },
            EngineRoute {
                vehicle: 2,
                visits: stops_of(&[2, 8, 5, 11]),
            },
        ];
        let first = run(&problem, &routes, &[], 1).expect("improves");
        let second = run(&problem, &routes, &[], 1).expect("improves");
        assert_eq!(first.routes, second.routes);
    }
}
