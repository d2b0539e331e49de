//! The HTTP endpoints: `/healthz`, `/readyz` and `/metrics`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::health::Health;
use crate::metrics::Metrics;

/// An endpoint could not listen.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}")]
pub struct ServeError {
    addr: SocketAddr,
    source: std::io::Error,
}

#[derive(Clone)]
struct Endpoints {
    health: Health,
    metrics: Arc<Metrics>,
}

/// Binds the health and metrics addresses (one listener when they are equal) and serves until
/// `shutdown` is cancelled. Binding happens before this returns, so a taken port fails at start.
pub async fn serve(
    health_addr: SocketAddr,
    metrics_addr: SocketAddr,
    health: Health,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> Result<JoinSet<()>, ServeError> {
    let endpoints = Endpoints { health, metrics };
    let health_routes = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz));
    let metrics_routes = Router::new().route("/metrics", get(metrics_text));
    let routers = if health_addr == metrics_addr {
        vec![(health_addr, health_routes.merge(metrics_routes))]
    } else {
        vec![(health_addr, health_routes), (metrics_addr, metrics_routes)]
    };

    let mut servers = JoinSet::new();
    for (addr, router) in routers {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError { addr, source })?;
        let app = router.with_state(endpoints.clone());
        let shutdown = shutdown.clone();
        servers.spawn(async move {
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown.cancelled_owned())
                .await
            {
                tracing::error!(%addr, error = %e, "HTTP endpoint failed");
            }
        });
    }
    Ok(servers)
}

fn probe(result: Result<(), &'static str>) -> (StatusCode, &'static str) {
    match result {
        Ok(()) => (StatusCode::OK, "ok\n"),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, why),
    }
}

async fn healthz(State(endpoints): State<Endpoints>) -> impl IntoResponse {
    probe(endpoints.health.live())
}

async fn readyz(State(endpoints): State<Endpoints>) -> impl IntoResponse {
    probe(endpoints.health.ready())
}

async fn metrics_text(State(endpoints): State<Endpoints>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        endpoints.metrics.encode(),
    )
}
