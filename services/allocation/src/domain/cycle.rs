//! Weekly cycles (DESIGN.md: `cycles/2026-W48`): scarce supply is rationed per ISO
//! week, and a cycle's order window says when orders against it are taken. Business
//! times are local to the depot; the reference depot is in Asia/Shanghai (UTC+8 all
//! year, no daylight saving), which is the default offset here.

use chrono::{DateTime, Duration, FixedOffset, NaiveDate, NaiveTime, TimeZone as _, Utc};
pub use distnet_platform::cycle::CycleId;

/// Asia/Shanghai, which keeps UTC+8 all year.
pub const SHANGHAI_OFFSET_SECONDS: i32 = 8 * 3600;

/// The cycle `now` falls in, in Asia/Shanghai.
pub fn cycle_at(now: DateTime<Utc>) -> CycleId {
    CycleId::of((now + Duration::seconds(i64::from(SHANGHAI_OFFSET_SECONDS))).date_naive())
}

/// When orders against a cycle are taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderWindow {
    pub opens: DateTime<Utc>,
    pub closes: DateTime<Utc>,
}

impl OrderWindow {
    /// Open from `opens` (inclusive) to `closes` (exclusive).
    pub fn is_open(&self, now: DateTime<Utc>) -> bool {
        self.opens <= now && now < self.closes
    }
}

/// The default window: Monday 08:00 to Saturday 17:30 local time, the week's last
/// cut-off (DOMAIN.md: orders are handed to the DC at 11:30 and 17:30).
pub fn default_window(cycle: CycleId, offset_seconds: i32) -> Option<OrderWindow> {
    let offset = FixedOffset::east_opt(offset_seconds)?;
    let monday = cycle.monday()?;
    let local = |date: NaiveDate, h: u32, m: u32| {
        NaiveTime::from_hms_opt(h, m, 0)
            .and_then(|t| offset.from_local_datetime(&date.and_time(t)).single())
            .map(|t| t.with_timezone(&Utc))
    };
    Some(OrderWindow {
        opens: local(monday, 8, 0)?,
        closes: local(monday + Duration::days(5), 17, 30)?,
    })
}

/// From when quota left unordered may be released (`ReleaseUnclaimed`): Friday 12:00
/// local time, after the week's busiest ordering days and before its last cut-off.
pub fn default_release(cycle: CycleId, offset_seconds: i32) -> Option<DateTime<Utc>> {
    let offset = FixedOffset::east_opt(offset_seconds)?;
    let friday = cycle.monday()? + Duration::days(4);
    let noon = NaiveTime::from_hms_opt(12, 0, 0)?;
    offset
        .from_local_datetime(&friday.and_time(noon))
        .single()
        .map(|t| t.with_timezone(&Utc))
}

/// Of `cycles` with their windows, the one orders are taken for at `now` or, between
/// windows, the next to open: the first by opening whose window has not closed.
pub fn current_or_next(
    cycles: impl IntoIterator<Item = (CycleId, OrderWindow)>,
    now: DateTime<Utc>,
) -> Option<CycleId> {
    cycles
        .into_iter()
        .filter(|(_, window)| now < window.closes)
        .min_by_key(|(id, window)| (window.opens, *id))
        .map(|(id, _)| id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cycle_of_a_moment_is_its_shanghai_week() {
        // Sunday 2026-11-29 17:00 UTC is Monday 01:00 in Shanghai: the next week.
        let late_sunday = DateTime::parse_from_rfc3339("2026-11-29T17:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .expect("time");
        assert_eq!(cycle_at(late_sunday).to_string(), "2026-W49");
        assert_eq!(cycle_at(late_sunday - Duration::hours(2)).to_string(), "2026-W48");
    }

    #[test]
    fn the_default_window_runs_monday_morning_to_saturday_evening_in_shanghai() {
        let cycle = CycleId::parse("2026-W48").expect("valid");
        let window = default_window(cycle, SHANGHAI_OFFSET_SECONDS).expect("window");
        // Monday 08:00 +08:00 is Monday 00:00 UTC.
        assert_eq!(window.opens.to_rfc3339(), "2026-11-23T00:00:00+00:00");
        assert_eq!(window.closes.to_rfc3339(), "2026-11-28T09:30:00+00:00");
        assert!(window.is_open(window.opens));
        assert!(!window.is_open(window.closes));
        let release = default_release(cycle, SHANGHAI_OFFSET_SECONDS).expect("release");
        assert_eq!(release.to_rfc3339(), "2026-11-27T04:00:00+00:00");
        assert!(window.is_open(release));
    }

    #[test]
    fn the_current_cycle_is_the_first_whose_window_has_not_closed() {
        let week = |w: &str| CycleId::parse(w).expect("valid");
        let window = |w: &str| {
            (
                week(w),
                default_window(week(w), SHANGHAI_OFFSET_SECONDS).expect("window"),
            )
        };
        let cycles = [window("2026-W49"), window("2026-W47"), window("2026-W48")];
        let at = |t: &str| {
            DateTime::parse_from_rfc3339(t)
                .map(|t| t.with_timezone(&Utc))
                .expect("time")
        };
        // W48's window: 2026-11-23T00:00Z to 2026-11-28T09:30Z.
        let current = |t: &str| current_or_next(cycles, at(t)).map(|c| c.to_string());
        for (time, expected, why) in [
            ("2026-11-25T00:00:00Z", "2026-W48", "open"),
            ("2026-11-28T09:29:59Z", "2026-W48", "about to close"),
            ("2026-11-28T09:30:00Z", "2026-W49", "closed: the next"),
            ("2026-11-01T00:00:00Z", "2026-W47", "before all: the first"),
        ] {
            assert_eq!(current(time).as_deref(), Some(expected), "{why}");
        }
        assert_eq!(current("2026-12-31T00:00:00Z"), None, "all closed");
        assert_eq!(current_or_next([], at("2026-11-25T00:00:00Z")), None);
    }
}
