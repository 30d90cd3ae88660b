//! Turns to execute: at most [`CONCURRENT_EXECUTIONS_MAX`] runs hold instances at once,
//! so that together they never exhaust the instance pool (which would be a host failure
//! that depends on timing). A run holds an [`ExecutionPermit`] until its store, with its
//! instances, is dropped.

use std::sync::{Arc, Condvar, Mutex};

use crate::limits::CONCURRENT_EXECUTIONS_MAX;

/// Runs executing and threads waiting for one to finish.
#[derive(Debug, Default)]
pub(crate) struct Turns {
    state: Mutex<Counts>,
    finished: Condvar,
}

#[derive(Debug, Default)]
struct Counts {
    running: usize,
    waiting: usize,
}

/// A turn to execute; the next waiting execution goes when it is dropped.
#[derive(Debug)]
pub(crate) struct ExecutionPermit(Arc<Turns>);

impl Drop for ExecutionPermit {
    fn drop(&mut self) {
        let turns = &self.0;
        let mut counts = turns.state.lock().unwrap_or_else(|e| e.into_inner());
        counts.running -= 1;
        // Only when someone waits: a notify is a futex syscall even with no waiter.
        if counts.waiting > 0 {
            turns.finished.notify_one();
        }
    }
}

impl Turns {
    /// Waits for a turn to execute.
    pub fn wait(self: &Arc<Self>) -> ExecutionPermit {
        let mut counts = self.state.lock().unwrap_or_else(|e| e.into_inner());
        while counts.running >= CONCURRENT_EXECUTIONS_MAX {
            counts.waiting += 1;
            counts = self
                .finished
                .wait(counts)
                .unwrap_or_else(|e| e.into_inner());
            counts.waiting -= 1;
        }
        counts.running += 1;
        ExecutionPermit(Arc::clone(self))
    }

    /// A turn for a transaction that is about to wait for the writer lock, if one is
    /// free now, nobody waits for one, and another stays free. Those who hold such a
    /// turn wait for the writer lock, so they never take the last free turn nor one a
    /// waiter (perhaps the lock's holder) was woken for: the holder of the writer lock
    /// never waits for them.
    pub fn try_early(self: &Arc<Self>) -> Option<ExecutionPermit> {
        let mut counts = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if counts.waiting > 0 || counts.running + 1 >= CONCURRENT_EXECUTIONS_MAX {
            return None;
        }
        counts.running += 1;
        Some(ExecutionPermit(Arc::clone(self)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn early_turns_leave_a_turn_free_and_never_overtake_a_waiter() {
        let turns = Arc::new(Turns::default());
        // A thread waiting for a turn (perhaps the writer lock's holder) goes first.
        turns.state.lock().unwrap().waiting = 1;
        assert!(turns.try_early().is_none());
        turns.state.lock().unwrap().waiting = 0;
        let early: Vec<_> = std::iter::from_fn(|| turns.try_early()).collect();
        assert_eq!(early.len(), CONCURRENT_EXECUTIONS_MAX - 1);
        // The last turn stays for the writer lock's holder, who does not take it early.
        drop(turns.wait());
        drop(early);
        assert!(turns.try_early().is_some());
    }
}
