//! `distnet audit`: who changed what, when, from each service's `audit_log` (written
//! with every mutating request's idempotency claim, in the same transaction).

use chrono::{DateTime, Utc};
use distnet_platform::{Settings, db};

/// What to look for; empty filters match everything.
pub struct AuditQuery {
    /// Service schemas to read, e.g. `["customers"]`.
    pub services: Vec<String>,
    pub actor: Option<String>,
    pub method: Option<String>,
    pub request_id: Option<String>,
    pub trace_id: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub limit: i64,
}

/// One audit record with the service that wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    pub service: String,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub role: String,
    pub method: String,
    pub request_id: String,
    pub trace_id: String,
}

/// The newest `limit` matching records across the services, newest first.
pub async fn query(settings: &Settings, query: &AuditQuery) -> anyhow::Result<Vec<AuditRecord>> {
    let mut records = Vec::new();
    for service in &query.services {
        let pool = db::pool(&settings.database, service)?;
        type Row = (DateTime<Utc>, String, String, String, String, String);
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT at, actor, role, method, request_id, trace_id FROM audit_log \
             WHERE ($1::text IS NULL OR actor = $1) AND ($2::text IS NULL OR method = $2) \
               AND ($3::text IS NULL OR request_id = $3) AND ($4::text IS NULL OR trace_id = $4) \
               AND ($5::timestamptz IS NULL OR at >= $5) \
             ORDER BY at DESC, id DESC LIMIT $6",
        )
        .bind(&query.actor)
        .bind(&query.method)
        .bind(&query.request_id)
        .bind(&query.trace_id)
        .bind(query.since)
        .bind(query.limit)
        .fetch_all(&pool)
        .await?;
        pool.close().await;
        records.extend(
            rows.into_iter()
                .map(|(at, actor, role, method, request_id, trace_id)| AuditRecord {
                    service: service.clone(),
                    at,
                    actor,
                    role,
                    method,
                    request_id,
                    trace_id,
                }),
        );
    }
    records.sort_by_key(|r| std::cmp::Reverse(r.at));
    records.truncate(usize::try_from(query.limit).unwrap_or(0));
    Ok(records)
}

/// The records as an aligned text table.
pub fn render(records: &[AuditRecord]) -> String {
    let mut out = format!(
        "{:<24} {:<13} {:<20} {:<18} {:<22} {:<36} {}\n",
        "at (UTC)", "service", "actor", "role", "method", "request id", "trace id"
    );
    for r in records {
        out.push_str(&format!(
            "{:<24} {:<13} {:<20} {:<18} {:<22} {:<36} {}\n",
            r.at.format("%Y-%m-%d %H:%M:%S%.3f"),
            r.service,
            r.actor,
            r.role,
            r.method,
            r.request_id,
            r.trace_id
        ));
    }
    out
}
