//! The engine thread: it owns the redb store and the engine, takes work from a bounded queue,
//! runs as much of it as is waiting (up to `max_batch`) as one transaction with one fsync
//! (group commit), answers each caller once the batch is durable, and only then hands the
//! batch's actions (jobs, publications) and ended elements on. Timers: it wakes up when the
//! next one is due, also for those that fell due while the sidecar was down.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::Duration;

use flowmesh_bpmn::engine::{Accepted, Action, Command, CommandResult, Engine};
use flowmesh_bpmn::store::Store;
use jiff::Timestamp;
use std::sync::Arc;
use tokio::sync::{Notify, mpsc, oneshot};

use super::Error;
use super::inbox::{self, DeadLetter, InboxEntry};
use super::index::{self, Ended, InstanceState, Origin};
use super::outbox::{self, Outgoing};
use super::received;
use crate::engine_store::RedbStore;

/// Commands that commit together, and who waits for their results.
pub struct Work {
    pub commands: Vec<Command>,
    /// For each command that creates an instance: where the instance came from.
    pub origins: Vec<Option<Origin>>,
    /// The runtime's own tables, written in the same transaction.
    pub writes: Writes,
    pub reply: Option<oneshot::Sender<Result<Vec<CommandResult>, Error>>>,
}

/// Changes to the runtime's own tables that commit with a batch.
#[derive(Default)]
pub struct Writes {
    /// Messages and events for other services' sidecars.
    pub outbox: Vec<Outgoing>,
    /// Outbox entries the receivers acknowledged.
    pub delivered: Vec<(String, u64)>,
    /// Events for this sidecar's app.
    pub inbox: Vec<InboxEntry>,
    /// Inbox entries delivered to the app or given up on.
    pub inbox_done: Vec<u64>,
    pub dead: Vec<DeadLetter>,
    /// Ids taken from peers, and until when to remember them.
    pub received: Vec<(String, i64)>,
}

impl Writes {
    pub fn is_empty(&self) -> bool {
        self.outbox.is_empty()
            && self.delivered.is_empty()
            && self.inbox.is_empty()
            && self.inbox_done.is_empty()
            && self.dead.is_empty()
            && self.received.is_empty()
    }

    fn take(&mut self, from: &mut Writes) {
        self.outbox.append(&mut from.outbox);
        self.delivered.append(&mut from.delivered);
        self.inbox.append(&mut from.inbox);
        self.inbox_done.append(&mut from.inbox_done);
        self.dead.append(&mut from.dead);
        self.received.append(&mut from.received);
    }

    fn apply(&self, txn: &redb::WriteTransaction, now: i64) -> Result<(), Error> {
        received::record(txn, &self.received, now)?;
        outbox::append(txn, &self.outbox)?;
        outbox::remove(txn, &self.delivered)?;
        inbox::append(txn, &self.inbox)?;
        inbox::done(txn, &self.inbox_done, &self.dead)
    }
}

impl Work {
    pub fn new(commands: Vec<Command>) -> Work {
        let origins = vec![None; commands.len()];
        Work {
            commands,
            origins,
            writes: Writes::default(),
            reply: None,
        }
    }
}

/// Where a committed batch's consequences go.
pub(crate) struct Outputs {
    pub(crate) actions: mpsc::UnboundedSender<Action>,
    pub(crate) ended: mpsc::UnboundedSender<Vec<Ended>>,
    /// Woken when the outbox got new entries.
    pub(crate) outbox: Arc<Notify>,
    /// Woken when the inbox got new events.
    pub(crate) inbox: Arc<Notify>,
}

/// The sending side of the engine's queue: cheap to clone.
#[derive(Clone)]
pub(crate) struct Queue {
    tx: SyncSender<Work>,
}

impl Queue {
    /// Queues work; refused (not blocked) when the queue is full or the engine stopped.
    pub(crate) fn push(&self, work: Work) -> Result<(), Error> {
        self.tx.try_send(work).map_err(|e| refusal(&e))
    }

    /// Queues work and waits until it is committed.
    pub(crate) async fn run(&self, work: Work) -> Result<Vec<CommandResult>, Error> {
        self.run_or_keep(work).await.map_err(|(e, _)| e)
    }

    /// As [`Queue::run`], but a full queue hands the work back, to be tried again.
    pub(crate) async fn run_or_keep(
        &self,
        mut work: Work,
    ) -> Result<Vec<CommandResult>, (Error, Option<Work>)> {
        let (tx, rx) = oneshot::channel();
        work.reply = Some(tx);
        if let Err(e) = self.tx.try_send(work) {
            let error = refusal(&e);
            let back = match e {
                TrySendError::Full(mut w) => {
                    w.reply = None;
                    Some(w)
                }
                TrySendError::Disconnected(_) => None,
            };
            return Err((error, back));
        }
        match rx.await {
            Ok(r) => r.map_err(|e| (e, None)),
            Err(_) => Err((Error::Stopped, None)),
        }
    }
}

fn refusal(e: &TrySendError<Work>) -> Error {
    match e {
        TrySendError::Full(_) => Error::Busy,
        TrySendError::Disconnected(_) => Error::Stopped,
    }
}

pub(crate) fn queue(capacity: usize) -> (Queue, Receiver<Work>) {
    let (tx, rx) = std::sync::mpsc::sync_channel(capacity);
    (Queue { tx }, rx)
}

/// Runs until every [`Queue`] is dropped or `stopping` is set (then wake it with any work).
pub(crate) fn run(
    mut store: RedbStore,
    mut engine: Engine,
    rx: Receiver<Work>,
    max_batch: usize,
    outputs: Outputs,
    metrics: &crate::metrics::Metrics,
    stopping: &AtomicBool,
) {
    // What a crash interrupted: jobs waiting for a worker, publications not yet routed.
    let recovered = store.read(|kv| -> Result<_, flowmesh_bpmn::engine::Error> {
        let mut actions: Vec<Action> = engine
            .pending_jobs(kv)?
            .into_iter()
            .map(Action::Job)
            .collect();
        actions.extend(engine.outbox(kv)?.into_iter().map(Action::Publish));
        actions.extend(engine.signal_outbox(kv)?.into_iter().map(Action::Signal));
        Ok(actions)
    });
    match recovered {
        Ok(actions) => {
            for a in actions {
                let _ = outputs.actions.send(a);
            }
        }
        Err(e) => tracing::error!("cannot read pending work at start: {e}"),
    }
    let mut next_due = due(&store, &engine);
    let mut batch: Vec<Work> = Vec::new();
    loop {
        let wait = next_due.map_or(Duration::from_secs(3600), |at| {
            let now = Timestamp::now();
            if at <= now {
                Duration::ZERO
            } else {
                Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO)
            }
        });
        match rx.recv_timeout(wait) {
            Ok(w) => batch.push(w),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        let mut queued = batch.iter().map(|w| w.commands.len()).sum::<usize>();
        while queued < max_batch {
            match rx.try_recv() {
                Ok(w) => {
                    queued += w.commands.len();
                    batch.push(w);
                }
                Err(_) => break,
            }
        }
        let now = Timestamp::now();
        let tick = next_due.is_some_and(|at| at <= now);
        if batch.is_empty() && !tick {
            continue;
        }
        commit(
            &mut store,
            &mut engine,
            now,
            &mut batch,
            tick,
            &outputs,
            metrics,
        );
        if stopping.load(Ordering::Acquire) {
            return;
        }
        next_due = due(&store, &engine);
    }
}

fn due(store: &RedbStore, engine: &Engine) -> Option<Timestamp> {
    match store.read(|kv| engine.next_due(kv)) {
        Ok(d) => d,
        Err(e) => {
            tracing::error!("cannot read when the next timer is due: {e}");
            Some(Timestamp::now() + Duration::from_secs(1))
        }
    }
}

/// One transaction for everything in `batch` (and a tick, when timers are due).
fn commit(
    store: &mut RedbStore,
    engine: &mut Engine,
    now: Timestamp,
    batch: &mut Vec<Work>,
    tick: bool,
    outputs: &Outputs,
    metrics: &crate::metrics::Metrics,
) {
    let mut commands = Vec::new();
    let mut origin_at = Vec::new();
    let mut sizes = Vec::with_capacity(batch.len());
    let mut writes = Writes::default();
    for w in batch.iter_mut() {
        sizes.push(w.commands.len());
        writes.take(&mut w.writes);
        origin_at.append(&mut w.origins);
        commands.append(&mut w.commands);
    }
    if tick {
        commands.push(Command::Tick);
        origin_at.push(None);
    }
    // Messages that may start instances: an instance started by one continues its trace.
    let mut by_key: BTreeMap<String, Origin> = BTreeMap::new();
    for (command, origin) in commands.iter().zip(&origin_at) {
        if let (
            Command::Publish {
                correlation_key, ..
            },
            Some(o),
        ) = (command, origin)
        {
            by_key.insert(correlation_key.clone(), o.clone());
        }
    }
    let started = std::time::Instant::now();
    let n = commands.len();
    let result = store.transact_with(|kv, txn| -> Result<_, Error> {
        let out = engine.execute(kv, now, commands)?;
        let mut origins = BTreeMap::new();
        for (result, origin) in out.results.iter().zip(&origin_at) {
            if let (Ok(Accepted::Created { instance }), Some(o)) = (result, origin) {
                origins.insert(*instance, o.clone());
            }
        }
        let recorded = index::record(txn, engine, &*kv, &out.events, &origins, &by_key)?;
        writes.apply(txn, now.as_millisecond())?;
        Ok((out, recorded))
    });
    metrics.engine_batch(n, started.elapsed());
    match result {
        Ok((out, recorded)) => {
            for (from, to) in &recorded.moved {
                metrics.instance_moved(from.map(InstanceState::name), to.name());
            }
            metrics.incidents_changed(recorded.incidents);
            metrics.outbox_changed(
                i64::try_from(writes.outbox.len()).unwrap_or(0)
                    - i64::try_from(writes.delivered.len()).unwrap_or(0),
            );
            let ended = recorded.ended;
            engine.committed();
            let mut results = out.results.into_iter();
            for (w, size) in batch.drain(..).zip(sizes) {
                let mine: Vec<CommandResult> = results.by_ref().take(size).collect();
                if let Some(reply) = w.reply {
                    let _ = reply.send(Ok(mine));
                }
            }
            for a in out.actions {
                let _ = outputs.actions.send(a);
            }
            if !ended.is_empty() {
                let _ = outputs.ended.send(ended);
            }
            if !writes.outbox.is_empty() {
                outputs.outbox.notify_one();
            }
            if !writes.inbox.is_empty() {
                outputs.inbox.notify_one();
            }
        }
        Err(e) => {
            tracing::error!("an engine batch of {n} commands failed and was rolled back: {e}");
            for w in batch.drain(..) {
                if let Some(reply) = w.reply {
                    let _ = reply.send(Err(Error::Storage(e.to_string())));
                }
            }
        }
    }
}
