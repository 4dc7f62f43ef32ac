//! Customer profiles: one record per retailer shared by every channel, and who owns
//! each relationship.

pub mod api;
pub mod domain;
mod store;

use distnet_platform::events::{Outbox, Relay};
use distnet_platform::server::{self, ServeSpec, ServerHandle, Shutdown};
use distnet_platform::{Settings, auth, db};
use distnet_proto::customers::v1::customer_service_server::CustomerServiceServer;
use tonic::server::NamedService as _;
use tonic::service::Routes;

/// Schema, events source and application name.
pub const SERVICE: &str = "customers";

/// Events this service consumes (none yet: order facts and deliveries arrive with
/// issue 6).
pub const CONSUMES: &[&str] = &[];

static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Connects, migrates and serves on `listener` until `shutdown`; also relays this
/// service's events to their subscribers.
pub async fn serve(
    settings: &Settings,
    listener: tokio::net::TcpListener,
    shutdown: Shutdown,
) -> anyhow::Result<ServerHandle> {
    let pool = migrate(settings).await?;

    let outbox = Outbox::new(SERVICE, settings);
    let relay_token = auth::service_token(&settings.auth, SERVICE)?;
    Relay::new(pool.clone(), settings, relay_token)?.spawn(shutdown.subscribe());

    let api = api::CustomersApi::new(pool, outbox);
    let limit = settings.server.max_message_bytes;
    let routes = Routes::new(
        CustomerServiceServer::new(api)
            .max_decoding_message_size(limit)
            .max_encoding_message_size(limit),
    );
    server::serve(ServeSpec {
        domain: api::DOMAIN,
        grpc_services: &[CustomerServiceServer::<api::CustomersApi>::NAME],
        routes,
        listener,
        settings,
        shutdown,
    })
    .await
}

/// Creates or upgrades this service's schema; returns a pool on it.
pub async fn migrate(settings: &Settings) -> anyhow::Result<sqlx::PgPool> {
    let pool = db::pool(&settings.database, SERVICE)?;
    db::migrate(&pool, SERVICE, &MIGRATIONS, &settings.database).await?;
    Ok(pool)
}
