//! Service cases and their steps (tables `cases`, `case_steps`), and the customer
//! classes replicated from accreditation (`customer_standings`).

use chrono::{DateTime, Utc};
use distnet_platform::ServiceError;
use distnet_platform::pagination::Page;
use distnet_proto::customers::v1::{Callback, Case, CaseAction, CaseStatus, CaseStep};
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder};

use super::{ScopeColumns, push_scope, small, timestamp};
use crate::domain::access::Visibility;

const COLUMNS: &str = "c.id, c.customer_id, c.area_id, c.customer_class, c.category, c.channel, \
     c.description, c.status, c.first_contact_owner, c.handler, c.open_time, c.respond_by, \
     c.resolve_by, c.first_response_time, c.resolve_time, c.close_time, c.resolution, \
     c.callback_outcome, c.callback_satisfied, c.callback_by, c.callback_time, c.escalate_time";

#[derive(sqlx::FromRow)]
pub struct CaseRow {
    pub id: String,
    pub customer_id: String,
    pub area_id: String,
    pub customer_class: String,
    pub category: i16,
    pub channel: i16,
    pub description: String,
    pub status: i16,
    pub first_contact_owner: String,
    pub handler: String,
    pub open_time: DateTime<Utc>,
    pub respond_by: DateTime<Utc>,
    pub resolve_by: DateTime<Utc>,
    pub first_response_time: Option<DateTime<Utc>>,
    pub resolve_time: Option<DateTime<Utc>>,
    pub close_time: Option<DateTime<Utc>>,
    pub resolution: String,
    pub callback_outcome: Option<String>,
    pub callback_satisfied: Option<bool>,
    pub callback_by: Option<String>,
    pub callback_time: Option<DateTime<Utc>>,
    pub escalate_time: Option<DateTime<Utc>>,
}

impl CaseRow {
    pub fn status(&self) -> CaseStatus {
        CaseStatus::try_from(i32::from(self.status)).unwrap_or(CaseStatus::Unspecified)
    }

    /// Whether the customer was called back, satisfied, after the latest resolution
    /// (a resolution clears the previous callback; the history keeps it).
    pub fn called_back(&self) -> bool {
        self.resolve_time.is_some() && self.callback_time.is_some() && self.callback_satisfied == Some(true)
    }

    pub fn into_case(self, history: Vec<CaseStep>) -> Case {
        let callback = match (self.callback_outcome, self.callback_time) {
            (Some(outcome), Some(time)) => Some(Callback {
                outcome,
                satisfied: self.callback_satisfied.unwrap_or(false),
                called_by: self.callback_by.unwrap_or_default(),
                time: Some(timestamp(time)),
            }),
            _ => None,
        };
        Case {
            name: format!("cases/{}", self.id),
            customer: format!("customers/{}", self.customer_id),
            category: i32::from(self.category),
            channel: i32::from(self.channel),
            description: self.description,
            status: i32::from(self.status),
            first_contact_owner: self.first_contact_owner,
            handler: self.handler,
            area_id: self.area_id,
            customer_class: self.customer_class,
            open_time: Some(timestamp(self.open_time)),
            respond_by: Some(timestamp(self.respond_by)),
            resolve_by: Some(timestamp(self.resolve_by)),
            first_response_time: self.first_response_time.map(timestamp),
            resolve_time: self.resolve_time.map(timestamp),
            close_time: self.close_time.map(timestamp),
            resolution: self.resolution,
            callback,
            escalated: self.escalate_time.is_some(),
            escalate_time: self.escalate_time.map(timestamp),
            history,
        }
    }
}

#[derive(sqlx::FromRow)]
struct StepRow {
    case_id: String,
    action: i16,
    actor: String,
    time: DateTime<Utc>,
    from_handler: String,
    to_handler: String,
    note: String,
}

impl From<StepRow> for CaseStep {
    fn from(row: StepRow) -> Self {
        CaseStep {
            action: i32::from(row.action),
            actor: row.actor,
            time: Some(timestamp(row.time)),
            from_handler: row.from_handler,
            to_handler: row.to_handler,
            note: row.note,
        }
    }
}

/// The class accreditation last reported for a customer ("" when unknown).
pub async fn customer_class(tx: &mut PgConnection, customer_id: &str) -> Result<String, ServiceError> {
    let class: Option<String> =
        sqlx::query_scalar("SELECT class FROM customer_standings WHERE customer_id = $1")
            .bind(customer_id)
            .fetch_optional(tx)
            .await?;
    Ok(class.unwrap_or_default())
}

/// Records a customer's class from a `StandingChanged` of `version` (older versions
/// than the one stored are ignored).
pub async fn set_customer_class(
    tx: &mut PgConnection,
    customer_id: &str,
    class: &str,
    version: i64,
) -> Result<(), ServiceError> {
    sqlx::query(
        "INSERT INTO customer_standings (customer_id, class, version, updated_at) \
         VALUES ($1, $2, $3, now()) \
         ON CONFLICT (customer_id) DO UPDATE SET class = EXCLUDED.class, version = EXCLUDED.version, \
           updated_at = now() WHERE customer_standings.version < EXCLUDED.version",
    )
    .bind(customer_id)
    .bind(class)
    .bind(version)
    .execute(tx)
    .await?;
    Ok(())
}

/// A new case.
pub struct NewCase<'a> {
    pub id: &'a str,
    pub customer_id: &'a str,
    pub area_id: &'a str,
    pub customer_class: &'a str,
    pub category: i32,
    pub channel: i32,
    pub description: &'a str,
    pub owner: &'a str,
    pub open_time: DateTime<Utc>,
    pub respond_by: DateTime<Utc>,
    pub resolve_by: DateTime<Utc>,
}

pub async fn insert(tx: &mut PgConnection, c: &NewCase<'_>) -> Result<(), ServiceError> {
    sqlx::query(
        "INSERT INTO cases (id, customer_id, area_id, customer_class, category, channel, description, \
         status, first_contact_owner, handler, open_time, respond_by, resolve_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10, $11, $12)",
    )
    .bind(c.id)
    .bind(c.customer_id)
    .bind(c.area_id)
    .bind(c.customer_class)
    .bind(small(c.category))
    .bind(small(c.channel))
    .bind(c.description)
    .bind(small(CaseStatus::Open as i32))
    .bind(c.owner)
    .bind(c.open_time)
    .bind(c.respond_by)
    .bind(c.resolve_by)
    .execute(&mut *tx)
    .await?;
    // Complaints weigh on satisfaction.
    super::insights::touch(tx).await?;
    add_step(
        tx,
        c.id,
        CaseAction::Opened,
        c.owner,
        c.open_time,
        ("", c.owner),
        "",
    )
    .await
}

/// Appends a step to a case's history.
pub async fn add_step(
    tx: &mut PgConnection,
    case_id: &str,
    action: CaseAction,
    actor: &str,
    time: DateTime<Utc>,
    (from, to): (&str, &str),
    note: &str,
) -> Result<(), ServiceError> {
    sqlx::query(
        "INSERT INTO case_steps (case_id, seq, action, actor, time, from_handler, to_handler, note) \
         SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3, $4, $5, $6, $7 FROM case_steps WHERE case_id = $1",
    )
    .bind(case_id)
    .bind(small(action as i32))
    .bind(actor)
    .bind(time)
    .bind(from)
    .bind(to)
    .bind(note)
    .execute(tx)
    .await?;
    Ok(())
}

pub async fn get_row(tx: &mut PgConnection, id: &str, lock: bool) -> Result<Option<CaseRow>, ServiceError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM cases c WHERE c.id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    Ok(sqlx::query_as(&sql).bind(id).fetch_optional(tx).await?)
}

/// Steps of the given cases, oldest first, grouped by case.
async fn steps(tx: &mut PgConnection, ids: &[String]) -> Result<Vec<StepRow>, ServiceError> {
    Ok(sqlx::query_as(
        "SELECT case_id, action, actor, time, from_handler, to_handler, note FROM case_steps \
         WHERE case_id = ANY($1) ORDER BY case_id, seq",
    )
    .bind(ids)
    .fetch_all(tx)
    .await?)
}

/// Rows with their histories as wire cases.
pub async fn with_history(tx: &mut PgConnection, rows: Vec<CaseRow>) -> Result<Vec<Case>, ServiceError> {
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let mut by_case: std::collections::HashMap<String, Vec<CaseStep>> = std::collections::HashMap::new();
    for step in steps(tx, &ids).await? {
        by_case.entry(step.case_id.clone()).or_default().push(step.into());
    }
    Ok(rows
        .into_iter()
        .map(|row| {
            let history = by_case.remove(&row.id).unwrap_or_default();
            row.into_case(history)
        })
        .collect())
}

/// Applies a change: sets the given columns on the case.
pub struct Change<'a> {
    pub status: CaseStatus,
    pub handler: Option<&'a str>,
    pub first_response: Option<DateTime<Utc>>,
    pub resolution: Option<(&'a str, DateTime<Utc>)>,
    pub callback: Option<(&'a str, bool, &'a str, DateTime<Utc>)>,
    pub close_time: Option<DateTime<Utc>>,
}

pub async fn apply(tx: &mut PgConnection, id: &str, change: &Change<'_>) -> Result<(), ServiceError> {
    let mut q: QueryBuilder<Postgres> = QueryBuilder::new("UPDATE cases SET status = ");
    q.push_bind(small(change.status as i32));
    if let Some(handler) = change.handler {
        q.push(", handler = ").push_bind(handler.to_string());
    }
    if let Some(at) = change.first_response {
        q.push(", first_response_time = COALESCE(first_response_time, ")
            .push_bind(at)
            .push(")");
    }
    if let Some((resolution, at)) = change.resolution {
        q.push(", resolution = ").push_bind(resolution.to_string());
        q.push(", resolve_time = ").push_bind(at);
        q.push(
            ", callback_outcome = NULL, callback_satisfied = NULL, callback_by = NULL, callback_time = NULL",
        );
    }
    if let Some((outcome, satisfied, by, at)) = change.callback {
        q.push(", callback_outcome = ").push_bind(outcome.to_string());
        q.push(", callback_satisfied = ").push_bind(satisfied);
        q.push(", callback_by = ").push_bind(by.to_string());
        q.push(", callback_time = ").push_bind(at);
        if !satisfied {
            // Reopened: the resolution no longer stands.
            q.push(", resolve_time = NULL");
        }
    }
    if let Some(at) = change.close_time {
        q.push(", close_time = ").push_bind(at);
    }
    q.push(" WHERE id = ").push_bind(id.to_string());
    q.build().execute(&mut *tx).await?;
    if change.callback.is_some() {
        // Callbacks weigh on satisfaction.
        super::insights::touch(tx).await?;
    }
    Ok(())
}

/// Filters of `ListCases`.
pub struct CaseFilter {
    pub status: i32,
    pub owner: String,
    pub customer_id: String,
    pub overdue_at: Option<DateTime<Utc>>,
}

/// Visibility of cases follows the customer's: the case's area and the customer's
/// owner; staff also see the cases they own or handle.
pub async fn list(
    pool: &PgPool,
    filter: &CaseFilter,
    visibility: &Visibility<'_>,
    staff: &str,
    page: &Page,
) -> Result<Vec<Case>, ServiceError> {
    let mut q: QueryBuilder<Postgres> = QueryBuilder::new(format!(
        "SELECT {COLUMNS} FROM cases c JOIN customers cu ON cu.id = c.customer_id WHERE true"
    ));
    push_scope(
        &mut q,
        visibility,
        &ScopeColumns {
            owner: "cu.owner_id",
            area: "c.area_id",
            customer: "c.customer_id",
            own: &["c.first_contact_owner", "c.handler"],
        },
        staff,
    );
    if filter.status != 0 {
        q.push(" AND c.status = ").push_bind(small(filter.status));
    }
    if !filter.owner.is_empty() {
        q.push(" AND (c.first_contact_owner = ")
            .push_bind(filter.owner.clone());
        q.push(" OR c.handler = ")
            .push_bind(filter.owner.clone())
            .push(")");
    }
    if !filter.customer_id.is_empty() {
        q.push(" AND c.customer_id = ")
            .push_bind(filter.customer_id.clone());
    }
    if let Some(now) = filter.overdue_at {
        q.push(" AND c.resolve_time IS NULL AND c.status <> ")
            .push_bind(small(CaseStatus::Closed as i32));
        q.push(" AND (c.escalate_time IS NOT NULL OR c.resolve_by < ")
            .push_bind(now);
        q.push(" OR (c.first_response_time IS NULL AND c.respond_by < ")
            .push_bind(now)
            .push("))");
    }
    // Newest first; keys are "open_time|id" so that equal times still page exactly.
    if let Some(after) = &page.after
        && let Some((time, id)) = after.split_once('|')
    {
        let time: DateTime<Utc> = time
            .parse()
            .map_err(|_| ServiceError::invalid_field("page_token", "is not a token this list issued"))?;
        q.push(" AND (c.open_time, c.id) < (").push_bind(time);
        q.push(", ").push_bind(id.to_string()).push(")");
    }
    q.push(" ORDER BY c.open_time DESC, c.id DESC LIMIT ")
        .push_bind(page.size + 1);
    let mut conn = pool.acquire().await?;
    let rows: Vec<CaseRow> = q.build_query_as().fetch_all(&mut *conn).await?;
    with_history(&mut conn, rows).await
}

/// Cases due for escalation at `now` (unresolved, not escalated, past a deadline),
/// locked and skipping rows another sweeper holds.
pub async fn due_for_escalation(
    tx: &mut PgConnection,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<CaseRow>, ServiceError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM cases c WHERE c.escalate_time IS NULL AND c.resolve_time IS NULL \
         AND c.status = $1 AND (c.resolve_by < $2 OR (c.first_response_time IS NULL AND c.respond_by < $2)) \
         ORDER BY c.open_time LIMIT $3 FOR UPDATE SKIP LOCKED"
    );
    Ok(sqlx::query_as(&sql)
        .bind(small(CaseStatus::Open as i32))
        .bind(now)
        .bind(limit)
        .fetch_all(tx)
        .await?)
}

/// Open cases past their response or resolution deadline at `now`, escalated or not.
pub async fn overdue_count(pool: &sqlx::PgPool, now: DateTime<Utc>) -> Result<i64, ServiceError> {
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM cases c WHERE c.resolve_time IS NULL AND c.status = $1 \
         AND (c.resolve_by < $2 OR (c.first_response_time IS NULL AND c.respond_by < $2))",
    )
    .bind(small(CaseStatus::Open as i32))
    .bind(now)
    .fetch_one(pool)
    .await?)
}

pub async fn mark_escalated(tx: &mut PgConnection, id: &str, at: DateTime<Utc>) -> Result<(), ServiceError> {
    sqlx::query("UPDATE cases SET escalate_time = $2 WHERE id = $1 AND escalate_time IS NULL")
        .bind(id)
        .bind(at)
        .execute(tx)
        .await?;
    Ok(())
}

/// One category's figures for a month.
#[derive(sqlx::FromRow)]
pub struct StatsRow {
    pub category: i16,
    pub opened: i64,
    pub resolved: i64,
    pub closed: i64,
    pub escalated: i64,
    pub overdue: i64,
    pub mean_hours: Option<f64>,
    pub satisfied: i64,
    pub unsatisfied: i64,
}

/// Figures per category for cases opened in `[from, to)`, optionally in one area.
pub async fn stats(
    pool: &PgPool,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    area_id: Option<&str>,
    areas: Option<&[String]>,
    now: DateTime<Utc>,
) -> Result<Vec<StatsRow>, ServiceError> {
    let rows = sqlx::query_as(
        "SELECT category, \
           count(*) AS opened, \
           count(*) FILTER (WHERE resolve_time IS NOT NULL OR status = 3) AS resolved, \
           count(*) FILTER (WHERE status = 3) AS closed, \
           count(*) FILTER (WHERE escalate_time IS NOT NULL) AS escalated, \
           count(*) FILTER (WHERE COALESCE(resolve_time, $4) > resolve_by \
                            OR COALESCE(first_response_time, resolve_time, $4) > respond_by) AS overdue, \
           (avg(EXTRACT(EPOCH FROM (resolve_time - open_time))) \
              FILTER (WHERE resolve_time IS NOT NULL) / 3600.0)::float8 AS mean_hours, \
           count(*) FILTER (WHERE callback_satisfied) AS satisfied, \
           count(*) FILTER (WHERE callback_satisfied = false) AS unsatisfied \
         FROM cases WHERE open_time >= $1 AND open_time < $2 \
           AND ($3::text IS NULL OR area_id = $3) \
           AND ($5::text[] IS NULL OR area_id = ANY($5)) \
         GROUP BY category ORDER BY category",
    )
    .bind(from)
    .bind(to)
    .bind(area_id)
    .bind(now)
    .bind(areas)
    .fetch_all(pool)
    .await?;
    Ok(rows)
}
