//! What the proxy learns from the records it carries. Produced records without a
//! `traceparent` get one (the context of their PRODUCER span, which continues the app's trace
//! or the one last seen with the record's business key); fetched records get a CONSUMER span
//! under the context they carry. Records bound by a deployed model (`flowmesh:event` on the
//! topic) become messages for the processes that wait for them, exactly as bus events do.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ConsumerGroupHeartbeatRequest, JoinGroupRequest, OffsetCommitRequest, RequestHeader,
};
use kafka_protocol::protocol::Decodable;

use crate::metrics::Metrics;
use crate::runtime;
use crate::runtime::bus::CloudEvent;
use crate::runtime::outbox::Delivery;
use crate::telemetry::Telemetry;
use crate::telemetry::context::{SpanContext, hex};
use crate::telemetry::span::{Attr, Kind, Span};

use super::batch::{self, Batch, Record};
use super::frame::RequestHead;
use super::{fetch, produce};

const TRACEPARENT: &str = "traceparent";
/// Client ids remembered with their consumer group at most (then forgotten and relearned).
const MAX_GROUPS: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read a Produce v{version} request: {message}")]
    Produce { version: i16, message: String },
    #[error("a produced record batch on {topic}: {source}")]
    Batch { topic: String, source: batch::Error },
}

/// How records are treated.
#[derive(Clone, Debug)]
pub struct Options {
    /// Add `traceparent` to produced records that have none.
    pub inject: bool,
    /// A batch that injection would make larger than this is left alone (the broker's
    /// `message.max.bytes`).
    pub max_batch_bytes: usize,
    /// Fetched records bound by a model become messages too (for topics whose producers
    /// have no sidecar); by default only produced records do, so each record counts once.
    pub observe_fetched: bool,
}

/// A cheap handle shared by every Kafka connection of the sidecar.
#[derive(Clone)]
pub struct Tap {
    inner: Arc<Inner>,
}

struct Inner {
    options: Options,
    telemetry: Telemetry,
    runtime: Option<runtime::Handle>,
    metrics: Metrics,
    groups: Groups,
}

/// Client id → consumer group, shared with the proxy's handle (which must not keep the tap,
/// and with it the sidecar's files, alive).
#[derive(Clone, Default)]
pub struct Groups(Arc<Mutex<HashMap<String, String>>>);

impl Groups {
    /// The consumer group last seen for `client`.
    pub fn of(&self, client: &str) -> Option<String> {
        self.0.lock().ok()?.get(client).cloned()
    }

    fn learn(&self, client: &str, group: String) {
        let Ok(mut groups) = self.0.lock() else {
            return;
        };
        if groups.get(client) != Some(&group) {
            if groups.len() >= MAX_GROUPS {
                groups.clear();
            }
            groups.insert(client.to_owned(), group);
        }
    }
}

/// A Produce request after the tap: the frame to send instead (if records changed), in
/// pieces to send in order, whether the broker answers (`acks` ≠ 0) and the PRODUCER spans,
/// which end with the answer.
pub struct Produced {
    pub frame: Option<Vec<Bytes>>,
    pub acks: i16,
    pub spans: Vec<Span>,
}

/// A record read as a CloudEvent: structured when its value is a JSON object with a `type`
/// (CloudEvents structured mode, or the common `{type, id, data}` envelope), else binary
/// mode: attributes from `ce_*` headers (or a `type` header), the value as `data`.
fn event_view(
    topic: &str,
    partition: i32,
    record: &Record<'_>,
    fallback_id: String,
) -> serde_json::Value {
    let value: Option<serde_json::Value> =
        record.value.and_then(|v| serde_json::from_slice(v).ok());
    if let Some(serde_json::Value::Object(o)) = &value
        && o.get("type").is_some_and(|t| t.is_string())
    {
        let mut o = o.clone();
        o.entry("id")
            .or_insert(serde_json::Value::String(fallback_id));
        return serde_json::Value::Object(o);
    }
    let text = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
    let mut event = serde_json::Map::new();
    let mut headers = serde_json::Map::new();
    for (k, v) in &record.headers {
        let name = text(k);
        let value = v.map(text).unwrap_or_default();
        if let Some(attr) = name.strip_prefix("ce_") {
            event.insert(attr.to_owned(), value.clone().into());
        }
        headers.entry(name).or_insert(value.into());
    }
    if !event.contains_key("type")
        && let Some(t) = headers.get("type").cloned()
    {
        event.insert("type".into(), t);
    }
    event.entry("id").or_insert(fallback_id.into());
    event.insert(
        "data".into(),
        value.unwrap_or_else(|| record.value.map(text).unwrap_or_default().into()),
    );
    event.insert(
        "kafka".into(),
        serde_json::json!({
            "topic": topic,
            "partition": partition,
            "key": record.key.map(text),
            "headers": headers,
        }),
    );
    serde_json::Value::Object(event)
}

/// Where a record sits, for its span.
struct Place<'a> {
    topic: &'a str,
    partition: i32,
    offset: Option<i64>,
    client: Option<&'a str>,
    group: Option<&'a str>,
}

fn record_span(
    kind: Kind,
    place: &Place<'_>,
    record: &Record<'_>,
    (parent, context): (Option<SpanContext>, SpanContext),
    business_key: Option<&str>,
    start: SystemTime,
) -> Span {
    let operation = if kind == Kind::Producer {
        "send"
    } else {
        "process"
    };
    let mut attributes: Vec<(&'static str, Attr)> = vec![
        ("messaging.system", "kafka".into()),
        ("messaging.operation.type", operation.into()),
        ("messaging.operation.name", operation.into()),
        ("messaging.destination.name", place.topic.into()),
        (
            "messaging.destination.partition.id",
            place.partition.to_string().into(),
        ),
        (
            "messaging.message.body.size",
            (record.value.map_or(0, <[u8]>::len) as i64).into(),
        ),
    ];
    if let Some(k) = record.key.and_then(|k| std::str::from_utf8(k).ok()) {
        attributes.push(("messaging.kafka.message.key", k.into()));
    }
    if let Some(o) = place.offset {
        attributes.push(("messaging.kafka.offset", o.into()));
    }
    if let Some(c) = place.client {
        attributes.push(("messaging.client.id", c.into()));
    }
    if let Some(g) = place.group {
        attributes.push(("messaging.consumer.group.name", g.into()));
    }
    if let Some(b) = business_key {
        attributes.push(("flowmesh.business_key", b.into()));
    }
    Span {
        context,
        parent: parent.map(|p| p.span_id),
        trace_state: None,
        name: format!("{operation} {}", place.topic),
        kind,
        start,
        end: SystemTime::now(),
        attributes,
        events: Vec::new(),
        error: None,
    }
}

fn decode_request<T: Decodable>(
    frame: &Bytes,
    api: ApiKey,
    version: i16,
) -> Result<(RequestHeader, T), String> {
    let mut buf = frame.clone();
    let header = RequestHeader::decode(&mut buf, api.request_header_version(version))
        .map_err(|e| e.to_string())?;
    let body = T::decode(&mut buf, version).map_err(|e| e.to_string())?;
    Ok((header, body))
}

/// Produce v0–v2 start with `acks`, right after the header (v1: no tagged fields).
fn legacy_acks(frame: &[u8], head: &RequestHead) -> i16 {
    frame
        .get(head.after_client_id..head.after_client_id + 2)
        .map_or(1, |b| i16::from_be_bytes([b[0], b[1]]))
}

impl Tap {
    pub fn new(
        options: Options,
        telemetry: Telemetry,
        runtime: Option<runtime::Handle>,
        metrics: Metrics,
    ) -> Tap {
        Tap {
            inner: Arc::new(Inner {
                options,
                telemetry,
                runtime,
                metrics,
                groups: Groups::default(),
            }),
        }
    }

    fn binds(&self, topic: &str) -> bool {
        self.inner
            .runtime
            .as_ref()
            .is_some_and(|r| r.binds_topic(topic))
    }

    /// The messages `record` is by the deployed bindings, and its business keys.
    fn observe(
        &self,
        topic: &str,
        partition: i32,
        record: &Record<'_>,
        id: String,
    ) -> (Vec<Delivery>, Vec<String>) {
        let Some(runtime) = &self.inner.runtime else {
            return (Vec::new(), Vec::new());
        };
        let event = CloudEvent::seen(event_view(topic, partition, record, id));
        let observed = runtime.observe_event(topic, &event);
        let mut keys: Vec<String> = observed.iter().map(|d| d.correlation_key.clone()).collect();
        keys.extend(event.business_key().map(str::to_owned));
        (observed, keys)
    }

    /// Injects and observes the records of a Produce request.
    pub fn produce(&self, frame: &Bytes, head: &RequestHead) -> Result<Produced, Error> {
        if head.version < 3 {
            // Message sets v0/v1 carry no headers: nothing to inject, passed as they are.
            return Ok(Produced {
                frame: None,
                acks: legacy_acks(frame, head),
                spans: Vec::new(),
            });
        }
        let request = produce::read(frame, head).map_err(|message| Error::Produce {
            version: head.version,
            message,
        })?;
        let mut spans = Vec::new();
        let mut deliveries = Vec::new();
        let mut replaced = Vec::new();
        for (i, p) in request.partitions.iter().enumerate() {
            let Some(at) = &p.records else { continue };
            let place = Place {
                topic: &p.topic,
                partition: p.index,
                offset: None,
                client: head.client_id.as_deref(),
                group: None,
            };
            let records = frame.slice(at.clone());
            if let Some(new) =
                self.produce_records(&place, &records, &mut spans, &mut deliveries)?
            {
                replaced.push((i, new));
            }
        }
        if let Some(r) = &self.inner.runtime {
            r.deliver_observed(deliveries);
        }
        Ok(Produced {
            frame: (!replaced.is_empty()).then(|| produce::rebuild(frame, &request, &replaced)),
            acks: request.acks,
            spans,
        })
    }

    /// The partition's records with `traceparent` spliced in where missing (`None`: unchanged).
    fn produce_records(
        &self,
        place: &Place<'_>,
        records: &Bytes,
        spans: &mut Vec<Span>,
        deliveries: &mut Vec<Delivery>,
    ) -> Result<Option<Bytes>, Error> {
        let fail = |source| Error::Batch {
            topic: place.topic.to_owned(),
            source,
        };
        let batches = batch::batches(records).map_err(fail)?;
        let binds = self.binds(place.topic);
        let exports = self.inner.telemetry.exports();
        let stitch = self.inner.telemetry.stitch();
        let started = SystemTime::now();
        let mut out: Vec<Bytes> = Vec::with_capacity(batches.len());
        let mut changed = false;
        for b in &batches {
            if b.magic() < 2 {
                out.push(b.bytes().clone());
                continue;
            }
            let section = b.records_bytes().map_err(fail)?;
            let recs = batch::records(&section, b.records_count()).map_err(fail)?;
            self.inner
                .metrics
                .kafka_records("produce", place.topic, recs.len() as u64);
            let mut add = Vec::with_capacity(recs.len());
            for r in &recs {
                let from_app = r.header(TRACEPARENT).and_then(SpanContext::parse);
                let (mut observed, keys) = if binds {
                    self.observe(
                        place.topic,
                        place.partition,
                        r,
                        produced_id(place.topic, b, r),
                    )
                } else {
                    (Vec::new(), Vec::new())
                };
                let parent = from_app.or_else(|| keys.iter().find_map(|k| stitch.lookup(k)));
                let context = parent.map_or_else(SpanContext::root, |p| p.child());
                for k in &keys {
                    stitch.remember(k, context);
                }
                if exports {
                    spans.push(record_span(
                        Kind::Producer,
                        place,
                        r,
                        (parent, context),
                        keys.first().map(String::as_str),
                        started,
                    ));
                }
                for d in &mut observed {
                    d.traceparent = Some(context.traceparent());
                }
                deliveries.append(&mut observed);
                add.push(
                    (from_app.is_none() && self.inner.options.inject)
                        .then(|| context.traceparent_bytes()),
                );
            }
            let injected = add.iter().flatten().count();
            if injected == 0 || !b.crc_ok() {
                out.push(b.bytes().clone());
                continue;
            }
            let sealed = b
                .with_header(&section, &recs, TRACEPARENT, &add)
                .map_err(fail)?;
            let limit = self.inner.options.max_batch_bytes;
            if sealed.len() > limit && b.len() <= limit {
                tracing::debug!(
                    topic = place.topic,
                    "a batch of {} bytes would be {} with trace context, over {limit}: observed only",
                    b.len(),
                    sealed.len()
                );
                out.push(b.bytes().clone());
                continue;
            }
            self.inner.metrics.kafka_injected(injected as u64);
            out.push(sealed);
            changed = true;
        }
        if !changed {
            return Ok(None);
        }
        if out.len() == 1 {
            return Ok(out.pop());
        }
        let mut joined = BytesMut::with_capacity(out.iter().map(Bytes::len).sum());
        for b in out {
            joined.extend_from_slice(&b);
        }
        Ok(Some(joined.freeze()))
    }

    /// Ends the PRODUCER spans of a request once the broker answered (or, for `acks=0`, once
    /// it was sent).
    pub fn finish(&self, spans: Vec<Span>) {
        let now = SystemTime::now();
        for mut s in spans {
            s.end = now;
            self.inner.telemetry.export(s);
        }
    }

    /// Observes the records of a Fetch response (the response itself passes untouched).
    pub fn fetched(&self, frame: &Bytes, version: i16, client: Option<&str>) {
        if version < 4 {
            return;
        }
        let partitions = match fetch::partitions(frame, version) {
            Ok(p) => p,
            Err(e) => {
                tracing::debug!("cannot read a Fetch v{version} response to observe it: {e}");
                return;
            }
        };
        let group = client.and_then(|c| self.inner.groups.of(c));
        let spans = self.inner.telemetry.exports();
        for p in &partitions {
            let Some(records) = &p.records else { continue };
            let batches = match batch::batches(records) {
                Ok(b) => b,
                Err(e) => {
                    tracing::debug!(topic = p.topic, "fetched records not observed: {e}");
                    continue;
                }
            };
            let stitching = self.binds(&p.topic);
            let observe = self.inner.options.observe_fetched && stitching;
            let place = Place {
                topic: &p.topic,
                partition: p.index,
                offset: None,
                client,
                group: group.as_deref(),
            };
            self.fetched_partition(&place, &batches, &p.aborted, spans, stitching, observe);
        }
    }

    fn fetched_partition(
        &self,
        place: &Place<'_>,
        batches: &[Batch],
        aborted: &[(i64, i64)],
        spans: bool,
        stitching: bool,
        observe: bool,
    ) {
        let stitch = self.inner.telemetry.stitch();
        let mut deliveries = Vec::new();
        let started = SystemTime::now();
        for b in committed(batches, aborted) {
            self.inner
                .metrics
                .kafka_records("fetch", place.topic, b.records_count().max(0) as u64);
            if !(spans || stitching || observe) {
                continue;
            }
            let section = match b.records_bytes() {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(topic = place.topic, "a fetched batch not observed: {e}");
                    continue;
                }
            };
            let recs = match batch::records(&section, b.records_count()) {
                Ok(r) => r,
                Err(e) => {
                    tracing::debug!(topic = place.topic, "a fetched batch not observed: {e}");
                    continue;
                }
            };
            for r in &recs {
                let offset = b.base_offset() + i64::from(r.offset_delta);
                let (mut observed, keys) = if stitching {
                    let id = format!("kafka:{}:{}:{offset}", place.topic, place.partition);
                    self.observe(place.topic, place.partition, r, id)
                } else {
                    (Vec::new(), Vec::new())
                };
                let parent = r
                    .header(TRACEPARENT)
                    .and_then(SpanContext::parse)
                    .or_else(|| keys.iter().find_map(|k| stitch.lookup(k)));
                let context = parent.map_or_else(SpanContext::root, |p| p.child());
                for k in &keys {
                    stitch.remember(k, context);
                }
                if observe {
                    for d in &mut observed {
                        d.traceparent = Some(context.traceparent());
                    }
                    deliveries.append(&mut observed);
                }
                if spans {
                    let at = Place {
                        offset: Some(offset),
                        ..*place
                    };
                    self.inner.telemetry.export(record_span(
                        Kind::Consumer,
                        &at,
                        r,
                        (parent, context),
                        keys.first().map(String::as_str),
                        started,
                    ));
                }
            }
        }
        if let Some(r) = &self.inner.runtime {
            r.deliver_observed(deliveries);
        }
    }

    /// Learns which consumer group a client id belongs to, from the group APIs it calls.
    pub fn learn_group(&self, api: ApiKey, frame: &Bytes, head: &RequestHead) {
        let Some(client) = head.client_id.as_deref() else {
            return;
        };
        let group = match api {
            ApiKey::JoinGroup => decode_request::<JoinGroupRequest>(frame, api, head.version)
                .ok()
                .map(|(_, r)| r.group_id.0.as_str().to_owned()),
            ApiKey::OffsetCommit => decode_request::<OffsetCommitRequest>(frame, api, head.version)
                .ok()
                .map(|(_, r)| r.group_id.0.as_str().to_owned()),
            ApiKey::ConsumerGroupHeartbeat => {
                decode_request::<ConsumerGroupHeartbeatRequest>(frame, api, head.version)
                    .ok()
                    .map(|(_, r)| r.group_id.0.as_str().to_owned())
            }
            _ => None,
        };
        if let Some(group) = group {
            self.inner.groups.learn(client, group);
        }
    }

    /// The client → group map, for the proxy's handle.
    pub fn groups(&self) -> Groups {
        self.inner.groups.clone()
    }
}

/// The data batches a `read_committed` consumer sees: no control batches, and none of an
/// aborted transaction, whose batches run from its first offset to its producer's next
/// control marker. Each aborted transaction is applied once, in offset order.
fn committed<'a>(batches: &'a [Batch], aborted: &[(i64, i64)]) -> Vec<&'a Batch> {
    let mut pending: Vec<(i64, i64)> = aborted.to_vec();
    pending.sort_by_key(|(_, first)| *first);
    let mut pending = pending.into_iter().peekable();
    let mut open: Vec<i64> = Vec::new();
    let mut out = Vec::new();
    for b in batches.iter().filter(|b| b.magic() >= 2) {
        while let Some((pid, _)) = pending.next_if(|(_, first)| *first <= b.base_offset()) {
            open.push(pid);
        }
        if b.is_control() {
            open.retain(|p| *p != b.producer_id());
        } else if !(b.is_transactional() && open.contains(&b.producer_id())) {
            out.push(b);
        }
    }
    out
}

/// An id for a produced record that the same record keeps when the client retries it: its
/// producer id, epoch and sequence when the producer is idempotent.
fn produced_id(topic: &str, b: &Batch, r: &Record<'_>) -> String {
    if b.producer_id() >= 0 && b.base_sequence() >= 0 {
        format!(
            "kafka:{topic}:{}:{}:{}",
            b.producer_id(),
            b.producer_epoch(),
            i64::from(b.base_sequence()) + i64::from(r.offset_delta)
        )
    } else {
        format!("kafka:{topic}:{}", hex(&fastrand::u64(..).to_be_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::records::{
        Compression, Record as KRecord, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };

    fn encoded(offset: i64, producer: i64, transactional: bool, control: bool) -> Bytes {
        let r = KRecord {
            transactional,
            control,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: producer,
            producer_epoch: 0,
            timestamp_type: TimestampType::Creation,
            offset,
            sequence: 0,
            timestamp: 0,
            key: None,
            value: Some(Bytes::from_static(b"v")),
            headers: Default::default(),
        };
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        };
        RecordBatchEncoder::encode(&mut buf, [&r], &options).expect("encode");
        buf.freeze()
    }

    #[test]
    fn aborted_transactions_and_control_batches_are_not_seen() {
        let mut all = BytesMut::new();
        for (offset, producer, txn, control) in [
            (0, 1, true, false),  // producer 1, aborted transaction
            (1, 2, false, false), // producer 2, not transactional
            (2, 1, true, true),   // producer 1's abort marker
            (3, 1, true, false),  // producer 1, a new transaction that commits
            (4, 1, true, true),   // its commit marker
            (5, 3, true, false),  // producer 3, aborted
        ] {
            all.extend_from_slice(&encoded(offset, producer, txn, control));
        }
        let batches = batch::batches(&all.freeze()).expect("batches");
        let seen: Vec<i64> = committed(&batches, &[(3, 5), (1, 0)])
            .iter()
            .map(|b| b.base_offset())
            .collect();
        assert_eq!(seen, [1, 3]);
    }

    fn rec<'a>(value: &'a [u8], headers: Vec<(&'a [u8], Option<&'a [u8]>)>) -> Record<'a> {
        Record::for_test(Some(b"k1"), Some(value), headers)
    }

    #[test]
    fn structured_values_are_the_event_and_binary_mode_reads_headers() {
        let r = rec(
            br#"{"type":"OrderPlaced","data":{"orderId":"o-1"}}"#,
            vec![],
        );
        let v = event_view("orders", 0, &r, "fallback".into());
        assert_eq!(v["type"], "OrderPlaced");
        assert_eq!(v["id"], "fallback");
        assert_eq!(v["data"]["orderId"], "o-1");

        let r = rec(
            br#"{"orderId":"o-2"}"#,
            vec![
                (b"ce_type", Some(b"PaymentReceived")),
                (b"ce_id", Some(b"e-9")),
                (b"x", Some(b"1")),
                (b"x", Some(b"2")),
            ],
        );
        let v = event_view("payments", 3, &r, "fallback".into());
        assert_eq!(v["type"], "PaymentReceived");
        assert_eq!(v["id"], "e-9");
        assert_eq!(v["data"]["orderId"], "o-2");
        assert_eq!(v["kafka"]["partition"], 3);
        assert_eq!(v["kafka"]["key"], "k1");
        assert_eq!(
            v["kafka"]["headers"]["x"], "1",
            "the first of duplicate headers"
        );

        let r = rec(b"not json", vec![(b"type", Some(b"Ping"))]);
        let v = event_view("t", 0, &r, "f".into());
        assert_eq!(
            (v["type"].as_str(), v["data"].as_str()),
            (Some("Ping"), Some("not json"))
        );
    }
}
