//! The Raft log and the state machine in one redb file.
//!
//! One file, separate tables: the log and the state machine share redb's write lock and page
//! cache, and a state-machine snapshot commit also makes the applies before it durable. Log
//! appends, votes and snapshots commit with fsync (an acknowledged entry must survive);
//! state-machine applies commit without (after a crash, Raft re-applies the committed entries
//! from the log, which is only purged up to the last durable snapshot).

mod log;
mod machine;

use std::path::Path;
use std::sync::Arc;

use redb::{Database, TableDefinition};

pub use log::LogStore;
pub use machine::{Machine, SharedMachine, SnapshotBuilder, StateMachine};

const LOG: TableDefinition<'static, u64, &'static [u8]> = TableDefinition::new("raft_log");
const LOG_META: TableDefinition<'static, &'static str, &'static [u8]> =
    TableDefinition::new("raft_meta");
const SM_META: TableDefinition<'static, &'static str, &'static [u8]> =
    TableDefinition::new("sm_meta");
const SM_MODELS: TableDefinition<'static, (&'static str, u32), &'static [u8]> =
    TableDefinition::new("sm_models");
const SM_ROLLOUTS: TableDefinition<'static, &'static str, &'static [u8]> =
    TableDefinition::new("sm_rollouts");
const SM_INSTANCES: TableDefinition<'static, (&'static str, &'static str), &'static [u8]> =
    TableDefinition::new("sm_instances");
const SM_SNAPSHOT: TableDefinition<'static, &'static str, &'static [u8]> =
    TableDefinition::new("sm_snapshot");

/// A storage failure; Raft treats it as fatal for the node.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("control-plane storage I/O failed: {0}")]
    Io(String),
    #[error("control-plane storage holds data it cannot read: {0}")]
    Corrupt(String),
}

fn io(e: impl std::fmt::Display) -> Error {
    Error::Io(e.to_string())
}

fn corrupt(e: impl std::fmt::Display) -> Error {
    Error::Corrupt(e.to_string())
}

/// Opens (or creates) `control-plane.redb` in `dir` and returns the log store and the state
/// machine (with the state loaded).
pub fn open(dir: &Path) -> Result<(LogStore, StateMachine), Error> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::Io(format!("cannot create {}: {e}", dir.display())))?;
    let path = dir.join("control-plane.redb");
    let db = Database::create(&path)
        .map_err(|e| Error::Io(format!("cannot open {}: {e}", path.display())))?;
    let txn = db.begin_write().map_err(io)?;
    {
        txn.open_table(LOG).map_err(io)?;
        txn.open_table(LOG_META).map_err(io)?;
        txn.open_table(SM_META).map_err(io)?;
        txn.open_table(SM_MODELS).map_err(io)?;
        txn.open_table(SM_ROLLOUTS).map_err(io)?;
        txn.open_table(SM_INSTANCES).map_err(io)?;
        txn.open_table(SM_SNAPSHOT).map_err(io)?;
    }
    txn.commit().map_err(io)?;
    let db = Arc::new(db);
    let machine = StateMachine::load(db.clone())?;
    Ok((LogStore::new(db), machine))
}

/// Runs blocking storage work (redb waits for its write lock and for fsync) without stalling
/// the async worker it is called on.
fn blocking<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}
