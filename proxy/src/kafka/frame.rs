//! Kafka's framing: a big-endian i32 size, then that many bytes. Sizes are checked against the
//! configured cap before anything is allocated, so a hostile prefix (say 2 GiB) costs nothing.

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("frame size {size} is over the limit of {max} bytes ([kafka] max_frame_bytes)")]
    TooLarge { size: i64, max: usize },
    #[error("frame size {0} is negative")]
    Negative(i32),
    #[error("the peer closed the connection")]
    Closed,
    #[error("the connection ended inside a frame")]
    Truncated,
    #[error(transparent)]
    Io(std::io::Error),
}

/// Reads one frame (without its size prefix); `Closed` when the peer ended cleanly between
/// frames.
pub async fn read<R: AsyncRead + Unpin>(from: &mut R, max: usize) -> Result<Bytes, Error> {
    let len = read_size(from, max).await?;
    read_body(from, len).await
}

/// Reads a frame's size prefix and checks it against `max`.
pub async fn read_size<R: AsyncRead + Unpin>(from: &mut R, max: usize) -> Result<usize, Error> {
    let mut size = [0u8; 4];
    match from.read_exact(&mut size).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(Error::Closed),
        Err(e) => return Err(Error::Io(e)),
    }
    let size = i32::from_be_bytes(size);
    let len = usize::try_from(size).map_err(|_| Error::Negative(size))?;
    if len > max {
        return Err(Error::TooLarge {
            size: i64::from(size),
            max,
        });
    }
    Ok(len)
}

/// Reads the `len` bytes of a frame whose size was read.
pub async fn read_body<R: AsyncRead + Unpin>(from: &mut R, len: usize) -> Result<Bytes, Error> {
    // Filled as bytes arrive, never zeroed first: large Fetch responses are common.
    let mut buf = BytesMut::with_capacity(len);
    let mut body = (&mut *from).take(len as u64);
    while buf.len() < len {
        match body.read_buf(&mut buf).await {
            Ok(0) => return Err(Error::Truncated),
            Ok(_) => {}
            Err(e) => return Err(Error::Io(e)),
        }
    }
    Ok(buf.freeze())
}

/// Small frames leave in one write with their size prefix; large ones in two, uncopied.
pub const COALESCE: usize = 64 * 1024;

/// Writes one frame with its size prefix.
pub async fn write<W: AsyncWrite + Unpin>(to: &mut W, frame: &[u8]) -> Result<(), Error> {
    let size = size_prefix(frame.len())?;
    if frame.len() <= COALESCE {
        let mut one = Vec::with_capacity(4 + frame.len());
        one.extend_from_slice(&size.to_be_bytes());
        one.extend_from_slice(frame);
        return to.write_all(&one).await.map_err(Error::Io);
    }
    to.write_all(&size.to_be_bytes()).await.map_err(Error::Io)?;
    to.write_all(frame).await.map_err(Error::Io)
}

/// Writes one frame made of `parts` in order, with vectored writes: a rebuilt request is
/// sent from where its pieces lie instead of being copied into one buffer first.
pub async fn write_parts<W: AsyncWrite + Unpin>(to: &mut W, parts: &[Bytes]) -> Result<(), Error> {
    let size = size_prefix(parts.iter().map(Bytes::len).sum())?.to_be_bytes();
    let slices: Vec<&[u8]> = std::iter::once(&size[..])
        .chain(parts.iter().map(|p| &p[..]))
        .collect();
    crate::vectored::write_all(to, &slices)
        .await
        .map_err(Error::Io)
}

/// A frame's size prefix.
fn size_prefix(len: usize) -> Result<i32, Error> {
    i32::try_from(len).map_err(|_| Error::TooLarge {
        size: len as i64,
        max: i32::MAX as usize,
    })
}

/// The fixed start of every request: api key, version, correlation id, client id (header v1+;
/// the flexible header v2 only adds tagged fields after it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestHead {
    pub api_key: i16,
    pub version: i16,
    pub correlation_id: i32,
    pub client_id: Option<String>,
    /// Where the header's client id ends.
    pub after_client_id: usize,
}

impl RequestHead {
    /// `None` when the frame is too short to be a request.
    pub fn peek(frame: &[u8]) -> Option<RequestHead> {
        if frame.len() < 10 {
            return None;
        }
        let api_key = i16::from_be_bytes([frame[0], frame[1]]);
        let version = i16::from_be_bytes([frame[2], frame[3]]);
        let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
        let len = i16::from_be_bytes([frame[8], frame[9]]);
        let (client_id, after_client_id) = if len < 0 {
            (None, 10)
        } else {
            let end = 10 + len as usize;
            let id = frame.get(10..end)?;
            (Some(String::from_utf8_lossy(id).into_owned()), end)
        };
        Some(RequestHead {
            api_key,
            version,
            correlation_id,
            client_id,
            after_client_id,
        })
    }
}

/// The correlation id a response starts with.
pub fn response_correlation(frame: &[u8]) -> Option<i32> {
    Some(i32::from_be_bytes(frame.get(0..4)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sizes_are_checked_before_reading() {
        let huge = (i32::MAX).to_be_bytes();
        let mut r = &huge[..];
        assert!(matches!(
            read(&mut r, 1024).await,
            Err(Error::TooLarge { .. })
        ));
        let neg = (-1i32).to_be_bytes();
        let mut r = &neg[..];
        assert!(matches!(read(&mut r, 1024).await, Err(Error::Negative(-1))));
        let cut = [0, 0, 0, 9, 1, 2];
        let mut r = &cut[..];
        assert!(matches!(read(&mut r, 1024).await, Err(Error::Truncated)));
        let mut r = &[][..];
        assert!(matches!(read(&mut r, 1024).await, Err(Error::Closed)));
    }

    #[tokio::test]
    async fn frames_round_trip() {
        let mut out = Vec::new();
        write(&mut out, b"hello").await.expect("write");
        let mut r = &out[..];
        assert_eq!(&read(&mut r, 16).await.expect("read")[..], b"hello");
    }

    /// Takes at most three bytes per write, so that writes end inside and between parts.
    struct Trickle(Vec<u8>);

    impl AsyncWrite for Trickle {
        fn poll_write(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            let n = buf.len().min(3);
            self.0.extend_from_slice(&buf[..n]);
            std::task::Poll::Ready(Ok(n))
        }
        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
        fn poll_shutdown(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn a_frame_in_parts_is_written_whole_and_in_order() {
        let parts = [
            Bytes::from_static(b"head"),
            Bytes::new(),
            Bytes::from_static(b"-"),
            Bytes::from(vec![7u8; 1000]),
            Bytes::from_static(b"tail"),
        ];
        let mut out = Trickle(Vec::new());
        write_parts(&mut out, &parts).await.expect("write");
        let mut r = &out.0[..];
        assert_eq!(read(&mut r, 4096).await.expect("read"), parts.concat());
        assert!(r.is_empty());
    }

    #[test]
    fn request_heads_are_read_without_knowing_the_api() {
        let mut f = vec![0, 3, 0, 12, 0, 0, 0, 42, 0, 3];
        f.extend_from_slice(b"app");
        let h = RequestHead::peek(&f).expect("head");
        assert_eq!((h.api_key, h.version, h.correlation_id), (3, 12, 42));
        assert_eq!(h.client_id.as_deref(), Some("app"));
        assert_eq!(h.after_client_id, 13);
        assert_eq!(RequestHead::peek(&f[..11]), None);
        assert_eq!(RequestHead::peek(&[0, 1]), None);
    }
}
