//! A slow dependency: with the customers table locked by someone else, calls end at
//! their deadline with `DEADLINE_EXCEEDED` instead of piling up, calls beyond the
//! concurrency limit are shed at once with `RESOURCE_EXHAUSTED` and `RetryInfo`,
//! health keeps answering, and service resumes when the lock goes.

mod support;

use std::time::{Duration, Instant};

use distnet_proto::customers::v1::GetCustomerRequest;
use sqlx::Connection as _;
use support::{TestService, create_request, reason, retailer};
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use tonic_types::StatusExt as _;

const CALLS: usize = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_to_a_stuck_database_end_at_their_deadline_and_the_excess_is_shed() {
    let db = TestService::database().await;
    let mut settings = distnet_testkit::settings(&db.url);
    settings.server.request_timeout_ms = 300;
    settings.server.concurrency_limit = 8;
    let mut service = TestService::start_with(&settings).await;
    let url = db.url.clone();
    service.db = Some(db);
    let mut admin = service.admin();
    admin
        .create_customer(create_request("slow-1", "r-1", retailer("甲", "area-01", "cm-1")))
        .await
        .expect("created");

    // Someone else holds the table: every read waits on the lock.
    let mut blocker = sqlx::PgConnection::connect(&url).await.expect("connect");
    sqlx::query("BEGIN").execute(&mut blocker).await.expect("begin");
    sqlx::query("LOCK TABLE customers.customers IN ACCESS EXCLUSIVE MODE")
        .execute(&mut blocker)
        .await
        .expect("lock");

    let started = Instant::now();
    let mut calls = Vec::new();
    for _ in 0..CALLS {
        let mut client = admin.clone();
        calls.push(tokio::spawn(async move {
            let began = Instant::now();
            let result = client
                .get_customer(GetCustomerRequest {
                    name: "customers/r-1".into(),
                })
                .await;
            (result.err(), began.elapsed())
        }));
    }
    // Meanwhile health answers at once.
    let mut health = HealthClient::new(service.channel.clone());
    let asked = Instant::now();
    let status = health
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("health answers")
        .into_inner();
    assert_eq!(status.status, 1, "SERVING");
    let health_took = asked.elapsed();

    let (mut exceeded, mut shed) = (0, 0);
    let mut slowest = Duration::ZERO;
    for call in calls {
        let (error, took) = call.await.expect("call task");
        slowest = slowest.max(took);
        let status = error.expect("nothing can be read while the table is locked");
        match status.code() {
            Code::DeadlineExceeded => {
                assert_eq!(
                    reason(&status),
                    "DEADLINE_EXCEEDED",
                    "ended by the server: {status:?}"
                );
                exceeded += 1;
            }
            Code::ResourceExhausted => {
                assert!(status.get_details_retry_info().is_some(), "{status:?}");
                shed += 1;
            }
            other => panic!("unexpected {other:?}: {status:?}"),
        }
    }
    eprintln!(
        "{CALLS} calls against a locked table: {exceeded} DEADLINE_EXCEEDED, {shed} shed; slowest {} ms; \
         health answered in {} ms; all done {} ms after the first",
        slowest.as_millis(),
        health_took.as_millis(),
        started.elapsed().as_millis()
    );
    assert!(exceeded >= 1 && shed >= 1, "{exceeded} exceeded, {shed} shed");
    // Bounded by the deadline, not by the lock (which is still held).
    assert!(slowest < Duration::from_secs(5), "slowest call {slowest:?}");

    sqlx::query("ROLLBACK")
        .execute(&mut blocker)
        .await
        .expect("unlock");
    let mut recovered = false;
    for _ in 0..50 {
        if admin
            .get_customer(GetCustomerRequest {
                name: "customers/r-1".into(),
            })
            .await
            .is_ok()
        {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(recovered, "reads work again once the lock is gone");
    service.stop().await;
}
