//! Loads a generated network into a running suite through its public API, the way
//! any client would: `CreateCustomer` with a request id per retailer, so running it
//! twice changes nothing.

use std::time::{Duration, Instant};

use chrono::Datelike as _;

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

pub(crate) async fn connect(endpoint: &str) -> anyhow::Result<Channel> {
    Channel::from_shared(endpoint.to_string())?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .connect()
        .await
        .with_context(|| format!("connecting to {endpoint}"))
}

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Clone)]
pub(crate) struct BearerToken(MetadataValue<tonic::metadata::Ascii>);

impl tonic::service::Interceptor for BearerToken {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        request.metadata_mut().insert("authorization", self.0.clone());
        Ok(request)
    }
}

/// An interceptor that adds `token` to every call.
pub(crate) fn bearer(token: &str) -> anyhow::Result<BearerToken> {
    Ok(BearerToken(format!("Bearer {token}").parse()?))
}

/// Calls `call` until it is not refused for the caller's rate (`RESOURCE_EXHAUSTED`):
/// the demo's people call as fast as the machine goes, faster than the limit set for
/// phones, and wait as a well-behaved client does.
pub(crate) async fn patiently<T, F, Fut>(mut call: F) -> Result<T, tonic::Status>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, tonic::Status>>,
{
    let mut attempts = 0;
    loop {
        match call().await {
            Err(status) if status.code() == tonic::Code::ResourceExhausted && attempts < 600 => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            result => return result,
        }
    }
}

pub(crate) fn progress_bar(len: usize, what: &str) -> ProgressBar {
    let progress = ProgressBar::new(len as u64);
    progress.set_style(
        ProgressStyle::with_template(&format!(
            "{{msg}} [{{bar:40}}] {{pos}}/{{len}} {what} ({{per_sec}}, eta {{eta}})"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    progress
}

/// Creates the generated retailers through `CreateCustomer`.
pub async fn seed_customers(
    endpoint: &str,
    secret: &str,
    shape: &NetworkShape,
) -> anyhow::Result<SeedReport> {
    let started = Instant::now();
    let token = seeder_token(secret, shape)?;
    let client = CustomerServiceClient::with_interceptor(connect(endpoint).await?, bearer(&token)?);

    let retailers = generate(shape);
    let progress = progress_bar(retailers.len(), "retailers");
    progress.set_message("seeding retailers");
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

pub struct LicensingReport {
    pub licensed: usize,
    /// Refused because another licensed outlet is within the minimum spacing.
    pub refused: usize,
    pub elapsed: Duration,
}

/// Licenses the generated retailers the way the office does: an application, a
/// passed inspection by an inspector of the area, and approval by the license
/// office. Retailers too close to an already licensed outlet are refused, as the
/// layout rule says. Request ids make a re-run a no-op.
pub async fn seed_licenses(
    endpoint: &str,
    secret: &str,
    shape: &NetworkShape,
) -> anyhow::Result<LicensingReport> {
    use distnet_proto::accreditation::v1::accreditation_service_client::AccreditationServiceClient;
    use distnet_proto::accreditation::v1::{
        ApplicationKind, ChecklistItem, DecideApplicationRequest, Decision, InspectionOutcome, Premises,
        RecordInspectionRequest, SubmitApplicationRequest,
    };

    let started = Instant::now();
    let issuer = TokenIssuer::hs256(secret);
    let ttl = Duration::from_secs(3600);
    let areas: Vec<String> = crate::seed::manager_ids(shape)
        .into_iter()
        .map(|(_, area)| area)
        .collect();
    let office = issuer.mint(&Claims::new("lo-seed", Role::Admin, ttl))?;
    let inspector = issuer.mint(&Claims::new("mi-seed", Role::MarketInspector, ttl).with_areas(areas))?;
    let channel = connect(endpoint).await?;
    let office = AccreditationServiceClient::with_interceptor(channel.clone(), bearer(&office)?);
    let inspector = AccreditationServiceClient::with_interceptor(channel, bearer(&inspector)?);

    let retailers = generate(shape);
    let progress = progress_bar(retailers.len(), "licenses");
    progress.set_message("licensing");
    let seed = shape.seed;
    let mut results = futures::stream::iter(retailers)
        .map(|retailer| {
            let (mut office, mut inspector) = (office.clone(), inspector.clone());
            async move {
                let key = format!("seed-{seed}-{}", retailer.customer_id);
                let submit = SubmitApplicationRequest {
                    request_id: format!("{key}-apply"),
                    customer: format!("customers/{}", retailer.customer_id),
                    kind: ApplicationKind::New as i32,
                    premises: Some(Premises {
                        address: retailer.customer.address.clone(),
                        location: retailer.customer.location,
                        floor_area_sqm: retailer.customer.floor_area_sqm,
                        format: retailer.customer.format,
                    }),
                    documents: vec![],
                };
                // The retailer reaches accreditation as an event; wait for it.
                let mut attempt = 0;
                let application = loop {
                    match office.submit_application(submit.clone()).await {
                        Ok(application) => break application.into_inner(),
                        Err(status) if status.code() == tonic::Code::FailedPrecondition && attempt < 300 => {
                            attempt += 1;
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        Err(status) => anyhow::bail!("applying for {}: {status:?}", retailer.customer_id),
                    }
                };
                inspector
                    .record_inspection(RecordInspectionRequest {
                        request_id: format!("{key}-inspect"),
                        name: application.name.clone(),
                        outcome: InspectionOutcome::Pass as i32,
                        checklist: vec![ChecklistItem {
                            item: "premises match the application".into(),
                            passed: true,
                            note: String::new(),
                        }],
                    })
                    .await
                    .map_err(|s| anyhow::anyhow!("inspecting {}: {s:?}", retailer.customer_id))?;
                let decided = office
                    .decide_application(DecideApplicationRequest {
                        request_id: format!("{key}-decide"),
                        name: application.name.clone(),
                        decision: Decision::Approve as i32,
                        reasons: vec!["demo network".into()],
                    })
                    .await;
                match decided {
                    Ok(_) => Ok(true),
                    Err(status) if status.code() == tonic::Code::FailedPrecondition => Ok(false),
                    Err(status) => Err(anyhow::anyhow!("approving {}: {status:?}", retailer.customer_id)),
                }
            }
        })
        .buffer_unordered(CONCURRENCY);
    let (mut licensed, mut refused) = (0, 0);
    while let Some(result) = results.next().await {
        if result? {
            licensed += 1;
        } else {
            refused += 1;
        }
        progress.inc(1);
    }
    progress.finish_and_clear();
    Ok(LicensingReport {
        licensed,
        refused,
        elapsed: started.elapsed(),
    })
}

pub struct GradingReport {
    pub retailers: i32,
    pub tiers: i32,
    pub run: Duration,
    pub publish: Duration,
}

/// Records this month's purchases for the demo network, then runs and publishes a
/// 30-tier grading as the allocation planner does. The two timings are the
/// grading benchmark (BENCHMARKS.md).
pub async fn seed_grading(
    endpoint: &str,
    secret: &str,
    shape: &NetworkShape,
) -> anyhow::Result<GradingReport> {
    use distnet_proto::accreditation::v1::accreditation_service_client::AccreditationServiceClient;
    use distnet_proto::accreditation::v1::{
        PublishGradingRequest, PurchaseRecord, RecordPurchasesRequest, RunGradingRequest,
    };

    let issuer = TokenIssuer::hs256(secret);
    let ttl = Duration::from_secs(3600);
    let admin = issuer.mint(&Claims::new(
        format!("distnet-seed-{}", shape.seed),
        Role::Admin,
        ttl,
    ))?;
    let planner = issuer.mint(&Claims::new("ap-seed", Role::AllocationPlanner, ttl))?;
    let channel = connect(endpoint).await?;
    let mut admin = AccreditationServiceClient::with_interceptor(channel.clone(), bearer(&admin)?)
        .max_decoding_message_size(64 * 1024 * 1024);
    let mut planner = AccreditationServiceClient::with_interceptor(channel, bearer(&planner)?);

    let now = chrono::Utc::now();
    let period = now.format("%Y-%m").to_string();
    let purchases = crate::seed::monthly_purchases(shape, &generate(shape));
    for (batch, chunk) in purchases.chunks(5_000).enumerate() {
        admin
            .record_purchases(RecordPurchasesRequest {
                request_id: format!("seed-{}-purchases-{period}-{batch}", shape.seed),
                period: period.clone(),
                records: chunk
                    .iter()
                    .map(|p| PurchaseRecord {
                        customer: format!("customers/{}", p.customer_id),
                        amount_fen: p.amount_fen,
                        cartons: p.cartons,
                    })
                    .collect(),
            })
            .await
            .map_err(|s| anyhow::anyhow!("recording purchases: {s:?}"))?;
    }

    let started = Instant::now();
    let grading = planner
        .run_grading(RunGradingRequest {
            request_id: format!("seed-{}-grading-{period}", shape.seed),
            period: period.clone(),
            weights: None,
            tiers: 30,
        })
        .await
        .map_err(|s| anyhow::anyhow!("running the grading: {s:?}"))?
        .into_inner();
    let run = started.elapsed();
    let next_week = (now + chrono::Duration::days(7)).iso_week();
    let started = Instant::now();
    let published = planner
        .publish_grading(PublishGradingRequest {
            request_id: format!("seed-{}-publish-{period}", shape.seed),
            name: grading.name.clone(),
            effective_cycle: format!("{}-W{:02}", next_week.year(), next_week.week()),
        })
        .await;
    match published {
        Ok(_) => {}
        // A re-run of the demo against the same database finds it already published.
        Err(status) if status.code() == tonic::Code::FailedPrecondition => {}
        Err(status) => anyhow::bail!("publishing the grading: {status:?}"),
    }
    Ok(GradingReport {
        retailers: grading.retailers,
        tiers: grading.tiers,
        run,
        publish: started.elapsed(),
    })
}

pub struct SampleReport {
    pub scored: usize,
    pub credit_files: usize,
    pub elapsed: Duration,
}

/// A score history and a credit file for every `SAMPLE_EVERY`-th retailer: its
/// customer manager records display and shelf upkeep, the call center an order
/// taken on the call; the credit office files its finances.
pub async fn seed_scores_and_credit(
    endpoint: &str,
    secret: &str,
    shape: &NetworkShape,
) -> anyhow::Result<SampleReport> {
    use distnet_proto::accreditation::v1::accreditation_service_client::AccreditationServiceClient;
    use distnet_proto::accreditation::v1::{RecordScoreEventRequest, UpsertCreditProfileRequest};

    let started = Instant::now();
    let issuer = TokenIssuer::hs256(secret);
    let ttl = Duration::from_secs(3600);
    let areas: Vec<String> = crate::seed::manager_ids(shape)
        .into_iter()
        .map(|(_, area)| area)
        .collect();
    let manager =
        issuer.mint(&Claims::new("cm-seed", Role::CustomerManager, ttl).with_areas(areas.clone()))?;
    let agent = issuer.mint(&Claims::new("cc-seed", Role::CallCenterAgent, ttl).with_areas(areas))?;
    let office = issuer.mint(&Claims::new(
        format!("distnet-seed-{}", shape.seed),
        Role::Admin,
        ttl,
    ))?;
    let channel = connect(endpoint).await?;
    let manager = AccreditationServiceClient::with_interceptor(channel.clone(), bearer(&manager)?);
    let agent = AccreditationServiceClient::with_interceptor(channel.clone(), bearer(&agent)?);
    let office = AccreditationServiceClient::with_interceptor(channel, bearer(&office)?);

    let retailers = generate(shape);
    let sample: Vec<(usize, &crate::seed::SeedRetailer)> = retailers
        .iter()
        .enumerate()
        .step_by(crate::seed::SAMPLE_EVERY)
        .collect();
    let progress = progress_bar(sample.len(), "score histories and credit files");
    progress.set_message("scoring");
    let seed = shape.seed;
    let mut results = futures::stream::iter(sample)
        .map(|(index, retailer)| {
            let (mut manager, mut agent, mut office) = (manager.clone(), agent.clone(), office.clone());
            async move {
                let key = format!("seed-{seed}-{}", retailer.customer_id);
                let customer = format!("customers/{}", retailer.customer_id);
                for (by_agent, rule) in [
                    (false, "PRODUCT_DISPLAY_KEPT"),
                    (false, "SHELF_TIDY"),
                    (true, "ORDER_PLACED_ON_CALL"),
                ] {
                    let client = if by_agent { &mut agent } else { &mut manager };
                    client
                        .record_score_event(RecordScoreEventRequest {
                            request_id: format!("{key}-{rule}"),
                            customer: customer.clone(),
                            rule_code: rule.into(),
                            note: String::new(),
                        })
                        .await
                        .map_err(|s| anyhow::anyhow!("scoring {customer}: {s:?}"))?;
                }
                office
                    .upsert_credit_profile(UpsertCreditProfileRequest {
                        request_id: format!("{key}-credit"),
                        profile: Some(crate::seed::credit_file(shape, index, retailer)),
                    })
                    .await
                    .map_err(|s| anyhow::anyhow!("filing credit for {customer}: {s:?}"))?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(CONCURRENCY);
    let mut done = 0;
    while let Some(result) = results.next().await {
        result?;
        done += 1;
        progress.inc(1);
    }
    progress.finish_and_clear();
    Ok(SampleReport {
        scored: done,
        credit_files: done,
        elapsed: started.elapsed(),
    })
}
