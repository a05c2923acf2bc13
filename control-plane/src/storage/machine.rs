//! The state machine: applies entries to [`ControlState`] in memory, builds and installs
//! snapshots. On disk it is its last snapshot (in redb) plus the log after it: a restarted node
//! loads the snapshot and Raft re-applies the committed entries since. Writing rows per apply
//! as well would write every change twice more (rows and their fsync) for no gain in safety.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::sync::Arc;

use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, RaftSnapshotBuilder};
use redb::{Database, ReadableDatabase};
use serde::{Deserialize, Serialize};
use tokio::sync::{RwLock, watch};

use super::writer::{Op, Writer};
use super::{Error, SM_SNAPSHOT, blocking, corrupt, io};
use crate::codec;
use crate::state::{ControlState, InstanceRecord, ModelRecord};
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
    writer: Writer,
    shared: SharedMachine,
    revision: watch::Sender<u64>,
}

impl StateMachine {
    pub(super) fn load(db: Arc<Database>, writer: Writer) -> Result<StateMachine, Error> {
        let machine = read_machine(&db)?;
        let (revision, _) = watch::channel(machine.state.revision);
        Ok(StateMachine {
            db,
            writer,
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

fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, Error> {
    codec::encode(v).map_err(corrupt)
}

/// The stored snapshot: its meta and its bytes.
fn stored_snapshot(db: &Database) -> Result<Option<(SnapshotMeta, Vec<u8>)>, Error> {
    let txn = db.begin_read().map_err(io)?;
    let table = txn.open_table(SM_SNAPSHOT).map_err(io)?;
    let (Some(meta), Some(data)) = (
        table.get("meta").map_err(io)?,
        table.get("data").map_err(io)?,
    ) else {
        return Ok(None);
    };
    let meta: SnapshotMeta = codec::decode(meta.value()).map_err(corrupt)?;
    Ok(Some((meta, data.value().to_vec())))
}

/// The state as of the stored snapshot (empty when there is none).
fn read_machine(db: &Database) -> Result<Machine, Error> {
    let Some((meta, bytes)) = stored_snapshot(db)? else {
        return Ok(Machine::default());
    };
    let data: SnapshotData = codec::decode(&bytes).map_err(corrupt)?;
    Ok(Machine {
        state: data.into_state(),
        applied: meta.last_log_id,
        membership: meta.last_membership,
    })
}

/// Makes `bytes` the stored snapshot, durably.
async fn store_snapshot(
    writer: &Writer,
    meta: &SnapshotMeta,
    bytes: Vec<u8>,
) -> Result<(), StorageError> {
    let failed = |e: &Error| -> StorageError {
        StorageIOError::write_snapshot(Some(meta.signature()), e).into()
    };
    let op = Op::Snapshot {
        meta: encode(meta).map_err(|e| failed(&e))?,
        data: bytes,
    };
    writer.durable(vec![op]).await.map_err(|e| failed(&e))
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
                        results.push(machine.state.apply(command));
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
        self.revision.send_replace(machine.state.revision);
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            writer: self.writer.clone(),
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
        let data: SnapshotData = codec::decode(&bytes).map_err(|e| -> StorageError {
            StorageIOError::read_snapshot(Some(meta.signature()), &e).into()
        })?;
        let mut machine = self.shared.write().await;
        // The change list starts empty: watchers behind the snapshot get a full state.
        let installed = Machine {
            state: data.into_state(),
            applied: meta.last_log_id,
            membership: meta.last_membership.clone(),
        };
        store_snapshot(&self.writer, meta, bytes).await?;
        *machine = installed;
        self.revision.send_replace(machine.state.revision);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        let db = self.db.clone();
        blocking(move || stored_snapshot(&db))
            .map(|stored| {
                stored.map(|(meta, bytes)| Snapshot {
                    meta,
                    snapshot: Box::new(Cursor::new(bytes)),
                })
            })
            .map_err(|e| -> StorageError { StorageIOError::read_snapshot(None, &e).into() })
    }
}

/// Builds a snapshot of the current state.
pub struct SnapshotBuilder {
    writer: Writer,
    shared: SharedMachine,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        // Copied under the lock, serialized after it: applies wait only for the copy.
        let (meta, data) = {
            let m = self.shared.read().await;
            let data = SnapshotData::of(&m.state);
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
                data,
            )
        };
        let bytes = codec::encode(&data)
            .map_err(|e| -> StorageError { StorageIOError::write_snapshot(None, &e).into() })?;
        store_snapshot(&self.writer, &meta, bytes.clone()).await?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        })
    }
}
