//! Observation: the deployed models' `flowmesh:http` bindings turned into a matcher that
//! follows the deployments. A request that matches a
//! binding of the service it is for becomes an [`Observation`].
//!
//! Matching is one hash lookup by (service, method, number of path segments) and then a check
//! of the few bindings left, so hundreds of bindings cost no more than a handful.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use flowmesh_bpmn::model::binding::query_params;
use flowmesh_bpmn::model::{HttpBinding, RequestView};
use hyper::HeaderMap;

use tokio::sync::watch;

use crate::deployments::Deployments;

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
    /// The request's own span context (W3C `traceparent`), for what the message causes.
    pub traceparent: String,
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
            traceparent: String::new(),
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

    /// Keeps the rules current with the deployed models' latest versions until the task is
    /// dropped.
    pub async fn follow(self, mut deployments: watch::Receiver<Arc<Deployments>>) {
        loop {
            let latest = deployments.borrow_and_update().latest_xml();
            let rules = Rules::from_models(&latest);
            tracing::debug!("{} HTTP bindings from {} models", rules.len(), latest.len());
            self.replace(rules);
            if deployments.changed().await.is_err() {
                return;
            }
        }
    }
}
