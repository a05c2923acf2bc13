//! The binary encoding of what only nodes read: Raft log entries, Raft RPC bodies and snapshots
//! (postcard: compact, and several times cheaper to write and read than JSON, which stays the
//! encoding of everything users and sidecars see).
//!
//! Postcard is not self-describing: a stored value is read back by the same Rust types. The
//! data dir carries a format number ([`FORMAT`]) so that a file from an incompatible version is
//! refused with a clear message instead of being misread.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The on-disk format of the log and snapshots; bumped when a stored type changes shape.
pub const FORMAT: u32 = 2;

/// The content type of Raft RPC bodies.
pub const RPC_CONTENT_TYPE: &str = "application/vnd.flowmesh.raft+postcard";

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CodecError(String);

pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    postcard::to_stdvec(value).map_err(|e| CodecError(format!("cannot encode: {e}")))
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    postcard::from_bytes(bytes).map_err(|e| CodecError(format!("cannot decode: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Command;
    use crate::types::{Entry, Request, TypeConfig};
    use openraft::raft::AppendEntriesRequest;
    use openraft::{CommittedLeaderId, EntryPayload, LogId, Vote};

    #[test]
    fn raft_messages_round_trip() {
        let entry = Entry {
            log_id: LogId::new(CommittedLeaderId::new(3, 1), 42),
            payload: EntryPayload::Normal(Request {
                commands: vec![Command::Register {
                    service: "payment".into(),
                    instance: "payment-1".into(),
                    addresses: [("inbound".into(), "127.0.0.1:15001".into())].into(),
                    lease_seconds: 10,
                    at_ms: 1_700_000_000_000,
                    topics: vec!["flowing-retail".into()],
                }],
            }),
        };
        let request = AppendEntriesRequest::<TypeConfig> {
            vote: Vote::new_committed(3, 1),
            prev_log_id: Some(LogId::new(CommittedLeaderId::new(3, 1), 41)),
            entries: vec![entry.clone()],
            leader_commit: None,
        };
        let back: AppendEntriesRequest<TypeConfig> = decode(&encode(&request).unwrap()).unwrap();
        assert_eq!(back.entries, vec![entry]);
        assert_eq!(back.vote, request.vote);
        assert!(decode::<Entry>(b"\xff\xff").is_err());
    }
}
