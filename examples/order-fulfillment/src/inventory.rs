//! inventory: fetches the goods of an order: after `PaymentReceivedEvent` in a choreography,
//! on `FetchGoodsCommand` when orchestrated; answers `GoodsFetchedEvent` (late for some).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::app::{App, Behaviour, Step, new_id};

static FETCH: Step = Step {
    choreography: "PaymentReceivedEvent",
    orchestration: "FetchGoodsCommand",
    reply: "GoodsFetchedEvent",
    delay: Behaviour::slow_inventory,
    data: |order| json!({"refId": order, "pickId": new_id("pick")}),
};

pub fn router(app: App) -> axum::Router {
    axum::Router::new()
        .route("/events", post(event))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(app)
}

async fn event(State(app): State<App>, Json(event): Json<Value>) -> StatusCode {
    FETCH.take(&app, &event);
    StatusCode::OK
}
