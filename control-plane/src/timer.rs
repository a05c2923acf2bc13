//! Timers for code that runs in a sidecar (the proxy, and the control-plane client it uses),
//! ticking on a thread of their own. tokio's time driver does its bookkeeping (a lock, the
//! wheel's levels, clock reads) on every park of the runtime that owns it; on the proxy's
//! thread that was about 1,400 instructions per request, half of them between a socket waking
//! the thread and the read. Once [`start`] is called, the sidecar's runtime needs no time
//! driver: every timer made here is registered with the timer thread's, which wakes only when
//! a deadline passes. Until then (tests, the demo), a timer belongs to the runtime it is made
//! on, as a plain `tokio::time` one does.
//!
//! This crate and the proxy make their timers here, and connect through [`Connector`]; their
//! `clippy.toml` refuses the `tokio::time` constructors and hyper-util's own connector, which
//! would panic on a runtime without a time driver.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::runtime::{EnterGuard, Handle};
use tokio::time::{Instant, Interval, Sleep, Timeout};

static TIMERS: OnceLock<Handle> = OnceLock::new();

/// Starts the timer thread (once per process; later calls return at once). After this, every
/// timer made through this module ticks there, so the caller may run the sidecar on a runtime
/// built without `enable_time`.
pub fn start() -> std::io::Result<()> {
    static STARTING: Mutex<()> = Mutex::new(());
    let _one_at_a_time = STARTING.lock().unwrap_or_else(PoisonError::into_inner);
    if TIMERS.get().is_some() {
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    let handle = runtime.handle().clone();
    std::thread::Builder::new()
        .name("flowmesh-timer".into())
        .spawn(move || runtime.block_on(std::future::pending::<()>()))?;
    let _ = TIMERS.set(handle);
    Ok(())
}

/// Whether timers tick on the timer thread (see [`start`]).
pub fn started() -> bool {
    TIMERS.get().is_some()
}

/// Makes the timer thread's runtime the current one while a timer is made (not while it is
/// polled: a timer made there may be awaited on any runtime).
fn enter() -> Option<EnterGuard<'static>> {
    TIMERS.get().map(Handle::enter)
}

/// `tokio::time::sleep`, ticking on the timer thread once it is started.
pub fn sleep(duration: Duration) -> Sleep {
    let _timers = enter();
    #[allow(clippy::disallowed_methods)]
    tokio::time::sleep(duration)
}

/// `tokio::time::sleep_until`, ticking on the timer thread once it is started.
pub fn sleep_until(deadline: Instant) -> Sleep {
    let _timers = enter();
    #[allow(clippy::disallowed_methods)]
    tokio::time::sleep_until(deadline)
}

/// `tokio::time::timeout`, ticking on the timer thread once it is started.
pub fn timeout<F: Future>(duration: Duration, future: F) -> Timeout<F> {
    let _timers = enter();
    #[allow(clippy::disallowed_methods)]
    tokio::time::timeout(duration, future)
}

/// `tokio::time::timeout_at`, ticking on the timer thread once it is started.
pub fn timeout_at<F: Future>(deadline: Instant, future: F) -> Timeout<F> {
    let _timers = enter();
    #[allow(clippy::disallowed_methods)]
    tokio::time::timeout_at(deadline, future)
}

/// `tokio::time::interval`, ticking on the timer thread once it is started.
pub fn interval(period: Duration) -> Interval {
    let _timers = enter();
    #[allow(clippy::disallowed_methods)]
    tokio::time::interval(period)
}

/// hyper-util's `HttpConnector` (with `TCP_NODELAY`), its connect timeout made here: its own,
/// and its happy-eyeballs fallback, make `tokio::time` timers as they connect. A name with
/// IPv6 and IPv4 addresses is tried one address after the other, all within the timeout.
#[derive(Clone, Debug)]
pub struct Connector {
    inner: HttpConnector,
    timeout: Duration,
}

impl Connector {
    /// Gives up on a connection not made within `timeout`.
    pub fn new(timeout: Duration) -> Connector {
        #[allow(clippy::disallowed_methods)]
        let mut inner = HttpConnector::new();
        inner.set_nodelay(true);
        inner.set_happy_eyeballs_timeout(None);
        Connector { inner, timeout }
    }
}

type Connecting = Pin<Box<dyn Future<Output = Result<TokioIo<TcpStream>, ConnectError>> + Send>>;

/// Why a connection was not made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(transparent)]
    Refused(Box<dyn std::error::Error + Send + Sync>),
    #[error("no connection within {} ms", .0.as_millis())]
    Timeout(Duration),
}

impl tower_service::Service<hyper::Uri> for Connector {
    type Response = TokioIo<TcpStream>;
    type Error = ConnectError;
    type Future = Connecting;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ConnectError>> {
        self.inner
            .poll_ready(cx)
            .map_err(|e| ConnectError::Refused(e.into()))
    }

    fn call(&mut self, uri: hyper::Uri) -> Connecting {
        let connecting = self.inner.call(uri);
        let timeout = self.timeout;
        Box::pin(async move {
            match self::timeout(timeout, connecting).await {
                Ok(made) => made.map_err(|e| ConnectError::Refused(e.into())),
                Err(_) => Err(ConnectError::Timeout(timeout)),
            }
        })
    }
}

/// hyper's timer (HTTP/2 keep-alive, header-read timeouts), ticking on the timer thread once it
/// is started.
#[derive(Clone, Debug, Default)]
pub struct HyperTimer(hyper_util::rt::TokioTimer);

impl HyperTimer {
    pub fn new() -> HyperTimer {
        #[allow(clippy::disallowed_methods)]
        HyperTimer(hyper_util::rt::TokioTimer::new())
    }
}

impl hyper::rt::Timer for HyperTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        let _timers = enter();
        self.0.sleep(duration)
    }

    fn sleep_until(&self, deadline: std::time::Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        let _timers = enter();
        self.0.sleep_until(deadline)
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn hyper::rt::Sleep>>, deadline: std::time::Instant) {
        let _timers = enter();
        self.0.reset(sleep, deadline);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower_service::Service;

    /// Runs `test` on a runtime without a time driver, as the `flowmesh proxy` binary builds
    /// it, and fails if it has not ended within 30 s (a timer that never fires would hang).
    fn without_time_driver<F: Future<Output = ()> + Send + 'static>(
        test: impl FnOnce() -> F + Send + 'static,
    ) {
        start().expect("timer thread");
        assert!(started());
        let (done_tx, done) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .build()
                .expect("runtime");
            runtime.block_on(test());
            let _ = done_tx.send(());
        });
        done.recv_timeout(Duration::from_secs(30))
            .expect("the test ends within 30 s, without panicking");
    }

    #[test]
    fn timers_tick_on_a_runtime_without_a_time_driver() {
        without_time_driver(|| async {
            let begun = Instant::now();
            sleep(Duration::from_millis(20)).await;
            assert!(begun.elapsed() >= Duration::from_millis(20));

            let mut timer = Box::pin(sleep_until(Instant::now() + Duration::from_secs(3600)));
            timer
                .as_mut()
                .reset(Instant::now() + Duration::from_millis(5));
            timer.await;

            let mut ticks = interval(Duration::from_millis(2));
            ticks.tick().await;
            ticks.tick().await;

            let never = std::future::pending::<()>();
            assert!(timeout(Duration::from_millis(10), never).await.is_err());
            assert_eq!(timeout(Duration::from_secs(5), async { 7 }).await, Ok(7));
            let late = Instant::now() + Duration::from_millis(10);
            assert!(
                timeout_at(late, std::future::pending::<()>())
                    .await
                    .is_err()
            );

            let hyper_timer = HyperTimer::new();
            let mut nap = hyper::rt::Timer::sleep(&hyper_timer, Duration::from_secs(3600));
            hyper::rt::Timer::reset(
                &hyper_timer,
                &mut nap,
                std::time::Instant::now() + Duration::from_millis(5),
            );
            nap.await;
        });
    }

    #[test]
    fn the_connector_connects_and_reports_refusals_without_a_time_driver() {
        without_time_driver(|| async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let open = listener.local_addr().expect("address");
            let mut connector = Connector::new(Duration::from_secs(5));
            let uri: hyper::Uri = format!("http://{open}/").parse().expect("uri");
            let stream = connector.call(uri).await.expect("connected");
            assert_eq!(stream.into_inner().peer_addr().expect("peer"), open);

            drop(listener);
            let uri: hyper::Uri = format!("http://{open}/").parse().expect("uri");
            match connector.call(uri).await {
                Err(ConnectError::Refused(e)) => {
                    assert!(e.to_string().contains("connect"), "{e}")
                }
                other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
            }
        });
    }
}
