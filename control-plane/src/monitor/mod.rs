//! The monitor: every flow on its BPMN diagram, live, in a browser. Pages under `/ui/` and
//! the JSON under `/v1/monitor/...` they are built from; the numbers come from the sidecars
//! that own each process (asked at once, with a deadline) and are merged here. A sidecar that
//! does not answer is shown as such, never as zero.

mod data;
mod gather;
mod live;
mod pages;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use flowmesh_bpmn::model::Definitions;
use flowmesh_proto::error::ErrorBody;
use serde::Deserialize;

use crate::http::HttpClient;
use crate::storage::SharedMachine;

pub(crate) use data::Error;

/// How the monitor behaves.
#[derive(Clone, Debug)]
pub struct MonitorOptions {
    /// Link from an instance to its trace: `{trace_id}` is replaced, e.g.
    /// `http://jaeger:16686/trace/{trace_id}`. `None`: no link.
    pub trace_url: Option<String>,
    /// How long a sidecar may take to answer before it is shown as not answering.
    pub sidecar_timeout: Duration,
    /// How often live pages are refreshed from the sidecars.
    pub live_interval: Duration,
}

impl Default for MonitorOptions {
    fn default() -> MonitorOptions {
        MonitorOptions {
            trace_url: None,
            sidecar_timeout: Duration::from_secs(2),
            live_interval: Duration::from_secs(1),
        }
    }
}

/// What the monitor's handlers share.
pub(crate) struct Monitor {
    machine: SharedMachine,
    client: HttpClient,
    options: MonitorOptions,
    seen: gather::Seen,
    /// Parsed deployed files by (process, version): deployed XML never changes.
    diagrams: Mutex<HashMap<(String, u32), Arc<Definitions>>>,
}

impl Monitor {
    pub(crate) fn new(
        machine: SharedMachine,
        client: HttpClient,
        options: MonitorOptions,
    ) -> Monitor {
        Monitor {
            machine,
            client,
            options,
            seen: gather::Seen::default(),
            diagrams: Mutex::new(HashMap::new()),
        }
    }

    fn lock_diagrams(&self) -> MutexGuard<'_, HashMap<(String, u32), Arc<Definitions>>> {
        // A poisoned cache is still a valid cache: entries are inserted whole.
        self.diagrams.lock().unwrap_or_else(|p| p.into_inner())
    }
}

type Shared = Arc<Monitor>;

pub(crate) fn router(monitor: Shared) -> axum::Router {
    axum::Router::new()
        .route(
            "/ui",
            get(|| async { axum::response::Redirect::permanent("/ui/") }),
        )
        .route("/ui/", get(pages::models))
        .route("/ui/models/{process}", get(pages::model))
        .route("/ui/instances/{id}", get(pages::instance))
        .route(
            "/ui/instances/{id}/incidents/{incident}/retry",
            post(pages::retry),
        )
        .route("/ui/monitor.css", get(pages::stylesheet))
        .route("/ui/monitor.js", get(pages::script))
        .route("/v1/monitor/models", get(models))
        .route("/v1/monitor/models/{process}", get(model))
        .route("/v1/monitor/models/{process}/instances", get(instances))
        .route("/v1/monitor/instances/{id}", get(instance))
        .route(
            "/v1/monitor/instances/{id}/incidents/{incident}/resolve",
            post(resolve),
        )
        .route("/v1/monitor/live", get(live::models))
        .route("/v1/monitor/models/{process}/live", get(live::model))
        .route("/v1/monitor/instances/{id}/live", get(live::instance))
        .with_state(monitor)
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            Error::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Error::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
            Error::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "sidecar_unavailable"),
        };
        (
            status,
            Json(ErrorBody {
                error: code.to_owned(),
                detail: self.to_string(),
            }),
        )
            .into_response()
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VersionQuery {
    pub(crate) version: Option<u32>,
}

/// A query string that failed to parse, answered in the API's error shape.
fn bad_query(e: axum::extract::rejection::QueryRejection) -> Error {
    Error::Invalid(e.body_text())
}

async fn models(State(m): State<Shared>) -> Response {
    Json(m.models().await).into_response()
}

async fn model(
    State(m): State<Shared>,
    Path(process): Path<String>,
    q: Result<Query<VersionQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Error> {
    let Query(q) = q.map_err(bad_query)?;
    let (view, _) = m.model(&process, q.version).await?;
    Ok(Json(view).into_response())
}

async fn instances(
    State(m): State<Shared>,
    Path(process): Path<String>,
    q: Result<Query<data::InstanceFilter>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Error> {
    let Query(q) = q.map_err(bad_query)?;
    Ok(Json(m.instances(&process, &q).await?).into_response())
}

async fn instance(State(m): State<Shared>, Path(id): Path<String>) -> Result<Response, Error> {
    let (body, _) = m.instance(&id).await?;
    Ok(Json(body).into_response())
}

async fn resolve(
    State(m): State<Shared>,
    Path((id, incident)): Path<(String, String)>,
) -> Result<Response, Error> {
    m.resolve(&id, &incident).await?;
    Ok(Json(serde_json::json!({"id": incident, "resolved": true})).into_response())
}
