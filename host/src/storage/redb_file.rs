//! The durable backend: every table in one redb file; a commit is one redb write
//! transaction with immediate durability (fsync before it returns).

use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use redb::{Database, ReadOnlyTable, ReadableDatabase, ReadableTable, TableDefinition};

use super::backend::Precondition;
use super::file::RedbFile;
use super::{Backend, Durability, FileStorage, Snapshot, StorageError, Table, WriteBatch};

type Bytes = &'static [u8];

fn definition(table: Table) -> TableDefinition<'static, Bytes, Bytes> {
    TableDefinition::new(table.name())
}

/// A redb database file holding the host's tables.
pub struct RedbBackend {
    db: Database,
    durability: Durability,
}

fn backend_error(e: impl std::fmt::Display) -> StorageError {
    StorageError::Backend(e.to_string())
}

fn map_redb(e: impl Into<redb::Error>) -> StorageError {
    match e.into() {
        redb::Error::Io(io) => StorageError::Io(io.to_string()),
        redb::Error::Corrupted(msg) => StorageError::Corrupt(msg),
        redb::Error::DatabaseAlreadyOpen => StorageError::Backend(
            "the database file is already open, by another process or another host in \
                 this one (was the data dir's LOCK file removed while in use?)"
                .into(),
        ),
        other => backend_error(other),
    }
}

/// How every database is opened: with its page cache bounded by `STORE_CACHE_BYTES`
/// (redb's default, 1 GiB, would keep every page a long-running host writes).
fn builder() -> redb::Builder {
    let mut b = redb::Builder::new();
    b.set_cache_size(crate::limits::STORE_CACHE_BYTES);
    b
}

impl RedbBackend {
    /// Opens the database at `path`, creating it and its tables when absent.
    ///
    /// # Errors
    /// When the file cannot be opened or created, or is not a redb file.
    pub fn open(path: &Path, durability: Durability) -> Result<Self, StorageError> {
        Self::init(builder().create(path).map_err(map_redb)?, durability)
    }

    /// Opens (or creates) a database on any file storage, such as a fault-injecting one.
    ///
    /// # Errors
    /// When the storage does not hold a redb database, or fails.
    pub fn with_storage(
        storage: Box<dyn FileStorage>,
        durability: Durability,
    ) -> Result<Self, StorageError> {
        let db = builder()
            .create_with_backend(RedbFile(storage))
            .map_err(map_redb)?;
        Self::init(db, durability)
    }

    /// Applies `ops` (puts and deletes) in order as one redb write transaction, synced
    /// when `durable` (which also makes every earlier unsynced commit durable). No ops
    /// and `durable` is a checkpoint.
    ///
    /// # Errors
    /// When the write or its sync fails; then none of the ops is visible.
    pub(crate) fn commit_ops<'a>(
        &self,
        ops: impl IntoIterator<Item = (Table, &'a [u8], Option<&'a [u8]>)>,
        precondition: Option<&Precondition>,
        durable: bool,
    ) -> Result<(), StorageError> {
        let mut write = self.db.begin_write().map_err(map_redb)?;
        if !durable {
            write
                .set_durability(redb::Durability::None)
                .map_err(backend_error)?;
        }
        {
            let mut tables = Table::ALL
                .iter()
                .map(|&t| write.open_table(definition(t)).map_err(map_redb))
                .collect::<Result<Vec<_>, _>>()?;
            if let Some(pre) = precondition {
                let found = tables[pre.table.index()].get(&*pre.key).map_err(map_redb)?;
                // Dropping the write transaction uncommitted aborts it.
                pre.check(found.as_ref().map(|v| v.value()))?;
            }
            for (table, key, value) in ops {
                let t = &mut tables[table.index()];
                match value {
                    Some(v) => {
                        t.insert(key, v).map_err(map_redb)?;
                    }
                    None => {
                        t.remove(key).map_err(map_redb)?;
                    }
                }
            }
        }
        write.commit().map_err(map_redb)
    }

    /// Applies `batches` in order as one write transaction, if the first one's
    /// precondition holds: see [`Self::commit_ops`].
    ///
    /// # Errors
    /// As [`Self::commit_ops`].
    pub(crate) fn commit_batches(
        &self,
        batches: &[&WriteBatch],
        durable: bool,
    ) -> Result<(), StorageError> {
        let ops = batches
            .iter()
            .flat_map(|b| b.ops())
            .map(|(t, k, v)| (*t, &**k, v.as_deref()));
        let precondition = batches.first().and_then(|b| b.precondition());
        self.commit_ops(ops, precondition, durable)
    }

    fn init(db: Database, durability: Durability) -> Result<Self, StorageError> {
        let write = db.begin_write().map_err(map_redb)?;
        for table in Table::ALL {
            write.open_table(definition(table)).map_err(map_redb)?;
        }
        write.commit().map_err(map_redb)?;
        Ok(Self { db, durability })
    }
}

struct RedbSnapshot {
    tables: Vec<ReadOnlyTable<Bytes, Bytes>>,
}

impl Snapshot for RedbSnapshot {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        let found = self.tables[table.index()].get(key).map_err(map_redb)?;
        Ok(found.map(|guard| guard.value().to_vec()))
    }

    fn range(
        &self,
        table: Table,
        lo: Bound<&[u8]>,
        hi: Bound<&[u8]>,
        reverse: bool,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StorageError> {
        if super::memory::bounds_empty(lo, hi) {
            return Ok(());
        }
        let range = self.tables[table.index()]
            .range::<&[u8]>((lo, hi))
            .map_err(map_redb)?;
        let mut step = |item: Result<_, redb::StorageError>| -> Result<bool, StorageError> {
            let (k, v): (redb::AccessGuard<Bytes>, redb::AccessGuard<Bytes>) =
                item.map_err(map_redb)?;
            Ok(visit(k.value(), v.value()))
        };
        if reverse {
            for item in range.rev() {
                if !step(item)? {
                    break;
                }
            }
        } else {
            for item in range {
                if !step(item)? {
                    break;
                }
            }
        }
        Ok(())
    }
}

impl Backend for RedbBackend {
    fn snapshot(&self) -> Result<Arc<dyn Snapshot>, StorageError> {
        let read = self.db.begin_read().map_err(map_redb)?;
        let tables = Table::ALL
            .iter()
            .map(|&t| read.open_table(definition(t)).map_err(map_redb))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Arc::new(RedbSnapshot { tables }))
    }

    fn commit(&self, batch: &WriteBatch) -> Result<(), StorageError> {
        self.commit_batches(&[batch], self.durability == Durability::Immediate)
    }
}

impl Drop for RedbBackend {
    fn drop(&mut self) {
        // Non-durable commits reach the disk with the next durable one: make one, so a
        // clean exit keeps them. A failure here only loses what the setting allowed.
        if self.durability == Durability::None
            && let Ok(write) = self.db.begin_write()
        {
            let _ = write.commit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_survive_reopen_and_ranges_run_both_ways() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.redb");
        {
            let b = RedbBackend::open(&path, Durability::Immediate).unwrap();
            let mut w = WriteBatch::new();
            for k in [b"a", b"b", b"c"] {
                w.put(Table::History, k.to_vec(), k.to_vec());
            }
            w.delete(Table::History, b"b".to_vec());
            b.commit(&w).unwrap();
        }
        let b = RedbBackend::open(&path, Durability::Immediate).unwrap();
        let s = b.snapshot().unwrap();
        assert_eq!(s.get(Table::History, b"a").unwrap(), Some(b"a".to_vec()));
        assert_eq!(s.get(Table::History, b"b").unwrap(), None);
        assert_eq!(s.get(Table::State, b"a").unwrap(), None);
        let mut seen = Vec::new();
        s.range(
            Table::History,
            Bound::Unbounded,
            Bound::Unbounded,
            true,
            &mut |k, _| {
                seen.push(k.to_vec());
                true
            },
        )
        .unwrap();
        assert_eq!(seen, vec![b"c".to_vec(), b"a".to_vec()]);
    }
}
