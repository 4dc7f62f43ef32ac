//! The whole suite with mutual TLS on: certificates from `distnet certs`, the four
//! services serving TLS and requiring client certificates signed by the CA, their
//! event relays calling each other over mutual TLS (a retailer created in customers
//! reaches accreditation), and clients without a certificate, or in plaintext,
//! refused.

mod support;

use std::time::Duration;

use distnet_platform::Settings;
use distnet_platform::auth::Role;
use distnet_platform::server::{ServerHandle, Shutdown};
use distnet_proto::accreditation::v1::accreditation_service_client::AccreditationServiceClient;
use distnet_proto::accreditation::v1::{ApplicationKind, Premises, SubmitApplicationRequest};
use distnet_proto::common::v1::LatLng;
use distnet_proto::customers::v1::customer_service_client::CustomerServiceClient;
use distnet_proto::customers::v1::{
    CreateCustomerRequest, Customer, CustomerFormat, GetCustomerRequest, Settlement,
};
use distnet_testkit::{Bearer, TestDb};
use support::eventually;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

fn read(path: &std::path::Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A TLS channel to `addr` trusting the CA, with the operator's certificate or none.
async fn tls_channel(
    addr: std::net::SocketAddr,
    certs: &std::path::Path,
    with_identity: bool,
) -> Result<Channel, String> {
    let mut config =
        ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(&certs.join("ca.pem"))));
    if with_identity {
        config = config.identity(Identity::from_pem(
            read(&certs.join("client.pem")),
            read(&certs.join("client.key")),
        ));
    }
    Endpoint::from_shared(format!("https://{addr}"))
        .map_err(|e| e.to_string())?
        .tls_config(config)
        .map_err(|e| e.to_string())?
        .timeout(Duration::from_secs(10))
        .connect()
        .await
        .map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_suite_runs_over_mutual_tls_and_refuses_clients_without_a_certificate() {
    let certs = tempfile_dir();
    let made = std::process::Command::new(env!("CARGO_BIN_EXE_distnet"))
        .args(["certs", "--out"])
        .arg(&certs)
        .env("DISTNET__TELEMETRY__LOG_FILTER", "warn")
        .output()
        .expect("distnet certs runs");
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));

    let db = TestDb::new().await.expect("database");
    let mut settings: Settings = distnet_testkit::settings(&db.url);
    settings.tls.cert_path = certs.join("service.pem").display().to_string();
    settings.tls.key_path = certs.join("service.key").display().to_string();
    settings.tls.ca_path = certs.join("ca.pem").display().to_string();
    settings.tls.client_ca_path = certs.join("ca.pem").display().to_string();
    settings
        .events
        .subscriptions
        .insert("CustomerChanged".into(), vec!["accreditation".into()]);
    let bind = || tokio::net::TcpListener::bind("127.0.0.1:0");
    let listeners = [
        bind().await.expect("bind"),
        bind().await.expect("bind"),
        bind().await.expect("bind"),
        bind().await.expect("bind"),
    ];
    let addrs: Vec<std::net::SocketAddr> = listeners.iter().map(|l| l.local_addr().expect("addr")).collect();
    settings.services.customers.url = format!("https://{}", addrs[0]);
    settings.services.accreditation.url = format!("https://{}", addrs[1]);
    settings.services.allocation.url = format!("https://{}", addrs[2]);
    settings.services.logistics.url = format!("https://{}", addrs[3]);
    let shutdown = Shutdown::new();
    let [customers_l, accreditation_l, allocation_l, logistics_l] = listeners;
    let handles: Vec<ServerHandle> = vec![
        distnet_customers::serve(&settings, customers_l, shutdown.clone())
            .await
            .expect("customers"),
        distnet_accreditation::serve(&settings, accreditation_l, shutdown.clone())
            .await
            .expect("accreditation"),
        distnet_allocation::serve(&settings, allocation_l, shutdown.clone())
            .await
            .expect("allocation"),
        distnet_logistics::serve(&settings, logistics_l, shutdown.clone())
            .await
            .expect("logistics"),
    ];

    // An operator with a certificate from the CA works with every service.
    let admin = Bearer(Some(distnet_testkit::token_for(Role::Admin, "admin-1", &[])));
    let customers = tls_channel(addrs[0], &certs, true)
        .await
        .expect("mutual TLS to customers");
    let mut client = CustomerServiceClient::with_interceptor(customers, admin.clone());
    client
        .create_customer(CreateCustomerRequest {
            request_id: "mtls-1".into(),
            customer_id: "shop-tls".into(),
            customer: Some(Customer {
                display_name: "加密便利店".into(),
                format: CustomerFormat::Grocery as i32,
                settlement: Settlement::ESettlement as i32,
                area_id: "area-01".into(),
                owner_id: "cm-1".into(),
                location: Some(LatLng {
                    latitude: 30.66,
                    longitude: 104.06,
                }),
                ..Customer::default()
            }),
        })
        .await
        .expect("created over mutual TLS");

    // The relay carried CustomerChanged to accreditation over mutual TLS.
    let accreditation = tls_channel(addrs[1], &certs, true)
        .await
        .expect("mutual TLS to accreditation");
    let office = AccreditationServiceClient::with_interceptor(accreditation, admin.clone());
    eventually("the retailer reaches accreditation over mutual TLS", || {
        let mut office = office.clone();
        async move {
            office
                .submit_application(SubmitApplicationRequest {
                    request_id: "mtls-apply".into(),
                    customer: "customers/shop-tls".into(),
                    kind: ApplicationKind::New as i32,
                    premises: Some(Premises {
                        location: Some(LatLng {
                            latitude: 30.66,
                            longitude: 104.06,
                        }),
                        floor_area_sqm: 40,
                        format: CustomerFormat::Grocery as i32,
                        ..Premises::default()
                    }),
                    documents: vec![],
                })
                .await
                .ok()
        }
    })
    .await;

    // Without a client certificate, or in plaintext, nothing gets through.
    for addr in &addrs {
        let refused = match tls_channel(*addr, &certs, false).await {
            Err(_) => true,
            Ok(channel) => CustomerServiceClient::with_interceptor(channel, admin.clone())
                .get_customer(GetCustomerRequest {
                    name: "customers/shop-tls".into(),
                })
                .await
                .is_err(),
        };
        assert!(refused, "{addr}: a client without a certificate was served");
        let plaintext = match distnet_testkit::channel(*addr).await {
            Err(_) => true,
            Ok(channel) => CustomerServiceClient::with_interceptor(channel, admin.clone())
                .get_customer(GetCustomerRequest {
                    name: "customers/shop-tls".into(),
                })
                .await
                .is_err(),
        };
        assert!(plaintext, "{addr}: a plaintext client was served");
    }

    // The production overlay's readiness probe: `distnet probe <service>` asks this
    // host's server for its API's health over mutual TLS, verifying the certificate
    // for the host of the service's URL (`localhost`, which the certificate carries).
    let probe = |service: &'static str,
                 addr: std::net::SocketAddr,
                 extra: &'static [&'static str],
                 with_cert: bool| {
        let certs = certs.clone();
        async move {
            let prefix = format!("DISTNET__SERVICES__{}", service.to_uppercase());
            let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_distnet"));
            command
                .args(["probe", service])
                .args(extra)
                .env(format!("{prefix}__PORT"), addr.port().to_string())
                .env(
                    format!("{prefix}__URL"),
                    format!("https://localhost:{}", addr.port()),
                )
                .env("DISTNET__TLS__CA_PATH", certs.join("ca.pem"))
                .env("DISTNET__TELEMETRY__LOG_FILTER", "warn")
                .kill_on_drop(true);
            if with_cert {
                command
                    .env("DISTNET__TLS__CERT_PATH", certs.join("service.pem"))
                    .env("DISTNET__TLS__KEY_PATH", certs.join("service.key"));
            }
            let output = command.output().await.expect("distnet probe runs");
            (
                output.status.success(),
                String::from_utf8_lossy(&output.stdout).into_owned(),
            )
        }
    };
    let names = ["customers", "accreditation", "allocation", "logistics"];
    for (service, addr) in names.into_iter().zip(addrs.iter().copied()) {
        let said = eventually(&format!("{service} ready by its probe"), || async move {
            let (ok, said) = probe(service, addr, &[], true).await;
            ok.then_some(said)
        })
        .await;
        assert!(
            said.starts_with(&format!("distnet.{service}.v1."))
                && said.trim_end().ends_with("Service: SERVING"),
            "{service}: {said}"
        );
        let (alive, said) = probe(service, addr, &["--alive"], true).await;
        assert!(
            alive && said.starts_with("the server: SERVING"),
            "{service}: {said}"
        );
        let (ok, _) = probe(service, addr, &[], false).await;
        assert!(
            !ok,
            "{service}: a probe without the service's certificate was answered"
        );
    }

    shutdown.trigger();
    for handle in handles {
        handle.wait().await.expect("clean shutdown");
    }
    let _ = std::fs::remove_dir_all(&certs);
}

/// A fresh folder for this test's certificates.
fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("distnet-mtls-{}-{}", std::process::id(), rand_suffix()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}
