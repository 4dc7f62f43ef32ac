//! An accreditation server on an ephemeral port, on a manual clock, against a
//! fresh database; retailers arrive the way they do in production, as
//! `CustomerChanged` events delivered to its `EventSink`.

#![allow(dead_code)]

use chrono::{DateTime, Utc};
use distnet_platform::Settings;
use distnet_platform::auth::Role;
use distnet_platform::clock::ManualClock;
use distnet_platform::server::{ServerHandle, Shutdown};
use distnet_proto::accreditation::v1::accreditation_service_client::AccreditationServiceClient;
use distnet_proto::common::v1::LatLng;
use distnet_proto::customers::v1::Customer;
use distnet_proto::events::v1::event_sink_client::EventSinkClient;
use distnet_proto::events::v1::{CustomerChanged, DeliverRequest, EventEnvelope};
use distnet_testkit::{Bearer, EventRecorder, TestDb};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

pub type Client = AccreditationServiceClient<InterceptedService<Channel, Bearer>>;

/// 2026-11-23 00:00 UTC.
pub fn start_time() -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp(1_795_392_000, 0).unwrap_or_default()
}

pub struct TestService {
    pub addr: std::net::SocketAddr,
    pub channel: Channel,
    pub clock: ManualClock,
    shutdown: Shutdown,
    handle: Option<ServerHandle>,
    db: Option<TestDb>,
}

impl TestService {
    pub async fn start() -> Self {
        let db = migrated_db().await;
        let settings = settings(&db.url);
        let mut service = Self::start_with(&settings).await;
        service.db = Some(db);
        service
    }

    /// A service whose `StandingChanged` events go to the returned recorder.
    pub async fn start_recording_standings() -> (Self, EventRecorder) {
        let db = migrated_db().await;
        let mut settings = settings(&db.url);
        let recorder = EventRecorder::start(&settings).await.expect("recorder");
        settings
            .events
            .subscriptions
            .insert("StandingChanged".into(), vec!["allocation".into()]);
        settings.services.allocation.url = format!("http://{}", recorder.addr);
        let mut service = Self::start_with(&settings).await;
        service.db = Some(db);
        (service, recorder)
    }

    pub async fn start_with(settings: &Settings) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let shutdown = Shutdown::new();
        let clock = ManualClock::new(start_time());
        let handle = distnet_accreditation::serve_with_clock(
            settings,
            listener,
            shutdown.clone(),
            std::sync::Arc::new(clock.clone()),
        )
        .await
        .expect("accreditation server starts");
        let addr = handle.local_addr;
        let channel = distnet_testkit::channel(addr).await.expect("connect");
        Self {
            addr,
            channel,
            clock,
            shutdown,
            handle: Some(handle),
            db: None,
        }
    }

    pub fn as_role(&self, role: Role, sub: &str, areas: &[&str]) -> Client {
        AccreditationServiceClient::with_interceptor(
            self.channel.clone(),
            Bearer(Some(distnet_testkit::token_for(role, sub, areas))),
        )
    }

    pub fn admin(&self) -> Client {
        self.as_role(Role::Admin, "lo-1", &[])
    }

    /// Delivers `CustomerChanged` for a retailer, as the customers service would.
    pub async fn know_customer(&self, id: &str, area: &str, owner: &str, location: (f64, f64)) {
        let customer = Customer {
            name: format!("customers/{id}"),
            display_name: format!("店 {id}"),
            area_id: area.into(),
            owner_id: owner.into(),
            format: 2,
            floor_area_sqm: 40,
            location: Some(LatLng {
                latitude: location.0,
                longitude: location.1,
            }),
            ..Customer::default()
        };
        let envelope = EventEnvelope {
            event_id: uuid::Uuid::new_v4().to_string(),
            event_type: "distnet.events.v1.CustomerChanged".into(),
            source: "customers".into(),
            aggregate: customer.name.clone(),
            payload: Some(
                prost_types::Any::from_msg(&CustomerChanged {
                    customer: Some(customer),
                })
                .expect("any"),
            ),
            ..EventEnvelope::default()
        };
        let token = distnet_testkit::token_for(Role::Service, "customers", &[]);
        EventSinkClient::with_interceptor(self.channel.clone(), Bearer(Some(token)))
            .deliver(DeliverRequest {
                events: vec![envelope],
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

pub async fn migrated_db() -> TestDb {
    TestDb::migrated("accreditation", |url| async move {
        distnet_accreditation::migrate(&distnet_testkit::settings(&url))
            .await?
            .close()
            .await;
        Ok(())
    })
    .await
    .expect("test database")
}

/// Test settings: a quick expiry sweep so the manual clock's effects show fast.
pub fn settings(database_url: &str) -> Settings {
    let mut settings = distnet_testkit::settings(database_url);
    settings.accreditation.expiry_sweep_ms = 50;
    settings
}

pub fn reason(status: &tonic::Status) -> String {
    use tonic_types::StatusExt as _;
    status
        .get_details_error_info()
        .map(|i| i.reason)
        .unwrap_or_default()
}

pub fn metadata(status: &tonic::Status, key: &str) -> String {
    use tonic_types::StatusExt as _;
    status
        .get_details_error_info()
        .and_then(|i| i.metadata.get(key).cloned())
        .unwrap_or_default()
}

pub fn bad_fields(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt as _;
    status
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

/// The next `StandingChanged` the recorder received.
pub async fn next_standing(recorder: &mut EventRecorder) -> distnet_proto::accreditation::v1::Standing {
    let event = recorder
        .next(std::time::Duration::from_secs(30))
        .await
        .expect("a standing event");
    let changed: distnet_proto::events::v1::StandingChanged =
        event.payload.expect("payload").to_msg().expect("decodes");
    changed.standing.expect("standing")
}
