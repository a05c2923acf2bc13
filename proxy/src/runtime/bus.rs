//! The event bus: CloudEvents 1.0 (structured JSON) published on a topic reach every service
//! subscribed to it, at least once and in order per partition key. [`Bus`] is what the
//! runtime needs of a bus; [`MeshBus`], the embedded default, carries events sidecar to
//! sidecar through the durable outbox. Every published event also passes the observation
//! pipeline: a `flowmesh:event` binding turns it into a message for the processes waiting.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::SystemTime;

use flowmesh_bpmn::model::EventBinding;

use crate::telemetry::context::SpanContext;
use crate::telemetry::span::{Kind, Span};

use crate::registry::Registry;

use super::outbox::{Delivery, Envelope, EventDelivery, Outgoing};
use super::{Error, Handle, Work, spans};

/// A checked CloudEvent.
#[derive(Clone, Debug, PartialEq)]
pub struct CloudEvent {
    json: serde_json::Value,
}

/// Why a body is not a CloudEvent this bus takes.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

impl CloudEvent {
    /// Checks the required attributes of a structured-mode CloudEvents 1.0 event.
    pub fn parse(json: serde_json::Value) -> Result<CloudEvent, Invalid> {
        let serde_json::Value::Object(o) = &json else {
            return Err(Invalid(
                "an event is a JSON object with specversion, id, source and type (CloudEvents 1.0, structured mode)".into(),
            ));
        };
        match o.get("specversion").and_then(|v| v.as_str()) {
            Some("1.0") => {}
            Some(other) => {
                return Err(Invalid(format!(
                    "specversion '{other}' is not supported; use \"1.0\""
                )));
            }
            None => return Err(Invalid("the event has no specversion (\"1.0\")".into())),
        }
        for attr in ["id", "source", "type"] {
            match o.get(attr) {
                Some(serde_json::Value::String(s)) if !s.is_empty() => {}
                Some(_) => {
                    return Err(Invalid(format!(
                        "the event's {attr} must be a non-empty string"
                    )));
                }
                None => return Err(Invalid(format!("the event has no {attr}"))),
            }
        }
        Ok(CloudEvent { json })
    }

    /// An event seen in traffic (a Kafka record read as a CloudEvent), not checked: it is only
    /// matched against bindings, never published.
    pub fn seen(json: serde_json::Value) -> CloudEvent {
        CloudEvent { json }
    }

    /// A new event with the given attributes and data.
    pub fn new(id: &str, source: &str, event_type: &str, data: serde_json::Value) -> CloudEvent {
        CloudEvent {
            json: serde_json::json!({
                "specversion": "1.0",
                "id": id,
                "source": source,
                "type": event_type,
                "datacontenttype": "application/json",
                "data": data,
            }),
        }
    }

    fn attr(&self, name: &str) -> &str {
        self.json
            .get(name)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
    }

    pub fn id(&self) -> &str {
        self.attr("id")
    }

    pub fn event_type(&self) -> &str {
        self.attr("type")
    }

    /// Sets an extension attribute (or replaces it).
    pub fn set(&mut self, name: &str, value: &str) {
        if let serde_json::Value::Object(o) = &mut self.json {
            o.insert(name.to_owned(), serde_json::Value::String(value.to_owned()));
        }
    }

    pub fn json(&self) -> &serde_json::Value {
        &self.json
    }

    /// The business transaction an event belongs to, as the sender named it: `subject`, else
    /// the `traceid` extension.
    pub fn business_key(&self) -> Option<&str> {
        ["subject", "traceid"]
            .iter()
            .find_map(|k| self.json.get(*k).and_then(|v| v.as_str()))
            .filter(|k| !k.is_empty())
    }
}

/// What the runtime needs of an event bus.
pub trait Bus: Send + Sync + 'static {
    /// Takes an event for `topic`. When this returns Ok, every subscriber will get it at least
    /// once; an error means nothing was taken.
    fn publish<'a>(
        &'a self,
        topic: &'a str,
        event: CloudEvent,
    ) -> Pin<Box<dyn Future<Output = Result<(), Error>> + Send + 'a>>;
}

/// The embedded bus: outbox entries for each subscribed service, committed with the
/// observations the event makes.
#[derive(Clone)]
pub struct MeshBus {
    handle: Handle,
    registry: Registry,
    /// The topics this sidecar's own app subscribes to.
    own: Vec<String>,
}

impl MeshBus {
    pub fn new(handle: Handle, registry: Registry, own: Vec<String>) -> MeshBus {
        MeshBus {
            handle,
            registry,
            own,
        }
    }

    /// The work that publishes `event` on `topic`, and the PRODUCER span that goes with it:
    /// the observations the event makes, and an outbox entry for every subscribed service.
    pub fn work(&self, topic: &str, event: &mut CloudEvent) -> (Work, Span) {
        let (mut work, span) = self.handle.publication(topic, event);
        let me = self.handle.service();
        let mut services = self.registry.subscribers(topic);
        if self.own.iter().any(|t| t == topic) && !services.iter().any(|s| s == me) {
            services.push(me.to_owned());
        }
        for service in services {
            work.writes.outbox.push(Outgoing {
                service,
                envelope: Envelope::Event(EventDelivery {
                    topic: topic.to_owned(),
                    event: event.json.clone(),
                }),
            });
        }
        (work, span)
    }
}

impl Bus for MeshBus {
    fn publish<'a>(
        &'a self,
        topic: &'a str,
        event: CloudEvent,
    ) -> Pin<Box<dyn Future<Output = Result<(), Error>> + Send + 'a>> {
        Box::pin(async move {
            let mut event = event;
            let (work, span) = self.work(topic, &mut event);
            let result = self.handle.run(work).await.map(|_| ());
            self.handle.published(span, &result);
            result
        })
    }
}

impl Handle {
    /// What publishing `event` on `topic` means whatever the bus: the messages it is (routed to
    /// the processes that wait for them) and its PRODUCER span. The event continues the trace
    /// it names (`traceparent`), else the one last seen with the business key it carries, else
    /// starts one; it leaves with the producer's context.
    pub fn publication(&self, topic: &str, event: &mut CloudEvent) -> (Work, Span) {
        let started = SystemTime::now();
        let mut observed = self.observe_event(topic, event);
        let stitch = self.stitch();
        let parent = event
            .json()
            .get("traceparent")
            .and_then(|v| v.as_str())
            .and_then(|t| SpanContext::parse(t.as_bytes()))
            .or_else(|| {
                observed
                    .iter()
                    .map(|d| d.correlation_key.as_str())
                    .chain(event.business_key())
                    .find_map(|k| stitch.as_ref()?.lookup(k))
            });
        let span = spans::event(
            Kind::Producer,
            topic,
            parent,
            event.event_type(),
            event.id(),
            started,
            None,
        );
        let traceparent = span.context.traceparent();
        event.set("traceparent", &traceparent);
        for d in &mut observed {
            d.traceparent = Some(traceparent.clone());
            if let Some(s) = &stitch {
                s.remember(&d.correlation_key, span.context);
            }
        }
        if let (Some(k), Some(s)) = (event.business_key(), &stitch) {
            s.remember(k, span.context);
        }
        (self.route_all(observed), span)
    }

    /// Ends and exports the PRODUCER span of a publication with its outcome.
    pub fn published(&self, mut span: Span, result: &Result<(), Error>) {
        span.end = SystemTime::now();
        if let Err(e) = result {
            span.error = Some(e.to_string());
        }
        self.export(span);
    }

    /// The messages an event is, by the deployed models' event bindings.
    pub fn observe_event(&self, topic: &str, event: &CloudEvent) -> Vec<Delivery> {
        let mut out = Vec::new();
        for b in self
            .event_bindings()
            .iter()
            .filter(|b| b.matches(topic, event.event_type()))
        {
            {
                match b.key(event.json()) {
                    Ok(key) => {
                        self.inner.metrics.observed("bus", &b.message);
                        out.push(Delivery {
                            id: format!("{}:{}", b.message, event.id()),
                            name: b.message.clone(),
                            correlation_key: key,
                            variables: b.variables(event.json()),
                            ttl_ms: super::OBSERVED_TTL_MS,
                            traceparent: event
                                .json()
                                .get("traceparent")
                                .and_then(|v| v.as_str())
                                .map(str::to_owned),
                        });
                    }
                    Err(why) => {
                        self.inner.metrics.observation_missed("bus", &b.message);
                        tracing::debug!(message = %b.message, "no observation: {why}");
                    }
                }
            }
        }
        out
    }

    /// Whether any deployed model binds events on `topic`.
    pub fn binds_topic(&self, topic: &str) -> bool {
        self.event_bindings().iter().any(|b| b.topic == topic)
    }

    /// The event bindings of the deployed models' latest versions, parsed once per change.
    fn event_bindings(&self) -> Arc<Vec<EventBinding>> {
        let deployments = self.deployments();
        if let Ok(cached) = self.inner.event_bindings.read()
            && cached.0 == deployments.revision
        {
            return cached.1.clone();
        }
        let mut all = Vec::new();
        for (name, xml) in deployments.latest_xml() {
            match flowmesh_bpmn::parse(&xml) {
                Ok(defs) => all.extend(defs.event_bindings),
                Err(e) => tracing::warn!("deployed model {name} does not parse here: {e}"),
            }
        }
        let all = Arc::new(all);
        if let Ok(mut cached) = self.inner.event_bindings.write() {
            *cached = (deployments.revision, all.clone());
        }
        all
    }

    /// The event bus this sidecar publishes to: Kafka when configured, else the mesh.
    pub fn bus(&self) -> Arc<dyn Bus> {
        match &self.inner.kafka {
            Some(producer) => Arc::new(super::kafka_bus::KafkaBus::new(
                self.clone(),
                producer.clone(),
            )),
            None => Arc::new(MeshBus::new(
                self.clone(),
                self.inner.registry.clone(),
                self.inner.own_topics.clone(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_need_the_required_attributes() {
        let ok = serde_json::json!({"specversion": "1.0", "id": "1", "source": "s", "type": "T"});
        assert!(CloudEvent::parse(ok).is_ok());
        let cases = [
            (serde_json::json!([1]), "JSON object"),
            (
                serde_json::json!({"id": "1", "source": "s", "type": "T"}),
                "no specversion",
            ),
            (
                serde_json::json!({"specversion": "0.3", "id": "1", "source": "s", "type": "T"}),
                "'0.3'",
            ),
            (
                serde_json::json!({"specversion": "1.0", "source": "s", "type": "T"}),
                "no id",
            ),
            (
                serde_json::json!({"specversion": "1.0", "id": "", "source": "s", "type": "T"}),
                "id must be",
            ),
            (
                serde_json::json!({"specversion": "1.0", "id": "1", "source": "s", "type": 5}),
                "type must be",
            ),
        ];
        for (json, want) in cases {
            let err = CloudEvent::parse(json.clone()).unwrap_err();
            assert!(err.0.contains(want), "{json}: {err}");
        }
    }
}
