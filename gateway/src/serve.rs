//! The gateway's listeners: the public API with its drain, and the admin
//! port (`/metrics`, `/healthz`, `/readyz`).
use std::{net::SocketAddr, time::Duration};

use axum::{
    Router,
    http::{StatusCode, header},
    response::IntoResponse,
    routing::get,
};

use crate::{Gateway, GatewayArgs};

/// The admin port, away from the public routes: Prometheus metrics,
/// liveness (`/healthz`) and readiness (`/readyz`: 503 once shutdown has
/// begun or while the gateway's database does not answer).
pub fn admin_router(db: sqlx::AnyPool, shutdown: tokio_util::sync::CancellationToken) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|| async {
                ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], kefu_kit::telemetry::render_prometheus())
            }),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || {
                let (db, shutdown) = (db.clone(), shutdown.clone());
                async move {
                    if shutdown.is_cancelled() {
                        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
                    }
                    let ping = tokio::time::timeout(Duration::from_secs(2), sqlx::query("SELECT 1").execute(&db)).await;
                    match ping {
                        Ok(Ok(_)) => "ready".into_response(),
                        _ => (StatusCode::SERVICE_UNAVAILABLE, "database unreachable").into_response(),
                    }
                }
            }),
        )
}

/// Serves until cancelled.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await?;
    Ok(())
}

/// Serves the public API until `shutdown`; then keeps serving for
/// `shutdown_delay` (the admin port's /readyz already answers 503), then
/// ends every event stream, stops accepting and gives requests in flight up
/// to `shutdown_grace`.
pub async fn serve_public(
    listener: tokio::net::TcpListener,
    app: Router,
    gw: &Gateway,
    args: &GatewayArgs,
    shutdown: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    let (draining, delay, grace) = (gw.draining.clone(), args.shutdown_delay, args.shutdown_grace);
    let signal = shutdown.clone();
    let server = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(async move {
            signal.cancelled().await;
            tokio::time::sleep(delay).await;
            tracing::info!("gateway draining: event streams end, no new connections");
            draining.cancel();
        })
        .into_future();
    tokio::pin!(server);
    tokio::select! {
        r = &mut server => r?,
        () = async { shutdown.cancelled().await; tokio::time::sleep(delay + grace).await } => {
            tracing::warn!(?grace, "requests still running after the grace period; stopping");
        }
    }
    Ok(())
}
