//! A database outage is a transient fault: calls fail `UNAVAILABLE` with
//! `RetryInfo` (never `INTERNAL`) and succeed again once Postgres is back, without
//! restarting the service.

mod support;

use std::time::Duration;

use distnet_platform::postgres::{Kind, LocalPostgres};
use distnet_proto::customers::v1::GetCustomerRequest;
use support::{TestService, create_request, retailer};
use tonic::Code;
use tonic_types::StatusExt as _;

#[tokio::test(flavor = "multi_thread")]
async fn with_postgres_stopped_calls_are_unavailable_and_recover_when_it_returns() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cluster = LocalPostgres::start(dir.path(), Kind::Throwaway).expect("private postgres");
    let settings = distnet_testkit::settings(&cluster.url("postgres"));
    let service = TestService::start_with(&settings).await;
    let mut admin = service.admin();
    admin
        .create_customer(create_request("c", "r-1", retailer("甲", "area-01", "cm-1")))
        .await
        .expect("created while up");
    let get = || GetCustomerRequest {
        name: "customers/r-1".into(),
    };

    tokio::task::block_in_place(|| cluster.stop_server(false)).expect("postgres stops");
    for attempt in 0..3 {
        let error = admin.get_customer(get()).await.expect_err("database is down");
        assert_eq!(error.code(), Code::Unavailable, "attempt {attempt}: {error:?}");
        assert!(
            error.get_details_retry_info().is_some(),
            "tells the client to retry"
        );
    }
    let error = admin
        .create_customer(create_request("c2", "r-2", retailer("乙", "area-01", "cm-1")))
        .await
        .expect_err("writes fail too");
    assert_eq!(error.code(), Code::Unavailable);

    tokio::task::block_in_place(|| cluster.start_server()).expect("postgres returns");
    // The pool reconnects by itself; allow it a bounded number of tries.
    let mut recovered = None;
    for _ in 0..50 {
        match admin.get_customer(get()).await {
            Ok(customer) => {
                recovered = Some(customer.into_inner());
                break;
            }
            Err(error) => {
                assert_eq!(error.code(), Code::Unavailable, "{error:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    assert_eq!(
        recovered.expect("recovered without a restart").name,
        "customers/r-1"
    );
    admin
        .create_customer(create_request("c2", "r-2", retailer("乙", "area-01", "cm-1")))
        .await
        .expect("the failed write can be retried with its request id");

    service.stop().await;
    tokio::task::block_in_place(|| cluster.stop_server(false)).expect("postgres stops");
}
