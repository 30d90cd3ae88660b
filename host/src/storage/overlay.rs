//! Writes not yet in a backend, laid over one of its snapshots: the committer's staged
//! batches (not durable yet) and the write-ahead log's logged ones (durable, not yet
//! applied to redb). Reads see the newest write of each key.

use std::ops::Bound;
use std::sync::Arc;

use imbl::OrdMap;

use super::{Snapshot, StorageError, Table, WriteBatch};

/// Key → (sequence number of the batch that wrote it, value or delete): a persistent
/// map, so a snapshot's copy costs nothing.
type Writes = OrdMap<Arc<[u8]>, (u64, Option<Arc<[u8]>>)>;

/// Writes per table.
#[derive(Clone, Default)]
pub(crate) struct Overlay {
    tables: [Writes; Table::ALL.len()],
}

impl Overlay {
    /// True when it holds no write.
    pub fn is_empty(&self) -> bool {
        self.tables.iter().all(OrdMap::is_empty)
    }

    /// Lays `batch`, numbered `seq`, over what is here.
    pub fn insert(&mut self, seq: u64, batch: &WriteBatch) {
        for (table, key, value) in batch.ops() {
            self.tables[table.index()].insert(
                Arc::from(key.as_slice()),
                (seq, value.as_deref().map(Arc::from)),
            );
        }
    }

    /// The number of the batch that wrote `key` in `table`, if one here did.
    pub fn seq_of(&self, table: Table, key: &[u8]) -> Option<u64> {
        self.tables[table.index()].get(key).map(|(seq, _)| *seq)
    }

    /// Drops the writes of `batch` that no batch after `upto` overwrote: they are in the
    /// backend now.
    pub fn remove_upto(&mut self, upto: u64, batch: &WriteBatch) {
        for (table, key, _) in batch.ops() {
            let map = &mut self.tables[table.index()];
            if map
                .get(key.as_slice())
                .is_some_and(|(staged, _)| *staged <= upto)
            {
                map.remove(key.as_slice());
            }
        }
    }

    /// The newest write of every key, table by table in key order: applied to the
    /// backend, they leave it as all the batches applied in turn would.
    pub fn ops(&self) -> impl Iterator<Item = (Table, &[u8], Option<&[u8]>)> {
        Table::ALL.into_iter().flat_map(move |table| {
            self.tables[table.index()]
                .iter()
                .map(move |(k, (_, v))| (table, &**k, v.as_deref()))
        })
    }

    /// `base` seen through these writes.
    pub fn over(&self, base: Arc<dyn Snapshot>) -> Arc<dyn Snapshot> {
        if self.is_empty() {
            return base;
        }
        Arc::new(StagedSnapshot {
            base,
            pending: self.clone(),
        })
    }
}

/// Durable state seen through the staged batches.
struct StagedSnapshot {
    base: Arc<dyn Snapshot>,
    pending: Overlay,
}

impl Snapshot for StagedSnapshot {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        match self.pending.tables[table.index()].get(key) {
            Some((_, v)) => Ok(v.as_deref().map(<[u8]>::to_vec)),
            None => self.base.get(table, key),
        }
    }

    fn range(
        &self,
        table: Table,
        lo: Bound<&[u8]>,
        hi: Bound<&[u8]>,
        reverse: bool,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StorageError> {
        let map = &self.pending.tables[table.index()];
        // Walked lazily, never collected: a key staged by every transaction of a large
        // group (a counter's) would otherwise cost a copy of the whole group per read.
        let in_range: Box<dyn Iterator<Item = _>> = if super::bounds_empty(lo, hi) {
            Box::new(std::iter::empty())
        } else if reverse {
            Box::new(map.range::<_, [u8]>((lo, hi)).rev())
        } else {
            Box::new(map.range::<_, [u8]>((lo, hi)))
        };
        let mut staged = in_range.map(|(k, (_, v))| (&**k, v.as_deref())).peekable();
        // `before(a, b)`: key a comes before key b in this walk's direction.
        let before = |a: &[u8], b: &[u8]| if reverse { a > b } else { a < b };
        let mut go_on = true;
        self.base.range(table, lo, hi, reverse, &mut |k, v| {
            while let Some(&(sk, sv)) = staged.peek()
                && before(sk, k)
            {
                staged.next();
                if let Some(sv) = sv
                    && !visit(sk, sv)
                {
                    go_on = false;
                    return false;
                }
            }
            if let Some(&(sk, sv)) = staged.peek()
                && sk == k
            {
                // Staged over durable: the staged write (or delete) wins.
                staged.next();
                if let Some(sv) = sv
                    && !visit(sk, sv)
                {
                    go_on = false;
                    return false;
                }
                return true;
            }
            if !visit(k, v) {
                go_on = false;
                return false;
            }
            true
        })?;
        if go_on {
            for (sk, sv) in staged {
                if let Some(sv) = sv
                    && !visit(sk, sv)
                {
                    break;
                }
            }
        }
        Ok(())
    }
}
