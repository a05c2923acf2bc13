//! What the sidecar keeps across restarts in its own redb file (`data_dir/sidecar.redb`): the
//! last registry view it saw, so that it can route before (or without) the control plane; the
//! trace context last seen for each business key; the deployed models' XML.

use std::path::Path;
use std::sync::Arc;

use flowmesh_proto::control::ServicesResponse;

use crate::deployments::Deployments;
use redb::{Database, ReadableDatabase, ReadableTableMetadata, TableDefinition};

const STATE: TableDefinition<'static, &'static str, &'static [u8]> =
    TableDefinition::new("sidecar_state");
/// Business key → the last trace context seen with it and when (unix seconds, big endian).
const TRACES: TableDefinition<'static, &'static str, &'static [u8]> =
    TableDefinition::new("trace_by_key");

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("sidecar storage {path}: {message}")]
    Open { path: String, message: String },
    #[error("sidecar storage: {0}")]
    Io(String),
}

fn io(e: impl std::fmt::Display) -> Error {
    Error::Io(e.to_string())
}

/// A cheap handle to the sidecar's redb file.
#[derive(Clone)]
pub struct Cache {
    db: Arc<Database>,
}

impl Cache {
    /// Opens (or creates) `sidecar.redb` in `dir`.
    pub fn open(dir: &Path) -> Result<Cache, Error> {
        let path = dir.join("sidecar.redb");
        let failed = |message: String| Error::Open {
            path: path.display().to_string(),
            message,
        };
        std::fs::create_dir_all(dir).map_err(|e| failed(e.to_string()))?;
        let db = Database::create(&path).map_err(|e| failed(e.to_string()))?;
        let txn = db.begin_write().map_err(|e| failed(e.to_string()))?;
        txn.open_table(STATE).map_err(|e| failed(e.to_string()))?;
        txn.open_table(TRACES).map_err(|e| failed(e.to_string()))?;
        txn.commit().map_err(|e| failed(e.to_string()))?;
        Ok(Cache { db: Arc::new(db) })
    }

    pub fn store_registry(&self, services: &ServicesResponse) -> Result<(), Error> {
        let bytes = serde_json::to_vec(services).map_err(io)?;
        let txn = self.db.begin_write().map_err(io)?;
        txn.open_table(STATE)
            .map_err(io)?
            .insert("registry", bytes.as_slice())
            .map_err(io)?;
        txn.commit().map_err(io)
    }

    pub fn load_registry(&self) -> Result<Option<ServicesResponse>, Error> {
        let txn = self.db.begin_read().map_err(io)?;
        let table = txn.open_table(STATE).map_err(io)?;
        match table.get("registry").map_err(io)? {
            Some(v) => serde_json::from_slice(v.value()).map(Some).map_err(io),
            None => Ok(None),
        }
    }

    /// Stores trace contexts by business key, all in one transaction.
    pub fn store_traces(&self, entries: &[(String, Vec<u8>)]) -> Result<(), Error> {
        let txn = self.db.begin_write().map_err(io)?;
        {
            let mut table = txn.open_table(TRACES).map_err(io)?;
            for (key, value) in entries {
                table.insert(key.as_str(), value.as_slice()).map_err(io)?;
            }
        }
        txn.commit().map_err(io)
    }

    pub fn load_trace(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        let txn = self.db.begin_read().map_err(io)?;
        let table = txn.open_table(TRACES).map_err(io)?;
        Ok(table.get(key).map_err(io)?.map(|v| v.value().to_vec()))
    }

    /// Removes trace contexts for which `stale(value)` holds; returns how many.
    pub fn prune_traces(&self, stale: impl Fn(&[u8]) -> bool) -> Result<u64, Error> {
        let txn = self.db.begin_write().map_err(io)?;
        let removed = {
            let mut table = txn.open_table(TRACES).map_err(io)?;
            let before = table.len().map_err(io)?;
            table.retain(|_, v| !stale(v)).map_err(io)?;
            before - table.len().map_err(io)?
        };
        txn.commit().map_err(io)?;
        Ok(removed)
    }

    /// Stores the deployed models as last seen.
    pub fn store_deployments(&self, d: &Deployments) -> Result<(), Error> {
        let bytes = serde_json::to_vec(d).map_err(io)?;
        let txn = self.db.begin_write().map_err(io)?;
        txn.open_table(STATE)
            .map_err(io)?
            .insert("deployments", bytes.as_slice())
            .map_err(io)?;
        txn.commit().map_err(io)
    }

    pub fn load_deployments(&self) -> Result<Option<Deployments>, Error> {
        let txn = self.db.begin_read().map_err(io)?;
        let table = txn.open_table(STATE).map_err(io)?;
        match table.get("deployments").map_err(io)? {
            Some(v) => serde_json::from_slice(v.value()).map(Some).map_err(io),
            None => Ok(None),
        }
    }
}
