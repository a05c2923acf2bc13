//! A request body that can be taken back for as long as nothing has read from it. An
//! instance that refuses the connection has not seen a byte of the request, so the outbound
//! proxy can send the same request, body and all, to another instance without buffering it.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Frame, SizeHint};

use crate::body::{Body, BoxError};

/// Where the body waits until its first read.
type Slot = Arc<Mutex<Option<Body>>>;

/// The body to send: it takes `body` out of the shared slot on its first read.
struct Untouched {
    slot: Slot,
    read: Option<Body>,
}

/// The other end: the body back, if it was never read.
pub(crate) struct Reclaim(Slot);

impl Reclaim {
    /// The body, unless something has read from it (or the sent one is still alive).
    pub(crate) fn take(self) -> Option<Body> {
        Arc::into_inner(self.0)?.into_inner().ok()?
    }
}

/// `body` wrapped to be sent, and the handle that takes it back if it was never read.
pub(crate) fn untouched(body: Body) -> (Body, Reclaim) {
    let slot = Arc::new(Mutex::new(Some(body)));
    let sent = Untouched {
        slot: slot.clone(),
        read: None,
    };
    (sent.boxed(), Reclaim(slot))
}

impl hyper::body::Body for Untouched {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.read.is_none() {
            let taken = self.slot.lock().ok().and_then(|mut s| s.take());
            self.read = taken;
        }
        match self.read.as_mut() {
            Some(body) => Pin::new(body).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.read {
            Some(body) => body.is_end_stream(),
            None => self
                .slot
                .lock()
                .map_or(true, |s| s.as_ref().is_none_or(|b| b.is_end_stream())),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.read {
            Some(body) => body.size_hint(),
            None => self
                .slot
                .lock()
                .ok()
                .and_then(|s| s.as_ref().map(|b| b.size_hint()))
                .unwrap_or_else(|| SizeHint::with_exact(0)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::full;
    use hyper::body::Body as _;

    #[tokio::test]
    async fn a_body_comes_back_only_if_nothing_read_it() {
        let (sent, reclaim) = untouched(full("order 7"));
        assert_eq!(sent.size_hint().exact(), Some(7));
        assert!(!sent.is_end_stream());
        drop(sent);
        let back = reclaim.take().unwrap();
        assert_eq!(back.collect().await.unwrap().to_bytes(), "order 7");

        let (sent, reclaim) = untouched(full("order 8"));
        assert_eq!(sent.collect().await.unwrap().to_bytes(), "order 8");
        assert!(reclaim.take().is_none());

        // While the sent body lives, it may yet be read: it is not handed back.
        let (sent, reclaim) = untouched(full("order 9"));
        assert!(reclaim.take().is_none());
        assert_eq!(sent.collect().await.unwrap().to_bytes(), "order 9");
    }
}
