//! An in-memory backend: ordered tables in persistent maps, where snapshots cost one
//! `Arc` clone and a commit copies only the paths it changes; `Txs`, looked up only by
//! exact key, in a hash map whose values carry their commit (`hashed.rs`).

mod hashed;
mod key;

use std::ops::Bound;
use std::sync::{Arc, RwLock, RwLockReadGuard};

use imbl::OrdMap;

use self::hashed::HashedTable;
use self::key::{Bytes, Key};
use super::{Backend, Snapshot, StorageError, Table, WriteBatch};

/// The ordered tables as of one commit.
#[derive(Clone, Default)]
struct Tables {
    ordered: [OrdMap<Key, Bytes>; Table::ALL.len()],
    /// Commits applied: a snapshot reads the hashed table as of this one.
    commit: u64,
}

/// Whether `table` lives in the hashed table rather than an ordered map.
fn hashed(table: Table) -> bool {
    table == Table::Txs
}

/// Keeps every table in memory; nothing survives the process.
#[derive(Default)]
pub struct MemoryBackend {
    tables: RwLock<Arc<Tables>>,
    /// `Table::Txs`, shared by every snapshot.
    ids: Arc<RwLock<HashedTable>>,
}

impl MemoryBackend {
    /// An empty backend.
    pub fn new() -> Self {
        Self::default()
    }
}

struct MemorySnapshot {
    tables: Arc<Tables>,
    ids: Arc<RwLock<HashedTable>>,
}

impl MemorySnapshot {
    fn ids(&self) -> Result<RwLockReadGuard<'_, HashedTable>, StorageError> {
        self.ids.read().map_err(|_| poisoned())
    }
}

impl Snapshot for MemorySnapshot {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        if hashed(table) {
            let ids = self.ids()?;
            return Ok(ids.get(key, self.tables.commit).map(|v| v.to_vec()));
        }
        let map = &self.tables.ordered[table.index()];
        let value = match Key::inline(key) {
            Some(probe) => map.get(&probe),
            None => map.get(key),
        };
        Ok(value.map(|v| v.to_vec()))
    }

    fn range(
        &self,
        table: Table,
        lo: Bound<&[u8]>,
        hi: Bound<&[u8]>,
        reverse: bool,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StorageError> {
        if bounds_empty(lo, hi) {
            return Ok(());
        }
        if hashed(table) {
            // Copied out, so that `visit` runs without the lock: it may read or commit.
            let mut found = self.ids()?.range(lo, hi, self.tables.commit);
            if reverse {
                found.reverse();
            }
            for (k, v) in found {
                if !visit(k.as_slice(), &v) {
                    break;
                }
            }
            return Ok(());
        }
        let map = &self.tables.ordered[table.index()];
        let range = match (Key::bound(lo), Key::bound(hi)) {
            (Some(lo), Some(hi)) => map.range::<_, Key>((lo, hi)),
            _ => map.range::<_, [u8]>((lo, hi)),
        };
        if reverse {
            for (k, v) in range.rev() {
                if !visit(k.as_slice(), v) {
                    break;
                }
            }
        } else {
            for (k, v) in range {
                if !visit(k.as_slice(), v) {
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
        Ok(Arc::new(MemorySnapshot {
            tables: Arc::clone(&tables),
            ids: Arc::clone(&self.ids),
        }))
    }

    fn commit(&self, batch: &WriteBatch) -> Result<(), StorageError> {
        let mut guard = self.tables.write().map_err(|_| poisoned())?;
        // The hashed table's lock is taken before anything changes, so that a failure
        // to take it leaves nothing of the batch applied.
        let mut ids = match batch.ops().iter().any(|(table, ..)| hashed(*table)) {
            true => Some(self.ids.write().map_err(|_| poisoned())?),
            false => None,
        };
        // In place when no snapshot is alive; copy-on-write (of changed paths only) when
        // one is, so snapshots never see this commit.
        if let Some(pre) = batch.precondition() {
            let found = match hashed(pre.table) {
                true => match &ids {
                    Some(ids) => ids.get(&pre.key, guard.commit).cloned(),
                    None => {
                        let ids = self.ids.read().map_err(|_| poisoned())?;
                        ids.get(&pre.key, guard.commit).cloned()
                    }
                },
                false => guard.ordered[pre.table.index()].get(&*pre.key).cloned(),
            };
            pre.check(found.as_deref())?;
        }
        let next = Arc::make_mut(&mut guard);
        next.commit += 1;
        // Written before the commit number is published with the tables: a snapshot
        // of an earlier commit skips these values by their number.
        for (table, key, value) in batch.ops() {
            if let Some(ids) = ids.as_mut().filter(|_| hashed(*table)) {
                ids.write(next.commit, key, value.as_ref());
                continue;
            }
            let map = &mut next.ordered[table.index()];
            match value {
                Some(v) => {
                    map.insert(Key::new(key), Arc::clone(v));
                }
                None => match Key::inline(key) {
                    Some(probe) => {
                        map.remove(&probe);
                    }
                    None => {
                        map.remove(&**key);
                    }
                },
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
    use proptest::prelude::*;

    use super::key::INLINE_KEY_BYTES;
    use super::key::tests::key_bytes;
    use super::*;

    fn keys(s: &dyn Snapshot, lo: Bound<&[u8]>, hi: Bound<&[u8]>, rev: bool) -> Vec<Vec<u8>> {
        keys_in(s, Table::State, lo, hi, rev)
    }

    fn keys_in(
        s: &dyn Snapshot,
        table: Table,
        lo: Bound<&[u8]>,
        hi: Bound<&[u8]>,
        rev: bool,
    ) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        s.range(table, lo, hi, rev, &mut |k, _| {
            out.push(k.to_vec());
            true
        })
        .unwrap();
        out
    }

    #[test]
    fn snapshots_are_isolated_from_later_commits() {
        // The ordered tables and the hashed one.
        for table in [Table::State, Table::Txs] {
            let b = MemoryBackend::new();
            let mut w = WriteBatch::new();
            w.put(table, b"a".to_vec(), b"1".to_vec());
            w.put(table, b"c".to_vec(), b"3".to_vec());
            b.commit(&w).unwrap();
            let before = b.snapshot().unwrap();
            let mut w = WriteBatch::new();
            w.put(table, b"b".to_vec(), b"2".to_vec());
            w.delete(table, b"a".to_vec());
            w.put(table, b"c".to_vec(), b"4".to_vec());
            b.commit(&w).unwrap();
            let after = b.snapshot().unwrap();
            assert_eq!(before.get(table, b"a").unwrap(), Some(b"1".to_vec()));
            assert_eq!(before.get(table, b"b").unwrap(), None);
            assert_eq!(before.get(table, b"c").unwrap(), Some(b"3".to_vec()));
            assert_eq!(after.get(table, b"a").unwrap(), None);
            assert_eq!(after.get(table, b"c").unwrap(), Some(b"4".to_vec()));
            assert_eq!(after.get(Table::Code, b"b").unwrap(), None);
            let all = keys_in(&*after, table, Bound::Unbounded, Bound::Unbounded, false);
            assert_eq!(all, vec![b"b".to_vec(), b"c".to_vec()]);
            let rev = keys_in(
                &*before,
                table,
                Bound::Unbounded,
                Bound::Included(b"c"),
                true,
            );
            assert_eq!(rev, vec![b"c".to_vec(), b"a".to_vec()]);
            assert!(
                keys_in(
                    &*after,
                    table,
                    Bound::Excluded(b"c"),
                    Bound::Excluded(b"b"),
                    false
                )
                .is_empty()
            );
        }
    }

    #[test]
    fn a_walk_of_the_hashed_table_may_commit_from_its_visitor() {
        let b = MemoryBackend::new();
        let mut w = WriteBatch::new();
        w.put(Table::Txs, b"a".to_vec(), b"1".to_vec());
        w.put(Table::Txs, b"b".to_vec(), b"2".to_vec());
        b.commit(&w).unwrap();
        let s = b.snapshot().unwrap();
        let mut seen = Vec::new();
        s.range(
            Table::Txs,
            Bound::Unbounded,
            Bound::Unbounded,
            false,
            &mut |k, _| {
                // With the table's lock held here, this commit would wait for itself.
                let mut w = WriteBatch::new();
                w.put(Table::Txs, [b"new-", k].concat(), b"3".to_vec());
                b.commit(&w).unwrap();
                seen.push(k.to_vec());
                true
            },
        )
        .unwrap();
        assert_eq!(seen, [b"a", b"b"]);
        assert_eq!(s.get(Table::Txs, b"new-a").unwrap(), None);
        let after = b.snapshot().unwrap();
        assert_eq!(
            after.get(Table::Txs, b"new-b").unwrap(),
            Some(b"3".to_vec())
        );
    }

    #[test]
    fn inline_and_shared_keys_order_as_bytes() {
        let b = MemoryBackend::new();
        let mut w = WriteBatch::new();
        // Around the inline limit, and keys that are prefixes of one another.
        let long = vec![7u8; INLINE_KEY_BYTES + 1];
        let at_limit = vec![7u8; INLINE_KEY_BYTES];
        for k in [&long[..], &at_limit[..], b"", b"\x07", &[7, 7, 0]] {
            w.put(Table::State, k.to_vec(), k.to_vec());
        }
        b.commit(&w).unwrap();
        let s = b.snapshot().unwrap();
        let mut want = vec![
            long.clone(),
            at_limit.clone(),
            Vec::new(),
            vec![7],
            vec![7, 7, 0],
        ];
        want.sort();
        assert_eq!(keys(&*s, Bound::Unbounded, Bound::Unbounded, false), want);
        for k in &want {
            assert_eq!(s.get(Table::State, k).unwrap().as_ref(), Some(k));
        }
        let between = keys(
            &*s,
            Bound::Excluded(&at_limit),
            Bound::Included(&long),
            false,
        );
        assert_eq!(between, vec![long]);
    }

    proptest! {
        #[test]
        fn lookups_find_what_the_bytes_say(
            stored in prop::collection::btree_set(key_bytes(), 0..12),
            probe in key_bytes(),
            hi in key_bytes(),
            hashed_table: bool,
            reverse: bool,
        ) {
            let table = if hashed_table { Table::Txs } else { Table::State };
            let b = MemoryBackend::new();
            let mut w = WriteBatch::new();
            for k in &stored {
                w.put(table, k.clone(), k.clone());
            }
            b.commit(&w).unwrap();
            let s = b.snapshot().unwrap();
            let found = s.get(table, &probe).unwrap();
            prop_assert_eq!(found.as_ref(), stored.get(&probe));
            let got = keys_in(&*s, table, Bound::Included(&probe[..]), Bound::Excluded(&hi[..]), reverse);
            let mut want: Vec<_> = stored
                .iter()
                .filter(|k| **k >= probe && **k < hi)
                .cloned()
                .collect();
            if reverse {
                want.reverse();
            }
            prop_assert_eq!(got, want);
            let mut w = WriteBatch::new();
            w.delete(table, probe.clone());
            b.commit(&w).unwrap();
            let after = b.snapshot().unwrap();
            prop_assert_eq!(after.get(table, &probe).unwrap(), None);
            let before = s.get(table, &probe).unwrap();
            prop_assert_eq!(before.as_ref(), stored.get(&probe));
            let left = keys_in(&*after, table, Bound::Unbounded, Bound::Unbounded, false);
            prop_assert_eq!(left.len(), stored.len() - usize::from(stored.contains(&probe)));
        }
    }
}
