//! Credit grading (DOMAIN.md "Credit"): every customer's credit risk is graded before
//! selling on credit; the limit is a percentage of working capital or net assets,
//! lower for higher risk; outstanding credit may never exceed the limit; terms follow
//! the grade; blacklisted customers get no credit.

use serde::{Deserialize, Serialize};

/// What the credit file says about a customer. Money in fen; ratios as plain numbers.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct CreditInputs {
    /// Current assets − current liabilities; may be negative.
    pub working_capital_fen: i64,
    /// Total assets − total liabilities; may be negative.
    pub net_assets_fen: i64,
    /// Current assets / current liabilities.
    pub current_ratio: f64,
    /// Earnings before interest and tax / interest expense; negative on a loss.
    pub interest_coverage: f64,
    /// Total liabilities / total assets; above 1 when insolvent.
    pub debt_ratio: f64,
    /// (Cash + equivalents) / current liabilities.
    pub cash_ratio: f64,
    /// Share of invoices paid by their due date over the last year, 0..=1.
    pub on_time_payment_rate: f64,
    pub disputes_last_year: u32,
}

/// Checks a credit file before it is assessed; every problem comes with its field.
pub fn validate_inputs(inputs: &CreditInputs) -> Result<(), Vec<(String, String)>> {
    let mut problems = Vec::new();
    for (field, value, non_negative) in [
        ("current_ratio", inputs.current_ratio, true),
        ("interest_coverage", inputs.interest_coverage, false),
        ("debt_ratio", inputs.debt_ratio, true),
        ("cash_ratio", inputs.cash_ratio, true),
    ] {
        if !value.is_finite() {
            problems.push((field.to_owned(), "must be a finite number".to_owned()));
        } else if non_negative && value < 0.0 {
            problems.push((field.to_owned(), "must not be negative".to_owned()));
        }
    }
    let rate = inputs.on_time_payment_rate;
    if !(rate.is_finite() && (0.0..=1.0).contains(&rate)) {
        problems.push((
            "on_time_payment_rate".to_owned(),
            "must be between 0 and 1".to_owned(),
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// A scored input: its name and the most points it can earn.
struct Item {
    name: &'static str,
    max_points: u32,
}

/// Bands every input into points; the table is on [`credit_score`].
fn score_items(inputs: &CreditInputs) -> [(Item, u32); 6] {
    let at_least = |value: f64, bands: &[(f64, u32)]| {
        bands
            .iter()
            .find(|(floor, _)| value >= *floor)
            .map_or(0, |&(_, points)| points)
    };
    let at_most = |value: f64, bands: &[(f64, u32)]| {
        bands
            .iter()
            .find(|(ceiling, _)| value <= *ceiling)
            .map_or(0, |&(_, points)| points)
    };
    let disputes = match inputs.disputes_last_year {
        0 => 15,
        1 => 10,
        2 => 5,
        _ => 0,
    };
    let item = |name, max_points| Item { name, max_points };
    [
        (
            item("current ratio", 20),
            at_least(inputs.current_ratio, &[(2.0, 20), (1.5, 15), (1.0, 8)]),
        ),
        (
            item("interest coverage", 15),
            at_least(inputs.interest_coverage, &[(5.0, 15), (3.0, 10), (1.5, 5)]),
        ),
        (
            item("debt ratio", 15),
            at_most(inputs.debt_ratio, &[(0.4, 15), (0.6, 10), (0.8, 5)]),
        ),
        (
            item("cash ratio", 10),
            at_least(inputs.cash_ratio, &[(0.5, 10), (0.2, 6), (0.1, 3)]),
        ),
        (
            item("on-time payment rate", 25),
            at_least(
                inputs.on_time_payment_rate,
                &[(0.98, 25), (0.95, 20), (0.90, 12), (0.80, 5)],
            ),
        ),
        (item("disputes last year", 15), disputes),
    ]
}

/// The points scorecard, 0–100. Each input is banded into points; a value that
/// falls in no band (including NaN) scores 0, so a missing or broken figure never
/// earns credit.
///
/// | input | bands → points | max |
/// |---|---|---|
/// | current ratio | ≥ 2.0 → 20, ≥ 1.5 → 15, ≥ 1.0 → 8, else 0 | 20 |
/// | interest coverage | ≥ 5.0 → 15, ≥ 3.0 → 10, ≥ 1.5 → 5, else 0 | 15 |
/// | debt ratio (lower is better) | ≤ 0.4 → 15, ≤ 0.6 → 10, ≤ 0.8 → 5, else 0 | 15 |
/// | cash ratio | ≥ 0.5 → 10, ≥ 0.2 → 6, ≥ 0.1 → 3, else 0 | 10 |
/// | on-time payment rate | ≥ 0.98 → 25, ≥ 0.95 → 20, ≥ 0.90 → 12, ≥ 0.80 → 5, else 0 | 25 |
/// | disputes last year | 0 → 15, 1 → 10, 2 → 5, ≥ 3 → 0 | 15 |
///
/// Payment behaviour weighs most (25): DOMAIN.md puts account signals next to the
/// ratios, and how a retailer pays us is the most direct evidence of how it will.
pub fn credit_score(inputs: &CreditInputs) -> u32 {
    score_items(inputs).iter().map(|(_, points)| points).sum()
}

/// Credit grade, best first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CreditGrade {
    Aaa,
    Aa,
    A,
    B,
    C,
    D,
}

impl CreditGrade {
    pub const ALL: [CreditGrade; 6] = [
        CreditGrade::Aaa,
        CreditGrade::Aa,
        CreditGrade::A,
        CreditGrade::B,
        CreditGrade::C,
        CreditGrade::D,
    ];
}

/// Grade by score: AAA ≥ 90, AA ≥ 80, A ≥ 70, B ≥ 60, C ≥ 45, D below. D is the
/// band where the ratios and the payment record together no longer support credit.
pub fn grade_for_score(score: u32) -> CreditGrade {
    match score {
        90.. => CreditGrade::Aaa,
        80..=89 => CreditGrade::Aa,
        70..=79 => CreditGrade::A,
        60..=69 => CreditGrade::B,
        45..=59 => CreditGrade::C,
        _ => CreditGrade::D,
    }
}

/// The share of the base lent at each grade, in basis points: "lower for higher
/// risk". AAA 30 %, AA 25 %, A 20 %, B 15 %, C 10 %, D nothing.
pub fn grade_percent_bp(grade: CreditGrade) -> u32 {
    match grade {
        CreditGrade::Aaa => 3000,
        CreditGrade::Aa => 2500,
        CreditGrade::A => 2000,
        CreditGrade::B => 1500,
        CreditGrade::C => 1000,
        CreditGrade::D => 0,
    }
}

/// Payment terms in days ("terms follow the grade"); D buys for cash only.
pub fn terms_days(grade: CreditGrade) -> u32 {
    match grade {
        CreditGrade::Aaa => 30,
        CreditGrade::Aa => 21,
        CreditGrade::A => 15,
        CreditGrade::B => 10,
        CreditGrade::C => 7,
        CreditGrade::D => 0,
    }
}

/// Early-payment discount in basis points. It rewards paying well before the term
/// ends, so it is worth more on long terms and nothing on C's 7 days or D's cash.
pub fn early_payment_discount_bp(grade: CreditGrade) -> u32 {
    match grade {
        CreditGrade::Aaa => 100,
        CreditGrade::Aa => 80,
        CreditGrade::A => 50,
        CreditGrade::B => 30,
        CreditGrade::C | CreditGrade::D => 0,
    }
}

/// Which figure the limit is a percentage of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitBase {
    WorkingCapital,
    NetAssets,
    /// Neither is positive: nothing to lend against, so the limit is zero.
    NoBase,
}

/// The base of the limit: working capital when positive (it is what repays
/// short-term trade credit), else net assets when positive, else nothing.
pub fn limit_base(inputs: &CreditInputs) -> (LimitBase, i64) {
    if inputs.working_capital_fen > 0 {
        (LimitBase::WorkingCapital, inputs.working_capital_fen)
    } else if inputs.net_assets_fen > 0 {
        (LimitBase::NetAssets, inputs.net_assets_fen)
    } else {
        (LimitBase::NoBase, 0)
    }
}

/// Limit = base × the grade's percentage, rounded down to whole yuan (100 fen) and
/// never negative. Integer arithmetic in i128, so no base can overflow or round up.
pub fn credit_limit_fen(base_fen: i64, grade: CreditGrade) -> i64 {
    let base = i128::from(base_fen.max(0));
    let limit = base * i128::from(grade_percent_bp(grade)) / 10_000;
    let whole_yuan = limit / 100 * 100;
    // At most 30 % of an i64, so the conversion cannot fail; 0 is the safe fallback.
    i64::try_from(whole_yuan).unwrap_or(0)
}

/// The outcome of grading one credit file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditAssessment {
    pub score: u32,
    pub grade: CreditGrade,
    pub base: LimitBase,
    pub limit_fen: i64,
    pub terms_days: u32,
    pub early_payment_discount_bp: u32,
    /// One line per scored input, then the base and the limit, for the credit file.
    pub explanation: Vec<String>,
}

/// Grades a credit file and sets its limit and terms. Never panics; a non-finite
/// ratio simply scores 0 (callers should still run [`validate_inputs`] first).
pub fn assess(inputs: &CreditInputs) -> CreditAssessment {
    let items = score_items(inputs);
    let score: u32 = items.iter().map(|(_, points)| points).sum();
    let grade = grade_for_score(score);
    let (base, base_fen) = limit_base(inputs);
    let limit_fen = credit_limit_fen(base_fen, grade);
    let values = [
        format!("{}", inputs.current_ratio),
        format!("{}", inputs.interest_coverage),
        format!("{}", inputs.debt_ratio),
        format!("{}", inputs.cash_ratio),
        format!("{}", inputs.on_time_payment_rate),
        format!("{}", inputs.disputes_last_year),
    ];
    let mut explanation: Vec<String> = items
        .iter()
        .zip(values.iter())
        .map(|((item, points), value)| format!("{} {value}: {points}/{} points", item.name, item.max_points))
        .collect();
    explanation.push(format!("score {score}: grade {grade:?}"));
    explanation.push(match base {
        LimitBase::WorkingCapital => format!("base: working capital {base_fen} fen"),
        LimitBase::NetAssets => format!("base: net assets {base_fen} fen (working capital not positive)"),
        LimitBase::NoBase => "base: none (neither working capital nor net assets is positive)".to_owned(),
    });
    let percent_bp = grade_percent_bp(grade);
    explanation.push(format!(
        "limit: {}.{:02} % of base, rounded down to whole yuan = {limit_fen} fen",
        percent_bp / 100,
        percent_bp % 100
    ));
    CreditAssessment {
        score,
        grade,
        base,
        limit_fen,
        terms_days: terms_days(grade),
        early_payment_discount_bp: early_payment_discount_bp(grade),
        explanation,
    }
}

/// "A customer's outstanding credit may never exceed its limit": true when the
/// order fits, i.e. outstanding + order ≤ limit. Summed in i128 so it cannot overflow.
pub fn within_limit(outstanding_fen: i64, order_value_fen: i64, limit_fen: i64) -> bool {
    i128::from(outstanding_fen) + i128::from(order_value_fen) <= i128::from(limit_fen)
}

/// The limit that applies: untrustworthy customers on the blacklist get none, and a
/// limit is never negative.
pub fn effective_limit(assessment_limit: i64, blacklisted: bool) -> i64 {
    if blacklisted { 0 } else { assessment_limit.max(0) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sound_retailer() -> CreditInputs {
        CreditInputs {
            working_capital_fen: 50_000_000,
            net_assets_fen: 120_000_000,
            current_ratio: 2.1,
            interest_coverage: 6.0,
            debt_ratio: 0.35,
            cash_ratio: 0.6,
            on_time_payment_rate: 0.99,
            disputes_last_year: 0,
        }
    }

    #[test]
    fn a_sound_retailer_gets_aaa_and_thirty_percent_of_working_capital() {
        let assessment = assess(&sound_retailer());
        assert_eq!((assessment.score, assessment.grade), (100, CreditGrade::Aaa));
        assert_eq!(assessment.base, LimitBase::WorkingCapital);
        assert_eq!(assessment.limit_fen, 15_000_000);
        assert_eq!(
            (assessment.terms_days, assessment.early_payment_discount_bp),
            (30, 100)
        );
        assert_eq!(assessment.explanation.len(), 9);
        assert_eq!(assessment.explanation[0], "current ratio 2.1: 20/20 points");
    }

    #[test]
    fn without_positive_working_capital_the_base_is_net_assets_then_nothing() {
        let mut inputs = CreditInputs {
            working_capital_fen: -5,
            net_assets_fen: 1_234_567,
            ..sound_retailer()
        };
        let assessment = assess(&inputs);
        assert_eq!(assessment.base, LimitBase::NetAssets);
        assert_eq!(assessment.limit_fen, 370_300); // 30 % = 370_370.1 fen, down to whole yuan
        inputs.net_assets_fen = -1;
        assert_eq!(
            (assess(&inputs).base, assess(&inputs).limit_fen),
            (LimitBase::NoBase, 0)
        );
    }

    #[test]
    fn a_weak_file_is_graded_d_and_sold_for_cash_only() {
        let inputs = CreditInputs {
            current_ratio: 0.8,
            interest_coverage: -1.0,
            debt_ratio: 0.9,
            cash_ratio: 0.05,
            on_time_payment_rate: 0.85,
            disputes_last_year: 4,
            ..sound_retailer()
        };
        let assessment = assess(&inputs);
        assert_eq!((assessment.score, assessment.grade), (5, CreditGrade::D));
        assert_eq!((assessment.limit_fen, assessment.terms_days), (0, 0));
    }

    #[test]
    fn validation_names_every_bad_field() {
        let inputs = CreditInputs {
            current_ratio: f64::NAN,
            interest_coverage: f64::INFINITY,
            debt_ratio: -0.1,
            on_time_payment_rate: 1.01,
            ..sound_retailer()
        };
        let fields: Vec<String> = validate_inputs(&inputs)
            .unwrap_err()
            .into_iter()
            .map(|(f, _)| f)
            .collect();
        assert_eq!(
            fields,
            [
                "current_ratio",
                "interest_coverage",
                "debt_ratio",
                "on_time_payment_rate"
            ]
        );
        assert_eq!(validate_inputs(&sound_retailer()), Ok(()));
    }

    #[test]
    fn an_order_may_fill_the_limit_but_not_pass_it_and_the_blacklist_zeroes_it() {
        assert!(within_limit(900, 100, 1_000));
        assert!(!within_limit(900, 101, 1_000));
        assert!(!within_limit(i64::MAX, i64::MAX, i64::MAX));
        assert!(within_limit(i64::MIN, i64::MIN, i64::MIN + 1));
        assert_eq!(effective_limit(1_000, true), 0);
        assert_eq!(effective_limit(1_000, false), 1_000);
    }

    fn any_inputs(ratio: BoxedStrategy<f64>) -> impl Strategy<Value = CreditInputs> {
        (
            any::<i64>(),
            any::<i64>(),
            ratio.clone(),
            ratio.clone(),
            ratio.clone(),
            ratio.clone(),
            ratio,
            any::<u32>(),
        )
            .prop_map(|(wc, na, cr, ic, dr, cash, rate, disputes)| CreditInputs {
                working_capital_fen: wc,
                net_assets_fen: na,
                current_ratio: cr,
                interest_coverage: ic,
                debt_ratio: dr,
                cash_ratio: cash,
                on_time_payment_rate: rate,
                disputes_last_year: disputes,
            })
    }

    fn rank(grade: CreditGrade) -> usize {
        CreditGrade::ALL
            .iter()
            .position(|&g| g == grade)
            .unwrap_or(usize::MAX)
    }

    proptest! {
        #[test]
        fn assess_never_panics_and_keeps_its_bounds(inputs in any_inputs(any::<f64>().boxed())) {
            let _ = validate_inputs(&inputs);
            let assessment = assess(&inputs);
            prop_assert!(assessment.score <= 100);
            let (_, base) = limit_base(&inputs);
            prop_assert!(assessment.limit_fen >= 0);
            prop_assert_eq!(assessment.limit_fen % 100, 0);
            prop_assert!(i128::from(assessment.limit_fen) * 10 <= i128::from(base) * 3);
        }

        #[test]
        fn improving_any_single_input_never_lowers_the_score(
            inputs in any_inputs((-10.0f64..10.0).boxed()),
            delta in 0.0f64..5.0,
            fewer_disputes in 0u32..5,
            which in 0usize..6,
        ) {
            let mut better = inputs;
            match which {
                0 => better.current_ratio += delta,
                1 => better.interest_coverage += delta,
                2 => better.debt_ratio -= delta,
                3 => better.cash_ratio += delta,
                4 => better.on_time_payment_rate += delta,
                _ => better.disputes_last_year = inputs.disputes_last_year.saturating_sub(fewer_disputes),
            }
            prop_assert!(credit_score(&better) >= credit_score(&inputs));
        }

        #[test]
        fn a_higher_score_never_gets_a_worse_grade(score in 0u32..200, more in 0u32..100) {
            prop_assert!(rank(grade_for_score(score + more)) <= rank(grade_for_score(score)));
        }

        #[test]
        fn the_limit_grows_with_the_base_for_a_fixed_grade(
            base in any::<i64>(), more in any::<i64>(), grade in proptest::sample::select(CreditGrade::ALL.to_vec())
        ) {
            let bigger = base.saturating_add(more.max(0));
            prop_assert!(credit_limit_fen(bigger, grade) >= credit_limit_fen(base, grade));
            prop_assert!(grade_percent_bp(grade) <= 3000);
        }

        #[test]
        fn within_limit_matches_exact_arithmetic(outstanding in any::<i64>(), order in any::<i64>(), limit in any::<i64>()) {
            let exact = i128::from(outstanding) + i128::from(order) <= i128::from(limit);
            prop_assert_eq!(within_limit(outstanding, order, limit), exact);
            prop_assert_eq!(effective_limit(limit, true), 0);
        }
    }
}
