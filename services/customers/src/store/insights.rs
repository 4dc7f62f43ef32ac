//! Order facts and computed insights (tables `order_facts`, `customer_insights`,
//! `insight_runs`; sequence `insight_input_changes`).

use chrono::{DateTime, NaiveDate, Utc};
use distnet_platform::ServiceError;
use sqlx::{PgConnection, PgPool};

/// Notes that an input of the insights changed, so that the next refresh runs.
/// `nextval` is not transactional: a rolled-back change costs one needless run.
pub async fn touch(conn: &mut PgConnection) -> Result<(), ServiceError> {
    sqlx::query("SELECT nextval('insight_input_changes')")
        .execute(conn)
        .await?;
    Ok(())
}

/// What one order (or one imported customer-cycle) contributes.
#[derive(Debug, Clone)]
pub struct OrderFact {
    pub id: String,
    pub customer_id: String,
    pub cycle: String,
    pub week_start: NaiveDate,
    pub orders: i32,
    pub value_fen: i64,
    pub cartons: i64,
    pub scarce_cartons: i64,
}

/// Records a confirmed order once; a redelivered or late confirmation of an order
/// already known (even cancelled) changes nothing.
pub async fn record_order(tx: &mut PgConnection, fact: &OrderFact) -> Result<(), ServiceError> {
    write_order(tx, fact, false).await
}

/// Marks an order cancelled, recording it first when its confirmation has not
/// arrived yet (so that the confirmation, when it comes, is ignored).
pub async fn cancel_order(tx: &mut PgConnection, fact: &OrderFact) -> Result<(), ServiceError> {
    write_order(tx, fact, true).await
}

async fn write_order(tx: &mut PgConnection, fact: &OrderFact, cancelled: bool) -> Result<(), ServiceError> {
    let on_conflict = if cancelled {
        "DO UPDATE SET cancelled = true"
    } else {
        "DO NOTHING"
    };
    sqlx::query(&format!(
        "INSERT INTO order_facts (id, customer_id, cycle, week_start, orders, value_fen, cartons, \
         scarce_cartons, source, cancelled) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'ORDER', $9) \
         ON CONFLICT (id) {on_conflict}"
    ))
    .bind(&fact.id)
    .bind(&fact.customer_id)
    .bind(&fact.cycle)
    .bind(fact.week_start)
    .bind(fact.orders)
    .bind(fact.value_fen)
    .bind(fact.cartons)
    .bind(fact.scarce_cartons)
    .bind(cancelled)
    .execute(tx)
    .await?;
    Ok(())
}

/// Writes imported customer-cycles, replacing an earlier import of the same ones.
pub async fn import(tx: &mut PgConnection, facts: &[OrderFact]) -> Result<u64, ServiceError> {
    let column = |f: fn(&OrderFact) -> String| facts.iter().map(f).collect::<Vec<String>>();
    let ids = column(|f| f.id.clone());
    let customers = column(|f| f.customer_id.clone());
    let cycles = column(|f| f.cycle.clone());
    let weeks: Vec<NaiveDate> = facts.iter().map(|f| f.week_start).collect();
    let orders: Vec<i32> = facts.iter().map(|f| f.orders).collect();
    let values: Vec<i64> = facts.iter().map(|f| f.value_fen).collect();
    let cartons: Vec<i64> = facts.iter().map(|f| f.cartons).collect();
    let scarce: Vec<i64> = facts.iter().map(|f| f.scarce_cartons).collect();
    let done = sqlx::query(
        "INSERT INTO order_facts (id, customer_id, cycle, week_start, orders, value_fen, cartons, \
         scarce_cartons, source) \
         SELECT *, 'IMPORT' FROM UNNEST($1::text[], $2::text[], $3::text[], $4::date[], $5::int[], \
         $6::bigint[], $7::bigint[], $8::bigint[]) \
         ON CONFLICT (id) DO UPDATE SET orders = excluded.orders, value_fen = excluded.value_fen, \
         cartons = excluded.cartons, scarce_cartons = excluded.scarce_cartons, recorded_at = now()",
    )
    .bind(ids)
    .bind(customers)
    .bind(cycles)
    .bind(weeks)
    .bind(orders)
    .bind(values)
    .bind(cartons)
    .bind(scarce)
    .execute(tx)
    .await?;
    Ok(done.rows_affected())
}

/// The customers whose ids sort after `after` and up to `through` (the collation of
/// `ORDER BY id`): the refresh reads the network a page of customers at a time.
#[derive(Debug, Clone, Copy)]
pub struct IdRange<'a> {
    pub after: &'a str,
    pub through: &'a str,
}

/// One recorded fact of a customer's confirmed orders in a cycle of the window
/// (Mondays `from` to `to`, inclusive): (week start, orders, value, cartons, scarce
/// cartons).
pub type WeekRow = (NaiveDate, i64, i64, i64, i64);

/// The facts in the window of the customers of `ids`, as (customer id, facts). A week may appear
/// more than once (every order, and every imported week of history, is a fact):
/// the caller adds them up. Summing per week here cost PostgreSQL three times the
/// single grouping (sums of `bigint` go through `numeric`), in the refresh that runs
/// once a minute while orders come in.
pub async fn window_facts(
    conn: &mut PgConnection,
    ids: IdRange<'_>,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<(String, Vec<WeekRow>)>, ServiceError> {
    type Row = (String, Vec<NaiveDate>, Vec<i64>, Vec<i64>, Vec<i64>, Vec<i64>);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT customer_id, array_agg(week_start), array_agg(orders::bigint), array_agg(value_fen), \
                array_agg(cartons), array_agg(scarce_cartons) \
         FROM order_facts WHERE customer_id > $1 AND customer_id <= $2 \
              AND NOT cancelled AND week_start BETWEEN $3 AND $4 \
         GROUP BY customer_id",
    )
    .bind(ids.after)
    .bind(ids.through)
    .bind(from)
    .bind(to)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(customer, weeks, orders, values, cartons, scarce)| {
            let facts = weeks
                .into_iter()
                .zip(orders)
                .zip(values)
                .zip(cartons)
                .zip(scarce)
                .map(|((((w, o), v), c), s)| (w, o, v, c, s))
                .collect();
            (customer, facts)
        })
        .collect())
}

/// The accreditation class of each classified customer of `ids`.
pub async fn classes(
    conn: &mut PgConnection,
    ids: IdRange<'_>,
) -> Result<Vec<(String, String)>, ServiceError> {
    Ok(sqlx::query_as(
        "SELECT customer_id, class FROM customer_standings \
         WHERE customer_id > $1 AND customer_id <= $2 AND class <> ''",
    )
    .bind(ids.after)
    .bind(ids.through)
    .fetch_all(conn)
    .await?)
}

/// Survey scores since `since`, per customer of `ids`.
pub async fn survey_scores(
    conn: &mut PgConnection,
    ids: IdRange<'_>,
    since: DateTime<Utc>,
) -> Result<Vec<(String, Vec<f64>)>, ServiceError> {
    Ok(sqlx::query_as(
        "SELECT customer_id, array_agg(score ORDER BY time) FROM surveys \
         WHERE customer_id > $1 AND customer_id <= $2 AND time >= $3 \
         GROUP BY customer_id",
    )
    .bind(ids.after)
    .bind(ids.through)
    .bind(since)
    .fetch_all(conn)
    .await?)
}

/// Per customer of `ids`: cases opened since `complaints_since`, callbacks since
/// `callbacks_since`, and how many of those were satisfied.
pub async fn case_counts(
    conn: &mut PgConnection,
    ids: IdRange<'_>,
    complaints_since: DateTime<Utc>,
    callbacks_since: DateTime<Utc>,
) -> Result<Vec<(String, i64, i64, i64)>, ServiceError> {
    Ok(sqlx::query_as(
        "SELECT customer_id, \
                count(*) FILTER (WHERE open_time >= $1), \
                count(*) FILTER (WHERE callback_time >= $2), \
                count(*) FILTER (WHERE callback_time >= $2 AND callback_satisfied) \
         FROM cases WHERE customer_id > $3 AND customer_id <= $4 \
              AND (open_time >= $1 OR callback_time >= $2) \
         GROUP BY customer_id",
    )
    .bind(complaints_since)
    .bind(callbacks_since)
    .bind(ids.after)
    .bind(ids.through)
    .fetch_all(conn)
    .await?)
}

/// The refresh's state, locked for this run; `None` while another replica runs it.
#[derive(Debug, Clone)]
pub struct RunState {
    pub change_seen: i64,
    pub settled: bool,
    pub window_end: NaiveDate,
    pub computed_at: DateTime<Utc>,
}

/// The change counter now (read before the inputs, so that a change committed after
/// this read is seen by the next run).
pub async fn changes(conn: &mut PgConnection) -> Result<i64, ServiceError> {
    Ok(sqlx::query_scalar("SELECT last_value FROM insight_input_changes")
        .fetch_one(conn)
        .await?)
}

/// Locks the state row: `Err` on database failure, `Ok(None)` when another replica
/// holds it, `Ok(Some(None))` before the first run.
pub async fn lock_state(tx: &mut PgConnection) -> Result<Option<Option<RunState>>, ServiceError> {
    type Row = (
        bool,
        Option<i64>,
        Option<bool>,
        Option<NaiveDate>,
        Option<DateTime<Utc>>,
    );
    let locked: Option<Row> = sqlx::query_as(
        "SELECT pg_try_advisory_xact_lock(hashtext('customers.insight_runs')), \
                    (SELECT change_seen FROM insight_runs), (SELECT settled FROM insight_runs), \
                    (SELECT window_end FROM insight_runs), (SELECT computed_at FROM insight_runs)",
    )
    .fetch_optional(tx)
    .await?;
    Ok(match locked {
        Some((true, Some(change_seen), Some(settled), Some(window_end), Some(computed_at))) => {
            Some(Some(RunState {
                change_seen,
                settled,
                window_end,
                computed_at,
            }))
        }
        Some((true, ..)) => Some(None),
        _ => None,
    })
}

pub async fn save_state(tx: &mut PgConnection, state: &RunState) -> Result<(), ServiceError> {
    sqlx::query(
        "INSERT INTO insight_runs (singleton, change_seen, settled, window_end, computed_at) \
         VALUES (true, $1, $2, $3, $4) ON CONFLICT (singleton) DO UPDATE SET \
         change_seen = excluded.change_seen, settled = excluded.settled, \
         window_end = excluded.window_end, computed_at = excluded.computed_at",
    )
    .bind(state.change_seen)
    .bind(state.settled)
    .bind(state.window_end)
    .bind(state.computed_at)
    .execute(tx)
    .await?;
    Ok(())
}

/// One customer's computed insights: (customer id, segment, flag bits, encoded body).
pub type InsightRow = (String, i16, i16, Vec<u8>);

/// Writes computed insights; rows whose body did not change are left alone.
pub async fn write(
    tx: &mut PgConnection,
    rows: &[InsightRow],
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    for chunk in rows.chunks(5_000) {
        let ids: Vec<&str> = chunk.iter().map(|r| r.0.as_str()).collect();
        let segments: Vec<i16> = chunk.iter().map(|r| r.1).collect();
        let flags: Vec<i16> = chunk.iter().map(|r| r.2).collect();
        let bodies: Vec<&[u8]> = chunk.iter().map(|r| r.3.as_slice()).collect();
        sqlx::query(
            "INSERT INTO customer_insights (customer_id, segment, flags, body, changed_at) \
             SELECT id, segment, flags, body, $5 \
             FROM UNNEST($1::text[], $2::smallint[], $3::smallint[], $4::bytea[]) \
                  AS u(id, segment, flags, body) \
             ON CONFLICT (customer_id) DO UPDATE SET segment = excluded.segment, \
               flags = excluded.flags, body = excluded.body, changed_at = excluded.changed_at \
             WHERE customer_insights.body IS DISTINCT FROM excluded.body",
        )
        .bind(ids)
        .bind(segments)
        .bind(flags)
        .bind(bodies)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// A customer's last computed insights (encoded) and when the last refresh ran.
pub async fn get(pool: &PgPool, customer_id: &str) -> Result<Option<(Vec<u8>, DateTime<Utc>)>, ServiceError> {
    Ok(sqlx::query_as(
        "SELECT i.body, r.computed_at FROM customer_insights i, insight_runs r \
         WHERE i.customer_id = $1",
    )
    .bind(customer_id)
    .fetch_optional(pool)
    .await?)
}
