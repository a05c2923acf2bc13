//! Where a parsed head's fields lie in the read buffer: kept while the parser borrows the
//! buffer, so that once the head is split off, names are read from it and values become shared
//! slices of it, not copies. An app's answer keeps its end-to-end fields that way all the way to
//! the HTTP/1 client ([`Passed`]): no header map is built for it.

use std::ops::Range;

use bytes::{Bytes, BytesMut};
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use smallvec::SmallVec;

/// Name start, name end, value start, value end.
type Span = (u32, u32, u32, u32);

fn ranges(&(n0, n1, v0, v1): &Span) -> (Range<usize>, Range<usize>) {
    (n0 as usize..n1 as usize, v0 as usize..v1 as usize)
}

/// The name and value offsets of each field, in order; tables up to 32 fields live on the
/// stack (uninitialised until used).
pub(crate) struct FieldSpans {
    spans: SmallVec<[Span; 32]>,
}

impl FieldSpans {
    pub(crate) fn new() -> FieldSpans {
        FieldSpans {
            spans: SmallVec::new(),
        }
    }

    /// Notes a field; `base` is the address of the buffer's first byte.
    pub(crate) fn push(&mut self, base: usize, name: &[u8], value: &[u8]) {
        let at = |s: &[u8]| (s.as_ptr() as usize - base) as u32;
        let (n, v) = (at(name), at(value));
        self.spans
            .push((n, n + name.len() as u32, v, v + value.len() as u32));
    }

    pub(crate) fn len(&self) -> usize {
        self.spans.len()
    }

    /// Each field's name and value, as ranges of the head.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (Range<usize>, Range<usize>)> + '_ {
        self.spans.iter().map(ranges)
    }

    /// Each field's name and value, read from `head`.
    pub(crate) fn read<'h>(
        &'h self,
        head: &'h Bytes,
    ) -> impl Iterator<Item = (&'h [u8], Bytes)> + 'h {
        self.iter().map(|(n, v)| (&head[n], head.slice(v)))
    }
}

/// An app's answer's end-to-end fields, as the app wrote them: the answer's head and where in
/// it they lie. It rides in the answer's extensions, with the answer's header map left for
/// fields the proxy adds; the HTTP/1 front writes both ([`Passed::write`]), and any other
/// writer first moves these into the map ([`materialize`]).
#[derive(Clone)]
pub(crate) struct Passed {
    head: Bytes,
    spans: SmallVec<[Span; 12]>,
    /// The value of the `Content-Length` among them.
    pub length: Option<u64>,
    /// Whether `Date` is among them.
    pub date: bool,
}

impl Passed {
    pub(crate) fn new(head: Bytes) -> Passed {
        Passed {
            head,
            spans: SmallVec::new(),
            length: None,
            date: false,
        }
    }

    /// Passes on the field at `name` and `value` (ranges of the head).
    pub(crate) fn push(&mut self, name: Range<usize>, value: Range<usize>) {
        let at = |i: usize| i as u32;
        self.spans
            .push((at(name.start), at(name.end), at(value.start), at(value.end)));
    }

    /// The bytes [`Passed::write`] writes.
    pub(crate) fn wire_len(&self) -> usize {
        self.spans
            .iter()
            .map(|&(n0, n1, v0, v1)| (n1 - n0 + v1 - v0) as usize + 4)
            .sum()
    }

    /// Writes each field as `name: value` and a line end, the name as the app spelled it.
    pub(crate) fn write(&self, out: &mut BytesMut) {
        for span in &self.spans {
            let (name, value) = ranges(span);
            crate::link::encode::field(out, &self.head[name], &self.head[value]);
        }
    }

    /// The fields as map entries, in order.
    fn entries(&self) -> impl Iterator<Item = Option<(HeaderName, HeaderValue)>> + '_ {
        self.spans.iter().map(|span| {
            let (name, value) = ranges(span);
            let name = HeaderName::from_bytes(&self.head[name]).ok()?;
            let value = HeaderValue::from_maybe_shared(self.head.slice(value)).ok()?;
            Some((name, value))
        })
    }
}

/// Moves an answer's passed fields into its header map, before the fields the proxy added:
/// for a writer that reads the map only.
pub(crate) fn materialize<B>(answer: &mut hyper::Response<B>) {
    let Some(passed) = answer.extensions_mut().remove::<Passed>() else {
        return;
    };
    let added = std::mem::take(answer.headers_mut());
    let mut map = HeaderMap::with_capacity(passed.spans.len() + added.len());
    for entry in passed.entries() {
        // The parser checked names and values against the same rules the map does.
        match entry {
            Some((name, value)) => {
                map.append(name, value);
            }
            None => tracing::warn!("an answer field the parser took is not a valid map entry"),
        }
    }
    let mut last = None;
    for (name, value) in added {
        if let Some(name) = name {
            last = Some(name);
        }
        if let Some(name) = &last {
            map.append(name.clone(), value);
        }
    }
    *answer.headers_mut() = map;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_past_the_stack_table_are_kept_in_order() {
        let text: String = (0..200).map(|i| format!("n{i}:v{i};")).collect();
        let head = Bytes::from(text);
        let base = head.as_ptr() as usize;
        let mut spans = FieldSpans::new();
        for field in head.split(|b| *b == b';').filter(|f| !f.is_empty()) {
            let colon = field.iter().position(|b| *b == b':').unwrap();
            spans.push(base, &field[..colon], &field[colon + 1..]);
        }
        assert_eq!(spans.len(), 200);
        for (i, (name, value)) in spans.read(&head).enumerate() {
            assert_eq!(name, format!("n{i}").as_bytes());
            assert_eq!(&value[..], format!("v{i}").as_bytes());
        }
    }

    fn passed(head: &'static str, fields: &[(&str, &str)]) -> Passed {
        let mut passed = Passed::new(Bytes::from_static(head.as_bytes()));
        for (name, value) in fields {
            let n = head.find(name).unwrap();
            let v = head[n..].find(value).unwrap() + n;
            passed.push(n..n + name.len(), v..v + value.len());
        }
        passed
    }

    #[test]
    fn passed_fields_are_written_as_the_app_spelled_them() {
        let p = passed(
            "X-Trace: a\r\nSet-Cookie: b=1\r\nset-cookie: c=2\r\n",
            &[
                ("X-Trace", "a"),
                ("Set-Cookie", "b=1"),
                ("set-cookie", "c=2"),
            ],
        );
        let mut out = BytesMut::new();
        p.write(&mut out);
        assert_eq!(
            &out[..],
            b"X-Trace: a\r\nSet-Cookie: b=1\r\nset-cookie: c=2\r\n"
        );
        assert_eq!(p.wire_len(), out.len());
    }

    #[test]
    fn materializing_puts_the_passed_fields_before_the_added_ones() {
        let p = passed(
            "Set-Cookie: b=1\r\nSet-Cookie: c=2\r\nX-A: 1\r\n",
            &[("Set-Cookie", "b=1"), ("Set-Cookie", "c=2"), ("X-A", "1")],
        );
        let mut answer = hyper::Response::new(());
        answer.extensions_mut().insert(p);
        answer
            .headers_mut()
            .append("x-added", HeaderValue::from_static("yes"));
        answer
            .headers_mut()
            .append("x-added", HeaderValue::from_static("twice"));
        materialize(&mut answer);
        assert!(answer.extensions().get::<Passed>().is_none());
        let fields: Vec<(String, String)> = answer
            .headers()
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned()))
            .collect();
        let expected = [
            ("set-cookie", "b=1"),
            ("set-cookie", "c=2"),
            ("x-a", "1"),
            ("x-added", "yes"),
            ("x-added", "twice"),
        ];
        assert_eq!(
            fields,
            expected.map(|(n, v)| (n.to_owned(), v.to_owned())).to_vec()
        );
    }
}
