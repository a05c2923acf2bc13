//! The Raft type configuration: what a log entry carries (a batch of commands) and what
//! applying it answers.

use std::io::Cursor;

use serde::{Deserialize, Serialize};

use crate::state::{Applied, Command};

openraft::declare_raft_types!(
    /// The control plane's Raft types.
    pub TypeConfig:
        D = Request,
        R = Response,
);

pub type NodeId = u64;
pub type Node = openraft::BasicNode;
pub type Raft = openraft::Raft<TypeConfig>;
pub type LogId = openraft::LogId<NodeId>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type StorageError = openraft::StorageError<NodeId>;
pub type StorageIOError = openraft::StorageIOError<NodeId>;

/// Snapshots travel as JSON bytes.
pub type SnapshotData = Cursor<Vec<u8>>;
pub type StoredMembership = openraft::StoredMembership<NodeId, Node>;
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, Node>;
pub type Snapshot = openraft::Snapshot<TypeConfig>;

/// One log entry: the commands of concurrent clients, batched so that one append (one fsync,
/// one replication round) carries many writes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub commands: Vec<Command>,
}

/// One result per command of the entry, and the revision after it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub results: Vec<Result<Applied, String>>,
    pub revision: u64,
}
