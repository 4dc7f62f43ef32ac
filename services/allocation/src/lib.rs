//! Allocation: rations scarce supply across retailer tiers every week and takes
//! orders against those rations without ever overselling.

pub mod api;
pub mod domain;
mod events;
mod store;

use std::time::Duration;

use distnet_platform::cache;
use distnet_platform::clock::{self, SharedClock};
use distnet_platform::events::{EventInbox, Outbox, Relay};
use distnet_platform::server::{self, ServeSpec, ServerHandle, Shutdown};
use distnet_platform::{Settings, auth, db, retention};
use distnet_proto::allocation::v1::allocation_service_server::AllocationServiceServer;
use distnet_proto::events::v1::event_sink_server::EventSinkServer;
use tonic::server::NamedService as _;
use tonic::service::Routes;

/// Schema, events source and application name.
pub const SERVICE: &str = "allocation";

/// Events this service consumes.
pub const CONSUMES: &[&str] = &[
    "StandingChanged",
    "CustomerChanged",
    "DeliveryCompleted",
    "DeliveryFailed",
];

static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Creates or upgrades this service's schema; returns a pool on it.
pub async fn migrate(settings: &Settings) -> anyhow::Result<sqlx::PgPool> {
    let pool = db::pool(&settings.database, SERVICE)?;
    db::migrate(&pool, SERVICE, &MIGRATIONS, &settings.database).await?;
    Ok(pool)
}

/// Serves on `listener` until `shutdown`, on the wall clock.
pub async fn serve(
    settings: &Settings,
    listener: tokio::net::TcpListener,
    shutdown: Shutdown,
) -> anyhow::Result<ServerHandle> {
    serve_with_clock(settings, listener, shutdown, clock::system()).await
}

/// Serves with an injected clock: order windows, releases and picking cut-offs
/// follow it, so tests move time instead of sleeping.
pub async fn serve_with_clock(
    settings: &Settings,
    listener: tokio::net::TcpListener,
    shutdown: Shutdown,
    clock: SharedClock,
) -> anyhow::Result<ServerHandle> {
    let pool = migrate(settings).await?;
    let outbox = Outbox::new(SERVICE, settings);
    let token = auth::service_token(&settings.auth, SERVICE)?;
    Relay::new(pool.clone(), settings, token)?.spawn(shutdown.subscribe());
    retention::spawn(pool.clone(), &settings.retention, shutdown.clone());

    if !settings.telemetry.otlp_endpoint.is_empty() {
        spawn_utilization_gauge(settings, pool.clone(), clock.clone(), shutdown.clone());
    }

    // Each retailer's entitlements' make-up, evicted by every committed change of it;
    // its consumption and the supplies, by what every replica announces of its orders
    // (announced whether or not this replica caches: the others may).
    let linger = Duration::from_millis(
        settings
            .server
            .shutdown_grace_ms
            .saturating_add(settings.server.drain_deadline_ms),
    );
    let (announcer, announcing) =
        cache::Announcer::spawn(pool.clone(), api::ENTITLEMENT_LIVE, shutdown.subscribe(), linger);
    let entitlements = api::EntitlementCache::new(
        settings.allocation.entitlements_cache_entries,
        Duration::from_secs(settings.allocation.entitlements_live_max_age_seconds),
        announcer,
    );
    cache::listen(
        pool.clone(),
        api::ENTITLEMENT_CHANGES,
        vec![entitlements.bases()],
        shutdown.subscribe(),
    );
    cache::listen(
        pool.clone(),
        api::ENTITLEMENT_LIVE,
        vec![entitlements.live()],
        shutdown.subscribe(),
    );
    let api = std::sync::Arc::new(api::AllocationApi::new(
        pool.clone(),
        outbox,
        clock,
        entitlements,
        settings.database.read_connections,
    ));
    // Ready once the entitlements the call center reads now are in memory; kept there
    // after every commit from then on.
    let warming = api.clone();
    let keeping = shutdown.subscribe();
    let ready: server::Ready = Box::pin(async move {
        warming.warm_up().await;
        tokio::spawn(warming.keep_warm(keeping));
    });
    let inbox = EventInbox::new(pool, events::Consumer, api::DOMAIN);
    let limit = settings.server.max_message_bytes;
    let routes = Routes::new(
        AllocationServiceServer::from_arc(api)
            .max_decoding_message_size(limit)
            .max_encoding_message_size(limit),
    )
    .add_service(
        EventSinkServer::new(inbox)
            .max_decoding_message_size(limit)
            .max_encoding_message_size(limit),
    );
    server::serve(ServeSpec {
        domain: api::DOMAIN,
        grpc_services: &[
            AllocationServiceServer::<api::AllocationApi>::NAME,
            EventSinkServer::<EventInbox<events::Consumer>>::NAME,
        ],
        access: &[api::ACCESS, distnet_platform::authz::EVENT_SINK],
        routes,
        listener,
        settings,
        shutdown,
        ready: Some(ready),
    })
    .await
    .map(|server| server.then(announcing))
}

/// Samples every product's quota utilization in this cycle and the next, once per
/// metrics export interval (`distnet.allocation.quota_utilization`).
fn spawn_utilization_gauge(settings: &Settings, pool: sqlx::PgPool, clock: SharedClock, shutdown: Shutdown) {
    let every = std::time::Duration::from_millis(settings.telemetry.metrics_interval_ms.max(100));
    server::spawn_periodic("quota utilization sampled", every, shutdown, move || {
        let (pool, now) = (pool.clone(), clock.now());
        async move {
            let this = domain::cycle::cycle_at(now);
            let cycles: Vec<String> = [Some(this), this.next()]
                .into_iter()
                .flatten()
                .map(|c| c.to_string())
                .collect();
            for (sku, cycle, confirmed, allocatable) in store::orders::supply_use(&pool, &cycles).await? {
                let ratio = confirmed as f64 / allocatable.max(1) as f64;
                distnet_platform::metrics::quota_utilization(&sku, &cycle, ratio);
            }
            Ok(0)
        }
    });
}
