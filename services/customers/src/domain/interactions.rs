//! Contacts with customers (DOMAIN.md "Customer relationship": every contact is
//! logged with its outcome) and the visit check-in rule: a visit whose check-in lies
//! farther from the store than the configured radius is flagged for review.

use distnet_proto::customers::v1::Channel;

pub use distnet_platform::wire::haversine_m as distance_m;

/// Distance of a check-in from the store and whether it is beyond `radius_m`.
pub fn check_in(store: (f64, f64), check_in: (f64, f64), radius_m: f64) -> (f64, bool) {
    let d = distance_m(store, check_in);
    (d, d > radius_m)
}

/// Channels staff log by hand (deliveries come from logistics' events).
pub fn loggable(channel: Channel) -> bool {
    !matches!(channel, Channel::Unspecified | Channel::Delivery)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_match_known_figures() {
        // One degree of latitude ≈ 111.2 km.
        let d = distance_m((30.0, 104.0), (31.0, 104.0));
        assert!((d - 111_195.0).abs() < 50.0, "{d}");
        assert_eq!(distance_m((30.65, 104.06), (30.65, 104.06)), 0.0);
    }

    #[test]
    fn a_check_in_two_kilometres_away_is_flagged() {
        let store = (30.657, 104.081);
        // ≈ 2 km north.
        let (d, flagged) = check_in(store, (30.675, 104.081), 200.0);
        assert!((d - 2_000.0).abs() < 30.0, "{d}");
        assert!(flagged);
        let (d, flagged) = check_in(store, (30.6575, 104.0812), 200.0);
        assert!(d < 100.0 && !flagged, "{d}");
    }

    #[test]
    fn deliveries_are_not_logged_by_hand() {
        assert!(loggable(Channel::Visit));
        assert!(loggable(Channel::CallIn));
        assert!(!loggable(Channel::Delivery));
        assert!(!loggable(Channel::Unspecified));
    }
}
