//! Visit planning (DOMAIN.md "People and their daily work": each customer manager
//! visits each of their ~200 retailers weekly, ~35 a day): who is due on a day, in
//! what order to walk, and how a week's visits count against the plan.

use chrono::{Datelike, NaiveDate};

use super::interactions::distance_m;

/// A customer to visit: index into the caller's list, and its location.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spot {
    pub lat: f64,
    pub lng: f64,
}

/// Visiting order: the `first` group in nearest-neighbour order from its first member,
/// then the `second` group continuing from where the first ended. Returns indices into
/// `first ++ second` and the distance from the previous stop of each.
pub fn walking_order(first: &[Spot], second: &[Spot]) -> Vec<(usize, f64)> {
    let mut order = Vec::with_capacity(first.len() + second.len());
    let mut at: Option<Spot> = None;
    for (offset, group) in [(0, first), (first.len(), second)] {
        let mut left: Vec<usize> = (0..group.len()).collect();
        while !left.is_empty() {
            let pick = match at {
                None => 0,
                Some(here) => {
                    let mut best = 0;
                    let mut best_d = f64::INFINITY;
                    for (k, &i) in left.iter().enumerate() {
                        let d = distance_m((here.lat, here.lng), (group[i].lat, group[i].lng));
                        if d < best_d {
                            best_d = d;
                            best = k;
                        }
                    }
                    best
                }
            };
            let i = left.remove(pick);
            let d = at.map_or(0.0, |here| {
                distance_m((here.lat, here.lng), (group[i].lat, group[i].lng))
            });
            order.push((offset + i, d));
            at = Some(group[i]);
        }
    }
    order
}

/// Monday of ISO week "YYYY-Www".
pub fn week_monday(week: &str) -> Option<NaiveDate> {
    let (year, w) = week.split_once("-W")?;
    if year.len() != 4 || w.len() != 2 {
        return None;
    }
    NaiveDate::from_isoywd_opt(year.parse().ok()?, w.parse().ok()?, chrono::Weekday::Mon)
}

/// How one customer's planned visit went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Visited on its day or earlier that week.
    Done,
    /// Visited after its day, within the week.
    Late,
    /// Its day has passed without a visit.
    Missed,
    /// Its day is still ahead (or today, not visited yet).
    Pending,
}

/// The outcome of a visit due on `due` given the dates of that week's visits and
/// `today` (all local dates).
pub fn outcome(due: NaiveDate, visits: &[NaiveDate], today: NaiveDate) -> Outcome {
    if visits.iter().any(|&d| d <= due) {
        Outcome::Done
    } else if !visits.is_empty() {
        Outcome::Late
    } else if today > due {
        Outcome::Missed
    } else {
        Outcome::Pending
    }
}

/// The date in the week of `monday` for weekday 1..=7.
pub fn due_date(monday: NaiveDate, weekday: i32) -> Option<NaiveDate> {
    let offset = u64::try_from(weekday.checked_sub(1)?).ok().filter(|&o| o < 7)?;
    monday.checked_add_days(chrono::Days::new(offset))
}

/// ISO weekday number 1 (Monday) .. 7 (Sunday) of a date.
pub fn weekday_number(date: NaiveDate) -> i32 {
    date.weekday().number_from_monday() as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
    }

    #[test]
    fn walking_order_is_nearest_neighbour_after_the_overdue_ones() {
        // Overdue: far east; today's: a line going west.
        let overdue = [Spot {
            lat: 30.0,
            lng: 104.2,
        }];
        let today = [
            Spot {
                lat: 30.0,
                lng: 104.0,
            },
            Spot {
                lat: 30.0,
                lng: 104.15,
            },
            Spot {
                lat: 30.0,
                lng: 104.1,
            },
        ];
        let order: Vec<usize> = walking_order(&overdue, &today)
            .into_iter()
            .map(|(i, _)| i)
            .collect();
        assert_eq!(order, vec![0, 2, 3, 1]);
        let legs = walking_order(&overdue, &today);
        assert_eq!(legs[0].1, 0.0);
        assert!(legs[1].1 > 4_000.0 && legs[1].1 < 6_000.0, "{}", legs[1].1);
        assert!(walking_order(&[], &[]).is_empty());
    }

    #[test]
    fn iso_weeks_and_due_dates() {
        assert_eq!(week_monday("2026-W48"), Some(d("2026-11-23")));
        assert_eq!(week_monday("2026-W01"), Some(d("2025-12-29")));
        assert_eq!(week_monday("2026-W54"), None);
        assert_eq!(week_monday("2026-48"), None);
        assert_eq!(week_monday("abcd-W01"), None);
        assert_eq!(due_date(d("2026-11-23"), 3), Some(d("2026-11-25")));
        assert_eq!(due_date(d("2026-11-23"), 0), None);
        assert_eq!(due_date(d("2026-11-23"), 8), None);
        assert_eq!(weekday_number(d("2026-11-29")), 7);
    }

    #[test]
    fn a_visit_counts_done_late_missed_or_pending() {
        let due = d("2026-11-25");
        assert_eq!(outcome(due, &[d("2026-11-25")], d("2026-11-27")), Outcome::Done);
        assert_eq!(outcome(due, &[d("2026-11-24")], d("2026-11-27")), Outcome::Done);
        assert_eq!(outcome(due, &[d("2026-11-26")], d("2026-11-27")), Outcome::Late);
        assert_eq!(outcome(due, &[], d("2026-11-26")), Outcome::Missed);
        assert_eq!(outcome(due, &[], d("2026-11-25")), Outcome::Pending);
    }
}
