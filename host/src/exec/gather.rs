//! Concurrent submitters as one batch (interface §5): a submitter that finds the writer
//! busy leaves its prepared transaction here and waits for the writer lock; whoever
//! takes the lock next runs everything left here as one batch — in parallel, committed
//! in order, one group commit — and answers each waiter before it lets the lock go. A
//! waiter that then gets the lock finds its answer and returns at once.
//!
//! As flat combining: the lock holder does the others' work, so a crowd of submitters
//! becomes a few large batches instead of a queue of one-transaction runs.

use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::SubmitError;
use crate::exec::{Prepared, Staged};

/// One waiter's answer, once the batch holding its transaction has run.
#[derive(Default)]
pub(crate) struct Slot(Mutex<Option<Result<Staged, SubmitError>>>);

impl Slot {
    fn lock(&self) -> MutexGuard<'_, Option<Result<Staged, SubmitError>>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The answer, if the batch holding the transaction has run.
    pub(crate) fn take(&self) -> Option<Result<Staged, SubmitError>> {
        self.lock().take()
    }

    pub(crate) fn set(&self, answer: Result<Staged, SubmitError>) {
        *self.lock() = Some(answer);
    }
}

/// Transactions waiting for the writer, in arrival order.
#[derive(Default)]
pub(crate) struct Gathered(Mutex<Vec<(Prepared<'static>, Arc<Slot>)>>);

impl Gathered {
    fn lock(&self) -> MutexGuard<'_, Vec<(Prepared<'static>, Arc<Slot>)>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Leaves `p` for the next lock holder; its answer will be in the slot.
    pub(crate) fn leave(&self, p: Prepared<'static>) -> Arc<Slot> {
        let slot = Arc::new(Slot::default());
        self.lock().push((p, Arc::clone(&slot)));
        slot
    }

    /// Everything left so far, for the lock holder to run.
    pub(crate) fn take_all(&self) -> (Vec<Prepared<'static>>, Vec<Arc<Slot>>) {
        std::mem::take(&mut *self.lock()).into_iter().unzip()
    }
}

impl Prepared<'_> {
    /// The same, owning its transaction: to be run by another thread.
    pub(crate) fn into_owned(self) -> Prepared<'static> {
        Prepared {
            tx: std::borrow::Cow::Owned(self.tx.into_owned()),
            content: self.content,
            content_hash: self.content_hash,
            code_hash: self.code_hash,
            seen: self.seen,
        }
    }
}
