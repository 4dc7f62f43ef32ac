//! `--demo` for allocation: a catalog of 50 products of which a few premium brands are
//! scarce, their supply, demand estimates and policies for the current cycle, and a
//! committed allocation over the standings accreditation published. Every call has a
//! request id derived from the seed and the cycle, so a second run replays.

use std::time::{Duration, Instant};

use distnet_allocation::domain::cycle::CycleId;
use distnet_proto::allocation::v1::allocation_service_client::AllocationServiceClient;
use distnet_proto::allocation::v1::*;
use distnet_proto::common::v1::Money;

use crate::demo::{bearer, connect, seeder_token};
use crate::seed::NetworkShape;

pub struct AllocationReport {
    pub cycle: CycleId,
    pub products: usize,
    pub scarce: usize,
    pub eligible: i64,
    pub committed_total: i64,
    pub elapsed: Duration,
}

/// The demo's scarce products: (sku, name, weekly cartons, policy).
fn scarce_catalog() -> Vec<(&'static str, &'static str, i64, Policy)> {
    let tier_quota = |min_tier, cap, step| Policy {
        kind: PolicyKind::TierQuota as i32,
        tier_quota: Some(TierQuotaRule {
            min_tier,
            max_tier: 30,
            cap: Some(cap),
            max_step: Some(step),
            min_quota: 0,
        }),
        ..Policy::default()
    };
    let proportional = Policy {
        kind: PolicyKind::Proportional as i32,
        proportional: Some(ProportionalRule {
            weights: (1..=30).map(|t| if t < 10 { 0 } else { t }).collect(),
            floor: 1,
            cap: Some(12),
        }),
        ..Policy::default()
    };
    vec![
        ("zhonghua-soft", "中华 (软)", 24_000, tier_quota(10, 10, 1)),
        ("zhonghua-hard", "中华 (硬)", 40_000, tier_quota(5, 12, 1)),
        ("huanghelou-1916", "黄鹤楼 1916", 9_000, tier_quota(18, 6, 1)),
        ("furongwang-blue", "芙蓉王 (蓝)", 30_000, proportional),
        (
            "kuanzhai-pilot",
            "宽窄 (试点)",
            2_000,
            Policy {
                eligibility: Some(Eligibility {
                    area_ids: vec!["area-01".into(), "area-02".into()],
                    ..Eligibility::default()
                }),
                ..tier_quota(1, 4, 1)
            },
        ),
    ]
}

fn cny(fen: i64) -> Option<Money> {
    Some(distnet_platform::wire::cny(fen))
}

/// The cycle of today's date in Asia/Shanghai.
pub fn current_cycle() -> CycleId {
    distnet_allocation::domain::cycle::cycle_at(chrono::Utc::now())
}

/// Seeds the catalog, supply and policies, waits until the standings have reached
/// allocation (it learns them from `StandingChanged`), and commits the cycle.
pub async fn seed_allocation(
    endpoint: &str,
    secret: &str,
    shape: &NetworkShape,
) -> anyhow::Result<AllocationReport> {
    let started = Instant::now();
    let token = seeder_token(secret, shape)?;
    let mut client = AllocationServiceClient::with_interceptor(connect(endpoint).await?, bearer(&token)?)
        .max_decoding_message_size(32 << 20);
    let cycle = current_cycle();
    let id = |what: &str| format!("demo-{}-{cycle}-{what}", shape.seed);
    let scarce = scarce_catalog();
    for (i, (sku, name, weekly, policy)) in scarce.iter().enumerate() {
        let price_fen = 40_000 - i64::try_from(i).unwrap_or(0) * 4_000;
        client
            .upsert_product(UpsertProductRequest {
                request_id: id(&format!("product-{sku}")),
                product: Some(Product {
                    sku: (*sku).into(),
                    display_name: (*name).into(),
                    price_class: 1,
                    wholesale_price: cny(price_fen),
                    cartons_per_case: 50,
                    scarce: true,
                    ..Product::default()
                }),
            })
            .await?;
        client
            .estimate_demand(EstimateDemandRequest {
                request_id: id(&format!("demand-{sku}")),
                product: format!("products/{sku}"),
                month: format!(
                    "{}-{:02}",
                    cycle.year,
                    chrono::Datelike::month(&chrono::Utc::now())
                ),
                last_year_same_month_cartons: weekly * 4,
                growth_forecast_cartons: weekly * 9 / 2,
                holiday_factor_bp: 10_000,
            })
            .await?;
        client
            .set_supply(SetSupplyRequest {
                request_id: id(&format!("supply-{sku}")),
                product: format!("products/{sku}"),
                cycle: format!("cycles/{cycle}"),
                quantity: *weekly,
                holdback: weekly / 20,
                target: 0,
            })
            .await?;
        client
            .set_policy(SetPolicyRequest {
                request_id: id(&format!("policy-{sku}")),
                policy: Some(Policy {
                    product: format!("products/{sku}"),
                    ..policy.clone()
                }),
            })
            .await?;
    }
    let regular = 50 - scarce.len();
    for i in 0..regular {
        let sku = format!("regular-{:02}", i + 1);
        client
            .upsert_product(UpsertProductRequest {
                request_id: id(&format!("product-{sku}")),
                product: Some(Product {
                    sku: sku.clone(),
                    display_name: format!("Regular brand {:02}", i + 1),
                    price_class: 2 + i32::try_from(i % 4).unwrap_or(0),
                    wholesale_price: cny(3_000 + i64::try_from(i).unwrap_or(0) * 450),
                    cartons_per_case: 50,
                    scarce: false,
                    stock_cartons: 50_000,
                    ..Product::default()
                }),
            })
            .await?;
    }

    let eligible = wait_for_standings(&mut client, cycle, scarce[0].0).await?;
    let committed = client
        .commit_allocation(CommitAllocationRequest {
            request_id: id("commit"),
            cycle: format!("cycles/{cycle}"),
            products: vec![],
        })
        .await?
        .into_inner();
    Ok(AllocationReport {
        cycle,
        products: scarce.len() + regular,
        scarce: scarce.len(),
        eligible,
        committed_total: committed.allocations.iter().map(|a| a.total).sum(),
        elapsed: started.elapsed(),
    })
}

/// Polls a preview until the number of eligible retailers stops growing: the
/// `StandingChanged` events of the published grading have all arrived.
async fn wait_for_standings<T>(
    client: &mut AllocationServiceClient<T>,
    cycle: CycleId,
    sku: &str,
) -> anyhow::Result<i64>
where
    T: tonic::client::GrpcService<tonic::body::Body>,
    T::Error: Into<tonic::codegen::StdError>,
    T::ResponseBody: tonic::codegen::Body<Data = tonic::codegen::Bytes> + Send + 'static,
    <T::ResponseBody as tonic::codegen::Body>::Error: Into<tonic::codegen::StdError> + Send,
{
    let deadline = Instant::now() + Duration::from_secs(300);
    let (mut last, mut steady) = (-1, 0);
    loop {
        let preview = client
            .preview_allocation(PreviewAllocationRequest {
                cycle: format!("cycles/{cycle}"),
                products: vec![format!("products/{sku}")],
            })
            .await?
            .into_inner();
        let eligible: i64 = preview
            .allocations
            .first()
            .map(|a| a.tiers.iter().map(|t| t.retailers).sum())
            .unwrap_or(0);
        steady = if eligible == last && eligible > 0 {
            steady + 1
        } else {
            0
        };
        if steady >= 3 {
            return Ok(eligible);
        }
        if Instant::now() > deadline {
            anyhow::bail!("standings did not reach allocation within 5 minutes ({eligible} so far)");
        }
        last = eligible;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
