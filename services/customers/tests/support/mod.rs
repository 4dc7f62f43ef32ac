//! A customers server on an ephemeral port against a fresh database.

#![allow(dead_code)]

use distnet_platform::Settings;
use distnet_platform::auth::Role;
use distnet_platform::server::{ServerHandle, Shutdown};
use distnet_proto::common::v1::{LatLng, LocalTimeWindow, PostalAddress, TimeOfDay};
use distnet_proto::customers::v1::customer_service_client::CustomerServiceClient;
use distnet_proto::customers::v1::{
    CreateCustomerRequest, Customer, CustomerFormat, CustomerStatus, Settlement,
};
use distnet_testkit::{Bearer, TestDb};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

pub type Client = CustomerServiceClient<InterceptedService<Channel, Bearer>>;

pub struct TestService {
    pub addr: std::net::SocketAddr,
    pub channel: Channel,
    shutdown: Shutdown,
    handle: Option<ServerHandle>,
    pub db: Option<TestDb>,
}

impl TestService {
    pub async fn start() -> Self {
        let db = Self::database().await;
        let settings = distnet_testkit::settings(&db.url);
        let mut service = Self::start_with(&settings).await;
        service.db = Some(db);
        service
    }

    /// A fresh, migrated database.
    pub async fn database() -> TestDb {
        TestDb::migrated("customers", |url| async move {
            distnet_customers::migrate(&distnet_testkit::settings(&url))
                .await?
                .close()
                .await;
            Ok(())
        })
        .await
        .expect("test database")
    }

    pub async fn start_with(settings: &Settings) -> Self {
        Self::start_clocked(settings, distnet_platform::clock::system()).await
    }

    /// Serves on an injected clock (case deadlines and escalation follow it).
    pub async fn start_clocked(settings: &Settings, clock: distnet_platform::clock::SharedClock) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let shutdown = Shutdown::new();
        let handle = distnet_customers::serve_with_clock(settings, listener, shutdown.clone(), clock)
            .await
            .expect("customers server starts");
        let addr = handle.local_addr;
        let channel = distnet_testkit::channel(addr).await.expect("connect");
        Self {
            addr,
            channel,
            shutdown,
            handle: Some(handle),
            db: None,
        }
    }

    pub fn client(&self, token: Option<String>) -> Client {
        CustomerServiceClient::with_interceptor(self.channel.clone(), Bearer(token))
    }

    pub fn admin(&self) -> Client {
        self.client(Some(distnet_testkit::token_for(Role::Admin, "admin-1", &[])))
    }

    pub fn as_role(&self, role: Role, sub: &str, areas: &[&str]) -> Client {
        self.client(Some(distnet_testkit::token_for(role, sub, areas)))
    }

    pub async fn stop(mut self) {
        self.shutdown.trigger();
        if let Some(handle) = self.handle.take() {
            handle.wait().await.expect("clean shutdown");
        }
    }
}

/// A valid retailer in `area` owned by `owner`.
pub fn retailer(name: &str, area: &str, owner: &str) -> Customer {
    Customer {
        display_name: name.into(),
        legal_name: format!("成都市{name}商行"),
        format: CustomerFormat::Grocery as i32,
        area_id: area.into(),
        owner_id: owner.into(),
        address: Some(PostalAddress {
            province: "四川省".into(),
            city: "成都市".into(),
            district: "锦江区".into(),
            street: "春熙路 1 号".into(),
            postal_code: "610000".into(),
        }),
        location: Some(LatLng {
            latitude: 30.657,
            longitude: 104.081,
        }),
        contact_name: "王芳".into(),
        contact_phone: "13812345678".into(),
        receiving_window: Some(LocalTimeWindow {
            start: Some(TimeOfDay {
                hours: 8,
                minutes: 30,
            }),
            end: Some(TimeOfDay {
                hours: 11,
                minutes: 0,
            }),
            time_zone: "Asia/Shanghai".into(),
        }),
        settlement: Settlement::ESettlement as i32,
        status: CustomerStatus::Active as i32,
        floor_area_sqm: 40,
        ..Customer::default()
    }
}

pub fn create_request(request_id: &str, customer_id: &str, customer: Customer) -> CreateCustomerRequest {
    CreateCustomerRequest {
        request_id: request_id.into(),
        customer_id: customer_id.into(),
        customer: Some(customer),
    }
}

/// The `ErrorInfo.reason` of a status.
pub fn reason(status: &tonic::Status) -> String {
    use tonic_types::StatusExt as _;
    status
        .get_details_error_info()
        .map(|i| i.reason)
        .unwrap_or_default()
}

/// The fields named by a status's `BadRequest`.
pub fn bad_fields(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt as _;
    status
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}
