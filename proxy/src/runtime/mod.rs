//! The workflow runtime: runs the processes this sidecar's service owns, on the engine with its
//! state in redb (`data_dir/engine.redb`).
//!
//! ```text
//!  local API, job results, ──► Queue ──► engine thread: one transaction per batch ──► replies
//!  observations, deploys                 (engine state + runtime index, one fsync)  ──► actions
//!                                                                                        │
//!        jobs ◄── Worker (HTTP to the app) ◄──────── dispatcher ◄────────────────────────┘
//!                                                    publications → owners of the message
//! ```
//!
//! Options → [`Runtime::build`] (opens the file) → [`Runtime::run`] until shutdown, with a
//! cheap [`Handle`] for the local API.

pub mod api;
pub mod bus;
mod core;
pub mod deliver;
pub mod inbox;
pub mod index;
mod jobs;
pub mod kafka_bus;
pub mod outbox;
mod received;
pub mod rollout;
pub mod spans;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use flowmesh_bpmn::engine::state::Reader;
use flowmesh_bpmn::feel::Value;

/// How long a message observed in traffic waits for its subscription.
pub(crate) const OBSERVED_TTL_MS: i64 = 3_600_000;
use flowmesh_bpmn::engine::{
    self, Accepted, Action, Command, CommandResult, Engine, JobActivation, Publication,
    SignalBroadcast,
};
use tokio::sync::mpsc;

use crate::config::{self, JobSpec};
use crate::deployments::{Deployments, Watched};
use crate::engine_store::{RedbStore, Snapshots};
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::telemetry::Telemetry;
use crate::telemetry::span::Span;
use crate::telemetry::stitch::Stitch;
pub use core::{Work, Writes};
pub use index::Origin;
use outbox::Delivery;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the engine's storage failed: {0}")]
    Storage(String),
    #[error("the engine's state is inconsistent: {0}")]
    Engine(String),
    #[error("the engine is busy: too many commands are waiting; retry shortly")]
    Busy,
    #[error("the workflow runtime has stopped")]
    Stopped,
    #[error("the event bus failed: {0}")]
    Bus(String),
}

impl From<engine::Error> for Error {
    fn from(e: engine::Error) -> Error {
        match e {
            engine::Error::Store(s) => Error::Storage(s.to_string()),
            engine::Error::Corrupt(c) => Error::Engine(c),
        }
    }
}

impl From<flowmesh_bpmn::store::Error> for Error {
    fn from(e: flowmesh_bpmn::store::Error) -> Error {
        Error::Storage(e.to_string())
    }
}

pub struct Options {
    /// The service this sidecar stands next to (it runs the processes this service owns).
    pub service: String,
    pub app: SocketAddr,
    pub data_dir: PathBuf,
    pub jobs: BTreeMap<String, JobSpec>,
    pub runtime: config::Runtime,
    /// Where peers' sidecars are (for the outbox).
    pub registry: Registry,
    /// Event topics delivered to the app.
    pub subscriptions: Vec<config::Subscription>,
    /// Where spans go, and the trace contexts remembered by business key.
    pub telemetry: Telemetry,
    /// The Kafka bus, when `[bus] kind = "kafka"`: the cluster and this service's group.
    pub kafka_bus: Option<KafkaBusOptions>,
}

#[derive(Clone, Debug)]
pub struct KafkaBusOptions {
    pub bootstrap: Vec<String>,
    pub group: String,
}

pub struct Runtime {
    handle: Handle,
    options: Options,
    spans: (mpsc::UnboundedSender<Span>, mpsc::UnboundedReceiver<Span>),
    store: RedbStore,
    engine: Engine,
    queue: core::Queue,
    rx: std::sync::mpsc::Receiver<Work>,
    deployments: Watched,
    metrics: Metrics,
}

/// What the local API and the data plane use: cheap to clone.
#[derive(Clone)]
pub struct Handle {
    inner: Arc<Shared>,
}

struct Shared {
    service: String,
    queue: core::Queue,
    snapshots: Snapshots,
    deployments: Watched,
    max_request_bytes: usize,
    metrics: Metrics,
    registry: Registry,
    own_topics: Vec<String>,
    /// The Kafka bus's producer (absent: the mesh bus).
    kafka: Option<kafka_bus::FutureProducer>,
    spans: mpsc::UnboundedSender<Span>,
    /// Until the runtime stops (it must not keep the sidecar's file open after that).
    stitch: std::sync::Mutex<Option<Stitch>>,
    /// The event bindings of the deployments at a revision.
    event_bindings: std::sync::RwLock<(u64, Arc<Vec<flowmesh_bpmn::model::EventBinding>>)>,
}

impl Runtime {
    pub fn build(
        options: Options,
        deployments: Watched,
        metrics: Metrics,
    ) -> Result<Runtime, Error> {
        std::fs::create_dir_all(&options.data_dir).map_err(|e| {
            Error::Storage(format!("cannot create {}: {e}", options.data_dir.display()))
        })?;
        let mut store = RedbStore::open(&options.data_dir.join("engine.redb"))?;
        store.transact_with(|_, txn| {
            index::create(txn)?;
            inbox::create(txn)?;
            received::create(txn)?;
            outbox::create(txn)
        })?;
        let engine = Engine::new(engine::Options {
            record_events: true,
            job_retries: options
                .jobs
                .iter()
                .filter_map(|(t, spec)| Some((t.clone(), spec.retries?)))
                .collect(),
            start_version: Some(engine::StartVersion({
                // Instances that messages start follow the rollout weights too.
                let deployments = deployments.clone();
                Arc::new(move |process: &str, key: &str| {
                    let current = deployments.current();
                    let weights = current.rollouts.get(process)?;
                    rollout::pick(weights, (!key.is_empty()).then_some(key))
                })
            })),
            ..engine::Options::default()
        });
        let (queue, rx) = core::queue(options.runtime.max_queued);
        let spans = mpsc::unbounded_channel();
        let kafka = match &options.kafka_bus {
            Some(k) => Some(kafka_bus::producer(&k.bootstrap)?),
            None => None,
        };
        let handle = Handle {
            inner: Arc::new(Shared {
                service: options.service.clone(),
                queue: queue.clone(),
                snapshots: store.snapshots(),
                deployments: deployments.clone(),
                max_request_bytes: options.runtime.max_request_bytes,
                metrics: metrics.clone(),
                registry: options.registry.clone(),
                own_topics: options
                    .subscriptions
                    .iter()
                    .map(|s| s.topic.clone())
                    .collect(),
                event_bindings: std::sync::RwLock::new((u64::MAX, Arc::default())),
                kafka,
                spans: spans.0.clone(),
                stitch: std::sync::Mutex::new(Some(options.telemetry.stitch().clone())),
            }),
        };
        Ok(Runtime {
            handle,
            spans,
            options,
            store,
            engine,
            queue,
            rx,
            deployments,
            metrics,
        })
    }

    /// The one handle of this runtime (every clone shares its state).
    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// Runs until `shutdown` resolves; the engine thread finishes the batch it is in.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) -> Result<(), Error> {
        let Runtime {
            handle,
            spans: (_, mut spans),
            options,
            store,
            engine,
            queue,
            rx,
            deployments,
            metrics,
        } = self;
        let stored = store.snapshots().read_with(|_, txn| -> Result<_, Error> {
            let mut by_state: BTreeMap<&'static str, i64> = BTreeMap::new();
            for ((_, _, state), n) in index::counts(txn)? {
                let Some(state) = index::InstanceState::parse(&state) else {
                    continue;
                };
                *by_state.entry(state.name()).or_default() += i64::try_from(n).unwrap_or(i64::MAX);
            }
            let incidents = index::incidents(txn, None)?.len();
            Ok((by_state, incidents, outbox::depth(txn)?))
        });
        match stored {
            Ok((by_state, incidents, depth)) => metrics.runtime_state(
                &by_state.into_iter().collect::<Vec<_>>(),
                i64::try_from(incidents).unwrap_or(i64::MAX),
                i64::try_from(depth).unwrap_or(i64::MAX),
            ),
            Err(e) => tracing::warn!("cannot read the runtime's state for its metrics: {e}"),
        }
        let (actions_tx, mut actions) = mpsc::unbounded_channel();
        let (ended_tx, mut ended) = mpsc::unbounded_channel();
        let outbox_ready = Arc::new(tokio::sync::Notify::new());
        let inbox_ready = Arc::new(tokio::sync::Notify::new());
        let outputs = core::Outputs {
            actions: actions_tx,
            ended: ended_tx,
            outbox: outbox_ready.clone(),
            inbox: inbox_ready.clone(),
        };
        let max_batch = options.runtime.max_batch;
        let thread_metrics = metrics.clone();
        let stopping = Arc::new(AtomicBool::new(false));
        let stop_flag = stopping.clone();
        let thread = std::thread::Builder::new()
            .name("flowmesh-engine".into())
            // Ending a process instance ends what it called, recursively: call activities nest
            // up to `calls::MAX_DEPTH` deep. Only the pages used count against memory.
            .stack_size(64 * 1024 * 1024)
            .spawn(move || {
                core::run(
                    store,
                    engine,
                    rx,
                    max_batch,
                    outputs,
                    &thread_metrics,
                    &stop_flag,
                );
            })
            .map_err(|e| Error::Storage(format!("cannot start the engine thread: {e}")))?;

        let worker = jobs::Worker::new(
            &options.service,
            options.app,
            options.jobs.clone(),
            queue.clone(),
            metrics.clone(),
            handle.bus(),
        );
        let dispatch = {
            let handle = handle.clone();
            tokio::spawn(async move {
                while let Some(action) = actions.recv().await {
                    match action {
                        Action::Job(job) => {
                            let place = handle.place(&job);
                            worker.start(job, place);
                        }
                        Action::Publish(p) => handle.route_publication(p).await,
                        Action::Signal(s) => handle.route_signal_broadcast(s).await,
                    }
                }
            })
        };
        let telemetry = options.telemetry.clone();
        let exporting = tokio::spawn(async move {
            loop {
                tokio::select! {
                    Some(batch) = ended.recv() => {
                        for e in &batch {
                            if let Some(span) = spans::element(e) {
                                telemetry.export(span);
                            }
                        }
                    }
                    Some(span) = spans.recv() => telemetry.export(span),
                    else => return,
                }
            }
        });
        let deploying = tokio::spawn(deploy_owned(handle.clone(), deployments.subscribe()));
        let sending = tokio::spawn(deliver::send(
            handle.clone(),
            options.registry.clone(),
            outbox_ready,
        ));
        let consuming = options.kafka_bus.clone().map(|k| {
            let topics = options
                .subscriptions
                .iter()
                .map(|s| s.topic.clone())
                .collect();
            tokio::spawn(kafka_bus::consume(
                handle.clone(),
                k.bootstrap,
                k.group,
                topics,
            ))
        });
        let delivering = tokio::spawn(inbox::deliver(
            handle.clone(),
            options.app,
            options.subscriptions.clone(),
            inbox_ready,
        ));

        shutdown.await;
        deploying.abort();
        if let Some(c) = consuming {
            c.abort();
        }
        sending.abort();
        delivering.abort();
        dispatch.abort();
        exporting.abort();
        if let Ok(mut s) = handle.inner.stitch.lock() {
            s.take();
        }
        // The engine finishes the batch it is in and closes the file (a restart in the same
        // process can open it again); work queued after this is refused as stopped.
        stopping.store(true, Ordering::Release);
        let _ = queue.push(Work::new(Vec::new()));
        drop(queue);
        drop(handle);
        tokio::task::spawn_blocking(move || thread.join())
            .await
            .map_err(|_| Error::Stopped)?
            .map_err(|_| Error::Engine("the engine thread panicked".to_owned()))
    }
}

impl Handle {
    pub fn service(&self) -> &str {
        &self.inner.service
    }

    pub fn snapshots(&self) -> &Snapshots {
        &self.inner.snapshots
    }

    pub fn deployments(&self) -> Arc<Deployments> {
        self.inner.deployments.current()
    }

    /// Hands a finished span to the exporter.
    pub fn export(&self, span: Span) {
        let _ = self.inner.spans.send(span);
    }

    /// The trace contexts remembered by business key (none once the runtime stopped).
    pub fn stitch(&self) -> Option<Stitch> {
        self.inner.stitch.lock().ok().and_then(|s| s.clone())
    }

    pub fn max_request_bytes(&self) -> usize {
        self.inner.max_request_bytes
    }

    /// Runs commands as one transaction and returns their results once durable.
    pub async fn run(&self, work: Work) -> Result<Vec<CommandResult>, Error> {
        self.inner.queue.run(work).await
    }

    /// One command, durable when this returns.
    pub async fn command(&self, command: Command) -> Result<CommandResult, Error> {
        let mut results = self.run(Work::new(vec![command])).await?;
        results.pop().ok_or(Error::Stopped)
    }

    /// Where a job's element belongs: its instance's trace and business key.
    fn place(&self, job: &JobActivation) -> Option<index::Place> {
        self.inner
            .snapshots
            .read_with(|_, txn| index::place(txn, job.instance, job.element_instance))
            .ok()
            .flatten()
    }

    /// Hands a message the engine published to the services waiting for it, and
    /// acknowledges it in the same transaction.
    async fn route_publication(&self, p: Publication) {
        let trace = self
            .inner
            .snapshots
            .read_with(|_, txn| index::place(txn, p.instance, p.element_instance))
            .ok()
            .flatten()
            .map(|p| p.traceparent());
        let variables = match Value::Context(p.variables.clone()).to_json() {
            serde_json::Value::Object(m) => m,
            _ => serde_json::Map::new(),
        };
        let mut work = self.route(Delivery {
            id: p.message_id.clone(),
            name: p.name.clone(),
            correlation_key: p.correlation_key.clone(),
            variables,
            ttl_ms: p.ttl_ms,
            traceparent: trace,
        });
        work.commands.push(Command::AckPublication { key: p.key });
        work.origins.push(None);
        self.submit(work).await;
    }

    /// Hands a signal the engine threw to every service that may wait for it, this one
    /// included, and acknowledges it in the same transaction.
    async fn route_signal_broadcast(&self, s: SignalBroadcast) {
        let variables = match Value::Context(s.variables.clone()).to_json() {
            serde_json::Value::Object(m) => m,
            _ => serde_json::Map::new(),
        };
        let mut work = self.route_signal(outbox::SignalDelivery {
            id: s.id.clone(),
            name: s.name.clone(),
            variables,
        });
        work.commands.push(Command::AckPublication { key: s.key });
        work.origins.push(None);
        self.submit(work).await;
    }

    /// A message observed in traffic, on its way to the processes that wait for it. The
    /// request that carried it does not wait for the engine's commit.
    pub fn observed(&self, o: &crate::observe::Observation) {
        self.deliver_observed(vec![Delivery {
            id: o.id.clone(),
            name: o.message.clone(),
            correlation_key: o.key.clone(),
            variables: o.variables.clone(),
            ttl_ms: OBSERVED_TTL_MS,
            traceparent: (!o.traceparent.is_empty()).then(|| o.traceparent.clone()),
        }]);
    }

    /// Messages observed in traffic (HTTP requests, Kafka records), routed in the background.
    pub fn deliver_observed(&self, deliveries: Vec<Delivery>) {
        if deliveries.is_empty() {
            return;
        }
        let work = self.route_all(deliveries);
        let handle = self.clone();
        tokio::spawn(async move { handle.submit(work).await });
    }

    /// Runs `work`, waiting while the engine's queue is full; gives up only when it stopped
    /// (what it carried is then redone from durable state or by its sender's retry).
    async fn submit(&self, work: Work) {
        let mut work = work;
        let mut wait = std::time::Duration::from_millis(5);
        loop {
            match self.inner.queue.run_or_keep(work).await {
                Ok(_) => return,
                Err((Error::Busy, Some(back))) => {
                    crate::timer::sleep(wait).await;
                    wait = (wait * 2).min(std::time::Duration::from_secs(1));
                    work = back;
                }
                Err((e, _)) => {
                    tracing::warn!("routing a message failed: {e}");
                    return;
                }
            }
        }
    }
}

/// The HTTP/1.1 client the runtime's tasks use towards the app and peer sidecars: pooled
/// keep-alive connections, no Nagle delay, a bounded connect.
pub(crate) type HttpClient =
    hyper_util::client::legacy::Client<crate::timer::Connector, http_body_util::Full<bytes::Bytes>>;

pub(crate) fn http_client() -> HttpClient {
    let connector = crate::timer::Connector::new(std::time::Duration::from_secs(2));
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .pool_idle_timeout(std::time::Duration::from_secs(30))
        .build(connector)
}

/// Deploys into the local engine every version of the processes this service owns, in the
/// control plane's version order, so that local version N is the control plane's version N.
async fn deploy_owned(
    handle: Handle,
    mut deployments: tokio::sync::watch::Receiver<Arc<Deployments>>,
) {
    loop {
        let current = deployments.borrow_and_update().clone();
        let mut retry = false;
        for model in current.owned_by(&handle.inner.service) {
            let Some(xml) = &model.xml else { continue };
            let have = handle
                .inner
                .snapshots
                .read_with(|kv, _| Reader::new(kv).versions(&model.process))
                .map(|v| v.len())
                .unwrap_or(0);
            if u32::try_from(have).unwrap_or(u32::MAX) >= model.version {
                continue;
            }
            let deploy = Command::Deploy {
                resource: format!("{} v{}", model.process, model.version),
                xml: xml.clone(),
            };
            match handle.command(deploy).await {
                Ok(Ok(Accepted::Deployed(done))) => {
                    for d in done.iter().filter(|d| d.process_id == model.process) {
                        if d.version != model.version {
                            tracing::error!(
                                process = %model.process,
                                "control-plane version {} became local version {}; instances of it run as the local one",
                                model.version,
                                d.version
                            );
                        }
                    }
                }
                Ok(other) => tracing::error!(
                    process = %model.process,
                    version = model.version,
                    "the engine refused the deployed model: {other:?}"
                ),
                Err(e) => {
                    tracing::warn!(
                        "deploying {} v{}: {e}; retrying",
                        model.process,
                        model.version
                    );
                    retry = true;
                    break;
                }
            }
        }
        if retry {
            crate::timer::sleep(std::time::Duration::from_millis(500)).await;
            continue;
        }
        if deployments.changed().await.is_err() {
            return;
        }
    }
}
