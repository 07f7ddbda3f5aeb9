//! W3C trace context crosses a gRPC hop: a kefu client injects the current
//! span's context and the kefu server's span joins the same trace.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use kefu_kit::{
    auth::TokenVerifier,
    client::CallContext,
    config::ServerArgs,
    keys::{KeyEntry, parse_key_list},
    server::ServerBuilder,
};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

#[tokio::test]
async fn server_span_joins_the_callers_trace_and_metrics_count_the_call() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
    kefu_kit::telemetry::set_tracer_provider(provider.clone());
    let subscriber =
        tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    let _guard = tracing::subscriber::set_default(subscriber);

    let signer = kefu_kit::auth::TokenSigner::from_entry(&KeyEntry::generate("t")).unwrap();
    let verifier = TokenVerifier::new(&parse_key_list("p", &signer.public_key()).unwrap()).unwrap();
    let server = ServerBuilder::new().bind(&ServerArgs::on("127.0.0.1:0".parse().unwrap()), verifier).await.unwrap();
    let addr = server.local_addr();
    let stop = CancellationToken::new();
    let handle = tokio::spawn(server.run(stop.clone()).instrument(tracing::Span::none()));

    let client_span = tracing::info_span!("caller");
    async {
        let channel = kefu_kit::client::channel(&addr.to_string()).unwrap();
        let mut health =
            tonic_health::pb::health_client::HealthClient::with_interceptor(channel, CallContext::new(None).unwrap());
        health.check(tonic_health::pb::HealthCheckRequest { service: String::new() }).await.unwrap();
    }
    .instrument(client_span.clone())
    .await;
    drop(client_span);
    tokio::time::sleep(Duration::from_millis(100)).await;
    provider.force_flush().unwrap();

    let spans = exporter.get_finished_spans().unwrap();
    let caller = spans.iter().find(|s| s.name == "caller").expect("caller span exported");
    let server = spans.iter().find(|s| s.name == "grpc.health.v1.Health/Check").expect("server span exported");
    assert_eq!(server.span_context.trace_id(), caller.span_context.trace_id(), "one trace across the hop");
    assert_eq!(server.parent_span_id, caller.span_context.span_id(), "server span is the caller's child");

    let metrics = kefu_kit::telemetry::render_prometheus();
    assert!(
        metrics.lines().any(|l| l.starts_with("rpc_server_requests_total")
            && l.contains("rpc_method=\"Check\"")
            && l.contains("rpc_grpc_status_code=\"0\"")),
        "{metrics}"
    );
    stop.cancel();
    handle.await.unwrap().unwrap();
}
