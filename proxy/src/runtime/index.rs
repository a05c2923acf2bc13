//! What the runtime keeps beside the engine's state, in the same redb file and the same
//! transaction as each batch: one row per process instance (state, business key, times,
//! trace), its history of element events, the elements active now, open incidents, and
//! per-element counts and times. The local API reads these; the engine never does.

use std::collections::BTreeMap;

use flowmesh_bpmn::engine::{Engine, Event, Lifecycle};
use flowmesh_bpmn::store::KvRead;
use flowmesh_proto::monitor::Histogram;
use redb::{ReadTransaction, ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::Error;

/// Instance key → [`InstanceRow`] (JSON).
const INSTANCES: TableDefinition<'static, u64, &'static [u8]> =
    TableDefinition::new("rt_instances");
/// (instance, sequence) → [`HistoryRow`] (JSON).
const HISTORY: TableDefinition<'static, (u64, u64), &'static [u8]> =
    TableDefinition::new("rt_history");
/// (instance, element instance) → [`ActiveRow`] (JSON): elements running now.
const ACTIVE: TableDefinition<'static, (u64, u64), &'static [u8]> =
    TableDefinition::new("rt_active");
/// Incident key → [`IncidentRow`] (JSON), while open.
const INCIDENTS: TableDefinition<'static, u64, &'static [u8]> =
    TableDefinition::new("rt_incidents");
/// (process, version, element) → [`ElementStats`] (JSON).
const STATS: TableDefinition<'static, (&'static str, u32, &'static str), &'static [u8]> =
    TableDefinition::new("rt_element_stats");
/// Instance → its process-level variables (JSON object), kept after the instance ends.
const VARIABLES: TableDefinition<'static, u64, &'static [u8]> =
    TableDefinition::new("rt_variables");
/// Counters: `history_seq`.
const META: TableDefinition<'static, &'static str, u64> = TableDefinition::new("rt_meta");
/// How often each sequence flow was taken: (process, version, flow id) → count.
const FLOWS: TableDefinition<'static, (&'static str, u32, &'static str), u64> =
    TableDefinition::new("rt_flow_stats");
/// Instances by (process, version, state), kept as instances move, so the monitor's counts
/// do not read every instance.
const COUNTS: TableDefinition<'static, (&'static str, u32, &'static str), u64> =
    TableDefinition::new("rt_instance_counts");

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstanceState {
    Active,
    Completed,
    Incident,
    Cancelled,
}

impl InstanceState {
    pub fn parse(text: &str) -> Option<InstanceState> {
        Some(match text {
            "active" => InstanceState::Active,
            "completed" => InstanceState::Completed,
            "incident" => InstanceState::Incident,
            "cancelled" => InstanceState::Cancelled,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            InstanceState::Active => "active",
            InstanceState::Completed => "completed",
            InstanceState::Incident => "incident",
            InstanceState::Cancelled => "cancelled",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstanceRow {
    pub key: u64,
    pub process: String,
    pub version: u32,
    pub state: InstanceState,
    pub business_key: Option<String>,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub open_incidents: u32,
    /// The trace the instance belongs to, and the span id of the process instance itself
    /// (chosen at its start so that element spans can point to it at once).
    pub trace_id: String,
    pub span_id: String,
    /// The span the instance's own span is a child of, if it was started from a traced call.
    pub parent_span_id: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistoryRow {
    pub element: String,
    #[serde(rename = "type")]
    pub element_type: String,
    pub event: String,
    pub at: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActiveRow {
    pub element: String,
    pub element_type: String,
    pub started_at: i64,
    pub span_id: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IncidentRow {
    pub key: u64,
    pub instance: u64,
    pub process: String,
    pub version: u32,
    pub element: String,
    pub kind: String,
    pub message: String,
    pub job: Option<u64>,
    pub created_at: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ElementStats {
    pub active: u64,
    pub completed: u64,
    pub terminated: u64,
    pub incidents: u64,
    /// Sum of the durations of ended element instances, and how many.
    pub total_ms: u64,
    pub ended: u64,
    /// The same durations, for percentiles (rows written before it existed have none).
    #[serde(default)]
    pub durations: Histogram,
}

/// How a new instance is to be recorded (from the command that started it).
#[derive(Clone, Debug, Default)]
pub struct Origin {
    pub business_key: Option<String>,
    pub trace_id: Option<String>,
    pub parent_span_id: Option<String>,
}

/// An element instance that ended in a batch, for its span.
#[derive(Clone, Debug)]
pub struct Ended {
    pub instance: InstanceRow,
    pub element: String,
    pub element_type: String,
    pub element_key: u64,
    pub span_id: String,
    pub started_at: i64,
    pub ended_at: i64,
    pub outcome: &'static str,
    /// The element is the process itself.
    pub is_process: bool,
}

fn io(e: impl std::fmt::Display) -> Error {
    Error::Storage(e.to_string())
}

fn json<T: Serialize>(v: &T) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(v).map_err(io)
}

fn from_json<T: for<'a> Deserialize<'a>>(bytes: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(bytes).map_err(|e| Error::Storage(format!("corrupt runtime row: {e}")))
}

pub(super) fn span_id() -> String {
    let mut id = [0u8; 8];
    fastrand::fill(&mut id);
    crate::telemetry::context::hex(&id)
}

pub(super) fn trace_id() -> String {
    let mut id = [0u8; 16];
    fastrand::fill(&mut id);
    crate::telemetry::context::hex(&id)
}

/// Creates the tables (once, at open).
pub fn create(txn: &WriteTransaction) -> Result<(), Error> {
    txn.open_table(INSTANCES).map_err(io)?;
    txn.open_table(HISTORY).map_err(io)?;
    txn.open_table(ACTIVE).map_err(io)?;
    txn.open_table(INCIDENTS).map_err(io)?;
    txn.open_table(STATS).map_err(io)?;
    txn.open_table(META).map_err(io)?;
    txn.open_table(VARIABLES).map_err(io)?;
    txn.open_table(FLOWS).map_err(io)?;
    let mut counts = txn.open_table(COUNTS).map_err(io)?;
    // A store from before the counts table: count once, then keep them as instances move.
    if counts.iter().map_err(io)?.next().is_none() {
        let instances = txn.open_table(INSTANCES).map_err(io)?;
        let mut found: BTreeMap<(String, u32, &'static str), u64> = BTreeMap::new();
        for entry in instances.iter().map_err(io)? {
            let (_, v) = entry.map_err(io)?;
            let row: InstanceRow = from_json(v.value())?;
            *found
                .entry((row.process, row.version, row.state.name()))
                .or_default() += 1;
        }
        for ((process, version, state), n) in found {
            counts
                .insert((process.as_str(), version, state), n)
                .map_err(io)?;
        }
    }
    Ok(())
}

/// Records what a batch did, inside its transaction. `origins` maps instance keys created by
/// this batch's commands to where they came from, `by_key` the correlation keys of its
/// messages (an instance a message starts has it as start key). Returns the element
/// instances that ended.
pub fn record(
    txn: &WriteTransaction,
    engine: &mut Engine,
    kv: &dyn KvRead,
    events: &[Event],
    origins: &BTreeMap<u64, Origin>,
    by_key: &BTreeMap<String, Origin>,
) -> Result<Recorded, Error> {
    let mut instances = txn.open_table(INSTANCES).map_err(io)?;
    let mut history = txn.open_table(HISTORY).map_err(io)?;
    let mut active = txn.open_table(ACTIVE).map_err(io)?;
    let mut incidents = txn.open_table(INCIDENTS).map_err(io)?;
    let mut stats = txn.open_table(STATS).map_err(io)?;
    let mut meta = txn.open_table(META).map_err(io)?;
    let mut variables = txn.open_table(VARIABLES).map_err(io)?;
    let mut flows = txn.open_table(FLOWS).map_err(io)?;
    let mut counts = txn.open_table(COUNTS).map_err(io)?;
    // Flow events carry no time; they happen at the time of the element events around them.
    let mut last_at = 0i64;
    let mut changed_vars: BTreeMap<u64, serde_json::Map<String, serde_json::Value>> =
        BTreeMap::new();
    let mut seq = meta
        .get("history_seq")
        .map_err(io)?
        .map_or(0, |v| v.value());
    let mut rows: BTreeMap<u64, InstanceRow> = BTreeMap::new();
    let mut ended = Vec::new();
    // Instances migrated in this batch, and the version they came from.
    let mut migrated_from: BTreeMap<u64, u32> = BTreeMap::new();
    // Child instances a call activity started in this batch: they join its trace.
    let mut called: BTreeMap<u64, Origin> = BTreeMap::new();

    let row_of = |key: u64,
                  rows: &mut BTreeMap<u64, InstanceRow>,
                  instances: &redb::Table<'_, u64, &[u8]>|
     -> Result<Option<InstanceRow>, Error> {
        if let Some(r) = rows.get(&key) {
            return Ok(Some(r.clone()));
        }
        Ok(match instances.get(key).map_err(io)? {
            Some(v) => Some(from_json::<InstanceRow>(v.value())?),
            None => None,
        })
    };

    for event in events {
        match event {
            Event::ProcessCalled(link) => {
                let Some(parent) = row_of(link.parent_instance, &mut rows, &instances)? else {
                    continue;
                };
                let span = active
                    .get((link.parent_instance, link.parent))
                    .map_err(io)?
                    .map(|v| from_json::<ActiveRow>(v.value()))
                    .transpose()?
                    .map(|a| a.span_id);
                called.insert(
                    link.child,
                    Origin {
                        business_key: parent.business_key.clone(),
                        trace_id: Some(parent.trace_id.clone()),
                        parent_span_id: span,
                    },
                );
            }
            Event::ElementActivating { element, .. } => {
                let (process, version) = engine.definition(kv, element.definition)?;
                let el = process.element(element.element);
                if element.scope.is_none() {
                    let origin = origins
                        .get(&element.instance)
                        .or_else(|| called.get(&element.instance))
                        .or_else(|| element.start_key.as_ref().and_then(|k| by_key.get(k)))
                        .cloned()
                        .unwrap_or_default();
                    let row = InstanceRow {
                        key: element.instance,
                        process: process.id.clone(),
                        version,
                        state: InstanceState::Active,
                        business_key: origin.business_key.or_else(|| element.start_key.clone()),
                        started_at: element.started_at,
                        ended_at: None,
                        open_incidents: 0,
                        trace_id: origin.trace_id.unwrap_or_else(trace_id),
                        span_id: span_id(),
                        parent_span_id: origin.parent_span_id,
                    };
                    rows.insert(row.key, row);
                }
                let row = ActiveRow {
                    element: el.id.clone(),
                    element_type: el.tag.to_owned(),
                    started_at: element.started_at,
                    span_id: span_id(),
                };
                active
                    .insert((element.instance, element.key), json(&row)?.as_slice())
                    .map_err(io)?;
            }
            Event::Element {
                intent,
                element,
                at,
            } => {
                let name = match intent {
                    Lifecycle::Activated => "activated",
                    Lifecycle::Completed => "completed",
                    Lifecycle::Terminated => "terminated",
                    Lifecycle::Completing | Lifecycle::Terminating => continue,
                };
                last_at = *at;
                let (process, version) = engine.definition(kv, element.definition)?;
                let el = process.element(element.element);
                seq += 1;
                let entry = HistoryRow {
                    element: el.id.clone(),
                    element_type: el.tag.to_owned(),
                    event: name.to_owned(),
                    at: *at,
                };
                history
                    .insert((element.instance, seq), json(&entry)?.as_slice())
                    .map_err(io)?;
                // A multi-instance activity counts once, as its body; the instances per item
                // are in the history and the trace.
                let per_item = el.scope.and_then(|s| process.inner_of(s)) == Some(element.element);
                let stat_key = (process.id.as_str(), version, el.id.as_str());
                let mut s: ElementStats = match stats.get(stat_key).map_err(io)? {
                    Some(v) => from_json(v.value())?,
                    None => ElementStats::default(),
                };
                if *intent == Lifecycle::Activated {
                    if !per_item {
                        s.active += 1;
                        stats.insert(stat_key, json(&s)?.as_slice()).map_err(io)?;
                    }
                    continue;
                }
                let Some(started) = active
                    .remove((element.instance, element.key))
                    .map_err(io)?
                    .map(|v| from_json::<ActiveRow>(v.value()))
                    .transpose()?
                else {
                    continue;
                };
                if !per_item {
                    s.active = s.active.saturating_sub(1);
                    if *intent == Lifecycle::Completed {
                        s.completed += 1;
                    } else {
                        s.terminated += 1;
                    }
                    let took = u64::try_from(at - started.started_at).unwrap_or(0);
                    s.total_ms += took;
                    s.ended += 1;
                    s.durations.record(took);
                    stats.insert(stat_key, json(&s)?.as_slice()).map_err(io)?;
                }
                let Some(mut row) = row_of(element.instance, &mut rows, &instances)? else {
                    continue;
                };
                let is_process = element.scope.is_none();
                if is_process {
                    row.state = if *intent == Lifecycle::Completed {
                        InstanceState::Completed
                    } else {
                        InstanceState::Cancelled
                    };
                    row.ended_at = Some(*at);
                    rows.insert(row.key, row.clone());
                }
                ended.push(Ended {
                    span_id: if is_process {
                        row.span_id.clone()
                    } else {
                        started.span_id
                    },
                    instance: row,
                    element: el.id.clone(),
                    element_type: el.tag.to_owned(),
                    element_key: element.key,
                    started_at: started.started_at,
                    ended_at: *at,
                    outcome: name,
                    is_process,
                });
            }
            Event::SequenceFlowTaken {
                flow,
                instance,
                definition,
                ..
            } => {
                let (process, version) = engine.definition(kv, *definition)?;
                let f = process.flow(*flow);
                let key = (process.id.as_str(), version, f.id.as_str());
                let taken = flows.get(key).map_err(io)?.map_or(0, |v| v.value());
                flows.insert(key, taken + 1).map_err(io)?;
                seq += 1;
                let entry = HistoryRow {
                    element: f.id.clone(),
                    element_type: "sequenceFlow".to_owned(),
                    event: "taken".to_owned(),
                    at: last_at,
                };
                history
                    .insert((*instance, seq), json(&entry)?.as_slice())
                    .map_err(io)?;
            }
            Event::IncidentCreated(i) => {
                let (process, version) = engine.definition(kv, i.definition)?;
                let el = process.element(i.element);
                let row = IncidentRow {
                    key: i.key,
                    instance: i.instance,
                    process: process.id.clone(),
                    version,
                    element: el.id.clone(),
                    kind: i.kind.name().to_owned(),
                    message: i.message.clone(),
                    job: i.job,
                    created_at: i.created_at,
                };
                incidents
                    .insert(i.key, json(&row)?.as_slice())
                    .map_err(io)?;
                let stat_key = (process.id.as_str(), version, el.id.as_str());
                let mut s: ElementStats = match stats.get(stat_key).map_err(io)? {
                    Some(v) => from_json(v.value())?,
                    None => ElementStats::default(),
                };
                s.incidents += 1;
                stats.insert(stat_key, json(&s)?.as_slice()).map_err(io)?;
                if let Some(mut r) = row_of(i.instance, &mut rows, &instances)? {
                    r.open_incidents += 1;
                    if r.state == InstanceState::Active {
                        r.state = InstanceState::Incident;
                    }
                    rows.insert(r.key, r);
                }
            }
            Event::ElementMigrated {
                key,
                instance,
                definition,
                element,
            } => {
                let (process, version) = engine.definition(kv, *definition)?;
                if key == instance {
                    let Some(mut row) = row_of(*instance, &mut rows, &instances)? else {
                        continue;
                    };
                    migrated_from.insert(*instance, row.version);
                    // The instance's count moves to its new version (in the state it was
                    // stored with, which the end of this batch counts from).
                    if let Some(stored) = instances.get(*instance).map_err(io)? {
                        let stored: InstanceRow = from_json(stored.value())?;
                        let from = (row.process.as_str(), row.version, stored.state.name());
                        let n = counts.get(from).map_err(io)?.map_or(0, |v| v.value());
                        counts.insert(from, n.saturating_sub(1)).map_err(io)?;
                        let to = (row.process.as_str(), version, stored.state.name());
                        let n = counts.get(to).map_err(io)?.map_or(0, |v| v.value());
                        counts.insert(to, n + 1).map_err(io)?;
                    }
                    row.version = version;
                    rows.insert(row.key, row);
                    continue;
                }
                let Some(old) = active
                    .get((*instance, *key))
                    .map_err(io)?
                    .map(|v| from_json::<ActiveRow>(v.value()))
                    .transpose()?
                else {
                    continue;
                };
                let el = process.element(*element);
                let old_version = migrated_from.get(instance).copied().unwrap_or(version);
                // The element's "active" count moves to the element it became.
                let from_key = (process.id.as_str(), old_version, old.element.as_str());
                let before = stats
                    .get(from_key)
                    .map_err(io)?
                    .map(|v| from_json::<ElementStats>(v.value()))
                    .transpose()?;
                if let Some(mut s) = before {
                    s.active = s.active.saturating_sub(1);
                    stats.insert(from_key, json(&s)?.as_slice()).map_err(io)?;
                }
                let to_key = (process.id.as_str(), version, el.id.as_str());
                let mut s: ElementStats = match stats.get(to_key).map_err(io)? {
                    Some(v) => from_json(v.value())?,
                    None => ElementStats::default(),
                };
                s.active += 1;
                stats.insert(to_key, json(&s)?.as_slice()).map_err(io)?;
                let moved = ActiveRow {
                    element: el.id.clone(),
                    element_type: el.tag.to_owned(),
                    ..old
                };
                active
                    .insert((*instance, *key), json(&moved)?.as_slice())
                    .map_err(io)?;
            }
            Event::IncidentResolved { key } => {
                let Some(gone) = incidents.remove(*key).map_err(io)? else {
                    continue;
                };
                let gone: IncidentRow = from_json(gone.value())?;
                if let Some(mut r) = row_of(gone.instance, &mut rows, &instances)? {
                    r.open_incidents = r.open_incidents.saturating_sub(1);
                    if r.open_incidents == 0 && r.state == InstanceState::Incident {
                        r.state = InstanceState::Active;
                    }
                    rows.insert(r.key, r);
                }
            }
            Event::VariableCreated {
                scope,
                name,
                value,
                instance,
            }
            | Event::VariableUpdated {
                scope,
                name,
                value,
                instance,
            } if scope == instance => {
                let vars = match changed_vars.entry(*instance) {
                    std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
                    std::collections::btree_map::Entry::Vacant(v) => {
                        let stored = match variables.get(*instance).map_err(io)? {
                            Some(b) => from_json(b.value())?,
                            None => serde_json::Map::new(),
                        };
                        v.insert(stored)
                    }
                };
                vars.insert(name.clone(), value.to_json());
            }
            _ => {}
        }
    }
    for (instance, vars) in &changed_vars {
        variables
            .insert(*instance, json(vars)?.as_slice())
            .map_err(io)?;
    }
    let mut recorded = Recorded::default();
    for e in events {
        match e {
            Event::IncidentCreated(_) => recorded.incidents += 1,
            Event::IncidentResolved { .. } => recorded.incidents -= 1,
            _ => {}
        }
    }
    for row in rows.values() {
        let before = match instances.get(row.key).map_err(io)? {
            Some(v) => Some(from_json::<InstanceRow>(v.value())?.state),
            None => None,
        };
        if before != Some(row.state) {
            recorded.moved.push((before, row.state));
            if let Some(b) = before {
                let key = (row.process.as_str(), row.version, b.name());
                let n = counts.get(key).map_err(io)?.map_or(0, |v| v.value());
                counts.insert(key, n.saturating_sub(1)).map_err(io)?;
            }
            let key = (row.process.as_str(), row.version, row.state.name());
            let n = counts.get(key).map_err(io)?.map_or(0, |v| v.value());
            counts.insert(key, n + 1).map_err(io)?;
        }
        if matches!(
            row.state,
            InstanceState::Completed | InstanceState::Cancelled
        ) {
            // An ended instance's open incidents went with it.
            let stale: Vec<u64> = incidents
                .iter()
                .map_err(io)?
                .filter_map(|e| {
                    let (k, v) = e.ok()?;
                    let r: IncidentRow = serde_json::from_slice(v.value()).ok()?;
                    (r.instance == row.key).then_some(k.value())
                })
                .collect();
            for k in stale {
                incidents.remove(k).map_err(io)?;
                recorded.incidents -= 1;
            }
        }
        instances
            .insert(row.key, json(row)?.as_slice())
            .map_err(io)?;
    }
    meta.insert("history_seq", seq).map_err(io)?;
    recorded.ended = ended;
    Ok(recorded)
}

/// What a batch changed that others follow: ended elements (for spans), instances that
/// changed state and the change in open incidents (for metrics).
#[derive(Debug, Default)]
pub struct Recorded {
    pub ended: Vec<Ended>,
    pub moved: Vec<(Option<InstanceState>, InstanceState)>,
    pub incidents: i64,
}

/// Which instances to list.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub process: Option<String>,
    pub version: Option<u32>,
    pub state: Option<InstanceState>,
    pub business_key: Option<String>,
    /// Only keys after this one (paging).
    pub after: Option<u64>,
    pub limit: usize,
}

/// Instances matching `filter` in key order, and the key to continue after, if more match.
pub fn list(
    txn: &ReadTransaction,
    filter: &Filter,
) -> Result<(Vec<InstanceRow>, Option<u64>), Error> {
    let table = txn.open_table(INSTANCES).map_err(io)?;
    let start = filter.after.map_or(0, |a| a.saturating_add(1));
    let mut out = Vec::new();
    for entry in table.range(start..).map_err(io)? {
        let (_, v) = entry.map_err(io)?;
        let row: InstanceRow = from_json(v.value())?;
        if filter.process.as_ref().is_some_and(|p| *p != row.process)
            || filter.version.is_some_and(|v| v != row.version)
            || filter.state.is_some_and(|s| s != row.state)
            || filter
                .business_key
                .as_ref()
                .is_some_and(|b| Some(b) != row.business_key.as_ref())
        {
            continue;
        }
        if out.len() == filter.limit {
            let next = out.last().map(|r: &InstanceRow| r.key);
            return Ok((out, next));
        }
        out.push(row);
    }
    Ok((out, None))
}

pub fn instance(txn: &ReadTransaction, key: u64) -> Result<Option<InstanceRow>, Error> {
    let table = txn.open_table(INSTANCES).map_err(io)?;
    match table.get(key).map_err(io)? {
        Some(v) => Ok(Some(from_json(v.value())?)),
        None => Ok(None),
    }
}

pub fn history(txn: &ReadTransaction, key: u64) -> Result<Vec<HistoryRow>, Error> {
    let table = txn.open_table(HISTORY).map_err(io)?;
    let mut out = Vec::new();
    for entry in table.range((key, 0)..=(key, u64::MAX)).map_err(io)? {
        let (_, v) = entry.map_err(io)?;
        out.push(from_json(v.value())?);
    }
    Ok(out)
}

/// The elements of an instance running now (not the process itself).
/// The active element instances of a process instance, with their keys.
pub fn active(txn: &ReadTransaction, key: u64) -> Result<Vec<(u64, ActiveRow)>, Error> {
    let table = txn.open_table(ACTIVE).map_err(io)?;
    let mut out = Vec::new();
    for entry in table.range((key, 0)..=(key, u64::MAX)).map_err(io)? {
        let (k, v) = entry.map_err(io)?;
        let element_key = k.value().1;
        if element_key != key {
            out.push((element_key, from_json(v.value())?));
        }
    }
    Ok(out)
}

/// Open incidents, of one instance or all.
pub fn incidents(txn: &ReadTransaction, instance: Option<u64>) -> Result<Vec<IncidentRow>, Error> {
    let table = txn.open_table(INCIDENTS).map_err(io)?;
    let mut out = Vec::new();
    for entry in table.iter().map_err(io)? {
        let (_, v) = entry.map_err(io)?;
        let row: IncidentRow = from_json(v.value())?;
        if instance.is_none_or(|i| i == row.instance) {
            out.push(row);
        }
    }
    Ok(out)
}

pub fn incident(txn: &ReadTransaction, key: u64) -> Result<Option<IncidentRow>, Error> {
    let table = txn.open_table(INCIDENTS).map_err(io)?;
    match table.get(key).map_err(io)? {
        Some(v) => Ok(Some(from_json(v.value())?)),
        None => Ok(None),
    }
}

/// An element of a deployed version: (process, version, element id).
pub type ElementKey = (String, u32, String);

/// Per-element statistics.
pub fn stats(txn: &ReadTransaction) -> Result<Vec<(ElementKey, ElementStats)>, Error> {
    let table = txn.open_table(STATS).map_err(io)?;
    let mut out = Vec::new();
    for entry in table.iter().map_err(io)? {
        let (k, v) = entry.map_err(io)?;
        let (p, ver, el) = k.value();
        out.push(((p.to_owned(), ver, el.to_owned()), from_json(v.value())?));
    }
    Ok(out)
}

/// Instance counts by (process, version, state name).
pub fn counts(txn: &ReadTransaction) -> Result<BTreeMap<(String, u32, String), u64>, Error> {
    let table = txn.open_table(COUNTS).map_err(io)?;
    let mut out = BTreeMap::new();
    for entry in table.iter().map_err(io)? {
        let (k, v) = entry.map_err(io)?;
        let (p, ver, state) = k.value();
        out.insert((p.to_owned(), ver, state.to_owned()), v.value());
    }
    Ok(out)
}

/// How often each sequence flow was taken, by (process, version, flow id).
pub fn flows(txn: &ReadTransaction) -> Result<BTreeMap<ElementKey, u64>, Error> {
    let table = txn.open_table(FLOWS).map_err(io)?;
    let mut out = BTreeMap::new();
    for entry in table.iter().map_err(io)? {
        let (k, v) = entry.map_err(io)?;
        let (p, ver, flow) = k.value();
        out.insert((p.to_owned(), ver, flow.to_owned()), v.value());
    }
    Ok(out)
}

/// Where a running element belongs: its instance's trace and business key, its own span.
#[derive(Clone, Debug, Default)]
pub struct Place {
    pub trace_id: String,
    pub span_id: String,
    pub business_key: Option<String>,
}

impl Place {
    pub fn traceparent(&self) -> String {
        format!("00-{}-{}-01", self.trace_id, self.span_id)
    }
}

/// The trace of an instance and the span of one of its running elements.
pub fn place(
    txn: &ReadTransaction,
    instance: u64,
    element_instance: u64,
) -> Result<Option<Place>, Error> {
    let Some(row) = self::instance(txn, instance)? else {
        return Ok(None);
    };
    let table = txn.open_table(ACTIVE).map_err(io)?;
    let span = match table.get((instance, element_instance)).map_err(io)? {
        Some(v) => from_json::<ActiveRow>(v.value())?.span_id,
        None => row.span_id.clone(),
    };
    Ok(Some(Place {
        trace_id: row.trace_id,
        span_id: span,
        business_key: row.business_key,
    }))
}

/// The process-level variables of an instance (also after it ended).
pub fn variables(
    txn: &ReadTransaction,
    key: u64,
) -> Result<serde_json::Map<String, serde_json::Value>, Error> {
    let table = txn.open_table(VARIABLES).map_err(io)?;
    match table.get(key).map_err(io)? {
        Some(v) => from_json(v.value()),
        None => Ok(serde_json::Map::new()),
    }
}
