//! Distance and duration matrices from the problem's travel model.
//!
//! Matrix index 0 is the depot and index `i + 1` is `stops[i]`. An entry that is
//! negative (our marker, and vrp-core's, for "unreachable") means no road connects the
//! two places.

use std::sync::Arc;

use super::{Location, Rounding, RoutingError, RoutingProblem, Travel};

pub use crate::domain::geo::EARTH_RADIUS_M;

/// Largest number of matrix locations (depot + stops) accepted: the two dense matrices
/// then take about 400 MB, so anything larger is refused up front.
pub const MAX_LOCATIONS: usize = 5_000;

/// Great-circle distance in metres between two WGS-84 points (`domain::geo`).
pub fn haversine_m(lat1: f64, lng1: f64, lat2: f64, lng2: f64) -> f64 {
    use crate::domain::geo::{LatLng, haversine_m as great_circle};
    great_circle(LatLng { lat: lat1, lng: lng1 }, LatLng { lat: lat2, lng: lng2 })
}

impl Rounding {
    /// Applies the convention to a raw Euclidean distance.
    pub fn apply(self, d: f64) -> f64 {
        match self {
            Rounding::Nearest => d.round(),
            Rounding::TruncateOneDecimal => (d * 10.0).trunc() / 10.0,
            Rounding::Exact => d,
        }
    }

    /// Units per whole distance unit used to sum rounded distances exactly
    /// (1 for `Nearest`, 10 for `TruncateOneDecimal`, 10⁶ for `Exact`).
    pub fn scale(self) -> f64 {
        match self {
            Rounding::Nearest => 1.0,
            Rounding::TruncateOneDecimal => 10.0,
            Rounding::Exact => 1e6,
        }
    }
}

/// Dense row-major distance (metres or planar units) and duration (seconds) matrices.
#[derive(Debug, Clone)]
pub(crate) struct Matrix {
    pub size: usize,
    pub distances: Arc<[f64]>,
    pub durations: Arc<[f64]>,
    /// Whether any entry is unreachable (enables the reachability constraint).
    pub has_unreachable: bool,
}

impl Matrix {
    /// Distance from `from` to `to`; negative when unreachable or out of range.
    pub fn distance(&self, from: usize, to: usize) -> f64 {
        self.index(from, to)
            .and_then(|i| self.distances.get(i).copied())
            .unwrap_or(-1.0)
    }

    /// Duration from `from` to `to`; negative when unreachable or out of range.
    pub fn duration(&self, from: usize, to: usize) -> f64 {
        self.index(from, to)
            .and_then(|i| self.durations.get(i).copied())
            .unwrap_or(-1.0)
    }

    /// Both values when the leg is reachable.
    pub fn leg(&self, from: usize, to: usize) -> Option<(f64, f64)> {
        let (d, t) = (self.distance(from, to), self.duration(from, to));
        (d >= 0.0 && t >= 0.0).then_some((d, t))
    }

    fn index(&self, from: usize, to: usize) -> Option<usize> {
        (from < self.size && to < self.size).then(|| from * self.size + to)
    }

    /// Builds the matrices for `problem` (validated coordinates and travel parameters).
    pub fn build(problem: &RoutingProblem) -> Result<Self, RoutingError> {
        let size = problem.stops.len() + 1;
        if size > MAX_LOCATIONS {
            return Err(RoutingError::invalid(format!(
                "{} stops: at most {} per problem",
                problem.stops.len(),
                MAX_LOCATIONS - 1
            )));
        }
        let location = |i: usize| {
            if i == 0 {
                &problem.depot
            } else {
                &problem.stops[i - 1].location
            }
        };
        match &problem.travel {
            Travel::Haversine { circuity, speed_kmh } => {
                if !(circuity.is_finite() && *circuity >= 1.0) {
                    return Err(RoutingError::invalid(format!(
                        "circuity {circuity} must be finite and ≥ 1"
                    )));
                }
                if !(speed_kmh.is_finite() && *speed_kmh > 0.0) {
                    return Err(RoutingError::invalid(format!(
                        "speed {speed_kmh} km/h must be finite and > 0"
                    )));
                }
                let points = (0..size)
                    .map(|i| match location(i) {
                        Location::LatLng { lat, lng } => Ok((*lat, *lng)),
                        Location::Planar { .. } => Err(RoutingError::invalid(
                            "haversine travel needs lat/lng locations".to_string(),
                        )),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let metres_per_second = speed_kmh / 3.6;
                let mut distances = vec![0.0; size * size];
                let mut durations = vec![0.0; size * size];
                for (i, &(lat1, lng1)) in points.iter().enumerate() {
                    for (j, &(lat2, lng2)) in points.iter().enumerate().skip(i + 1) {
                        let d = haversine_m(lat1, lng1, lat2, lng2) * circuity;
                        let t = d / metres_per_second;
                        for (a, b) in [(i, j), (j, i)] {
                            distances[a * size + b] = d;
                            durations[a * size + b] = t;
                        }
                    }
                }
                Ok(Self {
                    size,
                    distances: distances.into(),
                    durations: durations.into(),
                    has_unreachable: false,
                })
            }
            Travel::Planar { rounding } => {
                let points = (0..size)
                    .map(|i| match location(i) {
                        Location::Planar { x, y } => Ok((*x, *y)),
                        Location::LatLng { .. } => Err(RoutingError::invalid(
                            "planar travel needs planar locations".to_string(),
                        )),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let mut distances = vec![0.0; size * size];
                for (i, &(x1, y1)) in points.iter().enumerate() {
                    for (j, &(x2, y2)) in points.iter().enumerate().skip(i + 1) {
                        let d = rounding.apply((x1 - x2).hypot(y1 - y2));
                        distances[i * size + j] = d;
                        distances[j * size + i] = d;
                    }
                }
                if distances.iter().any(|d| !d.is_finite()) {
                    return Err(RoutingError::invalid("planar coordinates too large".to_string()));
                }
                let durations = distances.clone();
                Ok(Self {
                    size,
                    distances: distances.into(),
                    durations: durations.into(),
                    has_unreachable: false,
                })
            }
            Travel::Matrix {
                distances_m,
                durations_s,
            } => {
                let flatten = |name: &str, rows: &[Vec<f64>]| -> Result<Vec<f64>, RoutingError> {
                    if rows.len() != size || rows.iter().any(|r| r.len() != size) {
                        return Err(RoutingError::invalid(format!(
                            "{name} must be {size}×{size} (depot + {} stops)",
                            size - 1
                        )));
                    }
                    Ok(rows
                        .iter()
                        .flatten()
                        .map(|&v| if v.is_finite() && v >= 0.0 { v } else { -1.0 })
                        .collect())
                };
                let mut distances = flatten("distances_m", distances_m)?;
                let mut durations = flatten("durations_s", durations_s)?;
                // A leg is unreachable when either value says so; a place is always
                // reachable from itself.
                for i in 0..size * size {
                    if distances[i] < 0.0 || durations[i] < 0.0 {
                        distances[i] = -1.0;
                        durations[i] = -1.0;
                    }
                }
                for i in 0..size {
                    distances[i * size + i] = 0.0;
                    durations[i * size + i] = 0.0;
                }
                let has_unreachable = distances.iter().any(|&d| d < 0.0);
                Ok(Self {
                    size,
                    distances: distances.into(),
                    durations: durations.into(),
                    has_unreachable,
                })
            }
        }
    }

    /// Straight-line distance from the depot to stop `i` (0-based stop index), used for
    /// the second-trip band: haversine without circuity for lat/lng, Euclidean for planar,
    /// and the matrix distance when the matrix is the only geometry we trust.
    pub fn band_distance(&self, problem: &RoutingProblem, stop: usize) -> f64 {
        let Some(s) = problem.stops.get(stop) else {
            return f64::INFINITY;
        };
        match (&problem.travel, &problem.depot, &s.location) {
            (Travel::Matrix { .. }, _, _) => {
                let d = self.distance(0, stop + 1);
                if d < 0.0 { f64::INFINITY } else { d }
            }
            (_, Location::LatLng { lat, lng }, Location::LatLng { lat: lat2, lng: lng2 }) => {
                haversine_m(*lat, *lng, *lat2, *lng2)
            }
            (_, Location::Planar { x, y }, Location::Planar { x: x2, y: y2 }) => (x - x2).hypot(y - y2),
            _ => f64::INFINITY,
        }
    }
}
