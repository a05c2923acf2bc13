//! The app's answer body as the client connection reads it: decoded by its framing straight
//! from the app connection, which goes back to the link for the next request once the answer
//! (and the request's body) ended cleanly.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use futures_util::task::AtomicWaker;
use http_body_util::BodyExt;
use hyper::Response;
use hyper::body::{Frame, SizeHint};
use tokio::net::tcp::OwnedWriteHalf;

use super::decode::{self, BodyFailure, Decoded, Framing};
use super::encode;
use super::{Inner, Reading};
use crate::body::{Body, BoxError};

/// Where the request's writing side is while its answer is read.
pub(super) enum Writer {
    /// The request had no body: written already.
    Here(OwnedWriteHalf),
    /// The driver writes the body, and leaves the writing side in [`Written`] when done.
    Elsewhere(Arc<Written>),
}

/// The end of a request body written by the driver: the writing side back, or the failure.
#[derive(Default)]
pub(super) struct Written {
    done: AtomicBool,
    result: Mutex<Option<Result<OwnedWriteHalf, encode::Error>>>,
    waker: AtomicWaker,
}

impl Written {
    pub(super) fn finish(&self, result: Result<OwnedWriteHalf, encode::Error>) {
        if let Ok(mut slot) = self.result.lock() {
            *slot = Some(result);
        }
        self.done.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// The body's failure, once it failed; wakes `cx` when the body ends.
    pub(super) fn failed(&self, cx: &mut Context<'_>) -> Option<encode::Error> {
        self.waker.register(cx.waker());
        if !self.done.load(Ordering::Acquire) {
            return None;
        }
        let mut slot = self.result.lock().ok()?;
        match slot.take() {
            Some(Err(e)) => Some(e),
            other => {
                *slot = other;
                None
            }
        }
    }

    /// The writing side, when the body was written whole.
    fn take(&self) -> Option<OwnedWriteHalf> {
        if !self.done.load(Ordering::Acquire) {
            return None;
        }
        match self.result.lock().ok()?.take() {
            Some(Ok(write)) => Some(write),
            _ => None,
        }
    }
}

/// An answer's body.
pub struct AppBody {
    framing: Framing,
    /// The connection, until the body ends.
    conn: Option<(Reading, Writer)>,
    keep_alive: bool,
    link: Arc<Inner>,
}

impl AppBody {
    pub(super) fn answer(
        head: decode::Head,
        reading: Reading,
        writer: Writer,
        link: Arc<Inner>,
    ) -> Response<Body> {
        let mut body = AppBody {
            framing: head.framing,
            conn: Some((reading, writer)),
            keep_alive: head.keep_alive,
            link,
        };
        // A body that is empty by its head is never read: the connection is free now.
        if body.framing.is_done() {
            body.release();
        }
        // Boxed here, as the handlers take it: each mapping of a response moves all of it.
        head.response.map(|()| body.boxed())
    }

    /// The answer ended: the connection goes back to the link when nothing of this exchange
    /// is left on it.
    fn release(&mut self) {
        let Some((reading, writer)) = self.conn.take() else {
            return;
        };
        if !self.keep_alive || !reading.buf.is_empty() {
            return;
        }
        let write = match writer {
            Writer::Here(write) => Some(write),
            Writer::Elsewhere(written) => written.take(),
        };
        if let Some(write) = write {
            self.link.keep(reading, write);
        }
    }
}

impl hyper::body::Body for AppBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let Some((reading, _)) = &mut this.conn else {
            return Poll::Ready(None);
        };
        let decoded = ready!(
            this.framing
                .poll_next(&mut reading.buf, &mut reading.read, cx)
        );
        match decoded.map_err(|e| match e {
            BodyFailure::Framing(e) => BoxError::from(e),
            BodyFailure::Read(e) => BoxError::from(e),
        })? {
            Decoded::Frame(frame) => {
                if this.framing.is_done() {
                    this.release();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Decoded::End => {
                this.release();
                Poll::Ready(None)
            }
            Decoded::Closed => {
                // Close-delimited, or cut short: either way the connection is done.
                this.keep_alive = false;
                this.conn = None;
                this.framing.closed()?;
                Poll::Ready(None)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.framing.is_done()
    }

    fn size_hint(&self) -> SizeHint {
        self.framing.size_hint()
    }
}
