//! Who may receive a scarce product (DESIGN.md "Allocation"): license ACTIVE, not
//! blacklisted and graded — those are the snapshot's rows — and then the policy's
//! filters: class, area, format, and an optional pilot batch of named retailers.
//! Empty filters admit everyone.
//!
//! The same predicate is evaluated twice: here, to count retailers per tier when a run
//! is computed, and in SQL (`store::runs::ELIGIBLE`) when a retailer's entitlement is
//! read. The service tests check that the two agree (Σ entitlements = S).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Eligibility {
    pub classes: Vec<i16>,
    pub area_ids: Vec<String>,
    pub formats: Vec<i16>,
    /// Customer ids of a pilot batch.
    pub targets: Vec<String>,
}

/// A retailer of the snapshot: licensed, not blacklisted, graded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub customer_id: String,
    /// 1-based.
    pub tier: u32,
    pub class: i16,
    pub area_id: String,
    pub format: i16,
}

impl Eligibility {
    /// The filters other than the pilot list.
    fn admits_profile(&self, tier_class: i16, area_id: &str, format: i16) -> bool {
        (self.classes.is_empty() || self.classes.contains(&tier_class))
            && (self.area_ids.is_empty() || self.area_ids.iter().any(|a| a == area_id))
            && (self.formats.is_empty() || self.formats.contains(&format))
    }

    pub fn admits(&self, candidate: &Candidate) -> bool {
        (self.targets.is_empty() || self.targets.contains(&candidate.customer_id))
            && self.admits_profile(candidate.class, &candidate.area_id, candidate.format)
    }
}

/// The snapshot, sorted by customer id, with its retailers grouped by everything the
/// filters look at: thousands of groups instead of 100,000 retailers per product.
#[derive(Debug, Clone, Default)]
pub struct Population {
    candidates: Vec<Candidate>,
    groups: Vec<(Group, u64)>,
    /// Per tier (index 0 = tier 1), indices into `candidates`, in customer id order.
    by_tier: Vec<Vec<usize>>,
    /// Per candidate, its index in `groups`.
    group_of: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Group {
    tier: u32,
    class: i16,
    area_id: String,
    format: i16,
}

impl Population {
    pub fn new(mut candidates: Vec<Candidate>) -> Self {
        candidates.sort_by(|a, b| a.customer_id.cmp(&b.customer_id));
        candidates.dedup_by(|a, b| a.customer_id == b.customer_id);
        let group = |c: &Candidate| Group {
            tier: c.tier,
            class: c.class,
            area_id: c.area_id.clone(),
            format: c.format,
        };
        let mut counts: HashMap<Group, u64> = HashMap::new();
        for c in &candidates {
            *counts.entry(group(c)).or_default() += 1;
        }
        let mut groups: Vec<(Group, u64)> = counts.into_iter().collect();
        groups.sort_by(|a, b| {
            let key = |g: &Group| (g.tier, g.class, g.area_id.clone(), g.format);
            key(&a.0).cmp(&key(&b.0))
        });
        let index: HashMap<Group, u32> = groups
            .iter()
            .enumerate()
            .map(|(i, (g, _))| (g.clone(), u32::try_from(i).unwrap_or(u32::MAX)))
            .collect();
        let group_of = candidates
            .iter()
            .map(|c| index.get(&group(c)).copied().unwrap_or(u32::MAX))
            .collect();
        let mut by_tier: Vec<Vec<usize>> = Vec::new();
        for (i, c) in candidates.iter().enumerate() {
            let Some(t) = usize::try_from(c.tier).ok().and_then(|t| t.checked_sub(1)) else {
                continue;
            };
            if by_tier.len() <= t {
                by_tier.resize_with(t + 1, Vec::new);
            }
            if let Some(slot) = by_tier.get_mut(t) {
                slot.push(i);
            }
        }
        Self {
            candidates,
            groups,
            by_tier,
            group_of,
        }
    }

    pub fn len(&self) -> usize {
        self.candidates.len()
    }

    pub fn is_empty(&self) -> bool {
        self.candidates.is_empty()
    }

    /// Highest tier present (0 when empty).
    pub fn top_tier(&self) -> u32 {
        self.groups.iter().map(|(g, _)| g.tier).max().unwrap_or(0)
    }

    pub fn find(&self, customer_id: &str) -> Option<&Candidate> {
        self.candidates
            .binary_search_by(|c| c.customer_id.as_str().cmp(customer_id))
            .ok()
            .and_then(|i| self.candidates.get(i))
    }

    /// Eligible retailers per tier, index 0 = tier 1, for `tiers` tiers; retailers
    /// graded above `tiers` are not counted (they are not eligible).
    pub fn retailers_per_tier(&self, eligibility: &Eligibility, tiers: usize) -> Vec<u64> {
        let mut counts = vec![0u64; tiers];
        let mut add = |tier: u32, n: u64| {
            if let Some(slot) = usize::try_from(tier)
                .ok()
                .and_then(|t| t.checked_sub(1))
                .and_then(|i| counts.get_mut(i))
            {
                *slot += n;
            }
        };
        if eligibility.targets.is_empty() {
            for (group, n) in &self.groups {
                if eligibility.admits_profile(group.class, &group.area_id, group.format) {
                    add(group.tier, *n);
                }
            }
        } else {
            let mut targets: Vec<&String> = eligibility.targets.iter().collect();
            targets.sort();
            targets.dedup();
            for target in targets {
                if let Some(c) = self.find(target).filter(|c| eligibility.admits(c)) {
                    add(c.tier, 1);
                }
            }
        }
        counts
    }

    /// Per tier, the customer id of the `extra[t]`-th eligible retailer by id: a
    /// `PROPORTIONAL` run gives one carton more to the eligible retailers of the tier
    /// whose id is at or below it (DESIGN.md: ties by retailer id). One id per tier
    /// instead of a row per retailer keeps a commit of 100,000 retailers small.
    /// Ids compare bytewise (SQL compares them `COLLATE "C"`).
    pub fn extra_cutoffs(&self, eligibility: &Eligibility, extra: &[u64]) -> Vec<Option<String>> {
        // A pilot list is short: walk it (sorted) rather than every retailer.
        let piloted: Option<Vec<&Candidate>> = (!eligibility.targets.is_empty()).then(|| {
            let mut found: Vec<&Candidate> = eligibility
                .targets
                .iter()
                .filter_map(|t| self.find(t))
                .filter(|c| eligibility.admits_profile(c.class, &c.area_id, c.format))
                .collect();
            found.sort_by(|a, b| a.customer_id.cmp(&b.customer_id));
            found.dedup_by(|a, b| a.customer_id == b.customer_id);
            found
        });
        // Whether each group passes the filters: one test per group, not per retailer.
        let admitted: Vec<bool> = self
            .groups
            .iter()
            .map(|(g, _)| eligibility.admits_profile(g.class, &g.area_id, g.format))
            .collect();
        extra
            .iter()
            .enumerate()
            .map(|(tier, wanted)| {
                let n = usize::try_from(*wanted).ok().filter(|n| *n > 0)?;
                let tier_number = u32::try_from(tier + 1).ok()?;
                let chosen = match &piloted {
                    Some(found) => found.iter().copied().filter(|c| c.tier == tier_number).nth(n - 1),
                    None => self
                        .by_tier
                        .get(tier)?
                        .iter()
                        .filter(|i| {
                            let group = self.group_of.get(**i).and_then(|g| usize::try_from(*g).ok());
                            group.and_then(|g| admitted.get(g)).copied().unwrap_or(false)
                        })
                        .nth(n - 1)
                        .and_then(|i| self.candidates.get(*i)),
                };
                chosen.map(|c| c.customer_id.clone())
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn candidate(id: u32, tier: u32, class: i16, area: u8, format: i16) -> Candidate {
        Candidate {
            customer_id: format!("r-{id:05}"),
            tier,
            class,
            area_id: format!("area-{area:02}"),
            format,
        }
    }

    fn arb_population() -> impl Strategy<Value = Vec<Candidate>> {
        prop::collection::vec((1u32..6, 1i16..4, 0u8..4, 1i16..4), 0..200).prop_map(|rows| {
            rows.into_iter()
                .enumerate()
                .map(|(i, (tier, class, area, format))| {
                    candidate(u32::try_from(i).unwrap_or(0), tier, class, area, format)
                })
                .collect()
        })
    }

    fn arb_eligibility() -> impl Strategy<Value = Eligibility> {
        (
            prop::collection::vec(1i16..4, 0..3),
            prop::collection::vec(0u8..4, 0..3),
            prop::collection::vec(1i16..4, 0..3),
            prop::collection::vec(0u32..250, 0..20),
        )
            .prop_map(|(classes, areas, formats, targets)| Eligibility {
                classes,
                area_ids: areas.into_iter().map(|a| format!("area-{a:02}")).collect(),
                formats,
                targets: targets.into_iter().map(|t| format!("r-{t:05}")).collect(),
            })
    }

    proptest! {
        /// Counting by groups is the same as testing every retailer.
        #[test]
        fn grouped_counts_equal_counting_each_retailer(rows in arb_population(), filter in arb_eligibility()) {
            let population = Population::new(rows.clone());
            let mut expected = vec![0u64; 5];
            for c in rows.iter().filter(|c| filter.admits(c)) {
                expected[usize::try_from(c.tier - 1).unwrap_or(0)] += 1;
            }
            prop_assert_eq!(population.retailers_per_tier(&filter, 5), expected);
        }

        /// The eligible retailers at or below a tier's cut-off id are exactly its first
        /// `extra` eligible retailers by id.
        #[test]
        fn extras_go_to_the_first_eligible_retailers_by_id(rows in arb_population(), filter in arb_eligibility()) {
            let population = Population::new(rows);
            let counts = population.retailers_per_tier(&filter, 5);
            let extra: Vec<u64> = counts.iter().map(|n| n / 2).collect();
            let cutoffs = population.extra_cutoffs(&filter, &extra);
            for (tier, n) in extra.iter().enumerate() {
                let eligible: Vec<&Candidate> = population.candidates.iter()
                    .filter(|c| c.tier as usize == tier + 1 && filter.admits(c)).collect();
                let expected: Vec<&str> = eligible.iter().take(*n as usize).map(|c| c.customer_id.as_str()).collect();
                let got: Vec<&str> = match &cutoffs[tier] {
                    Some(cutoff) => eligible.iter().map(|c| c.customer_id.as_str())
                        .filter(|id| id.as_bytes() <= cutoff.as_bytes()).collect(),
                    None => vec![],
                };
                prop_assert_eq!(got, expected);
            }
        }
    }

    #[test]
    fn a_pilot_batch_admits_only_its_retailers_and_still_applies_the_filters() {
        let population = Population::new(vec![
            candidate(1, 1, 1, 1, 1),
            candidate(2, 2, 2, 1, 1),
            candidate(3, 2, 1, 2, 1),
        ]);
        let filter = Eligibility {
            classes: vec![1],
            targets: vec!["r-00001".into(), "r-00002".into(), "r-00009".into()],
            ..Eligibility::default()
        };
        assert_eq!(population.retailers_per_tier(&filter, 2), vec![1, 0]);
    }
}
