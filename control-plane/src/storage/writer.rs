//! The one thread that writes the redb file: every change of the log and the state machine is
//! queued here and committed in order, as many as are waiting in one transaction (group
//! commit), so that one fsync makes a whole burst of appends durable and the Raft core never
//! waits for the disk.
//!
//! Two kinds of work: urgent (log appends, votes, truncation, snapshots: someone waits for them
//! to be durable) and lazy (the committed index: losing it only means re-applying a little
//! more). Lazy work rides along with the next urgent commit, or is committed on its own once the
//! queue has been quiet for [`LAZY_DELAY`].

use std::ops::Bound;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::storage::LogFlushed;
use redb::{Database, Durability, WriteTransaction};
use tokio::sync::oneshot;

use super::{Error, LOG, LOG_META, SM_SNAPSHOT, io};
use crate::types::{LogId, TypeConfig};

/// How long lazy work may wait for an urgent commit to ride along with.
const LAZY_DELAY: Duration = Duration::from_millis(50);

/// One change to the file.
#[derive(Debug)]
pub(super) enum Op {
    LogInsert(u64, Vec<u8>),
    LogRemove(Bound<u64>, Bound<u64>),
    LogMeta(&'static str, Vec<u8>),
    Snapshot { meta: Vec<u8>, data: Vec<u8> },
}

/// Who learns that a job is durable.
pub(super) enum Done {
    /// Nobody: lazy work.
    Lazy,
    /// Raft, through the log-flush callback; the entries leave the unflushed tail.
    Flushed(LogFlushed<TypeConfig>, Vec<LogId>),
    /// A caller waiting on the other end.
    Notify(oneshot::Sender<Result<(), String>>),
}

struct Job {
    ops: Vec<Op>,
    done: Done,
}

/// Log entries appended but not yet durable, readable at once (openraft replicates an entry as
/// soon as `append` returns, while the leader's own fsync is still under way).
pub(super) type Tail = Arc<Mutex<std::collections::BTreeMap<u64, crate::types::Entry>>>;

/// A cheap handle to the writer thread; the thread ends when the last handle is dropped.
#[derive(Clone)]
pub(super) struct Writer {
    tx: Sender<Job>,
}

impl Writer {
    pub(super) fn start(db: Arc<Database>, tail: Tail) -> Result<Writer, Error> {
        let (tx, rx) = channel();
        std::thread::Builder::new()
            .name("control-plane-writer".to_owned())
            .spawn(move || run(&db, &tail, &rx))
            .map_err(|e| Error::Io(format!("cannot start the storage writer: {e}")))?;
        Ok(Writer { tx })
    }

    fn send(&self, ops: Vec<Op>, done: Done) -> Result<(), Error> {
        self.tx
            .send(Job { ops, done })
            .map_err(|_| Error::Io("the storage writer has stopped".to_owned()))
    }

    /// Queues lazy work.
    pub(super) fn lazy(&self, ops: Vec<Op>) -> Result<(), Error> {
        self.send(ops, Done::Lazy)
    }

    /// Queues log entries; `callback` fires once they are durable.
    pub(super) fn append(
        &self,
        ops: Vec<Op>,
        ids: Vec<LogId>,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), Error> {
        self.send(ops, Done::Flushed(callback, ids))
    }

    /// Queues `ops` and waits until they (and everything queued before them) are durable.
    pub(super) async fn durable(&self, ops: Vec<Op>) -> Result<(), Error> {
        let (tx, rx) = oneshot::channel();
        self.send(ops, Done::Notify(tx))?;
        rx.await
            .map_err(|_| Error::Io("the storage writer has stopped".to_owned()))?
            .map_err(Error::Io)
    }
}

fn run(db: &Database, tail: &Tail, rx: &Receiver<Job>) {
    let mut batch: Vec<Job> = Vec::new();
    loop {
        let lazy_only = batch.iter().all(|j| matches!(j.done, Done::Lazy));
        let next = if batch.is_empty() {
            rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
        } else if lazy_only {
            rx.recv_timeout(LAZY_DELAY)
        } else {
            Err(RecvTimeoutError::Timeout)
        };
        match next {
            Ok(job) => {
                batch.push(job);
                // Take whatever else is queued by now into the same transaction.
                while let Ok(job) = rx.try_recv() {
                    batch.push(job);
                }
                if batch.iter().all(|j| matches!(j.done, Done::Lazy)) {
                    continue;
                }
                commit(db, tail, std::mem::take(&mut batch));
            }
            Err(RecvTimeoutError::Timeout) => commit(db, tail, std::mem::take(&mut batch)),
            Err(RecvTimeoutError::Disconnected) => {
                if !batch.is_empty() {
                    commit(db, tail, std::mem::take(&mut batch));
                }
                return;
            }
        }
    }
}

fn commit(db: &Database, tail: &Tail, batch: Vec<Job>) {
    let result = write(db, &batch).map_err(|e| e.to_string());
    for job in batch {
        match job.done {
            Done::Lazy => {}
            Done::Flushed(callback, ids) => {
                if result.is_ok()
                    && let Ok(mut tail) = tail.lock()
                {
                    for id in &ids {
                        // A truncation may have replaced the entry since; keep the newer one.
                        if tail.get(&id.index).is_some_and(|e| e.log_id == *id) {
                            tail.remove(&id.index);
                        }
                    }
                }
                callback.log_io_completed(result.clone().map_err(std::io::Error::other));
            }
            Done::Notify(tx) => {
                let _ = tx.send(result.clone());
            }
        }
    }
}

fn write(db: &Database, batch: &[Job]) -> Result<(), Error> {
    let mut txn = db.begin_write().map_err(io)?;
    txn.set_durability(Durability::Immediate).map_err(io)?;
    for op in batch.iter().flat_map(|j| &j.ops) {
        apply(&txn, op)?;
    }
    txn.commit().map_err(io)
}

fn apply(txn: &WriteTransaction, op: &Op) -> Result<(), Error> {
    match op {
        Op::LogInsert(index, bytes) => {
            txn.open_table(LOG)
                .map_err(io)?
                .insert(*index, bytes.as_slice())
                .map_err(io)?;
        }
        Op::LogRemove(from, to) => {
            txn.open_table(LOG)
                .map_err(io)?
                .retain_in((*from, *to), |_, _| false)
                .map_err(io)?;
        }
        Op::LogMeta(key, bytes) => {
            txn.open_table(LOG_META)
                .map_err(io)?
                .insert(*key, bytes.as_slice())
                .map_err(io)?;
        }
        Op::Snapshot { meta, data } => {
            let mut table = txn.open_table(SM_SNAPSHOT).map_err(io)?;
            table.insert("meta", meta.as_slice()).map_err(io)?;
            table.insert("data", data.as_slice()).map_err(io)?;
        }
    }
    Ok(())
}
