//! What logistics consumes: `OrderConfirmed` makes a shipment (once per order) with
//! its zone, depot and delivery slot; `OrderCancelled` drops it; `CustomerChanged`
//! keeps the customer cache fresh.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use distnet_platform::ServiceError;
use distnet_platform::cache::Cache;
use distnet_platform::events::EventHandler;
use distnet_proto::events::v1::{CustomerChanged, EventEnvelope, OrderCancelled, OrderConfirmed};
use distnet_proto::logistics::v1::ShipmentStatus;
use prost::Name as _;
use sqlx::PgConnection;

use crate::customers::Customers;
use crate::domain::slot::{Calendar, CutoffSchedule, ZoneCycle, delivery_slot};
use crate::store::{self, CachedCustomer, ShipmentRow, network};

/// Where an area's orders go: the zone that covers it and the zone's depot, with what
/// a delivery slot is computed from (`slotting`: `None` when the depot is missing).
pub struct Placement {
    zone_id: String,
    depot_id: String,
    slotting: Option<(chrono_tz::Tz, CutoffSchedule, ZoneCycle, Calendar)>,
}

/// Placements by area id (`None`: no zone covers the area), emptied by every
/// committed change of zones or depots ([`NETWORK_CHANNEL`]).
pub type Placements = Arc<Cache<Option<Arc<Placement>>>>;

/// Notified by the zones' and depots' triggers (migration `network_changes`).
pub const NETWORK_CHANNEL: &str = "logistics_network";

/// Areas whose placement is kept; a network has far fewer.
pub const PLACEMENT_ENTRIES: usize = 16_384;

pub struct Consumer {
    pub customers: Customers,
    pub placements: Placements,
}

fn strip<'a>(name: &'a str, collection: &str) -> &'a str {
    name.strip_prefix(collection)
        .and_then(|rest| rest.strip_prefix('/'))
        .unwrap_or(name)
}

fn time(t: Option<prost_types::Timestamp>) -> Option<DateTime<Utc>> {
    t.as_ref().and_then(distnet_platform::wire::from_timestamp)
}

impl Consumer {
    /// The retailer from the cache, or from `BatchGetCustomers` (then cached).
    async fn customer(
        &self,
        tx: &mut PgConnection,
        customer_id: &str,
    ) -> Result<CachedCustomer, ServiceError> {
        if let Some(cached) = store::customer(tx, customer_id).await? {
            return Ok(cached);
        }
        let fetched = self
            .customers
            .batch_get(vec![format!("customers/{customer_id}")])
            .await?;
        let customer = fetched
            .first()
            .map(CachedCustomer::of)
            .ok_or_else(|| ServiceError::unavailable(format!("customers/{customer_id} not returned")))?;
        store::upsert_customer(tx, &customer, Utc::now()).await?;
        Ok(customer)
    }

    /// The area's zone and depot, from memory after the first order of the area.
    async fn placement(
        &self,
        tx: &mut PgConnection,
        area_id: &str,
    ) -> Result<Option<Arc<Placement>>, ServiceError> {
        if let Some(known) = self.placements.get(area_id) {
            return Ok(known);
        }
        let ticket = self.placements.ticket();
        let placement = match network::zone_for_area(tx, area_id).await? {
            Some(zone) => {
                let depot = network::depot(tx, &zone.depot_id).await?;
                let slotting = depot.map(|depot| {
                    let tz = depot.time_zone.parse().unwrap_or(chrono_tz::Asia::Shanghai);
                    (tz, depot.schedule(), zone.cycle(), depot.calendar())
                });
                Some(Arc::new(Placement {
                    zone_id: zone.zone_id,
                    depot_id: zone.depot_id,
                    slotting,
                }))
            }
            None => None,
        };
        self.placements.put(ticket, area_id, placement.clone());
        Ok(placement)
    }

    async fn confirmed(&self, tx: &mut PgConnection, changed: OrderConfirmed) -> Result<(), ServiceError> {
        let Some(order) = changed.order else {
            return Ok(());
        };
        let customer_id = strip(&order.customer, "customers").to_string();
        let customer = self.customer(tx, &customer_id).await?;
        let area_id = if order.area_id.is_empty() {
            customer.area_id.clone()
        } else {
            order.area_id.clone()
        };
        let confirmed_at = time(order.create_time).unwrap_or_else(Utc::now);
        let placement = self.placement(tx, &area_id).await?;
        let slot = placement.as_ref().and_then(|p| p.slotting.as_ref()).and_then(
            |(tz, schedule, cycle, calendar)| delivery_slot(confirmed_at, tz, schedule, cycle, calendar).ok(),
        );
        let status = if slot.is_some() {
            ShipmentStatus::Pending
        } else {
            ShipmentStatus::Unzoned
        };
        let row = ShipmentRow {
            shipment_id: uuid::Uuid::now_v7().to_string(),
            order_id: strip(&order.name, "orders").to_string(),
            customer_id,
            area_id,
            zone_id: placement.as_ref().map(|p| p.zone_id.clone()),
            depot_id: placement.as_ref().map(|p| p.depot_id.clone()),
            cartons: order.lines.iter().map(|l| l.cartons).sum(),
            value_fen: order.value.map_or(0, |v| v.fen),
            slot_date: slot.map(|s| s.date),
            slot_half: slot.map_or(0, |s| store::half_code(s.half)),
            status: status as i16,
            confirmed_at,
            updated_at: Utc::now(),
            plan_id: None,
            attempts: 0,
            cartons_delivered: 0,
        };
        store::insert_shipment(tx, &row).await
    }
}

#[tonic::async_trait]
impl EventHandler for Consumer {
    async fn handle(&self, tx: &mut PgConnection, event: &EventEnvelope) -> Result<(), ServiceError> {
        let Some(payload) = &event.payload else {
            return Err(ServiceError::invalid_field("events.payload", "must be set"));
        };
        if event.event_type == OrderConfirmed::full_name() {
            self.confirmed(tx, payload.to_msg()?).await
        } else if event.event_type == OrderCancelled::full_name() {
            let cancelled: OrderCancelled = payload.to_msg()?;
            match cancelled.order {
                Some(order) => store::cancel_order(tx, strip(&order.name, "orders"), Utc::now()).await,
                None => Ok(()),
            }
        } else if event.event_type == CustomerChanged::full_name() {
            let changed: CustomerChanged = payload.to_msg()?;
            match changed.customer {
                Some(customer) => {
                    store::upsert_customer(tx, &CachedCustomer::of(&customer), Utc::now()).await
                }
                None => Ok(()),
            }
        } else {
            Ok(())
        }
    }
}
