//! `distnet bench routing <file.vrp> [--seconds S]`: solves a VRPLIB instance through
//! the planner's code path (`domain::vrplib` → `domain::routing::solve`), checks the
//! result independently, and prints its cost, the best-known cost from the `.sol`
//! beside it, and the gap.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use distnet_logistics::domain::routing::{SolveOptions, solve};
use distnet_logistics::domain::vrplib::{parse_instance, parse_solution};

pub fn run(file: &Path, seconds: u64, seed: u64) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let instance = parse_instance(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let best = std::fs::read_to_string(file.with_extension("sol"))
        .ok()
        .and_then(|text| parse_solution(&text).ok())
        .map(|s| s.cost);
    let problem = instance.to_routing_problem();
    let options = SolveOptions {
        time_budget: Duration::from_secs(seconds),
        seed,
        max_generations: None,
        threads: 0,
    };
    let started = Instant::now();
    let plan = solve(&problem, &options).map_err(|e| anyhow::anyhow!("{e}"))?;
    let elapsed = started.elapsed();
    let routes: Vec<Vec<usize>> = plan
        .routes
        .iter()
        .map(|r| r.stops.iter().filter_map(|s| s.stop_id.parse().ok()).collect())
        .collect();
    let evaluation = instance
        .evaluate_routes(&routes)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "{}: {} customers, {:.1} s budget, solved in {:.1} s",
        instance.name,
        instance.customers(),
        seconds,
        elapsed.as_secs_f64()
    );
    println!(
        "  cost {:.1} with {} vehicles, {} unassigned, {} violations",
        evaluation.cost,
        evaluation.vehicles,
        plan.unassigned.len(),
        evaluation.violations.len()
    );
    match best {
        Some(best) if best > 0.0 => println!(
            "  best known {best:.1}: gap {:+.2} %",
            (evaluation.cost - best) / best * 100.0
        ),
        _ => println!("  no best-known solution beside the instance"),
    }
    anyhow::ensure!(
        evaluation.violations.is_empty(),
        "infeasible: {:?}",
        evaluation.violations
    );
    Ok(())
}
