//! Telemetry end to end: an in-process OTLP receiver stands in for the collector, the
//! services export to it, and one order placed by the call-center app must come back
//! as one connected trace — allocation's `PlaceOrder`, its `OrderConfirmed` relayed
//! to logistics and customers, logistics asking customers for the retailer — with
//! the RPC and business metrics beside it (requests, latency, orders confirmed,
//! outbox lag, overdue cases) and the planner's solve time once the dispatcher plans
//! the order's half-day.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use distnet_platform::auth::Role;
use distnet_platform::clock::ManualClock;
use distnet_platform::server::{ServerHandle, Shutdown};
use distnet_platform::settings::TelemetrySettings;
use distnet_proto::allocation::v1::allocation_service_client::AllocationServiceClient;
use distnet_proto::allocation::v1::{
    Channel as OrderChannel, GetEntitlementsRequest, PlaceOrderLine, PlaceOrderRequest, Product,
    UpsertProductRequest,
};
use distnet_proto::common::v1::{LatLng, Money};
use distnet_proto::customers::v1::customer_service_client::CustomerServiceClient;
use distnet_proto::customers::v1::{CreateCustomerRequest, Customer, CustomerFormat, Settlement};
use distnet_proto::events::v1::DeliverRequest;
use distnet_proto::events::v1::event_sink_client::EventSinkClient;
use distnet_proto::logistics::v1::logistics_service_client::LogisticsServiceClient;
use distnet_testkit::TestDb;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{Metric, metric, number_data_point};
use opentelemetry_proto::tonic::trace::v1::Span;

mod support;

use support::{
    DEPOT, bearer, channel_for, chengdu_depot_and_inner_zone, chengdu_van, eventually, first_shipment,
    listeners, plan_half_day_of, rid, standing_changed, tuesday_morning,
};

/// The call-center app's trace: its id and the span the order was placed from.
const TRACE_ID: &str = "5b8efff798038103d269b633813fc60c";
const APP_SPAN: &str = "eee19b7ec3c1b174";

/// What the receiver was sent.
#[derive(Clone, Default)]
struct Received {
    spans: Arc<Mutex<Vec<Span>>>,
    metrics: Arc<Mutex<Vec<Metric>>>,
}

#[tonic::async_trait]
impl TraceService for Received {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let spans = request
            .into_inner()
            .resource_spans
            .into_iter()
            .flat_map(|r| r.scope_spans)
            .flat_map(|s| s.spans);
        self.spans.lock().expect("spans").extend(spans);
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Received {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        let metrics = request
            .into_inner()
            .resource_metrics
            .into_iter()
            .flat_map(|r| r.scope_metrics)
            .flat_map(|s| s.metrics);
        self.metrics.lock().expect("metrics").extend(metrics);
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn text(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v: &AnyValue| match &v.value {
            Some(any_value::Value::StringValue(s)) => Some(s.clone()),
            Some(any_value::Value::IntValue(i)) => Some(i.to_string()),
            _ => None,
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_order_is_one_connected_trace_across_allocation_logistics_and_customers_with_metrics() {
    // The collector: OTLP/gRPC traces and metrics, in this process.
    let received = Received::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let collector = listener.local_addr().expect("addr");
    let server = tonic::transport::Server::builder()
        .add_service(TraceServiceServer::new(received.clone()))
        .add_service(MetricsServiceServer::new(received.clone()))
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener));
    tokio::spawn(server);

    let telemetry = distnet_platform::telemetry::init(
        "distnet",
        &TelemetrySettings {
            log_filter: "info,sqlx=warn,h2=warn,tower=warn,hyper=warn".into(),
            log_format: "json".into(),
            otlp_endpoint: format!("http://{collector}"),
            metrics_interval_ms: 500,
        },
    );

    // Customers, allocation and logistics. Only allocation is told of customer changes:
    // logistics must ask customers for the retailer when the order arrives.
    let db = TestDb::new().await.expect("database");
    let mut settings = distnet_testkit::settings(&db.url);
    settings.telemetry.otlp_endpoint = format!("http://{collector}");
    settings.telemetry.metrics_interval_ms = 500;
    settings.customers.case_sweep_ms = 500;
    settings.events.subscriptions = BTreeMap::from([
        (
            "OrderConfirmed".to_string(),
            vec!["customers".to_string(), "logistics".to_string()],
        ),
        ("CustomerChanged".to_string(), vec!["allocation".to_string()]),
    ]);
    let [customers_l, _, allocation_l, logistics_l] = listeners(&mut settings).await;
    let shutdown = Shutdown::new();
    let clock = ManualClock::new(tuesday_morning());
    let handles: Vec<ServerHandle> = vec![
        distnet_customers::serve_with_clock(
            &settings,
            customers_l,
            shutdown.clone(),
            Arc::new(clock.clone()),
        )
        .await
        .expect("customers"),
        distnet_allocation::serve_with_clock(
            &settings,
            allocation_l,
            shutdown.clone(),
            Arc::new(clock.clone()),
        )
        .await
        .expect("allocation"),
        distnet_logistics::serve_with_clock(
            &settings,
            logistics_l,
            shutdown.clone(),
            Arc::new(clock.clone()),
        )
        .await
        .expect("logistics"),
    ];
    let connect = |i: usize| distnet_testkit::channel(handles[i].local_addr);
    let (customers, allocation, logistics) = (
        connect(0).await.expect("connect"),
        connect(1).await.expect("connect"),
        connect(2).await.expect("connect"),
    );

    // The retailer in customers; its standing as accreditation's relay delivers it.
    let admin = bearer(Role::Admin, "admin-1", &[], None);
    CustomerServiceClient::new(channel_for(&customers, admin.clone()))
        .create_customer(CreateCustomerRequest {
            request_id: rid(),
            customer_id: "shop-otel".into(),
            customer: Some(Customer {
                display_name: "玉林路便利店".into(),
                format: CustomerFormat::Grocery as i32,
                settlement: Settlement::ESettlement as i32,
                area_id: "area-01".into(),
                owner_id: "cm-1".into(),
                location: Some(LatLng {
                    latitude: DEPOT.0 + 0.01,
                    longitude: DEPOT.1 - 0.01,
                }),
                ..Customer::default()
            }),
        })
        .await
        .expect("customer");
    EventSinkClient::new(channel_for(
        &allocation,
        distnet_testkit::Bearer(Some(distnet_testkit::token_for(
            Role::Service,
            "accreditation",
            &[],
        ))),
    ))
    .deliver(DeliverRequest {
        events: vec![standing_changed(
            "0b1f5a64-52f4-4f1e-9a51-6c1f0e4c7a01",
            "customers/shop-otel",
            "area-01",
            12,
        )],
    })
    .await
    .expect("standing delivered");

    let mut dispatcher = LogisticsServiceClient::new(channel_for(
        &logistics,
        bearer(Role::Dispatcher, "disp-1", &[], Some("chengdu")),
    ));
    chengdu_depot_and_inner_zone(&mut dispatcher).await;
    chengdu_van(&mut dispatcher).await;
    AllocationServiceClient::new(channel_for(
        &allocation,
        bearer(Role::AllocationPlanner, "planner-1", &[], None),
    ))
    .upsert_product(UpsertProductRequest {
        request_id: rid(),
        product: Some(Product {
            sku: "kuanzhai".into(),
            display_name: "宽窄(五粮)".into(),
            price_class: 3,
            wholesale_price: Some(Money {
                currency_code: "CNY".into(),
                fen: 12_000,
            }),
            scarce: false,
            stock_cartons: 500,
            ..Product::default()
        }),
    })
    .await
    .expect("product");

    // Allocation knows the retailer once customers' CustomerChanged has arrived.
    let agent = AllocationServiceClient::new(channel_for(
        &allocation,
        bearer(Role::CallCenterAgent, "agent-1", &["area-01"], None),
    ));
    eventually("the retailer's profile reaches allocation", || {
        let mut agent = agent.clone();
        async move {
            agent
                .get_entitlements(GetEntitlementsRequest {
                    customer: "customers/shop-otel".into(),
                    cycle: "cycles/2026-W48".into(),
                })
                .await
                .ok()
        }
    })
    .await;

    // The call-center app places the order inside its own trace.
    let mut request = tonic::Request::new(PlaceOrderRequest {
        request_id: rid(),
        customer: "customers/shop-otel".into(),
        cycle: "cycles/2026-W48".into(),
        channel: OrderChannel::CallCenter as i32,
        lines: vec![PlaceOrderLine {
            product: "products/kuanzhai".into(),
            cartons: 20,
        }],
    });
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{TRACE_ID}-{APP_SPAN}-01").parse().expect("header"),
    );
    agent.clone().place_order(request).await.expect("order placed");

    // Logistics asked customers for the retailer, and both consumers applied the event.
    let trace = eventually("the order's trace reaches the collector", || {
        telemetry.flush();
        let spans: Vec<Span> = received
            .spans
            .lock()
            .expect("spans")
            .iter()
            .filter(|s| hex(&s.trace_id) == TRACE_ID)
            .cloned()
            .collect();
        let methods: Vec<String> = spans
            .iter()
            .filter_map(|s| text(&s.attributes, "rpc.method"))
            .collect();
        let applied = spans.iter().filter(|s| s.name == "event.apply").count();
        let ready = methods.iter().any(|m| m.ends_with("/BatchGetCustomers"))
            && methods
                .iter()
                .filter(|m| m.ends_with("EventSink/Deliver"))
                .count()
                >= 2
            && applied >= 2;
        async move { ready.then_some(spans) }
    })
    .await;

    let methods: Vec<String> = trace
        .iter()
        .filter_map(|s| text(&s.attributes, "rpc.method"))
        .collect();
    for expected in [
        "/distnet.allocation.v1.AllocationService/PlaceOrder",
        "/distnet.events.v1.EventSink/Deliver",
        "/distnet.customers.v1.CustomerService/BatchGetCustomers",
    ] {
        assert!(
            methods.iter().any(|m| m == expected),
            "{expected} missing from the trace: {methods:?}"
        );
    }
    assert!(
        trace.iter().filter(|s| s.name == "outbox.relay").count() >= 2,
        "the relay to each subscriber is in the trace"
    );
    // One tree: every span's parent is in the trace, or is the app's span.
    let ids: HashSet<String> = trace.iter().map(|s| hex(&s.span_id)).collect();
    for span in &trace {
        let parent = hex(&span.parent_span_id);
        assert!(
            parent == APP_SPAN || ids.contains(&parent),
            "span {} ({:?}) hangs from {parent}, outside the trace",
            span.name,
            text(&span.attributes, "rpc.method")
        );
    }
    let roots: Vec<&Span> = trace
        .iter()
        .filter(|s| hex(&s.parent_span_id) == APP_SPAN)
        .collect();
    assert_eq!(
        roots.len(),
        1,
        "only PlaceOrder hangs from the app's span: {:?}",
        roots.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
    // BatchGetCustomers descends from PlaceOrder through logistics.
    let parents: HashMap<String, String> = trace
        .iter()
        .map(|s| (hex(&s.span_id), hex(&s.parent_span_id)))
        .collect();
    let batch_get = trace
        .iter()
        .find(|s| text(&s.attributes, "rpc.method").is_some_and(|m| m.ends_with("/BatchGetCustomers")))
        .expect("BatchGetCustomers");
    let mut chain = vec![batch_get.name.clone()];
    let mut at = hex(&batch_get.span_id);
    while let Some(parent) = parents.get(&at) {
        if let Some(span) = trace.iter().find(|s| &hex(&s.span_id) == parent) {
            chain.push(text(&span.attributes, "rpc.method").unwrap_or_else(|| span.name.clone()));
        }
        at = parent.clone();
    }
    assert_eq!(at, APP_SPAN, "the chain reaches the app: {chain:?}");
    assert!(
        chain.iter().any(|s| s.ends_with("/PlaceOrder")),
        "BatchGetCustomers descends from PlaceOrder: {chain:?}"
    );

    // The dispatcher plans the order's half-day: the solver's time is measured.
    let shipment = first_shipment(&dispatcher).await;
    let plan = plan_half_day_of(&mut dispatcher, &shipment).await;
    assert_eq!(plan.routes.len(), 1, "{plan:?}");

    // The metrics: the RPC histogram by method and code, orders confirmed, outbox
    // lag, overdue cases, the planner's solve time.
    let metrics = eventually("the metrics reach the collector", || {
        telemetry.flush();
        let metrics = received.metrics.lock().expect("metrics").clone();
        let names: HashSet<&str> = metrics.iter().map(|m| m.name.as_str()).collect();
        let ready = [
            "rpc.server.duration",
            "rpc.server.requests",
            "distnet.orders.confirmed",
            "distnet.outbox.lag",
            "distnet.cases.overdue",
            "distnet.plan.solve_time",
        ]
        .iter()
        .all(|n| names.contains(n));
        async move { ready.then_some(metrics) }
    })
    .await;
    let place_order_latency = metrics
        .iter()
        .filter(|m| m.name == "rpc.server.duration")
        .filter_map(|m| match &m.data {
            Some(metric::Data::Histogram(h)) => Some(h.data_points.clone()),
            _ => None,
        })
        .flatten()
        .find(|p| {
            text(&p.attributes, "rpc.method").as_deref() == Some("PlaceOrder")
                && text(&p.attributes, "rpc.grpc.status_code").as_deref() == Some("0")
        })
        .expect("PlaceOrder's latency histogram");
    assert!(place_order_latency.count >= 1);
    assert_eq!(
        place_order_latency.bucket_counts.iter().sum::<u64>(),
        place_order_latency.count
    );
    let confirmed = metrics
        .iter()
        .filter(|m| m.name == "distnet.orders.confirmed")
        .filter_map(|m| match &m.data {
            Some(metric::Data::Sum(s)) => Some(s.data_points.clone()),
            _ => None,
        })
        .flatten()
        .filter(|p| text(&p.attributes, "area").as_deref() == Some("area-01"))
        .filter_map(|p| match p.value {
            Some(number_data_point::Value::AsInt(n)) => Some(n),
            Some(number_data_point::Value::AsDouble(n)) => Some(n as i64),
            None => None,
        })
        .max();
    assert_eq!(confirmed, Some(1), "one order confirmed in area-01");
    let lag_subscribers: HashSet<String> = metrics
        .iter()
        .filter(|m| m.name == "distnet.outbox.lag")
        .filter_map(|m| match &m.data {
            Some(metric::Data::Gauge(g)) => Some(g.data_points.clone()),
            _ => None,
        })
        .flatten()
        .filter_map(|p| text(&p.attributes, "subscriber"))
        .collect();
    assert!(
        lag_subscribers.contains("logistics") && lag_subscribers.contains("customers"),
        "outbox lag per subscriber: {lag_subscribers:?}"
    );

    let solves: u64 = metrics
        .iter()
        .filter(|m| m.name == "distnet.plan.solve_time")
        .filter_map(|m| match &m.data {
            Some(metric::Data::Histogram(h)) => Some(h.data_points.clone()),
            _ => None,
        })
        .flatten()
        .filter(|p| text(&p.attributes, "depot").as_deref() == Some("chengdu"))
        .map(|p| p.count)
        .max()
        .unwrap_or(0);
    assert_eq!(solves, 1, "one plan solved for the chengdu depot");

    shutdown.trigger();
    for handle in handles {
        tokio::time::timeout(Duration::from_secs(30), handle.wait())
            .await
            .expect("stopped in time")
            .expect("clean shutdown");
    }
}
