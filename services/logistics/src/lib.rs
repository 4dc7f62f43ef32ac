//! Logistics: turns confirmed orders into shipments with delivery slots, over a
//! network of depots, zones and vehicles; plans routes with `vrp-core`; records
//! deliveries with proof and tells allocation (and customers) how they went.

pub mod api;
mod customers;
pub mod domain;
mod events;
mod store;

use std::time::Duration;

use distnet_platform::cache::{self, Cache};
use distnet_platform::clock::{self, SharedClock};
use distnet_platform::events::{EventInbox, Outbox, Relay};
use distnet_platform::server::{self, ServeSpec, ServerHandle, Shutdown};
use distnet_platform::{Settings, auth, db, retention};
use distnet_proto::events::v1::event_sink_server::EventSinkServer;
use distnet_proto::logistics::v1::logistics_service_server::LogisticsServiceServer;
use tonic::server::NamedService as _;
use tonic::service::Routes;

/// Schema, events source and application name.
pub const SERVICE: &str = "logistics";

/// Events this service consumes.
pub const CONSUMES: &[&str] = &["OrderConfirmed", "OrderCancelled", "CustomerChanged"];

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

/// Serves with an injected clock.
pub async fn serve_with_clock(
    settings: &Settings,
    listener: tokio::net::TcpListener,
    shutdown: Shutdown,
    clock: SharedClock,
) -> anyhow::Result<ServerHandle> {
    let pool = migrate(settings).await?;
    let token = auth::service_token(&settings.auth, SERVICE)?;
    let outbox = Outbox::new(SERVICE, settings);
    Relay::new(pool.clone(), settings, token.clone())?.spawn(shutdown.subscribe());
    retention::spawn(pool.clone(), &settings.retention, shutdown.clone());
    let customers = customers::Customers::new(
        &settings.services.customers.url,
        &settings.tls,
        &token,
        Duration::from_millis(settings.server.request_timeout_ms.max(100)),
    )?;

    // Each area's zone and depot, for the shipments of confirmed orders; emptied by
    // every committed change of the network.
    let placements = Cache::new(events::PLACEMENT_ENTRIES);
    cache::listen(
        pool.clone(),
        events::NETWORK_CHANNEL,
        vec![placements.clone()],
        shutdown.subscribe(),
    );
    let api = api::LogisticsApi::new(pool.clone(), outbox, clock, placements.clone());
    let consumer = events::Consumer {
        customers,
        placements,
    };
    let inbox = EventInbox::new(pool, consumer, api::DOMAIN);
    let limit = settings.server.max_message_bytes;
    let routes = Routes::new(
        LogisticsServiceServer::new(api)
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
            LogisticsServiceServer::<api::LogisticsApi>::NAME,
            EventSinkServer::<EventInbox<events::Consumer>>::NAME,
        ],
        access: &[api::ACCESS, distnet_platform::authz::EVENT_SINK],
        routes,
        listener,
        settings,
        shutdown,
        ready: None,
    })
    .await
}
