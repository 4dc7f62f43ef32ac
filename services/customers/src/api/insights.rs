//! GetCustomerInsights, ImportOrderHistory, and the refresh that recomputes the four
//! degrees, segments and flags of every customer (`domain::insights`).

use std::collections::HashMap;
use std::time::Instant;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use distnet_platform::ServiceError;
use distnet_platform::auth::{Caller, Role};
use distnet_platform::cycle::CycleId;
use distnet_platform::idempotency::{self, Claim};
use distnet_platform::validate::{Violations, parse_name};
use distnet_proto::customers::v1::{
    Customer, CustomerFlag, CustomerInsights, Degree, DegreeFactor, GetCustomerInsightsRequest,
    ImportOrderHistoryRequest, ImportOrderHistoryResponse, Segment,
};
use prost::Message as _;
use sqlx::PgPool;

use super::{CustomersApi, readable};
use crate::domain::insights::{self, CycleFacts, Flag, Inputs, WINDOW};
use crate::domain::profile;
use crate::store::{self, insights::IdRange, insights::OrderFact};

/// Staff who serve customers by value and category, and the services. Retailers do
/// not see how they are segmented.
pub const INSIGHT_READERS: &[Role] = &[
    Role::Admin,
    Role::Service,
    Role::CustomerManager,
    Role::CallCenterAgent,
    Role::AllocationPlanner,
];
/// Importing history from the previous system is an administrator's job.
pub const HISTORY_IMPORTERS: &[Role] = &[Role::Admin];

/// At most this many records in one ImportOrderHistory.
const MAX_IMPORT: usize = 10_000;
/// Insights are recomputed at least this often even without changes (tenure grows,
/// complaints and surveys age out of their periods).
const REFRESH_AT_LEAST_EVERY: Duration = Duration::hours(24);

pub fn segment_wire(segment: insights::Segment) -> Segment {
    match segment {
        insights::Segment::A => Segment::A,
        insights::Segment::B => Segment::B,
        insights::Segment::C => Segment::C,
    }
}

pub fn flag_wire(flag: Flag) -> CustomerFlag {
    match flag {
        Flag::Vip => CustomerFlag::Vip,
        Flag::ChurnRisk => CustomerFlag::ChurnRisk,
        Flag::IncompleteFile => CustomerFlag::IncompleteFile,
    }
}

/// The bit a flag has in `customer_insights.flags`.
pub fn flag_bit(flag: CustomerFlag) -> i16 {
    1 << (flag as i16)
}

use distnet_platform::wire::cny;

/// The Monday of the window's oldest cycle, given the current cycle's Monday.
fn window_start(window_end: NaiveDate) -> NaiveDate {
    window_end - Duration::weeks(WINDOW as i64 - 1)
}

/// `cycles/2026-W48` → its Monday.
pub fn cycle_monday(name: &str) -> Option<NaiveDate> {
    CycleId::parse(name.strip_prefix("cycles/")?)?.monday()
}

impl CustomersApi {
    pub(super) async fn customer_insights(
        &self,
        caller: Caller,
        request: GetCustomerInsightsRequest,
    ) -> Result<CustomerInsights, ServiceError> {
        caller.require(INSIGHT_READERS)?;
        let id = parse_name(&request.customer, "customers", "customer")?;
        readable(&caller, &request.customer, store::get(&self.pool, id).await?)?;
        let Some((body, computed_at)) = store::insights::get(&self.pool, id).await? else {
            return Err(ServiceError::failed_precondition(
                "INSIGHTS_NOT_READY",
                format!(
                    "{} has no insights yet: they are computed within {} s of a change",
                    request.customer,
                    self.settings.insights_refresh_ms.div_ceil(1000)
                ),
            )
            .with_retry_after(std::time::Duration::from_millis(
                self.settings.insights_refresh_ms.max(10),
            )));
        };
        let mut insights = CustomerInsights::decode(body.as_slice()).map_err(ServiceError::internal)?;
        insights.compute_time = Some(distnet_platform::wire::timestamp(computed_at));
        Ok(insights)
    }

    pub(super) async fn import_order_history(
        &self,
        caller: Caller,
        request: ImportOrderHistoryRequest,
    ) -> Result<ImportOrderHistoryResponse, ServiceError> {
        caller.require(HISTORY_IMPORTERS)?;
        let current = CycleId::of(self.clock.now().with_timezone(&self.business_tz()).date_naive());
        let mut v = Violations::new();
        v.request_id(&request.request_id);
        v.check(
            !request.records.is_empty() && request.records.len() <= MAX_IMPORT,
            "records",
            &format!("must hold 1..{MAX_IMPORT} records"),
        );
        let mut facts = Vec::with_capacity(request.records.len());
        let mut seen = std::collections::HashSet::new();
        for (i, r) in request.records.iter().enumerate() {
            let field = |name: &str| format!("records[{i}].{name}");
            let customer = parse_name(&r.customer, "customers", &field("customer"));
            let cycle = r.cycle.strip_prefix("cycles/").and_then(CycleId::parse);
            let week_start = cycle.and_then(CycleId::monday);
            match (cycle, week_start) {
                (Some(cycle), Some(_)) if cycle > current => v.add(field("cycle"), "is in the future"),
                (Some(_), Some(_)) => {}
                _ => v.add(field("cycle"), "must be `cycles/YYYY-Www`"),
            }
            let value = r.value.as_ref().map_or(0, |m| m.fen);
            let currency_ok = r
                .value
                .as_ref()
                .is_none_or(|m| m.currency_code.is_empty() || m.currency_code == "CNY");
            v.check(currency_ok, &field("value.currency_code"), "must be CNY");
            v.check(
                r.orders >= 0 && r.orders <= 1_000,
                &field("orders"),
                "must be 0..1000",
            );
            v.check(value >= 0, &field("value.fen"), "must not be negative");
            v.check(r.cartons >= 0, &field("cartons"), "must not be negative");
            v.check(
                (0..=r.cartons.max(0)).contains(&r.scarce_cartons),
                &field("scarce_cartons"),
                "must be 0..cartons",
            );
            match customer {
                Err(_) => v.add(field("customer"), "must be `customers/{id}`"),
                Ok(customer) => {
                    if !seen.insert((customer, r.cycle.as_str())) {
                        v.add(field("cycle"), "repeats an earlier record's customer and cycle");
                    }
                    if let (Some(cycle), Some(week_start)) = (cycle, week_start) {
                        facts.push(OrderFact {
                            id: format!("import:{customer}:{cycle}"),
                            customer_id: customer.to_string(),
                            cycle: cycle.to_string(),
                            week_start,
                            orders: i32::try_from(r.orders).unwrap_or(0),
                            value_fen: value,
                            cartons: r.cartons,
                            scarce_cartons: r.scarce_cartons,
                        });
                    }
                }
            }
        }
        v.into_result()?;

        let mut tx = self.pool.begin().await?;
        let key = match idempotency::claim(
            &mut tx,
            &caller,
            &request.request_id,
            "ImportOrderHistory",
            &request,
        )
        .await?
        {
            Claim::Replay(response) => return Ok(response),
            Claim::Fresh(key) => key,
        };
        let ids: Vec<String> = facts.iter().map(|f| f.customer_id.clone()).collect();
        let known: std::collections::HashSet<String> =
            store::existing_ids(&mut tx, &ids).await?.into_iter().collect();
        if let Some(missing) = facts.iter().find(|f| !known.contains(&f.customer_id)) {
            return Err(ServiceError::not_found(format!(
                "customers/{}",
                missing.customer_id
            )));
        }
        let imported = store::insights::import(&mut tx, &facts).await?;
        store::insights::touch(&mut tx).await?;
        let response = ImportOrderHistoryResponse {
            imported: i64::try_from(imported).unwrap_or(i64::MAX),
        };
        key.complete(&mut tx, &response).await?;
        tx.commit().await?;
        Ok(response)
    }
}

/// Recomputes every customer's insights when an input changed since the last run, a
/// new cycle began, a change may have been committing during the last run, or a day
/// has passed; returns how many customers were assessed (0 when nothing was due or
/// another replica holds the refresh). `recently_ran` (this replica ran within the
/// configured spacing) holds back runs while inputs keep changing; the first change
/// after a quiet spell runs at once. The run goes a page of customers at a time and
/// rests between pages ([`Pace`]).
pub async fn refresh_insights(
    pool: &PgPool,
    now: DateTime<Utc>,
    time_zone: chrono_tz::Tz,
    recently_ran: bool,
    pace: Pace,
) -> Result<usize, ServiceError> {
    // READ COMMITTED: the paced run spans seconds (minutes on 100,000 retailers), and
    // a snapshot held that long would keep PostgreSQL from pruning the dead versions
    // of the rows every order updates. Reading page by page on fresh snapshots may see
    // part of a change that commits meanwhile; that change moved the input counter, so
    // the next run (or the one that follows a run triggered by a change) takes it whole.
    let mut tx = pool.begin().await?;
    let Some(state) = store::insights::lock_state(&mut tx).await? else {
        return Ok(0);
    };
    let changes = store::insights::changes(&mut tx).await?;
    let today = now.with_timezone(&time_zone).date_naive();
    let window_end = CycleId::of(today)
        .monday()
        .ok_or_else(|| ServiceError::internal(format!("no Monday for {today}")))?;
    let due = state.as_ref().is_none_or(|s| {
        s.change_seen != changes
            || !s.settled
            || s.window_end != window_end
            || now - s.computed_at >= REFRESH_AT_LEAST_EVERY
    });
    let busy = recently_ran && state.as_ref().is_some_and(|s| !s.settled);
    if !due || busy {
        return Ok(0);
    }
    let start = window_start(window_end);
    let period = Period {
        now,
        time_zone,
        start,
        window_end,
    };
    let population = gather(&mut tx, period, pace).await?;
    let assessed = population.len();
    let rows = tokio::task::spawn_blocking(move || {
        let results = insights::assess(&population);
        population
            .iter()
            .zip(results)
            .map(|(inputs, result)| encode(inputs, &result, start))
            .collect::<Vec<_>>()
    })
    .await
    .map_err(ServiceError::internal)?;
    for step in rows.chunks(pace.page) {
        let began = Instant::now();
        store::insights::write(&mut tx, step, now).await?;
        pace.rest_after(began).await;
    }
    store::insights::save_state(
        &mut tx,
        &store::insights::RunState {
            change_seen: changes,
            // A run triggered by a change is followed by one more.
            settled: state.is_some_and(|s| s.change_seen == changes),
            window_end,
            computed_at: now,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(assessed)
}

/// What one refresh assesses against: its time, the business time zone and the
/// window's first and last cycle (Mondays).
#[derive(Debug, Clone, Copy)]
struct Period {
    now: DateTime<Utc>,
    time_zone: chrono_tz::Tz,
    start: NaiveDate,
    window_end: NaiveDate,
}

/// Reads every customer's inputs, a page of customers at a time, resting after each
/// page ([`Pace`]).
async fn gather(
    tx: &mut sqlx::PgConnection,
    period: Period,
    pace: Pace,
) -> Result<Vec<Inputs>, ServiceError> {
    let limit = i64::try_from(pace.page).unwrap_or(i64::MAX);
    let mut population = Vec::new();
    let mut after = String::new();
    loop {
        let began = Instant::now();
        let page = store::page_after(tx, &after, limit).await?;
        let Some(last) = page.last() else { break };
        let through = profile::id_of(last).to_string();
        let ids = IdRange {
            after: &after,
            through: &through,
        };
        population.extend(page_inputs(tx, &page, ids, period).await?);
        after = through;
        pace.rest_after(began).await;
    }
    Ok(population)
}

/// The inputs of the customers of one page (their ids are `ids`): profile, class,
/// window facts, surveys and cases.
async fn page_inputs(
    tx: &mut sqlx::PgConnection,
    page: &[Customer],
    ids: IdRange<'_>,
    period: Period,
) -> Result<Vec<Inputs>, ServiceError> {
    let Period {
        now,
        time_zone,
        start,
        window_end,
    } = period;
    let mut facts: HashMap<String, [CycleFacts; WINDOW]> = HashMap::new();
    for (customer, weeks) in store::insights::window_facts(tx, ids, start, window_end).await? {
        let cycles = facts.entry(customer).or_default();
        for (week, orders, value_fen, cartons, scarce_cartons) in weeks {
            if let Some(slot) = week_index(start, week).and_then(|i| cycles.get_mut(i)) {
                slot.orders = slot.orders.saturating_add(orders);
                slot.value_fen = slot.value_fen.saturating_add(value_fen);
                slot.cartons = slot.cartons.saturating_add(cartons);
                slot.scarce_cartons = slot.scarce_cartons.saturating_add(scarce_cartons);
            }
        }
    }
    let classes: HashMap<String, String> = store::insights::classes(tx, ids).await?.into_iter().collect();
    let surveys: HashMap<String, Vec<f64>> =
        store::insights::survey_scores(tx, ids, now - Duration::days(365))
            .await?
            .into_iter()
            .collect();
    let cases: HashMap<String, (i64, i64, i64)> =
        store::insights::case_counts(tx, ids, now - Duration::days(90), now - Duration::days(365))
            .await?
            .into_iter()
            .map(|(id, complaints, callbacks, satisfied)| (id, (complaints, callbacks, satisfied)))
            .collect();
    let today = now.with_timezone(&time_zone).date_naive();
    Ok(page
        .iter()
        .map(|customer| {
            let id = profile::id_of(customer).to_string();
            let created = crate::store::time_of(&customer.create_time).unwrap_or(now);
            let opened_week = CycleId::of(created.with_timezone(&time_zone).date_naive()).monday();
            let cycles = facts.remove(&id).unwrap_or_default();
            // Tenure counts from the file's opening or the first order in the window.
            let first_order = cycles
                .iter()
                .position(|c| c.orders > 0)
                .map(|i| start + Duration::weeks(i as i64));
            let since = opened_week.into_iter().chain(first_order).min().unwrap_or(start);
            let (complaints, callbacks, satisfied) = cases.get(&id).copied().unwrap_or_default();
            Inputs {
                class: classes.get(&id).cloned().unwrap_or_default(),
                tenure_days: (today - since).num_days().max(0),
                opened_index: opened_week.and_then(|w| week_index(start, w)).unwrap_or(0),
                cycles,
                survey_scores: surveys.get(&id).cloned().unwrap_or_default(),
                complaints_90d: u32::try_from(complaints).unwrap_or(u32::MAX),
                callbacks: u32::try_from(callbacks).unwrap_or(u32::MAX),
                callbacks_satisfied: u32::try_from(satisfied).unwrap_or(u32::MAX),
                missing_fields: profile::missing_fields(customer)
                    .into_iter()
                    .map(String::from)
                    .collect(),
                customer_id: id,
            }
        })
        .collect())
}

/// How the refresh, a pass over the whole network, shares the machine with the calls
/// served meanwhile: it reads and writes `page` customers at a time and rests after
/// each page for `rest` times as long as the page took (the service's CPU and
/// PostgreSQL's together, as the page waited for both), so it takes at most
/// 1/(1 + rest) of the time it spans (`customers.insights_refresh_page`, `_rest`).
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    page: usize,
    rest: u32,
}

impl Pace {
    /// `page` customers a step (at least one), resting `rest` times a step's time.
    pub fn new(page: usize, rest: u32) -> Self {
        Self {
            page: page.max(1),
            rest,
        }
    }

    async fn rest_after(self, began: Instant) {
        if self.rest > 0 {
            tokio::time::sleep(began.elapsed() * self.rest).await;
        }
    }
}

/// Index in the window of the cycle starting on `week` (None before the window).
fn week_index(start: NaiveDate, week: NaiveDate) -> Option<usize> {
    usize::try_from((week - start).num_days() / 7)
        .ok()
        .filter(|_| week >= start)
}

fn degree(d: &insights::Degree) -> Degree {
    Degree {
        score: d.score,
        formula: d.formula.to_string(),
        factors: d
            .factors
            .iter()
            .map(|f| DegreeFactor {
                name: f.name.to_string(),
                value: f.value,
                note: f.note.clone(),
            })
            .collect(),
    }
}

/// The stored row of one customer's insights.
fn encode(inputs: &Inputs, result: &insights::Insights, start: NaiveDate) -> store::insights::InsightRow {
    let flags: Vec<CustomerFlag> = result.flags.iter().map(|&f| flag_wire(f)).collect();
    let segment = segment_wire(result.segment);
    let body = CustomerInsights {
        customer: format!("customers/{}", inputs.customer_id),
        satisfaction: Some(degree(&result.satisfaction)),
        contribution: Some(degree(&result.contribution)),
        loyalty: Some(degree(&result.loyalty)),
        dependency: Some(degree(&result.dependency)),
        segment: segment as i32,
        flags: flags.iter().map(|&f| f as i32).collect(),
        missing_fields: inputs.missing_fields.clone(),
        value_share_percent: result.value_share_percent,
        cycles: inputs
            .cycles
            .iter()
            .enumerate()
            .map(|(i, c)| distnet_proto::customers::v1::CycleFacts {
                cycle: format!("cycles/{}", CycleId::of(start + Duration::weeks(i as i64))),
                orders: c.orders,
                value: Some(cny(c.value_fen)),
                cartons: c.cartons,
                scarce_cartons: c.scarce_cartons,
            })
            .collect(),
        compute_time: None,
    };
    (
        inputs.customer_id.clone(),
        segment as i16,
        flags.iter().fold(0, |bits, &f| bits | flag_bit(f)),
        body.encode_to_vec(),
    )
}
