//! The allocation kernels at the scale: 100,000 retailers in 30 tiers over 20
//! areas, 3 classes and 5 formats, and 200 scarce products (a third PROPORTIONAL, a
//! tenth with area or class filters, a few pilot lists). `plan_200_products` is the
//! compute of `PreviewAllocation` / `CommitAllocation` (target: under 300 ms).
//!
//! `cargo bench -p distnet-allocation --bench kernels`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use distnet_allocation::domain::eligibility::{Candidate, Eligibility, Population};
use distnet_allocation::domain::proportional::ProportionalPolicy;
use distnet_allocation::domain::run::{self, PolicyBody, Rule};
use distnet_allocation::domain::tier_quota::{self, TierQuotaInput, TierQuotaPolicy};

// Measured with the services' allocator.
distnet_platform::use_mimalloc!();

const RETAILERS: u32 = 100_000;
const PRODUCTS: u32 = 200;

/// A graded network: more retailers in the low tiers than the high ones.
fn population() -> Vec<Candidate> {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move |below: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % below
    };
    (0..RETAILERS)
        .map(|i| {
            let skew = next(30).min(next(30)).min(next(30));
            Candidate {
                customer_id: format!("r-{i:06}"),
                tier: u32::try_from(skew).unwrap_or(0) + 1,
                class: i16::try_from(1 + next(3)).unwrap_or(1),
                area_id: format!("area-{:02}", 1 + next(20)),
                format: i16::try_from(1 + next(5)).unwrap_or(1),
            }
        })
        .collect()
}

/// 200 products: (policy, available supply).
fn products() -> Vec<(PolicyBody, u64)> {
    (0..PRODUCTS)
        .map(|p| {
            let available = 50_000 + u64::from(p) * 1_500;
            let rule = if p % 3 == 2 {
                Rule::Proportional(ProportionalPolicy {
                    weights: (1..=30).map(|t| if t < 5 { 0 } else { t }).collect(),
                    floor: 0,
                    cap: Some(20),
                })
            } else {
                Rule::TierQuota(TierQuotaPolicy {
                    min_tier: 1 + p % 10,
                    max_tier: 30,
                    cap: Some(12 + u64::from(p % 8)),
                    max_step: Some(1),
                    min_quota: 0,
                })
            };
            let eligibility = match p % 10 {
                0 => Eligibility {
                    area_ids: vec!["area-01".into(), "area-02".into(), "area-03".into()],
                    ..Eligibility::default()
                },
                1 => Eligibility {
                    classes: vec![1, 2],
                    ..Eligibility::default()
                },
                9 if p % 50 == 49 => Eligibility {
                    targets: (0..500).map(|i| format!("r-{:06}", i * 97)).collect(),
                    ..Eligibility::default()
                },
                _ => Eligibility::default(),
            };
            (
                PolicyBody {
                    rule,
                    eligibility,
                    dynamic_balance: false,
                },
                available,
            )
        })
        .collect()
}

fn kernels(c: &mut Criterion) {
    let candidates = population();
    let products = products();
    let population = Population::new(candidates.clone());

    c.bench_function("population_100k", |b| {
        b.iter(|| Population::new(black_box(candidates.clone())))
    });
    c.bench_function("plan_200_products_100k_retailers", |b| {
        b.iter(|| {
            for (policy, available) in &products {
                let plan = run::plan(&population, policy, *available, 0);
                black_box(plan.map(|p| p.outcome.total).unwrap_or(0));
            }
        })
    });
    c.bench_function("count_eligible_200_products", |b| {
        b.iter(|| {
            for (policy, _) in &products {
                black_box(population.retailers_per_tier(&policy.eligibility, 30));
            }
        })
    });
    let counted: Vec<Vec<u64>> = products
        .iter()
        .map(|(policy, _)| population.retailers_per_tier(&policy.eligibility, 30))
        .collect();
    c.bench_function("kernels_200_products", |b| {
        b.iter(|| {
            for ((policy, available), counts) in products.iter().zip(&counted) {
                black_box(
                    run::run(&policy.rule, counts, *available, 0)
                        .map(|o| o.total)
                        .unwrap_or(0),
                );
            }
        })
    });
    let counts = population.retailers_per_tier(&Eligibility::default(), 30);
    let policy = TierQuotaPolicy {
        min_tier: 1,
        max_tier: 30,
        cap: Some(15),
        max_step: Some(1),
        min_quota: 0,
    };
    c.bench_function("tier_quota_fit_100k", |b| {
        b.iter(|| {
            tier_quota::fit(&TierQuotaInput {
                retailers_per_tier: black_box(&counts),
                target: 400_000,
                supply: 400_000,
                policy: &policy,
            })
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = kernels
}
criterion_main!(benches);
