//! The host's writer lock: a mutex whose waiters spin a little before they sleep.
//!
//! The writer lock is held for one transaction at a time (about 10 µs in memory), and a
//! submitter usually wants it a moment after another releases it. A waiter that sleeps
//! costs a futex wake and, on a virtual machine, the wake-up of an idle vCPU, which take
//! longer than the transaction itself: two in-memory clients ran at half the speed of
//! one. So a waiter first polls for up to [`WRITER_SPIN_MICROS_MAX`]. At most one
//! waiter fewer than there are cores spins, leaving the holder a core (other work may
//! still compete for it); the rest sleep at once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{LockResult, Mutex, MutexGuard, TryLockError};

use crate::limits::WRITER_SPIN_MICROS_MAX;
use crate::poll::poll_for;

/// A mutex for the writer: see the module docs.
pub(crate) struct WriterLock<T> {
    inner: Mutex<T>,
    spinning: AtomicUsize,
    /// Waiters that may spin at once: the cores but one.
    spin_slots: usize,
}

impl<T> WriterLock<T> {
    /// A lock over `value`; with `spin` off, waiters sleep at once.
    pub fn new(value: T, spin: bool) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            inner: Mutex::new(value),
            spinning: AtomicUsize::new(0),
            spin_slots: if spin { cores - 1 } else { 0 },
        }
    }

    /// The lock if it is free now; `Ok(None)` when another thread holds it.
    pub fn try_lock(&self) -> LockResult<Option<MutexGuard<'_, T>>> {
        match self.inner.try_lock() {
            Ok(guard) => Ok(Some(guard)),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Poisoned(e)) => {
                Err(std::sync::PoisonError::new(Some(e.into_inner())))
            }
        }
    }

    /// Locks, spinning first when a spin slot is free; poisoned as `Mutex::lock` is.
    pub fn lock(&self) -> LockResult<MutexGuard<'_, T>> {
        match self.inner.try_lock() {
            Ok(guard) => return Ok(guard),
            Err(TryLockError::Poisoned(e)) => return Err(e),
            Err(TryLockError::WouldBlock) => {}
        }
        let mut got = None;
        if self.spinning.fetch_add(1, Ordering::Relaxed) < self.spin_slots {
            poll_for(WRITER_SPIN_MICROS_MAX, || {
                got = match self.inner.try_lock() {
                    Ok(guard) => Some(Ok(guard)),
                    Err(TryLockError::Poisoned(e)) => Some(Err(e)),
                    Err(TryLockError::WouldBlock) => None,
                };
                got.is_some()
            });
        }
        self.spinning.fetch_sub(1, Ordering::Relaxed);
        got.unwrap_or_else(|| self.inner.lock())
    }

    /// Waiters spinning now.
    #[cfg(test)]
    fn spinning(&self) -> usize {
        self.spinning.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn a_waiter_gets_the_lock_after_a_hold_longer_than_its_spin() {
        let lock = Arc::new(WriterLock::new(0u32, true));
        let guard = lock.lock().unwrap();
        let waiter = {
            let lock = Arc::clone(&lock);
            std::thread::spawn(move || {
                let mut g = lock.lock().unwrap();
                *g += 1;
            })
        };
        // Far past the spin: the waiter must have gone to sleep, and still wake.
        std::thread::sleep(Duration::from_micros(WRITER_SPIN_MICROS_MAX) * 100);
        assert_eq!(lock.spinning(), 0, "a waiter spun past its bound");
        drop(guard);
        waiter.join().unwrap();
        assert_eq!(*lock.lock().unwrap(), 1);
    }

    #[test]
    fn counts_stay_exact_under_contention() {
        let lock = Arc::new(WriterLock::new(0u64, true));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let lock = Arc::clone(&lock);
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        *lock.lock().unwrap() += 1;
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(*lock.lock().unwrap(), 40_000);
        assert_eq!(lock.spinning(), 0);
    }
}
