//! Customer profiles: one record per retailer shared by every channel, and who owns
//! each relationship.

pub mod api;
pub mod domain;
mod events;
mod store;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use distnet_platform::cache;
use distnet_platform::clock::{self, SharedClock};
use distnet_platform::events::{EventInbox, Outbox, Relay};
use distnet_platform::server::{self, ServeSpec, ServerHandle, Shutdown};
use distnet_platform::{Settings, auth, db, retention};
use distnet_proto::customers::v1::customer_service_server::CustomerServiceServer;
use distnet_proto::events::v1::event_sink_server::EventSinkServer;
use tonic::server::NamedService as _;
use tonic::service::Routes;

/// Schema, events source and application name.
pub const SERVICE: &str = "customers";

/// Events this service consumes: standings (each customer's class decides the
/// deadlines of their cases), deliveries (logged as contacts) and orders (the
/// order facts behind the four degrees).
pub const CONSUMES: &[&str] = &[
    "StandingChanged",
    "DeliveryCompleted",
    "DeliveryFailed",
    "OrderConfirmed",
    "OrderCancelled",
];

/// Where the `customers` table's triggers notify each changed id, and `+` for rows added.
const CHANGES_CHANNEL: &str = "customers_changed";

static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Connects, migrates and serves on `listener` until `shutdown`, on the wall clock;
/// also relays this service's events to their subscribers.
pub async fn serve(
    settings: &Settings,
    listener: tokio::net::TcpListener,
    shutdown: Shutdown,
) -> anyhow::Result<ServerHandle> {
    serve_with_clock(settings, listener, shutdown, clock::system()).await
}

/// Serves with an injected clock: case deadlines and escalation follow it, so tests
/// move time instead of sleeping.
pub async fn serve_with_clock(
    settings: &Settings,
    listener: tokio::net::TcpListener,
    shutdown: Shutdown,
    clock: SharedClock,
) -> anyhow::Result<ServerHandle> {
    let pool = migrate(settings).await?;

    let outbox = Outbox::new(SERVICE, settings);
    let relay_token = auth::service_token(&settings.auth, SERVICE)?;
    Relay::new(pool.clone(), settings, relay_token)?.spawn(shutdown.subscribe());
    retention::spawn(pool.clone(), &settings.retention, shutdown.clone());
    // Overdue cases escalate by themselves: marked once each, `CaseEscalated` published.
    // With metrics exported, the sweep also counts what is overdue (`distnet.cases.overdue`).
    let (sweep_pool, sweep_outbox, sweep_clock) = (pool.clone(), outbox.clone(), clock.clone());
    let count_overdue = !settings.telemetry.otlp_endpoint.is_empty();
    server::spawn_periodic(
        "overdue cases escalated",
        Duration::from_millis(settings.customers.case_sweep_ms.max(10)),
        shutdown.clone(),
        move || {
            let (pool, outbox, now) = (sweep_pool.clone(), sweep_outbox.clone(), sweep_clock.now());
            async move {
                let escalated = api::escalate_overdue(&pool, &outbox, now).await?;
                if count_overdue {
                    let overdue = store::cases::overdue_count(&pool, now).await?;
                    distnet_platform::metrics::overdue_cases(u64::try_from(overdue).unwrap_or(0));
                }
                Ok(escalated)
            }
        },
    );

    // The four degrees, segments and flags follow their inputs: a change after a quiet
    // spell within a second, and at most every `insights_refresh_ms` while inputs
    // keep changing.
    let (refresh_pool, refresh_clock) = (pool.clone(), clock.clone());
    let time_zone = settings
        .customers
        .time_zone
        .parse()
        .unwrap_or(chrono_tz::Asia::Shanghai);
    let spacing = Duration::from_millis(settings.customers.insights_refresh_ms.max(10));
    let pace = api::Pace::new(
        settings.customers.insights_refresh_page,
        settings.customers.insights_refresh_rest,
    );
    let last_run: Arc<Mutex<Option<Instant>>> = Arc::default();
    server::spawn_periodic(
        "customer insights refreshed",
        spacing.min(Duration::from_secs(1)),
        shutdown.clone(),
        move || {
            let (pool, now, last_run) = (refresh_pool.clone(), refresh_clock.now(), last_run.clone());
            let recently = last_run
                .lock()
                .map(|last| last.is_some_and(|at| at.elapsed() < spacing))
                .unwrap_or(false);
            async move {
                let assessed = api::refresh_insights(&pool, now, time_zone, recently, pace).await?;
                if assessed > 0 {
                    // The whole network's inputs were in memory: give them back.
                    distnet_platform::memory::release_free_memory();
                    if let Ok(mut last) = last_run.lock() {
                        *last = Some(Instant::now());
                    }
                }
                Ok(assessed)
            }
        },
    );

    // Profiles by id, read through a cache that every committed change evicts, and
    // list pages, which every change empties.
    let caches = api::Caches::new(&settings.customers);
    cache::listen(
        pool.clone(),
        CHANGES_CHANNEL,
        caches.followers(),
        shutdown.subscribe(),
    );
    let api = std::sync::Arc::new(api::CustomersApi::new(
        pool.clone(),
        outbox,
        clock,
        settings.customers.clone(),
        caches,
        settings.database.read_connections,
    ));
    // Ready once the profiles are in memory.
    let warming = api.clone();
    let ready: server::Ready = Box::pin(async move { warming.warm_up().await });
    let inbox = EventInbox::new(pool, events::Consumer, api::DOMAIN);
    let limit = settings.server.max_message_bytes;
    let routes = Routes::new(api::ProfileReads::new(api, limit)).add_service(
        EventSinkServer::new(inbox)
            .max_decoding_message_size(limit)
            .max_encoding_message_size(limit),
    );
    server::serve(ServeSpec {
        domain: api::DOMAIN,
        grpc_services: &[
            CustomerServiceServer::<api::CustomersApi>::NAME,
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
}

/// Creates or upgrades this service's schema; returns a pool on it.
pub async fn migrate(settings: &Settings) -> anyhow::Result<sqlx::PgPool> {
    let pool = db::pool(&settings.database, SERVICE)?;
    db::migrate(&pool, SERVICE, &MIGRATIONS, &settings.database).await?;
    Ok(pool)
}
