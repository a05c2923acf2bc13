//! Reading a Produce request (v3–v12) in place: `acks` and, per partition, its topic and where
//! its records sit in the frame; and writing the frame again with some partitions' records
//! replaced. Only the replaced records and their length prefixes change: every other byte of
//! the request, tagged fields included, is copied as it came.

use std::ops::Range;

use bytes::Bytes;

use super::frame::RequestHead;
use super::varint;
use super::wire::{Read, Reader};

/// One partition's records in a Produce request.
#[derive(Debug, PartialEq)]
pub struct Partition {
    pub topic: String,
    pub index: i32,
    /// The records' length prefix and the records, as ranges of the frame.
    pub prefix: Range<usize>,
    pub records: Option<Range<usize>>,
}

#[derive(Debug, PartialEq)]
pub struct Request {
    pub acks: i16,
    pub partitions: Vec<Partition>,
    flexible: bool,
}

/// Reads a Produce request frame of `head.version` (3 to 12).
pub fn read(frame: &[u8], head: &RequestHead) -> Read<Request> {
    if !(3..=12).contains(&head.version) {
        return Err(format!(
            "Produce v{} is not read (v3 to v12 are)",
            head.version
        ));
    }
    let mut r = Reader::new(frame, head.after_client_id, head.version >= 9);
    r.tagged_fields()?; // the request header's
    r.length(true)
        .and_then(|n| r.take(n.unwrap_or(0)).map(|_| ()))?; // transactional id
    let acks = r.i16()?;
    r.i32()?; // timeout
    let mut partitions = Vec::new();
    for _ in 0..r.length(false)?.unwrap_or(0) {
        let topic = r.string()?;
        for _ in 0..r.length(false)?.unwrap_or(0) {
            let index = r.i32()?;
            let start = r.at;
            let records = r.bytes()?;
            let prefix = start..records.as_ref().map_or(r.at, |x| x.start);
            r.tagged_fields()?;
            partitions.push(Partition {
                topic: topic.clone(),
                index,
                prefix,
                records,
            });
        }
        r.tagged_fields()?;
    }
    r.tagged_fields()?;
    if r.at != frame.len() {
        return Err(format!("{} bytes follow the request", frame.len() - r.at));
    }
    Ok(Request {
        acks,
        partitions,
        flexible: r.flexible,
    })
}

/// `frame` with the records of partition `i` replaced by `new` for each `(i, new)` (in
/// partition order), as the pieces to send one after the other: slices of `frame`, the new
/// length prefixes and the new records, so that no byte of the request is copied again.
pub fn rebuild(frame: &Bytes, request: &Request, replaced: &[(usize, Bytes)]) -> Vec<Bytes> {
    let mut parts = Vec::with_capacity(replaced.len() * 3 + 1);
    let mut cursor = 0;
    for (i, new) in replaced {
        let p = &request.partitions[*i];
        parts.push(frame.slice(cursor..p.prefix.start));
        let mut prefix = Vec::with_capacity(5);
        if request.flexible {
            varint::write_unsigned(&mut prefix, new.len() as u64 + 1);
        } else {
            prefix.extend_from_slice(&(new.len() as i32).to_be_bytes());
        }
        parts.push(Bytes::from(prefix));
        parts.push(new.clone());
        cursor = p.records.as_ref().map_or(p.prefix.end, |r| r.end);
    }
    parts.push(frame.slice(cursor..));
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{ApiKey, ProduceRequest, RequestHeader, TopicName};
    use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

    fn frame(version: i16) -> Bytes {
        let header = RequestHeader::default()
            .with_request_api_key(0)
            .with_request_api_version(version)
            .with_correlation_id(9)
            .with_client_id(Some(StrBytes::from_static_str("app")));
        let part = |i: i32, r: &'static [u8]| {
            PartitionProduceData::default()
                .with_index(i)
                .with_records(Some(Bytes::from_static(r)))
        };
        let body = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(30_000)
            .with_transactional_id(Some(StrBytes::from_static_str("tx").into()))
            .with_topic_data(vec![
                TopicProduceData::default()
                    .with_name(TopicName(StrBytes::from_static_str("orders")))
                    .with_partition_data(vec![part(0, b"AAAA"), part(1, b"BB")]),
                TopicProduceData::default()
                    .with_name(TopicName(StrBytes::from_static_str("pay")))
                    .with_partition_data(vec![part(2, b"C")]),
            ]);
        let mut out = BytesMut::new();
        header
            .encode(&mut out, ApiKey::Produce.request_header_version(version))
            .expect("header");
        body.encode(&mut out, version).expect("body");
        out.freeze()
    }

    #[test]
    fn every_version_reads_and_rebuilds_like_kafka_protocol_would() {
        for version in 3..=12 {
            let f = frame(version);
            let head = RequestHead::peek(&f).expect("head");
            let req = read(&f, &head).expect("read");
            assert_eq!(req.acks, -1);
            let seen: Vec<(String, i32, Vec<u8>)> = req
                .partitions
                .iter()
                .map(|p| {
                    (
                        p.topic.clone(),
                        p.index,
                        f[p.records.clone().unwrap()].to_vec(),
                    )
                })
                .collect();
            assert_eq!(
                seen,
                vec![
                    ("orders".into(), 0, b"AAAA".to_vec()),
                    ("orders".into(), 1, b"BB".to_vec()),
                    ("pay".into(), 2, b"C".to_vec()),
                ],
                "v{version}"
            );
            let long = Bytes::from(vec![7u8; 300]);
            let out = rebuild(
                &f,
                &req,
                &[(0, long.clone()), (2, Bytes::from_static(b"ZZ"))],
            );
            let mut buf = Bytes::from(out.concat());
            RequestHeader::decode(&mut buf, ApiKey::Produce.request_header_version(version))
                .expect("header");
            let body = ProduceRequest::decode(&mut buf, version).expect("body");
            let records: Vec<Bytes> = body
                .topic_data
                .iter()
                .flat_map(|t| &t.partition_data)
                .map(|p| p.records.clone().unwrap())
                .collect();
            assert_eq!(
                records,
                vec![long, Bytes::from_static(b"BB"), Bytes::from_static(b"ZZ")]
            );
        }
    }

    #[test]
    fn short_or_trailing_bytes_are_errors() {
        let f = frame(9);
        let head = RequestHead::peek(&f).expect("head");
        for cut in head.after_client_id..f.len() {
            assert!(read(&f[..cut], &head).is_err(), "cut at {cut}");
        }
        let mut longer = f.to_vec();
        longer.push(0);
        assert!(read(&longer, &head).is_err());
    }
}
