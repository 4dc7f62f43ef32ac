//! The request pipeline every server runs, in one tower layer: a span per RPC that
//! continues the caller's W3C trace, load shedding beyond the concurrency limit
//! (`RESOURCE_EXHAUSTED` with `RetryInfo`, answered at once so the server stays
//! responsive), bearer-token authentication, and the service's access table
//! (`authz`): a role the RPC's rule does not name, or an RPC without a rule, is
//! `PERMISSION_DENIED` before any handler runs, and per-caller rate limits on the RPCs
//! phones call (`ratelimit`). Every outcome is counted and timed (`metrics`). Health
//! and reflection stay open and unmeasured.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tonic::body::Body;
use tower::{Layer, Service};
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::auth::{Role, TokenVerifier};
use crate::authz::{self, Rule};
use crate::error::ServiceError;
use crate::metrics;
use crate::ratelimit::RateLimiter;
use crate::settings::ServerSettings;
use crate::telemetry;

/// The call's gRPC status on its OpenTelemetry span. Not a `tracing` field: the
/// JSON log layer re-serializes a span's fields on every record (about 4 % of a
/// cached `GetCustomer`'s CPU in `perf`), and a status is known only when no log
/// line of the call is left to carry it.
fn status_code(span: &tracing::Span, code: i32) {
    span.set_attribute("rpc.grpc.status_code", i64::from(code));
}

/// Paths that need no token.
fn is_open(path: &str) -> bool {
    path.starts_with("/grpc.health.") || path.starts_with("/grpc.reflection.")
}

#[derive(Clone)]
pub struct RpcLayer {
    /// The longest a call may take (`server.request_timeout_ms`).
    request_timeout: Duration,
    verifier: Arc<TokenVerifier>,
    permits: Arc<Semaphore>,
    limiter: Arc<RateLimiter>,
    domain: &'static str,
    access: Arc<[&'static [Rule]]>,
}

impl RpcLayer {
    /// `access`: the tables of every gRPC service the server hosts.
    pub fn new(
        verifier: TokenVerifier,
        server: &ServerSettings,
        domain: &'static str,
        access: &[&'static [Rule]],
    ) -> Self {
        Self {
            request_timeout: Duration::from_millis(server.request_timeout_ms.max(1)),
            verifier: Arc::new(verifier),
            permits: Arc::new(Semaphore::new(server.concurrency_limit.max(1))),
            limiter: Arc::new(RateLimiter::new(&server.rate_limit)),
            domain,
            access: access.into(),
        }
    }
}

impl<S> Layer<S> for RpcLayer {
    type Service = RpcService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcService {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Clone)]
pub struct RpcService<S> {
    inner: S,
    layer: RpcLayer,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl<S, B> Service<http::Request<B>> for RpcService<S>
where
    S: Service<http::Request<B>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        // The ready inner service is the one to call; leave a fresh clone behind.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        let path = request.uri().path().to_string();
        let open = is_open(&path);
        // The token first (verified tokens are remembered, so this is cheap), so the
        // span is born with its caller instead of recording it later.
        let verified = (!open).then(|| {
            layer
                .verifier
                .verify_header(request.headers().get("authorization"))
        });
        // The log layer formats a span's fields as JSON when the span is made, for
        // the log lines of the call: name and caller there; the method only on the
        // OpenTelemetry span.
        let span = match &verified {
            Some(Ok(caller)) => tracing::info_span!(
                "rpc",
                otel.name = %path,
                otel.kind = "server",
                caller = %format_args!("{}:{}", caller.role, caller.sub),
            ),
            _ => tracing::info_span!("rpc", otel.name = %path, otel.kind = "server", caller = ""),
        };
        span.set_attribute("rpc.method", path.clone());
        telemetry::continue_trace_from_headers(&span, request.headers());

        let started = Instant::now();
        let reject = |error: ServiceError| -> Self::Future {
            let status = error.into_status(layer.domain);
            metrics::rpc_finished(&path, status.code() as i32, started.elapsed());
            Box::pin(async move { Ok(status.into_http::<Body>()) })
        };

        let Some(verified) = verified else {
            return Box::pin(async move { inner.call(request).await }.instrument(span));
        };
        let Ok(permit) = layer.permits.clone().try_acquire_owned() else {
            tracing::warn!(parent: &span, "shedding load: concurrency limit reached");
            return reject(ServiceError::resource_exhausted(
                "SERVER_OVERLOADED",
                "the server is at its concurrency limit; retry shortly",
            ));
        };
        match verified {
            Ok(mut caller) => {
                caller.trace_id = telemetry::trace_id(&span, request.headers());
                match authz::rule_for(&layer.access, &path) {
                    Some(rule) if rule.roles.contains(&caller.role) => {}
                    Some(_) => {
                        status_code(&span, 7);
                        return reject(caller.require(&[]).err().unwrap_or_else(|| {
                            ServiceError::permission_denied("this role may not call this method")
                        }));
                    }
                    None => {
                        status_code(&span, 7);
                        return reject(ServiceError::new(
                            tonic::Code::PermissionDenied,
                            "NO_ACCESS_RULE",
                            format!("{path} has no access rule, so nobody may call it"),
                        ));
                    }
                }
                if caller.role != Role::Service
                    && layer.limiter.applies_to(&path)
                    && let Err(wait) = layer.limiter.take(&caller.idempotency_scope(), Instant::now())
                {
                    status_code(&span, 8);
                    return reject(
                        ServiceError::resource_exhausted(
                            "RATE_LIMITED",
                            "too many calls from this caller; retry after the delay given",
                        )
                        .with_retry_after(wait),
                    );
                }
                request.extensions_mut().insert(caller);
            }
            Err(error) => {
                status_code(&span, 16);
                return reject(error);
            }
        }
        // The call's deadline: the caller's, or the server's limit if nearer.
        let timeout = request
            .headers()
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(crate::deadline::parse_grpc_timeout)
            .map_or(layer.request_timeout, |t| t.min(layer.request_timeout));
        let domain = layer.domain;
        Box::pin(
            async move {
                let deadline = started + timeout;
                let call = crate::deadline::scope(deadline, inner.call(request));
                let Ok(result) = tokio::time::timeout(timeout, call).await else {
                    drop(permit);
                    status_code(&tracing::Span::current(), 4);
                    tracing::debug!(timeout_ms = timeout.as_millis() as u64, "deadline exceeded");
                    metrics::rpc_finished(&path, tonic::Code::DeadlineExceeded as i32, started.elapsed());
                    let status = ServiceError::new(
                        tonic::Code::DeadlineExceeded,
                        "DEADLINE_EXCEEDED",
                        "the call's deadline passed before it finished",
                    )
                    .into_status(domain);
                    return Ok(status.into_http::<Body>());
                };
                drop(permit);
                if let Ok(response) = &result {
                    // Errors travel as trailers-only responses with grpc-status in the
                    // headers; success reports its status in trailers.
                    let code = response
                        .headers()
                        .get("grpc-status")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<i32>().ok())
                        .unwrap_or(0);
                    status_code(&tracing::Span::current(), code);
                    metrics::rpc_finished(&path, code, started.elapsed());
                    tracing::debug!(
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        code,
                        "rpc finished"
                    );
                }
                result
            }
            .instrument(span),
        )
    }
}
