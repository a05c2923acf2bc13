//! openraft's own storage test suite on the redb log store and state machine.

#![allow(clippy::unwrap_used)]

use flowmesh_control_plane::storage::{self, LogStore, StateMachine};
use flowmesh_control_plane::types::{StorageError, TypeConfig};
use openraft::testing::{StoreBuilder, Suite};

/// A fresh redb file in a temp dir per test; the dir lives as long as the stores.
struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for Builder {
    async fn build(&self) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError> {
        let dir = tempfile::tempdir().unwrap();
        let (log, machine) = storage::open(dir.path()).unwrap();
        Ok((dir, log, machine))
    }
}

#[test]
fn redb_store_passes_the_openraft_storage_suite() {
    Suite::test_all(Builder).unwrap();
}
