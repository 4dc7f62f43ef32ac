//! What distnet tests share: a Postgres (the one in `DATABASE_URL`, or a private
//! cluster started once per test process), a fresh database per test, settings
//! for in-process servers on port 0, tokens and authenticated clients.

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use distnet_platform::auth::{Claims, Role, TokenIssuer};
use distnet_platform::postgres::{Kind, LocalPostgres};
use distnet_platform::settings::{Secret, Settings};
use sqlx::Connection as _;
use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::transport::Channel;

/// The HS256 secret test servers accept.
pub const TEST_SECRET: &str = "distnet-test-secret";

struct Server {
    /// Connects to the maintenance database of the server.
    admin_url: String,
    /// `postgres://.../` without the database name.
    base_url: String,
    _cluster: Option<LocalPostgres>,
}

static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();
static START: Mutex<()> = Mutex::new(());

fn split_url(url: &str) -> (String, String) {
    // postgres://user@host:port/db?params → ("postgres://user@host:port/", "db")
    let without_params = url.split('?').next().unwrap_or(url);
    match without_params.rfind('/') {
        Some(i) if i > "postgres://".len() => (
            without_params[..=i].to_string(),
            without_params[i + 1..].to_string(),
        ),
        _ => (format!("{without_params}/"), "postgres".to_string()),
    }
}

fn server() -> anyhow::Result<&'static Server> {
    let _guard = START.lock().unwrap_or_else(|e| e.into_inner());
    let server = SERVER.get_or_init(|| {
        if let Ok(url) = std::env::var("DATABASE_URL").map(|u| u.trim().to_string())
            && !url.is_empty()
        {
            let (base_url, _) = split_url(&url);
            return Ok(Server {
                admin_url: url,
                base_url,
                _cluster: None,
            });
        }
        let dir = std::env::temp_dir().join(format!("distnet-test-pg-{}", std::process::id()));
        let cluster = LocalPostgres::start(&dir, Kind::Throwaway).map_err(|e| format!("{e:#}"))?;
        Ok(Server {
            admin_url: cluster.url("postgres"),
            base_url: cluster.url(""),
            _cluster: Some(cluster),
        })
    });
    server.as_ref().map_err(|e| anyhow::anyhow!("test postgres: {e}"))
}

/// A database of its own for one test; dropped (with its connections) afterwards.
pub struct TestDb {
    pub url: String,
    name: String,
    admin_url: String,
}

/// Templates migrated in this process, by key.
static TEMPLATES: tokio::sync::Mutex<BTreeMap<String, String>> =
    tokio::sync::Mutex::const_new(BTreeMap::new());

impl TestDb {
    /// An empty database.
    pub async fn new() -> anyhow::Result<Self> {
        Self::create(None).await
    }

    /// A clone of a template that `migrate` (given the template's URL) prepared once
    /// per test process under `key`: tests skip running migrations themselves.
    pub async fn migrated<F, Fut>(key: &str, migrate: F) -> anyhow::Result<Self>
    where
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = anyhow::Result<()>>,
    {
        let server = server()?;
        let template = {
            let mut templates = TEMPLATES.lock().await;
            match templates.get(key) {
                Some(template) => template.clone(),
                None => {
                    drop_orphaned_templates(&server.admin_url).await?;
                    let template = format!("distnet_tmpl_{key}_{}", std::process::id());
                    let mut admin = sqlx::PgConnection::connect(&server.admin_url).await?;
                    sqlx::query(&format!("DROP DATABASE IF EXISTS {template}"))
                        .execute(&mut admin)
                        .await?;
                    sqlx::query(&format!("CREATE DATABASE {template}"))
                        .execute(&mut admin)
                        .await?;
                    admin.close().await?;
                    migrate(format!("{}{template}", server.base_url)).await?;
                    templates.insert(key.to_string(), template.clone());
                    template
                }
            }
        };
        Self::create(Some(&template)).await
    }

    async fn create(template: Option<&str>) -> anyhow::Result<Self> {
        let server = server()?;
        let name = format!("distnet_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(&server.admin_url).await?;
        let sql = match template {
            Some(template) => format!("CREATE DATABASE {name} TEMPLATE {template}"),
            None => format!("CREATE DATABASE {name}"),
        };
        sqlx::query(&sql).execute(&mut admin).await?;
        admin.close().await?;
        Ok(Self {
            url: format!("{}{name}", server.base_url),
            name,
            admin_url: server.admin_url.clone(),
        })
    }
}

/// Drops templates left by test processes that have exited (on a shared
/// `DATABASE_URL` server nothing else would).
async fn drop_orphaned_templates(admin_url: &str) -> anyhow::Result<()> {
    let mut admin = sqlx::PgConnection::connect(admin_url).await?;
    let names: Vec<(String,)> =
        sqlx::query_as("SELECT datname FROM pg_database WHERE datname LIKE 'distnet_tmpl_%'")
            .fetch_all(&mut admin)
            .await?;
    for (name,) in names {
        let pid = name.rsplit('_').next().unwrap_or_default();
        if !pid.is_empty() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut admin)
                .await;
        }
    }
    admin.close().await?;
    Ok(())
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop runs inside the test's runtime; do the async work on a thread of its own.
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            runtime.block_on(async {
                if let Ok(mut admin) = sqlx::PgConnection::connect(&admin_url).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut admin)
                        .await;
                }
            });
        })
        .join();
    }
}

/// Settings for an in-process server against `database_url`: test secret, no
/// event subscriptions, quick shutdown.
pub fn settings(database_url: &str) -> Settings {
    let mut settings = Settings::default();
    settings.database.url = Secret::new(database_url);
    settings.database.startup_wait_s = 10;
    settings.database.acquire_timeout_ms = 1_000;
    settings.auth.hs256_secret = Secret::new(TEST_SECRET);
    settings.server.shutdown_grace_ms = 0;
    settings.server.drain_deadline_ms = 2_000;
    // Tests call as one person far faster than a phone; `rate_limits.rs` turns them on.
    settings.server.rate_limit.per_second = 0.0;
    settings.events.subscriptions.clear();
    settings.events.relay_poll_ms = 50;
    settings
}

/// A token signed with [`TEST_SECRET`].
pub fn token(claims: &Claims) -> String {
    TokenIssuer::hs256(TEST_SECRET)
        .mint(claims)
        .unwrap_or_else(|e| panic!("minting a test token: {e}"))
}

/// A one-hour token for `role` with `sub` and `areas`.
pub fn token_for(role: Role, sub: &str, areas: &[&str]) -> String {
    token(&Claims::new(sub, role, Duration::from_secs(3600)).with_areas(areas.iter().copied()))
}

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Clone)]
pub struct Bearer(pub Option<String>);

impl Interceptor for Bearer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(token) = &self.0 {
            let value: MetadataValue<_> = format!("Bearer {token}")
                .parse()
                .map_err(|_| tonic::Status::internal("bad token"))?;
            request.metadata_mut().insert("authorization", value);
        }
        Ok(request)
    }
}

/// A channel to an in-process server.
pub async fn channel(addr: std::net::SocketAddr) -> anyhow::Result<Channel> {
    Ok(Channel::from_shared(format!("http://{addr}"))?
        .timeout(Duration::from_secs(30))
        .connect()
        .await?)
}

/// Whether the server on `channel` reports `service` SERVING in gRPC health (`""`:
/// the server itself).
pub async fn serving(channel: &Channel, service: &str) -> anyhow::Result<bool> {
    use tonic_health::pb::health_check_response::ServingStatus;
    let response = tonic_health::pb::health_client::HealthClient::new(channel.clone())
        .check(tonic_health::pb::HealthCheckRequest {
            service: service.to_string(),
        })
        .await?
        .into_inner();
    Ok(response.status == ServingStatus::Serving as i32)
}

/// A real `EventSink` server that hands every delivered event to the test.
pub struct EventRecorder {
    pub addr: std::net::SocketAddr,
    pub events: tokio::sync::mpsc::UnboundedReceiver<distnet_proto::events::v1::EventEnvelope>,
    shutdown: distnet_platform::server::Shutdown,
    handle: Option<distnet_platform::server::ServerHandle>,
}

struct RecordingSink(tokio::sync::mpsc::UnboundedSender<distnet_proto::events::v1::EventEnvelope>);

#[tonic::async_trait]
impl distnet_proto::events::v1::event_sink_server::EventSink for RecordingSink {
    async fn deliver(
        &self,
        request: tonic::Request<distnet_proto::events::v1::DeliverRequest>,
    ) -> Result<tonic::Response<distnet_proto::events::v1::DeliverResponse>, tonic::Status> {
        let events = request.into_inner().events;
        let applied = i32::try_from(events.len()).unwrap_or(i32::MAX);
        for event in events {
            let _ = self.0.send(event);
        }
        Ok(tonic::Response::new(distnet_proto::events::v1::DeliverResponse {
            applied,
            duplicates: 0,
        }))
    }
}

impl EventRecorder {
    /// Starts the sink; point a subscription at `http://{addr}`.
    pub async fn start(settings: &Settings) -> anyhow::Result<Self> {
        use distnet_proto::events::v1::event_sink_server::EventSinkServer;
        let (sender, events) = tokio::sync::mpsc::unbounded_channel();
        let shutdown = distnet_platform::server::Shutdown::new();
        let handle = distnet_platform::server::serve(distnet_platform::server::ServeSpec {
            domain: "recorder.distnet",
            grpc_services: &["distnet.events.v1.EventSink"],
            access: &[distnet_platform::authz::EVENT_SINK],
            routes: tonic::service::Routes::new(EventSinkServer::new(RecordingSink(sender))),
            listener: tokio::net::TcpListener::bind("127.0.0.1:0").await?,
            settings,
            shutdown: shutdown.clone(),
            ready: None,
        })
        .await?;
        Ok(Self {
            addr: handle.local_addr,
            events,
            shutdown,
            handle: Some(handle),
        })
    }

    /// The next event, or an error after `within`.
    pub async fn next(
        &mut self,
        within: Duration,
    ) -> anyhow::Result<distnet_proto::events::v1::EventEnvelope> {
        tokio::time::timeout(within, self.events.recv())
            .await
            .map_err(|_| anyhow::anyhow!("no event within {within:?}"))?
            .ok_or_else(|| anyhow::anyhow!("the recorder stopped"))
    }

    pub async fn stop(mut self) {
        self.shutdown.trigger();
        if let Some(handle) = self.handle.take() {
            let _ = handle.wait().await;
        }
    }
}

/// Polls `attempt` until it gives `Some`, for up to 30 s; panics naming `what`
/// otherwise.
pub async fn eventually<T, F, Fut>(what: &str, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    for _ in 0..300 {
        if let Some(value) = attempt().await {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what}: not within 30 s");
}

#[cfg(test)]
mod tests {
    use super::split_url;

    #[test]
    fn urls_split_into_server_and_database() {
        assert_eq!(
            split_url("postgres://postgres@127.0.0.1:5432/test"),
            (
                "postgres://postgres@127.0.0.1:5432/".to_string(),
                "test".to_string()
            )
        );
    }
}
