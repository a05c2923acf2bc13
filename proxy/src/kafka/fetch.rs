//! Reading what a Fetch response (v4–v12) carries: per partition its topic, aborted
//! transactions and records. Written for observation, so it skips what it does not need,
//! tagged fields included: brokers differ in the tagged fields they send (tansu sends node
//! endpoints below v16), and a field the proxy does not read must not hide the records.

use bytes::Bytes;

use super::wire::{Read, Reader};

/// One partition's part of a Fetch response.
#[derive(Debug, PartialEq)]
pub struct Partition {
    pub topic: String,
    pub index: i32,
    /// (producer id, first offset) of each aborted transaction.
    pub aborted: Vec<(i64, i64)>,
    pub records: Option<Bytes>,
}

/// The partitions of a Fetch response frame (response header included) of `version`.
pub fn partitions(frame: &Bytes, version: i16) -> Read<Vec<Partition>> {
    if !(4..=12).contains(&version) {
        return Err(format!("Fetch v{version} is not read (v4 to v12 are)"));
    }
    let mut r = Reader::new(frame, 0, version >= 12);
    r.i32()?; // correlation id
    r.tagged_fields()?;
    r.i32()?; // throttle time
    if version >= 7 {
        r.i16()?; // error code
        r.i32()?; // session id
    }
    let mut out = Vec::new();
    for _ in 0..r.length(false)?.unwrap_or(0) {
        let topic = r.string()?;
        for _ in 0..r.length(false)?.unwrap_or(0) {
            let index = r.i32()?;
            r.i16()?; // error code
            r.i64()?; // high watermark
            r.i64()?; // last stable offset
            if version >= 5 {
                r.i64()?; // log start offset
            }
            let mut aborted = Vec::new();
            for _ in 0..r.length(false)?.unwrap_or(0) {
                aborted.push((r.i64()?, r.i64()?));
                r.tagged_fields()?;
            }
            if version >= 11 {
                r.i32()?; // preferred read replica
            }
            let records = r.bytes()?.map(|at| frame.slice(at));
            r.tagged_fields()?;
            out.push(Partition {
                topic: topic.clone(),
                index,
                aborted,
                records,
            });
        }
        r.tagged_fields()?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::messages::fetch_response::{
        AbortedTransaction, FetchableTopicResponse, PartitionData,
    };
    use kafka_protocol::messages::{ApiKey, FetchResponse, ProducerId, ResponseHeader, TopicName};
    use kafka_protocol::protocol::{Encodable, StrBytes};

    fn frame(version: i16) -> Bytes {
        let mut p = PartitionData::default();
        p.partition_index = 3;
        p.records = Some(Bytes::from_static(b"RECORDS"));
        let mut a = AbortedTransaction::default();
        a.producer_id = ProducerId(9);
        a.first_offset = 100;
        p.aborted_transactions = Some(vec![a]);
        let mut t = FetchableTopicResponse::default();
        t.topic = TopicName(StrBytes::from_static_str("orders"));
        t.partitions = vec![p];
        let mut body = FetchResponse::default();
        body.responses = vec![t];
        let mut out = BytesMut::new();
        ResponseHeader::default()
            .with_correlation_id(5)
            .encode(&mut out, ApiKey::Fetch.response_header_version(version))
            .expect("header");
        body.encode(&mut out, version).expect("body");
        out.freeze()
    }

    #[test]
    fn every_readable_version_gives_topic_partition_aborted_and_records() {
        for version in 4..=12 {
            let got = partitions(&frame(version), version).expect("read");
            assert_eq!(
                got,
                vec![Partition {
                    topic: "orders".into(),
                    index: 3,
                    aborted: vec![(9, 100)],
                    records: Some(Bytes::from_static(b"RECORDS")),
                }],
                "v{version}"
            );
        }
    }

    #[test]
    fn unknown_top_level_tagged_fields_are_skipped() {
        // v12 with one top-level tagged field (tag 0, 3 bytes) where the encoder put none.
        let mut f = frame(12).to_vec();
        assert_eq!(f.pop(), Some(0));
        f.extend_from_slice(&[1, 0, 3, 7, 7, 7]);
        let got = partitions(&Bytes::from(f), 12).expect("read");
        assert_eq!(got.len(), 1);
    }

    #[test]
    fn short_or_garbage_frames_are_errors() {
        let f = frame(11);
        for cut in 0..f.len() - 1 {
            let _ = partitions(&f.slice(..cut), 11);
        }
        assert!(partitions(&f.slice(..f.len() - 3), 11).is_err());
        assert!(partitions(&f, 13).is_err());
    }
}
