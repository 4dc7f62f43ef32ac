//! `distnet up`: every service built so far in one process, each on its own port,
//! against `DATABASE_URL` or a private PostgreSQL started from the installed server
//! binaries. Prints ports, a dev token and grpcurl examples; ctrl-c or SIGTERM stops
//! everything, the private PostgreSQL included.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use distnet_platform::Settings;
use distnet_platform::auth::{Claims, Role, TokenIssuer};
use distnet_platform::postgres::{Kind, LocalPostgres};
use distnet_platform::server::{Shutdown, bind, termination_signal};
use distnet_platform::settings::{DEV_HS256_SECRET, Secret, TokenAlgorithm};
use sqlx::Connection as _;

use crate::seed::NetworkShape;
use crate::{demo, demo_allocation, demo_logistics, demo_relationship};

/// The services this build runs, with the events each consumes.
pub const SERVICES: &[(&str, &[&str])] = &[
    (distnet_customers::SERVICE, distnet_customers::CONSUMES),
    (distnet_accreditation::SERVICE, distnet_accreditation::CONSUMES),
    (distnet_allocation::SERVICE, distnet_allocation::CONSUMES),
    (distnet_logistics::SERVICE, distnet_logistics::CONSUMES),
];

fn consumes(service: &str, event: &str) -> bool {
    SERVICES
        .iter()
        .any(|(name, events)| *name == service && events.contains(&event))
}

pub struct UpOptions {
    pub demo: bool,
    pub shape: NetworkShape,
    pub data_dir: PathBuf,
}

/// Starts the private cluster and makes sure the `distnet` database exists.
pub async fn private_database(data_dir: &std::path::Path) -> anyhow::Result<(LocalPostgres, String)> {
    let cluster = tokio::task::block_in_place(|| LocalPostgres::start(data_dir, Kind::Persistent))?;
    let mut admin = sqlx::PgConnection::connect(&cluster.url("postgres")).await?;
    let exists: Option<(i32,)> = sqlx::query_as("SELECT 1 FROM pg_database WHERE datname = 'distnet'")
        .fetch_optional(&mut admin)
        .await?;
    if exists.is_none() {
        sqlx::query("CREATE DATABASE distnet").execute(&mut admin).await?;
    }
    admin.close().await?;
    let url = cluster.url("distnet");
    Ok((cluster, url))
}

pub async fn run(mut settings: Settings, options: UpOptions) -> anyhow::Result<()> {
    let mut cluster = None;
    if settings.database.url.expose().is_empty() {
        let (started, url) = private_database(&options.data_dir).await?;
        settings.database.url = Secret::new(url);
        cluster = Some(started);
    }
    settings.retain_subscribers(consumes);

    // Bind first, so that with port 0 every service learns the others' real ports.
    let customers_listener = bind(&settings, settings.services.customers.port).await?;
    let accreditation_listener = bind(&settings, settings.services.accreditation.port).await?;
    let customers_addr = customers_listener.local_addr()?;
    let allocation_listener = bind(&settings, settings.services.allocation.port).await?;
    let logistics_listener = bind(&settings, settings.services.logistics.port).await?;
    let accreditation_addr = accreditation_listener.local_addr()?;
    let allocation_addr = allocation_listener.local_addr()?;
    let logistics_addr = logistics_listener.local_addr()?;
    // With TLS on, the services call each other over mutual TLS.
    let scheme = if settings.tls.enabled() { "https" } else { "http" };
    settings.services.customers.url = format!("{scheme}://{customers_addr}");
    settings.services.accreditation.url = format!("{scheme}://{accreditation_addr}");
    settings.services.allocation.url = format!("{scheme}://{allocation_addr}");
    settings.services.logistics.url = format!("{scheme}://{logistics_addr}");

    let shutdown = Shutdown::new();
    let customers = distnet_customers::serve(&settings, customers_listener, shutdown.clone()).await?;
    let accreditation =
        distnet_accreditation::serve(&settings, accreditation_listener, shutdown.clone()).await?;
    let allocation = distnet_allocation::serve(&settings, allocation_listener, shutdown.clone()).await?;
    let logistics = distnet_logistics::serve(&settings, logistics_listener, shutdown.clone()).await?;

    print_banner(
        &settings,
        &[
            ("customers", customers_addr),
            ("accreditation", accreditation_addr),
            ("allocation", allocation_addr),
            ("logistics", logistics_addr),
        ],
        cluster.as_ref(),
        &options,
    )?;

    if options.demo {
        let secret = settings.auth.hs256_secret.expose();
        // The delivery network first: orders confirmed later find their zones.
        let network =
            demo_logistics::seed_logistics(&settings.services.logistics.url, secret, &options.shape).await?;
        println!(
            "demo delivery network ready: {} depots, {} zones, {} vehicles ({:.1} s)",
            network.depots,
            network.zones,
            network.vehicles,
            network.elapsed.as_secs_f64()
        );
        let report = demo::seed_customers(&settings.services.customers.url, secret, &options.shape).await?;
        println!(
            "demo network ready: {} retailers in {} areas ({:.1} s)",
            report.created,
            options.shape.areas,
            report.elapsed.as_secs_f64()
        );
        let licensing =
            demo::seed_licenses(&settings.services.accreditation.url, secret, &options.shape).await?;
        println!(
            "demo licenses ready: {} licensed, {} refused for spacing ({:.1} s)",
            licensing.licensed,
            licensing.refused,
            licensing.elapsed.as_secs_f64()
        );
        let sample =
            demo::seed_scores_and_credit(&settings.services.accreditation.url, secret, &options.shape)
                .await?;
        println!(
            "demo score histories and credit files ready: {} and {} ({:.1} s)",
            sample.scored,
            sample.credit_files,
            sample.elapsed.as_secs_f64()
        );
        let grading =
            demo::seed_grading(&settings.services.accreditation.url, secret, &options.shape).await?;
        println!(
            "demo grading published: {} retailers in {} tiers (run {} ms, publish {} ms)",
            grading.retailers,
            grading.tiers,
            grading.run.as_millis(),
            grading.publish.as_millis()
        );
        let allocation =
            demo_allocation::seed_allocation(&settings.services.allocation.url, secret, &options.shape)
                .await?;
        println!(
            "demo allocation committed: cycle {}, {} products ({} scarce), {} eligible retailers, {} cartons allocated ({:.1} s)",
            allocation.cycle,
            allocation.products,
            allocation.scarce,
            allocation.eligible,
            allocation.committed_total,
            allocation.elapsed.as_secs_f64()
        );
        let relationship =
            demo_relationship::seed_relationship(&settings.services.customers.url, secret, &options.shape)
                .await?;
        println!(
            "demo relationships ready: {} order-history records, {} visits, {} surveys, {} cases ({:.1} s)",
            relationship.history,
            relationship.visits,
            relationship.surveys,
            relationship.cases,
            relationship.elapsed.as_secs_f64()
        );
    }
    println!("ready; ctrl-c stops everything");

    termination_signal().await;
    println!("stopping");
    shutdown.trigger();
    customers.wait().await?;
    accreditation.wait().await?;
    allocation.wait().await?;
    logistics.wait().await?;
    if let Some(cluster) = cluster {
        tokio::task::block_in_place(|| cluster.stop_server(false))?;
        println!("private PostgreSQL stopped");
    }
    Ok(())
}

fn print_banner(
    settings: &Settings,
    services: &[(&str, SocketAddr)],
    cluster: Option<&LocalPostgres>,
    options: &UpOptions,
) -> anyhow::Result<()> {
    println!("distnet is up");
    for (name, addr) in services {
        println!("  {name} listening on {addr}");
    }
    let customers = services
        .first()
        .map(|(_, addr)| *addr)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 50051)));
    match cluster {
        Some(cluster) => println!(
            "  database: private PostgreSQL on 127.0.0.1:{} (data in {})",
            cluster.port(),
            options.data_dir.display()
        ),
        None => println!("  database: DATABASE_URL"),
    }
    if settings.auth.algorithm == TokenAlgorithm::HS256 {
        if settings.auth.hs256_secret.expose() == DEV_HS256_SECRET {
            println!("  warning: the development token secret is in use; set DISTNET__AUTH__HS256_SECRET");
        }
        let claims = Claims::new("dev-admin", Role::Admin, Duration::from_secs(12 * 3600));
        let token = TokenIssuer::hs256(settings.auth.hs256_secret.expose()).mint(&claims)?;
        println!();
        println!("dev admin token (12 h):");
        println!("  export TOKEN={token}");
    }
    if options.demo
        && let Some((manager, area)) = crate::seed::manager_ids(&options.shape).first()
    {
        println!(
            "  a customer manager's token: distnet token --role customer_manager --sub {manager} --areas {area}"
        );
    }
    println!();
    println!("try:");
    println!("  grpcurl -plaintext {customers} list");
    println!("  grpcurl -plaintext {customers} grpc.health.v1.Health/Check");
    println!(
        "  grpcurl -plaintext -H \"authorization: Bearer $TOKEN\" -d '{{\"page_size\": 3}}' {customers} \
         distnet.customers.v1.CustomerService/ListCustomers"
    );
    println!(
        "  grpcurl -plaintext -H \"authorization: Bearer $TOKEN\" -d '{{\"name\": \"customers/r-00001\"}}' \
         {customers} distnet.customers.v1.CustomerService/GetCustomer"
    );
    if let Some((_, accreditation)) = services.iter().find(|(name, _)| *name == "accreditation") {
        println!(
            "  grpcurl -plaintext -H \"authorization: Bearer $TOKEN\" -d '{{\"customer\": \"customers/r-00001\"}}' \
             {accreditation} distnet.accreditation.v1.AccreditationService/GetStanding"
        );
    }
    if let Some((_, allocation)) = services.iter().find(|(name, _)| *name == "allocation") {
        println!(
            "  grpcurl -plaintext -H \"authorization: Bearer $TOKEN\" -d '{{\"customer\": \"customers/r-00001\", \"cycle\": \"cycles/{}\"}}' \
             {allocation} distnet.allocation.v1.AllocationService/GetEntitlements",
            demo_allocation::current_cycle()
        );
    }
    println!();
    Ok(())
}
