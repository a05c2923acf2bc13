//! What the sidecar keeps across restarts in its own redb file (`data_dir/sidecar.redb`): the
//! last registry view it saw, so that it can route before (or without) the control plane.

use std::path::Path;
use std::sync::Arc;

use flowmesh_proto::control::ServicesResponse;
use redb::{Database, ReadableDatabase, TableDefinition};

const STATE: TableDefinition<'static, &'static str, &'static [u8]> =
    TableDefinition::new("sidecar_state");

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
}
