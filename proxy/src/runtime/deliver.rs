//! Messages and signals between sidecars: routing a message to the services whose processes
//! wait for it and a signal to every service that owns processes (this sidecar's engine, or
//! the outbox for a peer), sending the outbox to peers' `POST /mesh/v1/deliver` in batches,
//! and taking such batches in: committed and deduplicated by id before the answer
//! acknowledges them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use flowmesh_bpmn::engine::{Command, RejectionKind};
use flowmesh_bpmn::feel::{Context, Value};
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use super::inbox::InboxEntry;
use super::outbox::{self, Delivery, Envelope, EventDelivery, Outgoing, SignalDelivery};
use super::{Error, Handle, Origin, Work, received};
use crate::body::{self, Body};
use crate::registry::Registry;
use crate::routing::SERVICE_HEADER;

/// The path peers deliver to, on the mesh listener.
pub const PATH: &str = "/mesh/v1/deliver";
/// Deliveries per request to one peer at most.
const BATCH: usize = 256;
/// Largest delivery batch taken in.
const MAX_BATCH_BYTES: usize = 16 * 1024 * 1024;
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// What `/mesh/v1/deliver` takes: messages for the engine, events for the app.
#[derive(Serialize, Deserialize)]
struct Batch {
    from: String,
    #[serde(default)]
    messages: Vec<Delivery>,
    #[serde(default)]
    events: Vec<EventDelivery>,
    #[serde(default)]
    signals: Vec<SignalDelivery>,
}

#[derive(Serialize, Deserialize)]
struct Acknowledged {
    acknowledged: usize,
}

fn context(vars: &serde_json::Map<String, serde_json::Value>) -> Context {
    match Value::from_json(&serde_json::Value::Object(vars.clone())) {
        Value::Context(c) => c,
        _ => Context::new(),
    }
}

impl Handle {
    /// The work that routes `message`: a publish to this sidecar's engine when one of its
    /// processes waits for it (or when no service does: then it is buffered here for its TTL
    /// and counted as unroutable), an outbox entry for every other service that waits for it.
    pub fn route(&self, message: Delivery) -> Work {
        let deployments = self.deployments();
        let owners = deployments.owners_of(&message.name);
        let me = self.service();
        let mine = owners.is_empty() || owners.iter().any(|o| o.eq_ignore_ascii_case(me));
        if owners.is_empty() {
            self.inner.metrics.unroutable(&message.name);
        }
        let mut work = Work::new(Vec::new());
        work.writes.outbox = owners
            .iter()
            .filter(|o| !o.eq_ignore_ascii_case(me))
            .map(|service| Outgoing {
                service: service.clone(),
                envelope: Envelope::Message(message.clone()),
            })
            .collect();
        if mine {
            let (command, origin) = publish(message);
            work.commands.push(command);
            work.origins.push(origin);
        }
        work
    }

    /// Routes a signal: to every other service that owns processes (through the outbox) and
    /// to this sidecar's engine, in one piece of work.
    pub fn route_signal(&self, signal: SignalDelivery) -> Work {
        let deployments = self.deployments();
        let me = self.service();
        let mut work = Work::new(Vec::new());
        work.writes.outbox = deployments
            .owners()
            .into_iter()
            .filter(|o| !o.eq_ignore_ascii_case(me))
            .map(|service| Outgoing {
                service: service.to_owned(),
                envelope: Envelope::Signal(signal.clone()),
            })
            .collect();
        work.commands.push(Command::BroadcastSignal {
            name: signal.name,
            variables: context(&signal.variables),
        });
        work.origins.push(None);
        work
    }

    /// [`route`](Self::route) for several messages, as one piece of work.
    pub fn route_all(&self, messages: impl IntoIterator<Item = Delivery>) -> Work {
        let mut work = Work::new(Vec::new());
        for m in messages {
            let mut routed = self.route(m);
            work.commands.append(&mut routed.commands);
            work.origins.append(&mut routed.origins);
            work.writes.outbox.append(&mut routed.writes.outbox);
        }
        work
    }
}

/// Sends the outbox to the peers until the task is dropped: per service, the oldest entries
/// in one request to a live instance; removed once acknowledged; a failing service backs off
/// without holding up the others.
pub(crate) async fn send(handle: Handle, registry: Registry, ready: Arc<Notify>) {
    let client = super::http_client();
    let mut backoff: BTreeMap<String, (Instant, Duration)> = BTreeMap::new();
    loop {
        let pending = match handle
            .snapshots()
            .read_with(|_, txn| outbox::pending(txn, BATCH))
        {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!("cannot read the outbox: {e}");
                crate::timer::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let now = Instant::now();
        let mut sent_any = false;
        for (service, entries) in &pending {
            if backoff.get(service).is_some_and(|(until, _)| *until > now) {
                continue;
            }
            match deliver(&client, &handle, &registry, service, entries).await {
                Ok(()) => {
                    backoff.remove(service);
                    sent_any = true;
                }
                Err(why) => {
                    let wait = backoff
                        .get(service)
                        .map_or(Duration::from_millis(50), |(_, w)| {
                            (*w * 2).min(MAX_BACKOFF)
                        });
                    tracing::debug!(%service, "delivery failed, next try in {wait:?}: {why}");
                    backoff.insert(service.clone(), (Instant::now() + wait, wait));
                }
            }
        }
        if sent_any {
            continue;
        }
        let earliest = pending
            .keys()
            .filter_map(|s| backoff.get(s).map(|(until, _)| *until))
            .min();
        let wait = earliest.map_or(Duration::from_secs(30), |t| {
            t.saturating_duration_since(Instant::now())
        });
        let _ = crate::timer::timeout(wait, ready.notified()).await;
    }
}

async fn deliver(
    client: &super::HttpClient,
    handle: &Handle,
    registry: &Registry,
    service: &str,
    entries: &[(u64, Envelope)],
) -> Result<(), String> {
    let mut batch = Batch {
        from: handle.service().to_owned(),
        messages: Vec::new(),
        events: Vec::new(),
        signals: Vec::new(),
    };
    for (_, envelope) in entries {
        match envelope {
            Envelope::Message(m) => batch.messages.push(m.clone()),
            Envelope::Event(e) => batch.events.push(e.clone()),
            Envelope::Signal(s) => batch.signals.push(s.clone()),
        }
    }
    let delivered: Vec<(String, u64)> = entries
        .iter()
        .map(|(seq, _)| (service.to_owned(), *seq))
        .collect();
    if service.eq_ignore_ascii_case(handle.service()) {
        // Events for this sidecar's own app: into the inbox, no network.
        let mut work = take(handle, batch).map_err(|e| e.to_string())?;
        work.writes.delivered = delivered;
        return handle
            .run(work)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string());
    }
    let peer = registry.pick(service).map_err(|e| e.to_string())?;
    let bytes = serde_json::to_vec(&batch).map_err(|e| e.to_string())?;
    let request = Request::post(format!("http://{}{PATH}", peer.instance.mesh))
        .header("content-type", "application/json")
        .header(SERVICE_HEADER, service)
        .body(Full::new(Bytes::from(bytes)))
        .map_err(|e| e.to_string())?;
    let answer = crate::timer::timeout(Duration::from_secs(10), client.request(request))
        .await
        .map_err(|_| format!("{} did not answer in 10 s", peer.instance.mesh))?
        .map_err(|e| {
            if peer.refused() {
                handle.inner.metrics.passed_over(service, "refused");
            }
            format!("{}: {e}", peer.instance.mesh)
        })?;
    if peer.answered(answer.status()) {
        handle.inner.metrics.passed_over(service, "failures");
        tracing::warn!(
            %service,
            instance = %peer.instance.id,
            "the instance answered deliveries with gateway failures too many times in a row; passed over for a while"
        );
    }
    if !answer.status().is_success() {
        return Err(format!(
            "{} answered {}",
            peer.instance.mesh,
            answer.status()
        ));
    }
    let mut work = Work::new(Vec::new());
    work.writes.delivered = delivered;
    handle.run(work).await.map_err(|e| e.to_string())?;
    Ok(())
}

/// The engine command that publishes `message` here (its id deduplicates), and the trace an
/// instance it starts belongs to.
fn publish(message: Delivery) -> (Command, Option<Origin>) {
    let origin = origin(&message);
    let command = Command::Publish {
        name: message.name,
        correlation_key: message.correlation_key,
        variables: context(&message.variables),
        ttl_ms: message.ttl_ms,
        message_id: Some(message.id),
    };
    (command, origin)
}

/// The trace an instance started by `message` belongs to.
fn origin(message: &Delivery) -> Option<Origin> {
    let parent =
        crate::telemetry::context::SpanContext::parse(message.traceparent.as_deref()?.as_bytes())?;
    Some(Origin {
        business_key: Some(message.correlation_key.clone()),
        trace_id: Some(parent.trace_hex()),
        parent_span_id: Some(crate::telemetry::context::hex(&parent.span_id)),
    })
}

/// The work that takes a batch in: messages published to the engine with their ids, events
/// into the inbox.
///
/// What was taken before (the same batch again, its acknowledgement lost) is left out, and
/// the ids of the rest are remembered in the same transaction.
/// Events for the app from another bus (Kafka), taken as a peer's batch is: into the inbox,
/// each once by its source and id.
pub(crate) fn take_events(handle: &Handle, events: Vec<EventDelivery>) -> Result<Work, Error> {
    take(
        handle,
        Batch {
            from: String::new(),
            messages: Vec::new(),
            events,
            signals: Vec::new(),
        },
    )
}

fn take(handle: &Handle, batch: Batch) -> Result<Work, Error> {
    let event_id = |e: &EventDelivery| {
        let attr = |k: &str| e.event.get(k).and_then(|v| v.as_str()).unwrap_or_default();
        format!("event:{}:{}", attr("source"), attr("id"))
    };
    let ids: Vec<String> = batch
        .messages
        .iter()
        .map(|m| format!("message:{}", m.id))
        .chain(batch.events.iter().map(event_id))
        .chain(batch.signals.iter().map(|s| format!("signal:{}", s.id)))
        .collect();
    let seen = handle
        .snapshots()
        .read_with(|_, txn| received::seen(txn, ids.iter().map(String::as_str)))?;
    let now = jiff::Timestamp::now().as_millisecond();
    let mut work = Work::new(Vec::new());
    for m in batch.messages {
        let id = format!("message:{}", m.id);
        if seen.contains(&id) {
            continue;
        }
        let keep = now.saturating_add(m.ttl_ms.max(received::KEEP_MS));
        work.writes.received.push((id, keep));
        let (command, origin) = publish(m);
        work.commands.push(command);
        work.origins.push(origin);
    }
    for s in batch.signals {
        let id = format!("signal:{}", s.id);
        if seen.contains(&id) {
            continue;
        }
        work.writes
            .received
            .push((id, now.saturating_add(received::KEEP_MS)));
        work.commands.push(Command::BroadcastSignal {
            name: s.name,
            variables: context(&s.variables),
        });
        work.origins.push(None);
    }
    for e in batch.events {
        let id = event_id(&e);
        if seen.contains(&id) {
            continue;
        }
        work.writes
            .received
            .push((id, now.saturating_add(received::KEEP_MS)));
        work.writes.inbox.push(InboxEntry {
            topic: e.topic,
            event: e.event,
        });
    }
    Ok(work)
}

/// The body, up to the batch limit.
async fn read_body(mut body: Body) -> Result<Bytes, String> {
    let mut out = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| e.to_string())?;
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > MAX_BATCH_BYTES {
                return Err(format!("larger than {MAX_BATCH_BYTES} bytes"));
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out.freeze())
}

/// Takes a batch from a peer: every message is published to the engine (a message id seen
/// before is a duplicate, which counts as taken), committed before the answer.
pub async fn receive(handle: &Handle, request: Request<Body>) -> Response<Body> {
    let bytes = match read_body(request.into_body()).await {
        Ok(b) => b,
        Err(e) => {
            return body::error(
                StatusCode::BAD_REQUEST,
                "unreadable",
                format!("the delivery could not be read: {e}"),
            );
        }
    };
    let batch: Batch = match serde_json::from_slice(&bytes) {
        Ok(b) => b,
        Err(e) => {
            return body::error(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                format!("a delivery is {{\"from\", \"messages\": [...]}}: {e}"),
            );
        }
    };
    let count = batch.messages.len() + batch.events.len() + batch.signals.len();
    let from = batch.from.clone();
    let work = match take(handle, batch) {
        Ok(w) => w,
        Err(e) => return body::error(StatusCode::SERVICE_UNAVAILABLE, "busy", e.to_string()),
    };
    match handle.run(work).await {
        Ok(results) => {
            for r in results {
                if let Err(rejected) = r
                    && rejected.kind != RejectionKind::Duplicate
                {
                    tracing::warn!(%from, "a delivered message was refused: {rejected}");
                }
            }
            let answer = serde_json::to_vec(&Acknowledged {
                acknowledged: count,
            })
            .unwrap_or_default();
            let mut response = Response::new(body::full(answer));
            response.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("application/json"),
            );
            response
        }
        Err(e @ (Error::Busy | Error::Stopped)) => {
            body::error(StatusCode::SERVICE_UNAVAILABLE, "busy", e.to_string())
        }
        Err(e) => body::error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
    }
}
