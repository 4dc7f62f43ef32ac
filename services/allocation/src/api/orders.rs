//! Orders: the one transaction that takes an order without overselling, its
//! cancellation, and reading orders back. What a retailer may still order is in
//! `entitlements.rs`.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use distnet_platform::ServiceError;
use distnet_platform::auth::{Caller, Role};
use distnet_platform::idempotency::{self, IdempotencyKey};
use distnet_platform::pagination;
use distnet_platform::validate::Violations;
use distnet_proto::allocation::v1::*;
use distnet_proto::customers::v1::Settlement;
use distnet_proto::events::v1::{OrderCancelled, OrderConfirmed};

use super::{AllocationApi, begin_idempotent, customer_id, cycle_id, in_scope, retailer_in_scope, sku};
use crate::domain::access;
use crate::domain::cycle::SHANGHAI_OFFSET_SECONDS;
use crate::domain::order::{credit_allows, picking_cutoff};
use crate::store::orders::{self as store, LineRow, OrderFilter, OrderRow};
use crate::store::runs;

/// Lines per order; cartons per line.
const MAX_LINES: usize = 200;
const MAX_LINE_CARTONS: i64 = 100_000;
const LICENSE_ACTIVE: i16 = 1;

fn order_id(name: &str) -> Result<&str, ServiceError> {
    name.strip_prefix("orders/")
        .filter(|id| uuid::Uuid::parse_str(id).is_ok())
        .ok_or_else(|| ServiceError::invalid_field("name", "must be `orders/{id}`"))
}

/// A refusal with one `PreconditionFailure` entry per failing check; the reason is
/// the only kind, or `ORDER_REFUSED` when several apply.
fn refusal(violations: Vec<(String, String, String)>) -> ServiceError {
    let kinds: BTreeSet<&str> = violations.iter().map(|(kind, _, _)| kind.as_str()).collect();
    let reason = match kinds.iter().next() {
        Some(kind) if kinds.len() == 1 => (*kind).to_string(),
        _ => "ORDER_REFUSED".to_string(),
    };
    let summary = violations
        .iter()
        .map(|(_, subject, description)| format!("{subject}: {description}"))
        .collect::<Vec<_>>()
        .join("; ");
    let mut error = ServiceError::failed_precondition(reason, summary);
    for (kind, subject, description) in violations {
        error = error.with_precondition(kind, subject, description);
    }
    error
}

/// Rolls `tx` back, then answers `error`, a refusal: `remembering` records it on
/// another connection, where it would wait on this transaction's claim of the request
/// id until the pool got round to sending a dropped transaction's rollback.
async fn refuse<T>(
    tx: sqlx::Transaction<'_, sqlx::Postgres>,
    error: ServiceError,
) -> Result<T, ServiceError> {
    tx.rollback().await?;
    Err(error)
}

impl AllocationApi {
    /// DESIGN.md "Orders": one transaction — license active, window open, every scarce
    /// line within the retailer's remaining quota and the product's remaining supply,
    /// non-scarce lines within stock, credit; then reserve and confirm. The guards are
    /// conditional updates, so concurrent orders serialize on the rows they touch and
    /// nothing is ever oversold. Rows are taken in one order — the retailer's consumption
    /// (sku order), its credit, then the rows every retailer's orders share, stock and
    /// last supply (each in sku order), so the hottest locks are held for the shortest
    /// time — and cancellation gives them back in the same order, so no two calls
    /// deadlock.
    pub(super) async fn place_order(
        &self,
        caller: Caller,
        message: PlaceOrderRequest,
    ) -> Result<Order, ServiceError> {
        let mut v = Violations::new();
        v.request_id(&message.request_id);
        v.check(
            matches!(
                Channel::try_from(message.channel),
                Ok(Channel::CallCenter | Channel::RepApp | Channel::Online)
            ),
            "channel",
            "must be CALL_CENTER, REP_APP or ONLINE",
        );
        v.check(
            !message.lines.is_empty(),
            "lines",
            "an order needs at least one line",
        );
        v.check(message.lines.len() <= MAX_LINES, "lines", "at most 200 lines");
        let mut skus = BTreeSet::new();
        for (i, line) in message.lines.iter().enumerate() {
            match sku(&line.product, "") {
                Ok(s) => v.check(
                    skus.insert(s.to_string()),
                    &format!("lines[{i}].product"),
                    "appears twice",
                ),
                Err(_) => v.add(format!("lines[{i}].product"), "must be `products/{sku}`"),
            }
            v.check(
                (1..=MAX_LINE_CARTONS).contains(&line.cartons),
                &format!("lines[{i}].cartons"),
                "must be 1..=100,000",
            );
        }
        let customer = customer_id(&message.customer, "customer");
        let cycle = cycle_id(&message.cycle, "cycle");
        v.into_result()?;
        let (customer, cycle) = (customer?, cycle?);
        caller.require(access::ORDER_TAKERS)?;

        let mut tx = self.pool.begin().await?;
        // The claim and the retailer, window and catalog reads: one round trip.
        static CLAIM_READING: LazyLock<String> =
            LazyLock::new(|| idempotency::claim_statement(store::ORDER_CONTEXT));
        let sku_list: Vec<String> = skus.iter().cloned().collect();
        let (key, rows) = match idempotency::begin_reading(
            &mut tx,
            &caller,
            &message.request_id,
            "PlaceOrder",
            &message,
            &CLAIM_READING,
            |query| store::bind_context(query, customer, cycle, &sku_list),
        )
        .await?
        {
            Ok(fresh) => fresh,
            Err(replay) => return Ok(replay),
        };
        let context = store::order_context(&rows, cycle)?;
        let retailer = in_scope(&caller, customer, context.retailer)?;
        let (window, products) = (context.window, context.products);
        let now = self.clock.now();
        let cycle_text = cycle.to_string();

        let mut refused: Vec<(String, String, String)> = Vec::new();
        let subject = format!("customers/{customer}");
        if retailer.license_status != LICENSE_ACTIVE {
            refused.push((
                "LICENSE_NOT_ACTIVE".into(),
                subject.clone(),
                "the retailer's license is not active".into(),
            ));
        }
        if retailer.blacklisted {
            refused.push((
                "BLACKLISTED".into(),
                subject.clone(),
                "the retailer is on the credit blacklist".into(),
            ));
        }
        if !window.window.is_open(now) {
            refused.push((
                "WINDOW_CLOSED".into(),
                format!("cycles/{cycle}"),
                format!(
                    "orders are taken from {} to {}",
                    window.window.opens, window.window.closes
                ),
            ));
        }
        if !refused.is_empty() {
            return refuse(tx, refusal(refused)).await;
        }

        let order_id = uuid::Uuid::now_v7().to_string();
        let mut lines = Vec::with_capacity(message.lines.len());
        for (i, line) in message.lines.iter().enumerate() {
            let sku = line.product.strip_prefix("products/").unwrap_or_default();
            let Some(product) = products.iter().find(|p| p.sku == sku) else {
                refused.push((
                    "UNKNOWN_PRODUCT".into(),
                    format!("lines[{i}]"),
                    format!("{} is not in the catalog", line.product),
                ));
                continue;
            };
            lines.push(LineRow {
                order_id: order_id.clone(),
                line_no: i32::try_from(i + 1).unwrap_or(i32::MAX),
                sku: product.sku.clone(),
                cartons: line.cartons,
                unit_fen: product.wholesale_fen,
                scarce: product.scarce,
            });
        }
        // The retailer's rows first (quota in sku order, then credit), in one round trip.
        let mut by_sku: Vec<&LineRow> = lines.iter().collect();
        by_sku.sort_by(|a, b| a.sku.cmp(&b.sku));
        let value_fen: i64 = lines.iter().map(|l| l.unit_fen.saturating_mul(l.cartons)).sum();
        let e_settlement = retailer.settlement == Settlement::ESettlement as i16;
        let exposure_fen = if e_settlement { 0 } else { value_fen };
        let scarce: Vec<runs::QuotaLine<'_>> = by_sku
            .iter()
            .filter(|l| l.scarce)
            .map(|l| runs::QuotaLine {
                sku: &l.sku,
                cartons: l.cartons,
            })
            .collect();
        let credit = (!e_settlement).then_some((value_fen, retailer.credit_limit_fen));
        let short = runs::take_quota_and_credit(&mut tx, customer, &cycle_text, &scarce, credit).await?;
        for (sku, why) in short.quota {
            let Some(line) = by_sku.iter().find(|l| l.sku == sku) else {
                continue;
            };
            let (kind, description) = match why {
                runs::QuotaShort::NotAllocated => (
                    "NOT_ALLOCATED",
                    format!("products/{sku} has no committed allocation in cycles/{cycle}"),
                ),
                runs::QuotaShort::Beyond {
                    tier, quota, extra, ..
                } if quota + extra == 0 => (
                    "NOT_ALLOCATED",
                    format!("the retailer has no quota of products/{sku} in cycles/{cycle} (tier {tier})"),
                ),
                runs::QuotaShort::Beyond {
                    quota,
                    extra,
                    consumed,
                    ..
                } => (
                    "QUOTA_EXCEEDED",
                    format!(
                        "{} cartons asked, {} of quota {} remain",
                        line.cartons,
                        (quota + extra - consumed).max(0),
                        quota + extra
                    ),
                ),
            };
            refused.push((kind.into(), format!("lines[{}]", line.line_no - 1), description));
        }
        if let Some(outstanding) = short.credit {
            debug_assert!(!credit_allows(
                false,
                outstanding,
                value_fen,
                retailer.credit_limit_fen
            ));
            refused.push((
                "CREDIT_LIMIT_EXCEEDED".into(),
                subject.clone(),
                format!(
                    "outstanding {outstanding} fen + order {value_fen} fen exceeds the credit limit of {} fen",
                    retailer.credit_limit_fen
                ),
            ));
        }
        if !refused.is_empty() {
            return refuse(tx, refusal(refused)).await;
        }

        let order = OrderRow {
            order_id: order_id.clone(),
            customer_id: customer.to_string(),
            cycle_id: cycle_text.clone(),
            channel: i16::try_from(message.channel).unwrap_or(0),
            status: store::CONFIRMED,
            value_fen,
            exposure_fen,
            settlement: retailer.settlement,
            area_id: retailer.area_id.clone(),
            placed_by: caller.sub.clone(),
            created_at: now,
            picking_cutoff_at: picking_cutoff(now, SHANGHAI_OFFSET_SECONDS),
            cancelled_at: None,
            cancel_reason: String::new(),
            cash_collected_fen: 0,
            updated_at: now,
        };
        // The order, its event and the stored response: one round trip.
        static PLACE: LazyLock<String> =
            LazyLock::new(|| IdempotencyKey::publishing_statement(store::INSERT_ORDER));
        let reply = order.to_wire(&lines);
        let confirmed = OrderConfirmed {
            order: Some(reply.clone()),
        };
        key.complete_publishing_with(
            &mut tx,
            &reply,
            &self.outbox,
            (&reply.name, &confirmed),
            &PLACE,
            |query| store::bind_order(query, &order, &lines),
        )
        .await?;
        // Supply and stock last: the rows every retailer's orders share, held from here
        // to the commit; the whole order in one round trip.
        let short = store::take_supply_and_stock(&mut tx, &cycle_text, &by_sku).await?;
        for line in by_sku.iter().filter(|l| short.contains(&l.sku)) {
            let kind = if line.scarce {
                "SUPPLY_EXHAUSTED"
            } else {
                "OUT_OF_STOCK"
            };
            refused.push((
                kind.into(),
                format!("lines[{}]", line.line_no - 1),
                format!(
                    "not enough of products/{} left for {} cartons",
                    line.sku, line.cartons
                ),
            ));
        }
        if !refused.is_empty() {
            return refuse(tx, refusal(refused)).await;
        }
        let ordering = self
            .entitlements
            .ordering(customer, scarce.iter().map(|l| l.sku.to_string()).collect());
        tx.commit().await?;
        drop(ordering);
        let cartons = by_sku.iter().map(|l| u64::try_from(l.cartons).unwrap_or(0)).sum();
        distnet_platform::metrics::order_confirmed(&order.area_id, cartons);
        Ok(reply)
    }

    /// Before the picking cut-off: quota, supply (or stock) and credit go back, once —
    /// the order row is locked and must still be CONFIRMED.
    pub(super) async fn cancel_order(
        &self,
        caller: Caller,
        message: CancelOrderRequest,
    ) -> Result<Order, ServiceError> {
        let mut v = Violations::new();
        v.request_id(&message.request_id);
        v.text(&message.reason, "reason", 500);
        v.into_result()?;
        let id = order_id(&message.name)?;
        caller.require(access::ORDER_TAKERS)?;
        let mut tx = self.pool.begin().await?;
        let key =
            match begin_idempotent(&mut tx, &caller, &message.request_id, "CancelOrder", &message).await? {
                Ok(key) => key,
                Err(replay) => return Ok(replay),
            };
        let order = store::order(&mut tx, id, true)
            .await?
            .ok_or_else(|| ServiceError::not_found(message.name.clone()))?;
        retailer_in_scope(&mut tx, &caller, &order.customer_id).await?;
        let now = self.clock.now();
        if order.status != store::CONFIRMED {
            let error = ServiceError::failed_precondition(
                "NOT_CANCELLABLE",
                format!(
                    "{} is {:?}, not confirmed",
                    message.name,
                    OrderStatus::try_from(i32::from(order.status))
                ),
            );
            return refuse(tx, error).await;
        }
        if now >= order.picking_cutoff_at {
            let error = ServiceError::failed_precondition(
                "PICKING_STARTED",
                format!("{} went to picking at {}", message.name, order.picking_cutoff_at),
            );
            return refuse(tx, error).await;
        }
        let lines = store::lines(&mut tx, std::slice::from_ref(&order.order_id)).await?;
        store::give_back(&mut tx, &order, &lines).await?;
        let reason = if message.reason.is_empty() {
            "cancelled"
        } else {
            message.reason.as_str()
        };
        let cancelled = store::set_status(&mut tx, id, store::CANCELLED, Some((reason, now)), now).await?;
        let reply = cancelled.to_wire(&lines);
        let event = OrderCancelled {
            order: Some(reply.clone()),
        };
        key.complete_publishing(&mut tx, &reply, &self.outbox, &reply.name, &event)
            .await?;
        let scarce = lines.iter().filter(|l| l.scarce).map(|l| l.sku.clone()).collect();
        let ordering = self.entitlements.ordering(&order.customer_id, scarce);
        tx.commit().await?;
        drop(ordering);
        Ok(reply)
    }

    pub(super) async fn get_order(
        &self,
        caller: Caller,
        message: GetOrderRequest,
    ) -> Result<Order, ServiceError> {
        let id = order_id(&message.name)?;
        caller.require(access::ORDER_READERS)?;
        let mut conn = self.pool.acquire().await?;
        let order = store::order(&mut conn, id, false).await?;
        // Existence of other retailers' orders does not leak: out of scope is NOT_FOUND.
        let order = match order {
            Some(o)
                if retailer_in_scope(&mut conn, &caller, &o.customer_id)
                    .await
                    .is_ok() =>
            {
                o
            }
            _ => return Err(ServiceError::not_found(message.name.clone())),
        };
        let lines = store::lines(&mut conn, std::slice::from_ref(&order.order_id)).await?;
        Ok(order.to_wire(&lines))
    }

    pub(super) async fn list_orders(
        &self,
        caller: Caller,
        message: ListOrdersRequest,
    ) -> Result<ListOrdersResponse, ServiceError> {
        let customer = if message.customer.is_empty() {
            None
        } else {
            Some(customer_id(&message.customer, "customer")?)
        };
        let cycle = if message.cycle.is_empty() {
            None
        } else {
            Some(cycle_id(&message.cycle, "cycle")?.to_string())
        };
        let mut v = Violations::new();
        v.known_enum::<OrderStatus>(message.status, "status");
        v.into_result()?;
        let filter = format!("{}|{}|{}", message.customer, message.cycle, message.status);
        let page = pagination::read(message.page_size, &message.page_token, &filter)?;
        caller.require(access::ORDER_READERS)?;
        let mut conn = self.pool.acquire().await?;
        // A retailer lists its own orders; customer managers name the retailer (or
        // list their areas); agents list their areas.
        let areas = match caller.role {
            Role::Retailer => {
                if customer.is_none() || customer != caller.customer.as_deref() {
                    return Err(ServiceError::permission_denied(
                        "a retailer lists only its own orders",
                    ));
                }
                None
            }
            Role::CustomerManager | Role::CallCenterAgent => match customer {
                Some(c) => {
                    retailer_in_scope(&mut conn, &caller, c).await?;
                    None
                }
                None => Some(caller.areas.clone()),
            },
            _ => None,
        };
        let rows = store::list(
            &mut conn,
            &OrderFilter {
                customer_id: customer,
                cycle_id: cycle.as_deref(),
                status: (message.status != 0).then(|| i16::try_from(message.status).unwrap_or(0)),
                areas: areas.as_deref(),
            },
            &page,
        )
        .await?;
        let (rows, next_page_token) = pagination::finish(rows, &page, &filter, |o| o.order_id.clone());
        let ids: Vec<String> = rows.iter().map(|o| o.order_id.clone()).collect();
        let lines = store::lines(&mut conn, &ids).await?;
        Ok(ListOrdersResponse {
            orders: rows.iter().map(|o| o.to_wire(&lines)).collect(),
            next_page_token,
        })
    }
}
