//! Writing an answer's head to an HTTP/1 client: the status line in the client's version, the
//! fields as the handler left them, and the framing chosen here (RFC 9112 §6): the answer's own
//! length, else chunks for HTTP/1.1, else until the connection closes; `Date` when the answer
//! has none (RFC 9110 §6.6.1), `Connection` when the connection's fate needs saying.

use std::cell::RefCell;

use bytes::{Bytes, BytesMut};
use hyper::body::Body as _;
use hyper::header::{self, HeaderValue};
use hyper::http::response::Parts;
use hyper::{StatusCode, Version};

use crate::body::Body;
use crate::fields::Passed;
use crate::link::encode::{self, Framing};

/// What the request said that decides how its answer is written.
#[derive(Debug, Clone, Copy)]
pub(super) struct Asked {
    pub version: Version,
    pub head_only: bool,
    pub keep_alive: bool,
    /// The request asked to switch protocols.
    pub upgrade: bool,
}

/// An answer head ready to write.
pub(super) struct Written {
    pub head: BytesMut,
    /// `None`: the answer has no body on the wire.
    pub framing: Option<Framing>,
    pub keep_alive: bool,
    /// The connection switches protocols after this head.
    pub switching: bool,
}

/// The head for `parts` and how its body goes out.
pub(super) fn head(parts: &Parts, body: &Body, asked: Asked) -> Written {
    let status = parts.status;
    // An app's answer as its link read it: its own fields are there, not in the map.
    let passed = parts.extensions.get::<Passed>();
    let switching = asked.upgrade && status == StatusCode::SWITCHING_PROTOCOLS;
    let mut keep_alive = asked.keep_alive;
    let mut extra: [Option<(&'static [u8], Bytes)>; 2] = [None, None];
    let bodiless = asked.head_only
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let framing = if bodiless {
        None
    } else if let Some(n) = passed.and_then(|p| p.length).or_else(|| length(parts)) {
        Some(Framing::Length(n))
    } else if body.is_end_stream() {
        extra[0] = Some((b"content-length", Bytes::from_static(b"0")));
        Some(Framing::None)
    } else if let Some(n) = body.size_hint().exact() {
        extra[0] = Some((b"content-length", Bytes::from(n.to_string())));
        Some(Framing::Length(n))
    } else if asked.version == Version::HTTP_11 {
        extra[0] = Some((b"transfer-encoding", Bytes::from_static(b"chunked")));
        Some(Framing::Chunked)
    } else {
        keep_alive = false;
        Some(Framing::Close)
    };
    if switching {
        keep_alive = false;
    } else if !keep_alive {
        extra[1] = Some((b"connection", Bytes::from_static(b"close")));
    } else if asked.version == Version::HTTP_10 {
        extra[1] = Some((b"connection", Bytes::from_static(b"keep-alive")));
    }

    let reason = status.canonical_reason().unwrap_or("");
    let mut size = 64 + reason.len() + passed.map_or(0, Passed::wire_len);
    for (name, value) in &parts.headers {
        size += name.as_str().len() + value.len() + 4;
    }
    let mut out = BytesMut::with_capacity(size);
    out.extend_from_slice(if asked.version == Version::HTTP_10 {
        b"HTTP/1.0 "
    } else {
        b"HTTP/1.1 "
    });
    out.extend_from_slice(status.as_str().as_bytes());
    out.extend_from_slice(b" ");
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\r\n");
    if let Some(passed) = passed {
        passed.write(&mut out);
    }
    for (name, value) in &parts.headers {
        encode::field(&mut out, name.as_str().as_bytes(), value.as_bytes());
    }
    if !passed.is_some_and(|p| p.date) && !parts.headers.contains_key(header::DATE) {
        date(|value| encode::field(&mut out, b"date", value.as_bytes()));
    }
    for (name, value) in extra.iter().flatten() {
        encode::field(&mut out, name, value);
    }
    out.extend_from_slice(b"\r\n");
    Written {
        head: out,
        framing,
        keep_alive,
        switching,
    }
}

/// The answer's own `Content-Length`, when it has one that reads as a length.
fn length(parts: &Parts) -> Option<u64> {
    let value = parts.headers.get(header::CONTENT_LENGTH)?;
    std::str::from_utf8(value.as_bytes())
        .ok()?
        .trim()
        .parse()
        .ok()
}

thread_local! {
    /// The current second's `Date` value: formatted once a second, not per answer.
    static DATE: RefCell<(i64, HeaderValue)> = const { RefCell::new((i64::MIN, HeaderValue::from_static(""))) };
}

/// Calls `with` on the `Date` value for now.
fn date(with: impl FnOnce(&HeaderValue)) {
    let now = jiff::Timestamp::now();
    DATE.with(|cached| {
        let mut cached = cached.borrow_mut();
        if cached.0 != now.as_second() {
            let text = jiff::fmt::rfc2822::DateTimePrinter::new()
                .timestamp_to_rfc9110_string(&now)
                .unwrap_or_default();
            if let Ok(value) = HeaderValue::from_str(&text) {
                *cached = (now.as_second(), value);
            }
        }
        with(&cached.1);
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::Response;

    fn written(response: Response<Body>, asked: Asked) -> (String, Option<Framing>, bool) {
        let (parts, body) = response.into_parts();
        let w = head(&parts, &body, asked);
        (
            String::from_utf8(w.head.to_vec()).unwrap(),
            w.framing,
            w.keep_alive,
        )
    }

    const ASKED: Asked = Asked {
        version: Version::HTTP_11,
        head_only: false,
        keep_alive: true,
        upgrade: false,
    };

    fn streamed() -> Body {
        use http_body_util::BodyExt;
        let frames: Vec<Result<hyper::body::Frame<Bytes>, crate::body::BoxError>> =
            vec![Ok(hyper::body::Frame::data(Bytes::from_static(b"x")))];
        http_body_util::StreamBody::new(futures_util::stream::iter(frames)).boxed()
    }

    #[test]
    fn the_framing_follows_the_answer_and_the_clients_version() {
        let mut with_length = Response::new(streamed());
        with_length
            .headers_mut()
            .insert("content-length", "1".parse().unwrap());
        let (text, framing, keep) = written(with_length, ASKED);
        assert!(
            text.starts_with("HTTP/1.1 200 OK\r\ncontent-length: 1\r\ndate: "),
            "{text}"
        );
        assert!(text.ends_with(" GMT\r\n\r\n"), "{text}");
        assert_eq!((framing, keep), (Some(Framing::Length(1)), true));

        let (text, framing, _) = written(Response::new(crate::body::full("abc")), ASKED);
        assert!(text.contains("\r\ncontent-length: 3\r\n"), "{text}");
        assert_eq!(framing, Some(Framing::Length(3)));

        let (text, framing, _) = written(Response::new(crate::body::empty()), ASKED);
        assert!(text.contains("\r\ncontent-length: 0\r\n"), "{text}");
        assert_eq!(framing, Some(Framing::None));

        let (text, framing, keep) = written(Response::new(streamed()), ASKED);
        assert!(
            text.contains("\r\ntransfer-encoding: chunked\r\n"),
            "{text}"
        );
        assert_eq!((framing, keep), (Some(Framing::Chunked), true));

        let old = Asked {
            version: Version::HTTP_10,
            ..ASKED
        };
        let (text, framing, keep) = written(Response::new(streamed()), old);
        assert!(text.starts_with("HTTP/1.0 200 OK\r\n"), "{text}");
        assert!(text.contains("\r\nconnection: close\r\n"), "{text}");
        assert_eq!((framing, keep), (Some(Framing::Close), false));
        let (text, _, keep) = written(Response::new(crate::body::full("abc")), old);
        assert!(text.contains("\r\nconnection: keep-alive\r\n"), "{text}");
        assert!(keep);
    }

    #[test]
    fn an_apps_own_fields_go_first_as_spelled_and_frame_the_answer() {
        let text = "Server: app\r\nDate: Thu, 01 Jan 1970 00:00:01 GMT\r\nContent-Length: 1\r\n";
        let mut passed = Passed::new(Bytes::from_static(text.as_bytes()));
        for line in text.split_terminator("\r\n") {
            let at = text.find(line).unwrap();
            let colon = at + line.find(':').unwrap();
            passed.push(at..colon, colon + 2..at + line.len());
        }
        passed.length = Some(1);
        passed.date = true;
        let mut answer = Response::new(streamed());
        answer.extensions_mut().insert(passed);
        answer.headers_mut().insert("x-added", "1".parse().unwrap());
        let (text, framing, keep) = written(answer, ASKED);
        assert_eq!(
            text,
            "HTTP/1.1 200 OK\r\nServer: app\r\nDate: Thu, 01 Jan 1970 00:00:01 GMT\r\n\
             Content-Length: 1\r\nx-added: 1\r\n\r\n"
        );
        assert_eq!((framing, keep), (Some(Framing::Length(1)), true));
    }

    #[test]
    fn answers_without_a_body_keep_their_fields_and_say_when_the_connection_ends() {
        let mut to_head = Response::new(crate::body::empty());
        to_head
            .headers_mut()
            .insert("content-length", "1024".parse().unwrap());
        to_head
            .headers_mut()
            .insert("date", "Thu, 01 Jan 1970 00:00:01 GMT".parse().unwrap());
        let asked = Asked {
            head_only: true,
            keep_alive: false,
            ..ASKED
        };
        let (text, framing, keep) = written(to_head, asked);
        assert_eq!(
            text,
            "HTTP/1.1 200 OK\r\ncontent-length: 1024\r\ndate: Thu, 01 Jan 1970 00:00:01 GMT\r\nconnection: close\r\n\r\n"
        );
        assert_eq!((framing, keep), (None, false));

        let mut switch = Response::new(crate::body::empty());
        *switch.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        switch
            .headers_mut()
            .insert("connection", "upgrade".parse().unwrap());
        let (parts, body) = switch.into_parts();
        let w = head(
            &parts,
            &body,
            Asked {
                upgrade: true,
                ..ASKED
            },
        );
        assert!(w.switching && w.framing.is_none() && !w.keep_alive);
        let text = String::from_utf8(w.head.to_vec()).unwrap();
        assert!(text.starts_with("HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\n"));
        assert!(!text.contains("close"), "{text}");
    }
}
