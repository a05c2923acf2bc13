//! inventory: fetches the goods of an order: after `PaymentReceivedEvent` in a choreography,
//! on `FetchGoodsCommand` when orchestrated; answers `GoodsFetchedEvent` (late for some).

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::app::{App, Incoming, Mode, new_id};

pub fn router(app: App) -> axum::Router {
    axum::Router::new()
        .route("/events", post(event))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(app)
}

async fn event(State(app): State<App>, Json(event): Json<Value>) -> StatusCode {
    let e = Incoming::read(&event);
    let trigger = match app.mode() {
        Mode::Choreography => "PaymentReceivedEvent",
        Mode::Orchestration => "FetchGoodsCommand",
    };
    if e.event_type == trigger {
        tokio::spawn(async move {
            let order = e.order();
            if app.behaviour.slow_inventory(&order) {
                tokio::time::sleep(Duration::from_millis(app.behaviour.slow_ms)).await;
            }
            let reply = app.event(
                "GoodsFetchedEvent",
                &e.traceid,
                e.correlationid.as_deref(),
                json!({"refId": order, "pickId": new_id("pick")}),
            );
            if let Err(err) = app.publish(reply).await {
                tracing::warn!("inventory: {err}");
            }
        });
    }
    StatusCode::OK
}
