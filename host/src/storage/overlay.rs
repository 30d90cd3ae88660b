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
            self.tables[table.index()].insert(Arc::clone(key), (seq, value.clone()));
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
            if map.get(&**key).is_some_and(|(staged, _)| *staged <= upto) {
                map.remove(&**key);
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

    fn get_many(&self, table: Table, keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>, StorageError> {
        // What the staged writes answer, and one read of the base for the rest.
        let map = &self.pending.tables[table.index()];
        let staged: Vec<_> = keys.iter().map(|k| map.get(*k)).collect();
        let missed: Vec<&[u8]> = keys
            .iter()
            .zip(&staged)
            .filter(|(_, s)| s.is_none())
            .map(|(k, _)| *k)
            .collect();
        let mut below = self.base.get_many(table, &missed)?.into_iter();
        Ok(staged
            .into_iter()
            .map(|s| match s {
                Some((_, v)) => v.as_deref().map(<[u8]>::to_vec),
                None => below.next().flatten(),
            })
            .collect())
    }

    fn newest_in(
        &self,
        table: Table,
        lo: &[u8],
        hi: &[u8],
    ) -> Result<Option<Vec<u8>>, StorageError> {
        if super::bounds_empty(Bound::Included(lo), Bound::Included(hi)) {
            return Ok(None);
        }
        let map = &self.pending.tables[table.index()];
        match map
            .range::<_, [u8]>((Bound::Included(lo), Bound::Included(hi)))
            .next_back()
        {
            // Keys in the range are written in increasing order, so a staged put is
            // greater than every key of the base: the base need not be read (for a
            // counter's key, a redb range seek per transaction).
            Some((_, (_, Some(v)))) => Ok(Some(v.to_vec())),
            // A delete (a prune): the greatest live key may lie below, in either layer.
            Some((_, (_, None))) => super::backend::last_in_range(self, table, lo, hi),
            None => self.base.newest_in(table, lo, hi),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{Backend, MemoryBackend};

    fn batch(ops: &[(&[u8], Option<&[u8]>)]) -> WriteBatch {
        let mut b = WriteBatch::new();
        for (k, v) in ops {
            match v {
                Some(v) => b.put(Table::State, k.to_vec(), v.to_vec()),
                None => b.delete(Table::State, k.to_vec()),
            }
        }
        b
    }

    #[test]
    fn get_many_answers_each_key_from_the_newest_layer_in_order() {
        let base = MemoryBackend::new();
        base.commit(&batch(&[(b"k1", Some(b"base1")), (b"k2", Some(b"base2"))]))
            .unwrap();
        let mut o = Overlay::default();
        o.insert(1, &batch(&[(b"k2", None), (b"k3", Some(b"staged3"))]));
        let snap = o.over(base.snapshot().unwrap());
        let keys: [&[u8]; 5] = [b"k3", b"k1", b"k2", b"k4", b"k1"];
        let one_by_one: Vec<_> = keys
            .iter()
            .map(|k| snap.get(Table::State, k).unwrap())
            .collect();
        assert_eq!(snap.get_many(Table::State, &keys).unwrap(), one_by_one);
        assert_eq!(
            one_by_one,
            [
                Some(b"staged3".to_vec()),
                Some(b"base1".to_vec()),
                None,
                None,
                Some(b"base1".to_vec())
            ]
        );
        assert!(snap.get_many(Table::State, &[]).unwrap().is_empty());
    }

    #[test]
    fn newest_in_reads_the_newest_layer_first_and_sees_through_deletes() {
        let base = MemoryBackend::new();
        base.commit(&batch(&[(b"k1", Some(b"base1")), (b"k2", Some(b"base2"))]))
            .unwrap();
        let newest = |overlay: &Overlay, lo: &[u8], hi: &[u8]| {
            overlay
                .over(base.snapshot().unwrap())
                .newest_in(Table::State, lo, hi)
                .unwrap()
        };
        let mut o = Overlay::default();
        o.insert(1, &batch(&[(b"k3", Some(b"staged3"))]));
        // A staged put in the range answers.
        assert_eq!(newest(&o, b"k0", b"k9"), Some(b"staged3".to_vec()));
        // None in the range: the base answers.
        assert_eq!(newest(&o, b"k0", b"k2"), Some(b"base2".to_vec()));
        assert_eq!(newest(&o, b"k0", b"k0"), None);
        // A staged delete of the base's greatest key: the next one down, from the base.
        o.insert(2, &batch(&[(b"k2", None)]));
        assert_eq!(newest(&o, b"k0", b"k2"), Some(b"base1".to_vec()));
        // An empty range.
        assert_eq!(newest(&o, b"k9", b"k0"), None);
    }
}
