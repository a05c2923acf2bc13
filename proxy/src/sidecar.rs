//! The sidecar as one component: options ([`Config`]) → [`Sidecar::build`] (opens its redb
//! file, binds every listener, so a taken port fails at once) → [`Sidecar::run`] until
//! shutdown, with a cheap [`Handle`] for the bound addresses, the registry and the metrics.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use futures_util::future::Either;
use hyper::http::uri::Authority;
use hyper::{Request, Response};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::body::Body;
use crate::cache::{self, Cache};
use crate::config::{Config, Limits};
use crate::control::ControlPlanes;
use crate::deployments::{Follower, Watched};
use crate::forward::Forwarder;
use crate::kafka::{self, KafkaProxy};
use crate::metrics::Metrics;
use crate::observe::{RuleSet, Rules};
use crate::registry::Registry;
use crate::routing::{self, Outbound};
use crate::runtime::{self, Runtime};
use crate::server::Caller;
use crate::telemetry::Telemetry;
use crate::telemetry::export::{self, Exporter};
use crate::telemetry::stitch::Stitch;
use crate::{local_api, registration, server};

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
    #[error("cannot read token_file {path}: {message}")]
    Token { path: String, message: String },
    #[error(transparent)]
    Cache(#[from] cache::Error),
    #[error(transparent)]
    Export(#[from] export::Error),
    /// The environment names an OTLP endpoint the exporter cannot use.
    #[error("{0}")]
    Telemetry(String),
    #[error(transparent)]
    Runtime(#[from] runtime::Error),
    #[error(transparent)]
    Kafka(#[from] kafka::Error),
}

struct Listeners {
    local: TcpListener,
    inbound: TcpListener,
    outbound: TcpListener,
    mesh: TcpListener,
}

pub struct Sidecar {
    config: Config,
    instance: String,
    listeners: Listeners,
    app: Authority,
    metrics: Metrics,
    registry: Registry,
    cache: Cache,
    control: Option<ControlPlanes>,
    advertised: Advertised,
    rules: RuleSet,
    telemetry: Telemetry,
    export: Option<export::Sender>,
    follower: Option<Follower>,
    deployments: Watched,
    runtime: Option<Runtime>,
    kafka: Option<KafkaProxy>,
}

/// What a running sidecar exposes.
#[derive(Clone)]
pub struct Handle {
    pub instance: String,
    pub local: SocketAddr,
    pub inbound: SocketAddr,
    pub outbound: SocketAddr,
    pub mesh: SocketAddr,
    /// The addresses the registry gets.
    pub advertised: Advertised,
    pub metrics: Metrics,
    pub registry: Registry,
    pub rules: RuleSet,
    pub deployments: Watched,
    /// The workflow runtime (absent once the sidecar has stopped).
    pub runtime: Option<runtime::Handle>,
    /// The Kafka proxy, when `[kafka]` is configured.
    pub kafka: Option<kafka::Handle>,
}

/// A sidecar's addresses as other hosts dial them, registered with the control plane.
#[derive(Clone, Copy, Debug)]
pub struct Advertised {
    /// Where other sidecars send the service's traffic (`listen.mesh_advertise`).
    pub mesh: SocketAddr,
    pub inbound: SocketAddr,
    /// Where operators and the control plane's monitor reach the local API.
    pub local: SocketAddr,
}

async fn bind(name: &'static str, addr: SocketAddr) -> Result<TcpListener, Error> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Listen { name, addr, source })
}

fn bound(listener: &TcpListener) -> SocketAddr {
    listener
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
}

/// The IP this host would use to reach `url`'s host (no packet is sent), else loopback.
fn local_ip_towards(url: Option<&String>) -> IpAddr {
    let target = url
        .and_then(|u| u.strip_prefix("http://"))
        .and_then(|rest| rest.split('/').next())
        .and_then(|authority| {
            std::net::ToSocketAddrs::to_socket_addrs(authority)
                .ok()?
                .next()
        });
    target
        .and_then(|t| {
            let socket = std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).ok()?;
            socket.connect(t).ok()?;
            Some(socket.local_addr().ok()?.ip())
        })
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

impl Sidecar {
    pub async fn build(config: Config) -> Result<Sidecar, Error> {
        let app = Authority::try_from(config.app.address.to_string())
            .map_err(|_| Error::App(config.app.address))?;
        let token = match &config.token_file {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .map_err(|e| Error::Token {
                        path: path.display().to_string(),
                        message: e.to_string(),
                    })?
                    .trim()
                    .to_owned(),
            ),
            None => None,
        };
        let cache = Cache::open(&config.data_dir)?;
        let listen = &config.listen;
        let listeners = Listeners {
            local: bind("local", listen.local).await?,
            inbound: bind("inbound", listen.inbound).await?,
            outbound: bind("outbound", listen.outbound).await?,
            mesh: bind("mesh", listen.mesh).await?,
        };
        // The registry gets addresses other hosts can dial: a listener bound to every
        // interface is given as the IP this host reaches the control plane from.
        let host = std::cell::OnceCell::new();
        let reachable = |listener: &TcpListener| {
            let addr = bound(listener);
            if addr.ip().is_unspecified() {
                let ip = *host.get_or_init(|| local_ip_towards(config.control_plane.first()));
                SocketAddr::new(ip, addr.port())
            } else {
                addr
            }
        };
        let advertised = Advertised {
            mesh: listen
                .mesh_advertise
                .unwrap_or_else(|| reachable(&listeners.mesh)),
            inbound: reachable(&listeners.inbound),
            local: reachable(&listeners.local),
        };
        let registry = Registry::new(config.balance);
        registry.restore(&cache);
        let instance = config.instance_name(bound(&listeners.inbound).port());
        let metrics = Metrics::new();
        let (follower, deployments) = Follower::restore(&config.service, &cache);
        let rules = RuleSet::default();
        rules.replace(Rules::from_models(&deployments.current().latest_xml()));
        let (exporter, export): (Option<Exporter>, _) = match config
            .telemetry
            .endpoint_in_effect()
            .map_err(Error::Telemetry)?
        {
            Some(endpoint) => {
                let mut options =
                    export::Options::new(endpoint, config.service.clone(), instance.clone());
                options.queue = config.telemetry.max_queued_spans;
                let (exporter, sender) = export::build(options, metrics.clone())?;
                (Some(exporter), Some(sender))
            }
            None => (None, None),
        };
        let telemetry = Telemetry::new(
            exporter,
            Stitch::new(cache.clone(), config.telemetry.stitch_ttl),
            rules.clone(),
            metrics.clone(),
            config.limits.max_buffered_body_bytes,
        );
        let runtime = Runtime::build(
            runtime::Options {
                service: config.service.clone(),
                app: config.app.address,
                data_dir: config.data_dir.clone(),
                jobs: config.jobs.clone(),
                runtime: config.runtime.clone(),
                registry: registry.clone(),
                subscriptions: config.subscriptions.clone(),
                telemetry: telemetry.clone(),
                kafka_bus: match (config.bus.kind, &config.kafka) {
                    (crate::config::BusKind::Kafka, Some(k)) => Some(runtime::KafkaBusOptions {
                        bootstrap: k.bootstrap.clone(),
                        group: config
                            .bus
                            .group
                            .clone()
                            .unwrap_or_else(|| format!("flowmesh-{}", config.service)),
                    }),
                    _ => None,
                },
            },
            deployments.clone(),
            metrics.clone(),
        )?;
        let kafka = match &config.kafka {
            Some(k) => {
                let tap = kafka::tap::Tap::new(
                    kafka::tap::Options {
                        inject: k.inject_traceparent,
                        max_batch_bytes: k.max_batch_bytes,
                        observe_fetched: k.observe_fetched,
                    },
                    telemetry.clone(),
                    Some(runtime.handle()),
                    metrics.clone(),
                );
                let options = kafka::Options {
                    listen: config.listen.kafka,
                    bootstrap: k.bootstrap.clone(),
                    advertised_host: k.advertised_host.clone(),
                    max_frame_bytes: k.max_frame_bytes,
                    max_in_flight: k.max_in_flight,
                    max_connections: k.max_connections,
                    connect_timeout: k.connect_timeout,
                };
                Some(KafkaProxy::build(options, tap, metrics.clone()).await?)
            }
            None => None,
        };
        Ok(Sidecar {
            kafka,
            follower: Some(follower),
            deployments,
            runtime: Some(runtime),
            rules,
            telemetry,
            export,
            control: ControlPlanes::new(&config.control_plane, token),
            config,
            instance,
            listeners,
            app,
            metrics,
            registry,
            cache,
            advertised,
        })
    }

    pub fn handle(&self) -> Handle {
        Handle {
            instance: self.instance.clone(),
            local: bound(&self.listeners.local),
            inbound: bound(&self.listeners.inbound),
            outbound: bound(&self.listeners.outbound),
            mesh: bound(&self.listeners.mesh),
            advertised: self.advertised,
            metrics: self.metrics.clone(),
            registry: self.registry.clone(),
            rules: self.rules.clone(),
            deployments: self.deployments.clone(),
            runtime: self.runtime.as_ref().map(Runtime::handle),
            kafka: self.kafka.as_ref().map(KafkaProxy::handle),
        }
    }

    /// Serves until `shutdown` resolves: then leaves the registry, stops accepting and drains
    /// in-flight requests.
    pub async fn run(mut self, shutdown: impl Future<Output = ()> + Send) -> Result<(), Error> {
        let limits = Arc::new(self.config.limits.clone());
        let (stop, stopped) = watch::channel(false);
        let on_stop = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let me = self.config.service.clone();
        // Shared, not cloned per request: a clone of the pooled clients is a dozen `Arc`s.
        let to_app = Arc::new(Forwarder::new(&limits));

        let mut background = Vec::new();
        let exporting = self.export.take().map(|sender| tokio::spawn(sender.run()));
        let stitch = self.telemetry.stitch().clone();
        background.push(tokio::spawn(
            stitch
                .clone()
                .write_behind(std::time::Duration::from_millis(200)),
        ));
        background.push(tokio::spawn(
            self.rules.clone().follow(self.deployments.subscribe()),
        ));
        let runtime_api = self.runtime.as_ref().map(Runtime::handle);
        let kafka = self
            .kafka
            .take()
            .map(|k| tokio::spawn(k.run(on_stop(stopped.clone()))));
        let running = self
            .runtime
            .take()
            .map(|r| tokio::spawn(r.run(on_stop(stopped.clone()))));
        if let Some(control) = &self.control {
            if let Some(follower) = self.follower.take() {
                background.push(tokio::spawn(
                    follower.follow(control.clone(), self.cache.clone()),
                ));
            }
            background.push(tokio::spawn(
                self.registry
                    .clone()
                    .follow(control.clone(), self.cache.clone()),
            ));
            let addresses = BTreeMap::from([
                ("mesh".to_owned(), self.advertised.mesh.to_string()),
                ("inbound".to_owned(), self.advertised.inbound.to_string()),
                ("local".to_owned(), self.advertised.local.to_string()),
            ]);
            background.push(tokio::spawn(registration::keep(
                control.clone(),
                me.clone(),
                self.instance.clone(),
                addresses,
                self.config
                    .subscriptions
                    .iter()
                    .map(|s| s.topic.clone())
                    .collect(),
            )));
        }

        let metrics = self.metrics.clone();
        let (forwarder, app) = (to_app.clone(), self.app.clone());
        let tel = Tracing {
            telemetry: self.telemetry.clone(),
            me: me.to_ascii_lowercase(),
            runtime: runtime_api.clone(),
        };
        let inbound = serve(
            Plane {
                listener: self.listeners.inbound,
                direction: "inbound",
                app: Some(self.config.app.address),
            },
            &limits,
            &metrics,
            tel.clone(),
            move |mut request: Request<Body>, caller| {
                let (forwarder, app) = (forwarder.clone(), app.clone());
                async move {
                    routing::unmark(request.headers_mut());
                    let mut answer = forwarder.forward(request, &app, caller).await;
                    routing::mark_answer(&mut answer);
                    (answer, Cow::Borrowed("other"))
                }
            },
            on_stop(stopped.clone()),
        );
        let (forwarder, app, mesh_me) = (to_app.clone(), self.app.clone(), me.clone());
        let deliveries = runtime_api.clone();
        let mesh = serve(
            Plane {
                listener: self.listeners.mesh,
                direction: "mesh",
                app: None,
            },
            &limits,
            &metrics,
            tel.clone(),
            move |mut request: Request<Body>, caller| {
                let (forwarder, app, me) = (forwarder.clone(), app.clone(), mesh_me.clone());
                let deliveries = deliveries.clone();
                async move {
                    if let Some(refusal) = routing::mesh_refusal(&request, &me) {
                        return (refusal, Cow::Borrowed("other"));
                    }
                    if request.uri().path() == runtime::deliver::PATH
                        && request.method() == hyper::Method::POST
                        && let Some(runtime) = &deliveries
                    {
                        let answer = runtime::deliver::receive(runtime, request).await;
                        return (answer, Cow::Borrowed(runtime::deliver::PATH));
                    }
                    routing::unmark(request.headers_mut());
                    let mut answer = forwarder.forward(request, &app, caller).await;
                    routing::mark_answer(&mut answer);
                    (answer, Cow::Borrowed("other"))
                }
            },
            on_stop(stopped.clone()),
        );
        let outbound_routes = Outbound {
            me: me.clone(),
            registry: self.registry.clone(),
            forwarder: Forwarder::mesh(&limits),
            metrics: metrics.clone(),
        };
        let outbound = serve(
            Plane {
                listener: self.listeners.outbound,
                direction: "outbound",
                app: None,
            },
            &limits,
            &metrics,
            tel,
            move |request: Request<Body>, caller| {
                let routes = outbound_routes.clone();
                async move {
                    let (answer, _service) = routes.handle(request, caller).await;
                    (answer, Cow::Borrowed("other"))
                }
            },
            on_stop(stopped.clone()),
        );
        let local = tokio::spawn(local_api::serve(
            self.listeners.local,
            limits.clone(),
            metrics.clone(),
            local_api::router(
                metrics.clone(),
                self.config.app.address,
                self.registry.clone(),
                runtime_api,
            ),
            on_stop(stopped.clone()),
        ));

        shutdown.await;
        for task in &background {
            task.abort();
        }
        if let Some(control) = &self.control {
            registration::leave(control, &me, &self.instance).await;
        }
        let _ = stop.send(true);
        let _ = tokio::join!(inbound, mesh, outbound, local);
        if let Some(kafka) = kafka {
            let _ = kafka.await;
        }
        if let Some(running) = running {
            let _ = running.await;
        }
        // The last spans and trace contexts: the exporter ends once no listener holds it.
        drop(self.telemetry);
        let _ = tokio::task::spawn_blocking(move || stitch.flush()).await;
        if let Some(exporting) = exporting {
            let _ = crate::timer::timeout(std::time::Duration::from_secs(3), exporting).await;
        }
        Ok(())
    }
}

/// One data-plane listener: its name in metrics and spans, and, for those that lead to the
/// app over HTTP/1, the app's address (each client connection then gets its own app link).
struct Plane {
    listener: TcpListener,
    direction: &'static str,
    app: Option<SocketAddr>,
}

/// What each data-plane request goes through: matching, stitching, its span.
#[derive(Clone)]
struct Tracing {
    telemetry: Telemetry,
    me: String,
    /// Where observations go (the receiving side routes them; the sending side's outbound
    /// only records them in its span, so that each request is one message).
    runtime: Option<runtime::Handle>,
}

impl Tracing {
    /// A request with telemetry on: matched (an observation goes to the runtime), its span
    /// begun, handled, its span ended.
    async fn traced<H, F>(
        &self,
        direction: &'static str,
        service: &str,
        request: Request<Body>,
        caller: Caller,
        handler: &H,
    ) -> (Response<Body>, Cow<'static, str>)
    where
        H: Fn(Request<Body>, Caller) -> F,
        F: Future<Output = (Response<Body>, Cow<'static, str>)>,
    {
        match self.telemetry.begin(direction, service, request).await {
            Ok((request, flight)) => {
                if direction != "outbound"
                    && let (Some(runtime), Some(o)) = (&self.runtime, &flight.observation)
                {
                    runtime.observed(o);
                }
                // Inline: this future is boxed whole.
                let (response, named) = handler(request, caller).await;
                let route = flight.route.clone().map_or(named, Cow::Owned);
                self.telemetry.end(flight, &response);
                (response, route)
            }
            Err(refusal) => (refusal, Cow::Borrowed("other")),
        }
    }
}

/// Serves one data-plane listener in its own task; the server counts each answer under
/// `direction` and its route (the binding's path template, else what the handler names).
fn serve<H, F>(
    plane: Plane,
    limits: &Arc<Limits>,
    metrics: &Metrics,
    tracing: Tracing,
    handler: H,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> tokio::task::JoinHandle<()>
where
    H: Fn(Request<Body>, Caller) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = (Response<Body>, Cow<'static, str>)> + Send + 'static,
{
    let Plane {
        listener,
        direction,
        app,
    } = plane;
    // One allocation shared by every request, not a copy of its name per request.
    let tracing = Arc::new(tracing);
    let handle = move |request: Request<Body>, caller| {
        if tracing.telemetry.is_idle() {
            // Nothing to match or export: the request goes straight to the handler (no layer
            // of ours to poll through). Boxed here, in one place: built in either arm of a
            // branch, it was built on the stack and then copied, kilobytes of it.
            return Either::Left(crate::boxed::pinned(|| handler(request, caller)));
        }
        let (handler, tracing) = (handler.clone(), tracing.clone());
        // Boxed: what matching and the span hold would size the idle path's future as well.
        Either::Right(crate::boxed::pinned(|| async move {
            // The service the request is for: only bindings and spans need it (the outbound
            // handler finds its target itself).
            let target;
            let service: &str = if direction != "outbound" {
                &tracing.me
            } else {
                target = routing::target_service(&request).unwrap_or_default();
                &target
            };
            tracing
                .traced(direction, service, request, caller, &handler)
                .await
        }))
    };
    tokio::spawn(server::serve(
        listener,
        direction,
        limits.clone(),
        metrics.clone(),
        app,
        handle,
        shutdown,
    ))
}
