//! Distances and travel times (DESIGN.md "Routing"): road distance estimated as the
//! great-circle (haversine) distance times a circuity factor, travel time as that
//! distance over a speed; both configurable per depot.

use serde::{Deserialize, Serialize};

pub use distnet_platform::wire::EARTH_RADIUS_M;

/// DOMAIN.md: areas within 25 km of the DC get two deliveries a day.
pub const TWICE_DAILY_RADIUS_M: f64 = 25_000.0;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LatLng {
    pub lat: f64,
    pub lng: f64,
}

/// Great-circle distance in metres.
pub fn haversine_m(a: LatLng, b: LatLng) -> f64 {
    distnet_platform::wire::haversine_m((a.lat, a.lng), (b.lat, b.lng))
}

/// The road estimate: circuity (≥ 1) and average speed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RoadModel {
    pub circuity: f64,
    pub speed_kmh: f64,
}

impl Default for RoadModel {
    /// Urban delivery in a Chinese city: roads ~1.3× the straight line, ~25 km/h
    /// door to door.
    fn default() -> Self {
        Self {
            circuity: 1.3,
            speed_kmh: 25.0,
        }
    }
}

impl RoadModel {
    pub fn distance_m(&self, a: LatLng, b: LatLng) -> f64 {
        haversine_m(a, b) * self.circuity.max(1.0)
    }

    pub fn duration_s(&self, a: LatLng, b: LatLng) -> f64 {
        let speed_ms = self.speed_kmh.max(1.0) * 1000.0 / 3600.0;
        self.distance_m(a, b) / speed_ms
    }
}

/// Whether a retailer at `at` is within the two-deliveries-a-day band of `depot`.
pub fn within_twice_daily_band(depot: LatLng, at: LatLng) -> bool {
    haversine_m(depot, at) <= TWICE_DAILY_RADIUS_M
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn chengdu_to_chongqing_is_about_268_km() {
        let chengdu = LatLng {
            lat: 30.6586,
            lng: 104.0648,
        };
        let chongqing = LatLng {
            lat: 29.5630,
            lng: 106.5516,
        };
        let km = haversine_m(chengdu, chongqing) / 1000.0;
        assert!((266.0..271.0).contains(&km), "{km}");
        assert!(!within_twice_daily_band(chengdu, chongqing));
    }

    proptest! {
        #[test]
        fn distance_is_a_metric_and_road_time_follows_it(
            a in (-80.0f64..80.0, -179.0f64..179.0),
            b in (-80.0f64..80.0, -179.0f64..179.0),
        ) {
            let (a, b) = (LatLng { lat: a.0, lng: a.1 }, LatLng { lat: b.0, lng: b.1 });
            let d = haversine_m(a, b);
            prop_assert!((0.0..=std::f64::consts::PI * EARTH_RADIUS_M + 1.0).contains(&d));
            prop_assert!((d - haversine_m(b, a)).abs() < 1e-6);
            prop_assert!(haversine_m(a, a) < 1e-6);
            let road = RoadModel::default();
            prop_assert!(road.distance_m(a, b) >= d);
            prop_assert!((road.duration_s(a, b) - road.distance_m(a, b) / (25.0 / 3.6)).abs() < 1e-6);
        }
    }
}
