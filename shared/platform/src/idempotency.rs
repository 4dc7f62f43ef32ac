//! Request ids make retries safe: phones on flaky networks resend. The first
//! request with an id runs and its response is stored in the same transaction as
//! its effects; a retry with the same id gets the stored response and changes
//! nothing; the same id with a different request is `INVALID_ARGUMENT`.
//!
//! Two concurrent requests with one id are serialized by the primary key: the
//! second waits on the first's uncommitted claim and then replays its response.

use prost::Message;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;

use crate::error::ServiceError;

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

/// Looks the request id up inside `tx`. `method` is the RPC's name.
pub async fn claim<R: Message + Default>(
    tx: &mut PgConnection,
    caller: &str,
    request_id: &str,
    method: &'static str,
    request: &impl Message,
) -> Result<Claim<R>, ServiceError> {
    let request_hash = fingerprint(method, request);
    // Claiming first makes a concurrent duplicate wait here on our uncommitted row
    // until we commit (then it replays) or roll back (then it runs).
    let inserted = sqlx::query(
        "INSERT INTO idempotency_keys (caller, request_id, method, request_hash)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (caller, request_id) DO NOTHING",
    )
    .bind(caller)
    .bind(request_id)
    .bind(method)
    .bind(&request_hash)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if inserted == 1 {
        return Ok(Claim::Fresh(IdempotencyKey {
            caller: caller.to_string(),
            request_id: request_id.to_string(),
        }));
    }
    let (stored_method, stored_hash, response): (String, Vec<u8>, Option<Vec<u8>>) = sqlx::query_as(
        "SELECT method, request_hash, response FROM idempotency_keys
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
    match response {
        Some(response) => Ok(Claim::Replay(R::decode(response.as_slice())?)),
        None => Err(ServiceError::new(
            tonic::Code::Aborted,
            "REQUEST_IN_FLIGHT",
            "the same request id is being processed; retry",
        )
        .with_retry_after(std::time::Duration::from_millis(100))),
    }
}

impl IdempotencyKey {
    /// Stores the response with the transaction's effects.
    pub async fn complete(self, tx: &mut PgConnection, response: &impl Message) -> Result<(), ServiceError> {
        sqlx::query("UPDATE idempotency_keys SET response = $3 WHERE caller = $1 AND request_id = $2")
            .bind(&self.caller)
            .bind(&self.request_id)
            .bind(response.encode_to_vec())
            .execute(&mut *tx)
            .await?;
        Ok(())
    }
}
