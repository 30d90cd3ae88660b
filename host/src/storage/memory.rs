//! An in-memory backend on persistent ordered maps: snapshots cost one `Arc` clone and
//! a commit copies only the paths it changes.

use std::ops::Bound;
use std::sync::{Arc, RwLock};

use imbl::OrdMap;

use super::{Backend, Snapshot, StorageError, Table, WriteBatch};

/// Shared byte strings: copying a map node while committing only bumps reference
/// counts instead of copying every key and value in it.
type Bytes = Arc<[u8]>;
type Tables = [OrdMap<Bytes, Bytes>; Table::ALL.len()];

/// Keeps every table in memory; nothing survives the process.
#[derive(Default)]
pub struct MemoryBackend {
    tables: RwLock<Arc<Tables>>,
}

impl MemoryBackend {
    /// An empty backend.
    pub fn new() -> Self {
        Self::default()
    }
}

struct MemorySnapshot(Arc<Tables>);

impl Snapshot for MemorySnapshot {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.0[table.index()].get(key).map(|v| v.to_vec()))
    }

    fn range(
        &self,
        table: Table,
        lo: Bound<&[u8]>,
        hi: Bound<&[u8]>,
        reverse: bool,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StorageError> {
        let map = &self.0[table.index()];
        if bounds_empty(lo, hi) {
            return Ok(());
        }
        let range = map.range::<_, [u8]>((lo, hi));
        if reverse {
            for (k, v) in range.rev() {
                if !visit(k, v) {
                    break;
                }
            }
        } else {
            for (k, v) in range {
                if !visit(k, v) {
                    break;
                }
            }
        }
        Ok(())
    }
}

/// True when `(lo, hi)` holds no key; ordered maps panic on such ranges.
pub(crate) fn bounds_empty(lo: Bound<&[u8]>, hi: Bound<&[u8]>) -> bool {
    match (lo, hi) {
        (Bound::Included(a), Bound::Included(b)) => a > b,
        (Bound::Included(a) | Bound::Excluded(a), Bound::Excluded(b))
        | (Bound::Excluded(a), Bound::Included(b)) => a >= b,
        _ => false,
    }
}

impl Backend for MemoryBackend {
    fn snapshot(&self) -> Result<Arc<dyn Snapshot>, StorageError> {
        let tables = self.tables.read().map_err(|_| poisoned())?;
        Ok(Arc::new(MemorySnapshot(Arc::clone(&tables))))
    }

    fn commit(&self, batch: &WriteBatch) -> Result<(), StorageError> {
        let mut guard = self.tables.write().map_err(|_| poisoned())?;
        // In place when no snapshot is alive; copy-on-write (of changed paths only) when
        // one is, so snapshots never see this commit.
        let next = Arc::make_mut(&mut guard);
        for (table, key, value) in batch.ops() {
            let map = &mut next[table.index()];
            match value {
                Some(v) => {
                    map.insert(Bytes::from(key.as_slice()), Bytes::from(v.as_slice()));
                }
                None => {
                    map.remove(key.as_slice());
                }
            }
        }
        Ok(())
    }

    fn groups_commits(&self) -> bool {
        false
    }
}

fn poisoned() -> StorageError {
    StorageError::Backend("memory backend lock poisoned by a panic".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(s: &dyn Snapshot, lo: Bound<&[u8]>, hi: Bound<&[u8]>, rev: bool) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        s.range(Table::State, lo, hi, rev, &mut |k, _| {
            out.push(k.to_vec());
            true
        })
        .unwrap();
        out
    }

    #[test]
    fn snapshots_are_isolated_from_later_commits() {
        let b = MemoryBackend::new();
        let mut w = WriteBatch::new();
        w.put(Table::State, b"a".to_vec(), b"1".to_vec());
        w.put(Table::State, b"c".to_vec(), b"3".to_vec());
        b.commit(&w).unwrap();
        let before = b.snapshot().unwrap();
        let mut w = WriteBatch::new();
        w.put(Table::State, b"b".to_vec(), b"2".to_vec());
        w.delete(Table::State, b"a".to_vec());
        b.commit(&w).unwrap();
        let after = b.snapshot().unwrap();
        assert_eq!(before.get(Table::State, b"a").unwrap(), Some(b"1".to_vec()));
        assert_eq!(after.get(Table::State, b"a").unwrap(), None);
        assert_eq!(after.get(Table::Code, b"b").unwrap(), None);
        let all = keys(&*after, Bound::Unbounded, Bound::Unbounded, false);
        assert_eq!(all, vec![b"b".to_vec(), b"c".to_vec()]);
        let rev = keys(&*before, Bound::Unbounded, Bound::Included(b"c"), true);
        assert_eq!(rev, vec![b"c".to_vec(), b"a".to_vec()]);
        assert!(keys(&*after, Bound::Excluded(b"c"), Bound::Excluded(b"b"), false).is_empty());
    }
}
