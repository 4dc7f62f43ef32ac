//! Allocation runs: preview (what-if), commit (persisted with its snapshot), read,
//! and the release of quota left unordered.

use std::collections::BTreeSet;

use distnet_platform::ServiceError;
use distnet_platform::auth::Caller;
use distnet_platform::pagination;
use distnet_platform::validate::{Violations, parse_name};
use distnet_proto::allocation::v1::*;
use sqlx::PgConnection;

use super::catalog::cycle_window;
use super::report::{cycles_up_to, histories};
use super::{AllocationApi, begin_idempotent, cycle_id, sku};
use crate::domain::access;
use crate::domain::balance::{BalanceRule, CycleUse, scaled_quotas};
use crate::domain::cycle::CycleId;
use crate::domain::eligibility::{Candidate, Population};
use crate::domain::order::{FullUser, release};
use crate::domain::run::{self, ProductPlan, Rule, RunOutcome};
use crate::store::catalog::{self, PolicyRow, SupplyRow};
use crate::store::runs::{self as store, AllocationRow, RunContext, Snapshot, TierRow};

/// At most this many products per run request.
const MAX_PRODUCTS: usize = 1000;

/// One product's run, computed.
pub(crate) struct Planned {
    pub policy: PolicyRow,
    pub supply: SupplyRow,
    pub outcome: RunOutcome,
    /// PROPORTIONAL: per tier, the +1s go up to this customer id.
    pub extra_until: Vec<Option<String>>,
}

impl Planned {
    fn tier_rows(&self) -> Vec<TierRow> {
        self.outcome
            .tiers
            .iter()
            .enumerate()
            .map(|(i, line)| TierRow::of(line, self.extra_until.get(i).cloned().flatten()))
            .collect()
    }

    fn context(&self) -> RunContext<'_> {
        RunContext {
            sku: &self.supply.sku,
            cycle_id: &self.supply.cycle_id,
            kind: match self.policy.body.rule {
                Rule::TierQuota(_) => PolicyKind::TierQuota,
                Rule::Proportional(_) => PolicyKind::Proportional,
            },
            policy_version: self.policy.version,
            eligibility: &self.policy.body.eligibility,
            supply_available: self.supply.available(),
            target: if self.supply.target == 0 {
                self.supply.available()
            } else {
                self.supply.target
            },
        }
    }
}

/// Runs every product's policy over the population (CPU only; call it on the
/// blocking pool). Products whose rule cannot be met are reported by sku.
pub(crate) fn plan(
    population: &Population,
    inputs: Vec<(PolicyRow, SupplyRow)>,
) -> (Vec<Planned>, Vec<(String, String)>) {
    let mut planned = Vec::with_capacity(inputs.len());
    let mut problems = Vec::new();
    for (policy, supply) in inputs {
        let available = u64::try_from(supply.available()).unwrap_or(0);
        let target = u64::try_from(supply.target).unwrap_or(0);
        match run::plan(population, &policy.body, available, target) {
            Ok(ProductPlan { outcome, extra_until }) => planned.push(Planned {
                policy,
                supply,
                outcome,
                extra_until,
            }),
            Err(problem) => problems.push((supply.sku.clone(), problem)),
        }
    }
    (planned, problems)
}

/// The products a run request names (all supplied ones with a policy when empty),
/// with their policies and supplies; a product missing either is refused.
async fn run_inputs(
    conn: &mut PgConnection,
    cycle: CycleId,
    products: &[String],
    lock: bool,
) -> Result<Vec<(PolicyRow, SupplyRow)>, ServiceError> {
    let cycle_id = cycle.to_string();
    let skus: Vec<String> = if products.is_empty() {
        catalog::supplied_skus(conn, &cycle_id).await?
    } else {
        let mut skus = BTreeSet::new();
        for (i, name) in products.iter().enumerate() {
            skus.insert(sku(name, &format!("products[{i}]"))?.to_string());
        }
        skus.into_iter().collect()
    };
    let supplies = catalog::supplies(conn, &skus, &cycle_id, lock).await?;
    let policies = catalog::policies(conn, &skus).await?;
    let mut refusal: Option<ServiceError> = None;
    let mut inputs = Vec::with_capacity(skus.len());
    for sku in &skus {
        let supply = supplies.iter().find(|s| &s.sku == sku);
        let policy = policies.iter().find(|p| &p.sku == sku);
        let missing = match (policy, supply) {
            (Some(p), Some(s)) => {
                inputs.push((p.clone(), s.clone()));
                continue;
            }
            (None, _) => ("NO_POLICY", format!("products/{sku} has no allocation policy")),
            (_, None) => (
                "NO_SUPPLY",
                format!("products/{sku} has no supply in cycles/{cycle}"),
            ),
        };
        let error = refusal.take().unwrap_or_else(|| {
            ServiceError::failed_precondition(missing.0, "some products cannot be allocated")
        });
        refusal = Some(error.with_precondition(missing.0, format!("products/{sku}"), missing.1));
    }
    match refusal {
        Some(error) => Err(error),
        None => Ok(inputs),
    }
}

async fn plan_blocking(
    candidates: Vec<Candidate>,
    inputs: Vec<(PolicyRow, SupplyRow)>,
) -> Result<(Vec<Planned>, Population), ServiceError> {
    let (planned, problems, population) = tokio::task::spawn_blocking(move || {
        let population = Population::new(candidates);
        let (planned, problems) = plan(&population, inputs);
        (planned, problems, population)
    })
    .await
    .map_err(ServiceError::internal)?;
    if problems.is_empty() {
        return Ok((planned, population));
    }
    let mut error = ServiceError::failed_precondition(
        "ALLOCATION_INFEASIBLE",
        "the policy of some products cannot be met with their supply",
    );
    for (sku, problem) in problems {
        error = error.with_precondition("ALLOCATION_INFEASIBLE", format!("products/{sku}"), problem);
    }
    Err(error)
}

/// Dynamic balance (`domain::balance`): the retailers of the new run whose use of the
/// product in the previous cycles scales their quota down, as (id, tier quota, new).
async fn scale_downs(
    conn: &mut PgConnection,
    cycle: CycleId,
    planned: &Planned,
    population: &Population,
) -> Result<Vec<(String, u64, u64)>, ServiceError> {
    let rule = BalanceRule::default();
    let Some(previous) = cycle.previous() else {
        return Ok(Vec::new());
    };
    let names: Vec<String> = cycles_up_to(previous, rule.window)
        .iter()
        .map(ToString::to_string)
        .collect();
    let rows = store::use_history(conn, &planned.supply.sku, &names).await?;
    let histories = histories(rows, &names);
    let eligibility = &planned.policy.body.eligibility;
    let quota_of = |customer: &str| -> u64 {
        let Some(c) = population.find(customer).filter(|c| eligibility.admits(c)) else {
            return 0;
        };
        let index = usize::try_from(c.tier).unwrap_or(0).saturating_sub(1);
        let base = planned.outcome.tiers.get(index).map_or(0, |t| t.quota);
        let plus_one = planned
            .extra_until
            .get(index)
            .and_then(Option::as_ref)
            .is_some_and(|cut| c.customer_id.as_bytes() <= cut.as_bytes());
        base + u64::from(plus_one)
    };
    let quotas: Vec<(&str, u64, &[CycleUse])> = histories
        .iter()
        .map(|(customer, history)| (customer.as_str(), quota_of(customer), history.as_slice()))
        .collect();
    let scaled = scaled_quotas(quotas.iter().copied(), &rule);
    Ok(scaled
        .into_iter()
        .map(|(customer, to)| {
            let from = quota_of(&customer);
            (customer, from, to)
        })
        .collect())
}

fn validate_run(request_id: Option<&str>, cycle: &str, products: &[String]) -> Result<CycleId, ServiceError> {
    let mut v = Violations::new();
    if let Some(request_id) = request_id {
        v.request_id(request_id);
    }
    v.check(
        products.len() <= MAX_PRODUCTS,
        "products",
        "at most 1,000 per run",
    );
    v.into_result()?;
    cycle_id(cycle, "cycle")
}

impl AllocationApi {
    pub(super) async fn preview(
        &self,
        caller: Caller,
        message: PreviewAllocationRequest,
    ) -> Result<PreviewAllocationResponse, ServiceError> {
        let cycle = validate_run(None, &message.cycle, &message.products)?;
        caller.require(access::PLANNERS)?;
        let mut conn = self.pool.acquire().await?;
        let inputs = run_inputs(&mut conn, cycle, &message.products, false).await?;
        let (candidates, grading_version) = store::live_candidates(&mut conn).await?;
        drop(conn);
        let (planned, _) = plan_blocking(candidates, inputs).await?;
        let now = self.clock.now();
        let snapshot = Snapshot {
            id: String::new(),
            grading_version,
        };
        let allocations = planned
            .iter()
            .map(|p| {
                let mut row = AllocationRow::new(&p.context(), &p.outcome, &snapshot, &caller.sub, now);
                row.allocation_id.clear();
                row.state = AllocationState::Preview as i16;
                row.to_wire(&p.tier_rows())
            })
            .collect();
        Ok(PreviewAllocationResponse { allocations })
    }

    pub(super) async fn commit(
        &self,
        caller: Caller,
        message: CommitAllocationRequest,
    ) -> Result<CommitAllocationResponse, ServiceError> {
        let cycle = validate_run(Some(&message.request_id), &message.cycle, &message.products)?;
        caller.require(access::PLANNERS)?;
        let mut tx = self.pool.begin().await?;
        let key = match begin_idempotent(
            &mut tx,
            &caller,
            &message.request_id,
            "CommitAllocation",
            &message,
        )
        .await?
        {
            Ok(key) => key,
            Err(replay) => return Ok(replay),
        };
        let now = self.clock.now();
        let window = cycle_window(&mut tx, cycle).await?;
        let inputs = run_inputs(&mut tx, cycle, &message.products, true).await?;
        let mut superseded = Vec::new();
        for (_, supply) in &inputs {
            if let Some(current) = store::current(&mut tx, &supply.sku, &supply.cycle_id).await? {
                if window.window.opens <= now {
                    return Err(ServiceError::failed_precondition(
                        "WINDOW_OPEN",
                        format!(
                            "cycles/{cycle} opened for orders at {}; its committed allocations stand",
                            window.window.opens
                        ),
                    )
                    .with_precondition(
                        "WINDOW_OPEN",
                        format!("allocations/{}", current.allocation_id),
                        "already committed",
                    ));
                }
                superseded.push(current.allocation_id);
            }
        }
        let snapshot = store::snapshot(&mut tx, now).await?;
        let candidates = store::snapshot_candidates(&mut tx, &snapshot.id).await?;
        let (planned, population) = plan_blocking(candidates, inputs).await?;
        for id in &superseded {
            store::supersede(&mut tx, id).await?;
        }
        let mut allocations = Vec::with_capacity(planned.len());
        for p in &planned {
            let mut row = AllocationRow::new(&p.context(), &p.outcome, &snapshot, &caller.sub, now);
            let scaled = if p.policy.body.dynamic_balance {
                scale_downs(&mut tx, cycle, p, &population).await?
            } else {
                Vec::new()
            };
            row.scaled_down = i64::try_from(scaled.len()).unwrap_or(i64::MAX);
            row.balanced_down = scaled
                .iter()
                .map(|(_, from, to)| i64::try_from(from - to).unwrap_or(0))
                .sum();
            let tiers = p.tier_rows();
            store::insert(&mut tx, &row, &tiers).await?;
            let adjusted: Vec<(String, u64)> = scaled.into_iter().map(|(id, _, to)| (id, to)).collect();
            store::insert_adjustments(&mut tx, &row.allocation_id, &adjusted).await?;
            allocations.push(row.to_wire(&tiers));
        }
        let reply = CommitAllocationResponse { allocations };
        key.complete(&mut tx, &reply).await?;
        tx.commit().await?;
        // Every replica hears of it (NOTIFY); this one forgets at once, so that its
        // caller reads the new entitlements.
        self.entitlements.clear();
        tracing::info!(cycle = %cycle, products = reply.allocations.len(), snapshot = %snapshot.id, "allocation committed");
        Ok(reply)
    }

    pub(super) async fn get_allocation(
        &self,
        caller: Caller,
        message: GetAllocationRequest,
    ) -> Result<Allocation, ServiceError> {
        let id = allocation_id(&message.name)?;
        caller.require(access::PLAN_READERS)?;
        let mut conn = self.pool.acquire().await?;
        let row = store::allocation(&mut conn, id)
            .await?
            .ok_or_else(|| ServiceError::not_found(message.name.clone()))?;
        let tiers = store::tiers(&mut conn, id).await?;
        Ok(row.to_wire(&tiers))
    }

    pub(super) async fn list_allocations(
        &self,
        caller: Caller,
        message: ListAllocationsRequest,
    ) -> Result<ListAllocationsResponse, ServiceError> {
        let cycle = cycle_id(&message.cycle, "cycle")?;
        let sku = if message.product.is_empty() {
            None
        } else {
            Some(sku(&message.product, "product")?)
        };
        let filter = format!("{cycle}|{}|{}", message.product, message.include_superseded);
        let page = pagination::read(message.page_size, &message.page_token, &filter)?;
        caller.require(access::PLAN_READERS)?;
        let mut conn = self.pool.acquire().await?;
        let rows = store::list(
            &mut conn,
            &cycle.to_string(),
            sku,
            message.include_superseded,
            &page,
        )
        .await?;
        let (rows, next_page_token) = pagination::finish(rows, &page, &filter, |a| a.allocation_id.clone());
        let ids: Vec<String> = rows.iter().map(|r| r.allocation_id.clone()).collect();
        let tiers = store::tiers_of(&mut conn, &ids).await?;
        let allocations = rows
            .iter()
            .map(|row| row.to_wire(tiers.get(&row.allocation_id).map_or(&[][..], Vec::as_slice)))
            .collect();
        Ok(ListAllocationsResponse {
            allocations,
            next_page_token,
        })
    }

    pub(super) async fn release_unclaimed(
        &self,
        caller: Caller,
        message: ReleaseUnclaimedRequest,
    ) -> Result<ReleaseUnclaimedResponse, ServiceError> {
        let mut v = Violations::new();
        v.request_id(&message.request_id);
        v.into_result()?;
        let cycle = cycle_id(&message.cycle, "cycle")?;
        let sku = sku(&message.product, "product")?;
        caller.require(access::PLANNERS)?;
        let mut tx = self.pool.begin().await?;
        let key = match begin_idempotent(
            &mut tx,
            &caller,
            &message.request_id,
            "ReleaseUnclaimed",
            &message,
        )
        .await?
        {
            Ok(key) => key,
            Err(replay) => return Ok(replay),
        };
        let now = self.clock.now();
        let window = cycle_window(&mut tx, cycle).await?;
        if now < window.release {
            return Err(ServiceError::failed_precondition(
                "TOO_EARLY_TO_RELEASE",
                format!("quota of cycles/{cycle} is released from {}", window.release),
            ));
        }
        if !window.window.is_open(now) {
            return Err(ServiceError::failed_precondition(
                "WINDOW_CLOSED",
                format!("cycles/{cycle} is not taking orders"),
            ));
        }
        let cycle_text = cycle.to_string();
        let supply = catalog::supplies(&mut tx, &[sku.to_string()], &cycle_text, true)
            .await?
            .pop()
            .ok_or_else(|| ServiceError::not_found(format!("{}/supply", message.product)))?;
        let allocation = store::current(&mut tx, sku, &cycle_text).await?.ok_or_else(|| {
            ServiceError::failed_precondition(
                "NOT_ALLOCATED",
                format!("{} has no committed allocation", message.product),
            )
        })?;
        let unused_extra = store::unused_extra(&mut tx, sku, &cycle_text).await?;
        let pool = (supply.available() - supply.confirmed - unused_extra).max(0);
        let users = store::full_users(&mut tx, &allocation)
            .await?
            .into_iter()
            .map(|(customer_id, tier, quota)| FullUser {
                customer_id,
                tier: u32::try_from(tier).unwrap_or(0),
                quota: u64::try_from(quota).unwrap_or(0),
            })
            .collect::<Vec<_>>();
        let qualifying = users.len();
        let offers = release(u64::try_from(pool).unwrap_or(0), users);
        store::grant_extra(&mut tx, &allocation, &offers).await?;
        let released: u64 = offers.iter().map(|(_, n)| n).sum();
        let after = store::allocation(&mut tx, &allocation.allocation_id)
            .await?
            .unwrap_or(allocation);
        let tiers = store::tiers(&mut tx, &after.allocation_id).await?;
        let reply = ReleaseUnclaimedResponse {
            allocation: Some(after.to_wire(&tiers)),
            released: i64::try_from(released).unwrap_or(i64::MAX),
            retailers: i64::try_from(offers.len()).unwrap_or(i64::MAX),
            explanation: format!(
                "{pool} cartons unordered (available {} − confirmed {} − extra not yet ordered {unused_extra}); \
                 {qualifying} retailers used all their quota; {released} offered to {} of them, highest tier first, \
                 each up to its own quota",
                supply.available(),
                supply.confirmed,
                offers.len()
            ),
        };
        key.complete(&mut tx, &reply).await?;
        tx.commit().await?;
        // Extra quota: every replica hears of it (a trigger notifies); this one
        // forgets at once.
        self.entitlements.supplied();
        Ok(reply)
    }
}

fn allocation_id(name: &str) -> Result<&str, ServiceError> {
    name.strip_prefix("allocations/")
        .filter(|id| uuid::Uuid::parse_str(id).is_ok())
        .ok_or_else(|| ServiceError::invalid_field("name", "must be `allocations/{id}`"))
        .or_else(|_| parse_name(name, "allocations", "name"))
}
