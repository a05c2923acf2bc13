//! A client of the control plane's HTTP API, as the CLI, sidecars, tests and the benchmark use
//! it. Refusals come back as the API's `{"error", "detail"}`.

use std::time::Duration;

use bytes::Bytes;
use flowmesh_proto::control::{
    ClusterResponse, DeployResponse, ModelsResponse, RegisterRequest, RolloutRequest,
    RoutesResponse, ServicesResponse, WatchResponse,
};
use flowmesh_proto::error::ErrorBody;
use hyper::{Method, StatusCode};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::http::{self, HttpClient};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot reach the control plane: {0}")]
    Unreachable(#[from] http::Error),
    #[error("{detail} ({error}, HTTP {status})")]
    Refused {
        status: StatusCode,
        error: String,
        detail: String,
    },
    #[error("the control plane answered something unexpected: {0}")]
    Protocol(String),
}

impl Error {
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Error::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Pause between attempts of a request that met an election.
const ELECTION_RETRY: Duration = Duration::from_millis(50);

#[derive(Clone)]
pub struct Client {
    base: String,
    token: Option<String>,
    http: HttpClient,
    timeout: Duration,
}

impl Client {
    /// `base` is the node's URL, `http://host:port`.
    pub fn new(base: &str, token: Option<String>) -> Client {
        Client {
            base: base.trim_end_matches('/').to_owned(),
            token,
            http: HttpClient::new(),
            timeout: Duration::from_secs(15),
        }
    }

    /// How long each request may take (default 15 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Client {
        self.timeout = timeout;
        self
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends one request. A request that meets an election (`503 no_leader`) is repeated until a
    /// leader answers or the client's timeout ends. That is safe for writes too: every write of
    /// the API is idempotent (the same deployment again makes no new version, a registration or
    /// rollout sets a value), so one that did land before the leader changed lands only once.
    pub async fn send_raw(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: Bytes,
    ) -> Result<Bytes, Error> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let answer = self
                .send_with_timeout(method.clone(), path, content_type, body.clone(), left)
                .await;
            match answer {
                Err(Error::Refused { status, error, .. })
                    if status == StatusCode::SERVICE_UNAVAILABLE
                        && error == "no_leader"
                        && left > ELECTION_RETRY =>
                {
                    crate::timer::sleep(ELECTION_RETRY).await;
                }
                other => return other,
            }
        }
    }

    async fn send_with_timeout(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: Bytes,
        timeout: Duration,
    ) -> Result<Bytes, Error> {
        let url = format!("{}{path}", self.base);
        let bearer = self.token.as_ref().map(|t| format!("Bearer {t}"));
        let mut headers = vec![("content-type", content_type)];
        if let Some(b) = &bearer {
            headers.push(("authorization", b.as_str()));
        }
        let reply = self
            .http
            .send(method, &url, &headers, body, timeout)
            .await?;
        if reply.status.is_success() {
            return Ok(reply.body);
        }
        match serde_json::from_slice::<ErrorBody>(&reply.body) {
            Ok(e) => Err(Error::Refused {
                status: reply.status,
                error: e.error,
                detail: e.detail,
            }),
            Err(_) => Err(Error::Refused {
                status: reply.status,
                error: "http".to_owned(),
                detail: String::from_utf8_lossy(&reply.body).into_owned(),
            }),
        }
    }

    async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<T, Error> {
        let bytes = match body {
            Some(b) => {
                Bytes::from(serde_json::to_vec(b).map_err(|e| Error::Protocol(e.to_string()))?)
            }
            None => Bytes::new(),
        };
        let answer = self
            .send_raw(method, path, "application/json", bytes)
            .await?;
        serde_json::from_slice(&answer).map_err(|e| Error::Protocol(format!("{path}: {e}")))
    }

    pub async fn deploy(&self, xml: Bytes, owner: Option<&str>) -> Result<DeployResponse, Error> {
        let path = match owner {
            Some(o) => format!("/v1/deployments?owner={}", encode(o)),
            None => "/v1/deployments".to_owned(),
        };
        let answer = self
            .send_raw(Method::POST, &path, "application/xml", xml)
            .await?;
        serde_json::from_slice(&answer).map_err(|e| Error::Protocol(e.to_string()))
    }

    pub async fn models(&self, linearizable: bool) -> Result<ModelsResponse, Error> {
        self.json(
            Method::GET,
            &read_path("/v1/models", linearizable),
            None::<&()>,
        )
        .await
    }

    /// Which services own a process waiting for each message name.
    pub async fn routes(&self, linearizable: bool) -> Result<RoutesResponse, Error> {
        self.json(
            Method::GET,
            &read_path("/v1/routes", linearizable),
            None::<&()>,
        )
        .await
    }

    pub async fn model_xml(&self, process: &str, version: &str) -> Result<String, Error> {
        let body = self
            .send_raw(
                Method::GET,
                &format!(
                    "/v1/models/{}/versions/{}",
                    encode(process),
                    encode(version)
                ),
                "application/json",
                Bytes::new(),
            )
            .await?;
        String::from_utf8(body.to_vec()).map_err(|e| Error::Protocol(e.to_string()))
    }

    pub async fn rollout(
        &self,
        process: &str,
        weights: &RolloutRequest,
    ) -> Result<serde_json::Value, Error> {
        self.json(
            Method::PUT,
            &format!("/v1/models/{}/rollout", encode(process)),
            Some(weights),
        )
        .await
    }

    pub async fn register(
        &self,
        service: &str,
        instance: &str,
        request: &RegisterRequest,
    ) -> Result<serde_json::Value, Error> {
        self.json(
            Method::PUT,
            &format!(
                "/v1/services/{}/instances/{}",
                encode(service),
                encode(instance)
            ),
            Some(request),
        )
        .await
    }

    /// Drops a registration (a sidecar stopping); dropping one that is gone is not an error.
    pub async fn deregister(
        &self,
        service: &str,
        instance: &str,
    ) -> Result<serde_json::Value, Error> {
        self.json(
            Method::DELETE,
            &format!(
                "/v1/services/{}/instances/{}",
                encode(service),
                encode(instance)
            ),
            None::<&()>,
        )
        .await
    }

    pub async fn services(&self, linearizable: bool) -> Result<ServicesResponse, Error> {
        self.json(
            Method::GET,
            &read_path("/v1/services", linearizable),
            None::<&()>,
        )
        .await
    }

    pub async fn cluster(&self) -> Result<ClusterResponse, Error> {
        self.json(Method::GET, "/v1/cluster", None::<&()>).await
    }

    /// Long-polls for changes after `since`, waiting up to `wait`.
    pub async fn watch(&self, since: u64, wait: Duration) -> Result<WatchResponse, Error> {
        let path = format!("/v1/watch?since={since}&timeout={}", wait.as_secs());
        let body = self
            .send_with_timeout(
                Method::GET,
                &path,
                "application/json",
                Bytes::new(),
                wait + Duration::from_secs(5),
            )
            .await?;
        serde_json::from_slice(&body).map_err(|e| Error::Protocol(e.to_string()))
    }
}

/// Everything but RFC 3986's unreserved characters is escaped: names go into paths and queries.
const ESCAPED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn encode(part: &str) -> String {
    utf8_percent_encode(part, ESCAPED).to_string()
}

fn read_path(path: &str, linearizable: bool) -> String {
    if linearizable {
        format!("{path}?consistency=linearizable")
    } else {
        path.to_owned()
    }
}
