//! `distnet`: the all-in-one runner and the operator commands.

mod audit;
mod bench;
mod bench_footprint;
mod bench_load;
mod bench_routing;
mod certs;
mod demo;
mod demo_allocation;
mod demo_logistics;
mod demo_relationship;
mod probe;
mod seed;
mod up;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use distnet_platform::auth::{Claims, Role, TokenIssuer};
use distnet_platform::{Settings, telemetry};

#[derive(Parser)]
#[command(
    name = "distnet",
    version,
    about = "distnet: the distributor's retail network suite"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every service in one process (private PostgreSQL when DATABASE_URL is unset).
    Up {
        /// Seed a realistic demo network (DOMAIN.md figures).
        #[arg(long)]
        demo: bool,
        /// Retailers in the demo network.
        #[arg(long, default_value_t = 11_500)]
        retailers: usize,
        /// Where the private PostgreSQL keeps its data.
        #[arg(long, default_value = ".distnet/postgres")]
        data_dir: PathBuf,
    },
    /// Create or upgrade every service's schema in DATABASE_URL.
    Migrate,
    /// Mint a development token (HS256 with the configured secret).
    Token {
        #[arg(long)]
        role: Role,
        #[arg(long)]
        sub: String,
        /// Area scopes, comma separated.
        #[arg(long, value_delimiter = ',')]
        areas: Vec<String>,
        /// For a retailer: its customer id.
        #[arg(long)]
        customer: Option<String>,
        #[arg(long, default_value_t = 12)]
        ttl_hours: u64,
    },
    /// Measure a service at scale through its gRPC API (needs DATABASE_URL).
    Bench {
        #[command(subcommand)]
        target: BenchTarget,
    },
    /// Show who changed what, when: the audit log of one or every service (DATABASE_URL).
    Audit {
        /// customers, accreditation, allocation or logistics; every service when absent.
        #[arg(long)]
        service: Option<String>,
        /// Staff id (token subject).
        #[arg(long)]
        actor: Option<String>,
        /// RPC name, e.g. PlaceOrder.
        #[arg(long)]
        method: Option<String>,
        #[arg(long)]
        request_id: Option<String>,
        #[arg(long)]
        trace_id: Option<String>,
        /// Only the last N hours.
        #[arg(long)]
        hours: Option<u32>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Make a development CA and certificates for mutual TLS (ca.pem, service.pem/key,
    /// client.pem/key), and print the settings that turn TLS on.
    Certs {
        #[arg(long, default_value = ".distnet/certs")]
        out: PathBuf,
        /// Names and addresses the services are reached at, comma separated.
        #[arg(long, value_delimiter = ',', default_value = "localhost,127.0.0.1")]
        hosts: Vec<String>,
    },
    /// Print who may call what: every service's access table, as the servers enforce
    /// it (Markdown, as in the README).
    Access,
    /// Ask this host's server of a service whether its API is ready (exit status 0
    /// when SERVING), over TLS when its URL is https:// — the production overlay's
    /// readiness probe, where the kubelet's gRPC probe cannot speak TLS.
    Probe(probe::ProbeArgs),
    /// Load a deterministic synthetic network into a running suite.
    Seed {
        #[arg(long, default_value_t = 11_500)]
        retailers: usize,
        #[arg(long, default_value_t = 48)]
        seed: u64,
        /// The customers service; defaults to services.customers.url.
        #[arg(long)]
        endpoint: Option<String>,
    },
}

#[derive(Subcommand)]
enum BenchTarget {
    /// Preview and commit P products over N retailers, then GetEntitlements and
    /// PlaceOrder under load.
    Allocation {
        #[arg(long, default_value_t = 100_000)]
        retailers: usize,
        #[arg(long, default_value_t = 200)]
        products: usize,
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// Seconds of each load phase.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// Load a running suite through its gRPC API (closed loop: N users calling back to
    /// back) and report throughput, latency percentiles and errors; `--pgbench` compares
    /// with the same SQL run by pgbench against the suite's database.
    Load(bench_load::LoadArgs),
    /// Each service as its own process (the `*-svc` binaries beside distnet) against
    /// DATABASE_URL: start-up time, resident memory idle and under `bench load`.
    Footprint(bench_footprint::FootprintArgs),
    /// Solve VRPLIB instances with the route planner and report the gap to the
    /// best-known solution in the `.sol` beside each.
    Routing {
        /// VRPLIB `.vrp` files (a `.sol` beside each gives the best-known cost).
        #[arg(required_unless_present = "demo_day")]
        files: Vec<PathBuf>,
        /// Plan a day of the demo network's first city zone (≈1,900 stops, 32 vans)
        /// instead; default budget 28 s of search (under 30 s in all).
        #[arg(long, conflicts_with = "files")]
        demo_day: bool,
        /// Budget per instance; default 2.4 s per 100 customers (CVRP), 60 s (VRPTW).
        #[arg(long)]
        seconds: Option<f64>,
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
}

distnet_platform::use_mimalloc!();

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Command::Bench {
        target: BenchTarget::Load(args),
    } = &cli.command
    {
        runtime.worker_threads(args.worker_threads());
    }
    runtime.enable_all().build()?.block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::load()?;
    match cli.command {
        Command::Up {
            demo,
            retailers,
            data_dir,
        } => {
            let mut guard = telemetry::init("distnet", &settings.telemetry);
            let shape = seed::NetworkShape {
                retailers,
                ..Default::default()
            };
            let result = up::run(
                settings,
                up::UpOptions {
                    demo,
                    shape,
                    data_dir,
                },
            )
            .await;
            guard.shutdown();
            result
        }
        Command::Migrate => {
            let _guard = telemetry::init("distnet", &settings.telemetry);
            distnet_customers::migrate(&settings).await?.close().await;
            distnet_accreditation::migrate(&settings).await?.close().await;
            distnet_allocation::migrate(&settings).await?.close().await;
            distnet_logistics::migrate(&settings).await?.close().await;
            let names: Vec<&str> = up::SERVICES.iter().map(|(name, _)| *name).collect();
            println!("migrated: {}", names.join(", "));
            Ok(())
        }
        Command::Token {
            role,
            sub,
            areas,
            customer,
            ttl_hours,
        } => {
            let mut claims = Claims::new(sub, role, Duration::from_secs(ttl_hours * 3600)).with_areas(areas);
            claims.customer = customer;
            println!(
                "{}",
                TokenIssuer::hs256(settings.auth.hs256_secret.expose()).mint(&claims)?
            );
            Ok(())
        }
        Command::Bench {
            target:
                BenchTarget::Allocation {
                    retailers,
                    products,
                    concurrency,
                    seconds,
                },
        } => {
            let mut settings = settings;
            settings.telemetry.log_filter = "warn".into();
            let _guard = telemetry::init("distnet", &settings.telemetry);
            bench::run(
                settings,
                bench::AllocationBench {
                    retailers,
                    products,
                    concurrency,
                    seconds,
                },
            )
            .await
        }
        Command::Bench {
            target: BenchTarget::Load(args),
        } => {
            let mut settings = settings;
            settings.telemetry.log_filter = "warn".into();
            let _guard = telemetry::init("distnet", &settings.telemetry);
            bench_load::run(settings, args).await
        }
        Command::Bench {
            target: BenchTarget::Footprint(args),
        } => {
            let mut settings = settings;
            settings.telemetry.log_filter = "warn".into();
            let _guard = telemetry::init("distnet", &settings.telemetry);
            bench_footprint::run(settings, args).await
        }
        Command::Bench {
            target:
                BenchTarget::Routing {
                    files,
                    demo_day,
                    seconds,
                    seed,
                },
        } => {
            if demo_day {
                bench_routing::run_demo_day(seconds, seed)
            } else {
                bench_routing::run(&files, seconds, seed)
            }
        }
        Command::Audit {
            service,
            actor,
            method,
            request_id,
            trace_id,
            hours,
            limit,
        } => {
            let services: Vec<String> = match service {
                Some(name) if up::SERVICES.iter().any(|(s, _)| *s == name) => vec![name],
                Some(name) => anyhow::bail!("unknown service {name}"),
                None => up::SERVICES.iter().map(|(s, _)| s.to_string()).collect(),
            };
            let records = audit::query(
                &settings,
                &audit::AuditQuery {
                    services,
                    actor,
                    method,
                    request_id,
                    trace_id,
                    since: hours.map(|h| chrono::Utc::now() - chrono::Duration::hours(i64::from(h))),
                    limit: limit.clamp(1, 10_000),
                },
            )
            .await?;
            print!("{}", audit::render(&records));
            Ok(())
        }
        Command::Certs { out, hosts } => {
            let files = certs::make(&out, &hosts)?;
            println!("wrote {}", out.display());
            println!("turn mutual TLS on with:");
            println!(
                "  export DISTNET__TLS__CERT_PATH={}",
                files.service_cert.display()
            );
            println!("  export DISTNET__TLS__KEY_PATH={}", files.service_key.display());
            println!("  export DISTNET__TLS__CA_PATH={}", files.ca.display());
            println!("  export DISTNET__TLS__CLIENT_CA_PATH={}", files.ca.display());
            println!("and https:// service URLs (services.<name>.url); grpcurl as an operator:");
            println!(
                "  grpcurl -cacert {} -cert {} -key {} localhost:50051 list",
                files.ca.display(),
                files.client_cert.display(),
                files.client_key.display()
            );
            Ok(())
        }
        Command::Access => {
            print!("{}", access_tables());
            Ok(())
        }
        Command::Probe(args) => probe::run(&settings, args).await,
        Command::Seed {
            retailers,
            seed,
            endpoint,
        } => {
            let _guard = telemetry::init("distnet", &settings.telemetry);
            let shape = seed::NetworkShape {
                retailers,
                seed,
                ..Default::default()
            };
            let endpoint = endpoint.unwrap_or_else(|| settings.services.customers.url.clone());
            let report = demo::seed_customers(&endpoint, settings.auth.hs256_secret.expose(), &shape).await?;
            println!(
                "seeded {} retailers in {:.1} s",
                report.created,
                report.elapsed.as_secs_f64()
            );
            Ok(())
        }
    }
}

/// Every service's access table under a heading, then the event sink's.
fn access_tables() -> String {
    use distnet_platform::authz::{EVENT_SINK, render_markdown};
    let mut out = String::new();
    for (name, port, table) in [
        ("customers", 50051, distnet_customers::api::ACCESS),
        ("accreditation", 50052, distnet_accreditation::api::ACCESS),
        ("allocation", 50053, distnet_allocation::api::ACCESS),
        ("logistics", 50054, distnet_logistics::api::ACCESS),
    ] {
        out.push_str(&format!(
            "### {name} (port {port})\n\n{}\n",
            render_markdown(table)
        ));
    }
    out.push_str(&format!(
        "### every service: the event sink\n\n{}",
        render_markdown(EVENT_SINK)
    ));
    out
}
