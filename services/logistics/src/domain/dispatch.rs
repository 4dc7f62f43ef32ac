//! How a depot's slot becomes a [`RoutingProblem`]: shipments become stops with a
//! service time, vehicles work their half of the shift, travel follows the depot's
//! road model. `PlanRoutes`, `ReplanRoutes` and the demo-day benchmark all build
//! their problems here.

use serde::{Deserialize, Serialize};

use super::geo::RoadModel;
use super::routing::{Location, MultiTripRules, RoutingProblem, Stop, Travel, Vehicle};
use super::slot::Half;

/// DOMAIN.md: 1 case (件) = 50 cartons (条).
pub const CARTONS_PER_CASE: f64 = 50.0;

/// Time spent at a stop.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ServiceTimes {
    /// Parking, checking the goods with the retailer on handover, proof of delivery.
    pub per_stop_s: f64,
    /// Carrying each case in.
    pub per_case_s: f64,
}

impl Default for ServiceTimes {
    /// From DOMAIN.md's figures: 32 vans in 7 effective hours serve a city zone's
    /// ≈1,900 stops a day, about 7 minutes a stop with the driving between them; of
    /// that, 4 minutes at the door and 30 s for each of the ≈0.8 cases a stop takes.
    fn default() -> Self {
        Self {
            per_stop_s: 240.0,
            per_case_s: 30.0,
        }
    }
}

/// A depot's delivery model: its roads and its service times.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct DeliveryModel {
    #[serde(default)]
    pub road: RoadModel,
    #[serde(default)]
    pub service: ServiceTimes,
}

/// A shipment to deliver in the slot.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub id: String,
    pub at: (f64, f64),
    pub cartons: i64,
    /// Receiving window in seconds after local midnight.
    pub window: Option<(f64, f64)>,
}

/// A vehicle's working day, in minutes after local midnight.
#[derive(Debug, Clone, PartialEq)]
pub struct Van {
    pub id: String,
    pub capacity_cases: i32,
    pub shift_start_min: i32,
    pub shift_end_min: i32,
}

/// A vehicle's part of its shift for the slot: the morning run takes the first half,
/// the afternoon run the second (seconds after local midnight).
pub fn slot_shift(start_min: i32, end_min: i32, half: Half) -> (f64, f64) {
    let (start, end) = (f64::from(start_min) * 60.0, f64::from(end_min) * 60.0);
    let middle = (start + end) / 2.0;
    match half {
        Half::Afternoon => (middle, end),
        Half::Morning => (start, middle),
    }
}

impl DeliveryModel {
    pub fn stop(&self, delivery: &Delivery) -> Stop {
        let cases = delivery.cartons as f64 / CARTONS_PER_CASE;
        Stop {
            id: delivery.id.clone(),
            location: Location::LatLng {
                lat: delivery.at.0,
                lng: delivery.at.1,
            },
            demand: cases,
            service_seconds: self.service.per_stop_s + self.service.per_case_s * cases,
            window: delivery.window.filter(|(start, end)| start < end),
        }
    }

    /// The slot's problem: every van leaves the depot no earlier than `not_before_s`
    /// (seconds after local midnight; `-inf` for a slot still ahead) and may make a
    /// second trip inside the 25 km band.
    pub fn problem(
        &self,
        depot: (f64, f64),
        deliveries: &[Delivery],
        vans: &[Van],
        half: Half,
        not_before_s: f64,
    ) -> RoutingProblem {
        RoutingProblem {
            depot: Location::LatLng {
                lat: depot.0,
                lng: depot.1,
            },
            stops: deliveries.iter().map(|d| self.stop(d)).collect(),
            vehicles: vans
                .iter()
                .map(|v| {
                    let (start, end) = slot_shift(v.shift_start_min, v.shift_end_min, half);
                    Vehicle {
                        id: v.id.clone(),
                        capacity: f64::from(v.capacity_cases),
                        shift: (start.max(not_before_s).min(end), end),
                        max_trips: 2,
                    }
                })
                .collect(),
            travel: Travel::Haversine {
                circuity: self.road.circuity,
                speed_kmh: self.road.speed_kmh,
            },
            multi_trip: MultiTripRules::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vans_work_their_half_of_the_shift_and_not_before_now() {
        assert_eq!(slot_shift(8 * 60, 15 * 60, Half::Morning), (28_800.0, 41_400.0));
        assert_eq!(slot_shift(8 * 60, 15 * 60, Half::Afternoon), (41_400.0, 54_000.0));
        let model = DeliveryModel::default();
        let van = Van {
            id: "v".into(),
            capacity_cases: 45,
            shift_start_min: 8 * 60,
            shift_end_min: 15 * 60,
        };
        let later = model.problem(
            (30.0, 104.0),
            &[],
            std::slice::from_ref(&van),
            Half::Morning,
            36_000.0,
        );
        assert_eq!(later.vehicles[0].shift, (36_000.0, 41_400.0));
        let past = model.problem((30.0, 104.0), &[], &[van], Half::Morning, 50_000.0);
        assert_eq!(
            past.vehicles[0].shift,
            (41_400.0, 41_400.0),
            "no time left, never negative"
        );
    }

    #[test]
    fn a_stop_takes_its_door_time_and_each_case() {
        let stop = DeliveryModel::default().stop(&Delivery {
            id: "s".into(),
            at: (30.0, 104.0),
            cartons: 100,
            window: Some((36_000.0, 32_000.0)),
        });
        assert!((stop.demand - 2.0).abs() < 1e-12);
        assert!((stop.service_seconds - 300.0).abs() < 1e-9);
        assert_eq!(stop.window, None, "an empty window is no window");
    }
}
