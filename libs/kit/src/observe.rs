//! Tower layers every kefu gRPC server runs: W3C trace context extraction
//! with a span per RPC, RED metrics per RPC, and bearer-token verification.
use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, OnceLock},
    task::{Context, Poll},
    time::Instant,
};

use opentelemetry::{
    KeyValue, global,
    metrics::{Counter, Histogram},
    propagation::{Extractor, Injector},
    trace::TraceContextExt,
};
use tower::{Layer, Service};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::{access::AccessMap, auth::TokenVerifier};

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// Writes W3C trace context into outgoing gRPC metadata.
pub struct MetadataInjector<'a>(pub &'a mut tonic::metadata::MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(k), Ok(v)) = (
            tonic::metadata::MetadataKey::from_bytes(key.as_bytes()),
            tonic::metadata::MetadataValue::try_from(value.as_str()),
        ) {
            self.0.insert(k, v);
        }
    }
}

/// Injects the current span's trace context into `metadata`.
pub fn inject_trace_context(metadata: &mut tonic::metadata::MetadataMap) {
    let cx = tracing::Span::current().context();
    global::get_text_map_propagator(|p| p.inject_context(&cx, &mut MetadataInjector(metadata)));
}

struct RpcMetrics {
    requests: Counter<u64>,
    duration: Histogram<f64>,
}

fn rpc_metrics() -> &'static RpcMetrics {
    static M: OnceLock<RpcMetrics> = OnceLock::new();
    M.get_or_init(|| {
        let meter = crate::telemetry::meter();
        RpcMetrics {
            requests: meter
                .u64_counter("rpc.server.requests")
                .with_description("gRPC requests handled, by service, method and status code")
                .build(),
            duration: meter
                .f64_histogram("rpc.server.duration")
                .with_unit("s")
                .with_description("gRPC request duration")
                .with_boundaries(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0])
                .build(),
        }
    })
}

/// Splits `/kefu.customers.v1.CustomerService/GetCustomer`.
fn split_path(path: &str) -> (String, String) {
    let p = path.trim_start_matches('/');
    match p.split_once('/') {
        Some((s, m)) => (s.to_owned(), m.to_owned()),
        None => (p.to_owned(), String::new()),
    }
}

/// Span per RPC (child of the caller's trace), RED metrics, request id.
#[derive(Clone, Default)]
pub struct ObserveLayer;

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Observe { inner }
    }
}

#[derive(Clone)]
pub struct Observe<S> {
    inner: S,
}

type BoxFut<R, E> = Pin<Box<dyn Future<Output = Result<R, E>> + Send>>;

impl<S, B, RB> Service<http::Request<B>> for Observe<S>
where
    S: Service<http::Request<B>, Response = http::Response<RB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
    RB: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFut<S::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let (service, method) = split_path(req.uri().path());
        let request_id = req
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= 128)
            .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned);
        let parent = global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(req.headers())));
        let span = tracing::info_span!(
            "rpc",
            otel.name = %format!("{service}/{method}"),
            otel.kind = "server",
            rpc.system = "grpc",
            rpc.service = %service,
            rpc.method = %method,
            request_id = %request_id,
            staff_id = tracing::field::Empty,
            trace_id = tracing::field::Empty,
            rpc.grpc.status_code = tracing::field::Empty,
        );
        let _ = span.set_parent(parent);
        let trace_id = span.context().span().span_context().trace_id();
        span.record("trace_id", tracing::field::display(trace_id));

        // Take the service that was made ready; leave a fresh clone behind.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let start = Instant::now();
        let fut = async move {
            let result = inner.call(req).await;
            let code = match &result {
                Ok(resp) => resp
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<i32>().ok())
                    .unwrap_or(0),
                Err(_) => 2,
            };
            tracing::Span::current().record("rpc.grpc.status_code", code);
            let attrs = [
                KeyValue::new("rpc.service", service),
                KeyValue::new("rpc.method", method),
                KeyValue::new("rpc.grpc.status_code", i64::from(code)),
            ];
            let m = rpc_metrics();
            m.requests.add(1, &attrs);
            m.duration.record(start.elapsed().as_secs_f64(), &attrs);
            if code == 13 {
                tracing::warn!(code, "rpc failed");
            } else {
                tracing::debug!(code, "rpc done");
            }
            result.map(|mut resp| {
                if let Ok(v) = http::HeaderValue::from_str(&request_id) {
                    resp.headers_mut().insert("x-request-id", v);
                }
                resp
            })
        };
        Box::pin(fut.instrument(span))
    }
}

/// Verifies the bearer token on every RPC except health and reflection,
/// checks the caller's roles against the services' access tables (an RPC
/// missing from them is refused), and puts the `Principal` on the request
/// for the handlers.
type CallerLimiter = governor::DefaultKeyedRateLimiter<String>;

#[derive(Clone)]
pub struct AuthLayer {
    verifier: Arc<TokenVerifier>,
    access: Arc<AccessMap>,
    per_caller: Option<Arc<CallerLimiter>>,
}

impl AuthLayer {
    pub fn new(verifier: TokenVerifier, access: AccessMap) -> Self {
        Self { verifier: Arc::new(verifier), access: Arc::new(access), per_caller: None }
    }

    /// Limits each person (token subject) to `per_second` calls, bursts of
    /// twice that; 0 leaves callers unlimited. The service role is exempt.
    #[must_use]
    pub fn per_caller(mut self, per_second: u32) -> Self {
        self.per_caller = std::num::NonZeroU32::new(per_second).map(|rate| {
            let burst = rate.saturating_mul(std::num::NonZeroU32::MIN.saturating_add(1));
            Arc::new(governor::RateLimiter::keyed(governor::Quota::per_second(rate).allow_burst(burst)))
        });
        self
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Auth<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Auth {
            inner,
            verifier: self.verifier.clone(),
            access: self.access.clone(),
            per_caller: self.per_caller.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Auth<S> {
    inner: S,
    verifier: Arc<TokenVerifier>,
    access: Arc<AccessMap>,
    per_caller: Option<Arc<CallerLimiter>>,
}

/// Paths served without a token: probes and service discovery.
fn is_public(path: &str) -> bool {
    path.starts_with("/grpc.health.v1.Health/") || path.starts_with("/grpc.reflection.")
}

impl<S, B> Service<http::Request<B>> for Auth<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFut<S::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        if !is_public(req.uri().path()) {
            let decided = self
                .verifier
                .verify_header(req.headers().get(http::header::AUTHORIZATION))
                .and_then(|p| self.access.check(req.uri().path(), &p.roles).map(|role| p.acting_as(role)));
            match decided {
                Ok(principal) => {
                    tracing::Span::current().record("staff_id", principal.subject.as_str());
                    if let Some(limiter) = &self.per_caller
                        && !principal.roles.contains(&crate::auth::Role::Service)
                        && limiter.check_key(&principal.subject).is_err()
                    {
                        let status = tonic::Status::resource_exhausted(
                            "too many requests from this caller; slow down and retry with backoff",
                        );
                        return Box::pin(async move { Ok(status.into_http()) });
                    }
                    req.extensions_mut().insert(principal);
                }
                Err(e) => {
                    let status: tonic::Status = e.into();
                    return Box::pin(async move { Ok(status.into_http()) });
                }
            }
        }
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(inner.call(req))
    }
}

/// Bounds the work a server takes on. At most `limit` RPCs run at once;
/// beyond it a call is answered UNAVAILABLE at once (retryable, and counted
/// by [`ObserveLayer`] outside this layer). Each unary RPC may run for
/// `timeout`, then it is answered DEADLINE_EXCEEDED. Health checks and
/// reflection are exempt from both, so a loaded server still answers its
/// probes; server-streaming RPCs (watches) take no slot and no timeout,
/// client-streaming ones (imports) hold a slot but are bounded by their
/// client, not by the unary timeout.
#[derive(Clone)]
pub struct LimitLayer {
    permits: Arc<tokio::sync::Semaphore>,
    limit: usize,
    timeout: std::time::Duration,
    streaming: Arc<std::collections::HashMap<String, bool>>,
}

impl LimitLayer {
    pub fn new(limit: usize, timeout: std::time::Duration) -> Self {
        Self {
            permits: Arc::new(tokio::sync::Semaphore::new(limit.max(1))),
            limit: limit.max(1),
            timeout,
            streaming: Arc::new(streaming_methods()),
        }
    }
}

/// `/package.Service/Method` → whether the server streams, for every
/// streaming method of kefu's contract.
fn streaming_methods() -> std::collections::HashMap<String, bool> {
    let fds: prost_types::FileDescriptorSet =
        prost::Message::decode(kefu_proto::FILE_DESCRIPTOR_SET).unwrap_or_default();
    let mut out = std::collections::HashMap::new();
    for f in &fds.file {
        for s in &f.service {
            for m in &s.method {
                if m.client_streaming() || m.server_streaming() {
                    out.insert(format!("/{}.{}/{}", f.package(), s.name(), m.name()), m.server_streaming());
                }
            }
        }
    }
    out
}

impl<S> Layer<S> for LimitLayer {
    type Service = Limit<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Limit { inner, layer: self.clone() }
    }
}

#[derive(Clone)]
pub struct Limit<S> {
    inner: S,
    layer: LimitLayer,
}

impl<S, B> Service<http::Request<B>> for Limit<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFut<S::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let path = req.uri().path();
        let server_streams = self.layer.streaming.get(path).copied();
        if is_public(path) || server_streams == Some(true) {
            return Box::pin(inner.call(req));
        }
        let Ok(permit) = self.layer.permits.clone().try_acquire_owned() else {
            let status = tonic::Status::unavailable(format!(
                "the server is at its limit of {} requests at once; retry with backoff",
                self.layer.limit
            ));
            return Box::pin(async move { Ok(status.into_http()) });
        };
        let timeout = self.layer.timeout;
        if server_streams == Some(false) {
            // Client streaming: the slot is held until the handler answers.
            return Box::pin(async move {
                let out = inner.call(req).await;
                drop(permit);
                out
            });
        }
        Box::pin(async move {
            let out = match tokio::time::timeout(timeout, inner.call(req)).await {
                Ok(r) => r,
                Err(_) => Ok(tonic::Status::deadline_exceeded(format!(
                    "the request took longer than {} ms; it may or may not have taken effect, retry with the same request id",
                    timeout.as_millis()
                ))
                .into_http()),
            };
            drop(permit);
            out
        })
    }
}
