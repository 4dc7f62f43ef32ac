//! Tier grading (档位): the published grade that is the sole basis for rationing scarce
//! supply (DOMAIN.md, "Rationing scarce supply"). Retailers with purchase history are
//! ranked by a weighted composite of purchase amount, quantity and score and cut into
//! equal-frequency tiers; new retailers are placed by shop format and floor area.
//!
//! Each dimension is normalized by **rank percentile**, not min–max: retail purchases
//! follow a 20/80 curve, so min–max scaling would let one big outlet squash everybody
//! else's amount figure towards zero and the published 70/20/10 weighting would no longer
//! mean what it says. A rank percentile puts every dimension on the same
//! 0..=[`COMPOSITE_SCALE`] scale whatever its unit or skew. The composite is therefore
//! relative to the population graded together, like the tiers themselves.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The scale of each normalized dimension and of the composite: parts per million.
pub const COMPOSITE_SCALE: i64 = 1_000_000;
/// A weighting is expressed in basis points of the whole.
pub const WEIGHT_TOTAL_BP: u64 = 10_000;
/// The tier count of the reference practice.
pub const DEFAULT_TIERS: u32 = 30;
/// More tiers than this cannot be told apart by any quota table.
pub const MAX_TIERS: u32 = 100;
/// A new retailer starts at most here on the 30-tier scale: the top third is earned by
/// purchases, never granted on floor area alone.
pub const NEWCOMER_CAP_OF_30: u32 = 20;

/// How much each dimension counts in the composite, in basis points summing to 10 000.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GradingWeights {
    pub amount_bp: u32,
    pub quantity_bp: u32,
    pub score_bp: u32,
}

impl Default for GradingWeights {
    /// The published weighting: 70 % amount, 20 % quantity, 10 % other (score).
    fn default() -> Self {
        Self {
            amount_bp: 7_000,
            quantity_bp: 2_000,
            score_bp: 1_000,
        }
    }
}

/// A weighting is valid when its parts make up exactly the whole (10 000 basis points),
/// so a composite stays on the same scale as its inputs.
pub fn validate_weights(weights: &GradingWeights) -> Result<(), String> {
    let GradingWeights {
        amount_bp,
        quantity_bp,
        score_bp,
    } = *weights;
    let total = u64::from(amount_bp) + u64::from(quantity_bp) + u64::from(score_bp);
    if total == WEIGHT_TOTAL_BP {
        Ok(())
    } else {
        Err(format!(
            "weights must sum to {WEIGHT_TOTAL_BP} basis points, got {total} \
             (amount {amount_bp}, quantity {quantity_bp}, score {score_bp})"
        ))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ShopFormat {
    ConvenienceStore,
    Grocery,
    Supermarket,
    Mall,
    ChainStore,
    Unknown,
}

/// One retailer's figures over the grading period (a month or a quarter).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GradingInput {
    pub customer_id: String,
    pub purchase_amount_fen: i64,
    pub purchase_cartons: i64,
    /// Cumulative scoring points; may be negative.
    pub score_points: i64,
    /// False for a new retailer: it is placed by format and floor area instead.
    pub has_history: bool,
    pub format: ShopFormat,
    pub floor_area_sqm: i32,
}

/// Why a retailer sits in its tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Placement {
    Composite,
    FormatAndSize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GradedRetailer {
    pub customer_id: String,
    /// 1 (lowest) ..= tiers (highest).
    pub tier: u32,
    /// Parts per million of [`COMPOSITE_SCALE`]; 0 for retailers placed by format and size.
    pub composite: i64,
    pub placed_by: Placement,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grading {
    pub tiers: u32,
    /// Every input retailer exactly once, sorted by `customer_id`.
    pub retailers: Vec<GradedRetailer>,
    /// Retailers per tier (both placements); index 0 is tier 1.
    pub distribution: Vec<u32>,
    /// One entry per tier (empty when nobody has history): the lowest composite in that
    /// tier among retailers with history. A tier with none carries the next higher tier's
    /// bound, or `COMPOSITE_SCALE + 1` above the highest populated tier, so the list never
    /// decreases and a graded retailer's tier is the number of bounds ≤ its composite.
    pub boundaries: Vec<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GradingError {
    InvalidWeights(String),
    TiersOutOfRange(u32),
    DuplicateCustomer(String),
}

impl fmt::Display for GradingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidWeights(reason) => write!(f, "invalid grading weights: {reason}"),
            Self::TiersOutOfRange(tiers) => write!(f, "tier count {tiers} is not in 1..={MAX_TIERS}"),
            Self::DuplicateCustomer(id) => write!(f, "customer {id} appears more than once"),
        }
    }
}

impl std::error::Error for GradingError {}

/// Grades a population into `tiers` equal-frequency tiers.
///
/// Rules: retailers with history are sorted by (composite, customer id) and each run of
/// equal composites goes, whole, to the tier whose quantile band holds the run's centre,
/// so ties are never split and the composite never decreases from a lower tier to a
/// higher one. New retailers are placed by [`starting_tier`] and do not move the
/// boundaries. The result does not depend on input order.
pub fn grade(inputs: &[GradingInput], weights: &GradingWeights, tiers: u32) -> Result<Grading, GradingError> {
    validate_weights(weights).map_err(GradingError::InvalidWeights)?;
    if !(1..=MAX_TIERS).contains(&tiers) {
        return Err(GradingError::TiersOutOfRange(tiers));
    }
    let mut by_id: Vec<&GradingInput> = inputs.iter().collect();
    by_id.sort_unstable_by(|a, b| a.customer_id.cmp(&b.customer_id));
    let duplicate = by_id.windows(2).find_map(|pair| match pair {
        [a, b] if a.customer_id == b.customer_id => Some(a.customer_id.clone()),
        _ => None,
    });
    if let Some(id) = duplicate {
        return Err(GradingError::DuplicateCustomer(id));
    }

    let (history, newcomers): (Vec<&GradingInput>, Vec<&GradingInput>) =
        by_id.into_iter().partition(|r| r.has_history);
    let mut graded = composites(&history, weights);
    graded.sort_unstable_by(|a, b| (a.composite, &a.customer_id).cmp(&(b.composite, &b.customer_id)));
    let population = graded.len();
    let mut start = 0;
    for run in graded.chunk_by_mut(|a, b| a.composite == b.composite) {
        let end = start + run.len();
        let tier = quantile_tier(start, end, population, tiers);
        run.iter_mut().for_each(|r| r.tier = tier);
        start = end;
    }
    let boundaries = boundaries(&graded, tiers);

    let mut retailers = graded;
    retailers.extend(newcomers.into_iter().map(|r| GradedRetailer {
        customer_id: r.customer_id.clone(),
        tier: starting_tier(r.format, r.floor_area_sqm, tiers),
        composite: 0,
        placed_by: Placement::FormatAndSize,
    }));
    retailers.sort_unstable_by(|a, b| a.customer_id.cmp(&b.customer_id));
    let mut distribution = vec![0_u32; tiers as usize];
    for retailer in &retailers {
        if let Some(count) = distribution.get_mut(retailer.tier.saturating_sub(1) as usize) {
            *count = count.saturating_add(1);
        }
    }
    Ok(Grading {
        tiers,
        retailers,
        distribution,
        boundaries,
    })
}

/// Weighted composite of the rank percentiles, computed exactly in integers so the same
/// figures always give the same grade. Returned in `history` order with tier unset.
fn composites(history: &[&GradingInput], weights: &GradingWeights) -> Vec<GradedRetailer> {
    let column = |figure: fn(&GradingInput) -> i64| -> Vec<i64> {
        rank_percentiles(&history.iter().map(|r| figure(r)).collect::<Vec<_>>())
    };
    let amount = column(|r| r.purchase_amount_fen);
    let quantity = column(|r| r.purchase_cartons);
    let score = column(|r| r.score_points);
    history
        .iter()
        .zip(amount.iter().zip(quantity.iter()).zip(score.iter()))
        .map(|(r, ((&a, &q), &s))| {
            let weighted = i128::from(a) * i128::from(weights.amount_bp)
                + i128::from(q) * i128::from(weights.quantity_bp)
                + i128::from(s) * i128::from(weights.score_bp);
            let composite = weighted / i128::from(WEIGHT_TOTAL_BP);
            GradedRetailer {
                customer_id: r.customer_id.clone(),
                tier: 0,
                composite: i64::try_from(composite).unwrap_or(COMPOSITE_SCALE),
                placed_by: Placement::Composite,
            }
        })
        .collect()
}

/// Mid-rank percentile of each value on 0..=`COMPOSITE_SCALE`: the lowest value maps to 0,
/// the highest to the full scale, and equal values share their average rank so a tie in
/// any figure never separates two retailers. A lone retailer sits in the middle.
fn rank_percentiles(values: &[i64]) -> Vec<i64> {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let twice_span = 2 * (values.len() as i128 - 1);
    values
        .iter()
        .map(|&value| {
            if twice_span <= 0 {
                return COMPOSITE_SCALE / 2;
            }
            let below = sorted.partition_point(|&v| v < value) as i128;
            let through = sorted.partition_point(|&v| v <= value) as i128;
            // below + through - 1 is twice the run's average 0-based rank.
            let percentile = (below + through - 1) * i128::from(COMPOSITE_SCALE) / twice_span;
            i64::try_from(percentile).unwrap_or(COMPOSITE_SCALE)
        })
        .collect()
}

/// Equal-frequency tier for the run at sorted positions `start..end` of `population`: the
/// tier whose quantile band contains the run's centre, i.e. ⌊(start+end)·tiers / 2n⌋ + 1.
/// With distinct composites tier sizes differ by at most one, and a small population is
/// spread symmetrically over the scale instead of crowding the bottom tiers.
fn quantile_tier(start: usize, end: usize, population: usize, tiers: u32) -> u32 {
    let twice_population = 2 * population as u128;
    if twice_population == 0 {
        return 1;
    }
    let band = (start as u128 + end as u128) * u128::from(tiers) / twice_population;
    u32::try_from(band).map_or(tiers, |band| band.saturating_add(1).min(tiers))
}

/// Lowest composite per tier among graded retailers (sorted ascending by composite), with
/// empty tiers carrying the next higher bound; see [`Grading::boundaries`].
fn boundaries(graded_ascending: &[GradedRetailer], tiers: u32) -> Vec<i64> {
    if graded_ascending.is_empty() {
        return Vec::new();
    }
    // Tiers never decrease along the ascending order, so each tier's first member is a
    // partition point, and an empty tier finds the first member of the next one up.
    let first_at_or_above = |tier| graded_ascending.partition_point(|r: &GradedRetailer| r.tier < tier);
    let bound = |tier| {
        graded_ascending
            .get(first_at_or_above(tier))
            .map_or(COMPOSITE_SCALE + 1, |r| r.composite)
    };
    (1..=tiers).map(bound).collect()
}

/// Starting tier of a retailer without purchase history, from its format and floor area.
///
/// The table is written for 30 tiers and scaled to `tiers` by rounding. Newcomers start
/// below the middle unless the shop is large, because scarce supply is rationed by proven
/// demand: a small grocery or kiosk starts at 2–4, a convenience store at 5–8, chain
/// stores 9–13 and supermarkets 10–16 by floor area, a mall 18–20, and nobody above
/// [`NEWCOMER_CAP_OF_30`]. An unknown format starts at the bottom. A negative or missing
/// floor area counts as the smallest band. The next regrade places the shop by purchases.
pub fn starting_tier(format: ShopFormat, floor_area_sqm: i32, tiers: u32) -> u32 {
    // (floor area below which, tier of 30) bands, then the tier of the largest shops.
    let (bands, largest): (&[(i32, u32)], u32) = match format {
        ShopFormat::Unknown => (&[], 1),
        ShopFormat::Grocery => (&[(30, 2), (80, 3)], 4),
        ShopFormat::ConvenienceStore => (&[(30, 5), (60, 6), (100, 7)], 8),
        ShopFormat::ChainStore => (&[(100, 9), (300, 11)], 13),
        ShopFormat::Supermarket => (&[(300, 10), (1_000, 12), (3_000, 14)], 16),
        ShopFormat::Mall => (&[(5_000, 18)], 20),
    };
    let tier_of_30 = bands
        .iter()
        .find(|(below, _)| floor_area_sqm < *below)
        .map_or(largest, |&(_, tier)| tier);
    let tiers = tiers.clamp(1, MAX_TIERS);
    let capped = tier_of_30.min(NEWCOMER_CAP_OF_30);
    ((capped * tiers + DEFAULT_TIERS / 2) / DEFAULT_TIERS).clamp(1, tiers)
}

/// One line for a person reading the published grade: the composite range and head count
/// of a tier, e.g. `tier 17: composite 512034..540112, 383 retailers`.
pub fn explain_tier(grading: &Grading, tier: u32) -> String {
    if tier == 0 || tier > grading.tiers {
        return format!("tier {tier}: not a tier of this grading (1..={})", grading.tiers);
    }
    let (mut count, mut placed) = (0_u64, 0_u64);
    let mut range: Option<(i64, i64)> = None;
    for retailer in grading.retailers.iter().filter(|r| r.tier == tier) {
        count += 1;
        match retailer.placed_by {
            Placement::FormatAndSize => placed += 1,
            Placement::Composite => {
                let c = retailer.composite;
                range = Some(range.map_or((c, c), |(low, high)| (low.min(c), high.max(c))));
            }
        }
    }
    let composites = match range {
        Some((low, high)) => format!("composite {low}..{high}"),
        None => "no graded composite".to_owned(),
    };
    let noun = if count == 1 { "retailer" } else { "retailers" };
    let newcomers = if placed > 0 {
        format!(" ({placed} placed by format and size)")
    } else {
        String::new()
    };
    format!("tier {tier}: {composites}, {count} {noun}{newcomers}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn retailer(id: &str, amount: i64, cartons: i64, score: i64) -> GradingInput {
        GradingInput {
            customer_id: id.to_owned(),
            purchase_amount_fen: amount,
            purchase_cartons: cartons,
            score_points: score,
            has_history: true,
            format: ShopFormat::Grocery,
            floor_area_sqm: 40,
        }
    }

    fn newcomer(id: &str, format: ShopFormat, floor_area_sqm: i32) -> GradingInput {
        let history = false;
        GradingInput {
            has_history: history,
            format,
            floor_area_sqm,
            ..retailer(id, 0, 0, 0)
        }
    }

    fn bp(amount_bp: u32, quantity_bp: u32, score_bp: u32) -> GradingWeights {
        GradingWeights {
            amount_bp,
            quantity_bp,
            score_bp,
        }
    }

    fn tier_of(grading: &Grading, id: &str) -> u32 {
        grading
            .retailers
            .iter()
            .find(|r| r.customer_id == id)
            .map_or(0, |r| r.tier)
    }

    #[test]
    fn bad_weights_tier_counts_and_duplicate_customers_are_rejected() {
        let weights = GradingWeights::default();
        assert_eq!(
            (weights, validate_weights(&weights)),
            (bp(7_000, 2_000, 1_000), Ok(()))
        );
        assert!(validate_weights(&bp(7_000, 2_000, 999)).is_err());
        assert!(validate_weights(&bp(u32::MAX, u32::MAX, 10_002)).is_err());
        assert!(matches!(
            grade(&[], &bp(0, 0, 0), 30),
            Err(GradingError::InvalidWeights(_))
        ));
        assert_eq!(grade(&[], &weights, 0), Err(GradingError::TiersOutOfRange(0)));
        assert_eq!(grade(&[], &weights, 101), Err(GradingError::TiersOutOfRange(101)));
        assert!(grade(&[], &weights, 1).is_ok() && grade(&[], &weights, 100).is_ok());
        let twice = [
            retailer("a", 1, 1, 1),
            retailer("b", 2, 2, 2),
            newcomer("a", ShopFormat::Mall, 9),
        ];
        assert_eq!(
            grade(&twice, &weights, 30),
            Err(GradingError::DuplicateCustomer("a".to_owned()))
        );
    }

    #[test]
    fn an_empty_population_gives_an_empty_grading() {
        let grading = grade(&[], &GradingWeights::default(), 30).unwrap();
        assert!(grading.retailers.is_empty() && grading.boundaries.is_empty());
        assert_eq!(grading.distribution, vec![0; 30]);
    }

    #[test]
    fn one_outlier_does_not_squash_everybody_else() {
        let mut inputs: Vec<_> = (0..30)
            .map(|i| retailer(&format!("r{i:02}"), 1_000 + i, i, i))
            .collect();
        inputs.push(retailer("whale", 1_000_000_000_000, 31, 31));
        let grading = grade(&inputs, &GradingWeights::default(), 31).unwrap();
        let tiers: Vec<u32> = (0..30).map(|i| tier_of(&grading, &format!("r{i:02}"))).collect();
        assert_eq!(tiers, (1..=30).collect::<Vec<_>>());
        assert_eq!(tier_of(&grading, "whale"), 31);
    }

    #[test]
    fn equal_composites_share_one_tier_even_across_a_band_edge() {
        let inputs: Vec<_> = (0..60).map(|i| retailer(&format!("r{i:02}"), 5, 5, 5)).collect();
        let grading = grade(&inputs, &GradingWeights::default(), 30).unwrap();
        assert!(grading.retailers.iter().all(|r| r.tier == 16));
    }

    #[test]
    fn newcomers_are_placed_by_format_and_size_without_moving_boundaries() {
        let established: Vec<_> = (0..90)
            .map(|i| retailer(&format!("r{i:02}"), i * 7 % 90, i, 0))
            .collect();
        let before = grade(&established, &GradingWeights::default(), 30).unwrap();
        let mut inputs = established.clone();
        inputs.push(newcomer("kiosk", ShopFormat::Grocery, 12));
        inputs.push(newcomer("corner", ShopFormat::ConvenienceStore, 45));
        inputs.push(newcomer("mall", ShopFormat::Mall, 80_000));
        inputs.push(newcomer("mystery", ShopFormat::Unknown, -5));
        let after = grade(&inputs, &GradingWeights::default(), 30).unwrap();
        assert_eq!(before.boundaries, after.boundaries);
        assert!(before.retailers.iter().all(|r| after.retailers.contains(r)));
        assert!((1..=3).contains(&tier_of(&after, "kiosk")));
        assert!((5..=8).contains(&tier_of(&after, "corner")));
        assert_eq!(
            (tier_of(&after, "mall"), tier_of(&after, "mystery")),
            (NEWCOMER_CAP_OF_30, 1)
        );
        let placed = after
            .retailers
            .iter()
            .filter(|r| r.placed_by == Placement::FormatAndSize);
        assert!(placed.map(|r| r.composite).eq([0; 4]));
    }

    #[test]
    fn the_newcomer_table_scales_to_other_tier_counts() {
        assert_eq!(starting_tier(ShopFormat::Mall, 10_000, 10), 7);
        assert_eq!(starting_tier(ShopFormat::Mall, 10_000, 100), 67);
        assert_eq!(starting_tier(ShopFormat::Grocery, 10, 1), 1);
        assert!(
            starting_tier(ShopFormat::Supermarket, 5_000, 30) > starting_tier(ShopFormat::Supermarket, 9, 30)
        );
    }

    #[test]
    fn explain_tier_reads_as_one_line() {
        let inputs = [
            retailer("a", 1, 1, 1),
            retailer("b", 2, 2, 2),
            newcomer("c", ShopFormat::Grocery, 10),
        ];
        let grading = grade(&inputs, &GradingWeights::default(), 2).unwrap();
        assert_eq!(
            explain_tier(&grading, 2),
            "tier 2: composite 1000000..1000000, 1 retailer"
        );
        let lowest = "tier 1: composite 0..0, 2 retailers (1 placed by format and size)";
        assert_eq!(explain_tier(&grading, 1), lowest);
        assert!(explain_tier(&grading, 3).contains("not a tier"));
    }

    /// A fixed population (splitmix64 stream) with Pareto amounts, α ≈ 1.16: the top 20 %
    /// of retailers buy about 80 % of the amount.
    fn skewed_population(count: usize) -> Vec<GradingInput> {
        let mut state = 11_500_u64;
        let mut next = move || {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let z = (state ^ (state >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            let z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        (0..count)
            .map(|i| {
                let uniform = (next() >> 11) as f64 / (1_u64 << 53) as f64;
                let amount = (50_000.0 * (1.0 - uniform).powf(-1.0 / 1.16)).min(1e12) as i64;
                let cartons = amount / 25_000 + (next() % 3) as i64;
                retailer(&format!("c{i:06}"), amount, cartons, (next() % 320) as i64 - 20)
            })
            .collect()
    }

    #[test]
    fn a_realistic_skewed_population_fills_all_30_tiers_evenly() {
        let grading = grade(&skewed_population(11_500), &GradingWeights::default(), 30).unwrap();
        for (index, &size) in grading.distribution.iter().enumerate() {
            assert!(
                size.abs_diff(11_500 / 30) <= 20,
                "tier {} has {size} retailers",
                index + 1
            );
        }
        assert!(grading.boundaries.windows(2).all(|w| w[0] < w[1]));
        let big = grade(&skewed_population(100_000), &GradingWeights::default(), 30).unwrap();
        assert_eq!(big.distribution.iter().sum::<u32>(), 100_000);
    }

    const FORMATS: [ShopFormat; 6] = [
        ShopFormat::ConvenienceStore,
        ShopFormat::Grocery,
        ShopFormat::Supermarket,
        ShopFormat::Mall,
        ShopFormat::ChainStore,
        ShopFormat::Unknown,
    ];

    /// Small value ranges force many ties; an occasional extreme value checks overflow.
    fn arb_inputs() -> impl Strategy<Value = Vec<GradingInput>> {
        let figure = || prop_oneof![4 => -2_i64..6, 1 => any::<i64>()];
        let row = (
            (figure(), figure(), figure()),
            any::<bool>(),
            0_usize..6,
            any::<i32>(),
        );
        prop::collection::vec(row, 0..120).prop_map(|rows| {
            let input = |(i, ((amount, cartons, score), has_history, format, floor_area_sqm))| GradingInput {
                has_history,
                format: FORMATS[format],
                floor_area_sqm,
                ..retailer(&format!("c{i:03}"), amount, cartons, score)
            };
            rows.into_iter().enumerate().map(input).collect()
        })
    }

    fn arb_weights() -> impl Strategy<Value = GradingWeights> {
        (0_u32..=10_000)
            .prop_flat_map(|a| (Just(a), 0..=10_000 - a))
            .prop_map(|(a, q)| bp(a, q, 10_000 - a - q))
    }

    proptest! {
        #[test]
        fn every_retailer_gets_exactly_one_tier_in_range(
            inputs in arb_inputs(), weights in arb_weights(), tiers in 1_u32..=100,
        ) {
            let grading = grade(&inputs, &weights, tiers).unwrap();
            prop_assert_eq!(grading.retailers.len(), inputs.len());
            prop_assert!(grading.retailers.windows(2).all(|w| w[0].customer_id < w[1].customer_id));
            prop_assert!(grading.retailers.iter().all(|r| (1..=tiers).contains(&r.tier)));
            prop_assert!(grading.retailers.iter().all(|r| (0..=COMPOSITE_SCALE).contains(&r.composite)));
            prop_assert_eq!(grading.distribution.iter().map(|&c| c as usize).sum::<usize>(), inputs.len());
            for (index, &size) in grading.distribution.iter().enumerate() {
                let members = grading.retailers.iter().filter(|r| r.tier as usize == index + 1).count();
                prop_assert_eq!(size as usize, members);
            }
        }

        #[test]
        fn composite_is_monotone_in_tier_and_ties_share_a_tier(
            inputs in arb_inputs(), weights in arb_weights(), tiers in 1_u32..=100,
        ) {
            let grading = grade(&inputs, &weights, tiers).unwrap();
            let mut graded: Vec<_> =
                grading.retailers.iter().filter(|r| r.placed_by == Placement::Composite).collect();
            graded.sort_by_key(|r| (r.composite, r.tier));
            for pair in graded.windows(2) {
                prop_assert!(pair[0].tier <= pair[1].tier);
                prop_assert!(pair[0].composite != pair[1].composite || pair[0].tier == pair[1].tier);
            }
            for r in &graded {
                let bounds_at_or_below = grading.boundaries.iter().filter(|&&b| b <= r.composite).count();
                prop_assert_eq!(bounds_at_or_below, r.tier as usize);
            }
        }

        #[test]
        fn distinct_composites_fill_tiers_within_one_of_each_other(count in 1_usize..400, tiers in 1_u32..=100) {
            prop_assume!(count >= tiers as usize);
            let inputs: Vec<_> = (0..count as i64).map(|i| retailer(&format!("c{i:03}"), i, 0, 0)).collect();
            let grading = grade(&inputs, &bp(10_000, 0, 0), tiers).unwrap();
            let (low, high) = (grading.distribution.iter().min(), grading.distribution.iter().max());
            prop_assert!(high.zip(low).is_some_and(|(high, low)| high - low <= 1));
        }

        #[test]
        fn input_order_does_not_change_the_grading(
            (inputs, shuffled) in arb_inputs().prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle())),
            weights in arb_weights(),
            tiers in 1_u32..=100,
        ) {
            prop_assert_eq!(grade(&inputs, &weights, tiers), grade(&shuffled, &weights, tiers));
        }

        #[test]
        fn weights_are_valid_exactly_when_they_make_up_the_whole(a: u32, q: u32, s: u32, valid in arb_weights()) {
            let total = u64::from(a) + u64::from(q) + u64::from(s);
            prop_assert_eq!(validate_weights(&bp(a, q, s)).is_ok(), total == 10_000);
            prop_assert!(validate_weights(&valid).is_ok());
        }
    }
}

/// The months a grading period covers: a month `2026-11`, or a quarter `2026-Q4`
/// (DOMAIN.md: retailers are regraded monthly or quarterly).
pub fn period_months(period: &str) -> Option<Vec<String>> {
    let (year, rest) = period.split_once('-')?;
    let year: i32 = year.parse().ok().filter(|y| (2000..=2100).contains(y))?;
    if let Some(quarter) = rest.strip_prefix('Q') {
        let quarter: u32 = quarter.parse().ok().filter(|q| (1..=4).contains(q))?;
        let first = (quarter - 1) * 3 + 1;
        return Some((first..first + 3).map(|m| format!("{year}-{m:02}")).collect());
    }
    let month: u32 = rest.parse().ok().filter(|m| (1..=12).contains(m))?;
    (rest.len() == 2).then(|| vec![format!("{year}-{month:02}")])
}

/// An ISO week cycle name, `2026-W49`: the week from which a published grading
/// applies to rationing.
pub fn is_cycle_name(cycle: &str) -> bool {
    let Some((year, week)) = cycle.split_once("-W") else {
        return false;
    };
    year.len() == 4
        && year.parse::<i32>().is_ok()
        && week.len() == 2
        && week.parse::<u32>().is_ok_and(|w| (1..=53).contains(&w))
}

#[cfg(test)]
mod period_tests {
    use super::*;

    #[test]
    fn months_and_quarters_name_their_months() {
        assert_eq!(period_months("2026-11"), Some(vec!["2026-11".to_string()]));
        assert_eq!(
            period_months("2026-Q4"),
            Some(vec!["2026-10".into(), "2026-11".into(), "2026-12".into()])
        );
        for bad in ["2026-13", "2026-Q5", "2026-1", "26-11", "2026/11", ""] {
            assert_eq!(period_months(bad), None, "{bad}");
        }
    }

    #[test]
    fn cycles_are_iso_weeks() {
        assert!(is_cycle_name("2026-W49"));
        assert!(!is_cycle_name("2026-W54"));
        assert!(!is_cycle_name("2026-49"));
    }
}
