//! payment: in a choreography it takes `OrderPlacedEvent` and answers `PaymentReceivedEvent`
//! (late for slow payers). Orchestrated, the process in its sidecar calls its jobs:
//! `POST /jobs/charge` (a business error `CARD_EXPIRED` for an expired card, until the customer
//! updates it, which this app plays by publishing `CardUpdatedEvent`; a technical failure on
//! the first attempt for flaky orders) and `POST /jobs/refund`.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::app::{App, Behaviour, Step, new_id};

#[derive(Clone)]
struct Payment {
    app: App,
    /// Orders whose card the customer updated, and orders that were tried once.
    updated: Arc<Mutex<HashSet<String>>>,
    tried: Arc<Mutex<HashSet<String>>>,
}

pub fn router(app: App) -> axum::Router {
    axum::Router::new()
        .route("/events", post(event))
        .route("/jobs/charge", post(charge))
        .route("/jobs/refund", post(refund))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(Payment {
            app,
            updated: Arc::default(),
            tried: Arc::default(),
        })
}

/// In a choreography payment answers OrderPlaced; orchestrated, its process's jobs do the work
/// (no command reaches the app as an event).
static PAY: Step = Step {
    choreography: "OrderPlacedEvent",
    orchestration: "",
    reply: "PaymentReceivedEvent",
    delay: Behaviour::slow_payment,
    data: |order| json!({"refId": order, "paymentId": new_id("payment")}),
};

async fn event(State(p): State<Payment>, Json(event): Json<Value>) -> StatusCode {
    PAY.take(&p.app, &event);
    StatusCode::OK
}

/// A job call: `{"job": {...}, "variables": {...}}`.
async fn charge(State(p): State<Payment>, Json(body): Json<Value>) -> Response {
    let vars = &body["variables"];
    let order = vars["refId"]
        .as_str()
        .or_else(|| vars["orderId"].as_str())
        .unwrap_or_default()
        .to_owned();
    let b = p.app.behaviour;
    let first = p
        .tried
        .lock()
        .map(|mut t| t.insert(order.clone()))
        .unwrap_or(false);
    if b.flaky_payment(&order) && first {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "the card network timed out",
        )
            .into_response();
    }
    let updated = p
        .updated
        .lock()
        .map(|u| u.contains(&order))
        .unwrap_or(false);
    if b.expired_card(&order) && !updated {
        // The customer, told about it, updates the card a moment later.
        let p2 = p.clone();
        let (order2, traceid) = (
            order.clone(),
            vars["orderId"].as_str().unwrap_or(&order).to_owned(),
        );
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if let Ok(mut u) = p2.updated.lock() {
                u.insert(order2.clone());
            }
            let event = p2
                .app
                .event("CardUpdatedEvent", &traceid, None, json!({"refId": order2}));
            if let Err(err) = p2.app.publish(event).await {
                tracing::warn!("payment: {err}");
            }
        });
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"error": "CARD_EXPIRED", "message": format!("the card for {order} has expired")})),
        )
            .into_response();
    }
    if b.slow_payment(&order) {
        tokio::time::sleep(Duration::from_millis(b.slow_ms)).await;
    }
    Json(json!({"paymentId": new_id("payment")})).into_response()
}

async fn refund(Json(_body): Json<Value>) -> Json<Value> {
    Json(json!({"refundId": new_id("refund")}))
}
