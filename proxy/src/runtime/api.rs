//! The runtime's part of the local API (`/v1/...` on `listen.local`): start, inspect, cancel
//! instances, publish messages, resolve incidents, per-model statistics. Every error is
//! `{"error": CODE, "detail": TEXT}` with a status that says whose fault it was; a refused
//! request changes nothing.

use std::collections::BTreeMap;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use flowmesh_bpmn::engine::{Accepted, Command, Rejection, RejectionKind};
use flowmesh_bpmn::feel::{Context, Value};
use flowmesh_proto::monitor;
use http_body_util::{BodyExt, Limited};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::bus::CloudEvent;
use super::inbox;
use super::index::{self, Filter, InstanceState, Origin};
use super::outbox::{Delivery, SignalDelivery};
use super::{Error, Handle, Work, rollout};

/// Most instances one list answer holds.
const MAX_LIMIT: usize = 1000;
/// A message lives this long unless the request says otherwise.
const DEFAULT_TTL_MS: i64 = 3_600_000;

pub fn router(handle: Handle) -> Router {
    Router::new()
        .route("/v1/instances", post(create).get(list))
        .route("/v1/instances/{key}", get(show).delete(cancel))
        .route("/v1/instances/{key}/modification", post(modify))
        .route("/v1/instances/{key}/migration", post(migrate))
        .route("/v1/messages", post(publish).get(buffered))
        .route("/v1/signals", post(broadcast))
        .route("/v1/incidents", get(incidents))
        .route("/v1/incidents/{id}/resolve", post(resolve))
        .route("/v1/models", get(models))
        .route("/v1/events/{topic}", post(publish_event))
        .route("/v1/dead-letters", get(dead_letters))
        .route("/v1/deployments", get(deployments))
        .with_state(handle)
}

/// An answer that is not a success.
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    detail: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            detail: detail.into(),
        }
    }

    fn bad(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", detail)
    }

    fn not_found(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", detail)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (
            self.status,
            axum::Json(json!({"error": self.code, "detail": self.detail})),
        )
            .into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            r.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        }
        r
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
        match e {
            Error::Busy => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", e.to_string()),
            Error::Stopped => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "stopped", e.to_string())
            }
            Error::Storage(_) | Error::Engine(_) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
            }
            Error::Bus(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "bus_unavailable",
                e.to_string(),
            ),
        }
    }
}

impl From<Rejection> for ApiError {
    fn from(r: Rejection) -> ApiError {
        let (status, code) = match r.kind {
            RejectionKind::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            RejectionKind::InvalidArgument => (StatusCode::BAD_REQUEST, "invalid_request"),
            RejectionKind::InvalidState => (StatusCode::CONFLICT, "invalid_state"),
            RejectionKind::Duplicate => (StatusCode::CONFLICT, "duplicate"),
        };
        ApiError::new(status, code, r.message)
    }
}

type Answer = Result<Response, ApiError>;

/// Reads a JSON body of at most the configured size into `T`.
async fn read_json<T: DeserializeOwned>(handle: &Handle, body: Body) -> Result<T, ApiError> {
    let limit = handle.max_request_bytes();
    let bytes = match Limited::new(body, limit).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("the body is larger than {limit} bytes (runtime.max_request_bytes)"),
            ));
        }
        Err(e) => return Err(ApiError::bad(format!("the body could not be read: {e}"))),
    };
    serde_json::from_slice(&bytes).map_err(|e| {
        if e.is_syntax() || e.is_eof() {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                format!("the body is not valid JSON: {e}"),
            )
        } else {
            ApiError::bad(e.to_string())
        }
    })
}

fn variables(v: Option<serde_json::Value>) -> Result<Context, ApiError> {
    match v {
        None | Some(serde_json::Value::Null) => Ok(Context::new()),
        Some(json @ serde_json::Value::Object(_)) => match Value::from_json(&json) {
            Value::Context(c) => Ok(c),
            _ => Ok(Context::new()),
        },
        Some(other) => Err(ApiError::bad(format!(
            "variables must be a JSON object, not {}",
            json_type(&other)
        ))),
    }
}

fn json_type(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

fn parse_key(text: &str, what: &str) -> Result<u64, ApiError> {
    text.parse()
        .map_err(|_| ApiError::bad(format!("'{text}' is not a {what} key (a number)")))
}

fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map_or_else(|_| ms.to_string(), |t| t.to_string())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateRequest {
    process: String,
    #[serde(default)]
    variables: Option<serde_json::Value>,
    #[serde(default)]
    version: Option<u32>,
    #[serde(default)]
    business_key: Option<String>,
}

async fn create(State(handle): State<Handle>, body: Body) -> Answer {
    let request: CreateRequest = read_json(&handle, body).await?;
    let vars = variables(request.variables)?;
    if request.process.is_empty() {
        return Err(ApiError::bad("process must name a deployed process"));
    }
    let version = request.version.or_else(|| {
        handle
            .deployments()
            .rollouts
            .get(&request.process)
            .and_then(|w| rollout::pick(w, request.business_key.as_deref()))
    });
    let mut work = Work::new(vec![Command::CreateInstance {
        process_id: request.process.clone(),
        version,
        variables: vars,
    }]);
    work.origins[0] = Some(Origin {
        business_key: request.business_key.clone(),
        ..Origin::default()
    });
    let result = handle.run(work).await?.pop().ok_or(Error::Stopped)?;
    let instance = match result? {
        Accepted::Created { instance } => instance,
        other => {
            return Err(ApiError::from(Error::Engine(format!(
                "unexpected {other:?}"
            ))));
        }
    };
    let row = handle
        .snapshots()
        .read_with(|_, txn| index::instance(txn, instance))?;
    let version = row.map(|r| r.version).or(version);
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({
            "key": instance.to_string(),
            "process": request.process,
            "version": version,
        })),
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    process: Option<String>,
    version: Option<String>,
    state: Option<String>,
    business_key: Option<String>,
    limit: Option<String>,
    after: Option<String>,
}

fn instance_json(r: &index::InstanceRow) -> serde_json::Value {
    json!({
        "key": r.key.to_string(),
        "process": r.process,
        "version": r.version,
        "state": r.state.name(),
        "business_key": r.business_key,
        "started_at": rfc3339(r.started_at),
        "ended_at": r.ended_at.map(rfc3339),
    })
}

async fn list(
    State(handle): State<Handle>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Answer {
    let Query(q) = query.map_err(|e| ApiError::bad(e.body_text()))?;
    let state = match &q.state {
        Some(s) => Some(InstanceState::parse(s).ok_or_else(|| {
            ApiError::bad(format!(
                "state '{s}' is not one of active, completed, incident, cancelled"
            ))
        })?),
        None => None,
    };
    let limit = match &q.limit {
        Some(l) => match l.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                return Err(ApiError::bad(format!(
                    "limit '{l}' must be a number from 1 to {MAX_LIMIT}"
                )));
            }
        },
        None => 100,
    };
    let after = q
        .after
        .as_deref()
        .map(|a| parse_key(a, "instance"))
        .transpose()?;
    let version = q
        .version
        .as_deref()
        .map(|v| {
            v.parse::<u32>()
                .map_err(|_| ApiError::bad(format!("version '{v}' is not a number")))
        })
        .transpose()?;
    let filter = Filter {
        process: q.process,
        version,
        state,
        business_key: q.business_key,
        after,
        limit,
    };
    let (rows, next) = handle
        .snapshots()
        .read_with(|_, txn| index::list(txn, &filter))?;
    let items: Vec<_> = rows.iter().map(instance_json).collect();
    Ok(axum::Json(json!({"items": items, "next": next.map(|n| n.to_string())})).into_response())
}

async fn show(State(handle): State<Handle>, Path(key): Path<String>) -> Answer {
    let key = parse_key(&key, "instance")?;
    let found = handle.snapshots().read_with(|_, txn| -> Result<_, Error> {
        let Some(row) = index::instance(txn, key)? else {
            return Ok(None);
        };
        Ok(Some((
            row,
            index::variables(txn, key)?,
            index::active(txn, key)?,
            index::history(txn, key)?,
            index::incidents(txn, Some(key))?,
        )))
    })?;
    let Some((row, vars, active, history, incidents)) = found else {
        return Err(ApiError::not_found(format!(
            "no process instance {key} here"
        )));
    };
    let mut body = instance_json(&row);
    body["variables"] = serde_json::Value::Object(vars);
    body["active_elements"] = json!(active.iter().map(|(_, a)| &a.element).collect::<Vec<_>>());
    body["active"] = json!(
        active
            .iter()
            .map(|(k, a)| json!({"key": k.to_string(), "element": a.element, "type": a.element_type, "since": rfc3339(a.started_at)}))
            .collect::<Vec<_>>()
    );
    body["history"] = json!(
        history
            .iter()
            .map(|h| json!({"element": h.element, "type": h.element_type, "event": h.event, "at": rfc3339(h.at)}))
            .collect::<Vec<_>>()
    );
    body["incidents"] = json!(incidents.iter().map(incident_json).collect::<Vec<_>>());
    body["trace_id"] = json!(row.trace_id);
    Ok(axum::Json(body).into_response())
}

fn incident_json(i: &index::IncidentRow) -> serde_json::Value {
    json!({
        "id": i.key.to_string(),
        "instance": i.instance.to_string(),
        "process": i.process,
        "element": i.element,
        "kind": i.kind,
        "message": i.message,
        "created_at": rfc3339(i.created_at),
    })
}

async fn cancel(State(handle): State<Handle>, Path(key): Path<String>) -> Answer {
    let key = parse_key(&key, "instance")?;
    handle
        .command(Command::CancelInstance { instance: key })
        .await??;
    Ok(axum::Json(json!({"key": key.to_string(), "state": "cancelled"})).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModifyRequest {
    #[serde(default)]
    activate: Vec<String>,
    #[serde(default)]
    terminate: Vec<String>,
    #[serde(default)]
    variables: Option<serde_json::Value>,
}

/// Repairs a running instance: activates elements by id, terminates element instances by key
/// (from `GET /v1/instances/{key}`'s `active`), all or nothing.
async fn modify(State(handle): State<Handle>, Path(key): Path<String>, body: Body) -> Answer {
    let key = parse_key(&key, "instance")?;
    let request: ModifyRequest = read_json(&handle, body).await?;
    let terminate = request
        .terminate
        .iter()
        .map(|t| parse_key(t, "element instance"))
        .collect::<Result<Vec<_>, _>>()?;
    handle
        .command(Command::ModifyInstance {
            instance: key,
            activate: request.activate.clone(),
            terminate: terminate.clone(),
            variables: variables(request.variables)?,
        })
        .await??;
    Ok(axum::Json(json!({
        "key": key.to_string(),
        "activated": request.activate,
        "terminated": terminate.iter().map(u64::to_string).collect::<Vec<_>>(),
    }))
    .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MigrateRequest {
    version: u32,
    /// Active element id in the running version → element id in `version`.
    #[serde(default)]
    mappings: BTreeMap<String, String>,
}

/// Moves a running instance to another version of its process, each active element mapped.
async fn migrate(State(handle): State<Handle>, Path(key): Path<String>, body: Body) -> Answer {
    let key = parse_key(&key, "instance")?;
    let request: MigrateRequest = read_json(&handle, body).await?;
    handle
        .command(Command::MigrateInstance {
            instance: key,
            version: request.version,
            mappings: request.mappings.clone().into_iter().collect(),
        })
        .await??;
    Ok(axum::Json(json!({
        "key": key.to_string(),
        "version": request.version,
        "mappings": request.mappings,
    }))
    .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PublishRequest {
    name: String,
    correlation_key: String,
    #[serde(default)]
    variables: Option<serde_json::Value>,
    #[serde(default)]
    ttl: Option<String>,
    #[serde(default)]
    id: Option<String>,
}

/// `PT1M` (ISO 8601) or `1m`; zero is allowed (correlate now or never).
fn ttl_ms(text: &str) -> Result<i64, ApiError> {
    let d: jiff::SignedDuration = text.parse().map_err(|_| {
        ApiError::bad(format!(
            "ttl '{text}' is not a duration (write it like \"PT1M\" or \"30s\")"
        ))
    })?;
    if d.is_negative() {
        return Err(ApiError::bad(format!("ttl '{text}' is negative")));
    }
    i64::try_from(d.as_millis()).map_err(|_| ApiError::bad(format!("ttl '{text}' is too long")))
}

async fn publish(State(handle): State<Handle>, body: Body) -> Answer {
    let request: PublishRequest = read_json(&handle, body).await?;
    if request.name.is_empty() {
        return Err(ApiError::bad("name must name the message"));
    }
    let ttl = match &request.ttl {
        Some(t) => ttl_ms(t)?,
        None => DEFAULT_TTL_MS,
    };
    let vars = match request.variables {
        None | Some(serde_json::Value::Null) => serde_json::Map::new(),
        Some(serde_json::Value::Object(m)) => m,
        Some(other) => {
            return Err(ApiError::bad(format!(
                "variables must be a JSON object, not {}",
                json_type(&other)
            )));
        }
    };
    let id = request.id.clone().unwrap_or_else(index::trace_id);
    let work = handle.route(Delivery {
        id: id.clone(),
        name: request.name,
        correlation_key: request.correlation_key,
        variables: vars,
        ttl_ms: ttl,
        traceparent: None,
    });
    for result in handle.run(work).await? {
        result?;
    }
    Ok((StatusCode::ACCEPTED, axum::Json(json!({"id": id}))).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignalRequest {
    name: String,
    #[serde(default)]
    variables: Option<serde_json::Value>,
    #[serde(default)]
    id: Option<String>,
}

/// Broadcasts a signal to every process in the mesh that waits for it (this sidecar's at once,
/// the others' through the outbox).
async fn broadcast(State(handle): State<Handle>, body: Body) -> Answer {
    let request: SignalRequest = read_json(&handle, body).await?;
    if request.name.is_empty() {
        return Err(ApiError::bad("name must name the signal"));
    }
    let vars = match request.variables {
        None | Some(serde_json::Value::Null) => serde_json::Map::new(),
        Some(serde_json::Value::Object(m)) => m,
        Some(other) => {
            return Err(ApiError::bad(format!(
                "variables must be a JSON object, not {}",
                json_type(&other)
            )));
        }
    };
    let id = request.id.unwrap_or_else(index::trace_id);
    let work = handle.route_signal(SignalDelivery {
        id: id.clone(),
        name: request.name,
        variables: vars,
    });
    for result in handle.run(work).await? {
        result?;
    }
    Ok((StatusCode::ACCEPTED, axum::Json(json!({"id": id}))).into_response())
}

async fn publish_event(
    State(handle): State<Handle>,
    Path(topic): Path<String>,
    body: Body,
) -> Answer {
    if topic.is_empty()
        || !topic
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(ApiError::bad(format!(
            "topic '{topic}': topic names use letters, digits, '-', '_' and '.'"
        )));
    }
    let json: serde_json::Value = read_json(&handle, body).await?;
    let event = CloudEvent::parse(json).map_err(|e| ApiError::bad(e.0))?;
    let id = event.id().to_owned();
    handle.bus().publish(&topic, event).await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(json!({"id": id, "topic": topic})),
    )
        .into_response())
}

/// What this sidecar believes is deployed: versions and owners, rollouts, message routes.
async fn deployments(State(handle): State<Handle>) -> Answer {
    let d = handle.deployments();
    let models: Vec<_> = d
        .models
        .iter()
        .map(|m| json!({"process": m.process, "version": m.version, "owner": m.owner}))
        .collect();
    Ok(axum::Json(json!({
        "revision": d.revision,
        "models": models,
        "rollouts": d.rollouts,
        "routes": d.routes,
        "subscribers": handle.inner.registry.topics(),
    }))
    .into_response())
}

async fn dead_letters(State(handle): State<Handle>) -> Answer {
    let rows = handle
        .snapshots()
        .read_with(|_, txn| inbox::dead_letters(txn))?;
    Ok(axum::Json(inbox::dead_letters_json(&rows)).into_response())
}

/// Messages held here until a subscription takes them or their TTL ends, with whether any
/// service waits for their name (those nobody waits for are the unroutable ones).
async fn buffered(State(handle): State<Handle>) -> Answer {
    let messages = handle
        .snapshots()
        .read_with(|kv, _| flowmesh_bpmn::engine::state::Reader::new(kv).messages())
        .map_err(Error::from)?;
    let deployments = handle.deployments();
    let items: Vec<_> = messages
        .iter()
        .map(|m| {
            json!({
                "name": m.name,
                "correlation_key": m.correlation_key,
                "id": m.message_id,
                "variables": Value::Context(m.variables.clone()).to_json(),
                "published_at": rfc3339(m.published_at),
                "expires_at": rfc3339(m.deadline),
                "waited_for_by": deployments.owners_of(&m.name),
            })
        })
        .collect();
    Ok(axum::Json(json!({"items": items})).into_response())
}

async fn incidents(State(handle): State<Handle>) -> Answer {
    let rows = handle
        .snapshots()
        .read_with(|_, txn| index::incidents(txn, None))?;
    let items: Vec<_> = rows.iter().map(incident_json).collect();
    Ok(axum::Json(json!({"items": items})).into_response())
}

async fn resolve(State(handle): State<Handle>, Path(id): Path<String>) -> Answer {
    let key = parse_key(&id, "incident")?;
    let known = handle
        .snapshots()
        .read_with(|_, txn| index::incident(txn, key))?;
    if known.is_none() {
        return Err(ApiError::not_found(format!(
            "no open incident {key}: it was resolved, its instance ended, or it never existed"
        )));
    }
    handle.command(Command::ResolveIncident { key }).await??;
    Ok(axum::Json(json!({"id": key.to_string(), "resolved": true})).into_response())
}

async fn models(State(handle): State<Handle>) -> Answer {
    let (processes, stats, counts, flows) =
        handle
            .snapshots()
            .read_with(|kv, txn| -> Result<_, Error> {
                let processes = flowmesh_bpmn::engine::state::Reader::new(kv).processes()?;
                Ok((
                    processes,
                    index::stats(txn)?,
                    index::counts(txn)?,
                    index::flows(txn)?,
                ))
            })?;
    let mut out = Vec::new();
    for p in processes {
        let mine = |process: &str, version: u32| process == p.process_id && version == p.version;
        let elements = stats
            .iter()
            .filter(|((process, version, _), _)| mine(process, *version))
            .map(|((_, _, element), s)| {
                (
                    element.clone(),
                    monitor::ElementStats {
                        active: s.active,
                        completed: s.completed,
                        terminated: s.terminated,
                        incidents: s.incidents,
                        avg_ms: (s.ended > 0).then(|| s.total_ms as f64 / s.ended as f64),
                        p95_ms: s.durations.quantile(0.95),
                        durations: s.durations.clone(),
                    },
                )
            })
            .collect();
        let flows = flows
            .iter()
            .filter(|((process, version, _), _)| mine(process, *version))
            .map(|((_, _, flow), n)| (flow.clone(), *n))
            .collect();
        let count = |state: &str| {
            counts
                .get(&(p.process_id.clone(), p.version, state.to_owned()))
                .copied()
                .unwrap_or(0)
        };
        out.push(monitor::ModelStats {
            process: p.process_id.clone(),
            version: p.version,
            deployed_at: rfc3339(p.deployed_at),
            instances: monitor::StateCounts {
                active: count("active"),
                completed: count("completed"),
                incident: count("incident"),
                cancelled: count("cancelled"),
            },
            elements,
            flows,
        });
    }
    Ok(axum::Json(monitor::SidecarModels {
        service: handle.service().to_owned(),
        models: out,
    })
    .into_response())
}

/// A fallback for unknown `/v1/...` paths and methods, in the same error shape.
pub async fn unknown(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!(
        "{} is not an endpoint of the local API",
        uri.path()
    ))
}
