//! `GetEntitlements`: the call center's live view of what a retailer may still order.
//!
//! An entitlement is made of what its allocation gives the retailer (committed
//! allocation, snapshot tier, tier quota, adjustment; and whose the retailer is, for
//! the caller's scope) and of what orders have done since (consumption, supply left).
//! Both are cached, each kept honest its own way:
//!
//! - The make-up changes only with commits, adjustments and a retailer's move to
//!   another area or account manager, whose transactions notify (migration
//!   `20261204000001_entitlement_changes.sql`): cached per retailer.
//! - Consumption and supply change with every order. A `NOTIFY` inside an order's
//!   transaction would make every order commit after the one before it, so the
//!   replica that took or cancelled an order forgets what it changed right after its
//!   commit (its callers read their own orders at once) and announces it to the other
//!   replicas after the commit ([`Announcer`]); they see it within milliseconds. The
//!   rarer writers — supply set, extra quota granted, rows deleted — notify from
//!   triggers (migration `20261207000001_live_entitlement_changes.sql`). A replica that
//!   dies between an order's commit and its announcement leaves the others behind by
//!   that order until the retailer's or the product's next announced change, or at
//!   most `allocation.entitlements_live_max_age_seconds` (5 minutes): older
//!   consumption and supply are read again. (An order taken through such a stale
//!   view is still checked against the rows themselves: nothing is oversold.) The
//!   same holds for consumption or confirmed supply changed, or consumption rows
//!   inserted, by hand: follow such a change with `NOTIFY allocation_live, '*'` (or a
//!   bare `NOTIFY allocation_live`).

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use distnet_platform::ServiceError;
use distnet_platform::auth::Caller;
use distnet_platform::cache::{self, Announcer, Cache, EVERYTHING, Follower, Ticket};
use distnet_proto::allocation::v1::*;

use super::{AllocationApi, check_scope, customer_id, cycle_id};
use crate::domain::access;
use crate::store::catalog;
use crate::store::runs::{self, EntitlementBase, EntitlementLive, Products};

/// The notification channel of the entitlements' make-up.
pub const CHANGES_CHANNEL: &str = "allocation_entitlements";

/// The notification channel of consumption (`customers/{id}`) and supply
/// (`products/{sku}`), several keys to a notification, or `*`.
pub const LIVE_CHANNEL: &str = "allocation_live";

/// Each retailer's [`EntitlementBase`] by customer id, for one cycle at a time per
/// retailer, and what orders change of it ([`LiveCache`]).
pub struct EntitlementCache {
    bases: Arc<Cache<Arc<EntitlementBase>>>,
    /// Retailers kept at most.
    capacity: usize,
    /// The products of the last base read: every retailer of a cycle has the same, so
    /// the entries share one list.
    products: Mutex<Option<Products>>,
    live: Arc<LiveCache>,
    emptied: Arc<Emptied>,
}

/// How often the make-up was emptied wholesale (a commit, a reconnected listener) and
/// how far the last warm-up got: [`AllocationApi::keep_warm`] reads the cycle again
/// when they differ.
#[derive(Default)]
struct Emptied {
    times: AtomicU64,
    /// `times` when the last warm-up started.
    warmed: AtomicU64,
    wake: tokio::sync::Notify,
}

impl Emptied {
    fn mark(&self) {
        self.times.fetch_add(1, AtomicOrdering::SeqCst);
        self.wake.notify_one();
    }

    fn warming(&self) {
        self.warmed.store(self.times(), AtomicOrdering::SeqCst);
    }

    fn times(&self) -> u64 {
        self.times.load(AtomicOrdering::SeqCst)
    }

    fn since_warmed(&self) -> bool {
        self.times() != self.warmed.load(AtomicOrdering::SeqCst)
    }
}

/// The make-up's [`Follower`]: the cache, and a mark for [`AllocationApi::keep_warm`]
/// whenever it is emptied wholesale.
struct BasesFollower {
    bases: Arc<Cache<Arc<EntitlementBase>>>,
    emptied: Arc<Emptied>,
}

impl Follower for BasesFollower {
    fn notified(&self, key: &str) {
        self.bases.notified(key);
        if key == EVERYTHING {
            self.emptied.mark();
        }
    }

    fn set_live(&self, live: bool) {
        self.bases.set_live(live);
        if live {
            self.emptied.mark();
        }
    }

    fn caches(&self) -> bool {
        self.bases.caches()
    }
}

/// How long [`AllocationApi::keep_warm`] waits for no further emptying — a burst of
/// commits (one a product) passing — before it reads the cycle again, and how many
/// such waits at most.
const REWARM_QUIET: Duration = Duration::from_millis(500);
const REWARM_WAITS: u32 = 10;

/// Retailers a statement of a warm-up reads (each with every committed allocation
/// of the cycle: 200 products make 50,000 rows).
const WARM_BATCH: usize = 250;

/// How long [`AllocationApi::keep_warm`] waits before it reads the cycle again after
/// a reading failed (the database restarting, a connection cut), doubling up to
/// [`REWARM_RETRY_MAX`] while it keeps failing.
const REWARM_RETRY: Duration = Duration::from_secs(1);
const REWARM_RETRY_MAX: Duration = Duration::from_secs(30);

impl EntitlementCache {
    /// Up to `capacity` retailers (0: nothing is cached), their consumption and the
    /// supplies served for up to `live_max_age` (zero: read on every call);
    /// `announcer` tells the other replicas what this one's orders changed.
    pub fn new(capacity: usize, live_max_age: Duration, announcer: Announcer) -> Arc<Self> {
        let live_capacity = if live_max_age.is_zero() { 0 } else { capacity };
        Arc::new(Self {
            bases: Cache::new(capacity),
            capacity,
            products: Mutex::new(None),
            live: Arc::new(LiveCache {
                consumption: Cache::new(live_capacity),
                supplies: Cache::new(live_capacity.min(MAX_SUPPLIES)),
                max_age: live_max_age.min(MAX_LIVE_AGE),
                announcer,
            }),
            emptied: Arc::default(),
        })
    }

    /// For [`distnet_platform::cache::listen`] on [`CHANGES_CHANNEL`].
    pub fn bases(&self) -> Arc<dyn Follower> {
        Arc::new(BasesFollower {
            bases: self.bases.clone(),
            emptied: self.emptied.clone(),
        })
    }

    /// For [`distnet_platform::cache::listen`] on [`LIVE_CHANNEL`].
    pub fn live(&self) -> Arc<LiveCache> {
        self.live.clone()
    }

    /// Forgets everything (this replica committed allocations).
    pub fn clear(&self) {
        self.bases.clear();
        self.emptied.mark();
        self.supplied();
    }

    /// This replica committed a supply or extra quota: forgets every consumption and
    /// supply (a trigger notifies the other replicas).
    pub fn supplied(&self) {
        self.live.notified(EVERYTHING);
    }

    /// Before committing an order or its cancellation of the retailer's `skus`: once
    /// the guard is dropped — after the commit, or when it failed, or when the call was
    /// dropped while committing (the commit may have happened) — the retailer's
    /// consumption and the supplies of `skus` are forgotten here and announced to the
    /// other replicas. Announcing what was rolled back costs a read, nothing more.
    pub fn ordering(&self, customer_id: &str, skus: Vec<String>) -> Ordering<'_> {
        Ordering {
            cache: self,
            customer_id: customer_id.to_string(),
            skus,
        }
    }

    fn get(&self, customer_id: &str, cycle_id: &str) -> Option<Arc<EntitlementBase>> {
        self.bases.get(customer_id).filter(|b| b.cycle_id == cycle_id)
    }

    /// Keeps a retailer's entitlements read from the database under `ticket` and
    /// `tickets`: the make-up, then the live parts aligned on its products (a retailer
    /// not known here keeps neither).
    fn keep(
        &self,
        (ticket, tickets): (Ticket, LiveTickets),
        customer: &str,
        cycle: &str,
        base: EntitlementBase,
        live: Vec<(String, EntitlementLive)>,
    ) -> (Arc<EntitlementBase>, Aligned) {
        let base = self.put(ticket, customer, base);
        let live = aligned(&base.products, live);
        if base.scope.is_some() {
            self.live.put(tickets, customer, cycle, &base.products, &live);
        }
        (base, live)
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

/// See [`EntitlementCache::ordering`].
pub struct Ordering<'a> {
    cache: &'a EntitlementCache,
    customer_id: String,
    skus: Vec<String>,
}

impl Drop for Ordering<'_> {
    fn drop(&mut self) {
        // Without a scarce line an order changes no consumption or supply.
        if self.skus.is_empty() {
            return;
        }
        let live = &self.cache.live;
        live.consumption.evict(&self.customer_id);
        live.announcer
            .announce(format!("{CUSTOMERS}{}", self.customer_id));
        for sku in &self.skus {
            live.supplies.evict(sku);
            live.announcer.announce(format!("{PRODUCTS}{sku}"));
        }
    }
}

/// The longest `live_max_age` taken: a day.
const MAX_LIVE_AGE: Duration = Duration::from_secs(86_400);

/// Supplies are per product: a cycle has tens of them.
const MAX_SUPPLIES: usize = 4_096;

/// The key prefixes on [`LIVE_CHANNEL`].
const CUSTOMERS: &str = "customers/";
const PRODUCTS: &str = "products/";

/// What orders change of entitlements: each retailer's consumption of its cycle's
/// products and each product's supply left, each dropped when announced changed and
/// not served once older than its maximum age (or, at random, up to half of it).
pub struct LiveCache {
    consumption: Arc<Cache<Arc<Consumed>>>,
    supplies: Arc<Cache<Arc<SupplyLeft>>>,
    max_age: Duration,
    announcer: Announcer,
}

/// A retailer's consumption of a cycle's products: for each it has ordered (its index
/// in the products, ascending), the quota fixed at its first order, extra and
/// consumed; the others have none yet.
struct Consumed {
    cycle_id: String,
    products: Products,
    rows: Box<[(u32, i64, i64, i64)]>,
    fresh_until: Instant,
}

/// A product's supply left in a cycle; `None`: it has no supply row.
struct SupplyLeft {
    cycle_id: String,
    remaining: Option<i64>,
    fresh_until: Instant,
}

/// The caches' state before a database read.
#[derive(Clone, Copy)]
struct LiveTickets {
    consumption: Ticket,
    supplies: Ticket,
}

/// For each of a cycle's products (in their order), its live part; `None`: no supply
/// row (the entitlement is left out).
type Aligned = Vec<Option<EntitlementLive>>;

impl LiveCache {
    fn tickets(&self) -> LiveTickets {
        LiveTickets {
            consumption: self.consumption.ticket(),
            supplies: self.supplies.ticket(),
        }
    }

    /// When what is read now stops being served: between half the maximum age and
    /// all of it, at random, so that entries read together (a cold start) are not all
    /// read again together.
    fn fresh_until(&self) -> Instant {
        let spread = u32::try_from(RandomState::new().hash_one(0u8) % 1024).unwrap_or(0);
        let half = self.max_age / 2;
        Instant::now() + half + half * spread / 1024
    }

    /// The live part of `products` for the retailer in the cycle, if all of it is
    /// cached and fresh.
    fn get(&self, customer_id: &str, cycle_id: &str, products: &Products) -> Option<Aligned> {
        let now = Instant::now();
        let consumed = self.consumption.get(customer_id).filter(|c| {
            c.cycle_id == cycle_id
                && (Arc::ptr_eq(&c.products, products) || *c.products == **products)
                && now < c.fresh_until
        })?;
        let mut rows = consumed.rows.iter().peekable();
        products
            .iter()
            .enumerate()
            .map(|(at, (_, sku))| {
                let supply = self
                    .supplies
                    .get(sku)
                    .filter(|s| s.cycle_id == cycle_id && now < s.fresh_until)?;
                let row = rows.next_if(|r| usize::try_from(r.0).is_ok_and(|i| i == at));
                Some(supply.remaining.map(|supply_remaining| EntitlementLive {
                    consumption_quota: row.map(|r| r.1),
                    extra: row.map_or(0, |r| r.2),
                    consumed: row.map_or(0, |r| r.3),
                    supply_remaining: Some(supply_remaining),
                }))
            })
            .collect()
    }

    /// Keeps what was read under `tickets`.
    fn put(
        &self,
        tickets: LiveTickets,
        customer_id: &str,
        cycle_id: &str,
        products: &Products,
        live: &Aligned,
    ) {
        if !self.consumption.caches() {
            return;
        }
        let fresh_until = self.fresh_until();
        let rows = live
            .iter()
            .enumerate()
            .filter_map(|(at, l)| {
                let l = l.as_ref()?;
                Some((u32::try_from(at).ok()?, l.consumption_quota?, l.extra, l.consumed))
            })
            .collect();
        let consumed = Consumed {
            cycle_id: cycle_id.to_string(),
            products: products.clone(),
            rows,
            fresh_until,
        };
        self.consumption
            .put(tickets.consumption, customer_id, Arc::new(consumed));
        for ((_, sku), live) in products.iter().zip(live) {
            let supply = SupplyLeft {
                cycle_id: cycle_id.to_string(),
                remaining: live.and_then(|l| l.supply_remaining),
                fresh_until,
            };
            self.supplies.put(tickets.supplies, sku, Arc::new(supply));
        }
    }
}

impl Follower for LiveCache {
    fn notified(&self, key: &str) {
        // A bare `NOTIFY allocation_live` says something changed: everything.
        if key == EVERYTHING || key.is_empty() {
            self.consumption.clear();
            self.supplies.clear();
        } else if let Some(id) = key.strip_prefix(CUSTOMERS) {
            self.consumption.evict(id);
        } else if let Some(sku) = key.strip_prefix(PRODUCTS) {
            self.supplies.evict(sku);
        }
    }

    fn set_live(&self, live: bool) {
        self.consumption.set_live(live);
        self.supplies.set_live(live);
    }

    fn caches(&self) -> bool {
        self.consumption.caches()
    }
}

/// `live`, read by sku, in the order of `products`.
fn aligned(products: &Products, mut live: Vec<(String, EntitlementLive)>) -> Aligned {
    live.sort_unstable_by(|(a, _), (b, _)| a.cmp(b));
    products
        .iter()
        .map(|(_, sku)| {
            let at = live.binary_search_by(|(s, _)| s.as_str().cmp(sku)).ok()?;
            live.get(at).map(|(_, l)| *l)
        })
        .collect()
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
        let cache = &self.entitlements;
        let (base, live) = match cache.get(customer, &cycle) {
            Some(base) => {
                check_scope(&caller, customer, scope(&base))?;
                let live = match cache.live.get(customer, &cycle, &base.products) {
                    Some(live) => live,
                    None if base.products.is_empty() => Vec::new(),
                    None => {
                        let tickets = cache.live.tickets();
                        let skus: Vec<&str> = base.products.iter().map(|(_, sku)| sku.as_str()).collect();
                        let mut conn = self.reads.acquire().await?;
                        let live = runs::live_entitlements(&mut conn, customer, &cycle, &skus).await?;
                        conn.release();
                        let live = aligned(&base.products, live);
                        cache.live.put(tickets, customer, &cycle, &base.products, &live);
                        live
                    }
                };
                (base, live)
            }
            None => {
                let (base, live) = self.read_entitlements(customer, &cycle).await?;
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

impl AllocationApi {
    /// The retailer's entitlements in the cycle read from the database, and kept.
    async fn read_entitlements(
        &self,
        customer: &str,
        cycle: &str,
    ) -> Result<(Arc<EntitlementBase>, Aligned), ServiceError> {
        let cache = &self.entitlements;
        let tickets = (cache.bases.ticket(), cache.live.tickets());
        let mut conn = self.reads.acquire().await?;
        let (base, live) = runs::retailer_entitlements(&mut conn, customer, cycle).await?;
        conn.release();
        Ok(cache.keep(tickets, customer, cycle, base, live))
    }

    /// Before the replica reports ready (health NOT_SERVING for its API until then):
    /// reads into memory the entitlements of every retailer known here, up to the
    /// cache's capacity, in the cycle the call center reads now
    /// ([`catalog::cycle_to_warm`]), so that the first calls after a start or a
    /// rollout are served from memory — a replica that started cold under 17,500
    /// calls a second queued for its first second (BENCHMARKS.md). Two reads at a
    /// time, [`WARM_BATCH`] retailers each; at most [`cache::WARM_UP_LIMIT`].
    pub async fn warm_up(&self) {
        // A failure is logged; entitlements are then read on demand.
        let _ = cache::warm_up("entitlements", self.warm_entitlements()).await;
    }

    /// After [`AllocationApi::warm_up`], until `shutdown`: whenever the make-up was
    /// emptied wholesale — a commit of allocations, tiers or snapshots on any replica
    /// (`*`), or the listener reconnected — reads the cycle into memory again, once a
    /// burst of such changes has passed ([`REWARM_QUIET`]), so that the calls after a
    /// commit are served from memory as soon as the replica can read them instead of
    /// each one going to the database on its first call. The replica stays ready
    /// meanwhile: what is not read yet is read on demand. A reading that fails is
    /// tried again after [`REWARM_RETRY`], then less and less often, until one
    /// succeeds or a further emptying starts the whole again.
    pub async fn keep_warm(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let emptied = self.entitlements.emptied.clone();
        loop {
            tokio::select! {
                () = emptied.wake.notified() => {}
                _ = shutdown.changed() => return,
            }
            let mut seen = emptied.times();
            for _ in 0..REWARM_WAITS {
                tokio::select! {
                    () = tokio::time::sleep(REWARM_QUIET) => {}
                    _ = shutdown.changed() => return,
                }
                let now = emptied.times();
                if now == seen {
                    break;
                }
                seen = now;
            }
            if !emptied.since_warmed() {
                continue;
            }
            let mut retry = REWARM_RETRY;
            loop {
                let warmed = tokio::select! {
                    warmed = cache::warm_up("entitlements again", self.warm_entitlements()) => warmed,
                    _ = shutdown.changed() => return,
                };
                // Emptied again meanwhile: the outer loop reads it all once more.
                if warmed || emptied.since_warmed() {
                    break;
                }
                tracing::info!(
                    retry_ms = retry.as_millis() as u64,
                    "reading the entitlements again later"
                );
                tokio::select! {
                    () = tokio::time::sleep(retry) => {}
                    _ = shutdown.changed() => return,
                }
                retry = (retry * 2).min(REWARM_RETRY_MAX);
            }
        }
    }

    /// See [`AllocationApi::warm_up`]: how many retailers were read.
    async fn warm_entitlements(&self) -> Result<usize, ServiceError> {
        let cache = &self.entitlements;
        if !cache.bases.caches() {
            return Ok(0);
        }
        cache.bases.until_live().await;
        cache.live.consumption.until_live().await;
        // Emptied after this is read again (a read that raced it is not kept).
        cache.emptied.warming();
        let mut conn = self.reads.acquire().await?;
        let Some(cycle) = catalog::cycle_to_warm(&mut conn, self.clock.now()).await? else {
            conn.release();
            return Ok(0);
        };
        let retailers = runs::known_retailers(&mut conn, cache.capacity).await?;
        conn.release();
        let cycle = cycle.to_string();
        tracing::info!(%cycle, retailers = retailers.len(), "warming entitlements");
        let (first, second) = retailers.split_at(retailers.len() / 2);
        let (a, b) = tokio::join!(self.read_each(first, &cycle), self.read_each(second, &cycle));
        a.and(b)?;
        Ok(retailers.len())
    }

    /// Reads the entitlements in `cycle` of each retailer but those in memory already
    /// (read by a call since the cache was emptied), [`WARM_BATCH`] retailers a
    /// statement, and keeps them as [`AllocationApi::read_entitlements`] does.
    async fn read_each(&self, retailers: &[String], cycle: &str) -> Result<(), ServiceError> {
        let cache = &self.entitlements;
        for batch in retailers.chunks(WARM_BATCH) {
            let wanted: Vec<String> = batch
                .iter()
                .filter(|customer| cache.get(customer, cycle).is_none())
                .cloned()
                .collect();
            if wanted.is_empty() {
                continue;
            }
            let tickets = (cache.bases.ticket(), cache.live.tickets());
            // From the pool: the read is a transaction (see `retailers_entitlements`).
            let mut conn = self.pool.acquire().await?;
            let read = runs::retailers_entitlements(&mut conn, &wanted, cycle).await?;
            drop(conn);
            for (customer, base, live) in read {
                cache.keep(tickets, &customer, cycle, base, live);
            }
        }
        Ok(())
    }
}

/// Whose the retailer of `base` is, as [`check_scope`] takes it.
fn scope(base: &EntitlementBase) -> Option<(&str, &str, &str)> {
    base.scope
        .as_ref()
        .map(|s| (s.customer_id.as_str(), s.area_id.as_str(), s.owner_id.as_str()))
}

/// The wire entitlements of `base` (in its order) with the `live` parts of its
/// products; products without a supply row are left out.
fn entitlements(base: &EntitlementBase, live: Aligned) -> Vec<Entitlement> {
    base.products
        .iter()
        .zip(&base.quotas)
        .zip(live)
        .filter_map(|(((allocation_id, sku), &(tier, entitled)), live)| {
            let live = live?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn live(consumption_quota: Option<i64>, consumed: i64, supply: Option<i64>) -> Option<EntitlementLive> {
        Some(EntitlementLive {
            consumption_quota,
            extra: 0,
            consumed,
            supply_remaining: supply,
        })
    }

    fn cache(max_age: Duration) -> (Arc<EntitlementCache>, Products) {
        let cache = EntitlementCache::new(100, max_age, Announcer::off());
        cache.live.set_live(true);
        let products: Products = ["a", "b", "c", "d"]
            .iter()
            .map(|sku| (format!("alloc-{sku}"), sku.to_string()))
            .collect::<Vec<_>>()
            .into();
        (cache, products)
    }

    #[test]
    fn what_was_read_is_served_back_as_read() {
        let (cache, products) = cache(Duration::from_secs(60));
        // a: ordered; b: not ordered; c: no supply row; d: ordered, supply used up.
        let read = vec![
            live(Some(5), 2, Some(40)),
            live(None, 0, Some(40)),
            None,
            live(Some(3), 3, Some(0)),
        ];
        let live = &cache.live;
        live.put(live.tickets(), "r-1", "2026-W50", &products, &read);
        assert_eq!(live.get("r-1", "2026-W50", &products), Some(read.clone()));
        assert_eq!(live.get("r-1", "2026-W51", &products), None, "another cycle");
        assert_eq!(live.get("r-2", "2026-W50", &products), None, "another retailer");
        let fewer: Products = products[..2].to_vec().into();
        assert_eq!(live.get("r-1", "2026-W50", &fewer), None, "other products");
    }

    #[test]
    fn an_announced_key_drops_what_it_names_and_a_stale_read_is_not_kept() {
        let (cache, products) = cache(Duration::from_secs(60));
        let read = vec![live(Some(5), 2, Some(10)), live(None, 0, Some(10)), None, None];
        let live = &cache.live;
        live.put(live.tickets(), "r-1", "2026-W50", &products, &read);
        live.put(live.tickets(), "r-2", "2026-W50", &products, &read);
        live.notified("customers/r-1");
        assert_eq!(live.get("r-1", "2026-W50", &products), None);
        assert!(live.get("r-2", "2026-W50", &products).is_some());
        let before = live.tickets();
        live.notified("products/c");
        assert_eq!(live.get("r-2", "2026-W50", &products), None, "its supply went");
        live.put(before, "r-2", "2026-W50", &products, &read);
        assert_eq!(
            live.get("r-2", "2026-W50", &products),
            None,
            "read before the change"
        );
        live.put(live.tickets(), "r-2", "2026-W50", &products, &read);
        assert!(live.get("r-2", "2026-W50", &products).is_some());
        drop(cache.ordering("r-2", vec!["a".into()]));
        assert_eq!(
            live.get("r-2", "2026-W50", &products),
            None,
            "this replica's order"
        );
    }

    #[test]
    fn nothing_is_served_past_its_age_or_with_no_age() {
        let (cache, products) = cache(Duration::from_millis(1));
        let read = vec![live(None, 0, Some(1)); 4];
        let live = &cache.live;
        live.put(live.tickets(), "r-1", "2026-W50", &products, &read);
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(live.get("r-1", "2026-W50", &products), None);
        let (off, products) = super::tests::cache(Duration::ZERO);
        off.live
            .put(off.live.tickets(), "r-1", "2026-W50", &products, &read);
        assert_eq!(off.live.get("r-1", "2026-W50", &products), None);
    }
}
