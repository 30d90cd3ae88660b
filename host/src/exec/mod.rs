//! Executing transactions: a run of each (`vm/`) against the head, and its complete
//! output staged as one atomic batch — state changes, state root, receipt, records,
//! events index rows — with the group committer (`storage/group_commit.rs`).
//!
//! [`Executor`] is the seam: it takes a batch of [`Prepared`] transactions, in order,
//! and gives one [`Staged`] result each, as if they had run one at a time in that order.
//! [`Sequential`] does exactly that; [`Parallel`] (optimistic or pessimistic, in
//! `parallel/`) runs the batch on worker threads and is held to the same results.

mod gather;
mod parallel;
mod sequential;

use std::borrow::Cow;
use std::sync::Arc;

pub(crate) use gather::Gathered;
pub(crate) use parallel::{Mode, Parallel, simulate};
pub use parallel::{ParallelStats, Simulated};
pub(crate) use sequential::{Sequential, run_and_stage};

use crate::error::{HostError, SubmitError};
use crate::ledger::exactly_once::{Lookup, lookup_many, must_look_again};
use crate::ledger::head::{Head, Published};
use crate::ledger::receipt::Receipt;
use crate::ledger::records::META_VERSION;
use crate::ledger::transaction::Transaction;
use crate::storage::Table;
use crate::storage::group_commit::Committer;
use crate::types::CodeHash;
use crate::vm::Runtime;
use crate::vm::prewarm::hints::CodeHints;
use crate::vm::store::Spent;

/// A transaction checked, hashed, not found recorded, and with its code prepared: ready
/// to run.
pub(crate) struct Prepared<'a> {
    pub tx: Cow<'a, Transaction>,
    /// The content's encoding, as the history stores it; hashed once, encoded once.
    pub content: Vec<u8>,
    pub content_hash: [u8; 32],
    /// The deployed code's hash, when the transaction is a deploy and its code was
    /// prepared ahead.
    pub code_hash: Option<CodeHash>,
    /// The last batch staged before the lookup that did not find the id, if one was
    /// made.
    pub seen: Option<u64>,
}

/// A receipt and the batch that must be durable before it is handed out.
pub(crate) struct Staged {
    pub receipt: Receipt,
    pub wait_for: Option<u64>,
    /// The run's store, to drop once the writer lock is released.
    pub spent: Option<Spent>,
}

/// What an executor works with besides the head.
pub(crate) struct Env<'a> {
    pub runtime: &'a Arc<Runtime>,
    pub committer: &'a Committer,
    /// Noted with the contracts each run looked up, for instantiating ahead.
    pub hints: &'a CodeHints,
    /// Where the latest version is published for readers.
    pub published: &'a Published,
    pub print_logs: bool,
    /// Whether the ids staged lately answer the second exactly-once lookup.
    pub recent_ids: bool,
    /// Whether a parallel batch on a shared store remembers the entries it read of its
    /// base (`SnapshotView::remembering`).
    pub remember_base: bool,
}

/// Runs a batch of transactions against the head, in order, staging each.
pub(crate) trait Executor {
    /// One result per transaction of `batch`, in order, each as if the transactions
    /// before it had run one at a time: a receipt staged for commit, or why none was.
    fn execute(
        &self,
        env: &Env<'_>,
        head: &mut Head,
        batch: Vec<Prepared<'_>>,
    ) -> Vec<Result<Staged, SubmitError>>;
}

/// Looks up again, in one read of the store, the ids of `batch` that may have been
/// recorded since their lookup (see `must_look_again`), under the writer lock: one
/// answer each where that finds it recorded (its stored receipt, or a conflict); the
/// others learn the newer view they were not in, and from then on the head's recent ids
/// answer for them. Without it, a head reloaded from a shared store (which forgets its
/// recent ids) would look the batch's ids up one round trip at a time.
///
/// # Errors
/// When the store cannot be read.
pub(crate) fn look_again(
    env: &Env<'_>,
    head: &mut Head,
    batch: &mut [Prepared<'_>],
) -> Result<Vec<Option<Result<Staged, SubmitError>>>, HostError> {
    let recent = env.recent_ids.then_some(&head.recent);
    let again: Vec<usize> = (0..batch.len())
        .filter(|&i| must_look_again(recent, &batch[i].tx.id, batch[i].seen))
        .collect();
    let mut answers: Vec<Option<Result<Staged, SubmitError>>> =
        (0..batch.len()).map(|_| None).collect();
    if again.is_empty() {
        return Ok(answers);
    }
    let keys: Vec<_> = again
        .iter()
        .map(|&i| (batch[i].tx.id, batch[i].content_hash))
        .collect();
    let mut seen = None;
    for (i, found) in again.into_iter().zip(lookup_many(env.committer, &keys)?) {
        answers[i] = match found {
            Ok(Lookup::New { seen: s }) => {
                batch[i].seen = Some(s);
                seen = Some(s);
                None
            }
            Ok(Lookup::Recorded { receipt, wait_for }) => Some(Ok(Staged {
                receipt,
                wait_for,
                spent: None,
            })),
            Err(e) => Some(Err(e)),
        };
    }
    if let Some(seen) = seen.filter(|_| env.recent_ids) {
        head.recent.hold_from(seen);
    }
    Ok(answers)
}

impl Env<'_> {
    /// Reopens storage if a commit failed, and reloads a stale head from it — or, on a
    /// store other hosts commit to, a head that another host's commit moved past.
    ///
    /// # Errors
    /// When storage cannot be reopened or read.
    pub fn recover_if_needed(&self, head: &mut Head) -> Result<(), HostError> {
        // First: waiting for the turn lets the last holder's commits land.
        self.committer.take_turn();
        if self.committer.is_poisoned()? {
            self.committer.recover()?;
            head.stale = true;
        }
        if !head.stale && self.committer.shared() {
            let ours = head.version.to_le_bytes();
            if let Some(stored) = self.committer.stored_if_idle(Table::Meta, META_VERSION)? {
                // Its caches (entries, contracts, recent ids) go with it.
                head.stale = stored.as_deref() != Some(&ours[..]);
                if head.stale {
                    self.committer.others_committed();
                }
            }
        }
        if head.stale {
            *head = Head::read(&*self.committer.snapshot()?)?;
            self.published.set(head.tip());
        }
        Ok(())
    }
}
