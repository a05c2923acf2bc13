//! The Raft log on redb: entries by index, the vote, the committed and last purged ids.
//! Appends return at once and become durable through the [`Writer`]; until then they are read
//! from the unflushed tail.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::{Arc, Mutex};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{OptionalSend, RaftLogReader, Vote};
use redb::{Database, ReadableDatabase, ReadableTable};

use super::writer::{Op, Tail, Writer};
use super::{Error, LOG, LOG_META, blocking, corrupt, io};
use crate::codec;
use crate::types::{Entry, LogId, NodeId, StorageError, StorageIOError, TypeConfig};

/// The log store; clones share the database, the tail and the writer (one is the log reader
/// Raft asks for).
#[derive(Clone)]
pub struct LogStore {
    db: Arc<Database>,
    tail: Tail,
    writer: Writer,
    /// The committed id as last saved (it reaches the file lazily).
    committed: Arc<Mutex<Option<Option<LogId>>>>,
}

impl LogStore {
    pub(super) fn new(db: Arc<Database>, tail: Tail, writer: Writer) -> LogStore {
        LogStore {
            db,
            tail,
            writer,
            committed: Arc::new(Mutex::new(None)),
        }
    }

    fn meta<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        let txn = self.db.begin_read().map_err(io)?;
        let table = txn.open_table(LOG_META).map_err(io)?;
        match table.get(key).map_err(io)? {
            Some(v) => codec::decode(v.value()).map(Some).map_err(corrupt),
            None => Ok(None),
        }
    }

    fn last_entry_id(&self) -> Result<Option<LogId>, Error> {
        if let Some(id) = self.tail_lock()?.values().next_back().map(|e| e.log_id) {
            return Ok(Some(id));
        }
        let txn = self.db.begin_read().map_err(io)?;
        let table = txn.open_table(LOG).map_err(io)?;
        match table.last().map_err(io)? {
            Some((_, v)) => {
                let entry: Entry = codec::decode(v.value()).map_err(corrupt)?;
                Ok(Some(entry.log_id))
            }
            None => Ok(None),
        }
    }

    fn tail_lock(
        &self,
    ) -> Result<std::sync::MutexGuard<'_, std::collections::BTreeMap<u64, Entry>>, Error> {
        self.tail
            .lock()
            .map_err(|_| Error::Io("the log tail lock is poisoned".to_owned()))
    }

    fn entries(&self, range: impl RangeBounds<u64> + Clone) -> Result<Vec<Entry>, Error> {
        // The tail first: an entry that leaves it after this point is in the file for the read
        // transaction below (it leaves only after its commit).
        let unflushed: Vec<Entry> = self
            .tail_lock()?
            .range(range.clone())
            .map(|(_, e)| e.clone())
            .collect();
        let first_unflushed = unflushed.first().map(|e| e.log_id.index);
        let txn = self.db.begin_read().map_err(io)?;
        let table = txn.open_table(LOG).map_err(io)?;
        let mut out = Vec::new();
        for item in table.range(range).map_err(io)? {
            let (k, v) = item.map_err(io)?;
            if first_unflushed.is_some_and(|f| k.value() >= f) {
                break;
            }
            out.push(codec::decode(v.value()).map_err(corrupt)?);
        }
        out.extend(unflushed);
        Ok(out)
    }

    /// Drops entries in `range` from the tail and, durably, from the file.
    async fn remove(
        &self,
        from: Bound<u64>,
        to: Bound<u64>,
        purged: Option<LogId>,
    ) -> Result<(), Error> {
        self.tail_lock()?.retain(|i, _| !(from, to).contains(i));
        let mut ops = vec![Op::LogRemove(from, to)];
        if let Some(id) = purged {
            ops.push(Op::LogMeta(
                "last_purged",
                codec::encode(&id).map_err(corrupt)?,
            ));
        }
        self.writer.durable(ops).await
    }
}

fn read_err(e: Error) -> StorageError {
    StorageIOError::read_logs(&e).into()
}

fn write_err(e: Error) -> StorageError {
    StorageIOError::write_logs(&e).into()
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        blocking(|| self.entries(range)).map_err(read_err)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        blocking(|| {
            let last_purged_log_id: Option<LogId> = self.meta("last_purged")?;
            let last_log_id = self.last_entry_id()?.or(last_purged_log_id);
            Ok(LogState {
                last_purged_log_id,
                last_log_id,
            })
        })
        .map_err(read_err)
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError> {
        let bytes = codec::encode(vote)
            .map_err(|e| -> StorageError { StorageIOError::write_vote(&e).into() })?;
        self.writer
            .durable(vec![Op::LogMeta("vote", bytes)])
            .await
            .map_err(|e| -> StorageError { StorageIOError::write_vote(&e).into() })
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError> {
        blocking(|| self.meta("vote"))
            .map_err(|e| -> StorageError { StorageIOError::read_vote(&e).into() })
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        // Lazy: losing it only means re-applying a little more of the log after a crash.
        let bytes = codec::encode(&committed)
            .map_err(|e| -> StorageError { StorageIOError::write_logs(&e).into() })?;
        if let Ok(mut c) = self.committed.lock() {
            *c = Some(committed);
        }
        self.writer
            .lazy(vec![Op::LogMeta("committed", bytes)])
            .map_err(write_err)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        if let Ok(c) = self.committed.lock()
            && let Some(saved) = *c
        {
            return Ok(saved);
        }
        blocking(|| self.meta::<Option<LogId>>("committed").map(Option::flatten)).map_err(read_err)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut ops = Vec::new();
        let mut ids = Vec::new();
        {
            let mut tail = self.tail_lock().map_err(write_err)?;
            for entry in entries {
                let bytes = codec::encode(&entry)
                    .map_err(|e| -> StorageError { StorageIOError::write_logs(&e).into() })?;
                ops.push(Op::LogInsert(entry.log_id.index, bytes));
                ids.push(entry.log_id);
                tail.insert(entry.log_id.index, entry);
            }
        }
        self.writer.append(ops, ids, callback).map_err(write_err)
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.remove(Bound::Included(log_id.index), Bound::Unbounded, None)
            .await
            .map_err(write_err)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.remove(
            Bound::Unbounded,
            Bound::Included(log_id.index),
            Some(log_id),
        )
        .await
        .map_err(write_err)
    }
}
