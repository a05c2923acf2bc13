//! What every app of the example shares: its options, the client of its sidecar's event API,
//! and the CloudEvents envelope (`traceid` names the business transaction, `correlationid`
//! pairs a command with its reply).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use flowmesh_control_plane::http::HttpClient;
use hyper::Method;
use serde_json::{Value, json};

use crate::TOPIC;

/// How the services work together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Each service reacts to the others' events (stages track and act).
    Choreography,
    /// Services react to commands that the processes in the sidecars send (stages orchestrate
    /// and change).
    Orchestration,
}

/// Which orders misbehave, by the number in their id (`order-17`): every n-th order, counted
/// from `offset`. 0 turns a behaviour off.
#[derive(Clone, Copy, Debug, Default)]
pub struct Behaviour {
    /// Payment answers late (by `slow_ms`).
    pub slow_payment_every: u64,
    /// The card has expired: payment answers with a business error until the customer
    /// updates the card.
    pub expired_card_every: u64,
    /// Payment fails with a technical error on the first attempt.
    pub flaky_payment_every: u64,
    /// Inventory fetches the goods late (by `slow_ms`).
    pub slow_inventory_every: u64,
    pub slow_ms: u64,
}

impl Mode {
    pub fn parse(text: &str) -> Option<Mode> {
        match text.trim() {
            "choreography" => Some(Mode::Choreography),
            "orchestration" => Some(Mode::Orchestration),
            _ => None,
        }
    }
}

impl Behaviour {
    /// The demo's default: some slow payments, some expired cards, some technical failures,
    /// some goods that come too late.
    pub fn demo() -> Behaviour {
        Behaviour {
            slow_payment_every: 5,
            expired_card_every: 7,
            flaky_payment_every: 3,
            slow_inventory_every: 9,
            slow_ms: 3000,
        }
    }

    fn hits(every: u64, order: &str, offset: u64) -> bool {
        every > 0 && number(order).is_some_and(|n| n % every == offset % every)
    }

    pub fn slow_payment(&self, order: &str) -> bool {
        Behaviour::hits(self.slow_payment_every, order, 4)
    }

    pub fn expired_card(&self, order: &str) -> bool {
        Behaviour::hits(self.expired_card_every, order, 3)
    }

    pub fn flaky_payment(&self, order: &str) -> bool {
        Behaviour::hits(self.flaky_payment_every, order, 2)
    }

    pub fn slow_inventory(&self, order: &str) -> bool {
        Behaviour::hits(self.slow_inventory_every, order, 8)
    }
}

/// The number in an order id such as `order-17`.
pub fn number(order: &str) -> Option<u64> {
    order.rsplit('-').next()?.parse().ok()
}

#[derive(Clone, Debug)]
pub struct Options {
    pub name: String,
    pub listen: SocketAddr,
    /// The local API of this app's sidecar (`http://127.0.0.1:15000`); can also be set later
    /// with `PUT /admin/sidecar` (the demo starts the app before its sidecar).
    pub sidecar: Option<String>,
    pub mode: Mode,
    pub behaviour: Behaviour,
}

/// An app's shared state: who it is and how it reaches its sidecar.
#[derive(Clone)]
pub struct App {
    pub name: Arc<str>,
    /// Orchestrated (true) or choreographed; the demo switches it between stages.
    orchestrated: Arc<AtomicBool>,
    pub behaviour: Behaviour,
    sidecar: Arc<RwLock<Option<String>>>,
    /// The app's own Kafka client, when the demo runs on the Kafka bus.
    kafka: Arc<RwLock<Option<crate::kafka::Link>>>,
    http: HttpClient,
}

impl App {
    pub fn new(options: &Options) -> App {
        App {
            name: options.name.as_str().into(),
            orchestrated: Arc::new(AtomicBool::new(options.mode == Mode::Orchestration)),
            behaviour: options.behaviour,
            sidecar: Arc::new(RwLock::new(
                options
                    .sidecar
                    .as_deref()
                    .map(|s| s.trim_end_matches('/').to_owned()),
            )),
            kafka: Arc::new(RwLock::new(None)),
            http: HttpClient::new(),
        }
    }

    /// From now on events go to Kafka through `link` (the sidecar's Kafka port).
    pub fn set_kafka(&self, link: crate::kafka::Link) {
        if let Ok(mut k) = self.kafka.write() {
            *k = Some(link);
        }
    }

    pub fn mode(&self) -> Mode {
        if self.orchestrated.load(Ordering::Relaxed) {
            Mode::Orchestration
        } else {
            Mode::Choreography
        }
    }

    pub fn set_sidecar(&self, url: &str) {
        if let Ok(mut s) = self.sidecar.write() {
            *s = Some(url.trim().trim_end_matches('/').to_owned());
        }
    }

    fn sidecar(&self) -> Option<String> {
        self.sidecar.read().ok().and_then(|s| s.clone())
    }

    pub fn set_mode(&self, mode: Mode) {
        self.orchestrated
            .store(mode == Mode::Orchestration, Ordering::Relaxed);
    }

    /// Publishes an event: to Kafka when the app has a Kafka client, else through the
    /// sidecar's event API; retried while the sidecar is busy or away.
    pub async fn publish(&self, event: Value) -> Result<(), String> {
        let kafka = self.kafka.read().ok().and_then(|k| k.clone());
        if let Some(link) = kafka {
            let key = event["traceid"].as_str().unwrap_or_default().to_owned();
            return link.publish(&key, &event).await;
        }
        let sidecar = self
            .sidecar()
            .ok_or("the app does not know its sidecar yet (PUT /admin/sidecar)")?;
        let url = format!("{sidecar}/v1/events/{TOPIC}");
        let body = Bytes::from(event.to_string());
        let mut wait = Duration::from_millis(50);
        for _ in 0..20 {
            match self
                .http
                .send(
                    Method::POST,
                    &url,
                    &[("content-type", "application/json")],
                    body.clone(),
                    Duration::from_secs(10),
                )
                .await
            {
                Ok(r) if r.status.is_success() => return Ok(()),
                Ok(r) if r.status.is_client_error() => {
                    return Err(format!(
                        "the sidecar refused the event ({}): {}",
                        r.status,
                        String::from_utf8_lossy(&r.body)
                    ));
                }
                Ok(_) | Err(_) => {
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(2));
                }
            }
        }
        Err(format!("the sidecar at {sidecar} did not take the event"))
    }

    /// A new event of this app: the business transaction's `traceid` and the `correlationid`
    /// of the command it answers, if any.
    pub fn event(
        &self,
        event_type: &str,
        traceid: &str,
        correlationid: Option<&str>,
        data: Value,
    ) -> Value {
        let mut id = [0u8; 8];
        fastrand::fill(&mut id);
        let id: String = id.iter().map(|b| format!("{b:02x}")).collect();
        let mut e = json!({
            "specversion": "1.0",
            "id": id,
            "source": format!("/{}", self.name),
            "type": event_type,
            "datacontenttype": "application/json",
            "traceid": traceid,
            "subject": traceid,
            "partitionkey": traceid,
            "data": data,
        });
        if let Some(c) = correlationid {
            e["correlationid"] = json!(c);
        }
        e
    }
}

/// An event as it reaches an app: its type, transaction and data.
pub struct Incoming {
    pub event_type: String,
    pub traceid: String,
    pub correlationid: Option<String>,
    pub data: Value,
}

impl Incoming {
    pub fn read(event: &Value) -> Incoming {
        let text = |k: &str| event.get(k).and_then(|v| v.as_str()).map(str::to_owned);
        Incoming {
            event_type: text("type").unwrap_or_default(),
            traceid: text("traceid").unwrap_or_default(),
            correlationid: text("correlationid").or_else(|| text("id")),
            data: event.get("data").cloned().unwrap_or(Value::Null),
        }
    }

    /// The order the event is about: `data.refId` of commands and replies, `data.orderId` of
    /// OrderPlaced.
    pub fn order(&self) -> String {
        ["refId", "orderId"]
            .iter()
            .find_map(|k| self.data.get(*k).and_then(|v| v.as_str()))
            .unwrap_or(&self.traceid)
            .to_owned()
    }
}

/// A unique id with a prefix (`pick-…`, `shipment-…`).
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}-{:08x}", fastrand::u32(..))
}

/// The step of a service that answers one event with another: it reacts to `choreography`'s
/// event type or to `orchestration`'s command (whichever the app's mode says), waits `delay`
/// for the orders that take long, and publishes `reply` with `data` for the order.
pub struct Step {
    pub choreography: &'static str,
    pub orchestration: &'static str,
    pub reply: &'static str,
    pub delay: fn(&Behaviour, &str) -> bool,
    pub data: fn(&str) -> Value,
}

impl Step {
    /// The API of an app that is only this step: `POST /events` (its subscription) and
    /// `GET /healthz`.
    pub fn router(&'static self, app: App) -> axum::Router {
        axum::Router::new()
            .route(
                "/events",
                axum::routing::post(
                    move |axum::extract::State(app): axum::extract::State<App>,
                          axum::Json(event): axum::Json<Value>| async move {
                        self.take(&app, &event);
                        axum::http::StatusCode::OK
                    },
                ),
            )
            .route("/healthz", axum::routing::get(|| async { "ok\n" }))
            .with_state(app)
    }

    /// Takes an event delivered to the app; the answer (if any) is published in the background.
    pub fn take(&'static self, app: &App, event: &Value) {
        let e = Incoming::read(event);
        let trigger = match app.mode() {
            Mode::Choreography => self.choreography,
            Mode::Orchestration => self.orchestration,
        };
        if e.event_type != trigger {
            return;
        }
        let app = app.clone();
        tokio::spawn(async move {
            let order = e.order();
            if (self.delay)(&app.behaviour, &order) {
                tokio::time::sleep(Duration::from_millis(app.behaviour.slow_ms)).await;
            }
            let reply = app.event(
                self.reply,
                &e.traceid,
                e.correlationid.as_deref(),
                (self.data)(&order),
            );
            if let Err(err) = app.publish(reply).await {
                tracing::warn!("{}: {err}", app.name);
            }
        });
    }
}
