//! An allocation server on an ephemeral port, on a manual clock, against a fresh
//! database. Retailers arrive the way they do in production: `CustomerChanged` and
//! `StandingChanged` events delivered to its `EventSink`.

#![allow(dead_code)]

use chrono::{DateTime, Utc};
use distnet_platform::Settings;
use distnet_platform::auth::{Claims, Role};
use distnet_platform::clock::ManualClock;
use distnet_platform::server::{ServerHandle, Shutdown};
use distnet_proto::accreditation::v1::{CustomerClass, LicenseStatus, Standing};
use distnet_proto::allocation::v1::allocation_service_client::AllocationServiceClient;
use distnet_proto::allocation::v1::*;
use distnet_proto::common::v1::Money;
use distnet_proto::customers::v1::{Customer, Settlement};
use distnet_proto::events::v1::event_sink_client::EventSinkClient;
use distnet_proto::events::v1::{CustomerChanged, DeliverRequest, EventEnvelope, StandingChanged};
use distnet_testkit::{Bearer, EventRecorder, TestDb};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

pub type Client = AllocationServiceClient<InterceptedService<Channel, Bearer>>;

pub const CYCLE: &str = "cycles/2026-W48";

/// Sunday 2026-11-22 12:00 UTC: before 2026-W48's window opens (Monday 08:00 +08:00).
pub fn before_window() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-22T12:00:00Z")
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

/// Tuesday 2026-11-24 10:00 Asia/Shanghai: the window is open, before the 11:30 cut-off.
pub fn during_window() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-24T10:00:00+08:00")
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

/// A retailer as the events describe it.
#[derive(Debug, Clone)]
pub struct Retailer {
    pub id: String,
    pub area: String,
    pub owner: String,
    pub tier: i32,
    pub class: CustomerClass,
    pub license: LicenseStatus,
    pub settlement: Settlement,
    pub credit_limit_fen: i64,
    pub blacklisted: bool,
    pub format: i32,
}

impl Retailer {
    pub fn new(id: impl Into<String>, tier: i32) -> Self {
        Self {
            id: id.into(),
            area: "area-01".into(),
            owner: "cm-1".into(),
            tier,
            class: CustomerClass::General,
            license: LicenseStatus::Active,
            settlement: Settlement::ESettlement,
            credit_limit_fen: 0,
            blacklisted: false,
            format: 2,
        }
    }
}

pub struct TestService {
    pub addr: std::net::SocketAddr,
    pub channel: Channel,
    pub clock: ManualClock,
    shutdown: Shutdown,
    handle: Option<ServerHandle>,
    db: Option<TestDb>,
    standing_version: std::sync::atomic::AtomicI64,
}

impl TestService {
    pub async fn start() -> Self {
        let db = migrated_db().await;
        let settings = distnet_testkit::settings(&db.url);
        let mut service = Self::start_with(&settings).await;
        service.db = Some(db);
        service
    }

    /// A service whose order events go to the returned recorder (as logistics).
    pub async fn start_recording_orders() -> (Self, EventRecorder) {
        let db = migrated_db().await;
        let mut settings = distnet_testkit::settings(&db.url);
        let recorder = EventRecorder::start(&settings).await.expect("recorder");
        for event in ["OrderConfirmed", "OrderCancelled"] {
            settings
                .events
                .subscriptions
                .insert(event.into(), vec!["logistics".into()]);
        }
        settings.services.logistics.url = format!("http://{}", recorder.addr);
        let mut service = Self::start_with(&settings).await;
        service.db = Some(db);
        (service, recorder)
    }

    pub async fn start_with(settings: &Settings) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let shutdown = Shutdown::new();
        let clock = ManualClock::new(before_window());
        let handle = distnet_allocation::serve_with_clock(
            settings,
            listener,
            shutdown.clone(),
            std::sync::Arc::new(clock.clone()),
        )
        .await
        .expect("allocation server starts");
        let addr = handle.local_addr;
        let channel = distnet_testkit::channel(addr).await.expect("connect");
        Self {
            addr,
            channel,
            clock,
            shutdown,
            handle: Some(handle),
            db: None,
            standing_version: std::sync::atomic::AtomicI64::new(1),
        }
    }

    /// The service's database, for tests that watch its locks.
    pub fn database_url(&self) -> &str {
        self.db.as_ref().map_or("", |db| db.url.as_str())
    }

    pub fn as_role(&self, role: Role, sub: &str, areas: &[&str]) -> Client {
        AllocationServiceClient::with_interceptor(
            self.channel.clone(),
            Bearer(Some(distnet_testkit::token_for(role, sub, areas))),
        )
        .max_decoding_message_size(64 << 20)
    }

    pub fn planner(&self) -> Client {
        self.as_role(Role::AllocationPlanner, "planner-1", &[])
    }

    pub fn agent(&self, areas: &[&str]) -> Client {
        self.as_role(Role::CallCenterAgent, "agent-1", areas)
    }

    pub fn retailer(&self, id: &str) -> Client {
        let claims = Claims::new(id, Role::Retailer, std::time::Duration::from_secs(3600)).with_customer(id);
        AllocationServiceClient::with_interceptor(
            self.channel.clone(),
            Bearer(Some(distnet_testkit::token(&claims))),
        )
    }

    /// Delivers each retailer's `CustomerChanged` and `StandingChanged`, as the
    /// customers and accreditation services would.
    pub async fn know(&self, retailers: &[Retailer]) {
        let token = distnet_testkit::token_for(Role::Service, "accreditation", &[]);
        let mut sink = EventSinkClient::with_interceptor(self.channel.clone(), Bearer(Some(token)));
        for chunk in retailers.chunks(500) {
            let mut events = Vec::with_capacity(chunk.len() * 2);
            for r in chunk {
                let version = self
                    .standing_version
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let customer = Customer {
                    name: format!("customers/{}", r.id),
                    area_id: r.area.clone(),
                    owner_id: r.owner.clone(),
                    format: r.format,
                    settlement: r.settlement as i32,
                    ..Customer::default()
                };
                events.push(envelope(
                    "CustomerChanged",
                    &customer.name,
                    prost_types::Any::from_msg(&CustomerChanged {
                        customer: Some(customer.clone()),
                    })
                    .expect("any"),
                ));
                let standing = Standing {
                    customer: customer.name.clone(),
                    license_status: r.license as i32,
                    tier: r.tier,
                    grading_version: 1,
                    customer_class: r.class as i32,
                    credit_limit: Some(Money {
                        currency_code: "CNY".into(),
                        fen: r.credit_limit_fen,
                    }),
                    blacklisted: r.blacklisted,
                    version,
                    area_id: r.area.clone(),
                    ..Standing::default()
                };
                events.push(envelope(
                    "StandingChanged",
                    &customer.name,
                    prost_types::Any::from_msg(&StandingChanged {
                        standing: Some(standing),
                    })
                    .expect("any"),
                ));
            }
            sink.deliver(DeliverRequest { events }).await.expect("delivered");
        }
    }

    /// Delivers one event of `kind` to the service's sink.
    pub async fn deliver(&self, kind: &str, aggregate: &str, payload: prost_types::Any) {
        let token = distnet_testkit::token_for(Role::Service, "logistics", &[]);
        EventSinkClient::with_interceptor(self.channel.clone(), Bearer(Some(token)))
            .deliver(DeliverRequest {
                events: vec![envelope(kind, aggregate, payload)],
            })
            .await
            .expect("delivered");
    }

    pub async fn stop(mut self) {
        self.shutdown.trigger();
        if let Some(handle) = self.handle.take() {
            handle.wait().await.expect("clean shutdown");
        }
    }
}

fn envelope(kind: &str, aggregate: &str, payload: prost_types::Any) -> EventEnvelope {
    EventEnvelope {
        event_id: uuid::Uuid::new_v4().to_string(),
        event_type: format!("distnet.events.v1.{kind}"),
        source: "test".into(),
        aggregate: aggregate.into(),
        payload: Some(payload),
        ..EventEnvelope::default()
    }
}

pub async fn migrated_db() -> TestDb {
    TestDb::migrated("allocation", |url| async move {
        distnet_allocation::migrate(&distnet_testkit::settings(&url))
            .await?
            .close()
            .await;
        Ok(())
    })
    .await
    .expect("test database")
}

pub fn rid() -> String {
    uuid::Uuid::new_v4().to_string()
}

pub fn cny(fen: i64) -> Option<Money> {
    Some(Money {
        currency_code: "CNY".into(),
        fen,
    })
}

/// A scarce product with supply in `CYCLE` and a policy.
pub async fn scarce_product(client: &mut Client, sku: &str, quantity: i64, holdback: i64, policy: Policy) {
    client
        .upsert_product(UpsertProductRequest {
            request_id: rid(),
            product: Some(Product {
                sku: sku.into(),
                display_name: format!("Scarce {sku}"),
                price_class: 1,
                wholesale_price: cny(25_000),
                cartons_per_case: 50,
                scarce: true,
                ..Product::default()
            }),
        })
        .await
        .expect("product");
    client
        .set_supply(SetSupplyRequest {
            request_id: rid(),
            product: format!("products/{sku}"),
            cycle: CYCLE.into(),
            quantity,
            holdback,
            target: 0,
        })
        .await
        .expect("supply");
    client
        .set_policy(SetPolicyRequest {
            request_id: rid(),
            policy: Some(Policy {
                product: format!("products/{sku}"),
                ..policy
            }),
        })
        .await
        .expect("policy");
}

pub fn tier_quota(min_tier: i32, max_tier: i32, cap: Option<i64>, max_step: Option<i64>) -> Policy {
    Policy {
        kind: PolicyKind::TierQuota as i32,
        tier_quota: Some(TierQuotaRule {
            min_tier,
            max_tier,
            cap,
            max_step,
            min_quota: 0,
        }),
        ..Policy::default()
    }
}

pub async fn commit(client: &mut Client, products: &[&str]) -> Vec<Allocation> {
    client
        .commit_allocation(CommitAllocationRequest {
            request_id: rid(),
            cycle: CYCLE.into(),
            products: products.iter().map(|p| format!("products/{p}")).collect(),
        })
        .await
        .expect("commit")
        .into_inner()
        .allocations
}

pub fn order(customer: &str, lines: &[(&str, i64)]) -> PlaceOrderRequest {
    PlaceOrderRequest {
        request_id: rid(),
        customer: format!("customers/{customer}"),
        cycle: CYCLE.into(),
        channel: distnet_proto::allocation::v1::Channel::CallCenter as i32,
        lines: lines
            .iter()
            .map(|(sku, cartons)| PlaceOrderLine {
                product: format!("products/{sku}"),
                cartons: *cartons,
            })
            .collect(),
    }
}

pub fn reason(status: &tonic::Status) -> String {
    use tonic_types::StatusExt as _;
    status
        .get_details_error_info()
        .map(|i| i.reason)
        .unwrap_or_default()
}

/// (type, subject) of each `PreconditionFailure` violation.
pub fn preconditions(status: &tonic::Status) -> Vec<(String, String)> {
    use tonic_types::StatusExt as _;
    status
        .get_details_precondition_failure()
        .map(|p| p.violations.into_iter().map(|v| (v.r#type, v.subject)).collect())
        .unwrap_or_default()
}

pub fn bad_fields(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt as _;
    status
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

/// Makes `call` while the test holds the row `hold` locks (a `SELECT … FOR UPDATE`
/// that must find it), and tells whether the call, once it waits for that row,
/// already holds the row `probe` tries (a `SELECT … FOR UPDATE NOWAIT` that must find
/// it): the order in which a call takes its rows, which keeps two calls from
/// deadlocking. The call then completes, and its answer is returned.
pub async fn held_while_waiting<T: Send + 'static>(
    service: &TestService,
    call: impl std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>> + Send + 'static,
    hold: &str,
    probe: &str,
) -> (bool, Result<T, tonic::Status>) {
    use sqlx::{Connection as _, PgConnection};
    let mut holder = PgConnection::connect(service.database_url())
        .await
        .expect("connect");
    let holder_pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut holder)
        .await
        .expect("pid");
    let mut held = holder.begin().await.expect("begin");
    let found = sqlx::query(hold).execute(&mut *held).await.expect("the held row");
    assert_eq!(found.rows_affected(), 1, "{hold}");
    let pending = tokio::spawn(call);

    let watcher = sqlx::PgPool::connect(service.database_url())
        .await
        .expect("connect");
    distnet_testkit::eventually("the call waits for the held row", || {
        let watcher = watcher.clone();
        async move {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))",
            )
            .bind(holder_pid)
            .fetch_one(&watcher)
            .await
            .ok()?;
            (waiting == 1).then_some(())
        }
    })
    .await;
    let already_held = match sqlx::query(probe).execute(&watcher).await {
        Ok(done) => {
            assert_eq!(done.rows_affected(), 1, "{probe}");
            false
        }
        Err(error) => {
            let code = error
                .as_database_error()
                .and_then(|e| e.code())
                .map(|c| c.into_owned());
            assert_eq!(code.as_deref(), Some("55P03"), "{error:?}");
            true
        }
    };
    watcher.close().await;
    held.rollback().await.expect("released");
    let answer = pending.await.expect("joined").map(tonic::Response::into_inner);
    (already_held, answer)
}

/// [`held_while_waiting`] on a retailer's credit row (`exposures`, made by an earlier
/// order), probing its consumption row of `sku`.
pub async fn quota_held_while_credit_waits(
    service: &TestService,
    mut client: Client,
    request: PlaceOrderRequest,
    sku: &str,
) -> (bool, Result<Order, tonic::Status>) {
    let customer = request.customer.trim_start_matches("customers/").to_string();
    let hold = format!("SELECT 1 FROM allocation.exposures WHERE customer_id = '{customer}' FOR UPDATE");
    let probe = format!(
        "SELECT 1 FROM allocation.consumption WHERE customer_id = '{customer}' AND sku = '{sku}' FOR UPDATE NOWAIT"
    );
    held_while_waiting(
        service,
        async move { client.place_order(request).await },
        &hold,
        &probe,
    )
    .await
}
