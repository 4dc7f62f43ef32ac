//! Rules of taking an order that need no database: when it goes to picking (and so
//! can no longer be cancelled), whether credit allows it, and how quota left unordered
//! is released to the retailers that used all of theirs.

use chrono::{DateTime, Duration, FixedOffset, NaiveTime, TimeZone, Utc};

/// DOMAIN.md "Order to delivery": orders are handed to the DC at 11:30 and 17:30.
pub const PICKING_CUTOFFS: [(u32, u32); 2] = [(11, 30), (17, 30)];

/// The moment an order confirmed at `confirmed` is handed to picking: the first
/// cut-off at or after it in local time (`offset_seconds` east of UTC). Until then it
/// may be cancelled. Confirmed after 17:30, it waits for 11:30 the next day.
pub fn picking_cutoff(confirmed: DateTime<Utc>, offset_seconds: i32) -> DateTime<Utc> {
    let Some(offset) = FixedOffset::east_opt(offset_seconds) else {
        return confirmed;
    };
    let local = confirmed.with_timezone(&offset);
    for day in 0..2 {
        let date = local.date_naive() + Duration::days(day);
        for (hour, minute) in PICKING_CUTOFFS {
            let Some(time) = NaiveTime::from_hms_opt(hour, minute, 0) else {
                continue;
            };
            if let Some(cutoff) = offset.from_local_datetime(&date.and_time(time)).single()
                && cutoff >= local
            {
                return cutoff.with_timezone(&Utc);
            }
        }
    }
    confirmed
}

/// DOMAIN.md "Credit": outstanding credit may never exceed the limit. Retailers that
/// settle electronically pay as they order and carry no exposure.
pub fn credit_allows(e_settlement: bool, outstanding_fen: i64, order_fen: i64, limit_fen: i64) -> bool {
    e_settlement || outstanding_fen.saturating_add(order_fen) <= limit_fen
}

/// A retailer that used all of its quota this cycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FullUser {
    pub customer_id: String,
    pub tier: u32,
    /// Its quota from the run (extra excluded).
    pub quota: u64,
}

/// `ReleaseUnclaimed`: `pool` cartons left unordered are offered to the retailers that
/// used all of theirs, highest tier first (ties by customer id), each up to its own
/// quota once more, until the pool runs out. Σ offered ≤ pool, so supply still covers
/// every quota and extra.
pub fn release(pool: u64, mut full_users: Vec<FullUser>) -> Vec<(String, u64)> {
    full_users.sort_by(|a, b| {
        b.tier
            .cmp(&a.tier)
            .then_with(|| a.customer_id.cmp(&b.customer_id))
    });
    let mut left = pool;
    let mut offers = Vec::new();
    for user in full_users {
        if left == 0 {
            break;
        }
        let offer = user.quota.min(left);
        if offer > 0 {
            left -= offer;
            offers.push((user.customer_id, offer));
        }
    }
    offers
}

#[cfg(test)]
mod tests {
    use chrono::Timelike;
    use proptest::prelude::*;

    use super::*;
    use crate::domain::cycle::SHANGHAI_OFFSET_SECONDS;

    fn shanghai(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    #[test]
    fn orders_go_to_picking_at_the_next_cutoff() {
        let cases = [
            ("2026-11-25T09:00:00+08:00", "2026-11-25T11:30:00+08:00"),
            ("2026-11-25T11:30:00+08:00", "2026-11-25T11:30:00+08:00"),
            ("2026-11-25T11:31:00+08:00", "2026-11-25T17:30:00+08:00"),
            ("2026-11-25T18:00:00+08:00", "2026-11-26T11:30:00+08:00"),
            ("2026-12-31T23:59:00+08:00", "2027-01-01T11:30:00+08:00"),
        ];
        for (confirmed, cutoff) in cases {
            assert_eq!(
                picking_cutoff(shanghai(confirmed), SHANGHAI_OFFSET_SECONDS),
                shanghai(cutoff),
                "{confirmed}"
            );
        }
    }

    proptest! {
        #[test]
        fn the_cutoff_is_the_first_one_not_before_confirmation(seconds in 1_700_000_000i64..1_900_000_000, offset_h in -11i32..14) {
            let confirmed = DateTime::from_timestamp(seconds, 0).unwrap_or_default();
            let offset = offset_h * 3600;
            let cutoff = picking_cutoff(confirmed, offset);
            prop_assert!(cutoff >= confirmed);
            prop_assert!(cutoff - confirmed <= Duration::hours(18));
            let zone = FixedOffset::east_opt(offset).expect("offset within a day");
            let local = cutoff.with_timezone(&zone);
            prop_assert!(PICKING_CUTOFFS.contains(&(local.hour(), local.minute())));
        }

        #[test]
        fn a_release_never_offers_more_than_the_pool_or_a_quota(pool in 0u64..500, users in prop::collection::vec((1u32..30, 0u64..40), 0..40)) {
            let full: Vec<FullUser> = users.iter().enumerate().map(|(i, (tier, quota))| FullUser {
                customer_id: format!("r-{i:03}"), tier: *tier, quota: *quota }).collect();
            let offers = release(pool, full.clone());
            let offered: u64 = offers.iter().map(|(_, n)| n).sum();
            prop_assert!(offered <= pool);
            for (id, n) in &offers {
                let user = full.iter().find(|u| &u.customer_id == id);
                prop_assert!(user.is_some_and(|u| *n <= u.quota && *n > 0));
            }
            // Nobody of a lower tier is served while a higher one went without.
            if offered < pool {
                prop_assert_eq!(offers.len(), full.iter().filter(|u| u.quota > 0).count());
            }
        }
    }

    #[test]
    fn higher_tiers_are_offered_released_quota_first() {
        let users = vec![
            FullUser {
                customer_id: "r-1".into(),
                tier: 3,
                quota: 4,
            },
            FullUser {
                customer_id: "r-2".into(),
                tier: 9,
                quota: 6,
            },
            FullUser {
                customer_id: "r-3".into(),
                tier: 9,
                quota: 6,
            },
        ];
        assert_eq!(
            release(10, users),
            vec![("r-2".to_string(), 6), ("r-3".to_string(), 4)]
        );
    }

    #[test]
    fn credit_binds_cash_retailers_only() {
        assert!(credit_allows(true, 10_000, 5_000, 0));
        assert!(credit_allows(false, 10_000, 5_000, 15_000));
        assert!(!credit_allows(false, 10_000, 5_001, 15_000));
    }
}
