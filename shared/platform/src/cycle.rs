//! Weekly order cycles (DESIGN.md: `cycles/2026-W48`): scarce supply is rationed
//! and orders are counted per ISO week.

use std::fmt;

use chrono::{Datelike as _, Duration, NaiveDate, Weekday};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CycleId {
    pub year: i32,
    pub week: u32,
}

impl fmt::Display for CycleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-W{:02}", self.year, self.week)
    }
}

impl CycleId {
    /// Parses `2026-W48`; the week must exist in that ISO year.
    pub fn parse(text: &str) -> Option<Self> {
        let (year, week) = text.split_once("-W")?;
        if year.len() != 4 || week.len() != 2 {
            return None;
        }
        let cycle = CycleId {
            year: year.parse().ok()?,
            week: week.parse().ok()?,
        };
        cycle.monday().map(|_| cycle)
    }

    /// The Monday the cycle starts on.
    pub fn monday(self) -> Option<NaiveDate> {
        NaiveDate::from_isoywd_opt(self.year, self.week, Weekday::Mon)
    }

    /// The cycle a local date belongs to.
    pub fn of(date: NaiveDate) -> Self {
        let week = date.iso_week();
        CycleId {
            year: week.year(),
            week: week.week(),
        }
    }

    pub fn next(self) -> Option<Self> {
        self.monday().map(|m| Self::of(m + Duration::days(7)))
    }

    pub fn previous(self) -> Option<Self> {
        self.monday().map(|m| Self::of(m - Duration::days(7)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn cycles_are_named_by_iso_week() {
        let cycle = CycleId::parse("2026-W48").expect("valid");
        assert_eq!(cycle.monday(), NaiveDate::from_ymd_opt(2026, 11, 23));
        assert_eq!(cycle.to_string(), "2026-W48");
        // 2026 has 53 ISO weeks; 2025 does not.
        assert!(CycleId::parse("2026-W53").is_some());
        assert!(CycleId::parse("2025-W53").is_none());
        for bad in ["2026-48", "2026-W5", "26-W48", "2026-W00", ""] {
            assert!(CycleId::parse(bad).is_none(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn every_date_belongs_to_the_cycle_starting_on_its_monday(days in 0i64..40_000) {
            let date = NaiveDate::from_ymd_opt(1990, 1, 1).unwrap() + Duration::days(days);
            let cycle = CycleId::of(date);
            let monday = cycle.monday().unwrap();
            prop_assert!(monday <= date && date < monday + Duration::days(7));
            prop_assert_eq!(CycleId::parse(&cycle.to_string()), Some(cycle));
            prop_assert_eq!(cycle.next().and_then(CycleId::previous), Some(cycle));
            prop_assert!(cycle.next().unwrap() > cycle);
        }

        #[test]
        fn parsing_any_text_never_panics(text in "\\PC{0,10}") {
            let _ = CycleId::parse(&text);
        }
    }
}
