//! Logs, traces and metrics, set up once per process: `tracing` (pretty in a
//! terminal, JSON otherwise), OTLP export of spans and metrics ([`crate::metrics`])
//! when an endpoint is configured, and the W3C trace context read from and written to
//! gRPC metadata and event envelopes.

use std::collections::HashMap;
use std::io::IsTerminal;

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::settings::TelemetrySettings;

/// Flushes and stops trace and metric export when the process shuts down.
#[derive(Default)]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
    meters: Option<SdkMeterProvider>,
}

impl TelemetryGuard {
    /// Exports every finished span and the metrics now, rather than at the next batch.
    pub fn flush(&self) {
        if let Some(provider) = &self.provider
            && let Err(error) = provider.force_flush()
        {
            eprintln!("trace flush: {error}");
        }
        if let Some(meters) = &self.meters
            && let Err(error) = meters.force_flush()
        {
            eprintln!("metrics flush: {error}");
        }
    }

    pub fn shutdown(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(error) = provider.shutdown()
        {
            eprintln!("telemetry shutdown: {error}");
        }
        if let Some(meters) = self.meters.take()
            && let Err(error) = meters.shutdown()
        {
            eprintln!("metrics shutdown: {error}");
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Installs the global subscriber. Safe to call more than once (tests): later calls
/// keep the first subscriber.
pub fn init(service_name: &str, settings: &TelemetrySettings) -> TelemetryGuard {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());

    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.log_filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let pretty = match settings.log_format.as_str() {
        "pretty" => true,
        "json" => false,
        _ => std::io::stderr().is_terminal(),
    };
    let fmt_layer = if pretty {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .compact()
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .json()
            .flatten_event(true)
            .boxed()
    };

    // The OpenTelemetry layer is always on so that trace context is continued and
    // forwarded between services; spans are exported only when a collector is set.
    let provider = match otlp_provider(service_name, &settings.otlp_endpoint) {
        Ok(provider) => provider,
        Err(error) => {
            eprintln!("OTLP export disabled: {error}");
            local_provider(service_name)
        }
    };
    // Parents come from the tracing span tree and trace context is read with
    // `OpenTelemetrySpanExt::context`, so spans need no OpenTelemetry context
    // attached on every poll, nor busy/idle clocks read on every enter and exit.
    let otel_layer = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("distnet"))
        .with_context_activation(false)
        .with_tracked_inactivity(false);
    // Metrics only where they go somewhere: without a collector the instruments stay
    // the global no-ops and cost nothing.
    let meters = match otlp_meters(service_name, settings) {
        Ok(meters) => meters,
        Err(error) => {
            eprintln!("OTLP metrics disabled: {error}");
            None
        }
    };
    if let Some(meters) = &meters {
        opentelemetry::global::set_meter_provider(meters.clone());
        crate::metrics::set_exporting();
    }
    let guard = TelemetryGuard {
        provider: Some(provider),
        meters,
    };

    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(fmt_layer)
        .with(otel_layer)
        .try_init();
    guard
}

fn resource(service_name: &str) -> opentelemetry_sdk::Resource {
    opentelemetry_sdk::Resource::builder()
        .with_service_name(service_name.to_string())
        .build()
}

/// Spans with trace ids but no exporter.
fn local_provider(service_name: &str) -> SdkTracerProvider {
    SdkTracerProvider::builder()
        .with_resource(resource(service_name))
        .build()
}

fn otlp_provider(service_name: &str, endpoint: &str) -> anyhow::Result<SdkTracerProvider> {
    use opentelemetry_otlp::WithExportConfig as _;
    if endpoint.is_empty() {
        return Ok(local_provider(service_name));
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource(service_name))
        .build())
}

fn otlp_meters(service_name: &str, settings: &TelemetrySettings) -> anyhow::Result<Option<SdkMeterProvider>> {
    use opentelemetry_otlp::WithExportConfig as _;
    if settings.otlp_endpoint.is_empty() {
        return Ok(None);
    }
    let exporter = opentelemetry_otlp::MetricExporter::builder()
        .with_tonic()
        .with_endpoint(&settings.otlp_endpoint)
        .build()?;
    let reader = opentelemetry_sdk::metrics::PeriodicReader::builder(exporter)
        .with_interval(std::time::Duration::from_millis(
            settings.metrics_interval_ms.max(100),
        ))
        .build();
    Ok(Some(
        SdkMeterProvider::builder()
            .with_reader(reader)
            .with_resource(resource(service_name))
            .build(),
    ))
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

struct MetadataInjector<'a>(&'a mut tonic::metadata::MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) = (
            tonic::metadata::MetadataKey::from_bytes(key.as_bytes()),
            tonic::metadata::MetadataValue::try_from(value.as_str()),
        ) {
            self.0.insert(key, value);
        }
    }
}

/// Makes `span` a child of the trace context carried in the request headers.
pub fn continue_trace_from_headers(span: &tracing::Span, headers: &http::HeaderMap) {
    let propagator = TraceContextPropagator::new();
    let context = propagator.extract(&HeaderExtractor(headers));
    let _ = span.set_parent(context);
}

/// Makes `span` a child of a trace context stored with an event.
pub fn continue_trace_from_map(span: &tracing::Span, carrier: &HashMap<String, String>) {
    let propagator = TraceContextPropagator::new();
    let context = propagator.extract(carrier);
    let _ = span.set_parent(context);
}

/// The trace `span` belongs to (32 hex digits): its OpenTelemetry context when
/// tracing exports, otherwise the caller's `traceparent`; empty when neither.
pub fn trace_id(span: &tracing::Span, headers: &http::HeaderMap) -> String {
    use opentelemetry::trace::TraceContextExt as _;
    let context = span.context();
    let span_context = context.span().span_context().clone();
    if span_context.is_valid() {
        return span_context.trace_id().to_string();
    }
    headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(|parent| parent.split('-').nth(1))
        .filter(|id| {
            id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) && id.bytes().any(|b| b != b'0')
        })
        .map(str::to_ascii_lowercase)
        .unwrap_or_default()
}

/// The current span's trace context, for an outgoing event.
pub fn current_trace_context() -> HashMap<String, String> {
    let mut carrier = HashMap::new();
    let context = tracing::Span::current().context();
    TraceContextPropagator::new().inject_context(&context, &mut carrier);
    carrier
}

/// Writes the current span's trace context into outgoing request metadata.
pub fn inject_current_context(metadata: &mut tonic::metadata::MetadataMap) {
    let context = tracing::Span::current().context();
    TraceContextPropagator::new().inject_context(&context, &mut MetadataInjector(metadata));
}

/// A tonic client interceptor that forwards the current trace context.
#[derive(Clone, Copy, Debug, Default)]
pub struct PropagateTrace;

impl tonic::service::Interceptor for PropagateTrace {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        let context = tracing::Span::current().context();
        TraceContextPropagator::new().inject_context(&context, &mut MetadataInjector(request.metadata_mut()));
        Ok(request)
    }
}
