//! Observation: the deployed models' `flowmesh:http` bindings turned into a matcher, followed
//! from the control plane (and kept in redb for a start without it). A request that matches a
//! binding of the service it is for becomes an [`Observation`].
//!
//! Matching is one hash lookup by (service, method, number of path segments) and then a check
//! of the few bindings left, so hundreds of bindings cost no more than a handful.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use flowmesh_bpmn::model::binding::query_params;
use flowmesh_bpmn::model::{HttpBinding, RequestView};
use hyper::HeaderMap;

use crate::cache::Cache;
use crate::control::ControlPlanes;

/// A request recognised as a BPMN message.
#[derive(Clone, Debug, PartialEq)]
pub struct Observation {
    pub message: String,
    pub key: String,
    pub variables: serde_json::Map<String, serde_json::Value>,
    /// Unique per observation (the workflow runtime deduplicates by it).
    pub id: String,
    /// The trace the request belongs to (hex).
    pub trace_id: String,
}

/// service → method → number of path segments → bindings (lookups by `&str`, no allocation).
type Index = HashMap<String, HashMap<String, HashMap<usize, Vec<Arc<HttpBinding>>>>>;

/// The bindings in effect.
#[derive(Default)]
pub struct Rules {
    index: Index,
    count: usize,
}

/// A binding that matched a request's line, with its path parameters.
pub struct Matched {
    pub binding: Arc<HttpBinding>,
    pub params: std::collections::BTreeMap<String, String>,
}

fn segments(path: &str) -> usize {
    path.strip_prefix('/').map_or(0, |p| p.split('/').count())
}

impl Rules {
    pub fn new(bindings: impl IntoIterator<Item = HttpBinding>) -> Rules {
        let mut index: Index = HashMap::new();
        let mut seen = std::collections::HashSet::new();
        let mut count = 0;
        for b in bindings {
            // The same binding in several deployed files counts once.
            if !seen.insert((
                b.message.clone(),
                b.service.clone(),
                b.method.clone(),
                b.path.source().to_owned(),
            )) {
                continue;
            }
            count += 1;
            index
                .entry(b.service.to_ascii_lowercase())
                .or_default()
                .entry(b.method.clone())
                .or_default()
                .entry(b.path.len())
                .or_default()
                .push(Arc::new(b));
        }
        Rules { index, count }
    }

    /// From deployed BPMN files: the bindings of every file that parses (the control plane
    /// checked them on deploy).
    pub fn from_models(xml: &[(String, String)]) -> Rules {
        Rules::new(
            xml.iter()
                .filter_map(|(name, text)| match flowmesh_bpmn::parse(text) {
                    Ok(defs) => Some(defs.bindings),
                    Err(e) => {
                        tracing::warn!("deployed model {name} does not parse here: {e}");
                        None
                    }
                })
                .flatten(),
        )
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The first binding of `service` (lower case) whose method and path match.
    pub fn find(&self, service: &str, method: &str, path: &str) -> Option<Matched> {
        let candidates = self.index.get(service)?.get(method)?.get(&segments(path))?;
        candidates.iter().find_map(|b| {
            Some(Matched {
                params: b.path.matches(path)?,
                binding: b.clone(),
            })
        })
    }
}

impl Matched {
    /// The observation, if the request carries the binding's key.
    pub fn observe(
        &self,
        query: Option<&str>,
        headers: &HeaderMap,
        body: Option<&serde_json::Value>,
        trace_id: String,
    ) -> Result<Observation, String> {
        // Only what the binding reads: most take their key from the path.
        let query = match query {
            Some(q) if self.binding.reads("query") => query_params(q),
            _ => Default::default(),
        };
        let headers = if self.binding.reads("headers") {
            headers
                .iter()
                .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
                .collect()
        } else {
            Default::default()
        };
        let view = RequestView {
            params: &self.params,
            query: &query,
            headers: &headers,
            body,
        };
        let key = self.binding.key(&view)?;
        let mut id = [0u8; 16];
        fastrand::fill(&mut id);
        Ok(Observation {
            message: self.binding.message.clone(),
            key,
            variables: self.binding.variables(&view),
            id: crate::telemetry::context::hex(&id),
            trace_id,
        })
    }
}

/// A cheap handle to the rules in effect, swapped whole when the models change.
#[derive(Clone, Default)]
pub struct RuleSet {
    current: Arc<RwLock<Arc<Rules>>>,
}

impl RuleSet {
    pub fn get(&self) -> Arc<Rules> {
        self.current.read().map(|r| r.clone()).unwrap_or_default()
    }

    pub fn replace(&self, rules: Rules) {
        if let Ok(mut current) = self.current.write() {
            *current = Arc::new(rules);
        }
    }

    /// The rules of the models stored at the last run.
    pub fn restore(&self, cache: &Cache) {
        match cache.load_models() {
            Ok(models) if !models.is_empty() => self.replace(Rules::from_models(&models)),
            Ok(_) => {}
            Err(e) => tracing::warn!(
                "the cached models cannot be read ({e}); no bindings until the control plane answers"
            ),
        }
    }

    /// Follows the deployed models: the latest version of each process, fetched when it
    /// changes, stored in redb, turned into rules.
    pub async fn follow(self, control: ControlPlanes, cache: Cache) {
        let mut revision = 0u64;
        let mut backoff = Duration::from_millis(100);
        let mut have: HashMap<String, (u32, String)> = HashMap::new();
        let mut synced = false;
        loop {
            let client = control.current();
            let step = async {
                if synced {
                    let changes = client.watch(revision, Duration::from_secs(25)).await?;
                    let models_changed = changes.snapshot.is_some()
                        || changes.changes.iter().any(|c| {
                            matches!(c, flowmesh_proto::control::Change::ModelDeployed { .. })
                        });
                    if !models_changed {
                        return Ok((changes.revision, false));
                    }
                }
                let models = client.models(false).await?;
                let mut latest: HashMap<String, u32> = HashMap::new();
                for m in &models.models {
                    let v = latest.entry(m.process.clone()).or_default();
                    *v = (*v).max(m.version);
                }
                let mut next = HashMap::new();
                for (process, version) in latest {
                    let xml = match have.get(&process) {
                        Some((v, xml)) if *v == version => xml.clone(),
                        _ => client.model_xml(&process, &version.to_string()).await?,
                    };
                    next.insert(process, (version, xml));
                }
                have = next;
                Ok::<_, flowmesh_control_plane::client::Error>((models.revision, true))
            };
            match step.await {
                Ok((seen, changed)) => {
                    if changed {
                        let xml: Vec<(String, String)> = have
                            .iter()
                            .map(|(p, (v, x))| (format!("{p} v{v}"), x.clone()))
                            .collect();
                        let rules = Rules::from_models(&xml);
                        tracing::debug!("{} HTTP bindings from {} models", rules.len(), xml.len());
                        self.replace(rules);
                        if let Err(e) = cache.store_models(&xml) {
                            tracing::warn!("cannot store the models: {e}");
                        }
                    }
                    revision = revision.max(seen);
                    synced = true;
                    backoff = Duration::from_millis(100);
                }
                Err(e) => {
                    tracing::debug!("following the models: {e}");
                    control.failed();
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}
