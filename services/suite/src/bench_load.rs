//! `distnet bench load <scenario>`: a closed-loop load generator against a suite that
//! is already running (`distnet up --demo`, or deployed), through its public gRPC API.
//!
//! - Discovers the retailers first by paging `ListCustomers` as an admin (ids and
//!   areas); `place-order` and `mixed` also pick the hot product (the scarce product
//!   with a committed allocation and the most supply left in the cycle, or `--product`)
//!   and say so when the order window is closed or nothing is allocated.
//! - `--concurrency` virtual users (tokio tasks, on one runtime thread per user up to
//!   one per core, as pgbench's `-j`; `--threads` sets it) call back to back until the
//!   duration ends, over one HTTP/2 channel per [`WORKERS_PER_CHANNEL`] users; a warm-up
//!   (`--warmup`, default 1 s) runs first and is not counted. Each user is a
//!   call-center agent of every discovered area with a token subject of its own
//!   (`bench-agent-NNN`), minted with the configured HS256 secret as `distnet token`
//!   does, so per-caller limits apply per user; still, benchmark a suite started with
//!   `DISTNET__SERVER__RATE_LIMIT__PER_SECOND=0`.
//! - Read answers (`GetCustomer`, `ListCustomers`, `GetEntitlements`) are checked to
//!   be well-formed messages and their fields skipped, not built ([`Reads`]), as
//!   pgbench discards its rows; writes' answers are decoded whole.
//! - Every user keeps its own latencies and counts (no locks on the hot path); they
//!   are merged at the end. Latency is per call, whatever its outcome. Outcomes:
//!   `ok`; business refusals (`FAILED_PRECONDITION`: quota exhausted, window closed,
//!   not allocated …) by their `ErrorInfo` reason; other errors by gRPC code and reason
//!   (`RESOURCE_EXHAUSTED/RATE_LIMITED`), transport failures (no answer from a server)
//!   among them and also counted apart.
//! - `--json` writes the figures for comparison between runs; `--pgbench` then runs the
//!   installed `pgbench` with the equivalent SQL ([`reference`]) against the
//!   suite's database at the same concurrency and duration and prints
//!   `ratio = grpc_rate / pgbench_tps`: how much of the database's own rate the service
//!   delivers.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use distnet_platform::Settings;
use distnet_platform::auth::{Claims, Role, TokenIssuer};
use distnet_platform::settings::TokenAlgorithm;
use distnet_proto::allocation::v1 as allocation;
use distnet_proto::allocation::v1::allocation_service_client::AllocationServiceClient;
use distnet_proto::customers::v1 as customers;
use distnet_proto::customers::v1::customer_service_client::CustomerServiceClient;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::demo::{BearerToken, bearer, connect};

/// Virtual users sharing one HTTP/2 connection to a service.
const WORKERS_PER_CHANNEL: usize = 8;

/// What the virtual users do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// GetCustomer of a random retailer.
    GetCustomer,
    /// ListCustomers, the first page (--page-size) of a random area.
    ListCustomers,
    /// GetEntitlements of a random retailer in the cycle.
    GetEntitlements,
    /// PlaceOrder of 1 carton of the hot product for a random retailer.
    PlaceOrder,
    /// A call-center day: GetCustomer 40 %, GetEntitlements 25 %, ListCustomers 15 %,
    /// PlaceOrder 10 %, LogInteraction 10 % (MIXED).
    Mixed,
    /// The customers service's gRPC health check: the transport's own ceiling on this
    /// machine (HTTP/2 and the server's pipeline, no token, no handler, no database),
    /// against which the reads' rates can be read.
    Ping,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Self::GetCustomer => "get-customer",
            Self::ListCustomers => "list-customers",
            Self::GetEntitlements => "get-entitlements",
            Self::PlaceOrder => "place-order",
            Self::Mixed => "mixed",
            Self::Ping => "ping",
        }
    }

    /// The RPCs it calls with their weights.
    fn mix(self) -> &'static [(Rpc, u32)] {
        match self {
            Self::GetCustomer => &[(Rpc::GetCustomer, 1)],
            Self::ListCustomers => &[(Rpc::ListCustomers, 1)],
            Self::GetEntitlements => &[(Rpc::GetEntitlements, 1)],
            Self::PlaceOrder => &[(Rpc::PlaceOrder, 1)],
            Self::Mixed => MIXED,
            Self::Ping => &[(Rpc::Ping, 1)],
        }
    }

    fn calls(self, rpc: Rpc) -> bool {
        self.mix().iter().any(|(r, _)| *r == rpc)
    }
}

/// A call-center agent's day, in percent of calls (DOMAIN.md: agents phone ~140
/// retailers a day for their weekly order and take inbound calls): the retailer's
/// record on screen for every call, an area's list while working through it, what the
/// retailer may still order of the scarce products, now and then an order of the hot
/// product, and the call logged with its outcome.
const MIXED: &[(Rpc, u32)] = &[
    (Rpc::GetCustomer, 40),
    (Rpc::ListCustomers, 15),
    (Rpc::GetEntitlements, 25),
    (Rpc::PlaceOrder, 10),
    (Rpc::LogInteraction, 10),
];

const POINT_SELECT: &str = include_str!("../../../bench/pgbench/point_select.sql");
const LIST_PAGE: &str = include_str!("../../../bench/pgbench/list_page.sql");
const ENTITLEMENTS: &str = include_str!("../../../bench/pgbench/entitlements.sql");
const ENTITLEMENTS_LIVE: &str = include_str!("../../../bench/pgbench/entitlements_live.sql");
const PLACE_ORDER: &str = include_str!("../../../bench/pgbench/place_order.sql");
const ORDER_GUARD: &str = include_str!("../../../bench/pgbench/order_guard.sql");
const LOG_INTERACTION: &str = include_str!("../../../bench/pgbench/log_interaction.sql");
const SCRATCH_SETUP: &str = include_str!("../../../bench/pgbench/scratch_setup.sql");

/// Every script: name, body, and the setup it needs first (its scratch tables are
/// dropped afterwards).
pub const SCRIPTS: &[(&str, &str, Option<&str>)] = &[
    ("point_select.sql", POINT_SELECT, None),
    ("list_page.sql", LIST_PAGE, None),
    ("entitlements.sql", ENTITLEMENTS, None),
    ("entitlements_live.sql", ENTITLEMENTS_LIVE, None),
    ("place_order.sql", PLACE_ORDER, None),
    ("order_guard.sql", ORDER_GUARD, Some(SCRATCH_SETUP)),
    ("log_interaction.sql", LOG_INTERACTION, Some(SCRATCH_SETUP)),
];

/// A scenario's pgbench reference (bench/pgbench/, embedded): each of its RPCs'
/// equivalent script ([`Rpc::reference`]) weighted as the scenario weighs the RPC —
/// the point select for a read, the guarded order transaction for PlaceOrder (issue
/// 8's references), the interaction's insert for LogInteraction — so `mixed` is
/// compared with the same mix of database work (`pgbench -f script@weight …`).
/// `--pgbench-script` picks one other of [`SCRIPTS`] instead, e.g. the handler's own
/// SQL (`list_page.sql`, `entitlements.sql`, `place_order.sql`) to see what the
/// database alone makes of exactly that work.
pub fn reference(scenario: Scenario) -> Vec<(&'static str, u32)> {
    let mut scripts: Vec<(&'static str, u32)> = Vec::new();
    for &(rpc, weight) in scenario.mix() {
        match scripts.iter_mut().find(|(name, _)| *name == rpc.reference()) {
            Some((_, sum)) => *sum += weight,
            None => scripts.push((rpc.reference(), weight)),
        }
    }
    scripts
}

#[derive(Clone, Debug, clap::Args)]
pub struct LoadArgs {
    #[arg(value_enum)]
    pub scenario: Scenario,
    /// Virtual users calling back to back.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Threads the users run on; default: one per user up to one per core, as
    /// pgbench runs one thread for one client (`-j`). At concurrency 1 a second
    /// thread only adds a wake-up between threads to every call.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Seconds measured (after the warm-up).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds of calls before measuring, not counted.
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Write the figures as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Then run pgbench with the equivalent SQL against the suite's database.
    #[arg(long)]
    pub pgbench: bool,
    /// The pgbench script instead of the scenario's default (a file name of
    /// bench/pgbench/, e.g. entitlements.sql).
    #[arg(long)]
    pub pgbench_script: Option<String>,
    /// The database for --pgbench; defaults to DATABASE_URL / database.url.
    #[arg(long)]
    pub database_url: Option<String>,
    /// The customers service; defaults to services.customers.url.
    #[arg(long)]
    pub customers: Option<String>,
    /// The allocation service; defaults to services.allocation.url.
    #[arg(long)]
    pub allocation: Option<String>,
    /// The cycle, e.g. 2026-W49; defaults to this week (Asia/Shanghai).
    #[arg(long)]
    pub cycle: Option<String>,
    /// The hot product's sku for PlaceOrder; defaults to the scarce product with the
    /// most supply left in the cycle.
    #[arg(long)]
    pub product: Option<String>,
    /// Open loop: this many calls per second in all, spread over the users (each on a
    /// fixed schedule; latency counts from the scheduled start). Default: closed
    /// loop, every user calling back to back.
    #[arg(long)]
    pub rate: Option<f64>,
    /// ListCustomers page size.
    #[arg(long, default_value_t = 50)]
    pub page_size: i32,
    /// PlaceOrder lines beside the hot product's: 1 carton each of this many products
    /// that are not rationed (the catalog's first, taken from stock), as a weekly
    /// order of several brands.
    #[arg(long, default_value_t = 0)]
    pub regular_lines: usize,
}

impl LoadArgs {
    /// The load generator's runtime threads ([`LoadArgs::threads`]).
    pub fn worker_threads(&self) -> usize {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        self.threads.unwrap_or(self.concurrency.min(cores)).max(1)
    }
}

/// The RPCs the scenarios call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rpc {
    GetCustomer,
    ListCustomers,
    GetEntitlements,
    PlaceOrder,
    LogInteraction,
    /// grpc.health.v1.Health/Check
    Ping,
}

const RPCS: [Rpc; 6] = [
    Rpc::GetCustomer,
    Rpc::ListCustomers,
    Rpc::GetEntitlements,
    Rpc::PlaceOrder,
    Rpc::LogInteraction,
    Rpc::Ping,
];

impl Rpc {
    fn name(self) -> &'static str {
        match self {
            Self::GetCustomer => "GetCustomer",
            Self::ListCustomers => "ListCustomers",
            Self::GetEntitlements => "GetEntitlements",
            Self::PlaceOrder => "PlaceOrder",
            Self::LogInteraction => "LogInteraction",
            Self::Ping => "Health.Check",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    fn on_allocation(self) -> bool {
        matches!(self, Self::GetEntitlements | Self::PlaceOrder)
    }

    /// The pgbench script that does the database work the call cannot do without.
    fn reference(self) -> &'static str {
        match self {
            Self::GetCustomer | Self::ListCustomers | Self::GetEntitlements | Self::Ping => {
                "point_select.sql"
            }
            Self::PlaceOrder => "order_guard.sql",
            Self::LogInteraction => "log_interaction.sql",
        }
    }
}

type CustomersClient = CustomerServiceClient<InterceptedService<Channel, BearerToken>>;
type AllocationClient = AllocationServiceClient<InterceptedService<Channel, BearerToken>>;

const GET_CUSTOMER: &str = "/distnet.customers.v1.CustomerService/GetCustomer";
const LIST_CUSTOMERS: &str = "/distnet.customers.v1.CustomerService/ListCustomers";
const GET_ENTITLEMENTS: &str = "/distnet.allocation.v1.AllocationService/GetEntitlements";

/// A user's read calls, whose answers it walks but does not build: each answer must
/// be a well-formed message (its top-level fields are read and skipped), as pgbench
/// receives and discards its rows. Building a list page's 50 `Customer`s cost the
/// generator more CPU than the service spent answering, on the same cores.
#[derive(Clone)]
struct Reads(tonic::client::Grpc<InterceptedService<Channel, BearerToken>>);

/// Any answer, skipped field by field.
#[derive(Clone, Copy, PartialEq, prost::Message)]
struct Skipped {}

impl Reads {
    fn new(channel: Channel, token: BearerToken) -> Self {
        Self(tonic::client::Grpc::new(InterceptedService::new(channel, token)))
    }

    async fn call<R: prost::Message + Send + 'static>(
        &mut self,
        path: &'static str,
        request: R,
    ) -> Result<(), tonic::Status> {
        // As the generated clients of the other calls say it, so that one channel
        // failure is counted the same whichever call met it.
        self.0.ready().await.map_err(|e| {
            let error: tonic::codegen::StdError = e.into();
            tonic::Status::unknown(format!("Service was not ready: {error}"))
        })?;
        self.0
            .unary(
                tonic::Request::new(request),
                tonic::codegen::http::uri::PathAndQuery::from_static(path),
                tonic_prost::ProstCodec::<R, Skipped>::default(),
            )
            .await
            .map(drop)
    }
}

/// What the users call with, fixed before the load starts.
struct Plan {
    scenario: Scenario,
    /// `customers/{id}` of every listed retailer.
    customers: Vec<String>,
    areas: Vec<String>,
    /// `cycles/{week}`
    cycle: String,
    /// `products/{sku}` of the hot product; empty when there is none.
    product: String,
    /// `products/{sku}` of the products not rationed that each order also asks for.
    regular: Vec<String>,
    page_size: i32,
    /// Request-id prefix of this run, so that a rerun is not a replay.
    run: String,
    /// With `--rate`: the time between one user's calls (they start on schedule,
    /// and latency counts from the scheduled start); zero = back to back.
    pace: Duration,
}

/// xorshift64*: a stream per user, no shared state.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next()) * n as u128) >> 64) as usize
    }

    fn pick<'a>(&mut self, items: &'a [String]) -> &'a str {
        items.get(self.below(items.len())).map_or("", String::as_str)
    }
}

/// What one call came to.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Ok,
    /// A business refusal (`FAILED_PRECONDITION`) by its reason.
    Refused(String),
    /// Anything else: `CODE/REASON`, or `CODE: message` without `ErrorInfo`.
    Failed {
        key: String,
        transport: bool,
    },
}

fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

fn classify(status: &tonic::Status) -> Outcome {
    let code = status.code();
    let reason = error_info_reason(status);
    if code == tonic::Code::FailedPrecondition {
        return Outcome::Refused(reason.unwrap_or_else(|| code_name(code).to_string()));
    }
    match reason {
        Some(reason) => Outcome::Failed {
            key: format!("{}/{reason}", code_name(code)),
            transport: false,
        },
        None => {
            // A status made on this side from an I/O error (refused, reset, timed out)
            // carries that error; one a server sent does not.
            let transport = std::error::Error::source(status).is_some();
            let message: String = status.message().chars().take(80).collect();
            Outcome::Failed {
                key: format!("{}: {message}", code_name(code)),
                transport,
            }
        }
    }
}

/// The `ErrorInfo.reason` in a status's `google.rpc.Status` details, if any.
fn error_info_reason(status: &tonic::Status) -> Option<String> {
    use tonic_types::StatusExt as _;
    status.get_details_error_info().map(|info| info.reason)
}

/// One user's figures; merged after the run.
#[derive(Default)]
struct Tally {
    /// Microseconds per call, by [`Rpc::index`].
    latencies_us: [Vec<u32>; RPCS.len()],
    ok: [u64; RPCS.len()],
    refused: [u64; RPCS.len()],
    failed: [u64; RPCS.len()],
    refusals: BTreeMap<String, u64>,
    errors: BTreeMap<String, u64>,
    transport: u64,
}

impl Tally {
    fn record(&mut self, rpc: Rpc, latency: Duration, outcome: Outcome) {
        let i = rpc.index();
        self.latencies_us[i].push(u32::try_from(latency.as_micros()).unwrap_or(u32::MAX));
        match outcome {
            Outcome::Ok => self.ok[i] += 1,
            Outcome::Refused(reason) => {
                self.refused[i] += 1;
                *self.refusals.entry(reason).or_default() += 1;
            }
            Outcome::Failed { key, transport } => {
                self.failed[i] += 1;
                self.transport += u64::from(transport);
                *self.errors.entry(key).or_default() += 1;
            }
        }
    }

    fn merge(&mut self, other: Tally) {
        for (i, latencies) in other.latencies_us.into_iter().enumerate() {
            self.latencies_us[i].extend(latencies);
            self.ok[i] += other.ok[i];
            self.refused[i] += other.refused[i];
            self.failed[i] += other.failed[i];
        }
        for (reason, n) in other.refusals {
            *self.refusals.entry(reason).or_default() += n;
        }
        for (key, n) in other.errors {
            *self.errors.entry(key).or_default() += n;
        }
        self.transport += other.transport;
    }
}

/// An RPC of `mix` at random by weight (`total` = the sum of the weights).
fn choose(rng: &mut Rng, mix: &[(Rpc, u32)], total: u32) -> Rpc {
    let mut roll = u32::try_from(rng.below(total.max(1) as usize)).unwrap_or(0);
    for (rpc, weight) in mix {
        if roll < *weight {
            return *rpc;
        }
        roll -= weight;
    }
    mix.first().map_or(Rpc::GetCustomer, |(rpc, _)| *rpc)
}

/// One virtual user.
struct Worker {
    index: usize,
    customers: CustomersClient,
    allocation: AllocationClient,
    /// GetCustomer and ListCustomers, answers skipped.
    customer_reads: Reads,
    /// GetEntitlements, answer skipped.
    allocation_reads: Reads,
    /// On the customers service's channel.
    health: HealthClient<Channel>,
    rng: Rng,
    sent: u64,
}

impl Worker {
    async fn run(
        mut self,
        plan: Arc<Plan>,
        measure_from: Instant,
        until: Instant,
        counter: Arc<AtomicU64>,
    ) -> Tally {
        let mix = plan.scenario.mix();
        let total: u32 = mix.iter().map(|(_, w)| w).sum();
        let mut tally = Tally::default();
        // Paced users start spread over one interval and keep their schedule: a late
        // call is timed from when it should have started (no coordinated omission).
        let mut next = Instant::now() + plan.pace.mul_f64(self.rng.unit());
        loop {
            let begun = if plan.pace.is_zero() {
                Instant::now()
            } else {
                tokio::time::sleep_until(next.into()).await;
                let scheduled = next;
                next += plan.pace;
                scheduled
            };
            if begun >= until {
                break;
            }
            let rpc = choose(&mut self.rng, mix, total);
            let outcome = match self.call(rpc, &plan).await {
                Ok(()) => Outcome::Ok,
                Err(status) => classify(&status),
            };
            if begun >= measure_from {
                tally.record(rpc, begun.elapsed(), outcome);
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }
        tally
    }

    fn request_id(&mut self, plan: &Plan) -> String {
        self.sent += 1;
        format!("{}-{}-{}", plan.run, self.index, self.sent)
    }

    async fn call(&mut self, rpc: Rpc, plan: &Plan) -> Result<(), tonic::Status> {
        match rpc {
            Rpc::GetCustomer => {
                let name = self.rng.pick(&plan.customers).to_string();
                self.customer_reads
                    .call(GET_CUSTOMER, customers::GetCustomerRequest { name })
                    .await
            }
            Rpc::ListCustomers => {
                let area_id = self.rng.pick(&plan.areas).to_string();
                let request = customers::ListCustomersRequest {
                    page_size: plan.page_size,
                    area_id,
                    ..customers::ListCustomersRequest::default()
                };
                self.customer_reads.call(LIST_CUSTOMERS, request).await
            }
            Rpc::GetEntitlements => {
                let customer = self.rng.pick(&plan.customers).to_string();
                let request = allocation::GetEntitlementsRequest {
                    customer,
                    cycle: plan.cycle.clone(),
                };
                self.allocation_reads.call(GET_ENTITLEMENTS, request).await
            }
            Rpc::PlaceOrder => {
                let customer = self.rng.pick(&plan.customers).to_string();
                let request_id = self.request_id(plan);
                self.allocation
                    .place_order(allocation::PlaceOrderRequest {
                        request_id,
                        customer,
                        cycle: plan.cycle.clone(),
                        channel: allocation::Channel::CallCenter as i32,
                        lines: std::iter::once(&plan.product)
                            .chain(&plan.regular)
                            .map(|product| allocation::PlaceOrderLine {
                                product: product.clone(),
                                cartons: 1,
                            })
                            .collect(),
                    })
                    .await
                    .map(drop)
            }
            Rpc::LogInteraction => {
                let customer = self.rng.pick(&plan.customers).to_string();
                let request_id = self.request_id(plan);
                let answered = self.rng.below(4) != 0;
                self.customers
                    .log_interaction(customers::LogInteractionRequest {
                        request_id,
                        customer,
                        channel: customers::Channel::CallOut as i32,
                        outcome: if answered { "ORDER_TAKEN" } else { "NO_ANSWER" }.into(),
                        notes: "电话订货 (bench)".into(),
                        ..customers::LogInteractionRequest::default()
                    })
                    .await
                    .map(drop)
            }
            Rpc::Ping => self
                .health
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await
                .map(drop),
        }
    }
}

/// Latency figures in milliseconds, nearest rank.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Percentiles {
    p50: f64,
    p95: f64,
    p99: f64,
    max: f64,
    mean: f64,
}

fn percentile(sorted_us: &[u32], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let rank = (p * sorted_us.len() as f64).ceil() as usize;
    let index = rank.clamp(1, sorted_us.len()) - 1;
    sorted_us.get(index).map_or(0.0, |us| f64::from(*us) / 1000.0)
}

fn percentiles(latencies_us: &mut [u32]) -> Percentiles {
    latencies_us.sort_unstable();
    let sum: u64 = latencies_us.iter().map(|us| u64::from(*us)).sum();
    Percentiles {
        p50: percentile(latencies_us, 0.50),
        p95: percentile(latencies_us, 0.95),
        p99: percentile(latencies_us, 0.99),
        max: latencies_us.last().map_or(0.0, |us| f64::from(*us) / 1000.0),
        mean: if latencies_us.is_empty() {
            0.0
        } else {
            sum as f64 / latencies_us.len() as f64 / 1000.0
        },
    }
}

impl Percentiles {
    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "p50": round3(self.p50),
            "p95": round3(self.p95),
            "p99": round3(self.p99),
            "max": round3(self.max),
            "mean": round3(self.mean),
        })
    }

    fn line(&self) -> String {
        format!(
            "p50 {:.2}  p95 {:.2}  p99 {:.2}  max {:.2}  (mean {:.2})",
            self.p50, self.p95, self.p99, self.max, self.mean
        )
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The merged run.
struct Summary {
    elapsed_s: f64,
    calls: u64,
    ok: u64,
    refused: u64,
    failed: u64,
    transport: u64,
    rate: f64,
    latency: Percentiles,
    /// Per RPC called: (calls, ok, refused, failed, latency).
    rpcs: Vec<(Rpc, u64, u64, u64, u64, Percentiles)>,
    refusals: BTreeMap<String, u64>,
    errors: BTreeMap<String, u64>,
}

fn summarize(mut tally: Tally, elapsed_s: f64) -> Summary {
    let mut all: Vec<u32> = Vec::with_capacity(tally.latencies_us.iter().map(Vec::len).sum());
    let mut rpcs = Vec::new();
    for rpc in RPCS {
        let i = rpc.index();
        let latencies = &mut tally.latencies_us[i];
        if latencies.is_empty() {
            continue;
        }
        all.extend_from_slice(latencies);
        let calls = latencies.len() as u64;
        let figures = percentiles(latencies);
        rpcs.push((
            rpc,
            calls,
            tally.ok[i],
            tally.refused[i],
            tally.failed[i],
            figures,
        ));
    }
    let calls = all.len() as u64;
    Summary {
        elapsed_s,
        calls,
        ok: tally.ok.iter().sum(),
        refused: tally.refused.iter().sum(),
        failed: tally.failed.iter().sum(),
        transport: tally.transport,
        rate: if elapsed_s > 0.0 {
            calls as f64 / elapsed_s
        } else {
            0.0
        },
        latency: percentiles(&mut all),
        rpcs,
        refusals: tally.refusals,
        errors: tally.errors,
    }
}

/// The hot product and its supply in the cycle.
struct HotProduct {
    /// `products/{sku}`
    product: String,
    available: i64,
    remaining: i64,
}

/// pgbench's figures.
struct PgbenchRun {
    /// The script, or the weighted scripts (`a.sql@80 + b.sql@20`).
    script: String,
    command: String,
    tps: f64,
    latency_avg_ms: Option<f64>,
    transactions: Option<u64>,
    failed: Option<u64>,
}

pub async fn run(settings: Settings, args: LoadArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.concurrency >= 1, "--concurrency must be at least 1");
    anyhow::ensure!(
        args.rate.is_none_or(|r| r.is_finite() && r > 0.0),
        "--rate must be a positive number of calls per second"
    );
    anyhow::ensure!(
        args.duration.is_finite() && args.duration > 0.0,
        "--duration must be a positive number of seconds"
    );
    anyhow::ensure!(
        args.warmup.is_finite() && args.warmup >= 0.0,
        "--warmup must not be negative"
    );
    anyhow::ensure!(
        (1..=1000).contains(&args.page_size),
        "--page-size must be 1..=1000"
    );
    anyhow::ensure!(
        settings.auth.algorithm == TokenAlgorithm::HS256,
        "bench load mints HS256 tokens with auth.hs256_secret; the settings use another algorithm"
    );
    let issuer = TokenIssuer::hs256(settings.auth.hs256_secret.expose());
    let customers_url = args
        .customers
        .clone()
        .unwrap_or_else(|| settings.services.customers.url.clone());
    let allocation_url = args
        .allocation
        .clone()
        .unwrap_or_else(|| settings.services.allocation.url.clone());
    let scenario = args.scenario;
    let ttl = Duration::from_secs_f64(args.warmup + args.duration) + Duration::from_secs(3600);
    let admin = issuer.mint(&Claims::new("bench-load-admin", Role::Admin, ttl))?;

    // Discovery, as an admin: who the retailers are, and for orders the hot product.
    let discovery = connect(&customers_url).await?;
    let retailers = list_retailers(&discovery, &admin).await?;
    anyhow::ensure!(
        !retailers.is_empty(),
        "no customers at {customers_url}: seed the suite first (distnet up --demo, or distnet seed)"
    );
    let mut areas: Vec<String> = retailers.iter().map(|(_, area)| area.clone()).collect();
    areas.sort();
    areas.dedup();
    let cycle = match &args.cycle {
        Some(cycle) => format!("cycles/{}", cycle.trim_start_matches("cycles/")),
        None => format!("cycles/{}", crate::demo_allocation::current_cycle()),
    };
    let uses_allocation = RPCS.iter().any(|rpc| rpc.on_allocation() && scenario.calls(*rpc));
    let admin_allocation = if uses_allocation {
        Some(AllocationServiceClient::with_interceptor(
            connect(&allocation_url).await?,
            bearer(&admin)?,
        ))
    } else {
        None
    };
    let mut hot = None;
    let mut regular = Vec::new();
    if let (true, Some(client)) = (scenario.calls(Rpc::PlaceOrder), &admin_allocation) {
        let mut client = client.clone();
        hot = hot_product(&mut client, &cycle, args.product.as_deref()).await?;
        regular = regular_products(&mut client, args.regular_lines).await?;
        if hot.is_none() {
            println!(
                "warning: no committed allocation of a scarce product in {cycle}: every PlaceOrder will be \
                 refused (commit the cycle's allocation, or pass --product and --cycle)"
            );
        }
        window_warning(&mut client, &cycle).await;
    }
    let product = hot
        .as_ref()
        .map(|h| h.product.clone())
        .or_else(|| {
            args.product
                .as_ref()
                .map(|sku| format!("products/{}", sku.trim_start_matches("products/")))
        })
        .unwrap_or_default();

    let threads = tokio::runtime::Handle::current().metrics().num_workers();
    println!(
        "bench load {}: {} users on {threads} thread{} for {:.1} s after {:.1} s of warm-up",
        scenario.name(),
        args.concurrency,
        if threads == 1 { "" } else { "s" },
        args.duration,
        args.warmup
    );
    println!(
        "  customers {customers_url}{}",
        if uses_allocation {
            format!(", allocation {allocation_url}")
        } else {
            String::new()
        }
    );
    println!(
        "  {} retailers in {} areas; cycle {cycle}",
        retailers.len(),
        areas.len()
    );
    if let Some(hot) = &hot {
        println!(
            "  hot product {}: {} of {} cartons left in the cycle",
            hot.product, hot.remaining, hot.available
        );
    }
    if !regular.is_empty() {
        println!("  each order also asks for 1 carton of {}", regular.join(", "));
    }
    if let Some(hint) = rate_limit_hint(&settings, scenario) {
        println!("  {hint}");
    }

    let plan = Arc::new(Plan {
        scenario,
        customers: retailers.iter().map(|(name, _)| name.clone()).collect(),
        areas: areas.clone(),
        cycle: cycle.clone(),
        product: product.clone(),
        regular,
        page_size: args.page_size,
        pace: match args.rate {
            Some(rate) if rate > 0.0 => Duration::from_secs_f64(args.concurrency as f64 / rate),
            _ => Duration::ZERO,
        },
        run: format!("bench-load-{}", chrono::Utc::now().timestamp_millis()),
    });
    let workers = workers(
        &issuer,
        &areas,
        ttl,
        args.concurrency,
        &customers_url,
        &allocation_url,
        uses_allocation,
    )
    .await?;
    let warmup = Duration::from_secs_f64(args.warmup);
    let duration = Duration::from_secs_f64(args.duration);
    let (tally, elapsed) = load(plan.clone(), workers, warmup, duration).await;
    let summary = summarize(tally, elapsed);
    print_summary(scenario, &summary);
    if let (Some(hot), Some(client)) = (&hot, &admin_allocation) {
        let mut client = client.clone();
        if let Ok(after) = supply(&mut client, &hot.product, &cycle).await {
            println!(
                "  supply of {}: {} cartons left before the warm-up, {} after the run",
                hot.product, hot.remaining, after.remaining
            );
        }
    }
    if scenario.calls(Rpc::PlaceOrder) {
        let orders = summary
            .rpcs
            .iter()
            .find(|r| r.0 == Rpc::PlaceOrder)
            .map_or(0, |r| r.2);
        if orders == 0 && summary.calls > 0 {
            println!(
                "  note: no order was accepted: every PlaceOrder was refused or failed (see the reasons above)"
            );
        }
    }

    let mut pgbench_outcome: Option<anyhow::Result<PgbenchRun>> = None;
    if args.pgbench {
        let outcome = pgbench(&settings, &args, &plan, &retailers).await;
        match &outcome {
            Ok(run) => {
                println!(
                    "pgbench {}: {:.1} tps (without initial connection time), latency average {}",
                    run.script,
                    run.tps,
                    run.latency_avg_ms
                        .map_or_else(|| "?".to_string(), |ms| format!("{ms:.3} ms"))
                );
                println!("  {}", run.command);
                if let Some(failed) = run.failed.filter(|f| *f > 0) {
                    println!("  {failed} pgbench transactions failed");
                }
                if run.tps > 0.0 {
                    println!(
                        "  ratio = grpc_rate / pgbench_tps = {:.1} / {:.1} = {:.3}",
                        summary.rate,
                        run.tps,
                        summary.rate / run.tps
                    );
                }
            }
            Err(error) => println!("pgbench: {error:#}"),
        }
        pgbench_outcome = Some(outcome);
    }

    if let Some(path) = &args.json {
        let report = json_report(
            &args,
            &summary,
            pgbench_outcome.as_ref(),
            &Target {
                customers: &customers_url,
                allocation: &allocation_url,
                retailers: retailers.len(),
                areas: areas.len(),
                cycle: &cycle,
                product: &product,
            },
        );
        std::fs::write(path, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
        println!("figures written to {}", path.display());
    }
    if let Some(Err(error)) = pgbench_outcome {
        return Err(error.context("--pgbench"));
    }
    Ok(())
}

/// Every retailer's name and area, paging `ListCustomers` as an admin.
async fn list_retailers(channel: &Channel, admin: &str) -> anyhow::Result<Vec<(String, String)>> {
    let mut client = CustomerServiceClient::with_interceptor(channel.clone(), bearer(admin)?)
        .max_decoding_message_size(64 << 20);
    let mut out = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_customers(customers::ListCustomersRequest {
                page_size: 1000,
                page_token: page_token.clone(),
                ..customers::ListCustomersRequest::default()
            })
            .await
            .map_err(|s| anyhow::anyhow!("listing customers: {} {}", code_name(s.code()), s.message()))?
            .into_inner();
        out.extend(page.customers.into_iter().map(|c| (c.name, c.area_id)));
        if page.next_page_token.is_empty() {
            return Ok(out);
        }
        page_token = page.next_page_token;
    }
}

async fn supply(
    client: &mut AllocationClient,
    product: &str,
    cycle: &str,
) -> Result<allocation::Supply, tonic::Status> {
    Ok(client
        .get_supply(allocation::GetSupplyRequest {
            product: product.to_string(),
            cycle: cycle.to_string(),
        })
        .await?
        .into_inner())
}

/// The catalog's first `count` products that are not rationed.
async fn regular_products(client: &mut AllocationClient, count: usize) -> anyhow::Result<Vec<String>> {
    let mut found = Vec::new();
    let mut page_token = String::new();
    while found.len() < count {
        let page = client
            .list_products(allocation::ListProductsRequest {
                page_size: 100,
                page_token: page_token.clone(),
                scarce_only: false,
            })
            .await
            .map_err(|s| anyhow::anyhow!("listing the products: {} {}", code_name(s.code()), s.message()))?
            .into_inner();
        found.extend(
            page.products
                .into_iter()
                .filter(|p| !p.scarce)
                .map(|p| format!("products/{}", p.sku)),
        );
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    if found.len() < count {
        anyhow::bail!(
            "--regular-lines {count}: the catalog has {} products that are not rationed",
            found.len()
        );
    }
    found.truncate(count);
    Ok(found)
}

/// `sku` when given; otherwise the product with a committed allocation in the cycle
/// that has the most supply left.
async fn hot_product(
    client: &mut AllocationClient,
    cycle: &str,
    sku: Option<&str>,
) -> anyhow::Result<Option<HotProduct>> {
    let candidates: Vec<String> = match sku {
        Some(sku) => vec![format!("products/{}", sku.trim_start_matches("products/"))],
        None => {
            let mut products = Vec::new();
            let mut page_token = String::new();
            loop {
                let page = client
                    .list_allocations(allocation::ListAllocationsRequest {
                        cycle: cycle.to_string(),
                        page_size: 100,
                        page_token: page_token.clone(),
                        ..allocation::ListAllocationsRequest::default()
                    })
                    .await
                    .map_err(|s| {
                        anyhow::anyhow!(
                            "listing the allocations of {cycle}: {} {}",
                            code_name(s.code()),
                            s.message()
                        )
                    })?
                    .into_inner();
                products.extend(page.allocations.into_iter().map(|a| a.product));
                if page.next_page_token.is_empty() {
                    break;
                }
                page_token = page.next_page_token;
            }
            products.sort();
            products.dedup();
            products
        }
    };
    let mut best: Option<HotProduct> = None;
    for product in candidates {
        let found = supply(client, &product, cycle).await;
        let (available, remaining) = match found {
            Ok(s) => (s.available, s.remaining),
            Err(status) if sku.is_some() => {
                println!(
                    "warning: no supply of {product} in {cycle}: {} {}",
                    code_name(status.code()),
                    status.message()
                );
                (0, 0)
            }
            Err(_) => continue,
        };
        if best.as_ref().is_none_or(|b| remaining > b.remaining) {
            best = Some(HotProduct {
                product,
                available,
                remaining,
            });
        }
    }
    Ok(best)
}

/// Says when the cycle's order window is not open now: every order is refused then.
async fn window_warning(client: &mut AllocationClient, cycle: &str) {
    let Ok(found) = client
        .get_cycle(allocation::GetCycleRequest {
            name: cycle.to_string(),
        })
        .await
    else {
        return;
    };
    let found = found.into_inner();
    let at = |t: &Option<prost_types::Timestamp>| t.as_ref().and_then(distnet_platform::wire::from_timestamp);
    if let (Some(opens), Some(closes)) = (at(&found.open_time), at(&found.close_time)) {
        let now = chrono::Utc::now();
        if now < opens || now >= closes {
            println!(
                "warning: the order window of {cycle} is closed now (open {opens} to {closes}): every PlaceOrder \
                 will be refused WINDOW_CLOSED"
            );
        }
    }
}

/// The hint about per-caller rate limits, when the scenario calls a limited RPC.
fn rate_limit_hint(settings: &Settings, scenario: Scenario) -> Option<String> {
    let limited: Vec<&str> = RPCS
        .iter()
        .filter(|rpc| scenario.calls(**rpc))
        .map(|rpc| rpc.name())
        .filter(|name| settings.server.rate_limit.methods.iter().any(|m| m == name))
        .collect();
    (!limited.is_empty()).then(|| {
        format!(
            "note: per-caller rate limits (server.rate_limit) apply to {}; every user has a token subject of \
             its own, but benchmark a suite started with DISTNET__SERVER__RATE_LIMIT__PER_SECOND=0 (calls \
             refused for their rate count as RESOURCE_EXHAUSTED/RATE_LIMITED errors)",
            limited.join(", ")
        )
    })
}

/// The users: each a call-center agent of every area with its own subject, sharing a
/// channel per service with the next users up to [`WORKERS_PER_CHANNEL`].
async fn workers(
    issuer: &TokenIssuer,
    areas: &[String],
    ttl: Duration,
    concurrency: usize,
    customers_url: &str,
    allocation_url: &str,
    uses_allocation: bool,
) -> anyhow::Result<Vec<Worker>> {
    let channels = concurrency.div_ceil(WORKERS_PER_CHANNEL);
    let mut customer_channels = Vec::with_capacity(channels);
    let mut allocation_channels = Vec::with_capacity(channels);
    for _ in 0..channels {
        customer_channels.push(connect(customers_url).await?);
        allocation_channels.push(if uses_allocation {
            connect(allocation_url).await?
        } else {
            // Never called: no connection is made.
            Channel::from_shared(allocation_url.to_string())?.connect_lazy()
        });
    }
    let seed = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default() as u64;
    let mut out = Vec::with_capacity(concurrency);
    for index in 0..concurrency {
        let claims = Claims::new(format!("bench-agent-{index:03}"), Role::CallCenterAgent, ttl)
            .with_areas(areas.iter().cloned());
        let token = bearer(&issuer.mint(&claims)?)?;
        let channel = index / WORKERS_PER_CHANNEL;
        let (Some(customers), Some(allocation)) =
            (customer_channels.get(channel), allocation_channels.get(channel))
        else {
            anyhow::bail!("no channel for user {index}");
        };
        out.push(Worker {
            index,
            customers: CustomerServiceClient::with_interceptor(customers.clone(), token.clone()),
            customer_reads: Reads::new(customers.clone(), token.clone()),
            health: HealthClient::new(customers.clone()),
            allocation: AllocationServiceClient::with_interceptor(allocation.clone(), token.clone()),
            allocation_reads: Reads::new(allocation.clone(), token),
            rng: Rng::new(seed ^ (index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            sent: 0,
        });
    }
    Ok(out)
}

fn progress_bar(duration: Duration) -> ProgressBar {
    let target = if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let tenths = (duration.as_secs_f64() * 10.0).ceil() as u64;
    let bar = ProgressBar::with_draw_target(Some(tenths.max(1)), target);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{bar:30}] {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

/// Runs the users for the warm-up and the duration; the merged tally and the seconds
/// measured (from the end of the warm-up until the last user's last call returned).
async fn load(plan: Arc<Plan>, workers: Vec<Worker>, warmup: Duration, duration: Duration) -> (Tally, f64) {
    let start = Instant::now();
    let measure_from = start + warmup;
    let until = measure_from + duration;
    let counters: Vec<Arc<AtomicU64>> = workers.iter().map(|_| Arc::new(AtomicU64::new(0))).collect();
    let mut tasks = Vec::with_capacity(workers.len());
    for (worker, counter) in workers.into_iter().zip(&counters) {
        tasks.push(tokio::spawn(worker.run(
            plan.clone(),
            measure_from,
            until,
            counter.clone(),
        )));
    }
    let progress = progress_bar(duration);
    let ticker = {
        let progress = progress.clone();
        let counters = counters.clone();
        let total = duration.as_secs_f64();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(200));
            loop {
                tick.tick().await;
                let now = Instant::now();
                if now < measure_from {
                    progress.set_message(format!(
                        "warming up, {:.1} s to go",
                        (measure_from - now).as_secs_f64()
                    ));
                    continue;
                }
                let secs = (now - measure_from).as_secs_f64().min(total);
                let calls: u64 = counters.iter().map(|c| c.load(Ordering::Relaxed)).sum();
                progress.set_position((secs * 10.0) as u64);
                progress.set_message(format!(
                    "{secs:.1}/{total:.1} s, {calls} calls, {:.0} calls/s",
                    calls as f64 / secs.max(0.001)
                ));
            }
        })
    };
    let mut tally = Tally::default();
    for task in tasks {
        match task.await {
            Ok(t) => tally.merge(t),
            Err(error) => eprintln!("a virtual user stopped: {error}"),
        }
    }
    let elapsed = Instant::now()
        .saturating_duration_since(measure_from)
        .as_secs_f64();
    ticker.abort();
    progress.finish_and_clear();
    (tally, elapsed)
}

fn print_summary(scenario: Scenario, s: &Summary) {
    println!("results of {}:", scenario.name());
    println!(
        "  calls        {} in {:.2} s = {:.1} calls/s",
        s.calls, s.elapsed_s, s.rate
    );
    println!(
        "  outcomes     {} ok, {} refused, {} errors ({} transport)",
        s.ok, s.refused, s.failed, s.transport
    );
    println!("  latency ms   {}", s.latency.line());
    if s.rpcs.len() > 1 {
        for (rpc, calls, ok, refused, failed, latency) in &s.rpcs {
            println!(
                "    {:<16} {calls} calls ({ok} ok, {refused} refused, {failed} errors), {}",
                rpc.name(),
                latency.line()
            );
        }
    }
    if let Some((rpc, _, ok, ..)) = s.rpcs.iter().find(|r| r.0 == Rpc::PlaceOrder) {
        println!("  orders       {ok} accepted ({} calls)", rpc.name());
    }
    if !s.refusals.is_empty() {
        println!("  refusals     {}", join_counts(&s.refusals));
    }
    if !s.errors.is_empty() {
        println!("  errors       {}", join_counts(&s.errors));
    }
    if s.errors.keys().any(|k| k.contains("RATE_LIMITED")) {
        println!(
            "  hint: calls were refused for the caller's rate; restart the suite with \
             DISTNET__SERVER__RATE_LIMIT__PER_SECOND=0 to measure the service"
        );
    }
}

fn join_counts(counts: &BTreeMap<String, u64>) -> String {
    let mut sorted: Vec<(&String, &u64)> = counts.iter().collect();
    sorted.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    sorted
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Where the run went, for the JSON.
struct Target<'a> {
    customers: &'a str,
    allocation: &'a str,
    retailers: usize,
    areas: usize,
    cycle: &'a str,
    product: &'a str,
}

fn json_report(
    args: &LoadArgs,
    s: &Summary,
    pgbench: Option<&anyhow::Result<PgbenchRun>>,
    target: &Target<'_>,
) -> serde_json::Value {
    let rpcs: serde_json::Map<String, serde_json::Value> = s
        .rpcs
        .iter()
        .map(|(rpc, calls, ok, refused, failed, latency)| {
            (
                rpc.name().to_string(),
                serde_json::json!({
                    "calls": calls,
                    "ok": ok,
                    "refused": refused,
                    "errors": failed,
                    "latency_ms": latency.json(),
                }),
            )
        })
        .collect();
    let orders_accepted = s.rpcs.iter().find(|r| r.0 == Rpc::PlaceOrder).map(|r| r.2);
    let pgbench = match pgbench {
        None => serde_json::Value::Null,
        Some(Ok(run)) => serde_json::json!({
            "script": run.script,
            "tps": round3(run.tps),
            "latency_avg_ms": run.latency_avg_ms,
            "transactions": run.transactions,
            "failed": run.failed,
            "ratio": (run.tps > 0.0).then(|| round3(s.rate / run.tps)),
        }),
        Some(Err(error)) => serde_json::json!({ "error": format!("{error:#}") }),
    };
    serde_json::json!({
        "scenario": args.scenario.name(),
        "concurrency": args.concurrency,
        "threads": tokio::runtime::Handle::current().metrics().num_workers(),
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "target_rate": args.rate,
        "regular_lines": args.regular_lines,
        "elapsed_s": round3(s.elapsed_s),
        "calls": s.calls,
        "ok": s.ok,
        "refused": s.refused,
        "failed": s.failed,
        "transport_errors": s.transport,
        "rate": round3(s.rate),
        "latency_ms": s.latency.json(),
        "errors": s.errors,
        "refusals": s.refusals,
        "orders_accepted": orders_accepted,
        "rpcs": rpcs,
        "target": {
            "customers": target.customers,
            "allocation": target.allocation,
            "retailers": target.retailers,
            "areas": target.areas,
            "cycle": target.cycle,
            "product": target.product,
        },
        "pgbench": pgbench,
        "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    })
}

/// `pgbench` on PATH, else the newest under /usr/lib/postgresql/*/bin.
fn pgbench_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join("pgbench");
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_string_lossy().parse::<u32>().ok()?;
            let candidate = entry.path().join("bin").join("pgbench");
            candidate.is_file().then_some((version, candidate))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, path)| path)
}

/// The highest N of ids `r-N` when every listed id has that form (the demo's).
fn demo_id_range(retailers: &[(String, String)]) -> Option<u64> {
    retailers
        .iter()
        .map(|(name, _)| {
            let digits = name.strip_prefix("customers/r-")?;
            if digits.len() >= 5 && digits.bytes().all(|b| b.is_ascii_digit()) {
                digits.parse::<u64>().ok()
            } else {
                None
            }
        })
        .try_fold(0u64, |max, n| n.map(|n| max.max(n)))
        .filter(|max| *max > 0)
}

/// pgbench with the scenario's script against the suite's database, at the same
/// concurrency and duration.
async fn pgbench(
    settings: &Settings,
    args: &LoadArgs,
    plan: &Plan,
    retailers: &[(String, String)],
) -> anyhow::Result<PgbenchRun> {
    let wanted = match args.pgbench_script.as_deref() {
        Some(script) => vec![(script, 1)],
        None => reference(args.scenario),
    };
    let mut scripts: Vec<(&str, &str, Option<&str>, u32)> = Vec::with_capacity(wanted.len());
    for (name, weight) in wanted {
        let Some(&(script, body, setup)) = SCRIPTS.iter().find(|(n, ..)| *n == name) else {
            anyhow::bail!(
                "no pgbench script {name}; there are {}",
                SCRIPTS.iter().map(|(n, ..)| *n).collect::<Vec<_>>().join(", ")
            );
        };
        scripts.push((script, body, setup, weight));
    }
    let script = match scripts.as_slice() {
        [(name, ..)] => (*name).to_string(),
        _ => scripts
            .iter()
            .map(|(name, .., weight)| format!("{name}@{weight}"))
            .collect::<Vec<_>>()
            .join(" + "),
    };
    let binary = pgbench_binary().context(
        "pgbench is neither on PATH nor under /usr/lib/postgresql/*/bin (apt-get install postgresql-client)",
    )?;
    let url = args
        .database_url
        .clone()
        .filter(|u| !u.is_empty())
        .or_else(|| Some(settings.database.url.expose().to_string()).filter(|u| !u.is_empty()))
        .context(
            "no database: pass --database-url or set DATABASE_URL (distnet up without DATABASE_URL runs a private \
             PostgreSQL: postgres://postgres@127.0.0.1:<the port it prints>/distnet)",
        )?;
    let retailers_max = demo_id_range(retailers).context(
        "the pgbench scripts pick ids r-00001 … r-N as the demo and distnet seed create them; these customers are \
         named otherwise",
    )?;
    let vars = [
        format!("retailers={retailers_max}"),
        format!("nareas={}", plan.areas.len()),
        format!("scope={{{}}}", plan.areas.join(",")),
        format!("limit={}", plan.page_size + 1),
        format!("cycle={}", plan.cycle.trim_start_matches("cycles/")),
        format!("sku={}", plan.product.trim_start_matches("products/")),
    ];
    let mut paths = Vec::with_capacity(scripts.len());
    for (name, body, ..) in &scripts {
        let path = std::env::temp_dir().join(format!("distnet-bench-{}-{name}", std::process::id()));
        std::fs::write(&path, body).with_context(|| format!("writing {}", path.display()))?;
        paths.push(path);
    }
    let seconds = (args.duration.ceil() as u64).max(1);
    let clients = args.concurrency.to_string();
    let threads = args.concurrency.min(4).to_string();
    let mut command_args: Vec<String> = [
        "-n",
        "-M",
        "prepared",
        "-c",
        &clients,
        "-j",
        &threads,
        "-T",
        &seconds.to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut shown_args = command_args.clone();
    for ((name, .., weight), path) in scripts.iter().zip(&paths) {
        let weight = if scripts.len() > 1 {
            format!("@{weight}")
        } else {
            String::new()
        };
        command_args.extend(["-f".to_string(), format!("{}{weight}", path.display())]);
        shown_args.extend(["-f".to_string(), format!("bench/pgbench/{name}{weight}")]);
    }
    // Only what the scripts use; pgbench refuses `-D name=` (an empty value), so a
    // script that needs a missing one fails loudly.
    let used = |var: &&String| {
        let name = var.split('=').next().unwrap_or_default();
        !var.ends_with('=')
            && scripts
                .iter()
                .any(|(_, body, ..)| body.contains(&format!(":{name}")))
    };
    for var in vars.iter().filter(used) {
        for args in [&mut command_args, &mut shown_args] {
            args.push("-D".into());
            args.push(var.clone());
        }
    }
    let shown = format!(
        "{} {} <database url>",
        binary.display(),
        shown_args
            .iter()
            .map(|a| if a.contains(['{', ' ']) {
                format!("'{a}'")
            } else {
                a.clone()
            })
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!("running pgbench {script} for {seconds} s with {clients} clients");
    // The scripts that write share one scratch schema, made by one setup.
    let mut setups: Vec<&str> = scripts.iter().filter_map(|(.., setup, _)| *setup).collect();
    setups.sort_unstable();
    setups.dedup();
    let mut scratch = None;
    for setup in setups {
        use sqlx::Connection as _;
        let conn = match scratch.as_mut() {
            Some(conn) => conn,
            None => scratch.insert(
                sqlx::PgConnection::connect(&url)
                    .await
                    .context("connecting for the scripts' setup")?,
            ),
        };
        sqlx::raw_sql(setup)
            .execute(&mut *conn)
            .await
            .context("the scripts' setup")?;
    }
    let output = tokio::time::timeout(
        Duration::from_secs(seconds + 120),
        tokio::process::Command::new(&binary)
            .args(&command_args)
            .arg(&url)
            .kill_on_drop(true)
            .output(),
    )
    .await;
    for path in &paths {
        let _ = std::fs::remove_file(path);
    }
    if let Some(conn) = scratch.as_mut() {
        let _ = sqlx::raw_sql("DROP SCHEMA IF EXISTS pgbench_scratch CASCADE")
            .execute(conn)
            .await;
    }
    let output = output
        .context("pgbench did not finish in time")?
        .with_context(|| format!("running {}", binary.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let parsed = parse_pgbench(&stdout);
    match (output.status.success(), parsed) {
        (true, Some(figures)) => Ok(PgbenchRun {
            script,
            command: shown,
            tps: figures.tps,
            latency_avg_ms: figures.latency_avg_ms,
            transactions: figures.transactions,
            failed: figures.failed,
        }),
        _ => {
            let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
            anyhow::bail!(
                "pgbench failed ({}): {}",
                output.status,
                tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
            )
        }
    }
}

#[derive(Debug, PartialEq)]
struct PgbenchFigures {
    tps: f64,
    latency_avg_ms: Option<f64>,
    transactions: Option<u64>,
    failed: Option<u64>,
}

/// The figures of pgbench's report (PostgreSQL 14+ says "without initial connection
/// time", older ones "excluding connections establishing").
fn parse_pgbench(stdout: &str) -> Option<PgbenchFigures> {
    let number = |text: &str| -> Option<f64> { text.split_whitespace().next()?.parse().ok() };
    let mut tps = None;
    let mut figures = PgbenchFigures {
        tps: 0.0,
        latency_avg_ms: None,
        transactions: None,
        failed: None,
    };
    for line in stdout.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("tps = ")
            && (rest.contains("without initial connection time") || rest.contains("excluding connections"))
        {
            tps = number(rest);
        } else if let Some(rest) = line.strip_prefix("latency average = ") {
            figures.latency_avg_ms = number(rest);
        } else if let Some(rest) = line.strip_prefix("number of transactions actually processed: ") {
            figures.transactions = rest.split(['/', ' ']).next().and_then(|n| n.parse().ok());
        } else if let Some(rest) = line.strip_prefix("number of failed transactions: ") {
            figures.failed = rest.split(' ').next().and_then(|n| n.parse().ok());
        }
    }
    figures.tps = tps?;
    Some(figures)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic_types::{ErrorDetails, StatusExt as _};

    #[test]
    fn the_read_paths_are_the_services_methods() {
        use distnet_proto::allocation::v1::allocation_service_server::SERVICE_NAME as ALLOCATION;
        use distnet_proto::customers::v1::customer_service_server::SERVICE_NAME as CUSTOMERS;
        assert_eq!(GET_CUSTOMER, format!("/{CUSTOMERS}/GetCustomer"));
        assert_eq!(LIST_CUSTOMERS, format!("/{CUSTOMERS}/ListCustomers"));
        assert_eq!(GET_ENTITLEMENTS, format!("/{ALLOCATION}/GetEntitlements"));
    }

    #[test]
    fn the_reason_is_read_from_error_info_in_the_details() {
        let status = tonic::Status::with_error_details(
            tonic::Code::FailedPrecondition,
            "lines[0]: 1 cartons asked, 0 of quota 3 remain",
            ErrorDetails::with_error_info(
                "QUOTA_EXCEEDED",
                "allocation.distnet",
                [("k".to_string(), "v".to_string())],
            ),
        );
        assert_eq!(error_info_reason(&status).as_deref(), Some("QUOTA_EXCEEDED"));
        assert_eq!(classify(&status), Outcome::Refused("QUOTA_EXCEEDED".into()));
        let limited = tonic::Status::with_error_details(
            tonic::Code::ResourceExhausted,
            "slow down",
            ErrorDetails::with_error_info(
                "RATE_LIMITED",
                "platform.distnet",
                std::collections::HashMap::new(),
            ),
        );
        assert_eq!(
            classify(&limited),
            Outcome::Failed {
                key: "RESOURCE_EXHAUSTED/RATE_LIMITED".into(),
                transport: false
            }
        );
        // Without details: the code and the message; not a transport failure.
        assert_eq!(
            classify(&tonic::Status::unavailable("shedding")),
            Outcome::Failed {
                key: "UNAVAILABLE: shedding".into(),
                transport: false
            }
        );
        let garbled = |details: &'static [u8]| {
            tonic::Status::with_details(tonic::Code::Unknown, "x", details.to_vec().into())
        };
        assert_eq!(error_info_reason(&garbled(&[0xff, 0xff])), None);
        assert_eq!(error_info_reason(&garbled(&[])), None);
    }

    #[tokio::test]
    async fn a_call_no_server_answers_is_a_transport_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        let channel = Channel::from_shared(format!("http://{addr}"))
            .expect("uri")
            .connect_lazy();
        let status = CustomerServiceClient::new(channel)
            .get_customer(customers::GetCustomerRequest {
                name: "customers/r-00001".into(),
            })
            .await
            .expect_err("nothing listens");
        match classify(&status) {
            Outcome::Failed { key, transport } => {
                assert!(transport, "{key}");
                assert!(key.starts_with("UNAVAILABLE"), "{key}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn percentiles_are_nearest_rank_and_ordered() {
        let mut us: Vec<u32> = (1..=1000).rev().map(|i| i * 1000).collect();
        let p = percentiles(&mut us);
        assert_eq!((p.p50, p.p95, p.p99, p.max), (500.0, 950.0, 990.0, 1000.0));
        assert!((p.mean - 500.5).abs() < 1e-9);
        assert_eq!(percentiles(&mut []), Percentiles::default());
        let mut one = vec![1500];
        assert_eq!(percentiles(&mut one).p99, 1.5);
    }

    #[test]
    fn pgbench_reports_are_parsed() {
        let out = "pgbench (15.20 (Debian 15.20-0+deb12u1))\ntransaction type: point_select.sql\n\
                   number of clients: 16\nnumber of transactions actually processed: 59170\n\
                   number of failed transactions: 0 (0.000%)\nlatency average = 0.134 ms\n\
                   initial connection time = 12.3 ms\ntps = 29748.153749 (without initial connection time)\n";
        assert_eq!(
            parse_pgbench(out),
            Some(PgbenchFigures {
                tps: 29748.153749,
                latency_avg_ms: Some(0.134),
                transactions: Some(59170),
                failed: Some(0),
            })
        );
        let old = "tps = 10.5 (including connections establishing)\ntps = 11.5 (excluding connections establishing)\n";
        assert_eq!(parse_pgbench(old).map(|f| f.tps), Some(11.5));
        assert_eq!(parse_pgbench("pgbench: error: connection refused\n"), None);
    }

    #[test]
    fn every_scenario_has_its_pgbench_reference_and_the_mix_adds_up() {
        use clap::ValueEnum as _;
        for scenario in Scenario::value_variants() {
            let scripts = reference(*scenario);
            let weights: u32 = scripts.iter().map(|(_, w)| w).sum();
            let of_mix: u32 = scenario.mix().iter().map(|(_, w)| w).sum();
            assert_eq!(weights, of_mix, "{scenario:?}");
            for (script, _) in scripts {
                let body = SCRIPTS.iter().find(|(name, ..)| *name == script).map(|s| s.1);
                assert!(body.is_some_and(|b| b.contains("\\set")), "{scenario:?}");
            }
        }
        assert_eq!(reference(Scenario::GetCustomer), [("point_select.sql", 1)]);
        assert_eq!(reference(Scenario::PlaceOrder), [("order_guard.sql", 1)]);
        assert_eq!(
            reference(Scenario::Mixed),
            [
                ("point_select.sql", 80),
                ("order_guard.sql", 10),
                ("log_interaction.sql", 10)
            ]
        );
        assert_eq!(MIXED.iter().map(|(_, w)| w).sum::<u32>(), 100);
        let mut rng = Rng::new(7);
        let mut seen = [0u32; RPCS.len()];
        for _ in 0..10_000 {
            seen[choose(&mut rng, MIXED, 100).index()] += 1;
        }
        assert_eq!(choose(&mut rng, Scenario::PlaceOrder.mix(), 1), Rpc::PlaceOrder);
        assert!(
            (3_700..4_300).contains(&seen[Rpc::GetCustomer.index()]),
            "{seen:?}"
        );
        assert!(
            (700..1_300).contains(&seen[Rpc::LogInteraction.index()]),
            "{seen:?}"
        );
    }

    #[test]
    fn demo_ids_give_the_pgbench_range() {
        let ids = |names: &[&str]| -> Vec<(String, String)> {
            names
                .iter()
                .map(|n| (format!("customers/{n}"), "area-01".to_string()))
                .collect()
        };
        assert_eq!(demo_id_range(&ids(&["r-00001", "r-00040", "r-00007"])), Some(40));
        assert_eq!(demo_id_range(&ids(&["r-00001", "shop-e2e"])), None);
        assert_eq!(demo_id_range(&ids(&["r-1"])), None);
        assert_eq!(demo_id_range(&ids(&["r-100000"])), Some(100_000));
    }
}
