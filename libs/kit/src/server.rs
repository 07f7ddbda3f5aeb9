//! The gRPC server every kefu service runs on: health, reflection, the
//! observe/auth layers, request timeout, a global concurrency limit with load
//! shedding, an admin HTTP port for Prometheus, and graceful shutdown.
use std::{convert::Infallible, future::Future, net::SocketAddr, pin::Pin, sync::Arc, time::Duration};

use axum::{Router, http::StatusCode, response::IntoResponse, routing::get};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::{body::Body, server::NamedService, service::RoutesBuilder};
use tonic_health::{ServingStatus, server::HealthReporter};
use tower::Service;

use crate::{
    access::{Access, AccessMap},
    auth::TokenVerifier,
    config::ServerArgs,
    observe::{AuthLayer, LimitLayer, ObserveLayer},
};

type AddRoute = Box<dyn FnOnce(&mut RoutesBuilder) + Send>;

/// A readiness probe: `Ok` when the dependency answers.
pub type Probe = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;

/// A dependency the server reports on in `/readyz` and gRPC health.
#[derive(Clone)]
pub struct Check {
    pub name: String,
    /// When a required check fails the server is not ready (503,
    /// NOT_SERVING); otherwise it is only reported as degraded.
    pub required: bool,
    pub probe: Probe,
}

/// A database that answers `SELECT 1` within a second.
pub fn database_check(name: &str, pool: sqlx::AnyPool) -> Check {
    Check {
        name: name.to_owned(),
        required: true,
        probe: Arc::new(move || {
            let pool = pool.clone();
            Box::pin(async move {
                let ping = sqlx::query("SELECT 1").execute(&pool);
                match tokio::time::timeout(Duration::from_secs(1), ping).await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(e)) => Err(format!("database: {}", crate::error::Error::from(e))),
                    Err(_) => Err("database: no answer within 1 s".to_owned()),
                }
            })
        }),
    }
}

/// Runs every check (each bounded to two seconds); the failures by name.
async fn run_checks(checks: &[Check]) -> Vec<(String, bool, String)> {
    let runs = checks.iter().map(|c| async move {
        match tokio::time::timeout(Duration::from_secs(2), (c.probe)()).await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some((c.name.clone(), c.required, e)),
            Err(_) => Some((c.name.clone(), c.required, "no answer within 2 s".to_owned())),
        }
    });
    futures::future::join_all(runs).await.into_iter().flatten().collect()
}

/// Collects the services one process serves. Builders merge, so each
/// service builds its own and a process hosting several joins them.
#[derive(Default)]
pub struct ServerBuilder {
    routes: Vec<AddRoute>,
    names: Vec<&'static str>,
    access: AccessMap,
    checks: Vec<Check>,
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
        self.checks.extend(other.checks);
        self
    }

    /// Adds a dependency to report on in `/readyz` and gRPC health.
    #[must_use]
    pub fn check(mut self, check: Check) -> Self {
        self.checks.push(check);
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
            checks: self.checks,
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
    checks: Vec<Check>,
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

    /// Serves until `shutdown` is cancelled. Then: NOT_SERVING and `/readyz`
    /// 503 at once, still serving for `shutdown_delay` (load balancers stop
    /// sending), then no new connections and up to `shutdown_grace` for the
    /// requests in flight. Watch streams end when `shutdown` fires (their
    /// services hold the same token), so they do not hold up the drain.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let tls = self.args.tls.server_config(self.local_addr())?;
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

        let checks = Arc::new(self.checks);
        let stopping = CancellationToken::new();
        let admin = admin_router(stopping.clone(), checks.clone());
        let admin_shutdown = CancellationToken::new();
        let admin_stop = admin_shutdown.clone();
        let admin_task = tokio::spawn(async move {
            axum::serve(self.admin, admin).with_graceful_shutdown(async move { admin_stop.cancelled().await }).await
        });
        // gRPC health follows the required checks.
        let health_task = {
            let (reporter, names, checks, stopping) =
                (reporter.clone(), self.names.clone(), checks.clone(), stopping.clone());
            tokio::spawn(async move {
                let mut serving = true;
                let mut every = tokio::time::interval(Duration::from_secs(2));
                loop {
                    tokio::select! {
                        () = stopping.cancelled() => return,
                        _ = every.tick() => {}
                    }
                    let failing = run_checks(&checks).await;
                    let ok = !failing.iter().any(|(_, required, _)| *required);
                    if ok != serving {
                        serving = ok;
                        if ok {
                            tracing::info!("dependencies answer again: SERVING");
                        } else {
                            tracing::error!(failing = ?failing, "a required dependency is down: NOT_SERVING");
                        }
                        let status = if ok { ServingStatus::Serving } else { ServingStatus::NotServing };
                        if !stopping.is_cancelled() {
                            set_all(&reporter, &names, status).await;
                        }
                    }
                }
            })
        };

        let mut routes = self.routes;
        routes.add_service(health_service).add_service(reflection).add_service(reflection_alpha);

        let limit = self.args.concurrency_limit.unwrap_or(256) as usize;
        let drain = CancellationToken::new();
        let drain_signal = drain.clone();
        let router = tonic::transport::Server::builder()
            .layer(ObserveLayer)
            .layer(LimitLayer::new(limit, self.args.request_timeout))
            .layer(AuthLayer::new(self.verifier, self.access).per_caller(self.args.rate_limit_per_caller))
            .add_routes(routes.routes());
        let drained = async move { drain_signal.cancelled().await };
        let mut serve: Pin<Box<dyn Future<Output = Result<(), tonic::transport::Error>> + Send>> = match tls {
            Some(config) => {
                Box::pin(router.serve_with_incoming_shutdown(crate::tls::incoming(self.listener, config), drained))
            }
            None => Box::pin(router.serve_with_incoming_shutdown(crate::tls::incoming_plain(self.listener), drained)),
        };

        tokio::select! {
            r = &mut serve => { r?; }
            () = shutdown.cancelled() => {
                tracing::info!(delay = ?self.args.shutdown_delay, "shutting down: NOT_SERVING, still serving until load balancers stop sending");
                stopping.cancel();
                // The health follower must not write SERVING after this.
                health_task.abort();
                set_all(&reporter, &self.names, ServingStatus::NotServing).await;
                tokio::select! {
                    r = &mut serve => { r?; }
                    () = tokio::time::sleep(self.args.shutdown_delay) => {}
                }
                tracing::info!("draining in-flight requests");
                drain.cancel();
                match tokio::time::timeout(self.args.shutdown_grace, &mut serve).await {
                    Ok(r) => r?,
                    Err(_) => tracing::warn!(grace = ?self.args.shutdown_grace, "drain took longer than the grace period; stopping"),
                }
            }
        }
        stopping.cancel();
        health_task.abort();
        admin_shutdown.cancel();
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

fn admin_router(not_ready: CancellationToken, checks: Arc<Vec<Check>>) -> Router {
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
                let (not_ready, checks) = (not_ready.clone(), checks.clone());
                async move {
                    if not_ready.is_cancelled() {
                        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
                    }
                    let failing = run_checks(&checks).await;
                    let down: Vec<String> =
                        failing.iter().filter(|(_, r, _)| *r).map(|(n, _, e)| format!("{n}: {e}")).collect();
                    let degraded: Vec<String> =
                        failing.iter().filter(|(_, r, _)| !*r).map(|(n, _, e)| format!("{n}: {e}")).collect();
                    if !down.is_empty() {
                        (StatusCode::SERVICE_UNAVAILABLE, format!("not ready\n{}\n", down.join("\n"))).into_response()
                    } else if !degraded.is_empty() {
                        format!("ready, degraded\n{}\n", degraded.join("\n")).into_response()
                    } else {
                        "ready".into_response()
                    }
                }
            }),
        )
}
