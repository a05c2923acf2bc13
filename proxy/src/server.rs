//! Serving a listener: HTTP/1.1 and HTTP/2 (by the connection preface) with the configured
//! limits, a cap on open connections, protocol upgrades, and a graceful stop that lets
//! in-flight requests finish within the drain time.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::body::Body;
use crate::config::Limits;
use crate::forward;
use crate::guard::Guarded;
use crate::link::AppLink;
use crate::metrics::Metrics;

/// The most header fields hyper's HTTP/1 parser takes when not told otherwise.
const HYPER_MAX_HEADERS: usize = 100;

/// Who sent a request: the peer, and on listeners that lead to the app over HTTP/1, the
/// connection's own [`AppLink`] to it.
#[derive(Clone)]
pub struct Caller {
    pub peer: SocketAddr,
    /// The peer's address as a field value (`X-Forwarded-For`), made once per connection.
    pub address: Option<HeaderValue>,
    pub link: Option<AppLink>,
}

/// Serves `handle(request, caller)` on `listener` until `shutdown` resolves; then stops
/// accepting and waits up to `limits.drain_timeout` for open requests. With `app`, each
/// connection gets its own [`AppLink`] to it, driven in the connection's task.
pub async fn serve<H, F>(
    listener: TcpListener,
    direction: &'static str,
    limits: Arc<Limits>,
    metrics: Metrics,
    app: Option<SocketAddr>,
    handle: H,
    shutdown: impl Future<Output = ()>,
) where
    H: Fn(Request<Incoming>, Caller) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .keep_alive(true);
    // The guard refuses heads over the limit, and hyper stays the backstop for heads the guard
    // leaves to it (after an upgrade it did not watch). At the default limit hyper's own table
    // is that limit; only another limit is set, since a configured table is zeroed per request.
    if limits.max_header_count != HYPER_MAX_HEADERS {
        builder.http1().max_headers(limits.max_header_count);
    }
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_concurrent_streams)
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        .keep_alive_interval(Some(limits.idle_timeout / 2))
        .keep_alive_timeout(limits.idle_timeout / 2);
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    tokio::pin!(shutdown);
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            break;
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(%direction, "accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let handle = handle.clone();
        let (link, driver) = match app {
            Some(app) => {
                let (link, driver) =
                    AppLink::new(app, limits.connect_timeout, limits.request_timeout);
                (Some(link), Some(driver))
            }
            None => (None, None),
        };
        let address = forward::address_value(peer.ip()).ok();
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let handle = handle.clone();
            let caller = Caller {
                peer,
                address: address.clone(),
                link: link.clone(),
            };
            // Boxed: hyper stores the future it gets by value, and the handler's is kilobytes
            // (its telemetry and forwarding steps); a pointer is all that moves then.
            let answer = Box::pin(handle(request, caller));
            async move { Ok::<_, Infallible>(answer.await) }
        });
        let refused = metrics.clone();
        let stream = Guarded::new(
            stream,
            limits.max_header_bytes.max(8192),
            limits.max_header_count,
            move |reason| {
                tracing::info!(%direction, %peer, %reason, "refused a request");
                refused.request_refused(direction, reason);
            },
        );
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        let open = metrics.connection_opened(direction);
        tokio::spawn(async move {
            let connection = async {
                let _ = connection.await;
            };
            match driver {
                Some(driver) => until_first(connection, driver.run()).await,
                None => connection.await,
            }
            drop(open);
            drop(permit);
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(limits.drain_timeout, graceful.shutdown()).await;
}

/// Runs a client connection and its app link in one task until either ends, polling each only
/// when it was woken. A request passes back and forth between the two several times (the
/// request, its answer's head, each piece of its body); polling both whenever either is woken,
/// as `select!` does, would run the idle one's whole poll each time.
async fn until_first(a: impl Future<Output = ()> + Send, b: impl Future<Output = ()> + Send) {
    let mut both: FuturesUnordered<Pin<Box<dyn Future<Output = ()> + Send + '_>>> =
        FuturesUnordered::new();
    both.push(Box::pin(a));
    both.push(Box::pin(b));
    both.next().await;
}
