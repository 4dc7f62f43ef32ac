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
