//! The four real services on ephemeral ports against one fresh database, and raw
//! unary calls by path for the tests that walk every RPC.

#![allow(dead_code)]

use std::time::Duration;

use chrono::{DateTime, Utc};
use distnet_platform::Settings;
use distnet_testkit::Bearer;
use tonic::service::interceptor::InterceptedService;

use distnet_platform::auth::{Claims, Role};
use distnet_platform::authz::Rule;
use distnet_platform::server::{ServerHandle, Shutdown};
use distnet_testkit::TestDb;
use prost::Message as _;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic_types::StatusExt as _;

pub struct Suite {
    pub db: TestDb,
    shutdown: Shutdown,
    pub handles: Vec<ServerHandle>,
    /// One channel per server, in the order of [`tables`].
    pub channels: Vec<Channel>,
}

impl Suite {
    pub async fn start() -> Self {
        let db = TestDb::new().await.expect("database");
        let settings = distnet_testkit::settings(&db.url);
        let shutdown = Shutdown::new();
        let bind = || tokio::net::TcpListener::bind("127.0.0.1:0");
        let handles = vec![
            distnet_customers::serve(&settings, bind().await.expect("bind"), shutdown.clone())
                .await
                .expect("customers"),
            distnet_accreditation::serve(&settings, bind().await.expect("bind"), shutdown.clone())
                .await
                .expect("accreditation"),
            distnet_allocation::serve(&settings, bind().await.expect("bind"), shutdown.clone())
                .await
                .expect("allocation"),
            distnet_logistics::serve(&settings, bind().await.expect("bind"), shutdown.clone())
                .await
                .expect("logistics"),
        ];
        let mut channels = Vec::new();
        for handle in &handles {
            channels.push(
                distnet_testkit::channel(handle.local_addr)
                    .await
                    .expect("connect"),
            );
        }
        Self {
            db,
            shutdown,
            handles,
            channels,
        }
    }

    /// The URL of server `index` (in the order of [`tables`]).
    pub fn url(&self, index: usize) -> String {
        format!("http://{}", self.handles[index].local_addr)
    }

    pub async fn stop(self) {
        self.shutdown.trigger();
        for handle in self.handles {
            handle.wait().await.expect("clean shutdown");
        }
    }
}

/// Each server's access table, in the order of [`Suite::channels`].
pub fn tables() -> [&'static [Rule]; 4] {
    [
        distnet_customers::api::ACCESS,
        distnet_accreditation::api::ACCESS,
        distnet_allocation::api::ACCESS,
        distnet_logistics::api::ACCESS,
    ]
}

/// A token for `role` with the scopes the role carries in production.
pub fn token_for(role: Role) -> String {
    let claims = Claims::new(
        format!("matrix-{}", role.as_str()),
        role,
        Duration::from_secs(3600),
    )
    .with_areas(["area-01"]);
    let claims = if role == Role::Retailer {
        claims.with_customer("r-00001")
    } else {
        claims
    };
    distnet_testkit::token(&claims)
}

/// Already-encoded protobuf bytes, sent and received as they are.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawCodec;

pub struct RawEncoder;
pub struct RawDecoder;

impl Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(&mut self, item: Self::Item, dst: &mut EncodeBuf<'_>) -> Result<(), Self::Error> {
        use prost::bytes::BufMut as _;
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawDecoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Self::Error> {
        use prost::bytes::Buf as _;
        let mut out = vec![0; src.remaining()];
        src.copy_to_slice(&mut out);
        Ok(Some(out))
    }
}

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        RawEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawDecoder
    }
}

/// Calls `/{service}/{method}` with the encoded message `body` and `authorization`.
pub async fn call(
    channel: &Channel,
    service: &str,
    method: &str,
    body: Vec<u8>,
    authorization: Option<&str>,
) -> Result<Vec<u8>, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel.clone()).max_encoding_message_size(64 * 1024 * 1024);
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let path: PathAndQuery = format!("/{service}/{method}")
        .parse()
        .map_err(|_| tonic::Status::internal("bad path"))?;
    let mut request = tonic::Request::new(body);
    if let Some(value) = authorization {
        let value: MetadataValue<_> = value.parse().map_err(|_| tonic::Status::internal("bad header"))?;
        request.metadata_mut().insert("authorization", value);
    }
    request.set_timeout(Duration::from_secs(30));
    grpc.unary(request, path, RawCodec).await.map(|r| r.into_inner())
}

/// The `ErrorInfo.reason` of a status, or "".
pub fn reason(status: &tonic::Status) -> String {
    status
        .get_details_error_info()
        .map(|info| info.reason)
        .unwrap_or_default()
}

/// The descriptors the servers are built from.
pub fn descriptors() -> prost_types::FileDescriptorSet {
    prost_types::FileDescriptorSet::decode(distnet_proto::FILE_DESCRIPTOR_SET).expect("descriptors")
}

// ---------------------------------------------------------------- end-to-end helpers

pub const DEPOT: (f64, f64) = (30.6586, 104.0648);

/// A unique request id without another dependency: time and a counter.
pub fn rid() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "e2e-{}-{}",
        Utc::now().timestamp_nanos_opt().unwrap_or_default(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

pub fn bearer(role: Role, sub: &str, areas: &[&str], depot: Option<&str>) -> Bearer {
    let mut claims =
        Claims::new(sub, role, Duration::from_secs(3600)).with_areas(areas.iter().map(|a| a.to_string()));
    claims.depot = depot.map(String::from);
    Bearer(Some(distnet_testkit::token(&claims)))
}

pub fn channel_for(channel: &Channel, bearer: Bearer) -> InterceptedService<Channel, Bearer> {
    InterceptedService::new(channel.clone(), bearer)
}

/// Tuesday 2026-11-24 10:00 in Chengdu: the week's order window is open, before the
/// 11:30 cut-off, so the order is delivered Wednesday morning.
pub fn tuesday_morning() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-24T10:00:00+08:00")
        .expect("time")
        .with_timezone(&Utc)
}

pub use distnet_testkit::eventually;

/// Listeners on ephemeral ports for customers, accreditation, allocation and
/// logistics, in that order, with `settings.services.*.url` pointing at them.
pub async fn listeners(settings: &mut Settings) -> [tokio::net::TcpListener; 4] {
    let mut bound = Vec::new();
    for _ in 0..4 {
        bound.push(tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind"));
    }
    let url = |l: &tokio::net::TcpListener| format!("http://{}", l.local_addr().expect("addr"));
    settings.services.customers.url = url(&bound[0]);
    settings.services.accreditation.url = url(&bound[1]);
    settings.services.allocation.url = url(&bound[2]);
    settings.services.logistics.url = url(&bound[3]);
    bound.try_into().expect("four listeners")
}

/// Every subscription DESIGN.md lists, kept to the events each service consumes.
pub fn wired(settings: &mut Settings) {
    let services: [(&str, &[&str]); 4] = [
        (distnet_customers::SERVICE, distnet_customers::CONSUMES),
        (distnet_accreditation::SERVICE, distnet_accreditation::CONSUMES),
        (distnet_allocation::SERVICE, distnet_allocation::CONSUMES),
        (distnet_logistics::SERVICE, distnet_logistics::CONSUMES),
    ];
    settings.events.subscriptions = Settings::default().events.subscriptions;
    settings.retain_subscribers(|service, event| {
        services
            .iter()
            .any(|(name, events)| *name == service && events.contains(&event))
    });
}

/// A dispatcher of the Chengdu DC.
pub type Dispatcher = distnet_proto::logistics::v1::logistics_service_client::LogisticsServiceClient<
    InterceptedService<Channel, Bearer>,
>;

/// The Chengdu DC and its inner zone: area-01, every day, twice daily.
pub async fn chengdu_depot_and_inner_zone(dispatcher: &mut Dispatcher) {
    use distnet_proto::common::v1::LatLng;
    use distnet_proto::logistics::v1::{Depot, Frequency, UpsertDepotRequest, UpsertZoneRequest, Zone};
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
                picking_capacity_cases: 2_000,
                ..Depot::default()
            }),
        })
        .await
        .expect("depot");
    dispatcher
        .upsert_zone(UpsertZoneRequest {
            request_id: rid(),
            zone: Some(Zone {
                name: "zones/inner".into(),
                display_name: "一环内".into(),
                depot: "depots/chengdu".into(),
                area_ids: vec!["area-01".into()],
                cycle_days: 1,
                cycle_day: 0,
                cycle_anchor: "2026-11-23".into(),
                frequency: Frequency::TwiceDaily as i32,
                ..Zone::default()
            }),
        })
        .await
        .expect("zone");
}

/// One van of the Chengdu DC: 45 cases, two crew, 08:00–15:00.
pub async fn chengdu_van(dispatcher: &mut Dispatcher) {
    use distnet_proto::common::v1::TimeOfDay;
    use distnet_proto::logistics::v1::{UpsertVehicleRequest, Vehicle};
    dispatcher
        .upsert_vehicle(UpsertVehicleRequest {
            request_id: rid(),
            vehicle: Some(Vehicle {
                name: "vehicles/van-01".into(),
                display_name: "川A-00001".into(),
                depot: "depots/chengdu".into(),
                capacity_cases: 45,
                crew_size: 2,
                shift_start: Some(TimeOfDay { hours: 8, minutes: 0 }),
                shift_end: Some(TimeOfDay {
                    hours: 15,
                    minutes: 0,
                }),
                ..Vehicle::default()
            }),
        })
        .await
        .expect("vehicle");
}

/// The Chengdu DC's first shipment, once an order has become one.
pub async fn first_shipment(dispatcher: &Dispatcher) -> distnet_proto::logistics::v1::Shipment {
    use distnet_proto::logistics::v1::ListShipmentsRequest;
    eventually("OrderConfirmed becomes a shipment", || {
        let mut dispatcher = dispatcher.clone();
        async move {
            dispatcher
                .list_shipments(ListShipmentsRequest {
                    depot: "depots/chengdu".into(),
                    ..ListShipmentsRequest::default()
                })
                .await
                .ok()
                .and_then(|r| r.into_inner().shipments.into_iter().next())
        }
    })
    .await
}

/// Plans the Chengdu DC's half-day of `shipment` (1 s of solver time, seed 1).
pub async fn plan_half_day_of(
    dispatcher: &mut Dispatcher,
    shipment: &distnet_proto::logistics::v1::Shipment,
) -> distnet_proto::logistics::v1::Plan {
    use distnet_proto::logistics::v1::PlanRoutesRequest;
    dispatcher
        .plan_routes(PlanRoutesRequest {
            request_id: rid(),
            depot: "depots/chengdu".into(),
            date: shipment.slot_date.clone(),
            half: shipment.slot_half,
            time_budget_seconds: 1,
            seed: 1,
        })
        .await
        .expect("planned")
        .into_inner()
}

/// Waits for a line of `distnet up`'s output that starts with `prefix`; the rest of
/// the line, trimmed.
pub async fn line_starting_with(
    lines: &mut tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    prefix: &str,
) -> String {
    let wait = async {
        while let Some(line) = lines.next_line().await.expect("read stdout") {
            if let Some(rest) = line.trim_start().strip_prefix(prefix) {
                return rest.trim().to_string();
            }
        }
        panic!("distnet up exited before printing `{prefix}`");
    };
    // A bound so a broken runner fails the test instead of hanging CI.
    tokio::time::timeout(Duration::from_secs(600), wait)
        .await
        .unwrap_or_else(|_| panic!("no `{prefix}` line from distnet up"))
}

/// A retailer's `StandingChanged` as accreditation's relay delivers it: licensed,
/// graded into `tier`, class GENERAL, a generous credit limit.
pub fn standing_changed(
    event_id: &str,
    customer: &str,
    area_id: &str,
    tier: i32,
) -> distnet_proto::events::v1::EventEnvelope {
    use distnet_proto::accreditation::v1::{CustomerClass, LicenseStatus, Standing};
    use distnet_proto::events::v1::{EventEnvelope, StandingChanged};
    let standing = Standing {
        customer: customer.into(),
        license_status: LicenseStatus::Active as i32,
        tier,
        grading_version: 1,
        customer_class: CustomerClass::General as i32,
        credit_limit: Some(distnet_proto::common::v1::Money {
            currency_code: "CNY".into(),
            fen: 1_000_000_000,
        }),
        version: 1,
        area_id: area_id.into(),
        ..Standing::default()
    };
    EventEnvelope {
        event_id: event_id.into(),
        event_type: "distnet.events.v1.StandingChanged".into(),
        source: "accreditation".into(),
        aggregate: customer.into(),
        payload: Some(
            prost_types::Any::from_msg(&StandingChanged {
                standing: Some(standing),
            })
            .expect("any"),
        ),
        ..EventEnvelope::default()
    }
}

/// `distnet up` with every service on a port of its own choosing, warnings logged,
/// stdout piped (for the lines it prints), stderr inherited, killed if the test drops
/// it. The caller adds its arguments and settings, then spawns.
pub fn distnet_up() -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_distnet"));
    command.arg("up");
    for service in ["CUSTOMERS", "ACCREDITATION", "ALLOCATION", "LOGISTICS"] {
        command.env(format!("DISTNET__SERVICES__{service}__PORT"), "0");
    }
    command
        .env("DISTNET__TELEMETRY__LOG_FILTER", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true);
    command
}

/// SIGTERM to `child`, which must then exit cleanly within a minute.
pub async fn terminate(child: &mut tokio::process::Child) {
    let pid = child.id().expect("pid").to_string();
    let signalled = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(signalled.success());
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .expect("exits after SIGTERM")
        .expect("status");
    assert!(status.success(), "{status:?}");
}

/// Waits for a spawned `distnet up` to be ready, and returns the customers service's
/// address and the admin token it printed; its stdout is read on from then on, so the
/// child never blocks on a full pipe.
pub async fn customers_when_ready(child: &mut tokio::process::Child) -> (String, String) {
    use tokio::io::AsyncBufReadExt as _;
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let addr = line_starting_with(&mut lines, "customers listening on").await;
    let token = line_starting_with(&mut lines, "export TOKEN=").await;
    line_starting_with(&mut lines, "ready;").await;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (addr, token)
}
