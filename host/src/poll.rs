//! Polling before sleeping, for waits shorter than a sleeping thread's wake-up.
//!
//! Waking a thread that sleeps on a futex costs the waker a syscall and, on a virtual
//! machine, an idle vCPU's wake-up: more than a small transaction. The writer lock's
//! waiters and the recycler thread therefore poll for a bounded time first, and the
//! helper threads (`helpers.rs`) poll yielding, for longer, between batches.

use std::time::{Duration, Instant};

/// Spin hints between two checks: short, as what is waited for comes soon.
const SPINS_PER_CHECK: u32 = 16;
/// Checks between two yields of a thread that polls yielding.
const POLLS_PER_YIELD: u32 = 64;

/// Spins for up to `micros` microseconds, asking `done` between short bursts; true as
/// soon as it says so, false when the time is up.
pub(crate) fn poll_for(micros: u64, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_micros(micros);
    while Instant::now() < deadline {
        for _ in 0..SPINS_PER_CHECK {
            std::hint::spin_loop();
        }
        if done() {
            return true;
        }
    }
    false
}

/// Polls `ready` for up to `micros`, yielding between bursts; true once it says so.
pub(crate) fn poll_yielding(micros: u64, ready: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_micros(micros);
    loop {
        for _ in 0..POLLS_PER_YIELD {
            if ready() {
                return true;
            }
            std::hint::spin_loop();
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::yield_now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_when_done_or_when_the_time_is_up() {
        let mut asked = 0;
        assert!(poll_for(1_000_000, || {
            asked += 1;
            asked == 3
        }));
        assert_eq!(asked, 3);
        let start = Instant::now();
        assert!(!poll_for(200, || false));
        assert!(start.elapsed() >= Duration::from_micros(200));
    }

    #[test]
    fn polling_yielding_stops_when_done_or_when_the_time_is_up() {
        let asked = std::cell::Cell::new(0);
        assert!(poll_yielding(1_000_000, || {
            asked.set(asked.get() + 1);
            asked.get() == 200
        }));
        assert_eq!(asked.get(), 200);
        let start = Instant::now();
        assert!(!poll_yielding(200, || false));
        assert!(start.elapsed() >= Duration::from_micros(200));
    }
}
