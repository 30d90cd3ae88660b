//! The recycler: one thread per host that frees finished runs' stores and makes the next
//! run's store ready, off the submitter's path.
//!
//! Freeing a store returns its instances to wasmtime's pool, which clears their memory;
//! making one instantiates the contract the last transaction called first (a guess: the
//! next transaction likely calls it too). Together they cost about a third of a small
//! transaction, which a lone submitter would otherwise spend itself, in turn with its
//! runs. The recycler does them while the submitter runs its next transaction. A store
//! made ahead is an [`Early`]: the frame that takes it charges what instantiating would
//! have cost, so receipts do not depend on whether the guess was right.
//!
//! Submitters that find the writer lock busy keep doing this work themselves
//! (`Host::submit`): they have nothing else to do while they wait, and a third thread
//! on a busy machine would only take the writer's CPU.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use crate::limits::RECYCLER_SPIN_MICROS_MAX;
use crate::poll::poll_for;
use crate::types::CodeHash;
use crate::vm::Runtime;
use crate::vm::prewarm::early::{Early, prepare_early};
use crate::vm::store::Spent;

/// Hands stores to the recycler thread and takes ready ones from it.
pub(crate) struct Recycler {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    state: Mutex<State>,
    work: Condvar,
    /// Counts hand-overs and takes, so the idle thread can poll for them unlocked.
    posted: AtomicU64,
    /// Submissions in progress (see [`Recycler::visit`]).
    submitters: AtomicUsize,
    /// Whether the thread polls before it sleeps: only with a core to spare.
    spins: bool,
}

#[derive(Default)]
struct State {
    /// Stores to free.
    spent: Vec<Spent>,
    /// The code the next transaction likely calls first.
    want: Option<CodeHash>,
    /// A store with `want` instantiated.
    ready: Option<Early>,
    /// The thread waits for work: a notify is needed (a syscall, so only then).
    idle: bool,
    closed: bool,
}

impl Recycler {
    /// Starts the thread.
    ///
    /// # Errors
    /// When the thread cannot be started.
    pub fn start(runtime: Arc<Runtime>) -> std::io::Result<Self> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            work: Condvar::new(),
            posted: AtomicU64::new(0),
            submitters: AtomicUsize::new(0),
            spins: cores > 1,
        });
        let thread = std::thread::Builder::new()
            .name("semel-recycler".into())
            .spawn({
                let shared = Arc::clone(&shared);
                move || recycle_until_closed(&shared, &runtime)
            })?;
        Ok(Self {
            shared,
            thread: Some(thread),
        })
    }

    /// Counts a submission in progress until the visit is dropped.
    pub fn visit(&self) -> Visit<'_> {
        self.shared.submitters.fetch_add(1, Ordering::Relaxed);
        Visit(&self.shared)
    }

    /// Hands over a finished run's store to free; `next`, when known, is the code to make
    /// ready for the next transaction.
    pub fn recycle(&self, spent: Spent, next: Option<CodeHash>) {
        // A thread that died (a panic) would keep every store, and with them every turn
        // to execute: the submitter frees its own then.
        if self.thread.as_ref().is_none_or(JoinHandle::is_finished) {
            drop(spent);
            return;
        }
        let mut s = self.shared.lock();
        s.spent.push(spent);
        if next.is_some() {
            s.want = next;
        }
        self.wake(s);
    }

    /// The ready store for `code`, if the recycler made one; with `refill`, the recycler
    /// is woken to make the next one (for a lone submitter, while it runs this one; it
    /// makes one only if the submitter is still alone then).
    pub fn take(&self, code: CodeHash, refill: bool) -> Option<Early> {
        let mut s = self.shared.lock();
        let early = s.ready.take_if(|e| e.code() == Some(code))?;
        if refill {
            self.wake(s);
        }
        Some(early)
    }

    fn wake(&self, s: MutexGuard<'_, State>) {
        self.shared.posted.fetch_add(1, Ordering::Release);
        let idle = s.idle;
        drop(s);
        if idle {
            self.shared.work.notify_one();
        }
    }
}

/// A submission in progress: see [`Recycler::visit`].
pub(crate) struct Visit<'a>(&'a Shared);

impl Visit<'_> {
    /// Whether this is the only submission in progress: only then is the recycler used.
    pub fn alone(&self) -> bool {
        self.0.submitters.load(Ordering::Relaxed) == 1
    }
}

impl Drop for Visit<'_> {
    fn drop(&mut self) {
        self.0.submitters.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Drop for Recycler {
    fn drop(&mut self) {
        let mut s = self.shared.lock();
        s.closed = true;
        self.shared.posted.fetch_add(1, Ordering::Release);
        drop(s);
        self.shared.work.notify_one();
        if let Some(thread) = self.thread.take() {
            // A panic there lost only stores to free; they are freed with the state.
            let _ = thread.join();
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent through a panic: each step is one assignment.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn recycle_until_closed(shared: &Shared, runtime: &Arc<Runtime>) {
    let mut s = shared.lock();
    loop {
        if !s.spent.is_empty() {
            let spent = std::mem::take(&mut s.spent);
            drop(s);
            drop(spent);
            s = shared.lock();
            continue;
        }
        if s.closed {
            let ready = s.ready.take();
            drop(s);
            drop(ready);
            return;
        }
        if s.ready.as_ref().is_some_and(|e| e.code() != s.want) {
            let stale = s.ready.take();
            drop(s);
            drop(stale);
            s = shared.lock();
            continue;
        }
        // Only for a lone submitter: while others submit, a ready store would hold a turn
        // that a waiting submitter would rather instantiate its own in.
        if s.ready.is_none()
            && shared.submitters.load(Ordering::Relaxed) <= 1
            && let Some(code) = s.want
        {
            drop(s);
            let early = prepare_early(runtime, code);
            s = shared.lock();
            match early {
                // Unless a submitter changed its guess meanwhile (then it goes next round).
                Some(early) => s.ready = Some(early),
                // No free turn, or the module left the cache: wait for the next guess
                // rather than retry at once.
                None => s.want = None,
            }
            continue;
        }
        // Nothing to do. Poll a while before sleeping: waking a sleeping thread costs
        // the submitter a syscall and, on a virtual machine, an idle vCPU's wake-up —
        // more than the work handed over.
        let seen = shared.posted.load(Ordering::Acquire);
        if shared.spins {
            drop(s);
            // Others' submissions mean no lone submitter to serve, and no core to spare.
            poll_for(RECYCLER_SPIN_MICROS_MAX, || {
                shared.posted.load(Ordering::Acquire) != seen
                    || shared.submitters.load(Ordering::Relaxed) > 1
            });
            s = shared.lock();
            if shared.posted.load(Ordering::Acquire) != seen {
                continue;
            }
        }
        // Posts happen under the lock held here: none is missed between check and wait.
        // (A change in who submits is not posted: a sleeping thread makes its next store
        // at the next hand-over.)
        if s.closed {
            continue;
        }
        s.idle = true;
        s = shared.work.wait(s).unwrap_or_else(|e| e.into_inner());
        s.idle = false;
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::limits::CONCURRENT_EXECUTIONS_MAX;

    fn runtime_with(wat: &str) -> (Arc<Runtime>, CodeHash) {
        let runtime = Arc::new(Runtime::new(None).unwrap());
        let code = crate::vm::validate::wasm_bytes(wat.as_bytes()).unwrap();
        let (hash, _) = runtime.prepare(&code).unwrap();
        (runtime, hash)
    }

    /// Waits (bounded) until `f` holds.
    fn eventually(what: &str, f: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !f() {
            assert!(Instant::now() < deadline, "{what} never happened");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Every turn is free: a plain permit can be taken that many times at once.
    fn all_turns_free(runtime: &Arc<Runtime>) -> bool {
        let held: Vec<_> = (0..CONCURRENT_EXECUTIONS_MAX - 1)
            .map_while(|_| runtime.turns().try_early())
            .collect();
        held.len() == CONCURRENT_EXECUTIONS_MAX - 1
    }

    const A: &str = r#"(module (memory (export "memory") 1) (func (export "a")))"#;
    const B: &str = r#"(module (memory (export "memory") 2) (func (export "b")))"#;

    #[test]
    fn handed_over_stores_are_freed_and_the_next_is_made_ready() {
        let (runtime, a) = runtime_with(A);
        let b = runtime.prepare(&crate::vm::validate::wasm_bytes(B.as_bytes()).unwrap());
        let b = b.unwrap().0;
        let recycler = Recycler::start(Arc::clone(&runtime)).unwrap();
        let visit = recycler.visit();
        assert!(visit.alone());
        let spent = prepare_early(&runtime, a).unwrap().into_spent();
        recycler.recycle(spent, Some(a));
        eventually("a ready store for a", || {
            recycler.shared.lock().ready.is_some()
        });
        assert!(recycler.take(b, false).is_none(), "a store for other code");
        let early = recycler.take(a, false).unwrap();
        assert_eq!(early.code(), Some(a));
        // A new guess replaces the ready store of the old one.
        recycler.recycle(early.into_spent(), Some(b));
        eventually("a ready store for b", || {
            recycler.shared.lock().ready.as_ref().and_then(Early::code) == Some(b)
        });
        drop(recycler.take(b, false));
        eventually("every store freed", || all_turns_free(&runtime));
    }

    #[test]
    fn nothing_is_made_ready_while_others_submit() {
        let (runtime, a) = runtime_with(A);
        let recycler = Recycler::start(Arc::clone(&runtime)).unwrap();
        let (_one, two) = (recycler.visit(), recycler.visit());
        assert!(!two.alone());
        recycler.recycle(prepare_early(&runtime, a).unwrap().into_spent(), Some(a));
        eventually("the store freed", || all_turns_free(&runtime));
        std::thread::sleep(Duration::from_millis(20));
        assert!(recycler.shared.lock().ready.is_none());
    }

    #[test]
    fn it_sleeps_once_its_poll_is_over() {
        let (runtime, a) = runtime_with(A);
        let recycler = Recycler::start(Arc::clone(&runtime)).unwrap();
        let _visit = recycler.visit();
        recycler.recycle(prepare_early(&runtime, a).unwrap().into_spent(), Some(a));
        eventually("a ready store", || recycler.shared.lock().ready.is_some());
        // Far past the poll: the thread must be asleep, and still wake for work.
        std::thread::sleep(Duration::from_micros(RECYCLER_SPIN_MICROS_MAX) * 100);
        assert!(recycler.shared.lock().idle, "it polled past its bound");
        let early = recycler.take(a, true).unwrap();
        recycler.recycle(early.into_spent(), Some(a));
        eventually("the next ready store", || {
            recycler.shared.lock().ready.is_some()
        });
    }

    #[test]
    fn dropping_it_while_it_polls_returns() {
        let (runtime, a) = runtime_with(A);
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for _ in 0..50 {
                let recycler = Recycler::start(Arc::clone(&runtime)).unwrap();
                let visit = recycler.visit();
                recycler.recycle(prepare_early(&runtime, a).unwrap().into_spent(), Some(a));
                drop(visit);
                // Mid-poll, most likely: the close must not be lost.
                std::thread::sleep(Duration::from_micros(RECYCLER_SPIN_MICROS_MAX / 2));
                drop(recycler);
            }
            done.send(()).unwrap();
        });
        finished
            .recv_timeout(Duration::from_secs(30))
            .expect("a recycler's drop hung");
    }

    #[test]
    fn dropping_it_frees_what_it_holds_and_stops_the_thread() {
        let (runtime, a) = runtime_with(A);
        let recycler = Recycler::start(Arc::clone(&runtime)).unwrap();
        {
            let _visit = recycler.visit();
            recycler.recycle(prepare_early(&runtime, a).unwrap().into_spent(), Some(a));
            eventually("a ready store", || recycler.shared.lock().ready.is_some());
        }
        let thread_done = Arc::clone(&recycler.shared);
        drop(recycler);
        assert!(thread_done.lock().closed);
        assert!(all_turns_free(&runtime), "the ready store kept its turn");
    }
}
