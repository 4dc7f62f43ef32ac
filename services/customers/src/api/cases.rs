//! Service cases: OpenCase, GetCase, TransferCase, ResolveCase, RecordCallback,
//! CloseCase, ListCases, GetCaseStats, and the sweep that escalates overdue cases.

use chrono::{DateTime, NaiveDate, Utc};
use distnet_platform::ServiceError;
use distnet_platform::auth::{Caller, Role};
use distnet_platform::events::Outbox;
use distnet_platform::idempotency::{self, Claim};
use distnet_platform::pagination;
use distnet_platform::validate::{Violations, is_valid_id, parse_name};
use distnet_proto::customers::v1::{
    Case, CaseAction, CaseCategory, CaseStats, CaseStatus, CategoryStats, Channel, CloseCaseRequest,
    GetCaseRequest, GetCaseStatsRequest, ListCasesRequest, ListCasesResponse, OpenCaseRequest,
    RecordCallbackRequest, ResolveCaseRequest, TransferCaseRequest,
};
use distnet_proto::events::v1::CaseEscalated;
use prost::Message;
use sqlx::{PgConnection, PgPool};

use super::CustomersApi;
use crate::domain::access::{self, Holder};
use crate::domain::cases::{self as rules, Action, Timing};
use crate::store::{self, cases};

/// Roles that open cases: the staff who take complaints, face to face or by phone.
pub const CASE_OPENERS: &[Role] = &[
    Role::Admin,
    Role::CustomerManager,
    Role::CallCenterAgent,
    Role::MarketInspector,
];
/// Roles that act on cases (transfer, resolve, call back, close); the case must also
/// be theirs (first-contact owner or current handler), unless they are admins.
pub const CASE_HANDLERS: &[Role] = CASE_OPENERS;
/// Roles that read cases (a retailer only its own).
pub const CASE_READERS: &[Role] = &[
    Role::Admin,
    Role::Service,
    Role::CustomerManager,
    Role::CallCenterAgent,
    Role::MarketInspector,
    Role::Retailer,
];
/// Roles that read monthly statistics (staff: of their areas only).
pub const CASE_STATS_READERS: &[Role] = CASE_OPENERS;

/// Cases escalated per sweep transaction.
const SWEEP_BATCH: i64 = 200;

/// Whether `caller` may see a case: staff who opened or handle it, and whoever may
/// read its customer.
fn sees_case(caller: &Caller, row: &cases::CaseRow, customer_owner: &str) -> bool {
    let staff_of_case =
        caller.role != Role::Retailer && (caller.sub == row.first_contact_owner || caller.sub == row.handler);
    staff_of_case
        || access::may_read(
            caller,
            Holder {
                customer_id: &row.customer_id,
                owner_id: customer_owner,
                area_id: &row.area_id,
            },
        )
}

/// Whether `caller` may act on the case: admins, its first-contact owner, its handler.
fn acts_on_case(caller: &Caller, row: &cases::CaseRow) -> bool {
    caller.role == Role::Admin || caller.sub == row.first_contact_owner || caller.sub == row.handler
}

fn staff_id(v: &mut Violations, value: &str, field: &str) {
    v.check(
        is_valid_staff_id(value),
        field,
        "must be a staff id: 1..63 of [A-Za-z0-9._-]",
    );
}

fn is_valid_staff_id(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 63
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

impl CustomersApi {
    /// A case row the caller may see (NOT_FOUND otherwise), locked when `lock`.
    async fn visible_case(
        &self,
        tx: &mut PgConnection,
        caller: &Caller,
        name: &str,
        lock: bool,
    ) -> Result<cases::CaseRow, ServiceError> {
        let id = parse_name(name, "cases", "name")?;
        let row = cases::get_row(tx, id, lock)
            .await?
            .ok_or_else(|| ServiceError::not_found(name))?;
        let owner = store::owner_of(tx, &row.customer_id).await?.unwrap_or_default();
        if sees_case(caller, &row, &owner) {
            Ok(row)
        } else {
            Err(ServiceError::not_found(name))
        }
    }

    async fn load_case(&self, tx: &mut PgConnection, id: &str) -> Result<Case, ServiceError> {
        let row = cases::get_row(tx, id, false)
            .await?
            .ok_or_else(|| ServiceError::not_found(format!("cases/{id}")))?;
        cases::with_history(tx, vec![row])
            .await?
            .pop()
            .ok_or_else(|| ServiceError::not_found(format!("cases/{id}")))
    }

    pub(super) async fn open_case(
        &self,
        caller: Caller,
        request: OpenCaseRequest,
    ) -> Result<Case, ServiceError> {
        caller.require(CASE_OPENERS)?;
        let mut v = Violations::new();
        v.request_id(&request.request_id);
        v.known_enum::<CaseCategory>(request.category, "category");
        v.check(request.category != 0, "category", "must be set");
        v.known_enum::<Channel>(request.channel, "channel");
        v.check(request.channel != 0, "channel", "must be set");
        v.non_empty(&request.description, "description");
        v.text(&request.description, "description", 2000);
        v.into_result()?;
        let customer_id = parse_name(&request.customer, "customers", "customer")?.to_string();
        let category = CaseCategory::try_from(request.category).unwrap_or(CaseCategory::Other);

        let mut tx = self.pool.begin().await?;
        let request_key = (request.request_id.as_str(), "OpenCase", &request);
        let (key, customer) =
            match super::claim_customer(&mut tx, &caller, request_key, &request.customer, &customer_id)
                .await?
            {
                Ok(fresh) => fresh,
                Err(replay) => return Ok(replay),
            };
        let class = cases::customer_class(&mut tx, &customer_id).await?;
        let (respond, resolve) = rules::deadlines(&self.settings.case_deadlines, category, &class);
        let now = self.clock.now();
        let id = format!("case-{}", uuid::Uuid::now_v7().simple());
        cases::insert(
            &mut tx,
            &cases::NewCase {
                id: &id,
                customer_id: &customer_id,
                area_id: &customer.area_id,
                customer_class: &class,
                category: request.category,
                channel: request.channel,
                description: &request.description,
                owner: &caller.sub,
                open_time: now,
                respond_by: now + respond,
                resolve_by: now + resolve,
            },
        )
        .await?;
        let response = self.load_case(&mut tx, &id).await?;
        key.complete(&mut tx, &response).await?;
        tx.commit().await?;
        Ok(response)
    }

    pub(super) async fn get_case(
        &self,
        caller: Caller,
        request: GetCaseRequest,
    ) -> Result<Case, ServiceError> {
        caller.require(CASE_READERS)?;
        let mut conn = self.pool.acquire().await?;
        let row = self
            .visible_case(&mut conn, &caller, &request.name, false)
            .await?;
        let name = request.name;
        cases::with_history(&mut conn, vec![row])
            .await?
            .pop()
            .ok_or_else(|| ServiceError::not_found(name))
    }

    /// The shared path of the four case actions: validate, claim the request id,
    /// lock the case, check scope and state, apply, record the step, reply.
    async fn act<'r, R: Message>(
        &self,
        caller: &Caller,
        method: &'static str,
        request: &R,
        (request_id, name): (&str, &str),
        action: Action,
        change: impl FnOnce(&cases::CaseRow, DateTime<Utc>) -> (cases::Change<'r>, (String, String, String)),
    ) -> Result<Case, ServiceError> {
        let mut tx = self.pool.begin().await?;
        let key = match idempotency::claim(&mut tx, caller, request_id, method, request).await? {
            Claim::Replay(response) => return Ok(response),
            Claim::Fresh(key) => key,
        };
        let row = self.visible_case(&mut tx, caller, name, true).await?;
        if !acts_on_case(caller, &row) {
            return Err(ServiceError::permission_denied(format!(
                "{name} is neither opened nor handled by {}",
                caller.sub
            )));
        }
        let next = rules::transition(row.status(), row.called_back(), action)
            .map_err(|why| ServiceError::failed_precondition("CASE_STATE", format!("{name}: {why}")))?;
        let now = self.clock.now();
        let (mut change, (from, to, note)) = change(&row, now);
        change.status = next;
        cases::apply(&mut tx, &row.id, &change).await?;
        let step = match action {
            Action::Transfer => CaseAction::Transferred,
            Action::Resolve => CaseAction::Resolved,
            Action::Callback { .. } => CaseAction::CalledBack,
            Action::Close => CaseAction::Closed,
        };
        cases::add_step(&mut tx, &row.id, step, &caller.sub, now, (&from, &to), &note).await?;
        let response = self.load_case(&mut tx, &row.id).await?;
        key.complete(&mut tx, &response).await?;
        tx.commit().await?;
        Ok(response)
    }

    pub(super) async fn transfer_case(
        &self,
        caller: Caller,
        request: TransferCaseRequest,
    ) -> Result<Case, ServiceError> {
        caller.require(CASE_HANDLERS)?;
        let mut v = Violations::new();
        v.request_id(&request.request_id);
        staff_id(&mut v, &request.to_handler, "to_handler");
        v.non_empty(&request.reason, "reason");
        v.text(&request.reason, "reason", 500);
        v.into_result()?;
        let to = request.to_handler.clone();
        let reason = request.reason.clone();
        self.act(
            &caller,
            "TransferCase",
            &request,
            (&request.request_id, &request.name),
            Action::Transfer,
            |row, now| {
                (
                    cases::Change {
                        status: CaseStatus::Open,
                        handler: Some(&request.to_handler),
                        first_response: Some(now),
                        resolution: None,
                        callback: None,
                        close_time: None,
                    },
                    (row.handler.clone(), to, reason),
                )
            },
        )
        .await
    }

    pub(super) async fn resolve_case(
        &self,
        caller: Caller,
        request: ResolveCaseRequest,
    ) -> Result<Case, ServiceError> {
        caller.require(CASE_HANDLERS)?;
        let mut v = Violations::new();
        v.request_id(&request.request_id);
        v.non_empty(&request.resolution, "resolution");
        v.text(&request.resolution, "resolution", 2000);
        v.into_result()?;
        let note = request.resolution.clone();
        self.act(
            &caller,
            "ResolveCase",
            &request,
            (&request.request_id, &request.name),
            Action::Resolve,
            |_, now| {
                (
                    cases::Change {
                        status: CaseStatus::Resolved,
                        handler: None,
                        first_response: Some(now),
                        resolution: Some((&request.resolution, now)),
                        callback: None,
                        close_time: None,
                    },
                    (String::new(), String::new(), note),
                )
            },
        )
        .await
    }

    pub(super) async fn record_callback(
        &self,
        caller: Caller,
        request: RecordCallbackRequest,
    ) -> Result<Case, ServiceError> {
        caller.require(CASE_HANDLERS)?;
        let mut v = Violations::new();
        v.request_id(&request.request_id);
        v.non_empty(&request.outcome, "outcome");
        v.text(&request.outcome, "outcome", 1000);
        v.into_result()?;
        let note = format!(
            "{}{}",
            if request.satisfied {
                "satisfied: "
            } else {
                "not satisfied, reopened: "
            },
            request.outcome
        );
        let by = caller.sub.clone();
        self.act(
            &caller,
            "RecordCallback",
            &request,
            (&request.request_id, &request.name),
            Action::Callback {
                satisfied: request.satisfied,
            },
            |_, now| {
                (
                    cases::Change {
                        status: CaseStatus::Resolved,
                        handler: None,
                        first_response: None,
                        resolution: None,
                        callback: Some((&request.outcome, request.satisfied, &by, now)),
                        close_time: None,
                    },
                    (String::new(), String::new(), note),
                )
            },
        )
        .await
    }

    pub(super) async fn close_case(
        &self,
        caller: Caller,
        request: CloseCaseRequest,
    ) -> Result<Case, ServiceError> {
        caller.require(CASE_HANDLERS)?;
        let mut v = Violations::new();
        v.request_id(&request.request_id);
        v.into_result()?;
        self.act(
            &caller,
            "CloseCase",
            &request,
            (&request.request_id, &request.name),
            Action::Close,
            |_, now| {
                (
                    cases::Change {
                        status: CaseStatus::Closed,
                        handler: None,
                        first_response: None,
                        resolution: None,
                        callback: None,
                        close_time: Some(now),
                    },
                    (String::new(), String::new(), String::new()),
                )
            },
        )
        .await
    }

    pub(super) async fn list_cases(
        &self,
        caller: Caller,
        request: ListCasesRequest,
    ) -> Result<ListCasesResponse, ServiceError> {
        caller.require(CASE_READERS)?;
        let mut v = Violations::new();
        v.check(request.page_size >= 0, "page_size", "must not be negative");
        v.known_enum::<CaseStatus>(request.status, "status");
        if !request.owner.is_empty() {
            staff_id(&mut v, &request.owner, "owner");
        }
        v.into_result()?;
        let customer_id = if request.customer.is_empty() {
            String::new()
        } else {
            parse_name(&request.customer, "customers", "customer")?.to_string()
        };
        let fingerprint = format!(
            "cases|{}|{}|{}|{}",
            request.status, request.owner, request.overdue_only, request.customer
        );
        let page = pagination::read(request.page_size, &request.page_token, &fingerprint)?;
        let filter = cases::CaseFilter {
            status: request.status,
            owner: request.owner.clone(),
            customer_id,
            overdue_at: request.overdue_only.then(|| self.clock.now()),
        };
        let rows = cases::list(
            &self.pool,
            &filter,
            &access::visibility(&caller),
            &caller.sub,
            &page,
        )
        .await?;
        let (cases, next_page_token) = pagination::finish(rows, &page, &fingerprint, |c| {
            let open = store::time_of(&c.open_time)
                .map(|t| t.to_rfc3339())
                .unwrap_or_default();
            format!("{open}|{}", c.name.strip_prefix("cases/").unwrap_or(&c.name))
        });
        Ok(ListCasesResponse {
            cases,
            next_page_token,
        })
    }

    pub(super) async fn case_stats(
        &self,
        caller: Caller,
        request: GetCaseStatsRequest,
    ) -> Result<CaseStats, ServiceError> {
        caller.require(CASE_STATS_READERS)?;
        let first = NaiveDate::parse_from_str(&format!("{}-01", request.month), "%Y-%m-%d")
            .ok()
            .filter(|_| request.month.len() == 7)
            .ok_or_else(|| ServiceError::invalid_field("month", "must be YYYY-MM"))?;
        if !request.area_id.is_empty() && !is_valid_id(&request.area_id) {
            return Err(ServiceError::invalid_field(
                "area_id",
                "must be 1..63 of [a-z0-9-]",
            ));
        }
        let areas = match caller.role {
            Role::Admin => None,
            _ => {
                if !request.area_id.is_empty() && !caller.has_area(&request.area_id) {
                    return Err(ServiceError::permission_denied(format!(
                        "area {} is not one of yours",
                        request.area_id
                    )));
                }
                Some(caller.areas.clone())
            }
        };
        let next = first
            .checked_add_months(chrono::Months::new(1))
            .ok_or_else(|| ServiceError::invalid_field("month", "is out of range"))?;
        let (from, to) = (
            self.local_midnight(first, "month")?,
            self.local_midnight(next, "month")?,
        );
        let area = (!request.area_id.is_empty()).then_some(request.area_id.as_str());
        let rows = cases::stats(&self.pool, from, to, area, areas.as_deref(), self.clock.now()).await?;
        let mut categories: Vec<CategoryStats> = Vec::new();
        let mut total = CategoryStats::default();
        let mut hours_weighted = 0.0;
        for row in rows {
            let stats = CategoryStats {
                category: i32::from(row.category),
                opened: row.opened,
                resolved: row.resolved,
                closed: row.closed,
                escalated: row.escalated,
                overdue: row.overdue,
                mean_hours_to_resolve: row.mean_hours.unwrap_or(0.0),
                callbacks_satisfied: row.satisfied,
                callbacks_unsatisfied: row.unsatisfied,
            };
            total.opened += stats.opened;
            total.resolved += stats.resolved;
            total.closed += stats.closed;
            total.escalated += stats.escalated;
            total.overdue += stats.overdue;
            total.callbacks_satisfied += stats.callbacks_satisfied;
            total.callbacks_unsatisfied += stats.callbacks_unsatisfied;
            hours_weighted += stats.mean_hours_to_resolve * stats.resolved as f64;
            categories.push(stats);
        }
        if total.resolved > 0 {
            total.mean_hours_to_resolve = hours_weighted / total.resolved as f64;
        }
        categories.push(total);
        Ok(CaseStats {
            month: request.month,
            categories,
        })
    }
}

/// Escalates every case overdue at `now` that is not escalated yet, once: marks it,
/// records the step and publishes `CaseEscalated`, in one transaction per batch.
/// Returns how many were escalated.
pub async fn escalate_overdue(
    pool: &PgPool,
    outbox: &Outbox,
    now: DateTime<Utc>,
) -> Result<usize, ServiceError> {
    let mut escalated = 0;
    loop {
        let mut tx = pool.begin().await?;
        let due = cases::due_for_escalation(&mut tx, now, SWEEP_BATCH).await?;
        if due.is_empty() {
            return Ok(escalated);
        }
        let batch = due.len();
        let mut marked = Vec::with_capacity(batch);
        let mut causes = Vec::with_capacity(batch);
        for mut row in due {
            let timing = Timing {
                respond_by: row.respond_by,
                resolve_by: row.resolve_by,
                first_response: row.first_response_time,
                resolved: row.resolve_time,
            };
            let Some(cause) = rules::overdue(&timing, now) else {
                continue;
            };
            cases::mark_escalated(&mut tx, &row.id, now).await?;
            cases::add_step(
                &mut tx,
                &row.id,
                CaseAction::Escalated,
                "system",
                now,
                (&row.handler, &row.handler),
                cause.as_str(),
            )
            .await?;
            row.escalate_time = Some(now);
            marked.push(row);
            causes.push(cause);
        }
        // The events carry each case with its history, read for the batch at once.
        for (case, cause) in cases::with_history(&mut tx, marked)
            .await?
            .into_iter()
            .zip(causes)
        {
            let event = CaseEscalated {
                case: Some(case.clone()),
                cause: cause.as_str().to_string(),
            };
            outbox.publish(&mut tx, &case.name, &event).await?;
            escalated += 1;
        }
        tx.commit().await?;
        if batch < usize::try_from(SWEEP_BATCH).unwrap_or(usize::MAX) {
            return Ok(escalated);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staff_ids_are_plain() {
        assert!(is_valid_staff_id("cm-0001"));
        assert!(is_valid_staff_id("agent.li_3"));
        assert!(!is_valid_staff_id(""));
        assert!(!is_valid_staff_id("a b"));
        assert!(!is_valid_staff_id(&"x".repeat(64)));
        assert!(!is_valid_staff_id("名字"));
    }
}
