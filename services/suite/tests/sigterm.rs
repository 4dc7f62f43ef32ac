//! SIGTERM under load, against the real `distnet up` process: health turns
//! NOT_SERVING at once, calls in flight and calls taken during the grace period
//! finish, calls after it are refused by the closed listener (the client reports a
//! transport error, no error of the server's making), and the process exits cleanly
//! within the grace period plus the drain deadline.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use distnet_proto::customers::v1::customer_service_client::CustomerServiceClient;
use distnet_proto::customers::v1::{Customer, ListCustomersRequest};
use distnet_testkit::{Bearer, TestDb};
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use tonic_types::StatusExt as _;

const GRACE_MS: u64 = 500;
const DRAIN_MS: u64 = 3_000;
const WORKERS: usize = 8;

/// One call of the load: when it started and ended, and its outcome.
#[derive(Debug, Clone)]
struct Call {
    started: Instant,
    ended: Instant,
    code: Code,
    /// An error the server answered (with its `ErrorInfo`), not a refused or
    /// closed connection.
    server_made: bool,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_drains_in_flight_calls_refuses_new_ones_and_exits_in_time() {
    let db = TestDb::new().await.expect("database");
    let mut child = support::distnet_up()
        .env("DATABASE_URL", &db.url)
        .env("DISTNET__SERVER__SHUTDOWN_GRACE_MS", GRACE_MS.to_string())
        .env("DISTNET__SERVER__DRAIN_DEADLINE_MS", DRAIN_MS.to_string())
        .spawn()
        .expect("distnet up starts");
    let (addr, token) = support::customers_when_ready(&mut child).await;

    let channel = distnet_testkit::channel(addr.parse().expect("address"))
        .await
        .expect("connect");
    let client = CustomerServiceClient::with_interceptor(channel.clone(), Bearer(Some(token)));
    for i in 0..50 {
        let mut customer = Customer {
            display_name: format!("店{i}"),
            format: 1,
            area_id: "area-01".into(),
            owner_id: "cm-001".into(),
            settlement: 1,
            location: Some(distnet_proto::common::v1::LatLng {
                latitude: 30.66,
                longitude: 104.06,
            }),
            ..Customer::default()
        };
        customer.legal_name = format!("店{i}有限公司");
        client
            .clone()
            .create_customer(distnet_proto::customers::v1::CreateCustomerRequest {
                request_id: format!("sigterm-{i}"),
                customer_id: format!("s-{i:03}"),
                customer: Some(customer),
            })
            .await
            .expect("created");
    }

    // The load: workers listing customers back to back until the server is gone.
    let calls: Arc<Mutex<Vec<Call>>> = Arc::default();
    let mut workers = Vec::new();
    for _ in 0..WORKERS {
        let (mut client, calls) = (client.clone(), calls.clone());
        workers.push(tokio::spawn(async move {
            let mut refused_in_a_row = 0;
            while refused_in_a_row < 20 {
                let started = Instant::now();
                let result = client
                    .list_customers(ListCustomersRequest {
                        page_size: 50,
                        ..ListCustomersRequest::default()
                    })
                    .await;
                let server_made = result
                    .as_ref()
                    .err()
                    .is_some_and(|s| s.get_details_error_info().is_some());
                let code = result.map_or_else(|s| s.code(), |_| Code::Ok);
                refused_in_a_row = if code == Code::Ok { 0 } else { refused_in_a_row + 1 };
                if let Ok(mut calls) = calls.lock() {
                    calls.push(Call {
                        started,
                        ended: Instant::now(),
                        code,
                        server_made,
                    });
                }
                if code != Code::Ok {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    let pid = child.id().expect("pid").to_string();
    let signalled = Instant::now();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());

    // Health says NOT_SERVING during the grace period, while the listener still
    // accepts calls.
    let mut health = HealthClient::new(channel.clone());
    let mut not_serving_after = None;
    while signalled.elapsed() < Duration::from_millis(GRACE_MS) {
        if let Ok(status) = health
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            && status.into_inner().status == 2
        {
            not_serving_after = Some(signalled.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let not_serving_after = not_serving_after.expect("health turned NOT_SERVING during the grace period");

    let status = tokio::time::timeout(Duration::from_millis(GRACE_MS + DRAIN_MS + 5_000), child.wait())
        .await
        .expect("exits after SIGTERM")
        .expect("exit status");
    let exited_after = signalled.elapsed();
    assert!(status.success(), "{status:?}");
    assert!(
        exited_after <= Duration::from_millis(GRACE_MS + DRAIN_MS + 2_000),
        "exited {exited_after:?} after SIGTERM"
    );
    for worker in workers {
        worker.await.expect("worker");
    }

    let calls = calls.lock().map(|c| c.clone()).unwrap_or_default();
    let grace_ends = signalled + Duration::from_millis(GRACE_MS);
    let before: Vec<&Call> = calls.iter().filter(|c| c.ended < signalled).collect();
    let straddling: Vec<&Call> = calls
        .iter()
        .filter(|c| c.started < signalled && c.ended >= signalled)
        .collect();
    // Started while health already said NOT_SERVING but the listener still took calls.
    let during_grace: Vec<&Call> = calls
        .iter()
        .filter(|c| c.started >= signalled && c.started + Duration::from_millis(250) < grace_ends)
        .collect();
    let after_grace: Vec<&Call> = calls
        .iter()
        .filter(|c| c.started > grace_ends + Duration::from_millis(200))
        .collect();
    assert!(
        before.iter().all(|c| c.code == Code::Ok),
        "before SIGTERM every call succeeds"
    );
    assert!(
        straddling.iter().all(|c| c.code == Code::Ok),
        "calls in flight at SIGTERM finish: {straddling:?}"
    );
    assert!(
        during_grace.iter().all(|c| c.code == Code::Ok),
        "calls taken during the grace period finish: {during_grace:?}"
    );
    assert!(
        !after_grace.is_empty(),
        "the load kept trying after the grace period"
    );
    assert!(
        after_grace.iter().all(|c| c.code != Code::Ok && !c.server_made),
        "calls after the grace period are refused by the closed listener: {after_grace:?}"
    );
    assert!(
        calls.iter().all(|c| !c.server_made),
        "no call ends in an error the server made: {:?}",
        calls.iter().filter(|c| c.server_made).collect::<Vec<_>>()
    );
    eprintln!(
        "{} calls: {} before SIGTERM, {} in flight at it (all OK), {} refused after the grace; \
         NOT_SERVING after {} ms, exited after {} ms",
        calls.len(),
        before.len(),
        straddling.len(),
        after_grace.len(),
        not_serving_after.as_millis(),
        exited_after.as_millis()
    );
}
