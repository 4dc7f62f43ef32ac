//! Retailer accreditation: who may sell (licenses), how each retailer is rated
//! (scoring and classes), which tier it sits in for rationing, and its credit.

pub mod api;
pub mod domain;
mod events;
mod store;

use std::time::Duration;

use distnet_platform::clock::{self, SharedClock};
use distnet_platform::events::{EventInbox, Outbox, Relay};
use distnet_platform::server::{self, ServeSpec, ServerHandle, Shutdown};
use distnet_platform::{Settings, auth, db, retention};
use distnet_proto::accreditation::v1::accreditation_service_server::AccreditationServiceServer;
use distnet_proto::events::v1::event_sink_server::EventSinkServer;
use tonic::server::NamedService as _;
use tonic::service::Routes;

/// Schema, events source and application name.
pub const SERVICE: &str = "accreditation";

/// Events this service consumes.
pub const CONSUMES: &[&str] = &["CustomerChanged"];

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

/// Serves with an injected clock: license expiry follows it, so tests move time
/// instead of sleeping.
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
    // Licenses expire by themselves at the end of their term: the sweep persists that
    // (and lifted suspensions) and publishes the standing changes.
    let (sweep_pool, sweep_outbox, sweep_clock) = (pool.clone(), outbox.clone(), clock.clone());
    server::spawn_periodic(
        "licenses settled",
        Duration::from_millis(settings.accreditation.expiry_sweep_ms.max(10)),
        shutdown.clone(),
        move || {
            let (pool, outbox, now) = (sweep_pool.clone(), sweep_outbox.clone(), sweep_clock.now());
            async move { api::settle_due_licenses(&pool, &outbox, now).await }
        },
    );

    let api = api::AccreditationApi::new(pool.clone(), outbox, clock, settings.accreditation.clone());
    let inbox = EventInbox::new(pool, events::Consumer, api::DOMAIN);
    let limit = settings.server.max_message_bytes;
    let routes = Routes::new(
        AccreditationServiceServer::new(api)
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
            AccreditationServiceServer::<api::AccreditationApi>::NAME,
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
