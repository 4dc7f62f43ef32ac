//! A read-through cache of rows by id, kept honest by Postgres `LISTEN/NOTIFY`: a
//! trigger on the table notifies the row's id on every committed change, every
//! replica's listener evicts it, and the replica that made the change evicts it
//! itself right after its commit (so a caller reads its own writes at once).
//!
//! A payload may hold several keys separated by spaces (an [`Announcer`]'s do); each
//! is handled as if notified alone.
//!
//! A notification whose payload is [`EVERYTHING`] (`*`) empties the cache: for changes
//! that touch every cached value at once. One whose payload is [`ADDED`] (`+`) says
//! rows were added: a cache by id holds none of them and keeps what it has.
//!
//! A [`Cache::derived`] holds values made of many rows (e.g. the pages of a listing):
//! every notification on its channel empties it. One listener serves every cache
//! that follows a channel.
//!
//! A read that raced a change never fills the cache: [`Cache::ticket`] is taken
//! before the database read, and [`Cache::put`] stores only if no eviction happened
//! since. While the listener is disconnected notifications may be lost, so the cache
//! is bypassed until it has reconnected and started empty again.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::watch;

const SHARDS: usize = 16;

/// The payload that evicts every key.
pub const EVERYTHING: &str = "*";

/// The payload of rows added: only [`Cache::derived`] caches are emptied by it.
pub const ADDED: &str = "+";

/// Up to `capacity` values by id, in 16 independently locked shards.
pub struct Cache<V> {
    shards: Box<[Mutex<HashMap<String, V>>]>,
    hasher: RandomState,
    per_shard: usize,
    /// Evictions so far: a read that started before one may not fill the cache.
    epoch: AtomicU64,
    /// Listening: notifications are arriving, so cached values can be trusted.
    live: AtomicBool,
    /// Every value depends on rows of any id: any notification empties the cache.
    derived: bool,
}

/// The cache's state before a database read (see [`Cache::put`]).
#[derive(Clone, Copy, Debug)]
pub struct Ticket(u64);

impl<V: Clone> Cache<V> {
    /// An empty cache of up to `capacity` values (0 = never caches); not live until
    /// [`listen`] connects.
    pub fn new(capacity: usize) -> Arc<Self> {
        Self::with(capacity, false)
    }

    /// An empty cache of up to `capacity` values made of many rows each, emptied by
    /// every notification (a change of any row, or rows added).
    pub fn derived(capacity: usize) -> Arc<Self> {
        Self::with(capacity, true)
    }

    fn with(capacity: usize, derived: bool) -> Arc<Self> {
        Arc::new(Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
            per_shard: capacity.div_ceil(SHARDS),
            epoch: AtomicU64::new(0),
            live: AtomicBool::new(false),
            derived,
        })
    }

    fn shard(&self, key: &str) -> &Mutex<HashMap<String, V>> {
        let index = (self.hasher.hash_one(key) as usize) % SHARDS;
        &self.shards[index]
    }

    /// The cached value, if the cache is live and holds one.
    pub fn get(&self, key: &str) -> Option<V> {
        if self.per_shard == 0 || !self.live.load(Ordering::Acquire) {
            return None;
        }
        self.shard(key).lock().ok()?.get(key).cloned()
    }

    /// Take before reading the database; hand to [`Cache::put`] with what was read.
    pub fn ticket(&self) -> Ticket {
        Ticket(self.epoch.load(Ordering::SeqCst))
    }

    /// Stores `value` read under `ticket`, unless anything was evicted since (the
    /// value may predate that change) or the cache is not live.
    pub fn put(&self, ticket: Ticket, key: &str, value: V) {
        if self.per_shard == 0 || !self.live.load(Ordering::Acquire) {
            return;
        }
        let Ok(mut shard) = self.shard(key).lock() else {
            return;
        };
        // Checked under the shard lock: an eviction bumps the epoch before it takes
        // the lock, so it either stops this insert or removes what it inserted.
        if self.epoch.load(Ordering::SeqCst) != ticket.0 {
            return;
        }
        if shard.len() >= self.per_shard
            && !shard.contains_key(key)
            && let Some(victim) = shard.keys().next().cloned()
        {
            shard.remove(&victim);
        }
        shard.insert(key.to_string(), value);
    }

    /// Forgets `key` (a change was committed).
    pub fn evict(&self, key: &str) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut shard) = self.shard(key).lock() {
            shard.remove(key);
        }
    }

    /// Forgets everything.
    pub fn clear(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        for shard in &*self.shards {
            if let Ok(mut shard) = shard.lock() {
                shard.clear();
            }
        }
    }

    /// Whether values are served: it caches and its listener is connected.
    pub fn is_live(&self) -> bool {
        self.per_shard > 0 && self.live.load(Ordering::Acquire)
    }

    /// Waits until the cache is live: what is put before that is not kept. At once for
    /// a cache that does not cache.
    pub async fn until_live(&self) {
        while self.per_shard > 0 && !self.is_live() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// How many values are cached.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().map_or(0, |s| s.len())).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The longest a service spends warming its caches before it reports ready.
pub const WARM_UP_LIMIT: Duration = Duration::from_secs(60);

/// Runs `warm` — reading values into caches before the service reports ready
/// (`server::ServeSpec::ready`), its result how many it read — for at most
/// [`WARM_UP_LIMIT`] (then ready with part of them), and logs how it went as `what`.
/// A failure is logged; the values are then read on demand. Returns `false` when
/// `warm` failed (not when it ran out of time: trying again would take as long).
pub async fn warm_up(
    what: &'static str,
    warm: impl std::future::Future<Output = Result<usize, crate::ServiceError>>,
) -> bool {
    let started = std::time::Instant::now();
    match tokio::time::timeout(WARM_UP_LIMIT, warm).await {
        Ok(Ok(0)) => true,
        Ok(Ok(read)) => {
            tracing::info!(
                what,
                read,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "cache warmed"
            );
            true
        }
        Ok(Err(error)) => {
            tracing::warn!(what, %error, "warming a cache failed: reading on demand");
            false
        }
        Err(_) => {
            tracing::warn!(
                what,
                limit_s = WARM_UP_LIMIT.as_secs(),
                "warming a cache took too long: ready with part of it"
            );
            true
        }
    }
}

/// A cache kept in step with a channel's notifications by [`listen`].
pub trait Follower: Send + Sync + 'static {
    /// A committed change: `key` is the changed row's id, [`EVERYTHING`] or [`ADDED`]
    /// (one of the space-separated keys of a notification's payload).
    fn notified(&self, key: &str);
    /// Notifications are arriving (`true`), or may have been lost (`false`): the
    /// cache starts empty either way, and is bypassed while not live.
    fn set_live(&self, live: bool);
    /// Whether it caches at all (a capacity of 0 needs no listener).
    fn caches(&self) -> bool;
}

impl<V: Clone + Send + 'static> Follower for Cache<V> {
    fn notified(&self, key: &str) {
        match key {
            _ if self.derived => self.clear(),
            EVERYTHING => self.clear(),
            ADDED => {}
            key => self.evict(key),
        }
    }

    fn set_live(&self, live: bool) {
        if !live {
            self.live.store(false, Ordering::Release);
        }
        self.clear();
        if live {
            self.live.store(true, Ordering::Release);
        }
    }

    fn caches(&self) -> bool {
        self.per_shard > 0
    }
}

/// Keeps `caches` in step with the notifications on `channel` until `shutdown`, over
/// one connection; reconnects after a lost connection, with the caches bypassed
/// meanwhile. Caches of capacity 0 need no listener.
pub fn listen(
    pool: PgPool,
    channel: &'static str,
    caches: Vec<Arc<dyn Follower>>,
    mut shutdown: watch::Receiver<bool>,
) {
    if !caches.iter().any(|c| c.caches()) {
        return;
    }
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(100);
        loop {
            let connected = async {
                let mut listener = PgListener::connect_with(&pool).await?;
                listener.listen(channel).await?;
                Ok::<_, sqlx::Error>(listener)
            }
            .await;
            match connected {
                Ok(mut listener) => {
                    all_live(&caches, true);
                    backoff = Duration::from_millis(100);
                    loop {
                        tokio::select! {
                            received = listener.try_recv() => match received {
                                // One key, or several an [`Announcer`] sent together.
                                Ok(Some(notification)) => {
                                    for key in notification.payload().split(' ') {
                                        caches.iter().for_each(|c| c.notified(key));
                                    }
                                }
                                // Lost: what changed meanwhile is unknown.
                                Ok(None) | Err(_) => break,
                            },
                            _ = shutdown.changed() => {
                                all_live(&caches, false);
                                return;
                            }
                        }
                    }
                    tracing::warn!(channel, "cache listener lost its connection; bypassing the cache");
                    all_live(&caches, false);
                }
                Err(error) => {
                    all_live(&caches, false);
                    tracing::warn!(channel, %error, "cache listener cannot connect; bypassing the cache");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = shutdown.changed() => return,
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    });
}

fn all_live(caches: &[Arc<dyn Follower>], live: bool) {
    caches.iter().for_each(|c| c.set_live(live));
}

/// PostgreSQL refuses payloads of 8,000 bytes or more.
const MAX_PAYLOAD: usize = 7_900;

/// Announces committed changes on a channel from outside the transactions that made
/// them, for rows written so often that a `NOTIFY` inside the transaction would cost
/// too much: PostgreSQL holds one lock from a notifying transaction's commit until its
/// end, so every transaction that notifies commits after the one before it, WAL flush
/// included (BENCHMARKS.md). Keys announced while a notification is on its way go
/// together in the next one, separated by spaces (so keys may not hold spaces); too
/// many for one payload become [`EVERYTHING`].
///
/// Announcing after the commit leaves a window — the commit done, the notification
/// not yet sent — in which other replicas serve what they cached before; a replica
/// that dies inside it never sends it. Caches fed this way bound the age of what they
/// serve for that case.
#[derive(Clone)]
pub struct Announcer {
    sender: Option<tokio::sync::mpsc::UnboundedSender<String>>,
}

impl Announcer {
    /// Announces on `channel` over connections of `pool` until every clone of it is
    /// dropped, or for `linger` after `shutdown` (the calls still being served then
    /// commit orders too), then sends what is still pending; the task ends then (give
    /// it to [`crate::server::ServerHandle::then`], so that the process waits for it).
    pub fn spawn(
        pool: PgPool,
        channel: &'static str,
        mut shutdown: watch::Receiver<bool>,
        linger: Duration,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (sender, mut keys) = tokio::sync::mpsc::unbounded_channel::<String>();
        let task = tokio::spawn(async move {
            let mut pending = Pending::default();
            let mut until: Option<tokio::time::Instant> = None;
            loop {
                let lingered = async {
                    match until {
                        Some(until) => tokio::time::sleep_until(until).await,
                        None => std::future::pending().await,
                    }
                };
                let stopping = tokio::select! {
                    key = keys.recv() => match key {
                        Some(key) => {
                            pending.add(key);
                            false
                        }
                        None => true,
                    },
                    _ = shutdown.changed(), if until.is_none() => {
                        until = Some(tokio::time::Instant::now() + linger);
                        false
                    }
                    () = lingered => true,
                };
                while let Ok(key) = keys.try_recv() {
                    pending.add(key);
                }
                let mut backoff = Duration::from_millis(50);
                let mut failures = 0;
                while let Some(payload) = pending.payload() {
                    match sqlx::query("SELECT pg_notify($1, $2)")
                        .bind(channel)
                        .bind(&payload)
                        .execute(&pool)
                        .await
                    {
                        Ok(_) => pending.clear(),
                        Err(error) if stopping && failures >= 2 => {
                            tracing::warn!(channel, %error, "changes not announced at shutdown");
                            return;
                        }
                        Err(error) => {
                            failures += 1;
                            tracing::warn!(channel, %error, "cannot announce changes; retrying");
                            tokio::time::sleep(backoff).await;
                            backoff = (backoff * 2).min(Duration::from_secs(2));
                            while let Ok(key) = keys.try_recv() {
                                pending.add(key);
                            }
                        }
                    }
                }
                if stopping {
                    return;
                }
            }
        });
        (Self { sender: Some(sender) }, task)
    }

    /// Announces nothing: for caches used without a database (unit tests).
    pub fn off() -> Self {
        Self { sender: None }
    }

    /// Queues `key` (a changed row's key, or [`EVERYTHING`]) for the next
    /// notification. Call it after the commit.
    pub fn announce(&self, key: String) {
        if let Some(sender) = &self.sender {
            // Closed only after shutdown, when nothing is served any more.
            let _ = sender.send(key);
        }
    }
}

/// The keys of the next notification.
#[derive(Default)]
struct Pending {
    keys: std::collections::BTreeSet<String>,
    bytes: usize,
}

impl Pending {
    fn add(&mut self, key: String) {
        if self.keys.contains(EVERYTHING) || self.keys.contains(&key) {
            return;
        }
        self.bytes += key.len() + 1;
        if key == EVERYTHING || self.bytes > MAX_PAYLOAD {
            self.keys.clear();
            self.keys.insert(EVERYTHING.to_string());
        } else {
            self.keys.insert(key);
        }
    }

    fn payload(&self) -> Option<String> {
        (!self.keys.is_empty()).then(|| self.keys.iter().map(String::as_str).collect::<Vec<_>>().join(" "))
    }

    fn clear(&mut self) {
        self.keys.clear();
        self.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(capacity: usize) -> Arc<Cache<u32>> {
        let cache = Cache::new(capacity);
        cache.set_live(true);
        cache
    }

    #[test]
    fn a_read_that_raced_a_change_does_not_fill_the_cache() {
        let cache = live(100);
        let ticket = cache.ticket();
        cache.evict("c-1");
        cache.put(ticket, "c-1", 1);
        assert_eq!(cache.get("c-1"), None);
        let ticket = cache.ticket();
        cache.put(ticket, "c-1", 2);
        assert_eq!(cache.get("c-1"), Some(2));
        cache.evict("c-1");
        assert_eq!(cache.get("c-1"), None);
    }

    #[test]
    fn nothing_is_served_or_kept_while_not_listening() {
        let cache = live(100);
        cache.put(cache.ticket(), "c-1", 1);
        cache.set_live(false);
        assert_eq!(cache.get("c-1"), None);
        cache.put(cache.ticket(), "c-2", 2);
        cache.set_live(true);
        assert!(cache.is_empty(), "starts empty after reconnecting");
    }

    #[test]
    fn a_cache_by_id_evicts_what_was_notified_and_keeps_it_on_additions() {
        let cache = live(100);
        cache.put(cache.ticket(), "c-1", 1);
        cache.put(cache.ticket(), "c-2", 2);
        cache.notified("c-1");
        assert_eq!(cache.get("c-1"), None);
        cache.notified(ADDED);
        assert_eq!(cache.get("c-2"), Some(2));
        cache.notified(EVERYTHING);
        assert!(cache.is_empty());
    }

    #[test]
    fn a_derived_cache_is_emptied_by_every_notification() {
        for payload in ["c-9", ADDED, EVERYTHING] {
            let pages = Cache::derived(100);
            pages.set_live(true);
            pages.put(pages.ticket(), "area-01|first", 1);
            let ticket = pages.ticket();
            pages.notified(payload);
            assert!(pages.is_empty(), "{payload}");
            pages.put(ticket, "area-01|first", 2);
            assert!(pages.is_empty(), "a read from before {payload} is not kept");
        }
    }

    #[test]
    fn announced_keys_go_together_and_too_many_become_everything() {
        let mut pending = Pending::default();
        assert_eq!(pending.payload(), None);
        pending.add("customers/c-2".into());
        pending.add("products/SKU-1".into());
        pending.add("customers/c-2".into());
        assert_eq!(pending.payload().as_deref(), Some("customers/c-2 products/SKU-1"));
        pending.clear();
        for i in 0..1_000 {
            pending.add(format!("customers/c-{i:05}"));
        }
        assert_eq!(pending.payload().as_deref(), Some(EVERYTHING));
        pending.add("products/SKU-1".into());
        assert_eq!(pending.payload().as_deref(), Some(EVERYTHING));
        pending.clear();
        pending.add(EVERYTHING.into());
        assert_eq!(pending.payload().as_deref(), Some(EVERYTHING));
    }

    #[test]
    fn capacity_is_kept_and_zero_disables() {
        let cache = live(32);
        for i in 0..1000 {
            cache.put(cache.ticket(), &format!("c-{i}"), i);
        }
        assert!(cache.len() <= 32, "{}", cache.len());
        let off = live(0);
        off.put(off.ticket(), "c-1", 1);
        assert_eq!(off.get("c-1"), None);
    }
}
