//! The local API on `listen.local`: health, readiness and metrics, and the workflow runtime's
//! `/v1/...` endpoints ([`runtime::api`]).

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::metrics::Metrics;
use crate::runtime;

/// The local API's listener for `axum::serve`: axum's own waits out a failed accept with a
/// `tokio::time` timer, which would panic on the sidecar's runtime.
pub struct Listener(pub tokio::net::TcpListener);

impl axum::serve::Listener for Listener {
    type Io = tokio::net::TcpStream;
    type Addr = SocketAddr;

    fn accept(
        &mut self,
    ) -> impl std::future::Future<Output = (tokio::net::TcpStream, SocketAddr)> + Send {
        crate::server::accept(&self.0, "local API")
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

#[derive(Clone)]
struct Local {
    metrics: Metrics,
    app: SocketAddr,
}

pub fn router(metrics: Metrics, app: SocketAddr, runtime: Option<runtime::Handle>) -> Router {
    let base = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(Local { metrics, app });
    match runtime {
        Some(handle) => base
            .merge(runtime::api::router(handle))
            .fallback(runtime::api::unknown),
        None => base,
    }
}

/// Ready when the app accepts connections: before that, traffic sent here would only fail.
async fn readyz(State(local): State<Local>) -> Response {
    let connect = tokio::net::TcpStream::connect(local.app);
    match crate::timer::timeout(Duration::from_millis(500), connect).await {
        Ok(Ok(_)) => (StatusCode::OK, "ready\n").into_response(),
        Ok(Err(e)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "not ready: the app at {} refuses connections: {e}\n",
                local.app
            ),
        )
            .into_response(),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: the app at {} does not answer\n", local.app),
        )
            .into_response(),
    }
}

async fn metrics_text(State(local): State<Local>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        local.metrics.render(),
    )
        .into_response()
}
