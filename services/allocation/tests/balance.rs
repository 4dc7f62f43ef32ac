//! Dynamic balance through gRPC (DOMAIN.md "Rationing scarce supply"): a retailer
//! that used under half of its quota in each of the last four cycles gets 80 % of its
//! tier's quota at the next commit; the others keep theirs.

mod support;

use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc};
use distnet_allocation::domain::cycle::CycleId;
use distnet_proto::allocation::v1::*;
use support::*;

/// `days` after the cycle's Monday at `hour`:00 Asia/Shanghai.
fn at(cycle: CycleId, days: i64, hour: u32) -> DateTime<Utc> {
    let offset = chrono::FixedOffset::east_opt(8 * 3600).expect("offset");
    let monday = cycle.monday().expect("monday");
    let time = NaiveTime::from_hms_opt(hour, 0, 0).expect("time");
    offset
        .from_local_datetime(&(monday + Duration::days(days)).and_time(time))
        .single()
        .expect("local time")
        .with_timezone(&Utc)
}

async fn commit_cycle(planner: &mut Client, cycle: CycleId) -> Allocation {
    planner
        .set_supply(SetSupplyRequest {
            request_id: rid(),
            product: "products/steady".into(),
            cycle: format!("cycles/{cycle}"),
            quantity: 40,
            holdback: 0,
            target: 0,
        })
        .await
        .expect("supply");
    planner
        .commit_allocation(CommitAllocationRequest {
            request_id: rid(),
            cycle: format!("cycles/{cycle}"),
            products: vec!["products/steady".into()],
        })
        .await
        .expect("commit")
        .into_inner()
        .allocations
        .remove(0)
}

async fn quota(planner: &mut Client, customer: &str, cycle: CycleId) -> i64 {
    planner
        .get_entitlements(GetEntitlementsRequest {
            customer: format!("customers/{customer}"),
            cycle: format!("cycles/{cycle}"),
        })
        .await
        .expect("entitlements")
        .into_inner()
        .entitlements
        .first()
        .map_or(0, |e| e.quota)
}

#[tokio::test]
async fn four_cycles_under_half_scale_a_retailers_quota_down_at_the_next_commit() {
    let service = TestService::start().await;
    service
        .know(&[
            Retailer::new("r-full", 1),
            Retailer::new("r-low", 1),
            Retailer::new("r-mid", 1),
            Retailer::new("r-none", 1),
        ])
        .await;
    let mut planner = service.planner();
    let mut policy = tier_quota(1, 1, Some(10), Some(1));
    policy.dynamic_balance = true;
    scarce_product(&mut planner, "steady", 40, 0, policy).await;

    let target = CycleId::parse("2026-W48").expect("cycle");
    let mut cycle = target;
    let mut history = Vec::new();
    for _ in 0..4 {
        cycle = cycle.previous().expect("previous");
        history.push(cycle);
    }
    history.reverse();
    let mut agent = service.agent(&["area-01"]);
    for past in history {
        service.clock.set(at(past, -1, 20));
        let allocation = commit_cycle(&mut planner, past).await;
        assert_eq!(allocation.tiers[0].quota, 10);
        service.clock.set(at(past, 1, 10));
        for (customer, cartons) in [("r-full", 10), ("r-low", 1), ("r-mid", 6)] {
            let mut request = order(customer, &[("steady", cartons)]);
            request.cycle = format!("cycles/{past}");
            agent.place_order(request).await.expect("ordered");
        }
    }

    service.clock.set(at(target, -1, 20));
    let allocation = commit_cycle(&mut planner, target).await;
    assert_eq!(allocation.total, 40);
    // r-low (10 %) and r-none (never ordered) were under half in all four cycles.
    assert_eq!(allocation.scaled_down_retailers, 2, "{allocation:?}");
    assert_eq!(allocation.balanced_down, 4);
    assert_eq!(quota(&mut planner, "r-low", target).await, 8);
    assert_eq!(quota(&mut planner, "r-none", target).await, 8);
    assert_eq!(quota(&mut planner, "r-mid", target).await, 10, "60 % is not low");
    assert_eq!(quota(&mut planner, "r-full", target).await, 10);

    let report = planner
        .get_cycle_report(GetCycleReportRequest {
            cycle: format!("cycles/{}", history_last(target)),
            product: "products/steady".into(),
        })
        .await
        .expect("report")
        .into_inner();
    assert_eq!(report.scale_down_next, 2, "{report:?}");
    assert_eq!(report.qualify_for_release, 1, "r-full used all of it");
    service.stop().await;
}

fn history_last(target: CycleId) -> CycleId {
    target.previous().expect("previous")
}
