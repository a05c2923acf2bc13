//! The sidecar as one component: options ([`Config`]) → [`Sidecar::build`] (binds every
//! listener, so a port in use fails at once) → [`Sidecar::run`] until shutdown, with a cheap
//! [`Handle`] for the bound addresses and the metrics.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use hyper::http::uri::Authority;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::{Config, Limits};
use crate::forward::Forwarder;
use crate::metrics::Metrics;
use crate::{local_api, server};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot listen on {addr} (listen.{name}): {source}")]
    Listen {
        name: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("app.address {0} cannot be used as an upstream")]
    App(SocketAddr),
    #[error("the local API stopped: {0}")]
    Local(std::io::Error),
}

pub struct Sidecar {
    config: Config,
    local: TcpListener,
    inbound: TcpListener,
    app: Authority,
    metrics: Metrics,
}

/// What a running sidecar exposes: where it listens, and its metrics.
#[derive(Clone)]
pub struct Handle {
    pub local: SocketAddr,
    pub inbound: SocketAddr,
    pub metrics: Metrics,
}

async fn bind(name: &'static str, addr: SocketAddr) -> Result<TcpListener, Error> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Listen { name, addr, source })
}

impl Sidecar {
    pub async fn build(config: Config) -> Result<Sidecar, Error> {
        let app = Authority::try_from(config.app.address.to_string())
            .map_err(|_| Error::App(config.app.address))?;
        let local = bind("local", config.listen.local).await?;
        let inbound = bind("inbound", config.listen.inbound).await?;
        Ok(Sidecar {
            config,
            local,
            inbound,
            app,
            metrics: Metrics::new(),
        })
    }

    pub fn handle(&self) -> Handle {
        let addr = |l: &TcpListener| {
            l.local_addr()
                .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
        };
        Handle {
            local: addr(&self.local),
            inbound: addr(&self.inbound),
            metrics: self.metrics.clone(),
        }
    }

    /// Serves until `shutdown` resolves, then drains in-flight requests.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), Error> {
        let limits = Arc::new(self.config.limits.clone());
        let (stop, stopped) = watch::channel(false);
        let on_stop = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };

        let inbound = tokio::spawn(serve_inbound(
            self.inbound,
            limits.clone(),
            self.metrics.clone(),
            Forwarder::new(&limits),
            self.app.clone(),
            on_stop(stopped.clone()),
        ));
        let local = axum::serve(
            self.local,
            local_api::router(self.metrics.clone(), self.config.app.address),
        )
        .with_graceful_shutdown(on_stop(stopped.clone()));
        let local = tokio::spawn(async move { local.await });

        shutdown.await;
        let _ = stop.send(true);
        let _ = inbound.await;
        match local.await {
            Ok(Err(e)) => Err(Error::Local(e)),
            _ => Ok(()),
        }
    }
}

/// Callers → the app.
async fn serve_inbound(
    listener: TcpListener,
    limits: Arc<Limits>,
    metrics: Metrics,
    forwarder: Forwarder,
    app: Authority,
    shutdown: impl Future<Output = ()>,
) {
    let m = metrics.clone();
    let handle = move |request, peer| {
        let (forwarder, app, metrics) = (forwarder.clone(), app.clone(), m.clone());
        async move {
            let started = Instant::now();
            let response = forwarder.forward(request, &app, peer).await;
            metrics.request(
                "inbound",
                "other",
                response.status().as_u16(),
                started.elapsed(),
            );
            response
        }
    };
    server::serve(listener, "inbound", limits, metrics, handle, shutdown).await;
}
