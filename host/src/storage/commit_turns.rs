//! Turns to commit on a shared store: while another host's commits make this one's
//! groups lose their races, one host at a time runs and commits, for a turn of
//! [`STORE_TURN_MILLIS`], and the others wait for theirs instead of running groups that
//! would lose.
//!
//! Without turns, two busy hosts on one hot key run every group twice: each group runs
//! against a head the other host's commit is about to move, loses, and runs again
//! (under the commit lock, `Host::hold_to_run_again`). With them, the host whose turn it
//! is runs and commits back to back, its pipeline full, while the others wait; at the
//! end of its turn it lets its last group commit and hands over (the store's lock
//! queue: [`Backend::take_turn`]). A turn is a schedule, never a guarantee: every
//! commit still carries its precondition, so a host that runs without its turn (the
//! wait passed, a host with turns off) is still ordered, and at worst loses a race.
//!
//! A host takes turns only once it lost a race, and keeps taking them while it sees
//! other hosts commit (its head moved, a race lost), for [`STORE_TURNS_KEPT_MILLIS`]
//! after the last time: a host alone on a store never pays for them. A host that went
//! idle ends its turn [`IDLE_GRACE_MICROS`] later, unless a submitter came meanwhile: a
//! thread of its own (the keeper) waits that out, as no submitter is left to do it.
//!
//! [`Backend::take_turn`]: crate::storage::Backend::take_turn

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use crate::limits::{STORE_TURN_MILLIS, STORE_TURN_WAIT_MILLIS_MAX, STORE_TURNS_KEPT_MILLIS};
use crate::storage::Backend;

/// How long a host that went idle keeps its turn, in microseconds: between two groups
/// a busy host is idle for a moment (a server's executor fetching the next requests),
/// and ending the turn then would hand it over at every group.
const IDLE_GRACE_MICROS: u64 = 2_000;

/// How often the keeper looks whether its host is gone, in milliseconds.
const KEEPER_POLL_MILLIS: u64 = 100;

/// What the writer does about its turn before a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Nothing: no other host is committing, or its turn goes on.
    Run,
    /// Take a turn (waiting for the host whose turn it is).
    Take,
    /// Let the last group commit, end the turn, and take the next one.
    Hand,
    /// Let the last group commit and end the turn: no other host commits any longer.
    End,
}

/// A turn this host holds.
pub(crate) struct Held {
    pub since: Instant,
    /// The backend that took it (a recovery may replace the committer's).
    pub backend: Arc<dyn Backend>,
}

/// The turn state of one host.
pub(crate) struct CommitTurns {
    epoch: Instant,
    /// Milliseconds after `epoch` until which turns are taken (0: never).
    contended_until: AtomicU64,
    /// The turn this host holds, if any.
    held: Mutex<Option<Held>>,
    /// Submitters that arrived so far: the keeper ends a turn only if none came since
    /// the host went idle.
    arrivals: AtomicU64,
    /// The arrivals count when the host last went idle, for the keeper.
    idle: Mutex<Option<(u64, Instant)>>,
    went_idle: Condvar,
    keeper: std::sync::Once,
}

impl CommitTurns {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            epoch: Instant::now(),
            contended_until: AtomicU64::new(0),
            held: Mutex::new(None),
            arrivals: AtomicU64::new(0),
            idle: Mutex::new(None),
            went_idle: Condvar::new(),
            keeper: std::sync::Once::new(),
        })
    }

    /// The turn held, locked (by the writer taking or handing it over).
    pub(crate) fn held(&self) -> MutexGuard<'_, Option<Held>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A submitter arrived.
    pub(crate) fn arrived(&self) {
        self.arrivals.fetch_add(1, Ordering::Relaxed);
    }

    /// Submitters that arrived so far.
    pub(crate) fn arrivals(&self) -> u64 {
        self.arrivals.load(Ordering::Relaxed)
    }

    /// The host is idle now (nothing runs, stages or commits), `arrivals` submitters
    /// having arrived: its turn, if it holds one, ends after [`IDLE_GRACE_MICROS`]
    /// unless another arrives meanwhile.
    pub(crate) fn went_idle(self: &Arc<Self>, arrivals: u64) {
        // Locked by a writer taking or handing the turn over: not idle.
        if !self.held.try_lock().is_ok_and(|held| held.is_some()) {
            return;
        }
        self.keeper.call_once(|| {
            let weak = Arc::downgrade(self);
            // Without the keeper an idle host keeps its turn until the others' wait passes.
            let _ = std::thread::Builder::new()
                .name("semel-turn-keeper".into())
                .spawn(move || keep(&weak));
        });
        *self.idle.lock().unwrap_or_else(|e| e.into_inner()) = Some((arrivals, Instant::now()));
        self.went_idle.notify_one();
    }

    /// Ends the turn if no submitter arrived since the count `arrivals`.
    fn end_if_still_idle(&self, arrivals: u64) {
        // Held by the writer: it is taking or handing the turn, so not idle.
        let Ok(mut held) = self.held.try_lock() else {
            return;
        };
        if self.arrivals.load(Ordering::Relaxed) != arrivals {
            return;
        }
        if let Some(turn) = held.take() {
            turn.backend.end_turn();
        }
    }

    /// How long the writer waits for its turn before it runs without one.
    pub(crate) fn wait() -> Duration {
        Duration::from_millis(STORE_TURN_WAIT_MILLIS_MAX)
    }

    fn millis(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX)
    }

    /// A commit of this host lost a race: take turns from now on.
    pub(crate) fn lost_race(&self) {
        self.contend(Instant::now());
    }

    /// Another host committed: while turns are taken, keep taking them.
    pub(crate) fn others_committed(&self) {
        let now = Instant::now();
        if self.contended(now) {
            self.contend(now);
        }
    }

    /// The wait for a turn passed: the holder may be cut off; run without turns until
    /// the next lost race.
    pub(crate) fn wait_passed(&self) {
        self.contended_until.store(0, Ordering::Relaxed);
    }

    fn contend(&self, now: Instant) {
        let until = self.millis(now).saturating_add(STORE_TURNS_KEPT_MILLIS);
        self.contended_until.fetch_max(until, Ordering::Relaxed);
    }

    /// Whether turns are taken at `now`.
    pub(crate) fn contended(&self, now: Instant) -> bool {
        self.millis(now) < self.contended_until.load(Ordering::Relaxed)
    }

    /// The step before a run at `now`, for a turn taken at `held_since`.
    pub(crate) fn step(&self, now: Instant, held_since: Option<Instant>) -> Step {
        let turn = Duration::from_millis(STORE_TURN_MILLIS);
        match (self.contended(now), held_since) {
            (false, None) => Step::Run,
            (false, Some(_)) => Step::End,
            (true, None) => Step::Take,
            (true, Some(since)) if now.saturating_duration_since(since) < turn => Step::Run,
            (true, Some(_)) => Step::Hand,
        }
    }
}

/// The keeper: ends the turn of a host that stayed idle (see the module docs), until
/// the host is gone.
fn keep(turns: &Weak<CommitTurns>) {
    loop {
        let Some(t) = turns.upgrade() else {
            return;
        };
        let mut idle = t.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.is_none() {
            idle = t
                .went_idle
                .wait_timeout(idle, Duration::from_millis(KEEPER_POLL_MILLIS))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        let Some((arrivals, at)) = idle.take() else {
            continue;
        };
        drop(idle);
        let grace = Duration::from_micros(IDLE_GRACE_MICROS);
        std::thread::sleep((at + grace).saturating_duration_since(Instant::now()));
        t.end_if_still_idle(arrivals);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turns_are_taken_after_a_lost_race_held_for_a_turn_and_dropped_once_alone() {
        let turns = CommitTurns::new();
        let now = Instant::now();
        assert_eq!(turns.step(now, None), Step::Run, "alone: no turns");
        turns.others_committed();
        assert_eq!(
            turns.step(now, None),
            Step::Run,
            "a moved head alone starts none"
        );
        turns.lost_race();
        let now = Instant::now();
        assert_eq!(turns.step(now, None), Step::Take);
        assert_eq!(turns.step(now, Some(now)), Step::Run, "within the turn");
        let later = now + Duration::from_millis(STORE_TURN_MILLIS);
        turns.others_committed();
        assert_eq!(turns.step(later, Some(now)), Step::Hand, "the turn is over");
        let quiet = now + Duration::from_millis(STORE_TURNS_KEPT_MILLIS + 100);
        assert_eq!(
            turns.step(quiet, Some(now)),
            Step::End,
            "no one else commits"
        );
        assert_eq!(turns.step(quiet, None), Step::Run);
        turns.wait_passed();
        assert_eq!(
            turns.step(Instant::now(), None),
            Step::Run,
            "a passed wait ends them"
        );
    }
}
