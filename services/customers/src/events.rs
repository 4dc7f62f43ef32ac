//! What customers consumes: `StandingChanged` keeps each customer's class (which
//! decides the deadlines of their service cases).

use distnet_platform::ServiceError;
use distnet_platform::events::EventHandler;
use distnet_proto::accreditation::v1::CustomerClass;
use distnet_proto::events::v1::{EventEnvelope, StandingChanged};
use prost::Name as _;
use sqlx::PgConnection;

use crate::store::cases;

pub struct Consumer;

/// "SPECIAL", "KEY", "GENERAL", or "" when not classified.
pub fn class_name(class: i32) -> &'static str {
    match CustomerClass::try_from(class) {
        Ok(CustomerClass::Special) => "SPECIAL",
        Ok(CustomerClass::Key) => "KEY",
        Ok(CustomerClass::General) => "GENERAL",
        _ => "",
    }
}

#[tonic::async_trait]
impl EventHandler for Consumer {
    async fn handle(&self, tx: &mut PgConnection, event: &EventEnvelope) -> Result<(), ServiceError> {
        let Some(payload) = &event.payload else {
            return Err(ServiceError::invalid_field("events.payload", "must be set"));
        };
        if event.event_type == StandingChanged::full_name() {
            let changed: StandingChanged = payload.to_msg()?;
            if let Some(standing) = changed.standing {
                let id = standing
                    .customer
                    .strip_prefix("customers/")
                    .unwrap_or(&standing.customer);
                cases::set_customer_class(tx, id, class_name(standing.customer_class), standing.version)
                    .await?;
            }
        }
        Ok(())
    }
}
