//! The local API on `listen.local`: health, readiness, metrics and the registry as this
//! sidecar sees it, and the workflow runtime's `/v1/...` endpoints ([`runtime::api`]).

use std::borrow::Cow;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{MatchedPath, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::IntoResponse;
use axum::routing::get;
use http_body_util::BodyExt;
use hyper::{Request, Response};
use tokio::net::TcpListener;
use tower_service::Service;

use crate::body::{self, Body};
use crate::config::Limits;
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::{runtime, server};

/// Serves the local API on `listener` until `shutdown`, through the same server as the data
/// plane's listeners: its limits (a head due within the header-read time, header size and
/// count, a cap on open connections), HTTP/2 by preface, a drain on stop, and each request
/// counted under `direction="local"` and the route template it matched. `listen.local` is
/// bound beyond loopback where Prometheus scrapes the pod, so a client that opens connections
/// and never finishes a head must not hold them, or the file descriptors the data plane needs.
pub async fn serve(
    listener: TcpListener,
    limits: Arc<Limits>,
    metrics: Metrics,
    router: Router,
    shutdown: impl Future<Output = ()>,
) {
    let handle = move |request: Request<Body>, _caller| answer(router.clone(), request);
    server::serve(listener, "local", limits, metrics, None, handle, shutdown).await;
}

/// The router's answer, its body read whole (every local API answer is a short document built
/// in memory), and the route it matched.
async fn answer(mut router: Router, request: Request<Body>) -> (Response<Body>, Cow<'static, str>) {
    let answer = match Service::call(&mut router, request).await {
        Ok(answer) => answer,
        Err(never) => match never {},
    };
    let (parts, content) = answer.into_parts();
    let route = parts
        .extensions
        .get::<Matched>()
        .map_or(Cow::Borrowed("unmatched"), |m| {
            Cow::Owned(m.0.as_str().to_owned())
        });
    match content.collect().await {
        Ok(content) => (
            Response::from_parts(parts, body::full(content.to_bytes())),
            route,
        ),
        Err(e) => (
            body::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "local_api_failed",
                format!("the answer could not be made: {e}"),
            ),
            route,
        ),
    }
}

/// The route template a request matched, carried out on its answer for the metrics' label.
#[derive(Clone)]
struct Matched(MatchedPath);

async fn note_route(request: axum::extract::Request, next: Next) -> axum::response::Response {
    let matched = request.extensions().get::<MatchedPath>().cloned();
    let mut answer = next.run(request).await;
    if let Some(matched) = matched {
        answer.extensions_mut().insert(Matched(matched));
    }
    answer
}

#[derive(Clone)]
struct Local {
    metrics: Metrics,
    app: SocketAddr,
    registry: Registry,
}

pub fn router(
    metrics: Metrics,
    app: SocketAddr,
    registry: Registry,
    runtime: Option<runtime::Handle>,
) -> Router {
    let base = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .route("/v1/registry", get(registry_view))
        .with_state(Local {
            metrics,
            app,
            registry,
        });
    // Only matched routes pass the layer; the rest are counted as "unmatched".
    match runtime {
        Some(handle) => base
            .merge(runtime::api::router(handle))
            .route_layer(middleware::from_fn(note_route))
            .fallback(runtime::api::unknown),
        None => base.route_layer(middleware::from_fn(note_route)),
    }
}

/// Ready when the app accepts connections: before that, traffic sent here would only fail.
async fn readyz(State(local): State<Local>) -> axum::response::Response {
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

/// The services this sidecar can route to, and how it sees each instance's load: what the
/// outbound proxy's choices are made from.
async fn registry_view(State(local): State<Local>) -> axum::response::Response {
    axum::Json(serde_json::json!({
        "revision": local.registry.revision(),
        "services": local.registry.listed(),
    }))
    .into_response()
}

async fn metrics_text(State(local): State<Local>) -> axum::response::Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        local.metrics.render(),
    )
        .into_response()
}
