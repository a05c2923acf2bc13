//! The mesh as this sidecar sees it: which services have live instances and where their
//! sidecars listen. It follows the control plane (long-poll watch), keeps the last view it saw
//! in redb, and starts from that copy, so traffic keeps flowing while the control plane is down
//! (static stability). Picking an instance rotates over the live ones and skips, for a while,
//! one that just refused a connection.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use crate::control::ControlPlanes;
use flowmesh_proto::control::ServicesResponse;

use crate::cache::Cache;

/// How long an instance that refused a connection is passed over.
const EJECT_FOR: Duration = Duration::from_secs(5);

/// One sidecar of a service, as the mesh reaches it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instance {
    pub id: String,
    pub mesh: SocketAddr,
}

#[derive(Default)]
struct View {
    services: BTreeMap<String, Vec<Instance>>,
    /// Event-bus topic → the services with an instance subscribed to it.
    subscribers: BTreeMap<String, Vec<String>>,
}

/// A cheap handle to the current view.
#[derive(Clone, Default)]
pub struct Registry {
    view: Arc<RwLock<Arc<View>>>,
    /// The control plane's revision this view is current with (where the watch goes on).
    seen: Arc<AtomicU64>,
    next: Arc<AtomicUsize>,
    ejected: Arc<Mutex<BTreeMap<SocketAddr, Instant>>>,
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
    /// Replaces the view with the control plane's answer; instances without a usable `mesh`
    /// address are left out.
    pub fn replace(&self, services: &ServicesResponse) {
        let mut map = BTreeMap::new();
        let mut subscribers: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for s in &services.services {
            for topic in s.instances.iter().flat_map(|i| &i.topics) {
                let list = subscribers.entry(topic.clone()).or_default();
                if !list.contains(&s.name) {
                    list.push(s.name.clone());
                }
            }
            let instances: Vec<Instance> = s
                .instances
                .iter()
                .filter_map(|i| {
                    Some(Instance {
                        id: i.id.clone(),
                        mesh: i.addresses.get("mesh")?.parse().ok()?,
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

    pub fn revision(&self) -> u64 {
        self.seen.load(Ordering::Relaxed)
    }

    /// The next live instance of `service`, rotating; an instance ejected after a refused
    /// connection is passed over unless it is the only one.
    pub fn pick(&self, service: &str) -> Result<Instance, Unroutable> {
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
        if instances.is_empty() {
            return Err(Unroutable::NoInstance(service.to_owned()));
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let ejected = self.ejected.lock().map(|e| e.clone()).unwrap_or_default();
        for k in 0..instances.len() {
            let candidate = &instances[(start + k) % instances.len()];
            if ejected
                .get(&candidate.mesh)
                .is_none_or(|until| *until <= now)
            {
                return Ok(candidate.clone());
            }
        }
        Ok(instances[start % instances.len()].clone())
    }

    /// Passes over `mesh` for a while (it refused a connection).
    pub fn eject(&self, mesh: SocketAddr) {
        if let Ok(mut e) = self.ejected.lock() {
            let now = Instant::now();
            e.retain(|_, until| *until > now);
            e.insert(mesh, now + EJECT_FOR);
        }
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
    fn picks_rotate_skip_ejected_and_say_why_not() {
        let r = Registry::default();
        r.replace(&services(&[
            ("a", "127.0.0.1:1001"),
            ("b", "127.0.0.1:1002"),
            ("bad", "not an address"),
        ]));
        let picks: Vec<String> = (0..4).map(|_| r.pick("inventory").unwrap().id).collect();
        assert_eq!(picks, ["a", "b", "a", "b"]);
        r.eject("127.0.0.1:1001".parse().unwrap());
        assert!((0..4).all(|_| r.pick("inventory").unwrap().id == "b"));
        assert_eq!(
            r.pick("shipping").unwrap_err().to_string(),
            "no service named 'shipping' is registered (known: inventory)"
        );
        r.replace(&services(&[]));
        assert_eq!(
            r.pick("inventory"),
            Err(Unroutable::NoInstance("inventory".into()))
        );
    }
}
