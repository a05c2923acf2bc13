//! The in-memory store: sorted maps per table, with an undo log so that a failed batch leaves
//! no trace. For tests, benchmarks, and engines whose state need not outlive the process.

use std::collections::BTreeMap;
use std::ops::Bound;

use super::{Error, Kv, KvRead, Store, Table};

type Map = BTreeMap<Box<[u8]>, Box<[u8]>>;

/// A table's entries as (key, value) byte pairs.
pub type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// What a write replaced: table, key, and the previous value (none if the key was new).
type Undo = (Table, Box<[u8]>, Option<Box<[u8]>>);

/// Engine state in memory.
pub struct MemoryStore {
    tables: Vec<Map>,
}

impl Default for MemoryStore {
    fn default() -> MemoryStore {
        MemoryStore::new()
    }
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore {
            tables: Table::ALL.iter().map(|_| Map::new()).collect(),
        }
    }

    /// Entries in a table, for tests and diagnostics.
    pub fn len(&self, table: Table) -> usize {
        self.tables[table as usize].len()
    }

    pub fn is_empty(&self) -> bool {
        self.tables.iter().all(BTreeMap::is_empty)
    }

    /// Every table's entries, for comparing two stores.
    pub fn dump(&self) -> Vec<(Table, Entries)> {
        Table::ALL
            .iter()
            .map(|t| {
                (
                    *t,
                    self.tables[*t as usize]
                        .iter()
                        .map(|(k, v)| (k.to_vec(), v.to_vec()))
                        .collect(),
                )
            })
            .collect()
    }
}

struct Tx<'a> {
    tables: &'a mut Vec<Map>,
    /// What each write replaced, newest last: replayed backwards on rollback.
    undo: Vec<Undo>,
}

impl KvRead for Tx<'_> {
    fn get(&self, table: Table, key: &[u8], f: &mut dyn FnMut(&[u8])) -> Result<bool, Error> {
        self.tables.get(table, key, f)
    }

    fn scan(
        &self,
        table: Table,
        prefix: &[u8],
        f: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), Error> {
        self.tables.scan(table, prefix, f)
    }

    fn range(
        &self,
        table: Table,
        from: &[u8],
        to: &[u8],
        f: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), Error> {
        self.tables.range(table, from, to, f)
    }
}

impl Kv for Tx<'_> {
    fn put(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<(), Error> {
        let key: Box<[u8]> = key.into();
        let old = self.tables[table as usize].insert(key.clone(), value.into());
        self.undo.push((table, key, old));
        Ok(())
    }

    fn delete(&mut self, table: Table, key: &[u8]) -> Result<(), Error> {
        if let Some((k, old)) = self.tables[table as usize].remove_entry(key) {
            self.undo.push((table, k, Some(old)));
        }
        Ok(())
    }
}

/// The tables themselves are the read view, inside and outside transactions.
impl KvRead for Vec<Map> {
    fn get(&self, table: Table, key: &[u8], f: &mut dyn FnMut(&[u8])) -> Result<bool, Error> {
        Ok(match self[table as usize].get(key) {
            Some(v) => {
                f(v);
                true
            }
            None => false,
        })
    }

    fn scan(
        &self,
        table: Table,
        prefix: &[u8],
        f: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), Error> {
        for (k, v) in
            self[table as usize].range::<[u8], _>((Bound::Included(prefix), Bound::Unbounded))
        {
            if !k.starts_with(prefix) || !f(k, v) {
                break;
            }
        }
        Ok(())
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
        for (k, v) in
            self[table as usize].range::<[u8], _>((Bound::Included(from), Bound::Excluded(to)))
        {
            if !f(k, v) {
                break;
            }
        }
        Ok(())
    }
}

impl Tx<'_> {
    fn rollback(self) {
        for (table, key, old) in self.undo.into_iter().rev() {
            let map = &mut self.tables[table as usize];
            match old {
                Some(v) => {
                    map.insert(key, v);
                }
                None => {
                    map.remove(&key);
                }
            }
        }
    }
}

impl Store for MemoryStore {
    fn transact<R, E: From<Error>>(
        &mut self,
        f: impl FnOnce(&mut dyn Kv) -> Result<R, E>,
    ) -> Result<R, E> {
        let mut tx = Tx {
            tables: &mut self.tables,
            undo: Vec::new(),
        };
        match f(&mut tx) {
            Ok(r) => Ok(r),
            Err(e) => {
                tx.rollback();
                Err(e)
            }
        }
    }

    fn read<R, E: From<Error>>(&self, f: impl FnOnce(&dyn KvRead) -> Result<R, E>) -> Result<R, E> {
        f(&self.tables)
    }
}
