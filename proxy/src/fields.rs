//! Where a parsed head's fields lie in the read buffer: kept while the parser borrows the
//! buffer, so that once the head is split off, names are read from it and values become shared
//! slices of it, not copies.

use std::ops::Range;

use bytes::Bytes;

/// Tables up to this many fields live on the stack.
const STACK: usize = 32;

type Span = (u32, u32, u32, u32);

/// The name and value offsets of each field, in order.
pub(crate) struct FieldSpans {
    stack: [Span; STACK],
    heap: Vec<Span>,
    len: usize,
}

impl FieldSpans {
    pub(crate) fn new() -> FieldSpans {
        FieldSpans {
            stack: [(0, 0, 0, 0); STACK],
            heap: Vec::new(),
            len: 0,
        }
    }

    /// Notes a field; `base` is the address of the buffer's first byte.
    pub(crate) fn push(&mut self, base: usize, name: &[u8], value: &[u8]) {
        let at = |s: &[u8]| (s.as_ptr() as usize - base) as u32;
        let (n, v) = (at(name), at(value));
        let span = (n, n + name.len() as u32, v, v + value.len() as u32);
        if self.len < STACK {
            self.stack[self.len] = span;
        } else {
            if self.heap.is_empty() {
                self.heap.extend_from_slice(&self.stack);
            }
            self.heap.push(span);
        }
        self.len += 1;
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Each field's name and value, as ranges of the head.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (Range<usize>, Range<usize>)> + '_ {
        let spans = if self.len <= STACK {
            &self.stack[..self.len]
        } else {
            &self.heap[..]
        };
        spans
            .iter()
            .map(|&(n0, n1, v0, v1)| (n0 as usize..n1 as usize, v0 as usize..v1 as usize))
    }

    /// Each field's name and value, read from `head`.
    pub(crate) fn read<'h>(
        &'h self,
        head: &'h Bytes,
    ) -> impl Iterator<Item = (&'h [u8], Bytes)> + 'h {
        self.iter().map(|(n, v)| (&head[n], head.slice(v)))
    }
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
}
