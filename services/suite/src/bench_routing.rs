//! `distnet bench routing <file.vrp>... [--seconds S] [--seed N]`: solves VRPLIB
//! instances through the planner's code path (`domain::vrplib` →
//! `domain::routing::solve`), checks each result independently, and prints its cost,
//! the best-known cost from the `.sol` beside it, and the gap; with several files, a
//! Markdown table and the mean gap.
//!
//! Without `--seconds`, each instance gets the budget issue 5 sets for it: 2.4 s per
//! 100 customers for CVRP, 60 s for VRPTW.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use distnet_logistics::domain::routing::{SolveOptions, solve};
use distnet_logistics::domain::vrplib::{Instance, parse_instance, parse_solution};

/// One instance's result.
struct Outcome {
    name: String,
    customers: usize,
    budget: f64,
    elapsed: f64,
    cost: f64,
    vehicles: usize,
    best: Option<f64>,
}

impl Outcome {
    fn gap(&self) -> Option<f64> {
        self.best
            .filter(|b| *b > 0.0)
            .map(|best| (self.cost - best) / best * 100.0)
    }
}

/// The acceptance budget of an instance (see the module docs).
pub fn default_budget(instance: &Instance) -> f64 {
    if instance.has_time_windows {
        60.0
    } else {
        2.4 * instance.customers() as f64 / 100.0
    }
}

fn solve_one(file: &Path, seconds: Option<f64>, seed: u64) -> anyhow::Result<Outcome> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let instance = parse_instance(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let best = std::fs::read_to_string(file.with_extension("sol"))
        .ok()
        .and_then(|text| parse_solution(&text).ok())
        .map(|s| s.cost);
    let budget = seconds.unwrap_or_else(|| default_budget(&instance));
    anyhow::ensure!(
        budget.is_finite() && budget > 0.0 && budget <= 3600.0,
        "--seconds must be within (0, 3600]"
    );
    let problem = instance.to_routing_problem();
    let options = SolveOptions {
        time_budget: Duration::from_secs_f64(budget),
        seed,
        max_generations: None,
        threads: 0,
    };
    let started = Instant::now();
    let plan = solve(&problem, &options).map_err(|e| anyhow::anyhow!("{e}"))?;
    let elapsed = started.elapsed().as_secs_f64();
    let routes: Vec<Vec<usize>> = plan
        .routes
        .iter()
        .map(|r| r.stops.iter().filter_map(|s| s.stop_id.parse().ok()).collect())
        .collect();
    let evaluation = instance
        .evaluate_routes(&routes)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "{}: {} customers, {budget:.1} s budget, solved in {elapsed:.1} s",
        instance.name,
        instance.customers(),
    );
    println!(
        "  cost {:.1} with {} vehicles, {} unassigned, {} violations",
        evaluation.cost,
        evaluation.vehicles,
        plan.unassigned.len(),
        evaluation.violations.len()
    );
    let outcome = Outcome {
        name: instance.name.clone(),
        customers: instance.customers(),
        budget,
        elapsed,
        cost: evaluation.cost,
        vehicles: evaluation.vehicles,
        best,
    };
    match (outcome.best, outcome.gap()) {
        (Some(best), Some(gap)) => println!("  best known {best:.1}: gap {gap:+.2} %"),
        _ => println!("  no best-known solution beside the instance"),
    }
    anyhow::ensure!(
        evaluation.violations.is_empty() && plan.unassigned.is_empty(),
        "{}: infeasible: {:?}, {} unassigned",
        instance.name,
        evaluation.violations,
        plan.unassigned.len()
    );
    Ok(outcome)
}

pub fn run(files: &[PathBuf], seconds: Option<f64>, seed: u64) -> anyhow::Result<()> {
    anyhow::ensure!(!files.is_empty(), "name at least one .vrp file");
    let mut outcomes = Vec::with_capacity(files.len());
    for file in files {
        outcomes.push(solve_one(file, seconds, seed)?);
    }
    if outcomes.len() > 1 {
        println!();
        println!("| instance | customers | budget | solved in | cost | vehicles | best known | gap |");
        println!("|---|---:|---:|---:|---:|---:|---:|---:|");
        for o in &outcomes {
            println!(
                "| {} | {} | {:.1} s | {:.1} s | {:.1} | {} | {} | {} |",
                o.name,
                o.customers,
                o.budget,
                o.elapsed,
                o.cost,
                o.vehicles,
                o.best.map_or("–".into(), |b| format!("{b:.1}")),
                o.gap().map_or("–".into(), |g| format!("{g:+.2} %")),
            );
        }
        let gaps: Vec<f64> = outcomes.iter().filter_map(Outcome::gap).collect();
        if !gaps.is_empty() {
            println!(
                "\nmean gap over {} instances: {:+.2} %",
                gaps.len(),
                gaps.iter().sum::<f64>() / gaps.len() as f64
            );
        }
    }
    Ok(())
}

/// Deterministic 64-bit mix of a retailer id and the seed (SplitMix64's finaliser).
fn mix(text: &str, seed: u64) -> u64 {
    let mut z = text.bytes().fold(seed ^ 0x9e37_79b9_7f4a_7c15, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Stops in a demo-network day: one city zone, phoned and delivered that day.
pub const DEMO_DAY_STOPS: usize = 1_900;

/// `distnet bench routing --demo-day`: a day of the demo network's first city zone —
/// ≈1,900 of its retailers with an order of 10–66 cartons (≈0.76 cases, DOMAIN.md's
/// 45 cases a van-day over 32 vans), the morning and afternoon runs planned with the
/// city DC's 32 vans through the planner's problem builder (`domain::dispatch`), each
/// checked independently. The budget (default 28 s, so that the whole day takes under
/// 30 s) is split between the two runs by their stops.
pub fn run_demo_day(seconds: Option<f64>, seed: u64) -> anyhow::Result<()> {
    use distnet_logistics::domain::dispatch::{Delivery, DeliveryModel, Van};
    use distnet_logistics::domain::routing::verify_plan;
    use distnet_logistics::domain::slot::Half;

    // 28 s of search leaves room for building and checking the problems within 30 s.
    let day_started = Instant::now();
    let budget = seconds.unwrap_or(28.0);
    anyhow::ensure!(
        budget.is_finite() && budget > 0.0 && budget <= 3600.0,
        "--seconds must be within (0, 3600]"
    );
    let shape = crate::seed::NetworkShape::default();
    let (depots, zones, vehicles) = crate::demo_logistics::network(&shape);
    let depot = depots
        .iter()
        .find(|d| d.name == "depots/chengdu")
        .and_then(|d| d.location)
        .ok_or_else(|| anyhow::anyhow!("the demo network has no city DC"))?;
    let zone = zones
        .iter()
        .find(|z| z.name == "zones/city-1")
        .ok_or_else(|| anyhow::anyhow!("the demo network has no city zone"))?;
    let vans: Vec<Van> = vehicles
        .iter()
        .filter(|v| v.depot == "depots/chengdu")
        .map(|v| {
            let minutes =
                |t: Option<distnet_proto::common::v1::TimeOfDay>| t.map_or(0, |t| t.hours * 60 + t.minutes);
            Van {
                id: v.name.trim_start_matches("vehicles/").to_string(),
                capacity_cases: v.capacity_cases,
                shift_start_min: minutes(v.shift_start),
                shift_end_min: minutes(v.shift_end),
            }
        })
        .collect();
    let mut retailers: Vec<_> = crate::seed::generate(&shape)
        .into_iter()
        .filter(|r| zone.area_ids.contains(&r.customer.area_id))
        .collect();
    retailers.sort_by_key(|r| mix(&r.customer_id, seed));
    retailers.truncate(DEMO_DAY_STOPS);
    let (mut morning, mut afternoon) = (Vec::new(), Vec::new());
    for r in &retailers {
        let Some(at) = r.customer.location else { continue };
        let window = r.customer.receiving_window.as_ref().and_then(|w| {
            let s = w.start?;
            let e = w.end?;
            Some((
                f64::from(s.hours * 3600 + s.minutes * 60),
                f64::from(e.hours * 3600 + e.minutes * 60),
            ))
        });
        let h = mix(&r.customer_id, seed.wrapping_add(1));
        let delivery = Delivery {
            id: r.customer_id.clone(),
            at: (at.latitude, at.longitude),
            cartons: 10 + (h % 57) as i64,
            window,
        };
        // The 17:30 batch rides the afternoon run: most retailers still open after
        // 12:30 ordered for it; those closing earlier take the morning run.
        let open_late = window.is_some_and(|(_, end)| end >= 12.5 * 3600.0);
        if open_late && (h >> 8) % 5 < 4 {
            afternoon.push(delivery);
        } else {
            morning.push(delivery);
        }
    }
    let model = DeliveryModel::default();
    let center = (depot.latitude, depot.longitude);
    println!(
        "demo day: zone {} of the demo network, {} stops ({} morning, {} afternoon), {} vans, {budget:.1} s budget",
        zone.display_name,
        retailers.len(),
        morning.len(),
        afternoon.len(),
        vans.len()
    );
    let mut total_time = 0.0;
    let (mut total_assigned, mut total_stops) = (0usize, 0usize);
    for (name, half, deliveries) in [
        ("morning", Half::Morning, &morning),
        ("afternoon", Half::Afternoon, &afternoon),
    ] {
        let problem = model.problem(center, deliveries, &vans, half, f64::NEG_INFINITY);
        let share = deliveries.len() as f64 / retailers.len().max(1) as f64;
        let options = SolveOptions {
            time_budget: Duration::from_secs_f64((budget * share).max(0.1)),
            seed,
            max_generations: None,
            threads: 0,
        };
        let started = Instant::now();
        let plan = solve(&problem, &options).map_err(|e| anyhow::anyhow!("{e}"))?;
        let elapsed = started.elapsed().as_secs_f64();
        total_time += elapsed;
        let violations = verify_plan(&problem, &plan).map_err(|e| anyhow::anyhow!("{e}"))?;
        anyhow::ensure!(violations.is_empty(), "{name}: infeasible plan: {violations:?}");
        let mut reasons: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
        for (_, reason) in &plan.unassigned {
            *reasons.entry(reason.as_str()).or_default() += 1;
        }
        let assigned = deliveries.len() - plan.unassigned.len();
        let cases: f64 = plan.routes.iter().map(|r| r.load).sum();
        println!(
            "  {name}: {assigned}/{} stops planned in {elapsed:.1} s on {} vans ({} second trips), {:.0} km, {:.1} cases a van; unassigned {:?}",
            deliveries.len(),
            plan.vehicles_used,
            plan.routes.iter().filter(|r| r.trips > 1).count(),
            plan.total_distance / 1000.0,
            cases / plan.vehicles_used.max(1) as f64,
            reasons
        );
        total_assigned += assigned;
        total_stops += deliveries.len();
    }
    println!(
        "  day: {total_assigned}/{total_stops} stops planned in {:.1} s ({total_time:.1} s solving), every route checked",
        day_started.elapsed().as_secs_f64()
    );
    Ok(())
}
