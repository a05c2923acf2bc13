//! Engine state in a redb file: every engine table is a redb table of bytes, and a batch of
//! commands is one write transaction committed with `Durability::Immediate` (fsync before the
//! commit returns). A step the engine acknowledged survives kill -9; a batch that did not
//! commit leaves no trace. One file holds both the engine's state and, later, the runtime's own
//! tables, so that both commit together.

use std::path::Path;
use std::sync::{Arc, Weak};

use flowmesh_bpmn::store::{Error, Kv, KvRead, Store, Table};
use redb::{
    Database, Durability, ReadOnlyTable, ReadTransaction, ReadableDatabase, ReadableTable,
    TableDefinition, WriteTransaction,
};

type Bytes = &'static [u8];

fn definition(table: Table) -> TableDefinition<'static, Bytes, Bytes> {
    TableDefinition::new(table.name())
}

fn io(e: impl std::fmt::Display) -> Error {
    Error::Io(e.to_string())
}

/// The engine's tables in a redb database.
pub struct RedbStore {
    db: Arc<Database>,
    durability: Durability,
}

/// A cheap handle for reading committed state from any thread while one thread writes. It
/// does not keep the file open: once the store is dropped, reads fail as closed.
#[derive(Clone)]
pub struct Snapshots {
    db: Weak<Database>,
}

impl Snapshots {
    /// Runs `f` on one consistent snapshot: the engine's tables and the raw read transaction
    /// (for callers' own tables).
    pub fn read_with<R, E: From<Error>>(
        &self,
        f: impl FnOnce(&dyn KvRead, &ReadTransaction) -> Result<R, E>,
    ) -> Result<R, E> {
        let db = self
            .db
            .upgrade()
            .ok_or_else(|| Error::Io("the engine's database is closed".to_owned()))?;
        let txn = db.begin_read().map_err(io)?;
        let tables = Tables::<ReadOnlyTable<Bytes, Bytes>>::open(&txn)?;
        f(&tables, &txn)
    }
}

impl RedbStore {
    /// Opens (or creates) the database file, creating the engine's tables.
    pub fn open(path: &Path) -> Result<RedbStore, Error> {
        let db = Database::create(path)
            .map_err(|e| Error::Io(format!("cannot open {}: {e}", path.display())))?;
        let txn = db.begin_write().map_err(io)?;
        for t in Table::ALL {
            txn.open_table(definition(t)).map_err(io)?;
        }
        txn.commit().map_err(io)?;
        Ok(RedbStore {
            db: Arc::new(db),
            durability: Durability::Immediate,
        })
    }

    /// Commits without fsync: for tests and benchmarks that measure everything but the disk.
    /// Production keeps the default (fsync on every commit).
    pub fn without_fsync(mut self) -> RedbStore {
        self.durability = Durability::None;
        self
    }

    /// Runs `f` in a write transaction with the engine's tables and the raw transaction (for
    /// callers' own tables that must commit together with engine state).
    pub fn transact_with<R, E: From<Error>>(
        &mut self,
        f: impl FnOnce(&mut dyn Kv, &WriteTransaction) -> Result<R, E>,
    ) -> Result<R, E> {
        let mut txn = self.db.begin_write().map_err(io)?;
        txn.set_durability(self.durability).map_err(io)?;
        let result = {
            let mut tables = Tables::<redb::Table<'_, Bytes, Bytes>>::open(&txn)?;
            f(&mut tables, &txn)
        };
        match result {
            Ok(r) => {
                txn.commit().map_err(io)?;
                Ok(r)
            }
            Err(e) => {
                txn.abort().map_err(io)?;
                Err(e)
            }
        }
    }

    pub fn snapshots(&self) -> Snapshots {
        Snapshots {
            db: Arc::downgrade(&self.db),
        }
    }

    /// The underlying database, for callers' own read transactions.
    pub fn database(&self) -> &Database {
        &self.db
    }
}

impl Store for RedbStore {
    fn transact<R, E: From<Error>>(
        &mut self,
        f: impl FnOnce(&mut dyn Kv) -> Result<R, E>,
    ) -> Result<R, E> {
        self.transact_with(|kv, _| f(kv))
    }

    fn read<R, E: From<Error>>(&self, f: impl FnOnce(&dyn KvRead) -> Result<R, E>) -> Result<R, E> {
        self.snapshots().read_with(|kv, _| f(kv))
    }
}

/// The engine's tables of one transaction: redb `Table`s when writing, `ReadOnlyTable`s when
/// reading. Reads are the same code for both.
struct Tables<T> {
    tables: Vec<T>,
}

impl<'txn> Tables<redb::Table<'txn, Bytes, Bytes>> {
    fn open(txn: &'txn WriteTransaction) -> Result<Self, Error> {
        let tables = Table::ALL
            .iter()
            .map(|t| txn.open_table(definition(*t)).map_err(io))
            .collect::<Result<_, _>>()?;
        Ok(Tables { tables })
    }
}

impl Tables<ReadOnlyTable<Bytes, Bytes>> {
    fn open(txn: &ReadTransaction) -> Result<Self, Error> {
        let tables = Table::ALL
            .iter()
            .map(|t| txn.open_table(definition(*t)).map_err(io))
            .collect::<Result<_, _>>()?;
        Ok(Tables { tables })
    }
}

impl<T: ReadableTable<Bytes, Bytes>> KvRead for Tables<T> {
    fn get(&self, table: Table, key: &[u8], f: &mut dyn FnMut(&[u8])) -> Result<bool, Error> {
        match self.tables[table as usize].get(key).map_err(io)? {
            Some(v) => {
                f(v.value());
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn scan(
        &self,
        table: Table,
        prefix: &[u8],
        f: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), Error> {
        let range = self.tables[table as usize]
            .range::<&[u8]>(prefix..)
            .map_err(io)?;
        visit(range, Some(prefix), f)
    }

    fn range(
        &self,
        table: Table,
        from: &[u8],
        to: &[u8],
        f: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), Error> {
        if from >= to {
            return Ok(());
        }
        let range = self.tables[table as usize]
            .range::<&[u8]>(from..to)
            .map_err(io)?;
        visit(range, None, f)
    }
}

impl Kv for Tables<redb::Table<'_, Bytes, Bytes>> {
    fn put(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<(), Error> {
        self.tables[table as usize].insert(key, value).map_err(io)?;
        Ok(())
    }

    fn delete(&mut self, table: Table, key: &[u8]) -> Result<(), Error> {
        self.tables[table as usize].remove(key).map_err(io)?;
        Ok(())
    }
}

/// Visits `(key, value)` pairs of a redb range while `f` says to go on (and, with a prefix,
/// while keys start with it).
fn visit<'a>(
    range: impl Iterator<
        Item = Result<
            (redb::AccessGuard<'a, Bytes>, redb::AccessGuard<'a, Bytes>),
            redb::StorageError,
        >,
    >,
    prefix: Option<&[u8]>,
    f: &mut dyn FnMut(&[u8], &[u8]) -> bool,
) -> Result<(), Error> {
    for entry in range {
        let (k, v) = entry.map_err(io)?;
        let key = k.value();
        if prefix.is_some_and(|p| !key.starts_with(p)) || !f(key, v.value()) {
            break;
        }
    }
    Ok(())
}
