//! The `PROPORTIONAL` policy (DESIGN.md "Allocation"): the week's supply of a scarce
//! product (less holdback) is split across eligible retailers by the weight of their
//! tier, with a per-retailer floor and cap, by largest remainder, summing exactly to
//! supply when floors and caps allow and reporting the shortfall otherwise.
//!
//! Retailers of one tier are identical here, so the result is per tier: a base quota and
//! how many of the tier's retailers get one carton more. The service hands those +1s to
//! the tier's retailers in retailer id order (DESIGN.md: ties by retailer id).
//!
//! The rule, in order (integer arithmetic throughout, u128 intermediates):
//!
//! 1. Every eligible retailer (tier weight > 0) gets `floor`. When supply cannot cover
//!    every floor, `unmet_floor` reports the missing cartons and supply goes to tiers
//!    from the top down, each retailer up to its floor; the tier where it runs out shares
//!    what is left evenly (the first retailers by id get +1). The published grade is the
//!    sole basis for rationing (DOMAIN.md), so better tiers are served first.
//! 2. The rest R is shared in proportion to weight: a retailer of tier t is owed
//!    e_t = R × w_t / Σ w × retailers. A tier whose e_t reaches the headroom `cap − floor`
//!    is capped there and its excess is shared among the others; capping the heaviest
//!    tier can only raise the others' shares, so tiers are capped heaviest first until
//!    none binds. If every tier is capped, what remains is `shortfall`.
//! 3. Uncapped retailers get ⌊e_t⌋, and the cartons left (fewer than the retailers with
//!    a fractional share) go one each to the largest remainders; equal remainders favour
//!    the higher tier. So each retailer is within one carton of its exact share (the
//!    quota rule), never above its cap, and the total is exactly the supply.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProportionalPolicy {
    /// Weight per tier, index 0 = tier 1; 0 = not eligible.
    pub weights: Vec<u64>,
    /// Per-retailer minimum for every eligible retailer.
    pub floor: u64,
    /// Per-retailer maximum.
    pub cap: Option<u64>,
}

#[derive(Debug, Clone, Copy)]
pub struct ProportionalInput<'a> {
    /// Retailers per tier from the published grading; index 0 = tier 1.
    pub retailers_per_tier: &'a [u64],
    /// Supply available after holdback.
    pub supply: u64,
    pub policy: &'a ProportionalPolicy,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProportionalResult {
    /// Base per-retailer quota by tier.
    pub per_retailer: Vec<u64>,
    /// Per tier: how many retailers (the first by retailer id) get one carton more.
    pub extra_retailers: Vec<u64>,
    /// Σ (per_retailer × retailers + extra_retailers) ≤ supply.
    pub total: u64,
    /// Supply that could not be placed because caps bind (supply − total).
    pub shortfall: u64,
    /// Cartons missing to give every eligible retailer its floor (saturating).
    pub unmet_floor: u64,
    /// One line per tier: why it got what it got.
    pub explanations: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProportionalError {
    /// One weight per tier of the grading is needed.
    WeightsMismatch {
        weights: usize,
        tiers: usize,
    },
    CapBelowFloor {
        cap: u64,
        floor: u64,
    },
    /// Σ weight × retailers does not fit in 128 bits.
    WeightsTooLarge,
}

impl fmt::Display for ProportionalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WeightsMismatch { weights, tiers } => write!(f, "{weights} weights for {tiers} tiers"),
            Self::CapBelowFloor { cap, floor } => write!(f, "cap {cap} is below floor {floor}"),
            Self::WeightsTooLarge => write!(f, "weights × retailers overflow"),
        }
    }
}

impl std::error::Error for ProportionalError {}

/// Splits supply by tier weight under the `PROPORTIONAL` rule (see the module docs).
pub fn split(input: &ProportionalInput) -> Result<ProportionalResult, ProportionalError> {
    let (populations, policy, supply) = (input.retailers_per_tier, input.policy, input.supply);
    let (weights, floor, tiers) = (&policy.weights, policy.floor, populations.len());
    if weights.len() != tiers {
        return Err(ProportionalError::WeightsMismatch {
            weights: weights.len(),
            tiers,
        });
    }
    if let Some(cap) = policy.cap
        && cap < floor
    {
        return Err(ProportionalError::CapBelowFloor { cap, floor });
    }
    // (tier index, retailers, weight) of every tier with retailers to serve.
    let eligible: Vec<(usize, u64, u64)> = (0..tiers)
        .zip(populations.iter().zip(weights))
        .filter(|&(_, (&p, &w))| p > 0 && w > 0)
        .map(|(t, (&p, &w))| (t, p, w))
        .collect();
    let retailers: u128 = eligible.iter().map(|&(_, p, _)| u128::from(p)).sum();
    let floors = u128::from(floor).saturating_mul(retailers);
    let mut result = ProportionalResult {
        per_retailer: vec![0; tiers],
        extra_retailers: vec![0; tiers],
        total: 0,
        shortfall: 0,
        unmet_floor: u64::try_from(floors.saturating_sub(u128::from(supply))).unwrap_or(u64::MAX),
        explanations: Vec::new(),
    };
    let mut reasons: Vec<String> = vec![String::new(); tiers];
    if result.unmet_floor > 0 {
        serve_floors_from_the_top(&eligible, floor, supply, &mut result, &mut reasons);
    } else {
        // floors ≤ supply, so the rest fits in u64.
        let rest = supply - u64::try_from(floors).unwrap_or(supply);
        share_by_weight(&eligible, floor, policy.cap, rest, &mut result, &mut reasons)?;
    }
    let placed: u128 = (result.per_retailer.iter().zip(populations))
        .zip(&result.extra_retailers)
        .map(|((&q, &p), &extra)| u128::from(q) * u128::from(p) + u128::from(extra))
        .sum();
    result.total = u64::try_from(placed).unwrap_or(u64::MAX).min(supply);
    result.shortfall = supply - result.total;
    result.explanations = (0..tiers)
        .zip(weights.iter().zip(populations))
        .zip(reasons)
        .map(|((t, (&w, &p)), reason)| match (w, p) {
            (0, _) => format!("tier {}: 0 — weight 0, not eligible", t + 1),
            (_, 0) => format!("tier {}: 0 — weight {w} but no retailers", t + 1),
            _ => format!("tier {}: weight {w}, {p} retailers; {reason}", t + 1),
        })
        .collect();
    Ok(result)
}

/// Supply below the floors: tiers from the top down get their floors while supply lasts.
fn serve_floors_from_the_top(
    eligible: &[(usize, u64, u64)],
    floor: u64,
    supply: u64,
    result: &mut ProportionalResult,
    reasons: &mut [String],
) {
    let mut left = u128::from(supply);
    for &(tier, retailers, _) in eligible.iter().rev() {
        let need = u128::from(floor) * u128::from(retailers);
        let (each, extra) = if left >= need {
            (floor, 0)
        } else {
            let each = left / u128::from(retailers);
            (
                u64::try_from(each).unwrap_or(0),
                u64::try_from(left % u128::from(retailers)).unwrap_or(0),
            )
        };
        left = left.saturating_sub(u128::from(each) * u128::from(retailers) + u128::from(extra));
        set(result, tier, each, extra);
        if let Some(reason) = reasons.get_mut(tier) {
            *reason = match (each, extra) {
                (each, 0) if each == floor => format!("floor {floor} each: tiers are served from the top"),
                (0, 0) => format!("nothing: supply ran out above this tier (floor {floor} unmet)"),
                _ => {
                    format!("{each} each, {extra} get +1: supply ran out in this tier (floor {floor} unmet)")
                }
            };
        }
    }
}

/// Floors met: shares the rest by weight, capping the heaviest tiers first, then by
/// largest remainder.
fn share_by_weight(
    eligible: &[(usize, u64, u64)],
    floor: u64,
    cap: Option<u64>,
    rest: u64,
    result: &mut ProportionalResult,
    reasons: &mut [String],
) -> Result<(), ProportionalError> {
    let mut weight_total = 0u128;
    for &(_, retailers, weight) in eligible {
        let tier_weight = u128::from(weight) * u128::from(retailers);
        weight_total = weight_total
            .checked_add(tier_weight)
            .ok_or(ProportionalError::WeightsTooLarge)?;
    }
    let (mut pool, headroom) = (u128::from(rest), cap.map(|cap| cap - floor));
    // Heaviest first; equal weights are capped together, so their order does not matter.
    let mut by_weight: Vec<(usize, &(usize, u64, u64))> = eligible.iter().enumerate().collect();
    by_weight.sort_by_key(|&(_, &(tier, _, weight))| std::cmp::Reverse((weight, tier)));
    let mut capped = vec![false; eligible.len()];
    if let Some(headroom) = headroom {
        for &(index, &(tier, retailers, weight)) in &by_weight {
            // e_t ≥ headroom ⇔ pool × w ≥ headroom × Σ w p (an overflow means it is not).
            let binds = u128::from(headroom)
                .checked_mul(weight_total)
                .is_some_and(|limit| pool * u128::from(weight) >= limit);
            if weight_total == 0 || !binds {
                break;
            }
            pool = pool.saturating_sub(u128::from(headroom) * u128::from(retailers));
            weight_total -= u128::from(weight) * u128::from(retailers);
            if let Some(slot) = capped.get_mut(index) {
                *slot = true;
            }
            let cap = floor.saturating_add(headroom);
            set(result, tier, cap, 0);
            if let Some(reason) = reasons.get_mut(tier) {
                *reason = format!("at the cap {cap}: its share reached it, the excess went to lighter tiers");
            }
        }
    }
    if weight_total == 0 {
        return Ok(()); // everyone capped (or nobody eligible): the pool is the shortfall
    }
    // (remainder, tier, retailers) of the uncapped tiers after their whole cartons.
    let mut remainders = Vec::with_capacity(eligible.len());
    let mut left = pool;
    for (&(tier, retailers, weight), _) in eligible.iter().zip(&capped).filter(|(_, capped)| !**capped) {
        let owed = pool * u128::from(weight);
        let (whole, remainder) = (owed / weight_total, owed % weight_total);
        left -= whole * u128::from(retailers);
        set(
            result,
            tier,
            floor.saturating_add(u64::try_from(whole).unwrap_or(0)),
            0,
        );
        remainders.push((remainder, tier, retailers));
        if let Some(reason) = reasons.get_mut(tier) {
            let hundredths = remainder.checked_mul(100).map_or(0, |r| r / weight_total);
            *reason = format!("floor {floor} + weight share {whole}.{hundredths:02}");
        }
    }
    // Largest remainder first; equal remainders favour the higher tier.
    remainders.sort_by_key(|&(remainder, tier, _)| std::cmp::Reverse((remainder, tier)));
    for (_, tier, retailers) in remainders {
        let extra = u64::try_from(left.min(u128::from(retailers))).unwrap_or(0);
        left -= u128::from(extra);
        if let (Some(slot), Some(reason)) = (result.extra_retailers.get_mut(tier), reasons.get_mut(tier)) {
            *slot = extra;
            reason.push_str(&format!(", {extra} of {retailers} get +1 by largest remainder"));
        }
    }
    Ok(())
}

fn set(result: &mut ProportionalResult, tier: usize, each: u64, extra: u64) {
    if let (Some(slot), Some(extra_slot)) = (
        result.per_retailer.get_mut(tier),
        result.extra_retailers.get_mut(tier),
    ) {
        (*slot, *extra_slot) = (each, extra);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn try_split(
        populations: &[u64],
        weights: &[u64],
        floor: u64,
        cap: Option<u64>,
        supply: u64,
    ) -> Result<ProportionalResult, ProportionalError> {
        let policy = &ProportionalPolicy {
            weights: weights.to_vec(),
            floor,
            cap,
        };
        split(&ProportionalInput {
            retailers_per_tier: populations,
            supply,
            policy,
        })
    }

    fn run(
        populations: &[u64],
        weights: &[u64],
        floor: u64,
        cap: Option<u64>,
        supply: u64,
    ) -> ProportionalResult {
        try_split(populations, weights, floor, cap, supply).expect("valid policy")
    }

    /// Each retailer's cartons, tier by tier.
    fn cartons(result: &ProportionalResult, populations: &[u64]) -> Vec<Vec<u64>> {
        let per_tier = result
            .per_retailer
            .iter()
            .zip(&result.extra_retailers)
            .zip(populations);
        per_tier
            .map(|((&each, &extra), &p)| (0..p).map(|i| each + u64::from(i < extra)).collect())
            .collect()
    }

    #[test]
    fn supply_is_split_by_weight_and_sums_exactly() {
        let result = run(&[10, 10, 10], &[1, 2, 3], 0, None, 95);
        // Shares 1.58, 3.17, 4.75 per retailer: 80 whole cartons, 15 to the largest remainders.
        assert_eq!(
            (result.per_retailer, result.extra_retailers),
            (vec![1, 3, 4], vec![5, 0, 10])
        );
        assert_eq!((result.total, result.shortfall, result.unmet_floor), (95, 0, 0));
        assert!(result.explanations[0].contains("largest remainder"));
    }

    #[test]
    fn floors_come_first_and_the_rest_follows_weight() {
        let result = run(&[4, 2], &[1, 3], 5, None, 60);
        // 30 cartons of floors, then 30 shared 1:3 per retailer: 3 and 9.
        assert_eq!(
            (result.per_retailer, result.extra_retailers, result.total),
            (vec![8, 14], vec![0, 0], 60)
        );
    }

    #[test]
    fn capped_tiers_pass_their_excess_to_the_others() {
        let result = run(&[10, 10], &[1, 9], 0, Some(6), 100);
        assert_eq!(
            (result.per_retailer, result.extra_retailers),
            (vec![4, 6], vec![0, 0])
        );
        assert!(result.explanations[1].contains("cap"));
        assert_eq!(result.total, 100);
    }

    #[test]
    fn when_every_cap_binds_the_rest_is_a_shortfall() {
        let result = run(&[10, 5], &[1, 1], 1, Some(3), 100);
        assert_eq!(
            (result.per_retailer, result.total, result.shortfall),
            (vec![3, 3], 45, 55)
        );
    }

    #[test]
    fn short_supply_serves_floors_from_the_top_tier_down() {
        let result = run(&[5, 5, 5], &[1, 1, 1], 2, None, 17);
        assert_eq!(
            (result.per_retailer, result.extra_retailers),
            (vec![0, 1, 2], vec![0, 2, 0])
        );
        assert_eq!((result.total, result.shortfall, result.unmet_floor), (17, 0, 13));
        assert!(result.explanations[0].contains("unmet"));
    }

    #[test]
    fn ineligible_and_empty_tiers_get_nothing() {
        let result = run(&[10, 0, 10], &[0, 5, 1], 1, None, 50);
        assert_eq!(
            (result.per_retailer, result.extra_retailers, result.total),
            (vec![0, 0, 5], vec![0, 0, 0], 50)
        );
        assert!(
            result.explanations[0].contains("not eligible")
                && result.explanations[1].contains("no retailers")
        );
        let nobody = run(&[0, 0], &[1, 1], 1, None, 50);
        assert_eq!((nobody.total, nobody.shortfall), (0, 50));
    }

    #[test]
    fn equal_remainders_favour_the_higher_tier() {
        let result = run(&[1, 1, 1], &[1, 1, 1], 0, None, 2);
        assert_eq!(
            (result.per_retailer, result.extra_retailers),
            (vec![0, 0, 0], vec![0, 1, 1])
        );
    }

    #[test]
    fn invalid_policies_are_errors() {
        let mismatch = ProportionalError::WeightsMismatch { weights: 1, tiers: 2 };
        assert_eq!(try_split(&[1, 1], &[1], 0, None, 5), Err(mismatch));
        let below = ProportionalError::CapBelowFloor { cap: 1, floor: 2 };
        assert_eq!(try_split(&[1], &[1], 2, Some(1), 5), Err(below.clone()));
        assert!(below.to_string().contains("below"));
        let huge = try_split(&[u64::MAX, u64::MAX], &[u64::MAX, u64::MAX], 0, None, 5);
        assert_eq!(huge, Err(ProportionalError::WeightsTooLarge));
    }

    /// The capped shares by water-filling in batches (every tier whose share reaches the
    /// headroom at once), a different route to the same fixed point as `split`.
    fn exact_shares(
        populations: &[u64],
        weights: &[u64],
        rest: u64,
        headroom: Option<u64>,
    ) -> (u128, u128, Vec<bool>) {
        let (mut pool, mut capped) = (u128::from(rest), vec![false; weights.len()]);
        loop {
            let uncapped = |t: usize| !capped[t] && weights[t] > 0 && populations[t] > 0;
            let total: u128 = (0..weights.len())
                .filter(|&t| uncapped(t))
                .map(|t| u128::from(weights[t] * populations[t]))
                .sum();
            let Some(h) = headroom.filter(|_| total > 0) else {
                return (pool, total, capped);
            };
            let binding: Vec<usize> = (0..weights.len())
                .filter(|&t| uncapped(t) && pool * u128::from(weights[t]) >= u128::from(h) * total)
                .collect();
            if binding.is_empty() {
                return (pool, total, capped);
            }
            for t in binding {
                capped[t] = true;
                pool -= u128::from(h * populations[t]);
            }
        }
    }

    fn case() -> impl Strategy<Value = (Vec<u64>, Vec<u64>, u64, Option<u64>, u64)> {
        (1usize..=8).prop_flat_map(|tiers| {
            let headroom = prop::option::of(0u64..=20);
            (
                prop::collection::vec(0u64..=50, tiers),
                prop::collection::vec(0u64..=10, tiers),
                0u64..=3,
                headroom,
                0u64..=3_000,
            )
                .prop_map(|(pops, weights, floor, headroom, supply)| {
                    (pops, weights, floor, headroom.map(|h| floor + h), supply)
                })
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn every_split_obeys_the_rules((pops, weights, floor, cap, supply) in case()) {
            let result = run(&pops, &weights, floor, cap, supply);
            prop_assert_eq!(&result, &run(&pops, &weights, floor, cap, supply), "deterministic");
            let each = cartons(&result, &pops);
            let placed: u64 = each.iter().flatten().sum();
            prop_assert_eq!((placed, result.total + result.shortfall), (result.total, supply));
            let eligible = |t: usize| weights[t] > 0;
            let retailers: u64 = (0..pops.len()).filter(|&t| eligible(t)).map(|t| pops[t]).sum();
            let room = if retailers == 0 { 0 } else { cap.map_or(u64::MAX, |cap| cap * retailers) };
            prop_assert_eq!(result.unmet_floor, (floor * retailers).saturating_sub(supply));
            if floor * retailers <= supply && supply <= room {
                prop_assert_eq!(result.total, supply, "sums exactly to supply when floors and caps allow");
            }
            for (t, quotas) in each.iter().enumerate() {
                prop_assert!(result.extra_retailers[t] <= pops[t]);
                for &q in quotas {
                    prop_assert!(eligible(t) || q == 0, "weight 0 gets nothing");
                    let floors_met = result.unmet_floor == 0;
                    let within = q >= floor && cap.is_none_or(|c| q <= c);
                    prop_assert!(!eligible(t) || !floors_met || within, "{} outside [floor, cap]", q);
                }
            }
        }

        #[test]
        fn each_retailer_is_within_one_carton_of_its_exact_share(
            (pops, weights, floor, cap, supply) in case()
        ) {
            let result = run(&pops, &weights, floor, cap, supply);
            let retailers: u64 = (0..pops.len()).filter(|&t| weights[t] > 0).map(|t| pops[t]).sum();
            if floor * retailers > supply {
                return Ok(()); // floors unmet: no proportional phase
            }
            let headroom = cap.map(|c| c - floor);
            let (pool, total, capped) = exact_shares(&pops, &weights, supply - floor * retailers, headroom);
            for (t, quotas) in cartons(&result, &pops).iter().enumerate().filter(|(t, _)| weights[*t] > 0) {
                for &q in quotas {
                    let share = q - floor;
                    if capped[t] {
                        prop_assert_eq!(Some(share), headroom, "tier {} is capped", t + 1);
                    } else {
                        // |share − pool × w / total| < 1, in integers.
                        let (scaled, owed) = (u128::from(share) * total, pool * u128::from(weights[t]));
                        let tier = t + 1;
                        prop_assert!(scaled.abs_diff(owed) < total, "tier {tier}: {share} vs {owed}/{total}");
                    }
                }
            }
        }
    }
}
