//! shipping: ships an order: after `GoodsFetchedEvent` in a choreography, on
//! `ShipGoodsCommand` when orchestrated; answers `GoodsShippedEvent`.

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
        Mode::Choreography => "GoodsFetchedEvent",
        Mode::Orchestration => "ShipGoodsCommand",
    };
    if e.event_type == trigger {
        tokio::spawn(async move {
            let order = e.order();
            let reply = app.event(
                "GoodsShippedEvent",
                &e.traceid,
                e.correlationid.as_deref(),
                json!({"refId": order, "shipmentId": new_id("shipment")}),
            );
            if let Err(err) = app.publish(reply).await {
                tracing::warn!("shipping: {err}");
            }
        });
    }
    StatusCode::OK
}
