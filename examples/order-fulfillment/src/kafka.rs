//! An app's own Kafka client, for the demo's Kafka bus (`flowmesh demo --bus kafka`): it is
//! pointed at its sidecar's Kafka port, produces its events there and reads the topic with a
//! consumer group of its own, handing every record to its own `POST /events`, the same handler
//! that takes events from the sidecar on the mesh bus. Like any Kafka app, it forwards no
//! trace context: the sidecar adds it.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use flowmesh_control_plane::http::HttpClient;
use hyper::Method;
use rdkafka::ClientConfig;
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::TOPIC;

/// How long joining the consumer group may take.
const JOIN: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct Link {
    producer: FutureProducer,
}

impl Link {
    /// Connects to `bootstrap` (the sidecar's Kafka port). With `consume`, a consumer group of
    /// this app's own (`group`) reads the topic from its end, and this returns once it holds
    /// its partitions, so no event published after that is missed.
    pub async fn connect(
        bootstrap: &str,
        group: &str,
        consume: Option<SocketAddr>,
    ) -> Result<Link, String> {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", bootstrap);
        let producer: FutureProducer = config
            .clone()
            .set("enable.idempotence", "true")
            .set("linger.ms", "1")
            .create()
            .map_err(|e| format!("cannot create a Kafka producer for {bootstrap}: {e}"))?;
        if let Some(own) = consume {
            let consumer: StreamConsumer = config
                .set("group.id", group)
                .set("auto.offset.reset", "latest")
                .create()
                .map_err(|e| format!("cannot create a Kafka consumer for {bootstrap}: {e}"))?;
            consumer
                .subscribe(&[TOPIC])
                .map_err(|e| format!("cannot subscribe to {TOPIC}: {e}"))?;
            let consumer = std::sync::Arc::new(consumer);
            tokio::spawn(forward(consumer.clone(), own));
            let deadline = Instant::now() + JOIN;
            while consumer.assignment().map_or(0, |a| a.count()) == 0 {
                if Instant::now() > deadline {
                    return Err(format!(
                        "the consumer group {group} got no partitions of {TOPIC} within {JOIN:?}"
                    ));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(Link { producer })
    }

    /// Produces `event` keyed by its business transaction; `Ok` once the broker has it.
    pub async fn publish(&self, key: &str, event: &serde_json::Value) -> Result<(), String> {
        let payload = event.to_string();
        self.producer
            .send(
                FutureRecord::to(TOPIC).key(key).payload(&payload),
                Duration::from_secs(10),
            )
            .await
            .map(|_| ())
            .map_err(|(e, _)| format!("Kafka did not take the event: {e}"))
    }
}

/// Hands every record to the app's own `POST /events`, in order.
async fn forward(consumer: std::sync::Arc<StreamConsumer>, own: SocketAddr) {
    let http = HttpClient::new();
    let url = format!("http://{own}/events");
    loop {
        let payload = match consumer.recv().await {
            Ok(m) => m.payload().map(Bytes::copy_from_slice),
            Err(e) => {
                tracing::warn!("the app's Kafka consumer: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let Some(body) = payload else { continue };
        if let Err(e) = http
            .send(
                Method::POST,
                &url,
                &[("content-type", "application/json")],
                body,
                Duration::from_secs(10),
            )
            .await
        {
            tracing::warn!("the app did not take an event from Kafka: {e}");
        }
    }
}
