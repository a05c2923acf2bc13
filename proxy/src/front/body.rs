//! A request's body as the handler reads it: decoded by its framing straight from the client's
//! connection, which goes back to the connection for the next request when the body ends or is
//! dropped.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use futures_util::task::AtomicWaker;
use hyper::body::{Frame, SizeHint};

use super::Reading;
use crate::link::decode::{self, BodyFailure, Decoded, Framing, Step};

/// Why a request body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the request's chunked body is malformed: {0}")]
    Malformed(&'static str),
    #[error("the client closed the connection before the request body ended")]
    Cut,
    #[error("reading the request body: {0}")]
    Read(#[source] io::Error),
}

/// What a connection and the body of its current request share.
#[derive(Default)]
pub(super) struct Shared {
    /// The reading side, back from the body, and where in its framing the body stopped.
    back: Mutex<Option<(Reading, Framing)>>,
    /// The body was asked for and the client waits for `100 Continue` before sending it.
    continue_wanted: AtomicBool,
    /// The connection's task, woken for either.
    waker: AtomicWaker,
}

impl Shared {
    /// The reading side, once the body gave it back; wakes `cx` then.
    pub(super) fn poll_back(&self, cx: &mut Context<'_>) -> Poll<(Reading, Framing)> {
        self.waker.register(cx.waker());
        match self.take_back() {
            Some(back) => Poll::Ready(back),
            None => Poll::Pending,
        }
    }

    /// The reading side, if the body gave it back already.
    pub(super) fn take_back(&self) -> Option<(Reading, Framing)> {
        self.back.lock().ok().and_then(|mut b| b.take())
    }

    /// Whether the body asked for `100 Continue` since the last call; wakes `cx` when it does.
    pub(super) fn wants_continue(&self, cx: &mut Context<'_>) -> bool {
        self.waker.register(cx.waker());
        self.continue_wanted.swap(false, Ordering::AcqRel)
    }
}

/// A request body read from the client's connection.
pub(crate) struct CallerBody {
    framing: Framing,
    reading: Option<Reading>,
    shared: Arc<Shared>,
    expect_continue: bool,
}

impl CallerBody {
    pub(super) fn new(
        framing: Framing,
        reading: Reading,
        shared: Arc<Shared>,
        expect_continue: bool,
    ) -> CallerBody {
        CallerBody {
            framing,
            reading: Some(reading),
            shared,
            expect_continue,
        }
    }

    fn give_back(&mut self) {
        if let Some(reading) = self.reading.take() {
            if let Ok(mut back) = self.shared.back.lock() {
                *back = Some((reading, self.framing));
            }
            self.shared.waker.wake();
        }
    }
}

impl Drop for CallerBody {
    fn drop(&mut self) {
        self.give_back();
    }
}

impl hyper::body::Body for CallerBody {
    type Data = Bytes;
    type Error = crate::body::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if std::mem::take(&mut this.expect_continue) {
            this.shared.continue_wanted.store(true, Ordering::Release);
            this.shared.waker.wake();
        }
        let Some(reading) = &mut this.reading else {
            return Poll::Ready(None);
        };
        let decoded = ready!(
            this.framing
                .poll_next(&mut reading.buf, &mut reading.read, cx)
        );
        let failed = match decoded {
            Ok(Decoded::Frame(frame)) => {
                if this.framing.is_done() {
                    this.give_back();
                }
                return Poll::Ready(Some(Ok(frame)));
            }
            Ok(Decoded::End) => {
                this.give_back();
                return Poll::Ready(None);
            }
            Ok(Decoded::Closed) => BodyError::Cut,
            Err(BodyFailure::Framing(decode::Error::Chunk(why))) => BodyError::Malformed(why),
            Err(BodyFailure::Framing(_)) => BodyError::Malformed("invalid_chunk_framing"),
            Err(BodyFailure::Read(e)) => BodyError::Read(e),
        };
        Poll::Ready(Some(Err(failed.into())))
    }

    fn is_end_stream(&self) -> bool {
        self.framing.is_done()
    }

    fn size_hint(&self) -> SizeHint {
        self.framing.size_hint()
    }
}

/// Reads away what of an unfinished body is already buffered; whether the body ended.
pub(super) fn skip_buffered(framing: &mut Framing, reading: &mut Reading) -> bool {
    loop {
        match framing.step(&mut reading.buf) {
            Ok(Step::Frame(_)) => {}
            Ok(Step::End) => return true,
            Ok(Step::More) | Err(_) => return framing.is_done(),
        }
    }
}
