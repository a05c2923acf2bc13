//! Reading Kafka message fields in place, for the walkers that need only a few fields of a
//! message and must keep every other byte (`produce.rs`) or skip it (`fetch.rs`): fixed-width
//! integers, lengths in both the classic and the flexible (compact, tagged-field) encodings.

use std::ops::Range;

use super::varint;

pub(crate) type Read<T> = Result<T, String>;

pub(crate) struct Reader<'a> {
    pub(crate) buf: &'a [u8],
    pub(crate) at: usize,
    /// A flexible version: compact lengths and tagged fields.
    pub(crate) flexible: bool,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], at: usize, flexible: bool) -> Reader<'a> {
        Reader { buf, at, flexible }
    }

    /// The next `n` bytes, as a range of the buffer.
    pub(crate) fn take(&mut self, n: usize) -> Read<Range<usize>> {
        let end = self
            .at
            .checked_add(n)
            .filter(|e| *e <= self.buf.len())
            .ok_or_else(|| format!("the message ends before byte {}", self.at.saturating_add(n)))?;
        let range = self.at..end;
        self.at = end;
        Ok(range)
    }

    fn array<const N: usize>(&mut self) -> Read<[u8; N]> {
        let r = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(&self.buf[r]);
        Ok(out)
    }

    pub(crate) fn i16(&mut self) -> Read<i16> {
        self.array().map(i16::from_be_bytes)
    }

    pub(crate) fn i32(&mut self) -> Read<i32> {
        self.array().map(i32::from_be_bytes)
    }

    pub(crate) fn i64(&mut self) -> Read<i64> {
        self.array().map(i64::from_be_bytes)
    }

    fn unsigned(&mut self) -> Read<u64> {
        varint::read_unsigned(self.buf, &mut self.at).ok_or_else(|| "a bad varint".to_owned())
    }

    /// A length or count: i32 (i16 for strings), or in flexible versions a compact unsigned
    /// varint of length + 1; `None` is null.
    pub(crate) fn length(&mut self, short: bool) -> Read<Option<usize>> {
        let n: i64 = if self.flexible {
            self.unsigned()? as i64 - 1
        } else if short {
            i64::from(self.i16()?)
        } else {
            i64::from(self.i32()?)
        };
        Ok(usize::try_from(n).ok())
    }

    /// A (nullable) string, read lossily as UTF-8.
    pub(crate) fn string(&mut self) -> Read<String> {
        let n = self.length(true)?.unwrap_or(0);
        let r = self.take(n)?;
        Ok(String::from_utf8_lossy(&self.buf[r]).into_owned())
    }

    /// Nullable bytes, as a range of the buffer.
    pub(crate) fn bytes(&mut self) -> Read<Option<Range<usize>>> {
        match self.length(false)? {
            Some(n) => self.take(n).map(Some),
            None => Ok(None),
        }
    }

    /// Skips a tagged-field section (flexible versions only).
    pub(crate) fn tagged_fields(&mut self) -> Read<()> {
        if !self.flexible {
            return Ok(());
        }
        for _ in 0..self.unsigned()? {
            self.unsigned()?;
            let size = usize::try_from(self.unsigned()?).map_err(|e| e.to_string())?;
            self.take(size)?;
        }
        Ok(())
    }
}
