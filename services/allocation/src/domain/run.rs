//! One allocation run of one product: the policy's kernel ([`tier_quota::fit`] or
//! [`proportional::split`]) applied to the eligible retailers per tier, reported the
//! same way for both (per tier: retailers, quota, +1s, total, why).

use serde::{Deserialize, Serialize};

use super::eligibility::{Eligibility, Population};
use super::proportional::{self, ProportionalInput, ProportionalPolicy};
use super::tier_quota::{self, TierQuotaInput, TierQuotaPolicy};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Rule {
    TierQuota(TierQuotaPolicy),
    Proportional(ProportionalPolicy),
}

/// A product's policy as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyBody {
    pub rule: Rule,
    pub eligibility: Eligibility,
    /// Apply dynamic balance (`domain::balance`) at commit.
    #[serde(default)]
    pub dynamic_balance: bool,
}

impl Rule {
    /// How many tiers the run counts retailers for: the eligible range reaches up to
    /// `max_tier`, weights name one tier each; retailers above either get nothing.
    pub fn tiers(&self, top_tier_present: u32) -> usize {
        let tiers = match self {
            Rule::TierQuota(p) => p.max_tier.max(top_tier_present),
            Rule::Proportional(p) => u32::try_from(p.weights.len()).unwrap_or(u32::MAX),
        };
        usize::try_from(tiers).unwrap_or(0)
    }

    /// A rule is usable: TIER_QUOTA shapes its ramp with a cap or a step (without
    /// either, the closest fit may hand the whole supply to the top tier).
    pub fn check(&self) -> Result<(), String> {
        match self {
            Rule::TierQuota(p) => {
                if p.min_tier < 1 || p.min_tier > p.max_tier {
                    return Err(format!(
                        "eligible tiers {}..={} need 1 ≤ min ≤ max",
                        p.min_tier, p.max_tier
                    ));
                }
                if p.max_tier > 100 {
                    return Err("max_tier is at most 100".into());
                }
                if p.cap.is_none() && p.max_step.is_none() {
                    return Err(
                        "set a cap or a max_step: without either, the closest fit may give the whole supply to the top tier"
                            .into(),
                    );
                }
                if p.cap.is_some_and(|cap| cap < p.min_quota) {
                    return Err("cap is below min_quota".into());
                }
                Ok(())
            }
            Rule::Proportional(p) => {
                if p.weights.is_empty() || p.weights.len() > 100 {
                    return Err("one weight per tier (1..=100 tiers)".into());
                }
                if p.weights.iter().all(|w| *w == 0) {
                    return Err("at least one tier needs a weight".into());
                }
                if p.weights.iter().any(|w| *w > 1_000_000) {
                    return Err("weights are at most 1,000,000".into());
                }
                if p.cap.is_some_and(|cap| cap < p.floor) {
                    return Err("cap is below floor".into());
                }
                Ok(())
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierLine {
    /// 1-based.
    pub tier: u32,
    pub retailers: u64,
    pub quota: u64,
    pub extra_retailers: u64,
    pub total: u64,
    pub explanation: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutcome {
    pub tiers: Vec<TierLine>,
    pub total: u64,
    pub leftover: u64,
    pub shortfall: u64,
    pub unmet_floor: u64,
    pub eligible: u64,
    pub explanation: String,
}

/// Allocates `available` cartons (supply less holdback) to `retailers_per_tier` under
/// `rule`, aiming at `target` (0 = the available supply; TIER_QUOTA only).
pub fn run(
    rule: &Rule,
    retailers_per_tier: &[u64],
    available: u64,
    target: u64,
) -> Result<RunOutcome, String> {
    let eligible: u64 = retailers_per_tier.iter().sum();
    let target = if target == 0 {
        available
    } else {
        target.min(available)
    };
    let (quotas, extras, total, shortfall, unmet_floor, explanations, summary) = match rule {
        Rule::TierQuota(policy) => {
            let result = tier_quota::fit(&TierQuotaInput {
                retailers_per_tier,
                target,
                supply: available,
                policy,
            })
            .map_err(|e| e.to_string())?;
            let summary = format!(
                "TIER_QUOTA: tiers {}..={}, S = {} of target {} (supply {}), {} left over",
                policy.min_tier, policy.max_tier, result.total, target, available, result.leftover
            );
            let extras = vec![0; result.quotas.len()];
            (
                result.quotas,
                extras,
                result.total,
                0,
                0,
                result.explanations,
                summary,
            )
        }
        Rule::Proportional(policy) => {
            let result = proportional::split(&ProportionalInput {
                retailers_per_tier,
                supply: available,
                policy,
            })
            .map_err(|e| e.to_string())?;
            let summary = format!(
                "PROPORTIONAL: {} of {} placed by tier weight (floor {}, cap {}); shortfall {}, unmet floor {}",
                result.total,
                available,
                policy.floor,
                policy.cap.map_or("none".to_string(), |c| c.to_string()),
                result.shortfall,
                result.unmet_floor
            );
            (
                result.per_retailer,
                result.extra_retailers,
                result.total,
                result.shortfall,
                result.unmet_floor,
                result.explanations,
                summary,
            )
        }
    };
    let tiers = retailers_per_tier
        .iter()
        .enumerate()
        .map(|(i, retailers)| {
            let quota = quotas.get(i).copied().unwrap_or(0);
            let extra_retailers = extras.get(i).copied().unwrap_or(0);
            TierLine {
                tier: u32::try_from(i + 1).unwrap_or(u32::MAX),
                retailers: *retailers,
                quota,
                extra_retailers,
                total: quota.saturating_mul(*retailers).saturating_add(extra_retailers),
                explanation: explanations.get(i).cloned().unwrap_or_default(),
            }
        })
        .collect();
    Ok(RunOutcome {
        tiers,
        total,
        leftover: available.saturating_sub(total),
        shortfall,
        unmet_floor,
        eligible,
        explanation: summary,
    })
}

/// One product's run: its outcome and, for `PROPORTIONAL`, per tier the id up to
/// which eligible retailers get one carton more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductPlan {
    pub outcome: RunOutcome,
    pub extra_until: Vec<Option<String>>,
}

/// Runs a product's policy over the snapshot population: counts the eligible
/// retailers per tier, applies the kernel, and finds each tier's +1 cut-off id.
pub fn plan(
    population: &Population,
    policy: &PolicyBody,
    available: u64,
    target: u64,
) -> Result<ProductPlan, String> {
    let tiers = policy.rule.tiers(population.top_tier());
    let counts = population.retailers_per_tier(&policy.eligibility, tiers);
    let outcome = run(&policy.rule, &counts, available, target)?;
    let extra: Vec<u64> = outcome.tiers.iter().map(|t| t.extra_retailers).collect();
    let extra_until = population.extra_cutoffs(&policy.eligibility, &extra);
    Ok(ProductPlan { outcome, extra_until })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tier_totals_add_up_to_the_run_total_for_both_rules() {
        let populations = [120, 80, 40, 10];
        let tier_quota = Rule::TierQuota(TierQuotaPolicy {
            min_tier: 2,
            max_tier: 4,
            cap: Some(6),
            max_step: Some(2),
            min_quota: 1,
        });
        let proportional = Rule::Proportional(ProportionalPolicy {
            weights: vec![1, 2, 3, 4],
            floor: 1,
            cap: Some(10),
        });
        for rule in [tier_quota, proportional] {
            let outcome = run(&rule, &populations, 700, 0).expect("feasible");
            let sum: u64 = outcome.tiers.iter().map(|t| t.total).sum();
            assert_eq!(sum, outcome.total, "{rule:?}");
            assert!(outcome.total <= 700);
            assert_eq!(outcome.leftover, 700 - outcome.total);
            assert_eq!(outcome.eligible, 250);
        }
    }

    #[test]
    fn a_tier_quota_rule_without_cap_or_step_is_refused() {
        let rule = Rule::TierQuota(TierQuotaPolicy {
            min_tier: 1,
            max_tier: 30,
            cap: None,
            max_step: None,
            min_quota: 0,
        });
        assert!(rule.check().is_err());
    }

    #[test]
    fn an_infeasible_floor_is_reported_not_a_panic() {
        let rule = Rule::TierQuota(TierQuotaPolicy {
            min_tier: 1,
            max_tier: 2,
            cap: Some(5),
            max_step: None,
            min_quota: 3,
        });
        let error = run(&rule, &[10, 10], 20, 0).expect_err("60 needed, 20 supplied");
        assert!(error.contains("supply"), "{error}");
    }
}
