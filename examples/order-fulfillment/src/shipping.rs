//! shipping: ships an order: after `GoodsFetchedEvent` in a choreography, on
//! `ShipGoodsCommand` when orchestrated; answers `GoodsShippedEvent`.

use serde_json::json;

use crate::app::{App, Step, new_id};

static SHIP: Step = Step {
    choreography: "GoodsFetchedEvent",
    orchestration: "ShipGoodsCommand",
    reply: "GoodsShippedEvent",
    delay: |_, _| false,
    data: |order| json!({"refId": order, "shipmentId": new_id("shipment")}),
};

pub fn router(app: App) -> axum::Router {
    SHIP.router(app)
}
