//! The runtime's spans: one per BPMN element instance and one per process instance, emitted
//! when they end with their real start time (the process span's id was chosen at its start,
//! so element spans point to it from the beginning), and PRODUCER/CONSUMER spans for events
//! handed to the bus and to the app. All in the trace of the message that started or advanced
//! the instance.

use std::time::{Duration, SystemTime};

use crate::telemetry::context::SpanContext;
use crate::telemetry::span::{Attr, Kind, Span};

use super::index::Ended;

fn at(ms: i64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// The context of `trace` (hex) and `span` (hex).
pub fn context(trace: &str, span: &str) -> Option<SpanContext> {
    SpanContext::parse(format!("00-{trace}-{span}-01").as_bytes())
}

fn span_bytes(hex: &str) -> Option<[u8; 8]> {
    context(&"1".repeat(32), hex).map(|c| c.span_id)
}

/// The span of an element instance (or of the process instance) that ended.
pub fn element(e: &Ended) -> Option<Span> {
    let i = &e.instance;
    let ctx = context(&i.trace_id, &e.span_id)?;
    let parent = if e.is_process {
        i.parent_span_id.as_deref().and_then(span_bytes)
    } else {
        span_bytes(&i.span_id)
    };
    let mut attributes: Vec<(&'static str, Attr)> = vec![
        ("flowmesh.process", i.process.clone().into()),
        ("flowmesh.version", i64::from(i.version).into()),
        ("flowmesh.instance", i.key.to_string().into()),
        ("flowmesh.element", e.element.clone().into()),
        ("flowmesh.element_type", e.element_type.clone().into()),
        ("flowmesh.outcome", e.outcome.into()),
    ];
    if let Some(b) = &i.business_key {
        attributes.push(("flowmesh.business_key", b.clone().into()));
    }
    Some(Span {
        context: ctx,
        parent,
        trace_state: None,
        name: if e.is_process {
            format!("process {}", i.process)
        } else {
            e.element.clone()
        },
        kind: Kind::Internal,
        start: at(e.started_at),
        end: at(e.ended_at),
        attributes,
        events: Vec::new(),
        error: None,
    })
}

/// A span for an event handed on: a child of the event's `traceparent`, or a new root.
pub fn event(
    kind: Kind,
    topic: &str,
    parent: Option<SpanContext>,
    event_type: &str,
    event_id: &str,
    start: SystemTime,
    error: Option<String>,
) -> Span {
    let context = parent.map_or_else(SpanContext::root, |p| p.child());
    let verb = if kind == Kind::Producer {
        "publish"
    } else {
        "deliver"
    };
    Span {
        context,
        parent: parent.map(|p| p.span_id),
        trace_state: None,
        name: format!("{verb} {topic}"),
        kind,
        start,
        end: SystemTime::now(),
        attributes: vec![
            ("messaging.system", "flowmesh".into()),
            ("messaging.destination.name", topic.to_owned().into()),
            ("messaging.message.id", event_id.to_owned().into()),
            ("cloudevents.event_type", event_type.to_owned().into()),
        ],
        events: Vec::new(),
        error,
    }
}
