//! Reads of contract state as of one version.
//!
//! [`StateView`] is the one interface every transaction read goes through, so a
//! parallel executor can later hand transactions a multi-version view that records
//! reads for validation. [`SnapshotView`] reads a storage snapshot at a version.

use std::collections::HashMap;
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard};

use super::keys::{
    decode_entry_key, decode_stored_value, entry_key, entry_key_buf, prefix_key, versioned_key,
    versioned_key_buf,
};
use crate::storage::{Snapshot, StorageError, Table};

/// Contract state as one transaction sees it before its own writes.
pub trait StateView: Send + Sync {
    /// The version this view reads.
    fn version(&self) -> u64;

    /// The value of `key` in namespace `ns`.
    ///
    /// # Errors
    /// When storage fails or is corrupt.
    fn get(&self, ns: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError>;

    /// The smallest key of `ns` that starts with `prefix` and is greater than `after`
    /// (any key with the prefix when `after` is `None`).
    ///
    /// # Errors
    /// When storage fails or is corrupt.
    fn next_key(
        &self,
        ns: &str,
        prefix: &[u8],
        after: Option<&[u8]>,
    ) -> Result<Option<Vec<u8>>, StorageError>;
}

/// A storage snapshot read at one version of the versioned `State` table.
pub struct SnapshotView {
    snapshot: Arc<dyn Snapshot>,
    version: u64,
    /// Entries read so far, when each read is a round trip (see `remembering`).
    memo: Option<Memo>,
}

impl SnapshotView {
    /// Reads `snapshot` as of `version`; later versions in it are invisible.
    pub fn new(snapshot: Arc<dyn Snapshot>, version: u64) -> Self {
        Self {
            snapshot,
            version,
            memo: None,
        }
    }

    /// The same, remembering each entry it read: for a store where each read is a
    /// round trip, read by many runs of one batch (an entry at or below a version
    /// never changes). A parallel batch's runs read the batch's base again and again —
    /// every run that met no earlier write, and every validation of one — which after
    /// another host's commit emptied the staged overlay was a round trip each, about
    /// 120 per batch of 256 counter increments.
    pub fn remembering(snapshot: Arc<dyn Snapshot>, version: u64) -> Self {
        Self {
            memo: Some(Mutex::default()),
            ..Self::new(snapshot, version)
        }
    }

    /// The latest stored value of an entry key at or below this view's version.
    fn get_entry(&self, entry: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        if let Some(found) = self.memo.as_ref().and_then(|m| memo(m).get(entry).cloned()) {
            return Ok(found);
        }
        let lo = versioned_key_buf(entry, 0);
        let hi = versioned_key_buf(entry, self.version);
        // An entry's versions are written in increasing order, as `newest_in` asks.
        let found = match self.snapshot.newest_in(Table::State, &lo, &hi)? {
            Some(stored) => decode_stored_value(&stored)?.map(<[u8]>::to_vec),
            None => None,
        };
        if let Some(m) = &self.memo {
            memo(m).insert(entry.to_vec(), found.clone());
        }
        Ok(found)
    }
}

impl StateView for SnapshotView {
    fn version(&self) -> u64 {
        self.version
    }

    fn get(&self, ns: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.get_entry(&entry_key_buf(ns, key))
    }

    fn next_key(
        &self,
        ns: &str,
        prefix: &[u8],
        after: Option<&[u8]>,
    ) -> Result<Option<Vec<u8>>, StorageError> {
        let start = prefix_key(ns, prefix);
        // Past every version of `after`: the next distinct key comes after this.
        let mut cursor = after.map(|a| versioned_key(&entry_key(ns, a), u64::MAX));
        loop {
            let lo = match &cursor {
                Some(c) if c.as_slice() > start.as_slice() => Bound::Excluded(c.as_slice()),
                _ => Bound::Included(start.as_slice()),
            };
            let mut next_entry: Option<Vec<u8>> = None;
            self.snapshot
                .range(Table::State, lo, Bound::Unbounded, false, &mut |k, _| {
                    if k.starts_with(&start) && k.len() >= 8 {
                        next_entry = Some(k[..k.len() - 8].to_vec());
                    }
                    false
                })?;
            let Some(entry) = next_entry else {
                return Ok(None);
            };
            if self.get_entry(&entry)?.is_some() {
                let (_, key) = decode_entry_key(&entry)?;
                return Ok(Some(key));
            }
            cursor = Some(versioned_key(&entry, u64::MAX));
        }
    }
}

fn memo(m: &Memo) -> MutexGuard<'_, HashMap<Vec<u8>, Option<Vec<u8>>>> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Entries a [`SnapshotView`] read, by entry key.
type Memo = Mutex<HashMap<Vec<u8>, Option<Vec<u8>>>>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::keys::encode_stored_value;
    use crate::storage::{Backend, MemoryBackend, WriteBatch};

    fn put(b: &MemoryBackend, ns: &str, key: &[u8], version: u64, value: Option<&[u8]>) {
        let mut w = WriteBatch::new();
        w.put(
            Table::State,
            versioned_key(&entry_key(ns, key), version),
            encode_stored_value(value),
        );
        b.commit(&w).unwrap();
    }

    #[test]
    fn reads_see_only_their_version() {
        let b = MemoryBackend::new();
        put(&b, "c", b"a", 1, Some(b"1"));
        put(&b, "c", b"a", 3, Some(b"3"));
        put(&b, "c", b"b", 2, Some(b"2"));
        put(&b, "c", b"b", 4, None);
        put(&b, "d", b"a", 1, Some(b"other contract"));
        let at = |v| SnapshotView::new(b.snapshot().unwrap(), v);
        assert_eq!(at(0).get("c", b"a").unwrap(), None);
        assert_eq!(at(2).get("c", b"a").unwrap(), Some(b"1".to_vec()));
        assert_eq!(at(9).get("c", b"a").unwrap(), Some(b"3".to_vec()));
        assert_eq!(at(3).get("c", b"b").unwrap(), Some(b"2".to_vec()));
        assert_eq!(at(4).get("c", b"b").unwrap(), None);

        let keys = |v: u64| {
            let view = at(v);
            let mut out = Vec::new();
            let mut after = None;
            while let Some(k) = view.next_key("c", b"", after.as_deref()).unwrap() {
                after = Some(k.clone());
                out.push(k);
            }
            out
        };
        assert_eq!(keys(3), vec![b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(keys(4), vec![b"a".to_vec()]);
        assert_eq!(keys(0), Vec::<Vec<u8>>::new());
        assert_eq!(at(9).next_key("c", b"b", None).unwrap(), None);
        assert_eq!(at(9).next_key("d", b"", None).unwrap(), Some(b"a".to_vec()));
    }
}
