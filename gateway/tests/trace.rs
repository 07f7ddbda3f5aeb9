//! One REST call yields spans from the gateway and the service it calls,
//! sharing one trace id (captured with an in-process exporter).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use kefu_kit::auth::Role;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use reqwest::Method;
use tracing_subscriber::layer::SubscriberExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rest_call_is_one_trace_across_gateway_and_service() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
    kefu_kit::telemetry::set_tracer_provider(provider.clone());
    let subscriber =
        tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let app = common::spawn(common::Backend::Embedded).await.expect("embedded backend");
    let t = app.token(Role::Agent);
    let (s, _, _) = app.call(Method::GET, "/api/v1/festivals?year=2026", &t, None).await;
    assert_eq!(s, 200);
    // A browser's own trace context is continued.
    let parent_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let r = app
        .http
        .get(app.url("/api/v1/festivals?year=2027"))
        .bearer_auth(&t)
        .header("traceparent", format!("00-{parent_trace}-00f067aa0ba902b7-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    provider.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    let gateway = spans.iter().filter(|s| s.name == "GET /api/v1/festivals").collect::<Vec<_>>();
    let service =
        spans.iter().filter(|s| s.name == "kefu.customers.v1.CustomerService/ListFestivals").collect::<Vec<_>>();
    assert_eq!(
        (gateway.len(), service.len()),
        (2, 2),
        "{:?}",
        spans.iter().map(|s| s.name.clone()).collect::<Vec<_>>()
    );
    for (g, svc) in gateway.iter().zip(service.iter()) {
        assert_eq!(g.span_context.trace_id(), svc.span_context.trace_id(), "one trace");
        assert_eq!(svc.parent_span_id, g.span_context.span_id(), "the service span is the gateway span's child");
    }
    assert!(
        gateway.iter().any(|g| g.span_context.trace_id().to_string() == parent_trace),
        "browser traceparent continued"
    );
}
