//! Planning through real gRPC: catalog, supply, demand, policies, preview and commit,
//! entitlements derived from the committed tiers, release of unclaimed quota, the
//! cycle report, and who may change the plan.

mod support;

use std::collections::BTreeMap;
use std::future::Future;

use distnet_proto::accreditation::v1::{CustomerClass, LicenseStatus};
use distnet_proto::allocation::v1::allocation_service_client::AllocationServiceClient;
use distnet_proto::allocation::v1::*;
use distnet_proto::customers::v1::Settlement;
use distnet_testkit::eventually;
use support::*;
use tonic::{Code, Response, Status};

const SKU: &str = "products/zhonghua";

/// 40 retailers over tiers 1..=4, three classes, two areas, five formats; plus one
/// suspended, one blacklisted and one ungraded retailer who must never get quota.
fn population() -> Vec<Retailer> {
    let classes = [CustomerClass::Special, CustomerClass::Key, CustomerClass::General];
    let mut retailers: Vec<Retailer> = (0..40usize)
        .map(|i| Retailer {
            class: classes[i % 3],
            area: if (i / 4) % 2 == 0 { "area-01" } else { "area-02" }.into(),
            format: 1 + (i % 5) as i32,
            ..Retailer::new(format!("r-{i:02}"), 1 + (i % 4) as i32)
        })
        .collect();
    let key = |id: &str, tier| Retailer {
        class: CustomerClass::Key,
        ..Retailer::new(id, tier)
    };
    let suspended = key("suspended-1", 4);
    retailers.push(Retailer {
        license: LicenseStatus::Suspended,
        ..suspended
    });
    let blacklisted = key("blacklisted-1", 4);
    retailers.push(Retailer {
        blacklisted: true,
        ..blacklisted
    });
    retailers.push(key("ungraded-1", 0));
    retailers
}

fn twelve_in_three_tiers() -> Vec<Retailer> {
    (0..12)
        .map(|i| Retailer::new(format!("r-{i:02}"), 1 + i % 3))
        .collect()
}

/// Twelve retailers in tiers 1..=3 (tier 3: r-02, r-05, r-08, r-11) and 24 cartons
/// of `zhonghua`: the ramp 1, 2, 3 places all of them. The window is then open.
async fn ramp_cycle(service: &TestService) -> Allocation {
    ramp_cycle_of(service, &twelve_in_three_tiers()).await
}

async fn ramp_cycle_of(service: &TestService, twelve: &[Retailer]) -> Allocation {
    service.know(twelve).await;
    let mut planner = service.planner();
    let ramp = tier_quota(1, 3, Some(3), Some(1));
    scarce_product(&mut planner, "zhonghua", 24, 0, ramp).await;
    let allocation = commit(&mut planner, &["zhonghua"]).await.remove(0);
    assert_eq!(quotas(&allocation), vec![1, 2, 3]);
    assert_eq!((allocation.total, allocation.leftover), (24, 0));
    service.clock.set(during_window());
    allocation
}

async fn ok<T>(call: impl Future<Output = Result<Response<T>, Status>>) -> T {
    call.await.expect("the call succeeds").into_inner()
}

async fn refused<T: std::fmt::Debug>(call: impl Future<Output = Result<Response<T>, Status>>) -> Status {
    call.await.expect_err("the call is refused")
}

fn quotas(allocation: &Allocation) -> Vec<i64> {
    allocation.tiers.iter().map(|t| t.quota).collect()
}

fn product(sku: &str, scarce: bool) -> UpsertProductRequest {
    let product = Product {
        sku: sku.into(),
        display_name: format!("Product {sku}"),
        price_class: 2,
        wholesale_price: cny(10_000),
        scarce,
        stock_cartons: if scarce { 0 } else { 100 },
        ..Product::default()
    };
    UpsertProductRequest {
        request_id: rid(),
        product: Some(product),
    }
}

fn set_supply(quantity: i64, holdback: i64) -> SetSupplyRequest {
    let (product, cycle, target) = (SKU.into(), CYCLE.into(), 0);
    SetSupplyRequest {
        request_id: rid(),
        product,
        cycle,
        quantity,
        holdback,
        target,
    }
}

fn set_policy(policy: Policy) -> SetPolicyRequest {
    let product = Some(policy.product.clone()).filter(|p| !p.is_empty());
    let product = product.unwrap_or_else(|| SKU.into());
    SetPolicyRequest {
        request_id: rid(),
        policy: Some(Policy { product, ..policy }),
    }
}

fn commit_request() -> CommitAllocationRequest {
    let (cycle, products) = (CYCLE.into(), vec![SKU.into()]);
    CommitAllocationRequest {
        request_id: rid(),
        cycle,
        products,
    }
}

fn release_request() -> ReleaseUnclaimedRequest {
    let (cycle, product) = (CYCLE.into(), SKU.into());
    ReleaseUnclaimedRequest {
        request_id: rid(),
        cycle,
        product,
    }
}

fn named(name: &str) -> GetAllocationRequest {
    GetAllocationRequest { name: name.into() }
}

async fn buy(client: &mut Client, customer: &str, cartons: i64) -> Result<Order, Status> {
    let request = order(customer, &[("zhonghua", cartons)]);
    client.place_order(request).await.map(Response::into_inner)
}

async fn entitlements(client: &mut Client, customer: &str) -> BTreeMap<String, Entitlement> {
    let (customer, cycle) = (format!("customers/{customer}"), CYCLE.into());
    ok(client.get_entitlements(GetEntitlementsRequest { customer, cycle }))
        .await
        .entitlements
        .into_iter()
        .map(|e| (e.product.clone(), e))
        .collect()
}

async fn supply(client: &mut Client) -> Supply {
    let (product, cycle) = (SKU.into(), CYCLE.into());
    ok(client.get_supply(GetSupplyRequest { product, cycle })).await
}

async fn list(client: &mut Client, include_superseded: bool) -> Vec<Allocation> {
    let request = ListAllocationsRequest {
        cycle: CYCLE.into(),
        include_superseded,
        ..ListAllocationsRequest::default()
    };
    ok(client.list_allocations(request)).await.allocations
}

#[tokio::test]
async fn preview_persists_nothing_and_commit_persists_the_same_quotas() {
    let service = TestService::start().await;
    service.know(&population()).await;
    let mut planner = service.planner();
    let policy = tier_quota(1, 4, Some(5), Some(2));
    scarce_product(&mut planner, "zhonghua", 80, 10, policy).await;

    let request = PreviewAllocationRequest {
        cycle: CYCLE.into(),
        products: vec![SKU.into()],
    };
    let preview = ok(planner.preview_allocation(request))
        .await
        .allocations
        .remove(0);
    assert_eq!(preview.state, AllocationState::Preview as i32);
    assert_eq!((preview.name.as_str(), preview.product.as_str()), ("", SKU));
    assert_eq!((preview.supply_available, preview.eligible_retailers), (70, 40));
    assert_eq!(preview.tiers.len(), 4);
    for tier in &preview.tiers {
        assert_eq!(tier.retailers, 10, "{tier:?}");
        assert_eq!(tier.total, tier.quota * tier.retailers + tier.extra_retailers);
        assert!(!tier.explanation.is_empty(), "{tier:?}");
    }
    assert!(quotas(&preview).windows(2).all(|w| w[0] <= w[1]), "{preview:?}");
    assert_eq!(preview.tiers.iter().map(|t| t.total).sum::<i64>(), preview.total);
    assert!(0 < preview.total && preview.total <= 70, "{preview:?}");
    assert_eq!(preview.leftover, 70 - preview.total);
    assert!(!preview.explanation.is_empty());
    assert_eq!(list(&mut planner, true).await, vec![], "a preview stores nothing");

    let committed = commit(&mut planner, &["zhonghua"]).await.remove(0);
    assert_eq!(committed.state, AllocationState::Committed as i32);
    assert!(committed.name.starts_with("allocations/"), "{}", committed.name);
    assert_eq!(committed.grading_version, 1);
    assert!(!committed.snapshot.is_empty());
    assert_eq!(committed.tiers, preview.tiers);
    let summary = |a: &Allocation| (a.total, a.leftover, a.eligible_retailers, a.supply_available);
    assert_eq!(summary(&committed), summary(&preview));
    assert_eq!(
        ok(planner.get_allocation(named(&committed.name))).await,
        committed
    );
    assert_eq!(list(&mut planner, false).await, vec![committed]);
    service.stop().await;
}

/// A commit copies the replica into a new snapshot only when a retailer changed since
/// the last one (the replica revision, bumped when a change commits).
#[tokio::test]
async fn a_commit_reuses_the_snapshot_until_the_replica_changes() {
    let service = TestService::start().await;
    service.know(&twelve_in_three_tiers()).await;
    let mut planner = service.planner();
    for sku in ["zhonghua", "yuxi", "liqun"] {
        scarce_product(&mut planner, sku, 24, 0, tier_quota(1, 3, Some(3), Some(1))).await;
    }
    let tier_3 = |a: &Allocation| a.tiers.iter().find(|t| t.tier == 3).map(|t| t.retailers);
    let first = commit(&mut planner, &["zhonghua"]).await.remove(0);
    let second = commit(&mut planner, &["yuxi"]).await.remove(0);
    assert_eq!(second.snapshot, first.snapshot, "nothing changed in between");
    assert_eq!(tier_3(&second), Some(4));

    // r-00 moves up to tier 3: the next commit takes a new snapshot with it there.
    service.know(&[Retailer::new("r-00", 3)]).await;
    let third = commit(&mut planner, &["liqun"]).await.remove(0);
    assert_ne!(third.snapshot, first.snapshot);
    assert_eq!((tier_3(&third), third.eligible_retailers), (Some(5), 12));
    service.stop().await;
}

/// A delivery waiting for a retailer row that another transaction holds does not hold
/// the replica revision meanwhile (it is bumped when the delivery commits), so the
/// other transaction can still bump it and commit. Bumped as each row changed, the two
/// deadlocked: seen when customers' and accreditation's deliveries met (2026-12-04).
#[tokio::test]
async fn a_delivery_waiting_for_a_retailer_does_not_hold_the_replica_revision() {
    // The delivery changes r-00, then waits for r-03; the other bumps the revision.
    let tiers = delivery_beside_another(
        "UPDATE retailers SET tier = 2 WHERE customer_id = 'r-03'",
        &["r-00", "r-03"],
        "UPDATE replica_state SET revision = revision + 1 WHERE id = 1",
    )
    .await;
    assert_eq!(tiers, [("r-00".to_string(), 3), ("r-03".to_string(), 3)]);
}

/// A delivery takes its retailers in aggregate order whatever order it lists them in,
/// so two deliveries about the same retailers in opposite orders (a grading's
/// standings and a batch of profile changes) wait for each other instead of
/// deadlocking.
#[tokio::test]
async fn deliveries_about_the_same_retailers_take_them_in_one_order() {
    // The other goes through r-05 then r-07; the delivery lists r-07 first, so it must
    // wait for r-05 before it touches r-07.
    let tiers = delivery_beside_another(
        "UPDATE retailers SET tier = 1 WHERE customer_id = 'r-05'",
        &["r-07", "r-05"],
        "UPDATE retailers SET tier = 1 WHERE customer_id = 'r-07'",
    )
    .await;
    assert_eq!(tiers, [("r-05".to_string(), 3), ("r-07".to_string(), 3)]);
}

/// Another delivery, half way: a transaction of its own runs `first` and holds what
/// it took while the service is delivered standings of tier 3 for `ids` (after the
/// twelve of [`twelve_in_three_tiers`]); once that delivery waits for a lock, the
/// other runs `then` and commits. Both must commit. Returns `ids`' tiers in the
/// replica afterwards, by id.
async fn delivery_beside_another(first: &str, ids: &[&str], then: &str) -> Vec<(String, i32)> {
    let db = migrated_db().await;
    let settings = distnet_testkit::settings(&db.url);
    let service = TestService::start_with(&settings).await;
    service.know(&twelve_in_three_tiers()).await;
    let pool = distnet_platform::db::pool(&settings.database, "allocation").expect("pool");

    let mut other = pool.begin().await.expect("begin");
    sqlx::query(first)
        .execute(&mut *other)
        .await
        .expect("the other's first step");
    let retailers: Vec<Retailer> = ids.iter().map(|id| Retailer::new(*id, 3)).collect();
    let delivery = tokio::spawn(async move {
        service.know(&retailers).await;
        service
    });
    distnet_testkit::eventually("the delivery waits for a lock", || {
        let pool = pool.clone();
        async move {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            .fetch_one(&pool)
            .await
            .ok()?;
            (waiting > 0).then_some(())
        }
    })
    .await;
    sqlx::query(then)
        .execute(&mut *other)
        .await
        .expect("the other's next step");
    other.commit().await.expect("the other delivery commits");
    let service = delivery.await.expect("the delivery commits too");

    let tiers = sqlx::query_as(
        "SELECT customer_id, tier FROM retailers WHERE customer_id = ANY($1) ORDER BY customer_id",
    )
    .bind(ids)
    .fetch_all(&pool)
    .await
    .expect("replica read");
    pool.close().await;
    service.stop().await;
    drop(db);
    tiers
}

#[tokio::test]
async fn entitlements_of_all_retailers_add_up_to_the_committed_total() {
    let service = TestService::start().await;
    let retailers = population();
    service.know(&retailers).await;
    let mut planner = service.planner();
    // TIER_QUOTA in tiers 2..=4 for key and general retailers of area-01, formats 2..=4.
    let filter = Eligibility {
        classes: vec![CustomerClass::Key as i32, CustomerClass::General as i32],
        area_ids: vec!["area-01".into()],
        formats: vec![2, 3, 4],
        ..Eligibility::default()
    };
    let policy = Policy {
        eligibility: Some(filter),
        ..tier_quota(2, 4, Some(6), Some(2))
    };
    scarce_product(&mut planner, "filtered", 45, 5, policy).await;
    // PROPORTIONAL over a pilot batch whose suspended, blacklisted and unknown
    // members are not eligible.
    let mut pilot: Vec<String> = (0..24).map(|i| format!("customers/r-{i:02}")).collect();
    pilot.extend(["suspended-1", "blacklisted-1", "ghost-1"].map(|id| format!("customers/{id}")));
    let policy = Policy {
        kind: PolicyKind::Proportional as i32,
        proportional: Some(ProportionalRule {
            weights: vec![1, 2, 3, 4],
            floor: 1,
            cap: Some(8),
        }),
        eligibility: Some(Eligibility {
            target_customers: pilot.clone(),
            ..Eligibility::default()
        }),
        ..Policy::default()
    };
    scarce_product(&mut planner, "pilot", 61, 0, policy).await;
    let allocations = commit(&mut planner, &["filtered", "pilot"]).await;
    let find = |p: &str| allocations.iter().find(|a| a.product == p).expect("allocated");
    let (filtered, proportional) = (find("products/filtered"), find("products/pilot"));

    let live = |r: &Retailer| r.license == LicenseStatus::Active && !r.blacklisted && r.tier > 0;
    let key_or_general = |r: &Retailer| matches!(r.class, CustomerClass::Key | CustomerClass::General);
    let by_filter =
        |r: &Retailer| live(r) && key_or_general(r) && r.area == "area-01" && (2..=4).contains(&r.format);
    let by_pilot = |r: &Retailer| live(r) && pilot.contains(&format!("customers/{}", r.id));
    // PROPORTIONAL places the whole supply (no cap binds), some of it as +1s.
    assert_eq!((proportional.total, proportional.shortfall), (61, 0));
    assert_eq!(proportional.eligible_retailers, 24);
    assert!(
        proportional.tiers.iter().any(|t| t.extra_retailers > 0),
        "{proportional:?}"
    );
    assert_eq!(filtered.tiers[0].quota, 0, "tier 1 is outside 2..=4");
    assert!(filtered.total > 0, "{filtered:?}");

    let mut sorted: Vec<&Retailer> = retailers.iter().collect();
    sorted.sort_by(|a, b| a.id.cmp(&b.id));
    let mut all_expected = Vec::new();
    for (allocation, admits) in [
        (filtered, &by_filter as &dyn Fn(&Retailer) -> bool),
        (proportional, &by_pilot),
    ] {
        // Expected: the tier's quota, +1 for the first retailers of the tier by id.
        let mut expected: BTreeMap<&str, i64> = BTreeMap::new();
        let mut plus_ones: BTreeMap<i32, i64> = allocation
            .tiers
            .iter()
            .map(|t| (t.tier, t.extra_retailers))
            .collect();
        let mut counted: BTreeMap<i32, i64> = BTreeMap::new();
        for r in &sorted {
            let quota = match allocation.tiers.iter().find(|t| t.tier == r.tier) {
                Some(t) if admits(r) => {
                    *counted.entry(r.tier).or_default() += 1;
                    let left = plus_ones.entry(r.tier).or_default();
                    let extra = i64::from(*left > 0);
                    *left -= extra;
                    t.quota + extra
                }
                _ => 0,
            };
            expected.insert(r.id.as_str(), quota);
        }
        for t in &allocation.tiers {
            assert_eq!(counted.get(&t.tier).copied().unwrap_or(0), t.retailers, "{t:?}");
        }
        let mut sum = 0;
        for r in &retailers {
            let got = entitlements(&mut planner, &r.id).await;
            let quota = got.get(&allocation.product).map_or(0, |e| e.quota);
            let product = &allocation.product;
            assert_eq!(quota, expected[r.id.as_str()], "{} of {product}", r.id);
            sum += quota;
        }
        assert_eq!(sum, allocation.total, "{allocation:?}");
        assert!(allocation.total <= allocation.supply_available);
        all_expected.push((allocation.product.clone(), expected));
    }
    for id in ["suspended-1", "blacklisted-1", "ungraded-1"] {
        for e in entitlements(&mut planner, id).await.values() {
            assert_eq!((e.tier, e.quota, e.remaining), (0, 0, 0), "{id}: {e:?}");
        }
    }

    // A replica started now reads every retailer's entitlements into memory before it
    // reports ready (many retailers a statement, not the single read above): the same.
    let replica = TestService::start_with(&distnet_testkit::settings(service.database_url())).await;
    let channel = replica.channel.clone();
    eventually("the replica ready", || {
        let channel = channel.clone();
        async move {
            distnet_testkit::serving(&channel, "distnet.allocation.v1.AllocationService")
                .await
                .ok()?
                .then_some(())
        }
    })
    .await;
    let mut from_replica = replica.planner();
    for (product, expected) in &all_expected {
        for r in &retailers {
            let got = entitlements(&mut from_replica, &r.id).await;
            let quota = got.get(product).map_or(0, |e| e.quota);
            assert_eq!(
                quota,
                expected[r.id.as_str()],
                "{} of {product} from the replica",
                r.id
            );
        }
    }
    replica.stop().await;
    service.stop().await;
}

#[tokio::test]
async fn a_later_commit_supersedes_the_earlier_one_only_before_the_window_opens() {
    let service = TestService::start().await;
    service.know(&population()).await;
    let mut planner = service.planner();
    let policy = tier_quota(1, 4, Some(5), Some(1));
    scarce_product(&mut planner, "zhonghua", 40, 0, policy).await;
    let first = commit(&mut planner, &["zhonghua"]).await.remove(0);
    ok(planner.set_supply(set_supply(100, 0))).await;
    let second = commit(&mut planner, &["zhonghua"]).await.remove(0);
    assert_ne!(first.name, second.name);
    assert_eq!((first.supply_available, second.supply_available), (40, 100));

    let old = ok(planner.get_allocation(named(&first.name))).await;
    assert_eq!(old.state, AllocationState::Superseded as i32);
    assert_eq!(list(&mut planner, true).await.len(), 2);
    let current = list(&mut planner, false).await;
    let names: Vec<&str> = current.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, vec![second.name.as_str()]);
    assert_eq!(
        entitlements(&mut planner, "r-03").await[SKU].allocation,
        second.name
    );

    service.clock.set(during_window());
    let late = refused(planner.commit_allocation(commit_request())).await;
    assert_eq!(late.code(), Code::FailedPrecondition);
    assert_eq!(reason(&late), "WINDOW_OPEN");
    assert_eq!(list(&mut planner, true).await.len(), 2);
    assert_eq!(list(&mut planner, false).await, current);
    service.stop().await;
}

#[tokio::test]
async fn commit_is_idempotent_by_request_id() {
    let service = TestService::start().await;
    service.know(&population()).await;
    let mut planner = service.planner();
    scarce_product(&mut planner, "zhonghua", 60, 0, tier_quota(1, 4, Some(4), None)).await;
    let request = commit_request();
    let first = ok(planner.commit_allocation(request.clone())).await;
    let again = ok(planner.commit_allocation(request)).await;
    assert_eq!(again, first);
    assert_eq!(first.allocations.len(), 1);
    assert_eq!(list(&mut planner, true).await, first.allocations);
    service.stop().await;
}

#[tokio::test]
async fn release_unclaimed_offers_leftover_to_retailers_that_used_all_of_their_quota() {
    let service = TestService::start().await;
    let allocation = ramp_cycle(&service).await;
    let mut planner = service.planner();
    let early = refused(planner.release_unclaimed(release_request())).await;
    assert_eq!(early.code(), Code::FailedPrecondition);
    assert_eq!(reason(&early), "TOO_EARLY_TO_RELEASE");

    // Every tier-3 retailer, r-01 (tier 2) and r-00 (tier 1) order their full quota.
    let mut agent = service.agent(&["area-01"]);
    for id in ["r-02", "r-05", "r-08", "r-11"] {
        buy(&mut agent, id, 3).await.expect("full quota");
    }
    buy(&mut agent, "r-01", 2).await.expect("full quota");
    buy(&mut agent, "r-00", 1).await.expect("full quota");
    let before = supply(&mut planner).await;
    assert_eq!((before.confirmed, before.remaining), (15, 9));

    // Friday 13:00 Shanghai, an hour after the release time.
    let friday = chrono::DateTime::parse_from_rfc3339("2026-11-27T05:00:00Z").expect("time");
    service.clock.set(friday.with_timezone(&chrono::Utc));
    let release = ok(planner.release_unclaimed(release_request())).await;
    assert!(
        0 < release.released && release.released <= before.remaining,
        "{release:?}"
    );
    // Highest tier first, ties by id: r-02, r-05 and r-08 take the 9 cartons left.
    assert_eq!((release.released, release.retailers), (9, 3));
    assert!(!release.explanation.is_empty());
    let after_release = release.allocation.expect("allocation");
    assert_eq!((after_release.name, after_release.released), (allocation.name, 9));
    for id in ["r-02", "r-05", "r-08", "r-11", "r-01", "r-00"] {
        let e = &entitlements(&mut planner, id).await[SKU];
        let extra = 3 * i64::from(["r-02", "r-05", "r-08"].contains(&id));
        assert_eq!((e.extra, e.remaining), (extra, extra), "{id}: {e:?}");
    }

    for id in ["r-02", "r-05", "r-08"] {
        buy(&mut agent, id, 3).await.expect("extra quota");
    }
    // The supply is gone: retailers that still have quota left can no longer order.
    for id in ["r-04", "r-03"] {
        let exhausted = buy(&mut agent, id, 1).await.expect_err("no supply left");
        assert_eq!(reason(&exhausted), "SUPPLY_EXHAUSTED", "{id}: {exhausted:?}");
    }
    let after = supply(&mut planner).await;
    assert!(after.confirmed <= after.available, "{after:?}");
    assert_eq!((after.confirmed, after.remaining), (24, 0));
    service.stop().await;
}

#[tokio::test]
async fn one_line_can_take_quota_and_the_extra_released_to_it() {
    let service = TestService::start().await;
    // r-02 (tier 3) pays cash: its orders also take its credit row.
    let mut twelve = twelve_in_three_tiers();
    twelve[2] = Retailer {
        settlement: Settlement::Cash,
        credit_limit_fen: 10_000_000,
        ..Retailer::new("r-02", 3)
    };
    ramp_cycle_of(&service, &twelve).await;
    let mut planner = service.planner();
    let mut agent = service.agent(&["area-01"]);
    // Friday 13:00 Shanghai: r-02 orders its whole quota and is offered more.
    let friday = chrono::DateTime::parse_from_rfc3339("2026-11-27T05:00:00Z").expect("time");
    service.clock.set(friday.with_timezone(&chrono::Utc));
    let first = buy(&mut agent, "r-02", 3).await.expect("full quota");
    let release = ok(planner.release_unclaimed(release_request())).await;
    let extra = entitlements(&mut planner, "r-02").await[SKU].extra;
    assert!(extra > 0 && release.released >= extra, "{release:?}");
    // It cancels before picking and orders quota and extra in one line, more than the
    // allocation gave its tier: that fits only because its consumption row has room.
    let cancel = CancelOrderRequest {
        request_id: rid(),
        name: first.name,
        reason: "one bigger order instead".into(),
    };
    ok(agent.cancel_order(cancel)).await;
    let over = buy(&mut agent, "r-02", 3 + extra + 1)
        .await
        .expect_err("beyond quota and extra");
    assert_eq!(reason(&over), "QUOTA_EXCEEDED");
    // Such a line takes the quota row in the same statement as any other, before the
    // credit row: an order and a cancellation of r-02 cannot deadlock.
    let bigger = order("r-02", &[("zhonghua", 3 + extra)]);
    let (quota_held, answer) =
        quota_held_while_credit_waits(&service, agent.clone(), bigger, "zhonghua").await;
    assert!(
        quota_held,
        "the order waited for the credit row before it took the quota row"
    );
    answer.expect("quota and extra");
    let e = &entitlements(&mut planner, "r-02").await[SKU];
    assert_eq!(
        (e.quota, e.extra, e.consumed, e.remaining),
        (3, extra, 3 + extra, 0)
    );
    // A tier-3 retailer with no consumption row yet cannot order past its quota.
    let fresh = buy(&mut agent, "r-05", 4)
        .await
        .expect_err("no extra without a row");
    assert_eq!(reason(&fresh), "QUOTA_EXCEEDED");
    service.stop().await;
}

#[tokio::test]
async fn estimate_demand_stores_its_inputs_and_applies_the_formula() {
    let service = TestService::start().await;
    let mut planner = service.planner();
    ok(planner.upsert_product(product("zhonghua", true))).await;
    let request = EstimateDemandRequest {
        request_id: rid(),
        product: SKU.into(),
        month: "2026-12".into(),
        last_year_same_month_cartons: 1000,
        growth_forecast_cartons: 1200,
        holiday_factor_bp: 15_000,
    };
    let estimate = ok(planner.estimate_demand(request.clone())).await;
    // (1000 × 50 % + 1200 × 50 %) × 1.5
    assert_eq!(estimate.cartons, 1650);
    assert_eq!(
        (estimate.product.as_str(), estimate.month.as_str()),
        (SKU, "2026-12")
    );
    let inputs = |e: &DemandEstimate| {
        (
            e.last_year_same_month_cartons,
            e.growth_forecast_cartons,
            e.holiday_factor_bp,
        )
    };
    assert_eq!(inputs(&estimate), (1000, 1200, 15_000));
    assert!(estimate.explanation.contains("1650"), "{}", estimate.explanation);
    assert_eq!(estimate.estimated_by, "planner-1");
    assert_eq!(ok(planner.estimate_demand(request.clone())).await, estimate);

    let factor = EstimateDemandRequest {
        request_id: rid(),
        holiday_factor_bp: 40_000,
        ..request
    };
    let invalid = refused(planner.estimate_demand(factor)).await;
    assert_eq!(invalid.code(), Code::InvalidArgument);
    assert_eq!(bad_fields(&invalid), vec!["holiday_factor_bp"]);
    service.stop().await;
}

#[tokio::test]
async fn policies_are_validated() {
    let service = TestService::start().await;
    service.know(&twelve_in_three_tiers()).await;
    let mut planner = service.planner();
    scarce_product(&mut planner, "zhonghua", 20, 0, tier_quota(1, 3, Some(3), None)).await;
    let unspecified = Policy {
        kind: PolicyKind::Unspecified as i32,
        ..tier_quota(1, 3, Some(3), None)
    };
    let cases = [
        (tier_quota(1, 3, None, None), "policy"),
        (tier_quota(3, 2, Some(3), None), "policy"),
        (unspecified, "policy.kind"),
    ];
    for (policy, field) in cases {
        let invalid = refused(planner.set_policy(set_policy(policy.clone()))).await;
        assert_eq!(invalid.code(), Code::InvalidArgument, "{policy:?}");
        assert!(
            bad_fields(&invalid).contains(&field.to_string()),
            "{policy:?}: {invalid:?}"
        );
    }
    let invalid = refused(planner.set_supply(set_supply(10, 11))).await;
    assert_eq!(invalid.code(), Code::InvalidArgument);
    assert_eq!(bad_fields(&invalid), vec!["holdback"]);

    ok(planner.upsert_product(product("plain", false))).await;
    let plain = Policy {
        product: "products/plain".into(),
        ..tier_quota(1, 3, Some(3), None)
    };
    let not_scarce = refused(planner.set_policy(set_policy(plain))).await;
    assert_eq!(not_scarce.code(), Code::FailedPrecondition);
    assert_eq!(reason(&not_scarce), "NOT_SCARCE");

    // A floor of 2 for 12 retailers needs 24 cartons; there are 20.
    let mut floor = tier_quota(1, 3, Some(3), None);
    if let Some(rule) = floor.tier_quota.as_mut() {
        rule.min_quota = 2;
    }
    ok(planner.set_policy(set_policy(floor))).await;
    let infeasible = refused(planner.commit_allocation(commit_request())).await;
    assert_eq!(infeasible.code(), Code::FailedPrecondition);
    assert_eq!(reason(&infeasible), "ALLOCATION_INFEASIBLE");
    let expected = vec![("ALLOCATION_INFEASIBLE".to_string(), SKU.to_string())];
    assert_eq!(preconditions(&infeasible), expected);
    assert!(list(&mut planner, true).await.is_empty());
    service.stop().await;
}

#[tokio::test]
async fn only_planners_change_the_plan() {
    let service = TestService::start().await;
    service.know(&[Retailer::new("r-00", 1)]).await;
    let mut planner = service.planner();
    scarce_product(&mut planner, "zhonghua", 20, 0, tier_quota(1, 3, Some(3), None)).await;
    for mut client in [service.agent(&["area-01"]), service.retailer("r-00")] {
        let denied = [
            refused(client.upsert_product(product("other", true))).await,
            refused(client.set_supply(set_supply(1000, 0))).await,
            refused(client.set_policy(set_policy(tier_quota(1, 1, Some(20), None)))).await,
            refused(client.commit_allocation(commit_request())).await,
        ];
        for (i, status) in denied.iter().enumerate() {
            assert_eq!(status.code(), Code::PermissionDenied, "call {i}: {status:?}");
        }
    }
    assert_eq!(supply(&mut planner).await.quantity, 20);
    assert!(list(&mut planner, true).await.is_empty());
    let mut retailer = service.retailer("r-00");
    let products = ok(retailer.list_products(ListProductsRequest::default()))
        .await
        .products;
    let skus: Vec<&str> = products.iter().map(|p| p.sku.as_str()).collect();
    assert_eq!(skus, vec!["zhonghua"], "the catalog is public");
    let bearer = distnet_testkit::Bearer(None);
    let mut anonymous = AllocationServiceClient::with_interceptor(service.channel.clone(), bearer);
    let unauthenticated = refused(anonymous.list_products(ListProductsRequest::default())).await;
    assert_eq!(unauthenticated.code(), Code::Unauthenticated);
    service.stop().await;
}

#[tokio::test]
async fn the_cycle_report_shows_use_per_tier() {
    let service = TestService::start().await;
    let allocation = ramp_cycle(&service).await;
    let mut agent = service.agent(&["area-01"]);
    // Tier 3: r-02 all 3, r-05 one of 3; tier 2: r-01 both; tier 1: nobody.
    for (id, cartons) in [("r-02", 3), ("r-05", 1), ("r-01", 2)] {
        buy(&mut agent, id, cartons).await.expect("placed");
    }
    let request = GetCycleReportRequest {
        cycle: CYCLE.into(),
        product: SKU.into(),
    };
    let report = ok(service.planner().get_cycle_report(request)).await;
    assert_eq!(report.allocation, allocation.name);
    let rows: Vec<[i64; 7]> = report
        .tiers
        .iter()
        .map(|t| {
            let (tier, utilization, coverage) = (t.tier, t.utilization_bp, t.coverage_bp);
            let bp = [tier, utilization, coverage].map(i64::from);
            [
                bp[0],
                t.eligible,
                t.quota_total,
                t.ordered,
                bp[1],
                bp[2],
                t.stock_outs,
            ]
        })
        .collect();
    // tier, eligible, quota total, ordered, utilization, coverage, stock-outs
    let expected = vec![
        [1, 4, 4, 0, 0, 0, 0],
        [2, 4, 8, 2, 2500, 2500, 1],
        [3, 4, 12, 4, 3333, 5000, 1],
    ];
    assert_eq!(rows, expected);
    assert_eq!((report.eligible, report.quota_total), (12, 24));
    assert_eq!((report.ordered, report.stock_outs), (6, 2));
    assert_eq!((report.utilization_bp, report.coverage_bp), (2500, 2500));
    assert_eq!((report.qualify_for_release, report.scale_down_next), (2, 0));
    assert!(!report.balance_rule.is_empty());
    service.stop().await;
}

#[tokio::test]
async fn list_products_pages_through_the_catalog() {
    let service = TestService::start().await;
    let mut planner = service.planner();
    for i in 0..25 {
        ok(planner.upsert_product(product(&format!("p-{i:02}"), i % 3 == 0))).await;
    }
    let (mut skus, mut sizes, mut tokens) = (Vec::new(), Vec::new(), vec![String::new()]);
    while let Some(page_token) = tokens.last().cloned() {
        let request = ListProductsRequest {
            page_size: 10,
            page_token,
            scarce_only: false,
        };
        let page = ok(planner.list_products(request)).await;
        sizes.push(page.products.len());
        skus.extend(page.products.into_iter().map(|p| p.sku));
        if page.next_page_token.is_empty() || sizes.len() > 4 {
            break;
        }
        tokens.push(page.next_page_token);
    }
    assert_eq!(sizes, vec![10, 10, 5]);
    assert_eq!(skus, (0..25).map(|i| format!("p-{i:02}")).collect::<Vec<_>>());

    let scarce_only = ListProductsRequest {
        scarce_only: true,
        ..ListProductsRequest::default()
    };
    let scarce = ok(planner.list_products(scarce_only.clone())).await.products;
    assert_eq!(scarce.len(), 9);
    assert!(scarce.iter().all(|p| p.scarce));

    let mismatched = ListProductsRequest {
        page_token: tokens[1].clone(),
        ..scarce_only
    };
    let invalid = refused(planner.list_products(mismatched)).await;
    assert_eq!(invalid.code(), Code::InvalidArgument);
    assert_eq!(bad_fields(&invalid), vec!["page_token"]);
    service.stop().await;
}
