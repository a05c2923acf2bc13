//! Where engine state lives: a narrow transactional key-value interface ([`Kv`]) over named
//! tables, implemented in memory here and on redb in the sidecar. The engine's typed state
//! (`engine::state`) is written once on top of it, so every implementation runs the same code
//! and passes the same conformance suite (`testing`).
//!
//! A batch of commands is one transaction ([`Store::transact`]): group commit, one fsync for
//! many instances. Values are bytes in a versioned format ([`codec`]).

pub mod codec;
mod memory;

pub use memory::{Entries, MemoryStore};

/// The tables of engine state. Their numbers are part of the on-disk format: append, never
/// renumber.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Table {
    Meta = 0,
    Processes = 1,
    ProcessVersions = 2,
    Elements = 3,
    Children = 4,
    Variables = 5,
    Jobs = 6,
    JobBackoffs = 7,
    Timers = 8,
    TimerDue = 9,
    Subscriptions = 10,
    SubscriptionIndex = 11,
    StartSubscriptions = 12,
    Messages = 13,
    MessageIndex = 14,
    MessageIds = 15,
    MessageDeadlines = 16,
    Correlated = 17,
    StartKeys = 18,
    Incidents = 19,
    Joins = 20,
    Compensations = 21,
    Outbox = 22,
    TimerOwners = 23,
    Signals = 24,
    SignalIndex = 25,
    SignalOutbox = 26,
    Calls = 27,
    CalledBy = 28,
}

impl Table {
    pub const ALL: [Table; 29] = [
        Table::Meta,
        Table::Processes,
        Table::ProcessVersions,
        Table::Elements,
        Table::Children,
        Table::Variables,
        Table::Jobs,
        Table::JobBackoffs,
        Table::Timers,
        Table::TimerDue,
        Table::Subscriptions,
        Table::SubscriptionIndex,
        Table::StartSubscriptions,
        Table::Messages,
        Table::MessageIndex,
        Table::MessageIds,
        Table::MessageDeadlines,
        Table::Correlated,
        Table::StartKeys,
        Table::Incidents,
        Table::Joins,
        Table::Compensations,
        Table::Outbox,
        Table::TimerOwners,
        Table::Signals,
        Table::SignalIndex,
        Table::SignalOutbox,
        Table::Calls,
        Table::CalledBy,
    ];

    /// The table's name on disk.
    pub fn name(self) -> &'static str {
        match self {
            Table::Meta => "meta",
            Table::Processes => "processes",
            Table::ProcessVersions => "process_versions",
            Table::Elements => "elements",
            Table::Children => "children",
            Table::Variables => "variables",
            Table::Jobs => "jobs",
            Table::JobBackoffs => "job_backoffs",
            Table::Timers => "timers",
            Table::TimerDue => "timer_due",
            Table::Subscriptions => "subscriptions",
            Table::SubscriptionIndex => "subscription_index",
            Table::StartSubscriptions => "start_subscriptions",
            Table::Messages => "messages",
            Table::MessageIndex => "message_index",
            Table::MessageIds => "message_ids",
            Table::MessageDeadlines => "message_deadlines",
            Table::Correlated => "correlated",
            Table::StartKeys => "start_keys",
            Table::Incidents => "incidents",
            Table::Joins => "joins",
            Table::Compensations => "compensations",
            Table::Outbox => "outbox",
            Table::TimerOwners => "timer_owners",
            Table::Signals => "signals",
            Table::SignalIndex => "signal_index",
            Table::SignalOutbox => "signal_outbox",
            Table::Calls => "calls",
            Table::CalledBy => "called_by",
        }
    }
}

/// A storage failure. The batch it happened in is not committed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("storage I/O failed: {0}")]
    Io(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error(
        "stored data has format version {found}, newer than the {supported} this release reads; run a newer flowmesh"
    )]
    NewerFormat { found: u8, supported: u8 },
}

/// Reads of one transaction's (or snapshot's) tables; writing transactions see their own
/// writes.
pub trait KvRead {
    /// Calls `f` with the value stored under `key`, if any; returns whether there was one.
    fn get(&self, table: Table, key: &[u8], f: &mut dyn FnMut(&[u8])) -> Result<bool, Error>;
    /// Visits the entries whose key starts with `prefix`, in key order, while `f` returns true.
    fn scan(
        &self,
        table: Table,
        prefix: &[u8],
        f: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), Error>;
    /// Visits entries with keys in `[from, to)`, in key order, while `f` returns true.
    fn range(
        &self,
        table: Table,
        from: &[u8],
        to: &[u8],
        f: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), Error>;
}

/// A write transaction's tables.
pub trait Kv: KvRead {
    fn put(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<(), Error>;
    fn delete(&mut self, table: Table, key: &[u8]) -> Result<(), Error>;
}

/// A place to keep engine state, with atomic batches.
pub trait Store {
    /// Runs `f` in one write transaction: committed (durably, for durable stores) when `f`
    /// returns Ok, rolled back entirely when it returns Err.
    fn transact<R, E: From<Error>>(
        &mut self,
        f: impl FnOnce(&mut dyn Kv) -> Result<R, E>,
    ) -> Result<R, E>;

    /// Runs `f` against the current committed state.
    fn read<R, E: From<Error>>(&self, f: impl FnOnce(&dyn KvRead) -> Result<R, E>) -> Result<R, E>;
}
