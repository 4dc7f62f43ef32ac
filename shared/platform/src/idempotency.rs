//! Request ids make retries safe: phones on flaky networks resend. The first
//! request with an id runs and its response is stored in the same transaction as
//! its effects; a retry with the same id gets the stored response and changes
//! nothing; the same id with a different request is `INVALID_ARGUMENT`.
//!
//! Two concurrent requests with one id are serialized by the primary key: the
//! second waits on the first's uncommitted claim and then replays its response.
//!
//! A business refusal (`FAILED_PRECONDITION` without `RetryInfo`) rolls the work
//! back; [`remember_refusal`] then records it, so a retry gets the same refusal
//! rather than a second evaluation against a world that has moved on.
//!
//! Every mutating RPC claims its request id, so the claim is also where the audit
//! log is written: who (subject and role), what (the method and a digest of the
//! request), when, the request id and the trace id, in the same transaction as the
//! change, so a change is never without its record and a rolled-back one leaves
//! none. Replays add no record: they change nothing.

use std::collections::HashMap;
use std::sync::LazyLock;

use prost::Message;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row as _};

use crate::error::{PreconditionViolation, ServiceError};
use crate::events::{EventBatch, Outbox};

/// A statement being bound.
pub type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

/// The stored form of a remembered refusal.
#[derive(Serialize, Deserialize)]
struct Refusal {
    reason: String,
    message: String,
    preconditions: Vec<PreconditionViolation>,
    metadata: HashMap<String, String>,
}

impl Refusal {
    fn into_error(self) -> ServiceError {
        let mut error = ServiceError::failed_precondition(self.reason, self.message);
        error.details.precondition_violations = self.preconditions;
        error.details.metadata = self.metadata;
        error
    }
}

/// Whether `error` is a refusal worth remembering: a business outcome, not a
/// transient condition the client should retry for real.
pub fn is_refusal(error: &ServiceError) -> bool {
    error.code == tonic::Code::FailedPrecondition && error.details.retry_after.is_none()
}

/// Records that the request `request_id` of `caller` was refused with `error` (after
/// its transaction rolled back). Only [`is_refusal`] errors are kept; if the id was
/// meanwhile completed by a concurrent retry, that outcome stands.
pub async fn remember_refusal(
    pool: &PgPool,
    caller: &str,
    request_id: &str,
    method: &'static str,
    request: &impl Message,
    error: &ServiceError,
) -> Result<(), ServiceError> {
    if !is_refusal(error) {
        return Ok(());
    }
    let refusal = Refusal {
        reason: error.reason.clone(),
        message: error.message.clone(),
        preconditions: error.details.precondition_violations.clone(),
        metadata: error.details.metadata.clone(),
    };
    let body = serde_json::to_value(&refusal).map_err(ServiceError::internal)?;
    sqlx::query(
        "INSERT INTO idempotency_keys (caller, request_id, method, request_hash, refusal)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (caller, request_id) DO NOTHING",
    )
    .bind(caller)
    .bind(request_id)
    .bind(method)
    .bind(fingerprint(method, request))
    .bind(body)
    .execute(pool)
    .await?;
    Ok(())
}

/// What the caller should do with a request id.
pub enum Claim<R> {
    /// First time: do the work, then [`IdempotencyKey::complete`] in the same transaction.
    Fresh(IdempotencyKey),
    /// Seen before: return this response.
    Replay(R),
}

pub struct IdempotencyKey {
    caller: String,
    request_id: String,
}

fn fingerprint(method: &str, request: &impl Message) -> Vec<u8> {
    let mut hasher = Sha256::new();
    hasher.update(method.as_bytes());
    hasher.update([0]);
    hasher.update(request.encode_to_vec());
    hasher.finalize().to_vec()
}

/// The claim and, when it is new, its audit record (`$1`–`$7`), then `tail`.
const CLAIM: &str = "WITH claimed AS (
         INSERT INTO idempotency_keys (caller, request_id, method, request_hash)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (caller, request_id) DO NOTHING
         RETURNING 1
     ), audited AS (
         INSERT INTO audit_log (actor, role, method, request_id, trace_id, request_hash)
         SELECT $5, $6, $3, $2, $7, $4 FROM claimed
     )";

/// Looks the request id up inside `tx` (and writes the audit record of a fresh
/// request). `method` is the RPC's name.
pub async fn claim<R: Message + Default>(
    tx: &mut PgConnection,
    who: &crate::auth::Caller,
    request_id: &str,
    method: &'static str,
    request: &impl Message,
) -> Result<Claim<R>, ServiceError> {
    static SQL: LazyLock<String> =
        LazyLock::new(|| format!("{CLAIM} SELECT count(*) AS claimed FROM claimed"));
    Ok(
        match begin_reading(tx, who, request_id, method, request, &SQL, |query| query).await? {
            Ok((key, _)) => Claim::Fresh(key),
            Err(response) => Claim::Replay(response),
        },
    )
}

/// The statement of [`begin_reading`]: the claim, then `read` — a `SELECT` whose
/// parameters start at `$8` and which returns at least one row. Build it once (a
/// `LazyLock`).
pub fn claim_statement(read: &str) -> String {
    format!("{CLAIM} SELECT (SELECT count(*) FROM claimed) AS claimed, r.* FROM ({read}) AS r")
}

/// [`begin`] with the request's first read in the same round trip: `statement`
/// comes from [`claim_statement`] and `bind` binds the read's parameters (`$8` on).
/// The read's rows come back with a fresh claim; they are not read on a replay. They
/// are as of the statement's start: when a concurrent duplicate made the claim wait
/// and then rolled back, as of before that wait.
pub async fn begin_reading<'q, R: Message + Default>(
    tx: &mut PgConnection,
    who: &crate::auth::Caller,
    request_id: &str,
    method: &'static str,
    request: &impl Message,
    statement: &'q str,
    bind: impl FnOnce(PgQuery<'q>) -> PgQuery<'q>,
) -> Result<Result<(IdempotencyKey, Vec<PgRow>), R>, ServiceError> {
    let scope = who.idempotency_scope();
    let caller = scope.as_str();
    let request_hash = fingerprint(method, request);
    // Claiming first makes a concurrent duplicate wait here on our uncommitted row
    // until we commit (then it replays) or roll back (then it runs).
    let rows = bind(
        sqlx::query(statement)
            .bind(caller.to_string())
            .bind(request_id.to_string())
            .bind(method)
            .bind(request_hash.clone())
            .bind(who.sub.clone())
            .bind(who.role.as_str())
            .bind(who.trace_id.clone()),
    )
    .fetch_all(&mut *tx)
    .await?;
    let inserted: i64 = match rows.first() {
        Some(row) => row.try_get("claimed")?,
        None => return Err(ServiceError::internal("the claim's read returned no row")),
    };
    if inserted == 1 {
        let key = IdempotencyKey {
            caller: caller.to_string(),
            request_id: request_id.to_string(),
        };
        return Ok(Ok((key, rows)));
    }
    type Stored = (String, Vec<u8>, Option<Vec<u8>>, Option<serde_json::Value>);
    let (stored_method, stored_hash, response, refusal): Stored = sqlx::query_as(
        "SELECT method, request_hash, response, refusal FROM idempotency_keys
         WHERE caller = $1 AND request_id = $2",
    )
    .bind(caller)
    .bind(request_id)
    .fetch_one(&mut *tx)
    .await?;
    if stored_method != method || stored_hash != request_hash {
        return Err(
            ServiceError::invalid_field("request_id", "was already used for a different request")
                .with_metadata("request_id", request_id),
        );
    }
    if let Some(refusal) = refusal {
        let refusal: Refusal = serde_json::from_value(refusal).map_err(ServiceError::internal)?;
        return Err(refusal.into_error());
    }
    match response {
        Some(response) => Ok(Err(R::decode(response.as_slice())?)),
        None => Err(ServiceError::new(
            tonic::Code::Aborted,
            "REQUEST_IN_FLIGHT",
            "the same request id is being processed; retry",
        )
        .with_retry_after(std::time::Duration::from_millis(100))),
    }
}

/// [`claim`] for an authenticated caller: `Ok(key)` to do the work (then
/// [`IdempotencyKey::complete`]), `Err(response)` to replay a stored response.
pub async fn begin<R: Message + Default>(
    tx: &mut PgConnection,
    caller: &crate::auth::Caller,
    request_id: &str,
    method: &'static str,
    request: &impl Message,
) -> Result<Result<IdempotencyKey, R>, ServiceError> {
    Ok(match claim(tx, caller, request_id, method, request).await? {
        Claim::Fresh(key) => Ok(key),
        Claim::Replay(response) => Err(response),
    })
}

/// Stores a fresh request's response (`$1` caller, `$2` request id, `$3` response).
const STORE: &str = "UPDATE idempotency_keys SET response = $3 WHERE caller = $1 AND request_id = $2";

impl IdempotencyKey {
    /// Stores the response with the transaction's effects.
    pub async fn complete(self, tx: &mut PgConnection, response: &impl Message) -> Result<(), ServiceError> {
        self.store(tx, response, sqlx::query(STORE), |query| query).await
    }

    /// The statement of [`Self::complete_with`]: `writes` are the caller's own
    /// data-modifying `WITH` clauses (`name AS (…), …`), whose parameters start at
    /// `$4`. Build it once (a `LazyLock`).
    pub fn completing_statement(writes: &str) -> String {
        format!("WITH {writes} {STORE}")
    }

    /// [`Self::complete`] with the caller's own writes in the same round trip, for a
    /// response known before they run: `statement` comes from
    /// [`Self::completing_statement`], and `bind` binds the writes' parameters (`$4`
    /// on) in order.
    pub async fn complete_with<'q>(
        self,
        tx: &mut PgConnection,
        response: &impl Message,
        statement: &'q str,
        bind: impl FnOnce(PgQuery<'q>) -> PgQuery<'q>,
    ) -> Result<(), ServiceError> {
        self.store(tx, response, sqlx::query(statement), bind).await
    }

    /// [`Outbox::publish`] then [`Self::complete`], in one round trip.
    pub async fn complete_publishing<E: prost::Name>(
        self,
        tx: &mut PgConnection,
        response: &impl Message,
        outbox: &Outbox,
        aggregate: &str,
        event: &E,
    ) -> Result<(), ServiceError> {
        static WITH_EVENTS: LazyLock<String> = LazyLock::new(|| IdempotencyKey::publishing_statement(""));
        let batch = outbox.batch([(aggregate, event)])?;
        let query = match batch {
            Some(batch) => batch.bind(sqlx::query(WITH_EVENTS.as_str())),
            None => sqlx::query(STORE),
        };
        self.store(tx, response, query, |query| query).await
    }

    /// The statement of [`Self::complete_publishing_with`]: `writes` are the caller's
    /// own data-modifying `WITH` clauses (`name AS (…), …`), whose parameters start at
    /// `$9`. Build it once (a `LazyLock`).
    pub fn publishing_statement(writes: &str) -> String {
        let writes = if writes.is_empty() {
            String::new()
        } else {
            format!(", {writes}")
        };
        EventBatch::statement(&format!(
            "{writes} UPDATE idempotency_keys SET response = $8 WHERE caller = $6 AND request_id = $7"
        ))
    }

    /// [`Self::complete_publishing`] with the caller's own writes in the same round
    /// trip: `statement` comes from [`Self::publishing_statement`], and `bind` binds
    /// the writes' parameters (`$9` on) in order.
    pub async fn complete_publishing_with<'q, E: prost::Name>(
        self,
        tx: &mut PgConnection,
        response: &impl Message,
        outbox: &'q Outbox,
        (aggregate, event): (&str, &E),
        statement: &'q str,
        bind: impl FnOnce(PgQuery<'q>) -> PgQuery<'q>,
    ) -> Result<(), ServiceError> {
        let Some(batch) = outbox.batch([(aggregate, event)])? else {
            return Err(ServiceError::internal("a batch of one event came out empty"));
        };
        self.store(tx, response, batch.bind(sqlx::query(statement)), bind)
            .await
    }

    /// Runs `query` — its parameters before the key's bound — with the key's caller,
    /// request id and response, then `bind`'s.
    async fn store<'q>(
        self,
        tx: &mut PgConnection,
        response: &impl Message,
        query: PgQuery<'q>,
        bind: impl FnOnce(PgQuery<'q>) -> PgQuery<'q>,
    ) -> Result<(), ServiceError> {
        bind(
            query
                .bind(self.caller)
                .bind(self.request_id)
                .bind(response.encode_to_vec()),
        )
        .execute(&mut *tx)
        .await?;
        Ok(())
    }
}
