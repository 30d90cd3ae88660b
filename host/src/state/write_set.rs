//! A transaction's buffered writes, with rollback points for nested frames, and the
//! merged view of base state plus those writes that contract reads see.

use std::collections::BTreeMap;
use std::ops::Bound;

use super::keys::{decode_entry_key, entry_key, entry_key_buf, prefix_key};
use super::view::StateView;
use crate::storage::StorageError;

/// A journal entry: an entry key and what the set held there before a change.
type Undo = (Vec<u8>, Option<Option<Vec<u8>>>);

/// A final write: namespace, key, and the value (`None` for a removal).
pub type Change = (String, Vec<u8>, Option<Vec<u8>>);

/// Writes (`Some`) and removals (`None`) keyed by entry key, undoable back to a mark.
#[derive(Debug, Default)]
pub struct WriteSet {
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// Each change's entry key and what the set held there before it.
    journal: Vec<Undo>,
}

impl WriteSet {
    /// An empty write set.
    pub fn new() -> Self {
        Self::default()
    }

    /// The buffered write of `(ns, key)`: `Some(None)` is a buffered removal.
    pub fn get(&self, ns: &str, key: &[u8]) -> Option<Option<&[u8]>> {
        self.writes
            .get(&entry_key_buf(ns, key)[..])
            .map(|v| v.as_deref())
    }

    /// Buffers a write (`Some`) or removal (`None`).
    pub fn put(&mut self, ns: &str, key: &[u8], value: Option<Vec<u8>>) {
        let entry = entry_key(ns, key);
        let before = self.writes.insert(entry.clone(), value);
        self.journal.push((entry, before));
    }

    /// A rollback point.
    pub fn mark(&self) -> usize {
        self.journal.len()
    }

    /// Undoes every change made since `mark`.
    pub fn rollback(&mut self, mark: usize) {
        while self.journal.len() > mark {
            let Some((entry, before)) = self.journal.pop() else {
                break;
            };
            match before {
                Some(v) => {
                    self.writes.insert(entry, v);
                }
                None => {
                    self.writes.remove(&entry);
                }
            }
        }
    }

    /// The final writes as `(ns, key, value)`, in key order.
    ///
    /// # Errors
    /// Never for keys this set encoded itself; the `Result` guards the decoding.
    pub fn changes(&self) -> Result<Vec<Change>, StorageError> {
        self.writes
            .iter()
            .map(|(entry, v)| {
                let (ns, key) = decode_entry_key(entry)?;
                Ok((ns, key, v.clone()))
            })
            .collect()
    }

    /// True when nothing is buffered.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// The smallest buffered key of `ns` with `prefix`, greater than `after`, whose
    /// buffered write is a value (not a removal).
    fn next_written(&self, ns: &str, prefix: &[u8], after: Option<&[u8]>) -> Option<Vec<u8>> {
        let start = prefix_key(ns, prefix);
        let after_entry = after.map(|a| entry_key(ns, a));
        let lo = match &after_entry {
            Some(a) if a.as_slice() >= start.as_slice() => Bound::Excluded(a.clone()),
            _ => Bound::Included(start.clone()),
        };
        self.writes
            .range((lo, Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(&start))
            .find(|(_, v)| v.is_some())
            .and_then(|(k, _)| decode_entry_key(k).ok().map(|(_, key)| key))
    }
}

/// Base state seen through a write set: what a frame reads.
pub struct MergedView<'a> {
    /// The state before this transaction.
    pub base: &'a dyn StateView,
    /// This transaction's writes so far.
    pub writes: &'a WriteSet,
}

impl MergedView<'_> {
    /// The value of `(ns, key)` including buffered writes (the executor reads through
    /// `TxCtx::get`, which also records base reads).
    ///
    /// # Errors
    /// When the base view fails.
    #[cfg(test)]
    pub fn get(&self, ns: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        match self.writes.get(ns, key) {
            Some(v) => Ok(v.map(<[u8]>::to_vec)),
            None => self.base.get(ns, key),
        }
    }

    /// [`StateView::next_key`] over base and buffered writes together: buffered removals
    /// hide base keys and buffered values add keys.
    ///
    /// # Errors
    /// When the base view fails.
    pub fn next_key(
        &self,
        ns: &str,
        prefix: &[u8],
        after: Option<&[u8]>,
    ) -> Result<Option<Vec<u8>>, StorageError> {
        let mut cursor = after.map(<[u8]>::to_vec);
        let from_base = loop {
            match self.base.next_key(ns, prefix, cursor.as_deref())? {
                Some(k) if matches!(self.writes.get(ns, &k), Some(None)) => cursor = Some(k),
                other => break other,
            }
        };
        let from_writes = self.writes.next_written(ns, prefix, after);
        Ok(match (from_base, from_writes) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// A base view over a plain map, the model the merged view must agree with.
    struct MapView(BTreeMap<Vec<u8>, Vec<u8>>);

    impl StateView for MapView {
        fn version(&self) -> u64 {
            0
        }
        fn get(&self, _ns: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
            Ok(self.0.get(key).cloned())
        }
        fn next_key(
            &self,
            _ns: &str,
            prefix: &[u8],
            after: Option<&[u8]>,
        ) -> Result<Option<Vec<u8>>, StorageError> {
            Ok(self
                .0
                .keys()
                .find(|k| k.starts_with(prefix) && after.is_none_or(|a| k.as_slice() > a))
                .cloned())
        }
    }

    #[test]
    fn rollback_restores_each_mark() {
        let mut w = WriteSet::new();
        w.put("c", b"a", Some(b"1".to_vec()));
        let m = w.mark();
        w.put("c", b"a", Some(b"2".to_vec()));
        w.put("c", b"b", None);
        assert_eq!(w.get("c", b"a"), Some(Some(&b"2"[..])));
        w.rollback(m);
        assert_eq!(w.get("c", b"a"), Some(Some(&b"1"[..])));
        assert_eq!(w.get("c", b"b"), None);
        w.rollback(0);
        assert!(w.is_empty());
    }

    proptest::proptest! {
        #[test]
        fn merged_iteration_matches_a_model(
            base in proptest::collection::btree_map(
                proptest::collection::vec(0u8..4, 0..3), proptest::collection::vec(0u8..3, 0..2), 0..8),
            ops in proptest::collection::vec(
                (proptest::collection::vec(0u8..4, 0..3), proptest::option::of(proptest::collection::vec(0u8..3, 0..2))), 0..8),
            prefix in proptest::collection::vec(0u8..4, 0..2),
        ) {
            let view = MapView(base.clone());
            let mut writes = WriteSet::new();
            let mut model = base;
            for (k, v) in ops {
                match &v {
                    Some(v) => { model.insert(k.clone(), v.clone()); }
                    None => { model.remove(&k); }
                }
                writes.put("c", &k, v);
            }
            let merged = MergedView { base: &view, writes: &writes };
            let expected: Vec<_> = model.keys().filter(|k| k.starts_with(&prefix)).cloned().collect();
            let mut got = Vec::new();
            let mut after: Option<Vec<u8>> = None;
            while let Some(k) = merged.next_key("c", &prefix, after.as_deref()).unwrap() {
                proptest::prop_assert_eq!(merged.get("c", &k).unwrap(), model.get(&k).cloned());
                after = Some(k.clone());
                got.push(k);
            }
            proptest::prop_assert_eq!(got, expected);
        }
    }
}
