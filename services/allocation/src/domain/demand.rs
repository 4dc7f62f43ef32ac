//! Monthly demand (DOMAIN.md "Rationing scarce supply"): supply of a product for a
//! month = (same period last year's sales × 50 % + this month's normal growth
//! forecast × 50 %) × holiday factor; months with big holidays grow more.

use std::fmt;

/// The holiday factor, in basis points of 1.0 (10,000 = no holiday effect).
pub const NEUTRAL_FACTOR_BP: u32 = 10_000;
/// Factors outside 0.5–3.0 are almost certainly typing mistakes.
pub const MIN_FACTOR_BP: u32 = 5_000;
pub const MAX_FACTOR_BP: u32 = 30_000;

/// The formula's inputs, kept with the estimate so a planner can see why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemandInputs {
    /// Cartons sold in the same month last year.
    pub last_year_same_month_cartons: u64,
    /// This month's normal growth forecast, in cartons.
    pub growth_forecast_cartons: u64,
    pub holiday_factor_bp: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemandEstimate {
    pub cartons: u64,
    pub explanation: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DemandError {
    HolidayFactorOutOfRange(u32),
}

impl fmt::Display for DemandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DemandError::HolidayFactorOutOfRange(bp) => write!(
                f,
                "holiday factor {bp} bp is outside {MIN_FACTOR_BP}..={MAX_FACTOR_BP} bp (0.5–3.0)"
            ),
        }
    }
}

impl std::error::Error for DemandError {}

/// The documented formula in integer arithmetic, rounded half up to whole cartons:
/// cartons = (last_year + forecast) × factor_bp / 20,000.
pub fn estimate(inputs: &DemandInputs) -> Result<DemandEstimate, DemandError> {
    let factor = inputs.holiday_factor_bp;
    if !(MIN_FACTOR_BP..=MAX_FACTOR_BP).contains(&factor) {
        return Err(DemandError::HolidayFactorOutOfRange(factor));
    }
    let base = u128::from(inputs.last_year_same_month_cartons) + u128::from(inputs.growth_forecast_cartons);
    let scaled = (base * u128::from(factor) + 10_000) / 20_000;
    let cartons = u64::try_from(scaled).unwrap_or(u64::MAX);
    let explanation = format!(
        "({} last year × 50 % + {} forecast × 50 %) × holiday factor {}.{:04} = {} cartons",
        inputs.last_year_same_month_cartons,
        inputs.growth_forecast_cartons,
        factor / 10_000,
        factor % 10_000,
        cartons
    );
    Ok(DemandEstimate { cartons, explanation })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn inputs(last_year: u64, forecast: u64, factor: u32) -> DemandInputs {
        DemandInputs {
            last_year_same_month_cartons: last_year,
            growth_forecast_cartons: forecast,
            holiday_factor_bp: factor,
        }
    }

    #[test]
    fn the_documented_formula_averages_and_applies_the_holiday_factor() {
        // (10,000 × 50 % + 12,000 × 50 %) × 1.2 = 13,200.
        let estimate = estimate(&inputs(10_000, 12_000, 12_000)).expect("valid");
        assert_eq!(estimate.cartons, 13_200);
        assert!(
            estimate.explanation.contains("1.2000"),
            "{}",
            estimate.explanation
        );
        assert_eq!(estimate_of(7, 0, NEUTRAL_FACTOR_BP), 4, "3.5 rounds half up");
    }

    fn estimate_of(a: u64, b: u64, f: u32) -> u64 {
        estimate(&inputs(a, b, f)).map(|e| e.cartons).unwrap_or_default()
    }

    #[test]
    fn implausible_holiday_factors_are_refused() {
        assert!(estimate(&inputs(1, 1, 4_999)).is_err());
        assert!(estimate(&inputs(1, 1, 30_001)).is_err());
    }

    proptest! {
        #[test]
        fn more_sales_or_a_bigger_factor_never_lowers_the_estimate(
            a in 0u64..10_000_000, b in 0u64..10_000_000, extra in 0u64..1_000_000,
            f in MIN_FACTOR_BP..=MAX_FACTOR_BP, g in 0u32..1_000,
        ) {
            let base = estimate_of(a, b, f);
            prop_assert!(estimate_of(a + extra, b, f) >= base);
            prop_assert!(estimate_of(a, b + extra, f) >= base);
            prop_assert!(estimate_of(a, b, (f + g).min(MAX_FACTOR_BP)) >= base);
        }

        #[test]
        fn a_neutral_factor_gives_the_average(a in 0u64..u64::MAX / 4, b in 0u64..u64::MAX / 4) {
            let average = (u128::from(a) + u128::from(b)).div_ceil(2);
            prop_assert_eq!(u128::from(estimate_of(a, b, NEUTRAL_FACTOR_BP)), average);
        }

        #[test]
        fn any_input_is_answered_without_panicking(a in any::<u64>(), b in any::<u64>(), f in any::<u32>()) {
            let _ = estimate(&inputs(a, b, f));
        }
    }
}
