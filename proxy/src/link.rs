//! A connection to the app that belongs to one HTTP/1 client connection. An HTTP/1 client
//! sends one request at a time, so one upstream connection serves it, and the link speaks
//! HTTP/1.1 on it itself: a request's head is written and its answer's head read in the
//! request's own future, and the answer's body is read as the client's connection asks for it,
//! so that a request crosses no channel, dispatcher or other task on its way (what a general
//! client pays for is most of what a hop costs). A request body is written by the [`Driver`], a
//! task next to the client connection's, so that it flows whether or not the answer is being
//! read. Opened on the first request, replaced when the app closes it, closed with the client's
//! connection.

mod body;
pub mod decode;
pub mod encode;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use futures_util::task::AtomicWaker;
use hyper::{Method, Request, Response};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

pub use body::AppBody;

use crate::body::Body;
use crate::timer::Deadline;

type Drive = Pin<Box<dyn Future<Output = ()> + Send>>;

use decode::READ_SIZE;

/// The request side: cheap to clone, carried with the caller.
#[derive(Clone)]
pub struct AppLink {
    inner: Arc<Inner>,
}

struct Inner {
    app: SocketAddr,
    connect_timeout: Duration,
    /// How long an answer's head may take once the request is sent.
    answer_timeout: Duration,
    /// The open connection between requests.
    idle: Mutex<Option<Conn>>,
    handover: Arc<Handover>,
}

/// One HTTP/1.1 connection to the app, and what was read from it and not yet used.
struct Conn {
    reading: Reading,
    write: OwnedWriteHalf,
}

/// What passes from the link to its driver: a request body to write, and the link's end.
/// A slot and a flag rather than a channel: the driver is woken on every write it makes, and
/// a channel would be polled each time for what comes once per request with a body.
#[derive(Default)]
struct Handover {
    next: Mutex<Option<Drive>>,
    /// Set with `next`, so that the driver looks into the slot only when there is news.
    fresh: AtomicBool,
    gone: AtomicBool,
    driver: AtomicWaker,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.handover.gone.store(true, Ordering::Release);
        self.handover.driver.wake();
    }
}

/// The connection side: writes request bodies; run it next to the client connection.
pub struct Driver {
    handover: Arc<Handover>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{app}: {source}")]
    Connect {
        app: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}: connection timed out")]
    ConnectTimeout(SocketAddr),
    #[error("reading the app's answer: {0}")]
    Read(#[source] std::io::Error),
    #[error("the app closed the connection without answering")]
    Closed,
    #[error("the app sent no answer in time")]
    Timeout,
    #[error(transparent)]
    Answer(#[from] decode::Error),
    #[error(transparent)]
    Request(#[from] encode::Error),
}

impl Error {
    /// The app could not be reached at all (the request was not sent).
    pub fn is_connect(&self) -> bool {
        matches!(self, Error::Connect { .. } | Error::ConnectTimeout(_))
    }

    /// The connection ended before any of an answer came: on a connection kept from an
    /// earlier request, the app may have closed it just as the request went out.
    fn unanswered(&self) -> bool {
        match self {
            Error::Closed => true,
            Error::Read(e) | Error::Request(encode::Error::Write(e)) => matches!(
                e.kind(),
                io::ErrorKind::ConnectionReset
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::ConnectionAborted
            ),
            _ => false,
        }
    }
}

/// Whether a request may be sent again when a kept connection closed under it (RFC 9110
/// §9.2.2: idempotent methods, and here only without a body).
fn may_resend(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

impl AppLink {
    /// A link to `app`; `answer_timeout` bounds the wait for each answer's head.
    pub fn new(
        app: SocketAddr,
        connect_timeout: Duration,
        answer_timeout: Duration,
    ) -> (AppLink, Driver) {
        let handover = Arc::new(Handover::default());
        (
            AppLink {
                inner: Arc::new(Inner {
                    app,
                    connect_timeout,
                    answer_timeout,
                    idle: Mutex::new(None),
                    handover: handover.clone(),
                }),
            },
            Driver { handover },
        )
    }

    async fn connect(&self) -> Result<Conn, Error> {
        let app = self.inner.app;
        let stream = crate::timer::timeout(self.inner.connect_timeout, TcpStream::connect(app))
            .await
            .map_err(|_| Error::ConnectTimeout(app))?
            .map_err(|source| Error::Connect { app, source })?;
        let _ = stream.set_nodelay(true);
        let (read, write) = stream.into_split();
        Ok(Conn {
            reading: Reading {
                read,
                buf: BytesMut::new(),
                deadline: Deadline::new(tokio::time::Instant::now() + self.inner.answer_timeout),
            },
            write,
        })
    }

    /// Sends `request` (its URI absolute or origin-form) over this client connection's app
    /// connection, opening one when there is none or the app closed it. A request without a
    /// body that a kept connection closed under is sent once more on a fresh one.
    pub fn send(
        &self,
        request: Request<Body>,
    ) -> impl Future<Output = Result<Response<Body>, Error>> + Send + '_ {
        let (parts, body) = request.into_parts();
        self.send_parts(parts, body)
    }

    /// [`AppLink::send`] for a request in parts, as the forwarder has it: putting a request
    /// together and taking it apart again moves all of it twice.
    pub async fn send_parts(
        &self,
        parts: hyper::http::request::Parts,
        body: Body,
    ) -> Result<Response<Body>, Error> {
        let framing = encode::framing(&parts.headers, &body)?;
        let head = encode::head(&parts, framing);
        let method = parts.method;
        let kept = self
            .inner
            .idle
            .lock()
            .ok()
            .and_then(|mut idle| idle.take())
            .filter(Conn::is_open);
        if framing != encode::Framing::None {
            let conn = match kept {
                Some(conn) => conn,
                None => Box::pin(self.connect()).await?,
            };
            return self
                .exchange_with_body(conn, head, body, framing, method)
                .await;
        }
        let resend = kept.is_some() && may_resend(&method);
        let conn = match kept {
            Some(conn) => conn,
            None => Box::pin(self.connect()).await?,
        };
        match self.exchange(conn, &head, &method).await {
            Err(e) if resend && e.unanswered() => {
                let conn = Box::pin(self.connect()).await?;
                self.exchange(conn, &head, &method).await
            }
            answered => answered,
        }
    }

    /// A request without a body: its head is written here, in one write.
    async fn exchange(
        &self,
        mut conn: Conn,
        head: &[u8],
        method: &Method,
    ) -> Result<Response<Body>, Error> {
        conn.reading.start(self.inner.answer_timeout);
        crate::vectored::write_all(&mut conn.write, &[head])
            .await
            .map_err(|e| Error::Request(encode::Error::Write(e)))?;
        let reading = &mut conn.reading;
        let answer = std::future::poll_fn(|cx| reading.poll_head_or(cx, method, None)).await?;
        Ok(AppBody::answer(
            answer,
            conn.reading,
            body::Writer::Here(conn.write),
            self.inner.clone(),
        ))
    }

    /// A request with a body: the driver writes it while the answer is awaited here.
    async fn exchange_with_body(
        &self,
        conn: Conn,
        head: BytesMut,
        body: Body,
        framing: encode::Framing,
        method: Method,
    ) -> Result<Response<Body>, Error> {
        let Conn {
            mut reading,
            mut write,
        } = conn;
        reading.start(self.inner.answer_timeout);
        let written = Arc::new(body::Written::default());
        let done = written.clone();
        self.inner.handover.hand(Box::pin(async move {
            let sent = encode::send(&mut write, head, body, framing).await;
            done.finish(sent.map(|()| write));
        }));
        let answer =
            std::future::poll_fn(|cx| reading.poll_head_or(cx, &method, Some(&written))).await?;
        Ok(AppBody::answer(
            answer,
            reading,
            body::Writer::Elsewhere(written),
            self.inner.clone(),
        ))
    }
}

impl Inner {
    /// Keeps a connection whose exchange ended cleanly for the next request.
    fn keep(&self, reading: Reading, write: OwnedWriteHalf) {
        if let Ok(mut idle) = self.idle.lock() {
            *idle = Some(Conn { reading, write });
        }
    }
}

/// The reading side of a connection, and the deadline for the answer awaited on it.
struct Reading {
    read: OwnedReadHalf,
    buf: BytesMut,
    /// One per connection, moved on for each request: cheaper than a timer made and dropped
    /// per request.
    deadline: Deadline,
}

impl Reading {
    /// A request goes out: its answer is due within `timeout`.
    fn start(&mut self, timeout: Duration) {
        self.deadline.set(tokio::time::Instant::now() + timeout);
    }

    /// The answer's head; or the request body's failure, when it fails first.
    fn poll_head_or(
        &mut self,
        cx: &mut Context<'_>,
        method: &Method,
        written: Option<&body::Written>,
    ) -> Poll<Result<decode::Head, Error>> {
        loop {
            if let Some(head) = decode::head(&mut self.buf, method)? {
                return Poll::Ready(Ok(head));
            }
            if let Some(e) = written.and_then(|w| w.failed(cx)) {
                return Poll::Ready(Err(e.into()));
            }
            if self.buf.capacity() - self.buf.len() < READ_SIZE / 2 {
                self.buf.reserve(READ_SIZE);
            }
            let read = tokio_util::io::poll_read_buf(Pin::new(&mut self.read), cx, &mut self.buf);
            let Poll::Ready(read) = read else {
                if self.deadline.poll(cx).is_ready() {
                    return Poll::Ready(Err(Error::Timeout));
                }
                return Poll::Pending;
            };
            let n = read.map_err(Error::Read)?;
            if n == 0 {
                return Poll::Ready(Err(if self.buf.is_empty() {
                    Error::Closed
                } else {
                    Error::Read(io::ErrorKind::UnexpectedEof.into())
                }));
            }
        }
    }
}

impl Conn {
    /// Whether a kept connection is still open: the app may have closed it while idle, and an
    /// idle connection has nothing to say (the check costs no system call unless the socket
    /// became readable).
    fn is_open(&self) -> bool {
        let mut probe = [0u8; 1];
        match self.reading.read.try_read(&mut probe) {
            Err(e) => e.kind() == io::ErrorKind::WouldBlock,
            Ok(_) => false,
        }
    }
}

impl Handover {
    fn hand(&self, drive: Drive) {
        if let Ok(mut slot) = self.next.lock() {
            // A body still in the slot belongs to a connection already given up.
            *slot = Some(drive);
        }
        self.fresh.store(true, Ordering::Release);
        self.driver.wake();
    }
}

impl Driver {
    /// Writes request bodies until the link is dropped, then finishes the one under way.
    pub async fn run(self) {
        let mut current: Option<Drive> = None;
        std::future::poll_fn(|cx| self.poll(cx, &mut current)).await;
        if let Some(writing) = current {
            writing.await;
        }
    }

    fn poll(&self, cx: &mut Context<'_>, current: &mut Option<Drive>) -> Poll<()> {
        self.handover.driver.register(cx.waker());
        loop {
            if self.handover.fresh.swap(false, Ordering::AcqRel)
                && let Some(next) = self.handover.next.lock().ok().and_then(|mut s| s.take())
            {
                *current = Some(next);
            }
            if self.handover.gone.load(Ordering::Acquire) {
                return Poll::Ready(());
            }
            match current.as_mut().map(|c| c.as_mut().poll(cx)) {
                Some(Poll::Ready(())) => *current = None,
                Some(Poll::Pending) | None => return Poll::Pending,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http_body_util::{BodyExt, StreamBody};
    use hyper::body::Frame;
    use hyper::header::HeaderMap;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    async fn app() -> (TcpListener, AppLink) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (link, driver) = AppLink::new(
            listener.local_addr().unwrap(),
            Duration::from_secs(5),
            Duration::from_secs(5),
        );
        tokio::spawn(driver.run());
        (listener, link)
    }

    fn get(method: Method) -> Request<Body> {
        Request::builder()
            .method(method)
            .uri("http://app/x")
            .body(crate::body::empty())
            .unwrap()
    }

    /// Reads from `conn` until `bytes` has arrived whole; everything read is returned.
    async fn read_until(conn: &mut TcpStream, end: &[u8]) -> Vec<u8> {
        let mut seen = Vec::new();
        let mut chunk = [0u8; 4096];
        while !seen.windows(end.len()).any(|w| w == end) {
            let n = conn.read(&mut chunk).await.unwrap();
            assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&seen));
            seen.extend_from_slice(&chunk[..n]);
        }
        seen
    }

    async fn text(response: Response<Body>) -> String {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn a_kept_connection_serves_the_next_request_and_a_closed_one_is_replaced() {
        let (listener, link) = app().await;
        let serve = tokio::spawn(async move {
            let (mut first, _) = listener.accept().await.unwrap();
            for answer in ["one", "two"] {
                let head = read_until(&mut first, b"\r\n\r\n").await;
                assert!(head.starts_with(b"GET /x HTTP/1.1\r\nhost: app\r\n"));
                let reply = format!("HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\n{answer}");
                first.write_all(reply.as_bytes()).await.unwrap();
            }
            drop(first);
            let (mut second, _) = listener.accept().await.unwrap();
            read_until(&mut second, b"\r\n\r\n").await;
            second
                .write_all(
                    b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nthree\r\n0\r\n\r\n",
                )
                .await
                .unwrap();
            second
        });
        assert_eq!(
            text(link.send(get(Method::GET)).await.unwrap()).await,
            "one"
        );
        assert_eq!(
            text(link.send(get(Method::GET)).await.unwrap()).await,
            "two"
        );
        assert_eq!(
            text(link.send(get(Method::GET)).await.unwrap()).await,
            "three"
        );
        serve.await.unwrap();
    }

    #[tokio::test]
    async fn a_get_is_sent_again_when_the_kept_connection_closes_under_it_a_post_is_not() {
        for (method, resent) in [(Method::GET, true), (Method::POST, false)] {
            let (listener, link) = app().await;
            let serve = tokio::spawn(async move {
                let (mut first, _) = listener.accept().await.unwrap();
                read_until(&mut first, b"\r\n\r\n").await;
                first
                    .write_all(b"HTTP/1.1 204 No Content\r\n\r\n")
                    .await
                    .unwrap();
                // The second request arrives as the app gives up on the connection.
                read_until(&mut first, b"\r\n\r\n").await;
                drop(first);
                if resent {
                    let (mut second, _) = listener.accept().await.unwrap();
                    read_until(&mut second, b"\r\n\r\n").await;
                    second
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nagain")
                        .await
                        .unwrap();
                }
            });
            let first = link.send(get(method.clone())).await.unwrap();
            assert_eq!(first.status(), 204);
            drop(first);
            let second = link.send(get(method.clone())).await;
            if resent {
                assert_eq!(text(second.unwrap()).await, "again");
            } else {
                assert!(matches!(second, Err(Error::Closed)), "{method}");
            }
            serve.await.unwrap();
        }
    }

    #[tokio::test]
    async fn a_body_of_unknown_length_goes_out_in_chunks_with_its_trailers() {
        let (listener, link) = app().await;
        let serve = tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            let request = read_until(&mut conn, b"0\r\nx-sum: 9\r\n\r\n").await;
            conn.write_all(
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nx-done: 1\r\n\r\n",
            )
            .await
            .unwrap();
            String::from_utf8(request).unwrap()
        });
        let mut trailers = HeaderMap::new();
        trailers.insert("x-sum", "9".parse().unwrap());
        let frames: Vec<Result<Frame<Bytes>, crate::body::BoxError>> = vec![
            Ok(Frame::data(Bytes::from_static(b"hello"))),
            Ok(Frame::data(Bytes::from_static(b", app"))),
            Ok(Frame::trailers(trailers)),
        ];
        let body = StreamBody::new(futures_util::stream::iter(frames)).boxed();
        let request = Request::builder()
            .method(Method::POST)
            .uri("/upload")
            .header("host", "app")
            .body(body)
            .unwrap();
        let answer = link
            .send(request)
            .await
            .unwrap()
            .into_body()
            .collect()
            .await
            .unwrap();
        assert_eq!(answer.trailers().unwrap()["x-done"], "1");
        assert_eq!(&answer.to_bytes()[..], b"ok");
        let request = serve.await.unwrap();
        assert!(
            request.starts_with(
                "POST /upload HTTP/1.1\r\nhost: app\r\ntransfer-encoding: chunked\r\n\r\n"
            ),
            "{request}"
        );
        assert!(request.ends_with("5\r\nhello\r\n5\r\n, app\r\n0\r\nx-sum: 9\r\n\r\n"));
    }

    #[tokio::test]
    async fn an_answer_that_does_not_come_in_time_is_a_timeout() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let timeout = Duration::from_millis(200);
        let (link, driver) = AppLink::new(
            listener.local_addr().unwrap(),
            Duration::from_secs(5),
            timeout,
        );
        tokio::spawn(driver.run());
        let silent = tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            read_until(&mut conn, b"\r\n\r\n").await;
            // Holds the connection open and never answers.
            let mut rest = Vec::new();
            let _ = conn.read_to_end(&mut rest).await;
        });
        let started = std::time::Instant::now();
        let failed = link.send(get(Method::GET)).await.map(|_| ()).unwrap_err();
        assert!(matches!(failed, Error::Timeout), "{failed}");
        assert!(started.elapsed() >= timeout);
        // The connection was given up with the request.
        silent.await.unwrap();
    }

    #[tokio::test]
    async fn a_close_delimited_answer_is_read_to_the_end_and_a_broken_head_is_an_error() {
        let (listener, link) = app().await;
        let serve = tokio::spawn(async move {
            let (mut first, _) = listener.accept().await.unwrap();
            read_until(&mut first, b"\r\n\r\n").await;
            first
                .write_all(b"HTTP/1.0 200 OK\r\ncontent-type: text/plain\r\n\r\nuntil the end")
                .await
                .unwrap();
            drop(first);
            // The connection ended with the answer: the next request needs a new one.
            let (mut second, _) = listener.accept().await.unwrap();
            read_until(&mut second, b"\r\n\r\n").await;
            second
                .write_all(b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n")
                .await
                .unwrap();
            second
        });
        let answer = link.send(get(Method::GET)).await.unwrap();
        assert_eq!(answer.version(), hyper::Version::HTTP_10);
        assert_eq!(text(answer).await, "until the end");
        let broken = link.send(get(Method::GET)).await.map(|_| ()).unwrap_err();
        assert!(
            matches!(broken, Error::Answer(decode::Error::Head(_))),
            "{broken}"
        );
        serve.await.unwrap();
    }

    #[tokio::test]
    async fn a_body_that_breaks_its_content_length_fails_the_request() {
        let (listener, link) = app().await;
        tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut sink = Vec::new();
            let _ = conn.read_to_end(&mut sink).await;
        });
        let request = Request::builder()
            .method(Method::PUT)
            .uri("/x")
            .header("content-length", "10")
            .body(crate::body::full("short"))
            .unwrap();
        let failed = link.send(request).await.map(|_| ()).unwrap_err();
        assert!(
            matches!(failed, Error::Request(encode::Error::Mismatch("shorter"))),
            "{failed}"
        );
    }
}
