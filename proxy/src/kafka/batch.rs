//! Kafka record batches (magic 2): the records of a batch, read for observation, and the
//! splice that gives records without a `traceparent` header one. A spliced batch keeps its
//! producer id, epoch, base sequence, record count, offsets, timestamps and every other header
//! (duplicates and order included); it is compressed again with its own codec and sealed with a
//! fresh CRC-32C. Batches that need no change are never re-encoded.

use std::ops::Range;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::compression::{Compressor, Decompressor, Gzip, Lz4, Snappy, Zstd};

use super::varint;

/// Bytes before the first record: base offset … record count.
pub const HEADER_LEN: usize = 61;
/// Where the CRC-32C sits, and where the bytes it covers begin.
const CRC_AT: usize = 17;
const CRC_FROM: usize = 21;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("a record batch declares length {0}, which is not a valid batch length")]
    Length(i32),
    #[error("record batch compression codec {0} is unknown")]
    UnknownCodec(u8),
    #[error("cannot {action} a {codec} record batch: {message}")]
    Codec {
        action: &'static str,
        codec: &'static str,
        message: String,
    },
    #[error("record {0} of the batch is malformed")]
    Record(usize),
    #[error("the batch declares {declared} records but holds {found}")]
    Count { declared: i32, found: usize },
}

/// The codec of a batch (its attributes' low three bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Codec {
    pub fn name(self) -> &'static str {
        match self {
            Codec::None => "none",
            Codec::Gzip => "gzip",
            Codec::Snappy => "snappy",
            Codec::Lz4 => "lz4",
            Codec::Zstd => "zstd",
        }
    }

    fn fail(self, action: &'static str, e: impl std::fmt::Display) -> Error {
        Error::Codec {
            action,
            codec: self.name(),
            message: e.to_string(),
        }
    }

    fn decompress(self, data: Bytes) -> Result<Bytes, Error> {
        let mut data = data;
        let take = |b: &mut Bytes| Ok(b.copy_to_bytes(b.remaining()));
        let out = match self {
            Codec::None => return Ok(data),
            Codec::Gzip => Gzip::decompress(&mut data, take),
            Codec::Snappy => Snappy::decompress(&mut data, take),
            Codec::Lz4 => Lz4::decompress(&mut data, take),
            Codec::Zstd => Zstd::decompress(&mut data, take),
        };
        out.map_err(|e| self.fail("decompress", e))
    }

    fn compress(self, records: &[u8], out: &mut BytesMut) -> Result<(), Error> {
        let put = |b: &mut BytesMut| {
            b.put_slice(records);
            Ok(())
        };
        let done = match self {
            Codec::None => {
                out.put_slice(records);
                return Ok(());
            }
            Codec::Gzip => Gzip::compress(out, put),
            Codec::Snappy => Snappy::compress(out, put),
            Codec::Lz4 => Lz4::compress(out, put),
            Codec::Zstd => Zstd::compress(out, put),
        };
        done.map_err(|e| self.fail("compress", e))
    }
}

/// One whole batch, a cheap slice of the frame it came in.
#[derive(Clone, Debug)]
pub struct Batch {
    bytes: Bytes,
}

fn i16_at(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}

fn i32_at(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn i64_at(b: &[u8], at: usize) -> i64 {
    let mut x = [0; 8];
    x.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(x)
}

impl Batch {
    /// The format: 2 for record batches; 0 and 1 are the old message sets, which carry no
    /// headers and are passed on as they are.
    pub fn magic(&self) -> i8 {
        self.bytes[16] as i8
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    pub fn base_offset(&self) -> i64 {
        i64_at(&self.bytes, 0)
    }

    fn attributes(&self) -> i16 {
        i16_at(&self.bytes, CRC_FROM)
    }

    pub fn codec(&self) -> Result<Codec, Error> {
        match self.attributes() & 0x07 {
            0 => Ok(Codec::None),
            1 => Ok(Codec::Gzip),
            2 => Ok(Codec::Snappy),
            3 => Ok(Codec::Lz4),
            4 => Ok(Codec::Zstd),
            other => Err(Error::UnknownCodec(other as u8)),
        }
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes() & 0x10 != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes() & 0x20 != 0
    }

    pub fn producer_id(&self) -> i64 {
        i64_at(&self.bytes, 43)
    }

    pub fn producer_epoch(&self) -> i16 {
        i16_at(&self.bytes, 51)
    }

    pub fn base_sequence(&self) -> i32 {
        i32_at(&self.bytes, 53)
    }

    pub fn base_timestamp(&self) -> i64 {
        i64_at(&self.bytes, 27)
    }

    pub fn records_count(&self) -> i32 {
        i32_at(&self.bytes, 57)
    }

    /// Whether the stored CRC-32C matches the bytes (a batch that does not is never re-sealed:
    /// the broker must see the damage).
    pub fn crc_ok(&self) -> bool {
        let stored = u32::from_be_bytes([
            self.bytes[CRC_AT],
            self.bytes[CRC_AT + 1],
            self.bytes[CRC_AT + 2],
            self.bytes[CRC_AT + 3],
        ]);
        crc32c::crc32c(&self.bytes[CRC_FROM..]) == stored
    }

    /// The records section, decompressed.
    pub fn records_bytes(&self) -> Result<Bytes, Error> {
        self.codec()?.decompress(self.bytes.slice(HEADER_LEN..))
    }

    /// The batch again with `records` (the records section, uncompressed) in place of its own:
    /// compressed with the batch's codec, lengths fixed, CRC-32C recomputed; the rest of the
    /// header is kept byte for byte.
    pub fn reseal(&self, records: &[u8]) -> Result<Bytes, Error> {
        let mut out = BytesMut::with_capacity(HEADER_LEN + records.len() + 64);
        out.put_slice(&self.bytes[..HEADER_LEN]);
        self.codec()?.compress(records, &mut out)?;
        seal(&mut out)?;
        Ok(out.freeze())
    }

    /// The batch again with header `name` = `add[i]` appended to record `i` of `section` (its
    /// records section, uncompressed, read into `records`) where it is `Some`, resealed. An
    /// uncompressed batch is written once, straight behind its header; a compressed one goes
    /// through [`Batch::reseal`].
    pub fn with_header<V: AsRef<[u8]>>(
        &self,
        section: &[u8],
        records: &[Record<'_>],
        name: &str,
        add: &[Option<V>],
    ) -> Result<Bytes, Error> {
        if self.codec()? != Codec::None {
            return self.reseal(&with_header(section, records, name, add));
        }
        let mut out = Vec::with_capacity(HEADER_LEN + section.len() + added_len(name, add));
        out.extend_from_slice(&self.bytes[..HEADER_LEN]);
        write_with_header(&mut out, section, records, name, add);
        seal(&mut out)?;
        Ok(Bytes::from(out))
    }
}

/// Fixes the batch length and the CRC-32C of a batch whose header and records are `batch`.
fn seal(batch: &mut [u8]) -> Result<(), Error> {
    let length = i32::try_from(batch.len() - 12).map_err(|_| Error::Length(i32::MAX))?;
    batch[8..12].copy_from_slice(&length.to_be_bytes());
    let crc = crc32c::crc32c(&batch[CRC_FROM..]);
    batch[CRC_AT..CRC_FROM].copy_from_slice(&crc.to_be_bytes());
    Ok(())
}

/// The batches of a records field, in order. A last batch cut short (Fetch responses may end
/// in one) ends the list; a length that cannot be is an error.
pub fn batches(records: &Bytes) -> Result<Vec<Batch>, Error> {
    let mut out = Vec::new();
    let mut at = 0;
    while records.len() - at >= 17 {
        let length = i32_at(records, at + 8);
        let magic = records[at + 16] as i8;
        let least = if magic >= 2 { HEADER_LEN - 12 } else { 14 };
        if length < 0 || (length as usize) < least {
            return Err(Error::Length(length));
        }
        let end = at + 12 + length as usize;
        if end > records.len() {
            break;
        }
        out.push(Batch {
            bytes: records.slice(at..end),
        });
        at = end;
    }
    Ok(out)
}

/// One record of a batch, borrowed from its records section.
#[derive(Debug, PartialEq, Eq)]
pub struct Record<'a> {
    pub offset_delta: i32,
    pub timestamp_delta: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: Vec<(&'a [u8], Option<&'a [u8]>)>,
    /// Where the record sits in the records section, length prefix included.
    span: Range<usize>,
    /// Where its attributes begin (after the length prefix).
    body: usize,
    /// Where its header count begins, and where its headers begin.
    count_at: usize,
    headers_at: usize,
}

impl<'a> Record<'a> {
    /// A record that sits nowhere, for tests of what reads records.
    #[cfg(test)]
    pub(crate) fn for_test(
        key: Option<&'a [u8]>,
        value: Option<&'a [u8]>,
        headers: Vec<(&'a [u8], Option<&'a [u8]>)>,
    ) -> Record<'a> {
        Record {
            offset_delta: 0,
            timestamp_delta: 0,
            key,
            value,
            headers,
            span: 0..0,
            body: 0,
            count_at: 0,
            headers_at: 0,
        }
    }

    /// The first header called `name`.
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers
            .iter()
            .find(|(k, _)| *k == name.as_bytes())
            .and_then(|(_, v)| *v)
    }
}

fn bytes_field<'a>(buf: &'a [u8], at: &mut usize, end: usize) -> Option<Option<&'a [u8]>> {
    let n = varint::read(buf, at)?;
    if n < 0 {
        return Some(None);
    }
    let stop = at.checked_add(usize::try_from(n).ok()?)?;
    if stop > end {
        return None;
    }
    let field = &buf[*at..stop];
    *at = stop;
    Some(Some(field))
}

fn record<'a>(buf: &'a [u8], at: &mut usize) -> Option<Record<'a>> {
    let start = *at;
    let length = usize::try_from(varint::read(buf, at)?).ok()?;
    let body = *at;
    let end = body.checked_add(length)?;
    if end > buf.len() {
        return None;
    }
    *at += 1; // attributes, unused
    let timestamp_delta = varint::read(buf, at)?;
    let offset_delta = i32::try_from(varint::read(buf, at)?).ok()?;
    let key = bytes_field(buf, at, end)?;
    let value = bytes_field(buf, at, end)?;
    let count_at = *at;
    let count = usize::try_from(varint::read(buf, at)?).ok()?;
    let headers_at = *at;
    let mut headers = Vec::with_capacity(count.min(64));
    for _ in 0..count {
        let name = bytes_field(buf, at, end)??;
        let value = bytes_field(buf, at, end)?;
        headers.push((name, value));
    }
    if *at != end {
        return None;
    }
    Some(Record {
        offset_delta,
        timestamp_delta,
        key,
        value,
        headers,
        span: start..end,
        body,
        count_at,
        headers_at,
    })
}

/// The records of a (decompressed) records section; `declared` is the batch's count.
pub fn records(buf: &[u8], declared: i32) -> Result<Vec<Record<'_>>, Error> {
    let mut out = Vec::with_capacity(usize::try_from(declared).unwrap_or(0).min(4096));
    let mut at = 0;
    while at < buf.len() {
        let r = record(buf, &mut at).ok_or(Error::Record(out.len()))?;
        out.push(r);
    }
    if i32::try_from(out.len()).ok() != Some(declared) {
        return Err(Error::Count {
            declared,
            found: out.len(),
        });
    }
    Ok(out)
}

/// The records section with header `name` = `add[i]` appended to record `i` where it is
/// `Some`; every other byte is kept.
pub fn with_header<V: AsRef<[u8]>>(
    buf: &[u8],
    records: &[Record<'_>],
    name: &str,
    add: &[Option<V>],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(buf.len() + added_len(name, add));
    write_with_header(&mut out, buf, records, name, add);
    out
}

/// At most how many bytes the headers in `add` add to a records section.
fn added_len<V: AsRef<[u8]>>(name: &str, add: &[Option<V>]) -> usize {
    add.iter()
        .flatten()
        .map(|v| name.len() + v.as_ref().len() + 16)
        .sum()
}

/// Writes what [`with_header`] returns to the end of `out`.
fn write_with_header<V: AsRef<[u8]>>(
    out: &mut Vec<u8>,
    buf: &[u8],
    records: &[Record<'_>],
    name: &str,
    add: &[Option<V>],
) {
    for (r, value) in records.iter().zip(add) {
        let Some(value) = value else {
            out.extend_from_slice(&buf[r.span.clone()]);
            continue;
        };
        let value = value.as_ref();
        let count = r.headers.len() as i64;
        let header_len = varint::len(name.len() as i64)
            + name.len()
            + varint::len(value.len() as i64)
            + value.len();
        let body_len =
            (r.span.end - r.body) - varint::len(count) + varint::len(count + 1) + header_len;
        varint::write(out, body_len as i64);
        out.extend_from_slice(&buf[r.body..r.count_at]);
        varint::write(out, count + 1);
        out.extend_from_slice(&buf[r.headers_at..r.span.end]);
        varint::write(out, name.len() as i64);
        out.extend_from_slice(name.as_bytes());
        varint::write(out, value.len() as i64);
        out.extend_from_slice(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::indexmap::IndexMap;
    use kafka_protocol::protocol::StrBytes;
    use kafka_protocol::records::{
        Compression, Record as KRecord, RecordBatchDecoder, RecordBatchEncoder,
        RecordEncodeOptions, TimestampType,
    };

    fn sample(i: i64, headers: &[(&str, &str)]) -> KRecord {
        let mut h = IndexMap::new();
        for (k, v) in headers {
            h.insert(
                StrBytes::from_string((*k).to_owned()),
                Some(Bytes::from((*v).to_owned())),
            );
        }
        KRecord {
            transactional: true,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 7,
            producer_id: 4711,
            producer_epoch: 3,
            timestamp_type: TimestampType::Creation,
            offset: i,
            sequence: 100 + i as i32,
            timestamp: 1_700_000_000_000 + i,
            key: Some(Bytes::from(format!("key-{i}"))),
            value: (i != 1).then(|| Bytes::from(format!("{{\"order\":{i}}}"))),
            headers: h,
        }
    }

    fn encoded(compression: Compression, records: &[KRecord]) -> Bytes {
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            records,
            &RecordEncodeOptions {
                version: 2,
                compression,
            },
        )
        .expect("encode");
        buf.freeze()
    }

    #[test]
    fn splicing_adds_the_header_and_keeps_everything_else_for_every_codec() {
        for compression in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let input = vec![
                sample(0, &[("a", "1"), ("b", "2")]),
                sample(
                    1,
                    &[(
                        "traceparent",
                        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                    )],
                ),
                sample(2, &[]),
            ];
            let bytes = encoded(compression, &input);
            let all = batches(&bytes).expect("batches");
            assert_eq!(all.len(), 1);
            let batch = &all[0];
            assert!(batch.crc_ok());
            assert_eq!(
                (
                    batch.producer_id(),
                    batch.producer_epoch(),
                    batch.base_sequence()
                ),
                (4711, 3, 100)
            );
            let section = batch.records_bytes().expect("decompress");
            let recs = records(&section, batch.records_count()).expect("records");
            assert_eq!(recs.len(), 3);
            assert_eq!(recs[0].headers.len(), 2);
            assert_eq!(recs[1].value, None);
            let add: Vec<Option<Vec<u8>>> = recs
                .iter()
                .map(|r| {
                    r.header("traceparent").is_none().then(|| {
                        b"00-11111111111111111111111111111111-2222222222222222-01".to_vec()
                    })
                })
                .collect();
            let spliced = batch
                .with_header(&section, &recs, "traceparent", &add)
                .expect("splice");
            // Written in place or through a separate records section: the same bytes.
            let resealed = batch
                .reseal(&with_header(&section, &recs, "traceparent", &add))
                .expect("reseal");
            assert_eq!(spliced, resealed, "{compression:?}");
            let sealed = &batches(&spliced).expect("batches")[0];
            assert!(sealed.crc_ok(), "{compression:?}");
            assert_eq!(
                sealed.codec().expect("codec"),
                batch.codec().expect("codec")
            );
            let mut again = spliced.clone();
            let decoded = RecordBatchDecoder::decode(&mut again)
                .expect("decode")
                .records;
            assert_eq!(decoded.len(), 3);
            for (before, after) in input.iter().zip(&decoded) {
                assert_eq!(before.key, after.key);
                assert_eq!(before.value, after.value);
                assert_eq!(before.sequence, after.sequence);
                assert_eq!(before.offset, after.offset);
                assert_eq!(before.timestamp, after.timestamp);
                assert_eq!(after.producer_id, 4711);
                assert_eq!(after.producer_epoch, 3);
                assert!(after.transactional);
                assert_eq!(after.partition_leader_epoch, 7);
                let names: Vec<&str> = after.headers.keys().map(|k| k.as_str()).collect();
                let mut want: Vec<&str> = before.headers.keys().map(|k| k.as_str()).collect();
                if !want.contains(&"traceparent") {
                    want.push("traceparent");
                }
                assert_eq!(names, want, "{compression:?}");
            }
            assert_eq!(
                decoded[1]
                    .headers
                    .get(&StrBytes::from_static_str("traceparent"))
                    .cloned()
                    .flatten(),
                input[1].headers.values().next().cloned().flatten(),
                "an existing traceparent is kept",
            );
        }
    }

    #[test]
    fn duplicate_headers_survive_in_order() {
        // kafka-protocol keeps headers in a map, so this batch is written by hand.
        let mut section = Vec::new();
        let mut body = Vec::new();
        body.push(0); // attributes
        varint::write(&mut body, 0);
        varint::write(&mut body, 0);
        varint::write(&mut body, -1); // null key
        varint::write(&mut body, 1);
        body.push(b'v');
        varint::write(&mut body, 3);
        for (k, v) in [("h", "1"), ("h", "2"), ("g", "3")] {
            varint::write(&mut body, 1);
            body.extend_from_slice(k.as_bytes());
            varint::write(&mut body, 1);
            body.extend_from_slice(v.as_bytes());
        }
        varint::write(&mut section, body.len() as i64);
        section.extend_from_slice(&body);
        let template = encoded(Compression::None, &[sample(0, &[])]);
        let batch = Batch {
            bytes: template.clone(),
        };
        let sealed = batch.reseal(&section).expect("reseal");
        let batch = &batches(&sealed).expect("batches")[0];
        let section = batch.records_bytes().expect("section");
        let recs = records(&section, 1).expect("records");
        let out = with_header(&section, &recs, "traceparent", &[Some(b"tp".to_vec())]);
        let recs = records(&out, 1).expect("records");
        let names: Vec<(&[u8], Option<&[u8]>)> = recs[0].headers.clone();
        assert_eq!(
            names,
            vec![
                (&b"h"[..], Some(&b"1"[..])),
                (&b"h"[..], Some(&b"2"[..])),
                (&b"g"[..], Some(&b"3"[..])),
                (&b"traceparent"[..], Some(&b"tp"[..])),
            ]
        );
        assert_eq!(recs[0].key, None);
    }

    #[test]
    fn a_truncated_last_batch_ends_the_list_and_bad_lengths_are_errors() {
        let one = encoded(Compression::None, &[sample(0, &[])]);
        let mut two = BytesMut::new();
        two.put_slice(&one);
        two.put_slice(&one[..one.len() - 5]);
        let two = two.freeze();
        assert_eq!(batches(&two).expect("batches").len(), 1);
        let mut bad = BytesMut::from(&one[..]);
        bad[8..12].copy_from_slice(&(-5i32).to_be_bytes());
        assert!(matches!(batches(&bad.freeze()), Err(Error::Length(-5))));
    }

    #[test]
    fn malformed_records_are_errors_not_panics() {
        let one = encoded(Compression::None, &[sample(0, &[("a", "b")])]);
        let batch = &batches(&one).expect("batches")[0];
        let section = batch.records_bytes().expect("section");
        for cut in 0..section.len() {
            let _ = records(&section[..cut], 1);
        }
        let mut lying = section.to_vec();
        lying[0] = 0x7e; // a record length far past the end
        assert!(records(&lying, 1).is_err());
        assert!(matches!(records(&section, 2), Err(Error::Count { .. })));
    }
}
