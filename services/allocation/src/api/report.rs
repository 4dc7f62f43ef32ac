//! `GetCycleReport`: how a product's ration was used, per tier, and what dynamic
//! balance (`domain::balance`) would do next cycle.

use std::collections::BTreeMap;

use distnet_platform::ServiceError;
use distnet_platform::auth::Caller;
use distnet_proto::allocation::v1::*;

use super::{AllocationApi, cycle_id, sku};
use crate::domain::access;
use crate::domain::balance::{self, Adjustment, BalanceRule, CycleUse};
use crate::domain::cycle::CycleId;
use crate::store::runs;

fn bp(part: i64, whole: i64) -> i32 {
    if whole <= 0 {
        return 0;
    }
    i32::try_from(i128::from(part) * 10_000 / i128::from(whole)).unwrap_or(i32::MAX)
}

/// Per retailer, its use of the product in each of `cycles` (oldest first); a cycle
/// it had no allocation in counts as no quota, which breaks a run of low cycles.
pub(super) fn histories(
    rows: Vec<(String, String, i64, i64)>,
    cycles: &[String],
) -> BTreeMap<String, Vec<CycleUse>> {
    let mut histories: BTreeMap<String, Vec<CycleUse>> = BTreeMap::new();
    for (customer, cycle_id, quota, consumed) in rows {
        let history = histories.entry(customer).or_default();
        let position = cycles.iter().position(|n| *n == cycle_id).unwrap_or(0);
        while history.len() < position {
            history.push(CycleUse { quota: 0, ordered: 0 });
        }
        history.push(CycleUse {
            quota: u64::try_from(quota).unwrap_or(0),
            ordered: u64::try_from(consumed).unwrap_or(0),
        });
    }
    for history in histories.values_mut() {
        history.resize(cycles.len(), CycleUse { quota: 0, ordered: 0 });
    }
    histories
}

/// The last `window` cycles up to and including `cycle`, oldest first.
pub(super) fn cycles_up_to(cycle: CycleId, window: usize) -> Vec<CycleId> {
    let mut cycles = vec![cycle];
    while cycles.len() < window {
        match cycles.last().and_then(|c| c.previous()) {
            Some(previous) => cycles.push(previous),
            None => break,
        }
    }
    cycles.reverse();
    cycles
}

impl AllocationApi {
    pub(super) async fn cycle_report(
        &self,
        caller: Caller,
        message: GetCycleReportRequest,
    ) -> Result<CycleReport, ServiceError> {
        let cycle = cycle_id(&message.cycle, "cycle")?;
        let sku = sku(&message.product, "product")?;
        caller.require(access::PLAN_READERS)?;
        let mut conn = self.pool.acquire().await?;
        let cycle_text = cycle.to_string();
        let allocation = runs::current(&mut conn, sku, &cycle_text).await?.ok_or_else(|| {
            ServiceError::not_found(format!(
                "{}/{}: no committed allocation",
                message.product, message.cycle
            ))
        })?;
        let tiers = runs::tiers(&mut conn, &allocation.allocation_id).await?;
        let used: BTreeMap<i32, runs::TierUse> = runs::tier_use(&mut conn, &allocation)
            .await?
            .into_iter()
            .map(|u| (u.tier, u))
            .collect();
        let mut report = CycleReport {
            cycle: format!("cycles/{cycle}"),
            product: format!("products/{sku}"),
            allocation: format!("allocations/{}", allocation.allocation_id),
            ..CycleReport::default()
        };
        for tier in tiers.iter().filter(|t| t.retailers > 0) {
            let u = used.get(&tier.tier);
            let (ordering, ordered, stock_outs) =
                u.map_or((0, 0, 0), |u| (u.ordering, u.ordered, u.stock_outs));
            report.tiers.push(TierReport {
                tier: tier.tier,
                eligible: tier.retailers,
                quota_total: tier.total,
                ordered,
                utilization_bp: bp(ordered, tier.total),
                coverage_bp: bp(ordering, tier.retailers),
                stock_outs,
            });
            report.eligible += tier.retailers;
            report.quota_total += tier.total;
            report.ordered += ordered;
            report.stock_outs += stock_outs;
        }
        let ordering_total: i64 = used.values().map(|u| u.ordering).sum();
        report.utilization_bp = bp(report.ordered, report.quota_total);
        report.coverage_bp = bp(ordering_total, report.eligible);

        // Dynamic balance: the last `window` cycles up to this one, oldest first.
        let rule = BalanceRule::default();
        let cycles = cycles_up_to(cycle, rule.window);
        let names: Vec<String> = cycles.iter().map(ToString::to_string).collect();
        let rows = runs::use_history(&mut conn, sku, &names).await?;
        for history in histories(rows, &names).values() {
            match balance::adjustment(history, &rule) {
                Adjustment::ScaleDown => report.scale_down_next += 1,
                Adjustment::QualifiesForRelease => report.qualify_for_release += 1,
                Adjustment::Keep => {}
            }
        }
        report.balance_rule = format!(
            "under {}% of quota in each of the last {} cycles: next quota {}% of the tier's (at least 1); \
             100% this cycle: qualifies for released quota",
            rule.low_utilization_bp / 100,
            rule.window,
            rule.scale_down_bp / 100
        );
        Ok(report)
    }
}
