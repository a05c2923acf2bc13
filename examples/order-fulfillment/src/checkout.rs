//! checkout: `PUT /api/cart/order` places an order: it publishes `OrderPlacedEvent` and
//! answers with the order's transaction id. It is the one app that forwards the trace context
//! it received (into the event), to show both paths into a trace; the others rely on the
//! sidecars' stitching by business key.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use serde_json::{Value, json};

use crate::app::{App, new_id};

pub fn router(app: App) -> axum::Router {
    axum::Router::new()
        .route("/api/cart/order", put(place))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(app)
}

/// Body (all optional): `{"orderId", "customer": {"name", "address"}, "items": [{"articleId", "amount"}]}`.
async fn place(
    State(app): State<App>,
    headers: axum::http::HeaderMap,
    body: Option<Json<Value>>,
) -> Response {
    let body = body.map(|Json(b)| b).unwrap_or_else(|| json!({}));
    let order_id = body["orderId"]
        .as_str()
        .map_or_else(|| new_id("order"), str::to_owned);
    let customer = if body["customer"].is_object() {
        body["customer"].clone()
    } else {
        json!({"name": "Camunda", "address": "Zossener Strasse 55, 10961 Berlin"})
    };
    let items = if body["items"].is_array() {
        body["items"].clone()
    } else {
        json!([{"articleId": "article-1", "amount": 1}, {"articleId": "article-2", "amount": 2}])
    };
    let mut event = app.event(
        "OrderPlacedEvent",
        &order_id,
        None,
        json!({"orderId": order_id, "customer": customer, "items": items}),
    );
    if let Some(t) = headers.get("traceparent").and_then(|v| v.to_str().ok()) {
        event["traceparent"] = json!(t);
    }
    match app.publish(event).await {
        Ok(()) => (
            StatusCode::OK,
            Json(json!({"traceId": order_id, "orderId": order_id})),
        )
            .into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"error": "not_placed", "detail": e})),
        )
            .into_response(),
    }
}
