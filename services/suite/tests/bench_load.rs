//! `distnet bench load` against the four real services in-process on ephemeral ports:
//! a small network is seeded through the API (retailers in customers, their standings
//! delivered to allocation's event sink as accreditation's relay would, a hot product
//! with supply, policy, an open order window and a committed allocation), then the
//! built `distnet` binary loads it for ~2 s per scenario and the test reads the JSON it
//! writes. No timing assertions: the machine is shared and noisy.

use std::time::Duration;

use distnet_platform::auth::{Claims, Role};
use distnet_proto::allocation::v1::allocation_service_client::AllocationServiceClient;
use distnet_proto::allocation::v1::{
    CommitAllocationRequest, Cycle, GetProductRequest, GetSupplyRequest, Policy, PolicyKind, Product,
    SetPolicyRequest, SetSupplyRequest, TierQuotaRule, UpsertCycleRequest, UpsertProductRequest,
};
use distnet_proto::common::v1::{LatLng, Money};
use distnet_proto::customers::v1::customer_service_client::CustomerServiceClient;
use distnet_proto::customers::v1::{CreateCustomerRequest, Customer, CustomerFormat, Settlement};
use distnet_proto::events::v1::event_sink_client::EventSinkClient;
use distnet_proto::events::v1::{CustomerChanged, DeliverRequest, EventEnvelope};
use distnet_testkit::Bearer;
use serde_json::Value;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

mod support;

use support::{Suite, bearer, channel_for, rid, standing_changed};

const RETAILERS: usize = 40;
const AREAS: usize = 4;
/// A cycle of its own, so that its window can be opened now whatever the day.
const CYCLE: &str = "2030-W10";
const HOT: &str = "bench-hot";

fn cny(fen: i64) -> Option<Money> {
    Some(Money {
        currency_code: "CNY".into(),
        fen,
    })
}

/// Retailers r-00001… in customers, and their profiles and standings (licensed,
/// graded, generous credit) in allocation's replica.
async fn seed_retailers(customers: &tonic::transport::Channel, allocation: &tonic::transport::Channel) {
    let admin = bearer(Role::Admin, "bench-test-admin", &[], None);
    let mut client = CustomerServiceClient::new(channel_for(customers, admin));
    let mut events = Vec::with_capacity(RETAILERS * 2);
    for i in 1..=RETAILERS {
        let created = client
            .create_customer(CreateCustomerRequest {
                request_id: rid(),
                customer_id: format!("r-{i:05}"),
                customer: Some(Customer {
                    display_name: format!("测试便利店 {i}"),
                    format: CustomerFormat::ConvenienceStore as i32,
                    settlement: Settlement::ESettlement as i32,
                    area_id: format!("area-{:02}", 1 + i % AREAS),
                    owner_id: "cm-001".into(),
                    location: Some(LatLng {
                        latitude: 30.66 + i as f64 * 0.001,
                        longitude: 104.06,
                    }),
                    ..Customer::default()
                }),
            })
            .await
            .expect("customer")
            .into_inner();
        // What customers' relay would deliver (this suite is not wired), then the
        // standing accreditation's would.
        events.push(EventEnvelope {
            event_id: format!("00000000-0000-4000-9000-{i:012}"),
            event_type: "distnet.events.v1.CustomerChanged".into(),
            source: "customers".into(),
            aggregate: created.name.clone(),
            payload: Some(
                prost_types::Any::from_msg(&CustomerChanged {
                    customer: Some(created.clone()),
                })
                .expect("any"),
            ),
            ..EventEnvelope::default()
        });
        events.push(standing_changed(
            &format!("00000000-0000-4000-8000-{i:012}"),
            &created.name,
            &created.area_id,
            i32::try_from(1 + i % 30).expect("tier"),
        ));
    }
    let service = Bearer(Some(distnet_testkit::token(&Claims::new(
        "accreditation",
        Role::Service,
        Duration::from_secs(3600),
    ))));
    EventSinkClient::new(channel_for(allocation, service))
        .deliver(DeliverRequest { events })
        .await
        .expect("standings delivered");
}

/// The hot product: scarce, 10,000 cartons in the cycle, up to 30 per retailer, the
/// cycle's window open from a minute ago for two hours, committed.
async fn seed_hot_product(allocation: &tonic::transport::Channel) {
    let mut client = planner_client(allocation);
    let now = chrono::Utc::now();
    client
        .upsert_cycle(UpsertCycleRequest {
            request_id: rid(),
            cycle: Some(Cycle {
                name: format!("cycles/{CYCLE}"),
                open_time: Some(distnet_platform::wire::timestamp(
                    now - chrono::Duration::minutes(1),
                )),
                close_time: Some(distnet_platform::wire::timestamp(
                    now + chrono::Duration::hours(2),
                )),
                ..Cycle::default()
            }),
        })
        .await
        .expect("cycle");
    client
        .upsert_product(UpsertProductRequest {
            request_id: rid(),
            product: Some(Product {
                sku: HOT.into(),
                display_name: "紧俏品规".into(),
                price_class: 1,
                wholesale_price: cny(30_000),
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
            product: format!("products/{HOT}"),
            cycle: format!("cycles/{CYCLE}"),
            quantity: 10_000,
            holdback: 0,
            target: 0,
        })
        .await
        .expect("supply");
    client
        .set_policy(SetPolicyRequest {
            request_id: rid(),
            policy: Some(Policy {
                product: format!("products/{HOT}"),
                kind: PolicyKind::TierQuota as i32,
                tier_quota: Some(TierQuotaRule {
                    min_tier: 1,
                    max_tier: 30,
                    cap: Some(30),
                    max_step: None,
                    min_quota: 0,
                }),
                ..Policy::default()
            }),
        })
        .await
        .expect("policy");
    let committed = client
        .commit_allocation(CommitAllocationRequest {
            request_id: rid(),
            cycle: format!("cycles/{CYCLE}"),
            products: vec![],
        })
        .await
        .expect("commit")
        .into_inner();
    assert!(
        committed.allocations.iter().any(|a| a.total > 0),
        "something is allocated: {committed:?}"
    );
}

/// The installed pgbench, as `bench load --pgbench` finds it.
fn pgbench_binary() -> Option<std::path::PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("pgbench"))
            .find(|candidate| candidate.is_file())
    });
    on_path.or_else(|| {
        std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(Result::ok)
            .map(|d| d.path().join("bin/pgbench"))
            .find(|candidate| candidate.is_file())
    })
}

/// Every script of bench/pgbench runs cleanly against the services' schemas (a few
/// transactions each): a migration that drifts from them fails here.
async fn pgbench_scripts_run(pgbench: &std::path::Path, db_url: &str) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/pgbench");
    let areas: Vec<String> = (1..=AREAS).map(|a| format!("area-{a:02}")).collect();
    for script in [
        "point_select.sql",
        "list_page.sql",
        "entitlements.sql",
        "entitlements_live.sql",
        "place_order.sql",
        "order_guard.sql",
        "log_interaction.sql",
    ] {
        if ["order_guard.sql", "log_interaction.sql"].contains(&script) {
            use sqlx::Connection as _;
            let setup = std::fs::read_to_string(dir.join("scratch_setup.sql")).expect("setup script");
            let mut conn = sqlx::PgConnection::connect(db_url).await.expect("connect");
            sqlx::raw_sql(&setup)
                .execute(&mut conn)
                .await
                .expect("setup runs");
        }
        let output = tokio::process::Command::new(pgbench)
            .args(["-n", "-M", "prepared", "-c", "2", "-t", "5", "-f"])
            .arg(dir.join(script))
            .args([
                "-D",
                &format!("retailers={RETAILERS}"),
                "-D",
                &format!("nareas={AREAS}"),
            ])
            .args(["-D", &format!("scope={{{}}}", areas.join(",")), "-D", "limit=51"])
            .args(["-D", &format!("cycle={CYCLE}"), "-D", &format!("sku={HOT}")])
            .arg(db_url)
            .output()
            .await
            .expect("pgbench ran");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.contains("number of transactions actually processed: 10/10"),
            "{script}: {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// Runs `distnet bench load <scenario>` and returns the JSON it wrote.
async fn bench(running: &Suite, scenario: &str, extra: &[&str]) -> Value {
    let dir = std::env::temp_dir().join(format!("distnet-bench-load-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let json = dir.join(format!("{scenario}.json"));
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_distnet"))
        .args(["bench", "load", scenario, "--concurrency", "4", "--duration", "2"])
        .args(["--customers", &running.url(0), "--allocation", &running.url(2)])
        .args(["--cycle", CYCLE])
        .arg("--json")
        .arg(&json)
        .args(extra)
        .env("DISTNET__AUTH__HS256_SECRET", distnet_testkit::TEST_SECRET)
        .env("DISTNET__TELEMETRY__LOG_FILTER", "warn")
        .env_remove("DATABASE_URL")
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(180), output)
        .await
        .expect("bench load finished in time")
        .expect("bench load ran");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "bench load {scenario} failed: {}\n{stdout}\n{stderr}",
        output.status
    );
    assert!(stdout.contains(&format!("results of {scenario}")), "{stdout}");
    // Shown with --nocapture.
    println!("{stdout}");
    let text = std::fs::read_to_string(&json).expect("json written");
    let _ = std::fs::remove_file(&json);
    let _ = std::fs::remove_dir(&dir);
    serde_json::from_str(&text).expect("valid json")
}

fn number(report: &Value, pointer: &str) -> f64 {
    report
        .pointer(pointer)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("{pointer} in {report:#}"))
}

/// One runtime thread per user, up to one per core.
fn cores_up_to(users: usize) -> usize {
    std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(users)
}

/// calls > 0, no transport or server errors, ordered latencies.
fn assert_sane(report: &Value, scenario: &str) {
    assert_eq!(report["scenario"], scenario);
    assert_eq!(report["concurrency"], 4);
    assert!(
        (1..=cores_up_to(4)).contains(&(number(report, "/threads") as usize)),
        "{report:#}"
    );
    assert!(number(report, "/calls") > 0.0, "{report:#}");
    assert!(number(report, "/rate") > 0.0, "{report:#}");
    assert_eq!(number(report, "/transport_errors"), 0.0, "{report:#}");
    assert_eq!(number(report, "/failed"), 0.0, "{report:#}");
    assert_eq!(report["errors"], serde_json::json!({}), "{report:#}");
    let [p50, p95, p99, max] =
        ["p50", "p95", "p99", "max"].map(|p| number(report, &format!("/latency_ms/{p}")));
    assert!(0.0 < p50 && p50 <= p95 && p95 <= p99 && p99 <= max, "{report:#}");
    assert!(report["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
    assert_eq!(number(report, "/target/retailers"), RETAILERS as f64);
    assert_eq!(number(report, "/target/areas"), AREAS as f64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_load_measures_get_customer_and_place_order_against_the_real_services() {
    let running = Suite::start().await;
    let customers = distnet_testkit::channel(running.handles[0].local_addr)
        .await
        .expect("connect");
    let allocation = distnet_testkit::channel(running.handles[2].local_addr)
        .await
        .expect("connect");
    seed_retailers(&customers, &allocation).await;
    seed_hot_product(&allocation).await;

    // GetCustomer, and pgbench's point select against the same database when installed.
    let db_url = running.db.url.clone();
    let mut extra = vec!["--warmup", "0.5"];
    let pgbench = pgbench_binary();
    if let Some(pgbench) = &pgbench {
        pgbench_scripts_run(pgbench, &db_url).await;
        extra.extend(["--pgbench", "--database-url", &db_url]);
    }
    let report = bench(&running, "get-customer", &extra).await;
    assert_sane(&report, "get-customer");
    assert_eq!(number(&report, "/threads") as usize, cores_up_to(4), "{report:#}");
    assert_eq!(report["ok"], report["calls"], "{report:#}");
    assert_eq!(report["rpcs"]["GetCustomer"]["calls"], report["calls"]);
    if pgbench.is_some() {
        assert_eq!(report["pgbench"]["script"], "point_select.sql", "{report:#}");
        assert!(number(&report, "/pgbench/tps") > 0.0, "{report:#}");
        assert!(number(&report, "/pgbench/ratio") > 0.0, "{report:#}");
    } else {
        assert!(report["pgbench"].is_null());
    }

    // The transport's ceiling: the health check on the same server, no token.
    let report = bench(&running, "ping", &["--warmup", "0", "--threads", "1"]).await;
    assert_sane(&report, "ping");
    assert_eq!(report["threads"], 1, "{report:#}");
    assert_eq!(report["ok"], report["calls"], "{report:#}");
    assert_eq!(report["rpcs"]["Health.Check"]["calls"], report["calls"]);

    // PlaceOrder of the hot product, without warm-up so that every order is counted:
    // the supply confirmed is exactly the orders the generator saw accepted (pgbench's
    // order transactions run on scratch copies).
    let mut extra = vec!["--warmup", "0"];
    if pgbench.is_some() {
        extra.extend(["--pgbench", "--database-url", &db_url]);
    }
    let report = bench(&running, "place-order", &extra).await;
    assert_sane(&report, "place-order");
    if pgbench.is_some() {
        assert_eq!(report["pgbench"]["script"], "order_guard.sql", "{report:#}");
        assert!(number(&report, "/pgbench/tps") > 0.0, "{report:#}");
        assert_eq!(number(&report, "/pgbench/failed"), 0.0, "{report:#}");
    }
    assert_eq!(report["target"]["product"], format!("products/{HOT}"));
    let accepted = number(&report, "/orders_accepted");
    assert!(accepted > 0.0, "{report:#}");
    assert_eq!(
        number(&report, "/ok") + number(&report, "/refused"),
        number(&report, "/calls"),
        "{report:#}"
    );
    let known = ["QUOTA_EXCEEDED", "SUPPLY_EXHAUSTED", "NOT_ALLOCATED"];
    let refusals = report["refusals"].as_object().expect("refusals");
    assert!(
        refusals.keys().all(|reason| known.contains(&reason.as_str())),
        "{report:#}"
    );
    let admin = bearer(Role::Admin, "bench-test-admin", &[], None);
    let supply = AllocationServiceClient::new(channel_for(&allocation, admin))
        .get_supply(GetSupplyRequest {
            product: format!("products/{HOT}"),
            cycle: format!("cycles/{CYCLE}"),
        })
        .await
        .expect("supply")
        .into_inner();
    assert_eq!(supply.confirmed as f64, accepted, "{report:#}");

    // Orders of several lines: the hot product and a carton of each of two products
    // taken from stock. Every accepted order took exactly one carton of each.
    for sku in ["regular-a", "regular-b"] {
        planner_client(&allocation)
            .upsert_product(UpsertProductRequest {
                request_id: rid(),
                product: Some(Product {
                    sku: sku.into(),
                    display_name: sku.into(),
                    price_class: 3,
                    wholesale_price: cny(5_000),
                    cartons_per_case: 50,
                    scarce: false,
                    stock_cartons: 100_000,
                    ..Product::default()
                }),
            })
            .await
            .expect("regular product");
    }
    let report = bench(
        &running,
        "place-order",
        &["--warmup", "0", "--regular-lines", "2"],
    )
    .await;
    assert_sane(&report, "place-order");
    assert_eq!(number(&report, "/regular_lines"), 2.0, "{report:#}");
    let accepted = number(&report, "/orders_accepted");
    assert!(accepted > 0.0, "{report:#}");
    for sku in ["regular-a", "regular-b"] {
        let product = planner_client(&allocation)
            .get_product(GetProductRequest {
                name: format!("products/{sku}"),
            })
            .await
            .expect("product")
            .into_inner();
        assert_eq!(
            (100_000 - product.stock_cartons) as f64,
            accepted,
            "{sku}: {report:#}"
        );
    }

    // A call-center day, against the same mix of database work: point selects for
    // its reads, the guarded order and the interaction's insert for its writes.
    let mut extra = vec!["--warmup", "0"];
    if pgbench.is_some() {
        extra.extend(["--pgbench", "--database-url", &db_url]);
    }
    let report = bench(&running, "mixed", &extra).await;
    assert_sane(&report, "mixed");
    for rpc in [
        "GetCustomer",
        "ListCustomers",
        "GetEntitlements",
        "PlaceOrder",
        "LogInteraction",
    ] {
        assert!(
            number(&report, &format!("/rpcs/{rpc}/calls")) > 0.0,
            "{rpc}: {report:#}"
        );
    }
    if pgbench.is_some() {
        assert_eq!(
            report["pgbench"]["script"], "point_select.sql@80 + order_guard.sql@10 + log_interaction.sql@10",
            "{report:#}"
        );
        assert!(number(&report, "/pgbench/tps") > 0.0, "{report:#}");
        assert_eq!(number(&report, "/pgbench/failed"), 0.0, "{report:#}");
    }

    running.stop().await;
}

fn planner_client(
    allocation: &tonic::transport::Channel,
) -> AllocationServiceClient<InterceptedService<Channel, Bearer>> {
    let planner = bearer(Role::AllocationPlanner, "bench-test-planner", &[], None);
    AllocationServiceClient::new(channel_for(allocation, planner))
}
