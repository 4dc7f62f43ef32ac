//! `distnet probe <service>`: the readiness check of a Kubernetes exec probe, for
//! where the kubelet's own gRPC probe cannot go — a server that speaks TLS only (the
//! production overlay). It asks this pod's server (its `server.host`, loopback for a
//! wildcard, on `services.<name>.port`) over the transport `services.<name>.url`
//! names, with the service's own certificate, for the health of its API — SERVING
//! once its caches are warm, NOT_SERVING while draining — and exits 0 only when
//! SERVING.

use std::time::Duration;

use anyhow::Context as _;
use distnet_platform::Settings;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// Each service's API, whose health says whether the replica takes calls.
pub const APIS: &[(&str, &str)] = &[
    (
        distnet_customers::SERVICE,
        distnet_proto::customers::v1::customer_service_server::SERVICE_NAME,
    ),
    (
        distnet_accreditation::SERVICE,
        distnet_proto::accreditation::v1::accreditation_service_server::SERVICE_NAME,
    ),
    (
        distnet_allocation::SERVICE,
        distnet_proto::allocation::v1::allocation_service_server::SERVICE_NAME,
    ),
    (
        distnet_logistics::SERVICE,
        distnet_proto::logistics::v1::logistics_service_server::SERVICE_NAME,
    ),
];

#[derive(Clone, Debug, clap::Args)]
pub struct ProbeArgs {
    /// customers, accreditation, allocation or logistics.
    pub service: String,
    /// Ask whether the server is alive (its own health, `""`) instead of whether its
    /// API is ready.
    #[arg(long)]
    pub alive: bool,
    /// Seconds for the whole check, connecting included (under the probe's own
    /// timeout: `timeoutSeconds: 3` in the prod overlay).
    #[arg(long, default_value_t = 2.0)]
    pub timeout: f64,
}

pub async fn run(settings: &Settings, args: ProbeArgs) -> anyhow::Result<()> {
    let Some(&(_, api)) = APIS.iter().find(|(name, _)| *name == args.service) else {
        anyhow::bail!(
            "no service {:?}: one of {}",
            args.service,
            APIS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
        );
    };
    let endpoint = settings
        .services
        .get(&args.service)
        .with_context(|| format!("no settings for {}", args.service))?;
    let timeout = Duration::from_secs_f64(args.timeout.clamp(0.1, 60.0));
    let local =
        distnet_platform::tls::local_endpoint(endpoint, &settings.server.host, &settings.tls, timeout)?;
    let asked = if args.alive { "" } else { api };
    let check = async {
        let channel = local
            .connect()
            .await
            .with_context(|| format!("connecting to {} on port {}", args.service, endpoint.port))?;
        health(channel, asked)
            .await
            .with_context(|| format!("asking {} for its health", args.service))
    };
    let status = tokio::time::timeout(timeout, check)
        .await
        .map_err(|_| anyhow::anyhow!("{} did not answer within {timeout:?}", args.service))??;
    let shown = if asked.is_empty() { "the server" } else { asked };
    println!("{shown}: {}", status.as_str_name());
    anyhow::ensure!(status == ServingStatus::Serving, "{shown} is not serving");
    Ok(())
}

/// What the server on `channel` says of `service`'s health (`""`: the server's own).
pub async fn health(channel: tonic::transport::Channel, service: &str) -> anyhow::Result<ServingStatus> {
    let answer = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.to_string(),
        })
        .await?;
    Ok(answer.into_inner().status())
}
