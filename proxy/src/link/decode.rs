//! Reading the app's HTTP/1.1 answer: its head (informational answers skipped) and then its
//! body by the framing the head declares (RFC 9112 §6.3): none, a length, chunks with
//! trailers, or everything until the app closes.

use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use hyper::body::{Frame, SizeHint};
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Response, StatusCode, Version};
use tokio::io::AsyncRead;

use crate::chunked::{self, Chunk};
use crate::fields::{FieldSpans, Passed};
use crate::hop::{self, ConnectionTokens};

/// An answer head longer than this is refused (nginx's default is 4 or 8 KiB).
pub(super) const MAX_HEAD_BYTES: usize = 64 * 1024;
/// At most this many fields in an answer head, as hyper's client takes.
const MAX_FIELDS: usize = 100;
/// Trailer sections longer than this are refused.
const MAX_CHUNK_LINE: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the app's answer head is not HTTP/1: {0}")]
    Head(httparse::Error),
    #[error("the app's answer head is longer than {MAX_HEAD_BYTES} bytes")]
    HeadTooLarge,
    #[error("the app answered with status {0}, which is not a status code")]
    Status(u16),
    #[error("the app answered 101 Switching Protocols to a request that asked for no upgrade")]
    UnexpectedSwitch,
    #[error("the app's answer has an invalid header field {0:?}")]
    Field(String),
    #[error("the app's answer has an invalid or repeated Content-Length")]
    Length,
    #[error("the app's chunked body is malformed: {0}")]
    Chunk(&'static str),
}

/// How an answer's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    Empty,
    Length(u64),
    Chunked(Chunk),
    /// Until the app closes the connection.
    Close,
    Done,
}

/// A parsed answer head.
pub(super) struct Head {
    pub response: Response<()>,
    pub framing: Framing,
    /// Whether the connection may carry another request once this answer is read.
    pub keep_alive: bool,
}

/// Takes one complete answer head off the front of `buf`, skipping informational answers;
/// `None` while it is incomplete. `method` is the request's (an answer to HEAD has no body).
// Out of line: its field table would otherwise widen the frame of the poll function that
// calls it, which every wake-up of the connection enters (and probes page by page).
#[inline(never)]
pub(super) fn head(buf: &mut BytesMut, method: &Method) -> Result<Option<Head>, Error> {
    loop {
        let mut fields = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_FIELDS];
        let mut spans = FieldSpans::new();
        let (len, code, version) =
            {
                let mut parsed = httparse::Response::new(&mut []);
                let len = match httparse::ParserConfig::default()
                    .parse_response_with_uninit_headers(&mut parsed, buf, &mut fields)
                {
                    Ok(httparse::Status::Complete(len)) => len,
                    Ok(httparse::Status::Partial) => {
                        return if buf.len() > MAX_HEAD_BYTES {
                            Err(Error::HeadTooLarge)
                        } else {
                            Ok(None)
                        };
                    }
                    Err(e) => return Err(Error::Head(e)),
                };
                if len > MAX_HEAD_BYTES {
                    return Err(Error::HeadTooLarge);
                }
                let base = buf.as_ptr() as usize;
                for field in parsed.headers.iter() {
                    spans.push(base, field.name.as_bytes(), field.value);
                }
                (len, parsed.code.unwrap_or(0), parsed.version.unwrap_or(1))
            };
        let head = buf.split_to(len).freeze();
        let status = StatusCode::from_u16(code).map_err(|_| Error::Status(code))?;
        if status == StatusCode::SWITCHING_PROTOCOLS {
            return Err(Error::UnexpectedSwitch);
        }
        if status.is_informational() {
            // 100 Continue and 103 Early Hints: the final answer follows.
            continue;
        }
        // The framing and the connection's fate first; then the fields that go on, without
        // the hop-by-hop ones (RFC 9110 §7.6.1): the client connection frames the answer anew.
        let mut seen = Seen::default();
        for (name, value) in spans.iter() {
            let (name, value) = (&head[name], &head[value]);
            if name.eq_ignore_ascii_case(b"content-length") {
                seen.length(value)?;
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                let last = value.rsplit(|b| *b == b',').next().unwrap_or(b"");
                seen.chunked = Some(last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
            } else if name.eq_ignore_ascii_case(b"connection") {
                seen.connection.read(value);
            } else if name.eq_ignore_ascii_case(b"date") {
                seen.date = true;
            }
        }
        let mut response = Response::new(());
        // A `Content-Length` next to a transfer coding says nothing true (RFC 9112 §6.3).
        let stale_length =
            |name: &[u8]| seen.chunked.is_some() && name.eq_ignore_ascii_case(b"content-length");
        if seen.connection.names_fields || seen.connection.upgrade {
            // `Connection` names other fields (an `upgrade` token names `Upgrade`), which are
            // then hop-by-hop too: the map and `hop::strip` sort them out.
            let mut headers = HeaderMap::with_capacity(spans.len());
            for (name, value) in spans.read(&head) {
                if stale_length(name) {
                    continue;
                }
                let name = HeaderName::from_bytes(name)
                    .map_err(|_| Error::Field(String::from_utf8_lossy(name).into_owned()))?;
                let value = HeaderValue::from_maybe_shared(value)
                    .map_err(|_| Error::Field(name.to_string()))?;
                headers.append(name, value);
            }
            hop::strip(&mut headers, false);
            *response.headers_mut() = headers;
        } else {
            // The common answer: its fields go to the client as they are, with no map.
            let mut passed = Passed::new(head.clone());
            for (name, value) in spans.iter() {
                let field = &head[name.clone()];
                if !hop::always_hop(field) && !stale_length(field) {
                    passed.push(name, value);
                }
            }
            passed.length = seen.length.filter(|_| seen.chunked.is_none());
            passed.date = seen.date;
            response.extensions_mut().insert(passed);
        }
        let version = if version == 0 {
            Version::HTTP_10
        } else {
            Version::HTTP_11
        };
        let framing = seen.framing(method, status);
        let keep_alive = framing != Framing::Close
            && !seen.connection.close
            && (version == Version::HTTP_11 || seen.connection.keep_alive);
        *response.status_mut() = status;
        *response.version_mut() = version;
        return Ok(Some(Head {
            response,
            framing,
            keep_alive,
        }));
    }
}

/// What an answer's head says about its framing and its connection.
#[derive(Default)]
struct Seen {
    /// Whether the last transfer coding is `chunked`, when there is one.
    chunked: Option<bool>,
    length: Option<u64>,
    connection: ConnectionTokens,
    date: bool,
}

impl Seen {
    /// A `Content-Length` value: a list of equal lengths is one length (RFC 9110 §8.6);
    /// anything else is an error.
    fn length(&mut self, value: &[u8]) -> Result<(), Error> {
        for item in value.split(|b| *b == b',') {
            let item = item.trim_ascii();
            if item.is_empty() || !item.iter().all(u8::is_ascii_digit) || item.len() > 19 {
                return Err(Error::Length);
            }
            let n = item.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
            if self.length.is_some_and(|l| l != n) {
                return Err(Error::Length);
            }
            self.length = Some(n);
        }
        Ok(())
    }

    /// RFC 9112 §6.3, for an answer.
    fn framing(&self, method: &Method, status: StatusCode) -> Framing {
        if method == Method::HEAD
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED
        {
            return Framing::Empty;
        }
        match (self.chunked, self.length) {
            (Some(true), _) => Framing::Chunked(Chunk::Size {
                value: 0,
                digits: 0,
            }),
            // A coding other than chunked last: the body runs until the app closes.
            (Some(false), _) | (None, None) => Framing::Close,
            (None, Some(0)) => Framing::Empty,
            (None, Some(n)) => Framing::Length(n),
        }
    }
}

/// What reading a body from its connection came to.
#[derive(Debug)]
pub(crate) enum Decoded {
    Frame(Frame<Bytes>),
    /// The body ended by its framing.
    End,
    /// The connection ended first (the end of a close-delimited body, else a cut).
    Closed,
}

/// Why reading a body from its connection failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BodyFailure {
    #[error(transparent)]
    Framing(#[from] Error),
    #[error(transparent)]
    Read(#[from] std::io::Error),
}

/// Bytes a read asks for at least.
pub(crate) const READ_SIZE: usize = 8 * 1024;

/// What the body decoder made of the bytes at hand.
#[derive(Debug)]
pub(crate) enum Step {
    Frame(Frame<Bytes>),
    /// More bytes are needed.
    More,
    End,
}

impl Framing {
    /// The next piece of the body from `buf`.
    pub(crate) fn step(&mut self, buf: &mut BytesMut) -> Result<Step, Error> {
        match self {
            Framing::Empty | Framing::Done => {
                *self = Framing::Done;
                Ok(Step::End)
            }
            Framing::Length(left) => {
                if buf.is_empty() {
                    return Ok(Step::More);
                }
                let take = (*left).min(buf.len() as u64);
                *left -= take;
                let data = buf.split_to(take as usize).freeze();
                if *left == 0 {
                    *self = Framing::Done;
                }
                Ok(Step::Frame(Frame::data(data)))
            }
            Framing::Close => {
                if buf.is_empty() {
                    return Ok(Step::More);
                }
                Ok(Step::Frame(Frame::data(buf.split().freeze())))
            }
            Framing::Chunked(chunk) => {
                let step = chunked(chunk, buf)?;
                if matches!(step, Step::End) || matches!(&step, Step::Frame(f) if f.is_trailers()) {
                    // Nothing follows the last chunk's trailer section.
                    *self = Framing::Done;
                }
                Ok(step)
            }
        }
    }

    /// The next piece of the body: from `buf`, else read from `read` into `buf` (what is read
    /// past the body stays there).
    pub(crate) fn poll_next<R: AsyncRead + Unpin>(
        &mut self,
        buf: &mut BytesMut,
        read: &mut R,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Decoded, BodyFailure>> {
        loop {
            match self.step(buf)? {
                Step::Frame(frame) => return Poll::Ready(Ok(Decoded::Frame(frame))),
                Step::End => return Poll::Ready(Ok(Decoded::End)),
                Step::More => {}
            }
            if buf.capacity() - buf.len() < READ_SIZE / 2 {
                buf.reserve(READ_SIZE);
            }
            if ready!(tokio_util::io::poll_read_buf(Pin::new(&mut *read), cx, buf))? == 0 {
                return Poll::Ready(Ok(Decoded::Closed));
            }
        }
    }

    /// The end of the connection: the end of a close-delimited body, else a truncated one.
    pub(crate) fn closed(&mut self) -> Result<Step, Error> {
        match self {
            Framing::Close | Framing::Done | Framing::Empty => {
                *self = Framing::Done;
                Ok(Step::End)
            }
            _ => Err(Error::Chunk(
                "the app closed the connection before the body ended",
            )),
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        matches!(self, Framing::Empty | Framing::Done)
    }

    /// What is known of the length still to come: exact when the head declared one.
    pub(crate) fn size_hint(&self) -> SizeHint {
        match self {
            Framing::Empty | Framing::Done => SizeHint::with_exact(0),
            Framing::Length(n) => SizeHint::with_exact(*n),
            _ => SizeHint::default(),
        }
    }
}

/// The next piece of a chunked body: data taken whole from `buf`, the framing between
/// followed byte by byte.
fn chunked(chunk: &mut Chunk, buf: &mut BytesMut) -> Result<Step, Error> {
    loop {
        match *chunk {
            Chunk::Data(left) => {
                if buf.is_empty() {
                    return Ok(Step::More);
                }
                let take = left.min(buf.len() as u64);
                *chunk = if take == left {
                    Chunk::DataCr
                } else {
                    Chunk::Data(left - take)
                };
                return Ok(Step::Frame(Frame::data(
                    buf.split_to(take as usize).freeze(),
                )));
            }
            // The trailer section is read whole, for its fields.
            Chunk::TrailerStart => return trailers(buf),
            state => {
                let Some(&byte) = buf.first() else {
                    return Ok(Step::More);
                };
                buf.advance(1);
                match chunked::next(state, byte).map_err(Error::Chunk)? {
                    Some(next) => *chunk = next,
                    None => return Ok(Step::End),
                }
            }
        }
    }
}

/// The trailer section after the last chunk: an empty line, or fields then an empty line.
fn trailers(buf: &mut BytesMut) -> Result<Step, Error> {
    if buf.len() < 2 {
        return Ok(Step::More);
    }
    if buf.starts_with(b"\r\n") {
        buf.advance(2);
        return Ok(Step::End);
    }
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if buf.len() > MAX_CHUNK_LINE {
            Err(Error::Chunk("trailer section too long"))
        } else {
            Ok(Step::More)
        };
    };
    let mut fields = [httparse::EMPTY_HEADER; 32];
    let mut map = HeaderMap::new();
    match httparse::parse_headers(&buf[..end + 4], &mut fields) {
        Ok(httparse::Status::Complete((_, parsed))) => {
            for field in parsed {
                let name = HeaderName::from_bytes(field.name.as_bytes())
                    .map_err(|_| Error::Chunk("invalid trailer field"))?;
                let value = HeaderValue::from_bytes(field.value)
                    .map_err(|_| Error::Chunk("invalid trailer field"))?;
                map.append(name, value);
            }
        }
        _ => return Err(Error::Chunk("invalid trailer section")),
    }
    buf.advance(end + 4);
    Ok(Step::Frame(Frame::trailers(map)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An answer's fields, wherever it keeps them.
    fn fields(mut response: Response<()>) -> HeaderMap {
        crate::fields::materialize(&mut response);
        std::mem::take(response.headers_mut())
    }

    fn parse(text: &str, method: Method) -> Result<Option<Head>, Error> {
        head(&mut BytesMut::from(text), &method)
    }

    /// Feeds `bytes` one at a time, as the slowest app would send them.
    fn body(framing: Framing, bytes: &[u8]) -> Result<(Vec<u8>, Option<HeaderMap>), Error> {
        let mut framing = framing;
        let (mut data, mut trailers) = (Vec::new(), None);
        let mut buf = BytesMut::new();
        let mut rest = bytes;
        loop {
            match framing.step(&mut buf)? {
                Step::Frame(frame) => match frame.into_data() {
                    Ok(d) => data.extend_from_slice(&d),
                    Err(frame) => trailers = frame.into_trailers().ok(),
                },
                Step::End => return Ok((data, trailers)),
                Step::More => match rest.split_first() {
                    Some((b, r)) => {
                        buf.extend_from_slice(&[*b]);
                        rest = r;
                    }
                    None => {
                        framing.closed()?;
                        return Ok((data, trailers));
                    }
                },
            }
        }
    }

    #[test]
    fn a_head_keeps_its_fields_in_order_and_informational_answers_are_skipped() {
        let text = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n\
                    HTTP/1.1 201 Created\r\nX-A: 1\r\nx-a: 2\r\nContent-Length: 3\r\n\r\nabc";
        let mut buf = BytesMut::from(text);
        let head = head(&mut buf, &Method::POST).unwrap().unwrap();
        assert_eq!(head.response.status(), StatusCode::CREATED);
        let values: Vec<_> = fields(head.response)
            .get_all("x-a")
            .iter()
            .cloned()
            .collect();
        assert_eq!(values, ["1", "2"]);
        assert_eq!(head.framing, Framing::Length(3));
        assert!(head.keep_alive);
        assert_eq!(&buf[..], b"abc");
    }

    #[test]
    fn an_incomplete_head_waits_and_a_bad_one_is_an_error() {
        assert!(
            parse("HTTP/1.1 200 OK\r\nx-a: 1\r\n", Method::GET)
                .unwrap()
                .is_none()
        );
        assert!(matches!(
            parse("HTTP/1.1 2xx OK\r\n\r\n", Method::GET),
            Err(Error::Head(_))
        ));
        assert!(matches!(
            parse("HTTP/1.1 101 Switching Protocols\r\n\r\n", Method::GET),
            Err(Error::UnexpectedSwitch)
        ));
        let huge = format!("HTTP/1.1 200 OK\r\nx-a: {}", "a".repeat(MAX_HEAD_BYTES));
        assert!(matches!(
            parse(&huge, Method::GET),
            Err(Error::HeadTooLarge)
        ));
    }

    #[test]
    fn framing_follows_rfc_9112() {
        let framing = |text: &str, method| parse(text, method).unwrap().unwrap().framing;
        let ok = "HTTP/1.1 200 OK\r\n";
        assert_eq!(
            framing(&format!("{ok}content-length: 5\r\n\r\n"), Method::HEAD),
            Framing::Empty
        );
        for status in ["204 No Content", "304 Not Modified"] {
            let text = format!("HTTP/1.1 {status}\r\ncontent-length: 5\r\n\r\n");
            assert_eq!(framing(&text, Method::GET), Framing::Empty);
        }
        assert_eq!(
            framing(&format!("{ok}content-length: 5, 5\r\n\r\n"), Method::GET),
            Framing::Length(5)
        );
        assert_eq!(
            framing(&format!("{ok}content-length: 0\r\n\r\n"), Method::GET),
            Framing::Empty
        );
        assert!(matches!(
            parse(
                &format!("{ok}content-length: 5\r\ncontent-length: 6\r\n\r\n"),
                Method::GET
            ),
            Err(Error::Length)
        ));
        assert!(matches!(
            parse(&format!("{ok}content-length: -1\r\n\r\n"), Method::GET),
            Err(Error::Length)
        ));
        assert!(matches!(
            framing(
                &format!("{ok}transfer-encoding: gzip, chunked\r\ncontent-length: 9\r\n\r\n"),
                Method::GET
            ),
            Framing::Chunked(_)
        ));
        assert_eq!(
            framing(&format!("{ok}transfer-encoding: gzip\r\n\r\n"), Method::GET),
            Framing::Close
        );
        assert_eq!(framing(&format!("{ok}\r\n"), Method::GET), Framing::Close);
    }

    #[test]
    fn hop_by_hop_fields_are_left_out_of_the_answer() {
        let names = |text: &str| {
            let head = parse(text, Method::GET).unwrap().unwrap();
            let mut names: Vec<String> = fields(head.response)
                .keys()
                .map(|k| k.to_string())
                .collect();
            names.sort();
            names
        };
        assert_eq!(
            names(
                "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\
                 Transfer-Encoding: chunked\r\nX-Order: 1\r\n\r\n"
            ),
            ["x-order"]
        );
        assert_eq!(
            names(
                "HTTP/1.1 200 OK\r\nX-Hop: 1\r\nConnection: X-Hop\r\nX-Order: 1\r\n\
                 Content-Length: 0\r\n\r\n"
            ),
            ["content-length", "x-order"]
        );
        // A length next to a transfer coding is dropped, with or without a map.
        assert_eq!(
            names(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 9\r\n\
                 X-Order: 1\r\n\r\n"
            ),
            ["x-order"]
        );
        assert_eq!(
            names(
                "HTTP/1.1 200 OK\r\nConnection: X-Hop\r\nX-Hop: 1\r\n\
                 Transfer-Encoding: chunked\r\nContent-Length: 9\r\n\r\n"
            ),
            Vec::<String>::new()
        );
    }

    #[test]
    fn keep_alive_depends_on_the_version_and_connection() {
        let keep = |text: &str| parse(text, Method::GET).unwrap().unwrap().keep_alive;
        assert!(keep("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"));
        assert!(!keep(
            "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\n\r\n"
        ));
        assert!(!keep("HTTP/1.0 200 OK\r\ncontent-length: 0\r\n\r\n"));
        assert!(keep(
            "HTTP/1.0 200 OK\r\nconnection: keep-alive\r\ncontent-length: 0\r\n\r\n"
        ));
        assert!(!keep("HTTP/1.1 200 OK\r\n\r\n"), "close-delimited");
    }

    #[test]
    fn chunks_extensions_and_trailers_decode_byte_by_byte() {
        let chunked = Framing::Chunked(Chunk::START);
        let (data, trailers) = body(
            chunked,
            b"5;name=\"v\"\r\nhello\r\nA \r\n, world!!!\r\n0\r\nx-sum: 7\r\n\r\n",
        )
        .unwrap();
        assert_eq!(data, b"hello, world!!!");
        assert_eq!(trailers.unwrap()["x-sum"], "7");

        let (data, trailers) = body(chunked, b"3\r\nabc\r\n0\r\n\r\n").unwrap();
        assert_eq!(data, b"abc");
        assert!(trailers.is_none());

        for bad in [
            &b"zz\r\n"[..],
            b"5\r\nhelloXX",
            b"11111111111111111\r\n",
            b"\r\n",
            b"3\r\nab",
        ] {
            assert!(
                body(chunked, bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn lengths_and_close_delimited_bodies() {
        assert_eq!(body(Framing::Length(3), b"abc").unwrap().0, b"abc");
        assert!(body(Framing::Length(4), b"abc").is_err(), "cut short");
        assert_eq!(body(Framing::Close, b"all of it").unwrap().0, b"all of it");
        assert_eq!(body(Framing::Empty, b"").unwrap().0, b"");
    }
}
