//! A guard in front of the HTTP/1 parser for framing that hyper tolerates but a proxy must
//! refuse: a request with both Content-Length and Transfer-Encoding (hyper drops the length and
//! reads chunks, RFC 9112 §6.3 allows that; a sidecar in front of other parsers refuses it),
//! repeated Content-Length fields, and malformed chunk-size lines seen before the head is
//! forwarded. It follows each request's framing on the connection's bytes as they are read; on a
//! bad request it keeps the read from the parser, answers 400 itself (431 for too many header
//! fields) and closes, so nothing of it reaches the app.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::chunked::{self, Chunk};

/// Why a request was refused; a metric label.
pub type Reason = &'static str;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Head,
    Body(u64),
    Chunked(Chunk),
    /// The parser decides from here on: a head it will refuse itself, HTTP/2, an upgrade.
    Passthrough,
    Refused,
}

/// A head with more fields than the limit; answered 431, not 400.
pub const TOO_MANY_HEADERS: Reason = "too_many_headers";

/// Wraps a client connection's stream.
pub struct Guarded<T> {
    inner: T,
    state: State,
    head: Vec<u8>,
    max_head_bytes: usize,
    max_headers: usize,
    on_refuse: Option<Box<dyn FnOnce(Reason) + Send + Sync>>,
    refusal: Option<Refusal>,
}

impl<T> Guarded<T> {
    /// `on_refuse` is called once, with the reason, when a request is refused.
    pub fn new(
        inner: T,
        max_head_bytes: usize,
        max_headers: usize,
        on_refuse: impl FnOnce(Reason) + Send + Sync + 'static,
    ) -> Guarded<T> {
        Guarded {
            inner,
            state: State::Head,
            head: Vec::new(),
            max_head_bytes,
            max_headers,
            on_refuse: Some(Box::new(on_refuse)),
            refusal: None,
        }
    }

    /// Follows `input`, the next bytes of the connection.
    fn scan(&mut self, mut input: &[u8]) -> Result<(), Reason> {
        while !input.is_empty() {
            match &mut self.state {
                State::Passthrough | State::Refused => return Ok(()),
                State::Head => {
                    // Most heads arrive whole in one read: parse them where they lie, and
                    // gather bytes only for a head that spans reads.
                    let gathered = !self.head.is_empty();
                    if gathered {
                        self.head.extend_from_slice(input);
                    }
                    let bytes = if gathered { &self.head[..] } else { input };
                    match inspect(bytes, self.max_headers, self.max_head_bytes)? {
                        Head::Complete(len, next) => {
                            let before = if gathered {
                                self.head.len() - input.len()
                            } else {
                                0
                            };
                            input = &input[len - before..];
                            self.state = next;
                            self.head.clear();
                            if self.head.capacity() > 16 * 1024 {
                                self.head = Vec::new();
                            }
                        }
                        Head::Partial => {
                            if !gathered {
                                self.head.extend_from_slice(input);
                            }
                            return Ok(());
                        }
                        Head::Passthrough => {
                            self.state = State::Passthrough;
                            self.head = Vec::new();
                            return Ok(());
                        }
                    }
                }
                State::Body(left) => {
                    let n = usize::try_from(*left)
                        .unwrap_or(usize::MAX)
                        .min(input.len());
                    *left -= n as u64;
                    input = &input[n..];
                    if *left == 0 {
                        self.state = State::Head;
                    }
                }
                State::Chunked(Chunk::Data(left)) => {
                    let n = usize::try_from(*left)
                        .unwrap_or(usize::MAX)
                        .min(input.len());
                    *left -= n as u64;
                    input = &input[n..];
                    if *left == 0 {
                        self.state = State::Chunked(Chunk::DataCr);
                    }
                }
                State::Chunked(chunk) => {
                    let byte = input[0];
                    input = &input[1..];
                    self.state = match chunked::next(*chunk, byte)? {
                        Some(c) => State::Chunked(c),
                        None => State::Head,
                    };
                }
            }
        }
        Ok(())
    }
}

/// What a request head says about the bytes that follow it.
enum Head {
    Partial,
    /// The parser decides (it refuses this head itself, or it is not HTTP/1).
    Passthrough,
    /// The head's length and the framing of what follows.
    Complete(usize, State),
}

/// Reads one request head from the start of `bytes`.
fn inspect(bytes: &[u8], max_headers: usize, max_head_bytes: usize) -> Result<Head, Reason> {
    let mut stack = [httparse::EMPTY_HEADER; 64];
    let mut heap = Vec::new();
    let headers: &mut [httparse::Header<'_>] = if max_headers <= stack.len() {
        &mut stack[..max_headers]
    } else {
        heap.resize(max_headers, httparse::EMPTY_HEADER);
        &mut heap
    };
    let mut request = httparse::Request::new(headers);
    let len = match request.parse(bytes) {
        Ok(httparse::Status::Complete(len)) => len,
        // Past the limit the parser answers 431.
        Ok(httparse::Status::Partial) if bytes.len() > max_head_bytes => {
            return Ok(Head::Passthrough);
        }
        Ok(httparse::Status::Partial) => return Ok(Head::Partial),
        // Refused here rather than by the parser, so the parser can keep its default header
        // table (a table sized to the limit is zeroed for every request it reads).
        Err(httparse::Error::TooManyHeaders) => return Err(TOO_MANY_HEADERS),
        // Not HTTP/1 (the HTTP/2 preface) or a head the parser refuses itself.
        Err(_) => return Ok(Head::Passthrough),
    };
    let (mut lengths, mut length, mut chunked, mut encodings, mut upgrade) =
        (0, None, false, 0, false);
    for h in request.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            lengths += 1;
            length = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok());
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            encodings += 1;
            chunked = h
                .value
                .rsplit(|b| *b == b',')
                .next()
                .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if h.name.eq_ignore_ascii_case("upgrade") {
            upgrade = true;
        }
    }
    if lengths > 0 && encodings > 0 {
        return Err("content_length_and_transfer_encoding");
    }
    if lengths > 1 {
        return Err("repeated_content_length");
    }
    // Origin form, absolute form, `*` for OPTIONS, authority form for CONNECT (RFC 9112 §3.2).
    let target = request.path.unwrap_or("");
    let method = request.method.unwrap_or("");
    if !(target.starts_with('/')
        || target.contains("://")
        || (target == "*" && method == "OPTIONS")
        || method == "CONNECT")
    {
        return Err("bad_request_target");
    }
    let next = if upgrade || request.method == Some("CONNECT") {
        State::Passthrough
    } else if encodings > 0 {
        if chunked {
            State::Chunked(Chunk::Size {
                value: 0,
                digits: 0,
            })
        } else {
            State::Passthrough
        }
    } else {
        match (lengths, length) {
            (0, _) | (_, Some(0)) => State::Head,
            (_, Some(n)) => State::Body(n),
            (_, None) => State::Passthrough, // the parser answers 400
        }
    };
    Ok(Head::Complete(len, next))
}

/// The guard's own answer to a refused request.
fn reply(reason: Reason) -> Vec<u8> {
    let detail = match reason {
        "content_length_and_transfer_encoding" => {
            "the request has both Content-Length and Transfer-Encoding (RFC 9112 section 6.1); send one of them"
        }
        "repeated_content_length" => {
            "the request has more than one Content-Length field; send exactly one"
        }
        "bad_request_target" => {
            "the request target is neither a path (/...), an absolute URL, nor * for OPTIONS"
        }
        "chunk_size_too_large" => "a chunk size has more than 15 hex digits",
        "chunk_extension_too_long" => "a chunk extension is longer than 4096 bytes",
        TOO_MANY_HEADERS => {
            "the request has more header fields than limits.max_header_count allows; send fewer"
        }
        _ => "the chunked body is malformed (RFC 9112 section 7.1)",
    };
    let status = if reason == TOO_MANY_HEADERS {
        "431 Request Header Fields Too Large"
    } else {
        "400 Bad Request"
    };
    let body = format!(r#"{{"error":"{reason}","detail":"{detail}"}}"#);
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// After a refusal: the answer still to write, and whether the write side is shut.
struct Refusal {
    reply: Vec<u8>,
    written: usize,
    shut: bool,
}

impl<T: AsyncRead + AsyncWrite + Unpin> Guarded<T> {
    /// Writes the answer, shuts the write side, reads away what the client already sent (so the
    /// close does not reset the connection before the client read the answer), then fails the
    /// read so that the parser drops the connection.
    fn poll_refuse(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some(refusal) = self.refusal.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        while refusal.written < refusal.reply.len() {
            let n = ready!(
                Pin::new(&mut self.inner).poll_write(cx, &refusal.reply[refusal.written..])
            )?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            refusal.written += n;
        }
        if !refusal.shut {
            ready!(Pin::new(&mut self.inner).poll_flush(cx))?;
            ready!(Pin::new(&mut self.inner).poll_shutdown(cx))?;
            refusal.shut = true;
        }
        let mut scratch = [0u8; 4096];
        for _ in 0..16 {
            let mut drain = ReadBuf::new(&mut scratch);
            match Pin::new(&mut self.inner).poll_read(cx, &mut drain) {
                Poll::Ready(Ok(())) if !drain.filled().is_empty() => continue,
                _ => break,
            }
        }
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "request refused for its framing",
        )))
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for Guarded<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.refusal.is_some() {
            return this.poll_refuse(cx);
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        if let Err(reason) = this.scan(&buf.filled()[before..]) {
            // Nothing of this read reaches the parser.
            buf.set_filled(before);
            this.state = State::Refused;
            this.head = Vec::new();
            this.refusal = Some(Refusal {
                reply: reply(reason),
                written: 0,
                shut: false,
            });
            if let Some(on_refuse) = this.on_refuse.take() {
                on_refuse(reason);
            }
            return this.poll_refuse(cx);
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Guarded<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(chunks: &[&[u8]]) -> Result<State, Reason> {
        let mut g = Guarded::new((), 8192, 100, |_| {});
        for c in chunks {
            g.scan(c)?;
        }
        Ok(g.state)
    }

    #[test]
    fn good_requests_pass_in_any_split() {
        let pipelined: &[u8] = b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloPOST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nTrailer: t\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(verdict(&[pipelined]), Ok(State::Head));
        for split in 1..pipelined.len() {
            let (a, b) = pipelined.split_at(split);
            assert_eq!(verdict(&[a, b]), Ok(State::Head), "split at {split}");
        }
        let bytes: Vec<&[u8]> = pipelined.chunks(1).collect();
        assert_eq!(verdict(&bytes), Ok(State::Head));
    }

    #[test]
    fn ambiguous_framing_is_refused_even_when_split() {
        let both: &[u8] =
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n";
        for split in 1..both.len() {
            let (a, b) = both.split_at(split);
            assert_eq!(
                verdict(&[a, b]),
                Err("content_length_and_transfer_encoding")
            );
        }
        assert_eq!(
            verdict(&[b"POST / HTTP/1.1\r\nContent-Length: 4\r\ncontent-length: 4\r\n\r\nabcd"]),
            Err("repeated_content_length")
        );
        assert_eq!(
            verdict(&[b"GET h HTTP/1.1\r\n\r\n"]),
            Err("bad_request_target")
        );
        assert_eq!(
            verdict(&[b"OPTIONS * HTTP/1.1\r\n\r\nGET http://a/b HTTP/1.1\r\n\r\n"]),
            Ok(State::Head)
        );
        // Smuggled behind a good first request.
        assert_eq!(
            verdict(&[
                b"GET / HTTP/1.1\r\n\r\nPOST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"
            ]),
            Err("content_length_and_transfer_encoding")
        );
    }

    #[test]
    fn too_many_fields_are_refused_with_431() {
        let head: &[u8] = b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
        let mut g = Guarded::new((), 8192, 3, |_| {});
        assert_eq!(g.scan(head), Ok(()));
        let mut g = Guarded::new((), 8192, 2, |_| {});
        assert_eq!(g.scan(head), Err(TOO_MANY_HEADERS));
        assert!(reply(TOO_MANY_HEADERS).starts_with(b"HTTP/1.1 431 "));
        assert!(reply("repeated_content_length").starts_with(b"HTTP/1.1 400 "));
    }

    #[test]
    fn bad_chunks_are_refused() {
        let head = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        for body in [
            &b"zz\r\n"[..],
            b"-1\r\n",
            b"\r\n",
            b"fffffffffffffffff\r\n",
            b"5\r\nhelloXX",
            b"5\nhello\r\n",
            b"5;a\0\r\nhello\r\n",
        ] {
            assert!(verdict(&[head, body]).is_err(), "{body:?}");
        }
    }

    #[test]
    fn other_protocols_and_upgrades_pass_through() {
        assert_eq!(
            verdict(&[b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"]),
            Ok(State::Passthrough)
        );
        assert_eq!(
            verdict(&[b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n"]),
            Ok(State::Passthrough)
        );
    }
}
