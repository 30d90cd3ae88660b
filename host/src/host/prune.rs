//! Retention: dropping state versions older than a horizon without changing what any
//! retained version reads. Receipts, the log, the events index and the exactly-once
//! index are never pruned; queries before the horizon are refused with a clear error
//! (an events listing is not: it reads no state).

use std::ops::Bound;

use crate::error::{InputError, QueryError};
use crate::host::Host;
use crate::ledger::records::META_HORIZON;
use crate::state::{decode_state_key, decode_stored_value};
use crate::storage::{Entry, Snapshot, StorageError, Table, WriteBatch};

/// What a prune did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PruneReport {
    /// The oldest version still readable.
    pub horizon: u64,
    /// State rows removed.
    pub rows_removed: u64,
    /// The latest version, readable as ever.
    pub latest: u64,
}

/// The state rows that a horizon makes unreachable, in key order: for each key, every
/// row at or below `horizon` except the newest, and that one too when it is a removal.
pub(crate) fn unreachable_rows(rows: &[Entry], horizon: u64) -> Result<Vec<Vec<u8>>, StorageError> {
    let mut out = Vec::new();
    // Rows of one key are adjacent, versions ascending: hold the newest row at or below
    // the horizon seen so far, and let it go when a newer one at or below it comes.
    let mut held: Option<(Vec<u8>, Vec<u8>, bool)> = None; // (entry, stored key, is removal)
    for (key, value) in rows {
        let (ns, user_key, version) = decode_state_key(key)?;
        let entry = crate::state::entry_key(&ns, &user_key);
        // A new key: the previous key's held row stays, unless it is a removal.
        if held.as_ref().is_some_and(|(e, _, _)| *e != entry)
            && let Some((_, k, removal)) = held.take()
            && removal
        {
            out.push(k);
        }
        if version > horizon {
            continue;
        }
        let removal = decode_stored_value(value)?.is_none();
        if let Some((_, older, _)) = held.replace((entry, key.clone(), removal)) {
            out.push(older);
        }
    }
    if let Some((_, k, true)) = held {
        out.push(k);
    }
    out.sort();
    Ok(out)
}

pub(crate) fn all_rows(snap: &dyn Snapshot, table: Table) -> Result<Vec<Entry>, StorageError> {
    let mut out = Vec::new();
    snap.range(
        table,
        Bound::Unbounded,
        Bound::Unbounded,
        false,
        &mut |k, v| {
            out.push((k.to_vec(), v.to_vec()));
            true
        },
    )?;
    Ok(out)
}

impl Host {
    /// Drops every state version older than `horizon`: afterwards versions `horizon` to
    /// latest read exactly as before, and older ones are refused.
    ///
    /// # Errors
    /// [`InputError::UnknownVersion`] when `horizon` is past the latest version; storage
    /// failures.
    pub fn prune(&self, horizon: u64) -> Result<PruneReport, QueryError> {
        if self.committer.shared() {
            // The freshness check other hosts make compares the head's version, which a
            // prune does not move: they would go on reading versions it removed.
            return Err(InputError::PruneShared(self.info()?.store).into());
        }
        let staged = {
            let mut head = self.writer()?;
            if horizon > head.version {
                return Err(InputError::UnknownVersion {
                    asked: horizon,
                    oldest: head.horizon,
                    latest: head.version,
                }
                .into());
            }
            let current = head.horizon;
            if horizon <= current {
                return Ok(PruneReport {
                    horizon: current,
                    rows_removed: 0,
                    latest: head.version,
                });
            }
            let snap = self.snapshot()?;
            let doomed = unreachable_rows(&all_rows(&*snap, Table::State)?, horizon)?;
            let mut batch = WriteBatch::new();
            batch.require(head.precondition());
            for key in &doomed {
                batch.delete(Table::State, key.clone());
            }
            batch.put(
                Table::Meta,
                META_HORIZON.to_vec(),
                horizon.to_le_bytes().to_vec(),
            );
            let seq = self.stage(batch)?;
            head.horizon = horizon;
            let mut tip = self.published.get();
            tip.horizon = horizon;
            self.published.set(tip);
            let removed = u64::try_from(doomed.len()).unwrap_or(u64::MAX);
            (seq, removed, head.version)
        };
        self.wait_durable(staged.0)?;
        Ok(PruneReport {
            horizon,
            rows_removed: staged.1,
            latest: staged.2,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{encode_stored_value, entry_key, versioned_key};

    fn row(key: &[u8], version: u64, value: Option<&[u8]>) -> Entry {
        (
            versioned_key(&entry_key("c", key), version),
            encode_stored_value(value),
        )
    }

    #[test]
    fn keeps_the_newest_row_at_the_horizon_and_everything_after() {
        let rows = vec![
            row(b"a", 1, Some(b"1")),
            row(b"a", 3, Some(b"3")),
            row(b"a", 6, Some(b"6")),
            row(b"b", 2, Some(b"2")),
            row(b"b", 4, None),
            row(b"c", 5, Some(b"5")),
            row(b"d", 1, Some(b"1")),
        ];
        let doomed = unreachable_rows(&rows, 4).unwrap();
        let mut want = vec![rows[0].0.clone(), rows[3].0.clone(), rows[4].0.clone()];
        want.sort();
        assert_eq!(doomed, want);
        assert!(unreachable_rows(&rows, 0).unwrap().is_empty());
    }
}
