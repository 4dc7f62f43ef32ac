//! The "four degrees" of a customer relationship (DOMAIN.md "Scoring and classes"):
//! satisfaction, contribution, loyalty and dependency, each 0–100 with the inputs
//! that produced it, the A/B/C value segment by the 80/20 rule, and the flags staff
//! act on (VIP, churn risk, incomplete file).
//!
//! Everything here is a pure function of the population's facts, so the same facts
//! always give the same insights. The window is the last [`WINDOW`] order cycles (ISO
//! weeks) ending with the current one, oldest first; the current cycle may still be
//! in progress.
//!
//! Formulas (each degree is clamped to 0–100):
//!
//! - **Satisfaction** = weighted mean of the parts present, weights 0.5 / 0.3 / 0.2:
//!   surveys S = mean survey score of the last 365 days (absent without surveys);
//!   complaints C = max(0, 100 − 25 × complaints opened in the last 90 days) ("zero
//!   complaints", always present); callbacks K = 100 × satisfied ÷ callbacks of the
//!   last 365 days (absent without callbacks).
//! - **Contribution**: value V = Σ order value over the window; share = V ÷ Σ V of all
//!   customers × 100 (the shares of all customers sum to 100 %). Rank R = the
//!   mid-rank percentile of V among all customers; trend T = 50 + 50 × g, where g is
//!   the growth of the newest six cycles over the oldest six, clamped to ±1 (+1 when
//!   only the newest six have orders). Contribution = 0.8 R + 0.2 T, and 0 when V = 0.
//! - **Loyalty**: regularity G = 100 × max(0, 1 − cv ÷ 2), where cv is the
//!   coefficient of variation of cartons per cycle over the cycles the retailer was
//!   open (missed cycles count as 0, so a steady weekly order scores 100); tenure
//!   U = 100 × min(1, days since the file was opened or the first order ÷ 730).
//!   Loyalty = 0.6 G + 0.4 U, halved under churn risk.
//! - **Churn risk**: a regular customer — orders in at least half (and at least
//!   three) of its open cycles before the last three — with no order in the last
//!   three cycles (the two completed ones and the current one).
//! - **Dependency**: cycle share P = 100 × cycles with an order ÷ open cycles; scarce
//!   reliance Q = 100 × scarce cartons ÷ cartons over the window (0 without orders).
//!   Dependency = 0.7 P + 0.3 Q.
//! - **Segment** (80/20 over contribution): customers by V descending (ties by id);
//!   A are the fewest that together reach 80 % of Σ V, B the next ones up to 95 %,
//!   C the rest; a customer without value is always C, and everyone is C while
//!   nobody has ordered.
//! - **Flags**: VIP = class SPECIAL, or among the top 5 % of customers by V (V > 0);
//!   CHURN_RISK as above; INCOMPLETE_FILE when a profile field staff rely on is empty.

/// Cycles in the window.
pub const WINDOW: usize = 12;
/// Half the window: the trend compares the newest half with the oldest.
const HALF: usize = WINDOW / 2;
/// Cycles without an order that make a regular customer a churn risk.
const CHURN_QUIET_CYCLES: usize = 3;
/// Cut-offs of segments A and B in cumulative percent of value.
const SEGMENT_A_PERCENT: i128 = 80;
const SEGMENT_B_PERCENT: i128 = 95;
/// Share of valued customers, from the top, that are VIP by value.
const VIP_TOP_SHARE: f64 = 0.05;

/// What a customer ordered in one cycle.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CycleFacts {
    pub orders: i64,
    pub value_fen: i64,
    pub cartons: i64,
    pub scarce_cartons: i64,
}

/// The facts about one customer that the degrees are computed from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inputs {
    pub customer_id: String,
    /// Accreditation class: "SPECIAL", "KEY", "GENERAL" or "".
    pub class: String,
    /// Days since the file was opened or the first order, whichever is earlier.
    pub tenure_days: i64,
    /// Window index (0 = oldest) of the cycle the file was opened in; 0 when before
    /// the window. Cycles before it (and before any order) do not count as missed.
    pub opened_index: usize,
    /// The window's cycles, oldest first.
    pub cycles: [CycleFacts; WINDOW],
    /// Survey scores (0–100) of the last 365 days.
    pub survey_scores: Vec<f64>,
    /// Complaints (cases) opened in the last 90 days.
    pub complaints_90d: u32,
    /// Callbacks of the last 365 days: how many, and how many satisfied.
    pub callbacks: u32,
    pub callbacks_satisfied: u32,
    /// Profile fields that are empty.
    pub missing_fields: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Segment {
    A,
    B,
    C,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Flag {
    Vip,
    ChurnRisk,
    IncompleteFile,
}

/// One input of a degree, as shown to staff.
#[derive(Debug, Clone, PartialEq)]
pub struct Factor {
    pub name: &'static str,
    pub value: f64,
    pub note: String,
}

/// A degree, 0–100, with its formula and inputs.
#[derive(Debug, Clone, PartialEq)]
pub struct Degree {
    pub score: f64,
    pub formula: &'static str,
    pub factors: Vec<Factor>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Insights {
    pub satisfaction: Degree,
    pub contribution: Degree,
    pub loyalty: Degree,
    pub dependency: Degree,
    /// Σ value over the window, and its share of everyone's (0–100).
    pub value_fen: i64,
    pub value_share_percent: f64,
    pub segment: Segment,
    pub flags: Vec<Flag>,
}

fn factor(name: &'static str, value: f64, note: impl Into<String>) -> Factor {
    Factor {
        name,
        value,
        note: note.into(),
    }
}

fn clamp_score(score: f64) -> f64 {
    if score.is_finite() {
        score.clamp(0.0, 100.0)
    } else {
        0.0
    }
}

/// Σ value of a customer over the window.
pub fn window_value(inputs: &Inputs) -> i64 {
    inputs.cycles.iter().map(|c| c.value_fen.max(0)).sum()
}

/// The A/B/C segment of each value (same order as `values`) by the 80/20 rule; `ids`
/// break ties so that the cut is deterministic.
pub fn segments(values: &[(&str, i64)]) -> Vec<Segment> {
    let total: i128 = values.iter().map(|(_, v)| i128::from((*v).max(0))).sum();
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| {
        values[b]
            .1
            .cmp(&values[a].1)
            .then_with(|| values[a].0.cmp(values[b].0))
    });
    let mut out = vec![Segment::C; values.len()];
    if total == 0 {
        return out;
    }
    let mut before: i128 = 0;
    for i in order {
        let value = i128::from(values[i].1.max(0));
        if value == 0 {
            break;
        }
        // In integers: before < percent % of total.
        out[i] = if before * 100 < SEGMENT_A_PERCENT * total {
            Segment::A
        } else if before * 100 < SEGMENT_B_PERCENT * total {
            Segment::B
        } else {
            Segment::C
        };
        before += value;
    }
    out
}

/// The insights of every customer of `population`, in its order.
pub fn assess(population: &[Inputs]) -> Vec<Insights> {
    let values: Vec<i64> = population.iter().map(window_value).collect();
    let total: i128 = values.iter().map(|&v| i128::from(v)).sum();
    let keyed: Vec<(&str, i64)> = population
        .iter()
        .zip(&values)
        .map(|(p, &v)| (p.customer_id.as_str(), v))
        .collect();
    let segments = segments(&keyed);
    let mut sorted = values.clone();
    sorted.sort_unstable();
    let valued = sorted.iter().filter(|&&v| v > 0).count();
    // The smallest value still inside the top 5 % of valued customers.
    let vip_count = ((valued as f64) * VIP_TOP_SHARE).ceil() as usize;
    let vip_floor = (vip_count > 0).then(|| sorted[sorted.len() - vip_count]);

    population
        .iter()
        .zip(&values)
        .zip(segments)
        .map(|((inputs, &value), segment)| {
            let below = sorted.partition_point(|&v| v < value);
            let equal = sorted.partition_point(|&v| v <= value) - below;
            let rank = if sorted.len() <= 1 {
                100.0
            } else {
                100.0 * (below as f64 + (equal as f64 - 1.0) / 2.0) / (sorted.len() as f64 - 1.0)
            };
            let share = if total > 0 {
                100.0 * value as f64 / total as f64
            } else {
                0.0
            };
            let churn = churn_risk(inputs);
            let mut flags = Vec::new();
            if inputs.class == "SPECIAL" || vip_floor.is_some_and(|floor| value > 0 && value >= floor) {
                flags.push(Flag::Vip);
            }
            if churn {
                flags.push(Flag::ChurnRisk);
            }
            if !inputs.missing_fields.is_empty() {
                flags.push(Flag::IncompleteFile);
            }
            Insights {
                satisfaction: satisfaction(inputs),
                contribution: contribution(inputs, value, share, rank),
                loyalty: loyalty(inputs, churn),
                dependency: dependency(inputs),
                value_fen: value,
                value_share_percent: share,
                segment,
                flags,
            }
        })
        .collect()
}

fn satisfaction(inputs: &Inputs) -> Degree {
    let mut factors = Vec::new();
    let mut weighted = 0.0;
    let mut weights = 0.0;
    if !inputs.survey_scores.is_empty() {
        let mean = inputs.survey_scores.iter().map(|s| clamp_score(*s)).sum::<f64>()
            / inputs.survey_scores.len() as f64;
        weighted += 0.5 * mean;
        weights += 0.5;
        factors.push(factor(
            "surveys",
            mean,
            format!(
                "mean of {} survey(s) in the last 365 days",
                inputs.survey_scores.len()
            ),
        ));
    }
    let complaints = clamp_score(100.0 - 25.0 * f64::from(inputs.complaints_90d));
    weighted += 0.3 * complaints;
    weights += 0.3;
    factors.push(factor(
        "complaints",
        complaints,
        format!(
            "{} complaint(s) in the last 90 days, −25 each",
            inputs.complaints_90d
        ),
    ));
    if inputs.callbacks > 0 {
        let satisfied =
            100.0 * f64::from(inputs.callbacks_satisfied.min(inputs.callbacks)) / f64::from(inputs.callbacks);
        weighted += 0.2 * satisfied;
        weights += 0.2;
        factors.push(factor(
            "callbacks",
            satisfied,
            format!(
                "{} of {} callback(s) satisfied in the last 365 days",
                inputs.callbacks_satisfied, inputs.callbacks
            ),
        ));
    }
    Degree {
        score: clamp_score(weighted / weights),
        formula: "(0.5 surveys + 0.3 complaints + 0.2 callbacks) / weights of the parts present",
        factors,
    }
}

fn contribution(inputs: &Inputs, value: i64, share: f64, rank: f64) -> Degree {
    let earlier: i64 = inputs.cycles[..HALF].iter().map(|c| c.value_fen.max(0)).sum();
    let recent: i64 = inputs.cycles[HALF..].iter().map(|c| c.value_fen.max(0)).sum();
    let growth = match (earlier, recent) {
        (0, 0) => 0.0,
        (0, _) => 1.0,
        _ => ((recent - earlier) as f64 / earlier as f64).clamp(-1.0, 1.0),
    };
    let trend = 50.0 + 50.0 * growth;
    let score = if value > 0 { 0.8 * rank + 0.2 * trend } else { 0.0 };
    Degree {
        score: clamp_score(score),
        formula: "0.8 rank + 0.2 trend; 0 without orders in the window",
        factors: vec![
            factor(
                "value_fen",
                value as f64,
                format!("order value over the last {WINDOW} cycles"),
            ),
            factor("share_percent", share, "share of every customer's value"),
            factor("rank", rank, "percentile of the value among all customers"),
            factor(
                "trend",
                trend,
                format!(
                    "50 + 50 × growth of the newest {HALF} cycles ({recent} fen) over the oldest {HALF} ({earlier} fen)"
                ),
            ),
        ],
    }
}

/// Cycles the retailer could have ordered in: from the file's opening or its first
/// order in the window, whichever is earlier, to the current cycle.
fn open_cycles(inputs: &Inputs) -> &[CycleFacts] {
    let first_order = inputs.cycles.iter().position(|c| c.orders > 0).unwrap_or(WINDOW);
    let start = inputs.opened_index.min(first_order).min(WINDOW - 1);
    &inputs.cycles[start..]
}

fn churn_risk(inputs: &Inputs) -> bool {
    let open = open_cycles(inputs);
    if open.len() <= CHURN_QUIET_CYCLES {
        return false;
    }
    let (before, quiet) = open.split_at(open.len() - CHURN_QUIET_CYCLES);
    let ordered_before = before.iter().filter(|c| c.orders > 0).count();
    quiet.iter().all(|c| c.orders == 0) && ordered_before >= 3 && 2 * ordered_before >= before.len()
}

fn loyalty(inputs: &Inputs, churn: bool) -> Degree {
    let open = open_cycles(inputs);
    let n = open.len() as f64;
    let mean = open.iter().map(|c| c.cartons.max(0) as f64).sum::<f64>() / n;
    let regularity = if mean > 0.0 {
        let variance = open
            .iter()
            .map(|c| (c.cartons.max(0) as f64 - mean).powi(2))
            .sum::<f64>()
            / n;
        let cv = variance.sqrt() / mean;
        100.0 * (1.0 - cv / 2.0).max(0.0)
    } else {
        0.0
    };
    let tenure = 100.0 * (inputs.tenure_days.max(0) as f64 / 730.0).min(1.0);
    let base = 0.6 * regularity + 0.4 * tenure;
    Degree {
        score: clamp_score(if churn { base / 2.0 } else { base }),
        formula: "0.6 regularity + 0.4 tenure, halved under churn risk",
        factors: vec![
            factor(
                "regularity",
                regularity,
                format!("100 × (1 − cv ÷ 2) of cartons over {} open cycle(s)", open.len()),
            ),
            factor(
                "tenure",
                tenure,
                format!("{} day(s) with us; full at 730", inputs.tenure_days.max(0)),
            ),
            factor(
                "churn_risk",
                if churn { 1.0 } else { 0.0 },
                format!("regular, then no order in the last {CHURN_QUIET_CYCLES} cycles"),
            ),
        ],
    }
}

fn dependency(inputs: &Inputs) -> Degree {
    let open = open_cycles(inputs);
    let ordered = open.iter().filter(|c| c.orders > 0).count();
    let cycle_share = 100.0 * ordered as f64 / open.len() as f64;
    let cartons: i64 = inputs.cycles.iter().map(|c| c.cartons.max(0)).sum();
    let scarce: i64 = inputs.cycles.iter().map(|c| c.scarce_cartons.max(0)).sum();
    let reliance = if cartons > 0 {
        clamp_score(100.0 * scarce as f64 / cartons as f64)
    } else {
        0.0
    };
    Degree {
        score: clamp_score(0.7 * cycle_share + 0.3 * reliance),
        formula: "0.7 cycle share + 0.3 scarce reliance",
        factors: vec![
            factor(
                "cycle_share",
                cycle_share,
                format!("ordered in {ordered} of {} open cycle(s)", open.len()),
            ),
            factor(
                "scarce_reliance",
                reliance,
                format!("{scarce} of {cartons} cartons were scarce products"),
            ),
        ],
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn weekly(cartons: i64, value_fen: i64) -> [CycleFacts; WINDOW] {
        [CycleFacts {
            orders: 1,
            value_fen,
            cartons,
            scarce_cartons: cartons / 5,
        }; WINDOW]
    }

    fn customer(id: &str, cycles: [CycleFacts; WINDOW]) -> Inputs {
        Inputs {
            customer_id: id.into(),
            tenure_days: 365,
            cycles,
            ..Inputs::default()
        }
    }

    #[test]
    fn a_steady_weekly_customer_is_regular_dependent_and_not_at_risk() {
        let insights = assess(&[customer("a", weekly(10, 500_000))]);
        let i = &insights[0];
        assert_eq!(i.dependency.factors[0].value, 100.0);
        assert_eq!(i.loyalty.factors[0].value, 100.0, "cv 0 is perfectly regular");
        assert!((i.loyalty.score - (60.0 + 0.4 * 100.0 * 365.0 / 730.0)).abs() < 1e-9);
        assert!(!i.flags.contains(&Flag::ChurnRisk));
        assert_eq!(i.segment, Segment::A);
        assert!((i.value_share_percent - 100.0).abs() < 1e-9);
        // Dependency: every cycle, 20 % scarce.
        assert!((i.dependency.score - (70.0 + 0.3 * 20.0)).abs() < 1e-9);
    }

    #[test]
    fn a_regular_customer_who_stops_ordering_is_a_churn_risk_and_loses_loyalty() {
        let mut cycles = weekly(10, 100_000);
        for c in &mut cycles[WINDOW - 3..] {
            *c = CycleFacts::default();
        }
        let quiet = assess(&[customer("q", cycles)]);
        assert!(quiet[0].flags.contains(&Flag::ChurnRisk));
        let mut steady = cycles;
        steady[WINDOW - 1] = weekly(10, 100_000)[0];
        let ordering = assess(&[customer("q", steady)]);
        assert!(!ordering[0].flags.contains(&Flag::ChurnRisk));
        assert!(quiet[0].loyalty.score < ordering[0].loyalty.score / 1.5);
    }

    #[test]
    fn a_newcomer_is_judged_only_on_the_cycles_since_it_opened() {
        let mut cycles = [CycleFacts::default(); WINDOW];
        for c in &mut cycles[WINDOW - 2..] {
            *c = weekly(4, 40_000)[0];
        }
        let mut newcomer = customer("n", cycles);
        newcomer.opened_index = WINDOW - 2;
        newcomer.tenure_days = 10;
        let i = &assess(&[newcomer])[0];
        assert_eq!(i.dependency.factors[0].value, 100.0, "2 of 2 open cycles");
        assert!(!i.flags.contains(&Flag::ChurnRisk));
        // Orders only in the newest half: growth +1, trend 100.
        assert_eq!(i.contribution.factors[3].value, 100.0);
    }

    #[test]
    fn satisfaction_weighs_the_parts_present() {
        let mut c = customer("s", weekly(1, 1));
        c.complaints_90d = 1;
        assert_eq!(assess(std::slice::from_ref(&c))[0].satisfaction.score, 75.0);
        c.survey_scores = vec![80.0, 60.0];
        c.callbacks = 2;
        c.callbacks_satisfied = 1;
        let expected = (0.5 * 70.0 + 0.3 * 75.0 + 0.2 * 50.0) / 1.0;
        assert!((assess(&[c])[0].satisfaction.score - expected).abs() < 1e-9);
    }

    #[test]
    fn segments_cut_at_80_and_95_percent_of_value() {
        // 50 + 30 = 80 → A, A; 10 + 5 → B, B (cumulative before 80, 90 < 95); 5 → C.
        let values = [("a", 50), ("b", 30), ("c", 10), ("d", 5), ("e", 5), ("z", 0)];
        assert_eq!(
            segments(&values),
            vec![
                Segment::A,
                Segment::A,
                Segment::B,
                Segment::B,
                Segment::C,
                Segment::C
            ]
        );
        assert_eq!(segments(&[("a", 0), ("b", 0)]), vec![Segment::C, Segment::C]);
    }

    #[test]
    fn special_class_and_the_top_by_value_are_vip_and_empty_fields_flag_the_file() {
        let mut population: Vec<Inputs> = (0..40)
            .map(|i| customer(&format!("c{i:02}"), weekly(1, 100 + i)))
            .collect();
        population[0].class = "SPECIAL".into();
        population[1].missing_fields = vec!["legal_name".into()];
        let insights = assess(&population);
        let vips: Vec<usize> = (0..40)
            .filter(|&i| insights[i].flags.contains(&Flag::Vip))
            .collect();
        // Top 5 % of 40 valued customers = the 2 largest, plus the SPECIAL one.
        assert_eq!(vips, vec![0, 38, 39]);
        assert_eq!(insights[1].flags, vec![Flag::IncompleteFile]);
    }

    fn population() -> impl Strategy<Value = Vec<Inputs>> {
        let cycle = (0i64..3, 0i64..2_000_000, 0i64..200).prop_map(|(orders, value, cartons)| CycleFacts {
            orders,
            value_fen: if orders > 0 { value } else { 0 },
            cartons: if orders > 0 { cartons } else { 0 },
            scarce_cartons: if orders > 0 { cartons / 3 } else { 0 },
        });
        let one = (
            proptest::array::uniform12(cycle),
            0usize..WINDOW,
            0i64..2_000,
            proptest::collection::vec(0.0f64..=100.0, 0..4),
            0u32..6,
            0u32..4,
        )
            .prop_map(
                |(cycles, opened_index, tenure_days, survey_scores, complaints, callbacks)| Inputs {
                    customer_id: String::new(),
                    class: String::new(),
                    tenure_days,
                    opened_index,
                    cycles,
                    survey_scores,
                    complaints_90d: complaints,
                    callbacks,
                    callbacks_satisfied: callbacks / 2,
                    missing_fields: Vec::new(),
                },
            );
        proptest::collection::vec(one, 1..60).prop_map(|mut all| {
            for (i, c) in all.iter_mut().enumerate() {
                c.customer_id = format!("c{i:03}");
            }
            all
        })
    }

    proptest! {
        #[test]
        fn contribution_shares_over_all_customers_sum_to_100_percent(population in population()) {
            let insights = assess(&population);
            let total: f64 = insights.iter().map(|i| i.value_share_percent).sum();
            let anyone_ordered = insights.iter().any(|i| i.value_fen > 0);
            if anyone_ordered {
                prop_assert!((total - 100.0).abs() < 1e-6, "shares sum to {total}");
            } else {
                prop_assert_eq!(total, 0.0);
            }
        }

        #[test]
        fn segments_follow_the_80_20_cut(population in population()) {
            let insights = assess(&population);
            let total: i64 = insights.iter().map(|i| i.value_fen).sum();
            let of = |s: Segment| insights.iter().filter(move |i| i.segment == s);
            let a_value: i64 = of(Segment::A).map(|i| i.value_fen).sum();
            let ab_value: i64 = a_value + of(Segment::B).map(|i| i.value_fen).sum::<i64>();
            if total == 0 {
                prop_assert!(insights.iter().all(|i| i.segment == Segment::C));
            } else {
                // A reaches 80 %, and without its smallest member it would not.
                prop_assert!(a_value * 100 >= 80 * total);
                let smallest_a = of(Segment::A).map(|i| i.value_fen).min().unwrap_or(0);
                prop_assert!((a_value - smallest_a) * 100 < 80 * total);
                // A and B together reach 95 % only as far as needed.
                prop_assert!(ab_value * 100 >= 95 * total);
                // Segments are ordered by value.
                let min_a = of(Segment::A).map(|i| i.value_fen).min();
                let max_b = of(Segment::B).map(|i| i.value_fen).max();
                let max_c = of(Segment::C).map(|i| i.value_fen).max();
                if let (Some(a), Some(b)) = (min_a, max_b) { prop_assert!(a >= b); }
                if let (Some(b), Some(c)) = (max_b.or(min_a), max_c) { prop_assert!(b >= c); }
            }
        }

        #[test]
        fn every_degree_stays_within_0_and_100_and_assessing_is_deterministic(population in population()) {
            let first = assess(&population);
            prop_assert_eq!(&first, &assess(&population));
            for i in &first {
                for d in [&i.satisfaction, &i.contribution, &i.loyalty, &i.dependency] {
                    prop_assert!((0.0..=100.0).contains(&d.score), "{} out of range", d.score);
                }
            }
        }
    }
}
