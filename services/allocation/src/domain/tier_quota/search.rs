//! The exact search behind [`super::fit`]: reachable spare totals as bitsets, by
//! bounded knapsack over the rises when the cap cannot bind, by (tier, level) states
//! with a sliding-window OR when it can (see the parent module's docs for the bounds
//! that keep it exact), and the walk back down from the chosen total.

use super::{MAX_SEARCH_WORDS, TierQuotaError};

/// The spare problem: tiers up to the highest populated one (last, non-empty), spare
/// quotas `0..=cap`, rises ≤ `step`, spare total ≤ `bound`, closest to `target`.
pub(super) struct Search<'a> {
    pub(super) populations: &'a [u64],
    pub(super) bound: u64,
    pub(super) target: u64,
    pub(super) cap: u64,
    pub(super) step: u64,
}

/// Retailers at or above each tier (R_i), lowest tier first.
pub(super) fn at_or_above(populations: &[u64]) -> Vec<u128> {
    let mut sums = Vec::with_capacity(populations.len());
    let mut sum = 0u128;
    for &population in populations.iter().rev() {
        sum += u128::from(population);
        sums.push(sum);
    }
    sums.reverse();
    sums
}

/// The cap cannot bind: bounded knapsack over the rises; returns them, lowest tier first.
pub(super) fn by_rise(search: &Search) -> Result<Vec<u64>, TierQuotaError> {
    let (bound, step) = (search.bound, search.step);
    let words = words_for(u128::from(bound) + 1);
    let needed = (search.populations.len() as u128).saturating_mul(words as u128);
    if needed > MAX_SEARCH_WORDS {
        return Err(TierQuotaError::SearchTooLarge { words: needed });
    }
    let weights = at_or_above(search.populations);
    // How many rises of weight R_i fit under the bound (the lowest tier has no step).
    let copies = |index: usize, weight: u128| {
        let most = u64::try_from(u128::from(bound) / weight.max(1)).unwrap_or(u64::MAX);
        if index == 0 { most } else { most.min(step) }
    };
    let mut reach = vec![0u64; words];
    set_bit(&mut reach, 0);
    let (mut layers, mut scratch) = (Vec::with_capacity(weights.len()), Vec::new());
    for (index, &weight) in weights.iter().enumerate() {
        let (mut left, mut chunk) = (copies(index, weight), 1u64);
        while left > 0 {
            let take = chunk.min(left);
            scratch.clone_from(&reach);
            or_shifted(&mut reach, &scratch, (u128::from(take) * weight) as i128);
            mask_beyond(&mut reach, u128::from(bound) + 1);
            (left, chunk) = (left - take, chunk.saturating_mul(2));
        }
        layers.push(reach.clone());
    }
    let mut remaining = best_total(&reach, bound, search.target).ok_or(TierQuotaError::Inconsistent)?;
    let mut rises = vec![0; weights.len()];
    for (index, (slot, &weight)) in rises.iter_mut().zip(&weights).enumerate().rev() {
        let below = index
            .checked_sub(1)
            .and_then(|i| layers.get(i))
            .map_or(&[1][..], Vec::as_slice);
        let fits = |rise: &u64| {
            let rest = u128::from(remaining).checked_sub(u128::from(*rise) * weight);
            rest.is_some_and(|rest| contains(below, rest as u64))
        };
        *slot = (0..=copies(index, weight))
            .rev()
            .find(fits)
            .ok_or(TierQuotaError::Inconsistent)?;
        remaining -= (u128::from(*slot) * weight) as u64;
    }
    Ok(rises)
}

/// One tier of the level search.
pub(super) struct Plan {
    population: u64,
    /// The largest spare quota worth trying.
    upper: u64,
    /// Retailers strictly above this tier, and at or below it.
    above: u128,
    through: u128,
    /// Lowest partial sum kept: the window's low end less what the tiers above can add.
    base: u64,
}

impl Plan {
    /// Partial sums kept for a prefix ending at `value` (module docs), as stored bits.
    fn len_bits(&self, high: u64, value: u64) -> u128 {
        let value = u128::from(value);
        let top = u128::from(high).checked_sub(value.saturating_mul(self.above));
        let top = top.map(|top| top.min(value.saturating_mul(self.through)) + 1);
        top.map_or(0, |top| top.saturating_sub(u128::from(self.base)))
    }

    fn holds(&self, layer: &Layer, value: u64, sum: u64) -> bool {
        sum.checked_sub(self.base)
            .is_some_and(|index| contains(layer.set(value), index))
    }
}

/// Reachable partial sums per spare quota value of one tier, stored back to back.
pub(super) struct Layer {
    offsets: Vec<usize>,
    bits: Vec<u64>,
}

impl Layer {
    fn new(plan: &Plan, high: u64) -> Self {
        let mut offsets = vec![0usize];
        for value in 0..=plan.upper {
            let end = offsets.last().copied().unwrap_or(0);
            offsets.push(end.saturating_add(words_for(plan.len_bits(high, value))));
        }
        let bits = vec![0; offsets.last().copied().unwrap_or(0)];
        Self { offsets, bits }
    }

    fn range(&self, value: u64) -> Option<std::ops::Range<usize>> {
        let index = usize::try_from(value).ok()?;
        Some(*self.offsets.get(index)?..*self.offsets.get(index.checked_add(1)?)?)
    }

    fn set(&self, value: u64) -> &[u64] {
        self.range(value)
            .and_then(|r| self.bits.get(r))
            .unwrap_or_default()
    }

    fn set_mut(&mut self, value: u64) -> &mut [u64] {
        self.range(value)
            .and_then(|r| self.bits.get_mut(r))
            .unwrap_or_default()
    }
}

/// The cap can bind: search by (tier, spare quota); returns the rises, lowest tier first.
pub(super) fn by_level(search: &Search) -> Result<Vec<u64>, TierQuotaError> {
    let (cap, step) = (search.cap, search.step);
    let (low, high) = window(search);
    let (mut plans, mut words) = (Vec::with_capacity(search.populations.len()), 0u128);
    let weights = at_or_above(search.populations);
    let total = weights.first().copied().unwrap_or(0);
    for (&population, &at_or_above) in search.populations.iter().zip(&weights) {
        let above = at_or_above - u128::from(population);
        let upper = u64::try_from(u128::from(high) / at_or_above.max(1))
            .unwrap_or(u64::MAX)
            .min(cap);
        let base = u64::try_from(u128::from(low).saturating_sub(u128::from(cap).saturating_mul(above)));
        let through = total - above;
        let plan = Plan {
            population,
            upper,
            above,
            through,
            base: base.unwrap_or(0),
        };
        // Each state counts at least one word (its offset): the loop stops soon after the limit.
        for value in 0..=upper {
            words = words.saturating_add(words_for(plan.len_bits(high, value)).max(1) as u128);
            if words > MAX_SEARCH_WORDS {
                return Err(TierQuotaError::SearchTooLarge { words });
            }
        }
        plans.push(plan);
    }
    let mut layers: Vec<Layer> = Vec::with_capacity(plans.len());
    for (plan, below_plan) in plans
        .iter()
        .zip(std::iter::once(None).chain(plans.iter().map(Some)))
    {
        let mut layer = Layer::new(plan, high);
        match (layers.last(), below_plan) {
            (Some(below), Some(below_plan)) => extend(&mut layer, plan, high, below, below_plan, step),
            _ => {
                for value in 0..=plan.upper {
                    if let Some(index) = value.saturating_mul(plan.population).checked_sub(plan.base) {
                        set_bit(layer.set_mut(value), index);
                    }
                }
            }
        }
        layers.push(layer);
    }
    let (Some(last), Some(last_plan)) = (layers.last(), plans.last()) else {
        return Err(TierQuotaError::Inconsistent);
    };
    let mut union = vec![0u64; words_for(u128::from(high - low) + 1)];
    (0..=last_plan.upper).for_each(|v| or_into(&mut union, last.set(v)));
    let best = best_total(&union, high - low, search.target - low).ok_or(TierQuotaError::Inconsistent)? + low;

    // Candidates (x of this tier, partial sum left to explain) share the rises chosen so
    // far; per tier, keep the largest rise that some candidate can still complete.
    let mut candidates: Vec<(u64, u64)> = (0..=last_plan.upper)
        .filter(|&v| last_plan.holds(last, v, best))
        .map(|v| (v, best))
        .collect();
    let mut rises = vec![0; plans.len()];
    for (index, slot) in rises.iter_mut().enumerate().skip(1).rev() {
        let (Some(plan), Some(below), Some(below_plan)) =
            (plans.get(index), layers.get(index - 1), plans.get(index - 1))
        else {
            return Err(TierQuotaError::Inconsistent);
        };
        let advance = |rise: u64| -> Vec<(u64, u64)> {
            let step_down = |&(value, remaining): &(u64, u64)| {
                let rest = remaining.checked_sub(value.checked_mul(plan.population)?)?;
                let lower = value
                    .checked_sub(rise)
                    .filter(|&lower| lower <= below_plan.upper)?;
                below_plan.holds(below, lower, rest).then_some((lower, rest))
            };
            candidates.iter().filter_map(step_down).collect()
        };
        let highest = candidates.iter().map(|c| c.0).max().unwrap_or(0).min(step);
        let found = (0..=highest)
            .rev()
            .map(|rise| (rise, advance(rise)))
            .find(|(_, next)| !next.is_empty());
        (*slot, candidates) = found.ok_or(TierQuotaError::Inconsistent)?;
    }
    let lowest_level = candidates
        .iter()
        .map(|c| c.0)
        .max()
        .ok_or(TierQuotaError::Inconsistent)?;
    if let Some(first) = rises.first_mut() {
        *first = lowest_level;
    }
    Ok(rises)
}

/// The totals that can still win (module docs): a feasible S_h ≤ target from greedy
/// rises, largest weight first, leaves the optimum within |S_h − target| of the target.
pub(super) fn window(search: &Search) -> (u64, u64) {
    let (target, cap) = (search.target, search.cap);
    let (goal, mut level) = (target.min(search.bound), 0u64);
    let mut rest = goal;
    for (index, &weight) in at_or_above(search.populations).iter().enumerate() {
        let limit = if index == 0 {
            cap
        } else {
            (cap - level.min(cap)).min(search.step)
        };
        let rise = u64::try_from(u128::from(rest) / weight.max(1))
            .unwrap_or(u64::MAX)
            .min(limit);
        rest -= u64::try_from(u128::from(rise) * weight).unwrap_or(0);
        level += rise;
    }
    let nearby = goal - rest;
    (nearby, search.bound.min(target.saturating_add(target - nearby)))
}

/// Fills `layer` from the tier below: state x = (OR of states x−step ..= x below) << x × p.
pub(super) fn extend(layer: &mut Layer, plan: &Plan, high: u64, below: &Layer, below_plan: &Plan, step: u64) {
    let below_upper = below_plan.upper;
    let block = step.saturating_add(1);
    let width = (0..=below_upper)
        .map(|u| below.set(u).len())
        .max()
        .unwrap_or(1)
        .max(1);
    // suffix[u]: OR of states u ..= end of u's block (needed only when windows start above 0).
    let mut suffix = Vec::new();
    if step < plan.upper {
        suffix = vec![0u64; width.saturating_mul(usize::try_from(below_upper).unwrap_or(0) + 1)];
        let mut running = vec![0u64; width];
        for (u, chunk) in (0..=below_upper).rev().zip(suffix.rchunks_exact_mut(width)) {
            if u == below_upper || (u + 1) % block == 0 {
                running.fill(0);
            }
            or_into(&mut running, below.set(u));
            chunk.copy_from_slice(&running);
        }
    }
    let suffix_of = |u: u64| {
        let start = usize::try_from(u).unwrap_or(usize::MAX).saturating_mul(width);
        suffix.get(start..start.saturating_add(width)).unwrap_or_default()
    };
    // prefix: OR of states from the start of b's block to b, advanced as b grows.
    let (mut prefix, mut prefix_end) = (vec![0u64; width], None::<u64>);
    for value in 0..=plan.upper {
        let (a, b) = (value.saturating_sub(step), value.min(below_upper));
        while prefix_end.is_none_or(|end| end < b) {
            let u = prefix_end.map_or(0, |end| end + 1);
            if u % block == 0 {
                prefix.fill(0);
            }
            or_into(&mut prefix, below.set(u));
            prefix_end = Some(u);
        }
        if a > b {
            continue;
        }
        // Stored index = partial sum − base, so the shift also moves between the two bases.
        let cost = i128::from(value.saturating_mul(plan.population));
        let shift = cost + i128::from(below_plan.base) - i128::from(plan.base);
        let bits = plan.len_bits(high, value);
        let dst = layer.set_mut(value);
        if a % block == 0 && a / block == b / block {
            or_shifted(dst, &prefix, shift);
        } else {
            // a is inside a block: either b closes the same (last, truncated) block, or b
            // lies in the next block and the prefix covers the rest of the window.
            or_shifted(dst, suffix_of(a), shift);
            if a / block != b / block {
                or_shifted(dst, &prefix, shift);
            }
        }
        mask_beyond(dst, bits);
    }
}

pub(super) fn words_for(bits: u128) -> usize {
    usize::try_from(bits.div_ceil(64)).unwrap_or(usize::MAX)
}

pub(super) fn contains(bits: &[u64], index: u64) -> bool {
    let word = usize::try_from(index / 64).ok().and_then(|w| bits.get(w));
    word.is_some_and(|w| w >> (index % 64) & 1 == 1)
}

pub(super) fn set_bit(bits: &mut [u64], index: u64) {
    if let Some(word) = usize::try_from(index / 64).ok().and_then(|w| bits.get_mut(w)) {
        *word |= 1 << (index % 64);
    }
}

pub(super) fn or_into(dst: &mut [u64], src: &[u64]) {
    dst.iter_mut().zip(src).for_each(|(d, s)| *d |= *s);
}

/// dst |= src << shift, or >> −shift when negative; bits falling off either end are dropped.
pub(super) fn or_shifted(dst: &mut [u64], src: &[u64], shift: i128) {
    let words = usize::try_from(shift.unsigned_abs() / 64).unwrap_or(usize::MAX);
    let bit = (shift.unsigned_abs() % 64) as u32;
    let (dst, src) = match shift >= 0 {
        true => (dst.get_mut(words..).unwrap_or_default(), src),
        false => (dst, src.get(words..).unwrap_or_default()),
    };
    if bit == 0 {
        return or_into(dst, src);
    }
    let pairs = src.iter().zip(src.get(1..).unwrap_or_default());
    if shift >= 0 {
        // Word k takes the low bits of src[k] and the high bits of src[k − 1].
        for (d, (low, high)) in dst.iter_mut().skip(1).zip(pairs) {
            *d |= (high << bit) | (low >> (64 - bit));
        }
        if let (Some(d), Some(s)) = (dst.first_mut(), src.first()) {
            *d |= s << bit;
        }
        if let (Some(d), Some(s)) = (dst.get_mut(src.len()), src.last()) {
            *d |= s >> (64 - bit);
        }
    } else {
        // Word k takes the high bits of src[k] and the low bits of src[k + 1].
        for (d, (low, high)) in dst.iter_mut().zip(pairs) {
            *d |= (low >> bit) | (high << (64 - bit));
        }
        if let (Some(d), Some(s)) = (src.len().checked_sub(1).and_then(|k| dst.get_mut(k)), src.last()) {
            *d |= s >> bit;
        }
    }
}

pub(super) fn mask_beyond(dst: &mut [u64], bits: u128) {
    let used = bits % 64;
    if let Some(last) = dst.last_mut()
        && used != 0
    {
        *last &= (1u64 << used) - 1;
    }
}

/// The reachable spare total closest to `target` (≤ `bound`), the lower one on a tie.
pub(super) fn best_total(reachable: &[u64], bound: u64, target: u64) -> Option<u64> {
    let limit = target.min(bound);
    let last_word = usize::try_from(limit / 64).unwrap_or(usize::MAX);
    let below = reachable
        .iter()
        .enumerate()
        .take(last_word.saturating_add(1))
        .rev()
        .find_map(|(i, &word)| {
            let base = i as u64 * 64;
            let keep = if limit - base >= 63 {
                u64::MAX
            } else {
                (2u64 << (limit - base)) - 1
            };
            (word & keep != 0).then(|| base + 63 - u64::from((word & keep).leading_zeros()))
        });
    let first_word = usize::try_from(target / 64).unwrap_or(usize::MAX);
    let above = reachable
        .iter()
        .enumerate()
        .skip(first_word)
        .find_map(|(i, &word)| {
            let base = i as u64 * 64;
            let keep = u64::MAX << target.saturating_sub(base);
            (word & keep != 0).then(|| base + u64::from((word & keep).trailing_zeros()))
        });
    match (below, above.filter(|&a| a <= bound)) {
        (Some(b), Some(a)) if a - target < target - b => Some(a),
        (below, above) => below.or(above),
    }
}
