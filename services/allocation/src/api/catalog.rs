//! Catalog, cycles, supply, demand and policies: the planner's inputs.

use distnet_platform::ServiceError;
use distnet_platform::auth::Caller;
use distnet_platform::pagination;
use distnet_platform::validate::Violations;
use distnet_proto::allocation::v1::*;

use super::{AllocationApi, begin_idempotent, cycle_id, sku};
use crate::domain::access;
use crate::domain::cycle::{CycleId, OrderWindow};
use crate::domain::demand::{self, DemandInputs};
use crate::domain::eligibility::Eligibility;
use crate::domain::proportional::ProportionalPolicy;
use crate::domain::run::{PolicyBody, Rule};
use crate::domain::tier_quota::TierQuotaPolicy;
use crate::store::catalog::{self as store, CycleWindow, DemandRow, PolicyRow, ProductRow, SupplyRow};
use crate::store::timestamp;

/// Largest quantity anyone plans with: 1 billion cartons.
const MAX_CARTONS: i64 = 1_000_000_000;

fn to_time(t: Option<prost_types::Timestamp>) -> Option<chrono::DateTime<chrono::Utc>> {
    t.and_then(|t| chrono::DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).ok()?))
}

fn policy_to_wire(row: &PolicyRow) -> Policy {
    let (kind, tier_quota, proportional) = match &row.body.rule {
        Rule::TierQuota(p) => (
            PolicyKind::TierQuota,
            Some(TierQuotaRule {
                min_tier: i32::try_from(p.min_tier).unwrap_or(i32::MAX),
                max_tier: i32::try_from(p.max_tier).unwrap_or(i32::MAX),
                cap: p.cap.and_then(|c| i64::try_from(c).ok()),
                max_step: p.max_step.and_then(|c| i64::try_from(c).ok()),
                min_quota: i64::try_from(p.min_quota).unwrap_or(i64::MAX),
            }),
            None,
        ),
        Rule::Proportional(p) => (
            PolicyKind::Proportional,
            None,
            Some(ProportionalRule {
                weights: p
                    .weights
                    .iter()
                    .map(|w| i64::try_from(*w).unwrap_or(i64::MAX))
                    .collect(),
                floor: i64::try_from(p.floor).unwrap_or(i64::MAX),
                cap: p.cap.and_then(|c| i64::try_from(c).ok()),
            }),
        ),
    };
    let e = &row.body.eligibility;
    Policy {
        product: format!("products/{}", row.sku),
        kind: kind as i32,
        tier_quota,
        proportional,
        eligibility: Some(distnet_proto::allocation::v1::Eligibility {
            classes: e.classes.iter().map(|c| i32::from(*c)).collect(),
            area_ids: e.area_ids.clone(),
            formats: e.formats.iter().map(|f| i32::from(*f)).collect(),
            target_customers: e.targets.iter().map(|t| format!("customers/{t}")).collect(),
        }),
        dynamic_balance: row.body.dynamic_balance,
        version: row.version,
        updated_by: row.updated_by.clone(),
        update_time: Some(timestamp(row.updated_at)),
    }
}

fn non_negative(v: &mut Violations, value: i64, field: &str) -> u64 {
    v.check(
        (0..=MAX_CARTONS).contains(&value),
        field,
        "must be 0..=1,000,000,000",
    );
    u64::try_from(value.clamp(0, MAX_CARTONS)).unwrap_or(0)
}

/// The wire policy as a rule the kernels run, or field violations.
fn policy_from_wire(policy: &Policy) -> Result<PolicyBody, ServiceError> {
    let mut v = Violations::new();
    let rule = match PolicyKind::try_from(policy.kind) {
        Ok(PolicyKind::TierQuota) => {
            let r = policy.tier_quota.unwrap_or_default();
            v.check(
                (1..=100).contains(&r.min_tier),
                "policy.tier_quota.min_tier",
                "must be 1..=100",
            );
            v.check(
                (1..=100).contains(&r.max_tier),
                "policy.tier_quota.max_tier",
                "must be 1..=100",
            );
            let cap = r.cap.map(|c| non_negative(&mut v, c, "policy.tier_quota.cap"));
            let max_step = r
                .max_step
                .map(|s| non_negative(&mut v, s, "policy.tier_quota.max_step"));
            Rule::TierQuota(TierQuotaPolicy {
                min_tier: u32::try_from(r.min_tier).unwrap_or(0),
                max_tier: u32::try_from(r.max_tier).unwrap_or(0),
                cap,
                max_step,
                min_quota: non_negative(&mut v, r.min_quota, "policy.tier_quota.min_quota"),
            })
        }
        Ok(PolicyKind::Proportional) => {
            let r = policy.proportional.clone().unwrap_or_default();
            let weights = r
                .weights
                .iter()
                .enumerate()
                .map(|(i, w)| non_negative(&mut v, *w, &format!("policy.proportional.weights[{i}]")))
                .collect();
            Rule::Proportional(ProportionalPolicy {
                weights,
                floor: non_negative(&mut v, r.floor, "policy.proportional.floor"),
                cap: r.cap.map(|c| non_negative(&mut v, c, "policy.proportional.cap")),
            })
        }
        _ => {
            v.add("policy.kind", "must be TIER_QUOTA or PROPORTIONAL");
            return Err(v
                .into_result()
                .err()
                .unwrap_or_else(|| ServiceError::invalid_field("policy.kind", "")));
        }
    };
    let e = policy.eligibility.clone().unwrap_or_default();
    v.check(
        e.target_customers.len() <= 10_000,
        "policy.eligibility.target_customers",
        "at most 10,000",
    );
    v.check(
        e.area_ids.len() <= 1_000,
        "policy.eligibility.area_ids",
        "at most 1,000",
    );
    for (i, class) in e.classes.iter().enumerate() {
        v.check(
            (1..=3).contains(class),
            &format!("policy.eligibility.classes[{i}]"),
            "unknown class",
        );
    }
    for (i, format) in e.formats.iter().enumerate() {
        v.check(
            (1..=5).contains(format),
            &format!("policy.eligibility.formats[{i}]"),
            "unknown format",
        );
    }
    for (i, area) in e.area_ids.iter().enumerate() {
        v.text(area, &format!("policy.eligibility.area_ids[{i}]"), 64);
    }
    let mut targets = Vec::with_capacity(e.target_customers.len());
    for (i, target) in e.target_customers.iter().enumerate() {
        match super::customer_id(target, "") {
            Ok(id) => targets.push(id.to_string()),
            Err(_) => v.add(
                format!("policy.eligibility.target_customers[{i}]"),
                "must be `customers/{id}`",
            ),
        }
    }
    if let Err(problem) = rule.check() {
        v.add("policy", problem);
    }
    v.into_result()?;
    let to_i16 = |x: &i32| i16::try_from(*x).unwrap_or(0);
    Ok(PolicyBody {
        dynamic_balance: policy.dynamic_balance,
        rule,
        eligibility: Eligibility {
            classes: e.classes.iter().map(to_i16).collect(),
            area_ids: e.area_ids,
            formats: e.formats.iter().map(to_i16).collect(),
            targets,
        },
    })
}

impl AllocationApi {
    pub(super) async fn upsert_product(
        &self,
        caller: Caller,
        message: UpsertProductRequest,
    ) -> Result<Product, ServiceError> {
        let mut v = Violations::new();
        v.request_id(&message.request_id);
        let product = message.product.clone().unwrap_or_default();
        v.check(
            distnet_platform::validate::is_valid_id(&product.sku),
            "product.sku",
            "1..63 of a-z, 0-9 and '-'",
        );
        v.non_empty(&product.display_name, "product.display_name");
        v.text(&product.display_name, "product.display_name", 200);
        v.check(
            (1..=5).contains(&product.price_class),
            "product.price_class",
            "must be 1..=5",
        );
        let price = product.wholesale_price.clone().unwrap_or_default();
        v.check(
            price.currency_code == "CNY" || price.currency_code.is_empty(),
            "product.wholesale_price.currency_code",
            "must be CNY",
        );
        v.check(
            (0..=100_000_000).contains(&price.fen),
            "product.wholesale_price.fen",
            "must be 0..=100,000,000 fen per carton",
        );
        v.check(
            product.cartons_per_case == 0 || (1..=1000).contains(&product.cartons_per_case),
            "product.cartons_per_case",
            "must be 1..=1000 (0 = 50)",
        );
        non_negative(&mut v, product.stock_cartons, "product.stock_cartons");
        v.into_result()?;
        caller.require(access::PLANNERS)?;

        let mut tx = self.pool.begin().await?;
        let key =
            match begin_idempotent(&mut tx, &caller, &message.request_id, "UpsertProduct", &message).await? {
                Ok(key) => key,
                Err(replay) => return Ok(replay),
            };
        let row = store::upsert_product(
            &mut tx,
            &ProductRow {
                sku: product.sku.clone(),
                display_name: product.display_name.clone(),
                price_class: i16::try_from(product.price_class).unwrap_or(1),
                wholesale_fen: price.fen,
                cartons_per_case: if product.cartons_per_case == 0 {
                    50
                } else {
                    product.cartons_per_case
                },
                scarce: product.scarce,
                stock_cartons: product.stock_cartons,
                updated_at: self.clock.now(),
            },
        )
        .await?;
        let reply = row.to_wire();
        key.complete(&mut tx, &reply).await?;
        tx.commit().await?;
        Ok(reply)
    }

    pub(super) async fn get_product(
        &self,
        caller: Caller,
        message: GetProductRequest,
    ) -> Result<Product, ServiceError> {
        let sku = sku(&message.name, "name")?;
        caller.require(access::CATALOG_READERS)?;
        let mut conn = self.pool.acquire().await?;
        store::product(&mut conn, sku)
            .await?
            .map(|p| p.to_wire())
            .ok_or_else(|| ServiceError::not_found(message.name.clone()))
    }

    pub(super) async fn list_products(
        &self,
        caller: Caller,
        message: ListProductsRequest,
    ) -> Result<ListProductsResponse, ServiceError> {
        let filter = format!("scarce={}", message.scarce_only);
        let page = pagination::read(message.page_size, &message.page_token, &filter)?;
        caller.require(access::CATALOG_READERS)?;
        let mut conn = self.pool.acquire().await?;
        let rows = store::list_products(&mut conn, message.scarce_only, &page).await?;
        let (rows, next_page_token) = pagination::finish(rows, &page, &filter, |p| p.sku.clone());
        Ok(ListProductsResponse {
            products: rows.iter().map(ProductRow::to_wire).collect(),
            next_page_token,
        })
    }

    pub(super) async fn upsert_cycle(
        &self,
        caller: Caller,
        message: UpsertCycleRequest,
    ) -> Result<Cycle, ServiceError> {
        let mut v = Violations::new();
        v.request_id(&message.request_id);
        let cycle = message.cycle.clone().unwrap_or_default();
        let id = cycle_id(&cycle.name, "cycle.name");
        let (opens, closes) = (to_time(cycle.open_time), to_time(cycle.close_time));
        let release = to_time(cycle.release_time);
        v.check(opens.is_some(), "cycle.open_time", "is required");
        v.check(closes.is_some(), "cycle.close_time", "is required");
        if let (Some(o), Some(c)) = (opens, closes) {
            v.check(o < c, "cycle.close_time", "must be after open_time");
            v.check(
                c - o <= chrono::Duration::days(14),
                "cycle.close_time",
                "a window lasts at most 14 days",
            );
            if let Some(r) = release {
                v.check(
                    o <= r && r <= c,
                    "cycle.release_time",
                    "must lie within the window",
                );
            }
        }
        let id = match (id, v.into_result()) {
            (Ok(id), Ok(())) => id,
            (Err(e), _) | (_, Err(e)) => return Err(e),
        };
        caller.require(access::PLANNERS)?;
        let (Some(opens), Some(closes)) = (opens, closes) else {
            return Err(ServiceError::invalid_field("cycle.open_time", "is required"));
        };
        let mut tx = self.pool.begin().await?;
        let key =
            match begin_idempotent(&mut tx, &caller, &message.request_id, "UpsertCycle", &message).await? {
                Ok(key) => key,
                Err(replay) => return Ok(replay),
            };
        let now = self.clock.now();
        let current = store::cycle(&mut tx, id).await?;
        if current.window.opens <= now && current.window.opens != opens {
            return Err(ServiceError::failed_precondition(
                "WINDOW_ALREADY_OPEN",
                format!(
                    "cycles/{id} opened at {}; its opening can no longer move",
                    current.window.opens
                ),
            ));
        }
        let window = CycleWindow {
            window: OrderWindow { opens, closes },
            release: release.unwrap_or(closes.min(current.release.max(opens))),
            customized: true,
        };
        store::upsert_cycle(&mut tx, id, &window).await?;
        let reply = window.to_wire(id);
        key.complete(&mut tx, &reply).await?;
        tx.commit().await?;
        Ok(reply)
    }

    pub(super) async fn get_cycle(
        &self,
        caller: Caller,
        message: GetCycleRequest,
    ) -> Result<Cycle, ServiceError> {
        let id = cycle_id(&message.name, "name")?;
        caller.require(access::CATALOG_READERS)?;
        let mut conn = self.pool.acquire().await?;
        Ok(store::cycle(&mut conn, id).await?.to_wire(id))
    }

    pub(super) async fn set_supply(
        &self,
        caller: Caller,
        message: SetSupplyRequest,
    ) -> Result<Supply, ServiceError> {
        let mut v = Violations::new();
        v.request_id(&message.request_id);
        non_negative(&mut v, message.quantity, "quantity");
        non_negative(&mut v, message.holdback, "holdback");
        non_negative(&mut v, message.target, "target");
        v.check(
            message.holdback <= message.quantity,
            "holdback",
            "must not exceed quantity",
        );
        v.check(
            message.target
                <= message
                    .quantity
                    .saturating_sub(message.holdback.clamp(0, message.quantity.max(0))),
            "target",
            "must not exceed quantity − holdback",
        );
        let sku = sku(&message.product, "product");
        let cycle = cycle_id(&message.cycle, "cycle");
        v.into_result()?;
        let (sku, cycle) = (sku?, cycle?);
        caller.require(access::PLANNERS)?;
        let mut tx = self.pool.begin().await?;
        let key = match begin_idempotent(&mut tx, &caller, &message.request_id, "SetSupply", &message).await?
        {
            Ok(key) => key,
            Err(replay) => return Ok(replay),
        };
        let product = store::product(&mut tx, sku)
            .await?
            .ok_or_else(|| ServiceError::not_found(message.product.clone()))?;
        if !product.scarce {
            return Err(ServiceError::failed_precondition(
                "NOT_SCARCE",
                format!(
                    "{} is sold from stock, not rationed; set its stock_cartons",
                    message.product
                ),
            ));
        }
        let row = store::set_supply(
            &mut tx,
            &SupplyRow {
                sku: sku.to_string(),
                cycle_id: cycle.to_string(),
                quantity: message.quantity,
                holdback: message.holdback,
                target: message.target,
                confirmed: 0,
                updated_at: self.clock.now(),
            },
        )
        .await?
        .ok_or_else(|| {
            ServiceError::failed_precondition(
                "SUPPLY_BELOW_CONFIRMED",
                "quantity − holdback would fall below the cartons already confirmed on orders",
            )
        })?;
        let reply = row.to_wire();
        key.complete(&mut tx, &reply).await?;
        tx.commit().await?;
        // Every replica hears of it (a trigger notifies); this one forgets at once.
        self.entitlements.supplied();
        Ok(reply)
    }

    pub(super) async fn get_supply(
        &self,
        caller: Caller,
        message: GetSupplyRequest,
    ) -> Result<Supply, ServiceError> {
        let sku = sku(&message.product, "product")?;
        let cycle = cycle_id(&message.cycle, "cycle")?;
        caller.require(access::PLAN_READERS)?;
        let mut conn = self.pool.acquire().await?;
        store::supply(&mut conn, sku, &cycle.to_string())
            .await?
            .map(|s| s.to_wire())
            .ok_or_else(|| ServiceError::not_found(format!("{}/{}", message.product, message.cycle)))
    }

    pub(super) async fn estimate_demand(
        &self,
        caller: Caller,
        message: EstimateDemandRequest,
    ) -> Result<DemandEstimate, ServiceError> {
        let mut v = Violations::new();
        v.request_id(&message.request_id);
        let last_year = non_negative(
            &mut v,
            message.last_year_same_month_cartons,
            "last_year_same_month_cartons",
        );
        let growth = non_negative(&mut v, message.growth_forecast_cartons, "growth_forecast_cartons");
        let month_ok = chrono::NaiveDate::parse_from_str(&format!("{}-01", message.month), "%Y-%m-%d")
            .is_ok()
            && message.month.len() == 7;
        v.check(month_ok, "month", "must be YYYY-MM");
        let factor = if message.holiday_factor_bp == 0 {
            demand::NEUTRAL_FACTOR_BP
        } else {
            u32::try_from(message.holiday_factor_bp).unwrap_or(0)
        };
        v.check(
            (demand::MIN_FACTOR_BP..=demand::MAX_FACTOR_BP).contains(&factor),
            "holiday_factor_bp",
            "must be 5000..=30000 (0.5–3.0), or 0 for neutral",
        );
        let sku = sku(&message.product, "product");
        v.into_result()?;
        let sku = sku?;
        caller.require(access::PLANNERS)?;
        let estimate = demand::estimate(&DemandInputs {
            last_year_same_month_cartons: last_year,
            growth_forecast_cartons: growth,
            holiday_factor_bp: factor,
        })
        .map_err(|e| ServiceError::invalid_field("holiday_factor_bp", e.to_string()))?;
        let mut tx = self.pool.begin().await?;
        let key = match begin_idempotent(&mut tx, &caller, &message.request_id, "EstimateDemand", &message)
            .await?
        {
            Ok(key) => key,
            Err(replay) => return Ok(replay),
        };
        if store::product(&mut tx, sku).await?.is_none() {
            return Err(ServiceError::not_found(message.product.clone()));
        }
        let row = DemandRow {
            sku: sku.to_string(),
            month: message.month.clone(),
            last_year_cartons: message.last_year_same_month_cartons,
            growth_cartons: message.growth_forecast_cartons,
            holiday_factor_bp: i32::try_from(factor).unwrap_or(0),
            cartons: i64::try_from(estimate.cartons).unwrap_or(i64::MAX),
            explanation: estimate.explanation,
            estimated_by: caller.sub.clone(),
            updated_at: self.clock.now(),
        };
        store::save_demand(&mut tx, &row).await?;
        let reply = row.to_wire();
        key.complete(&mut tx, &reply).await?;
        tx.commit().await?;
        Ok(reply)
    }

    pub(super) async fn set_policy(
        &self,
        caller: Caller,
        message: SetPolicyRequest,
    ) -> Result<Policy, ServiceError> {
        let mut v = Violations::new();
        v.request_id(&message.request_id);
        v.into_result()?;
        let policy = message.policy.clone().unwrap_or_default();
        let sku = sku(&policy.product, "policy.product")?;
        let body = policy_from_wire(&policy)?;
        caller.require(access::PLANNERS)?;
        let mut tx = self.pool.begin().await?;
        let key = match begin_idempotent(&mut tx, &caller, &message.request_id, "SetPolicy", &message).await?
        {
            Ok(key) => key,
            Err(replay) => return Ok(replay),
        };
        let product = store::product(&mut tx, sku)
            .await?
            .ok_or_else(|| ServiceError::not_found(policy.product.clone()))?;
        if !product.scarce {
            return Err(ServiceError::failed_precondition(
                "NOT_SCARCE",
                format!("{} is not rationed; mark it scarce first", policy.product),
            ));
        }
        let row = store::set_policy(&mut tx, sku, &body, &caller.sub, self.clock.now()).await?;
        let reply = policy_to_wire(&row);
        key.complete(&mut tx, &reply).await?;
        tx.commit().await?;
        Ok(reply)
    }

    pub(super) async fn get_policy(
        &self,
        caller: Caller,
        message: GetPolicyRequest,
    ) -> Result<Policy, ServiceError> {
        let sku = sku(&message.product, "product")?;
        caller.require(access::PLAN_READERS)?;
        let mut conn = self.pool.acquire().await?;
        store::policy(&mut conn, sku)
            .await?
            .map(|p| policy_to_wire(&p))
            .ok_or_else(|| ServiceError::not_found(format!("{}/policy", message.product)))
    }
}

/// Cycles named in requests, for the other API modules.
pub(super) async fn cycle_window(
    conn: &mut sqlx::PgConnection,
    id: CycleId,
) -> Result<CycleWindow, ServiceError> {
    store::cycle(conn, id).await
}
