//! What this sidecar took from its peers, by id, for at least a day: a batch delivered again
//! (its acknowledgement was lost) is acknowledged without being taken twice. Messages are
//! keyed by their message id, events by source and id.

use std::collections::BTreeSet;

use redb::{ReadTransaction, ReadableTable, TableDefinition, WriteTransaction};

use super::Error;

/// Id → kept until (ms since the epoch).
const RECEIVED: TableDefinition<'static, &'static str, i64> = TableDefinition::new("rt_received");
/// (kept until, id): to forget the oldest first.
const BY_TIME: TableDefinition<'static, (i64, &'static str), ()> =
    TableDefinition::new("rt_received_by_time");
/// How long an id is remembered at least.
pub(crate) const KEEP_MS: i64 = 24 * 3600 * 1000;
/// Expired ids forgotten per batch at most (the rest in later ones).
const FORGET: usize = 256;

fn io(e: impl std::fmt::Display) -> Error {
    Error::Storage(e.to_string())
}

pub(crate) fn create(txn: &WriteTransaction) -> Result<(), Error> {
    txn.open_table(RECEIVED).map_err(io)?;
    txn.open_table(BY_TIME).map_err(io)?;
    Ok(())
}

/// Which of `ids` were taken before.
pub(crate) fn seen<'a>(
    txn: &ReadTransaction,
    ids: impl IntoIterator<Item = &'a str>,
) -> Result<BTreeSet<String>, Error> {
    let table = txn.open_table(RECEIVED).map_err(io)?;
    let mut out = BTreeSet::new();
    for id in ids {
        if table.get(id).map_err(io)?.is_some() {
            out.insert(id.to_owned());
        }
    }
    Ok(out)
}

/// Remembers `ids` until their times, and forgets some that expired before `now`.
pub(crate) fn record(txn: &WriteTransaction, ids: &[(String, i64)], now: i64) -> Result<(), Error> {
    if ids.is_empty() {
        return Ok(());
    }
    let mut table = txn.open_table(RECEIVED).map_err(io)?;
    let mut by_time = txn.open_table(BY_TIME).map_err(io)?;
    for (id, until) in ids {
        table.insert(id.as_str(), *until).map_err(io)?;
        by_time.insert((*until, id.as_str()), ()).map_err(io)?;
    }
    let expired: Vec<(i64, String)> = by_time
        .range((i64::MIN, "")..(now, ""))
        .map_err(io)?
        .take(FORGET)
        .filter_map(|e| e.ok().map(|(k, _)| (k.value().0, k.value().1.to_owned())))
        .collect();
    for (until, id) in expired {
        by_time.remove((until, id.as_str())).map_err(io)?;
        if table.get(id.as_str()).map_err(io)?.map(|v| v.value()) == Some(until) {
            table.remove(id.as_str()).map_err(io)?;
        }
    }
    Ok(())
}
