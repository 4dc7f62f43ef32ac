//! What accreditation consumes: `CustomerChanged` keeps the customer replica
//! (area, owner, location, format) fresh. What it publishes, `StandingChanged`, is
//! written by the API and the expiry sweep.

use distnet_platform::ServiceError;
use distnet_platform::events::EventHandler;
use distnet_proto::events::v1::{CustomerChanged, EventEnvelope};
use prost::Name as _;
use sqlx::PgConnection;

use crate::store::{self, CachedCustomer};

pub struct Consumer;

#[tonic::async_trait]
impl EventHandler for Consumer {
    async fn handle(&self, tx: &mut PgConnection, event: &EventEnvelope) -> Result<(), ServiceError> {
        if event.event_type != CustomerChanged::full_name() {
            // Not subscribed to anything else; ignoring keeps redelivery harmless.
            return Ok(());
        }
        let Some(payload) = &event.payload else {
            return Err(ServiceError::invalid_field("events.payload", "must be set"));
        };
        let changed: CustomerChanged = payload.to_msg()?;
        let Some(customer) = changed.customer else {
            return Ok(());
        };
        let location = customer.location.unwrap_or_default();
        let cached = CachedCustomer {
            customer_id: customer
                .name
                .strip_prefix("customers/")
                .unwrap_or_default()
                .to_string(),
            area_id: customer.area_id,
            owner_id: customer.owner_id,
            display_name: customer.display_name,
            format: i16::try_from(customer.format).unwrap_or(0),
            floor_area_sqm: customer.floor_area_sqm,
            latitude: location.latitude,
            longitude: location.longitude,
        };
        store::upsert_customer(tx, &cached).await
    }
}
