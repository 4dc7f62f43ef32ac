//! Dynamic balance (DOMAIN.md "Rationing scarce supply"): each retailer's quota is
//! adjusted by its quota utilization rate. The rule, bounded so that it never
//! takes a retailer out of the ration and never lifts it above its tier:
//!
//! - a retailer that used less than `low_utilization_bp` (50 %) of its quota in
//!   each of the last `window` (4) cycles gets `scale_down_bp` (80 %) of its tier
//!   quota next cycle, rounded down but at least 1 carton;
//! - a retailer that used 100 % of its quota in the last cycle qualifies for quota
//!   released unclaimed by others (`ReleaseUnclaimed`);
//! - everyone else keeps the tier quota.

/// One cycle of a retailer's ration: what it was given and what it ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CycleUse {
    pub quota: u64,
    pub ordered: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BalanceRule {
    pub window: usize,
    pub low_utilization_bp: u32,
    pub scale_down_bp: u32,
}

impl Default for BalanceRule {
    fn default() -> Self {
        Self {
            window: 4,
            low_utilization_bp: 5_000,
            scale_down_bp: 8_000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adjustment {
    Keep,
    ScaleDown,
    QualifiesForRelease,
}

/// Utilization in basis points; a cycle without quota counts as unused capacity
/// of zero, i.e. it neither scales down nor qualifies.
pub fn utilization_bp(cycle: CycleUse) -> Option<u32> {
    if cycle.quota == 0 {
        return None;
    }
    let bp = u128::from(cycle.ordered) * 10_000 / u128::from(cycle.quota);
    Some(u32::try_from(bp.min(10_000)).unwrap_or(10_000))
}

/// The adjustment for the next cycle from `history` (oldest first).
pub fn adjustment(history: &[CycleUse], rule: &BalanceRule) -> Adjustment {
    if history.last().and_then(|c| utilization_bp(*c)) == Some(10_000) {
        return Adjustment::QualifiesForRelease;
    }
    if rule.window == 0 || history.len() < rule.window {
        return Adjustment::Keep;
    }
    let recent = &history[history.len() - rule.window..];
    let all_low = recent
        .iter()
        .all(|c| utilization_bp(*c).is_some_and(|bp| bp < rule.low_utilization_bp));
    if all_low {
        Adjustment::ScaleDown
    } else {
        Adjustment::Keep
    }
}

/// The retailer's quota next cycle given its tier's quota.
pub fn adjusted_quota(tier_quota: u64, adjustment: Adjustment, rule: &BalanceRule) -> u64 {
    match adjustment {
        Adjustment::ScaleDown if tier_quota > 0 => {
            let scaled = u128::from(tier_quota) * u128::from(rule.scale_down_bp.min(10_000)) / 10_000;
            u64::try_from(scaled).unwrap_or(tier_quota).clamp(1, tier_quota)
        }
        _ => tier_quota,
    }
}

/// The quotas dynamic balance changes at a commit: for each retailer with its
/// quota in the new run and its history (oldest first), the scaled quota of those
/// the rule scales down. Everyone else keeps the tier quota.
pub fn scaled_quotas<'a>(
    retailers: impl IntoIterator<Item = (&'a str, u64, &'a [CycleUse])>,
    rule: &BalanceRule,
) -> Vec<(String, u64)> {
    retailers
        .into_iter()
        .filter_map(|(customer, quota, history)| {
            let scaled = adjusted_quota(quota, adjustment(history, rule), rule);
            (scaled < quota).then(|| (customer.to_string(), scaled))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn used(quota: u64, ordered: u64) -> CycleUse {
        CycleUse { quota, ordered }
    }

    #[test]
    fn four_low_cycles_scale_down_and_a_full_one_qualifies() {
        let rule = BalanceRule::default();
        let low = vec![used(10, 4); 4];
        assert_eq!(adjustment(&low, &rule), Adjustment::ScaleDown);
        assert_eq!(adjusted_quota(10, Adjustment::ScaleDown, &rule), 8);
        assert_eq!(
            adjusted_quota(1, Adjustment::ScaleDown, &rule),
            1,
            "never out of the ration"
        );
        assert_eq!(
            adjustment(&low[..3], &rule),
            Adjustment::Keep,
            "three cycles are not a pattern"
        );
        let mut mixed = low.clone();
        mixed[2] = used(10, 6);
        assert_eq!(adjustment(&mixed, &rule), Adjustment::Keep);
        assert_eq!(
            adjustment(&[used(10, 10)], &rule),
            Adjustment::QualifiesForRelease
        );
    }

    #[test]
    fn only_retailers_scaled_down_are_listed() {
        let rule = BalanceRule::default();
        let low = vec![used(10, 1); 4];
        let full = vec![used(10, 10); 4];
        let scaled = scaled_quotas([("r-1", 10, low.as_slice()), ("r-2", 10, full.as_slice())], &rule);
        assert_eq!(scaled, vec![("r-1".to_string(), 8)]);
    }

    proptest! {
        #[test]
        fn the_adjustment_is_bounded(
            tier_quota in 0u64..10_000,
            history in proptest::collection::vec((0u64..100, 0u64..120), 0..8),
        ) {
            let rule = BalanceRule::default();
            let history: Vec<CycleUse> = history.into_iter().map(|(q, o)| used(q, o.min(q))).collect();
            let next = adjusted_quota(tier_quota, adjustment(&history, &rule), &rule);
            prop_assert!(next <= tier_quota, "never above the tier quota");
            prop_assert!(tier_quota == 0 || next >= 1, "never out of the ration");
            prop_assert!(next >= tier_quota * 8 / 10, "at most the documented cut");
        }
    }
}
