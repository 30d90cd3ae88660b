//! A table looked up by exact key (the transaction ids of `Txs`): a hash map, where an
//! ordered map walks a path of nodes per lookup, a cache miss at each level once the
//! table outgrows the cache (a miss per new transaction, as random ids share no path).
//!
//! Snapshots read it too, so each value carries the number of the commit that wrote
//! it; a snapshot sees the newest value at or before its own commit. Values that a
//! later commit replaced or deleted are kept aside for older snapshots, and a delete
//! stays as a marker: nothing is reclaimed, which costs nothing here, as the
//! exactly-once index never replaces or deletes an id.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::ops::{Bound, RangeBounds};

use super::key::{Bytes, Key};

/// A value (`None`: deleted) and the commit that wrote it.
type Version = (u64, Option<Bytes>);

/// Keyed with std's randomly seeded SipHash: ids come from clients, and a chosen set of
/// colliding ids must not turn lookups into scans.
#[derive(Default)]
pub(super) struct HashedTable {
    newest: HashMap<Key, Version>,
    /// Replaced values, oldest first, for snapshots taken before the replacement.
    older: HashMap<Key, Vec<Version>>,
}

impl HashedTable {
    /// Writes `value` at `key` in commit `commit` (not below any earlier one).
    pub fn write(&mut self, commit: u64, key: &Bytes, value: Option<&Bytes>) {
        let version = (commit, value.cloned());
        match self.newest.entry(Key::new(key)) {
            Entry::Occupied(mut slot) => {
                debug_assert!(slot.get().0 <= commit, "commits are numbered upwards");
                let replaced = std::mem::replace(slot.get_mut(), version);
                let key = slot.key().clone();
                self.older.entry(key).or_default().push(replaced);
            }
            // A delete of an absent key changes nothing any snapshot sees.
            Entry::Vacant(_) if version.1.is_none() => {}
            Entry::Vacant(slot) => {
                slot.insert(version);
            }
        }
    }

    /// The value at `key` as of commit `seen`.
    pub fn get(&self, key: &[u8], seen: u64) -> Option<&Bytes> {
        self.as_of(key, self.newest.get(key)?, seen)
    }

    /// The value of `key`, whose newest version is `newest`, as of commit `seen`.
    fn as_of<'a>(&'a self, key: &[u8], newest: &'a Version, seen: u64) -> Option<&'a Bytes> {
        let (commit, value) = newest;
        if *commit <= seen {
            return value.as_ref();
        }
        let older = self.older.get(key)?;
        let (_, value) = older.iter().rev().find(|(commit, _)| *commit <= seen)?;
        value.as_ref()
    }

    /// The entries in `(lo, hi)` as of commit `seen`, in key order, copied out (keys
    /// and shared values): sorted on each call, as only tests and tools walk this table.
    pub fn range(&self, lo: Bound<&[u8]>, hi: Bound<&[u8]>, seen: u64) -> Vec<(Key, Bytes)> {
        let mut found: Vec<_> = self
            .newest
            .iter()
            .filter(|(k, _)| RangeBounds::<[u8]>::contains(&(lo, hi), k.as_slice()))
            .filter_map(|(k, newest)| {
                let value = self.as_of(k.as_slice(), newest, seen)?;
                Some((k.clone(), Bytes::clone(value)))
            })
            .collect();
        found.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(s: &str) -> Bytes {
        Bytes::from(s.as_bytes())
    }

    #[test]
    fn a_snapshot_sees_the_values_of_its_commit() {
        let mut t = HashedTable::default();
        t.write(1, &bytes("a"), Some(&bytes("1")));
        t.write(2, &bytes("b"), Some(&bytes("2")));
        t.write(3, &bytes("a"), Some(&bytes("3")));
        t.write(4, &bytes("a"), None);
        t.write(4, &bytes("never"), None);
        let at = |k: &str, seen| t.get(k.as_bytes(), seen).map(|v| v.to_vec());
        assert_eq!(at("a", 0), None);
        assert_eq!(at("a", 1), Some(b"1".to_vec()));
        assert_eq!(at("a", 2), Some(b"1".to_vec()));
        assert_eq!(at("a", 3), Some(b"3".to_vec()));
        assert_eq!(at("a", 4), None);
        assert_eq!(at("b", 1), None);
        assert_eq!(at("b", 9), Some(b"2".to_vec()));
        assert_eq!(at("never", 9), None);
        let keys = |lo, hi, seen| -> Vec<Vec<u8>> {
            t.range(lo, hi, seen)
                .iter()
                .map(|(k, _)| k.as_slice().to_vec())
                .collect()
        };
        assert_eq!(keys(Bound::Unbounded, Bound::Unbounded, 3), [b"a", b"b"]);
        assert_eq!(keys(Bound::Unbounded, Bound::Unbounded, 4), [b"b"]);
        assert_eq!(
            keys(Bound::Excluded(b"a"), Bound::Included(b"b"), 3),
            [b"b"]
        );
    }
}
