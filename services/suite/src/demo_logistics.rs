//! `--demo` for logistics (DOMAIN.md "Order to delivery"): the city distribution
//! center with its 3 zones on a 3-day cycle (every area within 25 km, delivered twice a
//! day) and 32 vans of 45 cases; three county distribution centers for the remote
//! areas beyond 25 km, one once-a-day zone per area, on the same 3-day rule; the
//! default cut-offs (11:30 → next morning, 17:30 → next afternoon). Request ids derive
//! from the seed, so a second run replays.

use std::time::{Duration, Instant};

use distnet_proto::common::v1::{LatLng, TimeOfDay};
use distnet_proto::logistics::v1::logistics_service_client::LogisticsServiceClient;
use distnet_proto::logistics::v1::*;

use crate::demo::{bearer, connect, seeder_token};
use crate::seed::{AreaLayout, NetworkShape, area_layout, destination};

/// Areas whose outer edge lies within this distance are the city's (two runs a day).
const CITY_RADIUS_KM: f64 = 25.0;
/// The delivery cycle: one city zone phoned and delivered per day.
const CYCLE_DAYS: i32 = 3;
/// A Monday; zone `i` is delivered on the days `(d − anchor) mod 3 = i`.
const CYCLE_ANCHOR: &str = "2026-11-23";
pub const CITY_VANS: usize = 32;
const COUNTY_DEPOTS: usize = 3;
const COUNTY_VANS: usize = 4;
/// Spring Festival 2027 and New Year's Day: the distribution centers close.
const HOLIDAYS: [&str; 8] = [
    "2027-01-01",
    "2027-02-05",
    "2027-02-06",
    "2027-02-07",
    "2027-02-08",
    "2027-02-09",
    "2027-02-10",
    "2027-02-11",
];

pub struct LogisticsReport {
    pub depots: usize,
    pub zones: usize,
    pub vehicles: usize,
    pub elapsed: Duration,
}

fn middle(range: (f64, f64)) -> f64 {
    (range.0 + range.1) / 2.0
}

/// Splits `areas` (sorted by bearing) into `parts` contiguous groups of near-equal size.
fn split(areas: &[AreaLayout], parts: usize) -> Vec<Vec<AreaLayout>> {
    let parts = parts.clamp(1, areas.len().max(1));
    (0..parts)
        .map(|p| areas[p * areas.len() / parts..(p + 1) * areas.len() / parts].to_vec())
        .filter(|g| !g.is_empty())
        .collect()
}

fn depot(id: &str, name: &str, at: (f64, f64), picking_capacity_cases: i32) -> Depot {
    Depot {
        name: format!("depots/{id}"),
        display_name: name.into(),
        location: Some(LatLng {
            latitude: at.0,
            longitude: at.1,
        }),
        time_zone: "Asia/Shanghai".into(),
        non_working_days: HOLIDAYS.iter().map(|d| d.to_string()).collect(),
        picking_capacity_cases,
        ..Depot::default()
    }
}

fn zone(id: String, name: String, depot: &str, areas: &[AreaLayout], day: i32, frequency: Frequency) -> Zone {
    Zone {
        name: format!("zones/{id}"),
        display_name: name,
        depot: format!("depots/{depot}"),
        area_ids: areas.iter().map(|a| a.id.clone()).collect(),
        cycle_days: CYCLE_DAYS,
        cycle_day: day % CYCLE_DAYS,
        cycle_anchor: CYCLE_ANCHOR.into(),
        frequency: frequency as i32,
        ..Zone::default()
    }
}

fn van(id: String, depot: &str, crew_size: i32) -> Vehicle {
    Vehicle {
        display_name: format!("川A-{}", id.trim_start_matches(|c: char| !c.is_ascii_digit())),
        name: format!("vehicles/{id}"),
        depot: format!("depots/{depot}"),
        capacity_cases: 45,
        crew_size,
        // 7 effective hours (DOMAIN.md).
        shift_start: Some(TimeOfDay { hours: 8, minutes: 0 }),
        shift_end: Some(TimeOfDay {
            hours: 15,
            minutes: 0,
        }),
        unavailable_days: vec![],
        update_time: None,
    }
}

/// The demo's depots, zones and vehicles.
pub fn network(shape: &NetworkShape) -> (Vec<Depot>, Vec<Zone>, Vec<Vehicle>) {
    let mut areas = area_layout(shape);
    areas.sort_by(|a, b| middle(a.bearing_deg).total_cmp(&middle(b.bearing_deg)));
    let (city, remote): (Vec<AreaLayout>, Vec<AreaLayout>) =
        areas.into_iter().partition(|a| a.ring_km.1 <= CITY_RADIUS_KM);
    let mut depots = vec![depot("chengdu", "成都市配送中心", shape.center, 1_600)];
    let mut zones = Vec::new();
    let mut vehicles = Vec::new();
    for (day, group) in split(&city, CYCLE_DAYS as usize).iter().enumerate() {
        let day = i32::try_from(day).unwrap_or(0);
        zones.push(zone(
            format!("city-{}", day + 1),
            format!("城区 {} 线", day + 1),
            "chengdu",
            group,
            day,
            Frequency::TwiceDaily,
        ));
    }
    for i in 0..CITY_VANS {
        // The downtown quarter of the fleet runs 3-person crews.
        vehicles.push(van(
            format!("cd-{:02}", i + 1),
            "chengdu",
            if i < 8 { 3 } else { 2 },
        ));
    }
    for (i, group) in split(&remote, COUNTY_DEPOTS).iter().enumerate() {
        let id = format!("county-{}", i + 1);
        let bearing = group.iter().map(|a| middle(a.bearing_deg)).sum::<f64>() / group.len() as f64;
        let km = group.iter().map(|a| middle(a.ring_km)).sum::<f64>() / group.len() as f64;
        depots.push(depot(
            &id,
            &format!("县级配送中心 {}", i + 1),
            destination(shape.center, bearing, km),
            400,
        ));
        for (day, area) in group.iter().enumerate() {
            zones.push(zone(
                format!("{id}-{}", area.id),
                format!("县级 {} · {}", i + 1, area.id),
                &id,
                std::slice::from_ref(area),
                i32::try_from(day).unwrap_or(0),
                Frequency::OnceDaily,
            ));
        }
        for v in 0..COUNTY_VANS {
            vehicles.push(van(format!("{id}-{:02}", v + 1), &id, 2));
        }
    }
    // A network without remote areas still has its county depots' ids unused: fine.
    (depots, zones, vehicles)
}

/// Seeds the network through `LogisticsService`.
pub async fn seed_logistics(
    endpoint: &str,
    secret: &str,
    shape: &NetworkShape,
) -> anyhow::Result<LogisticsReport> {
    let started = Instant::now();
    let token = seeder_token(secret, shape)?;
    let mut client = LogisticsServiceClient::with_interceptor(connect(endpoint).await?, bearer(&token)?);
    let (depots, zones, vehicles) = network(shape);
    let key =
        |kind: &str, name: &str| format!("seed-{}-logistics-{kind}-{}", shape.seed, name.replace('/', "."));
    for depot in &depots {
        client
            .upsert_depot(UpsertDepotRequest {
                request_id: key("depot", &depot.name),
                depot: Some(depot.clone()),
            })
            .await
            .map_err(|s| anyhow::anyhow!("{}: {s:?}", depot.name))?;
    }
    for zone in &zones {
        client
            .upsert_zone(UpsertZoneRequest {
                request_id: key("zone", &zone.name),
                zone: Some(zone.clone()),
            })
            .await
            .map_err(|s| anyhow::anyhow!("{}: {s:?}", zone.name))?;
    }
    for vehicle in &vehicles {
        client
            .upsert_vehicle(UpsertVehicleRequest {
                request_id: key("vehicle", &vehicle.name),
                vehicle: Some(vehicle.clone()),
            })
            .await
            .map_err(|s| anyhow::anyhow!("{}: {s:?}", vehicle.name))?;
    }
    Ok(LogisticsReport {
        depots: depots.len(),
        zones: zones.len(),
        vehicles: vehicles.len(),
        elapsed: started.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_network_has_the_city_dc_three_city_zones_and_three_county_dcs() {
        let shape = NetworkShape::default();
        let (depots, zones, vehicles) = network(&shape);
        assert_eq!(depots.len(), 4);
        let city: Vec<&Zone> = zones.iter().filter(|z| z.depot == "depots/chengdu").collect();
        assert_eq!(city.len(), 3);
        assert_eq!(
            city.iter().map(|z| z.cycle_day).collect::<Vec<_>>(),
            vec![0, 1, 2],
            "one city zone a day"
        );
        assert!(city.iter().all(|z| z.frequency == Frequency::TwiceDaily as i32));
        let city_vans = vehicles.iter().filter(|v| v.depot == "depots/chengdu");
        assert_eq!(city_vans.clone().count(), 32);
        assert!(city_vans.clone().all(|v| v.capacity_cases == 45));
        // Every area is in exactly one zone.
        let mut covered: Vec<String> = zones.iter().flat_map(|z| z.area_ids.clone()).collect();
        covered.sort();
        let mut all: Vec<String> = area_layout(&shape).into_iter().map(|a| a.id).collect();
        all.sort();
        assert_eq!(covered, all);
        // County zones run once a day from their own depot.
        assert!(
            zones
                .iter()
                .filter(|z| z.depot != "depots/chengdu")
                .all(|z| z.frequency == Frequency::OnceDaily as i32)
        );
    }
}
