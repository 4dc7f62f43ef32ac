//! Scoring RPCs (DOMAIN.md "Scoring and classes"): the rulebook, the ledger of
//! points the four serving roles record, and scorecards. Only the roles a rule
//! names may record it, never more often per period than its cap; cumulative
//! points give the class and its rebate, and every class change goes out as
//! `StandingChanged`.

use chrono::{DateTime, Utc};
use distnet_platform::ServiceError;
use distnet_platform::auth::{Caller, Role};
use distnet_platform::validate::{Violations, parse_name};
use distnet_proto::accreditation::v1::*;
use distnet_proto::events::v1::StandingChanged;
use sqlx::PgConnection;

use super::{AccreditationApi, begin_idempotent, known_customer};
use crate::domain::access::{self, Subject};
use crate::domain::scoring::{
    self as rules, Dimension as RuleDimension, RecordDecision, Rulebook as RuleSet, SERVING_ROLES,
};
use crate::store::scoring::{self as ledger, ScoreEventRow, StoredRulebook};
use crate::store::{self, CachedCustomer};

/// Everyone on staff reads the rulebook (recorders need to know its items);
/// retailers see their scorecard instead.
pub(super) const RULEBOOK_READERS: &[Role] = &[
    Role::Admin,
    Role::Service,
    Role::AllocationPlanner,
    Role::Dispatcher,
    Role::CustomerManager,
    Role::CallCenterAgent,
    Role::MarketInspector,
    Role::Driver,
];
/// The marketing office keeps the handbook.
pub(super) const RULEBOOK_EDITORS: &[Role] = &[Role::Admin];
/// More items than any handbook needs; bounds the request.
const MAX_RULES: usize = 200;

/// Whether a serving role works this retailer: its customer manager (owner or
/// area), and the call-center agents, inspectors and drivers of its area.
fn serves(caller: &Caller, customer: &CachedCustomer) -> bool {
    match caller.role {
        Role::CustomerManager => customer.owner_id == caller.sub || caller.has_area(&customer.area_id),
        Role::CallCenterAgent | Role::MarketInspector | Role::Driver => caller.has_area(&customer.area_id),
        _ => false,
    }
}

fn role_not_allowed(rule: &str, role: Role) -> ServiceError {
    ServiceError::new(
        tonic::Code::PermissionDenied,
        "ROLE_NOT_ALLOWED_BY_RULE",
        format!("rule {rule} is not recorded by {role}"),
    )
    .with_metadata("rule", rule)
    .with_metadata("role", role.as_str())
}

/// The field a rulebook problem concerns, as named in the request.
fn wire_field(domain_path: &str) -> String {
    let field = match domain_path {
        "class_thresholds.special" => "special_threshold".to_owned(),
        "class_thresholds.key" => "key_threshold".to_owned(),
        "rebates.special_bp" => "special_rebate_bp".to_owned(),
        "rebates.key_bp" => "key_rebate_bp".to_owned(),
        "rebates.general_bp" => "general_rebate_bp".to_owned(),
        path => path.replacen(".recorders", ".recorder_roles", 1),
    };
    format!("rulebook.{field}")
}

/// Reads a proposed rulebook and checks it with the rulebook's own rules; every
/// bad field is reported once, by its request path.
fn proposed_rulebook(wire: &Rulebook) -> Result<RuleSet, ServiceError> {
    let mut problems: Vec<(String, String)> = Vec::new();
    if wire.rules.len() > MAX_RULES {
        problems.push(("rules".into(), format!("at most {MAX_RULES} rules")));
    }
    let mut non_negative = |value: i32, field: String| {
        u32::try_from(value).unwrap_or_else(|_| {
            problems.push((field, "must not be negative".into()));
            0
        })
    };
    let caps: Vec<u32> = (wire.rules.iter().enumerate())
        .map(|(i, rule)| non_negative(rule.cap_per_period, format!("rules[{i}].cap_per_period")))
        .collect();
    let special_bp = non_negative(wire.special_rebate_bp, "rebates.special_bp".into());
    let key_bp = non_negative(wire.key_rebate_bp, "rebates.key_bp".into());
    let general_bp = non_negative(wire.general_rebate_bp, "rebates.general_bp".into());
    let mut rules = Vec::with_capacity(wire.rules.len());
    for ((i, rule), cap_per_period) in wire.rules.iter().enumerate().zip(caps) {
        let dimension = ledger::dimension_from_code(rule.dimension).unwrap_or_else(|| {
            problems.push((
                format!("rules[{i}].dimension"),
                "must be LAW_ABIDANCE, COOPERATION, CONSTRUCTIVENESS or GROWTH".into(),
            ));
            RuleDimension::LawAbidance
        });
        // An unknown name keeps its place as a role that never records, so that the
        // rulebook's own checks still point at the right index.
        let recorders = (rule.recorder_roles.iter().enumerate())
            .map(|(j, name)| {
                name.parse::<Role>().unwrap_or_else(|_| {
                    problems.push((
                        format!("rules[{i}].recorders[{j}]"),
                        format!("unknown role `{name}`"),
                    ));
                    Role::Retailer
                })
            })
            .collect();
        if rule.title.chars().any(char::is_control) {
            problems.push((
                format!("rules[{i}].title"),
                "must not contain control characters".into(),
            ));
        }
        rules.push(rules::ScoreRule {
            code: rule.code.clone(),
            title: rule.title.clone(),
            dimension,
            recorders,
            points: rule.points,
            cap_per_period,
        });
    }
    let rulebook = RuleSet {
        version: wire.version,
        rules,
        class_thresholds: rules::ClassThresholds {
            special: wire.special_threshold,
            key: wire.key_threshold,
        },
        rebates: rules::Rebates {
            special_bp,
            key_bp,
            general_bp,
        },
    };
    if let Err(found) = rules::validate_rulebook(&rulebook) {
        for (field, description) in found {
            if !problems.iter().any(|(seen, _)| *seen == field) {
                problems.push((field, description));
            }
        }
    }
    let mut v = Violations::new();
    for (field, description) in problems {
        v.add(wire_field(&field), description);
    }
    v.into_result()?;
    Ok(rulebook)
}

impl AccreditationApi {
    pub(super) async fn rulebook(
        &self,
        caller: Caller,
        _request: GetRulebookRequest,
    ) -> Result<Rulebook, ServiceError> {
        caller.require(RULEBOOK_READERS)?;
        let mut conn = self.pool.acquire().await?;
        Ok(ledger::current_rulebook(&mut conn).await?.to_proto())
    }

    /// Stores the next version of the rulebook. When its thresholds or rebates
    /// change, every scored retailer is classified again.
    pub(super) async fn update_rulebook(
        &self,
        caller: Caller,
        request: UpdateRulebookRequest,
    ) -> Result<Rulebook, ServiceError> {
        caller.require(RULEBOOK_EDITORS)?;
        let mut v = Violations::new();
        v.request_id(&request.request_id);
        v.check(request.rulebook.is_some(), "rulebook", "must be set");
        v.into_result()?;
        let mut proposed = proposed_rulebook(&request.rulebook.clone().unwrap_or_default())?;
        let now = self.clock.now();

        let mut tx = self.pool.begin().await?;
        let key = match begin_idempotent(&mut tx, &caller, &request.request_id, "UpdateRulebook", &request)
            .await?
        {
            Ok(key) => key,
            Err(replay) => return Ok(replay),
        };
        ledger::lock_rulebook(&mut tx, true).await?;
        let current = ledger::current_rulebook(&mut tx).await?.rulebook;
        if proposed.version != current.version {
            return Err(ServiceError::stale_etag("rulebook")
                .with_metadata("current_version", current.version.to_string()));
        }
        proposed.version = current.version.saturating_add(1);
        ledger::insert_rulebook(&mut tx, &proposed, &caller.sub, now).await?;
        if proposed.class_thresholds != current.class_thresholds || proposed.rebates != current.rebates {
            self.reclassify_all(&mut tx, &proposed, now).await?;
        }
        let stored = StoredRulebook {
            rulebook: proposed,
            updated_by: caller.sub.clone(),
            updated_at: Some(now),
        }
        .to_proto();
        key.complete(&mut tx, &stored).await?;
        tx.commit().await?;
        Ok(stored)
    }

    /// Classes follow from cumulative points by the rulebook's thresholds; the
    /// changed standings go out together.
    async fn reclassify_all(
        &self,
        tx: &mut PgConnection,
        rulebook: &RuleSet,
        now: DateTime<Utc>,
    ) -> Result<(), ServiceError> {
        let mut changed = Vec::new();
        for scored in ledger::scored_customers(tx).await? {
            let standing = classify(
                tx,
                &scored.customer_id,
                &scored.area_id,
                scored.cumulative_points,
                rulebook,
                now,
            )
            .await?;
            changed.extend(standing.map(|standing| StandingChanged {
                standing: Some(standing),
            }));
        }
        let aggregates: Vec<String> = changed
            .iter()
            .map(|event| {
                event
                    .standing
                    .as_ref()
                    .map(|s| s.customer.clone())
                    .unwrap_or_default()
            })
            .collect();
        self.outbox
            .publish_all(tx, aggregates.iter().map(String::as_str).zip(changed.iter()))
            .await
    }

    /// Records one scoring item for a retailer: only by a role the rule names, for
    /// a retailer the caller serves, and at most the rule's cap per period.
    pub(super) async fn record_score_event(
        &self,
        caller: Caller,
        request: RecordScoreEventRequest,
    ) -> Result<ScoreEvent, ServiceError> {
        caller.require(&SERVING_ROLES)?;
        let mut v = Violations::new();
        v.request_id(&request.request_id);
        v.non_empty(&request.rule_code, "rule_code");
        v.text(&request.rule_code, "rule_code", rules::MAX_CODE_LEN);
        v.text(&request.note, "note", 2000);
        v.into_result()?;
        let customer_id = parse_name(&request.customer, "customers", "customer")?.to_string();
        let now = self.clock.now();

        let mut tx = self.pool.begin().await?;
        let key = match begin_idempotent(
            &mut tx,
            &caller,
            &request.request_id,
            "RecordScoreEvent",
            &request,
        )
        .await?
        {
            Ok(key) => key,
            Err(replay) => return Ok(replay),
        };
        ledger::lock_rulebook(&mut tx, false).await?;
        let rulebook = ledger::current_rulebook(&mut tx).await?.rulebook;
        let rule = rulebook.rule(&request.rule_code).ok_or_else(|| {
            ServiceError::invalid_field(
                "rule_code",
                format!(
                    "no rule {} in rulebook version {}",
                    request.rule_code, rulebook.version
                ),
            )
        })?;
        if !rule.recorders.contains(&caller.role) {
            return Err(role_not_allowed(&rule.code, caller.role));
        }
        let customer = known_customer(&mut tx, &customer_id).await?;
        if !serves(&caller, &customer) {
            return Err(ServiceError::not_found(&request.customer));
        }
        let period = rules::period_of(now.date_naive());
        ledger::lock_ledger(&mut tx, &customer_id).await?;
        let already = ledger::times_recorded(&mut tx, &customer_id, &rule.code, &period).await?;
        match rules::may_record(rule, caller.role, u32::try_from(already).unwrap_or(u32::MAX)) {
            RecordDecision::Allowed => {}
            RecordDecision::RoleNotAllowed => return Err(role_not_allowed(&rule.code, caller.role)),
            RecordDecision::CapReached { cap } => {
                return Err(ServiceError::failed_precondition(
                    "SCORE_CAP_REACHED",
                    format!(
                        "{} already got {} {cap} times in {period}",
                        request.customer, rule.code
                    ),
                )
                .with_metadata("cap", cap.to_string())
                .with_metadata("rule", rule.code.clone())
                .with_metadata("period", period));
            }
        }
        let event = ScoreEventRow {
            id: format!("s-{}", uuid::Uuid::now_v7().simple()),
            customer_id: customer_id.clone(),
            rule_code: rule.code.clone(),
            dimension: ledger::dimension_code(rule.dimension),
            points: rule.points,
            period,
            recorded_by: caller.sub.clone(),
            recorder_role: caller.role.as_str().to_owned(),
            rulebook_version: rulebook.version,
            note: request.note.clone(),
            recorded_at: now,
        };
        ledger::insert_event(&mut tx, &event).await?;
        let cumulative = ledger::cumulative_points(&mut tx, &customer_id).await?;
        let standing = classify(
            &mut tx,
            &customer_id,
            &customer.area_id,
            cumulative,
            &rulebook,
            now,
        )
        .await?;
        self.publish_standing(&mut tx, standing).await?;
        let reply = event.to_proto();
        key.complete(&mut tx, &reply).await?;
        tx.commit().await?;
        Ok(reply)
    }

    /// A retailer's card for a period (the current month by default): points per
    /// dimension, and the class and rebate its cumulative points give it.
    pub(super) async fn scorecard(
        &self,
        caller: Caller,
        request: GetScorecardRequest,
    ) -> Result<Scorecard, ServiceError> {
        caller.require(access::READERS)?;
        let customer_id = parse_name(&request.customer, "customers", "customer")?;
        let period = if request.period.is_empty() {
            rules::period_of(self.clock.now().date_naive())
        } else if rules::parse_period(&request.period).is_some() {
            request.period.clone()
        } else {
            return Err(ServiceError::invalid_field(
                "period",
                "must be a month, `YYYY-MM`",
            ));
        };
        // One snapshot, so the period's points and the cumulative ones agree.
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        let customer = store::customer(&mut tx, customer_id)
            .await?
            .filter(|c| {
                access::in_scope(
                    &caller,
                    Subject {
                        customer_id,
                        area_id: &c.area_id,
                        owner_id: Some(&c.owner_id),
                    },
                )
            })
            .ok_or_else(|| ServiceError::not_found(&request.customer))?;
        let rulebook = ledger::current_rulebook(&mut tx).await?.rulebook;
        let entries = ledger::period_points(&mut tx, &customer.customer_id, &period).await?;
        let cumulative = ledger::cumulative_points(&mut tx, &customer.customer_id).await?;
        tx.commit().await?;
        let card = rules::scorecard(&entries, cumulative, &rulebook);
        Ok(Scorecard {
            customer: request.customer.clone(),
            period,
            law_abidance: card.per_dimension.law_abidance,
            cooperation: card.per_dimension.cooperation,
            constructiveness: card.per_dimension.constructiveness,
            growth: card.per_dimension.growth,
            period_total: card.total,
            cumulative_points: cumulative,
            customer_class: i32::from(ledger::class_code(card.class)),
            rebate_bp: i32::try_from(card.rebate_bp).unwrap_or(i32::MAX),
        })
    }
}

/// Sets the class and rebate that `cumulative_points` give under `rulebook`;
/// `Some` when the standing changed.
async fn classify(
    tx: &mut PgConnection,
    customer_id: &str,
    area_id: &str,
    cumulative_points: i64,
    rulebook: &RuleSet,
    now: DateTime<Utc>,
) -> Result<Option<Standing>, ServiceError> {
    let class = rules::classify(cumulative_points, &rulebook.class_thresholds);
    let rebate_bp = i32::try_from(rules::rebate_bp(class, &rulebook.rebates)).unwrap_or(i32::MAX);
    store::set_class_standing(
        tx,
        customer_id,
        area_id,
        ledger::class_code(class),
        rebate_bp,
        now,
    )
    .await
}

/// The handbook rule that scores a violation of `violation_type`.
fn violation_rule(violation_type: ViolationType) -> &'static str {
    match violation_type {
        ViolationType::Counterfeit | ViolationType::SmuggledGoods => "COUNTERFEIT_FOUND",
        ViolationType::OutOfChannelPurchase => "OUT_OF_CHANNEL_PURCHASE",
        ViolationType::SaleToMinors => "SALE_TO_MINORS",
        ViolationType::Price | ViolationType::Unspecified => "PRICE_VIOLATION",
    }
}

/// A recorded violation as the scoring ledger sees it.
pub(super) struct ViolationDeduction<'a> {
    pub customer_id: &'a str,
    pub area_id: &'a str,
    pub violation_type: ViolationType,
    /// Used when the current rulebook has no rule for the type.
    pub fallback_points: i32,
    pub recorder: &'a Caller,
    pub note: &'a str,
    pub now: DateTime<Utc>,
}

impl AccreditationApi {
    /// A violation deducts law-abidance points (DOMAIN.md: violations are scored
    /// on law-abidance): the handbook rule for its type, recorded by the
    /// inspector's authority — no recorder or cap check, a violation always
    /// counts — then the class follows the new cumulative points.
    pub(super) async fn deduct_for_violation(
        &self,
        tx: &mut PgConnection,
        violation: ViolationDeduction<'_>,
    ) -> Result<(), ServiceError> {
        ledger::lock_rulebook(tx, false).await?;
        let rulebook = ledger::current_rulebook(tx).await?.rulebook;
        let code = violation_rule(violation.violation_type);
        let points = rulebook
            .rule(code)
            .map(|rule| -rule.points.abs())
            .unwrap_or(-violation.fallback_points.abs());
        ledger::lock_ledger(tx, violation.customer_id).await?;
        let event = ScoreEventRow {
            id: format!("s-{}", uuid::Uuid::now_v7().simple()),
            customer_id: violation.customer_id.to_string(),
            rule_code: code.to_string(),
            dimension: ledger::dimension_code(RuleDimension::LawAbidance),
            points,
            period: rules::period_of(violation.now.date_naive()),
            recorded_by: violation.recorder.sub.clone(),
            recorder_role: violation.recorder.role.as_str().to_owned(),
            rulebook_version: rulebook.version,
            note: violation.note.to_string(),
            recorded_at: violation.now,
        };
        ledger::insert_event(tx, &event).await?;
        let cumulative = ledger::cumulative_points(tx, violation.customer_id).await?;
        let standing = classify(
            tx,
            violation.customer_id,
            violation.area_id,
            cumulative,
            &rulebook,
            violation.now,
        )
        .await?;
        self.publish_standing(tx, standing).await
    }
}
