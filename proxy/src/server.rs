//! Serving a listener: HTTP/1.1 by our own server ([`front`]) and HTTP/2 by hyper's (told
//! apart by the connection preface), with the configured limits, a cap on open connections,
//! and a graceful stop that lets in-flight requests finish within the drain time.

use std::borrow::Cow;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::server::conn::http2;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::body::{Body, BoxError};
use crate::config::Limits;
use crate::fields;
use crate::forward;
use crate::front::{self, Settings, head::HeadLimits};
use crate::link::AppLink;
use crate::metrics::Metrics;
use crate::prefixed::Prefixed;

/// What an HTTP/2 connection starts with (RFC 9113 §3.4).
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Who sent a request: the peer, and on listeners that lead to the app over HTTP/1, the
/// connection's own [`AppLink`] to it.
#[derive(Clone)]
pub struct Caller {
    pub peer: SocketAddr,
    /// The peer's address as a field value (`X-Forwarded-For`), made once per connection.
    pub address: Option<HeaderValue>,
    pub link: Option<AppLink>,
}

/// Serves `handle(request, caller)` on `listener`, counting each answer in `metrics` under the
/// route the handler names, until `shutdown` resolves; then stops accepting and waits up to
/// `limits.drain_timeout` for open requests. With `app`, each HTTP/1 connection gets its own
/// [`AppLink`] to it, its body writer in a task next to the connection's. The future `handle`
/// returns is held by value in the connection's: a handler boxes what is large in it
/// (`boxed::pinned`), once, where it is built.
pub async fn serve<H, F>(
    listener: TcpListener,
    direction: &'static str,
    limits: Arc<Limits>,
    metrics: Metrics,
    app: Option<SocketAddr>,
    handle: H,
    shutdown: impl Future<Output = ()>,
) where
    H: Fn(Request<Body>, Caller) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = (Response<Body>, Cow<'static, str>)> + Send + 'static,
{
    let mut h2 = http2::Builder::new(TokioExecutor::new());
    h2.timer(crate::timer::HyperTimer::new())
        .max_concurrent_streams(limits.max_concurrent_streams)
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        .keep_alive_interval(Some(limits.idle_timeout / 2))
        .keep_alive_timeout(limits.idle_timeout / 2);
    let h2 = Arc::new(h2);
    let settings = Arc::new(Settings {
        limits: HeadLimits {
            max_bytes: limits.max_header_bytes,
            max_fields: limits.max_header_count,
        },
        header_read_timeout: limits.header_read_timeout,
        direction,
        metrics: metrics.clone(),
    });
    let graceful = GracefulShutdown::new();
    let stop = CancellationToken::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    tokio::pin!(shutdown);
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            break;
        };
        let (stream, peer) = tokio::select! {
            accepted = accept(&listener, direction) => accepted,
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let caller = Caller {
            peer,
            address: forward::address_value(peer.ip()).ok(),
            link: None,
        };
        let open = metrics.connection_opened(direction);
        let (handle, settings, h2, stop) =
            (handle.clone(), settings.clone(), h2.clone(), stop.clone());
        let watcher = graceful.watcher();
        let (connect_timeout, answer_timeout) = (limits.connect_timeout, limits.request_timeout);
        tokio::spawn(async move {
            // The first head is due within the header-read time of the connection's start.
            let due = tokio::time::Instant::now() + settings.header_read_timeout;
            let first = tokio::select! {
                first = sniff(stream, due) => first,
                () = stop.cancelled() => None,
            };
            let Some((stream, first)) = first else {
                return;
            };
            if first.starts_with(PREFACE) {
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    let request = request.map(incoming);
                    let started = Instant::now();
                    let answer = handle(request, caller.clone());
                    let metrics = settings.metrics.clone();
                    async move {
                        let (mut answer, route) = answer.await;
                        metrics.request(
                            direction,
                            &route,
                            answer.status().as_u16(),
                            started.elapsed(),
                        );
                        // hyper writes the header map only.
                        fields::materialize(&mut answer);
                        Ok::<_, Infallible>(answer)
                    }
                });
                let io = TokioIo::new(Prefixed::new(first.freeze(), stream));
                let _ = watcher.watch(h2.serve_connection(io, service)).await;
            } else {
                match app {
                    Some(app) => {
                        let (link, driver) = AppLink::new(app, connect_timeout, answer_timeout);
                        // The link's body writer is a task of its own: each of the two is then
                        // polled only when woken, by tokio's own wakers (a join in this task
                        // put a layer of wakers and queues under every read of the client and
                        // the app). It ends when the link does, with this connection.
                        tokio::spawn(driver.run());
                        let caller = Caller {
                            link: Some(link),
                            ..caller
                        };
                        front::serve(stream, first, due, settings, caller, handle, stop).await;
                    }
                    None => front::serve(stream, first, due, settings, caller, handle, stop).await,
                }
            }
            drop(open);
            drop(permit);
        });
    }
    drop(listener);
    stop.cancel();
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let drained = async {
        graceful.shutdown().await;
        let _ = slots.acquire_many(all).await;
    };
    let _ = crate::timer::timeout(limits.drain_timeout, drained).await;
}

/// An HTTP/2 request's body as the handlers take it.
fn incoming(body: Incoming) -> Body {
    body.map_err(BoxError::from).boxed()
}

/// The next connection, a failed accept waited out (the control plane's listeners share it).
pub(crate) use flowmesh_control_plane::server::accept;

/// Reads a connection's first bytes: enough to tell the HTTP/2 preface from an HTTP/1 head.
/// `None` when the client closes or sends nothing in time.
async fn sniff(mut stream: TcpStream, due: tokio::time::Instant) -> Option<(TcpStream, BytesMut)> {
    let mut first = BytesMut::with_capacity(front::READ_SIZE);
    let read = async {
        loop {
            let n = tokio::io::AsyncReadExt::read_buf(&mut stream, &mut first)
                .await
                .ok()?;
            if n == 0 {
                return None;
            }
            let seen = first.len().min(PREFACE.len());
            if first.len() >= PREFACE.len() || first[..seen] != PREFACE[..seen] {
                return Some(());
            }
        }
    };
    crate::timer::timeout_at(due, read).await.ok()??;
    Some((stream, first))
}
