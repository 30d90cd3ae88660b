//! Polling before sleeping, for waits shorter than a sleeping thread's wake-up.
//!
//! Waking a thread that sleeps on a futex costs the waker a syscall and, on a virtual
//! machine, an idle vCPU's wake-up: more than a small transaction. The writer lock's
//! waiters and the recycler thread therefore poll for a bounded time first.

use std::time::{Duration, Instant};

/// Spin hints between two checks: short, as what is waited for comes soon.
const SPINS_PER_CHECK: u32 = 16;

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
}
