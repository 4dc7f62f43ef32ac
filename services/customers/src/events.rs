//! What customers consumes: `StandingChanged` keeps each customer's class (which
//! decides the deadlines of their service cases); `DeliveryCompleted` and
//! `DeliveryFailed` are logged as DELIVERY contacts.

use chrono::{DateTime, Utc};
use distnet_platform::ServiceError;
use distnet_platform::events::EventHandler;
use distnet_proto::accreditation::v1::CustomerClass;
use distnet_proto::customers::v1::Channel;
use distnet_proto::events::v1::{DeliveryCompleted, DeliveryFailed, EventEnvelope, StandingChanged};
use prost::Name as _;
use sqlx::PgConnection;

use crate::store::{cases, interactions, time_of};

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
        } else if event.event_type == DeliveryCompleted::full_name() {
            let done: DeliveryCompleted = payload.to_msg()?;
            let outcome = if done.partial { "PARTIAL" } else { "DELIVERED" };
            let cash = done.cash_collected.as_ref().map_or(0, |m| m.fen);
            let notes = format!(
                "{} cartons delivered; cash collected {}.{:02} yuan",
                done.cartons_delivered,
                cash / 100,
                cash % 100
            );
            let time = time_of(&done.delivered_time).unwrap_or(Utc::now());
            log_delivery(tx, event, (&done.customer, &done.order), time, outcome, &notes).await?;
        } else if event.event_type == DeliveryFailed::full_name() {
            let failed: DeliveryFailed = payload.to_msg()?;
            let notes = if failed.rescheduled_date.is_empty() {
                "attempts exhausted: a dispatcher decides".to_string()
            } else {
                format!(
                    "rescheduled to {} {}",
                    failed.rescheduled_date,
                    failed.rescheduled_half.to_lowercase()
                )
            };
            let outcome = format!("FAILED_{}", failed.reason);
            let time = time_of(&failed.failed_time).unwrap_or(Utc::now());
            log_delivery(
                tx,
                event,
                (&failed.customer, &failed.order),
                time,
                &outcome,
                &notes,
            )
            .await?;
        }
        Ok(())
    }
}

/// Logs a delivery attempt as a DELIVERY contact by "logistics" (once per event: the
/// inbox drops redeliveries). An unknown customer is skipped with a warning rather
/// than blocking the event stream.
async fn log_delivery(
    tx: &mut PgConnection,
    event: &EventEnvelope,
    (customer, order): (&str, &str),
    time: DateTime<Utc>,
    outcome: &str,
    notes: &str,
) -> Result<(), ServiceError> {
    let customer_id = customer.strip_prefix("customers/").unwrap_or(customer);
    let Some((area_id, _, _)) = interactions::customer_place(tx, customer_id).await? else {
        tracing::warn!(customer, event_id = %event.event_id, "delivery for an unknown customer not logged");
        return Ok(());
    };
    let id = format!("dl-{}", event.event_id);
    interactions::insert(
        tx,
        &interactions::NewInteraction {
            id: &id,
            customer_id,
            area_id: &area_id,
            channel: Channel::Delivery as i32,
            actor: "logistics",
            actor_role: "service",
            time,
            outcome,
            notes,
            check_in: None,
            tasks: &[],
            order_id: order.strip_prefix("orders/").unwrap_or(order),
        },
    )
    .await?;
    Ok(())
}
