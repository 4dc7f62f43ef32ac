//! Server start-up, written once: the service's routes plus per-service health and
//! reflection (v1 and v1alpha, so `grpcurl list` works), the request pipeline,
//! request timeout, message size limits, HTTP/2 keepalive for flaky mobile
//! networks, and graceful shutdown: health turns NOT_SERVING, the listener closes
//! after a grace period, in-flight calls drain until a deadline.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::service::Routes;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;

use crate::auth::TokenVerifier;
use crate::middleware::RpcLayer;
use crate::settings::Settings;

/// Tells every server and background task of a process to stop.
#[derive(Clone)]
pub struct Shutdown {
    sender: watch::Sender<bool>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    pub fn new() -> Self {
        Self {
            sender: watch::channel(false).0,
        }
    }

    pub fn trigger(&self) {
        self.sender.send_replace(true);
    }

    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.sender.subscribe()
    }

    /// Resolves once [`Shutdown::trigger`] has been called.
    pub async fn triggered(&self) {
        let mut receiver = self.subscribe();
        let _ = receiver.wait_for(|stop| *stop).await;
    }
}

/// Runs `task` at once and then every `every` until `shutdown`: the background sweeps
/// (license expiry, overdue cases). Each run returns how many items it handled, which
/// is logged with `what` and how long the run took when not zero; a failed run is
/// logged and retried next time.
pub fn spawn_periodic<F, Fut>(what: &'static str, every: Duration, shutdown: Shutdown, task: F)
where
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<usize, crate::ServiceError>> + Send + 'static,
{
    tokio::spawn(async move {
        let mut stop = shutdown.subscribe();
        loop {
            let began = std::time::Instant::now();
            let result = task().await;
            let elapsed_ms = u64::try_from(began.elapsed().as_millis()).unwrap_or(u64::MAX);
            match result {
                Ok(0) => {}
                Ok(count) => tracing::info!(count, what, elapsed_ms, "sweep done"),
                Err(error) => tracing::warn!(%error, what, elapsed_ms, "sweep failed"),
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => return,
            }
        }
    });
}

/// Resolves on ctrl-c or SIGTERM.
pub async fn termination_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}

/// What a service hands to [`serve`].
pub struct ServeSpec<'a> {
    /// Error domain, e.g. `customers.distnet`.
    pub domain: &'static str,
    /// Fully qualified gRPC service names reported by health.
    pub grpc_services: &'a [&'static str],
    /// Who may call what, one table per hosted service (`authz`).
    pub access: &'a [&'static [crate::authz::Rule]],
    pub routes: Routes,
    pub listener: TcpListener,
    pub settings: &'a Settings,
    pub shutdown: Shutdown,
    /// Done once the service is ready for its callers (e.g. its caches warmed): until
    /// then health reports `grpc_services` NOT_SERVING, while the server itself
    /// (service `""`, what liveness probes ask) is SERVING. `None`: ready at once.
    pub ready: Option<Ready>,
}

/// See [`ServeSpec::ready`].
pub type Ready = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// A running server.
pub struct ServerHandle {
    pub local_addr: SocketAddr,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    /// Work to let finish once the server has drained (e.g. announcing what its last
    /// calls committed), each for up to [`AFTER_DRAIN_LIMIT`].
    after: Vec<tokio::task::JoinHandle<()>>,
}

/// How long [`ServerHandle::wait`] waits for each task of [`ServerHandle::then`].
const AFTER_DRAIN_LIMIT: Duration = Duration::from_secs(5);

impl ServerHandle {
    /// Waits until the server has shut down and drained, then for the tasks given to
    /// [`ServerHandle::then`].
    pub async fn wait(self) -> anyhow::Result<()> {
        let served = self.task.await;
        for task in self.after {
            if tokio::time::timeout(AFTER_DRAIN_LIMIT, task).await.is_err() {
                tracing::warn!("a task left after the drain did not finish in time");
            }
        }
        served?
    }

    /// [`ServerHandle::wait`] also waits for `task` (after the drain, which it may
    /// outlive: the calls being drained may give it work).
    pub fn then(mut self, task: tokio::task::JoinHandle<()>) -> Self {
        self.after.push(task);
        self
    }
}

pub async fn serve(spec: ServeSpec<'_>) -> anyhow::Result<ServerHandle> {
    let ServeSpec {
        domain,
        grpc_services,
        access,
        routes,
        listener,
        settings,
        shutdown,
        ready,
    } = spec;
    let verifier = TokenVerifier::from_settings(&settings.auth)?;

    let (reporter, health) = tonic_health::server::health_reporter();
    let status = if ready.is_some() {
        ServingStatus::NotServing
    } else {
        ServingStatus::Serving
    };
    for name in grpc_services {
        reporter.set_service_status(name, status).await;
    }
    // Held while health changes: once shutting down, readiness never turns it back.
    let stopping = std::sync::Arc::new(tokio::sync::Mutex::new(false));
    if let Some(ready) = ready {
        let (reporter, stopping, shutdown) = (reporter.clone(), stopping.clone(), shutdown.clone());
        let services: Vec<&'static str> = grpc_services.to_vec();
        tokio::spawn(async move {
            tokio::select! {
                () = ready => {}
                () = shutdown.triggered() => return,
            }
            let stopping = stopping.lock().await;
            if !*stopping {
                for name in services {
                    reporter.set_service_status(name, ServingStatus::Serving).await;
                }
                tracing::info!(domain, "ready: SERVING");
            }
        });
    }
    // Reflection advertises exactly what this server serves.
    let mut advertised: Vec<&str> = grpc_services.to_vec();
    advertised.extend([
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    ]);
    let reflection = || {
        advertised.iter().fold(
            tonic_reflection::server::Builder::configure()
                .include_reflection_service(false)
                .register_encoded_file_descriptor_set(distnet_proto::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
                // google.rpc error details, so grpcurl can print ErrorInfo and friends.
                .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET),
            |builder, name| builder.with_service_name(*name),
        )
    };
    let reflection_v1 = reflection().build_v1()?;
    let reflection_v1alpha = reflection().build_v1alpha()?;
    let routes = routes
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);

    let local_addr = listener.local_addr()?;
    let server = &settings.server;
    let grace = Duration::from_millis(server.shutdown_grace_ms);
    let drain_deadline = Duration::from_millis(server.drain_deadline_ms);
    let services: Vec<&'static str> = grpc_services.to_vec();

    let stop_accepting = {
        let shutdown = shutdown.clone();
        async move {
            shutdown.triggered().await;
            let mut stopping = stopping.lock().await;
            *stopping = true;
            reporter.set_service_status("", ServingStatus::NotServing).await;
            for name in services {
                reporter.set_service_status(name, ServingStatus::NotServing).await;
            }
            drop(stopping);
            tracing::info!(%local_addr, ?grace, "shutting down: NOT_SERVING");
            tokio::time::sleep(grace).await;
        }
    };
    let mut builder = Server::builder();
    if let Some(tls) = crate::tls::server_config(&settings.tls)? {
        builder = builder.tls_config(tls)?;
    }
    let router = builder
        // The middleware ends calls at their deadline with DEADLINE_EXCEEDED; this is
        // only the backstop.
        .timeout(Duration::from_millis(
            server.request_timeout_ms.saturating_add(1_000),
        ))
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .layer(RpcLayer::new(verifier, server, domain, access))
        .add_routes(routes);
    // Unary RPCs are small writes: without TCP_NODELAY each reply waits on the
    // peer's delayed ACK (~40 ms).
    let incoming = TcpIncoming::from(listener)
        .with_nodelay(Some(true))
        .with_keepalive(Some(Duration::from_secs(60)));
    let serving = router.serve_with_incoming_shutdown(incoming, stop_accepting);

    let task = tokio::spawn(async move {
        tokio::select! {
            result = serving => result.map_err(anyhow::Error::from),
            _ = async {
                shutdown.triggered().await;
                tokio::time::sleep(grace + drain_deadline).await;
            } => {
                tracing::warn!(%local_addr, "drain deadline passed; dropping remaining calls");
                Ok(())
            }
        }
    });
    tracing::info!(%local_addr, domain, "serving");
    Ok(ServerHandle {
        local_addr,
        task,
        after: Vec::new(),
    })
}

/// Binds `host:port` (port 0 picks a free one).
pub async fn bind(settings: &Settings, port: u16) -> anyhow::Result<TcpListener> {
    let address = format!("{}:{port}", settings.server.host);
    TcpListener::bind(&address)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {address}: {e}"))
}
