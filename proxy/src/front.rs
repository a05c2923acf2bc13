//! Serving an HTTP/1 client connection ourselves: each request head is parsed where it lies in
//! the read buffer ([`head`]), its body decoded from the socket as the handler reads it
//! ([`body`]), and the answer written with its first body bytes in one write ([`answer`]).
//! One request at a time, in the connection's own task; pipelined requests wait in the buffer.
//! What a general server adds per request (a dispatcher, buffered IO, a timer made and dropped
//! per head) was most of what the sidecar's hop cost beyond nginx's.

mod answer;
mod body;
pub mod head;

use std::borrow::Cow;
use std::future::{Future, poll_fn};
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use http_body_util::BodyExt;
use hyper::{Method, Request, Response, StatusCode, Version};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

pub use body::BodyError;

use crate::body::{self as bodies, Body};
use crate::link::decode::Framing;
use crate::link::encode;
use crate::metrics::{Metrics, Recorder};
use crate::server::Caller;
use crate::timer::Deadline;
use answer::Asked;
use body::{CallerBody, Shared};
use head::{Head, HeadLimits, Refusal};

pub(crate) use crate::link::decode::READ_SIZE;

const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// The reading side of a client connection and what was read from it and not yet used.
pub(crate) struct Reading {
    read: OwnedReadHalf,
    buf: BytesMut,
}

/// What every connection of a listener shares.
pub(crate) struct Settings {
    pub limits: HeadLimits,
    /// Time to send a whole head, counted from the connection's start or the previous answer.
    pub header_read_timeout: Duration,
    pub direction: &'static str,
    pub metrics: Metrics,
}

/// Why no request head came.
enum Wait {
    /// The client closed the connection, or the listener stops and the connection is idle.
    Closed,
    /// The head did not arrive in time.
    Late,
    Refused(Refusal),
}

/// Serves HTTP/1 requests on `stream` (`first`: bytes already read from it; the first head is
/// `due` then) with `handle` until the client closes, a request ends the connection, or `stop`
/// is cancelled (then after the answer under way).
pub(crate) async fn serve<H, F>(
    stream: TcpStream,
    first: BytesMut,
    due: tokio::time::Instant,
    settings: Arc<Settings>,
    caller: Caller,
    handle: H,
    stop: CancellationToken,
) where
    H: Fn(Request<Body>, Caller) -> F,
    F: Future<Output = (Response<Body>, Cow<'static, str>)>,
{
    let (read, mut write) = stream.into_split();
    let mut reading = Reading { read, buf: first };
    let shared = Arc::new(Shared::default());
    // One timer for the connection's life, moved on after each answer.
    let mut timer = Deadline::new(due);
    let mut stopped = Stop::new(stop.clone());
    let mut counted = Recorder::new(settings.metrics.clone(), settings.direction);
    loop {
        let mut checked = None;
        let waited = poll_fn(|cx| {
            poll_head(
                cx,
                &mut reading,
                &mut checked,
                &mut timer,
                &mut stopped,
                settings.limits,
            )
        })
        .await;
        let head = match waited {
            Ok(head) => head,
            Err(Wait::Closed) => return,
            Err(Wait::Late) if reading.buf.is_empty() => return,
            Err(Wait::Late) => {
                let late = Refusal {
                    status: StatusCode::REQUEST_TIMEOUT,
                    reason: "header_read_timeout",
                    detail: format!(
                        "the request head did not arrive within {} ms (limits.header_read_timeout)",
                        settings.header_read_timeout.as_millis()
                    ),
                };
                return refuse(reading, write, late, &settings, caller.peer).await;
            }
            Err(Wait::Refused(refusal)) => {
                return refuse(reading, write, refusal, &settings, caller.peer).await;
            }
        };
        let Head {
            request,
            framing,
            keep_alive,
            expect_continue,
            upgrade,
        } = head;
        let asked = Asked {
            version: request.version(),
            head_only: request.method() == Method::HEAD,
            keep_alive,
            upgrade,
        };
        let (body, here) = if framing.is_done() {
            (bodies::empty(), Some(reading))
        } else {
            let body = CallerBody::new(framing, reading, shared.clone(), expect_continue);
            (body.boxed(), None)
        };
        // Held here by value: the handler boxes what is large in its future (server::serve).
        let started = Instant::now();
        let answer = handle(request.map(|()| body), caller.clone());
        let (response, route) = if expect_continue && here.is_none() {
            match answer_with_continue(answer, &shared, &mut write).await {
                Ok(r) => r,
                Err(_) => return,
            }
        } else {
            answer.await
        };
        let took = started.elapsed();

        // A body that already ended or was dropped settles now, so that the answer can say
        // whether the connection goes on.
        let mut back = match here {
            Some(reading) => Back::Done(reading),
            None => shared.take_back().map_or(Back::Lent, settle),
        };
        let asked = Asked {
            keep_alive: asked.keep_alive
                && !stop.is_cancelled()
                && !matches!(back, Back::Unfinished(_)),
            ..asked
        };
        let (mut parts, body) = response.into_parts();
        let status = parts.status.as_u16();
        let written = answer::head(&parts, &body, asked);
        let sent = match written.framing {
            Some(framing) => encode::send(&mut write, written.head, body, framing)
                .await
                .is_ok(),
            None => {
                drop(body);
                crate::vectored::write_all(&mut write, &[&written.head])
                    .await
                    .is_ok()
            }
        };
        // Counted once the answer is on its way, so that the bookkeeping is not in its path.
        counted.request(route, status, took);
        if !sent {
            return;
        }
        if written.switching {
            if let (Back::Done(reading), Some(upgrade)) =
                (back, parts.extensions.remove::<hyper::upgrade::OnUpgrade>())
            {
                splice(reading, write, upgrade).await;
            }
            return;
        }
        if let Back::Lent = back {
            // The body is still being read (or held): the next request waits for its end.
            timer.set(tokio::time::Instant::now() + settings.header_read_timeout);
            let returned = poll_fn(|cx| {
                if let Poll::Ready(returned) = shared.poll_back(cx) {
                    return Poll::Ready(Some(returned));
                }
                timer.poll(cx).map(|()| None)
            })
            .await;
            match returned {
                Some(returned) => back = settle(returned),
                None => return,
            }
        }
        reading = match back {
            Back::Done(reading) => reading,
            // The handler left part of the body unread: it cannot be told from the next
            // request without reading it, so the connection ends.
            Back::Unfinished(reading) => return linger(reading, write).await,
            Back::Lent => return,
        };
        if !written.keep_alive {
            let _ = write.shutdown().await;
            return;
        }
        timer.set(tokio::time::Instant::now() + settings.header_read_timeout);
    }
}

/// The server's stop, as an idle connection waits for it. Polled again by the task it already
/// wakes, before the stop, it only reads the token: the wait for the stop holds that task's
/// waker, and polling it again would register the waker anew with the token's waiters.
struct Stop {
    token: CancellationToken,
    stopped: Pin<Box<WaitForCancellationFutureOwned>>,
    /// The waker the wait for the stop holds.
    wakes: Option<Waker>,
}

impl Stop {
    fn new(token: CancellationToken) -> Stop {
        Stop {
            stopped: Box::pin(token.clone().cancelled_owned()),
            token,
            wakes: None,
        }
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if let Some(wakes) = &self.wakes
            && wakes.will_wake(cx.waker())
            && !self.token.is_cancelled()
        {
            return Poll::Pending;
        }
        let polled = self.stopped.as_mut().poll(cx);
        self.wakes = polled.is_pending().then(|| cx.waker().clone());
        polled
    }
}

/// Where the reading side is once an answer is due.
enum Back {
    /// Here, the request's body read to its end.
    Done(Reading),
    /// Here, with part of the body unread.
    Unfinished(Reading),
    /// Still with the body.
    Lent,
}

/// Whether a body that came back ended, reading away what of it is already buffered.
fn settle((mut reading, mut framing): (Reading, Framing)) -> Back {
    if framing.is_done() || body::skip_buffered(&mut framing, &mut reading) {
        Back::Done(reading)
    } else {
        Back::Unfinished(reading)
    }
}

/// The next request head; the timer bounds the wait, and a stop ends an idle connection.
fn poll_head(
    cx: &mut Context<'_>,
    reading: &mut Reading,
    checked: &mut Option<usize>,
    timer: &mut Deadline,
    stopped: &mut Stop,
    limits: HeadLimits,
) -> Poll<Result<Head, Wait>> {
    loop {
        if !reading.buf.is_empty() {
            // A head arriving in pieces is parsed again only once an end of head is in
            // sight: parsing it anew on every piece would cost the square of its size.
            let worth = match *checked {
                None => true,
                Some(from) => ends_head(&reading.buf[from.saturating_sub(3)..]),
            };
            if worth || reading.buf.len() > limits.max_bytes {
                match head::parse(&mut reading.buf, limits) {
                    Ok(Some(head)) => return Poll::Ready(Ok(head)),
                    Ok(None) => {}
                    Err(refusal) => return Poll::Ready(Err(Wait::Refused(refusal))),
                }
            }
            *checked = Some(reading.buf.len());
        }
        if reading.buf.capacity() - reading.buf.len() < READ_SIZE / 2 {
            reading.buf.reserve(READ_SIZE);
        }
        match tokio_util::io::poll_read_buf(Pin::new(&mut reading.read), cx, &mut reading.buf) {
            Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => return Poll::Ready(Err(Wait::Closed)),
            Poll::Ready(Ok(_)) => {}
            Poll::Pending => {
                if timer.poll(cx).is_ready() {
                    return Poll::Ready(Err(Wait::Late));
                }
                if reading.buf.is_empty() && stopped.poll(cx).is_ready() {
                    return Poll::Ready(Err(Wait::Closed));
                }
                return Poll::Pending;
            }
        }
    }
}

/// Whether `bytes` hold the empty line that ends a head (`\n\n` or `\n\r\n`).
fn ends_head(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .enumerate()
        .filter(|&(_, b)| *b == b'\n')
        .any(|(i, _)| match bytes.get(i + 1) {
            Some(b'\n') => true,
            Some(b'\r') => bytes.get(i + 2) == Some(&b'\n'),
            _ => false,
        })
}

/// Awaits the answer, writing `100 Continue` when the request's body is first asked for
/// (RFC 9110 §10.1.1): the client holds the body back until then.
async fn answer_with_continue<T>(
    answer: impl Future<Output = T>,
    shared: &Shared,
    write: &mut OwnedWriteHalf,
) -> io::Result<T> {
    let mut answer = pin!(answer);
    let (mut sending, mut sent) = (false, 0);
    poll_fn(|cx| {
        loop {
            // A go-ahead begun is finished before anything else is written.
            if sending && sent < CONTINUE.len() {
                match Pin::new(&mut *write).poll_write(cx, &CONTINUE[sent..]) {
                    Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                    Poll::Ready(Ok(n)) => {
                        sent += n;
                        continue;
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => return Poll::Pending,
                }
            }
            if let Poll::Ready(response) = answer.as_mut().poll(cx) {
                return Poll::Ready(Ok(response));
            }
            if !sending && shared.wants_continue(cx) {
                sending = true;
                continue;
            }
            return Poll::Pending;
        }
    })
    .await
}

/// Answers a refused request itself and closes the connection: nothing of it reaches the app.
async fn refuse(
    reading: Reading,
    mut write: OwnedWriteHalf,
    refusal: Refusal,
    settings: &Settings,
    peer: SocketAddr,
) {
    let (direction, reason) = (settings.direction, refusal.reason);
    tracing::info!(%direction, %peer, %reason, "refused a request");
    settings.metrics.request_refused(direction, reason);
    let (parts, body) = bodies::error(refusal.status, reason, refusal.detail).into_parts();
    let asked = Asked {
        version: Version::HTTP_11,
        head_only: false,
        keep_alive: false,
        upgrade: false,
    };
    let written = answer::head(&parts, &body, asked);
    if let Some(framing) = written.framing {
        let _ = encode::send(&mut write, written.head, body, framing).await;
    }
    linger(reading, write).await;
}

/// Closes a connection whose client may still be sending: the write side first, then what
/// the client already sent is read away, so that the close does not reset the connection
/// before the client read the answer.
async fn linger(reading: Reading, mut write: OwnedWriteHalf) {
    let _ = write.shutdown().await;
    let mut scratch = vec![0u8; 16 * 1024];
    for _ in 0..16 {
        match reading.read.try_read(&mut scratch) {
            Ok(n) if n > 0 => {}
            _ => break,
        }
    }
}

/// After `101 Switching Protocols`: the client's connection and the app's, byte for byte,
/// until either closes.
async fn splice(reading: Reading, write: OwnedWriteHalf, upgrade: hyper::upgrade::OnUpgrade) {
    let Ok(upstream) = upgrade.await else {
        return;
    };
    let mut upstream = TokioIo::new(upstream);
    // What the client sent after its request is the new protocol's first bytes.
    if !reading.buf.is_empty() && upstream.write_all(&reading.buf).await.is_err() {
        return;
    }
    let Ok(mut client) = reading.read.reunite(write) else {
        return;
    };
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}
