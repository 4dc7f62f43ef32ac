//! DESIGN.md "Orders": no quota or supply is ever oversold, and a retried request is
//! never counted twice — 500 concurrent `PlaceOrder` calls through real gRPC against a
//! product whose supply is smaller than the quota handed out, with retries of the same
//! `request_id` mixed in. The same again with Postgres stopped and restarted in the
//! middle of the burst: calls fail `UNAVAILABLE` (and are retried) or succeed, nothing
//! confirmed is lost, and the service recovers by itself.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use distnet_platform::postgres::{Kind, LocalPostgres};
use distnet_proto::allocation::v1::*;
use support::*;
use tonic::Code;

const RETAILERS: usize = 200;
const CALLS: usize = 500;

/// xorshift: a fixed, dependency-free sequence of choices.
struct Choices(u64);

impl Choices {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

type Outcome = Result<Order, (Code, String)>;

/// Sends one request, retrying it with the same id while the answer is transient
/// (load shed, pool busy, deadlock victim): what a phone on a flaky network does.
async fn place(mut client: Client, request: PlaceOrderRequest) -> Outcome {
    for _ in 0..200 {
        match client.place_order(request.clone()).await {
            Ok(order) => return Ok(order.into_inner()),
            Err(status)
                if matches!(
                    status.code(),
                    Code::Unavailable | Code::ResourceExhausted | Code::Aborted | Code::Cancelled
                ) =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(status) => return Err((status.code(), reason(&status))),
        }
    }
    Err((Code::DeadlineExceeded, "GAVE_UP".into()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_orders_never_oversell_quota_or_supply_and_retries_count_once() {
    let service = TestService::start().await;
    burst_of_orders(&service, None).await;
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_postgres_restarted_mid_burst_nothing_is_oversold_lost_or_counted_twice() {
    // Durable settings (fsync, synchronous commit), as in production: the test stops
    // Postgres the hard way (a crash), and a commit it acknowledged must survive.
    let dir = tempfile::tempdir().expect("temp dir");
    let cluster = LocalPostgres::start(dir.path(), Kind::Persistent).expect("private postgres");
    let settings = distnet_testkit::settings(&cluster.url("postgres"));
    let service = TestService::start_with(&settings).await;
    burst_of_orders(&service, Some(&cluster)).await;
    service.stop().await;
    tokio::task::block_in_place(|| cluster.stop_server(false)).expect("postgres stops");
}

/// Crashes Postgres (immediate stop), starts it again a second later, and returns how
/// long the service took to answer again once it was back.
async fn restart_postgres(cluster: &LocalPostgres, mut probe: Client) -> Duration {
    tokio::task::block_in_place(|| cluster.stop_server(true)).expect("postgres stops");
    tokio::time::sleep(Duration::from_secs(1)).await;
    tokio::task::block_in_place(|| cluster.start_server()).expect("postgres returns");
    let back = Instant::now();
    loop {
        match probe
            .get_supply(GetSupplyRequest {
                product: "products/hot".into(),
                cycle: CYCLE.into(),
            })
            .await
        {
            Ok(_) => return back.elapsed(),
            Err(status) => {
                // Down, or shedding the burst's retries: both say "retry".
                assert!(
                    matches!(status.code(), Code::Unavailable | Code::ResourceExhausted),
                    "while recovering: {status:?}"
                );
                assert!(back.elapsed() < Duration::from_secs(30), "no recovery");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// The oversell scenario against `service`; with `cluster`, Postgres is restarted in
/// the middle of it.
async fn burst_of_orders(service: &TestService, cluster: Option<&LocalPostgres>) {
    let retailers: Vec<Retailer> = (0..RETAILERS)
        .map(|i| Retailer::new(format!("r-{i:03}"), i32::try_from(1 + i % 5).unwrap_or(1)))
        .collect();
    service.know(&retailers).await;
    let mut planner = service.planner();
    // 40 retailers per tier, ramp 1..=5: 600 cartons of quota.
    scarce_product(&mut planner, "hot", 600, 0, tier_quota(1, 5, Some(5), Some(1))).await;
    let allocation = commit(&mut planner, &["hot"]).await.remove(0);
    assert_eq!(allocation.total, 600);
    let quota: BTreeMap<i32, i64> = allocation.tiers.iter().map(|t| (t.tier, t.quota)).collect();
    // The week's delivery falls short after the commit: 300 cartons for 600 of quota.
    planner
        .set_supply(SetSupplyRequest {
            request_id: rid(),
            product: "products/hot".into(),
            cycle: CYCLE.into(),
            quantity: 300,
            holdback: 0,
            target: 0,
        })
        .await
        .expect("supply cut");
    service.clock.set(during_window());

    let mut choices = Choices(0x9e37_79b9_7f4a_7c15);
    let mut requests = Vec::with_capacity(CALLS);
    for _ in 0..CALLS {
        let retailer = choices.next(RETAILERS as u64);
        let cartons = 1 + i64::try_from(choices.next(3)).unwrap_or(0);
        requests.push(order(&format!("r-{retailer:03}"), &[("hot", cartons)]));
    }
    // Every fifth request is also sent a second time, concurrently with the first.
    let agent = service.agent(&["area-01"]);
    let mut tasks = Vec::new();
    for (i, request) in requests.iter().enumerate() {
        tasks.push((i, tokio::spawn(place(agent.clone(), request.clone()))));
        if i % 5 == 0 {
            tasks.push((i, tokio::spawn(place(agent.clone(), request.clone()))));
        }
    }
    if let Some(cluster) = cluster {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let done = tasks.iter().filter(|(_, t)| t.is_finished()).count();
        eprintln!("stopping Postgres with {done} of {} calls answered", tasks.len());
        assert!(
            done < tasks.len(),
            "the fault must fall in the middle of the burst"
        );
        let recovery = restart_postgres(cluster, service.planner()).await;
        eprintln!(
            "answering again {} ms after Postgres returned",
            recovery.as_millis()
        );
        // How soon is a figure for RELIABILITY.md, not a test: the machine is shared.
        // `restart_postgres` fails the test if service never returns (30 s).
    }
    let mut outcomes: BTreeMap<usize, Vec<Outcome>> = BTreeMap::new();
    for (i, task) in tasks {
        outcomes.entry(i).or_default().push(task.await.expect("task"));
    }
    // And every seventh is retried once more after everything settled.
    for (i, request) in requests.iter().enumerate().filter(|(i, _)| i % 7 == 0) {
        let again = place(agent.clone(), request.clone()).await;
        outcomes.entry(i).or_default().push(again);
    }

    let mut confirmed_by_retailer: BTreeMap<String, i64> = BTreeMap::new();
    let mut confirmed = 0;
    let mut refusals: BTreeMap<String, usize> = BTreeMap::new();
    for (i, results) in &outcomes {
        let first = &results[0];
        for retry in &results[1..] {
            assert_eq!(
                retry, first,
                "request {i}: a retry must return the original outcome"
            );
        }
        match first {
            Ok(order) => {
                let cartons: i64 = order.lines.iter().map(|l| l.cartons).sum();
                confirmed += cartons;
                *confirmed_by_retailer.entry(order.customer.clone()).or_default() += cartons;
            }
            Err((code, reason)) => {
                assert_eq!(*code, Code::FailedPrecondition, "request {i}: {reason}");
                *refusals.entry(reason.clone()).or_default() += 1;
            }
        }
    }
    eprintln!("confirmed {confirmed} of 300 cartons; refusals {refusals:?}");
    assert!(confirmed <= 300, "supply oversold: {confirmed} of 300");
    assert!(refusals.contains_key("SUPPLY_EXHAUSTED"), "{refusals:?}");
    for (customer, cartons) in &confirmed_by_retailer {
        let index: usize = customer.trim_start_matches("customers/r-").parse().expect("id");
        let tier = i32::try_from(1 + index % 5).unwrap_or(1);
        assert!(
            *cartons <= quota[&tier],
            "{customer} took {cartons} of quota {}",
            quota[&tier]
        );
    }

    // The database agrees with the confirmed orders, exactly.
    let supply = planner
        .get_supply(GetSupplyRequest {
            product: "products/hot".into(),
            cycle: CYCLE.into(),
        })
        .await
        .expect("supply")
        .into_inner();
    assert_eq!(supply.confirmed, confirmed);
    let mut listed = 0;
    let mut page_token = String::new();
    loop {
        let page = planner
            .list_orders(ListOrdersRequest {
                cycle: CYCLE.into(),
                page_size: 1000,
                page_token: page_token.clone(),
                ..ListOrdersRequest::default()
            })
            .await
            .expect("orders")
            .into_inner();
        listed += page
            .orders
            .iter()
            .flat_map(|o| &o.lines)
            .map(|l| l.cartons)
            .sum::<i64>();
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(listed, confirmed);
    for retailer in &retailers {
        let consumed: i64 = planner
            .get_entitlements(GetEntitlementsRequest {
                customer: format!("customers/{}", retailer.id),
                cycle: CYCLE.into(),
            })
            .await
            .expect("entitlements")
            .into_inner()
            .entitlements
            .iter()
            .map(|e| e.consumed)
            .sum();
        let expected = confirmed_by_retailer
            .get(&format!("customers/{}", retailer.id))
            .copied()
            .unwrap_or(0);
        assert_eq!(consumed, expected, "{}", retailer.id);
    }
}
