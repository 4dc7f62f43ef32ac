//! Conversions between our types and their wire forms shared by every service:
//! `google.protobuf.Timestamp` ↔ UTC time, fen ↔ `Money`, and great-circle distances between
//! WGS-84 points (check-ins, spacing, road estimates).

use chrono::{DateTime, Utc};

/// Mean Earth radius (IUGG), metres.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// An amount in fen as the wire's money (yuan, the only currency we deal in).
pub fn cny(fen: i64) -> distnet_proto::common::v1::Money {
    distnet_proto::common::v1::Money {
        currency_code: "CNY".into(),
        fen,
    }
}

/// A UTC time as a protobuf timestamp.
pub fn timestamp(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// A protobuf timestamp as UTC time; `None` when it is out of range or malformed.
pub fn from_timestamp(t: &prost_types::Timestamp) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).ok()?)
}

/// Great-circle (haversine) distance in metres between two (latitude, longitude)
/// points in degrees.
pub fn haversine_m((lat1, lng1): (f64, f64), (lat2, lng2): (f64, f64)) -> f64 {
    let (phi1, phi2) = (lat1.to_radians(), lat2.to_radians());
    let d_phi = (lat2 - lat1).to_radians();
    let d_lambda = (lng2 - lng1).to_radians();
    let h = (d_phi / 2.0).sin().powi(2) + phi1.cos() * phi2.cos() * (d_lambda / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().min(1.0).asin()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_and_reject_bad_nanos() {
        let t = DateTime::from_timestamp(1_795_399_200, 5).expect("valid");
        assert_eq!(from_timestamp(&timestamp(t)), Some(t));
        let bad = prost_types::Timestamp {
            seconds: 0,
            nanos: -1,
        };
        assert_eq!(from_timestamp(&bad), None);
    }

    #[test]
    fn one_degree_of_latitude_is_about_111_km() {
        let d = haversine_m((30.0, 104.0), (31.0, 104.0));
        assert!((d - 111_195.0).abs() < 50.0, "{d}");
        assert_eq!(haversine_m((30.65, 104.06), (30.65, 104.06)), 0.0);
    }
}
