//! Events between services: written to the `outbox` in the same transaction as the
//! change, relayed by a background task to each subscriber's `EventSink/Deliver`
//! (at least once, in order per subscriber and so per aggregate, exponential
//! backoff), and recorded in the consumer's `inbox` so a redelivery is a no-op.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use distnet_proto::events::v1::event_sink_client::EventSinkClient;
use distnet_proto::events::v1::event_sink_server::EventSink;
use distnet_proto::events::v1::{DeliverRequest, DeliverResponse, EventEnvelope};
use prost::Message;
use sqlx::{PgConnection, PgPool};
use tokio::sync::watch;
use tonic::transport::Channel;
use tracing::Instrument as _;

use crate::auth::{self, Role};
use crate::error::ServiceError;
use crate::metrics;
use crate::settings::Settings;
use crate::telemetry;

/// Writes events into the caller's transaction.
#[derive(Clone, Debug)]
pub struct Outbox {
    source: &'static str,
    /// Short event name → subscribers.
    subscriptions: Arc<HashMap<String, Vec<String>>>,
}

impl Outbox {
    pub fn new(source: &'static str, settings: &Settings) -> Self {
        Self {
            source,
            subscriptions: Arc::new(settings.events.subscriptions.clone().into_iter().collect()),
        }
    }

    /// Adds `event` about `aggregate` (a resource name) to the transaction. It is
    /// delivered only if the transaction commits.
    pub async fn publish<E: prost::Name>(
        &self,
        tx: &mut PgConnection,
        aggregate: &str,
        event: &E,
    ) -> Result<(), ServiceError> {
        self.publish_all(tx, [(aggregate, event)]).await
    }

    /// Adds many events of one type, in the order given, with a pending delivery per
    /// subscriber: one round trip.
    pub async fn publish_all<'a, E: prost::Name + 'a>(
        &self,
        tx: &mut PgConnection,
        events: impl IntoIterator<Item = (&'a str, &'a E)>,
    ) -> Result<(), ServiceError> {
        static SQL: LazyLock<String> = LazyLock::new(|| EventBatch::statement("SELECT 1"));
        let Some(batch) = self.batch(events)? else {
            return Ok(());
        };
        batch.bind(sqlx::query(&SQL)).execute(&mut *tx).await?;
        Ok(())
    }

    /// The outbox rows of `events`, or `None` when there are none.
    pub(crate) fn batch<'a, E: prost::Name + 'a>(
        &self,
        events: impl IntoIterator<Item = (&'a str, &'a E)>,
    ) -> Result<Option<EventBatch<'_>>, ServiceError> {
        let occur_time = prost_types::Timestamp::from(std::time::SystemTime::now());
        let trace_context = telemetry::current_trace_context();
        let (mut event_ids, mut aggregates, mut envelopes) = (Vec::new(), Vec::new(), Vec::new());
        for (aggregate, event) in events {
            let event_id = uuid::Uuid::now_v7();
            let envelope = EventEnvelope {
                event_id: event_id.to_string(),
                event_type: E::full_name(),
                source: self.source.to_string(),
                aggregate: aggregate.to_string(),
                occur_time: Some(occur_time),
                trace_context: trace_context.clone(),
                payload: Some(prost_types::Any::from_msg(event).map_err(ServiceError::internal)?),
            };
            event_ids.push(event_id);
            aggregates.push(aggregate.to_string());
            envelopes.push(envelope.encode_to_vec());
        }
        if event_ids.is_empty() {
            return Ok(None);
        }
        let subscribers = self.subscriptions.get(E::NAME).map_or(&[][..], Vec::as_slice);
        Ok(Some(EventBatch {
            event_ids,
            aggregates,
            envelopes,
            name: E::NAME,
            subscribers,
        }))
    }
}

/// Outbox rows ready to insert, bound as `$1`–`$5` of [`EventBatch::statement`].
pub(crate) struct EventBatch<'a> {
    event_ids: Vec<uuid::Uuid>,
    aggregates: Vec<String>,
    envelopes: Vec<Vec<u8>>,
    name: &'static str,
    subscribers: &'a [String],
}

impl<'a> EventBatch<'a> {
    /// Inserts the events and a pending delivery per subscriber, then runs `tail`
    /// (a statement whose own parameters start at `$6`) in the same round trip.
    /// Built once per statement (callers keep it in a `LazyLock`).
    pub(crate) fn statement(tail: &str) -> String {
        format!(
            "WITH added AS (
                 INSERT INTO outbox (event_id, event_type, aggregate, envelope)
                 SELECT e, $4, a, v FROM unnest($1::uuid[], $2::text[], $3::bytea[]) WITH ORDINALITY AS t(e, a, v, n)
                 ORDER BY n
                 RETURNING id
             ), pending AS (
                 INSERT INTO outbox_pending (subscriber, outbox_id)
                 SELECT s, added.id FROM unnest($5::text[]) AS s CROSS JOIN added
             )
             {tail}"
        )
    }

    pub(crate) fn bind<'q>(
        self,
        query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>
    where
        'a: 'q,
    {
        query
            .bind(self.event_ids)
            .bind(self.aggregates)
            .bind(self.envelopes)
            .bind(self.name)
            .bind(self.subscribers)
    }
}

/// Relays pending events to subscribers until shutdown.
pub struct Relay {
    pool: PgPool,
    /// Subscriber name → its EventSink.
    sinks: Vec<(String, EventSinkClient<Channel>)>,
    token: String,
    poll: Duration,
    batch: i64,
    max_backoff: Duration,
}

impl Relay {
    /// `token` is a `service` token the subscribers accept.
    pub fn new(pool: PgPool, settings: &Settings, token: String) -> anyhow::Result<Self> {
        let mut subscribers: Vec<String> = settings
            .events
            .subscriptions
            .values()
            .flatten()
            .cloned()
            .collect();
        subscribers.sort();
        subscribers.dedup();
        let mut sinks = Vec::new();
        for subscriber in subscribers {
            let Some(endpoint) = settings.services.get(&subscriber) else {
                anyhow::bail!("events.subscriptions names unknown service `{subscriber}`");
            };
            let channel =
                crate::tls::endpoint(&endpoint.url, &settings.tls, Duration::from_secs(10))?.connect_lazy();
            sinks.push((subscriber, EventSinkClient::new(channel)));
        }
        Ok(Self {
            pool,
            sinks,
            token,
            poll: Duration::from_millis(settings.events.relay_poll_ms.max(10)),
            batch: settings.events.relay_batch.max(1),
            max_backoff: Duration::from_millis(settings.events.relay_max_backoff_ms.max(100)),
        })
    }

    pub fn spawn(self, mut shutdown: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            if self.sinks.is_empty() {
                return;
            }
            loop {
                // Subscribers side by side: one that is slow to answer (up to the
                // call timeout) holds back only its own queue.
                let relay = &self;
                let passes = relay.sinks.iter().map(|(subscriber, client)| async move {
                    (subscriber, relay.relay_once(subscriber, client.clone()).await)
                });
                // A full batch means more is waiting: go again without sleeping.
                let mut backlog = false;
                for (subscriber, pass) in futures::future::join_all(passes).await {
                    match pass {
                        Ok(delivered) => backlog |= i64::try_from(delivered).unwrap_or(0) >= self.batch,
                        Err(error) => tracing::debug!(%subscriber, %error, "relay pass failed"),
                    }
                }
                if backlog && !*shutdown.borrow() {
                    continue;
                }
                tokio::select! {
                    _ = tokio::time::sleep(self.poll) => {}
                    _ = shutdown.changed() => return,
                }
            }
        })
    }

    /// Delivers one batch to one subscriber. Returns how many events were delivered.
    pub async fn relay_once(
        &self,
        subscriber: &str,
        mut client: EventSinkClient<Channel>,
    ) -> Result<usize, ServiceError> {
        let mut tx = self.pool.begin().await?;
        // One relay per (schema, subscriber) at a time across replicas keeps the
        // order; advisory locks are database-wide, hence the schema in the key.
        let (locked, service): (bool, String) = sqlx::query_as(
            "SELECT pg_try_advisory_xact_lock(hashtext('outbox:' || current_schema() || ':' || $1)),
                    current_schema()::text",
        )
        .bind(subscriber)
        .fetch_one(&mut *tx)
        .await?;
        if !locked {
            tx.rollback().await?;
            return Ok(0);
        }
        let rows: Vec<(i64, Vec<u8>, i32, bool, f64)> = sqlx::query_as(
            "SELECT p.outbox_id, o.envelope, p.attempts, p.next_attempt_at <= now(),
                    GREATEST(EXTRACT(EPOCH FROM now() - o.created_at), 0)::float8
             FROM outbox_pending p JOIN outbox o ON o.id = p.outbox_id
             WHERE p.subscriber = $1
             ORDER BY p.outbox_id
             LIMIT $2",
        )
        .bind(subscriber)
        .bind(self.batch)
        .fetch_all(&mut *tx)
        .await?;
        // The head of the queue decides: later events wait behind it.
        // Release the lock now rather than when the dropped connection is reset.
        let Some(&(head_id, _, head_attempts, head_due, head_age)) = rows.first() else {
            tx.rollback().await?;
            metrics::outbox(&service, subscriber, Duration::ZERO, 0);
            return Ok(0);
        };
        let head_lag = Duration::from_secs_f64(head_age.clamp(0.0, 1e9));
        if !head_due {
            tx.rollback().await?;
            metrics::outbox(&service, subscriber, head_lag, 0);
            return Ok(0);
        }
        let mut events = Vec::with_capacity(rows.len());
        for (_, bytes, _, _, _) in &rows {
            events.push(EventEnvelope::decode(bytes.as_slice())?);
        }
        let span = tracing::info_span!("outbox.relay", %subscriber, events = events.len());
        if let Some(first) = events.first() {
            telemetry::continue_trace_from_map(&span, &first.trace_context);
        }
        let mut request = tonic::Request::new(DeliverRequest { events });
        if let Ok(value) = format!("Bearer {}", self.token).parse() {
            request.metadata_mut().insert("authorization", value);
        }
        span.in_scope(|| telemetry::inject_current_context(request.metadata_mut()));
        let result = client.deliver(request).instrument(span).await;
        match result {
            Ok(_) => {
                let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
                sqlx::query("DELETE FROM outbox_pending WHERE subscriber = $1 AND outbox_id = ANY($2)")
                    .bind(subscriber)
                    .bind(&ids)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                // A full batch leaves more behind, at least as old as its last event.
                let left = match rows.last() {
                    Some(last) if i64::try_from(rows.len()).unwrap_or(i64::MAX) >= self.batch => {
                        Duration::from_secs_f64(last.4.clamp(0.0, 1e9))
                    }
                    _ => Duration::ZERO,
                };
                metrics::outbox(&service, subscriber, left, ids.len());
                Ok(ids.len())
            }
            Err(status) => {
                let backoff = backoff(head_attempts, self.max_backoff);
                tracing::warn!(%subscriber, code = ?status.code(), message = status.message(), attempts = head_attempts + 1, ?backoff, "event delivery failed");
                sqlx::query(
                    "UPDATE outbox_pending
                     SET attempts = attempts + 1,
                         next_attempt_at = now() + make_interval(secs => $3),
                         last_error = $4
                     WHERE subscriber = $1 AND outbox_id = $2",
                )
                .bind(subscriber)
                .bind(head_id)
                .bind(backoff.as_secs_f64())
                .bind(format!("{:?}: {}", status.code(), status.message()))
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                metrics::outbox(&service, subscriber, head_lag, 0);
                Ok(0)
            }
        }
    }
}

/// Exponential backoff from 100 ms, doubling per failed attempt, capped.
pub fn backoff(attempts: i32, max: Duration) -> Duration {
    let exponent = u32::try_from(attempts.clamp(0, 20)).unwrap_or(20);
    Duration::from_millis(100u64.saturating_mul(1u64 << exponent)).min(max)
}

/// What a consumer does with one event, inside the transaction that records it in
/// the inbox: the effect and the record commit together.
#[tonic::async_trait]
pub trait EventHandler: Send + Sync + 'static {
    async fn handle(&self, tx: &mut PgConnection, event: &EventEnvelope) -> Result<(), ServiceError>;
}

/// Serves `EventSink/Deliver` for a consuming service.
pub struct EventInbox<H> {
    pool: PgPool,
    handler: H,
    domain: &'static str,
}

impl<H: EventHandler> EventInbox<H> {
    pub fn new(pool: PgPool, handler: H, domain: &'static str) -> Self {
        Self {
            pool,
            handler,
            domain,
        }
    }

    /// Records `event` in the inbox and applies it inside `tx`; `false` = seen before.
    async fn apply(&self, tx: &mut PgConnection, event: &EventEnvelope) -> Result<bool, ServiceError> {
        let event_id = uuid::Uuid::parse_str(&event.event_id)
            .map_err(|_| ServiceError::invalid_field("events.event_id", "must be a UUID"))?;
        let new = sqlx::query(
            "INSERT INTO inbox (event_id, event_type, source) VALUES ($1, $2, $3)
             ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(event_id)
        .bind(&event.event_type)
        .bind(&event.source)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if new {
            self.handler.handle(tx, event).await?;
        }
        Ok(new)
    }

    /// Applies a delivery's events in one transaction: one commit per batch instead of
    /// one per event. Any failure rolls the whole batch back and the relay resends it;
    /// events already recorded are skipped, so the effect stays exactly once.
    ///
    /// Events are applied by aggregate, each aggregate's in the order delivered (the
    /// contract orders events per aggregate only). Deliveries from different publishers
    /// about the same aggregates (allocation's replica gets `StandingChanged` and
    /// `CustomerChanged`, both keyed `customers/{id}`) then take those rows in one
    /// order and cannot deadlock.
    async fn apply_all(&self, events: &[EventEnvelope]) -> Result<DeliverResponse, ServiceError> {
        let mut by_aggregate: Vec<&EventEnvelope> = events.iter().collect();
        by_aggregate.sort_by(|a, b| a.aggregate.cmp(&b.aggregate));
        let mut tx = self.pool.begin().await?;
        let mut response = DeliverResponse::default();
        for event in by_aggregate {
            let span = tracing::info_span!("event.apply", event_type = %event.event_type, aggregate = %event.aggregate);
            telemetry::continue_trace_from_map(&span, &event.trace_context);
            if self.apply(&mut tx, event).instrument(span).await? {
                response.applied += 1;
            } else {
                response.duplicates += 1;
            }
        }
        tx.commit().await?;
        Ok(response)
    }
}

#[tonic::async_trait]
impl<H: EventHandler> EventSink for EventInbox<H> {
    async fn deliver(
        &self,
        request: tonic::Request<DeliverRequest>,
    ) -> Result<tonic::Response<DeliverResponse>, tonic::Status> {
        let (caller, message) = auth::caller(request).map_err(|e| e.into_status(self.domain))?;
        caller
            .require(&[Role::Service, Role::Admin])
            .map_err(|e| e.into_status(self.domain))?;
        let response = self
            .apply_all(&message.events)
            .await
            .map_err(|e| e.into_status(self.domain))?;
        Ok(tonic::Response::new(response))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let max = Duration::from_secs(30);
        assert_eq!(backoff(0, max), Duration::from_millis(100));
        assert_eq!(backoff(3, max), Duration::from_millis(800));
        assert_eq!(backoff(100, max), max);
        assert_eq!(backoff(-5, max), Duration::from_millis(100));
    }
}
