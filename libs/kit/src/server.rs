//! The gRPC server every kefu service runs on: health, reflection, the
//! observe/auth layers, request timeout, a global concurrency limit with load
//! shedding, an admin HTTP port for Prometheus, and graceful shutdown.
use std::{convert::Infallible, net::SocketAddr, time::Duration};

use axum::{Router, http::StatusCode, response::IntoResponse, routing::get};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::{body::Body, server::NamedService, service::RoutesBuilder};
use tonic_health::{ServingStatus, server::HealthReporter};
use tower::{Service, limit::GlobalConcurrencyLimitLayer};

use crate::{
    access::{Access, AccessMap},
    auth::TokenVerifier,
    config::ServerArgs,
    observe::{AuthLayer, ObserveLayer},
};

type AddRoute = Box<dyn FnOnce(&mut RoutesBuilder) + Send>;

/// Collects the services one process serves. Builders merge, so each
/// service builds its own and a process hosting several joins them.
#[derive(Default)]
pub struct ServerBuilder {
    routes: Vec<AddRoute>,
    names: Vec<&'static str>,
    access: AccessMap,
}

impl ServerBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a service with its access table (the auth layer enforces it).
    #[must_use]
    pub fn add_service<S>(mut self, svc: S, access: &'static Access) -> Self
    where
        S: Service<http::Request<Body>, Error = Infallible, Response = http::Response<Body>>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        assert_eq!(S::NAME, access.service, "a service must be added with its own access table");
        assert!(!self.names.contains(&S::NAME), "{} added twice", S::NAME);
        self.names.push(S::NAME);
        self.access.add(access);
        self.routes.push(Box::new(move |routes: &mut RoutesBuilder| {
            routes.add_service(svc);
        }));
        self
    }

    /// Adds every service of another builder.
    #[must_use]
    pub fn merge(mut self, other: ServerBuilder) -> Self {
        for name in &other.names {
            assert!(!self.names.contains(name), "{name} added twice");
        }
        self.names.extend(other.names);
        self.access.merge(other.access);
        self.routes.extend(other.routes);
        self
    }

    /// The gRPC service names added so far.
    pub fn names(&self) -> &[&'static str] {
        &self.names
    }

    /// Binds the gRPC and admin listeners (port 0 picks a free port).
    pub async fn bind(self, args: &ServerArgs, verifier: TokenVerifier) -> anyhow::Result<Server> {
        let listeners = Listeners::bind(args).await?;
        Ok(self.serve_on(listeners, args, verifier))
    }

    /// Uses listeners bound earlier (when services must know the server's
    /// own address, as in the all-in-one mode).
    pub fn serve_on(self, listeners: Listeners, args: &ServerArgs, verifier: TokenVerifier) -> Server {
        let mut routes = RoutesBuilder::default();
        for add in self.routes {
            add(&mut routes);
        }
        Server {
            listener: listeners.grpc,
            admin: listeners.admin,
            routes,
            names: self.names,
            access: self.access,
            verifier,
            args: args.clone(),
        }
    }
}

/// The bound gRPC and admin sockets of a server about to start.
pub struct Listeners {
    pub grpc: TcpListener,
    pub admin: TcpListener,
}

impl Listeners {
    pub async fn bind(args: &ServerArgs) -> anyhow::Result<Self> {
        let grpc = TcpListener::bind(args.listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen for gRPC on {}: {e}", args.listen))?;
        let admin = TcpListener::bind(args.admin_listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen for admin HTTP on {}: {e}", args.admin_listen))?;
        Ok(Self { grpc, admin })
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc.local_addr().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }
}

pub struct Server {
    listener: TcpListener,
    admin: TcpListener,
    routes: RoutesBuilder,
    names: Vec<&'static str>,
    access: AccessMap,
    verifier: TokenVerifier,
    args: ServerArgs,
}

impl Server {
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.args.listen)
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin.local_addr().unwrap_or(self.args.admin_listen)
    }

    /// Serves until `shutdown` is cancelled: then reports NOT_SERVING, stops
    /// accepting, drains in-flight requests (up to the grace period) and
    /// returns.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let (reporter, health_service) = tonic_health::server::health_reporter();
        set_all(&reporter, &self.names, ServingStatus::Serving).await;

        let reflection = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(kefu_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()?;
        let reflection_alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(kefu_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1alpha()?;

        let ready = CancellationToken::new();
        let admin = admin_router(ready.clone());
        let admin_shutdown = shutdown.clone();
        let admin_task = tokio::spawn(async move {
            axum::serve(self.admin, admin).with_graceful_shutdown(async move { admin_shutdown.cancelled().await }).await
        });

        let mut routes = self.routes;
        routes.add_service(health_service).add_service(reflection).add_service(reflection_alpha);

        let drain = CancellationToken::new();
        let drain_signal = drain.clone();
        let serve = tonic::transport::Server::builder()
            .timeout(self.args.request_timeout)
            .load_shed(true)
            .layer(ObserveLayer)
            .layer(GlobalConcurrencyLimitLayer::new(self.args.concurrency_limit as usize))
            .layer(AuthLayer::new(self.verifier, self.access))
            .add_routes(routes.routes())
            .serve_with_incoming_shutdown(TcpListenerStream::new(self.listener), async move {
                drain_signal.cancelled().await;
            });
        let mut serve = Box::pin(serve);

        tokio::select! {
            r = &mut serve => { r?; }
            () = shutdown.cancelled() => {
                tracing::info!("shutting down: reporting NOT_SERVING, draining in-flight requests");
                ready.cancel();
                set_all(&reporter, &self.names, ServingStatus::NotServing).await;
                drain.cancel();
                match tokio::time::timeout(self.args.shutdown_grace, &mut serve).await {
                    Ok(r) => r?,
                    Err(_) => tracing::warn!(grace = ?self.args.shutdown_grace, "drain took longer than the grace period; stopping"),
                }
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), admin_task).await;
        Ok(())
    }
}

async fn set_all(reporter: &HealthReporter, names: &[&'static str], status: ServingStatus) {
    reporter.set_service_status("", status).await;
    for n in names {
        reporter.set_service_status(*n, status).await;
    }
}

fn admin_router(not_ready: CancellationToken) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|| async {
                ([(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], crate::telemetry::render_prometheus())
            }),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || {
                let not_ready = not_ready.clone();
                async move {
                    if not_ready.is_cancelled() {
                        (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response()
                    } else {
                        "ready".into_response()
                    }
                }
            }),
        )
}
