//! A finished span as the sidecar records it, and its OTLP protobuf form.

use std::time::SystemTime;

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1 as otlp;

use super::context::SpanContext;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Server,
    Client,
    /// Work inside the sidecar: a BPMN element, a process instance.
    Internal,
    /// An event handed to the bus.
    Producer,
    /// An event handed to the app.
    Consumer,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Attr {
    Str(String),
    Int(i64),
}

impl From<&str> for Attr {
    fn from(s: &str) -> Attr {
        Attr::Str(s.to_owned())
    }
}

impl From<String> for Attr {
    fn from(s: String) -> Attr {
        Attr::Str(s)
    }
}

impl From<i64> for Attr {
    fn from(i: i64) -> Attr {
        Attr::Int(i)
    }
}

#[derive(Clone, Debug)]
pub struct Event {
    pub name: &'static str,
    pub at: SystemTime,
    pub attributes: Vec<(&'static str, Attr)>,
}

#[derive(Clone, Debug)]
pub struct Span {
    pub context: SpanContext,
    pub parent: Option<[u8; 8]>,
    pub trace_state: Option<String>,
    pub name: String,
    pub kind: Kind,
    pub start: SystemTime,
    pub end: SystemTime,
    pub attributes: Vec<(&'static str, Attr)>,
    pub events: Vec<Event>,
    /// Set when the span failed (5xx for a server, 4xx and 5xx for a client, no answer).
    pub error: Option<String>,
}

fn nanos(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

pub(crate) fn key_value(key: &str, value: &Attr) -> KeyValue {
    let value = match value {
        Attr::Str(s) => any_value::Value::StringValue(s.clone()),
        Attr::Int(i) => any_value::Value::IntValue(*i),
    };
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

impl Span {
    pub fn to_proto(&self) -> otlp::Span {
        let kind = match self.kind {
            Kind::Server => otlp::span::SpanKind::Server,
            Kind::Client => otlp::span::SpanKind::Client,
            Kind::Internal => otlp::span::SpanKind::Internal,
            Kind::Producer => otlp::span::SpanKind::Producer,
            Kind::Consumer => otlp::span::SpanKind::Consumer,
        };
        let status = match &self.error {
            Some(message) => otlp::Status {
                message: message.clone(),
                code: otlp::status::StatusCode::Error as i32,
            },
            None => otlp::Status::default(),
        };
        otlp::Span {
            trace_id: self.context.trace_id.to_vec(),
            span_id: self.context.span_id.to_vec(),
            trace_state: self.trace_state.clone().unwrap_or_default(),
            parent_span_id: self.parent.map(|p| p.to_vec()).unwrap_or_default(),
            flags: u32::from(self.context.flags),
            name: self.name.clone(),
            kind: kind as i32,
            start_time_unix_nano: nanos(self.start),
            end_time_unix_nano: nanos(self.end),
            attributes: self
                .attributes
                .iter()
                .map(|(k, v)| key_value(k, v))
                .collect(),
            events: self
                .events
                .iter()
                .map(|e| otlp::span::Event {
                    time_unix_nano: nanos(e.at),
                    name: e.name.to_owned(),
                    attributes: e.attributes.iter().map(|(k, v)| key_value(k, v)).collect(),
                    dropped_attributes_count: 0,
                })
                .collect(),
            status: Some(status),
            ..Default::default()
        }
    }
}
