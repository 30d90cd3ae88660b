//! The recorded view: every read of the state a run makes, recorded as it is made, so
//! that the run's outcome can be explained by what it saw — the commit finds old values
//! here for the state root, and a parallel executor validates a transaction by reading
//! the same things again.
//!
//! A [`ReadSet`] holds point reads (contract keys and registry entries, including those
//! a cache answered), `storage_next` scans with what they found, and the code a run
//! instantiated. [`RecordingView`] is the [`StateView`] a run reads through: it records
//! into a `ReadSet` and answers repeated point reads from it.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use super::keys::{entry_key, entry_key_buf};
use super::view::StateView;
use crate::storage::StorageError;
use crate::types::CodeHash;

/// One `storage_next` step over the base state: the first key of `ns` with `prefix`
/// after `after`, and what it found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    /// The contract (or registry) namespace.
    pub ns: String,
    /// The prefix scanned.
    pub prefix: Vec<u8>,
    /// The key the step started after (`None`: from the start).
    pub after: Option<Vec<u8>>,
    /// The key found, or `None` at the end of the range.
    pub found: Option<Vec<u8>>,
}

/// What a run read from the base state. The sequential executor needs only the old
/// values of what it writes; the rest is the record a parallel executor validates.
#[derive(Debug, Default)]
pub struct ReadSet {
    /// Point reads by entry key: the value seen (`None`: absent).
    values: HashMap<Vec<u8>, Option<Vec<u8>>>,
    scans: Vec<Scan>,
    code: Vec<CodeHash>,
}

impl ReadSet {
    /// An empty read set.
    pub fn new() -> Self {
        Self::default()
    }

    /// The base value of `(ns, key)`, read once and remembered.
    ///
    /// # Errors
    /// When the base view fails.
    pub fn read(
        &mut self,
        base: &dyn StateView,
        ns: &str,
        key: &[u8],
    ) -> Result<Option<Vec<u8>>, StorageError> {
        let entry = entry_key_buf(ns, key);
        if let Some(v) = self.values.get(&entry[..]) {
            return Ok(v.clone());
        }
        let v = base.get(ns, key)?;
        self.values.insert(entry.to_vec(), v.clone());
        Ok(v)
    }

    /// Records that `(ns, key)` read `value` from somewhere other than the base view
    /// (a cache of it): the run depends on it all the same.
    pub fn note(&mut self, ns: &str, key: &[u8], value: impl FnOnce() -> Option<Vec<u8>>) {
        let entry = entry_key_buf(ns, key);
        if !self.values.contains_key(&entry[..]) {
            self.values.insert(entry.to_vec(), value());
        }
    }

    /// Records a `storage_next` step over the base state.
    pub fn note_scan(&mut self, scan: Scan) {
        self.scans.push(scan);
    }

    /// Records that the run instantiated `code`.
    pub fn note_code(&mut self, code: CodeHash) {
        if !self.code.contains(&code) {
            self.code.push(code);
        }
    }

    /// The recorded base value of `(ns, key)`, if this run read it.
    #[cfg_attr(
        not(test),
        expect(dead_code, reason = "the record a parallel executor validates")
    )]
    pub fn recorded(&self, ns: &str, key: &[u8]) -> Option<Option<&[u8]>> {
        self.values.get(&entry_key(ns, key)).map(Option::as_deref)
    }

    /// Point reads: the number of distinct keys read.
    #[cfg_attr(
        not(test),
        expect(dead_code, reason = "the record a parallel executor validates")
    )]
    pub fn point_reads(&self) -> usize {
        self.values.len()
    }

    /// The `storage_next` steps, in order.
    #[cfg_attr(
        not(test),
        expect(dead_code, reason = "the record a parallel executor validates")
    )]
    pub fn scans(&self) -> &[Scan] {
        &self.scans
    }

    /// The code the run instantiated, in first-use order.
    #[cfg_attr(
        not(test),
        expect(dead_code, reason = "the record a parallel executor validates")
    )]
    pub fn code(&self) -> &[CodeHash] {
        &self.code
    }
}

/// A base view that records every read into a [`ReadSet`]. The set sits behind a
/// mutex only because views are shared across threads; a run's own is never contended.
pub struct RecordingView<'a> {
    /// The state the run builds on.
    pub base: &'a dyn StateView,
    /// Where its reads go.
    pub reads: &'a Mutex<ReadSet>,
}

/// The read set behind `reads`, whatever a panic elsewhere left it as.
pub fn lock(reads: &Mutex<ReadSet>) -> MutexGuard<'_, ReadSet> {
    reads.lock().unwrap_or_else(|e| e.into_inner())
}

impl StateView for RecordingView<'_> {
    fn version(&self) -> u64 {
        self.base.version()
    }

    fn get(&self, ns: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        lock(self.reads).read(self.base, ns, key)
    }

    fn next_key(
        &self,
        ns: &str,
        prefix: &[u8],
        after: Option<&[u8]>,
    ) -> Result<Option<Vec<u8>>, StorageError> {
        let found = self.base.next_key(ns, prefix, after)?;
        lock(self.reads).note_scan(Scan {
            ns: ns.to_owned(),
            prefix: prefix.to_vec(),
            after: after.map(<[u8]>::to_vec),
            found: found.clone(),
        });
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{SnapshotView, encode_stored_value, versioned_key};
    use crate::storage::{Backend, MemoryBackend, Table, WriteBatch};

    #[test]
    fn every_read_through_the_view_is_recorded_once() {
        let backend = MemoryBackend::new();
        let mut batch = WriteBatch::new();
        for key in [&b"a1"[..], b"a2", b"b1"] {
            batch.put(
                Table::State,
                versioned_key(&entry_key("c", key), 1),
                encode_stored_value(Some(b"v")),
            );
        }
        backend.commit(&batch).unwrap();
        let base = SnapshotView::new(backend.snapshot().unwrap(), 1);
        let reads = Mutex::new(ReadSet::new());
        let view = RecordingView {
            base: &base,
            reads: &reads,
        };
        assert_eq!(view.get("c", b"a1").unwrap(), Some(b"v".to_vec()));
        assert_eq!(view.get("c", b"a1").unwrap(), Some(b"v".to_vec()));
        assert_eq!(view.get("c", b"zz").unwrap(), None);
        assert_eq!(
            view.next_key("c", b"a", None).unwrap(),
            Some(b"a1".to_vec())
        );
        assert_eq!(view.next_key("c", b"a", Some(b"a2")).unwrap(), None);
        let mut reads = reads.into_inner().unwrap();
        reads.note("", b"c", || Some(b"record".to_vec()));
        reads.note_code(CodeHash::of(b"x"));
        reads.note_code(CodeHash::of(b"x"));
        assert_eq!(reads.point_reads(), 3);
        assert_eq!(reads.recorded("c", b"zz"), Some(None));
        assert_eq!(reads.recorded("", b"c"), Some(Some(&b"record"[..])));
        assert_eq!(reads.recorded("c", b"b1"), None);
        assert_eq!(reads.scans().len(), 2);
        assert_eq!(reads.scans()[1].after.as_deref(), Some(&b"a2"[..]));
        assert_eq!(reads.scans()[1].found, None);
        assert_eq!(reads.code(), [CodeHash::of(b"x")]);
    }
}
