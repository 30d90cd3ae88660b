//! The multi-version map of one parallel batch: for each state entry (contract or
//! registry key, by its entry-key encoding), the value each transaction of the batch
//! wrote, by the transaction's index in the batch — Block-STM's `MVMemory`.
//!
//! A transaction at index `i` reads the latest write of an index below `i`, else the
//! state before the batch. A write whose transaction is being re-run is an
//! [`Cell::Estimate`]: a reader that meets it depends on that transaction and stops.
//! One `RwLock` over a `BTreeMap` (ordered, for `storage_next` walks): runs take it for
//! reading, a finished run for writing once. It lives for one batch.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::RwLock;

use smallvec::SmallVec;

/// What index `txn`'s write of an entry is.
#[derive(Debug, Clone)]
enum Cell {
    /// Written by `incarnation` of the transaction (`None`: removed).
    Value {
        incarnation: u32,
        value: Option<Vec<u8>>,
    },
    /// The transaction is being re-run; its write is not known yet.
    Estimate,
}

/// What a read of an entry at index `txn` finds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Found {
    /// A write of transaction `txn` (incarnation `incarnation`) of the batch.
    Written {
        txn: usize,
        incarnation: u32,
        value: Option<Vec<u8>>,
    },
    /// Transaction `txn` of the batch will write it but is being re-run.
    Estimate { txn: usize },
    /// No transaction below wrote it: the state before the batch answers.
    Base,
}

/// Where a read's value came from: what validation checks is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// The state before the batch.
    Base,
    /// That incarnation of that transaction of the batch.
    Txn { txn: usize, incarnation: u32 },
}

impl Found {
    /// The read's origin, `None` for an estimate.
    pub(crate) fn origin(&self) -> Option<Origin> {
        match self {
            Found::Written {
                txn, incarnation, ..
            } => Some(Origin::Txn {
                txn: *txn,
                incarnation: *incarnation,
            }),
            Found::Estimate { .. } => None,
            Found::Base => Some(Origin::Base),
        }
    }
}

/// The writes of one entry by transaction index, ascending. Most entries have one or two
/// writers in a batch: a short sorted list, inline up to two, allocates nothing of its
/// own, where a `BTreeMap` allocated a node per entry. Runs finish roughly in index
/// order, so an insert is nearly always at the end, even for a hot entry.
type Versions = SmallVec<[(usize, Cell); 2]>;

/// Where `txn`'s write is (`Ok`) or would go (`Err`) in `versions`.
fn find(versions: &Versions, txn: usize) -> Result<usize, usize> {
    versions.binary_search_by_key(&txn, |(j, _)| *j)
}

/// The last write in `versions` below `txn`.
fn below(versions: &Versions, txn: usize) -> Option<&(usize, Cell)> {
    let end = versions.partition_point(|(j, _)| *j < txn);
    end.checked_sub(1).map(|i| &versions[i])
}

/// Every write of a batch's transactions, by entry and index.
#[derive(Debug, Default)]
pub(crate) struct MvMap {
    entries: RwLock<BTreeMap<Vec<u8>, Versions>>,
}

impl MvMap {
    /// The write of `entry` a transaction at index `txn` sees.
    pub(crate) fn read(&self, entry: &[u8], txn: usize) -> Found {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        let Some(versions) = entries.get(entry) else {
            return Found::Base;
        };
        match below(versions, txn) {
            None => Found::Base,
            Some((j, Cell::Estimate)) => Found::Estimate { txn: *j },
            Some((j, Cell::Value { incarnation, value })) => Found::Written {
                txn: *j,
                incarnation: *incarnation,
                value: value.clone(),
            },
        }
    }

    /// The smallest entry after `after` (or from `start`) that starts with `start` and
    /// that a transaction below `txn` wrote (a value, a removal or an estimate): a
    /// candidate a walk at `txn` must look at.
    pub(crate) fn next_written(
        &self,
        start: &[u8],
        after: Option<&[u8]>,
        txn: usize,
    ) -> Option<Vec<u8>> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        let lo = match after {
            Some(a) if a >= start => Bound::Excluded(a),
            _ => Bound::Included(start),
        };
        entries
            .range::<[u8], _>((lo, Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(start))
            .find(|(_, versions)| versions.first().is_some_and(|(j, _)| *j < txn))
            .map(|(k, _)| k.clone())
    }

    /// Records incarnation `incarnation` of `txn`'s writes, replacing its earlier
    /// incarnation's: `previous` are the entries that one wrote. True when an entry is
    /// written that the earlier incarnation did not write (a reader validated before
    /// may have read past it).
    pub(crate) fn record(
        &self,
        txn: usize,
        incarnation: u32,
        writes: Vec<(Vec<u8>, Option<Vec<u8>>)>,
        previous: &[Vec<u8>],
    ) -> bool {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        let mut new_path = false;
        for old in previous {
            if !writes.iter().any(|(k, _)| k == old)
                && let Some(versions) = entries.get_mut(old)
                && let Ok(at) = find(versions, txn)
            {
                versions.remove(at);
            }
        }
        for (entry, value) in writes {
            new_path |= !previous.contains(&entry);
            let versions = entries.entry(entry).or_default();
            let cell = Cell::Value { incarnation, value };
            match find(versions, txn) {
                Ok(at) => versions[at].1 = cell,
                Err(at) => versions.insert(at, (txn, cell)),
            }
        }
        new_path
    }

    /// Frees every entry, once no run reads the map any more (so that a worker frees
    /// it, not the in-order thread).
    pub(crate) fn clear(&self) {
        let entries = std::mem::take(&mut *self.entries.write().unwrap_or_else(|e| e.into_inner()));
        drop(entries);
    }

    /// Marks `txn`'s writes of `written` as estimates: it is about to be re-run.
    pub(crate) fn mark_estimates(&self, txn: usize, written: &[Vec<u8>]) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        for entry in written {
            if let Some(versions) = entries.get_mut(entry)
                && let Ok(at) = find(versions, txn)
            {
                versions[at].1 = Cell::Estimate;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_see_the_latest_write_below_them() {
        let mv = MvMap::default();
        assert_eq!(mv.read(b"a", 5), Found::Base);
        assert!(mv.record(1, 0, vec![(b"a".to_vec(), Some(b"1".to_vec()))], &[]));
        assert!(mv.record(3, 0, vec![(b"a".to_vec(), None)], &[]));
        assert_eq!(mv.read(b"a", 1), Found::Base);
        let written = |txn, value: Option<&[u8]>| Found::Written {
            txn,
            incarnation: 0,
            value: value.map(<[u8]>::to_vec),
        };
        assert_eq!(mv.read(b"a", 2), written(1, Some(b"1")));
        assert_eq!(mv.read(b"a", 9), written(3, None));
        mv.mark_estimates(3, &[b"a".to_vec()]);
        assert_eq!(mv.read(b"a", 9), Found::Estimate { txn: 3 });
        // The next incarnation writes elsewhere: its old write is gone.
        assert!(mv.record(
            3,
            1,
            vec![(b"b".to_vec(), Some(b"2".to_vec()))],
            &[b"a".to_vec()]
        ));
        assert_eq!(mv.read(b"a", 9), written(1, Some(b"1")));
        assert!(!mv.record(
            3,
            2,
            vec![(b"b".to_vec(), Some(b"3".to_vec()))],
            &[b"b".to_vec()]
        ));
        assert_eq!(mv.next_written(b"", None, 9), Some(b"a".to_vec()));
        assert_eq!(mv.next_written(b"", Some(b"a"), 9), Some(b"b".to_vec()));
        assert_eq!(
            mv.next_written(b"", Some(b"a"), 3),
            None,
            "b is written at 3, not below"
        );
        assert_eq!(mv.next_written(b"b", None, 9), Some(b"b".to_vec()));
    }
}
