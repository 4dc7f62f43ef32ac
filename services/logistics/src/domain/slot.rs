//! Delivery slots (DOMAIN.md "Order to delivery", DESIGN.md "Cut-offs and slots"):
//! orders are handed to the DC at cut-offs — confirmed by 11:30, picked that
//! afternoon and delivered next morning; by 17:30, picked next morning and delivered
//! next afternoon — and a zone is delivered only on its day of the N-day cycle, on
//! the depot's working days.
//!
//! The rule, in the depot's local time:
//!
//! 1. The order joins the first cut-off at or after its confirmation (after the day's
//!    last cut-off: the first one of the next day). Cut-offs fall only on working
//!    days: on a non-working day, the next working day's first cut-off.
//! 2. That cut-off's schedule gives the earliest delivery: `delivery_days` working
//!    days later, in its half of the day (MORNING / AFTERNOON).
//! 3. The delivery moves forward to the first working day that is the zone's day in
//!    the cycle. A once-a-day zone (beyond the 25 km band) is served by the morning
//!    run only. If the date moved, the slot is that day's first run (MORNING).
//!
//! Generic over `chrono::TimeZone`, so a depot's zone can be a fixed offset or a
//! named zone with daylight saving.

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike as _, Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Half {
    Morning,
    Afternoon,
}

/// One cut-off of a depot's schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cutoff {
    /// Local time orders are handed over; confirmed at or before it joins it.
    pub at: NaiveTime,
    /// Working days from the cut-off's day to delivery.
    pub delivery_days: u32,
    pub delivery_half: Half,
}

/// A depot's cut-offs, sorted by time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CutoffSchedule {
    pub cutoffs: Vec<Cutoff>,
}

impl Default for CutoffSchedule {
    /// DOMAIN.md: 11:30 → next morning; 17:30 → next afternoon.
    fn default() -> Self {
        let at = |h, m| NaiveTime::from_hms_opt(h, m, 0).unwrap_or(NaiveTime::MIN);
        Self {
            cutoffs: vec![
                Cutoff {
                    at: at(11, 30),
                    delivery_days: 1,
                    delivery_half: Half::Morning,
                },
                Cutoff {
                    at: at(17, 30),
                    delivery_days: 1,
                    delivery_half: Half::Afternoon,
                },
            ],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Frequency {
    OnceDaily,
    TwiceDaily,
}

/// A zone's place in the depot's delivery cycle: delivered on the dates `d` with
/// `(d − anchor) mod cycle_days == day`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneCycle {
    pub anchor: NaiveDate,
    pub cycle_days: u32,
    pub day: u32,
    pub frequency: Frequency,
}

impl ZoneCycle {
    pub fn delivers_on(&self, date: NaiveDate) -> bool {
        let cycle = i64::from(self.cycle_days.max(1));
        (date - self.anchor).num_days().rem_euclid(cycle) == i64::from(self.day) % cycle
    }
}

/// Days the depot neither picks nor delivers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Calendar {
    pub non_working: BTreeSet<NaiveDate>,
}

impl Calendar {
    pub fn is_working(&self, date: NaiveDate) -> bool {
        !self.non_working.contains(&date)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Slot {
    pub date: NaiveDate,
    pub half: Half,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotError {
    /// The schedule has no cut-offs.
    NoCutoffs,
    /// No working zone day within the search horizon (a calendar closed for a year).
    NoDeliveryDay,
}

/// How far ahead a slot is searched for, in days.
const HORIZON_DAYS: i64 = 400;

fn next_working(calendar: &Calendar, mut date: NaiveDate) -> Option<NaiveDate> {
    for _ in 0..HORIZON_DAYS {
        if calendar.is_working(date) {
            return Some(date);
        }
        date = date.succ_opt()?;
    }
    None
}

/// The cut-off an order confirmed at `confirmed` joins: (its local date, the cut-off).
pub fn cutoff_for<Tz: TimeZone>(
    confirmed: DateTime<Utc>,
    zone: &Tz,
    schedule: &CutoffSchedule,
    calendar: &Calendar,
) -> Result<(NaiveDate, Cutoff), SlotError> {
    let mut cutoffs = schedule.cutoffs.clone();
    cutoffs.sort_by_key(|c| c.at);
    let first = *cutoffs.first().ok_or(SlotError::NoCutoffs)?;
    let local = confirmed.with_timezone(zone).naive_local();
    let today = local.date();
    if calendar.is_working(today)
        && let Some(cutoff) = cutoffs.iter().find(|c| local.time() <= c.at)
    {
        return Ok((today, *cutoff));
    }
    let next = today
        .succ_opt()
        .and_then(|d| next_working(calendar, d))
        .ok_or(SlotError::NoDeliveryDay)?;
    Ok((next, first))
}

/// The delivery slot of an order confirmed at `confirmed` (see the module docs).
pub fn delivery_slot<Tz: TimeZone>(
    confirmed: DateTime<Utc>,
    zone: &Tz,
    schedule: &CutoffSchedule,
    zone_cycle: &ZoneCycle,
    calendar: &Calendar,
) -> Result<Slot, SlotError> {
    let (day, cutoff) = cutoff_for(confirmed, zone, schedule, calendar)?;
    let mut earliest = day;
    for _ in 0..cutoff.delivery_days {
        earliest = earliest
            .succ_opt()
            .and_then(|d| next_working(calendar, d))
            .ok_or(SlotError::NoDeliveryDay)?;
    }
    let mut half = cutoff.delivery_half;
    if zone_cycle.frequency == Frequency::OnceDaily && half == Half::Afternoon {
        // Only the morning run serves the zone: the next day's.
        earliest = earliest.succ_opt().ok_or(SlotError::NoDeliveryDay)?;
        half = Half::Morning;
    }
    let mut date = earliest;
    for _ in 0..HORIZON_DAYS {
        if calendar.is_working(date) && zone_cycle.delivers_on(date) {
            let half = if date == earliest { half } else { Half::Morning };
            return Ok(Slot { date, half });
        }
        date = date.succ_opt().ok_or(SlotError::NoDeliveryDay)?;
    }
    Err(SlotError::NoDeliveryDay)
}

/// Where a failed delivery goes: the zone's next run after `failed`. A twice-daily
/// zone's morning failure goes on the same day's afternoon run; otherwise the morning
/// run of the zone's next working delivery day.
pub fn next_slot(failed: Slot, zone_cycle: &ZoneCycle, calendar: &Calendar) -> Result<Slot, SlotError> {
    if failed.half == Half::Morning && zone_cycle.frequency == Frequency::TwiceDaily {
        return Ok(Slot {
            date: failed.date,
            half: Half::Afternoon,
        });
    }
    let mut date = failed.date;
    for _ in 0..HORIZON_DAYS {
        date = date.succ_opt().ok_or(SlotError::NoDeliveryDay)?;
        if calendar.is_working(date) && zone_cycle.delivers_on(date) {
            return Ok(Slot {
                date,
                half: Half::Morning,
            });
        }
    }
    Err(SlotError::NoDeliveryDay)
}

/// The weekday-independent day number of `date` in the zone's cycle (for reports).
pub fn cycle_day(zone_cycle: &ZoneCycle, date: NaiveDate) -> u32 {
    let cycle = i64::from(zone_cycle.cycle_days.max(1));
    u32::try_from((date - zone_cycle.anchor).num_days().rem_euclid(cycle)).unwrap_or(0)
}

/// Monday-based weekday, for calendars that close on Sundays.
pub fn is_sunday(date: NaiveDate) -> bool {
    date.weekday() == chrono::Weekday::Sun
}

/// `date` plus `days`, saturating at the calendar's end.
pub fn add_days(date: NaiveDate, days: i64) -> NaiveDate {
    date.checked_add_signed(Duration::days(days)).unwrap_or(date)
}

#[cfg(test)]
mod tests {
    use chrono::FixedOffset;
    use proptest::prelude::*;

    use super::*;

    fn shanghai() -> FixedOffset {
        FixedOffset::east_opt(8 * 3600).expect("offset")
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("time")
            .with_timezone(&Utc)
    }

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("date")
    }

    fn every_day(frequency: Frequency) -> ZoneCycle {
        ZoneCycle {
            anchor: date("2026-11-23"),
            cycle_days: 1,
            day: 0,
            frequency,
        }
    }

    fn slot(confirmed: &str, zone: &ZoneCycle, calendar: &Calendar) -> Slot {
        delivery_slot(
            at(confirmed),
            &shanghai(),
            &CutoffSchedule::default(),
            zone,
            calendar,
        )
        .expect("slot")
    }

    #[test]
    fn the_two_cutoffs_give_next_morning_and_next_afternoon() {
        let zone = every_day(Frequency::TwiceDaily);
        let calendar = Calendar::default();
        let cases = [
            ("2026-11-24T09:00:00+08:00", "2026-11-25", Half::Morning),
            // DOMAIN.md's example: 11:29 and 11:31 land in different slots.
            ("2026-11-24T11:29:00+08:00", "2026-11-25", Half::Morning),
            ("2026-11-24T11:30:00+08:00", "2026-11-25", Half::Morning),
            ("2026-11-24T11:31:00+08:00", "2026-11-25", Half::Afternoon),
            ("2026-11-24T17:30:00+08:00", "2026-11-25", Half::Afternoon),
            // After the last cut-off: tomorrow's 11:30 batch, the day after's morning.
            ("2026-11-24T18:00:00+08:00", "2026-11-26", Half::Morning),
        ];
        for (confirmed, day, half) in cases {
            assert_eq!(
                slot(confirmed, &zone, &calendar),
                Slot {
                    date: date(day),
                    half
                },
                "{confirmed}"
            );
        }
    }

    #[test]
    fn holidays_and_the_zone_cycle_move_the_delivery_forward() {
        let calendar = Calendar {
            non_working: [date("2026-11-25")].into_iter().collect(),
        };
        let zone = every_day(Frequency::TwiceDaily);
        // Delivery would fall on the holiday: the next working day, same half.
        assert_eq!(
            slot("2026-11-24T10:00:00+08:00", &zone, &calendar),
            Slot {
                date: date("2026-11-26"),
                half: Half::Morning
            }
        );
        // A 3-day cycle delivering on day 2 (2026-11-25, 11-28, ...).
        let zone = ZoneCycle {
            anchor: date("2026-11-23"),
            cycle_days: 3,
            day: 2,
            frequency: Frequency::TwiceDaily,
        };
        assert_eq!(
            slot("2026-11-23T17:00:00+08:00", &zone, &Calendar::default()),
            Slot {
                date: date("2026-11-25"),
                half: Half::Morning
            },
            "the next afternoon is not the zone's day; its next day starts with the morning run"
        );
        // Once-daily zones get the morning run only.
        assert_eq!(
            slot(
                "2026-11-24T15:00:00+08:00",
                &every_day(Frequency::OnceDaily),
                &Calendar::default()
            ),
            Slot {
                date: date("2026-11-26"),
                half: Half::Morning
            }
        );
    }

    #[test]
    fn a_failed_delivery_goes_to_the_zone_s_next_run() {
        let zone = ZoneCycle {
            anchor: date("2026-11-23"),
            cycle_days: 3,
            day: 0,
            frequency: Frequency::TwiceDaily,
        };
        let morning = Slot {
            date: date("2026-11-23"),
            half: Half::Morning,
        };
        assert_eq!(
            next_slot(morning, &zone, &Calendar::default()),
            Ok(Slot {
                date: date("2026-11-23"),
                half: Half::Afternoon
            }),
            "a twice-daily zone's morning failure rides the afternoon run"
        );
        let afternoon = Slot {
            half: Half::Afternoon,
            ..morning
        };
        let holiday = Calendar {
            non_working: [date("2026-11-26")].into_iter().collect(),
        };
        assert_eq!(
            next_slot(afternoon, &zone, &holiday),
            Ok(Slot {
                date: date("2026-11-29"),
                half: Half::Morning
            }),
            "the zone's next day (26th) is a holiday: the one after"
        );
        let once = ZoneCycle {
            frequency: Frequency::OnceDaily,
            ..zone
        };
        assert_eq!(
            next_slot(morning, &once, &Calendar::default()).map(|s| s.date),
            Ok(date("2026-11-26"))
        );
    }

    proptest! {
        #[test]
        fn a_rescheduled_slot_is_later_and_on_a_working_zone_day(
            day_offset in 0i64..400,
            cycle_days in 1u32..6,
            day in 0u32..6,
            twice in any::<bool>(),
            afternoon in any::<bool>(),
            holidays in prop::collection::btree_set(0i64..60, 0..20),
        ) {
            let anchor = date("2026-01-01");
            let zone = ZoneCycle {
                anchor,
                cycle_days,
                day: day % cycle_days,
                frequency: if twice { Frequency::TwiceDaily } else { Frequency::OnceDaily },
            };
            let failed = Slot {
                date: add_days(anchor, day_offset),
                half: if afternoon { Half::Afternoon } else { Half::Morning },
            };
            let calendar = Calendar {
                non_working: holidays.iter().map(|d| add_days(failed.date, *d)).collect(),
            };
            let next = next_slot(failed, &zone, &calendar).expect("a slot within the horizon");
            prop_assert!(next > failed);
            if next.date != failed.date {
                prop_assert!(calendar.is_working(next.date));
                prop_assert!(zone.delivers_on(next.date));
                prop_assert_eq!(next.half, Half::Morning);
                // No run of the zone is skipped in between.
                let mut d = failed.date.succ_opt().expect("date");
                while d < next.date {
                    prop_assert!(!(calendar.is_working(d) && zone.delivers_on(d)));
                    d = d.succ_opt().expect("date");
                }
            } else {
                prop_assert!(twice && !afternoon);
            }
        }

        #[test]
        fn a_slot_is_after_confirmation_on_a_working_zone_day(
            seconds in 1_750_000_000i64..1_850_000_000,
            offset_h in -11i32..14,
            cycle_days in 1u32..6,
            day in 0u32..6,
            twice in any::<bool>(),
            holidays in prop::collection::btree_set(0i64..60, 0..20),
        ) {
            let confirmed = DateTime::from_timestamp(seconds, 0).expect("time");
            let zone_tz = FixedOffset::east_opt(offset_h * 3600).expect("offset");
            let local_day = confirmed.with_timezone(&zone_tz).date_naive();
            let calendar = Calendar {
                non_working: holidays.iter().map(|d| add_days(local_day, *d)).collect(),
            };
            let zone = ZoneCycle {
                anchor: date("2026-01-01"),
                cycle_days,
                day: day % cycle_days,
                frequency: if twice { Frequency::TwiceDaily } else { Frequency::OnceDaily },
            };
            let slot = delivery_slot(confirmed, &zone_tz, &CutoffSchedule::default(), &zone, &calendar)
                .expect("a slot within the horizon");
            prop_assert!(slot.date > local_day, "never delivered the day it was confirmed");
            prop_assert!(calendar.is_working(slot.date));
            prop_assert!(zone.delivers_on(slot.date));
            if !twice {
                prop_assert_eq!(slot.half, Half::Morning);
            }
            // Later confirmation never gets an earlier slot.
            let later = confirmed + Duration::minutes(37);
            let later_slot = delivery_slot(later, &zone_tz, &CutoffSchedule::default(), &zone, &calendar)
                .expect("slot");
            prop_assert!(later_slot >= slot);
        }

        #[test]
        fn the_cutoff_is_never_before_confirmation(seconds in 1_750_000_000i64..1_850_000_000, offset_h in -11i32..14) {
            let confirmed = DateTime::from_timestamp(seconds, 0).expect("time");
            let zone_tz = FixedOffset::east_opt(offset_h * 3600).expect("offset");
            let (day, cutoff) = cutoff_for(confirmed, &zone_tz, &CutoffSchedule::default(), &Calendar::default())
                .expect("cutoff");
            let local = confirmed.with_timezone(&zone_tz).naive_local();
            prop_assert!(day.and_time(cutoff.at) >= local);
            prop_assert!(day.and_time(cutoff.at) - local <= Duration::hours(18));
        }
    }
}
