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
    /// Woken when `dirty` gets its first entry, so an idle sidecar's writer sleeps.
    wrote: tokio::sync::Notify,
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
                wrote: tokio::sync::Notify::new(),
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
            if dirty.is_empty() {
                self.inner.wrote.notify_one();
            }
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

    /// Flushes what was remembered at most `every` after it was, and prunes once an hour,
    /// until the task is dropped; a final flush happens on shutdown. With nothing remembered it
    /// sleeps: an idle sidecar wakes for nothing but the hourly prune.
    pub async fn write_behind(self, every: Duration) {
        const PRUNE: Duration = Duration::from_secs(3600);
        let mut prune_at = tokio::time::Instant::now() + PRUNE;
        loop {
            let prune = tokio::select! {
                () = self.inner.wrote.notified() => {
                    // Gathers what else comes within `every` into the same transaction.
                    crate::timer::sleep(every).await;
                    false
                }
                () = crate::timer::sleep_until(prune_at) => true,
            };
            if prune {
                prune_at = tokio::time::Instant::now() + PRUNE;
            }
            let me = self.clone();
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

    #[tokio::test]
    async fn the_writer_stores_what_is_remembered_after_an_idle_spell() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let stitch = Stitch::new(cache.clone(), Duration::from_secs(3600));
        let writer = tokio::spawn(stitch.clone().write_behind(Duration::from_millis(5)));
        for key in ["order-1", "order-2"] {
            stitch.remember(key, SpanContext::root());
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while cache.load_trace(key).unwrap().is_none() {
                assert!(
                    std::time::Instant::now() < deadline,
                    "{key} was never written"
                );
                crate::timer::sleep(Duration::from_millis(1)).await;
            }
        }
        writer.abort();
    }
}
