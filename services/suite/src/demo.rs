//! Loads a generated network into a running suite through its public API, the way
//! any client would: `CreateCustomer` with a request id per retailer, so running it
//! twice changes nothing.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use distnet_platform::auth::{Claims, Role, TokenIssuer};
use distnet_proto::customers::v1::CreateCustomerRequest;
use distnet_proto::customers::v1::customer_service_client::CustomerServiceClient;
use futures::StreamExt as _;
use indicatif::{ProgressBar, ProgressStyle};
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

use crate::seed::{NetworkShape, generate};

/// Calls in flight while seeding; enough to keep a small pool busy.
const CONCURRENCY: usize = 32;

pub struct SeedReport {
    pub created: usize,
    pub elapsed: Duration,
}

/// The identity seeding runs as: an admin named for the seed.
pub fn seeder_token(secret: &str, shape: &NetworkShape) -> anyhow::Result<String> {
    let claims = Claims::new(
        format!("distnet-seed-{}", shape.seed),
        Role::Admin,
        Duration::from_secs(3600),
    );
    TokenIssuer::hs256(secret).mint(&claims)
}

pub async fn seed_customers(endpoint: &str, token: &str, shape: &NetworkShape) -> anyhow::Result<SeedReport> {
    let started = Instant::now();
    let channel = Channel::from_shared(endpoint.to_string())?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .connect()
        .await
        .with_context(|| format!("connecting to the customers service at {endpoint}"))?;
    let bearer: MetadataValue<_> = format!("Bearer {token}").parse()?;
    let client = CustomerServiceClient::with_interceptor(channel, move |mut request: tonic::Request<()>| {
        request.metadata_mut().insert("authorization", bearer.clone());
        Ok(request)
    });

    let retailers = generate(shape);
    let progress = ProgressBar::new(retailers.len() as u64);
    progress.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} retailers ({per_sec}, eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    progress.set_message("seeding");
    let seed = shape.seed;
    let mut results = futures::stream::iter(retailers)
        .map(|retailer| {
            let mut client = client.clone();
            async move {
                let request = CreateCustomerRequest {
                    request_id: format!("seed-{seed}-{}", retailer.customer_id),
                    customer_id: retailer.customer_id.clone(),
                    customer: Some(retailer.customer),
                };
                match client.create_customer(request).await {
                    Ok(_) => Ok(()),
                    // Created by an earlier run under another identity: fine.
                    Err(status) if status.code() == tonic::Code::AlreadyExists => Ok(()),
                    Err(status) => Err(anyhow::anyhow!(
                        "creating {}: {:?} {}",
                        retailer.customer_id,
                        status.code(),
                        status.message()
                    )),
                }
            }
        })
        .buffer_unordered(CONCURRENCY);
    let mut created = 0;
    while let Some(result) = results.next().await {
        result?;
        created += 1;
        progress.inc(1);
    }
    progress.finish_and_clear();
    Ok(SeedReport {
        created,
        elapsed: started.elapsed(),
    })
}
