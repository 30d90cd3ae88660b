//! Exactly once, in one place: how a transaction id is looked up — its stored receipt,
//! a conflict, or new — before the writer lock and again under it.
//!
//! The rule (interface §3): an id recorded with the same content answers with its
//! stored receipt marked duplicate; with other content, a conflict; unrecorded, the
//! transaction runs. A receipt found in a batch that is staged but not durable yet is
//! handed out only once that batch is, and fails with it (`group_commit.rs`'s views).
//!
//! The fast path: a submitter looks its id up in a committer snapshot before it queues
//! for the lock (a retry is answered there, without the lock). That snapshot holds every
//! batch staged up to some sequence number `seen`; under the lock, only ids staged after
//! `seen` can be recorded since, and [`RecentIds`] answers for those instead of a second
//! lookup in the `Txs` table (a cache miss per tree level in memory, a B-tree search in
//! redb). When it cannot answer — `seen` is older than what it holds, the writer
//! reloaded its head (after a failed commit, or a run that failed before staging), or
//! the `recent_ids` switch is off — the writer looks the id up again.
//!
//! The answer scans the ids staged after `seen`, newest first: one or two while single
//! transactions alternate, a list's length while lists do. A scan of contiguous 24-byte
//! entries costs less than hashing into a map at every note.

use std::collections::VecDeque;

use uuid::Uuid;

use crate::error::SubmitError;
use crate::ledger::receipt::Receipt;
use crate::ledger::records::TxRecord;
use crate::storage::group_commit::{Committer, View};
use crate::storage::{Snapshot, StorageError, Table};

/// What a lookup of a transaction id found.
pub(crate) enum Lookup {
    /// Its stored receipt (marked duplicate), to hand out once batch `wait_for` (if
    /// any) is durable.
    Recorded {
        receipt: Receipt,
        wait_for: Option<u64>,
    },
    /// Nothing, in a view that held every batch up to `seen`.
    New { seen: u64 },
}

/// Looks `id` up in `view`, a committer view of its `Txs` key.
///
/// # Errors
/// [`SubmitError::Conflict`] when the id was recorded with other content; storage
/// failures.
pub(crate) fn lookup(
    view: View,
    id: &Uuid,
    content_hash: &[u8; 32],
) -> Result<Lookup, SubmitError> {
    let recorded = recorded(&*view.snapshot, id, content_hash)?;
    // Dropped before the writer commits: a memory backend then updates in place.
    drop(view.snapshot);
    Ok(match recorded {
        Some(receipt) => Lookup::Recorded {
            receipt,
            wait_for: view.pending,
        },
        None => Lookup::New { seen: view.seen },
    })
}

/// Looks each of `txs` (an id and its content hash) up in one committer view, with one
/// read of the store for all of them. One answer each, in order, as [`lookup`] gives.
///
/// # Errors
/// When the committer gives no view (it failed) or the store cannot be read; a
/// conflict or an undecodable record is that transaction's own answer.
pub(crate) fn lookup_many(
    committer: &Committer,
    txs: &[(Uuid, [u8; 32])],
) -> Result<Vec<Result<Lookup, SubmitError>>, StorageError> {
    let keys: Vec<&[u8]> = txs.iter().map(|(id, _)| &id.as_bytes()[..]).collect();
    let views = committer.views_of(Table::Txs, &keys)?;
    let found = views.snapshot.get_many(Table::Txs, &keys)?;
    drop(views.snapshot);
    Ok(txs
        .iter()
        .zip(found)
        .zip(views.pending)
        .map(|(((id, hash), bytes), pending)| {
            Ok(match bytes.map(|b| receipt_of(&b, id, hash)).transpose()? {
                Some(receipt) => Lookup::Recorded {
                    receipt,
                    wait_for: pending,
                },
                None => Lookup::New { seen: views.seen },
            })
        })
        .collect())
}

/// Whether the writer must look `id` up again under the lock, after a lookup that saw
/// every batch up to `seen` (`None`: no lookup was made).
pub(crate) fn must_look_again(recent: Option<&RecentIds>, id: &Uuid, seen: Option<u64>) -> bool {
    match (recent, seen) {
        (Some(recent), Some(seen)) => recent.may_hold_since(id, seen),
        _ => true,
    }
}

/// The stored receipt for `id` marked duplicate, a conflict, or `None` if unrecorded.
fn recorded(
    snapshot: &dyn Snapshot,
    id: &Uuid,
    content_hash: &[u8; 32],
) -> Result<Option<Receipt>, SubmitError> {
    match snapshot.get(Table::Txs, id.as_bytes())? {
        Some(bytes) => receipt_of(&bytes, id, content_hash).map(Some),
        None => Ok(None),
    }
}

/// The receipt in `bytes`, the stored record of `id`, marked duplicate; a conflict if
/// it was recorded with other content.
fn receipt_of(bytes: &[u8], id: &Uuid, content_hash: &[u8; 32]) -> Result<Receipt, SubmitError> {
    let record = TxRecord::decode(bytes).map_err(StorageError::from)?;
    if record.content_hash != *content_hash {
        return Err(SubmitError::Conflict {
            id: *id,
            version: record.version,
        });
    }
    let mut receipt = record.receipt;
    receipt.duplicate = true;
    Ok(receipt)
}

/// Ids a [`RecentIds`] holds at most, in transactions (24 bytes each): more than are
/// staged while one submitter waits for the writer lock, in lists of hundreds, and few
/// enough that scanning all of them costs no more than one lookup in storage.
pub const RECENT_IDS_MAX: usize = 1024;

/// Ids staged after committer sequence number `floor`, each with its own number, oldest
/// first.
#[derive(Debug, Default)]
pub(crate) struct RecentIds {
    /// Every id staged in a batch numbered above this is held; `None` until the first.
    floor: Option<u64>,
    order: VecDeque<(u64, Uuid)>,
}

impl RecentIds {
    /// Notes that `id` was staged in batch `seq` (numbers only grow).
    pub fn note(&mut self, seq: u64, id: Uuid) {
        // Batches staged before the first note hold no id this one must answer for: a
        // snapshot at `seq - 1` or later holds them all.
        self.floor.get_or_insert(seq.saturating_sub(1));
        if self.order.len() == RECENT_IDS_MAX
            && let Some((oldest, _)) = self.order.pop_front()
        {
            self.floor = Some(oldest);
        }
        self.order.push_back((seq, id));
    }

    /// Takes it that every id staged after batch `seen` is noted here from now on, if
    /// none is yet: the writer, holding its lock, has just looked its batch's ids up in
    /// a view that held every batch up to `seen`, and only it stages.
    pub fn hold_from(&mut self, seen: u64) {
        self.floor.get_or_insert(seen);
    }

    /// False only when `id` was certainly not staged after batch `seen`; true when it
    /// was, or when this cannot tell (then the caller looks it up in storage).
    pub fn may_hold_since(&self, id: &Uuid, seen: u64) -> bool {
        match self.floor {
            Some(floor) if seen >= floor => self
                .order
                .iter()
                .rev()
                .take_while(|(seq, _)| *seq > seen)
                .any(|(_, staged)| staged == id),
            _ => true,
        }
    }

    /// Ids held now (at most [`RECENT_IDS_MAX`]).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.order.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    #[test]
    fn an_empty_set_cannot_tell() {
        assert!(RecentIds::default().may_hold_since(&id(1), 100));
    }

    #[test]
    fn answers_for_ids_staged_after_the_snapshot() {
        let mut r = RecentIds::default();
        r.note(10, id(1));
        r.note(11, id(2));
        // A snapshot from before the first note may lack batches staged before it.
        assert!(r.may_hold_since(&id(3), 8));
        assert!(!r.may_hold_since(&id(3), 9));
        assert!(!r.may_hold_since(&id(3), 11));
        assert!(r.may_hold_since(&id(2), 9));
        assert!(r.may_hold_since(&id(1), 9));
        // Staged in a batch the snapshot held: not "since".
        assert!(!r.may_hold_since(&id(1), 10));
    }

    #[test]
    fn stays_bounded_and_says_so_past_its_window() {
        let mut r = RecentIds::default();
        let n = u64::try_from(RECENT_IDS_MAX).unwrap() + 100;
        for seq in 1..=n {
            r.note(seq, id(u128::from(seq)));
        }
        assert_eq!(r.len(), RECENT_IDS_MAX);
        // The first 100 ids were dropped: snapshots older than that cannot be answered.
        assert!(r.may_hold_since(&id(0), 99));
        assert!(!r.may_hold_since(&id(0), 100));
        assert!(!r.may_hold_since(&id(50), 100));
        assert!(r.may_hold_since(&id(u128::from(n)), 100));
    }
}
