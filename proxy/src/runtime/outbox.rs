//! The durable outbox: messages and signals for processes of other services, written in the same
//! transaction as what caused them and removed only once the receiving sidecar acknowledged
//! them (it acknowledges after its own commit). At least once, in order per service.

use std::collections::BTreeMap;

use redb::{
    ReadTransaction, ReadableTable, ReadableTableMetadata, TableDefinition, WriteTransaction,
};
use serde::{Deserialize, Serialize};

use super::Error;

/// (service, sequence) → [`Delivery`] (JSON).
const OUTBOX: TableDefinition<'static, (&'static str, u64), &'static [u8]> =
    TableDefinition::new("rt_outbox");
/// The next sequence number.
const SEQ: TableDefinition<'static, &'static str, u64> = TableDefinition::new("rt_outbox_seq");

/// A message on its way to another service's sidecar.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// Receivers deduplicate by it.
    pub id: String,
    pub name: String,
    pub correlation_key: String,
    #[serde(default)]
    pub variables: serde_json::Map<String, serde_json::Value>,
    pub ttl_ms: i64,
    /// The trace the message belongs to (`traceparent`), so the receiver continues it.
    #[serde(default)]
    pub traceparent: Option<String>,
}

/// A signal on its way to a service whose processes may wait for it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SignalDelivery {
    /// Receivers deduplicate by it.
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub variables: serde_json::Map<String, serde_json::Value>,
}

/// An event of the bus on its way to a subscribed service.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventDelivery {
    pub topic: String,
    /// The CloudEvent, structured JSON.
    pub event: serde_json::Value,
}

/// What the outbox carries.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Envelope {
    Message(Delivery),
    Event(EventDelivery),
    Signal(SignalDelivery),
}

/// An envelope and the service it goes to.
#[derive(Clone, Debug)]
pub struct Outgoing {
    pub service: String,
    pub envelope: Envelope,
}

fn io(e: impl std::fmt::Display) -> Error {
    Error::Storage(e.to_string())
}

pub(crate) fn create(txn: &WriteTransaction) -> Result<(), Error> {
    txn.open_table(OUTBOX).map_err(io)?;
    txn.open_table(SEQ).map_err(io)?;
    Ok(())
}

pub(crate) fn append(txn: &WriteTransaction, items: &[Outgoing]) -> Result<(), Error> {
    if items.is_empty() {
        return Ok(());
    }
    let mut table = txn.open_table(OUTBOX).map_err(io)?;
    let mut seq_table = txn.open_table(SEQ).map_err(io)?;
    let mut seq = seq_table.get("next").map_err(io)?.map_or(1, |v| v.value());
    for item in items {
        let bytes = serde_json::to_vec(&item.envelope).map_err(io)?;
        table
            .insert((item.service.as_str(), seq), bytes.as_slice())
            .map_err(io)?;
        seq += 1;
    }
    seq_table.insert("next", seq).map_err(io)?;
    Ok(())
}

pub(crate) fn remove(txn: &WriteTransaction, delivered: &[(String, u64)]) -> Result<(), Error> {
    if delivered.is_empty() {
        return Ok(());
    }
    let mut table = txn.open_table(OUTBOX).map_err(io)?;
    for (service, seq) in delivered {
        table.remove((service.as_str(), *seq)).map_err(io)?;
    }
    Ok(())
}

/// The oldest deliveries of each service, at most `per_service` each.
pub(crate) fn pending(
    txn: &ReadTransaction,
    per_service: usize,
) -> Result<BTreeMap<String, Vec<(u64, Envelope)>>, Error> {
    let table = txn.open_table(OUTBOX).map_err(io)?;
    let mut out: BTreeMap<String, Vec<(u64, Envelope)>> = BTreeMap::new();
    // From one service's first entries straight to the next service: a long backlog for a
    // peer that is down costs no more than `per_service` reads.
    let mut from = String::new();
    loop {
        let mut next = None;
        for entry in table.range((from.as_str(), 0)..).map_err(io)? {
            let (k, v) = entry.map_err(io)?;
            let (service, seq) = k.value();
            let list = out.entry(service.to_owned()).or_default();
            if list.len() == per_service {
                next = Some(format!("{service}\0"));
                break;
            }
            let d: Envelope = serde_json::from_slice(v.value())
                .map_err(|e| Error::Storage(format!("corrupt outbox entry: {e}")))?;
            list.push((seq, d));
        }
        match next {
            Some(n) => from = n,
            None => return Ok(out),
        }
    }
}

/// Deliveries waiting, all services together.
pub fn depth(txn: &ReadTransaction) -> Result<u64, Error> {
    txn.open_table(OUTBOX).map_err(io)?.len().map_err(io)
}
