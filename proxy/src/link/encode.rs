//! Writing a request to the app over HTTP/1.1: its head in origin form, then its body framed
//! by the length it declares, else in chunks (trailers included).

use std::fmt::Write as _;

use bytes::BytesMut;
use http_body_util::BodyExt;
use hyper::body::Body as _;
use hyper::header::{self, HeaderMap};
use hyper::http::request::Parts;
use tokio::io::AsyncWrite;

use crate::body::{Body, BoxError};
use crate::vectored;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the request's Content-Length is not a length")]
    Length,
    #[error("the body is {0} than its Content-Length")]
    Mismatch(&'static str),
    #[error("the request body failed: {0}")]
    Body(#[source] BoxError),
    #[error("writing to the app: {0}")]
    Write(#[source] std::io::Error),
}

/// How a body is delimited on the connection it is written to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    None,
    Length(u64),
    Chunked,
    /// Until the connection closes (an answer of unknown length to an HTTP/1.0 client).
    Close,
}

/// The framing for `headers` and `body`: the declared length, else none for an empty body,
/// else chunks (hop-by-hop `Transfer-Encoding` was dropped before; the link frames anew).
pub(super) fn framing(headers: &HeaderMap, body: &Body) -> Result<Framing, Error> {
    if let Some(value) = headers.get(header::CONTENT_LENGTH) {
        let n = std::str::from_utf8(value.as_bytes())
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or(Error::Length)?;
        return Ok(Framing::Length(n));
    }
    if body.is_end_stream() {
        return Ok(Framing::None);
    }
    Ok(Framing::Chunked)
}

/// The request head, `host` standing in for a missing `Host` field.
pub(super) fn head(parts: &Parts, framing: Framing) -> BytesMut {
    let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut size = parts.method.as_str().len() + target.len() + 16;
    for (name, value) in &parts.headers {
        size += name.as_str().len() + value.len() + 4;
    }
    let mut out = BytesMut::with_capacity(size + 64);
    out.extend_from_slice(parts.method.as_str().as_bytes());
    out.extend_from_slice(b" ");
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    if !parts.headers.contains_key(header::HOST)
        && let Some(authority) = parts.uri.authority()
    {
        field(&mut out, b"host", authority.as_str().as_bytes());
    }
    for (name, value) in &parts.headers {
        field(&mut out, name.as_str().as_bytes(), value.as_bytes());
    }
    if framing == Framing::Chunked {
        field(&mut out, b"transfer-encoding", b"chunked");
    }
    out.extend_from_slice(b"\r\n");
    out
}

pub(crate) fn field(out: &mut BytesMut, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Writes `head` and then `body` by `framing`; the head goes out with the first piece of the
/// body, in one write. Both directions use it: requests to the app, answers to clients. (The
/// head stays a `BytesMut`: freezing one whose capacity is not all used allocates.)
pub(crate) async fn send<W: AsyncWrite + Unpin>(
    to: &mut W,
    head: BytesMut,
    mut body: Body,
    framing: Framing,
) -> Result<(), Error> {
    let mut head = Some(head);
    let mut left = match framing {
        Framing::Length(n) => n,
        _ => 0,
    };
    let mut size = String::new();
    loop {
        let pending = head.take().unwrap_or_default();
        let Some(frame) = body.frame().await else {
            if left > 0 {
                return Err(Error::Mismatch("shorter"));
            }
            let end: &[u8] = if framing == Framing::Chunked {
                b"0\r\n\r\n"
            } else {
                b""
            };
            return write(to, &[&pending, end]).await;
        };
        let frame = frame.map_err(Error::Body)?;
        let frame = match frame.into_data() {
            Ok(data) => {
                match framing {
                    Framing::Chunked if !data.is_empty() => {
                        size.clear();
                        let _ = write!(size, "{:x}\r\n", data.len());
                        write(to, &[&pending, size.as_bytes(), &data, b"\r\n"]).await?;
                    }
                    Framing::Length(_) | Framing::None => {
                        if data.len() as u64 > left {
                            return Err(Error::Mismatch("longer"));
                        }
                        left -= data.len() as u64;
                        write(to, &[&pending, &data]).await?;
                    }
                    Framing::Chunked => write(to, &[&pending]).await?,
                    Framing::Close => write(to, &[&pending, &data]).await?,
                }
                continue;
            }
            Err(frame) => frame,
        };
        if let (Ok(trailers), Framing::Chunked) = (frame.into_trailers(), framing) {
            let mut section = BytesMut::from(&b"0\r\n"[..]);
            for (name, value) in &trailers {
                field(&mut section, name.as_str().as_bytes(), value.as_bytes());
            }
            section.extend_from_slice(b"\r\n");
            // The trailer section ends the body.
            return write(to, &[&pending, &section]).await;
        }
        // Trailers on a body with a length have no place on HTTP/1.1: dropped, as hyper does.
        write(to, &[&pending]).await?;
    }
}

async fn write<W: AsyncWrite + Unpin>(to: &mut W, parts: &[&[u8]]) -> Result<(), Error> {
    vectored::write_all(to, parts).await.map_err(Error::Write)
}
