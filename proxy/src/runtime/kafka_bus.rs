//! The Kafka bus (`[bus] kind = "kafka"`): events published here are produced to the
//! `[kafka]` cluster by this sidecar's own idempotent producer, and the app's subscriptions are
//! read by this service's own consumer group. A consumed event enters the durable inbox (and
//! from there reaches the app as on the mesh bus: in order per partition key, retried, dead
//! letters); its offset is stored for commit only after that transaction committed, so an event
//! the sidecar took is never lost, and one taken twice (a crash between the two) is dropped by
//! its CloudEvents source and id.
//!
//! The client is rdkafka (librdkafka): the Rust client that implements consumer groups with
//! rebalancing, the idempotent producer and exactly the protocol every Kafka-compatible broker is
//! tested against. Pure-Rust clients either have no consumer groups (rskafka) or are no
//! longer kept up with the protocol (kafka-rust).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::Message;
use rdkafka::consumer::Consumer;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureRecord;

use crate::timer::KafkaRuntime;

/// librdkafka's producer, its futures' timers on the sidecar's timer thread.
pub type FutureProducer =
    rdkafka::producer::FutureProducer<rdkafka::client::DefaultClientContext, KafkaRuntime>;

/// librdkafka's consumer, its keep-alive's timer on the sidecar's timer thread.
type StreamConsumer =
    rdkafka::consumer::StreamConsumer<rdkafka::consumer::DefaultConsumerContext, KafkaRuntime>;

use super::bus::{Bus, CloudEvent};
use super::outbox::EventDelivery;
use super::{Error, Handle, inbox};

/// Events taken into the inbox in one transaction at most.
const BATCH: usize = 256;

fn client(bootstrap: &[String]) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap.join(","));
    c
}

/// This sidecar's producer: idempotent, every in-sync replica acknowledges.
pub fn producer(bootstrap: &[String]) -> Result<FutureProducer, Error> {
    client(bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "1")
        .set("message.timeout.ms", "30000")
        .create()
        .map_err(|e| Error::Bus(format!("cannot create the Kafka producer: {e}")))
}

/// Publishes to Kafka.
#[derive(Clone)]
pub struct KafkaBus {
    handle: Handle,
    producer: FutureProducer,
}

impl KafkaBus {
    pub fn new(handle: Handle, producer: FutureProducer) -> KafkaBus {
        KafkaBus { handle, producer }
    }
}

impl Bus for KafkaBus {
    fn publish<'a>(
        &'a self,
        topic: &'a str,
        event: CloudEvent,
    ) -> Pin<Box<dyn Future<Output = Result<(), Error>> + Send + 'a>> {
        Box::pin(async move {
            let mut event = event;
            let (work, span) = self.handle.publication(topic, &mut event);
            // The observations first: a retry after a failed produce finds them taken (their
            // ids are the event's), while a produced event would be produced twice.
            let mut result = self.handle.run(work).await.map(|_| ());
            if result.is_ok() {
                let payload = event.json().to_string();
                let key = inbox::partition(event.json()).unwrap_or_default();
                let traceparent = span.context.traceparent();
                let record = FutureRecord::to(topic).payload(&payload).key(&key).headers(
                    OwnedHeaders::new().insert(Header {
                        key: "traceparent",
                        value: Some(&traceparent),
                    }),
                );
                result = self
                    .producer
                    .send(record, Duration::from_secs(10))
                    .await
                    .map(|_| ())
                    .map_err(|(e, _)| Error::Bus(format!("Kafka did not take the event: {e}")));
            }
            self.handle.published(span, &result);
            result
        })
    }
}

/// Reads the subscribed topics with this service's consumer group into the inbox until the
/// task is dropped.
pub(crate) async fn consume(
    handle: Handle,
    bootstrap: Vec<String>,
    group: String,
    topics: Vec<String>,
) {
    if topics.is_empty() {
        return;
    }
    let consumer: StreamConsumer = match client(&bootstrap)
        .set("group.id", &group)
        .set("enable.auto.commit", "true")
        // Offsets are stored by hand once the inbox holds the event; only stored ones commit.
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .create()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("cannot create the Kafka consumer of group {group}: {e}");
            return;
        }
    };
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    if let Err(e) = consumer.subscribe(&names) {
        tracing::error!("cannot subscribe group {group} to {topics:?}: {e}");
        return;
    }
    loop {
        let mut taken = Vec::new();
        match consumer.recv().await {
            Ok(m) => taken.push(m),
            Err(e) => {
                tracing::warn!("the Kafka bus consumer: {e}");
                crate::timer::sleep(Duration::from_millis(500)).await;
                continue;
            }
        }
        while taken.len() < BATCH {
            match futures_util::FutureExt::now_or_never(consumer.recv()) {
                Some(Ok(m)) => taken.push(m),
                _ => break,
            }
        }
        let mut events = Vec::with_capacity(taken.len());
        for m in &taken {
            match m.payload().map(serde_json::from_slice::<serde_json::Value>) {
                Some(Ok(json)) if CloudEvent::parse(json.clone()).is_ok() => {
                    events.push(EventDelivery {
                        topic: m.topic().to_owned(),
                        event: json,
                    });
                }
                _ => tracing::warn!(
                    topic = m.topic(),
                    partition = m.partition(),
                    offset = m.offset(),
                    "a record on the Kafka bus that is not a CloudEvent (structured JSON) was skipped"
                ),
            }
        }
        // Until the inbox holds them, their offsets are not stored: retried until it does.
        loop {
            let stored = match super::deliver::take_events(&handle, events.clone()) {
                Ok(work) => handle.run(work).await.map(|_| ()),
                Err(e) => Err(e),
            };
            match stored {
                Ok(()) => break,
                Err(Error::Stopped) => return,
                Err(e) => {
                    tracing::warn!("cannot take events from Kafka into the inbox: {e}");
                    crate::timer::sleep(Duration::from_millis(500)).await;
                }
            }
        }
        for m in &taken {
            if let Err(e) = consumer.store_offset_from_message(m) {
                tracing::warn!(
                    "cannot store the offset of {}/{}: {e}",
                    m.topic(),
                    m.partition()
                );
            }
        }
    }
}
