//! The state one transaction of a parallel batch reads: the batch's multi-version map
//! below its index over the state before the batch. It records where each read came
//! from and what each `storage_next` step found (its read set, `read_set.rs`), checks a
//! read set again for validation, and stops the run at an estimate, naming the
//! transaction it waits for.

use std::sync::{Arc, Mutex};

use super::mv_map::{Found, MvMap, Origin};
use super::read_set::{Reads, Step};
use crate::state::{StateView, entry_key, prefix_key};
use crate::storage::StorageError;

/// Why a read could not be answered: an estimate of transaction `txn`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Blocked(pub usize);

/// The view of transaction `txn` of a batch.
pub(crate) struct TxView {
    pub mv: Arc<MvMap>,
    pub base: Arc<dyn StateView>,
    pub txn: usize,
    /// The version just before the transaction's own.
    pub version: u64,
    /// Whether to record the reads (the optimistic executor validates them).
    pub track: bool,
    pub reads: Mutex<Reads>,
}

impl TxView {
    fn reads(&self) -> std::sync::MutexGuard<'_, Reads> {
        self.reads.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stops the run: the contract cannot catch a host failure, and the executor, seeing
    /// `blocked`, takes it for what it is.
    fn stop(&self, txn: usize) -> StorageError {
        self.reads().blocked = Some(txn);
        StorageError::Backend(format!(
            "a speculative read met an estimate of transaction {txn} of the batch"
        ))
    }

    /// The state this transaction sees, for walks and validation.
    pub(crate) fn at(&self) -> At<'_> {
        At {
            mv: &self.mv,
            base: &*self.base,
            txn: self.txn,
        }
    }
}

/// The state at transaction `txn` of a batch: the map below it over the base. What a
/// walk steps through and what validation reads again; borrowed, so a validation
/// touches no shared reference count.
pub(crate) struct At<'a> {
    pub mv: &'a MvMap,
    pub base: &'a dyn StateView,
    pub txn: usize,
}

impl At<'_> {
    /// The first key of `ns` with `prefix` after `after` that the transaction sees.
    ///
    /// # Errors
    /// The base's failures; `Ok(Err(_))` when an estimate decides the answer.
    pub(crate) fn merged_next(
        &self,
        ns: &str,
        prefix: &[u8],
        after: Option<&[u8]>,
    ) -> Result<Result<Option<Vec<u8>>, Blocked>, StorageError> {
        let start = prefix_key(ns, prefix);
        let mut cursor = after.map(<[u8]>::to_vec);
        loop {
            let from_base = self.base.next_key(ns, prefix, cursor.as_deref())?;
            let cursor_entry = cursor.as_deref().map(|c| entry_key(ns, c));
            let from_mv = match self
                .mv
                .next_written(&start, cursor_entry.as_deref(), self.txn)
            {
                Some(entry) => Some(crate::state::decode_entry_key(&entry)?.1),
                None => None,
            };
            let candidate = match (&from_base, from_mv) {
                (Some(a), Some(b)) => a.clone().min(b),
                (Some(a), None) => a.clone(),
                (None, Some(b)) => b,
                (None, None) => return Ok(Ok(None)),
            };
            match self.mv.read(&entry_key(ns, &candidate), self.txn) {
                Found::Estimate { txn } => return Ok(Err(Blocked(txn))),
                Found::Written { value: Some(_), .. } => return Ok(Ok(Some(candidate))),
                Found::Base if from_base.as_ref() == Some(&candidate) => {
                    return Ok(Ok(Some(candidate)));
                }
                Found::Written { value: None, .. } | Found::Base => cursor = Some(candidate),
            }
        }
    }

    /// Whether every read recorded in `reads` would read the same now. A read is
    /// still good when it comes from the same write, or from another with the same
    /// value: Block-STM compares versions, which re-runs a chain of readers after every
    /// re-run of a writer that wrote the same bytes again; a run is a function of the
    /// values it read, so equal values are enough.
    ///
    /// # Errors
    /// The base's failures.
    pub(crate) fn still_valid(&self, reads: &Reads) -> Result<bool, StorageError> {
        for (entry, origin, value) in &reads.points {
            let found = self.mv.read(entry, self.txn);
            if found.origin() == Some(*origin) {
                continue;
            }
            let now = match found {
                Found::Estimate { .. } => return Ok(false),
                Found::Written { value, .. } => value,
                Found::Base => {
                    let (ns, key) = crate::state::decode_entry_key(entry)?;
                    self.base.get(&ns, &key)?
                }
            };
            if now != *value {
                return Ok(false);
            }
        }
        for s in &reads.steps {
            match self.merged_next(&s.ns, &s.prefix, s.after.as_deref())? {
                Ok(found) if found == s.found => {}
                _ => return Ok(false),
            }
        }
        Ok(true)
    }
}

impl StateView for TxView {
    fn version(&self) -> u64 {
        self.version
    }

    fn get(&self, ns: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        let entry = entry_key(ns, key);
        let (value, origin) = match self.mv.read(&entry, self.txn) {
            Found::Estimate { txn } => return Err(self.stop(txn)),
            Found::Written {
                txn,
                incarnation,
                value,
            } => (value, Origin::Txn { txn, incarnation }),
            Found::Base => (self.base.get(ns, key)?, Origin::Base),
        };
        if self.track {
            self.reads().points.push((entry, origin, value.clone()));
        }
        Ok(value)
    }

    fn next_key(
        &self,
        ns: &str,
        prefix: &[u8],
        after: Option<&[u8]>,
    ) -> Result<Option<Vec<u8>>, StorageError> {
        match self.at().merged_next(ns, prefix, after)? {
            Err(Blocked(txn)) => Err(self.stop(txn)),
            Ok(found) => {
                if self.track {
                    self.reads().steps.push(Step {
                        ns: ns.to_owned(),
                        prefix: prefix.to_vec(),
                        after: after.map(<[u8]>::to_vec),
                        found: found.clone(),
                    });
                }
                Ok(found)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! One conflict test per way a run reads state: a point read (`storage_get`, and the
    //! registry reads of `call` and deploy, which are point reads of the registry) and a
    //! `storage_next` step — each validated, invalidated by an earlier transaction's
    //! write, and read again as a re-run would.
    use super::*;
    use crate::state::{REGISTRY_NS, SnapshotView, encode_stored_value, versioned_key};
    use crate::storage::{Backend, MemoryBackend, Table, WriteBatch};

    /// A base state with `c` keys `a1` and `a3`, at version 1.
    fn base() -> Arc<dyn StateView> {
        let backend = MemoryBackend::new();
        let mut batch = WriteBatch::new();
        for key in [&b"a1"[..], b"a3"] {
            batch.put(
                Table::State,
                versioned_key(&entry_key("c", key), 1),
                encode_stored_value(Some(b"v")),
            );
        }
        backend.commit(&batch).unwrap();
        Arc::new(SnapshotView::new(backend.snapshot().unwrap(), 1))
    }

    fn view(mv: &Arc<MvMap>, base: &Arc<dyn StateView>, txn: usize) -> TxView {
        TxView {
            mv: Arc::clone(mv),
            base: Arc::clone(base),
            txn,
            version: 1,
            track: true,
            reads: Mutex::new(Reads::default()),
        }
    }

    fn reads(v: TxView) -> Reads {
        v.reads.into_inner().unwrap()
    }

    #[test]
    fn a_point_read_is_invalidated_by_an_earlier_write_of_another_value() {
        let (mv, base) = (Arc::new(MvMap::default()), base());
        for ns in ["c", REGISTRY_NS] {
            let v = view(&mv, &base, 1);
            let before = v.get(ns, b"a1").unwrap();
            let read = reads(v);
            assert!(view(&mv, &base, 1).at().still_valid(&read).unwrap());
            // Transaction 0 writes the value the read saw: still good.
            mv.record(0, 0, vec![(entry_key(ns, b"a1"), before.clone())], &[]);
            assert!(view(&mv, &base, 1).at().still_valid(&read).unwrap());
            // Another value: invalid, and the re-run reads the new one.
            let write = vec![(entry_key(ns, b"a1"), Some(b"new".to_vec()))];
            mv.record(0, 1, write, &[entry_key(ns, b"a1")]);
            assert!(!view(&mv, &base, 1).at().still_valid(&read).unwrap());
            assert_eq!(
                view(&mv, &base, 1).get(ns, b"a1").unwrap(),
                Some(b"new".to_vec())
            );
            // A later transaction's write is not seen.
            assert_eq!(view(&mv, &base, 0).get(ns, b"a1").unwrap(), before);
        }
    }

    #[test]
    fn a_read_of_an_estimate_stops_the_run_and_fails_validation() {
        let (mv, base) = (Arc::new(MvMap::default()), base());
        let v = view(&mv, &base, 2);
        v.get("c", b"a1").unwrap();
        let read = reads(v);
        mv.record(1, 0, vec![(entry_key("c", b"a1"), None)], &[]);
        mv.mark_estimates(1, &[entry_key("c", b"a1")]);
        assert!(!view(&mv, &base, 2).at().still_valid(&read).unwrap());
        let v = view(&mv, &base, 2);
        assert!(v.get("c", b"a1").is_err());
        assert_eq!(reads(v).blocked, Some(1));
        let v = view(&mv, &base, 2);
        assert!(v.next_key("c", b"a", None).is_err(), "a walk meets it too");
        assert_eq!(reads(v).blocked, Some(1));
    }

    #[test]
    fn a_walk_is_invalidated_by_keys_inserted_and_removed_in_its_range() {
        let (mv, base) = (Arc::new(MvMap::default()), base());
        let walk = |mv: &Arc<MvMap>| {
            let v = view(mv, &base, 5);
            let mut keys = Vec::new();
            let mut after: Option<Vec<u8>> = None;
            while let Some(k) = v.next_key("c", b"a", after.as_deref()).unwrap() {
                after = Some(k.clone());
                keys.push(k);
            }
            (keys, reads(v))
        };
        let (keys, read) = walk(&mv);
        assert_eq!(keys, [b"a1".to_vec(), b"a3".to_vec()]);
        assert!(view(&mv, &base, 5).at().still_valid(&read).unwrap());
        // Outside the prefix: no phantom.
        mv.record(
            0,
            0,
            vec![(entry_key("c", b"b1"), Some(b"x".to_vec()))],
            &[],
        );
        assert!(view(&mv, &base, 5).at().still_valid(&read).unwrap());
        // Inserted between two keys the walk found: a phantom.
        mv.record(
            1,
            0,
            vec![(entry_key("c", b"a2"), Some(b"x".to_vec()))],
            &[],
        );
        assert!(!view(&mv, &base, 5).at().still_valid(&read).unwrap());
        let (keys, read) = walk(&mv);
        assert_eq!(keys, [b"a1".to_vec(), b"a2".to_vec(), b"a3".to_vec()]);
        // Removed: the walk's answer changes again.
        mv.record(2, 0, vec![(entry_key("c", b"a3"), None)], &[]);
        assert!(!view(&mv, &base, 5).at().still_valid(&read).unwrap());
        assert_eq!(walk(&mv).0, [b"a1".to_vec(), b"a2".to_vec()]);
        // Past the end of what it found, the range is still watched: a key after a3.
        let (_, read) = walk(&mv);
        mv.record(
            3,
            0,
            vec![(entry_key("c", b"a9"), Some(b"x".to_vec()))],
            &[],
        );
        assert!(!view(&mv, &base, 5).at().still_valid(&read).unwrap());
    }
}
