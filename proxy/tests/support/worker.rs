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

/// An event the app took, with the `traceparent` it came with.
#[derive(Clone, Debug)]
pub(crate) struct Taken {
    pub(crate) event: serde_json::Value,
    pub(crate) traceparent: Option<String>,
}

/// A sidecar's `[[subscriptions]]` entry that delivers topic `retail` to this app's
/// `/events`, retried often enough to outlast any test's refusals.
pub(crate) const SUBSCRIBED: &str = r#"
[[subscriptions]]
topic = "retail"
path = "/events"
attempts = 100
backoff = "10ms"
"#;

/// Command event type, reply event type, the local API to publish the reply at, its topic.
type Reply = (String, String, SocketAddr, String);

#[derive(Clone)]
pub(crate) struct Worker {
    pub(crate) addr: SocketAddr,
    pub(crate) calls: Arc<Mutex<Vec<Call>>>,
    pub(crate) mode: Arc<Mutex<Mode>>,
    /// Events delivered to `/events` (answered 200 unless the mode is `Fail`).
    pub(crate) events: Arc<Mutex<Vec<Taken>>>,
    pub(crate) events_mode: Arc<Mutex<Mode>>,
    /// The app answers a command with an event carrying `refId` = the command's
    /// `data.orderId`.
    pub(crate) replies: Arc<Mutex<Vec<Reply>>>,
}

impl Worker {
    pub(crate) fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    pub(crate) fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    pub(crate) fn set_events(&self, mode: Mode) {
        *self.events_mode.lock().unwrap() = mode;
    }

    pub(crate) fn events(&self) -> Vec<Taken> {
        self.events.lock().unwrap().clone()
    }

    /// Answers every `command` event with a `reply` event published at `local` on `topic`.
    pub(crate) fn reply(&self, command: &str, reply: &str, local: SocketAddr, topic: &str) {
        self.replies.lock().unwrap().push((
            command.to_owned(),
            reply.to_owned(),
            local,
            topic.to_owned(),
        ));
    }
}

async fn event(
    State(w): State<Worker>,
    headers: HeaderMap,
    Json(event): Json<serde_json::Value>,
) -> axum::response::Response {
    if *w.events_mode.lock().unwrap() == Mode::Fail {
        return (StatusCode::SERVICE_UNAVAILABLE, "down").into_response();
    }
    w.events.lock().unwrap().push(Taken {
        event: event.clone(),
        traceparent: headers
            .get("traceparent")
            .map(|v| v.to_str().unwrap().to_owned()),
    });
    let rule = w
        .replies
        .lock()
        .unwrap()
        .iter()
        .find(|r| event["type"] == r.0.as_str())
        .cloned();
    if let Some((_, reply, local, topic)) = rule {
        let body = serde_json::json!({
            "specversion": "1.0",
            "id": format!("reply-{}", event["id"].as_str().unwrap_or("?")),
            "source": "/test-app",
            "type": reply,
            "data": {"refId": event["data"]["orderId"]},
        });
        tokio::spawn(async move {
            let request = hyper::Request::post(format!("http://{local}/v1/events/{topic}"))
                .header("content-type", "application/json")
                .body(http_body_util::Full::new(bytes::Bytes::from(
                    body.to_string(),
                )))
                .unwrap();
            let client =
                hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                    .build_http();
            let answer = client.request(request).await.unwrap();
            assert_eq!(answer.status(), 202, "the reply was not taken");
        });
    }
    StatusCode::OK.into_response()
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
        events: Arc::default(),
        events_mode: Arc::new(Mutex::new(Mode::Complete)),
        replies: Arc::default(),
    };
    let app = axum::Router::new()
        .route("/jobs/{name}", post(job))
        .route("/events", post(event))
        .with_state(worker.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    worker
}
