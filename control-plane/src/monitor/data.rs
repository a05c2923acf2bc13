//! The monitor's numbers: per-sidecar answers merged into one view of a model, the model
//! list, a page of instances across sidecars, and one instance. The JSON endpoints and the
//! pages both read these.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use flowmesh_bpmn::model::Definitions;
use flowmesh_proto::monitor::{
    FlowView, InstanceSummary, InstancesView, ModelView, ModelsView, ProcessView, SidecarModels,
    SidecarStatus, StateCounts, VersionView,
};
use serde::Deserialize;

use super::Monitor;
use super::gather::{self, Target};

/// Most instances one page holds.
pub(crate) const MAX_PAGE: usize = 500;

/// Why a view cannot be given.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Unavailable(String),
}

/// A model as deployed: owner, versions, and the parsed XML of the one asked for.
pub(crate) struct Deployed {
    pub(crate) owner: String,
    pub(crate) versions: Vec<u32>,
    pub(crate) version: u32,
    pub(crate) definitions: Arc<Definitions>,
}

impl Monitor {
    /// The process's deployment at `version` (latest when `None`), its file parsed once.
    pub(crate) async fn deployed(
        &self,
        process: &str,
        version: Option<u32>,
    ) -> Result<Deployed, Error> {
        let (owner, versions, version, xml) = {
            let m = self.machine.read().await;
            let versions: Vec<u32> = m
                .state
                .models
                .keys()
                .filter(|(p, _)| p == process)
                .map(|(_, v)| *v)
                .collect();
            let Some(&latest) = versions.last() else {
                return Err(Error::NotFound(format!(
                    "no process '{process}' is deployed; `flowmesh get models` lists those that are"
                )));
            };
            let version = version.unwrap_or(latest);
            let Some(record) = m.state.models.get(&(process.to_owned(), version)) else {
                return Err(Error::NotFound(format!(
                    "process '{process}' has no version {version}; it has {}",
                    list(&versions)
                )));
            };
            (record.owner.clone(), versions, version, record.xml.clone())
        };
        let key = (process.to_owned(), version);
        if let Some(d) = self.lock_diagrams().get(&key) {
            return Ok(Deployed {
                owner,
                versions,
                version,
                definitions: d.clone(),
            });
        }
        let parsed = flowmesh_bpmn::parse(&xml)
            .map_err(|e| Error::Invalid(format!("the deployed XML no longer parses: {e}")))?;
        let parsed = Arc::new(parsed);
        self.lock_diagrams().insert(key, parsed.clone());
        Ok(Deployed {
            owner,
            versions,
            version,
            definitions: parsed,
        })
    }

    async fn owners(&self, process: Option<&str>) -> BTreeSet<String> {
        let m = self.machine.read().await;
        m.state
            .models
            .values()
            .filter(|r| process.is_none_or(|p| r.process == p))
            .map(|r| r.owner.clone())
            .collect()
    }

    async fn targets(&self, services: &BTreeSet<String>) -> Vec<Target> {
        let m = self.machine.read().await;
        self.seen.targets(&m.state, services)
    }

    async fn sidecar_models(
        &self,
        services: &BTreeSet<String>,
    ) -> (Vec<SidecarModels>, Vec<SidecarStatus>) {
        let targets = self.targets(services).await;
        let answers = gather::ask::<SidecarModels>(
            &self.client,
            targets,
            "/v1/models",
            self.options.sidecar_timeout,
        )
        .await;
        let statuses = answers.iter().map(|a| a.status()).collect();
        let models = answers.into_iter().filter_map(|a| a.result.ok()).collect();
        (models, statuses)
    }

    /// Every deployed process with its versions and counts over all sidecars.
    pub(crate) async fn models(&self) -> ModelsView {
        let owners = self.owners(None).await;
        let (answers, sidecars) = self.sidecar_models(&owners).await;
        let mut counts: BTreeMap<(String, u32), StateCounts> = BTreeMap::new();
        for a in &answers {
            for m in &a.models {
                counts
                    .entry((m.process.clone(), m.version))
                    .or_default()
                    .add(&m.instances);
            }
        }
        let m = self.machine.read().await;
        let mut by_process: BTreeMap<String, ProcessView> = BTreeMap::new();
        for ((process, version), record) in &m.state.models {
            let view = by_process
                .entry(process.clone())
                .or_insert_with(|| ProcessView {
                    process: process.clone(),
                    ..ProcessView::default()
                });
            view.owner = record.owner.clone();
            let c = counts
                .get(&(process.clone(), *version))
                .copied()
                .unwrap_or_default();
            view.instances.add(&c);
            view.versions.push(VersionView {
                version: *version,
                deployed_at: crate::state::rfc3339(record.deployed_at_ms),
                instances: c,
            });
        }
        ModelsView {
            models: by_process.into_values().collect(),
            sidecars,
        }
    }

    /// One version of a process: counts, per-element numbers and flow shares, merged.
    pub(crate) async fn model(
        &self,
        process: &str,
        version: Option<u32>,
    ) -> Result<(ModelView, Deployed), Error> {
        let deployed = self.deployed(process, version).await?;
        let owners = self.owners(Some(process)).await;
        let (answers, sidecars) = self.sidecar_models(&owners).await;
        let mut view = ModelView {
            process: process.to_owned(),
            version: deployed.version,
            versions: deployed.versions.clone(),
            owner: deployed.owner.clone(),
            sidecars,
            ..ModelView::default()
        };
        let mut taken: BTreeMap<String, u64> = BTreeMap::new();
        for a in &answers {
            for m in a
                .models
                .iter()
                .filter(|m| m.process == process && m.version == deployed.version)
            {
                view.instances.add(&m.instances);
                for (id, s) in &m.elements {
                    view.elements.entry(id.clone()).or_default().add(s);
                }
                for (id, n) in &m.flows {
                    *taken.entry(id.clone()).or_default() += n;
                }
            }
        }
        let total = view.instances.total();
        view.flows = taken
            .into_iter()
            .map(|(id, n)| {
                let share = if total == 0 {
                    0.0
                } else {
                    (n as f64 / total as f64).min(1.0)
                };
                (id, FlowView { taken: n, share })
            })
            .collect();
        Ok((view, deployed))
    }

    /// A page of a process's instances over its sidecars, oldest first.
    pub(crate) async fn instances(
        &self,
        process: &str,
        filter: &InstanceFilter,
    ) -> Result<InstancesView, Error> {
        let limit = filter.limit.unwrap_or(50);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(Error::Invalid(format!(
                "limit {limit} must be from 1 to {MAX_PAGE}"
            )));
        }
        if let Some(s) = &filter.state
            && !matches!(
                s.as_str(),
                "active" | "completed" | "incident" | "cancelled"
            )
        {
            return Err(Error::Invalid(format!(
                "state '{s}' is not one of active, completed, incident, cancelled"
            )));
        }
        let cursor = Cursor::parse(filter.cursor.as_deref().unwrap_or_default())?;
        let owners = self.owners(Some(process)).await;
        if owners.is_empty() {
            return Err(Error::NotFound(format!(
                "no process '{process}' is deployed; `flowmesh get models` lists those that are"
            )));
        }
        let targets = self.targets(&owners).await;
        let timeout = self.options.sidecar_timeout;
        let asks = targets.into_iter().map(|t| {
            let mut q = vec![
                ("process", process.to_owned()),
                ("limit", limit.to_string()),
            ];
            if let Some(v) = filter.version {
                q.push(("version", v.to_string()));
            }
            if let Some(s) = &filter.state {
                q.push(("state", s.clone()));
            }
            if let Some(b) = filter.business_key.as_deref().filter(|b| !b.is_empty()) {
                q.push(("business_key", b.to_owned()));
            }
            if let Some(after) = cursor.after.get(&t.instance) {
                q.push(("after", after.to_string()));
            }
            let path = format!("/v1/instances?{}", query(&q));
            async move {
                let mut answers =
                    gather::ask::<SidecarPage>(&self.client, vec![t], &path, timeout).await;
                answers.pop()
            }
        });
        let answers: Vec<_> = futures_util::future::join_all(asks)
            .await
            .into_iter()
            .flatten()
            .collect();
        let sidecars = answers.iter().map(|a| a.status()).collect();
        // Merge by start time over the sidecars' pages; each sidecar's cursor moves past what
        // this page took from it.
        let mut rows: Vec<(jiff::Timestamp, InstanceSummary)> = Vec::new();
        let mut more: BTreeSet<String> = BTreeSet::new();
        for a in &answers {
            let Ok(page) = &a.result else { continue };
            if page.next.is_some() {
                more.insert(a.target.instance.clone());
            }
            for r in &page.items {
                let at = r.started_at.parse().unwrap_or(jiff::Timestamp::UNIX_EPOCH);
                rows.push((
                    at,
                    InstanceSummary {
                        id: format!("{}@{}", r.key, a.target.instance),
                        key: r.key.clone(),
                        sidecar: a.target.instance.clone(),
                        process: r.process.clone(),
                        version: r.version,
                        state: r.state.clone(),
                        business_key: r.business_key.clone(),
                        started_at: r.started_at.clone(),
                        ended_at: r.ended_at.clone(),
                    },
                ));
            }
        }
        rows.sort_by(|a, b| {
            (a.0, &a.1.sidecar, a.1.key.parse::<u64>().unwrap_or(0)).cmp(&(
                b.0,
                &b.1.sidecar,
                b.1.key.parse::<u64>().unwrap_or(0),
            ))
        });
        let left_over = rows.len() > limit;
        let items: Vec<InstanceSummary> = rows.into_iter().take(limit).map(|(_, r)| r).collect();
        let mut next = cursor.after.clone();
        for r in &items {
            if let Ok(k) = r.key.parse::<u64>() {
                next.insert(r.sidecar.clone(), k);
            }
        }
        let next = (left_over || !more.is_empty()).then(|| Cursor { after: next }.to_string());
        Ok(InstancesView {
            items,
            next,
            sidecars,
        })
    }

    /// One instance, from the sidecar that runs it: its row, variables, history, incidents.
    pub(crate) async fn instance(&self, id: &str) -> Result<(serde_json::Value, Target), Error> {
        let (key, target) = self.locate(id).await?;
        let mut body: serde_json::Value = gather::get(
            &self.client,
            &target.local,
            &format!("/v1/instances/{key}"),
            self.options.sidecar_timeout,
        )
        .await
        .map_err(|e| {
            if e.starts_with("not found") {
                Error::NotFound(format!("sidecar {} has no instance {key}", target.instance))
            } else {
                Error::Unavailable(format!(
                    "sidecar {} (which runs this instance) did not answer: {e}",
                    target.instance
                ))
            }
        })?;
        body["id"] = serde_json::json!(id);
        body["sidecar"] = serde_json::json!(target.instance);
        body["service"] = serde_json::json!(target.service);
        if let (Some(template), Some(trace)) = (
            &self.options.trace_url,
            body.get("trace_id").and_then(|t| t.as_str()),
        ) {
            body["trace_url"] = serde_json::json!(template.replace("{trace_id}", trace));
        }
        Ok((body, target))
    }

    /// Resolves an incident of an instance through the sidecar that runs it.
    pub(crate) async fn resolve(&self, id: &str, incident: &str) -> Result<(), Error> {
        if incident.is_empty() || !incident.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::Invalid(format!(
                "'{incident}' is not an incident key (a number)"
            )));
        }
        let (_, target) = self.locate(id).await?;
        gather::send(
            &self.client,
            hyper::Method::POST,
            &target.local,
            &format!("/v1/incidents/{incident}/resolve"),
            self.options.sidecar_timeout,
        )
        .await
        .map(|_| ())
        .map_err(|e| {
            if e.starts_with("not found") {
                Error::NotFound(e)
            } else {
                Error::Unavailable(format!("sidecar {}: {e}", target.instance))
            }
        })
    }

    /// `KEY@SIDECAR` → the key and how to reach the sidecar.
    async fn locate(&self, id: &str) -> Result<(u64, Target), Error> {
        let Some((key, sidecar)) = id.split_once('@') else {
            return Err(Error::Invalid(format!(
                "'{id}' is not an instance id; they look like KEY@SIDECAR (e.g. 42@payment-1)"
            )));
        };
        let key: u64 = key
            .parse()
            .map_err(|_| Error::Invalid(format!("'{key}' in '{id}' is not an instance key")))?;
        let services: BTreeSet<String> = {
            let m = self.machine.read().await;
            m.state.services.keys().cloned().collect()
        };
        let target = self
            .targets(&services)
            .await
            .into_iter()
            .find(|t| t.instance == sidecar)
            .ok_or_else(|| {
                Error::NotFound(format!(
                    "no sidecar named '{sidecar}' is registered or was seen"
                ))
            })?;
        if !target.registered {
            return Err(Error::Unavailable(format!(
                "sidecar {sidecar} (which runs this instance) is gone: its registration ended"
            )));
        }
        Ok((key, target))
    }
}

/// Which instances a page lists.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct InstanceFilter {
    pub(crate) version: Option<u32>,
    pub(crate) state: Option<String>,
    pub(crate) business_key: Option<String>,
    pub(crate) limit: Option<usize>,
    pub(crate) cursor: Option<String>,
}

/// A sidecar's page of `GET /v1/instances`.
#[derive(Deserialize)]
struct SidecarPage {
    items: Vec<SidecarRow>,
    next: Option<String>,
}

#[derive(Deserialize)]
struct SidecarRow {
    key: String,
    process: String,
    version: u32,
    state: String,
    business_key: Option<String>,
    started_at: String,
    ended_at: Option<String>,
}

/// Where each sidecar's listing continues: `KEY@SIDECAR` pairs, comma-separated.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Cursor {
    after: BTreeMap<String, u64>,
}

impl Cursor {
    fn parse(text: &str) -> Result<Cursor, Error> {
        let mut after = BTreeMap::new();
        for part in text.split(',').filter(|p| !p.is_empty()) {
            let parsed = part
                .split_once('@')
                .and_then(|(k, s)| Some((s.to_owned(), k.parse::<u64>().ok()?)));
            let Some((sidecar, key)) = parsed else {
                return Err(Error::Invalid(format!(
                    "cursor '{text}' is not one this monitor gave; start again without it"
                )));
            };
            after.insert(sidecar, key);
        }
        Ok(Cursor { after })
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.after.iter().map(|(s, k)| format!("{k}@{s}")).collect();
        f.write_str(&parts.join(","))
    }
}

fn query(pairs: &[(&str, String)]) -> String {
    use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", utf8_percent_encode(v, NON_ALPHANUMERIC)))
        .collect::<Vec<_>>()
        .join("&")
}

fn list(versions: &[u32]) -> String {
    versions
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let c = Cursor::parse("12@payment-1,7@payment-2").expect("parses");
        assert_eq!(c.after.get("payment-1"), Some(&12));
        assert_eq!(Cursor::parse(&c.to_string()).expect("again"), c);
        assert_eq!(Cursor::parse("").expect("empty"), Cursor::default());
        assert!(Cursor::parse("x@payment-1").is_err());
        assert!(Cursor::parse("12").is_err());
    }
}
