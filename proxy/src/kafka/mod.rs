//! The Kafka-protocol proxy: the app's Kafka client bootstraps from the sidecar
//! (`[listen] kafka`), every broker address it could follow is rewritten to a sidecar
//! listener, and every record it produces or fetches passes the observation pipeline
//! ([`tap`]): trace context injected into produced records, spans, messages for the processes.
//!
//! Options → [`KafkaProxy::build`] (binds the bootstrap listener) → [`KafkaProxy::run`] until
//! shutdown, with a cheap [`Handle`].

pub mod batch;
pub mod brokers;
mod connection;
pub mod fetch;
pub mod frame;
pub mod produce;
pub mod rewrite;
pub mod tap;
mod varint;
pub mod versions;
mod wire;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;

use crate::metrics::Metrics;
use brokers::{Brokers, Opened};
use connection::Target;
use tap::Tap;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot listen on {addr} (listen.kafka): {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(
        "[kafka] bootstrap is empty: name the cluster's brokers, e.g. \"kafka-1:9092,kafka-2:9092\""
    )]
    NoBootstrap,
}

#[derive(Clone, Debug)]
pub struct Options {
    /// Where the app's client bootstraps.
    pub listen: SocketAddr,
    /// The real cluster's bootstrap brokers (`host:port`).
    pub bootstrap: Vec<String>,
    /// The host clients are told for broker listeners; default: the listen IP (loopback when
    /// it is unspecified).
    pub advertised_host: Option<String>,
    /// Largest request or response frame, in bytes.
    pub max_frame_bytes: usize,
    /// Requests waiting for their response per connection; more wait to be read.
    pub max_in_flight: usize,
    /// Client connections served at once across the listeners. A client beyond it waits,
    /// connected and unanswered, until one closes: one accepted per listener, the rest in
    /// the kernel's backlog.
    pub max_connections: usize,
    pub connect_timeout: Duration,
}

/// What every connection shares.
pub(crate) struct Shared {
    options: Options,
    brokers: Arc<Brokers>,
    tap: Tap,
    metrics: Metrics,
    next: AtomicUsize,
    /// One permit per client connection open (`Options::max_connections`).
    slots: Arc<Semaphore>,
}

impl Shared {
    /// Rotates over the bootstrap brokers.
    fn next_bootstrap(&self) -> usize {
        self.next.fetch_add(1, Ordering::Relaxed)
    }
}

pub struct KafkaProxy {
    listener: TcpListener,
    shared: Arc<Shared>,
    opened: mpsc::UnboundedReceiver<Opened>,
}

/// What a running proxy exposes.
#[derive(Clone)]
pub struct Handle {
    /// The bootstrap address clients are given.
    pub bootstrap: SocketAddr,
    brokers: Arc<Brokers>,
    groups: tap::Groups,
}

impl Handle {
    /// Every broker learned so far, with the sidecar listener that stands for it.
    pub fn brokers(&self) -> Vec<(String, SocketAddr)> {
        self.brokers.known()
    }

    /// The consumer group a client id was last seen in.
    pub fn group_of(&self, client: &str) -> Option<String> {
        self.groups.of(client)
    }
}

impl KafkaProxy {
    pub async fn build(options: Options, tap: Tap, metrics: Metrics) -> Result<KafkaProxy, Error> {
        if options.bootstrap.is_empty() {
            return Err(Error::NoBootstrap);
        }
        let listener = TcpListener::bind(options.listen)
            .await
            .map_err(|source| Error::Listen {
                addr: options.listen,
                source,
            })?;
        let ip = options.listen.ip();
        let advertised = options.advertised_host.clone().unwrap_or_else(|| {
            if ip.is_unspecified() {
                "127.0.0.1".to_owned()
            } else {
                ip.to_string()
            }
        });
        let (brokers, opened) = Brokers::new(ip, advertised);
        let slots = Arc::new(Semaphore::new(options.max_connections));
        Ok(KafkaProxy {
            listener,
            shared: Arc::new(Shared {
                slots,
                options,
                brokers: Arc::new(brokers),
                tap,
                metrics,
                next: AtomicUsize::new(0),
            }),
            opened,
        })
    }

    pub fn handle(&self) -> Handle {
        Handle {
            bootstrap: self
                .listener
                .local_addr()
                .unwrap_or(self.shared.options.listen),
            brokers: self.shared.brokers.clone(),
            groups: self.shared.tap.groups(),
        }
    }

    /// Accepts on the bootstrap listener and on each broker listener as it opens, until
    /// `shutdown`; then closes every connection (Kafka clients reconnect and retry).
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) {
        let KafkaProxy {
            listener,
            shared,
            mut opened,
        } = self;
        let (stop, stopped) = watch::channel(false);
        let mut accepting = JoinSet::new();
        accepting.spawn(accept(
            listener,
            Target::Bootstrap,
            shared.clone(),
            stopped.clone(),
        ));
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                Some(o) = opened.recv() => {
                    accepting.spawn(accept(o.listener, Target::Broker(o.upstream), shared.clone(), stopped.clone()));
                }
            }
        }
        let _ = stop.send(true);
        while accepting.join_next().await.is_some() {}
    }
}

async fn accept(
    listener: TcpListener,
    target: Target,
    shared: Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    let stop = async move {
        let _ = stopped.wait_for(|s| *s).await;
    };
    tokio::pin!(stop);
    loop {
        let client = tokio::select! {
            () = &mut stop => break,
            (client, _) = crate::server::accept(&listener, "kafka") => client,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        // Served only with a permit. Until one frees, the client is where a backlogged one
        // would be (connected, unanswered) and this listener accepts no more; a listener
        // waiting for a client holds no permit, so the cap counts served connections exactly.
        let permit = tokio::select! {
            () = &mut stop => break,
            permit = shared.slots.clone().acquire_owned() => permit,
        };
        let serving = connection::serve(shared.clone(), client, target.clone());
        connections.spawn(async move {
            serving.await;
            drop(permit);
        });
    }
    connections.shutdown().await;
}
