//! A connection to the app that belongs to one HTTP/1 client connection and is driven in that
//! connection's task. An HTTP/1 client sends one request at a time, so one upstream connection
//! serves it; keeping both in one task spares the pooled client's hand-offs between tasks (a
//! request and its answer cross no channel and wake no other task), which is most of what a
//! hop costs. Opened on the first request, replaced when the app closes it, closed with the
//! client's connection.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::task::AtomicWaker;
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::body::Body;

type Drive = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The request side: cheap to clone, carried with the caller.
#[derive(Clone)]
pub struct AppLink {
    inner: Arc<Inner>,
}

struct Inner {
    app: SocketAddr,
    connect_timeout: Duration,
    sender: Mutex<Option<SendRequest<Body>>>,
    handover: Arc<Handover>,
}

/// What passes from the link to its driver: a connection just opened, and the link's end.
/// A slot and a flag rather than a channel: the driver is woken on every read and write of
/// its connection, and a channel would be polled each time for what comes once per
/// connection.
#[derive(Default)]
struct Handover {
    opened: Mutex<Option<Drive>>,
    /// Set with `opened`, so that the driver looks into the slot only when there is news.
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

/// The connection side: polls the upstream connection; run it next to the client connection.
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
    #[error(transparent)]
    Http(#[from] hyper::Error),
}

impl Error {
    /// The app could not be reached at all (the request was not sent).
    pub fn is_connect(&self) -> bool {
        match self {
            Error::Connect { .. } | Error::ConnectTimeout(_) => true,
            Error::Http(e) => e.is_canceled(),
        }
    }
}

impl AppLink {
    pub fn new(app: SocketAddr, connect_timeout: Duration) -> (AppLink, Driver) {
        let handover = Arc::new(Handover::default());
        (
            AppLink {
                inner: Arc::new(Inner {
                    app,
                    connect_timeout,
                    sender: Mutex::new(None),
                    handover: handover.clone(),
                }),
            },
            Driver { handover },
        )
    }

    async fn connect(&self) -> Result<SendRequest<Body>, Error> {
        let app = self.inner.app;
        let stream = tokio::time::timeout(self.inner.connect_timeout, TcpStream::connect(app))
            .await
            .map_err(|_| Error::ConnectTimeout(app))?
            .map_err(|source| Error::Connect { app, source })?;
        let _ = stream.set_nodelay(true);
        let (sender, connection) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await?;
        let handover = &self.inner.handover;
        if let Ok(mut slot) = handover.opened.lock() {
            // A connection still in the slot was replaced before the driver took it.
            *slot = Some(Box::pin(async move {
                let _ = connection.await;
            }));
        }
        handover.fresh.store(true, Ordering::Release);
        handover.driver.wake();
        Ok(sender)
    }

    /// Sends `request` over this client connection's app connection, opening one when there is
    /// none or the app closed it; a request the closing connection did not take is sent again
    /// on a fresh one.
    pub async fn send(&self, request: Request<Body>) -> Result<Response<Incoming>, Error> {
        let kept = self.inner.sender.lock().ok().and_then(|mut s| s.take());
        let mut sender = match kept {
            Some(s) if !s.is_closed() => s,
            _ => Box::pin(self.connect()).await?,
        };
        if sender.ready().await.is_err() {
            sender = Box::pin(self.connect()).await?;
        }
        let response = match sender.try_send_request(request).await {
            Ok(r) => r,
            Err(mut failed) => match failed.take_message() {
                Some(request) => {
                    sender = Box::pin(self.connect()).await?;
                    sender.send_request(request).await?
                }
                None => return Err(failed.into_error().into()),
            },
        };
        if let Ok(mut slot) = self.inner.sender.lock() {
            *slot = Some(sender);
        }
        Ok(response)
    }
}

impl Driver {
    /// Drives the current app connection until the link is dropped, then lets that
    /// connection finish what it carries.
    pub async fn run(self) {
        let mut current: Option<Drive> = None;
        std::future::poll_fn(|cx| self.poll(cx, &mut current)).await;
        if let Some(connection) = current {
            connection.await;
        }
    }

    fn poll(&self, cx: &mut Context<'_>, current: &mut Option<Drive>) -> Poll<()> {
        self.handover.driver.register(cx.waker());
        loop {
            if self.handover.fresh.swap(false, Ordering::AcqRel)
                && let Some(connection) =
                    self.handover.opened.lock().ok().and_then(|mut s| s.take())
            {
                *current = Some(connection);
            }
            if self.handover.gone.load(Ordering::Acquire) {
                return Poll::Ready(());
            }
            match current.as_mut().map(|c| c.as_mut().poll(cx)) {
                // The app closed it: wait for the next one (a new one may be in the slot).
                Some(Poll::Ready(())) => *current = None,
                Some(Poll::Pending) | None => return Poll::Pending,
            }
        }
    }
}
