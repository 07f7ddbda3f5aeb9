//! Logs (JSON or pretty), OpenTelemetry traces over OTLP when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set, and metrics exported both to a
//! Prometheus registry (scraped at `/metrics`) and over OTLP when configured.
use std::sync::OnceLock;

use opentelemetry::{global, trace::TracerProvider as _};
use opentelemetry_sdk::{
    Resource, metrics::SdkMeterProvider, propagation::TraceContextPropagator, trace::SdkTracerProvider,
};
use tracing_subscriber::{EnvFilter, layer::SubscriberExt, util::SubscriberInitExt};

use crate::config::{LogFormat, TelemetryArgs};

struct Metrics {
    registry: prometheus::Registry,
    provider: SdkMeterProvider,
}

static METRICS: OnceLock<Metrics> = OnceLock::new();

fn otlp_configured() -> bool {
    std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").is_ok_and(|v| !v.trim().is_empty())
        || std::env::var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_ok_and(|v| !v.trim().is_empty())
}

fn metrics() -> &'static Metrics {
    METRICS.get_or_init(|| {
        let registry = prometheus::Registry::new();
        let mut builder = SdkMeterProvider::builder();
        match opentelemetry_prometheus::exporter().with_registry(registry.clone()).build() {
            Ok(exporter) => builder = builder.with_reader(exporter),
            Err(e) => eprintln!("kefu: prometheus exporter unavailable: {e}"),
        }
        if otlp_configured() {
            match opentelemetry_otlp::MetricExporter::builder().with_tonic().build() {
                Ok(exporter) => builder = builder.with_periodic_exporter(exporter),
                Err(e) => eprintln!("kefu: OTLP metrics exporter unavailable: {e}"),
            }
        }
        let provider = builder.with_resource(resource("kefu")).build();
        global::set_meter_provider(provider.clone());
        Metrics { registry, provider }
    })
}

fn resource(service: &str) -> Resource {
    Resource::builder().with_service_name(service.to_owned()).build()
}

/// A meter on the process-wide provider.
pub fn meter() -> opentelemetry::metrics::Meter {
    metrics();
    global::meter("kefu")
}

/// Prometheus text exposition of every metric so far.
pub fn render_prometheus() -> String {
    use prometheus::Encoder;
    let m = metrics();
    let mut out = Vec::new();
    if let Err(e) = prometheus::TextEncoder::new().encode(&m.registry.gather(), &mut out) {
        tracing::warn!(error = %e, "encoding metrics");
    }
    String::from_utf8(out).unwrap_or_default()
}

/// Flushes and stops exporters on drop (from a blocking thread, because the
/// batch exporter blocks for its timeout on a current-thread runtime).
pub struct TelemetryGuard {
    tracer: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    pub async fn shutdown(mut self) {
        let tracer = self.tracer.take();
        let _ = tokio::task::spawn_blocking(move || {
            if let Some(t) = tracer
                && let Err(e) = t.shutdown()
            {
                eprintln!("kefu: trace exporter shutdown: {e}");
            }
            if let Some(m) = METRICS.get() {
                let _ = m.provider.force_flush();
            }
        })
        .await;
    }
}

/// Installs logging, tracing and metrics for the process. Safe to call more
/// than once (later calls keep the first subscriber).
pub fn init(service: &str, args: &TelemetryArgs) -> anyhow::Result<TelemetryGuard> {
    global::set_text_map_propagator(TraceContextPropagator::new());
    metrics();
    let filter = EnvFilter::try_new(&args.log)
        .map_err(|e| anyhow::anyhow!("KEFU_LOG {:?} is not a valid filter: {e}", args.log))?;

    // A provider always exists so every request gets a real trace id (logged,
    // and propagated to the services it calls); spans leave the process only
    // when an OTLP endpoint is configured.
    let mut builder = SdkTracerProvider::builder().with_resource(resource(service));
    if otlp_configured() {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .build()
            .map_err(|e| anyhow::anyhow!("OTLP trace exporter: {e}"))?;
        builder = builder.with_batch_exporter(exporter);
    }
    let provider = builder.build();
    global::set_tracer_provider(provider.clone());
    let tracer_provider = Some(provider);
    let otel_layer = tracer_provider.as_ref().map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer("kefu")));

    let registry = tracing_subscriber::registry().with(filter).with(otel_layer);
    let result = match args.log_format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
        LogFormat::Pretty => {
            registry.with(tracing_subscriber::fmt::layer().compact().with_writer(std::io::stderr)).try_init()
        }
    };
    if result.is_err() {
        tracing::debug!("a subscriber was already installed");
    }
    Ok(TelemetryGuard { tracer: tracer_provider })
}

/// Installs the given tracer provider (tests use an in-memory exporter).
pub fn set_tracer_provider(provider: SdkTracerProvider) {
    global::set_text_map_propagator(TraceContextPropagator::new());
    global::set_tracer_provider(provider);
}
