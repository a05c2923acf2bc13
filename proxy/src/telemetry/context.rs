//! W3C Trace Context (`traceparent`, version 00): parsing what arrives, making ids, and the
//! header value sent on.

use hyper::HeaderMap;
use hyper::header::HeaderValue;

pub const TRACEPARENT: &str = "traceparent";
pub const TRACESTATE: &str = "tracestate";

/// One span's place in a trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpanContext {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    /// Trace flags; bit 0 is "sampled".
    pub flags: u8,
}

fn hex_into(text: &[u8], out: &mut [u8]) -> Option<()> {
    if text.len() != out.len() * 2 {
        return None;
    }
    for (i, pair) in text.chunks(2).enumerate() {
        let digit = |b: u8| match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            _ => None, // upper case is invalid in version 00
        };
        out[i] = (digit(pair[0])? << 4) | digit(pair[1])?;
    }
    Some(())
}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Writes `bytes` as lower-case hex into `out`, two digits a byte.
fn write_hex(bytes: &[u8], out: &mut [u8]) {
    for (b, pair) in bytes.iter().zip(out.chunks_exact_mut(2)) {
        pair[0] = HEX_DIGITS[usize::from(b >> 4)];
        pair[1] = HEX_DIGITS[usize::from(b & 0xf)];
    }
}

pub fn hex(bytes: &[u8]) -> String {
    let mut s = vec![0u8; bytes.len() * 2];
    write_hex(bytes, &mut s);
    s.into_iter().map(char::from).collect()
}

impl SpanContext {
    /// Reads a `traceparent` value; `None` for anything invalid (the spec says to start a new
    /// trace then). Versions above 00 are read by their first four fields.
    pub fn parse(value: &[u8]) -> Option<SpanContext> {
        if value.len() < 55 {
            return None;
        }
        let (version, rest) = (&value[..2], &value[2..]);
        if version == b"ff" || (version == b"00" && value.len() != 55) {
            return None;
        }
        if rest[0] != b'-' || rest[33] != b'-' || rest[50] != b'-' {
            return None;
        }
        if value.len() > 55 && value[55] != b'-' {
            return None;
        }
        let mut ctx = SpanContext {
            trace_id: [0; 16],
            span_id: [0; 8],
            flags: 0,
        };
        let mut version_byte = [0u8; 1];
        hex_into(version, &mut version_byte)?;
        hex_into(&rest[1..33], &mut ctx.trace_id)?;
        hex_into(&rest[34..50], &mut ctx.span_id)?;
        let mut flags = [0u8; 1];
        hex_into(&rest[51..53], &mut flags)?;
        ctx.flags = flags[0];
        if ctx.trace_id == [0; 16] || ctx.span_id == [0; 8] {
            return None;
        }
        Some(ctx)
    }

    pub fn from_headers(headers: &HeaderMap) -> Option<SpanContext> {
        SpanContext::parse(headers.get(TRACEPARENT)?.as_bytes())
    }

    /// A new root: a fresh trace id, sampled.
    pub fn root() -> SpanContext {
        SpanContext {
            trace_id: nonzero_id(),
            span_id: nonzero_id(),
            flags: 1,
        }
    }

    /// A new span in the same trace.
    pub fn child(&self) -> SpanContext {
        SpanContext {
            span_id: nonzero_id(),
            ..*self
        }
    }

    pub fn header_value(&self) -> HeaderValue {
        HeaderValue::from_str(&self.traceparent()).unwrap_or(HeaderValue::from_static(""))
    }

    /// The W3C `traceparent` text.
    pub fn traceparent(&self) -> String {
        String::from_utf8_lossy(&self.traceparent_bytes()).into_owned()
    }

    /// The W3C `traceparent` as bytes, without allocating (one per produced Kafka record).
    pub fn traceparent_bytes(&self) -> [u8; 55] {
        let mut out = [b'-'; 55];
        out[..2].copy_from_slice(b"00");
        write_hex(&self.trace_id, &mut out[3..35]);
        write_hex(&self.span_id, &mut out[36..52]);
        write_hex(&[self.flags], &mut out[53..55]);
        out
    }

    pub fn trace_hex(&self) -> String {
        hex(&self.trace_id)
    }

    /// 25 bytes: trace id, span id, flags.
    pub fn to_bytes(&self) -> [u8; 25] {
        let mut out = [0u8; 25];
        out[..16].copy_from_slice(&self.trace_id);
        out[16..24].copy_from_slice(&self.span_id);
        out[24] = self.flags;
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<SpanContext> {
        if bytes.len() < 25 {
            return None;
        }
        Some(SpanContext {
            trace_id: bytes[..16].try_into().ok()?,
            span_id: bytes[16..24].try_into().ok()?,
            flags: bytes[24],
        })
    }
}

fn nonzero_id<const N: usize>() -> [u8; N] {
    loop {
        let mut id = [0u8; N];
        fastrand::fill(&mut id);
        if id != [0u8; N] {
            return id;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_values_round_trip_and_invalid_ones_are_refused() {
        let v = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let c = SpanContext::parse(v).unwrap();
        assert_eq!(c.header_value().as_bytes(), v);
        assert_eq!(c.flags, 1);
        for bad in [
            &b"00-00000000000000000000000000000000-00f067aa0ba902b7-01"[..],
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            b"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            b"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            b"00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
            b"garbage",
        ] {
            assert!(SpanContext::parse(bad).is_none(), "{bad:?}");
        }
        // A later version may append fields.
        assert!(
            SpanContext::parse(b"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-xyz")
                .is_some()
        );
        let root = SpanContext::root();
        let child = root.child();
        assert_eq!(root.trace_id, child.trace_id);
        assert_ne!(root.span_id, child.span_id);
        assert_eq!(SpanContext::from_bytes(&root.to_bytes()), Some(root));
    }
}
