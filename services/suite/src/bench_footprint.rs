//! `distnet bench footprint`: each service as it runs in production — its own
//! process, the `*-svc` binary beside `distnet` — against the database of
//! `DATABASE_URL` (the demo network of a `distnet up --demo`, say). Measures
//! start-up (spawn → health `SERVING`, migrations included), resident memory idle,
//! and resident memory while `distnet bench load <scenario>` runs against them
//! (customers and allocation take the calls; logistics and customers apply the
//! orders' events; accreditation idles).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use distnet_platform::Settings;
use tokio::process::{Child, Command};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::bench_load::{self, LoadArgs, Scenario};

/// The services (each binary is `{name}-svc`) and their APIs, whose health says a
/// service is ready for calls (allocation's only once its entitlements are warm).
const SERVICES: &[(&str, &str)] = crate::probe::APIS;

#[derive(Clone, Debug, clap::Args)]
pub struct FootprintArgs {
    /// The load while memory is watched.
    #[arg(long, value_enum, default_value = "mixed")]
    pub scenario: Scenario,
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Seconds of load.
    #[arg(long, default_value_t = 20.0)]
    pub duration: f64,
    /// Seconds to let the services settle before reading idle memory.
    #[arg(long, default_value_t = 3.0)]
    pub settle: f64,
}

struct Running {
    name: &'static str,
    child: Child,
    pid: u32,
    started: Duration,
    idle_kb: u64,
    peak_kb: u64,
    after_kb: u64,
}

/// Resident memory of `pid` in KiB (Linux `/proc`).
pub(crate) fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kb| kb.parse().ok())
}

fn binary(dir: &Path, service: &str) -> anyhow::Result<PathBuf> {
    let path = dir.join(format!("{service}-svc"));
    anyhow::ensure!(
        path.exists(),
        "{} not found: build it (cargo build --release) beside distnet",
        path.display()
    );
    Ok(path)
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Until `api` on `url` reports SERVING in gRPC health.
async fn until_serving(url: &str, api: &str, deadline: Instant) -> anyhow::Result<()> {
    loop {
        anyhow::ensure!(
            Instant::now() < deadline,
            "{api} on {url} not SERVING within 90 s"
        );
        if let Ok(channel) = tonic::transport::Endpoint::from_shared(url.to_string())?
            .connect_timeout(Duration::from_millis(200))
            .connect()
            .await
            && let Ok(reply) = HealthClient::new(channel)
                .check(HealthCheckRequest {
                    service: api.to_string(),
                })
                .await
            && reply.into_inner().status == ServingStatus::Serving as i32
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

pub async fn run(mut settings: Settings, args: FootprintArgs) -> anyhow::Result<()> {
    let database_url = settings.database.url.expose().to_string();
    anyhow::ensure!(
        !database_url.is_empty(),
        "set DATABASE_URL (the demo network's database)"
    );
    let exe = std::env::current_exe()?;
    let dir = exe.parent().context("the distnet binary's folder")?;
    let mut ports = Vec::new();
    for _ in SERVICES {
        ports.push(free_port()?);
    }
    let urls: Vec<String> = ports.iter().map(|p| format!("http://127.0.0.1:{p}")).collect();

    let mut running = Vec::new();
    for (i, (name, api)) in SERVICES.iter().enumerate() {
        let mut command = Command::new(binary(dir, name)?);
        command
            .env("DATABASE_URL", &database_url)
            .env("DISTNET__SERVER__RATE_LIMIT__PER_SECOND", "0")
            .env("DISTNET__TELEMETRY__LOG_FILTER", "warn")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true);
        for ((service, _), (port, url)) in SERVICES.iter().zip(ports.iter().zip(&urls)) {
            let key = service.to_uppercase();
            command
                .env(format!("DISTNET__SERVICES__{key}__PORT"), port.to_string())
                .env(format!("DISTNET__SERVICES__{key}__URL"), url);
        }
        let spawned = Instant::now();
        let child = command.spawn().with_context(|| format!("starting {name}-svc"))?;
        let pid = child.id().context("child pid")?;
        until_serving(&urls[i], api, spawned + Duration::from_secs(90)).await?;
        running.push(Running {
            name,
            child,
            pid,
            started: spawned.elapsed(),
            idle_kb: 0,
            peak_kb: 0,
            after_kb: 0,
        });
    }
    tokio::time::sleep(Duration::from_secs_f64(args.settle.max(0.0))).await;
    for service in &mut running {
        service.idle_kb = rss_kb(service.pid).unwrap_or(0);
        service.peak_kb = service.idle_kb;
    }

    // The load, with memory sampled every 100 ms meanwhile.
    settings.services.customers.url = urls[0].clone();
    settings.services.accreditation.url = urls[1].clone();
    settings.services.allocation.url = urls[2].clone();
    settings.services.logistics.url = urls[3].clone();
    let pids: Vec<u32> = running.iter().map(|s| s.pid).collect();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let sampler = tokio::spawn(async move {
        let mut stopped = stopped;
        let mut peaks = vec![0u64; pids.len()];
        loop {
            for (peak, pid) in peaks.iter_mut().zip(&pids) {
                *peak = (*peak).max(rss_kb(*pid).unwrap_or(0));
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                _ = stopped.changed() => return peaks,
            }
        }
    });
    let load = bench_load::run(
        settings,
        LoadArgs {
            scenario: args.scenario,
            concurrency: args.concurrency,
            threads: None,
            duration: args.duration,
            warmup: 1.0,
            json: None,
            pgbench: false,
            pgbench_script: None,
            database_url: None,
            customers: None,
            allocation: None,
            cycle: None,
            product: None,
            page_size: 50,
            rate: None,
            regular_lines: 0,
        },
    )
    .await;
    let _ = stop.send(true);
    let peaks = sampler.await.unwrap_or_default();
    tokio::time::sleep(Duration::from_secs_f64(args.settle.max(0.0))).await;
    for (service, peak) in running.iter_mut().zip(peaks) {
        service.peak_kb = service.peak_kb.max(peak);
        service.after_kb = rss_kb(service.pid).unwrap_or(0);
    }
    load?;

    println!();
    println!(
        "| service | start-up (spawn → API SERVING) | RSS idle | RSS peak under load | RSS after load |"
    );
    println!("|---|---|---|---|---|");
    let mb = |kb: u64| kb as f64 / 1024.0;
    for service in &running {
        println!(
            "| {}-svc | {:.0} ms | {:.1} MB | {:.1} MB | {:.1} MB |",
            service.name,
            service.started.as_secs_f64() * 1000.0,
            mb(service.idle_kb),
            mb(service.peak_kb),
            mb(service.after_kb)
        );
    }
    for service in &mut running {
        let _ = service.child.start_kill();
        let _ = service.child.wait().await;
    }
    Ok(())
}
