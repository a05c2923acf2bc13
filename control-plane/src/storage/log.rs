//! The Raft log on redb: entries by index, the vote, the committed and last purged ids.

use std::fmt::Debug;
use std::ops::RangeBounds;
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{OptionalSend, RaftLogReader, Vote};
use redb::{Database, Durability, ReadableDatabase, ReadableTable};

use super::{Error, LOG, LOG_META, blocking, corrupt, io};
use crate::types::{Entry, LogId, NodeId, StorageError, StorageIOError, TypeConfig};

/// The log store; clones share the database (one is the log reader Raft asks for).
#[derive(Clone)]
pub struct LogStore {
    db: Arc<Database>,
}

impl LogStore {
    pub(super) fn new(db: Arc<Database>) -> LogStore {
        LogStore { db }
    }

    fn meta<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        let txn = self.db.begin_read().map_err(io)?;
        let table = txn.open_table(LOG_META).map_err(io)?;
        match table.get(key).map_err(io)? {
            Some(v) => serde_json::from_slice(v.value()).map(Some).map_err(corrupt),
            None => Ok(None),
        }
    }

    fn write_meta<T: serde::Serialize>(
        &self,
        key: &str,
        value: &T,
        durability: Durability,
    ) -> Result<(), Error> {
        let bytes = serde_json::to_vec(value).map_err(corrupt)?;
        let mut txn = self.db.begin_write().map_err(io)?;
        txn.set_durability(durability).map_err(io)?;
        txn.open_table(LOG_META)
            .map_err(io)?
            .insert(key, bytes.as_slice())
            .map_err(io)?;
        txn.commit().map_err(io)
    }

    fn last_entry_id(&self) -> Result<Option<LogId>, Error> {
        let txn = self.db.begin_read().map_err(io)?;
        let table = txn.open_table(LOG).map_err(io)?;
        match table.last().map_err(io)? {
            Some((_, v)) => {
                let entry: Entry = serde_json::from_slice(v.value()).map_err(corrupt)?;
                Ok(Some(entry.log_id))
            }
            None => Ok(None),
        }
    }

    fn entries(&self, range: impl RangeBounds<u64>) -> Result<Vec<Entry>, Error> {
        let txn = self.db.begin_read().map_err(io)?;
        let table = txn.open_table(LOG).map_err(io)?;
        let mut out = Vec::new();
        for item in table.range(range).map_err(io)? {
            let (_, v) = item.map_err(io)?;
            out.push(serde_json::from_slice(v.value()).map_err(corrupt)?);
        }
        Ok(out)
    }

    fn remove(&self, range: impl RangeBounds<u64>, purged: Option<LogId>) -> Result<(), Error> {
        let txn = self.db.begin_write().map_err(io)?;
        {
            let mut table = txn.open_table(LOG).map_err(io)?;
            table.retain_in(range, |_, _| false).map_err(io)?;
            if let Some(id) = purged {
                let bytes = serde_json::to_vec(&id).map_err(corrupt)?;
                txn.open_table(LOG_META)
                    .map_err(io)?
                    .insert("last_purged", bytes.as_slice())
                    .map_err(io)?;
            }
        }
        txn.commit().map_err(io)
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
        blocking(|| self.write_meta("vote", vote, Durability::Immediate))
            .map_err(|e| -> StorageError { StorageIOError::write_vote(&e).into() })
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError> {
        blocking(|| self.meta("vote"))
            .map_err(|e| -> StorageError { StorageIOError::read_vote(&e).into() })
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        // Made durable by the next append; losing it only means re-applying a little more.
        blocking(|| self.write_meta("committed", &committed, Durability::None)).map_err(write_err)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
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
        let result = blocking(|| -> Result<(), Error> {
            let mut txn = self.db.begin_write().map_err(io)?;
            txn.set_durability(Durability::Immediate).map_err(io)?;
            {
                let mut table = txn.open_table(LOG).map_err(io)?;
                for entry in entries {
                    let bytes = serde_json::to_vec(&entry).map_err(corrupt)?;
                    table
                        .insert(entry.log_id.index, bytes.as_slice())
                        .map_err(io)?;
                }
            }
            txn.commit().map_err(io)
        });
        match result {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(write_err(e))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        blocking(|| self.remove(log_id.index.., None)).map_err(write_err)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        blocking(|| self.remove(..=log_id.index, Some(log_id))).map_err(write_err)
    }
}
