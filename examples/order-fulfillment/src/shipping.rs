//! shipping: ships an order: after `GoodsFetchedEvent` in a choreography, on
//! `ShipGoodsCommand` when orchestrated; answers `GoodsShippedEvent`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::app::{App, Step, new_id};

static SHIP: Step = Step {
    choreography: "GoodsFetchedEvent",
    orchestration: "ShipGoodsCommand",
    reply: "GoodsShippedEvent",
    delay: |_, _| false,
    data: |order| json!({"refId": order, "shipmentId": new_id("shipment")}),
};

pub fn router(app: App) -> axum::Router {
    axum::Router::new()
        .route("/events", post(event))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(app)
}

async fn event(State(app): State<App>, Json(event): Json<Value>) -> StatusCode {
    SHIP.take(&app, &event);
    StatusCode::OK
}
