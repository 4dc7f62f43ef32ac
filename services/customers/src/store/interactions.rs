//! Contacts with customers (table `interactions`).

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use distnet_platform::ServiceError;
use distnet_platform::idempotency::PgQuery;
use distnet_platform::pagination::Page;
use distnet_proto::common::v1::LatLng;
use distnet_proto::customers::v1::Interaction;
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder};

use super::{ScopeColumns, push_scope, small, timestamp};
use crate::domain::access::Visibility;

const COLUMNS: &str = "i.id, i.customer_id, i.channel, i.actor, i.actor_role, i.time, i.outcome, i.notes, \
     i.check_in_latitude, i.check_in_longitude, i.check_in_distance_m, i.flagged, i.tasks, i.order_id";

#[derive(sqlx::FromRow)]
struct InteractionRow {
    id: String,
    customer_id: String,
    channel: i16,
    actor: String,
    actor_role: String,
    time: DateTime<Utc>,
    outcome: String,
    notes: String,
    check_in_latitude: Option<f64>,
    check_in_longitude: Option<f64>,
    check_in_distance_m: Option<f64>,
    flagged: bool,
    tasks: Vec<i16>,
    order_id: String,
}

impl From<InteractionRow> for Interaction {
    fn from(row: InteractionRow) -> Self {
        let check_in = match (row.check_in_latitude, row.check_in_longitude) {
            (Some(latitude), Some(longitude)) => Some(LatLng { latitude, longitude }),
            _ => None,
        };
        Interaction {
            name: format!("interactions/{}", row.id),
            customer: format!("customers/{}", row.customer_id),
            channel: i32::from(row.channel),
            actor: row.actor,
            actor_role: row.actor_role,
            time: Some(timestamp(row.time)),
            outcome: row.outcome,
            notes: row.notes,
            check_in,
            check_in_distance_m: row.check_in_distance_m.unwrap_or(0.0),
            flagged: row.flagged,
            tasks: row.tasks.into_iter().map(i32::from).collect(),
            order: if row.order_id.is_empty() {
                String::new()
            } else {
                format!("orders/{}", row.order_id)
            },
        }
    }
}

/// A contact to record.
pub struct NewInteraction<'a> {
    pub id: &'a str,
    pub customer_id: &'a str,
    pub area_id: &'a str,
    pub channel: i32,
    pub actor: &'a str,
    pub actor_role: &'a str,
    pub time: DateTime<Utc>,
    pub outcome: &'a str,
    pub notes: &'a str,
    /// Check-in (lat, lng), its distance from the store, flagged.
    pub check_in: Option<((f64, f64), f64, bool)>,
    pub tasks: &'a [i32],
    pub order_id: &'a str,
}

/// The insert of an interaction with its parameters from `$first`, bound by
/// [`bind_insert`].
fn insert_statement(first: usize) -> String {
    let values: Vec<String> = (first..first + 15).map(|n| format!("${n}")).collect();
    format!(
        "INSERT INTO interactions (id, customer_id, area_id, channel, actor, actor_role, time, outcome, \
         notes, check_in_latitude, check_in_longitude, check_in_distance_m, flagged, tasks, order_id) \
         VALUES ({})",
        values.join(", ")
    )
}

/// The interaction's row, written by the statement that also stores the call's
/// response ([`IdempotencyKey::complete_with`]): a data-modifying `WITH` clause whose
/// parameters start at `$4`, bound by [`bind_insert`].
///
/// [`IdempotencyKey::complete_with`]: distnet_platform::idempotency::IdempotencyKey::complete_with
pub static INSERT: LazyLock<String> = LazyLock::new(|| format!("inserted AS ({})", insert_statement(4)));

/// Records `n` on its own (a delivery logged from its event).
pub async fn insert(tx: &mut PgConnection, n: &NewInteraction<'_>) -> Result<(), ServiceError> {
    static SQL: LazyLock<String> = LazyLock::new(|| insert_statement(1));
    bind_insert(sqlx::query(&SQL), n).execute(tx).await?;
    Ok(())
}

/// Binds [`INSERT`]'s parameters.
pub fn bind_insert<'q>(query: PgQuery<'q>, n: &NewInteraction<'q>) -> PgQuery<'q> {
    let tasks: Vec<i16> = n.tasks.iter().map(|&t| small(t)).collect();
    query
        .bind(n.id)
        .bind(n.customer_id)
        .bind(n.area_id)
        .bind(small(n.channel))
        .bind(n.actor)
        .bind(n.actor_role)
        .bind(n.time)
        .bind(n.outcome)
        .bind(n.notes)
        .bind(n.check_in.map(|((lat, _), _, _)| lat))
        .bind(n.check_in.map(|((_, lng), _, _)| lng))
        .bind(n.check_in.map(|(_, d, _)| d))
        .bind(n.check_in.is_some_and(|(_, _, f)| f))
        .bind(tasks)
        .bind(n.order_id)
}

impl NewInteraction<'_> {
    /// The interaction as [`INSERT`] stores it and reads answer it (its time to the
    /// microsecond, as PostgreSQL keeps it).
    pub fn to_wire(&self) -> Interaction {
        use chrono::SubsecRound as _;
        InteractionRow {
            id: self.id.to_string(),
            customer_id: self.customer_id.to_string(),
            channel: small(self.channel),
            actor: self.actor.to_string(),
            actor_role: self.actor_role.to_string(),
            time: self.time.trunc_subsecs(6),
            outcome: self.outcome.to_string(),
            notes: self.notes.to_string(),
            check_in_latitude: self.check_in.map(|((lat, _), _, _)| lat),
            check_in_longitude: self.check_in.map(|((_, lng), _, _)| lng),
            check_in_distance_m: self.check_in.map(|(_, d, _)| d),
            flagged: self.check_in.is_some_and(|(_, _, f)| f),
            tasks: self.tasks.iter().map(|&t| small(t)).collect(),
            order_id: self.order_id.to_string(),
        }
        .into()
    }
}

/// Filters of `ListInteractions`.
pub struct InteractionFilter {
    pub customer_id: String,
    pub actor: String,
    pub channel: i32,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

/// Newest first; visibility follows the customer's, and staff always see their own.
pub async fn list(
    pool: &PgPool,
    filter: &InteractionFilter,
    visibility: &Visibility<'_>,
    staff: &str,
    page: &Page,
) -> Result<Vec<Interaction>, ServiceError> {
    let mut q: QueryBuilder<Postgres> = QueryBuilder::new(format!(
        "SELECT {COLUMNS} FROM interactions i JOIN customers cu ON cu.id = i.customer_id WHERE true"
    ));
    push_scope(
        &mut q,
        visibility,
        &ScopeColumns {
            owner: "cu.owner_id",
            area: "i.area_id",
            customer: "i.customer_id",
            own: &["i.actor"],
        },
        staff,
    );
    if !filter.customer_id.is_empty() {
        q.push(" AND i.customer_id = ")
            .push_bind(filter.customer_id.clone());
    }
    if !filter.actor.is_empty() {
        q.push(" AND i.actor = ").push_bind(filter.actor.clone());
    }
    if filter.channel != 0 {
        q.push(" AND i.channel = ").push_bind(small(filter.channel));
    }
    if let Some(from) = filter.from {
        q.push(" AND i.time >= ").push_bind(from);
    }
    if let Some(to) = filter.to {
        q.push(" AND i.time < ").push_bind(to);
    }
    if let Some(after) = &page.after
        && let Some((time, id)) = after.split_once('|')
    {
        let time: DateTime<Utc> = time
            .parse()
            .map_err(|_| ServiceError::invalid_field("page_token", "is not a token this list issued"))?;
        q.push(" AND (i.time, i.id) < (").push_bind(time);
        q.push(", ").push_bind(id.to_string()).push(")");
    }
    q.push(" ORDER BY i.time DESC, i.id DESC LIMIT ")
        .push_bind(page.size + 1);
    let rows: Vec<InteractionRow> = q.build_query_as().fetch_all(pool).await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Area and location of a customer, if it exists.
pub async fn customer_place(
    tx: &mut PgConnection,
    customer_id: &str,
) -> Result<Option<(String, f64, f64)>, ServiceError> {
    Ok(
        sqlx::query_as("SELECT area_id, latitude, longitude FROM customers WHERE id = $1")
            .bind(customer_id)
            .fetch_optional(tx)
            .await?,
    )
}

/// A customer on a rep's visit list.
#[derive(sqlx::FromRow)]
pub struct VisitCustomer {
    pub id: String,
    pub display_name: String,
    pub province: String,
    pub city: String,
    pub district: String,
    pub street: String,
    pub postal_code: String,
    pub latitude: f64,
    pub longitude: f64,
    pub visit_weekday: i16,
    /// The rep's latest visit, any time.
    pub last_visit: Option<DateTime<Utc>>,
    /// The rep's latest visit since `since` (the week's start).
    pub visited_since: Option<DateTime<Utc>>,
}

/// The active and prospect customers `rep` owns with a visit day among `weekdays`,
/// in id order, with the rep's latest visit and whether one happened since `since`.
pub async fn visit_customers(
    pool: &PgPool,
    rep: &str,
    weekdays: &[i16],
    since: DateTime<Utc>,
) -> Result<Vec<VisitCustomer>, ServiceError> {
    Ok(sqlx::query_as(
        "SELECT c.id, c.display_name, c.province, c.city, c.district, c.street, c.postal_code, \
           c.latitude, c.longitude, c.visit_weekday, \
           (SELECT max(i.time) FROM interactions i WHERE i.customer_id = c.id AND i.actor = $1 \
              AND i.channel = 1) AS last_visit, \
           (SELECT max(i.time) FROM interactions i WHERE i.customer_id = c.id AND i.actor = $1 \
              AND i.channel = 1 AND i.time >= $3) AS visited_since \
         FROM customers c WHERE c.owner_id = $1 AND c.visit_weekday = ANY($2) \
           AND c.status IN (1, 2) ORDER BY c.id",
    )
    .bind(rep)
    .bind(weekdays)
    .bind(since)
    .fetch_all(pool)
    .await?)
}

/// A rep's visits in `[from, to)`: customer, time, flagged.
pub async fn rep_visits(
    pool: &PgPool,
    rep: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<(String, DateTime<Utc>, bool)>, ServiceError> {
    Ok(sqlx::query_as(
        "SELECT customer_id, time, flagged FROM interactions \
         WHERE actor = $1 AND channel = 1 AND time >= $2 AND time < $3",
    )
    .bind(rep)
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await?)
}
