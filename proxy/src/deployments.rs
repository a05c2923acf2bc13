//! The deployed models as this sidecar follows them from the control plane: every version with
//! its owner, the XML of those it needs (the latest of each process, for HTTP bindings, and
//! every version its own service owns, for the workflow runtime), rollout weights and the
//! message routing table. Kept in redb, so a restart without the control plane still knows
//! them; published on a `watch` channel to the parts that use them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use flowmesh_control_plane::client::{Client, Error as ClientError};
use flowmesh_proto::control::Change;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::cache::Cache;
use crate::control::ControlPlanes;

/// One deployed version of a process.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Model {
    pub process: String,
    pub version: u32,
    pub owner: String,
    pub sha256: String,
    /// Fetched only where this sidecar needs it.
    pub xml: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployments {
    /// The control plane's revision these are current with.
    pub revision: u64,
    /// Sorted by process, then version.
    pub models: Vec<Model>,
    /// Process → version → weight, where a rollout is set.
    pub rollouts: BTreeMap<String, BTreeMap<u32, u32>>,
    /// Message name → the services owning a process that waits for it.
    pub routes: BTreeMap<String, Vec<String>>,
}

impl Deployments {
    /// The latest version of each process, with its XML: `("{process} v{version}", xml)`.
    pub fn latest_xml(&self) -> Vec<(String, String)> {
        let mut latest: BTreeMap<&str, &Model> = BTreeMap::new();
        for m in &self.models {
            latest.insert(&m.process, m);
        }
        latest
            .values()
            .filter_map(|m| Some((format!("{} v{}", m.process, m.version), m.xml.clone()?)))
            .collect()
    }

    /// The versions `service` owns, in deployment order per process.
    pub fn owned_by<'a>(&'a self, service: &'a str) -> impl Iterator<Item = &'a Model> + 'a {
        self.models
            .iter()
            .filter(move |m| m.owner.eq_ignore_ascii_case(service))
    }

    /// Every service that owns a deployed process: where a signal may be waited for.
    pub fn owners(&self) -> Vec<&str> {
        let mut out: Vec<&str> = self.models.iter().map(|m| m.owner.as_str()).collect();
        out.sort_unstable_by_key(|o| o.to_ascii_lowercase());
        out.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
        out
    }

    /// The services that own a process waiting for the message `name`.
    pub fn owners_of(&self, name: &str) -> &[String] {
        self.routes.get(name).map_or(&[], Vec::as_slice)
    }
}

/// A cheap handle: the current deployments and a way to wait for new ones.
#[derive(Clone)]
pub struct Watched {
    rx: watch::Receiver<Arc<Deployments>>,
}

impl Watched {
    pub fn current(&self) -> Arc<Deployments> {
        self.rx.borrow().clone()
    }

    /// A receiver that sees every later change.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Deployments>> {
        self.rx.clone()
    }
}

/// The follower: builds the first view from the cache, then keeps it current.
pub struct Follower {
    me: String,
    tx: watch::Sender<Arc<Deployments>>,
}

impl Follower {
    /// Starts from what `cache` holds (or nothing).
    pub fn restore(me: &str, cache: &Cache) -> (Follower, Watched) {
        let start = match cache.load_deployments() {
            Ok(Some(d)) => d,
            Ok(None) => Deployments::default(),
            Err(e) => {
                tracing::warn!(
                    "the cached models cannot be read ({e}); none until the control plane answers"
                );
                Deployments::default()
            }
        };
        let (tx, rx) = watch::channel(Arc::new(start));
        (
            Follower {
                me: me.to_owned(),
                tx,
            },
            Watched { rx },
        )
    }

    /// Follows the control plane until the task is dropped: a long-poll watch; when models or
    /// rollouts change, everything is fetched again, published and stored. Failures are
    /// retried with backoff while the current view keeps serving.
    pub async fn follow(self, control: ControlPlanes, cache: Cache) {
        let mut backoff = Duration::from_millis(100);
        let mut synced = false;
        loop {
            let client = control.current();
            let current = self.tx.borrow().clone();
            let step = async {
                if synced {
                    let changes = client
                        .watch(current.revision, Duration::from_secs(25))
                        .await?;
                    let relevant = changes.snapshot.is_some()
                        || changes.changes.iter().any(|c| {
                            matches!(
                                c,
                                Change::ModelDeployed { .. } | Change::RolloutChanged { .. }
                            )
                        });
                    if !relevant {
                        return Ok(Step::Unchanged(changes.revision));
                    }
                }
                fetch(client, &self.me, &current).await.map(Step::Fetched)
            };
            match step.await {
                Ok(Step::Fetched(next)) => {
                    if next != *current {
                        if let Err(e) = cache.store_deployments(&next) {
                            tracing::warn!("cannot store the models: {e}");
                        }
                        self.tx.send_replace(Arc::new(next));
                    }
                    synced = true;
                    backoff = Duration::from_millis(100);
                }
                Ok(Step::Unchanged(revision)) => {
                    if revision > current.revision {
                        let mut next = (*current).clone();
                        next.revision = revision;
                        self.tx.send_replace(Arc::new(next));
                    }
                    backoff = Duration::from_millis(100);
                }
                Err(e) => {
                    tracing::debug!("following the models: {e}");
                    control.failed();
                    crate::timer::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}

enum Step {
    Fetched(Deployments),
    /// Nothing this sidecar follows changed up to this revision.
    Unchanged(u64),
}

/// Everything at once; XML already held is not fetched again.
async fn fetch(client: &Client, me: &str, have: &Deployments) -> Result<Deployments, ClientError> {
    let listed = client.models(false).await?;
    let routes = client.routes(false).await?;
    let known: HashMap<(&str, u32), &Model> = have
        .models
        .iter()
        .map(|m| ((m.process.as_str(), m.version), m))
        .collect();
    let mut latest: HashMap<&str, u32> = HashMap::new();
    for m in &listed.models {
        let v = latest.entry(&m.process).or_default();
        *v = (*v).max(m.version);
    }
    let mut models = Vec::with_capacity(listed.models.len());
    for m in &listed.models {
        let needed =
            latest.get(m.process.as_str()) == Some(&m.version) || m.owner.eq_ignore_ascii_case(me);
        let xml = match known.get(&(m.process.as_str(), m.version)) {
            Some(k) if k.xml.is_some() && k.sha256 == m.sha256 => k.xml.clone(),
            _ if needed => Some(client.model_xml(&m.process, &m.version.to_string()).await?),
            _ => None,
        };
        models.push(Model {
            process: m.process.clone(),
            version: m.version,
            owner: m.owner.clone(),
            sha256: m.sha256.clone(),
            xml: if needed { xml } else { None },
        });
    }
    models.sort_by(|a, b| (&a.process, a.version).cmp(&(&b.process, b.version)));
    let rollouts = listed
        .rollouts
        .iter()
        .map(|(p, w)| {
            let weights = w
                .iter()
                .filter_map(|(v, weight)| Some((v.parse().ok()?, *weight)))
                .collect();
            (p.clone(), weights)
        })
        .collect();
    Ok(Deployments {
        // The older of the two reads: a deployment that landed between them is reported
        // again by the next watch instead of being skipped.
        revision: listed.revision.min(routes.revision),
        models,
        rollouts,
        routes: routes.messages,
    })
}
