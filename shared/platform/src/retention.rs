//! Retention of the platform tables: events every subscriber has received, consumed
//! event ids and remembered requests are deleted once older than their
//! [`RetentionSettings`], so the tables (and the indexes every mutating request
//! writes) stay the size of their window instead of growing for ever.
//!
//! Each statement deletes at most `batch` rows it could lock at once (`SKIP LOCKED`:
//! replicas sweeping side by side, or a request touching a row, are never waited
//! for), in its own short transaction.

use std::time::Duration;

use sqlx::PgPool;

use crate::ServiceError;
use crate::server::{self, Shutdown};
use crate::settings::RetentionSettings;

/// Events older than `$1` days, below every pending delivery. A pending delivery is
/// inserted with its event, so an event below the oldest pending one has reached
/// every subscriber; events only ever get higher ids.
const OUTBOX: &str = "DELETE FROM outbox WHERE ctid = ANY(ARRAY(
     SELECT ctid FROM outbox
      WHERE created_at < now() - make_interval(days => $1)
        AND id < coalesce((SELECT min(outbox_id) FROM outbox_pending), 9223372036854775807)
      LIMIT $2 FOR UPDATE SKIP LOCKED))";

/// Consumed event ids older than `$1` days.
const INBOX: &str = "DELETE FROM inbox WHERE ctid = ANY(ARRAY(
     SELECT ctid FROM inbox WHERE processed_at < now() - make_interval(days => $1)
      LIMIT $2 FOR UPDATE SKIP LOCKED))";

/// Request ids (with their responses or refusals) older than `$1` days.
const IDEMPOTENCY: &str = "DELETE FROM idempotency_keys WHERE ctid = ANY(ARRAY(
     SELECT ctid FROM idempotency_keys WHERE created_at < now() - make_interval(days => $1)
      LIMIT $2 FOR UPDATE SKIP LOCKED))";

/// Sweeps `pool`'s schema now and then every `settings.sweep_ms` until `shutdown`.
pub fn spawn(pool: PgPool, settings: &RetentionSettings, shutdown: Shutdown) {
    let settings = settings.clone();
    server::spawn_periodic(
        "expired platform rows deleted",
        Duration::from_millis(settings.sweep_ms.max(1_000)),
        shutdown,
        move || {
            let (pool, settings) = (pool.clone(), settings.clone());
            async move { sweep(&pool, &settings).await }
        },
    );
}

/// Deletes every expired row of the schema's outbox, inbox and remembered requests,
/// a batch at a time. Returns how many rows were deleted.
pub async fn sweep(pool: &PgPool, settings: &RetentionSettings) -> Result<usize, ServiceError> {
    let mut deleted = 0;
    for (statement, days) in [
        (OUTBOX, settings.outbox_days),
        (INBOX, settings.inbox_days),
        (IDEMPOTENCY, settings.idempotency_days),
    ] {
        if days == 0 {
            continue;
        }
        let days = i32::try_from(days).unwrap_or(i32::MAX);
        let batch = settings.batch.max(1);
        loop {
            let done = sqlx::query(statement)
                .bind(days)
                .bind(batch)
                .execute(pool)
                .await?
                .rows_affected();
            deleted += usize::try_from(done).unwrap_or(usize::MAX);
            if i64::try_from(done).unwrap_or(i64::MAX) < batch {
                break;
            }
        }
    }
    Ok(deleted)
}
