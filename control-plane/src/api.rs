//! The HTTP API every node serves: `/v1/...` for users and sidecars, `/raft/...` for peers.
//!
//! Writes need the bearer token (when one is configured) and go to the leader: a follower
//! forwards them and relays the answer, so clients never need to know who leads. Reads are
//! served from the local state and say their revision; `?consistency=linearizable` first makes
//! sure the local state has everything the leader had committed when the read began.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use flowmesh_proto::control::{
    AddMemberRequest, ClusterResponse, DeployResponse, DeployedModel, Member, ModelsResponse,
    RegisterRequest, RolloutRequest, RoutesResponse, ServicesResponse, WatchResponse,
};
use flowmesh_proto::error::ErrorBody;
use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::codec;
use crate::faults::Faults;
use crate::http::HttpClient;
use crate::network::FROM_HEADER;
use crate::proposer::{Outcome, ProposeError, Proposer};
use crate::state::{Applied, Command};
use crate::storage::SharedMachine;
use crate::types::{Node, NodeId, Raft, TypeConfig};

/// Everything the handlers share.
pub(crate) struct App {
    pub(crate) id: NodeId,
    pub(crate) raft: Raft,
    pub(crate) machine: SharedMachine,
    pub(crate) revisions: watch::Receiver<u64>,
    pub(crate) proposer: Proposer,
    pub(crate) token: Option<Arc<str>>,
    pub(crate) faults: Faults,
    pub(crate) fault_injection: bool,
    pub(crate) client: HttpClient,
    /// Turns true when the node starts to stop: long-polls answer at once instead of holding
    /// the graceful shutdown for their whole timeout.
    pub(crate) stopping: watch::Receiver<bool>,
}

type Shared = Arc<App>;

/// How long a forwarded write or a read-index request may take.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a request waits for an election to end before answering `no_leader`.
const ELECTION_WAIT: Duration = Duration::from_secs(3);
/// Longest long-poll a watch may ask for.
const MAX_WATCH: Duration = Duration::from_secs(300);

pub(crate) fn router(app: Shared) -> axum::Router {
    axum::Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/v1/deployments", post(deploy))
        .route("/v1/models", get(models))
        .route("/v1/models/{process}/versions/{version}", get(model_xml))
        .route("/v1/models/{process}/rollout", put(rollout))
        .route("/v1/services", get(services))
        .route(
            "/v1/services/{name}/instances/{id}",
            put(register).delete(deregister),
        )
        .route("/v1/routes", get(routes))
        .route("/v1/watch", get(watch_changes))
        .route("/v1/cluster", get(cluster))
        .route("/v1/cluster/members", post(add_member))
        .route("/v1/cluster/members/{id}", delete(remove_member))
        .route("/v1/debug/cut", put(cut))
        .route("/raft/append", post(raft_append))
        .route("/raft/vote", post(raft_vote))
        .route("/raft/snapshot", post(raft_snapshot))
        .route("/raft/read-index", get(raft_read_index))
        .fallback(|uri: Uri| async move {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no such endpoint: {}", uri.path()),
            )
        })
        .with_state(app)
}

/// A refusal: a status and `{"error", "detail"}`.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    body: ErrorBody,
}

impl ApiError {
    fn new(status: StatusCode, error: &str, detail: impl Into<String>) -> ApiError {
        ApiError {
            status,
            body: ErrorBody {
                error: error.to_owned(),
                detail: detail.into(),
            },
        }
    }

    fn bad(error: &str, detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, error, detail)
    }

    fn no_leader(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "no_leader", detail)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

impl From<ProposeError> for ApiError {
    fn from(e: ProposeError) -> ApiError {
        match e {
            ProposeError::NotLeader { .. } => {
                ApiError::no_leader(format!("{e}; leadership is changing, retry in a moment"))
            }
            ProposeError::Raft(_) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "raft_error", e.to_string())
            }
            ProposeError::Closed => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                e.to_string(),
            ),
        }
    }
}

impl App {
    fn authorize(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let Some(token) = &self.token else {
            return Ok(());
        };
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        match given {
            Some(t) if constant_time_eq(t.as_bytes(), token.as_bytes()) => Ok(()),
            Some(_) => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "the bearer token is not valid",
            )),
            None => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "this write needs a bearer token: send 'Authorization: Bearer <token>' (the CLI reads FLOWMESH_TOKEN or --token-file)",
            )),
        }
    }

    /// The leader's id and address, when one is known.
    fn leader(&self) -> Option<(NodeId, String)> {
        let metrics = self.raft.metrics().borrow().clone();
        let leader = metrics.current_leader?;
        let node = metrics.membership_config.membership().get_node(&leader)?;
        Some((leader, node.addr.clone()))
    }

    /// The leader, waiting a little for one while an election is under way.
    async fn await_leader(&self) -> Option<(NodeId, String)> {
        if let Some(l) = self.leader() {
            return Some(l);
        }
        let _ = self
            .raft
            .wait(Some(ELECTION_WAIT))
            .metrics(|m| m.current_leader.is_some(), "a leader")
            .await;
        self.leader()
    }

    fn is_leader(&self) -> bool {
        self.raft.metrics().borrow().current_leader == Some(self.id)
    }

    /// Sends a request that only the leader can serve on to it, and relays the answer; `None`
    /// when this node leads.
    async fn forward(
        &self,
        method: Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Option<Response> {
        if self.is_leader() {
            return None;
        }
        let Some((leader, addr)) = self.await_leader().await else {
            return Some(
                ApiError::no_leader("no leader is elected right now; retry in a moment")
                    .into_response(),
            );
        };
        if leader == self.id {
            return None;
        }
        let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
        let url = format!("http://{addr}{path}");
        let mut pass: Vec<(&str, &str)> = Vec::new();
        for name in ["authorization", "content-type"] {
            if let Some(v) = headers.get(name).and_then(|v| v.to_str().ok()) {
                pass.push((name, v));
            }
        }
        match self
            .client
            .send(method, &url, &pass, body, FORWARD_TIMEOUT)
            .await
        {
            Ok(reply) => {
                let content_type = reply
                    .headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("application/json")
                    .to_owned();
                Some(
                    (
                        reply.status,
                        [(header::CONTENT_TYPE, content_type)],
                        reply.body,
                    )
                        .into_response(),
                )
            }
            Err(e) => Some(
                ApiError::no_leader(format!("the leader (node {leader}) did not answer: {e}"))
                    .into_response(),
            ),
        }
    }

    /// Waits until this node has applied everything committed when the read began.
    async fn read_barrier(&self) -> Result<(), ApiError> {
        let index = if self.is_leader() {
            let (read, _) = self
                .raft
                .get_read_log_id()
                .await
                .map_err(|e| ApiError::no_leader(format!("cannot confirm leadership: {e}")))?;
            read.map_or(0, |l| l.index)
        } else {
            let (leader, addr) = self
                .await_leader()
                .await
                .ok_or_else(|| ApiError::no_leader("no leader to confirm a linearizable read"))?;
            let url = format!("http://{addr}/raft/read-index");
            let reply = self
                .client
                .send(Method::GET, &url, &[], Bytes::new(), FORWARD_TIMEOUT)
                .await
                .map_err(|e| {
                    ApiError::no_leader(format!("the leader (node {leader}) did not answer: {e}"))
                })?;
            if !reply.status.is_success() {
                return Err(ApiError::no_leader(format!(
                    "the leader (node {leader}) refused a read index"
                )));
            }
            serde_json::from_slice::<ReadIndex>(&reply.body)
                .map_err(|e| ApiError::no_leader(format!("bad read index from the leader: {e}")))?
                .index
        };
        self.raft
            .wait(Some(FORWARD_TIMEOUT))
            .applied_index_at_least(Some(index), "linearizable read")
            .await
            .map_err(|e| ApiError::no_leader(format!("this node did not catch up in time: {e}")))?;
        Ok(())
    }

    async fn propose(&self, command: Command) -> Result<Outcome, ApiError> {
        Ok(self.proposer.propose(command).await?)
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

#[derive(Deserialize)]
struct ReadQuery {
    consistency: Option<String>,
}

async fn read(app: &App, q: &ReadQuery) -> Result<(), ApiError> {
    match q.consistency.as_deref() {
        None | Some("local") => Ok(()),
        Some("linearizable") => app.read_barrier().await,
        Some(other) => Err(ApiError::bad(
            "invalid_consistency",
            format!("consistency '{other}' is not known; use 'local' (default) or 'linearizable'"),
        )),
    }
}

#[derive(Deserialize)]
struct DeployQuery {
    owner: Option<String>,
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

async fn deploy(
    State(app): State<Shared>,
    Query(q): Query<DeployQuery>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    app.authorize(&headers)?;
    if let Some(forwarded) = app
        .forward(Method::POST, &uri, &headers, body.clone())
        .await
    {
        return Ok(forwarded);
    }
    if body.is_empty() {
        return Err(ApiError::bad(
            "invalid_model",
            "the request body is empty; send the BPMN XML file as the body",
        ));
    }
    if let Some(owner) = &q.owner
        && !valid_name(owner)
    {
        return Err(ApiError::bad(
            "invalid_owner",
            format!("owner '{owner}' is not a service name (letters, digits, '-', '_', '.')"),
        ));
    }
    let defs = flowmesh_bpmn::parse_bytes(&body)
        .map_err(|e| ApiError::bad("invalid_model", e.to_string()))?;
    let problems = defs.problems();
    if !problems.is_empty() {
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        return Err(ApiError::bad("invalid_model", lines.join("\n")));
    }
    let text = flowmesh_bpmn::parse::decode(&body)
        .map_err(|e| ApiError::bad("invalid_model", e.to_string()))?
        .into_owned();
    let sha256: String = Sha256::digest(&body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let at_ms = now_ms();
    let mut models = Vec::new();
    let mut revision = 0;
    for p in defs.executable_processes() {
        let owner = q.owner.clone().unwrap_or_else(|| p.id.clone());
        let outcome = app
            .propose(Command::Deploy {
                process: p.id.clone(),
                xml: text.clone(),
                sha256: sha256.clone(),
                owner,
                messages: p.waited_messages(),
                at_ms,
            })
            .await?;
        revision = revision.max(outcome.revision);
        match outcome.result {
            Ok(Applied::Deployed {
                process,
                version,
                owner,
                unchanged,
            }) => {
                models.push(DeployedModel {
                    process,
                    version,
                    owner,
                    unchanged,
                });
            }
            Ok(other) => {
                return Err(ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    format!("unexpected {other:?}"),
                ));
            }
            Err(e) => return Err(ApiError::bad("invalid_model", e)),
        }
    }
    Ok((
        StatusCode::CREATED,
        Json(DeployResponse { revision, models }),
    )
        .into_response())
}

async fn models(
    State(app): State<Shared>,
    Query(q): Query<ReadQuery>,
) -> Result<Json<ModelsResponse>, ApiError> {
    read(&app, &q).await?;
    let m = app.machine.read().await;
    Ok(Json(ModelsResponse {
        revision: m.state.revision,
        models: m.state.model_summaries(),
        rollouts: m.state.rollout_view(),
    }))
}

async fn model_xml(
    State(app): State<Shared>,
    Path((process, version)): Path<(String, String)>,
    Query(q): Query<ReadQuery>,
) -> Result<Response, ApiError> {
    read(&app, &q).await?;
    let m = app.machine.read().await;
    let version_number = if version == "latest" {
        m.state.latest(&process).map(|r| r.version)
    } else {
        Some(version.parse::<u32>().map_err(|_| {
            ApiError::bad(
                "invalid_version",
                format!("version '{version}' is not a number (or 'latest')"),
            )
        })?)
    };
    let record = version_number
        .and_then(|v| m.state.models.get(&(process.clone(), v)))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("process '{process}' has no version {version}"),
            )
        })?;
    Ok((
        [(header::CONTENT_TYPE, "application/xml")],
        record.xml.clone(),
    )
        .into_response())
}

async fn rollout(
    State(app): State<Shared>,
    Path(process): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    app.authorize(&headers)?;
    if let Some(forwarded) = app.forward(Method::PUT, &uri, &headers, body.clone()).await {
        return Ok(forwarded);
    }
    let request: RolloutRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad(
            "invalid_rollout",
            format!("expected {{\"weights\": {{\"1\": 90, \"2\": 10}}}}: {e}"),
        )
    })?;
    let mut weights = BTreeMap::new();
    for (version, weight) in &request.weights {
        let v: u32 = version.parse().map_err(|_| {
            ApiError::bad(
                "invalid_rollout",
                format!("'{version}' is not a version number"),
            )
        })?;
        weights.insert(v, *weight);
    }
    app.machine
        .read()
        .await
        .state
        .check_rollout(&process, &weights)
        .map_err(|e| ApiError::bad("invalid_rollout", e))?;
    let outcome = app
        .propose(Command::Rollout {
            process: process.clone(),
            weights,
        })
        .await?;
    outcome
        .result
        .map_err(|e| ApiError::bad("invalid_rollout", e))?;
    let m = app.machine.read().await;
    Ok(Json(serde_json::json!({
        "revision": outcome.revision,
        "process": process,
        "weights": m.state.rollout_view().get(&process).cloned().unwrap_or_default(),
    }))
    .into_response())
}

async fn register(
    State(app): State<Shared>,
    Path((name, id)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    app.authorize(&headers)?;
    if let Some(forwarded) = app.forward(Method::PUT, &uri, &headers, body.clone()).await {
        return Ok(forwarded);
    }
    if !valid_name(&name) || !valid_name(&id) {
        return Err(ApiError::bad(
            "invalid_name",
            "service and instance names use letters, digits, '-', '_' and '.'",
        ));
    }
    let request: RegisterRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad(
            "invalid_registration",
            format!("expected {{\"addresses\": {{\"inbound\": \"host:port\"}}, \"lease_seconds\": 10}}: {e}"),
        )
    })?;
    if request.lease_seconds == 0 || request.lease_seconds > 86_400 {
        return Err(ApiError::bad(
            "invalid_registration",
            "lease_seconds must be between 1 and 86400",
        ));
    }
    if let Some(bad) = request.topics.iter().find(|t| !valid_name(t)) {
        return Err(ApiError::bad(
            "invalid_registration",
            format!("topic '{bad}': topic names use letters, digits, '-', '_' and '.'"),
        ));
    }
    let outcome = app
        .propose(Command::Register {
            service: name,
            instance: id,
            addresses: request.addresses,
            lease_seconds: request.lease_seconds,
            at_ms: now_ms(),
            topics: request.topics,
        })
        .await?;
    let new = matches!(outcome.result, Ok(Applied::Registered { new: true }));
    outcome
        .result
        .map_err(|e| ApiError::bad("invalid_registration", e))?;
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(serde_json::json!({"revision": outcome.revision, "new": new})),
    )
        .into_response())
}

async fn deregister(
    State(app): State<Shared>,
    Path((name, id)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    app.authorize(&headers)?;
    if let Some(forwarded) = app
        .forward(Method::DELETE, &uri, &headers, Bytes::new())
        .await
    {
        return Ok(forwarded);
    }
    let outcome = app
        .propose(Command::Deregister {
            service: name,
            instance: id,
        })
        .await?;
    let existed = matches!(outcome.result, Ok(Applied::Deregistered { existed: true }));
    Ok(Json(serde_json::json!({"revision": outcome.revision, "existed": existed})).into_response())
}

async fn services(
    State(app): State<Shared>,
    Query(q): Query<ReadQuery>,
) -> Result<Json<ServicesResponse>, ApiError> {
    read(&app, &q).await?;
    let m = app.machine.read().await;
    Ok(Json(ServicesResponse {
        revision: m.state.revision,
        services: m.state.service_view(),
    }))
}

async fn routes(
    State(app): State<Shared>,
    Query(q): Query<ReadQuery>,
) -> Result<Json<RoutesResponse>, ApiError> {
    read(&app, &q).await?;
    let m = app.machine.read().await;
    Ok(Json(RoutesResponse {
        revision: m.state.revision,
        messages: m.state.routes(),
    }))
}

#[derive(Deserialize)]
struct WatchQuery {
    since: Option<String>,
    /// Seconds to wait for a change before answering with none.
    timeout: Option<u64>,
}

async fn watch_changes(
    State(app): State<Shared>,
    Query(q): Query<WatchQuery>,
) -> Result<Json<WatchResponse>, ApiError> {
    let since: u64 = q
        .since
        .as_deref()
        .ok_or_else(|| ApiError::bad("invalid_watch", "give ?since=REVISION (0 for everything)"))?
        .parse()
        .map_err(|_| ApiError::bad("invalid_watch", "since must be a revision number"))?;
    let wait = Duration::from_secs(q.timeout.unwrap_or(30)).min(MAX_WATCH);
    let mut revisions = app.revisions.clone();
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        {
            let m = app.machine.read().await;
            if m.state.revision > since || since > m.state.revision {
                let response = match m.state.changes_since(since) {
                    Some(changes) if since <= m.state.revision => WatchResponse {
                        revision: m.state.revision,
                        changes,
                        snapshot: None,
                    },
                    _ => WatchResponse {
                        revision: m.state.revision,
                        changes: Vec::new(),
                        snapshot: Some(m.state.snapshot_view()),
                    },
                };
                return Ok(Json(response));
            }
        }
        let mut stopping = app.stopping.clone();
        // Quiet: the timeout passed, or the node is stopping; either way, answer "no change".
        let changed = tokio::select! {
            changed = crate::timer::timeout_at(deadline, revisions.changed()) => changed.ok(),
            _ = stopping.wait_for(|s| *s) => None,
        };
        match changed {
            Some(Ok(())) => continue,
            Some(Err(_)) => {
                return Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "shutting_down",
                    "the node is stopping",
                ));
            }
            None => {
                let revision = app.machine.read().await.state.revision;
                return Ok(Json(WatchResponse {
                    revision,
                    changes: Vec::new(),
                    snapshot: None,
                }));
            }
        }
    }
}

fn cluster_view(app: &App) -> ClusterResponse {
    let metrics = app.raft.metrics().borrow().clone();
    let membership = metrics.membership_config.membership();
    let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
    let members = membership
        .nodes()
        .map(|(id, node)| Member {
            id: *id,
            addr: node.addr.clone(),
            voter: voters.contains(id),
        })
        .collect();
    ClusterResponse {
        id: app.id,
        leader: metrics.current_leader,
        term: metrics.current_term,
        last_applied: metrics.last_applied.map_or(0, |l| l.index),
        snapshot: metrics.snapshot.map_or(0, |l| l.index),
        members,
    }
}

async fn cluster(
    State(app): State<Shared>,
    Query(q): Query<ReadQuery>,
) -> Result<Json<ClusterResponse>, ApiError> {
    read(&app, &q).await?;
    Ok(Json(cluster_view(&app)))
}

async fn add_member(
    State(app): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    app.authorize(&headers)?;
    if let Some(forwarded) = app
        .forward(Method::POST, &uri, &headers, body.clone())
        .await
    {
        return Ok(forwarded);
    }
    let request: AddMemberRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad(
            "invalid_member",
            format!("expected {{\"id\": 4, \"addr\": \"host:port\"}}: {e}"),
        )
    })?;
    let node = Node {
        addr: request.addr.clone(),
    };
    after_change_in_progress(|| app.raft.add_learner(request.id, node.clone(), true))
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::CONFLICT,
                "membership",
                format!("cannot add node {}: {e}", request.id),
            )
        })?;
    let mut voters: BTreeSet<NodeId> = app
        .raft
        .metrics()
        .borrow()
        .membership_config
        .membership()
        .voter_ids()
        .collect();
    voters.insert(request.id);
    after_change_in_progress(|| app.raft.change_membership(voters.clone(), false))
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::CONFLICT,
                "membership",
                format!("cannot make node {} a voter: {e}", request.id),
            )
        })?;
    Ok(Json(cluster_view(&app)).into_response())
}

type MembershipResult<T> =
    Result<T, openraft::error::RaftError<NodeId, openraft::error::ClientWriteError<NodeId, Node>>>;

/// Runs a membership change, waiting while another one is still being committed (a cluster
/// that was just formed is still committing its first membership; a second change must wait
/// for it rather than fail), for at most ten seconds.
async fn after_change_in_progress<T, F, Fut>(mut change: F) -> MembershipResult<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = MembershipResult<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match change().await {
            Err(openraft::error::RaftError::APIError(
                openraft::error::ClientWriteError::ChangeMembershipError(
                    openraft::error::ChangeMembershipError::InProgress(_),
                ),
            )) if tokio::time::Instant::now() < deadline => {
                crate::timer::sleep(Duration::from_millis(50)).await;
            }
            other => return other,
        }
    }
}

async fn remove_member(
    State(app): State<Shared>,
    Path(id): Path<NodeId>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    app.authorize(&headers)?;
    if let Some(forwarded) = app
        .forward(Method::DELETE, &uri, &headers, Bytes::new())
        .await
    {
        return Ok(forwarded);
    }
    let membership = app
        .raft
        .metrics()
        .borrow()
        .membership_config
        .membership()
        .clone();
    let mut voters: BTreeSet<NodeId> = membership.voter_ids().collect();
    if !voters.remove(&id) && membership.get_node(&id).is_none() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("node {id} is not a member"),
        ));
    }
    if voters.is_empty() {
        return Err(ApiError::bad("membership", "cannot remove the last voter"));
    }
    after_change_in_progress(|| app.raft.change_membership(voters.clone(), false))
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::CONFLICT,
                "membership",
                format!("cannot remove node {id}: {e}"),
            )
        })?;
    Ok(Json(cluster_view(&app)).into_response())
}

#[derive(Deserialize)]
struct CutRequest {
    peers: BTreeSet<NodeId>,
}

/// Fault injection: which peers this node neither sends to nor accepts Raft RPC from.
async fn cut(
    State(app): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    if !app.fault_injection {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "fault injection is off on this node",
        ));
    }
    app.authorize(&headers)?;
    let request: CutRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad(
            "invalid_cut",
            format!("expected {{\"peers\": [2, 3]}}: {e}"),
        )
    })?;
    app.faults.cut(request.peers).await;
    Ok(Json(serde_json::json!({"cut": app.faults.current().await})).into_response())
}

/// Raft RPC needs the token too, and fault injection may refuse a peer.
async fn admit_peer(app: &App, headers: &HeaderMap) -> Result<(), ApiError> {
    app.authorize(headers)?;
    let from = headers
        .get(FROM_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<NodeId>().ok());
    if let Some(peer) = from
        && app.faults.is_cut(peer).await
    {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "cut",
            format!("the link from node {peer} is cut"),
        ));
    }
    Ok(())
}

fn rpc_body<T: for<'de> Deserialize<'de>>(body: &Bytes) -> Result<T, ApiError> {
    codec::decode(body)
        .map_err(|e| ApiError::bad("invalid_rpc", format!("cannot read the Raft request: {e}")))
}

/// A Raft RPC answer, encoded as peers read it.
fn rpc_answer<T: serde::Serialize>(answer: &T) -> Result<Response, ApiError> {
    let bytes = codec::encode(answer)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, codec::RPC_CONTENT_TYPE)], bytes).into_response())
}

/// A Raft RPC from a peer: admitted, decoded, handed to Raft, its answer encoded.
async fn raft_rpc<Req, Resp, Fut>(
    app: &App,
    headers: &HeaderMap,
    body: &Bytes,
    call: impl FnOnce(Raft, Req) -> Fut,
) -> Result<Response, ApiError>
where
    Req: for<'de> Deserialize<'de>,
    Resp: serde::Serialize,
    Fut: Future<Output = Resp>,
{
    admit_peer(app, headers).await?;
    let request: Req = rpc_body(body)?;
    rpc_answer(&call(app.raft.clone(), request).await)
}

async fn raft_append(State(app): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    raft_rpc(
        &app,
        &headers,
        &body,
        |raft, r: AppendEntriesRequest<TypeConfig>| async move { raft.append_entries(r).await },
    )
    .await
    .into_response()
}

async fn raft_vote(State(app): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    raft_rpc(
        &app,
        &headers,
        &body,
        |raft, r: VoteRequest<NodeId>| async move { raft.vote(r).await },
    )
    .await
    .into_response()
}

async fn raft_snapshot(State(app): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    raft_rpc(
        &app,
        &headers,
        &body,
        |raft, r: InstallSnapshotRequest<TypeConfig>| async move { raft.install_snapshot(r).await },
    )
    .await
    .into_response()
}

#[derive(serde::Serialize, Deserialize)]
struct ReadIndex {
    index: u64,
}

async fn raft_read_index(State(app): State<Shared>) -> Result<Json<ReadIndex>, ApiError> {
    let (read, _) = app
        .raft
        .get_read_log_id()
        .await
        .map_err(|e| ApiError::no_leader(format!("not the leader: {e}")))?;
    Ok(Json(ReadIndex {
        index: read.map_or(0, |l| l.index),
    }))
}
