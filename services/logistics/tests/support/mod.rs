//! A customers server and a logistics server on ephemeral ports against one fresh
//! database; orders arrive as `OrderConfirmed` on logistics' `EventSink`, as
//! allocation's relay delivers them. Logistics' own events go to an `EventRecorder`
//! standing in for allocation's sink.

#![allow(dead_code)]

use chrono::{DateTime, Utc};
use distnet_platform::auth::{Claims, Role};
use distnet_platform::clock::ManualClock;
use distnet_platform::server::{ServerHandle, Shutdown};
use distnet_proto::allocation::v1::{Order, OrderLine};
use distnet_proto::common::v1::{LatLng, LocalTimeWindow, Money, PostalAddress, TimeOfDay};
use distnet_proto::customers::v1::customer_service_client::CustomerServiceClient;
use distnet_proto::customers::v1::{CreateCustomerRequest, Customer, CustomerFormat, Settlement};
use distnet_proto::events::v1::event_sink_client::EventSinkClient;
use distnet_proto::events::v1::{DeliverRequest, EventEnvelope, OrderConfirmed};
use distnet_proto::logistics::v1::logistics_service_client::LogisticsServiceClient;
use distnet_proto::logistics::v1::*;
use distnet_testkit::{Bearer, EventRecorder, TestDb};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

pub type Client = LogisticsServiceClient<InterceptedService<Channel, Bearer>>;

/// Chengdu's DC.
pub const DEPOT: (f64, f64) = (30.6586, 104.0648);

pub struct Suite {
    pub logistics: Channel,
    pub customers: Channel,
    pub clock: ManualClock,
    pub events: EventRecorder,
    handles: Vec<ServerHandle>,
    shutdown: Shutdown,
    _db: TestDb,
}

impl Suite {
    pub async fn start() -> Self {
        let db = TestDb::new().await.expect("database");
        let mut settings = distnet_testkit::settings(&db.url);
        let events = EventRecorder::start(&settings).await.expect("recorder");
        for event in ["DeliveryCompleted", "DeliveryFailed"] {
            settings
                .events
                .subscriptions
                .insert(event.into(), vec!["allocation".into()]);
        }
        settings.services.allocation.url = format!("http://{}", events.addr);
        let shutdown = Shutdown::new();
        let customers_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let customers = distnet_customers::serve(&settings, customers_listener, shutdown.clone())
            .await
            .expect("customers");
        settings.services.customers.url = format!("http://{}", customers.local_addr);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let clock = ManualClock::new(Utc::now());
        let logistics = distnet_logistics::serve_with_clock(
            &settings,
            listener,
            shutdown.clone(),
            std::sync::Arc::new(clock.clone()),
        )
        .await
        .expect("logistics");
        Self {
            logistics: distnet_testkit::channel(logistics.local_addr)
                .await
                .expect("connect"),
            customers: distnet_testkit::channel(customers.local_addr)
                .await
                .expect("connect"),
            clock,
            events,
            handles: vec![customers, logistics],
            shutdown,
            _db: db,
        }
    }

    pub fn as_role(&self, role: Role, sub: &str, depot: Option<&str>) -> Client {
        let mut claims = Claims::new(sub, role, std::time::Duration::from_secs(3600));
        claims.depot = depot.map(String::from);
        if role == Role::Retailer {
            claims.customer = Some(sub.to_string());
        }
        LogisticsServiceClient::with_interceptor(
            self.logistics.clone(),
            Bearer(Some(distnet_testkit::token(&claims))),
        )
    }

    /// The services' database, for tests that change it behind the API's back (as
    /// another replica would).
    pub fn database_url(&self) -> &str {
        &self._db.url
    }

    pub async fn create_customer(&self, id: &str, area: &str, at: (f64, f64)) {
        self.create_customer_with(id, area, at, None).await;
    }

    /// A customer receiving deliveries only between `window` (local hours, minutes).
    pub async fn create_customer_with(
        &self,
        id: &str,
        area: &str,
        at: (f64, f64),
        window: Option<((i32, i32), (i32, i32))>,
    ) {
        let token = distnet_testkit::token_for(Role::Admin, "admin", &[]);
        CustomerServiceClient::with_interceptor(self.customers.clone(), Bearer(Some(token)))
            .create_customer(CreateCustomerRequest {
                request_id: format!("create-{id}"),
                customer_id: id.into(),
                customer: Some(Customer {
                    display_name: format!("店 {id}"),
                    format: CustomerFormat::Grocery as i32,
                    settlement: Settlement::Cash as i32,
                    area_id: area.into(),
                    owner_id: "cm-1".into(),
                    location: Some(LatLng {
                        latitude: at.0,
                        longitude: at.1,
                    }),
                    receiving_window: window.map(|(start, end)| LocalTimeWindow {
                        start: Some(TimeOfDay {
                            hours: start.0,
                            minutes: start.1,
                        }),
                        end: Some(TimeOfDay {
                            hours: end.0,
                            minutes: end.1,
                        }),
                        time_zone: String::new(),
                    }),
                    address: Some(PostalAddress {
                        province: "四川省".into(),
                        city: "成都市".into(),
                        district: "锦江区".into(),
                        street: format!("春熙路 {id} 号"),
                        postal_code: "610021".into(),
                    }),
                    ..Customer::default()
                }),
            })
            .await
            .expect("customer");
    }

    pub async fn deliver(&self, kind: &str, aggregate: &str, payload: prost_types::Any) {
        let token = distnet_testkit::token_for(Role::Service, "allocation", &[]);
        EventSinkClient::with_interceptor(self.logistics.clone(), Bearer(Some(token)))
            .deliver(DeliverRequest {
                events: vec![EventEnvelope {
                    event_id: rid(),
                    event_type: format!("distnet.events.v1.{kind}"),
                    source: "allocation".into(),
                    aggregate: aggregate.into(),
                    payload: Some(payload),
                    ..EventEnvelope::default()
                }],
            })
            .await
            .expect("delivered");
    }

    pub async fn confirm(&self, order: &Order) {
        let payload = prost_types::Any::from_msg(&OrderConfirmed {
            order: Some(order.clone()),
        })
        .expect("any");
        self.deliver("OrderConfirmed", &order.name, payload).await;
    }

    pub async fn stop(self) {
        self.events.stop().await;
        self.shutdown.trigger();
        for handle in self.handles {
            handle.wait().await.expect("clean shutdown");
        }
    }
}

pub fn rid() -> String {
    uuid::Uuid::new_v4().to_string()
}

pub fn order(id: &str, customer: &str, area: &str, confirmed: &str, cartons: i64) -> Order {
    let at: DateTime<Utc> = DateTime::parse_from_rfc3339(confirmed)
        .expect("time")
        .with_timezone(&Utc);
    Order {
        name: format!("orders/{id}"),
        customer: format!("customers/{customer}"),
        area_id: area.into(),
        lines: vec![OrderLine {
            product: "products/zhonghua".into(),
            cartons,
            ..OrderLine::default()
        }],
        value: Some(Money {
            currency_code: "CNY".into(),
            fen: cartons * 25_000,
        }),
        create_time: Some(prost_types::Timestamp {
            seconds: at.timestamp(),
            nanos: 0,
        }),
        ..Order::default()
    }
}

pub fn zone(id: &str, areas: &[&str], cycle: (i32, i32), frequency: Frequency) -> Zone {
    Zone {
        name: format!("zones/{id}"),
        display_name: id.into(),
        depot: "depots/chengdu".into(),
        area_ids: areas.iter().map(|a| a.to_string()).collect(),
        cycle_days: cycle.0,
        cycle_day: cycle.1,
        cycle_anchor: "2026-11-23".into(),
        frequency: frequency as i32,
        ..Zone::default()
    }
}

/// The Chengdu depot (closed on 2026-11-26), an inner twice-daily zone for area-01
/// and an outer once-daily zone for area-02, both delivered every day.
pub async fn network(dispatcher: &mut Client) {
    dispatcher
        .upsert_depot(UpsertDepotRequest {
            request_id: rid(),
            depot: Some(Depot {
                name: "depots/chengdu".into(),
                display_name: "成都配送中心".into(),
                location: Some(LatLng {
                    latitude: DEPOT.0,
                    longitude: DEPOT.1,
                }),
                time_zone: "Asia/Shanghai".into(),
                non_working_days: vec!["2026-11-26".into()],
                picking_capacity_cases: 2_000,
                ..Depot::default()
            }),
        })
        .await
        .expect("depot");
    for zone in [
        zone("inner", &["area-01"], (1, 0), Frequency::TwiceDaily),
        zone("outer", &["area-02"], (1, 0), Frequency::OnceDaily),
    ] {
        dispatcher
            .upsert_zone(UpsertZoneRequest {
                request_id: rid(),
                zone: Some(zone),
            })
            .await
            .expect("zone");
    }
}

pub async fn shipments(client: &mut Client, request: ListShipmentsRequest) -> Vec<Shipment> {
    client
        .list_shipments(request)
        .await
        .expect("list")
        .into_inner()
        .shipments
}
