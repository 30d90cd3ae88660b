//! This process's CPU time (user and system, every thread's, the exited ones' too), for
//! `semel bench`'s report: a figure less noisy than wall time on a shared machine.

/// CPU seconds this process has used so far (0 where `getrusage` fails).
pub fn process_cpu_seconds() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes one whole `rusage` through the pointer it is given, which
    // points to one (zeroed, so also valid should it write nothing).
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
    if rc != 0 {
        return 0.0;
    }
    // SAFETY: zeroed, then filled in by getrusage: every field is a plain integer.
    let usage = unsafe { usage.assume_init() };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}
