//! Settings of the process that hosts Semel, for binaries (the `semel` CLI, the
//! benchmarks) to apply at start: the library never changes its process by itself.

/// Turns transparent huge pages off for this process (Linux; elsewhere nothing).
///
/// mimalloc, the `semel` binary's allocator, asks for huge pages on its arenas, and
/// where the kernel compacts memory to serve such a request (`defrag` set to `madvise`,
/// a common default) a first touch of a fresh 2 MiB page can stall the thread for
/// milliseconds: 100k in-memory counter transactions spent 0.16–0.23 s of about 1.2 s
/// in stalls of 100 µs or more, and 0.02–0.10 s with huge pages off (BENCHMARKS.md). A
/// host serving transactions wants the steady latency; the TLB misses cost less here.
pub fn disable_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    {
        let (disable, unused): (libc::c_ulong, libc::c_ulong) = (1, 0);
        // SAFETY: PR_SET_THP_DISABLE reads no memory; it sets a flag of this process.
        // Its result is not checked: where the call is refused, memory is served as
        // before, only with the stalls.
        unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, disable, unused, unused, unused) };
    }
}
