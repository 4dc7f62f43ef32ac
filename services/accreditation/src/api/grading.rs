//! Grading RPCs (DOMAIN.md "Rationing scarce supply"): retailers are graded into
//! tiers by a weighted composite of purchase amount, quantity and score; a grading
//! is computed as a draft, published (locked, effective from a cycle) as the sole
//! basis for rationing, and overridable only with a reason.

use distnet_platform::ServiceError;
use distnet_platform::auth::{Caller, Role};
use distnet_platform::validate::{Violations, parse_name};
use distnet_proto::accreditation::v1::*;
use distnet_proto::events::v1::StandingChanged;

use super::{AccreditationApi, begin_idempotent};
use crate::domain::grading::{self as rules, DEFAULT_TIERS, MAX_TIERS};
use crate::store::grading as grading_store;

/// Planners and admin run, publish and override gradings.
pub(super) const GRADERS: &[Role] = &[Role::AllocationPlanner, Role::Admin];
/// Purchase history comes from admin imports or, later, from order events.
pub(super) const PURCHASE_RECORDERS: &[Role] = &[Role::Admin, Role::Service];
pub(super) const GRADING_READERS: &[Role] = &[
    Role::Admin,
    Role::Service,
    Role::AllocationPlanner,
    Role::Dispatcher,
    Role::CustomerManager,
    Role::CallCenterAgent,
    Role::MarketInspector,
];
pub(super) const ASSIGNMENT_READERS: &[Role] = &[Role::Admin, Role::Service, Role::AllocationPlanner];
const MAX_PURCHASE_RECORDS: usize = 10_000;

fn grading_version(name: &str, field: &str) -> Result<i64, ServiceError> {
    name.strip_prefix("gradings/")
        .and_then(|v| v.parse::<i64>().ok())
        .filter(|v| *v > 0)
        .ok_or_else(|| ServiceError::invalid_field(field, "must be `gradings/{version}`"))
}

fn state_name(state: i32) -> &'static str {
    match GradingState::try_from(state) {
        Ok(GradingState::Draft) => "DRAFT",
        Ok(GradingState::Published) => "PUBLISHED",
        _ => "UNSPECIFIED",
    }
}

impl AccreditationApi {
    pub(super) async fn record_purchases(
        &self,
        caller: Caller,
        request: RecordPurchasesRequest,
    ) -> Result<RecordPurchasesResponse, ServiceError> {
        caller.require(PURCHASE_RECORDERS)?;
        let mut v = Violations::new();
        v.request_id(&request.request_id);
        let month = rules::period_months(&request.period).filter(|m| m.len() == 1);
        v.check(month.is_some(), "period", "must be a month, e.g. 2026-11");
        v.check(
            request.records.len() <= MAX_PURCHASE_RECORDS,
            "records",
            "at most 10000 records per call",
        );
        let mut customers = Vec::with_capacity(request.records.len());
        let mut amounts = Vec::with_capacity(request.records.len());
        let mut cartons = Vec::with_capacity(request.records.len());
        for (i, record) in request.records.iter().enumerate() {
            match parse_name(&record.customer, "customers", &format!("records[{i}].customer")) {
                Ok(id) => customers.push(id.to_string()),
                Err(error) => v.add(format!("records[{i}].customer"), error.message),
            }
            v.check(
                record.amount_fen >= 0,
                &format!("records[{i}].amount_fen"),
                "must not be negative",
            );
            v.check(
                record.cartons >= 0,
                &format!("records[{i}].cartons"),
                "must not be negative",
            );
            amounts.push(record.amount_fen);
            cartons.push(record.cartons);
        }
        let mut unique = customers.clone();
        unique.sort();
        unique.dedup();
        v.check(
            unique.len() == customers.len(),
            "records",
            "a retailer appears twice",
        );
        v.into_result()?;

        let mut tx = self.pool.begin().await?;
        let key = match begin_idempotent(&mut tx, &caller, &request.request_id, "RecordPurchases", &request)
            .await?
        {
            Ok(key) => key,
            Err(replay) => return Ok(replay),
        };
        let recorded =
            grading_store::record_purchases(&mut tx, &request.period, &customers, &amounts, &cartons).await?;
        let response = RecordPurchasesResponse {
            recorded: i32::try_from(recorded).unwrap_or(i32::MAX),
        };
        key.complete(&mut tx, &response).await?;
        tx.commit().await?;
        Ok(response)
    }

    pub(super) async fn run_grading(
        &self,
        caller: Caller,
        request: RunGradingRequest,
    ) -> Result<Grading, ServiceError> {
        caller.require(GRADERS)?;
        let mut v = Violations::new();
        v.request_id(&request.request_id);
        let months = rules::period_months(&request.period);
        v.check(
            months.is_some(),
            "period",
            "must be a month (2026-11) or a quarter (2026-Q4)",
        );
        let weights = match request.weights {
            Some(w) if w.amount_bp != 0 || w.quantity_bp != 0 || w.score_bp != 0 => w,
            // The published practice: 70 % amount, 20 % quantity, 10 % other.
            _ => GradingWeights {
                amount_bp: 7000,
                quantity_bp: 2000,
                score_bp: 1000,
            },
        };
        let domain_weights = rules::GradingWeights {
            amount_bp: u32::try_from(weights.amount_bp).unwrap_or(u32::MAX),
            quantity_bp: u32::try_from(weights.quantity_bp).unwrap_or(u32::MAX),
            score_bp: u32::try_from(weights.score_bp).unwrap_or(u32::MAX),
        };
        if let Err(message) = rules::validate_weights(&domain_weights) {
            v.add("weights", message);
        }
        let tiers = if request.tiers == 0 {
            DEFAULT_TIERS
        } else {
            u32::try_from(request.tiers).unwrap_or(0)
        };
        v.check(
            (1..=MAX_TIERS).contains(&tiers),
            "tiers",
            "must be between 1 and 100 (0 means 30)",
        );
        v.into_result()?;
        let months = months.unwrap_or_default();
        let now = self.clock.now();

        let mut tx = self.pool.begin().await?;
        let key =
            match begin_idempotent(&mut tx, &caller, &request.request_id, "RunGrading", &request).await? {
                Ok(key) => key,
                Err(replay) => return Ok(replay),
            };
        let inputs = grading_store::inputs(&mut tx, &months, now).await?;
        let graded = rules::grade(&inputs, &domain_weights, tiers)
            .map_err(|e| ServiceError::failed_precondition("GRADING_INPUT_INVALID", e.to_string()))?;
        let version = grading_store::insert_draft(
            &mut tx,
            &grading_store::NewGrading {
                period: &request.period,
                weights: &weights,
                grading: &graded,
                created_by: &caller.sub,
                now,
            },
        )
        .await?;
        let grading = grading_store::grading(&mut tx, version, false)
            .await?
            .ok_or_else(|| ServiceError::internal("a stored grading went missing"))?;
        key.complete(&mut tx, &grading).await?;
        tx.commit().await?;
        tracing::info!(
            version,
            retailers = graded.retailers.len(),
            tiers,
            "grading drafted"
        );
        Ok(grading)
    }

    pub(super) async fn grading(
        &self,
        caller: Caller,
        request: GetGradingRequest,
    ) -> Result<Grading, ServiceError> {
        caller.require(GRADING_READERS)?;
        let version = grading_version(&request.name, "name")?;
        let mut conn = self.pool.acquire().await?;
        grading_store::grading(&mut conn, version, false)
            .await?
            .ok_or_else(|| ServiceError::not_found(&request.name))
    }

    pub(super) async fn tier_assignments(
        &self,
        caller: Caller,
        request: ListTierAssignmentsRequest,
    ) -> Result<ListTierAssignmentsResponse, ServiceError> {
        caller.require(ASSIGNMENT_READERS)?;
        let version = grading_version(&request.grading, "grading")?;
        if request.tier < 0 {
            return Err(ServiceError::invalid_field("tier", "must not be negative"));
        }
        let fingerprint = format!("{version}|{}", request.tier);
        let page = distnet_platform::pagination::read(request.page_size, &request.page_token, &fingerprint)?;
        let rows = grading_store::assignments(&self.pool, version, request.tier, &page).await?;
        let (assignments, next_page_token) =
            distnet_platform::pagination::finish(rows, &page, &fingerprint, |a| {
                a.customer
                    .strip_prefix("customers/")
                    .unwrap_or_default()
                    .to_string()
            });
        Ok(ListTierAssignmentsResponse {
            assignments,
            next_page_token,
        })
    }

    pub(super) async fn publish_grading(
        &self,
        caller: Caller,
        request: PublishGradingRequest,
    ) -> Result<Grading, ServiceError> {
        caller.require(GRADERS)?;
        let mut v = Violations::new();
        v.request_id(&request.request_id);
        v.check(
            rules::is_cycle_name(&request.effective_cycle),
            "effective_cycle",
            "must be an ISO week, e.g. 2026-W49",
        );
        v.into_result()?;
        let version = grading_version(&request.name, "name")?;
        let now = self.clock.now();

        let mut tx = self.pool.begin().await?;
        let key = match begin_idempotent(&mut tx, &caller, &request.request_id, "PublishGrading", &request)
            .await?
        {
            Ok(key) => key,
            Err(replay) => return Ok(replay),
        };
        // Publications are serialized so that "newest published" stays true.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('gradings:publish'))")
            .execute(&mut *tx)
            .await?;
        let draft = grading_store::grading(&mut tx, version, true)
            .await?
            .ok_or_else(|| ServiceError::not_found(&request.name))?;
        if draft.state != GradingState::Draft as i32 {
            return Err(ServiceError::failed_precondition(
                "GRADING_NOT_DRAFT",
                format!(
                    "{} is {}; only a draft can be published",
                    request.name,
                    state_name(draft.state)
                ),
            )
            .with_metadata("current_state", state_name(draft.state)));
        }
        if let Some(latest) = grading_store::latest_published(&mut tx)
            .await?
            .filter(|l| *l > version)
        {
            return Err(ServiceError::failed_precondition(
                "GRADING_SUPERSEDED",
                format!("gradings/{latest} is newer and already published"),
            ));
        }
        let published =
            grading_store::mark_published(&mut tx, version, &request.effective_cycle, &caller.sub, now)
                .await?;
        let changed = grading_store::apply_tiers_to_standings(&mut tx, version, now).await?;
        let events: Vec<(String, StandingChanged)> = changed
            .into_iter()
            .map(|standing| {
                (
                    standing.customer.clone(),
                    StandingChanged {
                        standing: Some(standing),
                    },
                )
            })
            .collect();
        self.outbox
            .publish_all(
                &mut tx,
                events
                    .iter()
                    .map(|(aggregate, event)| (aggregate.as_str(), event)),
            )
            .await?;
        key.complete(&mut tx, &published).await?;
        tx.commit().await?;
        tracing::info!(version, changed = events.len(), "grading published");
        Ok(published)
    }

    pub(super) async fn override_tier(
        &self,
        caller: Caller,
        request: OverrideTierRequest,
    ) -> Result<TierAssignment, ServiceError> {
        caller.require(GRADERS)?;
        let mut v = Violations::new();
        v.request_id(&request.request_id);
        v.non_empty(&request.reason, "reason");
        v.text(&request.reason, "reason", 500);
        v.into_result()?;
        let version = grading_version(&request.grading, "grading")?;
        let customer_id = parse_name(&request.customer, "customers", "customer")?.to_string();
        let now = self.clock.now();

        let mut tx = self.pool.begin().await?;
        let key =
            match begin_idempotent(&mut tx, &caller, &request.request_id, "OverrideTier", &request).await? {
                Ok(key) => key,
                Err(replay) => return Ok(replay),
            };
        let grading = grading_store::grading(&mut tx, version, true)
            .await?
            .ok_or_else(|| ServiceError::not_found(&request.grading))?;
        if !(1..=grading.tiers).contains(&request.tier) {
            return Err(ServiceError::invalid_field(
                "tier",
                format!("must be between 1 and {}", grading.tiers),
            ));
        }
        let assignment = grading_store::override_assignment(
            &mut tx,
            version,
            &customer_id,
            request.tier,
            &request.reason,
            &caller.sub,
            now,
        )
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("{} in {}", request.customer, request.grading)))?;
        // A published grading is in force: the standing follows the override.
        if grading.state == GradingState::Published as i32
            && grading_store::latest_published(&mut tx).await? == Some(version)
        {
            let standing =
                grading_store::set_standing_tier(&mut tx, &customer_id, request.tier, version, now).await?;
            self.publish_standing(&mut tx, standing).await?;
        }
        tracing::info!(grading = version, customer = %customer_id, tier = request.tier, by = %caller.sub, reason = %request.reason, "tier overridden");
        key.complete(&mut tx, &assignment).await?;
        tx.commit().await?;
        Ok(assignment)
    }
}
