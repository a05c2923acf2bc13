//! An app that performs jobs for runtime tests, on a real socket on 127.0.0.1: it records
//! every job call and answers as told: complete with `{"<element>_done": true}`, fail with
//! 503, or throw a BPMN error.

#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Complete,
    Fail,
    Error,
}

/// One job call as the app saw it.
#[derive(Clone, Debug)]
pub(crate) struct Call {
    pub(crate) path: String,
    pub(crate) job: serde_json::Value,
    pub(crate) variables: serde_json::Value,
    pub(crate) idempotency_key: String,
    pub(crate) traceparent: Option<String>,
}

#[derive(Clone)]
pub(crate) struct Worker {
    pub(crate) addr: SocketAddr,
    pub(crate) calls: Arc<Mutex<Vec<Call>>>,
    pub(crate) mode: Arc<Mutex<Mode>>,
}

impl Worker {
    pub(crate) fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    pub(crate) fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }
}

async fn job(
    State(w): State<Worker>,
    Path(name): Path<String>,
    headers: HeaderMap,
    Json(body): Json<serde_json::Value>,
) -> axum::response::Response {
    let header = |n: &str| headers.get(n).map(|v| v.to_str().unwrap().to_owned());
    w.calls.lock().unwrap().push(Call {
        path: format!("/jobs/{name}"),
        job: body["job"].clone(),
        variables: body["variables"].clone(),
        idempotency_key: header("idempotency-key").unwrap_or_default(),
        traceparent: header("traceparent"),
    });
    let mode = *w.mode.lock().unwrap();
    match mode {
        Mode::Complete => {
            let element = body["job"]["element"].as_str().unwrap_or("x").to_owned();
            Json(serde_json::json!({ format!("{element}_done"): true })).into_response()
        }
        Mode::Fail => (StatusCode::SERVICE_UNAVAILABLE, "try later").into_response(),
        Mode::Error => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(serde_json::json!({"error": "CARD_EXPIRED", "message": "the card expired"})),
        )
            .into_response(),
    }
}

pub(crate) async fn start() -> Worker {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let worker = Worker {
        addr: listener.local_addr().unwrap(),
        calls: Arc::default(),
        mode: Arc::new(Mutex::new(Mode::Complete)),
    };
    let app = axum::Router::new()
        .route("/jobs/{name}", post(job))
        .with_state(worker.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    worker
}
