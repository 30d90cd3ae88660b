//! An in-memory backend: ordered tables in persistent maps, where snapshots cost one
//! `Arc` clone and a commit copies only the paths it changes; `Txs`, looked up only by
//! exact key, in a hash map whose values carry their commit (`hashed.rs`).

mod hashed;
mod key;

use std::ops::Bound;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard};

use imbl::OrdMap;

use self::hashed::HashedTable;
use self::key::{Bytes, Key};
use super::{Backend, Op, Snapshot, StorageError, Table, WriteBatch};

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
pub struct MemoryBackend {
    tables: RwLock<Arc<Tables>>,
    /// `Table::Txs`, shared by every snapshot.
    ids: Arc<RwLock<HashedTable>>,
    /// Whether a large commit applies its events index rows on a second thread.
    parallel_apply: bool,
}

impl Default for MemoryBackend {
    fn default() -> Self {
        Self {
            tables: RwLock::default(),
            ids: Arc::default(),
            parallel_apply: true,
        }
    }
}

impl MemoryBackend {
    /// An empty backend.
    pub fn new() -> Self {
        Self::default()
    }

    /// The same backend, applying a large commit's events index rows on a second
    /// thread (`true`, the default) or on the committing one: a switch for speed only
    /// (BENCHMARKS.md's index), the tables end up the same.
    pub fn with_parallel_apply(mut self, on: bool) -> Self {
        self.parallel_apply = on;
        self
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
        let commit = next.commit;
        let ops = batch.ops();
        // `Txs` lives in the hashed table: its ordered map stays empty.
        let [state, code, _, history, meta, events] = &mut next.ordered;
        // A large batch (a parallel batch's, applied while its workers are idle) is
        // applied on two threads, by units of tables: each thread takes the next unit
        // left, so the two end together whichever tables a workload fills. The units go
        // in the order of their size for transfers (between 1,000 accounts the state
        // rows took 0.6–1.1 µs a transaction and the `Txs` rows 0.4; between 10,000,
        // the state rows 1.2; BENCHMARKS.md).
        if self.parallel_apply && ops.len() >= PARALLEL_APPLY_OPS_MIN {
            let units = [
                Mutex::new(Some(([Some(state), None, None, None, None, None], None))),
                Mutex::new(Some(([None, None, None, None, None, Some(events)], None))),
                Mutex::new(Some((
                    [None, None, None, None, None, None],
                    ids.as_deref_mut(),
                ))),
                Mutex::new(Some((
                    [None, Some(code), None, Some(history), Some(meta), None],
                    None,
                ))),
            ];
            let next = AtomicUsize::new(0);
            let take_tables = || {
                while let Some(unit) = units.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let taken = unit.lock().unwrap_or_else(PoisonError::into_inner).take();
                    if let Some((mut maps, ids)) = taken {
                        apply_ops(ops, commit, &mut maps, ids);
                    }
                }
            };
            crate::helpers::join(take_tables, take_tables);
        } else {
            let mut all = [
                Some(state),
                Some(code),
                None,
                Some(history),
                Some(meta),
                Some(events),
            ];
            apply_ops(ops, commit, &mut all, ids.as_deref_mut());
        }
        Ok(())
    }

    fn groups_commits(&self) -> bool {
        false
    }
}

/// Operations a commit holds at least to be applied on two threads (handing work to
/// a second thread costs tens of microseconds; a parallel batch of 1,000 transfers
/// holds about 8,000 operations).
const PARALLEL_APPLY_OPS_MIN: usize = 1024;

/// The ordered maps of a commit, by table index; `None`: not this thread's.
type Maps<'a> = [Option<&'a mut OrdMap<Key, Bytes>>; Table::ALL.len()];

/// Applies the operations of `ops` on the tables of `maps`, and on the hashed table when
/// `ids` is given, as commit number `commit`. Values are written before the commit
/// number is published with the tables: a snapshot of an earlier commit skips them by
/// their number.
fn apply_ops(ops: &[Op], commit: u64, maps: &mut Maps<'_>, mut ids: Option<&mut HashedTable>) {
    for (table, key, value) in ops {
        if hashed(*table) {
            if let Some(ids) = ids.as_deref_mut() {
                ids.write(commit, key, value.as_ref());
            }
        } else if let Some(map) = &mut maps[table.index()] {
            apply(map, key, value.as_ref());
        }
    }
}

/// Puts or deletes `key` in `map`.
fn apply(map: &mut OrdMap<Key, Bytes>, key: &Arc<[u8]>, value: Option<&Bytes>) {
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

    /// Every table's entries in `s`, in order.
    fn contents(s: &dyn Snapshot) -> Vec<(Table, Vec<u8>, Vec<u8>)> {
        let mut out = Vec::new();
        for table in Table::ALL {
            s.range(
                table,
                Bound::Unbounded,
                Bound::Unbounded,
                false,
                &mut |k, v| {
                    out.push((table, k.to_vec(), v.to_vec()));
                    true
                },
            )
            .unwrap();
        }
        out
    }

    #[test]
    fn a_large_commit_applied_on_two_threads_leaves_what_small_ones_would() {
        // Puts, overwrites and deletes in every table, several of one key in a batch,
        // and more operations than `PARALLEL_APPLY_OPS_MIN`.
        let mut ops: Vec<Op> = Vec::new();
        for i in 0..3000u32 {
            let table = Table::ALL[usize::try_from(i % 6).unwrap()];
            let key: Arc<[u8]> = (i % 700).to_be_bytes().into();
            let value = (i % 5 != 0).then(|| Arc::from(i.to_le_bytes().as_slice()));
            ops.push((table, key, value));
        }
        assert!(ops.len() >= PARALLEL_APPLY_OPS_MIN);
        let (whole, pieces) = (
            MemoryBackend::new(),
            MemoryBackend::new().with_parallel_apply(false),
        );
        whole
            .commit(&WriteBatch::from_ops(ops.clone(), None))
            .unwrap();
        for piece in ops.chunks(PARALLEL_APPLY_OPS_MIN / 4) {
            pieces
                .commit(&WriteBatch::from_ops(piece.to_vec(), None))
                .unwrap();
        }
        let got = contents(&*whole.snapshot().unwrap());
        assert!(got.iter().any(|(t, ..)| *t == Table::Events));
        assert!(got.iter().any(|(t, ..)| *t == Table::Txs));
        assert_eq!(got, contents(&*pieces.snapshot().unwrap()));
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
