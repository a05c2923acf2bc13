//! order: in a choreography nobody asks the order service anything; orchestrated, the
//! `order` process in its sidecar does the work and the app only answers health checks (and
//! takes the events it is subscribed to, to show them in its log).

use axum::Json;
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde_json::Value;

use crate::app::{App, Incoming};

pub fn router(app: App) -> axum::Router {
    axum::Router::new()
        .route("/events", post(event))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(app)
}

async fn event(Json(event): Json<Value>) -> StatusCode {
    let e = Incoming::read(&event);
    tracing::debug!(event = %e.event_type, order = %e.order(), "order: event");
    StatusCode::OK
}
