//! `distnet bench allocation`: the allocation service at scale, through its gRPC API
//! against real Postgres. Starts an allocation server in-process on a clock fixed
//! inside the cycle's order window, delivers N retailers' `CustomerChanged` and
//! `StandingChanged` events to its sink, creates P scarce products with supply and policies (the criterion
//! bench's mix), then times `PreviewAllocation` and `CommitAllocation` of all P at
//! once, and measures `GetEntitlements` and `PlaceOrder` throughput and latency at a
//! given concurrency. Runs in a database of its own, dropped afterwards.
//!
//! The server that sets the network up keeps no entitlements in memory; once the
//! allocation is committed a second one starts, as a rollout would start a replica,
//! and is timed until it reports ready (it reads the cycle's entitlements into memory
//! first), with what that took of the process's memory; the loads run against it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use distnet_platform::Settings;
use distnet_platform::auth::{Claims, Role, TokenIssuer};
use distnet_platform::clock::{ManualClock, SharedClock};
use distnet_platform::server::Shutdown;
use distnet_platform::settings::Secret;
use distnet_proto::accreditation::v1::{CustomerClass, LicenseStatus, Standing};
use distnet_proto::allocation::v1::allocation_service_client::AllocationServiceClient;
use distnet_proto::allocation::v1::*;
use distnet_proto::common::v1::Money;
use distnet_proto::customers::v1::{Customer, CustomerFormat, Settlement};
use distnet_proto::events::v1::event_sink_client::EventSinkClient;
use distnet_proto::events::v1::{CustomerChanged, DeliverRequest, EventEnvelope, StandingChanged};
use sqlx::Connection as _;
use tonic_health::pb::health_check_response::ServingStatus;

use crate::demo::{bearer, connect};

pub struct AllocationBench {
    pub retailers: usize,
    pub products: usize,
    pub concurrency: usize,
    pub seconds: u64,
}

const CYCLE: &str = "cycles/2026-W48";
const AREAS: usize = 20;

/// The database `name` on the server of `url`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, ""), |(b, q)| (b, q));
    let prefix = base.rsplit_once('/').map_or(base, |(p, _)| p);
    if query.is_empty() {
        format!("{prefix}/{name}")
    } else {
        format!("{prefix}/{name}?{query}")
    }
}

/// xorshift: the same network every run.
struct Choices(u64);

impl Choices {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below.max(1)
    }
}

fn mint(settings: &Settings, claims: Claims) -> anyhow::Result<String> {
    TokenIssuer::hs256(settings.auth.hs256_secret.expose()).mint(&claims)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted.get(index).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

pub async fn run(mut settings: Settings, options: AllocationBench) -> anyhow::Result<()> {
    let server_url = settings.database.url.expose().to_string();
    anyhow::ensure!(
        !server_url.is_empty(),
        "set DATABASE_URL (the bench makes a database of its own there)"
    );
    let name = format!("distnet_bench_{}", std::process::id());
    let admin_url = with_database(&server_url, "postgres");
    let mut admin = sqlx::PgConnection::connect(&admin_url)
        .await
        .context("connecting to postgres")?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await?;
    settings.database.url = Secret::new(with_database(&server_url, &name));
    settings.database.max_connections = settings.database.max_connections.max(32);
    settings.events.subscriptions.clear();
    settings.server.concurrency_limit = settings.server.concurrency_limit.max(options.concurrency * 2);
    // One agent places every order of the load: measure the service, not its limit.
    settings.server.rate_limit.per_second = 0.0;

    let outcome = measure(&settings, &options).await;
    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await;
    outcome
}

async fn measure(settings: &Settings, options: &AllocationBench) -> anyhow::Result<()> {
    // Tuesday 10:00 Asia/Shanghai of 2026-W48: the order window is open.
    let open = chrono::DateTime::parse_from_rfc3339("2026-11-24T10:00:00+08:00")?.with_timezone(&chrono::Utc);
    let clock: SharedClock = Arc::new(ManualClock::new(open));
    let shutdown = Shutdown::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let mut setting_up = settings.clone();
    setting_up.allocation.entitlements_cache_entries = 0;
    let server =
        distnet_allocation::serve_with_clock(&setting_up, listener, shutdown.clone(), clock.clone()).await?;
    let endpoint = format!("http://{}", server.local_addr);
    let channel = connect(&endpoint).await?;
    let planner_token = mint(
        settings,
        Claims::new(
            "bench-planner",
            Role::AllocationPlanner,
            Duration::from_secs(3600),
        ),
    )?;
    let areas: Vec<String> = (1..=AREAS).map(|a| format!("area-{a:02}")).collect();
    let agent_token = mint(
        settings,
        Claims::new("bench-agent", Role::CallCenterAgent, Duration::from_secs(3600))
            .with_areas(areas.clone()),
    )?;
    let service_token = mint(
        settings,
        Claims::new("accreditation", Role::Service, Duration::from_secs(3600)),
    )?;
    let mut planner = AllocationServiceClient::with_interceptor(channel.clone(), bearer(&planner_token)?)
        .max_decoding_message_size(256 << 20);

    println!(
        "allocation bench: {} retailers, {} products, concurrency {}, {} s per load",
        options.retailers, options.products, options.concurrency, options.seconds
    );
    let started = Instant::now();
    deliver_standings(&channel, &service_token, options.retailers).await?;
    println!(
        "  profiles and standings delivered through EventSink: {} retailers in {:.1} s",
        options.retailers,
        started.elapsed().as_secs_f64()
    );
    let skus = create_products(&mut planner, options.products).await?;

    let preview_started = Instant::now();
    let preview = planner
        .preview_allocation(PreviewAllocationRequest {
            cycle: CYCLE.into(),
            products: vec![],
        })
        .await?
        .into_inner();
    let preview_ms = preview_started.elapsed().as_millis();
    let commit_started = Instant::now();
    let committed = planner
        .commit_allocation(CommitAllocationRequest {
            request_id: "bench-commit".into(),
            cycle: CYCLE.into(),
            products: vec![],
        })
        .await?
        .into_inner();
    let commit_ms = commit_started.elapsed().as_millis();
    let allocated: i64 = committed.allocations.iter().map(|a| a.total).sum();
    println!(
        "  PreviewAllocation: {} products in {preview_ms} ms; CommitAllocation: {} products, {allocated} cartons in {commit_ms} ms",
        preview.allocations.len(),
        committed.allocations.len()
    );

    let rss_before = crate::bench_footprint::rss_kb(std::process::id()).unwrap_or(0);
    let started = Instant::now();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let replica = distnet_allocation::serve_with_clock(settings, listener, shutdown.clone(), clock).await?;
    let replica_endpoint = format!("http://{}", replica.local_addr);
    until_serving(&replica_endpoint).await?;
    let ready_s = started.elapsed().as_secs_f64();
    let rss_after = crate::bench_footprint::rss_kb(std::process::id()).unwrap_or(0);
    println!(
        "  a replica started after the commit read {} retailers' entitlements into memory and was ready in {ready_s:.1} s; \
         the process's RSS went from {:.0} to {:.0} MB",
        options
            .retailers
            .min(settings.allocation.entitlements_cache_entries),
        rss_before as f64 / 1024.0,
        rss_after as f64 / 1024.0
    );
    let channel = connect(&replica_endpoint).await?;
    let agent = AllocationServiceClient::with_interceptor(channel.clone(), bearer(&agent_token)?);
    let retailers = options.retailers as u64;
    load(options, "GetEntitlements", {
        let agent = agent.clone();
        move |worker, n| {
            let mut client = agent.clone();
            let mut choices = Choices(0x9e37_79b9_7f4a_7c15 ^ ((worker as u64) << 20) ^ n);
            async move {
                let id = choices.next(retailers);
                client
                    .get_entitlements(GetEntitlementsRequest {
                        customer: format!("customers/r-{id:06}"),
                        cycle: CYCLE.into(),
                    })
                    .await
                    .map(|_| ())
            }
        }
    })
    .await;
    let products = skus.len() as u64;
    let skus = Arc::new(skus);
    load(options, "PlaceOrder (1 carton of any product)", {
        let agent = agent.clone();
        let skus = skus.clone();
        move |worker, n| {
            let mut client = agent.clone();
            let mut choices = Choices(0x51_7cc1_b727_220a ^ ((worker as u64) << 24) ^ n);
            let sku = skus[choices.next(products) as usize].clone();
            async move {
                let id = choices.next(retailers);
                client
                    .place_order(PlaceOrderRequest {
                        request_id: format!("bench-any-{worker}-{n}"),
                        customer: format!("customers/r-{id:06}"),
                        cycle: CYCLE.into(),
                        channel: Channel::CallCenter as i32,
                        lines: vec![PlaceOrderLine {
                            product: format!("products/{sku}"),
                            cartons: 1,
                        }],
                    })
                    .await
                    .map(|_| ())
            }
        }
    })
    .await;
    load(options, "PlaceOrder (1 carton of one hot product)", {
        let agent = agent.clone();
        // The first product without eligibility filters (bench-002 when there are 3+).
        let hot = skus.get(2).or(skus.first()).cloned().unwrap_or_default();
        move |worker, n| {
            let mut client = agent.clone();
            let mut choices = Choices(0x2545_f491_4f6c_dd1d ^ ((worker as u64) << 28) ^ n);
            let hot = hot.clone();
            async move {
                let id = choices.next(retailers);
                client
                    .place_order(PlaceOrderRequest {
                        request_id: format!("bench-hot-{worker}-{n}"),
                        customer: format!("customers/r-{id:06}"),
                        cycle: CYCLE.into(),
                        channel: Channel::CallCenter as i32,
                        lines: vec![PlaceOrderLine {
                            product: format!("products/{hot}"),
                            cartons: 1,
                        }],
                    })
                    .await
                    .map(|_| ())
            }
        }
    })
    .await;

    shutdown.trigger();
    server.wait().await?;
    replica.wait().await?;
    Ok(())
}

/// Waits until the allocation server at `endpoint` says its API is SERVING: it has
/// read what it keeps in memory (at most `cache::WARM_UP_LIMIT`, then some more).
async fn until_serving(endpoint: &str) -> anyhow::Result<()> {
    let api = distnet_proto::allocation::v1::allocation_service_server::SERVICE_NAME;
    let channel = connect(endpoint).await?;
    let deadline = Instant::now() + distnet_platform::cache::WARM_UP_LIMIT + Duration::from_secs(30);
    while crate::probe::health(channel.clone(), api).await.ok() != Some(ServingStatus::Serving) {
        anyhow::ensure!(Instant::now() < deadline, "the replica never reported ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// `concurrency` workers call `call(worker, n)` back to back for `seconds`; prints
/// throughput, latency percentiles and outcomes by gRPC code.
async fn load<F, Fut>(options: &AllocationBench, what: &str, call: F)
where
    F: Fn(usize, u64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<(), tonic::Status>> + Send,
{
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut workers = Vec::new();
    for worker in 0..options.concurrency {
        let call = call.clone();
        let stop = stop.clone();
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut codes: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let begun = Instant::now();
                let outcome = call(worker, n).await;
                latencies.push(begun.elapsed());
                let code = match outcome {
                    Ok(()) => "OK".to_string(),
                    Err(status) => format!("{:?}", status.code()),
                };
                *codes.entry(code).or_default() += 1;
                n += 1;
            }
            (latencies, codes)
        }));
    }
    tokio::time::sleep(Duration::from_secs(options.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    let mut codes: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
    for worker in workers {
        if let Ok((l, c)) = worker.await {
            latencies.extend(l);
            for (code, count) in c {
                *codes.entry(code).or_default() += count;
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    println!(
        "  {what}: {:.0} calls/s, p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, outcomes {codes:?}",
        latencies.len() as f64 / elapsed,
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.95),
        percentile(&latencies, 0.99)
    );
}

/// Delivers every retailer's `StandingChanged`, as accreditation's relay would.
async fn deliver_standings(
    channel: &tonic::transport::Channel,
    token: &str,
    retailers: usize,
) -> anyhow::Result<()> {
    let mut sink = EventSinkClient::with_interceptor(channel.clone(), bearer(token)?)
        .max_encoding_message_size(64 << 20);
    let mut choices = Choices(0x2545_f491_4f6c_dd1d);
    let ids: Vec<usize> = (0..retailers).collect();
    for chunk in ids.chunks(1000) {
        let mut events = Vec::with_capacity(chunk.len() * 2);
        for i in chunk {
            // More retailers in the low tiers than in the high ones.
            let tier = choices.next(30).min(choices.next(30)).min(choices.next(30)) + 1;
            let standing = Standing {
                customer: format!("customers/r-{i:06}"),
                license_status: LicenseStatus::Active as i32,
                tier: i32::try_from(tier).unwrap_or(1),
                grading_version: 1,
                customer_class: [CustomerClass::Special, CustomerClass::Key, CustomerClass::General]
                    [choices.next(3) as usize] as i32,
                credit_limit: Some(Money {
                    currency_code: "CNY".into(),
                    fen: 1_000_000_000,
                }),
                version: 1,
                area_id: format!("area-{:02}", 1 + choices.next(AREAS as u64)),
                ..Standing::default()
            };
            // Its profile first, as customers would have published it: allocation
            // takes no order for a retailer it knows only by its standing.
            let customer = Customer {
                name: standing.customer.clone(),
                area_id: standing.area_id.clone(),
                owner_id: format!("cm-{:03}", 1 + i % 50),
                format: CustomerFormat::Grocery as i32,
                settlement: Settlement::ESettlement as i32,
                ..Customer::default()
            };
            events.push(EventEnvelope {
                event_id: format!("00000000-0000-4000-9000-{i:012}"),
                event_type: "distnet.events.v1.CustomerChanged".into(),
                source: "customers".into(),
                aggregate: standing.customer.clone(),
                payload: Some(prost_types::Any::from_msg(&CustomerChanged {
                    customer: Some(customer),
                })?),
                ..EventEnvelope::default()
            });
            let payload = prost_types_any(&StandingChanged {
                standing: Some(standing.clone()),
            })?;
            events.push(EventEnvelope {
                event_id: format!("00000000-0000-4000-8000-{i:012}"),
                event_type: "distnet.events.v1.StandingChanged".into(),
                source: "accreditation".into(),
                aggregate: standing.customer,
                payload: Some(payload),
                ..EventEnvelope::default()
            });
        }
        sink.deliver(DeliverRequest { events }).await?;
    }
    Ok(())
}

fn prost_types_any(message: &StandingChanged) -> anyhow::Result<prost_types::Any> {
    Ok(prost_types::Any::from_msg(message)?)
}

/// `count` scarce products with supply in the cycle and policies: two thirds
/// TIER_QUOTA (ranges and caps vary), one third PROPORTIONAL, a tenth filtered by
/// area or class.
async fn create_products<T>(
    client: &mut AllocationServiceClient<T>,
    count: usize,
) -> anyhow::Result<Vec<String>>
where
    T: tonic::client::GrpcService<tonic::body::Body>,
    T::Error: Into<tonic::codegen::StdError>,
    T::ResponseBody: tonic::codegen::Body<Data = tonic::codegen::Bytes> + Send + 'static,
    <T::ResponseBody as tonic::codegen::Body>::Error: Into<tonic::codegen::StdError> + Send,
{
    let mut skus = Vec::with_capacity(count);
    for p in 0..count {
        let sku = format!("bench-{p:03}");
        let rid = |what: &str| format!("bench-{what}-{p}");
        client
            .upsert_product(UpsertProductRequest {
                request_id: rid("product"),
                product: Some(Product {
                    sku: sku.clone(),
                    display_name: format!("Bench product {p}"),
                    price_class: 1,
                    wholesale_price: Some(Money {
                        currency_code: "CNY".into(),
                        fen: 25_000,
                    }),
                    scarce: true,
                    ..Product::default()
                }),
            })
            .await?;
        client
            .set_supply(SetSupplyRequest {
                request_id: rid("supply"),
                product: format!("products/{sku}"),
                cycle: CYCLE.into(),
                quantity: 50_000 + i64::try_from(p).unwrap_or(0) * 1_500,
                holdback: 0,
                target: 0,
            })
            .await?;
        let p32 = i32::try_from(p).unwrap_or(0);
        let mut policy = if p % 3 == 2 {
            Policy {
                kind: PolicyKind::Proportional as i32,
                proportional: Some(ProportionalRule {
                    weights: (1..=30).map(|t| if t < 5 { 0 } else { t }).collect(),
                    floor: 0,
                    cap: Some(20),
                }),
                ..Policy::default()
            }
        } else {
            Policy {
                kind: PolicyKind::TierQuota as i32,
                tier_quota: Some(TierQuotaRule {
                    min_tier: 1 + p32 % 10,
                    max_tier: 30,
                    cap: Some(12 + i64::from(p32 % 8)),
                    max_step: Some(1),
                    min_quota: 0,
                }),
                ..Policy::default()
            }
        };
        policy.product = format!("products/{sku}");
        policy.eligibility = Some(match p % 10 {
            0 => Eligibility {
                area_ids: vec!["area-01".into(), "area-02".into(), "area-03".into()],
                ..Eligibility::default()
            },
            1 => Eligibility {
                classes: vec![CustomerClass::Special as i32, CustomerClass::Key as i32],
                ..Eligibility::default()
            },
            _ => Eligibility::default(),
        });
        client
            .set_policy(SetPolicyRequest {
                request_id: rid("policy"),
                policy: Some(policy),
            })
            .await?;
        skus.push(sku);
    }
    Ok(skus)
}
