//! Reading a client's request head where it lies in the connection's read buffer, and refusing
//! what a proxy must not pass on: framing that two parsers could read two ways (RFC 9112 §6.1,
//! §6.3), transfer codings it cannot frame, request targets in no form RFC 9112 §3.2 knows,
//! floods of fields, and malformed chunk framing already at hand. Nothing refused reaches the
//! app.

use std::mem::MaybeUninit;

use bytes::BytesMut;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, StatusCode, Uri, Version};

use crate::chunked::{self, Chunk};
use crate::fields::FieldSpans;
use crate::hop::ConnectionTokens;
use crate::link::decode::Framing;

/// Header tables up to this size live on the stack; a larger configured limit takes the heap.
const STACK_FIELDS: usize = 128;
/// Fields the proxy may add to a request before it goes on.
const ADDED_FIELDS: usize = 4;

/// What a head may be: the configured limits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeadLimits {
    pub max_bytes: usize,
    pub max_fields: usize,
}

/// A request head, parsed.
pub(crate) struct Head {
    pub request: Request<()>,
    pub framing: Framing,
    /// Whether the client may send another request on the connection after this one.
    pub keep_alive: bool,
    /// `Expect: 100-continue`: the client waits for a go-ahead before it sends the body.
    pub expect_continue: bool,
    /// `Connection: upgrade` with `Upgrade`: the app may switch the connection's protocol.
    pub upgrade: bool,
}

/// A request refused: its status, a metric label, and what to tell the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub status: StatusCode,
    pub reason: &'static str,
    pub detail: String,
}

impl Refusal {
    fn bad(reason: &'static str, detail: impl Into<String>) -> Refusal {
        Refusal {
            status: StatusCode::BAD_REQUEST,
            reason,
            detail: detail.into(),
        }
    }
}

/// Takes one complete request head off the front of `buf`; `None` while it is incomplete.
// Out of line: its field table would otherwise widen the frame of the poll function that
// calls it, which every wake-up of the connection enters (and probes page by page).
#[inline(never)]
pub(crate) fn parse(buf: &mut BytesMut, limits: HeadLimits) -> Result<Option<Head>, Refusal> {
    let too_large = || Refusal {
        status: StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        reason: "head_too_large",
        detail: format!(
            "the request head is larger than {} bytes (limits.max_header_bytes); send a smaller one",
            limits.max_bytes
        ),
    };
    let mut stack = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; STACK_FIELDS];
    let mut heap = Vec::new();
    let table: &mut [MaybeUninit<httparse::Header<'_>>] = if limits.max_fields <= STACK_FIELDS {
        &mut stack[..limits.max_fields]
    } else {
        heap.resize_with(limits.max_fields, MaybeUninit::uninit);
        &mut heap
    };
    let mut parsed = httparse::Request::new(&mut []);
    let len = match parsed.parse_with_uninit_headers(buf, table) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() > limits.max_bytes => return Err(too_large()),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(Refusal {
                status: StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                reason: "too_many_headers",
                detail: format!(
                    "the request has more than {} header fields (limits.max_header_count); send fewer",
                    limits.max_fields
                ),
            });
        }
        Err(e) => {
            return Err(Refusal::bad(
                "bad_head",
                format!(
                    "the request head is not HTTP/1.1 ({e}); check the request line and header fields"
                ),
            ));
        }
    };
    if len > limits.max_bytes {
        return Err(too_large());
    }
    let base = buf.as_ptr() as usize;
    let span = |s: &[u8]| {
        let start = s.as_ptr() as usize - base;
        start..start + s.len()
    };
    let method = parsed.method.map(|m| span(m.as_bytes())).unwrap_or(0..0);
    let target = parsed.path.map(|p| span(p.as_bytes())).unwrap_or(0..0);
    let version = if parsed.version == Some(0) {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    let mut fields = FieldSpans::new();
    for field in parsed.headers.iter() {
        fields.push(base, field.name.as_bytes(), field.value);
    }
    let head = buf.split_to(len).freeze();
    let method = Method::from_bytes(&head[method])
        .map_err(|_| Refusal::bad("bad_method", "the request method is not a token"))?;
    let target = head.slice(target);
    check_target(&target, &method)?;
    let uri = Uri::from_maybe_shared(target).map_err(|e| {
        if e.to_string().contains("too long") {
            Refusal {
                status: StatusCode::URI_TOO_LONG,
                reason: "target_too_long",
                detail: "the request target is longer than 65534 bytes".to_owned(),
            }
        } else {
            Refusal::bad(
                "bad_request_target",
                format!("the request target is not a URI: {e}"),
            )
        }
    })?;

    let mut seen = Seen::default();
    // Room for what the proxy adds on the way (`Host`, `X-Forwarded-For`, trace context):
    // growing the map re-hashes every field.
    let mut headers = HeaderMap::with_capacity(fields.len() + ADDED_FIELDS);
    for (name, value) in fields.read(&head) {
        seen.field(name, &value)?;
        let name = HeaderName::from_bytes(name).map_err(|_| {
            Refusal::bad(
                "bad_field",
                format!("{:?} is not a field name", String::from_utf8_lossy(name)),
            )
        })?;
        let value = HeaderValue::from_maybe_shared(value).map_err(|_| {
            Refusal::bad(
                "bad_field",
                format!("the {name} field's value is not valid"),
            )
        })?;
        headers.append(name, value);
    }
    let framing = seen.framing(version)?;
    if let Framing::Chunked(_) = framing {
        // Chunks that came with the head are checked before the head goes anywhere.
        check_chunks(buf).map_err(|reason| Refusal::bad(reason, chunk_detail(reason)))?;
    }
    // After the framing: a request that smuggles is named as such, Host or not.
    seen.host(version)?;
    let keep_alive =
        !seen.connection.close && (version == Version::HTTP_11 || seen.connection.keep_alive);
    let mut request = Request::new(());
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = version;
    *request.headers_mut() = headers;
    Ok(Some(Head {
        request,
        framing,
        keep_alive,
        expect_continue: seen.expect_continue && version == Version::HTTP_11,
        upgrade: seen.upgrade_field && seen.connection.upgrade && version == Version::HTTP_11,
    }))
}

/// `uri-host [":" port]` (RFC 9110 §7.2, RFC 3986 §3.2.2), or empty: an authority without
/// user information, whose host is a bracketed IP literal or a registered name.
fn is_host(value: &[u8]) -> bool {
    let (name, port) = if let Some(literal) = value.strip_prefix(b"[") {
        let Some(end) = literal.iter().position(|&b| b == b']') else {
            return false;
        };
        let ip = &literal[..end];
        if ip.is_empty()
            || !ip
                .iter()
                .all(|b| b.is_ascii_hexdigit() || b":.".contains(b))
        {
            return false;
        }
        match &literal[end + 1..] {
            [] => return true,
            [b':', port @ ..] => (&b""[..], port),
            _ => return false,
        }
    } else {
        match value.iter().rposition(|&b| b == b':') {
            Some(colon) if colon > 0 => (&value[..colon], &value[colon + 1..]),
            Some(_) => return false,
            None => (value, &b""[..]),
        }
    };
    name.iter()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=%".contains(b))
        && port.iter().all(u8::is_ascii_digit)
}

/// Origin form, absolute form, `*` for OPTIONS, authority form for CONNECT (RFC 9112 §3.2).
fn check_target(target: &[u8], method: &Method) -> Result<(), Refusal> {
    let fits = target.starts_with(b"/")
        || target.windows(3).any(|w| w == b"://")
        || (target == b"*" && method == Method::OPTIONS)
        || method == Method::CONNECT;
    if fits {
        Ok(())
    } else {
        Err(Refusal::bad(
            "bad_request_target",
            "the request target is neither a path (/...), an absolute URL, nor * for OPTIONS",
        ))
    }
}

/// What a request head says about its framing and its connection.
#[derive(Default)]
struct Seen {
    length: Option<u64>,
    chunked: bool,
    connection: ConnectionTokens,
    upgrade_field: bool,
    expect_continue: bool,
    /// A `Transfer-Encoding` other than one `chunked`.
    bad_coding: Option<String>,
    /// How many `Host` fields, and whether each was a host with an optional port.
    hosts: u8,
    bad_host: bool,
}

impl Seen {
    fn field(&mut self, name: &[u8], value: &[u8]) -> Result<(), Refusal> {
        if name.eq_ignore_ascii_case(b"content-length") {
            if self.length.is_some() {
                return Err(Refusal::bad(
                    "repeated_content_length",
                    "the request has more than one Content-Length field; send exactly one",
                ));
            }
            let digits = value.trim_ascii();
            if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
                return Err(Refusal::bad(
                    "bad_content_length",
                    "the request's Content-Length is not one decimal length",
                ));
            }
            self.length = Some(digits.iter().fold(0, |n, d| n * 10 + u64::from(d - b'0')));
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            // Only `chunked`, once: a proxy that passes other codings on must decode them to
            // frame the body anew, and a second field could be read as another coding.
            if self.chunked || !value.trim_ascii().eq_ignore_ascii_case(b"chunked") {
                self.bad_coding
                    .get_or_insert_with(|| String::from_utf8_lossy(value).into_owned());
            }
            self.chunked = true;
        } else if name.eq_ignore_ascii_case(b"connection") {
            self.connection.read(value);
        } else if name.eq_ignore_ascii_case(b"upgrade") {
            self.upgrade_field = true;
        } else if name.eq_ignore_ascii_case(b"expect") {
            self.expect_continue = value.trim_ascii().eq_ignore_ascii_case(b"100-continue");
        } else if name.eq_ignore_ascii_case(b"host") {
            self.hosts = self.hosts.saturating_add(1);
            self.bad_host |= !is_host(value.trim_ascii());
        }
        Ok(())
    }

    /// RFC 9112 §3.2: an HTTP/1.1 request names its host exactly once, as `host[:port]` (empty
    /// for a target without one). Two values would let the proxy route by one while the app
    /// reads the other.
    fn host(&self, version: Version) -> Result<(), Refusal> {
        match self.hosts {
            0 if version == Version::HTTP_11 => Err(Refusal::bad(
                "missing_host",
                "the HTTP/1.1 request has no Host field (RFC 9112 section 3.2); send one naming the host",
            )),
            0 | 1 if self.bad_host => Err(Refusal::bad(
                "bad_host",
                "the request's Host field is not a host with an optional port; send host or host:port",
            )),
            0 | 1 => Ok(()),
            _ => Err(Refusal::bad(
                "repeated_host",
                "the request has more than one Host field (RFC 9112 section 3.2); send exactly one",
            )),
        }
    }

    /// RFC 9112 §6.3 for a request, with the ambiguous cases refused.
    fn framing(&self, version: Version) -> Result<Framing, Refusal> {
        if let (None, Some(coding)) = (self.length, &self.bad_coding) {
            return Err(Refusal::bad(
                "unsupported_transfer_coding",
                format!(
                    "the request's Transfer-Encoding is {coding:?}; only a single chunked coding is supported"
                ),
            ));
        }
        match (self.length, self.chunked) {
            (Some(_), true) => Err(Refusal::bad(
                "content_length_and_transfer_encoding",
                "the request has both Content-Length and Transfer-Encoding (RFC 9112 section 6.1); send one of them",
            )),
            (None, true) if version == Version::HTTP_10 => Err(Refusal::bad(
                "transfer_encoding_in_http_1_0",
                "an HTTP/1.0 request cannot be chunked; send a Content-Length",
            )),
            (None, true) => Ok(Framing::Chunked(Chunk::START)),
            (Some(0), false) | (None, false) => Ok(Framing::Empty),
            (Some(n), false) => Ok(Framing::Length(n)),
        }
    }
}

/// Follows the chunk framing in `bytes` (the start of a chunked body) as far as it goes.
fn check_chunks(mut bytes: &[u8]) -> Result<(), &'static str> {
    let mut state = Chunk::START;
    while !bytes.is_empty() {
        if let Chunk::Data(left) = state {
            let n = usize::try_from(left).unwrap_or(usize::MAX).min(bytes.len());
            bytes = &bytes[n..];
            state = if n as u64 == left {
                Chunk::DataCr
            } else {
                Chunk::Data(left - n as u64)
            };
            continue;
        }
        match chunked::next(state, bytes[0])? {
            Some(next) => state = next,
            None => return Ok(()),
        }
        bytes = &bytes[1..];
    }
    Ok(())
}

/// What to tell a client whose chunks are malformed.
pub(crate) fn chunk_detail(reason: &str) -> &'static str {
    match reason {
        "chunk_size_too_large" => "a chunk size has more than 15 hex digits",
        "chunk_extension_too_long" => "a chunk extension is longer than 4096 bytes",
        _ => "the chunked body is malformed (RFC 9112 section 7.1)",
    }
}

/// The head as it would be read: for tests of whole heads.
#[cfg(test)]
fn parse_all(text: &[u8]) -> Result<Option<Head>, Refusal> {
    parse(
        &mut BytesMut::from(text),
        HeadLimits {
            max_bytes: 8192,
            max_fields: 100,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(text: &[u8]) -> &'static str {
        match parse_all(text) {
            Err(r) => r.reason,
            Ok(Some(_)) => "accepted",
            Ok(None) => "partial",
        }
    }

    #[test]
    fn a_head_is_taken_off_the_buffer_and_pipelined_requests_stay() {
        let mut buf = BytesMut::from(
            &b"POST /a?x=1 HTTP/1.1\r\nHost: x\r\nX-A: 1\r\nx-a: 2\r\nContent-Length: 5\r\n\r\nhelloGET /b HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        );
        let limits = HeadLimits {
            max_bytes: 8192,
            max_fields: 100,
        };
        let head = parse(&mut buf, limits).unwrap().unwrap();
        assert_eq!(head.request.method(), Method::POST);
        assert_eq!(head.request.uri(), "/a?x=1");
        let values: Vec<_> = head.request.headers().get_all("x-a").iter().collect();
        assert_eq!(values, ["1", "2"]);
        assert_eq!(head.framing, Framing::Length(5));
        assert!(head.keep_alive && !head.upgrade && !head.expect_continue);
        assert_eq!(&buf[..], b"helloGET /b HTTP/1.1\r\nHost: x\r\n\r\n");
        // Byte by byte, a head is incomplete until its last byte.
        let whole = b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
        for end in 1..whole.len() {
            assert_eq!(reason(&whole[..end]), "partial");
        }
        let head = parse_all(whole).unwrap().unwrap();
        assert_eq!(head.request.version(), Version::HTTP_10);
        assert!(head.keep_alive);
        assert!(
            !parse_all(b"GET / HTTP/1.0\r\n\r\n")
                .unwrap()
                .unwrap()
                .keep_alive
        );
        assert!(
            !parse_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .unwrap()
                .unwrap()
                .keep_alive
        );
    }

    #[test]
    fn ambiguous_or_unsupported_framing_is_refused() {
        for (text, why) in [
            (
                &b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
                "content_length_and_transfer_encoding",
            ),
            (
                b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\ncontent-length: 4\r\n\r\nabcd",
                "repeated_content_length",
            ),
            (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4, 4\r\n\r\n", "bad_content_length"),
            (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +4\r\n\r\n", "bad_content_length"),
            (
                b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
                "unsupported_transfer_coding",
            ),
            // Smuggling is named as such, whatever the coding.
            (
                b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\nContent-Length: 4\r\n\r\n",
                "content_length_and_transfer_encoding",
            ),
            (
                b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
                "unsupported_transfer_coding",
            ),
            (
                b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
                "transfer_encoding_in_http_1_0",
            ),
            (b"GET h HTTP/1.1\r\nHost: x\r\n\r\n", "bad_request_target"),
            (b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n", "bad_head"),
            (b"GET / HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\n\r\n", "bad_head"),
        ] {
            assert_eq!(reason(text), why, "{}", String::from_utf8_lossy(text));
        }
        assert_eq!(reason(b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n"), "accepted");
        assert_eq!(
            reason(b"GET http://a/b HTTP/1.1\r\nHost: x\r\n\r\n"),
            "accepted"
        );
        assert_eq!(
            reason(b"CONNECT a:443 HTTP/1.1\r\nHost: x\r\n\r\n"),
            "accepted"
        );
    }

    #[test]
    fn a_request_names_its_host_once() {
        for host in [
            "app",
            "app:8080",
            "app:",
            "10.0.0.1:80",
            "[::1]",
            "[::1]:8080",
            "a-b.example.",
            "",
        ] {
            let text = format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n");
            assert_eq!(reason(text.as_bytes()), "accepted", "{host:?}");
        }
        for host in [
            "user@app", "app/x", "a p", "app:port", ":80", "[::1", "[]", "[::1]x", "app?", "a:b:c",
        ] {
            let text = format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n");
            assert_eq!(reason(text.as_bytes()), "bad_host", "{host:?}");
        }
        assert_eq!(reason(b"GET / HTTP/1.1\r\n\r\n"), "missing_host");
        assert_eq!(
            reason(b"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n"),
            "repeated_host"
        );
        assert_eq!(reason(b"GET / HTTP/1.0\r\n\r\n"), "accepted");
        assert_eq!(
            reason(b"GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n"),
            "repeated_host"
        );
    }

    #[test]
    fn floods_of_fields_and_bytes_are_refused_with_431() {
        let head: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
        let limits = |max_fields| HeadLimits {
            max_bytes: 8192,
            max_fields,
        };
        assert!(parse(&mut BytesMut::from(head), limits(4)).is_ok());
        let refused = parse(&mut BytesMut::from(head), limits(3))
            .map(|_| ())
            .unwrap_err();
        assert_eq!(refused.status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
        assert_eq!(refused.reason, "too_many_headers");
        let mut big = b"GET / HTTP/1.1\r\nHost: x\r\nX: ".to_vec();
        big.extend(std::iter::repeat_n(b'v', 9000));
        let refused = parse_all(&big).map(|_| ()).unwrap_err();
        assert_eq!(refused.status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
        // Beyond the stack table.
        let many: String = (0..150).map(|i| format!("X-{i}: v\r\n")).collect();
        let text = format!("GET / HTTP/1.1\r\nHost: x\r\n{many}\r\n");
        let head = parse(
            &mut BytesMut::from(text.as_bytes()),
            HeadLimits {
                max_bytes: 8192,
                max_fields: 200,
            },
        )
        .unwrap()
        .unwrap();
        assert_eq!(head.request.headers().len(), 151);
    }

    #[test]
    fn chunks_that_came_with_the_head_are_checked() {
        let head = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
        for body in [
            &b"zz\r\n"[..],
            b"-1\r\n",
            b"\r\n",
            b"fffffffffffffffff\r\n",
            b"5\r\nhelloXX",
            b"5\nhello\r\n",
            b"5;a\0\r\nhello\r\n",
        ] {
            let text = [&head[..], body].concat();
            assert_ne!(reason(&text), "accepted", "{body:?}");
        }
        let good = [
            &head[..],
            b"5;ext=1\r\nhello\r\n0\r\nTrailer: t\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
        ]
        .concat();
        let mut buf = BytesMut::from(&good[..]);
        let parsed = parse(
            &mut buf,
            HeadLimits {
                max_bytes: 8192,
                max_fields: 100,
            },
        )
        .unwrap()
        .unwrap();
        assert_eq!(parsed.framing, Framing::Chunked(Chunk::START));
        // The body stays for the body decoder.
        assert!(buf.starts_with(b"5;ext=1"));
    }

    #[test]
    fn upgrades_and_expectations_are_noticed() {
        let head = parse_all(
            b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\r\n",
        )
        .unwrap()
        .unwrap();
        assert!(head.upgrade);
        let head = parse_all(
            b"PUT /f HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n",
        )
        .unwrap()
        .unwrap();
        assert!(head.expect_continue);
    }
}
