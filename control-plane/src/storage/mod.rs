//! The Raft log and the state machine in one redb file.
//!
//! One file, separate tables (the log, its metadata, the state machine's snapshot), one writer
//! thread ([`writer`]): one queue and one fsync for all of them, so a burst of appends and the
//! committed index become durable in one transaction, and a snapshot can never be durable
//! without the log entries before it. The state machine itself lives in memory; on disk it is
//! its snapshot plus the log after it, which Raft re-applies on start.

mod log;
mod machine;
mod writer;

use std::path::Path;
use std::sync::Arc;

use redb::{Database, ReadableTable, ReadableTableMetadata, TableDefinition};

use crate::codec;

pub use log::LogStore;
pub use machine::{Machine, SharedMachine, SnapshotBuilder, StateMachine};

const LOG: TableDefinition<'static, u64, &'static [u8]> = TableDefinition::new("raft_log");
const LOG_META: TableDefinition<'static, &'static str, &'static [u8]> =
    TableDefinition::new("raft_meta");
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
        let log = txn.open_table(LOG).map_err(io)?;
        let mut meta = txn.open_table(LOG_META).map_err(io)?;
        txn.open_table(SM_SNAPSHOT).map_err(io)?;
        let format = meta.get("format").map_err(io)?.map(|v| v.value().to_vec());
        match format {
            Some(bytes) => {
                let found = <[u8; 4]>::try_from(bytes.as_slice())
                    .ok()
                    .map(u32::from_le_bytes);
                if found != Some(codec::FORMAT) {
                    let found = found.map_or_else(|| "unknown".to_owned(), |f| f.to_string());
                    return Err(Error::Corrupt(format!(
                        "{} holds control-plane data in format {found}, this flowmesh reads format {}; use the flowmesh version that wrote it, or start this node with an empty --data-dir and let it catch up from the cluster",
                        path.display(),
                        codec::FORMAT
                    )));
                }
            }
            None if !log.is_empty().map_err(io)? || !meta.is_empty().map_err(io)? => {
                return Err(Error::Corrupt(format!(
                    "{} was written by an earlier flowmesh in a format this one cannot read; start this node with an empty --data-dir and let it catch up from the cluster",
                    path.display()
                )));
            }
            None => {
                meta.insert("format", codec::FORMAT.to_le_bytes().as_slice())
                    .map_err(io)?;
            }
        }
    }
    txn.commit().map_err(io)?;
    let db = Arc::new(db);
    let tail = writer::Tail::default();
    let writer = writer::Writer::start(db.clone(), tail.clone())?;
    let machine = StateMachine::load(db.clone(), writer.clone())?;
    Ok((LogStore::new(db, tail, writer), machine))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn write_meta(dir: &Path, key: &str, value: &[u8]) {
        let db = Database::create(dir.join("control-plane.redb")).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(LOG_META)
            .unwrap()
            .insert(key, value)
            .unwrap();
        txn.commit().unwrap();
    }

    #[test]
    fn a_file_in_another_format_is_refused_with_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        write_meta(dir.path(), "format", &99u32.to_le_bytes());
        let Err(e) = open(dir.path()) else {
            panic!("format 99 was accepted")
        };
        let message = e.to_string();
        assert!(message.contains("format 99"), "{message}");
        assert!(message.contains("empty --data-dir"), "{message}");

        let old = tempfile::tempdir().unwrap();
        write_meta(old.path(), "vote", b"{}");
        let Err(e) = open(old.path()) else {
            panic!("a file without a format was accepted")
        };
        assert!(e.to_string().contains("earlier flowmesh"), "{e}");
    }
}
