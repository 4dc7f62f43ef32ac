//! The database pool and migrations. Each service owns one Postgres schema: its
//! connections set `search_path` to it, so its tables (and its own
//! `_sqlx_migrations` table) live there and it cannot read another service's.

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection as _, PgPool};

use crate::settings::DatabaseSettings;

/// A pooled connection idle at least this long is pinged before it is handed out.
const RECHECK_IDLE_AFTER: Duration = Duration::from_secs(1);

static PLATFORM_MIGRATIONS: Migrator = sqlx::migrate!("./migrations");

/// A lazily connecting pool for `schema`: the service starts even when the
/// database is briefly away, and calls fail `UNAVAILABLE` until it returns.
pub fn pool(settings: &DatabaseSettings, schema: &str) -> anyhow::Result<PgPool> {
    anyhow::ensure!(
        !settings.url.expose().is_empty(),
        "database.url is empty (set DATABASE_URL)"
    );
    anyhow::ensure!(
        schema.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
        "schema name `{schema}` must be lower-case letters and `_`"
    );
    let options = PgConnectOptions::from_str(settings.url.expose())?
        .application_name(&format!("distnet-{schema}"))
        .options([("search_path", schema)]);
    Ok(PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .min_connections(0)
        .acquire_timeout(Duration::from_millis(settings.acquire_timeout_ms))
        .idle_timeout(Some(Duration::from_secs(settings.idle_timeout_s)))
        // sqlx pings every connection as it comes back to the pool; pinging again on
        // every acquire costs each request a round trip. A connection that has sat
        // idle for a while (the database may have restarted meanwhile) is still
        // checked before use.
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= RECHECK_IDLE_AFTER {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
        .connect_lazy_with(options))
}

/// Creates the schema, then runs the platform's and the service's migrations
/// into it. Waits up to `startup_wait_s` for the database to come up.
pub async fn migrate(
    pool: &PgPool,
    schema: &str,
    service_migrations: &Migrator,
    settings: &DatabaseSettings,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(settings.startup_wait_s);
    loop {
        match sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
            .execute(pool)
            .await
        {
            Ok(_) => break,
            Err(error) if tokio::time::Instant::now() < deadline => {
                tracing::warn!(%error, schema, "waiting for the database");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(error) => return Err(error.into()),
        }
    }
    run(&PLATFORM_MIGRATIONS, pool).await?;
    run(service_migrations, pool).await?;
    Ok(())
}

/// Both migration sets share the schema's `_sqlx_migrations` table with disjoint
/// versions, so each ignores the other's rows.
async fn run(migrations: &Migrator, pool: &PgPool) -> anyhow::Result<()> {
    let migrator = Migrator {
        migrations: migrations.migrations.clone(),
        ignore_missing: true,
        ..Migrator::DEFAULT
    };
    migrator.run(pool).await?;
    Ok(())
}
