//! Typed access to engine state over a [`Kv`] transaction: one method per question the engine
//! asks, with the table layout (keys, secondary indexes) in one place.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Error;
use super::records::{
    CallLink, CompensationSub, ElementInstance, Incident, Job, LoopCounts, MessageRecord,
    ProcessRecord, Publication, SignalBroadcast, SignalSubscription, Subscription, Timer,
};
use crate::feel::Value;
use crate::model::{ElementIdx, FlowIdx};
use crate::store::codec::{self, Key, read_str, read_u32, read_u64};
use crate::store::{Error as StoreError, Kv, KvRead, Table};

const NEXT_KEY: &[u8] = b"next_key";

/// Where a multi-instance body's counters live in the join-counter table.
const LOOP_SLOTS: [FlowIdx; 3] = [
    FlowIdx(u32::MAX),
    FlowIdx(u32::MAX - 1),
    FlowIdx(u32::MAX - 2),
];

fn u64key(k: u64) -> [u8; 8] {
    k.to_be_bytes()
}

/// Element instances written in the current batch, not yet flushed to the store (`None`: removed).
type ElementCache = HashMap<u64, Option<ElementInstance>, BuildHasherDefault<KeyHasher>>;

/// Hashes engine keys (sequential u64s) with one multiplication: SipHash's protection against
/// chosen keys buys nothing for keys the engine generated itself.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 =
                (self.0.rotate_left(5) ^ u64::from(*b)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// Reads of engine state.
#[derive(Clone, Copy)]
pub struct Reader<'a> {
    kv: &'a dyn KvRead,
    elements: Option<&'a ElementCache>,
}

impl<'a> Reader<'a> {
    pub fn new(kv: &'a dyn KvRead) -> Reader<'a> {
        Reader { kv, elements: None }
    }

    fn get<T: DeserializeOwned>(&self, table: Table, key: &[u8]) -> Result<Option<T>, Error> {
        let mut out = None;
        let mut err = None;
        self.kv
            .get(table, key, &mut |bytes| match codec::decode(bytes) {
                Ok(v) => out = Some(v),
                Err(e) => err = Some(e),
            })?;
        match err {
            Some(e) => Err(e.into()),
            None => Ok(out),
        }
    }

    fn exists(&self, table: Table, key: &[u8]) -> Result<bool, Error> {
        Ok(self.kv.get(table, key, &mut |_| {})?)
    }

    /// Maps every entry under `prefix` (in key order) with `f`; the first failure stops.
    fn collect<T>(
        &self,
        table: Table,
        prefix: &[u8],
        mut f: impl FnMut(&[u8], &[u8]) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, Error> {
        let mut out = Vec::new();
        let mut err = None;
        self.kv.scan(table, prefix, &mut |k, v| match f(k, v) {
            Ok(t) => {
                out.push(t);
                true
            }
            Err(e) => {
                err = Some(e);
                false
            }
        })?;
        match err {
            Some(e) => Err(e.into()),
            None => Ok(out),
        }
    }

    /// Decodes every value under a key prefix, in key order.
    fn values<T: DeserializeOwned>(&self, table: Table, prefix: &[u8]) -> Result<Vec<T>, Error> {
        self.collect(table, prefix, |_, v| codec::decode(v))
    }

    /// The u64 that ends each key under a prefix (index tables).
    fn trailing_keys(&self, table: Table, prefix: &[u8]) -> Result<Vec<u64>, Error> {
        self.collect(table, prefix, |k, _| read_u64(k, k.len().saturating_sub(8)))
    }

    /// (u64, element) pairs that follow `prefix` in index keys.
    fn keyed_elements(&self, table: Table, prefix: &[u8]) -> Result<Vec<(u64, ElementIdx)>, Error> {
        let at = prefix.len();
        self.collect(table, prefix, |k, _| {
            Ok((read_u64(k, at)?, ElementIdx(read_u32(k, at + 8)?)))
        })
    }

    pub fn next_key(&self) -> Result<u64, Error> {
        Ok(self.get::<u64>(Table::Meta, NEXT_KEY)?.unwrap_or(1))
    }

    pub fn process(&self, key: u64) -> Result<Option<ProcessRecord>, Error> {
        self.get(Table::Processes, &u64key(key))
    }

    pub fn processes(&self) -> Result<Vec<ProcessRecord>, Error> {
        self.values(Table::Processes, &[])
    }

    /// The definition key of the latest version of a process.
    pub fn latest_version(&self, process_id: &str) -> Result<Option<u64>, Error> {
        Ok(self.versions(process_id)?.last().map(|(_, k)| *k))
    }

    /// (version, definition key) of every version of a process, oldest first.
    pub fn versions(&self, process_id: &str) -> Result<Vec<(u32, u64)>, Error> {
        let prefix = Key::new().str(process_id);
        let at = prefix.bytes().len();
        self.collect(Table::ProcessVersions, prefix.bytes(), |k, v| {
            Ok((read_u32(k, at)?, codec::decode(v)?))
        })
    }

    pub fn element(&self, key: u64) -> Result<Option<ElementInstance>, Error> {
        if let Some(cached) = self.elements.and_then(|c| c.get(&key)) {
            return Ok(cached.clone());
        }
        self.get(Table::Elements, &u64key(key))
    }

    /// An element instance that must exist (the engine put it there).
    pub fn element_required(&self, key: u64) -> Result<ElementInstance, Error> {
        self.element(key)?
            .ok_or_else(|| Error::Corrupt(format!("element instance {key} is missing")))
    }

    pub fn children(&self, scope: u64) -> Result<Vec<u64>, Error> {
        self.trailing_keys(Table::Children, &u64key(scope))
    }

    pub fn variable(&self, scope: u64, name: &str) -> Result<Option<Value>, Error> {
        self.get(Table::Variables, Key::new().u64(scope).str(name).bytes())
    }

    /// The variables defined in one scope (not its parents), by name.
    pub fn local_variables(&self, scope: u64) -> Result<Vec<(String, Value)>, Error> {
        self.collect(Table::Variables, &u64key(scope), |k, v| {
            Ok((read_str(k, 8)?.0.to_owned(), codec::decode(v)?))
        })
    }

    pub fn job(&self, key: u64) -> Result<Option<Job>, Error> {
        self.get(Table::Jobs, &u64key(key))
    }

    pub fn jobs(&self) -> Result<Vec<Job>, Error> {
        self.values(Table::Jobs, &[])
    }

    /// Keys of jobs whose backoff ends at or before `now`, earliest first.
    pub fn jobs_due(&self, now: i64) -> Result<Vec<u64>, Error> {
        self.keys_due(Table::JobBackoffs, now)
    }

    fn keys_due(&self, table: Table, now: i64) -> Result<Vec<u64>, Error> {
        let to = Key::new().time(now.saturating_add(1)).into_bytes();
        let mut out = Vec::new();
        let mut err = None;
        self.kv
            .range(table, &[], &to, &mut |k, _| match read_u64(k, 8) {
                Ok(v) => {
                    out.push(v);
                    true
                }
                Err(e) => {
                    err = Some(e);
                    false
                }
            })?;
        match err {
            Some(e) => Err(e.into()),
            None => Ok(out),
        }
    }

    fn first_due(&self, table: Table) -> Result<Option<i64>, Error> {
        let mut out = None;
        let mut err = None;
        self.kv.scan(table, &[], &mut |k, _| {
            match read_u64(k, 0) {
                Ok(v) => out = Some(v as i64),
                Err(e) => err = Some(e),
            }
            false
        })?;
        match err {
            Some(e) => Err(e.into()),
            None => Ok(out),
        }
    }

    pub fn timer(&self, key: u64) -> Result<Option<Timer>, Error> {
        self.get(Table::Timers, &u64key(key))
    }

    pub fn timers_due(&self, now: i64) -> Result<Vec<u64>, Error> {
        self.keys_due(Table::TimerDue, now)
    }

    /// Timers of an element instance, or a definition's start timers (by definition key).
    pub fn timers_of(&self, owner: u64) -> Result<Vec<u64>, Error> {
        self.trailing_keys(Table::TimerOwners, &u64key(owner))
    }

    pub fn timers(&self) -> Result<Vec<Timer>, Error> {
        self.values(Table::Timers, &[])
    }

    /// The earliest time anything is due: a timer, a job backoff, a message deadline.
    pub fn next_due(&self) -> Result<Option<i64>, Error> {
        let candidates = [
            self.first_due(Table::TimerDue)?,
            self.first_due(Table::JobBackoffs)?,
            self.first_due(Table::MessageDeadlines)?,
        ];
        Ok(candidates.into_iter().flatten().min())
    }

    pub fn subscription(
        &self,
        owner: u64,
        element: ElementIdx,
    ) -> Result<Option<Subscription>, Error> {
        self.get(
            Table::Subscriptions,
            Key::new().u64(owner).u32(element.0).bytes(),
        )
    }

    /// Subscriptions an element instance opened (itself, its boundary events, its gateway's events).
    pub fn subscriptions_of(&self, owner: u64) -> Result<Vec<Subscription>, Error> {
        self.values(Table::Subscriptions, &u64key(owner))
    }

    /// Open subscriptions for a message name and correlation key, in the order they opened.
    pub fn subscriptions_for(
        &self,
        name: &str,
        correlation_key: &str,
    ) -> Result<Vec<(u64, ElementIdx)>, Error> {
        self.keyed_elements(
            Table::SubscriptionIndex,
            Key::new().str(name).str(correlation_key).bytes(),
        )
    }

    /// Process definitions with a message start event for this name: (definition, element).
    pub fn start_subscriptions(&self, name: &str) -> Result<Vec<(u64, ElementIdx)>, Error> {
        self.keyed_elements(Table::StartSubscriptions, Key::new().str(name).bytes())
    }

    pub fn message(&self, key: u64) -> Result<Option<MessageRecord>, Error> {
        self.get(Table::Messages, &u64key(key))
    }

    /// Every buffered message (waiting for a subscription until its deadline), by key.
    pub fn messages(&self) -> Result<Vec<MessageRecord>, Error> {
        self.values(Table::Messages, &[])
    }

    /// Buffered messages for a name and correlation key, oldest first.
    pub fn messages_for(&self, name: &str, correlation_key: &str) -> Result<Vec<u64>, Error> {
        self.trailing_keys(
            Table::MessageIndex,
            Key::new().str(name).str(correlation_key).bytes(),
        )
    }

    /// A buffered message with this name, correlation key and id.
    pub fn message_with_id(
        &self,
        name: &str,
        correlation_key: &str,
        id: &str,
    ) -> Result<Option<u64>, Error> {
        self.get(
            Table::MessageIds,
            Key::new().str(name).str(correlation_key).str(id).bytes(),
        )
    }

    pub fn messages_expired(&self, now: i64) -> Result<Vec<u64>, Error> {
        self.keys_due(Table::MessageDeadlines, now)
    }

    pub fn correlated(&self, message: u64, instance: u64) -> Result<bool, Error> {
        self.exists(
            Table::Correlated,
            Key::new().u64(message).u64(instance).bytes(),
        )
    }

    /// The active instance of a process started by a message with this correlation key.
    pub fn started_by_key(
        &self,
        process_id: &str,
        correlation_key: &str,
    ) -> Result<Option<u64>, Error> {
        self.get(
            Table::StartKeys,
            Key::new().str(process_id).str(correlation_key).bytes(),
        )
    }

    pub fn incident(&self, key: u64) -> Result<Option<Incident>, Error> {
        self.get(Table::Incidents, &u64key(key))
    }

    pub fn incidents(&self) -> Result<Vec<Incident>, Error> {
        self.values(Table::Incidents, &[])
    }

    /// Tokens waiting at a join: how often `flow` was taken in `scope` and not yet consumed.
    pub fn taken(&self, scope: u64, flow: FlowIdx) -> Result<u32, Error> {
        Ok(self
            .get(Table::Joins, Key::new().u64(scope).u32(flow.0).bytes())?
            .unwrap_or(0))
    }

    /// A multi-instance body's counters (see [`Writer::put_loop_counts`]).
    pub fn loop_counts(&self, body: u64) -> Result<LoopCounts, Error> {
        let [instances, completed, terminated] = LOOP_SLOTS;
        Ok(LoopCounts {
            instances: self.taken(body, instances)?,
            completed: self.taken(body, completed)?,
            terminated: self.taken(body, terminated)?,
        })
    }

    pub fn compensations(&self, scope: u64) -> Result<Vec<CompensationSub>, Error> {
        self.values(Table::Compensations, &u64key(scope))
    }

    pub fn outbox(&self) -> Result<Vec<Publication>, Error> {
        self.values(Table::Outbox, &[])
    }

    pub fn publication(&self, key: u64) -> Result<Option<Publication>, Error> {
        self.get(Table::Outbox, &u64key(key))
    }

    /// The child process instance a call activity instance started.
    pub fn called(&self, call_activity: u64) -> Result<Option<u64>, Error> {
        self.get(Table::Calls, &u64key(call_activity))
    }

    /// The call activity that started a process instance, if one did.
    pub fn caller(&self, instance: u64) -> Result<Option<CallLink>, Error> {
        self.get(Table::CalledBy, &u64key(instance))
    }

    /// Signal subscriptions an element instance (or a definition, for start events) opened.
    pub fn signal_subscriptions_of(&self, owner: u64) -> Result<Vec<SignalSubscription>, Error> {
        self.values(Table::Signals, &u64key(owner))
    }

    pub fn signal_subscription(
        &self,
        owner: u64,
        element: ElementIdx,
    ) -> Result<Option<SignalSubscription>, Error> {
        self.get(Table::Signals, Key::new().u64(owner).u32(element.0).bytes())
    }

    /// Open subscriptions for a signal name, in the order their owners were created.
    pub fn signal_subscriptions_for(&self, name: &str) -> Result<Vec<(u64, ElementIdx)>, Error> {
        self.keyed_elements(Table::SignalIndex, Key::new().str(name).bytes())
    }

    /// Signals thrown here that the runtime has not acknowledged yet.
    pub fn signal_outbox(&self) -> Result<Vec<SignalBroadcast>, Error> {
        self.values(Table::SignalOutbox, &[])
    }

    pub fn signal_broadcast(&self, key: u64) -> Result<Option<SignalBroadcast>, Error> {
        self.get(Table::SignalOutbox, &u64key(key))
    }
}

/// Writes of engine state; only event appliers and key generation use it.
///
/// Element instance records change several times in a batch (activating, activated, completing,
/// completed); they are kept decoded in a write-back cache and written once by [`Writer::flush`]
/// at the end of the batch. Reads through [`Writer::reader`] see the cache.
pub struct Writer<'a> {
    kv: &'a mut dyn Kv,
    elements: ElementCache,
}

impl<'a> Writer<'a> {
    pub fn new(kv: &'a mut dyn Kv) -> Writer<'a> {
        Writer {
            kv,
            elements: ElementCache::with_capacity_and_hasher(1024, BuildHasherDefault::default()),
        }
    }

    pub fn reader(&self) -> Reader<'_> {
        Reader {
            kv: &*self.kv,
            elements: Some(&self.elements),
        }
    }

    /// Writes the cached element records to the store. Call once the batch is processed.
    pub fn flush(&mut self) -> Result<(), Error> {
        let mut entries: Vec<(u64, Option<ElementInstance>)> = self.elements.drain().collect();
        // Key order keeps the write sequence deterministic.
        entries.sort_unstable_by_key(|(k, _)| *k);
        for (key, entry) in entries {
            match entry {
                Some(e) => {
                    let bytes = codec::encode(&e)?;
                    self.kv.put(Table::Elements, &u64key(key), &bytes)?;
                }
                None => self.kv.delete(Table::Elements, &u64key(key))?,
            }
        }
        Ok(())
    }

    fn put<T: Serialize>(&mut self, table: Table, key: &[u8], value: &T) -> Result<(), Error> {
        let bytes = codec::encode(value)?;
        Ok(self.kv.put(table, key, &bytes)?)
    }

    fn mark(&mut self, table: Table, key: &[u8]) -> Result<(), Error> {
        Ok(self.kv.put(table, key, &[])?)
    }

    fn delete(&mut self, table: Table, key: &[u8]) -> Result<(), Error> {
        Ok(self.kv.delete(table, key)?)
    }

    pub fn set_next_key(&mut self, key: u64) -> Result<(), Error> {
        self.put(Table::Meta, NEXT_KEY, &key)
    }

    /// Keeps the key generator ahead of every key seen (replay restores it so).
    pub fn see_key(&mut self, key: u64) -> Result<(), Error> {
        if key >= self.reader().next_key()? {
            self.set_next_key(key + 1)?;
        }
        Ok(())
    }

    pub fn put_process(&mut self, p: &ProcessRecord) -> Result<(), Error> {
        self.put(Table::Processes, &u64key(p.key), p)?;
        self.put(
            Table::ProcessVersions,
            Key::new().str(&p.process_id).u32(p.version).bytes(),
            &p.key,
        )
    }

    pub fn put_element(&mut self, e: ElementInstance) -> Result<(), Error> {
        self.elements.insert(e.key, Some(e));
        Ok(())
    }

    pub fn insert_element(&mut self, e: &ElementInstance) -> Result<(), Error> {
        if let Some(scope) = e.scope {
            self.mark(Table::Children, Key::new().u64(scope).u64(e.key).bytes())?;
        }
        self.put_element(e.clone())
    }

    pub fn remove_element(&mut self, e: &ElementInstance) -> Result<(), Error> {
        self.elements.insert(e.key, None);
        if let Some(scope) = e.scope {
            self.delete(Table::Children, Key::new().u64(scope).u64(e.key).bytes())?;
        }
        Ok(())
    }

    pub fn put_variable(&mut self, scope: u64, name: &str, value: &Value) -> Result<(), Error> {
        self.put(
            Table::Variables,
            Key::new().u64(scope).str(name).bytes(),
            value,
        )
    }

    pub fn remove_variables(&mut self, scope: u64) -> Result<(), Error> {
        self.delete_prefix(Table::Variables, &u64key(scope))
    }

    /// Deletes every entry whose key starts with `prefix`.
    fn delete_prefix(&mut self, table: Table, prefix: &[u8]) -> Result<(), Error> {
        let mut keys = Vec::new();
        self.kv.scan(table, prefix, &mut |k, _| {
            keys.push(k.to_vec());
            true
        })?;
        for k in keys {
            self.delete(table, &k)?;
        }
        Ok(())
    }

    pub fn put_job(&mut self, job: &Job) -> Result<(), Error> {
        self.put(Table::Jobs, &u64key(job.key), job)
    }

    pub fn remove_job(&mut self, key: u64) -> Result<(), Error> {
        self.delete(Table::Jobs, &u64key(key))
    }

    pub fn add_job_backoff(&mut self, key: u64, at: i64) -> Result<(), Error> {
        self.mark(Table::JobBackoffs, Key::new().time(at).u64(key).bytes())
    }

    pub fn remove_job_backoff(&mut self, key: u64, at: i64) -> Result<(), Error> {
        self.delete(Table::JobBackoffs, Key::new().time(at).u64(key).bytes())
    }

    pub fn put_timer(&mut self, t: &Timer) -> Result<(), Error> {
        self.put(Table::Timers, &u64key(t.key), t)?;
        self.mark(Table::TimerDue, Key::new().time(t.due).u64(t.key).bytes())?;
        self.mark(
            Table::TimerOwners,
            Key::new().u64(t.owner_key()).u64(t.key).bytes(),
        )
    }

    pub fn remove_timer(&mut self, t: &Timer) -> Result<(), Error> {
        self.delete(Table::Timers, &u64key(t.key))?;
        self.delete(Table::TimerDue, Key::new().time(t.due).u64(t.key).bytes())?;
        self.delete(
            Table::TimerOwners,
            Key::new().u64(t.owner_key()).u64(t.key).bytes(),
        )
    }

    pub fn put_subscription(&mut self, s: &Subscription) -> Result<(), Error> {
        self.put(
            Table::Subscriptions,
            Key::new().u64(s.owner).u32(s.element.0).bytes(),
            s,
        )?;
        let index = Key::new()
            .str(&s.name)
            .str(&s.correlation_key)
            .u64(s.owner)
            .u32(s.element.0);
        self.mark(Table::SubscriptionIndex, index.bytes())
    }

    pub fn remove_subscription(&mut self, s: &Subscription) -> Result<(), Error> {
        self.delete(
            Table::Subscriptions,
            Key::new().u64(s.owner).u32(s.element.0).bytes(),
        )?;
        let index = Key::new()
            .str(&s.name)
            .str(&s.correlation_key)
            .u64(s.owner)
            .u32(s.element.0);
        self.delete(Table::SubscriptionIndex, index.bytes())
    }

    pub fn put_start_subscription(
        &mut self,
        name: &str,
        definition: u64,
        element: ElementIdx,
    ) -> Result<(), Error> {
        self.mark(
            Table::StartSubscriptions,
            Key::new().str(name).u64(definition).u32(element.0).bytes(),
        )
    }

    pub fn remove_start_subscription(
        &mut self,
        name: &str,
        definition: u64,
        element: ElementIdx,
    ) -> Result<(), Error> {
        self.delete(
            Table::StartSubscriptions,
            Key::new().str(name).u64(definition).u32(element.0).bytes(),
        )
    }

    pub fn put_message(&mut self, m: &MessageRecord) -> Result<(), Error> {
        self.put(Table::Messages, &u64key(m.key), m)?;
        self.mark(
            Table::MessageIndex,
            Key::new()
                .str(&m.name)
                .str(&m.correlation_key)
                .u64(m.key)
                .bytes(),
        )?;
        self.mark(
            Table::MessageDeadlines,
            Key::new().time(m.deadline).u64(m.key).bytes(),
        )?;
        if let Some(id) = &m.message_id {
            self.put(
                Table::MessageIds,
                Key::new()
                    .str(&m.name)
                    .str(&m.correlation_key)
                    .str(id)
                    .bytes(),
                &m.key,
            )?;
        }
        Ok(())
    }

    pub fn remove_message(&mut self, m: &MessageRecord) -> Result<(), Error> {
        self.delete(Table::Messages, &u64key(m.key))?;
        self.delete(
            Table::MessageIndex,
            Key::new()
                .str(&m.name)
                .str(&m.correlation_key)
                .u64(m.key)
                .bytes(),
        )?;
        self.delete(
            Table::MessageDeadlines,
            Key::new().time(m.deadline).u64(m.key).bytes(),
        )?;
        if let Some(id) = &m.message_id {
            self.delete(
                Table::MessageIds,
                Key::new()
                    .str(&m.name)
                    .str(&m.correlation_key)
                    .str(id)
                    .bytes(),
            )?;
        }
        self.delete_prefix(Table::Correlated, &u64key(m.key))
    }

    pub fn mark_correlated(&mut self, message: u64, instance: u64) -> Result<(), Error> {
        self.mark(
            Table::Correlated,
            Key::new().u64(message).u64(instance).bytes(),
        )
    }

    pub fn put_start_key(
        &mut self,
        process_id: &str,
        correlation_key: &str,
        instance: u64,
    ) -> Result<(), Error> {
        self.put(
            Table::StartKeys,
            Key::new().str(process_id).str(correlation_key).bytes(),
            &instance,
        )
    }

    pub fn remove_start_key(
        &mut self,
        process_id: &str,
        correlation_key: &str,
    ) -> Result<(), Error> {
        self.delete(
            Table::StartKeys,
            Key::new().str(process_id).str(correlation_key).bytes(),
        )
    }

    pub fn put_incident(&mut self, i: &Incident) -> Result<(), Error> {
        self.put(Table::Incidents, &u64key(i.key), i)
    }

    pub fn remove_incident(&mut self, key: u64) -> Result<(), Error> {
        self.delete(Table::Incidents, &u64key(key))
    }

    pub fn set_taken(&mut self, scope: u64, flow: FlowIdx, count: u32) -> Result<(), Error> {
        let key = Key::new().u64(scope).u32(flow.0);
        if count == 0 {
            self.delete(Table::Joins, key.bytes())
        } else {
            self.put(Table::Joins, key.bytes(), &count)
        }
    }

    /// A multi-instance body's counters, kept with the join counters (per-container counters,
    /// forgotten when the container ends) under flow slots no sequence flow can have.
    pub fn put_loop_counts(&mut self, body: u64, c: &LoopCounts) -> Result<(), Error> {
        for (slot, n) in LOOP_SLOTS
            .into_iter()
            .zip([c.instances, c.completed, c.terminated])
        {
            self.set_taken(body, slot, n)?;
        }
        Ok(())
    }

    /// Forgets every join counter of a scope (it ended).
    pub fn clear_taken(&mut self, scope: u64) -> Result<(), Error> {
        self.delete_prefix(Table::Joins, &u64key(scope))
    }

    pub fn put_compensation(&mut self, c: &CompensationSub) -> Result<(), Error> {
        self.put(
            Table::Compensations,
            Key::new().u64(c.scope).u64(c.key).bytes(),
            c,
        )
    }

    pub fn remove_compensation(&mut self, scope: u64, key: u64) -> Result<(), Error> {
        self.delete(Table::Compensations, Key::new().u64(scope).u64(key).bytes())
    }

    pub fn put_publication(&mut self, p: &Publication) -> Result<(), Error> {
        self.put(Table::Outbox, &u64key(p.key), p)
    }

    pub fn remove_publication(&mut self, key: u64) -> Result<(), Error> {
        self.delete(Table::Outbox, &u64key(key))
    }

    pub fn put_call(&mut self, link: &CallLink) -> Result<(), Error> {
        self.put(Table::Calls, &u64key(link.parent), &link.child)?;
        self.put(Table::CalledBy, &u64key(link.child), link)
    }

    pub fn remove_call(&mut self, link: &CallLink) -> Result<(), Error> {
        self.delete(Table::Calls, &u64key(link.parent))?;
        self.delete(Table::CalledBy, &u64key(link.child))
    }

    pub fn put_signal_subscription(&mut self, s: &SignalSubscription) -> Result<(), Error> {
        self.put(
            Table::Signals,
            Key::new().u64(s.owner).u32(s.element.0).bytes(),
            s,
        )?;
        let index = Key::new().str(&s.name).u64(s.owner).u32(s.element.0);
        self.mark(Table::SignalIndex, index.bytes())
    }

    pub fn remove_signal_subscription(
        &mut self,
        owner: u64,
        element: ElementIdx,
        name: &str,
    ) -> Result<(), Error> {
        self.delete(Table::Signals, Key::new().u64(owner).u32(element.0).bytes())?;
        let index = Key::new().str(name).u64(owner).u32(element.0);
        self.delete(Table::SignalIndex, index.bytes())
    }

    pub fn put_signal_broadcast(&mut self, b: &SignalBroadcast) -> Result<(), Error> {
        self.put(Table::SignalOutbox, &u64key(b.key), b)
    }

    pub fn remove_signal_broadcast(&mut self, key: u64) -> Result<(), Error> {
        self.delete(Table::SignalOutbox, &u64key(key))
    }
}
