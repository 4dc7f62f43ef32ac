//! `allocation-svc`: the allocation service on its own, for production.

use distnet_platform::server::{Shutdown, bind, termination_signal};
use distnet_platform::{Settings, telemetry};

distnet_platform::use_mimalloc!();

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::load()?;
    let mut telemetry = telemetry::init(distnet_allocation::SERVICE, &settings.telemetry);
    let listener = bind(&settings, settings.services.allocation.port).await?;
    let shutdown = Shutdown::new();
    let server = distnet_allocation::serve(&settings, listener, shutdown.clone()).await?;
    termination_signal().await;
    shutdown.trigger();
    server.wait().await?;
    telemetry.shutdown();
    Ok(())
}
