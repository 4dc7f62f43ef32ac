//! `distnet up` on its private PostgreSQL, stopped and started again at once on the
//! same folder (an operator's Ctrl-C and rerun, a supervisor's restart): the second
//! run keeps the first one's data and its own server. The first run's watchdog, which
//! notices its owner's exit within a second, must not stop the server the second run
//! has started meanwhile.

mod support;

use std::time::Duration;

use distnet_proto::common::v1::LatLng;
use distnet_proto::customers::v1::customer_service_client::CustomerServiceClient;
use distnet_proto::customers::v1::{CreateCustomerRequest, Customer, GetCustomerRequest};
use distnet_testkit::Bearer;

/// A running `distnet up` on the private cluster in `data_dir`: its process and the
/// customers service's address and admin token.
struct Up {
    child: tokio::process::Child,
    addr: String,
    token: String,
}

async fn up(data_dir: &std::path::Path) -> Up {
    let mut child = support::distnet_up()
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("DATABASE_URL")
        .env("DISTNET__SERVER__SHUTDOWN_GRACE_MS", "100")
        .spawn()
        .expect("distnet up starts");
    let (addr, token) = support::customers_when_ready(&mut child).await;
    Up { child, addr, token }
}

impl Up {
    async fn customers(
        &self,
    ) -> CustomerServiceClient<
        tonic::service::interceptor::InterceptedService<tonic::transport::Channel, Bearer>,
    > {
        let channel = distnet_testkit::channel(self.addr.parse().expect("address"))
            .await
            .expect("connect");
        CustomerServiceClient::with_interceptor(channel, Bearer(Some(self.token.clone())))
    }

    async fn terminate(mut self) {
        support::terminate(&mut self.child).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_on_the_same_folder_keeps_its_database_when_the_first_run_is_gone() {
    let data_dir = std::env::temp_dir().join(format!("distnet-restart-{}", support::rid()));
    let first = up(&data_dir).await;
    let customer = Customer {
        display_name: "重启测试店".into(),
        legal_name: "重启测试店有限公司".into(),
        format: 1,
        area_id: "area-01".into(),
        owner_id: "cm-001".into(),
        settlement: 1,
        location: Some(LatLng {
            latitude: 30.66,
            longitude: 104.06,
        }),
        ..Customer::default()
    };
    first
        .customers()
        .await
        .create_customer(CreateCustomerRequest {
            request_id: "restart-1".into(),
            customer_id: "restart-1".into(),
            customer: Some(customer),
        })
        .await
        .expect("created");
    first.terminate().await;

    // At once: the first run's watchdog is still polling for its owner.
    let second = up(&data_dir).await;
    // Longer than the watchdog's poll: it has seen its owner gone by now.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut customers = second.customers().await;
    for attempt in 0..3 {
        let found = customers
            .get_customer(GetCustomerRequest {
                name: "customers/restart-1".into(),
            })
            .await;
        match found {
            Ok(found) => assert_eq!(found.into_inner().display_name, "重启测试店"),
            Err(status) => panic!("read {attempt} after the rerun: {status:?}"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    second.terminate().await;
    let _ = std::fs::remove_dir_all(&data_dir);
}
