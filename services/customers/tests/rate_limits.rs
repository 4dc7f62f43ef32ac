//! Per-caller rate limits on the RPCs phones call, through a real server: a burst
//! passes, the next call is `RESOURCE_EXHAUSTED` (`RATE_LIMITED`) with `RetryInfo`,
//! other callers and other RPCs are not affected, and the caller gets through again
//! after the delay it was given.

mod support;

use distnet_platform::auth::Role;
use distnet_proto::customers::v1::{GetVisitPlanRequest, ListCustomersRequest};
use support::{TestService, reason};
use tonic::Code;
use tonic_types::StatusExt as _;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_over_the_rate_waits_as_told_and_nobody_else_does() {
    let db = TestService::database().await;
    let mut settings = distnet_testkit::settings(&db.url);
    // One token a second: slow enough that a loaded CI machine spends the burst
    // before it refills, and the bound below allows for whatever did refill.
    settings.server.rate_limit.per_second = 1.0;
    settings.server.rate_limit.burst = 3;
    let mut service = TestService::start_with(&settings).await;
    service.db = Some(db);

    let mut rep = service.as_role(Role::CustomerManager, "cm-001", &["area-01"]);
    let plan = || GetVisitPlanRequest {
        rep: String::new(),
        date: "2026-11-24".into(),
    };
    let started = std::time::Instant::now();
    let mut passed = 0u32;
    let limited = loop {
        match rep.get_visit_plan(plan()).await {
            Ok(_) => passed += 1,
            Err(status) => break status,
        }
        assert!(passed <= 20, "never limited");
    };
    // The burst passes, plus at most what refilled while the calls ran.
    let refilled = started.elapsed().as_secs_f64().ceil() as u32;
    assert!(
        (3..=3 + refilled).contains(&passed),
        "{passed} calls passed in {:?}",
        started.elapsed()
    );
    assert_eq!(limited.code(), Code::ResourceExhausted);
    assert_eq!(reason(&limited), "RATE_LIMITED");
    let delay = limited
        .get_details_retry_info()
        .and_then(|info| info.retry_delay)
        .expect("a retry delay");
    assert!(delay.as_millis() > 0 && delay.as_millis() <= 1000, "{delay:?}");

    // Another rep, and another RPC of the same rep, are not held back.
    let mut other = service.as_role(Role::CustomerManager, "cm-002", &["area-02"]);
    other.get_visit_plan(plan()).await.expect("a caller of their own");
    rep.list_customers(ListCustomersRequest::default())
        .await
        .expect("not a rate-limited RPC");

    // After the delay given, the rep gets through again.
    tokio::time::sleep(delay + std::time::Duration::from_millis(20)).await;
    rep.get_visit_plan(plan()).await.expect("after the delay");
    service.stop().await;
}
