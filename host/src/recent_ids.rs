//! The transaction ids the writer staged lately, so that the exactly-once check can run
//! before the writer lock.
//!
//! A submitter looks its id up in a committer snapshot before it queues for the lock
//! (a retry is answered there, without the lock). That snapshot holds every batch staged
//! up to some sequence number `seen`; under the lock, only ids staged after `seen` can
//! be recorded since, and [`RecentIds`] answers for those instead of a second lookup in
//! the `Txs` table (a cache miss per tree level in memory, a B-tree search in redb).
//! When it cannot answer — `seen` is older than what it holds, or the writer reloaded
//! its head (after a failed commit, or a run that failed before staging) — the writer
//! looks the id up as before.
//!
//! The answer scans the ids staged after `seen`, newest first: one or two while single
//! transactions alternate, a list's length while lists do. A scan of contiguous 24-byte
//! entries costs less than hashing into a map at every note.

use std::collections::VecDeque;

use uuid::Uuid;

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
