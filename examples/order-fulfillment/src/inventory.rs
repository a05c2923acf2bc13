//! inventory: fetches the goods of an order: after `PaymentReceivedEvent` in a choreography,
//! on `FetchGoodsCommand` when orchestrated; answers `GoodsFetchedEvent` (late for some).

use serde_json::json;

use crate::app::{App, Behaviour, Step, new_id};

static FETCH: Step = Step {
    choreography: "PaymentReceivedEvent",
    orchestration: "FetchGoodsCommand",
    reply: "GoodsFetchedEvent",
    delay: Behaviour::slow_inventory,
    data: |order| json!({"refId": order, "pickId": new_id("pick")}),
};

pub fn router(app: App) -> axum::Router {
    FETCH.router(app)
}
