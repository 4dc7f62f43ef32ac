//! The event contract end to end: a publisher schema with its outbox and relay, a
//! consumer schema behind a real `EventSink` server, both in one fresh database.

use std::net::SocketAddr;

use distnet_platform::auth::Role;
use distnet_platform::events::{EventHandler, EventInbox, Outbox, Relay};
use distnet_platform::server::{self, ServeSpec, ServerHandle, Shutdown};
use distnet_platform::{ServiceError, Settings, db};
use distnet_proto::customers::v1::Customer;
use distnet_proto::events::v1::event_sink_client::EventSinkClient;
use distnet_proto::events::v1::event_sink_server::EventSinkServer;
use distnet_proto::events::v1::{CustomerChanged, DeliverRequest, EventEnvelope};
use distnet_testkit::{Bearer, TestDb};
use prost::Name as _;
use sqlx::{PgConnection, PgPool};
use tonic::service::Routes;
use tonic::transport::{Channel, Endpoint};

const SUBSCRIBER: &str = "logistics";
const AGGREGATE: &str = "customers/c-1";

/// Records each event it is given, with the payload's display name as its label.
struct RecordApplied;

#[tonic::async_trait]
impl EventHandler for RecordApplied {
    async fn handle(&self, tx: &mut PgConnection, event: &EventEnvelope) -> Result<(), ServiceError> {
        let payload = event
            .payload
            .as_ref()
            .ok_or_else(|| ServiceError::invalid_field("events.payload", "required"))?;
        let changed: CustomerChanged = payload.to_msg()?;
        let event_id = uuid::Uuid::parse_str(&event.event_id).map_err(ServiceError::internal)?;
        // No ON CONFLICT: a redelivery that reached the handler would fail loudly.
        sqlx::query("INSERT INTO applied (event_id, label) VALUES ($1, $2)")
            .bind(event_id)
            .bind(changed.customer.unwrap_or_default().display_name)
            .execute(&mut *tx)
            .await?;
        Ok(())
    }
}

/// Publisher settings subscribing `logistics` to `CustomerChanged` at `subscriber`.
fn settings_for(db: &TestDb, subscriber: SocketAddr) -> Settings {
    let mut settings = distnet_testkit::settings(&db.url);
    settings
        .events
        .subscriptions
        .insert("CustomerChanged".into(), vec![SUBSCRIBER.into()]);
    settings.services.logistics.url = format!("http://{subscriber}");
    settings
}

/// A pool for `schema` with the platform tables migrated into it.
async fn schema_pool(settings: &Settings, schema: &str) -> PgPool {
    let pool = db::pool(&settings.database, schema).expect("pool");
    db::migrate(
        &pool,
        schema,
        &sqlx::migrate::Migrator::DEFAULT,
        &settings.database,
    )
    .await
    .expect("migrations run");
    pool
}

/// The consuming service: an `EventInbox` over schema `consumer`, served for real.
struct Consumer {
    addr: SocketAddr,
    pool: PgPool,
    shutdown: Shutdown,
    handle: ServerHandle,
}

impl Consumer {
    async fn start(db: &TestDb) -> Self {
        let settings = distnet_testkit::settings(&db.url);
        let pool = schema_pool(&settings, "consumer").await;
        sqlx::query(
            "CREATE TABLE applied (
                 seq       BIGSERIAL,
                 event_id  UUID PRIMARY KEY,
                 label     TEXT NOT NULL
             )",
        )
        .execute(&pool)
        .await
        .expect("applied table");
        let inbox = EventInbox::new(pool.clone(), RecordApplied, "consumer.distnet");
        let shutdown = Shutdown::new();
        let handle = server::serve(ServeSpec {
            domain: "consumer.distnet",
            grpc_services: &["distnet.events.v1.EventSink"],
            access: &[distnet_platform::authz::EVENT_SINK],
            routes: Routes::new(EventSinkServer::new(inbox)),
            listener: tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind"),
            settings: &settings,
            shutdown: shutdown.clone(),
            ready: None,
        })
        .await
        .expect("consumer serves");
        Self {
            addr: handle.local_addr,
            pool,
            shutdown,
            handle,
        }
    }

    /// A plain client, as the relay uses it (the relay adds its own token).
    async fn client(&self) -> EventSinkClient<Channel> {
        EventSinkClient::new(distnet_testkit::channel(self.addr).await.expect("connect"))
    }

    /// `(event_id, label)` of every applied event, in the order applied.
    async fn applied(&self) -> Vec<(uuid::Uuid, String)> {
        sqlx::query_as("SELECT event_id, label FROM applied ORDER BY seq")
            .fetch_all(&self.pool)
            .await
            .expect("read applied")
    }

    async fn stop(self) {
        self.shutdown.trigger();
        self.handle.wait().await.expect("clean shutdown");
    }
}

fn service_token() -> String {
    distnet_testkit::token_for(Role::Service, "customers", &[])
}

fn changed(label: &str) -> CustomerChanged {
    CustomerChanged {
        customer: Some(Customer {
            name: AGGREGATE.into(),
            display_name: label.into(),
            ..Customer::default()
        }),
    }
}

/// Publishes `changed(label)` in a transaction of its own and commits it.
async fn publish(pool: &PgPool, outbox: &Outbox, label: &str) {
    let mut tx = pool.begin().await.expect("begin");
    outbox
        .publish(&mut tx, AGGREGATE, &changed(label))
        .await
        .expect("publish");
    tx.commit().await.expect("commit");
}

/// Relays until a pass delivers nothing; returns how many events were delivered.
async fn relay_all(relay: &Relay, client: &EventSinkClient<Channel>) -> usize {
    let mut total = 0;
    loop {
        match relay
            .relay_once(SUBSCRIBER, client.clone())
            .await
            .expect("relay pass")
        {
            0 => return total,
            n => total += n,
        }
    }
}

async fn pending(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM outbox_pending")
        .fetch_one(pool)
        .await
        .expect("count pending")
}

/// Event ids in the publisher's outbox, in publication order.
async fn published(pool: &PgPool) -> Vec<uuid::Uuid> {
    sqlx::query_scalar("SELECT event_id FROM outbox ORDER BY id")
        .fetch_all(pool)
        .await
        .expect("read outbox")
}

fn envelope(label: &str) -> EventEnvelope {
    EventEnvelope {
        event_id: uuid::Uuid::now_v7().to_string(),
        event_type: CustomerChanged::full_name(),
        source: "customers".into(),
        aggregate: AGGREGATE.into(),
        occur_time: Some(std::time::SystemTime::now().into()),
        trace_context: Default::default(),
        payload: Some(prost_types::Any::from_msg(&changed(label)).expect("pack payload")),
    }
}

#[tokio::test]
async fn an_event_written_in_a_rolled_back_transaction_is_never_delivered() {
    let db = TestDb::new().await.expect("test database");
    let consumer = Consumer::start(&db).await;
    let settings = settings_for(&db, consumer.addr);
    let publisher = schema_pool(&settings, "publisher").await;
    let outbox = Outbox::new("customers", &settings);

    let mut tx = publisher.begin().await.expect("begin");
    outbox
        .publish(&mut tx, AGGREGATE, &changed("rolled back"))
        .await
        .expect("publish");
    tx.rollback().await.expect("rollback");
    publish(&publisher, &outbox, "committed").await;

    let relay = Relay::new(publisher.clone(), &settings, service_token()).expect("relay");
    assert_eq!(relay_all(&relay, &consumer.client().await).await, 1);

    let [committed] = *published(&publisher).await else {
        panic!("the rolled-back event must never reach the outbox");
    };
    assert_eq!(consumer.applied().await, [(committed, "committed".to_string())]);
    assert_eq!(pending(&publisher).await, 0);
    consumer.stop().await;
}

#[tokio::test]
async fn a_redelivered_event_is_applied_once() {
    let db = TestDb::new().await.expect("test database");
    let consumer = Consumer::start(&db).await;
    let channel = distnet_testkit::channel(consumer.addr).await.expect("connect");
    let mut sink = EventSinkClient::with_interceptor(channel, Bearer(Some(service_token())));

    let event = envelope("direct");
    let request = DeliverRequest {
        events: vec![event.clone()],
    };
    let first = sink
        .deliver(request.clone())
        .await
        .expect("first delivery")
        .into_inner();
    assert_eq!((first.applied, first.duplicates), (1, 0));
    let second = sink.deliver(request).await.expect("redelivery").into_inner();
    assert_eq!((second.applied, second.duplicates), (0, 1));
    assert_eq!(consumer.applied().await.len(), 1);

    // Through the relay: a delivered event queued again is delivered as a duplicate.
    let settings = settings_for(&db, consumer.addr);
    let publisher = schema_pool(&settings, "publisher").await;
    publish(&publisher, &Outbox::new("customers", &settings), "relayed").await;
    let relay = Relay::new(publisher.clone(), &settings, service_token()).expect("relay");
    let client = consumer.client().await;
    assert_eq!(relay_all(&relay, &client).await, 1);
    sqlx::query("INSERT INTO outbox_pending (subscriber, outbox_id) SELECT $1, id FROM outbox")
        .bind(SUBSCRIBER)
        .execute(&publisher)
        .await
        .expect("re-queue");
    assert_eq!(relay_all(&relay, &client).await, 1, "the redelivery succeeds");

    let relayed = published(&publisher).await;
    let direct_id = uuid::Uuid::parse_str(&event.event_id).expect("uuid");
    assert_eq!(
        consumer.applied().await,
        [
            (direct_id, "direct".to_string()),
            (relayed[0], "relayed".to_string())
        ]
    );
    let inbox: i64 = sqlx::query_scalar("SELECT count(*) FROM inbox")
        .fetch_one(&consumer.pool)
        .await
        .expect("count inbox");
    assert_eq!(inbox, 2);
    assert_eq!(pending(&publisher).await, 0);
    consumer.stop().await;
}

#[tokio::test]
async fn delivery_retries_with_backoff_until_the_subscriber_returns_and_keeps_order() {
    let db = TestDb::new().await.expect("test database");
    let consumer = Consumer::start(&db).await;
    // A port nobody listens on.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let closed_addr = closed.local_addr().expect("addr");
    drop(closed);

    let mut settings = settings_for(&db, closed_addr);
    settings.events.relay_batch = 2; // several passes, each must keep the order
    let publisher = schema_pool(&settings, "publisher").await;
    let outbox = Outbox::new("customers", &settings);
    let labels = ["v1", "v2", "v3", "v4", "v5"];
    for label in labels {
        publish(&publisher, &outbox, label).await;
    }
    let relay = Relay::new(publisher.clone(), &settings, service_token()).expect("relay");

    let before: chrono::DateTime<chrono::Utc> = sqlx::query_scalar("SELECT clock_timestamp()")
        .fetch_one(&publisher)
        .await
        .expect("clock");
    let down = EventSinkClient::new(
        Endpoint::from_shared(format!("http://{closed_addr}"))
            .expect("endpoint")
            .connect_lazy(),
    );
    assert_eq!(relay.relay_once(SUBSCRIBER, down).await.expect("failed pass"), 0);

    let queue: Vec<(i32, chrono::DateTime<chrono::Utc>, Option<String>)> =
        sqlx::query_as("SELECT attempts, next_attempt_at, last_error FROM outbox_pending ORDER BY outbox_id")
            .fetch_all(&publisher)
            .await
            .expect("read queue");
    assert_eq!(queue.len(), labels.len(), "nothing was dropped");
    let (attempts, next_attempt_at, last_error) = &queue[0];
    assert_eq!(*attempts, 1);
    assert!(
        *next_attempt_at >= before + chrono::Duration::milliseconds(100),
        "the head backs off: next attempt {next_attempt_at}, failure after {before}"
    );
    let error = last_error.as_deref().unwrap_or_default();
    assert!(
        error.starts_with("Unavailable"),
        "the failure is recorded: {error}"
    );
    let later: Vec<i32> = queue[1..].iter().map(|q| q.0).collect();
    assert_eq!(later, [0; 4], "only the head was tried");

    // While the head waits out its backoff, later events wait behind it.
    let live = consumer.client().await;
    sqlx::query("UPDATE outbox_pending SET next_attempt_at = now() + interval '1 hour'")
        .execute(&publisher)
        .await
        .expect("push back");
    assert_eq!(relay.relay_once(SUBSCRIBER, live.clone()).await.expect("pass"), 0);
    assert!(consumer.applied().await.is_empty());

    sqlx::query("UPDATE outbox_pending SET next_attempt_at = now()")
        .execute(&publisher)
        .await
        .expect("due now");
    assert_eq!(relay_all(&relay, &live).await, labels.len());

    let (ids, applied_labels): (Vec<_>, Vec<_>) = consumer.applied().await.into_iter().unzip();
    assert_eq!(applied_labels, labels, "applied in publication order");
    assert_eq!(ids, published(&publisher).await);
    assert_eq!(pending(&publisher).await, 0);
    consumer.stop().await;
}

#[tokio::test]
async fn deliver_requires_a_service_token() {
    let db = TestDb::new().await.expect("test database");
    let consumer = Consumer::start(&db).await;
    let channel = distnet_testkit::channel(consumer.addr).await.expect("connect");
    let request = DeliverRequest {
        events: vec![envelope("forged")],
    };

    let mut anonymous = EventSinkClient::with_interceptor(channel.clone(), Bearer(None));
    let status = anonymous
        .deliver(request.clone())
        .await
        .expect_err("no token is refused");
    assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");

    let manager = distnet_testkit::token_for(Role::CustomerManager, "cm-1", &["area-1"]);
    let mut manager = EventSinkClient::with_interceptor(channel, Bearer(Some(manager)));
    let status = manager
        .deliver(request)
        .await
        .expect_err("a person may not deliver events");
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");

    assert!(consumer.applied().await.is_empty());
    consumer.stop().await;
}
