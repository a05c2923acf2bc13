//! A connection to the app that belongs to one HTTP/1 client connection and is driven in that
//! connection's task. An HTTP/1 client sends one request at a time, so one upstream connection
//! serves it; keeping both in one task spares the pooled client's hand-offs between tasks (a
//! request and its answer cross no channel and wake no other task), which is most of what a
//! hop costs. Opened on the first request, replaced when the app closes it, closed with the
//! client's connection.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::body::Body;

type Drive = Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// The request side: cheap to clone, carried in the request's extensions.
#[derive(Clone)]
pub struct AppLink {
    inner: Arc<Inner>,
}

struct Inner {
    app: SocketAddr,
    connect_timeout: Duration,
    sender: Mutex<Option<SendRequest<Body>>>,
    drive: mpsc::UnboundedSender<Drive>,
}

/// The connection side: polls the upstream connection; run it next to the client connection.
pub struct Driver {
    next: mpsc::UnboundedReceiver<Drive>,
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
        let (drive, next) = mpsc::unbounded_channel();
        (
            AppLink {
                inner: Arc::new(Inner {
                    app,
                    connect_timeout,
                    sender: Mutex::new(None),
                    drive,
                }),
            },
            Driver { next },
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
        let _ = self.inner.drive.send(Box::pin(async move {
            let _ = connection.await;
        }));
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
    /// Drives the current app connection until the link is dropped.
    pub async fn run(mut self) {
        let mut current: Option<Drive> = None;
        loop {
            match current.as_mut() {
                Some(connection) => {
                    tokio::select! {
                        next = self.next.recv() => match next {
                            Some(c) => current = Some(c),
                            None => break,
                        },
                        () = connection => current = None,
                    }
                }
                None => match self.next.recv().await {
                    Some(c) => current = Some(c),
                    None => break,
                },
            }
        }
        // The link is gone; let the last connection finish what it carries.
        if let Some(connection) = current {
            connection.await;
        }
    }
}
