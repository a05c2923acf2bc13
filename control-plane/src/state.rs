//! The replicated state: deployed models and their versions, rollout weights, the message
//! routing table derived from the models, the service registry with leases, and a revision
//! that every applied change increments. Applying a command is deterministic: every clock
//! reading it needs travels inside the command (taken by the leader when it proposed it).

use std::collections::{BTreeMap, VecDeque};

use flowmesh_proto::control::{Change, ModelSummary, Service, ServiceInstance, StateSnapshot};
use serde::{Deserialize, Serialize};

/// How many past changes the watch can replay; older watchers get a full snapshot.
const CHANGES_KEPT: usize = 4096;

/// A change to the replicated state, as proposed through Raft.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// Deploys one process of a validated BPMN file. The version is assigned when applied: the
    /// next one, unless the latest version has the same XML.
    Deploy {
        process: String,
        xml: String,
        sha256: String,
        owner: String,
        /// Message names the process waits for (for the routing table).
        messages: Vec<String>,
        at_ms: i64,
    },
    /// Sets the weights (summing to 100) between existing versions of a process.
    Rollout {
        process: String,
        weights: BTreeMap<u32, u32>,
    },
    /// Registers or renews a sidecar instance of a service.
    Register {
        service: String,
        instance: String,
        addresses: BTreeMap<String, String>,
        lease_seconds: u64,
        at_ms: i64,
        /// Event-bus topics the instance subscribes to.
        #[serde(default)]
        topics: Vec<String>,
    },
    /// Drops every registration whose lease ended at or before `at_ms`.
    ExpireLeases { at_ms: i64 },
    /// Changes nothing; for measuring the write path.
    Noop,
    /// Drops one registration (a sidecar stopping); dropping one that is gone changes nothing.
    Deregister { service: String, instance: String },
}

/// What applying a command did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Applied {
    Deployed {
        process: String,
        version: u32,
        owner: String,
        unchanged: bool,
    },
    RolloutSet,
    Registered {
        new: bool,
    },
    Expired {
        count: usize,
    },
    Noop,
    Deregistered {
        existed: bool,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelRecord {
    pub process: String,
    pub version: u32,
    pub owner: String,
    pub sha256: String,
    pub xml: String,
    pub messages: Vec<String>,
    pub deployed_at_ms: i64,
    /// The revision this deployment made.
    #[serde(default)]
    pub revision: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstanceRecord {
    pub addresses: BTreeMap<String, String>,
    pub lease_seconds: u64,
    pub expires_at_ms: i64,
    #[serde(default)]
    pub topics: Vec<String>,
}

/// The replicated state, as every node holds it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ControlState {
    pub revision: u64,
    pub models: BTreeMap<(String, u32), ModelRecord>,
    pub rollouts: BTreeMap<String, BTreeMap<u32, u32>>,
    pub services: BTreeMap<String, BTreeMap<String, InstanceRecord>>,
    /// Recent changes for the watch stream; not persisted (a restarted node answers old
    /// revisions with a snapshot).
    #[serde(skip)]
    pub changes: VecDeque<Change>,
}

/// RFC 3339 of milliseconds since the epoch.
pub fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map_or_else(|_| ms.to_string(), |t| t.to_string())
}

impl ControlState {
    /// Applies one command; returns what it did.
    pub fn apply(&mut self, command: &Command) -> Result<Applied, String> {
        match command {
            Command::Deploy {
                process,
                xml,
                sha256,
                owner,
                messages,
                at_ms,
            } => {
                let latest = self.latest(process);
                if let Some(m) = latest
                    && m.sha256 == *sha256
                {
                    let applied = Applied::Deployed {
                        process: process.clone(),
                        version: m.version,
                        owner: m.owner.clone(),
                        unchanged: true,
                    };
                    return Ok(applied);
                }
                let version = latest.map_or(1, |m| m.version + 1);
                self.revision += 1;
                let record = ModelRecord {
                    process: process.clone(),
                    version,
                    owner: owner.clone(),
                    sha256: sha256.clone(),
                    xml: xml.clone(),
                    messages: messages.clone(),
                    deployed_at_ms: *at_ms,
                    revision: self.revision,
                };
                self.record(Change::ModelDeployed {
                    revision: self.revision,
                    model: summary(&record),
                });
                self.models.insert((process.clone(), version), record);
                let applied = Applied::Deployed {
                    process: process.clone(),
                    version,
                    owner: owner.clone(),
                    unchanged: false,
                };
                Ok(applied)
            }
            Command::Rollout { process, weights } => {
                self.check_rollout(process, weights)?;
                self.revision += 1;
                self.record(Change::RolloutChanged {
                    revision: self.revision,
                    process: process.clone(),
                    weights: text_keys(weights),
                });
                self.rollouts.insert(process.clone(), weights.clone());
                Ok(Applied::RolloutSet)
            }
            Command::Register {
                service,
                instance,
                addresses,
                lease_seconds,
                at_ms,
                topics,
            } => {
                let expires_at_ms = at_ms.saturating_add(
                    i64::try_from(*lease_seconds)
                        .unwrap_or(i64::MAX)
                        .saturating_mul(1000),
                );
                let record = InstanceRecord {
                    addresses: addresses.clone(),
                    lease_seconds: *lease_seconds,
                    expires_at_ms,
                    topics: topics.clone(),
                };
                let previous = self
                    .services
                    .entry(service.clone())
                    .or_default()
                    .insert(instance.clone(), record.clone());
                let new = previous.is_none();
                // A renewal that changes nothing but the expiry is not a change watchers see.
                if previous.is_none_or(|p| {
                    p.addresses != *addresses
                        || p.lease_seconds != *lease_seconds
                        || p.topics != *topics
                }) {
                    self.revision += 1;
                    let change = Change::ServiceRegistered {
                        revision: self.revision,
                        service: service.clone(),
                        instance: instance_view(instance, &record),
                    };
                    self.record(change);
                }
                Ok(Applied::Registered { new })
            }
            Command::ExpireLeases { at_ms } => {
                let mut expired = Vec::new();
                for (service, instances) in &self.services {
                    for (id, record) in instances {
                        if record.expires_at_ms <= *at_ms {
                            expired.push((service.clone(), id.clone()));
                        }
                    }
                }
                for (service, id) in &expired {
                    if let Some(instances) = self.services.get_mut(service) {
                        instances.remove(id);
                        if instances.is_empty() {
                            self.services.remove(service);
                        }
                    }
                    self.revision += 1;
                    self.record(Change::ServiceExpired {
                        revision: self.revision,
                        service: service.clone(),
                        instance: id.clone(),
                    });
                }
                Ok(Applied::Expired {
                    count: expired.len(),
                })
            }
            Command::Noop => Ok(Applied::Noop),
            Command::Deregister { service, instance } => {
                let existed = match self.services.get_mut(service) {
                    Some(instances) => {
                        let existed = instances.remove(instance).is_some();
                        if instances.is_empty() {
                            self.services.remove(service);
                        }
                        existed
                    }
                    None => false,
                };
                if existed {
                    self.revision += 1;
                    self.record(Change::ServiceDeregistered {
                        revision: self.revision,
                        service: service.clone(),
                        instance: instance.clone(),
                    });
                }
                Ok(Applied::Deregistered { existed })
            }
        }
    }

    /// Checks a rollout against the deployed versions (also before proposing it).
    pub fn check_rollout(&self, process: &str, weights: &BTreeMap<u32, u32>) -> Result<(), String> {
        if weights.is_empty() {
            return Err("give at least one version and its weight".to_owned());
        }
        for version in weights.keys() {
            if !self.models.contains_key(&(process.to_owned(), *version)) {
                return Err(match self.latest(process) {
                    None => format!("process '{process}' is not deployed"),
                    Some(m) => format!(
                        "process '{process}' has no version {version}; the latest is {}",
                        m.version
                    ),
                });
            }
        }
        let total: u64 = weights.values().map(|w| u64::from(*w)).sum();
        if total != 100 {
            return Err(format!(
                "the weights add up to {total}; they must add up to 100"
            ));
        }
        Ok(())
    }

    pub fn latest(&self, process: &str) -> Option<&ModelRecord> {
        self.models
            .range((process.to_owned(), 0)..=(process.to_owned(), u32::MAX))
            .next_back()
            .map(|(_, m)| m)
    }

    /// Registrations whose lease has ended by `at_ms`.
    pub fn has_expired(&self, at_ms: i64) -> bool {
        self.services
            .values()
            .flat_map(BTreeMap::values)
            .any(|r| r.expires_at_ms <= at_ms)
    }

    fn record(&mut self, change: Change) {
        if self.changes.len() == CHANGES_KEPT {
            self.changes.pop_front();
        }
        self.changes.push_back(change);
    }

    /// The changes after `since`, or `None` when they are no longer all kept.
    pub fn changes_since(&self, since: u64) -> Option<Vec<Change>> {
        if since >= self.revision {
            return Some(Vec::new());
        }
        let first = self.changes.front().map(change_revision)?;
        if first > since + 1 {
            return None;
        }
        Some(
            self.changes
                .iter()
                .filter(|c| change_revision(c) > since)
                .cloned()
                .collect(),
        )
    }

    pub fn model_summaries(&self) -> Vec<ModelSummary> {
        self.models.values().map(summary).collect()
    }

    pub fn rollout_view(&self) -> BTreeMap<String, BTreeMap<String, u32>> {
        self.rollouts
            .iter()
            .map(|(p, w)| (p.clone(), text_keys(w)))
            .collect()
    }

    pub fn service_view(&self) -> Vec<Service> {
        self.services
            .iter()
            .map(|(name, instances)| Service {
                name: name.clone(),
                instances: instances
                    .iter()
                    .map(|(id, r)| instance_view(id, r))
                    .collect(),
            })
            .collect()
    }

    pub fn snapshot_view(&self) -> StateSnapshot {
        StateSnapshot {
            models: self.model_summaries(),
            rollouts: self.rollout_view(),
            services: self.service_view(),
        }
    }

    /// Message name → the services owning a process that waits for it (latest versions).
    pub fn routes(&self) -> BTreeMap<String, Vec<String>> {
        let mut latest: BTreeMap<&str, &ModelRecord> = BTreeMap::new();
        for ((process, _), m) in &self.models {
            latest.insert(process, m);
        }
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for m in latest.values() {
            for name in &m.messages {
                let owners = out.entry(name.clone()).or_default();
                if !owners.contains(&m.owner) {
                    owners.push(m.owner.clone());
                }
            }
        }
        for owners in out.values_mut() {
            owners.sort();
        }
        out
    }
}

fn change_revision(c: &Change) -> u64 {
    match c {
        Change::ModelDeployed { revision, .. }
        | Change::RolloutChanged { revision, .. }
        | Change::ServiceRegistered { revision, .. }
        | Change::ServiceExpired { revision, .. }
        | Change::ServiceDeregistered { revision, .. } => *revision,
    }
}

fn summary(m: &ModelRecord) -> ModelSummary {
    ModelSummary {
        process: m.process.clone(),
        version: m.version,
        owner: m.owner.clone(),
        sha256: m.sha256.clone(),
        deployed_at: rfc3339(m.deployed_at_ms),
        revision: m.revision,
    }
}

fn instance_view(id: &str, r: &InstanceRecord) -> ServiceInstance {
    ServiceInstance {
        id: id.to_owned(),
        addresses: r.addresses.clone(),
        lease_seconds: r.lease_seconds,
        expires_at: rfc3339(r.expires_at_ms),
        topics: r.topics.clone(),
    }
}

fn text_keys(weights: &BTreeMap<u32, u32>) -> BTreeMap<String, u32> {
    weights.iter().map(|(v, w)| (v.to_string(), *w)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deploy(process: &str, xml: &str) -> Command {
        Command::Deploy {
            process: process.into(),
            xml: xml.into(),
            sha256: format!("sha-{xml}"),
            owner: "svc".into(),
            messages: vec!["Paid".into()],
            at_ms: 0,
        }
    }

    #[test]
    fn unchanged_models_make_no_version_and_no_revision() {
        let mut s = ControlState::default();
        assert!(matches!(
            s.apply(&deploy("order", "a")),
            Ok(Applied::Deployed {
                version: 1,
                unchanged: false,
                ..
            })
        ));
        assert!(matches!(
            s.apply(&deploy("order", "a")),
            Ok(Applied::Deployed {
                version: 1,
                unchanged: true,
                ..
            })
        ));
        assert!(matches!(
            s.apply(&deploy("order", "b")),
            Ok(Applied::Deployed { version: 2, .. })
        ));
        assert_eq!(s.revision, 2);
        assert_eq!(s.routes()["Paid"], vec!["svc".to_owned()]);
    }

    #[test]
    fn rollouts_must_name_deployed_versions_and_add_up() {
        let mut s = ControlState::default();
        let _ = s.apply(&deploy("order", "a"));
        let _ = s.apply(&deploy("order", "b"));
        let bad = Command::Rollout {
            process: "order".into(),
            weights: [(1, 50), (3, 50)].into(),
        };
        assert!(s.apply(&bad).unwrap_err().contains("no version 3"));
        let bad = Command::Rollout {
            process: "order".into(),
            weights: [(1, 50), (2, 40)].into(),
        };
        assert!(s.apply(&bad).unwrap_err().contains("add up to 90"));
        let good = Command::Rollout {
            process: "order".into(),
            weights: [(1, 90), (2, 10)].into(),
        };
        assert_eq!(s.apply(&good), Ok(Applied::RolloutSet));
    }

    #[test]
    fn leases_expire_and_renewals_are_quiet() {
        let mut s = ControlState::default();
        let reg = |at_ms| Command::Register {
            service: "payment".into(),
            instance: "p-1".into(),
            addresses: [("inbound".into(), "127.0.0.1:1".into())].into(),
            lease_seconds: 10,
            at_ms,
            topics: Vec::new(),
        };
        assert_eq!(s.apply(&reg(0)), Ok(Applied::Registered { new: true }));
        let r = s.revision;
        assert_eq!(s.apply(&reg(5_000)), Ok(Applied::Registered { new: false }));
        assert_eq!(s.revision, r, "a renewal is not a visible change");
        assert!(!s.has_expired(14_999));
        assert!(s.has_expired(15_000));
        assert_eq!(
            s.apply(&Command::ExpireLeases { at_ms: 15_000 }),
            Ok(Applied::Expired { count: 1 })
        );
        assert!(s.services.is_empty());

        assert_eq!(s.apply(&reg(20_000)), Ok(Applied::Registered { new: true }));
        let goodbye = Command::Deregister {
            service: "payment".into(),
            instance: "p-1".into(),
        };
        let r = s.revision;
        assert_eq!(
            s.apply(&goodbye),
            Ok(Applied::Deregistered { existed: true })
        );
        assert_eq!(s.revision, r + 1);
        assert!(s.services.is_empty());
        assert_eq!(
            s.apply(&goodbye),
            Ok(Applied::Deregistered { existed: false })
        );
        assert_eq!(s.revision, r + 1, "a second goodbye changes nothing");
    }

    #[test]
    fn watch_replays_kept_changes_or_asks_for_a_snapshot() {
        let mut s = ControlState::default();
        for i in 0..(CHANGES_KEPT + 10) {
            let _ = s.apply(&deploy("p", &i.to_string()));
        }
        assert_eq!(s.changes_since(s.revision - 3).unwrap().len(), 3);
        assert!(
            s.changes_since(0).is_none(),
            "the first changes are no longer kept"
        );
        assert_eq!(s.changes_since(s.revision), Some(Vec::new()));
    }
}
