//! The state machine on redb: applies entries to [`ControlState`] (kept in memory for reads, a
//! row per model, rollout and registration on disk), builds and installs snapshots.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::sync::Arc;

use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, RaftSnapshotBuilder};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};
use tokio::sync::{RwLock, watch};

use super::{
    Error, SM_INSTANCES, SM_META, SM_MODELS, SM_ROLLOUTS, SM_SNAPSHOT, blocking, corrupt, io,
};
use crate::state::{ControlState, InstanceRecord, ModelRecord, Row};
use crate::types::{
    Entry, LogId, Response, Snapshot, SnapshotMeta, StorageError, StorageIOError, StoredMembership,
    TypeConfig,
};

/// The applied state and where in the log it stands.
#[derive(Debug, Default)]
pub struct Machine {
    pub state: ControlState,
    pub applied: Option<LogId>,
    pub membership: StoredMembership,
}

/// The machine, shared by the state machine (writes) and the API (reads).
pub type SharedMachine = Arc<RwLock<Machine>>;

/// The snapshot's bytes: the whole state, as JSON.
#[derive(Serialize, Deserialize)]
struct SnapshotData {
    revision: u64,
    models: Vec<ModelRecord>,
    rollouts: Vec<(String, BTreeMap<u32, u32>)>,
    instances: Vec<(String, String, InstanceRecord)>,
}

impl SnapshotData {
    fn of(state: &ControlState) -> SnapshotData {
        SnapshotData {
            revision: state.revision,
            models: state.models.values().cloned().collect(),
            rollouts: state
                .rollouts
                .iter()
                .map(|(p, w)| (p.clone(), w.clone()))
                .collect(),
            instances: state
                .services
                .iter()
                .flat_map(|(s, i)| {
                    i.iter()
                        .map(move |(id, r)| (s.clone(), id.clone(), r.clone()))
                })
                .collect(),
        }
    }

    fn into_state(self) -> ControlState {
        let mut state = ControlState {
            revision: self.revision,
            ..ControlState::default()
        };
        for m in self.models {
            state.models.insert((m.process.clone(), m.version), m);
        }
        state.rollouts.extend(self.rollouts);
        for (service, id, record) in self.instances {
            state
                .services
                .entry(service)
                .or_default()
                .insert(id, record);
        }
        state
    }
}

pub struct StateMachine {
    db: Arc<Database>,
    shared: SharedMachine,
    revision: watch::Sender<u64>,
}

impl StateMachine {
    pub(super) fn load(db: Arc<Database>) -> Result<StateMachine, Error> {
        let machine = read_machine(&db)?;
        let (revision, _) = watch::channel(machine.state.revision);
        Ok(StateMachine {
            db,
            shared: Arc::new(RwLock::new(machine)),
            revision,
        })
    }

    /// The machine, for reads.
    pub fn shared(&self) -> SharedMachine {
        self.shared.clone()
    }

    /// Notified with the revision after each applied batch.
    pub fn revisions(&self) -> watch::Receiver<u64> {
        self.revision.subscribe()
    }
}

fn json<T: Serialize>(v: &T) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(v).map_err(corrupt)
}

fn read_machine(db: &Database) -> Result<Machine, Error> {
    let txn = db.begin_read().map_err(io)?;
    let meta = txn.open_table(SM_META).map_err(io)?;
    let get = |key: &str| -> Result<Option<Vec<u8>>, Error> {
        Ok(meta.get(key).map_err(io)?.map(|v| v.value().to_vec()))
    };
    let mut machine = Machine::default();
    if let Some(b) = get("applied")? {
        machine.applied = serde_json::from_slice(&b).map_err(corrupt)?;
    }
    if let Some(b) = get("membership")? {
        machine.membership = serde_json::from_slice(&b).map_err(corrupt)?;
    }
    if let Some(b) = get("revision")? {
        machine.state.revision = serde_json::from_slice(&b).map_err(corrupt)?;
    }
    for item in txn.open_table(SM_MODELS).map_err(io)?.iter().map_err(io)? {
        let (_, v) = item.map_err(io)?;
        let m: ModelRecord = serde_json::from_slice(v.value()).map_err(corrupt)?;
        machine
            .state
            .models
            .insert((m.process.clone(), m.version), m);
    }
    for item in txn
        .open_table(SM_ROLLOUTS)
        .map_err(io)?
        .iter()
        .map_err(io)?
    {
        let (k, v) = item.map_err(io)?;
        machine.state.rollouts.insert(
            k.value().to_owned(),
            serde_json::from_slice(v.value()).map_err(corrupt)?,
        );
    }
    for item in txn
        .open_table(SM_INSTANCES)
        .map_err(io)?
        .iter()
        .map_err(io)?
    {
        let (k, v) = item.map_err(io)?;
        let (service, id) = k.value();
        let record: InstanceRecord = serde_json::from_slice(v.value()).map_err(corrupt)?;
        machine
            .state
            .services
            .entry(service.to_owned())
            .or_default()
            .insert(id.to_owned(), record);
    }
    Ok(machine)
}

/// Writes the rows a batch changed, and where the machine stands.
fn persist(txn: &WriteTransaction, machine: &Machine, rows: &[Row]) -> Result<(), Error> {
    let state = &machine.state;
    let mut models = txn.open_table(SM_MODELS).map_err(io)?;
    let mut rollouts = txn.open_table(SM_ROLLOUTS).map_err(io)?;
    let mut instances = txn.open_table(SM_INSTANCES).map_err(io)?;
    for row in rows {
        match row {
            Row::Model(p, v) => match state.models.get(&(p.clone(), *v)) {
                Some(m) => {
                    models
                        .insert((p.as_str(), *v), json(m)?.as_slice())
                        .map_err(io)?;
                }
                None => {
                    models.remove((p.as_str(), *v)).map_err(io)?;
                }
            },
            Row::Rollout(p) => match state.rollouts.get(p) {
                Some(w) => {
                    rollouts
                        .insert(p.as_str(), json(w)?.as_slice())
                        .map_err(io)?;
                }
                None => {
                    rollouts.remove(p.as_str()).map_err(io)?;
                }
            },
            Row::Instance(s, i) => match state.services.get(s).and_then(|x| x.get(i)) {
                Some(r) => {
                    instances
                        .insert((s.as_str(), i.as_str()), json(r)?.as_slice())
                        .map_err(io)?;
                }
                None => {
                    instances.remove((s.as_str(), i.as_str())).map_err(io)?;
                }
            },
        }
    }
    let mut meta = txn.open_table(SM_META).map_err(io)?;
    meta.insert("applied", json(&machine.applied)?.as_slice())
        .map_err(io)?;
    meta.insert("membership", json(&machine.membership)?.as_slice())
        .map_err(io)?;
    meta.insert("revision", json(&state.revision)?.as_slice())
        .map_err(io)?;
    Ok(())
}

/// Replaces every state-machine table with `machine` (installing a snapshot).
fn replace_all(txn: &WriteTransaction, machine: &Machine) -> Result<(), Error> {
    txn.open_table(SM_MODELS)
        .map_err(io)?
        .retain(|_, _| false)
        .map_err(io)?;
    txn.open_table(SM_ROLLOUTS)
        .map_err(io)?
        .retain(|_, _| false)
        .map_err(io)?;
    txn.open_table(SM_INSTANCES)
        .map_err(io)?
        .retain(|_, _| false)
        .map_err(io)?;
    let state = &machine.state;
    let mut rows: Vec<Row> = state
        .models
        .keys()
        .map(|(p, v)| Row::Model(p.clone(), *v))
        .collect();
    rows.extend(state.rollouts.keys().map(|p| Row::Rollout(p.clone())));
    rows.extend(
        state
            .services
            .iter()
            .flat_map(|(s, i)| i.keys().map(move |id| Row::Instance(s.clone(), id.clone()))),
    );
    persist(txn, machine, &rows)
}

fn store_snapshot(
    db: &Database,
    meta: &SnapshotMeta,
    data: &[u8],
    machine: Option<&Machine>,
) -> Result<(), Error> {
    let mut txn = db.begin_write().map_err(io)?;
    txn.set_durability(Durability::Immediate).map_err(io)?;
    if let Some(m) = machine {
        replace_all(&txn, m)?;
    }
    {
        let mut table = txn.open_table(SM_SNAPSHOT).map_err(io)?;
        table.insert("meta", json(meta)?.as_slice()).map_err(io)?;
        table.insert("data", data).map_err(io)?;
    }
    txn.commit().map_err(io)
}

fn sm_write(e: Error) -> StorageError {
    StorageIOError::write_state_machine(&e).into()
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let m = self.shared.read().await;
        Ok((m.applied, m.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError>
    where
        I: IntoIterator<Item = Entry> + openraft::OptionalSend,
        I::IntoIter: openraft::OptionalSend,
    {
        let mut machine = self.shared.write().await;
        let mut responses = Vec::new();
        let mut rows = Vec::new();
        for entry in entries {
            machine.applied = Some(entry.log_id);
            match entry.payload {
                EntryPayload::Blank => responses.push(Response {
                    results: Vec::new(),
                    revision: machine.state.revision,
                }),
                EntryPayload::Normal(request) => {
                    let mut results = Vec::with_capacity(request.commands.len());
                    for command in &request.commands {
                        let (result, changed) = machine.state.apply(command);
                        results.push(result);
                        rows.extend(changed);
                    }
                    responses.push(Response {
                        results,
                        revision: machine.state.revision,
                    });
                }
                EntryPayload::Membership(m) => {
                    machine.membership = StoredMembership::new(Some(entry.log_id), m);
                    responses.push(Response {
                        results: Vec::new(),
                        revision: machine.state.revision,
                    });
                }
            }
        }
        blocking(|| -> Result<(), Error> {
            let mut txn = self.db.begin_write().map_err(io)?;
            // Not fsynced: the committed entries are in the log and are applied again after a
            // crash; snapshots (which the log is purged up to) are committed with fsync.
            txn.set_durability(Durability::None).map_err(io)?;
            persist(&txn, &machine, &rows)?;
            txn.commit().map_err(io)
        })
        .map_err(sm_write)?;
        self.revision.send_replace(machine.state.revision);
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            db: self.db.clone(),
            shared: self.shared.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let bytes = snapshot.into_inner();
        let data: SnapshotData = serde_json::from_slice(&bytes).map_err(|e| -> StorageError {
            StorageIOError::read_snapshot(Some(meta.signature()), &e).into()
        })?;
        let mut machine = self.shared.write().await;
        // The change list starts empty: watchers behind the snapshot get a full state.
        let installed = Machine {
            state: data.into_state(),
            applied: meta.last_log_id,
            membership: meta.last_membership.clone(),
        };
        blocking(|| store_snapshot(&self.db, meta, &bytes, Some(&installed))).map_err(
            |e| -> StorageError {
                StorageIOError::write_snapshot(Some(meta.signature()), &e).into()
            },
        )?;
        *machine = installed;
        self.revision.send_replace(machine.state.revision);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        let db = self.db.clone();
        blocking(move || -> Result<Option<Snapshot>, Error> {
            let txn = db.begin_read().map_err(io)?;
            let table = txn.open_table(SM_SNAPSHOT).map_err(io)?;
            let (Some(meta), Some(data)) = (
                table.get("meta").map_err(io)?,
                table.get("data").map_err(io)?,
            ) else {
                return Ok(None);
            };
            let meta: SnapshotMeta = serde_json::from_slice(meta.value()).map_err(corrupt)?;
            Ok(Some(Snapshot {
                meta,
                snapshot: Box::new(Cursor::new(data.value().to_vec())),
            }))
        })
        .map_err(|e| -> StorageError { StorageIOError::read_snapshot(None, &e).into() })
    }
}

/// Builds a snapshot of the current state.
pub struct SnapshotBuilder {
    db: Arc<Database>,
    shared: SharedMachine,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        let (meta, bytes) = {
            let m = self.shared.read().await;
            let bytes = serde_json::to_vec(&SnapshotData::of(&m.state))
                .map_err(|e| -> StorageError { StorageIOError::write_snapshot(None, &e).into() })?;
            let id = match m.applied {
                Some(l) => format!("{}-{}-{}", l.leader_id.term, l.index, m.state.revision),
                None => format!("empty-{}", m.state.revision),
            };
            (
                SnapshotMeta {
                    last_log_id: m.applied,
                    last_membership: m.membership.clone(),
                    snapshot_id: id,
                },
                bytes,
            )
        };
        blocking(|| store_snapshot(&self.db, &meta, &bytes, None)).map_err(
            |e| -> StorageError {
                StorageIOError::write_snapshot(Some(meta.signature()), &e).into()
            },
        )?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        })
    }
}
