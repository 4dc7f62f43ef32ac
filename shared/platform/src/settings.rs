//! Typed settings: compiled defaults < `distnet.toml` < `DISTNET__SECTION__KEY`
//! environment variables; `DATABASE_URL` overrides `database.url`. Secrets are
//! wrapped so they never print.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// A value that must never reach a log line.
#[derive(Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Settings {
    pub database: DatabaseSettings,
    pub auth: AuthSettings,
    pub server: ServerSettings,
    /// Transport security; empty paths mean plaintext (loopback development).
    pub tls: TlsSettings,
    pub telemetry: TelemetrySettings,
    pub events: EventSettings,
    /// How long the platform tables keep what is no longer needed.
    pub retention: RetentionSettings,
    /// Where each service listens and where the others reach it.
    pub services: ServicesSettings,
    pub accreditation: AccreditationSettings,
    pub customers: CustomersSettings,
    pub allocation: AllocationSettings,
}

/// The allocation service.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct AllocationSettings {
    /// Retailers whose entitlements' make-up (whose the retailer is, allocations,
    /// snapshot tier, quotas) `GetEntitlements` keeps in memory, about 200 bytes plus
    /// 12 per product allocated in the cycle each, and as many retailers' consumption
    /// (about 100 bytes plus 32 per product the retailer ordered) beside it. 0 turns
    /// both off.
    pub entitlements_cache_entries: usize,
    /// How long `GetEntitlements` may serve a retailer's consumption and a product's
    /// supply left from memory: they are dropped as soon as any replica announces an
    /// order that changed them, and this bounds how far behind a replica stays when
    /// the one that took an order died before announcing it (each entry is read again
    /// after between half of it and all of it, at random). 0: read on every call.
    pub entitlements_live_max_age_seconds: u64,
}

impl Default for AllocationSettings {
    fn default() -> Self {
        Self {
            entitlements_cache_entries: 20_000,
            entitlements_live_max_age_seconds: 300,
        }
    }
}

/// Customer relationship rules (DOMAIN.md "Customer relationship").
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct CustomersSettings {
    /// Business time zone: months of case statistics and visit days are local to it.
    pub time_zone: String,
    /// Overrides of the case deadline table (category × class); the built-in table
    /// applies where no rule matches.
    pub case_deadlines: Vec<CaseDeadline>,
    /// How often overdue cases are looked for and escalated.
    pub case_sweep_ms: u64,
    /// The four degrees, segments and flags are recomputed when their inputs (order
    /// facts, surveys, cases, profiles, classes) change: within a second after a quiet
    /// spell, and at most this often while they keep changing.
    pub insights_refresh_ms: u64,
    /// The refresh reads and writes this many customers at a time ...
    pub insights_refresh_page: usize,
    /// ... and rests after each page for this many times as long as the page took
    /// (its CPU and PostgreSQL's): it takes at most 1/(1 + this) of the time it spans,
    /// so that calls served meanwhile keep their latency. 0 runs it flat out.
    pub insights_refresh_rest: u32,
    /// A visit checked in farther than this from the store is flagged.
    pub visit_radius_m: f64,
    /// Profiles kept in the read-through cache (`GetCustomer`, `BatchGetCustomers`);
    /// 0 turns it off.
    pub cache_entries: usize,
    /// `ListCustomers` pages (the ids and versions of a caller's page, at most 100)
    /// kept in memory, emptied by any committed change of any profile; 0 turns it off.
    pub page_cache_entries: usize,
    /// The satisfaction questionnaire; empty means the built-in one.
    pub survey_questions: Vec<SurveyQuestion>,
}

/// A question of the satisfaction questionnaire: its weight in the score and the
/// answers it allows, each worth 0–100.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct SurveyQuestion {
    pub id: String,
    pub text: String,
    pub weight: f64,
    pub answers: Vec<SurveyAnswer>,
}

/// One allowed answer and what it is worth (0 = worst, 100 = best).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct SurveyAnswer {
    pub id: String,
    pub text: String,
    pub score: f64,
}

impl Default for CustomersSettings {
    fn default() -> Self {
        Self {
            time_zone: "Asia/Shanghai".into(),
            case_deadlines: Vec::new(),
            case_sweep_ms: 60_000,
            insights_refresh_ms: 60_000,
            insights_refresh_page: 1_000,
            insights_refresh_rest: 3,
            visit_radius_m: 200.0,
            cache_entries: 20_000,
            page_cache_entries: 2_000,
            survey_questions: Vec::new(),
        }
    }
}

/// Response and resolution time for cases of one category (and optionally one
/// customer class).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct CaseDeadline {
    /// Category without prefix: PRODUCT_QUALITY, DELIVERY, SERVICE_ATTITUDE, BILLING,
    /// SUPPLY_SHORTAGE or OTHER.
    pub category: String,
    /// SPECIAL, KEY or GENERAL; empty for any class.
    #[serde(default)]
    pub class: String,
    pub respond_minutes: i64,
    pub resolve_minutes: i64,
}

/// Licensing rules a city configures (DOMAIN.md "Licensing").
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct AccreditationSettings {
    /// Minimum distance between licensed outlets; cities set tens of meters in
    /// town centers.
    pub min_spacing_m: f64,
    /// Length of a license term.
    pub license_term_days: i64,
    /// Violation points within `violation_window_days` that suspend a license.
    pub suspension_threshold_points: i32,
    pub violation_window_days: i64,
    /// How often licenses past their term are marked EXPIRED (and standings updated).
    pub expiry_sweep_ms: u64,
}

impl Default for AccreditationSettings {
    fn default() -> Self {
        Self {
            min_spacing_m: 50.0,
            license_term_days: 5 * 365,
            suspension_threshold_points: 12,
            violation_window_days: 365,
            expiry_sweep_ms: 60_000,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct DatabaseSettings {
    /// Empty means: `distnet up` starts a private PostgreSQL.
    pub url: Secret,
    pub max_connections: u32,
    /// Connections kept beside the pool for the hottest reads
    /// ([`crate::db::ReadConnections`]: customers' list pages, allocation's
    /// entitlements), given back without the pool's ping; at least 1.
    pub read_connections: usize,
    pub acquire_timeout_ms: u64,
    pub idle_timeout_s: u64,
    /// How long start-up waits for the database before giving up.
    pub startup_wait_s: u64,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: Secret::default(),
            max_connections: 16,
            read_connections: 8,
            acquire_timeout_ms: 3_000,
            idle_timeout_s: 300,
            startup_wait_s: 30,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub enum TokenAlgorithm {
    HS256,
    EdDSA,
    RS256,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct AuthSettings {
    /// HS256 in development; EdDSA or RS256 with a public key in production.
    pub algorithm: TokenAlgorithm,
    pub hs256_secret: Secret,
    /// PEM file with the public key for EdDSA or RS256.
    pub public_key_path: String,
    /// When set, tokens must carry this `iss`.
    pub issuer: String,
}

/// The development secret. `distnet up` warns when it is in use.
pub const DEV_HS256_SECRET: &str = "distnet-dev-secret-change-me";

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            algorithm: TokenAlgorithm::HS256,
            hs256_secret: Secret::new(DEV_HS256_SECRET),
            public_key_path: String::new(),
            issuer: String::new(),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct ServerSettings {
    /// Interface to bind; loopback by default, `0.0.0.0` in containers.
    pub host: String,
    pub request_timeout_ms: u64,
    /// In-flight requests per server beyond which calls are shed.
    pub concurrency_limit: usize,
    pub max_message_bytes: usize,
    /// After SIGTERM: how long health says NOT_SERVING before the listener closes,
    /// so load balancers stop sending new calls.
    pub shutdown_grace_ms: u64,
    /// After the listener closes: how long in-flight calls may take to finish.
    pub drain_deadline_ms: u64,
    /// Per-caller limits on the RPCs phones call.
    pub rate_limit: RateLimitSettings,
}

/// TLS files, PEM. `distnet certs` makes a development set.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct TlsSettings {
    /// This process's certificate and key: the servers' identity, and the client
    /// certificate its own calls present.
    pub cert_path: String,
    pub key_path: String,
    /// The CA that signs the servers: calls to `https://` URLs verify against it.
    pub ca_path: String,
    /// When set, clients must present a certificate this CA signed (mutual TLS).
    pub client_ca_path: String,
}

/// One token bucket per caller (role and subject), shared by `methods`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct RateLimitSettings {
    /// Sustained calls per second per caller; 0 turns the limits off.
    pub per_second: f64,
    /// Calls a caller may make at once after a quiet spell.
    pub burst: u32,
    /// Method names (e.g. `GetMyRoute`) the limit applies to, in any service.
    pub methods: Vec<String>,
}

impl Default for RateLimitSettings {
    /// The RPCs of the field reps', drivers' and retailers' phones: generous for a
    /// person, tight for a runaway retry loop.
    fn default() -> Self {
        Self {
            per_second: 5.0,
            burst: 20,
            methods: [
                "LogInteraction",
                "GetVisitPlan",
                "GetVisitCompliance",
                "RecordSurvey",
                "GetMyRoute",
                "RecordStopEvent",
                "GetEntitlements",
                "PlaceOrder",
                "CancelOrder",
                "GetOrder",
                "ListOrders",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
        }
    }
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            request_timeout_ms: 10_000,
            concurrency_limit: 512,
            max_message_bytes: 4 * 1024 * 1024,
            shutdown_grace_ms: 1_000,
            drain_deadline_ms: 10_000,
            rate_limit: RateLimitSettings::default(),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct TelemetrySettings {
    /// `RUST_LOG` syntax; `RUST_LOG` itself wins when set.
    pub log_filter: String,
    /// `pretty`, `json`, or `auto` (pretty in a terminal, JSON otherwise).
    pub log_format: String,
    /// OTLP/gRPC collector, e.g. `http://127.0.0.1:4317`; empty disables export.
    pub otlp_endpoint: String,
    /// How often metrics are exported to the collector.
    pub metrics_interval_ms: u64,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        Self {
            log_filter: "info,sqlx=warn,h2=warn,tower=warn".into(),
            log_format: "auto".into(),
            otlp_endpoint: String::new(),
            metrics_interval_ms: 15_000,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct EventSettings {
    /// Event name (`CustomerChanged`) → subscribing services (`logistics`).
    pub subscriptions: BTreeMap<String, Vec<String>>,
    pub relay_poll_ms: u64,
    pub relay_batch: i64,
    pub relay_max_backoff_ms: u64,
}

impl Default for EventSettings {
    /// The subscriptions of DESIGN.md "How services talk".
    fn default() -> Self {
        let subscriptions = [
            ("StandingChanged", vec!["allocation", "customers"]),
            ("OrderConfirmed", vec!["logistics", "customers"]),
            ("OrderCancelled", vec!["logistics", "customers"]),
            ("DeliveryCompleted", vec!["allocation", "customers"]),
            ("DeliveryFailed", vec!["allocation", "customers"]),
            (
                "CustomerChanged",
                vec!["accreditation", "allocation", "logistics"],
            ),
        ]
        .into_iter()
        .map(|(event, to)| (event.to_string(), to.into_iter().map(String::from).collect()))
        .collect();
        Self {
            subscriptions,
            relay_poll_ms: 200,
            relay_batch: 100,
            relay_max_backoff_ms: 30_000,
        }
    }
}

/// How long each service's platform tables keep rows that are no longer needed, swept
/// in the background ([`crate::retention`]); 0 days keeps a table's rows forever. The
/// audit log is not swept: how long it is kept is the operator's policy.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct RetentionSettings {
    /// An event every subscriber has received stays in the outbox this long (for
    /// inspection); one still pending for any subscriber stays until it is delivered.
    pub outbox_days: u32,
    /// A consumed event's id stays in the inbox this long, so a redelivery is still
    /// recognised (a publisher re-sends only an event whose delivery it could not
    /// confirm, within its backoff).
    pub inbox_days: u32,
    /// A request id is remembered with its response this long: a retry after it is a
    /// new request (phones that were offline for days still replay within it).
    pub idempotency_days: u32,
    /// How often the sweep runs.
    pub sweep_ms: u64,
    /// Rows deleted per statement, so a sweep never holds many locks or a long
    /// transaction.
    pub batch: i64,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        Self {
            outbox_days: 7,
            inbox_days: 30,
            idempotency_days: 30,
            sweep_ms: 600_000,
            batch: 5_000,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct ServiceEndpoint {
    /// Port this service listens on; 0 picks a free one.
    pub port: u16,
    /// How the other services reach it.
    pub url: String,
}

impl ServiceEndpoint {
    fn local(port: u16) -> Self {
        Self {
            port,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct ServicesSettings {
    pub customers: ServiceEndpoint,
    pub accreditation: ServiceEndpoint,
    pub allocation: ServiceEndpoint,
    pub logistics: ServiceEndpoint,
}

impl Default for ServicesSettings {
    fn default() -> Self {
        Self {
            customers: ServiceEndpoint::local(50051),
            accreditation: ServiceEndpoint::local(50052),
            allocation: ServiceEndpoint::local(50053),
            logistics: ServiceEndpoint::local(50054),
        }
    }
}

impl ServicesSettings {
    pub fn get(&self, service: &str) -> Option<&ServiceEndpoint> {
        match service {
            "customers" => Some(&self.customers),
            "accreditation" => Some(&self.accreditation),
            "allocation" => Some(&self.allocation),
            "logistics" => Some(&self.logistics),
            _ => None,
        }
    }

    pub fn get_mut(&mut self, service: &str) -> Option<&mut ServiceEndpoint> {
        match service {
            "customers" => Some(&mut self.customers),
            "accreditation" => Some(&mut self.accreditation),
            "allocation" => Some(&mut self.allocation),
            "logistics" => Some(&mut self.logistics),
            _ => None,
        }
    }
}

impl Settings {
    /// Loads `distnet.toml` from the working directory (when present) and the
    /// environment.
    pub fn load() -> anyhow::Result<Self> {
        Self::load_from(Path::new("distnet.toml"))
    }

    pub fn load_from(file: &Path) -> anyhow::Result<Self> {
        // The compiled defaults are the first layer, so a file or variable that sets
        // one field of a section keeps the defaults of the others.
        let mut settings: Settings = config::Config::builder()
            .add_source(config::Config::try_from(&Settings::default())?)
            .add_source(config::File::from(file).required(false))
            .add_source(
                config::Environment::with_prefix("DISTNET")
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true),
            )
            .build()?
            .try_deserialize()?;
        if let Ok(url) = std::env::var("DATABASE_URL")
            && !url.is_empty()
        {
            settings.database.url = Secret::new(url);
        }
        Ok(settings)
    }

    /// Keeps only the subscriptions for which `consumes(service, event)` holds, so
    /// a partial deployment does not queue events for services that are not
    /// running or do not consume them yet.
    pub fn retain_subscribers(&mut self, consumes: impl Fn(&str, &str) -> bool) {
        for (event, subscribers) in self.events.subscriptions.iter_mut() {
            subscribers.retain(|service| consumes(service, event));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let settings = Settings::default();
        let printed = format!("{settings:?}");
        assert!(!printed.contains(DEV_HS256_SECRET));
        assert!(printed.contains("Secret(***)"));
    }

    #[test]
    fn one_variable_overrides_one_field_of_a_section() {
        // SAFETY: tests in this module do not read this variable concurrently.
        unsafe { std::env::set_var("DISTNET__SERVICES__LOGISTICS__PORT", "0") };
        let settings = Settings::load_from(Path::new("/nonexistent/distnet.toml")).expect("load");
        unsafe { std::env::remove_var("DISTNET__SERVICES__LOGISTICS__PORT") };
        assert_eq!(settings.services.logistics.port, 0);
        assert_eq!(settings.services.logistics.url, "http://127.0.0.1:50054");
    }

    #[test]
    fn the_example_configuration_parses_and_matches_the_defaults() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../distnet.toml.example");
        let settings = Settings::load_from(&example).expect("example parses");
        let defaults = Settings::default();
        assert_eq!(
            settings.server.request_timeout_ms,
            defaults.server.request_timeout_ms
        );
        assert_eq!(settings.services.logistics.url, defaults.services.logistics.url);
        assert_eq!(settings.events.subscriptions, defaults.events.subscriptions);
    }

    #[test]
    fn the_file_overrides_the_defaults() {
        let dir = std::env::temp_dir().join(format!("distnet-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("distnet.toml");
        std::fs::write(
            &file,
            "[server]\nrequest_timeout_ms = 1234\n[services.customers]\nport = 6000\nurl = \"http://h:6000\"\n",
        )
        .expect("write");
        let settings = Settings::load_from(&file).expect("load");
        assert_eq!(settings.server.request_timeout_ms, 1234);
        assert_eq!(settings.services.customers.port, 6000);
        assert_eq!(settings.services.allocation.port, 50053);
        assert_eq!(settings.server.concurrency_limit, 512);
    }
}
