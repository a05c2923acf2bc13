//! The mesh as this sidecar sees it: which services have live instances and where their
//! sidecars listen. It follows the control plane (long-poll watch), keeps the last view it saw
//! in redb, and starts from that copy, so traffic keeps flowing while the control plane is down
//! (static stability). An instance is picked by its load as this sidecar sees it
//! ([`crate::balance`]); one that just refused a connection is skipped for a while.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::balance::{self, Load, Sent};
use crate::control::ControlPlanes;
use flowmesh_proto::control::ServicesResponse;

use crate::cache::Cache;

/// One sidecar of a service, as the mesh reaches it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instance {
    pub id: String,
    pub mesh: SocketAddr,
}

/// An instance and its load, which outlives views for as long as the instance is listed.
struct Endpoint {
    instance: Instance,
    load: Arc<Load>,
}

#[derive(Default)]
struct View {
    services: BTreeMap<String, Vec<Endpoint>>,
    /// Event-bus topic → the services with an instance subscribed to it.
    subscribers: BTreeMap<String, Vec<String>>,
}

/// A cheap handle to the current view.
#[derive(Clone, Default)]
pub struct Registry {
    view: Arc<RwLock<Arc<View>>>,
    /// The control plane's revision this view is current with (where the watch goes on).
    seen: Arc<AtomicU64>,
    policy: balance::Policy,
}

/// An instance picked for one request, counted in flight at it until dropped. Tell it how
/// the request went: [`Pick::answered`] or [`Pick::refused`].
#[derive(Debug)]
pub struct Pick {
    pub instance: Instance,
    sent: Sent,
}

impl Pick {
    /// The instance answered with `status` (the head of its answer arrived); how long it
    /// took counts towards its next picks. True when this answer got the instance passed
    /// over: the last of too many gateway failures (502, 503, 504) in a row.
    pub fn answered(&self, status: hyper::StatusCode) -> bool {
        self.sent.answered(status)
    }

    /// The instance refused the connection: it is passed over for a while. True when it was
    /// not passed over already.
    pub fn refused(&self) -> bool {
        self.sent.refused()
    }
}

/// A listed instance and its load as this sidecar sees it (the local API's `/v1/registry`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Listed {
    pub id: String,
    pub mesh: SocketAddr,
    #[serde(flatten)]
    pub load: balance::Seen,
}

/// Why no instance could be picked.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Unroutable {
    #[error("no service named '{service}' is registered (known: {known})")]
    Unknown { service: String, known: String },
    #[error("service '{0}' has no live instance")]
    NoInstance(String),
}

impl Registry {
    /// An empty registry whose picks treat failing instances as `policy` says.
    pub fn new(policy: balance::Policy) -> Registry {
        Registry {
            policy,
            ..Registry::default()
        }
    }

    /// Replaces the view with the control plane's answer; instances without a usable `mesh`
    /// address are left out. Instances listed before keep their load.
    pub fn replace(&self, services: &ServicesResponse) {
        let before = self.current();
        let known: BTreeMap<SocketAddr, &Arc<Load>> = before
            .services
            .values()
            .flatten()
            .map(|e| (e.instance.mesh, &e.load))
            .collect();
        let now = Instant::now();
        let mut map = BTreeMap::new();
        let mut subscribers: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for s in &services.services {
            for topic in s.instances.iter().flat_map(|i| &i.topics) {
                let list = subscribers.entry(topic.clone()).or_default();
                if !list.contains(&s.name) {
                    list.push(s.name.clone());
                }
            }
            let instances: Vec<Endpoint> = s
                .instances
                .iter()
                .filter_map(|i| {
                    let mesh: SocketAddr = i.addresses.get("mesh")?.parse().ok()?;
                    let load = known
                        .get(&mesh)
                        .map_or_else(|| Arc::new(Load::new(now)), |l| Arc::clone(l));
                    Some(Endpoint {
                        instance: Instance {
                            id: i.id.clone(),
                            mesh,
                        },
                        load,
                    })
                })
                .collect();
            map.insert(s.name.clone(), instances);
        }
        if let Ok(mut current) = self.view.write() {
            *current = Arc::new(View {
                services: map,
                subscribers,
            });
        }
        self.seen.store(services.revision, Ordering::Relaxed);
    }

    fn current(&self) -> Arc<View> {
        self.view.read().map(|v| v.clone()).unwrap_or_default()
    }

    /// Every event-bus topic and the services subscribed to it.
    pub fn topics(&self) -> BTreeMap<String, Vec<String>> {
        self.current().subscribers.clone()
    }

    /// The services subscribed to an event-bus topic.
    pub fn subscribers(&self, topic: &str) -> Vec<String> {
        self.current()
            .subscribers
            .get(topic)
            .cloned()
            .unwrap_or_default()
    }

    /// Every service's listed instances, each with its load as this sidecar sees it.
    pub fn listed(&self) -> BTreeMap<String, Vec<Listed>> {
        let now = Instant::now();
        self.current()
            .services
            .iter()
            .map(|(service, listed)| {
                let instances = listed
                    .iter()
                    .map(|e| Listed {
                        id: e.instance.id.clone(),
                        mesh: e.instance.mesh,
                        load: e.load.seen(now),
                    })
                    .collect();
                (service.clone(), instances)
            })
            .collect()
    }

    /// How many instances of `service` are listed.
    pub fn count(&self, service: &str) -> usize {
        self.current().services.get(service).map_or(0, Vec::len)
    }

    pub fn revision(&self) -> u64 {
        self.seen.load(Ordering::Relaxed)
    }

    /// The instance of `service` to send a request to: the less loaded of two drawn at
    /// random ([`crate::balance`]); one that refused a connection lately is passed over
    /// unless every one did.
    pub fn pick(&self, service: &str) -> Result<Pick, Unroutable> {
        let view = self.current();
        let Some(instances) = view.services.get(service) else {
            let known: Vec<&str> = view.services.keys().map(String::as_str).collect();
            return Err(Unroutable::Unknown {
                service: service.to_owned(),
                known: if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                },
            });
        };
        let chosen = balance::choose(instances, |e| &e.load, Instant::now())
            .and_then(|k| instances.get(k))
            .ok_or_else(|| Unroutable::NoInstance(service.to_owned()))?;
        Ok(Pick {
            instance: chosen.instance.clone(),
            sent: Sent::new(Arc::clone(&chosen.load), self.policy),
        })
    }

    /// Loads the view last stored in `cache`, if any.
    pub fn restore(&self, cache: &Cache) {
        match cache.load_registry() {
            Ok(Some(services)) => self.replace(&services),
            Ok(None) => {}
            Err(e) => tracing::warn!("the cached registry cannot be read ({e}); starting empty"),
        }
    }

    /// Follows the control plane until the task is dropped: a long-poll watch; on any change
    /// the service list is fetched again, applied and stored. Failures are retried with
    /// backoff while the current view keeps serving.
    pub async fn follow(self, control: ControlPlanes, cache: Cache) {
        let mut backoff = Duration::from_millis(100);
        let mut synced = false;
        loop {
            let client = control.current();
            let step = async {
                if !synced {
                    let services = client.services(false).await?;
                    return Ok::<_, flowmesh_control_plane::client::Error>(Some(services));
                }
                let changes = client
                    .watch(self.revision(), Duration::from_secs(25))
                    .await?;
                let touches_services = changes.snapshot.is_some()
                    || changes.changes.iter().any(|c| {
                        !matches!(
                            c,
                            flowmesh_proto::control::Change::ModelDeployed { .. }
                                | flowmesh_proto::control::Change::RolloutChanged { .. }
                        )
                    });
                if touches_services {
                    Ok(Some(client.services(false).await?))
                } else {
                    // Nothing about services changed; remember how far we have seen.
                    self.seen.fetch_max(changes.revision, Ordering::Relaxed);
                    Ok(None)
                }
            };
            match step.await {
                Ok(Some(services)) => {
                    self.replace(&services);
                    if let Err(e) = cache.store_registry(&services) {
                        tracing::warn!("cannot store the registry for restarts: {e}");
                    }
                    synced = true;
                    backoff = Duration::from_millis(100);
                }
                Ok(None) => backoff = Duration::from_millis(100),
                Err(e) => {
                    tracing::warn!(
                        "control plane unreachable ({e}); serving the registry as last seen (revision {})",
                        self.revision()
                    );
                    synced = false;
                    control.failed();
                    crate::timer::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowmesh_proto::control::{Service, ServiceInstance};

    fn services(instances: &[(&str, &str)]) -> ServicesResponse {
        ServicesResponse {
            revision: 7,
            services: vec![Service {
                name: "inventory".into(),
                instances: instances
                    .iter()
                    .map(|(id, mesh)| ServiceInstance {
                        id: (*id).into(),
                        addresses: [("mesh".to_owned(), (*mesh).to_owned())].into(),
                        lease_seconds: 10,
                        expires_at: String::new(),
                        topics: Vec::new(),
                    })
                    .collect(),
            }],
        }
    }

    #[test]
    fn picks_spread_skip_refusing_instances_and_say_why_not() {
        let r = Registry::default();
        r.replace(&services(&[
            ("a", "127.0.0.1:1001"),
            ("b", "127.0.0.1:1002"),
            ("bad", "not an address"),
        ]));
        // Alike and idle, both are picked; one with a request in flight is passed over.
        let ids: std::collections::BTreeSet<String> = (0..64)
            .map(|_| r.pick("inventory").unwrap().instance.id)
            .collect();
        assert_eq!(ids, ["a", "b"].map(String::from).into());
        let held = r.pick("inventory").unwrap();
        let other = if held.instance.id == "a" { "b" } else { "a" };
        assert!((0..16).all(|_| r.pick("inventory").unwrap().instance.id == other));
        // The load outlives a new view that lists the instance again.
        r.replace(&services(&[
            ("a", "127.0.0.1:1001"),
            ("b", "127.0.0.1:1002"),
        ]));
        assert!((0..16).all(|_| r.pick("inventory").unwrap().instance.id == other));
        drop(held);
        // A refusal passes the instance over.
        let refusing = r.pick("inventory").unwrap();
        refusing.refused();
        let id = refusing.instance.id.clone();
        drop(refusing);
        assert!((0..16).all(|_| r.pick("inventory").unwrap().instance.id != id));
        assert_eq!(
            r.pick("shipping").unwrap_err().to_string(),
            "no service named 'shipping' is registered (known: inventory)"
        );
        r.replace(&services(&[]));
        assert_eq!(
            r.pick("inventory").unwrap_err(),
            Unroutable::NoInstance("inventory".into())
        );
    }
}
