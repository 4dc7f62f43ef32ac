//! Metrics, exported over OTLP with the traces (`telemetry.otlp_endpoint`, every
//! `telemetry.metrics_interval_ms`): each RPC's count, latency and outcome, recorded
//! by the middleware, and the business figures the services report. One catalogue,
//! so the names stay consistent across services:
//!
//! | name | kind | unit | attributes |
//! |---|---|---|---|
//! | `rpc.server.requests` | counter | call | `rpc.service`, `rpc.method`, `rpc.grpc.status_code` |
//! | `rpc.server.duration` | histogram | ms | as above |
//! | `distnet.orders.confirmed` | counter | order | `area` |
//! | `distnet.orders.cartons` | counter | carton | `area` |
//! | `distnet.allocation.quota_utilization` | gauge | 1 | `product`, `cycle` |
//! | `distnet.outbox.lag` | gauge | s | `service`, `subscriber` |
//! | `distnet.outbox.delivered` | counter | event | `service`, `subscriber` |
//! | `distnet.cases.overdue` | gauge | case | — |
//! | `distnet.plan.solve_time` | histogram | s | `depot` |
//!
//! Instruments come from the global meter provider that [`crate::telemetry::init`]
//! installs when a collector is configured; without one every function here returns
//! at once, before building its attributes (the RPC path pays nothing).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Gauge, Histogram};

/// Latency buckets in milliseconds: fine below 20 ms, where the targets are.
const RPC_BUCKETS_MS: [f64; 16] = [
    0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 50.0, 100.0, 250.0, 1000.0, 2500.0, 10000.0,
];
/// Route planning takes seconds, up to the half-minute budget.
const SOLVE_BUCKETS_S: [f64; 10] = [0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 60.0];

struct Instruments {
    rpc_requests: Counter<u64>,
    rpc_duration: Histogram<f64>,
    orders_confirmed: Counter<u64>,
    order_cartons: Counter<u64>,
    quota_utilization: Gauge<f64>,
    outbox_lag: Gauge<f64>,
    outbox_delivered: Counter<u64>,
    overdue_cases: Gauge<u64>,
    solve_time: Histogram<f64>,
}

static INSTRUMENTS: OnceLock<Instruments> = OnceLock::new();

/// Whether a meter provider exports; set by [`crate::telemetry::init`].
static EXPORTING: AtomicBool = AtomicBool::new(false);

pub(crate) fn set_exporting() {
    EXPORTING.store(true, Ordering::Release);
}

/// The instruments, or `None` when metrics go nowhere.
fn exporting() -> Option<&'static Instruments> {
    EXPORTING.load(Ordering::Acquire).then(instruments)
}

fn instruments() -> &'static Instruments {
    INSTRUMENTS.get_or_init(|| {
        let meter = opentelemetry::global::meter("distnet");
        Instruments {
            rpc_requests: meter
                .u64_counter("rpc.server.requests")
                .with_description("RPCs served, by method and gRPC status code")
                .with_unit("{call}")
                .build(),
            rpc_duration: meter
                .f64_histogram("rpc.server.duration")
                .with_description("Time from request headers to response, by method and status code")
                .with_unit("ms")
                .with_boundaries(RPC_BUCKETS_MS.to_vec())
                .build(),
            orders_confirmed: meter
                .u64_counter("distnet.orders.confirmed")
                .with_description("Orders confirmed (new orders, not replays)")
                .with_unit("{order}")
                .build(),
            order_cartons: meter
                .u64_counter("distnet.orders.cartons")
                .with_description("Cartons on confirmed orders")
                .with_unit("{carton}")
                .build(),
            quota_utilization: meter
                .f64_gauge("distnet.allocation.quota_utilization")
                .with_description("Confirmed cartons over allocatable supply (quantity less holdback)")
                .with_unit("1")
                .build(),
            outbox_lag: meter
                .f64_gauge("distnet.outbox.lag")
                .with_description("Age of the oldest event not yet delivered to a subscriber")
                .with_unit("s")
                .build(),
            outbox_delivered: meter
                .u64_counter("distnet.outbox.delivered")
                .with_description("Events delivered to a subscriber")
                .with_unit("{event}")
                .build(),
            overdue_cases: meter
                .u64_gauge("distnet.cases.overdue")
                .with_description("Open cases past their response or resolution deadline")
                .with_unit("{case}")
                .build(),
            solve_time: meter
                .f64_histogram("distnet.plan.solve_time")
                .with_description("Route planning search time per plan")
                .with_unit("s")
                .with_boundaries(SOLVE_BUCKETS_S.to_vec())
                .build(),
        }
    })
}

/// `/pkg.Service/Method` as (`pkg.Service`, `Method`).
fn split_path(path: &str) -> (&str, &str) {
    let trimmed = path.trim_start_matches('/');
    trimmed.split_once('/').unwrap_or((trimmed, ""))
}

/// One RPC finished with `code` after `elapsed`.
pub fn rpc_finished(path: &str, code: i32, elapsed: Duration) {
    let Some(metrics) = exporting() else {
        return;
    };
    let (service, method) = split_path(path);
    let attributes = [
        KeyValue::new("rpc.service", service.to_string()),
        KeyValue::new("rpc.method", method.to_string()),
        KeyValue::new("rpc.grpc.status_code", i64::from(code)),
    ];
    metrics.rpc_requests.add(1, &attributes);
    metrics
        .rpc_duration
        .record(elapsed.as_secs_f64() * 1000.0, &attributes);
}

/// A new order was confirmed in `area`.
pub fn order_confirmed(area: &str, cartons: u64) {
    let Some(metrics) = exporting() else {
        return;
    };
    let attributes = [KeyValue::new("area", area.to_string())];
    metrics.orders_confirmed.add(1, &attributes);
    metrics.order_cartons.add(cartons, &attributes);
}

/// How much of a product's allocatable supply in a cycle is on confirmed orders.
pub fn quota_utilization(product: &str, cycle: &str, ratio: f64) {
    let Some(metrics) = exporting() else {
        return;
    };
    metrics.quota_utilization.record(
        ratio,
        &[
            KeyValue::new("product", product.to_string()),
            KeyValue::new("cycle", cycle.to_string()),
        ],
    );
}

/// The age of the oldest event `service` has not yet delivered to `subscriber`
/// (zero when none waits), and how many were just delivered.
pub fn outbox(service: &str, subscriber: &str, lag: Duration, delivered: usize) {
    let Some(metrics) = exporting() else {
        return;
    };
    let attributes = [
        KeyValue::new("service", service.to_string()),
        KeyValue::new("subscriber", subscriber.to_string()),
    ];
    metrics.outbox_lag.record(lag.as_secs_f64(), &attributes);
    if delivered > 0 {
        metrics
            .outbox_delivered
            .add(u64::try_from(delivered).unwrap_or(u64::MAX), &attributes);
    }
}

/// Open cases past a deadline, as the last sweep counted them.
pub fn overdue_cases(count: u64) {
    if let Some(metrics) = exporting() {
        metrics.overdue_cases.record(count, &[]);
    }
}

/// One route plan's search took `elapsed`.
pub fn plan_solved(depot: &str, elapsed: Duration) {
    if let Some(metrics) = exporting() {
        metrics.solve_time.record(
            elapsed.as_secs_f64(),
            &[KeyValue::new("depot", depot.to_string())],
        );
    }
}

#[cfg(test)]
mod tests {
    use super::split_path;

    #[test]
    fn paths_split_into_service_and_method() {
        assert_eq!(
            split_path("/distnet.allocation.v1.AllocationService/PlaceOrder"),
            ("distnet.allocation.v1.AllocationService", "PlaceOrder")
        );
        assert_eq!(split_path("/odd"), ("odd", ""));
        assert_eq!(split_path(""), ("", ""));
    }
}
