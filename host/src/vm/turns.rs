//! Turns to execute: at most [`CONCURRENT_EXECUTIONS_MAX`] runs hold instances at once,
//! each at most [`INSTANCES_PER_TURN`] of them, except the one run that holds the large
//! turn, which may make up to [`INSTANCES_PER_TX_MAX`]. Together they never exhaust the
//! instance pool (which would be a host failure that depends on timing). A run holds an
//! [`ExecutionPermit`] until its store, with its instances, is dropped; the large turn,
//! once taken (through the run's [`TurnHandle`], before its frame past the ordinary
//! share), ends with the permit too.
//!
//! Why this cannot deadlock: a run waits for the large turn only while executing, and a
//! run executing waits for nothing else (not the writer lock: runs made early wait for
//! it before they execute, holding an ordinary turn, and never take the last one free),
//! so the large turn's holder always finishes. Counting instances per turn rather than
//! reserving the largest share for every run is what lets a batch keep many workers busy:
//! `INSTANCES_PER_TX_MAX` for each would allow only three runs at once.
//!
//! [`INSTANCES_PER_TURN`]: crate::limits::INSTANCES_PER_TURN
//! [`INSTANCES_PER_TX_MAX`]: crate::limits::INSTANCES_PER_TX_MAX

use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use crate::limits::CONCURRENT_EXECUTIONS_MAX;

/// Runs executing, the large turn's holder, and threads waiting for either.
#[derive(Debug, Default)]
pub(crate) struct Turns {
    state: Mutex<Counts>,
    /// A turn ended.
    finished: Condvar,
    /// The large turn ended.
    large_free: Condvar,
}

#[derive(Debug, Default)]
struct Counts {
    running: usize,
    waiting: usize,
    /// The permit holding the large turn.
    large: Option<u64>,
    waiting_large: usize,
    /// The next permit's number.
    next: u64,
}

/// A turn to execute; the next waiting execution goes when it is dropped.
#[derive(Debug)]
pub(crate) struct ExecutionPermit(TurnHandle);

/// What a run's store keeps of its permit: enough to take the large turn, which the
/// permit then ends.
#[derive(Debug, Clone)]
pub(crate) struct TurnHandle {
    turns: Arc<Turns>,
    id: u64,
    /// This handle took the large turn already: no need to ask again.
    large: bool,
}

impl Drop for ExecutionPermit {
    fn drop(&mut self) {
        let TurnHandle { turns, id, .. } = &self.0;
        let mut counts = turns.lock();
        counts.running -= 1;
        // Only when someone waits: a notify is a futex syscall even with no waiter.
        if counts.waiting > 0 {
            turns.finished.notify_one();
        }
        if counts.large == Some(*id) {
            counts.large = None;
            if counts.waiting_large > 0 {
                turns.large_free.notify_one();
            }
        }
    }
}

impl ExecutionPermit {
    /// The handle a run's store keeps, to take the large turn with.
    pub fn handle(&self) -> TurnHandle {
        self.0.clone()
    }
}

impl TurnHandle {
    /// Waits for the large turn, unless its permit holds it already. Called before a
    /// run makes an instance past its [`INSTANCES_PER_TURN`].
    pub fn hold_large(&mut self) {
        if self.large {
            return;
        }
        let mut counts = self.turns.lock();
        while counts.large.is_some_and(|holder| holder != self.id) {
            counts.waiting_large += 1;
            counts = self
                .turns
                .large_free
                .wait(counts)
                .unwrap_or_else(|e| e.into_inner());
            counts.waiting_large -= 1;
        }
        counts.large = Some(self.id);
        self.large = true;
    }
}

impl Turns {
    fn lock(&self) -> MutexGuard<'_, Counts> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn permit(self: &Arc<Self>, counts: &mut Counts) -> ExecutionPermit {
        counts.running += 1;
        counts.next += 1;
        ExecutionPermit(TurnHandle {
            turns: Arc::clone(self),
            id: counts.next,
            large: false,
        })
    }

    /// Waits for a turn to execute.
    pub fn wait(self: &Arc<Self>) -> ExecutionPermit {
        let mut counts = self.lock();
        while counts.running >= CONCURRENT_EXECUTIONS_MAX {
            counts.waiting += 1;
            counts = self
                .finished
                .wait(counts)
                .unwrap_or_else(|e| e.into_inner());
            counts.waiting -= 1;
        }
        self.permit(&mut counts)
    }

    /// A turn for a transaction that is about to wait for the writer lock, if one is
    /// free now, nobody waits for one, and another stays free. Those who hold such a
    /// turn wait for the writer lock, so they never take the last free turn nor one a
    /// waiter (perhaps the lock's holder) was woken for: the holder of the writer lock
    /// never waits for them.
    pub fn try_early(self: &Arc<Self>) -> Option<ExecutionPermit> {
        let mut counts = self.lock();
        if counts.waiting > 0 || counts.running + 1 >= CONCURRENT_EXECUTIONS_MAX {
            return None;
        }
        Some(self.permit(&mut counts))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    #[test]
    fn early_turns_leave_a_turn_free_and_never_overtake_a_waiter() {
        let turns = Arc::new(Turns::default());
        // A thread waiting for a turn (perhaps the writer lock's holder) goes first.
        turns.lock().waiting = 1;
        assert!(turns.try_early().is_none());
        turns.lock().waiting = 0;
        let early: Vec<_> = std::iter::from_fn(|| turns.try_early()).collect();
        assert_eq!(early.len(), CONCURRENT_EXECUTIONS_MAX - 1);
        // The last turn stays for the writer lock's holder, who does not take it early.
        drop(turns.wait());
        drop(early);
        assert!(turns.try_early().is_some());
    }

    #[test]
    fn many_runs_execute_at_once_and_one_at_a_time_holds_the_large_turn() {
        let turns = Arc::new(Turns::default());
        let permits: Vec<_> = (0..CONCURRENT_EXECUTIONS_MAX)
            .map(|_| turns.wait())
            .collect();
        assert_eq!(turns.lock().running, CONCURRENT_EXECUTIONS_MAX);
        permits[0].handle().hold_large();
        permits[0].handle().hold_large(); // its own: no wait
        // Another run waits for the large turn until the holder's permit ends.
        let (tx, rx) = mpsc::channel();
        let mut other = permits[1].handle();
        let waiter = std::thread::spawn(move || {
            other.hold_large();
            tx.send(()).unwrap();
        });
        assert!(rx.recv_timeout(Duration::from_millis(100)).is_err());
        assert_eq!(turns.lock().waiting_large, 1);
        let mut permits = permits.into_iter();
        drop(permits.next());
        rx.recv_timeout(Duration::from_secs(10))
            .expect("the large turn passed on");
        waiter.join().unwrap();
        assert_eq!(turns.lock().large, Some(2));
        drop(permits);
        let counts = turns.lock();
        assert_eq!((counts.running, counts.large), (0, None));
    }
}
