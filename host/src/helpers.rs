//! Helper threads kept for the process and kept warm: the second and later workers of a
//! parallel batch, the shares of a long batch's preparation and the second thread of a
//! large in-memory commit run on them instead of on threads started for each.
//!
//! Starting a thread is cheap (about 25 µs here); what costs is its vCPU. Between two
//! parallel batches the second vCPU has had nothing to do for a millisecond or two, the
//! hypervisor has parked it, and a thread started or woken there then runs 0.3–0.5 ms
//! late (timed on this VM, per batch of 1,000 transfers, twice a batch: the workers
//! and the commit's second thread). A helper therefore polls for its next job for
//! [`WARM_MICROS`] after a job that asks it to ("warm"), yielding between polls; only
//! as many helpers poll as the machine has vCPUs besides the caller's. A durable
//! store's batches do not ask: its log's apply thread needs the spare vCPU between
//! them, and a polling helper took it (durable transfers 15–20 % slower). A mechanism
//! for speed with a switch ([`use_helpers`]): off, every job runs on a scoped thread
//! started for it, as before.
//!
//! A job borrows from its caller's stack, as a scoped thread's may: [`run_on_helpers`]
//! returns only once every job it handed out has finished, panics included (the one
//! `unsafe` here rests on that).

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock, PoisonError, TryLockError};

/// How long a helper polls for its next job before it sleeps, in µs: longer than the
/// in-order part between two batches of 1,000 transfers (1.5–2.5 ms here).
const WARM_MICROS: u64 = 3_000;
/// Helper threads the process keeps at most; a job past them gets a thread of its own.
const HELPERS_MAX: usize = 15;

static ON: AtomicBool = AtomicBool::new(true);

/// Whether parallel batches and large in-memory commits use the kept helper threads
/// (`true`, the default) or start threads for each (`false`): a switch for speed only
/// (BENCHMARKS.md's index), for the whole process.
pub fn use_helpers(on: bool) {
    ON.store(on, Ordering::Relaxed);
}

/// Whether the helpers are on ([`use_helpers`]).
pub(crate) fn helpers_on() -> bool {
    ON.load(Ordering::Relaxed)
}

/// A job handed to a helper: `work(index)`, with `work`'s lifetime erased; `warm`: poll
/// for the next job after it.
struct Job {
    work: *const (dyn Fn(usize) + Sync + 'static),
    index: usize,
    warm: bool,
}

// SAFETY: `work` is `Sync`, so calling it from another thread is sound; the pointer is
// only dereferenced while `run_on_helpers` waits for the job (see there).
unsafe impl Send for Job {}

struct Slot {
    job: Option<Job>,
    /// The helper waits on `posted` (not polling): a job must notify it.
    sleeping: bool,
    /// The last job's panic, for its caller to resume.
    panic: Option<Box<dyn std::any::Any + Send>>,
}

struct Helper {
    /// Held by the caller that handed this helper a job, until the job finished.
    claim: Mutex<()>,
    slot: Mutex<Slot>,
    posted: Condvar,
    finished: Condvar,
    has_job: AtomicBool,
    done: AtomicBool,
    /// Whether it polls before sleeping: only the first helpers, one per spare vCPU.
    warm: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Helper {
    fn main_loop(&self) {
        let mut warm = false;
        loop {
            if warm && self.warm {
                crate::poll::poll_yielding(WARM_MICROS, || self.has_job.load(Ordering::Acquire));
            }
            let mut slot = lock(&self.slot);
            let job = loop {
                if let Some(job) = slot.job.take() {
                    break job;
                }
                slot.sleeping = true;
                slot = self
                    .posted
                    .wait(slot)
                    .unwrap_or_else(PoisonError::into_inner);
            };
            slot.sleeping = false;
            self.has_job.store(false, Ordering::Relaxed);
            drop(slot);
            // SAFETY: the caller that posted the job waits until `done` before its
            // borrow of `work` ends (`Posted::drop`).
            let work = unsafe { &*job.work };
            warm = job.warm;
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| work(job.index)));
            let mut slot = lock(&self.slot);
            slot.panic = outcome.err();
            self.done.store(true, Ordering::Release);
            drop(slot);
            self.finished.notify_one();
        }
    }
}

/// The process's helpers, started as first needed and kept for its life (leaked, so
/// that a claim is a plain `'static` borrow).
fn helpers() -> &'static Mutex<Vec<&'static Helper>> {
    static HELPERS: OnceLock<Mutex<Vec<&'static Helper>>> = OnceLock::new();
    HELPERS.get_or_init(|| Mutex::new(Vec::new()))
}

/// vCPUs besides the caller's: how many helpers may poll.
fn spare_cpus() -> usize {
    static SPARE: OnceLock<usize> = OnceLock::new();
    *SPARE.get_or_init(|| {
        std::thread::available_parallelism().map_or(0, |n| n.get().saturating_sub(1))
    })
}

/// `h`'s claim if no caller holds it. A claim released while its caller unwound is
/// poisoned, which says nothing here (it guards no data): the helper serves again.
fn try_claim(h: &'static Helper) -> Option<MutexGuard<'static, ()>> {
    match h.claim.try_lock() {
        Ok(guard) => Some(guard),
        Err(TryLockError::Poisoned(e)) => Some(e.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    }
}

/// A free helper, claimed; `None` when all [`HELPERS_MAX`] are busy or one cannot start.
fn claim() -> Option<(&'static Helper, MutexGuard<'static, ()>)> {
    let mut all = lock(helpers());
    for &h in all.iter() {
        if let Some(guard) = try_claim(h) {
            return Some((h, guard));
        }
    }
    if all.len() >= HELPERS_MAX {
        return None;
    }
    let h: &'static Helper = Box::leak(Box::new(Helper {
        claim: Mutex::new(()),
        slot: Mutex::new(Slot {
            job: None,
            sleeping: false,
            panic: None,
        }),
        posted: Condvar::new(),
        finished: Condvar::new(),
        has_job: AtomicBool::new(false),
        done: AtomicBool::new(false),
        warm: all.len() < spare_cpus(),
    }));
    std::thread::Builder::new()
        .name(format!("semel-helper-{}", all.len()))
        .spawn(move || h.main_loop())
        .ok()?;
    all.push(h);
    let guard = try_claim(h)?;
    Some((h, guard))
}

/// The helpers a call handed jobs to; dropping it waits for every job to finish.
struct Posted {
    claimed: Vec<(&'static Helper, MutexGuard<'static, ()>)>,
}

impl Posted {
    /// Waits for every job, and hands back the first panic among them.
    fn wait_all(&mut self) -> Option<Box<dyn std::any::Any + Send>> {
        // Every job ended first, with nothing on the way that could unwind: the jobs
        // borrow the caller's stack.
        for (h, _) in &self.claimed {
            // The jobs of one batch end together: poll a little before sleeping.
            crate::poll::poll_for(WAIT_POLL_MICROS, || h.done.load(Ordering::Acquire));
            let mut slot = lock(&h.slot);
            while !h.done.load(Ordering::Acquire) {
                slot = h
                    .finished
                    .wait(slot)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        }
        let mut first = None;
        for (h, claim) in self.claimed.drain(..) {
            let panic = lock(&h.slot).panic.take();
            drop(claim);
            match (panic, &first) {
                (Some(p), None) => first = Some(p),
                // Not dropped: a payload's drop may panic in turn.
                (Some(p), Some(_)) => std::mem::forget(p),
                (None, _) => {}
            }
        }
        first
    }
}

impl Drop for Posted {
    fn drop(&mut self) {
        // On a panic of the caller's own share: the jobs still borrow its stack.
        drop(self.wait_all());
    }
}

/// How long a caller polls for its helpers' jobs to end before it sleeps, in µs.
const WAIT_POLL_MICROS: u64 = 50;

/// Runs `work(i)` for every `i` in `0..n`: `work(0)` on this thread, the others on
/// helpers (or, with the switch off or every helper busy, on scoped threads started for
/// them), and returns once all have finished. A panic of any is resumed here. `warm`:
/// the helpers poll for their next job afterwards (nothing else needs the spare vCPUs).
pub(crate) fn run_on_helpers(n: usize, warm: bool, work: &(dyn Fn(usize) + Sync)) {
    if n == 0 {
        return;
    }
    std::thread::scope(|s| {
        let mut posted = Posted {
            claimed: Vec::new(),
        };
        for i in 1..n {
            let helper = match helpers_on() {
                true => claim(),
                false => None,
            };
            let Some((h, guard)) = helper else {
                s.spawn(move || work(i));
                continue;
            };
            // SAFETY: only the lifetime is erased. `posted` waits for this job before
            // `run_on_helpers` returns or unwinds, so `work` outlives every use.
            let erased: *const (dyn Fn(usize) + Sync + 'static) = unsafe {
                std::mem::transmute::<
                    *const (dyn Fn(usize) + Sync + '_),
                    *const (dyn Fn(usize) + Sync + 'static),
                >(work)
            };
            let mut slot = lock(&h.slot);
            slot.job = Some(Job {
                work: erased,
                index: i,
                warm,
            });
            h.done.store(false, Ordering::Relaxed);
            h.has_job.store(true, Ordering::Release);
            let sleeping = slot.sleeping;
            drop(slot);
            if sleeping {
                h.posted.notify_one();
            }
            posted.claimed.push((h, guard));
        }
        work(0);
        if let Some(panic) = posted.wait_all() {
            std::panic::resume_unwind(panic);
        }
    });
}

/// Runs `a` here and `b` on a helper, as [`run_on_helpers`] does (warm); returns once
/// both are done.
pub(crate) fn join(a: impl FnOnce() + Send, b: impl FnOnce() + Send) {
    let a = Mutex::new(Some(a));
    let b = Mutex::new(Some(b));
    run_on_helpers(2, true, &|i| {
        if i == 0 {
            let a = lock(&a).take();
            if let Some(a) = a {
                a();
            }
        } else {
            let b = lock(&b).take();
            if let Some(b) = b {
                b();
            }
        }
    });
}

/// Items at least for [`drop_in_halves`] to use a helper.
const DROP_IN_HALVES_MIN: usize = 1024;

/// Drops `items`, a long list's first half here and its second on a helper.
pub(crate) fn drop_in_halves<T: Send>(mut items: Vec<T>) {
    if items.len() < DROP_IN_HALVES_MIN || !helpers_on() {
        return;
    }
    let second = items.split_off(items.len() / 2);
    join(move || drop(items), move || drop(second));
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    use super::*;

    #[test]
    fn every_job_runs_once_and_borrows_the_callers_stack() {
        for n in [1, 2, 3, 8, HELPERS_MAX + 4] {
            let ran: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
            run_on_helpers(n, true, &|i| {
                ran[i].fetch_add(1, Ordering::Relaxed);
            });
            assert!(
                ran.iter().all(|r| r.load(Ordering::Relaxed) == 1),
                "n = {n}"
            );
        }
    }

    #[test]
    fn a_helpers_panic_reaches_the_caller_after_every_job_ended() {
        let finished = AtomicUsize::new(0);
        let caught = std::panic::catch_unwind(AssertUnwindSafe(|| {
            run_on_helpers(3, true, &|i| {
                if i == 1 {
                    panic!("job 1 fails");
                }
                std::thread::sleep(Duration::from_millis(20));
                finished.fetch_add(1, Ordering::Relaxed);
            });
        }));
        assert!(caught.is_err());
        assert_eq!(finished.load(Ordering::Relaxed), 2);
        // The helper that panicked serves the next call.
        let ran = AtomicUsize::new(0);
        run_on_helpers(3, false, &|_| {
            ran.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(ran.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn a_panic_of_the_callers_own_share_leaves_the_helpers_serving() {
        // Every helper there is takes a job while the caller's own share panics.
        let caught = std::panic::catch_unwind(|| {
            run_on_helpers(HELPERS_MAX + 1, false, &|i| {
                if i == 0 {
                    panic!("share 0 fails");
                }
            });
        });
        assert!(caught.is_err());
        // The next job runs on a helper, not on a thread started for it (other tests
        // may hold some helpers a moment: asked a few times).
        let on_helper = (0..50).any(|_| {
            let name = Mutex::new(None);
            run_on_helpers(2, false, &|i| {
                if i == 1 {
                    *lock(&name) = std::thread::current().name().map(str::to_owned);
                }
            });
            let name = name.into_inner().unwrap_or_else(PoisonError::into_inner);
            name.is_some_and(|n| n.starts_with("semel-helper-"))
        });
        assert!(on_helper);
    }

    #[test]
    fn concurrent_callers_share_the_helpers_or_start_threads() {
        let total = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..6 {
                s.spawn(|| {
                    for _ in 0..50 {
                        run_on_helpers(4, true, &|_| {
                            total.fetch_add(1, Ordering::Relaxed);
                        });
                    }
                });
            }
        });
        assert_eq!(total.load(Ordering::Relaxed), 6 * 50 * 4);
    }

    #[test]
    fn drop_in_halves_drops_every_item_once() {
        struct Counted<'a>(&'a AtomicUsize);
        impl Drop for Counted<'_> {
            fn drop(&mut self) {
                self.0.fetch_add(1, Ordering::Relaxed);
            }
        }
        for n in [0, 1, DROP_IN_HALVES_MIN - 1, DROP_IN_HALVES_MIN, 5_000] {
            let dropped = AtomicUsize::new(0);
            drop_in_halves((0..n).map(|_| Counted(&dropped)).collect());
            assert_eq!(dropped.load(Ordering::Relaxed), n);
        }
    }

    // Turns the process's switch off a moment: other tests meanwhile may start threads
    // where they would have used helpers, with the same results.
    #[test]
    fn join_runs_both_with_the_switch_on_or_off() {
        for on in [true, false] {
            use_helpers(on);
            let (mut x, mut y) = (0, 0);
            join(|| x = 1, || y = 2);
            assert_eq!((x, y), (1, 2));
        }
        use_helpers(true);
    }
}
