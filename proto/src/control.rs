//! The control plane's API: deployed models, rollouts, the service registry, the watch stream
//! and the cluster.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One deployed version of a process.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelSummary {
    pub process: String,
    pub version: u32,
    pub owner: String,
    /// Hex SHA-256 of the BPMN XML.
    pub sha256: String,
    /// RFC 3339, as the leader's clock read it.
    pub deployed_at: String,
    /// The revision the deployment made: versions of all processes in deployment order.
    #[serde(default)]
    pub revision: u64,
}

/// `POST /v1/deployments?owner=SERVICE` answer (201).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployResponse {
    pub revision: u64,
    pub models: Vec<DeployedModel>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployedModel {
    pub process: String,
    pub version: u32,
    pub owner: String,
    /// The same XML was deployed before: no new version.
    #[serde(default)]
    pub unchanged: bool,
}

/// `GET /v1/models`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelsResponse {
    pub revision: u64,
    pub models: Vec<ModelSummary>,
    /// Rollout weights per process (version → weight), where set.
    #[serde(default)]
    pub rollouts: BTreeMap<String, BTreeMap<String, u32>>,
}

/// `PUT /v1/models/{process}/rollout` body: version (as text) → weight, summing to 100.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloutRequest {
    pub weights: BTreeMap<String, u32>,
}

/// `PUT /v1/services/{name}/instances/{id}` body: register or renew.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterRequest {
    /// Named addresses (`inbound`, `mesh`, `local`, ...) as `host:port`.
    #[serde(default)]
    pub addresses: BTreeMap<String, String>,
    /// How long the registration lives without a renewal, in seconds.
    pub lease_seconds: u64,
    /// Event-bus topics this instance delivers to its app.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub topics: Vec<String>,
}

/// A live sidecar instance of a service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceInstance {
    pub id: String,
    pub addresses: BTreeMap<String, String>,
    pub lease_seconds: u64,
    /// RFC 3339: when the lease ends unless renewed.
    pub expires_at: String,
    /// Event-bus topics this instance delivers to its app.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub topics: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    pub name: String,
    pub instances: Vec<ServiceInstance>,
}

/// `GET /v1/services`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServicesResponse {
    pub revision: u64,
    pub services: Vec<Service>,
}

/// `GET /v1/routes`: which services own a process that waits for each message name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutesResponse {
    pub revision: u64,
    pub messages: BTreeMap<String, Vec<String>>,
}

/// What a revision changed, as the watch stream reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    ModelDeployed {
        revision: u64,
        model: ModelSummary,
    },
    RolloutChanged {
        revision: u64,
        process: String,
        weights: BTreeMap<String, u32>,
    },
    ServiceRegistered {
        revision: u64,
        service: String,
        instance: ServiceInstance,
    },
    ServiceExpired {
        revision: u64,
        service: String,
        instance: String,
    },
    /// The sidecar said goodbye (`DELETE /v1/services/{name}/instances/{id}`).
    ServiceDeregistered {
        revision: u64,
        service: String,
        instance: String,
    },
}

/// Everything, for a watcher that is too far behind for the change list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateSnapshot {
    pub models: Vec<ModelSummary>,
    pub rollouts: BTreeMap<String, BTreeMap<String, u32>>,
    pub services: Vec<Service>,
}

/// `GET /v1/watch?since=R`: the changes after R, or a full snapshot when R is too old.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchResponse {
    pub revision: u64,
    #[serde(default)]
    pub changes: Vec<Change>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<StateSnapshot>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub id: u64,
    pub addr: String,
    pub voter: bool,
}

/// `GET /v1/cluster`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterResponse {
    pub id: u64,
    pub leader: Option<u64>,
    pub term: u64,
    pub last_applied: u64,
    /// The last log index the node's current snapshot covers (0: none yet).
    #[serde(default)]
    pub snapshot: u64,
    pub members: Vec<Member>,
}

/// `POST /v1/cluster/members` body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddMemberRequest {
    pub id: u64,
    pub addr: String,
}
