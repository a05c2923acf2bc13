//! Serving a node's HTTP API (an axum router) on its listener: HTTP/1.1 and HTTP/2; a new
//! connection's first byte due within a set time, and the rest of the head within that time of
//! it (else the connection is closed); a cap on open connections; an accept that waits out
//! failures instead of spinning; and a stop that lets requests under way finish within a drain
//! time and drops connections that have sent nothing yet.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::timer::{self, HyperTimer};

/// What a listener allows its clients.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Time a new connection has to send its first byte, and a request head to arrive whole
    /// after its first. A kept-alive connection may then sit idle (long polls ask for up to
    /// five minutes); `max_connections` bounds how many.
    pub header_read_timeout: Duration,
    /// Connections open at once; the next waits in the kernel's backlog until one closes.
    pub max_connections: usize,
    /// How long a stop waits for requests under way (long polls and event streams end there).
    pub drain_timeout: Duration,
}

impl Limits {
    /// The defaults, also those of the `flowmesh control-plane` flags.
    pub const DEFAULT: Limits = Limits {
        header_read_timeout: Duration::from_secs(10),
        max_connections: 10_000,
        drain_timeout: Duration::from_secs(5),
    };
}

impl Default for Limits {
    fn default() -> Limits {
        Limits::DEFAULT
    }
}

/// Serves `router` on `listener` until `shutdown` resolves; then stops accepting, and waits up
/// to `limits.drain_timeout` for the connections open then.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(HyperTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder.http2().timer(HyperTimer::new());
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    // Connections still waiting for their first byte when the stop comes are dropped.
    let (stopping, stopped) = tokio::sync::watch::channel(false);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let what = listener
        .local_addr()
        .map_or_else(|_| "listener".to_owned(), |a| a.to_string());
    tokio::pin!(shutdown);
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            break;
        };
        let (stream, _) = tokio::select! {
            accepted = accept(&listener, &what) => accepted,
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let (builder, watcher) = (builder.clone(), graceful.watcher());
        let service = TowerToHyperService::new(router.clone());
        let (header_read_timeout, mut stopped) = (limits.header_read_timeout, stopped.clone());
        tokio::spawn(async move {
            // hyper's header-read timer starts at a head's first byte: a connection that sends
            // nothing would be held for good. A peek, not `readable`: a fresh socket can be
            // reported readable before any byte came.
            let mut first = [0u8; 1];
            let peeked = tokio::select! {
                peeked = timer::timeout(header_read_timeout, stream.peek(&mut first)) => peeked,
                _ = stopped.wait_for(|s| *s) => return,
            };
            if !matches!(peeked, Ok(Ok(1))) {
                return;
            }
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            let _ = watcher.watch(connection).await;
            drop(permit);
        });
    }
    drop(listener);
    let _ = stopping.send(true);
    let _ = timer::timeout(limits.drain_timeout, graceful.shutdown()).await;
}

/// The next connection on `listener`. A failed accept (out of file descriptors and the like) is
/// logged and retried after a pause instead of in a spin; the pause is made with [`timer`], so
/// that it works on a runtime without a time driver as well.
pub async fn accept(
    listener: &TcpListener,
    what: impl std::fmt::Display,
) -> (TcpStream, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok(accepted) => return accepted,
            Err(e) => {
                tracing::warn!("{what}: accept failed: {e}");
                timer::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// A server on a free port with `router`, and the sender that stops it.
    async fn start(
        router: axum::Router,
        limits: Limits,
    ) -> (
        SocketAddr,
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = tokio::spawn(serve(listener, router, limits, async move {
            let _ = stopped.await;
        }));
        (addr, stop, served)
    }

    /// Everything the server sends until it closes the connection (at most 10 s).
    async fn rest(stream: &mut TcpStream) -> String {
        let mut rest = Vec::new();
        timer::timeout(Duration::from_secs(10), stream.read_to_end(&mut rest))
            .await
            .expect("the server closes the connection")
            .unwrap();
        String::from_utf8_lossy(&rest).into_owned()
    }

    #[tokio::test]
    async fn an_unfinished_head_is_cut_off_at_the_header_read_time() {
        let limits = Limits {
            header_read_timeout: Duration::from_millis(300),
            ..Limits::default()
        };
        let (addr, _stop, _served) = start(
            axum::Router::new().route("/x", get(|| async { "x" })),
            limits,
        )
        .await;
        // A whole request is answered.
        let mut whole = TcpStream::connect(addr).await.unwrap();
        whole
            .write_all(b"GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let answer = rest(&mut whole).await;
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(answer.ends_with("\r\n\r\nx"), "{answer}");
        // Part of a head, then nothing.
        let mut slow = TcpStream::connect(addr).await.unwrap();
        slow.write_all(b"GET /x HTTP/1.1\r\nHost: a\r\n")
            .await
            .unwrap();
        let started = Instant::now();
        // A connection that sends nothing.
        let mut silent = TcpStream::connect(addr).await.unwrap();
        let opened = Instant::now();
        assert_eq!(rest(&mut silent).await, "");
        assert!(opened.elapsed() >= Duration::from_millis(250));
        // hyper closes such a connection without an answer.
        assert_eq!(rest(&mut slow).await, "");
        assert!(started.elapsed() >= Duration::from_millis(250));
    }

    #[tokio::test]
    async fn a_stop_waits_for_a_request_under_way_at_most_the_drain_time() {
        let limits = Limits {
            drain_timeout: Duration::from_millis(500),
            ..Limits::default()
        };
        let (entered, mut inside) = tokio::sync::mpsc::channel::<()>(1);
        let router = axum::Router::new().route(
            "/forever",
            get(move || {
                let entered = entered.clone();
                async move {
                    let _ = entered.send(()).await;
                    std::future::pending::<&'static str>().await
                }
            }),
        );
        let (addr, stop, served) = start(router, limits).await;
        let mut waiting = TcpStream::connect(addr).await.unwrap();
        waiting
            .write_all(b"GET /forever HTTP/1.1\r\nHost: a\r\n\r\n")
            .await
            .unwrap();
        inside.recv().await.unwrap();
        let stopped = Instant::now();
        stop.send(()).unwrap();
        timer::timeout(Duration::from_secs(10), served)
            .await
            .expect("the server ends after its drain time")
            .unwrap();
        let took = stopped.elapsed();
        assert!(took >= Duration::from_millis(450), "{took:?}");
        // No new connection is taken once stopped.
        assert!(TcpStream::connect(addr).await.is_err());
    }

    #[tokio::test]
    async fn a_stop_closes_a_connection_that_has_sent_nothing_yet() {
        let (addr, stop, served) = start(axum::Router::new(), Limits::default()).await;
        let mut silent = TcpStream::connect(addr).await.unwrap();
        // The server has taken it once a request on another connection is answered.
        let mut other = TcpStream::connect(addr).await.unwrap();
        other
            .write_all(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        assert!(rest(&mut other).await.starts_with("HTTP/1.1 404 "));
        let stopped = Instant::now();
        stop.send(()).unwrap();
        served.await.unwrap();
        assert_eq!(rest(&mut silent).await, "");
        // Well before the 10 s first-byte time.
        assert!(stopped.elapsed() < Duration::from_secs(5));
    }
}
