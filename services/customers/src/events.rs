//! What customers consumes: `StandingChanged` keeps each customer's class (which
//! decides the deadlines of their service cases); `DeliveryCompleted` and
//! `DeliveryFailed` are logged as DELIVERY contacts; `OrderConfirmed` and
//! `OrderCancelled` become order facts (value, cartons, scarce cartons per cycle)
//! behind the four degrees.

use chrono::{DateTime, Utc};
use distnet_platform::ServiceError;
use distnet_platform::events::EventHandler;
use distnet_proto::accreditation::v1::CustomerClass;
use distnet_proto::allocation::v1::Order;
use distnet_proto::customers::v1::Channel;
use distnet_proto::events::v1::{
    DeliveryCompleted, DeliveryFailed, EventEnvelope, OrderCancelled, OrderConfirmed, StandingChanged,
};
use prost::Name as _;
use sqlx::PgConnection;

use crate::api::cycle_monday;
use crate::store::insights::{self, OrderFact};
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
                insights::touch(tx).await?;
            }
        } else if event.event_type == OrderConfirmed::full_name() {
            let confirmed: OrderConfirmed = payload.to_msg()?;
            if let Some(fact) = confirmed.order.as_ref().and_then(|o| order_fact(o, event)) {
                insights::record_order(tx, &fact).await?;
                insights::touch(tx).await?;
            }
        } else if event.event_type == OrderCancelled::full_name() {
            let cancelled: OrderCancelled = payload.to_msg()?;
            if let Some(fact) = cancelled.order.as_ref().and_then(|o| order_fact(o, event)) {
                insights::cancel_order(tx, &fact).await?;
                insights::touch(tx).await?;
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

/// What an order adds to its customer's facts; `None` (with a warning) for an order
/// whose name or cycle cannot be read, rather than blocking the event stream.
fn order_fact(order: &Order, event: &EventEnvelope) -> Option<OrderFact> {
    let id = order.name.strip_prefix("orders/").filter(|id| !id.is_empty());
    let week_start = cycle_monday(&order.cycle);
    let (Some(id), Some(week_start)) = (id, week_start) else {
        tracing::warn!(order = %order.name, cycle = %order.cycle, event_id = %event.event_id, "order fact not recorded: malformed order");
        return None;
    };
    let cartons: i64 = order.lines.iter().map(|l| l.cartons.max(0)).sum();
    let scarce: i64 = order
        .lines
        .iter()
        .filter(|l| l.scarce)
        .map(|l| l.cartons.max(0))
        .sum();
    Some(OrderFact {
        id: id.to_string(),
        customer_id: order
            .customer
            .strip_prefix("customers/")
            .unwrap_or(&order.customer)
            .to_string(),
        cycle: order
            .cycle
            .strip_prefix("cycles/")
            .unwrap_or(&order.cycle)
            .to_string(),
        week_start,
        orders: 1,
        value_fen: order.value.as_ref().map_or(0, |m| m.fen.max(0)),
        cartons,
        scarce_cartons: scarce,
    })
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
