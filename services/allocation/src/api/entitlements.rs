//! `GetEntitlements`: the call center's live view of what a retailer may still order.
//!
//! An entitlement is made of what its allocation gives the retailer (committed
//! allocation, snapshot tier, tier quota, adjustment; and whose the retailer is, for
//! the caller's scope) and of what orders have done since (consumption, supply left).
//! The first part changes only with commits, adjustments and a retailer's move to
//! another area or account manager, which notify (migration
//! `20261204000001_entitlement_changes.sql`), so it is cached per retailer; the second
//! changes with every order and is read on every call, by primary key — an order is
//! seen by the very next read, on any replica.

use std::sync::{Arc, Mutex};

use distnet_platform::ServiceError;
use distnet_platform::auth::Caller;
use distnet_platform::cache::{Cache, Ticket};
use distnet_proto::allocation::v1::*;

use super::{AllocationApi, check_scope, customer_id, cycle_id};
use crate::domain::access;
use crate::store::runs::{self, EntitlementBase, EntitlementLive, Products};

/// The notification channel of the entitlements' make-up.
pub const CHANGES_CHANNEL: &str = "allocation_entitlements";

/// Each retailer's [`EntitlementBase`] by customer id, for one cycle at a time per
/// retailer.
pub struct EntitlementCache {
    bases: Arc<Cache<Arc<EntitlementBase>>>,
    /// The products of the last base read: every retailer of a cycle has the same, so
    /// the entries share one list.
    products: Mutex<Option<Products>>,
}

impl EntitlementCache {
    /// Up to `capacity` retailers (0: nothing is cached).
    pub fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            bases: Cache::new(capacity),
            products: Mutex::new(None),
        })
    }

    /// For [`distnet_platform::cache::listen`].
    pub fn bases(&self) -> Arc<Cache<Arc<EntitlementBase>>> {
        self.bases.clone()
    }

    /// Forgets everything (this replica committed allocations).
    pub fn clear(&self) {
        self.bases.clear();
    }

    fn get(&self, customer_id: &str, cycle_id: &str) -> Option<Arc<EntitlementBase>> {
        self.bases.get(customer_id).filter(|b| b.cycle_id == cycle_id)
    }

    /// Keeps `base` (read under `ticket`) with its product list shared.
    fn put(&self, ticket: Ticket, customer_id: &str, mut base: EntitlementBase) -> Arc<EntitlementBase> {
        if let Ok(mut last) = self.products.lock() {
            match &*last {
                Some(shared) if **shared == *base.products => base.products = shared.clone(),
                _ => *last = Some(base.products.clone()),
            }
        }
        let base = Arc::new(base);
        // A retailer not known here is not kept: its row's arrival does not notify.
        if base.scope.is_some() {
            self.bases.put(ticket, customer_id, base.clone());
        }
        base
    }
}

impl AllocationApi {
    pub(super) async fn get_entitlements(
        &self,
        caller: Caller,
        message: GetEntitlementsRequest,
    ) -> Result<Entitlements, ServiceError> {
        let customer = customer_id(&message.customer, "customer")?;
        let cycle = cycle_id(&message.cycle, "cycle")?.to_string();
        caller.require(access::ORDER_READERS)?;
        let (base, live) = match self.entitlements.get(customer, &cycle) {
            Some(base) => {
                check_scope(&caller, customer, scope(&base))?;
                let skus: Vec<&str> = base.products.iter().map(|(_, sku)| sku.as_str()).collect();
                let live = if skus.is_empty() {
                    Vec::new()
                } else {
                    let mut conn = self.reads.acquire().await?;
                    let live = runs::live_entitlements(&mut conn, customer, &cycle, &skus).await?;
                    conn.release();
                    live
                };
                (base, live)
            }
            None => {
                let ticket = self.entitlements.bases.ticket();
                let mut conn = self.reads.acquire().await?;
                let (base, live) = runs::retailer_entitlements(&mut conn, customer, &cycle).await?;
                conn.release();
                let base = self.entitlements.put(ticket, customer, base);
                check_scope(&caller, customer, scope(&base))?;
                (base, live)
            }
        };
        Ok(Entitlements {
            customer: message.customer.clone(),
            cycle: format!("cycles/{cycle}"),
            entitlements: entitlements(&base, live),
        })
    }
}

/// Whose the retailer of `base` is, as [`check_scope`] takes it.
fn scope(base: &EntitlementBase) -> Option<(&str, &str, &str)> {
    base.scope
        .as_ref()
        .map(|s| (s.customer_id.as_str(), s.area_id.as_str(), s.owner_id.as_str()))
}

/// The wire entitlements of `base` (in its order) with the `live` parts of its
/// products, by sku; products without a supply row are left out.
fn entitlements(base: &EntitlementBase, mut live: Vec<(String, EntitlementLive)>) -> Vec<Entitlement> {
    live.sort_unstable_by(|(a, _), (b, _)| a.cmp(b));
    base.products
        .iter()
        .zip(&base.quotas)
        .filter_map(|((allocation_id, sku), &(tier, entitled))| {
            let at = live.binary_search_by(|(s, _)| s.as_str().cmp(sku)).ok()?;
            let (_, live) = live.get(at)?;
            let quota = live.quota(entitled);
            Some(Entitlement {
                product: format!("products/{sku}"),
                allocation: format!("allocations/{allocation_id}"),
                tier,
                quota,
                extra: live.extra,
                consumed: live.consumed,
                remaining: (quota + live.extra - live.consumed).max(0),
                supply_remaining: live.supply_remaining?,
            })
        })
        .collect()
}
