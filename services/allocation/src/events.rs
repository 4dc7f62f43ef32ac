//! What allocation consumes: `StandingChanged` and `CustomerChanged` keep the
//! retailer replica (so placing an order never calls another service), and
//! `DeliveryCompleted` / `DeliveryFailed` move orders on and lower credit exposure by
//! the cash collected. What it publishes (`OrderConfirmed`, `OrderCancelled`) is
//! written by the API.

use distnet_platform::ServiceError;
use distnet_platform::events::EventHandler;
use distnet_proto::events::v1::{
    CustomerChanged, DeliveryCompleted, DeliveryFailed, EventEnvelope, StandingChanged,
};
use prost::Name as _;
use sqlx::PgConnection;

use crate::store::{self, StandingFacts, orders};

pub struct Consumer;

fn strip<'a>(name: &'a str, collection: &str) -> &'a str {
    name.strip_prefix(collection)
        .and_then(|rest| rest.strip_prefix('/'))
        .unwrap_or(name)
}

#[tonic::async_trait]
impl EventHandler for Consumer {
    async fn handle(&self, tx: &mut PgConnection, event: &EventEnvelope) -> Result<(), ServiceError> {
        let Some(payload) = &event.payload else {
            return Err(ServiceError::invalid_field("events.payload", "must be set"));
        };
        let now = chrono::Utc::now();
        if event.event_type == StandingChanged::full_name() {
            let Some(s) = payload.to_msg::<StandingChanged>()?.standing else {
                return Ok(());
            };
            let facts = StandingFacts {
                customer_id: strip(&s.customer, "customers").to_string(),
                area_id: s.area_id,
                license_status: i16::try_from(s.license_status).unwrap_or(0),
                tier: s.tier,
                grading_version: s.grading_version,
                customer_class: i16::try_from(s.customer_class).unwrap_or(0),
                credit_limit_fen: s.credit_limit.map_or(0, |m| m.fen),
                blacklisted: s.blacklisted,
                version: s.version,
            };
            store::upsert_standing(tx, &facts).await
        } else if event.event_type == CustomerChanged::full_name() {
            let Some(c) = payload.to_msg::<CustomerChanged>()?.customer else {
                return Ok(());
            };
            store::upsert_profile(
                tx,
                strip(&c.name, "customers"),
                &c.area_id,
                &c.owner_id,
                i16::try_from(c.format).unwrap_or(0),
                i16::try_from(c.settlement).unwrap_or(0),
            )
            .await
        } else if event.event_type == DeliveryCompleted::full_name() {
            let d: DeliveryCompleted = payload.to_msg()?;
            let cash = d.cash_collected.map_or(0, |m| m.fen).max(0);
            let id = strip(&d.order, "orders");
            if let Some((customer, reduce)) =
                orders::record_delivery(tx, id, orders::DELIVERED, cash, now).await?
                && reduce > 0
            {
                orders::reduce_exposure(tx, &customer, reduce).await?;
            }
            Ok(())
        } else if event.event_type == DeliveryFailed::full_name() {
            let d: DeliveryFailed = payload.to_msg()?;
            orders::record_delivery(tx, strip(&d.order, "orders"), orders::DELIVERY_FAILED, 0, now).await?;
            Ok(())
        } else {
            // Not subscribed to anything else; ignoring keeps redelivery harmless.
            Ok(())
        }
    }
}
