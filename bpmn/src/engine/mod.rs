//! The workflow engine: commands in, events and actions out.
//!
//! ```text
//!              ┌────────────── one batch = one store transaction ──────────────┐
//!  commands ──►│ processors decide ──emit──► event ──apply──► state (Kv tables) │──► events
//!              │   (behaviours,      └──────────────record──────────────────────│──► actions
//!              │    lifecycle)   ◄────────────── read ─────────────┘            │   (jobs, publishes)
//!              └────────────────────────────────────────────────────────────────┘
//! ```
//!
//! Only event appliers change state, so replaying the events on empty state rebuilds it.
//! The engine never reads a clock or does I/O: `now` is an argument, side effects are returned
//! as [`Action`]s for the runtime to perform after the batch commits. A batch of commands is one
//! write transaction (group commit): many instances advance per fsync.

pub mod action;
mod apply;
mod behavior;
mod calls;
pub mod command;
mod compensation;
mod conditional;
mod context;
mod deploy;
mod errors;
mod escalations;
pub mod event;
mod event_subprocess;
mod incidents;
mod inclusive;
mod instance;
mod jobs;
mod lifecycle;
mod messages;
mod migrate;
mod modify;
mod multi_instance;
pub mod records;
mod signals;
pub mod state;
mod timers;
mod variables;

use std::collections::VecDeque;

use jiff::Timestamp;

pub use action::{Action, JobActivation};
pub use command::{Accepted, Command, CommandResult, Deployed, Rejection, RejectionKind};
pub use event::{ElementRef, Event, Lifecycle};
pub use records::{
    Incident, IncidentKind, Job, JobState, ProcessRecord, Publication, SignalBroadcast,
};

use crate::store::{Kv, KvRead, Store};
use context::{Ctx, Models};
use state::{Reader, Writer};

/// A failure that aborts the whole batch (nothing of it is committed).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] crate::store::Error),
    #[error("engine state is inconsistent: {0}")]
    Corrupt(String),
}

/// How the engine behaves.
#[derive(Clone, Debug)]
pub struct Options {
    /// Keep the events of each batch in [`Batch::events`] (telemetry and tests need them; a
    /// benchmark may not).
    pub record_events: bool,
    /// Time to live of messages the engine publishes itself (message throw events without a
    /// job), in milliseconds. Default: one hour.
    pub publish_ttl_ms: i64,
    /// Retries of new jobs by job type, overriding the model's `zeebe:taskDefinition retries`
    /// (the sidecar's `[jobs]` configuration knows best how often its app may be asked).
    pub job_retries: std::collections::BTreeMap<String, u32>,
    /// Which version a message start event starts, by process id and correlation key, where a
    /// rollout splits a process between versions; `None` (or no answer): the latest.
    pub start_version: Option<StartVersion>,
}

/// `(process id, correlation key) → version`.
pub type ChooseVersion = dyn Fn(&str, &str) -> Option<u32> + Send + Sync;

/// Picks the version a message starts (see [`Options::start_version`]).
#[derive(Clone)]
pub struct StartVersion(pub std::sync::Arc<ChooseVersion>);

impl std::fmt::Debug for StartVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StartVersion(..)")
    }
}

impl Default for Options {
    fn default() -> Options {
        Options {
            record_events: true,
            publish_ttl_ms: 3_600_000,
            job_retries: Default::default(),
            start_version: None,
        }
    }
}

/// What a batch produced. Actions must only be performed once the batch is committed.
#[derive(Debug, Default)]
pub struct Batch {
    /// One result per command, in order.
    pub results: Vec<CommandResult>,
    pub events: Vec<Event>,
    pub actions: Vec<Action>,
}

/// The engine: the parsed models it has seen, and its options. State lives in the store.
pub struct Engine {
    models: Models,
    options: Options,
}

impl Engine {
    pub fn new(options: Options) -> Engine {
        Engine {
            models: Models::default(),
            options,
        }
    }

    /// Processes commands inside the caller's transaction. Call [`Engine::committed`] once the
    /// transaction commits (or use [`Engine::process`], which does both).
    pub fn execute(
        &mut self,
        kv: &mut dyn Kv,
        now: Timestamp,
        commands: impl IntoIterator<Item = Command>,
    ) -> Result<Batch, Error> {
        self.models.pending.clear();
        let w = Writer::new(kv);
        let next_key = w.reader().next_key()?;
        let mut ctx = Ctx {
            w,
            models: &mut self.models,
            now: now.as_millisecond(),
            next_key,
            record: self.options.record_events,
            events: Vec::new(),
            actions: Vec::new(),
            queue: VecDeque::new(),
            changed: Default::default(),
            options: &self.options,
        };
        let mut results = Vec::new();
        for command in commands {
            let result = dispatch(&mut ctx, command)?;
            drain(&mut ctx)?;
            results.push(result);
        }
        let next_key = ctx.next_key;
        ctx.w.set_next_key(next_key)?;
        ctx.w.flush()?;
        Ok(Batch {
            results,
            events: ctx.events,
            actions: ctx.actions,
        })
    }

    /// The batch passed to [`Engine::execute`] committed: models it deployed become known.
    pub fn committed(&mut self) {
        let pending = std::mem::take(&mut self.models.pending);
        self.models.cache.extend(pending);
    }

    /// Processes commands as one transaction of `store` and commits it.
    pub fn process<S: Store>(
        &mut self,
        store: &mut S,
        now: Timestamp,
        commands: impl IntoIterator<Item = Command>,
    ) -> Result<Batch, Error> {
        let batch = store.transact(|kv| self.execute(kv, now, commands))?;
        self.committed();
        Ok(batch)
    }

    /// Jobs waiting for a worker: after a restart, the runtime performs these again (each has
    /// its key as idempotency key).
    pub fn pending_jobs(&mut self, kv: &dyn KvRead) -> Result<Vec<JobActivation>, Error> {
        let r = Reader::new(kv);
        let mut out = Vec::new();
        for job in r.jobs()? {
            if job.state != JobState::Activatable {
                continue;
            }
            let model = self.models.get(r, job.definition)?;
            let version = self.models.version(r, job.definition)?;
            let Some(def) = behavior::job_def(&model.element(job.element).kind) else {
                continue;
            };
            out.push(behavior::activation(r, &job, &model, def, version)?);
        }
        Ok(out)
    }

    /// Messages the engine published that the runtime has not acknowledged yet.
    pub fn outbox(&self, kv: &dyn KvRead) -> Result<Vec<Publication>, Error> {
        Reader::new(kv).outbox()
    }

    /// Signals thrown here that the runtime has not acknowledged broadcasting yet.
    pub fn signal_outbox(&self, kv: &dyn KvRead) -> Result<Vec<records::SignalBroadcast>, Error> {
        Reader::new(kv).signal_outbox()
    }

    /// When the next timer, job backoff or message deadline is due; send [`Command::Tick`] then.
    pub fn next_due(&self, kv: &dyn KvRead) -> Result<Option<Timestamp>, Error> {
        Ok(Reader::new(kv)
            .next_due()?
            .and_then(|ms| Timestamp::from_millisecond(ms).ok()))
    }

    /// The deployed model of a process definition key and its version (to name elements of
    /// events and state).
    pub fn definition(
        &mut self,
        kv: &dyn KvRead,
        definition: u64,
    ) -> Result<(std::sync::Arc<crate::model::Process>, u32), Error> {
        let r = Reader::new(kv);
        Ok((
            self.models.get(r, definition)?,
            self.models.version(r, definition)?,
        ))
    }

    pub fn options(&self) -> &Options {
        &self.options
    }
}

/// Applies events to state, as recovery from an event log would: replaying every event of a
/// history on empty state rebuilds exactly the state processing produced.
pub fn replay(kv: &mut dyn Kv, events: &[Event]) -> Result<(), Error> {
    let mut w = Writer::new(kv);
    let mut next_key = w.reader().next_key()?;
    for e in events {
        apply::apply(&mut w, e, &mut next_key)?;
    }
    w.set_next_key(next_key)?;
    w.flush()
}

fn dispatch(ctx: &mut Ctx<'_>, command: Command) -> Result<CommandResult, Error> {
    Ok(match command {
        Command::Deploy { resource, xml } => {
            deploy::deploy(ctx, &resource, &xml)?.map(Accepted::Deployed)
        }
        Command::CreateInstance {
            process_id,
            version,
            variables,
        } => instance::create(ctx, &process_id, version, variables)?
            .map(|instance| Accepted::Created { instance }),
        Command::CancelInstance { instance } => {
            instance::cancel(ctx, instance)?.map(|()| Accepted::Done)
        }
        Command::Publish {
            name,
            correlation_key,
            variables,
            ttl_ms,
            message_id,
        } => messages::publish(ctx, &name, &correlation_key, variables, ttl_ms, message_id)?
            .map(|key| Accepted::Published { key }),
        Command::CompleteJob { key, variables } => {
            jobs::complete(ctx, key, variables)?.map(|()| Accepted::Done)
        }
        Command::FailJob {
            key,
            retries,
            backoff_ms,
            message,
        } => jobs::fail(ctx, key, retries, backoff_ms, message)?.map(|()| Accepted::Done),
        Command::ThrowError {
            key,
            code,
            message,
            variables,
        } => jobs::throw_error(ctx, key, &code, message, variables)?.map(|()| Accepted::Done),
        Command::UpdateJobRetries { key, retries } => {
            jobs::update_retries(ctx, key, retries)?.map(|()| Accepted::Done)
        }
        Command::ResolveIncident { key } => incidents::resolve(ctx, key)?.map(|()| Accepted::Done),
        Command::ModifyInstance {
            instance,
            activate,
            terminate,
            variables,
        } => modify::modify(ctx, instance, &activate, &terminate, variables)?
            .map(|()| Accepted::Done),
        Command::MigrateInstance {
            instance,
            version,
            mappings,
        } => migrate::migrate(ctx, instance, version, &mappings)?.map(|()| Accepted::Done),
        Command::SetVariables {
            scope,
            variables,
            local,
        } => set_variables(ctx, scope, variables, local)?,
        Command::AckPublication { key } => {
            if ctx.r().publication(key)?.is_some() {
                ctx.emit(Event::PublishAcknowledged { key })?;
                Ok(Accepted::Done)
            } else if ctx.r().signal_broadcast(key)?.is_some() {
                ctx.emit(Event::SignalBroadcastAcknowledged { key })?;
                Ok(Accepted::Done)
            } else {
                Err(Rejection::not_found(format!(
                    "no unacknowledged publication or signal {key}"
                )))
            }
        }
        Command::BroadcastSignal { name, variables } => {
            if name.is_empty() {
                Err(Rejection::invalid(
                    "a signal needs a name; give the name its catch events wait for",
                ))
            } else {
                signals::receive(ctx, &name, variables)?;
                Ok(Accepted::Done)
            }
        }
        Command::Tick => {
            timers::tick(ctx, drain)?;
            Ok(Accepted::Done)
        }
    })
}

fn set_variables(
    ctx: &mut Ctx<'_>,
    scope: u64,
    vars: crate::feel::Context,
    local: bool,
) -> Result<CommandResult, Error> {
    let Some(el) = ctx.r().element(scope)? else {
        return Ok(Err(Rejection::not_found(format!(
            "no active element instance {scope} to set variables on"
        ))));
    };
    if local {
        for (name, value) in vars {
            variables::set_local(ctx, scope, el.instance, &name, value)?;
        }
    } else {
        variables::merge(ctx, scope, el.instance, vars)?;
    }
    Ok(Ok(Accepted::Done))
}

/// Runs queued work (tokens on their way to elements) until none is left.
fn drain(ctx: &mut Ctx<'_>) -> Result<(), Error> {
    // Conditional events fire on changed variables, and what they start can change variables
    // again: a bounded number of rounds, so a model that keeps triggering itself cannot stall
    // the engine.
    for _ in 0..conditional::MAX_ROUNDS {
        while let Some(activation) = ctx.queue.pop_front() {
            lifecycle::activate(ctx, activation)?;
        }
        if ctx.changed.is_empty() {
            return Ok(());
        }
        conditional::check(ctx)?;
        if ctx.queue.is_empty() && ctx.changed.is_empty() {
            return Ok(());
        }
    }
    ctx.changed.clear();
    while let Some(activation) = ctx.queue.pop_front() {
        lifecycle::activate(ctx, activation)?;
    }
    Ok(())
}
