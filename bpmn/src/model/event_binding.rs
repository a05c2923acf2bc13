//! Event bindings: which CloudEvents on a topic of the event bus are a BPMN message, and where
//! the correlation key is. Written as `flowmesh:event` on `bpmn:message` (see
//! docs/bindings.md); the sidecar that takes an event for publishing matches it.

use crate::feel::{Context, Expression, Value};

use super::Pos;

/// One `flowmesh:event` element.
#[derive(Clone, Debug)]
pub struct EventBinding {
    /// The `bpmn:message`'s name: what the observation delivers.
    pub message: String,
    pub message_id: String,
    pub topic: String,
    /// The CloudEvents `type` that means this message.
    pub event_type: String,
    /// FEEL over `event` (the whole CloudEvent) and `data` (its data).
    pub key: Expression,
    /// FEEL giving a context of message variables; default: the event's data, when it is an
    /// object.
    pub variables: Option<Expression>,
    pub pos: Pos,
}

fn context(event: &serde_json::Value) -> Context {
    let mut c = Context::new();
    c.insert("event".into(), Value::from_json(event));
    c.insert(
        "data".into(),
        event
            .get("data")
            .map(Value::from_json)
            .unwrap_or(Value::Null),
    );
    c
}

impl EventBinding {
    /// Whether an event of `topic` and `event_type` is this binding's message.
    pub fn matches(&self, topic: &str, event_type: &str) -> bool {
        self.topic == topic && self.event_type == event_type
    }

    /// The correlation key of a matching event; `Err` says why there is none.
    pub fn key(&self, event: &serde_json::Value) -> Result<String, String> {
        let value = self
            .key
            .evaluate(&context(event), crate::feel::epoch())
            .map_err(|e| format!("key expression: {e}"))?
            .value;
        let key = match value {
            Value::Null => String::new(),
            Value::String(s) => s,
            other => other.to_string(),
        };
        if key.is_empty() {
            return Err(format!("the event carries no key (={})", self.key.source()));
        }
        Ok(key)
    }

    /// The message variables of a matching event.
    pub fn variables(
        &self,
        event: &serde_json::Value,
    ) -> serde_json::Map<String, serde_json::Value> {
        let value = match &self.variables {
            Some(expr) => match expr.evaluate(&context(event), crate::feel::epoch()) {
                Ok(e) => e.value.to_json(),
                Err(_) => serde_json::Value::Null,
            },
            None => event.get("data").cloned().unwrap_or_default(),
        };
        match value {
            serde_json::Value::Object(map) => map,
            _ => serde_json::Map::new(),
        }
    }
}
