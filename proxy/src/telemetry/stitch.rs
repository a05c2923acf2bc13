//! Stitching: the trace context last seen for each business key, so that a request that comes
//! without trace headers but carries an order id joins that order's trace. Kept in memory and
//! written behind to redb (one transaction per flush), so a reply days later still joins.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use super::context::SpanContext;
use crate::cache::Cache;

/// Keys held in memory at most; older ones are read back from redb when needed.
const MEMORY: usize = 100_000;

#[derive(Clone)]
pub struct Stitch {
    inner: Arc<Inner>,
}

struct Inner {
    memory: Mutex<HashMap<String, SpanContext>>,
    dirty: Mutex<Vec<(String, Vec<u8>)>>,
    cache: Cache,
    ttl: Duration,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Stitch {
    /// Forgets contexts older than `ttl` (at start and on every flush of a new hour).
    pub fn new(cache: Cache, ttl: Duration) -> Stitch {
        let stitch = Stitch {
            inner: Arc::new(Inner {
                memory: Mutex::new(HashMap::new()),
                dirty: Mutex::new(Vec::new()),
                cache,
                ttl,
            }),
        };
        stitch.prune();
        stitch
    }

    fn prune(&self) {
        let oldest = unix_now().saturating_sub(self.inner.ttl.as_secs());
        let stale = |v: &[u8]| {
            v.get(25..33)
                .and_then(|b| b.try_into().ok())
                .is_none_or(|b: [u8; 8]| u64::from_be_bytes(b) < oldest)
        };
        match self.inner.cache.prune_traces(stale) {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!("forgot the trace context of {n} business keys (older than the ttl)")
            }
            Err(e) => tracing::warn!("cannot prune stored trace contexts: {e}"),
        }
    }

    /// The last context seen with `key`.
    pub fn lookup(&self, key: &str) -> Option<SpanContext> {
        if let Ok(memory) = self.inner.memory.lock()
            && let Some(c) = memory.get(key)
        {
            return Some(*c);
        }
        let stored = self.inner.cache.load_trace(key).ok().flatten()?;
        let at = u64::from_be_bytes(stored.get(25..33)?.try_into().ok()?);
        if at < unix_now().saturating_sub(self.inner.ttl.as_secs()) {
            return None;
        }
        let context = SpanContext::from_bytes(&stored)?;
        if let Ok(mut memory) = self.inner.memory.lock() {
            memory.insert(key.to_owned(), context);
        }
        Some(context)
    }

    pub fn remember(&self, key: &str, context: SpanContext) {
        if let Ok(mut memory) = self.inner.memory.lock() {
            if memory.len() >= MEMORY {
                memory.clear(); // everything is in redb (or about to be)
            }
            memory.insert(key.to_owned(), context);
        }
        let mut value = context.to_bytes().to_vec();
        value.extend_from_slice(&unix_now().to_be_bytes());
        if let Ok(mut dirty) = self.inner.dirty.lock() {
            dirty.push((key.to_owned(), value));
        }
    }

    /// Writes what was remembered since the last flush.
    pub fn flush(&self) {
        let entries = match self.inner.dirty.lock() {
            Ok(mut d) => std::mem::take(&mut *d),
            Err(_) => return,
        };
        if entries.is_empty() {
            return;
        }
        if let Err(e) = self.inner.cache.store_traces(&entries) {
            tracing::warn!("cannot store {} trace contexts: {e}", entries.len());
        }
    }

    /// Flushes every `every` until the task is dropped; a final flush happens on shutdown.
    pub async fn write_behind(self, every: Duration) {
        let mut tick = tokio::time::interval(every);
        let mut pruned = std::time::Instant::now();
        loop {
            tick.tick().await;
            let me = self.clone();
            let prune = pruned.elapsed() > Duration::from_secs(3600);
            if prune {
                pruned = std::time::Instant::now();
            }
            let _ = tokio::task::spawn_blocking(move || {
                me.flush();
                if prune {
                    me.prune();
                }
            })
            .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_context_survives_a_restart_and_expires() {
        let dir = tempfile::tempdir().unwrap();
        let context = SpanContext::root();
        {
            let stitch = Stitch::new(Cache::open(dir.path()).unwrap(), Duration::from_secs(3600));
            stitch.remember("order-7", context);
            assert_eq!(stitch.lookup("order-7"), Some(context));
            stitch.flush();
        }
        let stitch = Stitch::new(Cache::open(dir.path()).unwrap(), Duration::from_secs(3600));
        assert_eq!(stitch.lookup("order-7"), Some(context));
        assert_eq!(stitch.lookup("order-8"), None);
    }
}
