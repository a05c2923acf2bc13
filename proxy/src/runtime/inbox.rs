//! Events of the bus for this sidecar's app: taken from peers into a durable inbox (committed
//! before the sender is acknowledged), then POSTed to the app's subscription path until it
//! answers 2xx, in order per partition key (the CloudEvents `partitionkey` extension, else
//! the subject; an event with neither waits for nobody). After the subscription's attempts an
//! event becomes a dead letter: kept, listed by the local API, counted.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use redb::{
    ReadTransaction, ReadableTable, ReadableTableMetadata, TableDefinition, WriteTransaction,
};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use super::{Error, Handle, Work, spans};
use crate::config::Subscription;
use crate::telemetry::context::SpanContext;
use crate::telemetry::span::{Kind, Span};

/// Sequence → [`InboxEntry`] (JSON).
const INBOX: TableDefinition<'static, u64, &'static [u8]> = TableDefinition::new("rt_inbox");
/// Sequence → [`DeadLetter`] (JSON).
const DEAD: TableDefinition<'static, u64, &'static [u8]> = TableDefinition::new("rt_dead_letters");
const SEQ: TableDefinition<'static, &'static str, u64> = TableDefinition::new("rt_inbox_seq");
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Events POSTed to the app at the same time at most.
const CONCURRENT: usize = 32;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InboxEntry {
    pub topic: String,
    pub event: serde_json::Value,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub topic: String,
    pub event: serde_json::Value,
    pub attempts: u32,
    pub last_error: String,
    pub at_ms: i64,
}

fn io(e: impl std::fmt::Display) -> Error {
    Error::Storage(e.to_string())
}

fn corrupt(e: impl std::fmt::Display) -> Error {
    Error::Storage(format!("corrupt inbox entry: {e}"))
}

pub(crate) fn create(txn: &WriteTransaction) -> Result<(), Error> {
    txn.open_table(INBOX).map_err(io)?;
    txn.open_table(DEAD).map_err(io)?;
    txn.open_table(SEQ).map_err(io)?;
    Ok(())
}

fn next_seq(txn: &WriteTransaction) -> Result<u64, Error> {
    let mut seq = txn.open_table(SEQ).map_err(io)?;
    let next = seq.get("next").map_err(io)?.map_or(1, |v| v.value());
    seq.insert("next", next + 1).map_err(io)?;
    Ok(next)
}

pub(crate) fn append(txn: &WriteTransaction, entries: &[InboxEntry]) -> Result<(), Error> {
    if entries.is_empty() {
        return Ok(());
    }
    let mut table = txn.open_table(INBOX).map_err(io)?;
    for e in entries {
        let seq = next_seq(txn)?;
        let bytes = serde_json::to_vec(e).map_err(io)?;
        table.insert(seq, bytes.as_slice()).map_err(io)?;
    }
    Ok(())
}

pub(crate) fn done(txn: &WriteTransaction, seqs: &[u64], dead: &[DeadLetter]) -> Result<(), Error> {
    if seqs.is_empty() && dead.is_empty() {
        return Ok(());
    }
    let mut table = txn.open_table(INBOX).map_err(io)?;
    for seq in seqs {
        table.remove(*seq).map_err(io)?;
    }
    let mut dead_table = txn.open_table(DEAD).map_err(io)?;
    for d in dead {
        let seq = next_seq(txn)?;
        let bytes = serde_json::to_vec(d).map_err(io)?;
        dead_table.insert(seq, bytes.as_slice()).map_err(io)?;
    }
    Ok(())
}

fn pending(txn: &ReadTransaction, limit: usize) -> Result<Vec<(u64, InboxEntry)>, Error> {
    let table = txn.open_table(INBOX).map_err(io)?;
    let mut out = Vec::new();
    for entry in table.iter().map_err(io)?.take(limit) {
        let (k, v) = entry.map_err(io)?;
        out.push((
            k.value(),
            serde_json::from_slice(v.value()).map_err(corrupt)?,
        ));
    }
    Ok(out)
}

pub fn dead_letters(txn: &ReadTransaction) -> Result<Vec<(u64, DeadLetter)>, Error> {
    let table = txn.open_table(DEAD).map_err(io)?;
    let mut out = Vec::new();
    for entry in table.iter().map_err(io)? {
        let (k, v) = entry.map_err(io)?;
        out.push((
            k.value(),
            serde_json::from_slice(v.value()).map_err(corrupt)?,
        ));
    }
    Ok(out)
}

pub fn depth(txn: &ReadTransaction) -> Result<u64, Error> {
    txn.open_table(INBOX).map_err(io)?.len().map_err(io)
}

/// The partition an event keeps its order in.
pub fn partition(event: &serde_json::Value) -> Option<String> {
    ["partitionkey", "subject"]
        .iter()
        .find_map(|k| event.get(*k).and_then(|v| v.as_str()))
        .map(str::to_owned)
}

/// What happened to one delivery attempt.
enum Attempt {
    Delivered,
    Failed(String),
}

/// POSTs the inbox to the app until the task is dropped.
pub(crate) async fn deliver(
    handle: Handle,
    app: SocketAddr,
    subscriptions: Vec<Subscription>,
    ready: Arc<Notify>,
) {
    let client = super::http_client();
    let by_topic: HashMap<String, Subscription> = subscriptions
        .into_iter()
        .map(|s| (s.topic.clone(), s))
        .collect();
    // In memory: a restart gives every waiting event its full number of attempts again.
    let mut attempts: HashMap<u64, (u32, Instant)> = HashMap::new();
    loop {
        let entries = match handle.snapshots().read_with(|_, txn| pending(txn, 4096)) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!("cannot read the inbox: {e}");
                crate::timer::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        attempts.retain(|seq, _| entries.iter().any(|(s, _)| s == seq));
        let now = Instant::now();
        // The head of each partition (and every event without one), when its backoff ended.
        let mut blocked: HashSet<String> = HashSet::new();
        let mut due = Vec::new();
        let mut next_try: Option<Instant> = None;
        for (seq, entry) in &entries {
            let part = partition(&entry.event);
            if let Some(p) = &part
                && !blocked.insert(p.clone())
            {
                continue;
            }
            match attempts.get(seq) {
                Some((_, at)) if *at > now => {
                    next_try = Some(next_try.map_or(*at, |t| t.min(*at)));
                }
                _ => due.push((*seq, entry.clone())),
            }
            if due.len() == CONCURRENT {
                break;
            }
        }
        if due.is_empty() {
            let wait = next_try.map_or(Duration::from_secs(30), |t| {
                t.saturating_duration_since(Instant::now())
            });
            let _ = crate::timer::timeout(wait, ready.notified()).await;
            continue;
        }
        let calls = due.iter().map(|(seq, entry)| {
            let sub = by_topic.get(&entry.topic);
            let (client, handle) = (&client, &handle);
            async move {
                let mut span = consumer(&entry.topic, &entry.event);
                let outcome = match sub {
                    Some(s) => post(client, app, s, &entry.event, &span.context).await,
                    None => Attempt::Failed(format!(
                        "this sidecar has no [[subscriptions]] entry for topic '{}'",
                        entry.topic
                    )),
                };
                span.error = match &outcome {
                    Attempt::Delivered => {
                        // A reply carrying this business key but no traceparent joins the trace.
                        if let Some(key) = ["subject", "traceid"]
                            .iter()
                            .find_map(|k| entry.event.get(*k).and_then(|v| v.as_str()))
                            && let Some(stitch) = handle.stitch()
                        {
                            stitch.remember(key, span.context);
                        }
                        None
                    }
                    Attempt::Failed(why) => Some(why.clone()),
                };
                span.end = std::time::SystemTime::now();
                handle.export(span);
                (*seq, outcome)
            }
        });
        let outcomes = futures_util::future::join_all(calls).await;
        let mut work = Work::new(Vec::new());
        for ((seq, outcome), (_, entry)) in outcomes.into_iter().zip(&due) {
            match outcome {
                Attempt::Delivered => {
                    attempts.remove(&seq);
                    work.writes.inbox_done.push(seq);
                }
                Attempt::Failed(why) => {
                    let sub = by_topic.get(&entry.topic);
                    let limit = sub.map_or(1, |s| s.attempts);
                    let base = sub.map_or(Duration::from_secs(1), |s| s.backoff);
                    let tried = attempts.get(&seq).map_or(0, |(n, _)| *n) + 1;
                    if tried >= limit {
                        tracing::warn!(topic = %entry.topic, "event became a dead letter after {tried} attempts: {why}");
                        handle.inner.metrics.dead_letter(&entry.topic);
                        attempts.remove(&seq);
                        work.writes.inbox_done.push(seq);
                        work.writes.dead.push(DeadLetter {
                            topic: entry.topic.clone(),
                            event: entry.event.clone(),
                            attempts: tried,
                            last_error: why,
                            at_ms: jiff::Timestamp::now().as_millisecond(),
                        });
                    } else {
                        let wait = base
                            .saturating_mul(1 << (tried - 1).min(16))
                            .min(MAX_BACKOFF);
                        tracing::debug!(topic = %entry.topic, "event delivery failed, next try in {wait:?}: {why}");
                        attempts.insert(seq, (tried, Instant::now() + wait));
                    }
                }
            }
        }
        if !work.writes.is_empty()
            && let Err(e) = handle.run(work).await
        {
            tracing::warn!("cannot record event deliveries: {e}");
            crate::timer::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// The CONSUMER span of one delivery attempt: a child of the event's `traceparent`.
fn consumer(topic: &str, event: &serde_json::Value) -> Span {
    let attr = |k: &str| event.get(k).and_then(|v| v.as_str()).unwrap_or_default();
    let parent = SpanContext::parse(attr("traceparent").as_bytes());
    spans::event(
        Kind::Consumer,
        topic,
        parent,
        attr("type"),
        attr("id"),
        std::time::SystemTime::now(),
        None,
    )
}

async fn post(
    client: &super::HttpClient,
    app: SocketAddr,
    sub: &Subscription,
    event: &serde_json::Value,
    span: &SpanContext,
) -> Attempt {
    // The app sees the delivery's span as the parent of whatever it does next.
    let mut event = event.clone();
    if let serde_json::Value::Object(o) = &mut event {
        o.insert(
            "traceparent".into(),
            serde_json::Value::String(span.traceparent()),
        );
    }
    let request = Request::post(format!("http://{app}{}", sub.path))
        .header("content-type", "application/cloudevents+json")
        .header("traceparent", span.traceparent());
    let request = match request.body(Full::new(Bytes::from(event.to_string()))) {
        Ok(r) => r,
        Err(e) => return Attempt::Failed(format!("cannot build the request: {e}")),
    };
    match crate::timer::timeout(Duration::from_secs(30), client.request(request)).await {
        Ok(Ok(r)) if r.status().is_success() => Attempt::Delivered,
        Ok(Ok(r)) => Attempt::Failed(format!("the app answered {} with {}", sub.path, r.status())),
        Ok(Err(e)) => Attempt::Failed(format!("the app at {app} cannot be reached: {e}")),
        Err(_) => Attempt::Failed(format!("the app did not answer {} within 30 s", sub.path)),
    }
}

/// Dead letters as the local API shows them.
pub fn dead_letters_json(rows: &[(u64, DeadLetter)]) -> serde_json::Value {
    let items: Vec<serde_json::Value> = rows
        .iter()
        .map(|(seq, d)| {
            serde_json::json!({
                "id": seq.to_string(),
                "topic": d.topic,
                "event": d.event,
                "attempts": d.attempts,
                "last_error": d.last_error,
                "at": jiff::Timestamp::from_millisecond(d.at_ms).map(|t| t.to_string()).unwrap_or_default(),
            })
        })
        .collect();
    serde_json::json!({ "items": items })
}
