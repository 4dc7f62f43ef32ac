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

/// Connections kept beside the pool for reads made of whole statements outside a
/// transaction, handed back without a round trip.
///
/// sqlx's pool pings every connection as it goes back (a `Sync` and its
/// `ReadyForQuery`, in a task of its own), to flush the `ROLLBACK` of a transaction
/// dropped mid-way and to find dead connections; it has no switch for it. For a
/// read that ran to its end there is nothing to flush, and that ping is a second
/// round trip on every call (+16–38 % `GetEntitlements` when skipped, BENCHMARKS.md).
/// Here a connection goes back only through [`ReadConnection::release`], called
/// after the statements finished; one dropped without it (an error, a cancelled
/// call) is closed with it. Connections are taken from the pool and detached from it;
/// at most `capacity` are open (in use or idle) beside the pool's own, and a read
/// beyond waits for one, up to the pool's acquire timeout. One idle for
/// [`RECHECK_IDLE_AFTER`] is pinged before use, as the pool does.
///
/// Never use one for a transaction: release a connection only when every statement
/// on it has finished.
pub struct ReadConnections {
    pool: PgPool,
    idle: std::sync::Mutex<Vec<(sqlx::PgConnection, std::time::Instant)>>,
    /// A permit per connection open, in use or idle.
    open: tokio::sync::Semaphore,
}

impl ReadConnections {
    /// Up to `capacity` connections (at least one).
    pub fn new(pool: PgPool, capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            pool,
            idle: std::sync::Mutex::new(Vec::with_capacity(capacity)),
            open: tokio::sync::Semaphore::new(capacity),
        }
    }

    /// The most recently released connection, or one taken from the pool; waits while
    /// `capacity` are in use.
    pub async fn acquire(&self) -> Result<ReadConnection<'_>, sqlx::Error> {
        let permit = tokio::time::timeout(self.pool.options().get_acquire_timeout(), self.open.acquire())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?
            .map_err(|_| sqlx::Error::PoolClosed)?;
        while let Some((mut conn, released)) = self.pop() {
            if released.elapsed() < RECHECK_IDLE_AFTER || conn.ping().await.is_ok() {
                return Ok(ReadConnection {
                    owner: self,
                    conn,
                    _permit: permit,
                });
            }
        }
        let conn = self.pool.acquire().await?.detach();
        Ok(ReadConnection {
            owner: self,
            conn,
            _permit: permit,
        })
    }

    /// Connections kept now.
    pub fn idle(&self) -> usize {
        self.idle.lock().map_or(0, |idle| idle.len())
    }

    fn pop(&self) -> Option<(sqlx::PgConnection, std::time::Instant)> {
        self.idle.lock().ok()?.pop()
    }

    /// Keeps `conn` for the next read, and closes those idle past the pool's idle
    /// timeout.
    fn keep(&self, conn: sqlx::PgConnection) {
        let mut closing = Vec::new();
        match self.idle.lock() {
            Ok(mut idle) => {
                // The oldest are first: they go when the pool would close its own.
                if let Some(timeout) = self.pool.options().get_idle_timeout() {
                    let expired = idle.iter().take_while(|(_, at)| at.elapsed() >= timeout).count();
                    closing.extend(idle.drain(..expired).map(|(conn, _)| conn));
                }
                idle.push((conn, std::time::Instant::now()));
            }
            Err(_) => closing.push(conn),
        }
        closing.into_iter().for_each(close);
    }
}

/// Closes `conn` politely when a runtime is there to do it; otherwise drops it.
fn close(conn: sqlx::PgConnection) {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async move {
            let _ = conn.close().await;
        });
    }
}

/// A connection of [`ReadConnections`]; use it as a `&mut PgConnection`. Dropped
/// without [`ReadConnection::release`], its connection is closed.
pub struct ReadConnection<'a> {
    owner: &'a ReadConnections,
    conn: sqlx::PgConnection,
    /// Given back after the connection is kept or closed.
    _permit: tokio::sync::SemaphorePermit<'a>,
}

impl ReadConnection<'_> {
    /// Hands the connection back for the next read. Call it only once every statement
    /// made on it has finished.
    pub fn release(self) {
        self.owner.keep(self.conn);
    }
}

impl std::ops::Deref for ReadConnection<'_> {
    type Target = sqlx::PgConnection;

    fn deref(&self) -> &sqlx::PgConnection {
        &self.conn
    }
}

impl std::ops::DerefMut for ReadConnection<'_> {
    fn deref_mut(&mut self) -> &mut sqlx::PgConnection {
        &mut self.conn
    }
}
