//! Asking the sidecars: which ones hold a service's instances (the registry, plus those seen
//! before whose registration has ended), one request to each at once with a deadline, and
//! an answer per sidecar that says whether it came, never a silent zero.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use hyper::{Method, StatusCode};
use serde::de::DeserializeOwned;

use crate::http::HttpClient;
use crate::state::ControlState;
use flowmesh_proto::monitor::SidecarStatus;

/// How long a sidecar whose registration ended is still listed (as gone).
const REMEMBER: Duration = Duration::from_secs(3600);

/// A sidecar to ask.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Target {
    pub(crate) service: String,
    pub(crate) instance: String,
    pub(crate) local: String,
    pub(crate) registered: bool,
}

/// One sidecar's answer (or why there is none).
pub(crate) struct Answer<T> {
    pub(crate) target: Target,
    pub(crate) result: Result<T, String>,
    pub(crate) took: Duration,
}

impl<T> Answer<T> {
    pub(crate) fn status(&self) -> SidecarStatus {
        let (state, detail) = match (&self.result, self.target.registered) {
            (Ok(_), _) => ("ok", None),
            (Err(e), true) => ("unreachable", Some(e.clone())),
            (Err(e), false) => ("gone", Some(e.clone())),
        };
        SidecarStatus {
            service: self.target.service.clone(),
            instance: self.target.instance.clone(),
            address: self.target.local.clone(),
            state: state.to_owned(),
            detail,
            took_ms: u64::try_from(self.took.as_millis()).unwrap_or(u64::MAX),
        }
    }
}

/// The sidecars the monitor has seen, so one that vanishes from the registry is reported
/// as gone rather than forgotten.
#[derive(Default)]
pub(crate) struct Seen {
    by: Mutex<BTreeMap<(String, String), (String, Instant)>>,
}

impl Seen {
    /// The sidecars of `services`: registered ones with a local API, then recently gone ones.
    pub(crate) fn targets(&self, state: &ControlState, services: &BTreeSet<String>) -> Vec<Target> {
        let now = Instant::now();
        let mut out = Vec::new();
        let Ok(mut seen) = self.by.lock() else {
            return out;
        };
        for service in services {
            for (instance, record) in state.services.get(service).into_iter().flatten() {
                let Some(local) = record.addresses.get("local") else {
                    continue;
                };
                seen.insert((service.clone(), instance.clone()), (local.clone(), now));
                out.push(Target {
                    service: service.clone(),
                    instance: instance.clone(),
                    local: local.clone(),
                    registered: true,
                });
            }
        }
        seen.retain(|_, (_, at)| now.duration_since(*at) < REMEMBER);
        for ((service, instance), (local, _)) in seen.iter() {
            let registered = state
                .services
                .get(service)
                .is_some_and(|i| i.contains_key(instance));
            if services.contains(service) && !registered {
                out.push(Target {
                    service: service.clone(),
                    instance: instance.clone(),
                    local: local.clone(),
                    registered: false,
                });
            }
        }
        out.sort();
        out
    }
}

/// Sends `GET path` to every target at once; each answer within `timeout`. Targets whose
/// registration ended are not asked.
pub(crate) async fn ask<T: DeserializeOwned>(
    client: &HttpClient,
    targets: Vec<Target>,
    path: &str,
    timeout: Duration,
) -> Vec<Answer<T>> {
    join_all(targets.into_iter().map(|target| async move {
        let started = Instant::now();
        let result = if target.registered {
            get(client, &target.local, path, timeout).await
        } else {
            Err("its registration ended (it stopped, or its lease ran out); what it holds is not shown".to_owned())
        };
        Answer {
            target,
            result,
            took: started.elapsed(),
        }
    }))
    .await
}

/// One sidecar request: a JSON answer, or a sentence saying what went wrong.
pub(crate) async fn get<T: DeserializeOwned>(
    client: &HttpClient,
    local: &str,
    path: &str,
    timeout: Duration,
) -> Result<T, String> {
    let reply = send(client, Method::GET, local, path, timeout).await?;
    serde_json::from_slice(&reply).map_err(|e| format!("answered something unreadable: {e}"))
}

/// Sends a request with an empty body; a non-2xx answer is an error carrying its detail.
pub(crate) async fn send(
    client: &HttpClient,
    method: Method,
    local: &str,
    path: &str,
    timeout: Duration,
) -> Result<bytes::Bytes, String> {
    let url = format!("http://{local}{path}");
    let reply = client
        .send(method, &url, &[], bytes::Bytes::new(), timeout)
        .await
        .map_err(|e| match e {
            crate::http::Error::Timeout { .. } => {
                format!("no answer within {} ms", timeout.as_millis())
            }
            crate::http::Error::Request { message, .. } => message,
        })?;
    if reply.status.is_success() {
        return Ok(reply.body);
    }
    let detail = serde_json::from_slice::<serde_json::Value>(&reply.body)
        .ok()
        .and_then(|v| v.get("detail").and_then(|d| d.as_str()).map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(&reply.body).into_owned());
    Err(match reply.status {
        StatusCode::NOT_FOUND => format!("not found: {detail}"),
        s => format!("answered {s}: {detail}"),
    })
}
